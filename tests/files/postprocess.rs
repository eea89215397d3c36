//! CPU post-processing: labelling, boxes, crops, overlays, resize, TTA helpers, .npy, and the training plot.
//! Hand-made masks whose answers can be read off the picture; everything here runs in well under a second.

use std::path::{Path, PathBuf};

use fluke::plot::{plot_curves, EpochRow};
use fluke::postprocess::*;
use image::{Rgb, RgbImage};

/// Parse a picture: '#' = fluke (1), '.' = background (0). Returns (mask, w, h).
fn mask_of(rows: &[&str]) -> (Vec<u8>, u32, u32) {
    let h = rows.len() as u32;
    let w = rows[0].len() as u32;
    let m = rows.iter().flat_map(|r| r.bytes().map(|b| u8::from(b == b'#'))).collect();
    (m, w, h)
}

/// A fresh folder under cargo's per-target scratch space.
fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("postprocess-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A photo whose every pixel is distinct, so any misplaced pixel shows.
fn gradient_photo(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| Rgb([(x * 7 % 256) as u8, (y * 13 % 256) as u8, ((x + y) * 3 % 256) as u8]))
}

#[test]
fn components_diagonals_join_and_4_separated_specks_count() {
    // A: a diagonal staircase (8-connected only), B: a speck 2 px away from A, C: a U shape whose arms meet
    // only at the bottom (tests label merging in pass 1), D: a single pixel in the last corner.
    let (m, w, h) = mask_of(&["#.........", ".#...#.#..", "..#..#.#..", "..#..###..", "..........", "#........#"]);
    let (labels, comps) = connected_components(&m, w, h);
    assert_eq!(comps.len(), 4, "components: {comps:?}");
    // Labels in raster order of first pixel: A (0,0) = 1, U (5,1) = 2, speck (0,5) = 3, corner (9,5) = 4.
    let at = |x: u32, y: u32| labels[(y * w + x) as usize];
    assert_eq!([at(0, 0), at(1, 1), at(2, 2), at(2, 3)], [1; 4], "diagonal staircase is one component");
    assert_eq!([at(5, 1), at(7, 1), at(6, 3), at(7, 3)], [2; 4], "U shape merged into one label");
    assert_eq!(at(0, 5), 3);
    assert_eq!(at(9, 5), 4);
    assert_eq!(at(1, 0), 0, "background stays 0");
    // Every fluke pixel labelled, no background pixel labelled.
    for (i, (&mv, &l)) in m.iter().zip(&labels).enumerate() {
        assert_eq!(mv != 0, l != 0, "pixel {i}");
    }
    let want = [
        Component { label: 1, area: 4, bbox: BBox { x0: 0, y0: 0, x1: 3, y1: 4 } },
        Component { label: 2, area: 7, bbox: BBox { x0: 5, y0: 1, x1: 8, y1: 4 } },
        Component { label: 3, area: 1, bbox: BBox { x0: 0, y0: 5, x1: 1, y1: 6 } },
        Component { label: 4, area: 1, bbox: BBox { x0: 9, y0: 5, x1: 10, y1: 6 } },
    ];
    assert_eq!(comps, want);
}

#[test]
fn components_anti_diagonal_and_late_merge() {
    // NE neighbour joins; two arms labelled separately in row 0 that merge in row 2 through a '/' diagonal.
    let (m, w, h) = mask_of(&[
        "#...#", //
        ".#.#.", //
        "..#..", //
        ".#...", //
    ]);
    let (_, comps) = connected_components(&m, w, h);
    assert_eq!(comps.len(), 1, "{comps:?}");
    assert_eq!(comps[0].area, 6);
    assert_eq!(comps[0].bbox, BBox { x0: 0, y0: 0, x1: 5, y1: 4 });
}

