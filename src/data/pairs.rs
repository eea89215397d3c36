//! Finding the data: photo/mask pairs matched by file stem, problems reported up front, a seeded split.
//!
//! A pair is `images/<stem>.<ext>` + `masks/<stem>.<ext>` with ext in jpg/jpeg/png on either side, compared
//! case-insensitively (`A.JPG` pairs with `A.png`; stems themselves are compared exactly). Folders are read one
//! level deep; hidden files (`.DS_Store`, `._x.jpg`) and files with other extensions are ignored.
//!
//! `scan_pairs` decodes every photo and mask once, fully: a header check would pass a truncated PNG that then fails
//! halfway through training, and a JPEG must also end with its end-of-image marker, since the JPEG decoder
//! "decodes" a truncated file by filling the missing rows with grey. It runs on rayon's threads.
//! Every file that cannot be used becomes one `Problem` line naming the file, what is wrong and the fix:
//!   - a photo with no mask, a mask with no photo
//!   - a photo or mask that does not decode (corrupt, truncated, not an image despite its extension)
//!   - a mask whose size differs from its photo's
//!   - two photos (or two masks) with the same stem (the first in name order is kept, the others reported)
//!
//! The caller prints them (`problems_report`) and carries on with the usable pairs, or stops in strict mode
//! (`strict_check`).
//! No usable pair at all is an `Err` naming both folders and the fix.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::{mix, IMAGE_EXTENSIONS};

/// One usable training sample: a photo and its mask, same stem, both decodable, same size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pair {
    pub stem: String,
    pub image: PathBuf,
    pub mask: PathBuf,
}

/// One file that cannot be used, with why and what to do about it.
/// Display: `<path>: <message> (fix: <fix>)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub path: PathBuf,
    pub message: String,
    pub fix: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} (fix: {})", self.path.display(), self.message, self.fix)
    }
}

/// The up-front report: one line per problem file, then the count. Empty string when there is none.
pub fn problems_report(problems: &[Problem]) -> String {
    if problems.is_empty() {
        return String::new();
    }
    let mut s = String::new();
    for p in problems {
        s.push_str(&format!("  {p}\n"));
    }
    let n = problems.len();
    s.push_str(&format!("{n} file{} with problems", if n == 1 { "" } else { "s" }));
    s
}

/// `--strict`: any problem stops the run, with the report and the way out. Ok when there is none.
pub fn strict_check(problems: &[Problem]) -> Result<()> {
    if problems.is_empty() {
        return Ok(());
    }
    bail!(
        "--strict: the data has problems:\n{}\n(fix: repair or remove the files listed, or run without --strict to \
         train on the usable pairs only)",
        problems_report(problems)
    )
}

/// True for a visible file whose extension is jpg/jpeg/png in any letter case.
fn is_image_file(path: &Path) -> bool {
    // Hidden files are mostly macOS metadata (`._0001.jpg` is not a JPEG), so they are skipped, not reported.
    let hidden = path.file_name().and_then(|n| n.to_str()).is_none_or(|n| n.starts_with('.'));
    let ext_ok = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)));
    !hidden && ext_ok && path.is_file()
}

/// Image files directly inside `dir`, sorted by path. Errors when `dir` is missing or not a folder.
fn image_files(dir: &Path, what: &str, flag: &str) -> Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        bail!(
            "the {what} folder {} does not exist or is not a folder (fix: pass an existing folder to {flag})",
            dir.display()
        );
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list the {what} folder {}", dir.display()))? {
        let path = entry.with_context(|| format!("cannot list the {what} folder {}", dir.display()))?.path();
        if is_image_file(&path) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Group files by stem; the first path in name order wins, the rest become "same stem" problems.
fn by_stem(files: Vec<PathBuf>, what: &str, problems: &mut Vec<Problem>) -> BTreeMap<String, PathBuf> {
    let mut map: BTreeMap<String, PathBuf> = BTreeMap::new();
    for f in files {
        // A non-UTF-8 stem cannot be matched reliably across folders: report it rather than guess.
        let Some(stem) = f.file_stem().and_then(|s| s.to_str()).map(str::to_owned) else {
            problems.push(Problem {
                path: f,
                message: format!("the {what}'s file name is not valid UTF-8"),
                fix: "rename the file".into(),
            });
            continue;
        };
        // `files` is sorted, so the kept file does not depend on the order the folder was listed in.
        if let Some(first) = map.get(&stem) {
            problems.push(Problem {
                message: format!("ignored: another {what} has the same stem `{stem}` ({})", first.display()),
                path: f,
                fix: "rename or remove one of the two".into(),
            });
        } else {
            map.insert(stem, f);
        }
    }
    map
}

