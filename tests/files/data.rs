//! The data side (CPU only): pairing and problem reports, decoding/resizing/normalising, augmentation alignment,
//! the loader's determinism, the synthetic set, and (when present) a scan of the real photos.
//!
//! Synthetic photos are shared: `synth_set()` writes 10 samples once per test process into a temp folder.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use fluke::data::{
    self, augment::Augment, len_batches, list_images, load_mask, load_rgb, prepare_image, prepare_mask,
    problems_report, resize_rgb, scan_pairs, split, synth, Batch, Loader, Pair, SampleCache, IMAGENET_MEAN,
    IMAGENET_STD,
};
use image::{GenericImageView, GrayImage, Luma, Rgb, RgbImage};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tempfile::TempDir;

/// 10 synthetic samples, written once (seed 11).
fn synth_set() -> &'static Path {
    static DIR: OnceLock<TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = tempfile::tempdir().unwrap();
        synth::write_dataset(d.path(), 10, 11).unwrap();
        d
    })
    .path()
}

fn synth_pairs() -> Vec<Pair> {
    let d = synth_set();
    let (pairs, problems) = scan_pairs(&d.join("images"), &d.join("masks")).unwrap();
    assert!(problems.is_empty(), "{}", problems_report(&problems));
    assert_eq!(pairs.len(), 10);
    pairs
}

fn dirs() -> (TempDir, PathBuf, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let (i, m) = (t.path().join("images"), t.path().join("masks"));
    std::fs::create_dir_all(&i).unwrap();
    std::fs::create_dir_all(&m).unwrap();
    (t, i, m)
}

fn photo(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| Rgb([(x * 7) as u8, (y * 5) as u8, 90]))
}

fn mask(w: u32, h: u32) -> GrayImage {
    GrayImage::from_fn(w, h, |x, _| Luma([if x < w / 2 { 255 } else { 0 }]))
}

/// jpg/jpeg/png in any letter case on either side pair by stem; other and hidden files are ignored.
#[test]
fn pairs_match_by_stem_across_extensions_and_case() {
    let (_t, i, m) = dirs();
    photo(20, 10).save_with_format(i.join("a.JPG"), image::ImageFormat::Jpeg).unwrap();
    photo(20, 10).save(i.join("b.png")).unwrap();
    photo(20, 10).save(i.join("c.jpeg")).unwrap();
    std::fs::write(i.join("notes.txt"), "ignored").unwrap();
    std::fs::write(i.join(".hidden.jpg"), "ignored").unwrap();
    mask(20, 10).save(m.join("a.png")).unwrap();
    mask(20, 10).save_with_format(m.join("b.PNG"), image::ImageFormat::Png).unwrap();
    mask(20, 10).save(m.join("c.jpg")).unwrap();
    let (pairs, problems) = scan_pairs(&i, &m).unwrap();
    assert!(problems.is_empty(), "{}", problems_report(&problems));
    let got: Vec<(&str, String, String)> = pairs
        .iter()
        .map(|p| {
            let f = |q: &Path| q.file_name().unwrap().to_string_lossy().into_owned();
            (p.stem.as_str(), f(&p.image), f(&p.mask))
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("a", "a.JPG".into(), "a.png".into()),
            ("b", "b.png".into(), "b.PNG".into()),
            ("c", "c.jpeg".into(), "c.jpg".into())
        ]
    );
}