#[test]
fn components_empty_full_and_checkerboard() {
    let (labels, comps) = connected_components(&[0; 12], 4, 3);
    assert!(comps.is_empty() && labels.iter().all(|&l| l == 0));
    let (_, comps) = connected_components(&[1; 12], 4, 3);
    assert_eq!(comps, vec![Component { label: 1, area: 12, bbox: BBox { x0: 0, y0: 0, x1: 4, y1: 3 } }]);
    // A checkerboard is one component under 8-connectivity (it would be 8 under 4-connectivity).
    let cb: Vec<u8> = (0..16).map(|i| u8::from((i % 4 + i / 4) % 2 == 0)).collect();
    let (_, comps) = connected_components(&cb, 4, 4);
    assert_eq!(comps.len(), 1);
    assert_eq!(comps[0].area, 8);
}

#[test]
fn components_long_snake_no_recursion_blowup() {
    // A serpentine of 200 x 200 with one path: deep for any recursive flood fill; must be one component.
    let (w, h) = (200u32, 200u32);
    let mut m = vec![0u8; (w * h) as usize];
    for y in (0..h).step_by(2) {
        for x in 0..w {
            m[(y * w + x) as usize] = 1;
        }
        if y + 1 < h {
            let x = if (y / 2) % 2 == 0 { w - 1 } else { 0 };
            m[((y + 1) * w + x) as usize] = 1;
        }
    }
    let (_, comps) = connected_components(&m, w, h);
    assert_eq!(comps.len(), 1);
    assert_eq!(comps[0].area, m.iter().filter(|&&v| v != 0).count());
}

#[test]
fn keep_largest_keeps_only_the_biggest() {
    let (mut m, w, h) = mask_of(&[
        "##.....#", //
        "##....##", //
        "......##", //
        "#.......", //
    ]);
    keep_largest(&mut m, w, h);
    let (want, _, _) = mask_of(&[
        ".......#", //
        "......##", //
        "......##", //
        "........", //
    ]);
    assert_eq!(m, want);
    // Ties go to the first in raster order; output is 0/1.
    let (mut m, w, h) = mask_of(&["##..##"]);
    keep_largest(&mut m, w, h);
    assert_eq!(m, vec![1, 1, 0, 0, 0, 0]);
    let mut empty = vec![0u8; 6];
    keep_largest(&mut empty, 3, 2);
    assert_eq!(empty, vec![0; 6]);
    // Nonzero values other than 1 count as fluke and come back as 1.
    let mut m = vec![255u8, 0, 255, 255];
    keep_largest(&mut m, 4, 1);
    assert_eq!(m, vec![0, 0, 1, 1]);
}

#[test]
fn union_bbox_spans_all_components() {
    let (m, w, h) = mask_of(&[
        "........", //
        "..#.....", //
        "........", //
        ".....#..", //
        "....##..", //
        "........", //
    ]);
    assert_eq!(union_bbox(&m, w, h), Some(BBox { x0: 2, y0: 1, x1: 6, y1: 5 }));
    let (_, comps) = connected_components(&m, w, h);
    let u = comps.iter().map(|c| c.bbox).reduce(|a, b| a.union(&b)).unwrap();
    assert_eq!(union_bbox(&m, w, h), Some(u));
    assert_eq!(union_bbox(&[0; 48], 8, 6), None);
    let b = BBox { x0: 2, y0: 1, x1: 6, y1: 5 };
    assert_eq!((b.width(), b.height()), (4, 4));
    assert_eq!(b.expand(3, 8, 6), BBox { x0: 0, y0: 0, x1: 8, y1: 6 });
}