/// Decode the whole file (not only its header) and return its size. A JPEG must also end with its end-of-image
/// marker (FF D9, possibly followed by padding): the JPEG decoder fills a truncated file's missing rows with grey
/// instead of failing, which would quietly train on half-grey photos.
fn decoded_size(path: &Path) -> Result<(u32, u32)> {
    let bytes = std::fs::read(path)?;
    // The content decides the format, not the extension.
    let reader = image::ImageReader::new(std::io::Cursor::new(&bytes)).with_guessed_format()?;
    match reader.format() {
        Some(image::ImageFormat::Jpeg | image::ImageFormat::Png) => {}
        Some(other) => bail!("the file is a {other:?} image, not JPEG or PNG, whatever its extension says"),
        None => bail!("the file is not a JPEG or PNG image, whatever its extension says"),
    }
    if reader.format() == Some(image::ImageFormat::Jpeg) {
        let tail = &bytes[bytes.len().saturating_sub(4096)..];
        if !tail.windows(2).any(|w| w == [0xFF, 0xD9]) {
            bail!("the JPEG is truncated (it has no end-of-image marker)");
        }
    }
    let img = reader.decode()?;
    Ok((img.width(), img.height()))
}

/// Match photos and masks by stem, decode every file fully, check sizes. Returns the usable pairs sorted by stem and
/// the problems sorted by path. Err when a folder is missing or empty, the two are the same folder, or no pair is
/// usable; the message names the folders, the problems (up to 20) and the fix.
pub fn scan_pairs(images: &Path, masks: &Path) -> Result<(Vec<Pair>, Vec<Problem>)> {
    // One folder for both would pair every file with itself (and call each photo a mask): refuse it plainly.
    if images.canonicalize().ok().is_some_and(|a| masks.canonicalize().ok() == Some(a)) {
        bail!(
            "--images and --masks both name {} (fix: keep the photos and the masks in two folders, with the same file \
             stems, e.g. data/images/0001.jpg and data/masks/0001.png)",
            images.display()
        );
    }
    let photo_files = image_files(images, "photos", "--images")?;
    let mask_files = image_files(masks, "masks", "--masks")?;
    if photo_files.is_empty() {
        bail!(
            "no photos (.jpg, .jpeg, .png) in {} (fix: point --images at the folder that holds the photos, or make a \
             sample set with `fluke synth --out DIR` and use DIR/images and DIR/masks)",
            images.display()
        );
    }
    if mask_files.is_empty() {
        bail!(
            "no masks (.png, .jpg, .jpeg) in {} (fix: point --masks at the folder that holds one mask per photo, with \
             the photo's file stem: images/0001.jpg <-> masks/0001.png)",
            masks.display()
        );
    }

    // Index both sides by stem (BTreeMap: sorted, so pairs and problems come out in a stable order).
    let mut problems = Vec::new();
    let photos = by_stem(photo_files, "photo", &mut problems);
    let mask_map = by_stem(mask_files, "mask", &mut problems);

    // Stems present on one side only.
    for (stem, p) in &photos {
        if !mask_map.contains_key(stem) {
            problems.push(Problem {
                path: p.clone(),
                message: format!("no mask named {stem}.png/.jpg/.jpeg in {}", masks.display()),
                fix: "add the mask, or remove the photo".into(),
            });
        }
    }
    for (stem, m) in &mask_map {
        if !photos.contains_key(stem) {
            problems.push(Problem {
                path: m.clone(),
                message: format!("no photo named {stem}.jpg/.jpeg/.png in {}", images.display()),
                fix: "add the photo, or remove the mask".into(),
            });
        }
    }

    // Decode both sides of every matched stem in parallel; collect() keeps the stem order.
    let candidates: Vec<(&String, &PathBuf, &PathBuf)> =
        photos.iter().filter_map(|(s, p)| mask_map.get(s).map(|m| (s, p, m))).collect();
    let checked: Vec<std::result::Result<Pair, Vec<Problem>>> =
        candidates.par_iter().map(|&(stem, photo, mask)| check_pair(stem, photo, mask)).collect();
    let mut pairs = Vec::new();
    for c in checked {
        match c {
            Ok(p) => pairs.push(p),
            Err(ps) => problems.extend(ps),
        }
    }
    // One line per file, sorted by path so the report reads like a folder listing.
    problems.sort_by(|a, b| a.path.cmp(&b.path));

    // Nothing usable: the problems are the explanation, so they go into the error itself (the caller never sees
    // the Ok side). The list is capped so a folder of 10,000 wrong files still gives a readable message.
    if pairs.is_empty() {
        let shown: Vec<String> = problems.iter().take(20).map(|p| format!("  {p}")).collect();
        bail!(
            "no usable photo/mask pair in {} and {}: {} file{} with problems:\n{}{}\n(fix: each photo needs a \
             decodable mask of the same size and the same file stem in the masks folder)",
            images.display(),
            masks.display(),
            problems.len(),
            if problems.len() == 1 { "" } else { "s" },
            shown.join("\n"),
            if problems.len() > 20 { format!("\n  ... and {} more", problems.len() - 20) } else { String::new() }
        );
    }
    Ok((pairs, problems))
}