/// Each kind of bad file gives exactly one problem line naming that file, with a fix; the good pair survives.
#[test]
fn every_bad_file_is_reported_with_its_name() {
    let (_t, i, m) = dirs();
    // good pair
    photo(32, 16).save(i.join("good.jpg")).unwrap();
    mask(32, 16).save(m.join("good.png")).unwrap();
    // photo without mask, mask without photo
    photo(32, 16).save(i.join("lonely.jpg")).unwrap();
    mask(32, 16).save(m.join("orphan.png")).unwrap();
    // mask of another size
    photo(32, 16).save(i.join("sized.png")).unwrap();
    mask(30, 16).save(m.join("sized.png")).unwrap();
    // truncated JPEG (the decoder alone would accept it, filling with grey)
    let mut jpg = Vec::new();
    photo(64, 64).write_to(&mut std::io::Cursor::new(&mut jpg), image::ImageFormat::Jpeg).unwrap();
    std::fs::write(i.join("cut.jpg"), &jpg[..jpg.len() / 2]).unwrap();
    mask(64, 64).save(m.join("cut.png")).unwrap();
    // JPEG with a destroyed header
    let mut bad = jpg.clone();
    bad[2..40].iter_mut().for_each(|b| *b = 0x11);
    std::fs::write(i.join("garbled.jpg"), &bad).unwrap();
    mask(64, 64).save(m.join("garbled.png")).unwrap();
    // text file named .jpg
    std::fs::write(i.join("text.jpg"), "this is not a photo").unwrap();
    mask(32, 16).save(m.join("text.png")).unwrap();
    // truncated mask PNG
    photo(32, 16).save(i.join("halfmask.jpg")).unwrap();
    let mut png = Vec::new();
    mask(32, 16).write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).unwrap();
    std::fs::write(m.join("halfmask.png"), &png[..png.len() / 2]).unwrap();
    // two photos with one stem: the first by name is kept, the other reported
    photo(32, 16).save(i.join("twin.jpg")).unwrap();
    photo(32, 16).save(i.join("twin.png")).unwrap();
    mask(32, 16).save(m.join("twin.png")).unwrap();

    let (pairs, problems) = scan_pairs(&i, &m).unwrap();
    assert_eq!(pairs.iter().map(|p| p.stem.as_str()).collect::<Vec<_>>(), vec!["good", "twin"]);
    assert_eq!(pairs[1].image, i.join("twin.jpg"));
    let report = problems_report(&problems);
    eprintln!("{report}");
    let expect: [(PathBuf, &str); 8] = [
        (i.join("lonely.jpg"), "no mask named lonely"),
        (m.join("orphan.png"), "no photo named orphan"),
        (m.join("sized.png"), "the mask is 30x16 but its photo"),
        (i.join("cut.jpg"), "truncated"),
        (i.join("garbled.jpg"), "cannot decode the photo"),
        (i.join("text.jpg"), "cannot decode the photo"),
        (m.join("halfmask.png"), "cannot decode the mask"),
        (i.join("twin.png"), "another photo has the same stem `twin`"),
    ];
    assert_eq!(problems.len(), expect.len(), "{report}");
    for (path, msg) in &expect {
        let p = problems
            .iter()
            .find(|p| &p.path == path)
            .unwrap_or_else(|| panic!("{} not reported:\n{report}", path.display()));
        assert!(p.message.contains(msg), "{}: expected `{msg}` in `{}`", path.display(), p.message);
        let line = p.to_string();
        assert!(line.starts_with(&path.display().to_string()) && line.contains("(fix: "), "{line}");
    }
    assert!(report.ends_with("8 files with problems"), "{report}");
    assert_eq!(report.lines().count(), 9);
    // --strict turns the same report into an error; no problems, no error.
    let e = format!("{:#}", data::strict_check(&problems).unwrap_err());
    assert!(e.contains(&report) && e.contains("without --strict"), "{e}");
    assert!(data::strict_check(&[]).is_ok());
}

/// The cases where training cannot start at all: errors that name the folder and say what to do.
#[test]
fn empty_missing_and_all_bad_folders_are_clear_errors() {
    let (_t, i, m) = dirs();
    let e = format!("{:#}", scan_pairs(&i, &m).unwrap_err());
    assert!(e.contains(&i.display().to_string()) && e.contains("no photos") && e.contains("fix:"), "{e}");

    photo(8, 8).save(i.join("x.png")).unwrap();
    let e = format!("{:#}", scan_pairs(&i, &m).unwrap_err());
    assert!(e.contains(&m.display().to_string()) && e.contains("no masks") && e.contains("fix:"), "{e}");

    mask(8, 4).save(m.join("x.png")).unwrap(); // wrong size: nothing usable
    let e = format!("{:#}", scan_pairs(&i, &m).unwrap_err());
    assert!(e.contains("no usable photo/mask pair") && e.contains("x.png") && e.contains("fix:"), "{e}");
    assert!(e.contains(&i.display().to_string()) && e.contains(&m.display().to_string()), "{e}");

    let missing = i.join("nope");
    let e = format!("{:#}", scan_pairs(&missing, &m).unwrap_err());
    assert!(e.contains("does not exist") && e.contains("nope") && e.contains("--images"), "{e}");
    let e = format!("{:#}", scan_pairs(&i, &i).unwrap_err());
    assert!(e.contains("both name"), "{e}");
}