#[test]
fn crop_on_white_is_the_bbox_with_white_outside_the_mask() {
    let (m, w, h) = mask_of(&[
        "..........", //
        "...##.....", //
        "...#..#...", //
        "......##..", //
        "..........", //
    ]);
    let photo = gradient_photo(w, h);
    let b = union_bbox(&m, w, h).unwrap();
    assert_eq!(b, BBox { x0: 3, y0: 1, x1: 8, y1: 4 });
    let crop = crop_on_white(&photo, &m, b);
    assert_eq!(crop.dimensions(), (5, 3));
    for (x, y, p) in crop.enumerate_pixels() {
        let (px, py) = (x + b.x0, y + b.y0);
        if m[(py * w + px) as usize] != 0 {
            assert_eq!(p, photo.get_pixel(px, py), "fluke pixel ({px}, {py}) keeps the photo's colour");
        } else {
            assert_eq!(*p, Rgb([255, 255, 255]), "background pixel ({px}, {py}) is white");
        }
    }
}

#[test]
fn rgba_keeps_colours_and_uses_mask_as_alpha() {
    let (m, w, h) = mask_of(&["#..#", ".##.", "...."]);
    let photo = gradient_photo(w, h);
    let out = rgba(&photo, &m);
    assert_eq!(out.dimensions(), (w, h));
    for (x, y, p) in out.enumerate_pixels() {
        let q = photo.get_pixel(x, y);
        assert_eq!(&p.0[..3], &q.0[..], "colour at ({x}, {y})");
        assert_eq!(p[3], if m[(y * w + x) as usize] != 0 { 255 } else { 0 }, "alpha at ({x}, {y})");
    }
}

#[test]
fn overlay_tints_mask_draws_outline_and_leaves_background() {
    // A 6 x 6 block inside a 12 x 10 photo: its ring is the outline, its 4 x 4 core is tinted.
    let (w, h) = (12u32, 10u32);
    let mut m = vec![0u8; (w * h) as usize];
    for y in 2..8 {
        for x in 3..9 {
            m[(y * w + x) as usize] = 1;
        }
    }
    let photo = gradient_photo(w, h);
    let out = overlay(&photo, &m);
    let line = outline(&m, w, h, 1);
    for (x, y, p) in out.enumerate_pixels() {
        let i = (y * w + x) as usize;
        let inside = (3..9).contains(&x) && (2..8).contains(&y);
        let ring = inside && (x == 3 || x == 8 || y == 2 || y == 7);
        assert_eq!(line[i] != 0, ring, "outline at ({x}, {y})");
        let q = photo.get_pixel(x, y);
        if ring {
            assert_eq!(p.0, [255, 40, 40], "outline colour at ({x}, {y})");
        } else if inside {
            // 45% cyan: red fades toward 0, green and blue toward 255.
            let want = |c: u8, t: f32| (c as f32 * 0.55 + t * 0.45).round() as u8;
            assert_eq!(p.0, [want(q[0], 0.0), want(q[1], 255.0), want(q[2], 255.0)], "tint at ({x}, {y})");
        } else {
            assert_eq!(p, q, "background untouched at ({x}, {y})");
        }
    }
}

#[test]
fn resize_probs_identity_corners_and_midpoints() {
    let (w, h) = (5u32, 3u32);
    let p: Vec<f32> = (0..15).map(|i| i as f32 * 0.37 - 1.0).collect();
    assert_eq!(resize_probs(&p, w, h, w, h), p, "same size is the identity");

    // Upsampling by 2 with half-pixel centres: corners copy the source corners; interior pixel (1, 1) of a
    // 2 x 2 -> 4 x 4 resize samples source (0.25, 0.25).
    let src = [0.0f32, 1.0, 2.0, 3.0]; // [[0, 1], [2, 3]]
    let up = resize_probs(&src, 2, 2, 4, 4);
    assert_eq!([up[0], up[3], up[12], up[15]], [0.0, 1.0, 2.0, 3.0]);
    let bil = |x: f32, y: f32| (1.0 - y) * ((1.0 - x) * 0.0 + x * 1.0) + y * ((1.0 - x) * 2.0 + x * 3.0);
    assert!((up[5] - bil(0.25, 0.25)).abs() < 1e-6, "up[1,1] = {}", up[5]);
    assert!((up[6] - bil(0.75, 0.25)).abs() < 1e-6, "up[1,2] = {}", up[6]);
    // Row 0 of the upsampled picture: 0, 0.25, 0.75, 1 (clamped at the edges).
    assert_eq!(&up[..4], &[0.0, 0.25, 0.75, 1.0]);

    // A linear ramp in x stays linear in the interior at any scale; a constant stays constant.
    let ramp: Vec<f32> = (0..4 * 8).map(|i| (i % 8) as f32).collect();
    let r = resize_probs(&ramp, 8, 4, 19, 7);
    for y in 0..7 {
        for x in 0..19 {
            let sx = ((x as f32 + 0.5) * 8.0 / 19.0 - 0.5).clamp(0.0, 7.0);
            assert!((r[y * 19 + x] - sx).abs() < 1e-5, "ramp at ({x}, {y}): {} vs {sx}", r[y * 19 + x]);
        }
    }
    let c = resize_probs(&[0.7; 6], 3, 2, 1000, 700);
    assert_eq!(c.len(), 700_000);
    assert!(c.iter().all(|&v| (v - 0.7).abs() < 1e-6));
}

