//! Training-time augmentation, the notebook's recipe, applied to model-size samples before normalisation:
//! photo `[3, H, W]` RGB in [0, 1], mask `[H, W]` in {0,1}.
//!
//! In order, each with its own probability (defaults = the notebook's):
//! ```text
//!   1. blur        p 0.5   box filter k x k, k odd drawn from 3..=blur_max (3): photo only
//!   2. shear       p 0.5   x' = x + tan(a) * y, a ~ U(-5, 5) degrees         \
//!   3. flip        p 0.5   x' = -x                                           | one affine warp, photo AND mask
//!   4. rotation    p 0.3   by b ~ U(-5, 5) degrees                           /
//!   5. contrast    p 0.2   x' = m + (x - m) * (1 + U(-0.1, 0.1)), m = the photo's mean over all channels
//!   6. brightness  p 0.2   x' = x + U(-0.1, 0.1)   (10% of the full [0, 1] range)
//! ```
//! then the photo is clamped to [0, 1]. Steps 2-4 compose into one matrix about the image centre c
//! (in pixel-centre coordinates, c = ((W-1)/2, (H-1)/2)):
//! ```text
//!   dst = R(b) . S(a) . F . (src - c) + c,   sampled backwards:   src = F . S(-a) . R(-b) . (dst - c) + c
//! ```
//! so the photo is interpolated once. The photo is sampled bilinearly, the mask by nearest neighbour (it stays in
//! {0,1}). Both read outside the image with reflect-101 (`c b | a b c d | c b`, OpenCV's BORDER_REFLECT_101,
//! albumentations' default): the fill is the same mirrored picture on both sides, so the pair stays consistent
//! and no black wedges appear in the corners. With no geometric step drawn, nothing is resampled (the pair stays
//! exact).
//!
//! Randomness: every call draws the same 12 numbers in the same order whatever fires, so the stream for a
//! sample does not depend on the probabilities; the loader seeds one ChaCha8 stream per (seed, epoch, position).

use rand::Rng;

/// Augmentation probabilities and limits. `Default` is the notebook's recipe; `Augment::none()` changes nothing.
#[derive(Clone, Debug, PartialEq)]
pub struct Augment {
    pub blur_p: f32,
    /// Largest box kernel side (odd, >= 3).
    pub blur_max: usize,
    pub shear_p: f32,
    pub shear_deg: f32,
    pub flip_p: f32,
    pub rotate_p: f32,
    pub rotate_deg: f32,
    pub contrast_p: f32,
    /// Contrast factor range: 1 +/- contrast.
    pub contrast: f32,
    pub brightness_p: f32,
    /// Brightness shift range: +/- brightness (on [0, 1] values).
    pub brightness: f32,
}

impl Default for Augment {
    fn default() -> Self {
        Augment {
            blur_p: 0.5,
            blur_max: 3,
            shear_p: 0.5,
            shear_deg: 5.0,
            flip_p: 0.5,
            rotate_p: 0.3,
            rotate_deg: 5.0,
            contrast_p: 0.2,
            contrast: 0.1,
            brightness_p: 0.2,
            brightness: 0.1,
        }
    }
}

/// Augment with the notebook's recipe; see `Augment::apply`.
pub fn augment(rgb: &mut [f32], mask: &mut [f32], width: u32, height: u32, rng: &mut impl Rng) {
    Augment::default().apply(rgb, mask, width, height, rng);
}

impl Augment {
    /// All probabilities 0: `apply` leaves the sample as it is (validation, `--no-augment`).
    pub fn none() -> Self {
        Augment {
            blur_p: 0.0,
            shear_p: 0.0,
            flip_p: 0.0,
            rotate_p: 0.0,
            contrast_p: 0.0,
            brightness_p: 0.0,
            ..Self::default()
        }
    }

