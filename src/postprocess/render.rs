//! Images made from a photo and its mask: tinted overlay, RGBA cut-out, crop on white, contact sheet, and the
//! (photo | true mask | predicted mask) rows that `fluke train` saves for validation.
//!
//! All masks are `[h * w]` u8, nonzero = fluke, with the photo's (w, h); a size mismatch is an assert.

use image::{imageops, Rgb, RgbImage, Rgba, RgbaImage};
use rayon::prelude::*;

use super::BBox;

/// Tint blended over fluke pixels by [`overlay`]: cyan, 45% opaque.
pub const TINT: [u8; 3] = [0, 255, 255];
pub const TINT_ALPHA: f32 = 0.45;
/// Colour of the mask's outline in [`overlay`].
pub const OUTLINE: [u8; 3] = [255, 40, 40];
const WHITE: Rgb<u8> = Rgb([255, 255, 255]);
/// Grey of the grid lines in contact sheets and overlay rows.
const GRID: Rgb<u8> = Rgb([170, 170, 170]);

fn check_sizes(op: &str, photo_w: u32, photo_h: u32, mask: &[u8]) {
    assert_eq!(
        mask.len(),
        photo_w as usize * photo_h as usize,
        "{op}: mask has {} values, photo is {photo_w} x {photo_h}",
        mask.len()
    );
}

/// Dilate a 0/1 map by a (2r+1) x (2r+1) square in O(w * h): a running count of set pixels in a sliding window,
/// first along rows, then along columns (the square is separable: max over a box = max of maxes).
fn dilate(m: &[u8], w: usize, h: usize, r: usize) -> Vec<u8> {
    if r == 0 {
        return m.to_vec();
    }
    // Rows: out[j] = any(m[j-r..=j+r]).
    let mut horiz = vec![0u8; m.len()];
    for (src, dst) in m.chunks_exact(w).zip(horiz.chunks_exact_mut(w)) {
        let mut count: usize = src[..r.min(w)].iter().map(|&v| v as usize).sum();
        for j in 0..w {
            if j + r < w {
                count += src[j + r] as usize; // enters the window
            }
            if j > r {
                count -= src[j - r - 1] as usize; // leaves the window
            }
            dst[j] = u8::from(count > 0);
        }
    }
    // Columns: the same window slid down, one counter per column.
    let mut out = vec![0u8; m.len()];
    let mut count = vec![0usize; w];
    for i in 0..r.min(h) {
        for j in 0..w {
            count[j] += horiz[i * w + j] as usize;
        }
    }
    for i in 0..h {
        for j in 0..w {
            if i + r < h {
                count[j] += horiz[(i + r) * w + j] as usize;
            }
            if i > r {
                count[j] -= horiz[(i - r - 1) * w + j] as usize;
            }
            out[i * w + j] = u8::from(count[j] > 0);
        }
    }
    out
}

/// The mask's outline, `thickness` pixels wide and centred on the border between fluke and background:
/// fluke pixels that touch background (4-neighbours; the image edge is not a border), dilated.
pub fn outline(mask: &[u8], w: u32, h: u32, thickness: u32) -> Vec<u8> {
    check_sizes("outline", w, h, mask);
    let (w, h) = (w as usize, h as usize);
    let on = |y: usize, x: usize| mask[y * w + x] != 0;
    let mut edge = vec![0u8; w * h];
    for y in 0..h {
        for x in 0..w {
            if on(y, x)
                && ((x > 0 && !on(y, x - 1))
                    || (x + 1 < w && !on(y, x + 1))
                    || (y > 0 && !on(y - 1, x))
                    || (y + 1 < h && !on(y + 1, x)))
            {
                edge[y * w + x] = 1;
            }
        }
    }
    dilate(&edge, w, h, (thickness.max(1) as usize - 1) / 2)
}

/// Outline width that reads at any photo size: ~1 px per 400 px of the short side, at least 1, odd.
fn outline_thickness(w: u32, h: u32) -> u32 {
    (w.min(h) / 400) * 2 + 1
}

fn blend(p: Rgb<u8>, c: [u8; 3], a: f32) -> Rgb<u8> {
    Rgb(std::array::from_fn(|k| (p[k] as f32 * (1.0 - a) + c[k] as f32 * a).round() as u8))
}

/// The photo with fluke pixels tinted [`TINT`] at [`TINT_ALPHA`] and the mask's outline drawn in [`OUTLINE`].
pub fn overlay(photo: &RgbImage, mask: &[u8]) -> RgbImage {
    let (w, h) = photo.dimensions();
    check_sizes("overlay", w, h, mask);
    let line = outline(mask, w, h, outline_thickness(w, h));
    let mut out = photo.clone();
    for (i, p) in out.pixels_mut().enumerate() {
        if line[i] != 0 {
            *p = Rgb(OUTLINE);
        } else if mask[i] != 0 {
            *p = blend(*p, TINT, TINT_ALPHA);
        }
    }
    out
}

/// The photo with the mask as alpha: colour channels unchanged, alpha 255 on the fluke, 0 elsewhere.
pub fn rgba(photo: &RgbImage, mask: &[u8]) -> RgbaImage {
    let (w, h) = photo.dimensions();
    check_sizes("rgba", w, h, mask);
    let mut out = RgbaImage::new(w, h);
    for ((o, p), &m) in out.pixels_mut().zip(photo.pixels()).zip(mask) {
        *o = Rgba([p[0], p[1], p[2], if m != 0 { 255 } else { 0 }]);
    }
    out
}

