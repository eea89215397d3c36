//! `fluke synth`: a procedural whale-fluke data set with exact masks, for tests, demos and benchmarks without real
//! photos. Sample i is drawn from its own ChaCha8 stream seeded by mix(seed, i), so it depends on (seed, i) only:
//! `--count 10` writes the first 10 of `--count 100`, byte for byte. (Byte-identical on one platform: the
//! f32 `exp`/`powf`/`sin` come from the platform's maths library, which may differ in the last bit elsewhere.)
//! About 0.1 s per photo per core.
//!
//! Layout written: `DIR/images/fluke_0000.jpg|png` (3 in 4 JPEG) and `DIR/masks/fluke_0000.png`
//! (8-bit grayscale, 255 = fluke, 0 = sea).
//!
//! The scene, back to front (pixel coordinates (x, y), y down). The fluke is drawn first, then a W x H frame is
//! cropped around it as in an identification catalogue: W in 300..=700, the fluke spanning 80-100% of it, H set by
//! the fluke's height, W/H kept within 1.3..4.2 (the real photos' range).
//! ```text
//!   sea      tint * (level * (1 + amp * (1.6 waves + 0.35 ripples)) + lighter towards the horizon + crests),
//!            waves = 4-octave value noise about 4.5x longer across than deep, on a perspective grid (small near
//!            the horizon, large near the camera; see `sea`); optionally a horizon with sky and a hazy coast.
//!   glare    a broad bright patch plus sparkles (thresholded fine noise on wave crests) inside it.
//!   fluke    a silhouette in its own frame (X right, Y up, half-span = 1, trailing-edge notch at the origin):
//!              lobe (side s = sign X, u = |X| / span_s in [0, 1]):
//!                top(u) = ht_s * u^p_s + bulge_s * sin(pi u) - notch_depth * exp(-(u / notch_w)^2) + serration(u)
//!                bottom(u) = top(u) - chord0 * (1 - u^2.5)^0.6 * (1 - 0.3 u)
//!                inside when u <= 1 and bottom(u) <= Y <= top(u)
//!              stalk (peduncle): |X| <= stalk_w, joined to the leading edge by a smooth fillet (see `inside`)
//!            placed with its stalk entering the water at (cx, wl), scaled by the half-span hs (px) and rotated by
//!            `angle`; everything below the (slightly wavy) water line is under water. Pose = per-side span (yaw),
//!            tip height (flat to V-shaped) and trailing-edge curve. Dark skin with texture, optional white underside
//!            pattern, light speckles (scars, barnacles), a darker rim along the trailing edge.
//!   splash   foam around the stalk at the water line (dense near it, patchy further out), and sometimes thin
//!            curtains of water dripping from the lobes (alpha < 0.5, so never part of the mask or hiding it).
//!   camera   haze, contrast, brightness, gamma, sensor noise, vignette, sometimes a slight blur; colour or
//!            grayscale (1 in 3).
//! ```
//! The photo antialiases the fluke edge with 4 sub-samples per pixel; the mask is the fluke test at the pixel
//! centre, above the water line and not under opaque foam (alpha >= 0.5): exactly the fluke you see.

use std::f32::consts::PI;
use std::path::Path;