/// Prediction input: one file as is, or a folder's photos sorted; an empty folder is an error.
#[test]
fn list_images_takes_a_file_or_a_folder() {
    let (_t, i, _m) = dirs();
    let e = format!("{:#}", list_images(&i).unwrap_err());
    assert!(e.contains("no photos"), "{e}");
    photo(8, 8).save(i.join("b.png")).unwrap();
    photo(8, 8).save(i.join("a.jpg")).unwrap();
    std::fs::write(i.join("c.txt"), "x").unwrap();
    assert_eq!(list_images(&i).unwrap(), vec![i.join("a.jpg"), i.join("b.png")]);
    assert_eq!(list_images(&i.join("b.png")).unwrap(), vec![i.join("b.png")]);
    assert!(list_images(&i.join("zzz.png")).is_err());
}

fn fake_pairs(n: usize) -> Vec<Pair> {
    (0..n)
        .map(|k| Pair {
            stem: format!("s{k:03}"),
            image: format!("i/s{k:03}.jpg").into(),
            mask: format!("m/s{k:03}.png").into(),
        })
        .collect()
}

/// The split is a function of (stems, fraction, seed) only, and partitions the set.
#[test]
fn split_is_seeded_reproducible_and_order_free() {
    let pairs = fake_pairs(40);
    let (tr, va) = split(pairs.clone(), 0.1, 7);
    assert_eq!((tr.len(), va.len()), (36, 4));
    let mut all: Vec<_> = tr.iter().chain(&va).cloned().collect();
    all.sort_by(|a, b| a.stem.cmp(&b.stem));
    assert_eq!(all, pairs, "train + val must be the whole set, once each");
    let mut reversed = pairs.clone();
    reversed.reverse();
    assert_eq!(split(reversed, 0.1, 7), (tr.clone(), va.clone()), "input order must not matter");
    let (_, va2) = split(pairs.clone(), 0.1, 8);
    assert_ne!(va, va2, "another seed should pick another validation set");
    assert_eq!(split(pairs.clone(), 0.0, 7).1.len(), 0);
    assert_eq!(split(fake_pairs(3), 0.01, 7).1.len(), 1, "a positive fraction keeps at least one");
    assert_eq!(split(fake_pairs(1), 0.5, 7).1.len(), 0);
}

/// The notebook's rule: 108 is sea, 109 is fluke.
#[test]
fn mask_threshold_is_above_108() {
    let (_t, _i, m) = dirs();
    let vals = [0u8, 50, 108, 109, 200, 255];
    let img = GrayImage::from_fn(6, 1, |x, _| Luma([vals[x as usize]]));
    img.save(m.join("t.png")).unwrap();
    let got: Vec<u8> = load_mask(&m.join("t.png")).unwrap().into_raw();
    assert_eq!(got, vec![0, 0, 0, 255, 255, 255]);
}

