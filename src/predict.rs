//! `fluke predict`: masks for folders of photos, streamed in batches.
//!
//! A decoder thread reads and resizes photos (CPU) while the GPU runs the previous batch; at most two batches wait
//! in the channel, so memory stays constant however many photos there are. Per batch, test-time augmentation runs
//! the model on the plain batch, on its horizontal flip (flipped back) and on a 3x3-blurred copy, and averages the
//! probabilities (`--tta flip,blur`, the notebook's recipe). Each photo then gets, at its original size: a binary
//! mask, an overlay, an RGBA cut-out (mask as alpha), the tight crop on white (the bounding box of all components
//! at `--crop-threshold`), optionally the raw probabilities (.npy), and a row in summary.csv. Unreadable photos
//! are reported in summary.csv and skipped; the exit code says whether any failed.
//!
//! summary.csv, one row per photo, in the order photos finish (failed ones as soon as decoding fails):
//!   file, fluke_fraction (mask pixels / photo pixels), components (8-connected, in the mask at `--threshold`),
//!   bbox_x0, bbox_y0, bbox_x1, bbox_y1 (half-open box of the crop: every pixel above `--crop-threshold`; empty
//!   when there is none), error (empty for photos that were written). Fields are quoted as RFC 4180 when needed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};

use crate::gpu::Gpu;
use crate::model::UNet;
use crate::postprocess as post;
use crate::tensor::Tensor;

#[derive(Clone, Debug)]
pub struct PredictConfig {
    pub weights: PathBuf,
    /// Keras architecture: override the input order the checkpoint records.
    pub input_order: Option<crate::model::keras::InputOrder>,
    pub input: PathBuf,
    pub out: PathBuf,
    /// Model input size; None = the size stored in the checkpoint, else `data::DEFAULT_SIZE`.
    pub size: Option<(u32, u32)>,
    pub tta_flip: bool,
    pub tta_blur: bool,
    pub threshold: f32,
    pub crop_threshold: f32,
    pub batch: usize,
    pub save_probs: bool,
    pub keep_largest: bool,
    /// (index, count): process every count-th photo starting at index.
    pub shard: Option<(usize, usize)>,
    pub sheet: bool,
}

/// The defaults, which are also `fluke predict`'s (its options take theirs from here).
impl Default for PredictConfig {
    fn default() -> Self {
        PredictConfig {
            weights: PathBuf::new(),
            input_order: None,
            input: PathBuf::new(),
            out: PathBuf::from("predictions"),
            size: None,
            tta_flip: true,
            tta_blur: true,
            threshold: 0.5,
            crop_threshold: 0.25,
            batch: 4,
            save_probs: false,
            keep_largest: false,
            shard: None,
            sheet: true,
        }
    }
}

/// Parse `--tta none|flip|flip,blur|blur`.
pub fn parse_tta(s: &str) -> Result<(bool, bool)> {
    let mut flip = false;
    let mut blur = false;
    for part in s.split(',').map(|p| p.trim().to_ascii_lowercase()) {
        match part.as_str() {
            "none" | "" => {}
            "flip" => flip = true,
            "blur" => blur = true,
            other => bail!("unknown --tta part '{other}': use none, flip, blur or flip,blur"),
        }
    }
    Ok((flip, blur))
}

/// The `--tta` text of a (flip, blur) choice, `parse_tta`'s inverse: (true, true) -> "flip,blur".
pub fn tta_text(flip: bool, blur: bool) -> &'static str {
    match (flip, blur) {
        (true, true) => "flip,blur",
        (true, false) => "flip",
        (false, true) => "blur",
        (false, false) => "none",
    }
}

/// Parse `--shard I/N`.
pub fn parse_shard(s: &str) -> Result<(usize, usize)> {
    let (i, n) = s.split_once('/').context("--shard takes I/N, e.g. 0/4")?;
    let (i, n): (usize, usize) = (i.trim().parse().context("--shard I/N: I is not a number")?, n.trim().parse().context("--shard I/N: N is not a number")?);
    if n == 0 || i >= n {
        bail!("--shard {i}/{n}: need 0 <= I < N");
    }
    Ok((i, n))
}

