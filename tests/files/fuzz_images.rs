//! Property-based fuzzing of image decoding and resizing (runs in CI on a budget of a few seconds per property):
//! whatever bytes a photo or mask file holds, `load_rgb` / `load_mask` return an image or an error naming the file,
//! and a decoded image always resizes (`prepare_image` / `prepare_mask`) to finite values of the right length.
//! Never a panic. Inputs: random bytes (bare, or behind a PNG/JPEG signature so the decoders get past the format
//! guess), truncations and byte flips of the small valid files in tests/corpus/images/, PNG headers claiming
//! hostile sizes, and the same mutations through `scan_pairs` (which also checks the JPEG end marker).
//!
//! Each property prints how many inputs it ran. FLUKE_FUZZ_SCALE=10 runs ten times as many (a longer local session).
//! `cargo test --test fuzz_images -- --ignored write_corpus` regenerates the corpus.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use fluke::data::{load_mask, load_rgb, prepare_image, prepare_mask, scan_pairs};

/// The model size every decoded input is resized to: small, with a different aspect ratio from most inputs.
const W: u32 = 64;
const H: u32 = 32;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/images")
}

/// (name, bytes) of every corpus file.
fn corpus() -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    v.sort();
    assert!(v.len() >= 4, "corpus missing: run `cargo test --test fuzz_images -- --ignored write_corpus`");
    v
}

fn runner(cases: u32) -> TestRunner {
    let scale: u32 = std::env::var("FLUKE_FUZZ_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    // No regression files: a failure prints the minimal input, which goes into the corpus by hand.
    TestRunner::new(Config { cases: cases * scale, failure_persistence: None, ..Config::default() })
}

/// Counts of one property: inputs run, and how many decoded as a photo / as a mask.
#[derive(Default)]
struct Counts {
    runs: AtomicU64,
    photos: AtomicU64,
    masks: AtomicU64,
}

impl Counts {
    fn report(&self, name: &str, t0: Instant) {
        println!(
            "fuzz {name}: {} executions in {:.2} s ({} decoded as photos, {} as masks; the rest were errors)",
            self.runs.load(Ordering::Relaxed),
            t0.elapsed().as_secs_f64(),
            self.photos.load(Ordering::Relaxed),
            self.masks.load(Ordering::Relaxed)
        );
        assert!(self.runs.load(Ordering::Relaxed) > 0);
    }
}

/// The property: decode `bytes` from a file as photo and as mask; Ok results resize to finite values; errors name
/// the file. A panic anywhere fails the test (proptest catches it and shrinks the input).
fn decode_and_resize(path: &Path, bytes: &[u8], counts: &Counts) -> Result<(), TestCaseError> {
    std::fs::write(path, bytes).unwrap();
    counts.runs.fetch_add(1, Ordering::Relaxed);
    let name = path.file_name().unwrap().to_str().unwrap();
    match load_rgb(path) {
        Ok(img) => {
            counts.photos.fetch_add(1, Ordering::Relaxed);
            let v = prepare_image(&img, W, H);
            prop_assert_eq!(v.len(), (3 * W * H) as usize);
            prop_assert!(v.iter().all(|x| x.is_finite()), "non-finite value after resizing");
        }
        Err(e) => prop_assert!(format!("{e:#}").contains(name), "error does not name the file: {e:#}"),
    }
    match load_mask(path) {
        Ok(m) => {
            counts.masks.fetch_add(1, Ordering::Relaxed);
            let v = prepare_mask(&m, W, H);
            prop_assert_eq!(v.len(), (W * H) as usize);
            prop_assert!(v.iter().all(|&x| x == 0.0 || x == 1.0), "mask value outside {{0, 1}}");
        }
        Err(e) => prop_assert!(format!("{e:#}").contains(name), "error does not name the file: {e:#}"),
    }
    Ok(())
}

#[test]
fn corpus_files_decode() {
    for (name, bytes) in corpus() {
        let img = load_rgb(&corpus_dir().join(&name)).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        assert!(img.width() > 0);
        let v = prepare_image(&img, W, H);
        assert!(v.iter().all(|x| x.is_finite()));
        assert!(!bytes.is_empty());
    }
}

#[test]
fn random_bytes_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("random.jpg");
    let png_header = corpus().into_iter().find(|(n, _)| n.ends_with(".png")).unwrap().1[..33].to_vec();
    let prefixes = vec![vec![], b"\x89PNG\r\n\x1a\n".to_vec(), vec![0xFF, 0xD8, 0xFF], vec![0xFF, 0xD8, 0xFF, 0xC0], png_header];
    let counts = Counts::default();
    let t0 = Instant::now();
    let strategy = (prop::sample::select(prefixes), prop::collection::vec(any::<u8>(), 0..1024));
    runner(3000)
        .run(&strategy, |(prefix, tail)| {
            let mut b = prefix;
            b.extend(tail);
            decode_and_resize(&path, &b, &counts)
        })
        .unwrap();
    counts.report("random_bytes", t0);
}