/// The notebook's tight crop: the `bbox` region of the photo, where fluke pixels keep their colour and every
/// other pixel is white. Output is `bbox.width() x bbox.height()`.
pub fn crop_on_white(photo: &RgbImage, mask: &[u8], bbox: BBox) -> RgbImage {
    let (w, h) = photo.dimensions();
    check_sizes("crop_on_white", w, h, mask);
    assert!(
        bbox.x0 < bbox.x1 && bbox.y0 < bbox.y1 && bbox.x1 <= w && bbox.y1 <= h,
        "crop_on_white: box {bbox:?} is empty or outside the {w} x {h} photo"
    );
    RgbImage::from_fn(bbox.width(), bbox.height(), |x, y| {
        let (px, py) = (bbox.x0 + x, bbox.y0 + y);
        if mask[(py * w + px) as usize] != 0 {
            *photo.get_pixel(px, py)
        } else {
            WHITE
        }
    })
}

/// Contact sheet: images left to right, top to bottom, `cols` per row, each scaled (aspect kept) to fit its
/// `cell_w x cell_h` cell and centred on white, cells separated by 1 px grey lines (also around the sheet).
/// The notebook shows 36 photos as 6 x 6; pass `&images[..36.min(n)]` for that. No images: one empty cell.
pub fn contact_sheet(images: &[RgbImage], cols: u32, cell_w: u32, cell_h: u32) -> RgbImage {
    assert!(cols > 0 && cell_w > 0 && cell_h > 0, "contact_sheet: cols and cell size must be positive");
    let rows = (images.len() as u32).div_ceil(cols).max(1);
    let cols_used = if images.is_empty() { 1 } else { cols.min(images.len() as u32) };
    let b = 1; // grid line width
    let mut sheet = RgbImage::from_pixel(cols_used * (cell_w + b) + b, rows * (cell_h + b) + b, GRID);
    // Letterbox: the largest size with the image's aspect that fits the cell. thumbnail box-averages when shrinking
    // (fast on 12 Mpx photos) and interpolates when enlarging; one image per rayon task.
    let smalls: Vec<Option<RgbImage>> = images
        .par_iter()
        .map(|img| {
            let (iw, ih) = img.dimensions();
            if iw == 0 || ih == 0 {
                return None;
            }
            let s = (cell_w as f64 / iw as f64).min(cell_h as f64 / ih as f64);
            let tw = ((iw as f64 * s).round() as u32).clamp(1, cell_w);
            let th = ((ih as f64 * s).round() as u32).clamp(1, cell_h);
            Some(imageops::thumbnail(img, tw, th))
        })
        .collect();
    let white_cell = RgbImage::from_pixel(cell_w, cell_h, WHITE);
    for (k, small) in smalls.iter().enumerate() {
        let (col, row) = (k as u32 % cols, k as u32 / cols);
        let (cx, cy) = (b + col * (cell_w + b), b + row * (cell_h + b));
        imageops::replace(&mut sheet, &white_cell, cx as i64, cy as i64);
        if let Some(small) = small {
            let (tw, th) = small.dimensions();
            imageops::replace(&mut sheet, small, (cx + (cell_w - tw) / 2) as i64, (cy + (cell_h - th) / 2) as i64);
        }
    }
    sheet
}

/// Colours of the predicted-mask panel in [`overlay_rows`]: agreement with the true mask at a glance.
pub const TRUE_POS: [u8; 3] = [255, 255, 255];
pub const FALSE_POS: [u8; 3] = [255, 60, 60];
pub const FALSE_NEG: [u8; 3] = [40, 140, 255];

/// Validation figure: one row per sample, `photo | true mask | predicted mask`, all at the model size, separated
/// by 2 px grey lines. True mask: white on black. Predicted mask: white where it agrees with the truth (true
/// positive), red where it adds fluke (false positive), blue where it misses fluke (false negative), black else.
pub fn overlay_rows(rows: &[(RgbImage, Vec<u8>, Vec<u8>)]) -> RgbImage {
    let Some((first, _, _)) = rows.first() else { return RgbImage::from_pixel(1, 1, WHITE) };
    let (w, h) = first.dimensions();
    let g = 2; // separator width
    let mut out = RgbImage::from_pixel(3 * w + 4 * g, rows.len() as u32 * (h + g) + g, GRID);
    for (r, (photo, truth, pred)) in rows.iter().enumerate() {
        assert_eq!(photo.dimensions(), (w, h), "overlay_rows: row {r} photo is not {w} x {h}");
        check_sizes("overlay_rows (true mask)", w, h, truth);
        check_sizes("overlay_rows (predicted mask)", w, h, pred);
        let y0 = g + r as u32 * (h + g);
        imageops::replace(&mut out, photo, g as i64, y0 as i64);
        let t = RgbImage::from_fn(w, h, |x, y| if truth[(y * w + x) as usize] != 0 { WHITE } else { Rgb([0, 0, 0]) });
        imageops::replace(&mut out, &t, (2 * g + w) as i64, y0 as i64);
        let p = RgbImage::from_fn(w, h, |x, y| {
            let i = (y * w + x) as usize;
            Rgb(match (truth[i] != 0, pred[i] != 0) {
                (true, true) => TRUE_POS,
                (false, true) => FALSE_POS,
                (true, false) => FALSE_NEG,
                (false, false) => [0, 0, 0],
            })
        });
        imageops::replace(&mut out, &p, (3 * g + 2 * w) as i64, y0 as i64);
    }
    out
}