/// sheet.png: the first 36 crops, 6 per row, each fitted into a 256x128 cell (1 px grey lines between cells).
pub const SHEET_COLS: u32 = 6;
pub const SHEET_MAX: usize = 36;
pub const SHEET_CELL: (u32, u32) = (256, 128);

/// One decoded photo, ready for the GPU.
struct Item {
    path: PathBuf,
    /// Prefix of its output files (see `output_stems`).
    stem: String,
    /// The photo at its original size, or the decoding error.
    photo: std::result::Result<(image::RgbImage, Vec<f32>), String>,
}

pub struct PredictSummary {
    pub written: usize,
    pub failed: usize,
    pub empty: usize,
}

/// Probabilities [N, H*W] for a batch of normalised inputs, with TTA. Blocks (native; see `platform::block_on`);
/// `predict_batch_async` is the same computation, awaited (the browser page).
pub fn predict_batch(model: &UNet, inputs: &[Vec<f32>], w: u32, h: u32, flip: bool, blur: bool) -> Vec<Vec<f32>> {
    crate::platform::block_on(predict_batch_async(model, inputs, w, h, flip, blur))
}

/// Model probabilities [N*H*W] of one batch [N, 3, H, W] of normalised inputs.
async fn run_model(model: &UNet, batch: Vec<f32>, n: usize, h: usize, w: usize) -> Vec<f32> {
    let x = Tensor::from_slice(&model.gpu, &[n, 3, h, w], &batch);
    model.predict(&x).to_vec_async().await
}

/// `predict_batch`, awaited.
pub async fn predict_batch_async(model: &UNet, inputs: &[Vec<f32>], w: u32, h: u32, flip: bool, blur: bool) -> Vec<Vec<f32>> {
    let (wu, hu) = (w as usize, h as usize);
    let n = inputs.len();
    let flat: Vec<f32> = inputs.concat();
    let mut acc = run_model(model, flat, n, hu, wu).await;
    let mut k = 1.0;
    if flip {
        let flipped: Vec<f32> = inputs.iter().flat_map(|x| post::hflip_chw(x, 3, hu, wu)).collect();
        let p = run_model(model, flipped, n, hu, wu).await;
        for i in 0..n {
            let back = post::hflip_chw(&p[i * hu * wu..(i + 1) * hu * wu], 1, hu, wu);
            for (a, b) in acc[i * hu * wu..(i + 1) * hu * wu].iter_mut().zip(back) {
                *a += b;
            }
        }
        k += 1.0;
    }
    if blur {
        let blurred: Vec<f32> = inputs.iter().flat_map(|x| post::blur3x3_chw(x, 3, hu, wu)).collect();
        let p = run_model(model, blurred, n, hu, wu).await;
        for (a, b) in acc.iter_mut().zip(p) {
            *a += b;
        }
        k += 1.0;
    }
    acc.chunks(hu * wu).map(|c| c.iter().map(|v| v / k).collect()).collect()
}

fn stem_of(p: &Path) -> String {
    p.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_else(|| "image".into())
}

/// Output name prefix for each photo: its stem, or its whole file name when two photos share a stem (`a.jpg` and
/// `a.png` would otherwise overwrite each other's `a_mask.png`). Computed over the full list before sharding, so
/// every shard names a photo the same way.
fn output_stems(files: &[PathBuf]) -> Vec<String> {
    let mut count = std::collections::HashMap::new();
    for f in files {
        *count.entry(stem_of(f)).or_insert(0usize) += 1;
    }
    files
        .iter()
        .map(|f| {
            let stem = stem_of(f);
            if count[&stem] > 1 {
                f.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or(stem)
            } else {
                stem
            }
        })
        .collect()
}

/// An error and its causes on one line, "a: b: c", leaving out a cause whose text the line already holds (the
/// image crate's decoding errors print their source inside their own message, so `{e:#}` would say it twice).
fn error_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let c = cause.to_string().replace(['\n', '\r'], " ");
        let c = c.trim();
        if c.is_empty() || line.contains(c) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(c);
    }
    line
}