#[test]
fn truncated_corpus_files_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let files = corpus();
    let counts = Counts::default();
    let t0 = Instant::now();
    // Every cut of every file, exhaustively (the corpus is small), then random cuts are redundant.
    for (name, bytes) in &files {
        let path = dir.path().join(format!("cut-{name}"));
        for cut in 0..bytes.len() {
            decode_and_resize(&path, &bytes[..cut], &counts).unwrap_or_else(|e| panic!("{name} cut at {cut}: {e}"));
            // A JPEG cut before its end marker is an error, not a silently grey-filled photo.
            if name.ends_with(".jpg") && !bytes[..cut].windows(2).any(|w| w == [0xFF, 0xD9]) {
                assert!(load_rgb(&path).is_err(), "{name} cut at {cut} decoded as a photo");
            }
        }
    }
    counts.report("truncations (every cut of every corpus file)", t0);
}

#[test]
fn flipped_bytes_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let files = corpus();
    let n = files.len();
    let counts = Counts::default();
    let t0 = Instant::now();
    let strategy = (0..n, prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6));
    runner(2500)
        .run(&strategy, |(f, flips)| {
            let (name, bytes) = &files[f];
            let mut b = bytes.clone();
            for (pos, val) in flips {
                let i = pos.index(b.len());
                b[i] = val;
            }
            decode_and_resize(&dir.path().join(format!("flip-{name}")), &b, &counts)
        })
        .unwrap();
    counts.report("byte flips", t0);
}

/// CRC-32 (IEEE), as PNG chunks carry it.
fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
        }
    }
    !c
}

fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut v = (data.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(kind);
    v.extend_from_slice(data);
    let mut crc_in = kind.to_vec();
    crc_in.extend_from_slice(data);
    v.extend_from_slice(&crc32(&crc_in).to_be_bytes());
    v
}

/// PNG files with a valid signature and IHDR (correct CRC) claiming any size, bit depth and colour type, then an
/// IDAT of random bytes: the decoder's size limits and its handling of short data, not its CRC check, are hit.
#[test]
fn hostile_png_headers_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hostile.png");
    let counts = Counts::default();
    let t0 = Instant::now();
    let dims = prop_oneof![0u32..64, Just(u32::MAX), Just(1 << 31), 60_000u32..70_000, any::<u32>()];
    let strategy = (
        dims.clone(),
        dims,
        prop::sample::select(vec![1u8, 2, 4, 8, 16, 3]),
        prop::sample::select(vec![0u8, 2, 3, 4, 6, 5]),
        any::<u8>(),
        prop::collection::vec(any::<u8>(), 0..256),
    );
    runner(2000)
        .run(&strategy, |(w, h, depth, colour, interlace, idat)| {
            let mut ihdr = w.to_be_bytes().to_vec();
            ihdr.extend_from_slice(&h.to_be_bytes());
            ihdr.extend_from_slice(&[depth, colour, 0, 0, interlace % 3]);
            let mut b = b"\x89PNG\r\n\x1a\n".to_vec();
            b.extend(png_chunk(b"IHDR", &ihdr));
            b.extend(png_chunk(b"IDAT", &idat));
            b.extend(png_chunk(b"IEND", &[]));
            decode_and_resize(&path, &b, &counts)
        })
        .unwrap();
    counts.report("hostile PNG headers", t0);
}

/// Valid images of odd sizes (1 pixel wide, 3000:1, smaller and larger than the model size) and formats all decode
/// and resize to finite values: the resampler's weight tables at their edge cases.
#[test]
fn odd_sizes_resize() {
    let dir = tempfile::tempdir().unwrap();
    let counts = Counts::default();
    let t0 = Instant::now();
    let side = prop_oneof![1u32..8, 8u32..200, Just(W - 1), Just(W + 1), Just(H), 1000u32..3000];
    let strategy = (side.clone(), side, prop::sample::select(vec!["png8", "png16", "gray", "jpg"]), any::<u8>());
    runner(400)
        .run(&strategy, |(w, h, kind, seed)| {
            if w as u64 * h as u64 > 400_000 {
                return Ok(()); // keep each case fast; 1 x 3000 and 3000 x 1 stay in
            }
            let rgb = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x as u8).wrapping_mul(seed), y as u8, seed]));
            let path = dir.path().join(format!("odd.{}", if kind == "jpg" { "jpg" } else { "png" }));
            let img: image::DynamicImage = match kind {
                "png16" => image::DynamicImage::ImageRgb16(image::DynamicImage::ImageRgb8(rgb).to_rgb16()),
                "gray" => image::DynamicImage::ImageLuma8(image::DynamicImage::ImageRgb8(rgb).to_luma8()),
                _ => image::DynamicImage::ImageRgb8(rgb),
            };
            let mut buf = std::io::Cursor::new(Vec::new());
            let fmt = if kind == "jpg" { image::ImageFormat::Jpeg } else { image::ImageFormat::Png };
            img.write_to(&mut buf, fmt).unwrap();
            decode_and_resize(&path, buf.get_ref(), &counts)?;
            prop_assert!(counts.photos.load(Ordering::Relaxed) == counts.runs.load(Ordering::Relaxed), "a valid {w}x{h} {kind} did not decode");
            Ok(())
        })
        .unwrap();
    counts.report("odd sizes (valid images)", t0);
}

