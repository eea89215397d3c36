//! Test-time augmentation helpers on CPU tensors (one image, CHW f32, contiguous `x[(c * h + y) * w + x]`).
//!
//! TTA in predict: run the net on the photo and on its variants, map each prediction back to the photo's frame,
//! average. A horizontal flip is its own inverse, so the flipped run's map is flipped back with `hflip_map`;
//! a blur changes no geometry, so its map needs nothing.

/// Mirror left-right: `y[c, i, j] = x[c, i, w - 1 - j]`. Applying it twice gives `x` back.
pub fn hflip_chw(x: &[f32], c: usize, h: usize, w: usize) -> Vec<f32> {
    assert_eq!(x.len(), c * h * w, "hflip_chw: {} values, expected {c} x {h} x {w}", x.len());
    let mut y = Vec::with_capacity(x.len());
    for row in x.chunks_exact(w.max(1)) {
        y.extend(row.iter().rev());
    }
    y
}

/// Mirror a `[h * w]` map left-right (e.g. to bring the flipped run's probabilities back).
pub fn hflip_map(x: &[f32], h: usize, w: usize) -> Vec<f32> {
    hflip_chw(x, 1, h, w)
}

/// 3x3 box blur per channel with edge clamping:
/// `y[c, i, j] = 1/9 * sum_{di, dj in -1..=1} x[c, clamp(i + di, 0, h - 1), clamp(j + dj, 0, w - 1)]`.
/// Done as two separable 3-tap passes (rows, then columns), each 1/3 weighted; a constant image stays constant.
pub fn blur3x3_chw(x: &[f32], c: usize, h: usize, w: usize) -> Vec<f32> {
    assert_eq!(x.len(), c * h * w, "blur3x3_chw: {} values, expected {c} x {h} x {w}", x.len());
    if x.is_empty() {
        return Vec::new();
    }
    let third = 1.0f32 / 3.0;
    // Pass 1, along each row: t[.., j] = (x[j-1] + x[j] + x[j+1]) / 3 with clamped ends.
    let mut t = vec![0f32; x.len()];
    for (src, dst) in x.chunks_exact(w).zip(t.chunks_exact_mut(w)) {
        for j in 0..w {
            let l = src[j.saturating_sub(1)];
            let r = src[(j + 1).min(w - 1)];
            dst[j] = (l + src[j] + r) * third;
        }
    }
    // Pass 2, along each column of each channel plane.
    let mut y = vec![0f32; x.len()];
    for (src, dst) in t.chunks_exact(h * w).zip(y.chunks_exact_mut(h * w)) {
        for i in 0..h {
            let (u, d) = (i.saturating_sub(1), (i + 1).min(h - 1));
            for j in 0..w {
                dst[i * w + j] = (src[u * w + j] + src[i * w + j] + src[d * w + j]) * third;
            }
        }
    }
    y
}