/// Output lengths at model size; the mask rule (area average, strictly above one half) on hand-made cases.
#[test]
fn resize_sizes_and_area_mask_rule() {
    let img = load_rgb(&synth_pairs()[0].image).unwrap();
    assert_eq!(prepare_image(&img, 384, 192).len(), 3 * 384 * 192);
    assert_eq!(prepare_image(&img, 40, 24).len(), 3 * 40 * 24);
    let m = load_mask(&synth_pairs()[0].mask).unwrap();
    let pm = prepare_mask(&m, 384, 192);
    assert_eq!(pm.len(), 384 * 192);
    assert!(pm.iter().all(|&v| v == 0.0 || v == 1.0));
    assert!(pm.contains(&1.0) && pm.contains(&0.0));

    // Area average then > 0.5: 4x2 -> 2x1, footprints of 4 pixels holding 3, 2 (exactly half: not fluke).
    let m = GrayImage::from_raw(4, 2, vec![255, 255, 255, 0, 255, 0, 0, 0]).unwrap();
    assert_eq!(prepare_mask(&m, 2, 1), vec![1.0, 0.0]);
    // Non-integer ratio 3 -> 2: footprints [0,1.5) and [1.5,3): (1 + 0.5) / 1.5 = 1 and 0.5 / 1.5.
    let m = GrayImage::from_raw(3, 1, vec![255, 255, 0]).unwrap();
    assert_eq!(prepare_mask(&m, 2, 1), vec![1.0, 0.0]);
    // Upsampling repeats.
    let m = GrayImage::from_raw(2, 1, vec![255, 0]).unwrap();
    assert_eq!(prepare_mask(&m, 4, 2), vec![1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
}

/// `Filter::Area` is the exact footprint average: brute force by replicating each source pixel dst times per
/// axis (so footprints fall on whole sub-pixels) and averaging blocks of src sub-pixels.
#[test]
fn area_filter_is_the_exact_footprint_average() {
    let (sw, sh, dw, dh) = (7usize, 5usize, 3usize, 2usize);
    let src: Vec<f32> = (0..sw * sh).map(|i| ((i * 7919) % 13) as f32 / 12.0).collect();
    let got = data::resample_plane(&src, sw as u32, sh as u32, dw as u32, dh as u32, data::Filter::Area);
    for oy in 0..dh {
        for ox in 0..dw {
            // Output (ox, oy) covers sub-pixels [ox*sw, (ox+1)*sw) x [oy*sh, (oy+1)*sh) of the (sw*dw) x (sh*dh)
            // replicated grid; sub-pixel (u, v) belongs to source pixel (u / dw, v / dh).
            let mut sum = 0.0f64;
            for v in oy * sh..(oy + 1) * sh {
                for u in ox * sw..(ox + 1) * sw {
                    sum += src[(v / dh) * sw + u / dw] as f64;
                }
            }
            let want = sum / (sw * sh) as f64;
            assert!((got[oy * dw + ox] as f64 - want).abs() < 1e-6, "({ox},{oy}): {} vs {want}", got[oy * dw + ox]);
        }
    }
}

/// Sanity of the photo filter: a flat colour stays flat at any scale, a ramp stays a ramp.
#[test]
fn catmull_rom_keeps_constants_and_ramps() {
    // A constant stays exactly constant (weights sum to 1) at any scale; a ramp stays monotonic and in range.
    let c = image::Rgb32FImage::from_pixel(123, 77, Rgb([0.25, 0.5, 0.75]));
    for (w, h) in [(40, 20), (300, 200), (123, 77)] {
        let v = resize_rgb(&c, w, h);
        for (ch, want) in [0.25f32, 0.5, 0.75].iter().enumerate() {
            let plane = &v[ch * (w * h) as usize..(ch + 1) * (w * h) as usize];
            assert!(plane.iter().all(|x| (x - want).abs() < 1e-5), "constant not preserved at {w}x{h}");
        }
    }
    let ramp = image::Rgb32FImage::from_fn(200, 3, |x, _| Rgb([x as f32 / 199.0; 3]));
    let v = resize_rgb(&ramp, 50, 1);
    assert!(v[..50].windows(2).all(|p| p[1] > p[0]));
    assert!((v[0] - 2.0 / 199.0).abs() < 0.01 && (v[49] - 197.0 / 199.0).abs() < 0.01, "{} {}", v[0], v[49]);
}

/// The model input contract: ImageNet normalisation per channel; grayscale -> three equal channels.
#[test]
fn normalisation_matches_imagenet_and_gray_becomes_three_equal_channels() {
    let (_t, i, _m) = dirs();
    RgbImage::from_pixel(9, 5, Rgb([255, 0, 51])).save(i.join("c.png")).unwrap();
    let v = prepare_image(&load_rgb(&i.join("c.png")).unwrap(), 6, 4);
    let want = [(1.0 - 0.485) / 0.229, (0.0 - 0.456) / 0.224, (0.2 - 0.406) / 0.225];
    for c in 0..3 {
        assert!(v[c * 24..(c + 1) * 24].iter().all(|x| (x - want[c]).abs() < 1e-5), "channel {c}: {}", v[c * 24]);
    }
    assert_eq!((IMAGENET_MEAN, IMAGENET_STD), ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]));

    GrayImage::from_fn(10, 6, |x, y| Luma([(x * 20 + y * 3) as u8])).save(i.join("g.png")).unwrap();
    let g = load_rgb(&i.join("g.png")).unwrap();
    assert!(g.pixels().all(|p| p.0[0] == p.0[1] && p.0[1] == p.0[2]));
    let r = resize_rgb(&g, 5, 3);
    assert_eq!(r[..15], r[15..30]);
    assert_eq!(r[..15], r[30..45]);
    // Round trip through the overlay helper.
    let back = data::to_rgb8(&prepare_image(&g, 10, 6), 10, 6);
    assert!(back.pixels().zip(g.pixels()).all(|(a, b)| (a.0[0] as f32 - b.0[0] * 255.0).abs() <= 1.0));
}