    /// Augment one sample in place. `rgb`: `[3, height, width]` in [0, 1] (not normalised); `mask`:
    /// `[height, width]` in {0,1}.
    pub fn apply(&self, rgb: &mut [f32], mask: &mut [f32], width: u32, height: u32, rng: &mut impl Rng) {
        let (w, h) = (width as usize, height as usize);
        assert_eq!(rgb.len(), 3 * w * h, "augment: photo has {} values, expected 3x{height}x{width}", rgb.len());
        assert_eq!(mask.len(), w * h, "augment: mask has {} values, expected {height}x{width}", mask.len());

        // Draw everything up front, in a fixed order (see the header).
        let mut draw = || (rng.random::<f32>(), rng.random::<f32>());
        let (blur_u, blur_v) = draw();
        let (shear_u, shear_v) = draw();
        let (flip_u, _) = draw();
        let (rot_u, rot_v) = draw();
        let (con_u, con_v) = draw();
        let (bri_u, bri_v) = draw();
        let sym = |v: f32, lim: f32| (2.0 * v - 1.0) * lim; // U(0,1) -> U(-lim, lim)

        if blur_u < self.blur_p {
            let choices = (self.blur_max.max(3) - 1) / 2; // k in {3, 5, ..., blur_max}
            let k = 3 + 2 * ((blur_v * choices as f32) as usize).min(choices - 1);
            for plane in rgb.chunks_mut(w * h) {
                box_blur(plane, w, h, k);
            }
        }

        let shear = (shear_u < self.shear_p).then(|| sym(shear_v, self.shear_deg).to_radians());
        let flip = flip_u < self.flip_p;
        let rot = (rot_u < self.rotate_p).then(|| sym(rot_v, self.rotate_deg).to_radians());
        if shear.is_some() || flip || rot.is_some() {
            // Inverse map dst -> src as a 2x2 matrix: F . S(-a) . R(-b).
            let (sb, cb) = (-rot.unwrap_or(0.0)).sin_cos();
            let t = shear.unwrap_or(0.0).tan();
            // R(-b) = [[cb, -sb], [sb, cb]]; S(-a) = [[1, -t], [0, 1]]; F = [[-1, 0], [0, 1]] when flipping.
            let mut m = [[cb - t * sb, -sb - t * cb], [sb, cb]];
            if flip {
                m[0][0] = -m[0][0];
                m[0][1] = -m[0][1];
            }
            warp(rgb, mask, w, h, m);
        }

        if con_u < self.contrast_p {
            let alpha = 1.0 + sym(con_v, self.contrast);
            let mean = rgb.iter().map(|&v| v as f64).sum::<f64>() as f32 / rgb.len() as f32;
            rgb.iter_mut().for_each(|v| *v = mean + (*v - mean) * alpha);
        }
        if bri_u < self.brightness_p {
            let beta = sym(bri_v, self.brightness);
            rgb.iter_mut().for_each(|v| *v += beta);
        }
        rgb.iter_mut().for_each(|v| *v = v.clamp(0.0, 1.0));
    }
}

/// Reflect-101 an integer coordinate into 0..n: -1 -> 1, n -> n-2.
fn reflect101(i: i64, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let period = 2 * (n as i64 - 1);
    let i = i.rem_euclid(period);
    (if i >= n as i64 { period - i } else { i }) as usize
}

/// Box blur of one `[h, w]` plane with a k x k kernel (k odd), reflect-101 borders; separable.
fn box_blur(plane: &mut [f32], w: usize, h: usize, k: usize) {
    let r = (k / 2) as i64;
    let inv = 1.0 / k as f32;
    let mut tmp = vec![0f32; w * h];
    for y in 0..h {
        for x in 0..w {
            let s: f32 = (-r..=r).map(|d| plane[y * w + reflect101(x as i64 + d, w)]).sum();
            tmp[y * w + x] = s * inv;
        }
    }
    for y in 0..h {
        for x in 0..w {
            let s: f32 = (-r..=r).map(|d| tmp[reflect101(y as i64 + d, h) * w + x]).sum();
            plane[y * w + x] = s * inv;
        }
    }
}

/// Resample photo (bilinear) and mask (nearest) through the inverse map `src = m . (dst - c) + c`.
fn warp(rgb: &mut [f32], mask: &mut [f32], w: usize, h: usize, m: [[f32; 2]; 2]) {
    let (cx, cy) = ((w as f32 - 1.0) * 0.5, (h as f32 - 1.0) * 0.5);
    let src_rgb = rgb.to_vec();
    let src_mask = mask.to_vec();
    let hw = w * h;
    for y in 0..h {
        let dy = y as f32 - cy;
        for x in 0..w {
            let dx = x as f32 - cx;
            let sx = m[0][0] * dx + m[0][1] * dy + cx;
            let sy = m[1][0] * dx + m[1][1] * dy + cy;
            // Bilinear taps for the photo.
            let (x0, y0) = (sx.floor(), sy.floor());
            let (fx, fy) = (sx - x0, sy - y0);
            let (x0, y0) = (x0 as i64, y0 as i64);
            let (xa, xb) = (reflect101(x0, w), reflect101(x0 + 1, w));
            let (ya, yb) = (reflect101(y0, h), reflect101(y0 + 1, h));
            for c in 0..3 {
                let p = &src_rgb[c * hw..(c + 1) * hw];
                let top = p[ya * w + xa] * (1.0 - fx) + p[ya * w + xb] * fx;
                let bot = p[yb * w + xa] * (1.0 - fx) + p[yb * w + xb] * fx;
                rgb[c * hw + y * w + x] = top * (1.0 - fy) + bot * fy;
            }
            // Nearest for the mask.
            let (nx, ny) = (reflect101(sx.round() as i64, w), reflect101(sy.round() as i64, h));
            mask[y * w + x] = src_mask[ny * w + nx];
        }
    }
}