/// Decode a matched photo and mask; a pair, or the problems that keep it out.
fn check_pair(stem: &str, photo: &Path, mask: &Path) -> std::result::Result<Pair, Vec<Problem>> {
    // Both sides are always decoded, so a pair with two bad files reports both at once.
    let ps = decoded_size(photo);
    let ms = decoded_size(mask);
    let mut problems = Vec::new();
    if let Err(e) = &ps {
        problems.push(Problem {
            path: photo.to_path_buf(),
            message: format!("cannot decode the photo: {e:#}"),
            fix: "re-export it as JPEG or PNG, or remove it and its mask".into(),
        });
    }
    if let Err(e) = &ms {
        problems.push(Problem {
            path: mask.to_path_buf(),
            message: format!("cannot decode the mask: {e:#}"),
            fix: "re-export it as an 8-bit grayscale PNG, or remove it and its photo".into(),
        });
    }
    if let (Ok((pw, ph)), Ok((mw, mh))) = (&ps, &ms) {
        if (pw, ph) != (mw, mh) {
            problems.push(Problem {
                path: mask.to_path_buf(),
                message: format!("the mask is {mw}x{mh} but its photo {} is {pw}x{ph}", photo.display()),
                fix: "make the mask the same size as the photo (resize it with nearest-neighbour)".into(),
            });
        }
    }
    if problems.is_empty() {
        Ok(Pair { stem: stem.to_owned(), image: photo.to_path_buf(), mask: mask.to_path_buf() })
    } else {
        Err(problems)
    }
}

/// Photos to predict on: `input` itself when it is a file, else the jpg/jpeg/png files directly inside the folder,
/// sorted by path. Err when the path does not exist or the folder holds no photo.
pub fn list_images(input: &Path) -> Result<Vec<PathBuf>> {
    // A single file is taken as given, whatever its extension: decoding will say if it is not a photo.
    if input.is_file() {
        return Ok(vec![input.to_path_buf()]);
    }
    let files = image_files(input, "input", "the input argument")?;
    if files.is_empty() {
        bail!("no photos (.jpg, .jpeg, .png) in {} (fix: pass a photo or a folder that holds photos)", input.display());
    }
    Ok(files)
}

/// Seeded, reproducible split into (train, validation). The pairs are first sorted by stem, so the split depends
/// only on the set of stems and the seed, not on the order they came in. `round(n * val_fraction)` pairs go to
/// validation, at least 1 and at most n-1 when `val_fraction > 0` and n >= 2; with one pair, or a fraction <= 0,
/// validation is empty. Both halves come back sorted by stem.
pub fn split(mut pairs: Vec<Pair>, val_fraction: f64, seed: u64) -> (Vec<Pair>, Vec<Pair>) {
    assert!(val_fraction < 1.0, "split: val_fraction must be below 1, got {val_fraction}");
    pairs.sort_by(|a, b| a.stem.cmp(&b.stem));
    let n = pairs.len();
    if val_fraction <= 0.0 || n < 2 {
        return (pairs, Vec::new());
    }
    let n_val = ((n as f64 * val_fraction).round() as usize).clamp(1, n - 1);
    // A stream of its own (the constant tag), so the split does not move when shuffling or augmentation changes.
    let mut rng = ChaCha8Rng::seed_from_u64(mix(seed, 0x5EED_5B11_7000_0001));
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut rng);
    // The first n_val of a seeded permutation go to validation; membership flags keep the stem order within each half.
    let mut is_val = vec![false; n];
    for &i in &idx[..n_val] {
        is_val[i] = true;
    }
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for (i, p) in pairs.into_iter().enumerate() {
        if is_val[i] {
            val.push(p)
        } else {
            train.push(p)
        }
    }
    (train, val)
}