/// Distance (Chebyshev, capped) from each pixel to the nearest pixel of the other class.
fn near_edge(mask: &[f32], w: usize, h: usize, x: usize, y: usize, r: usize) -> bool {
    let v = mask[y * w + x];
    (y.saturating_sub(r)..(y + r + 1).min(h))
        .any(|yy| (x.saturating_sub(r)..(x + r + 1).min(w)).any(|xx| mask[yy * w + xx] != v))
}

/// Pixels within 1 px of the outline.
fn outline(mask: &[f32], w: usize, h: usize) -> usize {
    (0..h).flat_map(|y| (0..w).map(move |x| (x, y))).filter(|&(x, y)| near_edge(mask, w, h, x, y, 1)).count()
}

#[test]
fn augmentation_keeps_photo_and_mask_aligned() {
    // A photo that encodes its own mask exactly: after augmentation, thresholding the photo must give the mask
    // back everywhere except on a thin band along the edges (bilinear vs nearest, blur).
    let (w, h) = (160u32, 80u32);
    let (wu, hu) = (w as usize, h as usize);
    let base = prepare_mask(&load_mask(&synth_pairs()[3].mask).unwrap(), w, h);
    let always = Augment {
        blur_p: 1.0,
        shear_p: 1.0,
        flip_p: 0.5,
        rotate_p: 1.0,
        contrast_p: 1.0,
        brightness_p: 1.0,
        ..Augment::default()
    };
    let mut changed = 0;
    for (k, aug) in [Augment::default(), always].iter().enumerate() {
        for seed in 0..20u64 {
            let mut rgb: Vec<f32> = base.iter().chain(&base).chain(&base).copied().collect();
            let mut m = base.clone();
            aug.apply(&mut rgb, &mut m, w, h, &mut ChaCha8Rng::seed_from_u64(seed));
            assert!(m.iter().all(|&v| v == 0.0 || v == 1.0), "mask left {{0,1}}");
            assert!(rgb.iter().all(|&v| (0.0..=1.0).contains(&v)));
            if m != base {
                changed += 1;
            }
            let mut bad = 0;
            for y in 0..hu {
                for x in 0..wu {
                    let p = if rgb[y * wu + x] > 0.5 { 1.0 } else { 0.0 };
                    if p != m[y * wu + x] {
                        assert!(
                            near_edge(&m, wu, hu, x, y, 2),
                            "recipe {k} seed {seed}: mismatch at ({x},{y}) far from an edge"
                        );
                        bad += 1;
                    }
                }
            }
            // Bounded by the outline's length: at most a fifth of the pixels next to it (seen: up to 14%).
            assert!(5 * bad <= outline(&m, wu, hu), "recipe {k} seed {seed}: {bad} mismatched pixels");
        }
    }
    assert!(changed >= 25, "augmentation changed the mask in only {changed} of 40 draws");
    // The bound above catches a misalignment of even 1 pixel: shift the mask right by one.
    let shifted: Vec<f32> = (0..hu * wu).map(|i| if i % wu == 0 { base[i] } else { base[i - 1] }).collect();
    let bad = base.iter().zip(&shifted).filter(|(a, b)| a != b).count();
    assert!(5 * bad > outline(&shifted, wu, hu), "a 1-px shift gives only {bad} mismatches");
}

