//! CPU post-processing of the U-Net's output, used by `fluke predict` (and the overlays used by `fluke train`).
//!
//! The network sees every photo at the model size (default 384 x 192, W x H) and returns a probability map
//! `probs: [h * w]` (row-major, `probs[y * w + x]`). From it `predict` builds, at the photo's own size:
//!   probs (model size) --resize_probs--> probs (photo size) --threshold--> mask {0,1}
//!   mask --keep_largest / union_bbox--> the fluke's box --crop_on_white / rgba / overlay--> images
//!
//! Conventions shared by every function here:
//! - a mask is `[h * w]` u8, row-major, 0 = background and any nonzero = fluke (functions that make masks write 0/1);
//! - images are `image::RgbImage` / `RgbaImage` of the same (w, h) as their mask (asserted, message starts with the
//!   function name);
//! - a [`BBox`] is half-open: columns `x0..x1`, rows `y0..y1`, so `width = x1 - x0`.
//!
//! Files: `components` (labelling, largest component, boxes), `render` (overlays, crops, contact sheets),
//! `tta` (flip / blur on CHW tensors), `npy` (the .npy writer).

mod components;
mod npy;
mod render;
mod tta;

pub use components::{connected_components, keep_largest, union_bbox, BBox, Component};
pub use npy::{npy_header, write_npy_f32};
pub use render::{contact_sheet, crop_on_white, outline, overlay, overlay_rows, rgba};
pub use tta::{blur3x3_chw, hflip_chw, hflip_map};

use rayon::prelude::*;

/// Bilinear resize of a probability map `[h * w]` (the model size) to `[out_h * out_w]` (the photo's size).
///
/// Half-pixel centres, like OpenCV `INTER_LINEAR`, PIL `BILINEAR` when enlarging, and PyTorch
/// `interpolate(mode="bilinear", align_corners=False)`: output pixel `ox` samples source column
/// `sx = (ox + 0.5) * w / out_w - 0.5`, clamped to `[0, w - 1]`, and blends its two neighbours
/// `floor(sx)`, `floor(sx) + 1` (clamped) with weights `1 - fx`, `fx`. Same along y.
/// Equal sizes give back the input exactly (sx = ox, fx = 0). No antialiasing when shrinking (predict only enlarges).
pub fn resize_probs(probs: &[f32], w: u32, h: u32, out_w: u32, out_h: u32) -> Vec<f32> {
    let (w, h, ow, oh) = (w as usize, h as usize, out_w as usize, out_h as usize);
    assert_eq!(probs.len(), w * h, "resize_probs: probs has {} values, expected {w} x {h}", probs.len());
    assert!(w > 0 && h > 0 || ow * oh == 0, "resize_probs: empty source {w} x {h} for a non-empty output");
    if ow == 0 || oh == 0 {
        return Vec::new();
    }
    if (w, h) == (ow, oh) {
        return probs.to_vec();
    }
    // Per-axis taps computed once: (left index, right index, weight of right).
    let taps = |n_in: usize, n_out: usize| -> Vec<(usize, usize, f32)> {
        let scale = n_in as f64 / n_out as f64;
        (0..n_out)
            .map(|o| {
                let s = ((o as f64 + 0.5) * scale - 0.5).clamp(0.0, (n_in - 1) as f64);
                let i0 = s.floor() as usize;
                let i1 = (i0 + 1).min(n_in - 1);
                (i0, i1, (s - i0 as f64) as f32)
            })
            .collect()
    };
    let tx = taps(w, ow);
    let ty = taps(h, oh);
    let mut out = vec![0f32; ow * oh];
    // One output row per task: photos can be 12+ Mpx.
    out.par_chunks_mut(ow).enumerate().for_each(|(oy, row)| {
        let (y0, y1, fy) = ty[oy];
        let (r0, r1) = (&probs[y0 * w..(y0 + 1) * w], &probs[y1 * w..(y1 + 1) * w]);
        for (o, &(x0, x1, fx)) in row.iter_mut().zip(&tx) {
            let top = r0[x0] + (r0[x1] - r0[x0]) * fx;
            let bot = r1[x0] + (r1[x1] - r1[x0]) * fx;
            *o = top + (bot - top) * fy;
        }
    });
    out
}

/// Binary mask: 1 where `p > t`, else 0 (strictly greater, like numpy's `probs > 0.5`; NaN gives 0).
pub fn threshold(probs: &[f32], t: f32) -> Vec<u8> {
    probs.iter().map(|&p| u8::from(p > t)).collect()
}

/// Probabilities in [0, 1] as grey levels 0..=255 (rounded, clamped), e.g. to save the soft mask as a PNG.
pub fn probs_to_u8(probs: &[f32]) -> Vec<u8> {
    probs.iter().map(|&p| (p.clamp(0.0, 1.0) * 255.0).round() as u8).collect()
}