#[test]
fn threshold_is_strict_and_probs_to_u8_rounds() {
    assert_eq!(threshold(&[0.2, 0.5, 0.5001, 1.0, f32::NAN], 0.5), vec![0, 0, 1, 1, 0]);
    assert_eq!(probs_to_u8(&[-1.0, 0.0, 0.5, 1.0, 2.0]), vec![0, 0, 128, 255, 255]);
}

#[test]
fn hflip_twice_is_identity_and_flips_columns() {
    let (c, h, w) = (3, 4, 5);
    let x: Vec<f32> = (0..c * h * w).map(|i| (i as f32).sin()).collect();
    let f = hflip_chw(&x, c, h, w);
    assert_ne!(f, x);
    assert_eq!(hflip_chw(&f, c, h, w), x);
    for ci in 0..c {
        for i in 0..h {
            for j in 0..w {
                assert_eq!(f[(ci * h + i) * w + j], x[(ci * h + i) * w + (w - 1 - j)]);
            }
        }
    }
    assert_eq!(hflip_map(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2, 3), vec![3.0, 2.0, 1.0, 6.0, 5.0, 4.0]);
}

#[test]
fn blur_of_constant_is_constant_and_matches_naive() {
    let (c, h, w) = (2, 5, 7);
    let k = blur3x3_chw(&vec![0.42; c * h * w], c, h, w);
    assert!(k.iter().all(|&v| (v - 0.42).abs() < 1e-6));
    // Against the definition: mean of the 9 edge-clamped neighbours, per channel.
    let x: Vec<f32> = (0..c * h * w).map(|i| ((i * 37) % 11) as f32).collect();
    let y = blur3x3_chw(&x, c, h, w);
    for ci in 0..c {
        for i in 0..h as i64 {
            for j in 0..w as i64 {
                let mut s = 0.0f64;
                for di in -1..=1 {
                    for dj in -1..=1 {
                        let (ii, jj) = ((i + di).clamp(0, h as i64 - 1), (j + dj).clamp(0, w as i64 - 1));
                        s += x[(ci * h + ii as usize) * w + jj as usize] as f64;
                    }
                }
                let got = y[(ci * h + i as usize) * w + j as usize] as f64;
                assert!((got - s / 9.0).abs() < 1e-5, "({ci}, {i}, {j}): {got} vs {}", s / 9.0);
            }
        }
    }
    // 1-pixel-wide and 1-pixel-tall images: the clamp must not read out of bounds.
    assert_eq!(blur3x3_chw(&[3.0], 1, 1, 1), vec![3.0]);
    let col = blur3x3_chw(&[0.0, 3.0, 6.0], 1, 3, 1);
    assert!((col[0] - 1.0).abs() < 1e-6 && (col[1] - 3.0).abs() < 1e-6 && (col[2] - 5.0).abs() < 1e-6);
}

