//! Decoding, resizing and normalising photos and masks for the model.
//!
//! Layouts: a photo at model size is planar `[3, H, W]` f32 (CHW, RGB), a mask `[H, W]` f32 in {0,1}; both
//! row-major, index `c*H*W + y*W + x`.
//!
//! Resizing is separable (rows, then columns) with per-axis weight tables, the way Pillow does it:
//! ```text
//!   out[o] = sum_i w(o, i) * in[i] / sum_i w(o, i)
//! ```
//! with the output pixel centre mapped to source coordinates as `(o + 0.5) * src/dst - 0.5`.
//!   - `Filter::CatmullRom` (bicubic, a = -0.5): k(t) = 1.5|t|^3 - 2.5|t|^2 + 1 for |t| <= 1,
//!     -0.5|t|^3 + 2.5|t|^2 - 4|t| + 2 for 1 < |t| < 2. When shrinking by a factor s the kernel is stretched to
//!     k(t / s) (support 2s), which is what antialiasing means here: every source pixel contributes.
//!     Taps that fall outside the image are dropped and the rest renormalised. Catmull-Rom overshoots at edges,
//!     so photos are clamped back to [0, 1]. (Checked by hand on a real 1050x249 photo -> 384x192: within 0.8/255
//!     of Pillow's BICUBIC on float planes, mean difference 0.006/255.)
//!   - `Filter::Area`: w(o, i) = length of [i, i+1) ∩ [o*s, (o+1)*s) with s = src/dst, i.e. the exact average
//!     over the output pixel's footprint (OpenCV's INTER_AREA when shrinking). Used for masks, then > 0.5.
//!   - `Filter::Bilinear`: the triangle kernel, stretched like Catmull-Rom when shrinking.
//!
//! Photos keep their pixels as stored: EXIF orientation is not applied (neither did the notebook's loader), so a
//! photo and its mask share the same pixel grid.

use std::path::Path;

use anyhow::{Context, Result};
use image::{DynamicImage, GrayImage, Rgb32FImage, RgbImage};

use super::{IMAGENET_MEAN, IMAGENET_STD};

/// Mask pixels strictly above this value are fluke (the original notebook's rule).
pub const MASK_THRESHOLD: u8 = 108;

/// Decode a file whatever its extension says (the content decides the format); errors name the file.
/// A JPEG must end with its end-of-image marker: the decoder fills a truncated file's missing rows with grey and
/// reports success, which would give `predict` a half-grey photo without a word (same rule as `scan_pairs`).
fn open(path: &Path, what: &str) -> Result<DynamicImage> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot open {what} {}", path.display()))?;
    decode(&bytes, &path.display().to_string(), what)
}

/// `open` of bytes already in memory (a file a browser page was given); `name` is what errors call it.
fn decode(bytes: &[u8], name: &str, what: &str) -> Result<DynamicImage> {
    let reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .with_context(|| format!("cannot read {what} {name}"))?;
    if reader.format() == Some(image::ImageFormat::Jpeg) {
        let tail = &bytes[bytes.len().saturating_sub(4096)..];
        if !tail.windows(2).any(|w| w == [0xFF, 0xD9]) {
            anyhow::bail!("cannot decode {what} {name}: the JPEG is truncated (it has no end-of-image marker)");
        }
    }
    reader.decode().with_context(|| format!("cannot decode {what} {name}"))
}

/// `load_rgb` of a photo's bytes (the browser page: the same decoder and conversion as `fluke predict`).
pub fn decode_rgb(bytes: &[u8], name: &str) -> Result<Rgb32FImage> {
    Ok(decode(bytes, name, "photo")?.into_rgb32f())
}

/// Decode a photo to interleaved RGB f32 in [0, 1]. Grayscale photos become 3 equal channels; alpha is dropped;
/// 16-bit photos keep their precision.
pub fn load_rgb(path: &Path) -> Result<Rgb32FImage> {
    Ok(open(path, "photo")?.into_rgb32f())
}

/// Decode a mask and binarise it: 255 where the (luma of the) pixel is > 108, else 0.
pub fn load_mask(path: &Path) -> Result<GrayImage> {
    let mut m = open(path, "mask")?.into_luma8();
    for p in m.pixels_mut() {
        p.0[0] = if p.0[0] > MASK_THRESHOLD { 255 } else { 0 };
    }
    Ok(m)
}

/// A resampling filter for `resample_plane`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filter {
    /// Bicubic with a = -0.5; for photos.
    CatmullRom,
    /// Triangle kernel; for upsampling probability maps.
    Bilinear,
    /// Exact footprint average; for masks.
    Area,
}