/// A flip is exact (no interpolation) and moves photo and mask together; `Augment::none` is the identity.
#[test]
fn flip_alone_mirrors_photo_and_mask_exactly() {
    let (w, h) = (7u32, 3u32);
    let flip = Augment { flip_p: 1.0, ..Augment::none() };
    let mut rgb: Vec<f32> = (0..63).map(|v| v as f32 / 63.0).collect();
    let mut m: Vec<f32> = (0..21).map(|v| (v % 3 == 0) as u8 as f32).collect();
    let (r0, m0) = (rgb.clone(), m.clone());
    flip.apply(&mut rgb, &mut m, w, h, &mut ChaCha8Rng::seed_from_u64(1));
    for y in 0..3 {
        for x in 0..7 {
            assert_eq!(m[y * 7 + x], m0[y * 7 + 6 - x]);
            for c in 0..3 {
                assert!((rgb[c * 21 + y * 7 + x] - r0[c * 21 + y * 7 + 6 - x]).abs() < 1e-6);
            }
        }
    }
    // Augment::none() changes nothing.
    let (mut r1, mut m1) = (r0.clone(), m0.clone());
    Augment::none().apply(&mut r1, &mut m1, w, h, &mut ChaCha8Rng::seed_from_u64(1));
    assert_eq!((r1, m1), (r0, m0));
}

/// The same stream gives the same augmentation; different streams give different ones.
#[test]
fn augmentation_is_seeded() {
    let (w, h) = (64u32, 32u32);
    let rgb0: Vec<f32> = (0..3 * 64 * 32).map(|i| ((i * 37) % 101) as f32 / 100.0).collect();
    let m0: Vec<f32> = (0..64 * 32).map(|i| ((i % 64) < 30) as u8 as f32).collect();
    let run = |seed| {
        let (mut r, mut m) = (rgb0.clone(), m0.clone());
        data::augment(&mut r, &mut m, w, h, &mut ChaCha8Rng::seed_from_u64(seed));
        (r, m)
    };
    assert_eq!(run(5), run(5));
    assert!((0..8).any(|s| run(s) != run(s + 100)));
}

fn collect(l: Loader) -> Vec<Batch> {
    l.collect()
}

/// Batch sizes, tensor lengths, pair order without shuffling, and equality with the single-sample functions.
#[test]
fn loader_shapes_counts_and_drop_last() {
    let pairs = synth_pairs();
    let (w, h) = (48u32, 24u32);
    let b = collect(Loader::new(pairs.clone(), w, h, 4, 1, 0, false, false, false));
    assert_eq!(b.iter().map(|b| b.n).collect::<Vec<_>>(), vec![4, 4, 2]);
    assert_eq!(len_batches(10, 4, false), 3);
    for x in &b {
        assert_eq!(x.images.len(), x.n * 3 * 48 * 24);
        assert_eq!(x.masks.len(), x.n * 48 * 24);
        assert_eq!(x.stems.len(), x.n);
        assert!(x.masks.iter().all(|&v| v == 0.0 || v == 1.0));
        assert!(x.skipped.is_empty());
    }
    // No shuffle: pair order.
    let stems: Vec<String> = b.iter().flat_map(|x| x.stems.clone()).collect();
    assert_eq!(stems, pairs.iter().map(|p| p.stem.clone()).collect::<Vec<_>>());
    // The loader's tensors are exactly prepare_image/prepare_mask when not augmenting.
    let img = load_rgb(&pairs[5].image).unwrap();
    assert_eq!(b[1].images[3 * 48 * 24..2 * 3 * 48 * 24], prepare_image(&img, w, h)[..]);
    assert_eq!(b[1].masks[48 * 24..2 * 48 * 24], prepare_mask(&load_mask(&pairs[5].mask).unwrap(), w, h)[..]);

    let l = Loader::new(pairs.clone(), w, h, 4, 1, 0, true, true, true);
    assert_eq!(l.len_batches(), 2);
    assert_eq!(collect(l).iter().map(|b| b.n).collect::<Vec<_>>(), vec![4, 4]);
}