/// The up-front scan of `fluke train` on mutated photos: Ok with the pair or with a problem naming the photo,
/// or an error; never a panic.
#[test]
fn scan_pairs_on_mutated_photos_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let (images, masks) = (dir.path().join("images"), dir.path().join("masks"));
    std::fs::create_dir_all(&images).unwrap();
    std::fs::create_dir_all(&masks).unwrap();
    let files: Vec<(String, Vec<u8>)> = corpus().into_iter().filter(|(n, _)| n.starts_with("rgb")).collect();
    let n = files.len();
    let runs = std::cell::Cell::new(0u64);
    let t0 = Instant::now();
    let strategy = (0..n, any::<prop::sample::Index>(), prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4));
    runner(500)
        .run(&strategy, |(f, cut, flips)| {
            let (name, bytes) = &files[f];
            let ext = Path::new(name).extension().unwrap().to_str().unwrap();
            // The mask is a clean image of the photo's size (decoded from the unmutated photo).
            let clean = load_rgb(&corpus_dir().join(name)).unwrap();
            image::GrayImage::new(clean.width(), clean.height()).save(masks.join("a.png")).unwrap();
            for e in std::fs::read_dir(&images).unwrap() {
                std::fs::remove_file(e.unwrap().path()).unwrap();
            }
            let mut b = bytes[..cut.index(bytes.len() + 1)].to_vec();
            for (pos, val) in flips {
                if !b.is_empty() {
                    let i = pos.index(b.len());
                    b[i] = val;
                }
            }
            std::fs::write(images.join(format!("a.{ext}")), &b).unwrap();
            runs.set(runs.get() + 1);
            match scan_pairs(&images, &masks) {
                // Ok means the one photo was usable (a problem with the only pair is an error).
                Ok((pairs, problems)) => prop_assert!(pairs.len() == 1 && problems.is_empty(), "{pairs:?} {problems:?}"),
                Err(e) => prop_assert!(format!("{e:#}").contains("a."), "{e:#}"),
            }
            Ok(())
        })
        .unwrap();
    println!("fuzz scan_pairs: {} executions in {:.2} s", runs.get(), t0.elapsed().as_secs_f64());
}

/// Regenerate tests/corpus/images/ (small, deterministic files covering the decoders' main paths).
#[test]
#[ignore]
fn write_corpus() {
    use image::codecs::jpeg::JpegEncoder;
    let d = corpus_dir();
    std::fs::create_dir_all(&d).unwrap();
    let rgb = image::RgbImage::from_fn(24, 16, |x, y| image::Rgb([(x * 10) as u8, (y * 15) as u8, ((x + y) * 5) as u8]));
    let gray = image::GrayImage::from_fn(24, 16, |x, y| image::Luma([if (x as i32 - 12).pow(2) + (y as i32 - 8).pow(2) < 30 { 255 } else { 0 }]));
    rgb.save(d.join("rgb.png")).unwrap();
    gray.save(d.join("gray_mask.png")).unwrap();
    let rgba16 = image::ImageBuffer::<image::Rgba<u16>, Vec<u16>>::from_fn(12, 8, |x, y| image::Rgba([(x * 5000) as u16, (y * 8000) as u16, 300, 65535]));
    rgba16.save(d.join("rgba16.png")).unwrap();
    image::RgbImage::from_pixel(1, 1, image::Rgb([200, 10, 10])).save(d.join("one_pixel.png")).unwrap();
    let mut f = std::fs::File::create(d.join("rgb.jpg")).unwrap();
    JpegEncoder::new_with_quality(&mut f, 85).encode_image(&rgb).unwrap();
    let mut f = std::fs::File::create(d.join("gray_mask.jpg")).unwrap();
    JpegEncoder::new_with_quality(&mut f, 90).encode_image(&gray).unwrap();
}