/// One CSV field (RFC 4180): quoted when it holds a comma, quote or line break, inner quotes doubled.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Run prediction over a file or folder.
pub fn predict(gpu: &Arc<Gpu>, cfg: &PredictConfig) -> Result<PredictSummary> {
    let (mut model, meta_size) = UNet::from_checkpoint(gpu, &cfg.weights)?;
    model.set_input_order(cfg.input_order, &cfg.weights)?;
    // The weights are final: BN folded into the convolutions from the first batch on.
    model.freeze();
    let (w, h) = cfg.size.or(meta_size).unwrap_or(crate::data::DEFAULT_SIZE);
    model.check_fits(cfg.batch, w, h)?;
    // lavapipe with a cold shader cache: a second device compiles the network's kernels from the back while the
    // kernel check and the first batch compile them from the front (src/gpu/warm_up.rs). Stopped after that batch.
    #[cfg(not(target_arch = "wasm32"))]
    let mut warm_up = gpu.warm_up(
        crate::validate::check_plan(gpu, &model.cfg, w as usize, h as usize, cfg.batch).then(model.predict_plan(cfg.batch, w as usize, h as usize)),
    );
    #[cfg(target_arch = "wasm32")]
    let mut warm_up: Option<()> = None;
    crate::validate::ensure(&model.gpu, &model.cfg, w as usize, h as usize, cfg.batch)?;
    let all = crate::data::list_images(&cfg.input)?;
    let stems = output_stems(&all);
    let mut files: Vec<(PathBuf, String)> = all.into_iter().zip(stems).collect();
    if let Some((i, n)) = cfg.shard {
        files = files.into_iter().enumerate().filter(|(k, _)| k % n == i).map(|(_, f)| f).collect();
    }
    std::fs::create_dir_all(&cfg.out).with_context(|| format!("{}: cannot create output folder", cfg.out.display()))?;
    let total = files.len();
    eprintln!("predicting {total} photo(s) at {w}x{h} on {} (tta: flip {}, blur {})", gpu.info.name, cfg.tta_flip, cfg.tta_blur);

    // Decoder thread: photo -> (original RGB, normalised model-size CHW), two batches ahead at most.
    let (tx, rx) = crossbeam_channel::bounded::<Item>(cfg.batch * 2);
    let decode_files = files;
    let decoder = std::thread::spawn(move || {
        for (path, stem) in decode_files {
            // A decoder that panics on a hostile file costs that file only, not the rest of the folder.
            let photo = std::panic::catch_unwind(|| {
                crate::data::load_rgb(&path).map(|img| {
                    let chw = crate::data::prepare_image(&img, w, h);
                    (image::DynamicImage::ImageRgb32F(img).to_rgb8(), chw)
                })
            });
            let photo = match photo {
                Ok(Ok(p)) => Ok(p),
                Ok(Err(e)) => Err(error_line(&e)),
                Err(_) => Err(format!("cannot decode photo {}: the decoder crashed on it", path.display())),
            };
            if tx.send(Item { path, stem, photo }).is_err() {
                break;
            }
        }
    });

    let summary_path = cfg.out.join("summary.csv");
    let mut summary = std::io::BufWriter::new(
        std::fs::File::create(&summary_path).with_context(|| format!("{}: cannot write", summary_path.display()))?,
    );
    writeln!(summary, "file,fluke_fraction,components,bbox_x0,bbox_y0,bbox_x1,bbox_y1,error")?;
    let bar = indicatif::ProgressBar::new(total as u64);
    bar.set_style(indicatif::ProgressStyle::with_template("[{bar:30}] {pos}/{len} {per_sec} eta {eta}").unwrap().progress_chars("=> "));
    let mut result = PredictSummary { written: 0, failed: 0, empty: 0 };
    let mut sheet_crops: Vec<image::RgbImage> = Vec::new();
    let mut pending: Vec<Item> = Vec::new();
    let mut rx_iter = rx.into_iter();
    loop {
        let next = rx_iter.next();
        let done = next.is_none();
        if let Some(item) = next {
            match &item.photo {
                Ok(_) => pending.push(item),
                Err(e) => {
                    // One line per bad file; the decoder's message already names the file.
                    let e = e.replace(['\n', '\r'], " ");
                    let shown = item.path.display().to_string();
                    let line = if e.contains(&shown) { e.clone() } else { format!("{shown}: {e}") };
                    bar.suspend(|| eprintln!("warning: {line}; skipped"));
                    writeln!(summary, "{},,,,,,,{}", csv_field(&shown), csv_field(&e))?;
                    result.failed += 1;
                    bar.inc(1);
                }
            }
        }
        if pending.len() == cfg.batch || (done && !pending.is_empty()) {
            let inputs: Vec<Vec<f32>> = pending.iter().map(|it| it.photo.as_ref().unwrap().1.clone()).collect();
            let probs = predict_batch(&model, &inputs, w, h, cfg.tta_flip, cfg.tta_blur);
            warm_up.take(); // the first batch has compiled everything a batch needs
            for (item, p) in pending.drain(..).zip(probs) {
                let (photo, _) = item.photo.unwrap();
                let shown = item.path.display().to_string();
                match write_outputs(cfg, &item.stem, &photo, &p, w, h, &mut sheet_crops) {
                    Ok(row) => {
                        if row.components == 0 {
                            result.empty += 1;
                        }
                        if row.components == 0 || row.bbox.is_none() {
                            let why = match (row.components, row.bbox) {
                                (0, None) => "no fluke pixels found; no crop written".to_string(),
                                (0, Some(_)) => format!("no fluke pixels above --threshold {}", cfg.threshold),
                                _ => format!("no pixels above --crop-threshold {}; no crop written", cfg.crop_threshold),
                            };
                            bar.suspend(|| eprintln!("note: {shown}: {why}"));
                        }
                        let bb = row.bbox.map(|b| format!("{},{},{},{}", b.0, b.1, b.2, b.3)).unwrap_or(",,,".into());
                        writeln!(summary, "{},{:.6},{},{},", csv_field(&shown), row.fraction, row.components, bb)?;
                        result.written += 1;
                    }
                    Err(e) => {
                        let e = error_line(&e);
                        bar.suspend(|| eprintln!("warning: {shown}: {e}"));
                        writeln!(summary, "{},,,,,,,{}", csv_field(&shown), csv_field(&e))?;
                        result.failed += 1;
                    }
                }
                bar.inc(1);
            }
        }
        if done {
            break;
        }
    }
    bar.finish_and_clear();
    let _ = decoder.join();
    summary.flush()?;
    if cfg.sheet && !sheet_crops.is_empty() {
        let sheet = post::contact_sheet(&sheet_crops, SHEET_COLS, SHEET_CELL.0, SHEET_CELL.1);
        crate::fsutil::save_png_atomic(&image::DynamicImage::ImageRgb8(sheet), &cfg.out.join("sheet.png"))?;
    }
    eprintln!(
        "wrote {} photo(s) to {} ({} without fluke pixels, {} failed); see summary.csv{}",
        result.written,
        cfg.out.display(),
        result.empty,
        result.failed,
        if cfg.sheet && !sheet_crops.is_empty() { " and sheet.png" } else { "" }
    );
    Ok(result)
}