use anyhow::{Context, Result};
use image::codecs::jpeg::JpegEncoder;
use image::{DynamicImage, GrayImage, Luma, Rgb, RgbImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::mix;

/// One synthetic sample.
pub struct SynthSample {
    /// `fluke_0000`...
    pub stem: String,
    /// Colour (Rgb8) or grayscale (Luma8).
    pub photo: DynamicImage,
    /// 255 = fluke, 0 = sea; same size as the photo.
    pub mask: GrayImage,
    /// "jpg" or "png": how `write_dataset` stores the photo.
    pub ext: &'static str,
    /// JPEG quality when `ext` is "jpg".
    pub quality: u8,
}

/// Write `count` samples to `out/images` and `out/masks` (created if needed), in parallel; deterministic.
pub fn write_dataset(out: &Path, count: usize, seed: u64) -> Result<()> {
    let (img_dir, mask_dir) = (out.join("images"), out.join("masks"));
    for d in [&img_dir, &mask_dir] {
        std::fs::create_dir_all(d).with_context(|| format!("cannot create the folder {}", d.display()))?;
    }
    (0..count).into_par_iter().try_for_each(|i| -> Result<()> {
        let s = render(i, seed);
        let photo_path = img_dir.join(format!("{}.{}", s.stem, s.ext));
        let mask_path = mask_dir.join(format!("{}.png", s.stem));
        if s.ext == "jpg" {
            let mut bytes = Vec::new();
            s.photo.write_with_encoder(JpegEncoder::new_with_quality(&mut bytes, s.quality))?;
            std::fs::write(&photo_path, bytes)
        } else {
            s.photo.save(&photo_path).map_err(std::io::Error::other)
        }
        .with_context(|| format!("cannot write {}", photo_path.display()))?;
        s.mask.save(&mask_path).with_context(|| format!("cannot write {}", mask_path.display()))?;
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Noise: hashed lattice values, smoothly interpolated (value noise), summed over octaves (fbm). All in [0, 1].
// Pure functions of (x, y, seed), so any pixel can be rendered on any thread in any order.

/// A uniform value in [0, 1) for the lattice point (x, y) under seed s (a multiply-xorshift integer hash; the top
/// 24 bits become the f32 mantissa exactly).
fn hash(x: i32, y: i32, s: u32) -> f32 {
    let mut h =
        (x as u32).wrapping_mul(0x8DA6_B343) ^ (y as u32).wrapping_mul(0xD816_3841) ^ s.wrapping_mul(0xCB1A_B31F);
    h ^= h >> 13;
    h = h.wrapping_mul(0x5BD1_E995);
    h ^= h >> 15;
    h = h.wrapping_mul(0x2C1B_3C6D);
    h ^= h >> 12;
    (h >> 8) as f32 / (1u32 << 24) as f32
}

/// Value noise: the four surrounding lattice values blended with the smoothstep fade 3t^2 - 2t^3 (C1 continuous,
/// so no grid lines show). Features are about 1 unit across.
fn vnoise(x: f32, y: f32, s: u32) -> f32 {
    let (xf, yf) = (x.floor(), y.floor());
    let (xi, yi) = (xf as i32, yf as i32);
    let fade = |t: f32| t * t * (3.0 - 2.0 * t);
    let (u, v) = (fade(x - xf), fade(y - yf));
    let a = hash(xi, yi, s) + (hash(xi + 1, yi, s) - hash(xi, yi, s)) * u;
    let b = hash(xi, yi + 1, s) + (hash(xi + 1, yi + 1, s) - hash(xi, yi + 1, s)) * u;
    a + (b - a) * v
}

/// Fractal sum of `octaves` value-noise layers, each twice the frequency and half the amplitude of the previous
/// (2.03, not 2, and per-octave offsets so the lattices never line up), normalised back to [0, 1].
fn fbm(x: f32, y: f32, s: u32, octaves: u32) -> f32 {
    let (mut sum, mut amp, mut norm, mut f) = (0.0, 1.0, 0.0, 1.0);
    for o in 0..octaves {
        sum += amp * vnoise(x * f + 17.3 * o as f32, y * f - 9.1 * o as f32, s.wrapping_add(o * 101));
        norm += amp;
        amp *= 0.5;
        f *= 2.03;
    }
    sum / norm
}

fn smoothstep(e0: f32, e1: f32, x: f32) -> f32 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

fn lerp3(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    std::array::from_fn(|c| a[c] + (b[c] - a[c]) * t)
}

// ---------------------------------------------------------------------------------------------------------------
// The scene: every random choice of one sample, drawn once.

/// One lobe's pose.
struct Lobe {
    span: f32,  // relative half-span (yaw foreshortening)
    ht: f32,    // tip height above the notch (half-spans)
    p: f32,     // trailing-edge curve exponent
    bulge: f32, // trailing-edge convexity
}

/// Every parameter of one picture. Lengths are in pixels unless said otherwise; the fluke's own shape parameters
/// are in half-spans (the fluke frame of the module header).
struct Scene {
    w: u32,
    h: u32,
    s: u32, // noise seed (each layer XORs its own constant in, so layers are independent)
    colour: bool,
    // sea: base brightness, colour tint, wave length (px at the bottom edge), wave contrast, whitecap strength
    level: f32,
    tint: [f32; 3],
    wave_len: f32,
    wave_amp: f32,
    crest: f32,
    horizon: Option<f32>, // y of the horizon (px)
    sky: [f32; 3],
    coast: Option<(f32, [f32; 3])>,           // height (px), colour
    glare: Option<(f32, f32, f32, f32, f32)>, // centre x, y, radius x, y, strength
    // fluke placement: stalk meets the water at (cx, wl); hs = half-span in px; frame axes in image coordinates
    cx: f32,
    wl: f32,
    hs: f32,
    right: (f32, f32), // canonical X axis in image coordinates
    up: (f32, f32),    // canonical Y axis in image coordinates
    y_water: f32,      // fluke-frame Y of the water line on the stalk (negative: below the notch)
    // fluke shape (half-spans): lobes, the notch's depth and width, the chord at the root, the stalk's half-width,
    // the fillet's width and depth, the serration of the trailing edge (amplitude, bumps per half-span)
    lobes: [Lobe; 2],
    notch_depth: f32,
    notch_w: f32,
    chord0: f32,
    stalk_w: f32,
    fillet_w: f32,
    fillet_r: f32,
    serr_amp: f32,
    serr_freq: f32,
    // skin: base darkness, tint, light direction, white underside pattern, light speckles
    skin: f32,
    skin_tint: [f32; 3],
    light: f32,                       // direction of the light on the skin (radians)
    pattern: Option<(f32, f32, f32)>, // scale, threshold, white level
    speckle: f32,
    // splash
    foam: Option<(f32, f32, f32)>, // half-width, height (px), whiteness
    drips: bool,
    // camera: haze blend, contrast about 0.5, brightness shift, gamma, noise sigma, vignette strength, 3x3 blur
    haze: f32,
    contrast: f32,
    bright: f32,
    gamma: f32,
    noise: f32,
    vignette: f32,
    blur: bool,
}

impl Scene {
    /// Draw a scene: the fluke's shape and pose first, then a frame cropped around it the way the photos of an
    /// identification catalogue are (the fluke spans most of the width), then the sea, the splash and the camera.
    fn draw(rng: &mut ChaCha8Rng, colour: bool) -> Scene {
        let s = rng.random::<u32>();

        // Fluke shape and pose (fluke frame: half-span = 1).
        let base_ht = rng.random_range(-0.08..0.6f32);
        let yaw = rng.random_range(0.72..1.0f32);
        let yaw_left = rng.random_bool(0.5);
        let lobes: [Lobe; 2] = std::array::from_fn(|i| Lobe {
            span: if (i == 0) == yaw_left { yaw } else { 1.0 },
            ht: base_ht + rng.random_range(-0.12..0.12),
            p: rng.random_range(0.8..1.6),
            bulge: rng.random_range(-0.04..0.08),
        });
        let chord0 = rng.random_range(0.4..0.6);
        let stalk_len = rng.random_range(0.02..0.35);
        let angle = rng.random_range(-12.0..12.0f32).to_radians();
        let (sa, ca) = angle.sin_cos();
        let mut sc = Scene {
            w: 0,
            h: 0,
            s,
            colour,
            level: if rng.random_bool(0.75) { rng.random_range(0.45..0.8) } else { rng.random_range(0.2..0.45) },
            tint: [[0.86, 0.95, 1.05], [0.8, 0.97, 1.0], [0.9, 1.0, 0.94], [0.65, 0.82, 1.1], [1.0, 1.0, 1.0]]
                [rng.random_range(0..5)],
            wave_len: 0.0,
            wave_amp: rng.random_range(0.15..0.45),
            crest: rng.random_range(0.0..0.3),
            horizon: None,
            sky: lerp3([0.85, 0.88, 0.92], [0.7, 0.8, 0.92], rng.random::<f32>()),
            coast: None,
            glare: None,
            cx: 0.0,
            wl: 0.0,
            hs: 1.0,
            right: (ca, sa),
            up: (sa, -ca),
            y_water: -chord0 - stalk_len,
            lobes,
            notch_depth: rng.random_range(0.03..0.08),
            notch_w: rng.random_range(0.03..0.06),
            chord0,
            stalk_w: rng.random_range(0.09..0.16),
            fillet_w: rng.random_range(0.1..0.25),
            fillet_r: rng.random_range(0.03..0.1),
            serr_amp: rng.random_range(0.003..0.012),
            serr_freq: rng.random_range(15.0..40.0),
            skin: rng.random_range(0.05..0.25),
            skin_tint: lerp3([1.0, 1.0, 1.0], [0.92, 0.97, 1.06], rng.random()),
            light: rng.random_range(0.0..std::f32::consts::TAU),
            pattern: rng
                .random_bool(0.55)
                .then(|| (rng.random_range(2.0..5.0), rng.random_range(0.45..0.65), rng.random_range(0.65..0.92))),
            speckle: rng.random_range(0.0..0.35),
            foam: None,
            drips: rng.random_bool(0.2),
            haze: if rng.random_bool(0.4) { rng.random_range(0.05..0.3) } else { 0.0 },
            contrast: rng.random_range(0.75..1.25),
            bright: rng.random_range(-0.07..0.07),
            gamma: rng.random_range(0.8..1.25),
            noise: rng.random_range(0.004..0.03),
            vignette: if rng.random_bool(0.3) { rng.random_range(0.05..0.25) } else { 0.0 },
            blur: rng.random_bool(0.4),
        };

        // Frame: the fluke's extent (at hs = 1, relative to where the stalk meets the water) sets the scale and
        // the height; aspect ratios stay within what the real photos show (about 1.3 to 4.2).
        let (x0, x1, ytop) = sc.extent();
        let w = rng.random_range(300..=700u32);
        let wf = w as f32;
        let hs = wf * rng.random_range(0.8..1.0) / (x1 - x0);
        let fluke_h = hs * ytop;
        let hf = (fluke_h / rng.random_range(0.7..0.95)).clamp(wf / 4.2, wf / 1.3);
        let h = (hf.round() as u32).max(100);
        let hf = h as f32;
        sc.w = w;
        sc.h = h;
        sc.hs = hs;
        // Water line: the fluke top sits a margin below the frame top (or is cut off when the frame is too flat).
        sc.wl = (fluke_h + (hf - fluke_h).max(0.0) * rng.random_range(0.25..0.9)).min(hf * 1.04);
        // Centre the fluke's extent, with some slack.
        let slack = (wf - hs * (x1 - x0)).max(0.0) * 0.5;
        sc.cx = wf * 0.5 - hs * (x0 + x1) * 0.5 + slack * rng.random_range(-0.8..0.8f32);
        sc.wave_len = wf * rng.random_range(0.04..0.12);
        sc.horizon = rng.random_bool(0.35).then(|| hf * rng.random_range(0.04..0.22));
        sc.coast = (sc.horizon.is_some() && rng.random_bool(0.5))
            .then(|| (hf * rng.random_range(0.05..0.16), lerp3([0.45, 0.5, 0.55], [0.35, 0.4, 0.38], rng.random())));
        sc.glare = rng.random_bool(0.6).then(|| {
            (
                wf * rng.random_range(0.1..0.9),
                hf * rng.random_range(0.1..0.6),
                wf * rng.random_range(0.15..0.5),
                hf * rng.random_range(0.1..0.3),
                rng.random_range(0.3..1.0),
            )
        });
        sc.foam = rng.random_bool(0.75).then(|| {
            (
                hs * sc.stalk_w * rng.random_range(2.0..6.0),
                hf * rng.random_range(0.03..0.1),
                rng.random_range(0.8..0.97),
            )
        });
        sc
    }

    /// The fluke's horizontal extent (x0, x1) and its height above the water (ytop), in image directions at
    /// hs = 1 relative to the point where the stalk meets the water: traced along both lobes' edges.
    fn extent(&self) -> (f32, f32, f32) {
        let (mut x0, mut x1, mut ytop) = (0f32, 0f32, 0f32);
        for side in 0..2 {
            let sign = if side == 0 { -1.0 } else { 1.0 };
            for k in 0..=64 {
                let u = k as f32 / 64.0;
                let (top, chord) = self.lobe_edges(side, u);
                for yc in [top, top - chord] {
                    let (xc, yr) = (sign * u * self.lobes[side].span, yc - self.y_water);
                    let x = xc * self.right.0 + yr * self.up.0;
                    let y = xc * self.right.1 + yr * self.up.1; // image y (down) relative to the water point
                    x0 = x0.min(x);
                    x1 = x1.max(x);
                    ytop = ytop.max(-y);
                }
            }
        }
        (x0, x1, ytop)
    }

    /// Image point -> fluke frame (X, Y).
    fn to_fluke(&self, x: f32, y: f32) -> (f32, f32) {
        let (dx, dy) = (x - self.cx, y - self.wl);
        let xc = (dx * self.right.0 + dy * self.right.1) / self.hs;
        let yc = (dx * self.up.0 + dy * self.up.1) / self.hs + self.y_water;
        (xc, yc)
    }

    /// Trailing edge height and chord of the lobe at (side, u).
    fn lobe_edges(&self, side: usize, u: f32) -> (f32, f32) {
        let l = &self.lobes[side];
        let serr = self.serr_amp * (2.0 * vnoise(u * self.serr_freq, side as f32 * 7.0, self.s ^ 0x51) - 1.0);
        let top = l.ht * u.powf(l.p) + l.bulge * (PI * u).sin()
            - self.notch_depth * (-(u / self.notch_w).powi(2)).exp()
            + serr * smoothstep(0.0, 0.1, u);
        let chord = self.chord0 * (1.0 - u.powf(2.5)).max(0.0).powf(0.6) * (1.0 - 0.3 * u);
        (top, chord)
    }

    /// Is the fluke-frame point (X, Y) inside the silhouette (ignoring the water)? Between the trailing edge
    /// top(u) and the lower edge: the leading edge bottom(u) away from the centre, the stalk's sides
    /// (|X| <= stalk_w, no lower edge) at the centre, and in between a fillet that leaves the leading edge with zero
    /// slope and turns vertical at the stalk:
    /// `lower = bottom(u) - fillet_r * (1 - t)^2 / t` with `t = (|X| - stalk_w) / fillet_w` in (0, 1).
    fn inside(&self, xc: f32, yc: f32) -> bool {
        let side = usize::from(xc >= 0.0);
        let u = xc.abs() / self.lobes[side].span;
        if u > 1.0 {
            return false;
        }
        let (top, chord) = self.lobe_edges(side, u);
        if yc > top {
            return false;
        }
        let t = (xc.abs() - self.stalk_w) / self.fillet_w;
        if t <= 0.0 {
            return true;
        }
        let lower = top - chord - if t < 1.0 { self.fillet_r * (1.0 - t) * (1.0 - t) / t } else { 0.0 };
        yc >= lower
    }

    /// The water line at column x (small waves).
    fn water_y(&self, x: f32) -> f32 {
        self.wl + 2.5 * (vnoise(x / 14.0, 3.3, self.s ^ 0x77) - 0.5)
    }

    /// Is the image point (x, y) fluke: inside the silhouette and above the water?
    fn hit(&self, x: f32, y: f32) -> bool {
        let (xc, yc) = self.to_fluke(x, y);
        y <= self.water_y(x) && self.inside(xc, yc)
    }

    /// Fluke coverage of pixel (px, py) from 4 rotated-grid sub-samples (the 4-rook pattern).
    fn coverage(&self, px: u32, py: u32) -> f32 {
        let (x, y) = (px as f32 + 0.5, py as f32 + 0.5);
        let offs = [(-0.375, -0.125), (0.125, -0.375), (0.375, 0.125), (-0.125, 0.375)];
        offs.iter().filter(|(ox, oy)| self.hit(x + ox, y + oy)).count() as f32 / 4.0
    }

    fn sea(&self, x: f32, y: f32) -> [f32; 3] {
        let hf = self.h as f32;
        let hz = self.horizon.unwrap_or(-0.15 * hf);
        if y < hz {
            // Sky, and a distant coast just above the horizon.
            if let Some((ch, col)) = self.coast {
                let top = hz - ch * (0.35 + 0.65 * fbm(x / (self.w as f32 * 0.2), 0.5, self.s ^ 0xC0, 3));
                if y > top {
                    let t = 0.9 + 0.2 * fbm(x / 6.0, y / 6.0, self.s ^ 0xC1, 2);
                    return col.map(|c| c * t);
                }
            }
            return lerp3(self.sky, [0.95, 0.95, 0.96], (hz - y) / hz.max(1.0) * 0.5);
        }
        // Perspective on a flat sea: the scale of the waves grows from 0.2 at the horizon to 1 at the bottom edge;
        // u runs across (vanishing point at the centre column), v is depth, the integral of 1 / scale down the
        // image, so wave crests stay long and horizontal at every distance.
        let t = ((y - hz) / (hf - hz)).clamp(0.0, 1.0);
        let persp = 0.2 + 0.8 * t;
        let l = self.wave_len;
        let u = (x - 0.5 * self.w as f32) / (l * persp);
        let v = (hf - hz) / (0.8 * 0.22 * l) * persp.ln();
        let waves = fbm(u, v, self.s ^ 0x5EA, 4) - 0.5;
        let ripples = fbm(u * 4.0, v * 3.0, self.s ^ 0x21, 2) - 0.5;
        let mut lv = self.level * (1.0 + self.wave_amp * (waves * 1.6 + 0.35 * ripples)) + 0.12 * (1.0 - t) * (1.0 - t);
        lv += self.crest * smoothstep(0.12, 0.3, waves + 0.3 * ripples);
        if let Some((gx, gy, rx, ry, st)) = self.glare {
            let g = (-((x - gx) / rx).powi(2) - ((y - gy) / ry).powi(2)).exp();
            lv += 0.25 * st * g;
            let sparkle = smoothstep(0.78, 0.92, vnoise(x / 1.7, y / 1.2, self.s ^ 0x5B));
            lv += 0.9 * st * g * sparkle * smoothstep(-0.05, 0.15, waves + ripples);
        }
        self.tint.map(|c| c * lv)
    }

    fn skin(&self, xc: f32, yc: f32) -> [f32; 3] {
        // Mottled dark skin, lit from one side.
        let (ls, lc) = self.light.sin_cos();
        let mut lv = self.skin * (0.65 + 0.8 * fbm(xc * 6.0, yc * 6.0, self.s ^ 0xF1, 3))
            + 0.05 * (lc * xc + ls * yc).clamp(-1.0, 1.0)
            + 0.05;
        let side = usize::from(xc >= 0.0);
        let u = xc.abs() / self.lobes[side].span;
        let (top, chord) = if u <= 1.0 { self.lobe_edges(side, u) } else { (0.0, 0.0) };
        let in_lobe = u <= 1.0 && yc >= top - chord;
        if let Some((scale, th, white)) = self.pattern {
            if in_lobe {
                let n = fbm(xc * scale + 3.1, yc * scale * 1.3, self.s ^ 0xBA7, 4);
                // Dark rim along the trailing edge, and no pattern on the stalk.
                let rim = smoothstep(0.015, 0.06, top - yc) * smoothstep(0.0, 0.12, u + 0.15 * (n - 0.5));
                let wht = smoothstep(th, th + 0.05, n) * rim;
                lv += (white - lv) * wht * (0.85 + 0.3 * vnoise(xc * 40.0, yc * 40.0, self.s ^ 0x3));
            }
        }
        if self.speckle > 0.0 {
            let px = self.hs / 2.2; // speckle size ~2 px whatever the fluke size
            let sp = smoothstep(0.8, 0.9, vnoise(xc * px, yc * px, self.s ^ 0x5EC));
            lv += self.speckle * sp * (1.0 - lv);
        }
        self.skin_tint.map(|c| c * lv)
    }

    /// Foam opacity at pixel (x, y).
    fn foam(&self, x: f32, y: f32) -> f32 {
        let Some((fw, fh, _)) = self.foam else { return 0.0 };
        let dy = y - self.wl;
        let ey = if dy < 0.0 { dy / (0.6 * fh) } else { dy / fh };
        let env = (-((x - self.cx) / fw).powi(2) - ey * ey).exp();
        if env < 0.01 {
            return 0.0;
        }
        let n = fbm(x / 5.0, y / 3.5, self.s ^ 0xF0A, 4);
        ((n - (1.0 - env) * 0.6 - 0.28) * 5.0).clamp(0.0, 1.0)
    }

    /// Opacity of water dripping from the lobes (below a lobe, above the water; at most 0.3).
    fn drip(&self, x: f32, y: f32, xc: f32, yc: f32) -> f32 {
        if !self.drips || y > self.wl {
            return 0.0;
        }
        let side = usize::from(xc >= 0.0);
        let u = xc.abs() / self.lobes[side].span;
        if !(0.3..=0.8).contains(&u) {
            return 0.0;
        }
        let (top, chord) = self.lobe_edges(side, u);
        if yc >= top - chord {
            return 0.0;
        }
        let streak = smoothstep(0.62, 0.8, vnoise(x / 2.2, y / 45.0, self.s ^ 0xD1));
        0.3 * streak * smoothstep(0.0, 0.3, (top - chord) - yc).min(1.0) * (1.0 - smoothstep(0.6, 0.85, u))
    }
}

/// Render sample `index` of the data set with this seed.
pub fn render(index: usize, seed: u64) -> SynthSample {
    let mut rng = ChaCha8Rng::seed_from_u64(mix(seed, index as u64));
    // Every 3rd sample is grayscale and every 4th a PNG (offset by the seed), so any few consecutive samples mix
    // them.
    let sc = Scene::draw(&mut rng, !(index as u64 + seed).is_multiple_of(3));
    let ext = if !(index as u64 + seed / 3).is_multiple_of(4) { "jpg" } else { "png" };
    let quality = rng.random_range(80..=95u8);
    let (w, h) = (sc.w, sc.h);
    let mut rgb = vec![[0f32; 3]; (w * h) as usize];
    let mut mask = GrayImage::new(w, h);

    // The fluke test at every pixel centre (inside a loose bounding box of the fluke): this is the mask, and it
    // tells where the edge is, so the 4 sub-samples run only on pixels whose 3x3 neighbourhood is mixed.
    let reach = sc.hs * 1.3 * (1.0 + sc.lobes.iter().map(|l| l.ht.abs()).fold(0.0, f32::max) - sc.y_water);
    let (bx0, bx1) = (sc.cx - reach, sc.cx + reach);
    let (by0, by1) = (sc.wl - reach, sc.wl + 4.0);
    let centre: Vec<bool> = (0..w * h)
        .map(|i| {
            let (x, y) = ((i % w) as f32 + 0.5, (i / w) as f32 + 0.5);
            x >= bx0 && x <= bx1 && y >= by0 && y <= by1 && sc.hit(x, y)
        })
        .collect();
    let at = |px: i64, py: i64| centre[(py.clamp(0, h as i64 - 1) * w as i64 + px.clamp(0, w as i64 - 1)) as usize];

    // Back to front, per pixel: sea, fluke (antialiased), drips, foam; the mask from the same tests.
    for py in 0..h {
        for px in 0..w {
            let (x, y) = (px as f32 + 0.5, py as f32 + 0.5);
            let mut c = sc.sea(x, y);
            let (xc, yc) = sc.to_fluke(x, y);
            let inside = at(px as i64, py as i64);
            let mixed = (-1..=1).any(|dy| (-1..=1).any(|dx| at(px as i64 + dx, py as i64 + dy) != inside));
            let cov = if mixed { sc.coverage(px, py) } else { f32::from(u8::from(inside)) };
            if cov > 0.0 {
                c = lerp3(c, sc.skin(xc, yc), cov);
            }
            let d = sc.drip(x, y, xc, yc);
            if d > 0.0 {
                c = lerp3(c, [0.9, 0.93, 0.95], d);
            }
            let f = sc.foam(x, y);
            if f > 0.0 {
                let wht = sc.foam.map_or(0.9, |f| f.2) * (0.9 + 0.1 * vnoise(x / 2.0, y / 2.0, sc.s ^ 0xAB));
                c = lerp3(c, [wht, wht, wht * 1.01], f);
            }
            rgb[(py * w + px) as usize] = c;
            // Fluke where the pixel centre is inside the silhouette, above water, and not behind opaque foam.
            mask.put_pixel(px, py, Luma([if inside && f < 0.5 { 255 } else { 0 }]));
        }
    }

    if sc.blur {
        rgb = blur3(&rgb, w as usize, h as usize);
    }
    // Camera: haze, vignette, contrast/brightness/gamma, sensor noise, then 8 bits.
    let haze_col = [0.8, 0.82, 0.85];
    let (cxm, cym) = (w as f32 * 0.5, h as f32 * 0.5);
    let finish = |i: usize, c: [f32; 3]| -> [f32; 3] {
        let (x, y) = ((i as u32 % w) as f32, (i as u32 / w) as f32);
        let mut c = lerp3(c, haze_col, sc.haze);
        let r2 = ((x - cxm) / cxm).powi(2) + ((y - cym) / cym).powi(2);
        let vig = 1.0 - sc.vignette * r2 * 0.5;
        let n = sc.noise * (2.0 * hash(x as i32, y as i32, sc.s ^ 0x9) - 1.0) * 1.7;
        for (k, v) in c.iter_mut().enumerate() {
            let nk = n + 0.3 * sc.noise * (2.0 * hash(x as i32, y as i32, sc.s ^ (0x10 + k as u32)) - 1.0);
            let t = ((*v * vig - 0.5) * sc.contrast + 0.5 + sc.bright).clamp(0.0, 1.0);
            *v = (t.powf(sc.gamma) + nk).clamp(0.0, 1.0);
        }
        c
    };
    let q = |v: f32| (v * 255.0).round() as u8;
    // Grayscale photos use the Rec. 601 luma weights, as a camera or PIL's convert("L") would.
    let photo = if sc.colour {
        let mut img = RgbImage::new(w, h);
        for (i, c) in rgb.iter().enumerate() {
            let c = finish(i, *c);
            img.put_pixel(i as u32 % w, i as u32 / w, Rgb(c.map(q)));
        }
        DynamicImage::ImageRgb8(img)
    } else {
        let mut img = GrayImage::new(w, h);
        for (i, c) in rgb.iter().enumerate() {
            let c = finish(i, *c);
            img.put_pixel(i as u32 % w, i as u32 / w, Luma([q(0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2])]));
        }
        DynamicImage::ImageLuma8(img)
    };
    SynthSample { stem: format!("fluke_{index:04}"), photo, mask, ext, quality }
}

/// 3x3 box blur with clamped borders (the camera's softness; the mask is not blurred).
fn blur3(src: &[[f32; 3]], w: usize, h: usize) -> Vec<[f32; 3]> {
    let mut out = vec![[0f32; 3]; w * h];
    for y in 0..h {
        for x in 0..w {
            let mut acc = [0f32; 3];
            for dy in -1i64..=1 {
                for dx in -1i64..=1 {
                    let xx = (x as i64 + dx).clamp(0, w as i64 - 1) as usize;
                    let yy = (y as i64 + dy).clamp(0, h as i64 - 1) as usize;
                    for c in 0..3 {
                        acc[c] += src[yy * w + xx][c];
                    }
                }
            }
            out[y * w + x] = acc.map(|v| v / 9.0);
        }
    }
    out
}