/// Minimal .npy reader for the test: checks magic, version, 64-byte alignment and the header dict, returns
/// (shape, values).
fn read_npy(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..8], b"\x93NUMPY\x01\x00", "magic and version 1.0");
    let hl = u16::from_le_bytes([b[8], b[9]]) as usize;
    assert_eq!((10 + hl) % 64, 0, "data starts 64-byte aligned");
    let header = std::str::from_utf8(&b[10..10 + hl]).unwrap();
    assert!(header.ends_with('\n'));
    assert!(header.contains("'descr': '<f4'"), "{header}");
    assert!(header.contains("'fortran_order': False"), "{header}");
    let s = &header[header.find("'shape': (").unwrap() + 10..];
    let s = &s[..s.find(')').unwrap()];
    let shape: Vec<usize> = s.split(',').map(str::trim).filter(|t| !t.is_empty()).map(|t| t.parse().unwrap()).collect();
    let vals: Vec<f32> = b[10 + hl..].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    assert_eq!(b[10 + hl..].len() % 4, 0);
    (shape, vals)
}

#[test]
fn npy_round_trips_through_its_header() {
    let dir = scratch("npy");
    let data: Vec<f32> = (0..6 * 7).map(|i| i as f32 / 7.0 - 2.5).collect();
    let p = dir.join("probs.npy");
    write_npy_f32(&p, &data, &[6, 7]).unwrap();
    let (shape, vals) = read_npy(&p);
    assert_eq!(shape, vec![6, 7]);
    assert_eq!(vals, data);
    // 1-D shape uses Python's "(n,)" tuple.
    write_npy_f32(&p, &[1.5, -2.0, 3.25], &[3]).unwrap();
    assert!(String::from_utf8_lossy(&npy_header(&[3])).contains("'shape': (3,)"));
    assert_eq!(read_npy(&p), (vec![3], vec![1.5, -2.0, 3.25]));
    // A shape that does not match the data is an error naming the file, and leaves the old file alone.
    let e = write_npy_f32(&p, &data, &[5, 5]).unwrap_err().to_string();
    assert!(e.contains("probs.npy"), "{e}");
    assert_eq!(read_npy(&p).1, vec![1.5, -2.0, 3.25]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn contact_sheet_letterboxes_into_a_grid() {
    // 7 images in 3 columns -> 3 rows; a wide red one, a tall green one, and 5 small blue squares.
    let mut imgs =
        vec![RgbImage::from_pixel(200, 50, Rgb([255, 0, 0])), RgbImage::from_pixel(30, 120, Rgb([0, 255, 0]))];
    imgs.extend((0..5).map(|_| RgbImage::from_pixel(10, 10, Rgb([0, 0, 255]))));
    let (cw, ch) = (80u32, 60u32);
    let s = contact_sheet(&imgs, 3, cw, ch);
    assert_eq!(s.dimensions(), (3 * (cw + 1) + 1, 3 * (ch + 1) + 1));
    let grey = Rgb([170, 170, 170]);
    assert_eq!(*s.get_pixel(0, 0), grey, "border");
    assert_eq!(*s.get_pixel(cw + 1, 10), grey, "vertical grid line between cells");
    // Cell 0: 200 x 50 scaled by 0.4 -> 80 x 20, centred vertically: rows 21..41 red, above and below white.
    assert_eq!(*s.get_pixel(1 + 40, 1 + 30), Rgb([255, 0, 0]));
    assert_eq!(*s.get_pixel(1 + 40, 1 + 5), Rgb([255, 255, 255]), "letterbox band is white");
    // Cell 1: 30 x 120 scaled by 0.5 -> 15 x 60, centred horizontally.
    let cx = 1 + (cw + 1);
    assert_eq!(*s.get_pixel(cx + 40, 1 + 30), Rgb([0, 255, 0]));
    assert_eq!(*s.get_pixel(cx + 5, 1 + 30), Rgb([255, 255, 255]));
    // Cell 6 (row 2, col 0): a blue square enlarged to 60 x 60.
    assert_eq!(*s.get_pixel(1 + 40, 1 + 2 * (ch + 1) + 30), Rgb([0, 0, 255]));
    // Cells 7 and 8 are empty: grey (no white cell drawn).
    assert_eq!(*s.get_pixel(1 + 2 * (cw + 1) + 40, 1 + 2 * (ch + 1) + 30), grey);
}

#[test]
fn overlay_rows_lays_out_photo_truth_and_prediction() {
    let (w, h) = (4u32, 2u32);
    let photo = gradient_photo(w, h);
    let truth = vec![1, 1, 0, 0, 1, 1, 0, 0];
    let pred = vec![1, 0, 1, 0, 1, 0, 1, 0];
    let img = overlay_rows(&[(photo.clone(), truth.clone(), pred.clone()), (photo.clone(), pred.clone(), truth)]);
    let g = 2;
    assert_eq!(img.dimensions(), (3 * w + 4 * g, 2 * (h + g) + g));
    assert_eq!(img.get_pixel(g + 1, g), photo.get_pixel(1, 0), "photo panel");
    assert_eq!(img.get_pixel(2 * g + w, g).0, [255, 255, 255], "true mask panel: fluke white");
    assert_eq!(img.get_pixel(2 * g + w + 2, g).0, [0, 0, 0], "true mask panel: background black");
    let p = |x: u32| img.get_pixel(3 * g + 2 * w + x, g).0;
    assert_eq!([p(0), p(1), p(2), p(3)], [[255, 255, 255], [40, 140, 255], [255, 60, 60], [0, 0, 0]], "TP, FN, FP, TN");
}

#[test]
fn plot_curves_writes_a_decodable_png() {
    let dir = scratch("plot");
    let rows: Vec<EpochRow> = (1..=30)
        .map(|e| {
            let t = e as f64;
            EpochRow {
                epoch: e,
                lr: if e < 20 { 1e-3 } else { 1e-4 },
                train_loss: 1.2 * (-t / 6.0).exp() + 0.12,
                train_dice: 0.93 - 0.6 * (-t / 5.0).exp(),
                val_loss: 1.1 * (-t / 7.0).exp() + 0.18 + 0.02 * (t / 2.0).sin(),
                val_dice: 0.89 - 0.55 * (-t / 6.0).exp() + 0.01 * (t / 3.0).sin(),
                seconds: 60.0,
                images_per_s: 12.0,
            }
        })
        .collect();
    let p = dir.join("curves.png");
    plot_curves(&rows, &p).unwrap();
    let img = image::open(&p).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (1280, 480));
    // Both series colours appear in both halves, and some dark pixels (text, axes) exist.
    let has = |x0: u32, x1: u32, c: [u8; 3]| (x0..x1).any(|x| (0..480).any(|y| img.get_pixel(x, y).0 == c));
    for (x0, x1) in [(0, 640), (640, 1280)] {
        assert!(has(x0, x1, [31, 119, 180]), "train colour in panel {x0}..{x1}");
        assert!(has(x0, x1, [255, 127, 14]), "val colour in panel {x0}..{x1}");
    }
    let dark = img.pixels().filter(|p| p.0.iter().all(|&c| c < 80)).count();
    assert!(dark > 2000, "text and axes drawn ({dark} dark pixels)");
    // One epoch, and NaNs, still plot; no epochs is an error naming the file.
    let one = vec![EpochRow { epoch: 1, train_loss: f64::NAN, val_dice: 0.5, ..Default::default() }];
    let p1 = dir.join("curves_one_epoch.png");
    plot_curves(&one, &p1).unwrap();
    image::open(&p1).unwrap();
    let e = plot_curves(&[], &p).unwrap_err().to_string();
    assert!(e.contains("curves.png"), "{e}");
    if std::env::var_os("FLUKE_KEEP_TEST_IMAGES").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The path photos take in `predict`, on real masks: shrink the mask to the model size as probabilities, enlarge
/// back, threshold, keep the largest component; the result must still match the hand-made mask closely.
#[test]
fn real_masks_survive_the_model_size_round_trip() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/flukes/masks");
    let Ok(rd) = std::fs::read_dir(&dir) else {
        eprintln!("SKIPPED real_masks_survive_the_model_size_round_trip: {} is absent", dir.display());
        return;
    };
    let mut names: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    names.sort();
    for p in names.iter().take(4) {
        let m = image::open(p).unwrap().to_luma8();
        let (w, h) = m.dimensions();
        let probs: Vec<f32> = m.pixels().map(|p| f32::from(u8::from(p[0] > 108))).collect();
        let truth = threshold(&probs, 0.5);
        let small = resize_probs(&probs, w, h, 384, 192);
        let back = resize_probs(&small, 384, 192, w, h);
        let mut mask = threshold(&back, 0.5);
        keep_largest(&mut mask, w, h);
        let inter = mask.iter().zip(&truth).filter(|(a, b)| **a != 0 && **b != 0).count() as f64;
        let uni = mask.iter().zip(&truth).filter(|(a, b)| **a != 0 || **b != 0).count() as f64;
        assert!(inter / uni > 0.9, "{}: IoU {}", p.display(), inter / uni);
    }
}

/// Not a check: writes an overlay, a crop, an RGBA cut-out and a 6 x 6 contact sheet of real photos to
/// target/tmp/postprocess-visual-* for a person to look at. `cargo test --test postprocess -- --ignored`.
#[test]
#[ignore]
fn visual_samples_from_real_photos() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/flukes");
    let mut names: Vec<PathBuf> =
        std::fs::read_dir(root.join("images")).unwrap().filter_map(|e| e.ok().map(|e| e.path())).collect();
    names.sort();
    let out = scratch("visual");
    let mut crops = Vec::new();
    let mut val_rows = Vec::new();
    for (k, p) in names.iter().take(36).enumerate() {
        let photo = image::open(p).unwrap().to_rgb8();
        let stem = p.file_stem().unwrap().to_string_lossy().to_string();
        let m = image::open(root.join("masks").join(format!("{stem}.png"))).unwrap().to_luma8();
        let (w, h) = m.dimensions();
        let mut mask: Vec<u8> = m.pixels().map(|p| u8::from(p[0] > 108)).collect();
        keep_largest(&mut mask, w, h);
        let b = union_bbox(&mask, w, h).unwrap();
        crops.push(crop_on_white(&photo, &mask, b));
        if k < 3 {
            // Validation-style row at the model size; the "prediction" is the truth shifted 8 px right.
            let small = image::imageops::resize(&photo, 384, 192, image::imageops::FilterType::Triangle);
            let probs: Vec<f32> = mask.iter().map(|&v| v as f32).collect();
            let truth = threshold(&resize_probs(&probs, w, h, 384, 192), 0.5);
            let pred: Vec<u8> = (0..384 * 192).map(|i| if i % 384 >= 8 { truth[i - 8] } else { 0 }).collect();
            val_rows.push((small, truth, pred));
        }
        if k < 2 {
            let save = |img: image::DynamicImage, n: &str| {
                fluke::fsutil::save_png_atomic(&img, &out.join(format!("{stem}_{n}.png"))).unwrap()
            };
            save(overlay(&photo, &mask).into(), "overlay");
            save(crops.last().unwrap().clone().into(), "crop");
            save(rgba(&photo, &mask).into(), "rgba");
        }
    }
    fluke::fsutil::save_png_atomic(&contact_sheet(&crops, 6, 200, 120).into(), &out.join("sheet.png")).unwrap();
    fluke::fsutil::save_png_atomic(&overlay_rows(&val_rows).into(), &out.join("val_rows.png")).unwrap();
    eprintln!("wrote {}", out.display());
}