struct Row {
    fraction: f64,
    components: usize,
    bbox: Option<(u32, u32, u32, u32)>,
}

/// What one photo's probabilities (model size) become at the photo's size: the binary mask at `threshold`, the
/// crop mask at the lower `crop_threshold` and the crop's box. Shared by `fluke predict` and the browser page, so
/// both cut the same mask from the same probabilities.
pub struct PhotoMasks {
    /// 0/1 per photo pixel, row-major.
    pub mask: Vec<u8>,
    /// Mask pixels / photo pixels.
    pub fraction: f64,
    /// 8-connected components of `mask`.
    pub components: usize,
    /// 0/1 at the crop threshold (the tight crop keeps these pixels).
    pub crop_mask: Vec<u8>,
    /// Half-open box of every crop-mask pixel; None when there is none.
    pub bbox: Option<post::BBox>,
}

// Two sizes and two thresholds, each a plain number the browser page passes too: a struct would only rename them.
#[allow(clippy::too_many_arguments)]
pub fn photo_masks(probs: &[f32], w: u32, h: u32, photo_w: u32, photo_h: u32, threshold: f32, crop_threshold: f32, keep_largest: bool) -> PhotoMasks {
    let (ow, oh) = (photo_w, photo_h);
    let full = post::resize_probs(probs, w, h, ow, oh);
    let mut mask = post::threshold(&full, threshold);
    if keep_largest {
        post::keep_largest(&mut mask, ow, oh);
    }
    let (_, comps) = post::connected_components(&mask, ow, oh);
    let fraction = mask.iter().filter(|&&m| m > 0).count() as f64 / mask.len().max(1) as f64;
    // The tight crop uses the (lower) crop threshold, as the notebook.
    let mut crop_mask = post::threshold(&full, crop_threshold);
    if keep_largest {
        post::keep_largest(&mut crop_mask, ow, oh);
    }
    let bbox = post::union_bbox(&crop_mask, ow, oh);
    PhotoMasks { mask, fraction, components: comps.len(), crop_mask, bbox }
}