/// The weights of one axis: output `o` reads `len[o]` source pixels starting at `start[o]`, with weights
/// `w[o * taps ..][..len[o]]` (already normalised to sum 1).
struct AxisWeights {
    start: Vec<usize>,
    len: Vec<usize>,
    taps: usize,
    w: Vec<f32>,
}

fn catmull_rom(t: f32) -> f32 {
    let t = t.abs();
    if t <= 1.0 {
        (1.5 * t - 2.5) * t * t + 1.0
    } else if t < 2.0 {
        ((-0.5 * t + 2.5) * t - 4.0) * t + 2.0
    } else {
        0.0
    }
}

fn triangle(t: f32) -> f32 {
    (1.0 - t.abs()).max(0.0)
}

/// Weight table for resizing one axis from `src` to `dst` pixels.
fn axis_weights(src: usize, dst: usize, filter: Filter) -> AxisWeights {
    let scale = src as f64 / dst as f64;
    let mut rows: Vec<(usize, Vec<f32>)> = Vec::with_capacity(dst);
    for o in 0..dst {
        let (first, ws): (usize, Vec<f64>) = match filter {
            Filter::Area => {
                // Footprint [a, b) in source pixels; weight = overlap with each source pixel [i, i+1).
                let a = o as f64 * scale;
                let b = (o + 1) as f64 * scale;
                let i0 = a.floor() as usize;
                let i1 = (b.ceil() as usize).min(src).max(i0 + 1);
                (i0, (i0..i1).map(|i| (b.min(i as f64 + 1.0) - a.max(i as f64)).max(0.0)).collect())
            }
            Filter::CatmullRom | Filter::Bilinear => {
                let (kernel, support): (fn(f32) -> f32, f64) = match filter {
                    Filter::CatmullRom => (catmull_rom, 2.0),
                    _ => (triangle, 1.0),
                };
                let stretch = scale.max(1.0);
                let centre = (o as f64 + 0.5) * scale - 0.5;
                let lo = ((centre - support * stretch).floor() as i64).max(0) as usize;
                let hi = ((centre + support * stretch).ceil() as i64 + 1).clamp(lo as i64 + 1, src as i64) as usize;
                (lo, (lo..hi).map(|i| kernel(((i as f64 - centre) / stretch) as f32) as f64).collect())
            }
        };
        let sum: f64 = ws.iter().sum();
        // sum is > 0 for every filter here (the centre tap always has weight); guard anyway.
        let norm = if sum.abs() > 1e-12 { sum } else { 1.0 };
        rows.push((first, ws.iter().map(|w| (w / norm) as f32).collect()));
    }
    let taps = rows.iter().map(|r| r.1.len()).max().unwrap_or(1);
    let mut aw = AxisWeights { start: Vec::new(), len: Vec::new(), taps, w: vec![0.0; dst * taps] };
    for (o, (first, ws)) in rows.into_iter().enumerate() {
        aw.start.push(first);
        aw.len.push(ws.len());
        aw.w[o * taps..o * taps + ws.len()].copy_from_slice(&ws);
    }
    aw
}

/// Resize one plane `[sh, sw]` to `[dh, dw]` (rows first, then columns). Same size returns a copy.
pub fn resample_plane(src: &[f32], sw: u32, sh: u32, dw: u32, dh: u32, filter: Filter) -> Vec<f32> {
    let (sw, sh, dw, dh) = (sw as usize, sh as usize, dw as usize, dh as usize);
    assert_eq!(src.len(), sw * sh, "resample_plane: plane has {} values, expected {sw}x{sh}", src.len());
    assert!(sw > 0 && sh > 0 && dw > 0 && dh > 0, "resample_plane: empty size {sw}x{sh} -> {dw}x{dh}");
    if (sw, sh) == (dw, dh) {
        return src.to_vec();
    }
    let wx = axis_weights(sw, dw, filter);
    let wy = axis_weights(sh, dh, filter);
    // Horizontal pass: [sh, sw] -> [sh, dw].
    let mut tmp = vec![0f32; sh * dw];
    for y in 0..sh {
        let row = &src[y * sw..(y + 1) * sw];
        for o in 0..dw {
            let ws = &wx.w[o * wx.taps..o * wx.taps + wx.len[o]];
            let s = &row[wx.start[o]..wx.start[o] + wx.len[o]];
            tmp[y * dw + o] = ws.iter().zip(s).map(|(w, v)| w * v).sum();
        }
    }
    // Vertical pass: [sh, dw] -> [dh, dw], accumulating whole rows (cache friendly).
    let mut out = vec![0f32; dh * dw];
    for o in 0..dh {
        let dst = &mut out[o * dw..(o + 1) * dw];
        for k in 0..wy.len[o] {
            let w = wy.w[o * wy.taps + k];
            let srow = &tmp[(wy.start[o] + k) * dw..(wy.start[o] + k + 1) * dw];
            for (d, s) in dst.iter_mut().zip(srow) {
                *d += w * s;
            }
        }
    }
    out
}