/// Reproducibility: (seed, epoch) fixes the batches; changing either changes them; an epoch covers every pair once.
#[test]
fn loader_same_seed_same_batches_other_seed_or_epoch_differs() {
    let pairs = synth_pairs();
    let mk = |seed, epoch| collect(Loader::new(pairs.clone(), 48, 24, 3, seed, epoch, true, true, false));
    let a = mk(3, 0);
    assert_eq!(a, mk(3, 0));
    assert_ne!(a, mk(4, 0));
    let e1 = mk(3, 1);
    assert_ne!(a, e1);
    let stems = |b: &[Batch]| b.iter().flat_map(|x| x.stems.clone()).collect::<Vec<_>>();
    let mut s = stems(&a);
    assert_ne!(s, stems(&e1), "each epoch reshuffles");
    s.sort();
    assert_eq!(s, pairs.iter().map(|p| p.stem.clone()).collect::<Vec<_>>(), "an epoch visits every pair once");
}

/// Thread count, queue depth and caching change only speed, never a single value of any batch.
#[test]
fn loader_is_deterministic_across_threads_prefetch_and_cache() {
    let pairs = synth_pairs();
    let mk = || Loader::new(pairs.clone(), 40, 24, 3, 9, 2, true, true, false);
    let reference = collect(mk().with_threads(1).with_prefetch(1));
    let cache = SampleCache::new(1 << 30);
    for threads in [2, 4, 7] {
        assert_eq!(collect(mk().with_threads(threads).with_prefetch(3)), reference, "{threads} threads");
        assert_eq!(
            collect(mk().with_threads(threads).with_cache(cache.clone())),
            reference,
            "cached, {threads} threads"
        );
    }
    assert_eq!(cache.len(), 10);
    assert_eq!(cache.bytes(), 10 * 4 * 40 * 24 * 4);
    // A full cache stops adding but still gives the same batches.
    let small = SampleCache::new(2 * 4 * 40 * 24 * 4);
    assert_eq!(collect(mk().with_cache(small.clone())), reference);
    assert_eq!(small.len(), 2);
    // Dropping a loader mid-epoch does not hang.
    let mut l = mk().with_prefetch(1);
    assert!(l.next().is_some());
    drop(l);
}

/// A file damaged after the scan costs one sample and a warning, not the run.
#[test]
fn loader_skips_a_sample_that_breaks_mid_run() {
    let (_t, i, m) = dirs();
    for k in 0..5 {
        photo(40, 20).save(i.join(format!("p{k}.png"))).unwrap();
        mask(40, 20).save(m.join(format!("p{k}.png"))).unwrap();
    }
    let (pairs, problems) = scan_pairs(&i, &m).unwrap();
    assert!(problems.is_empty());
    std::fs::write(i.join("p2.png"), b"gone bad").unwrap();
    let b = collect(Loader::new(pairs, 20, 10, 2, 0, 0, true, false, false));
    assert_eq!(b.iter().map(|b| b.n).sum::<usize>(), 4);
    let skipped: Vec<String> = b.iter().flat_map(|x| x.skipped.clone()).collect();
    assert_eq!(skipped.len(), 1);
    assert!(skipped[0].starts_with("p2: ") && skipped[0].contains("p2.png"), "{skipped:?}");
    assert!(!b.iter().any(|x| x.stems.contains(&"p2".to_string())));
}