/// The mask as a grayscale image (0 or 255), as `<stem>_mask.png` stores it.
pub fn mask_image(mask: &[u8], w: u32, h: u32) -> image::GrayImage {
    image::GrayImage::from_raw(w, h, mask.iter().map(|&m| if m > 0 { 255 } else { 0 }).collect()).expect("mask_image: mask is not w*h")
}

fn write_outputs(cfg: &PredictConfig, stem: &str, photo: &image::RgbImage, probs: &[f32], w: u32, h: u32, sheet: &mut Vec<image::RgbImage>) -> Result<Row> {
    let (ow, oh) = photo.dimensions();
    let PhotoMasks { mask, fraction, components, crop_mask, bbox } =
        photo_masks(probs, w, h, ow, oh, cfg.threshold, cfg.crop_threshold, cfg.keep_largest);
    let out = |suffix: &str| cfg.out.join(format!("{stem}_{suffix}"));
    crate::fsutil::save_png_atomic(&image::DynamicImage::ImageLuma8(mask_image(&mask, ow, oh)), &out("mask.png"))?;
    crate::fsutil::save_png_atomic(&image::DynamicImage::ImageRgb8(post::overlay(photo, &mask)), &out("overlay.png"))?;
    crate::fsutil::save_png_atomic(&image::DynamicImage::ImageRgba8(post::rgba(photo, &mask)), &out("rgba.png"))?;
    if let Some(b) = bbox {
        let crop = post::crop_on_white(photo, &crop_mask, b);
        crate::fsutil::save_png_atomic(&image::DynamicImage::ImageRgb8(crop.clone()), &out("crop.png"))?;
        if sheet.len() < SHEET_MAX {
            // Keep only what the sheet shows (a 256x128 cell): 36 full-size crops of 12 Mpx photos would not be
            // constant memory. Shrunk with the sheet's own fit-in-cell rule, so the sheet looks the same.
            let (cw, ch) = crop.dimensions();
            let s = (SHEET_CELL.0 as f64 / cw as f64).min(SHEET_CELL.1 as f64 / ch as f64);
            if s < 1.0 {
                let tw = ((cw as f64 * s).round() as u32).clamp(1, SHEET_CELL.0);
                let th = ((ch as f64 * s).round() as u32).clamp(1, SHEET_CELL.1);
                sheet.push(image::imageops::thumbnail(&crop, tw, th));
            } else {
                sheet.push(crop);
            }
        }
    }
    if cfg.save_probs {
        post::write_npy_f32(&out("probs.npy"), probs, &[h as usize, w as usize])?;
    }
    Ok(Row { fraction, components, bbox: bbox.map(|b| (b.x0, b.y0, b.x1, b.y1)) })
}