/// Photo -> `[3, height, width]` RGB in [0, 1] (Catmull-Rom, clamped). Not yet normalised: augmentation works on
/// these values.
pub fn resize_rgb(img: &Rgb32FImage, width: u32, height: u32) -> Vec<f32> {
    let (sw, sh) = img.dimensions();
    let n = (sw * sh) as usize;
    let raw = img.as_raw();
    let mut out = Vec::with_capacity(3 * (width * height) as usize);
    for c in 0..3 {
        let plane: Vec<f32> = (0..n).map(|i| raw[3 * i + c]).collect();
        let mut r = resample_plane(&plane, sw, sh, width, height, Filter::CatmullRom);
        r.iter_mut().for_each(|v| *v = v.clamp(0.0, 1.0));
        out.extend_from_slice(&r);
    }
    out
}

/// Binarised mask (0/255) -> `[height, width]` in {0,1}: area average of the 0/1 mask, then > 0.5.
pub fn resize_mask(mask: &GrayImage, width: u32, height: u32) -> Vec<f32> {
    let (sw, sh) = mask.dimensions();
    let plane: Vec<f32> = mask.as_raw().iter().map(|&v| if v > MASK_THRESHOLD { 1.0 } else { 0.0 }).collect();
    let mut r = resample_plane(&plane, sw, sh, width, height, Filter::Area);
    r.iter_mut().for_each(|v| *v = if *v > 0.5 { 1.0 } else { 0.0 });
    r
}

/// In place: `[3, H, W]` RGB in [0, 1] -> `(x - IMAGENET_MEAN[c]) / IMAGENET_STD[c]`.
pub fn normalize(chw: &mut [f32]) {
    assert!(chw.len().is_multiple_of(3), "normalize: length {} is not 3 planes", chw.len());
    let hw = chw.len() / 3;
    for (c, plane) in chw.chunks_mut(hw).enumerate() {
        let (m, inv_s) = (IMAGENET_MEAN[c], 1.0 / IMAGENET_STD[c]);
        plane.iter_mut().for_each(|v| *v = (*v - m) * inv_s);
    }
}

/// The model input for one photo: resize to (width, height), normalise; `[3 * height * width]` CHW f32.
pub fn prepare_image(img: &Rgb32FImage, width: u32, height: u32) -> Vec<f32> {
    let mut v = resize_rgb(img, width, height);
    normalize(&mut v);
    v
}

/// The target for one mask: `[height * width]` in {0,1} (area average, then > 0.5). Same as `resize_mask`.
pub fn prepare_mask(mask: &GrayImage, width: u32, height: u32) -> Vec<f32> {
    resize_mask(mask, width, height)
}

/// Undo `normalize` and quantise: normalised `[3, H, W]` -> an RGB image (for overlays and debugging).
pub fn to_rgb8(normalized_chw: &[f32], width: u32, height: u32) -> RgbImage {
    let hw = (width * height) as usize;
    assert_eq!(normalized_chw.len(), 3 * hw, "to_rgb8: expected 3x{width}x{height} values");
    RgbImage::from_fn(width, height, |x, y| {
        let i = (y * width + x) as usize;
        image::Rgb(std::array::from_fn(|c| {
            let v = normalized_chw[c * hw + i] * IMAGENET_STD[c] + IMAGENET_MEAN[c];
            (v.clamp(0.0, 1.0) * 255.0).round() as u8
        }))
    })
}

/// A `[H, W]` plane in [0, 1] (mask or probability) -> 8-bit grayscale.
pub fn to_gray8(plane: &[f32], width: u32, height: u32) -> GrayImage {
    assert_eq!(plane.len(), (width * height) as usize, "to_gray8: expected {width}x{height} values");
    GrayImage::from_fn(width, height, |x, y| {
        image::Luma([(plane[(y * width + x) as usize].clamp(0.0, 1.0) * 255.0).round() as u8])
    })
}