/// The synthetic set: byte-identical for a seed, prefix-stable in count, masks exact and aligned with the photos.
#[test]
fn synth_is_deterministic_and_masks_match_photos() {
    let d = synth_set();
    let files = |dir: &Path| {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
        v.sort();
        v
    };
    // Same seed: the first 3 of the 10 written are byte-identical to a fresh count-3 run.
    let t = tempfile::tempdir().unwrap();
    synth::write_dataset(t.path(), 3, 11).unwrap();
    for sub in ["images", "masks"] {
        let (a, b) = (files(&d.join(sub)), files(&t.path().join(sub)));
        assert_eq!(b.len(), 3);
        for f in &b {
            let other = d.join(sub).join(f.file_name().unwrap());
            assert!(a.contains(&other));
            assert_eq!(std::fs::read(f).unwrap(), std::fs::read(&other).unwrap(), "{}", f.display());
        }
    }
    // Another seed: other pictures.
    assert_ne!(synth::render(0, 12).mask.into_raw(), synth::render(0, 11).mask.into_raw());

    let (mut gray, mut colour, mut jpg) = (0, 0, 0);
    for p in synth_pairs() {
        let photo = image::open(&p.image).unwrap();
        let mask = image::open(&p.mask).unwrap().into_luma8();
        assert_eq!(photo.dimensions(), mask.dimensions(), "{}", p.stem);
        assert!((300..=700).contains(&photo.width()), "{} is {} wide", p.stem, photo.width());
        assert!(mask.pixels().all(|v| v.0[0] == 0 || v.0[0] == 255));
        let fluke = mask.pixels().filter(|v| v.0[0] == 255).count() as f64 / mask.len() as f64;
        assert!((0.05..0.8).contains(&fluke), "{}: fluke covers {fluke}", p.stem);
        match photo {
            image::DynamicImage::ImageLuma8(_) => gray += 1,
            _ => colour += 1,
        }
        jpg += p.image.extension().is_some_and(|e| e == "jpg") as usize;
        // The mask's outline follows edges in the photo: the photo's gradient is steeper on the outline than
        // elsewhere (a mask shifted or scaled against its photo fails this).
        let l = photo.to_luma8();
        let (w, h) = l.dimensions();
        let grad = |x: u32, y: u32| {
            let g = |xx: u32, yy: u32| l.get_pixel(xx, yy).0[0] as f64;
            (g(x + 1, y) - g(x - 1, y)).abs() + (g(x, y + 1) - g(x, y - 1)).abs()
        };
        let (mut on, mut n_on, mut off, mut n_off) = (0.0, 0, 0.0, 0);
        for y in 1..h - 1 {
            for x in 1..w - 1 {
                let v = mask.get_pixel(x, y).0[0];
                let edge = [(x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1)]
                    .iter()
                    .any(|&(a, b)| mask.get_pixel(a, b).0[0] != v);
                if edge {
                    on += grad(x, y);
                    n_on += 1;
                } else {
                    off += grad(x, y);
                    n_off += 1;
                }
            }
        }
        let (on, off) = (on / n_on as f64, off / n_off as f64);
        eprintln!("{}: outline gradient {on:.1} vs elsewhere {off:.1}", p.stem);
        assert!(on > 2.0 * off, "{}: outline gradient {on:.1} vs elsewhere {off:.1}", p.stem);
    }
    assert!(gray > 0 && colour > 0 && jpg > 0 && jpg < 10, "gray {gray} colour {colour} jpg {jpg}");
}

/// The real photos (when present): all 120 pairs usable, and the 10% split sizes.
#[test]
fn real_photos_scan_clean() {
    let Some(dir) = fluke::testing::real_data_dir() else {
        eprintln!("SKIPPED: real data absent; nothing checked");
        return;
    };
    let (pairs, problems) = scan_pairs(&dir.join("images"), &dir.join("masks")).unwrap();
    assert!(problems.is_empty(), "{}", problems_report(&problems));
    assert_eq!(pairs.len(), 120);
    let (tr, va) = split(pairs, 0.1, 0);
    assert_eq!((tr.len(), va.len()), (108, 12));
    // One batch at the model size through the loader, augmented: finite values, both classes in the masks.
    let b = Loader::new(va, 384, 192, 4, 0, 0, true, false, false).next().unwrap();
    assert_eq!((b.n, b.images.len()), (4, 4 * 3 * 384 * 192));
    assert!(b.images.iter().all(|v| v.is_finite()));
    let fluke = b.masks.iter().sum::<f32>() / b.masks.len() as f32;
    assert!((0.05..0.95).contains(&fluke), "fluke fraction {fluke}");
}
