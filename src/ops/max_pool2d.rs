//! max_pool2d: 2-D max pooling, kernel k x k, stride s, padding p (implicit -inf), PyTorch semantics including
//! `ceil_mode` (timm `legacy_seresnet34`'s stem: k = 3, s = 2, p = 0, ceil_mode = true; resnet-style: p = 1).
//!
//! Shapes: x `[N, C, H, W]` -> y, argmax `[N, C, OH, OW]`, OH = `output_size(H, k, s, p, ceil_mode)` (PyTorch's
//! `pooling_output_shape`: ceil_mode rounds up, then drops a last window that would start in the right padding).
//!
//! Forward: `y` = max over each window's in-image part; `argmax` = the index `iy * W + ix` within the input plane of
//! the first maximum in row-major window order (as PyTorch). The forward saves argmax for the backward.
//! **argmax is an f32 tensor** (tensors are f32 only): indices below 2^24 are exact f32 integers, and the launcher
//! asserts H * W < 2^24. It equals PyTorch's `return_indices=True` output.
//! Gradient (gather form): `dx[n, c, iy, ix] = sum of gy[n, c, oy, ox] over the windows whose argmax is iy * W + ix`.
//!
//! Launch: forward one invocation per output element, backward one per input element, or for k = 3, s = 2, p <= 1
//! (the stems) one per 2x2 block of input elements (`max_pool2d_backward_k3s2`, the same sums bit for bit, 3-4x
//! fewer loads); batches over the binding limit run in several launches (`ops::runs`).

use crate::check::{compare, f64s, rand_vec, CheckResult};
use crate::gpu::ShaderFile;
use crate::graph::{Tape, Var};
use crate::ops::runs::batch_runs;
use crate::tensor::Tensor;

pub const SHADERS: &[ShaderFile] = &[ShaderFile { file: "max_pool2d.wgsl", source: include_str!("../../shaders/max_pool2d.wgsl"), subgroups: false }];

crate::ops::params! {
    /// Mirror of WGSL `Params` in shaders/max_pool2d.wgsl.
    pub struct Params {
        /// N * C in this launch.
        pub planes: u32,
        pub h: u32,
        pub w: u32,
        pub oh: u32,
        pub ow: u32,
        pub k: u32,
        pub s: u32,
        pub pad: u32,
    }
}

/// Output length along one axis, exactly PyTorch's `pooling_output_shape` (dilation 1):
/// `floor((input + 2p - k + (ceil_mode ? s - 1 : 0)) / s) + 1`, minus one in ceil_mode when the last window would
/// start at or past `input + p` (entirely in the right padding).
pub fn output_size(input: usize, k: usize, s: usize, p: usize, ceil_mode: bool) -> usize {
    assert!(k > 0 && s > 0, "max_pool2d: kernel {k} and stride {s} must be positive");
    assert!(p <= k / 2, "max_pool2d: padding {p} must be at most half the kernel {k} (PyTorch's rule)");
    assert!(input + 2 * p >= k, "max_pool2d: input {input} + 2 * padding {p} is smaller than the kernel {k}");
    let mut out = (input + 2 * p - k + if ceil_mode { s - 1 } else { 0 }) / s + 1;
    if ceil_mode && (out - 1) * s >= input + p {
        out -= 1;
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn params(planes: usize, h: usize, w: usize, oh: usize, ow: usize, k: usize, s: usize, p: usize) -> Params {
    let u = |v: usize| v as u32;
    Params { planes: u(planes), h: u(h), w: u(w), oh: u(oh), ow: u(ow), k: u(k), s: u(s), pad: u(p) }
}

/// (y, argmax) = max pool of x  // x: [N, C, H, W] -> y, argmax: [N, C, OH, OW] (argmax as f32 plane indices)
pub fn max_pool2d_forward(x: &Tensor, k: usize, s: usize, p: usize, ceil_mode: bool) -> (Tensor, Tensor) {
    let (n, c, h, w) = x.nchw("max_pool2d_forward");
    assert!(h * w < 1 << 24, "max_pool2d_forward: a {h}x{w} plane has indices past 2^24, not exact as f32 argmax");
    let (oh, ow) = (output_size(h, k, s, p, ceil_mode), output_size(w, k, s, p, ceil_mode));
    let gpu = x.gpu();
    let y = Tensor::empty(gpu, &[n, c, oh, ow]);
    let argmax = Tensor::empty(gpu, &[n, c, oh, ow]);
    // Floats per batch item in x (pin) and in y / argmax (pout); runs bind whole items of all three.
    let (pin, pout) = (c * h * w, c * oh * ow);
    for (n0, cnt) in batch_runs(gpu, "max_pool2d_forward", n, &[(pin * 4) as u64, (pout * 4) as u64]) {
        let prm = params(cnt * c, h, w, oh, ow, k, s, p);
        let binds = [
            ("x", x.bind_range(n0 * pin, cnt * pin)),
            ("y", y.bind_range(n0 * pout, cnt * pout)),
            ("argmax", argmax.bind_range(n0 * pout, cnt * pout)),
        ];
        gpu.dispatch_1d("max_pool2d_forward", &prm, &binds, (cnt * pout) as u64);
    }
    (y, argmax)
}

/// dx[i] = sum of gy over the windows whose argmax is i  // gy, argmax: [N, C, OH, OW] -> dx: x_shape = [N, C, H, W]
pub fn max_pool2d_backward(
    gy: &Tensor,
    argmax: &Tensor,
    x_shape: &[usize],
    k: usize,
    s: usize,
    p: usize,
    ceil_mode: bool,
) -> Tensor {
    backward_with(gy, argmax, x_shape, (k, s, p, ceil_mode), blocks_fit(k, s, p))
}

/// Whether the 2x2-block backward (`max_pool2d_backward_k3s2`) serves this pool: k = 3, s = 2, p <= 1.
fn blocks_fit(k: usize, s: usize, p: usize) -> bool {
    k == 3 && s == 2 && p <= 1
}

/// `max_pool2d_backward`, with the 2x2-block kernel when `blocks` (where `blocks_fit`), else the generic one.
fn backward_with(gy: &Tensor, argmax: &Tensor, x_shape: &[usize], (k, s, p, ceil_mode): (usize, usize, usize, bool), blocks: bool) -> Tensor {
    assert!(!blocks || blocks_fit(k, s, p), "max_pool2d_backward_k3s2: k {k} s {s} p {p}");
    assert_eq!(x_shape.len(), 4, "max_pool2d_backward: x_shape {x_shape:?} is not NCHW");
    let (n, c, h, w) = (x_shape[0], x_shape[1], x_shape[2], x_shape[3]);
    let (oh, ow) = (output_size(h, k, s, p, ceil_mode), output_size(w, k, s, p, ceil_mode));
    assert_eq!(gy.shape, [n, c, oh, ow], "max_pool2d_backward: gy must be [N, C, OH, OW] for x {x_shape:?}");
    assert_eq!(argmax.shape, gy.shape, "max_pool2d_backward: argmax {:?} and gy {:?} differ", argmax.shape, gy.shape);
    let gpu = gy.gpu();
    let dx = Tensor::empty(gpu, x_shape);
    // One invocation per dx element; it finds the (at most ceil(k/s)^2) windows covering it by arithmetic.
    let (pin, pout) = (c * h * w, c * oh * ow);
    for (n0, cnt) in batch_runs(gpu, "max_pool2d_backward", n, &[(pin * 4) as u64, (pout * 4) as u64]) {
        let prm = params(cnt * c, h, w, oh, ow, k, s, p);
        let binds = [
            ("gy", gy.bind_range(n0 * pout, cnt * pout)),
            ("argmax_saved", argmax.bind_range(n0 * pout, cnt * pout)),
            ("dx", dx.bind_range(n0 * pin, cnt * pin)),
        ];
        if blocks {
            let per = h.div_ceil(2) * w.div_ceil(2);
            gpu.dispatch_1d("max_pool2d_backward_k3s2", &prm, &binds, (cnt * c * per) as u64);
        } else {
            gpu.dispatch_1d("max_pool2d_backward", &prm, &binds, (cnt * pin) as u64);
        }
    }
    dx
}

/// Autograd: saves argmax and x's shape; dL/dx = max_pool2d_backward(dL/dy, argmax, ...).
pub fn max_pool2d(tape: &Tape, x: &Var, k: usize, s: usize, p: usize, ceil_mode: bool) -> Var {
    let (y, argmax) = max_pool2d_forward(&x.t, k, s, p, ceil_mode);
    let x_shape = x.t.shape.clone();
    // argmax has y's size (a quarter of x at stride 2); x itself is not kept.
    tape.record("max_pool2d", &[x], y, move |gy| {
        vec![Some(max_pool2d_backward(gy, &argmax, &x_shape, k, s, p, ceil_mode))]
    })
}

/// The f64 oracle, a plain port of PyTorch's CPU kernel. `planes` = N * C; argmax as plane indices.
pub mod cpu {
    use super::output_size;

    #[allow(clippy::too_many_arguments)]
    pub fn max_pool2d_forward(
        x: &[f64],
        planes: usize,
        h: usize,
        w: usize,
        k: usize,
        s: usize,
        p: usize,
        ceil_mode: bool,
    ) -> (Vec<f64>, Vec<usize>) {
        let (oh, ow) = (output_size(h, k, s, p, ceil_mode), output_size(w, k, s, p, ceil_mode));
        let mut y = Vec::with_capacity(planes * oh * ow);
        let mut arg = Vec::with_capacity(planes * oh * ow);
        for pl in 0..planes {
            let xp = &x[pl * h * w..(pl + 1) * h * w];
            for oy in 0..oh {
                for ox in 0..ow {
                    // The window's in-image part [h0, h1) x [w0, w1); the padding never wins (it is -inf).
                    let (hs, ws) = ((oy * s) as isize - p as isize, (ox * s) as isize - p as isize);
                    let (h0, w0) = (hs.max(0) as usize, ws.max(0) as usize);
                    let (h1, w1) = (((hs + k as isize) as usize).min(h), ((ws + k as isize) as usize).min(w));
                    let (mut best, mut best_i) = (f64::NEG_INFINITY, h0 * w + w0);
                    for iy in h0..h1 {
                        for ix in w0..w1 {
                            let v = xp[iy * w + ix];
                            if v > best || v.is_nan() {
                                best = v;
                                best_i = iy * w + ix;
                            }
                        }
                    }
                    y.push(best);
                    arg.push(best_i);
                }
            }
        }
        (y, arg)
    }

    /// Scatter form (as PyTorch): each window adds its gy to the input element that won it.
    pub fn max_pool2d_backward(gy: &[f64], argmax: &[usize], planes: usize, h: usize, w: usize) -> Vec<f64> {
        let per = gy.len() / planes.max(1);
        let mut dx = vec![0.0; planes * h * w];
        for (o, (&g, &a)) in gy.iter().zip(argmax).enumerate() {
            dx[(o / per) * h * w + a] += g;
        }
        dx
    }
}

/// GPU vs CPU (forward values, argmax, backward) on odd shapes: N = 1, primes, planes not multiples of the workgroup,
/// k = 3 / s = 2 with p = 0 and 1 in both ceil modes, stride 1 (overlapping windows, up to 9 per element), k = 2.
/// `full` adds the stem pool of the U-Net at batch 4 (64 x 96 x 192). Where k = 3 and s = 2 the 2x2-block backward
/// runs and must equal the generic kernel's bit for bit (odd and even planes: half blocks at the edges).
pub fn self_check(gpu: &std::sync::Arc<crate::gpu::Gpu>, full: bool) -> Vec<CheckResult> {
    let mut out = Vec::new();
    // (N, C, H, W, k, s, p, ceil_mode)
    let mut cases = vec![
        (1usize, 1usize, 1usize, 1usize, 1usize, 1usize, 0usize, false),
        (1, 1, 7, 9, 3, 2, 0, true),
        (2, 3, 7, 9, 3, 2, 1, false),
        (2, 3, 7, 9, 3, 2, 1, true),
        (1, 5, 13, 17, 3, 2, 0, true),
        (3, 2, 12, 18, 3, 2, 0, true),
        (2, 3, 13, 17, 3, 2, 1, true),
        (1, 2, 11, 10, 3, 1, 1, false),
        (1, 3, 11, 11, 2, 2, 1, true),
        (2, 2, 10, 10, 2, 2, 0, false),
    ];
    if full {
        cases.push((4, 64, 96, 192, 3, 2, 0, true));
    }
    for (n, c, h, w, k, s, p, ceil) in cases {
        let (oh, ow) = (output_size(h, k, s, p, ceil), output_size(w, k, s, p, ceil));
        let shape = format!("[{n},{c},{h},{w}] k{k} s{s} p{p}{}", if ceil { " ceil" } else { "" });
        let x = rand_vec(n * c * h * w, 71);
        let gy = rand_vec(n * c * oh * ow, 72);
        let (y, arg) = max_pool2d_forward(&Tensor::from_slice(gpu, &[n, c, h, w], &x), k, s, p, ceil);
        let (want_y, want_arg) = cpu::max_pool2d_forward(&f64s(&x), n * c, h, w, k, s, p, ceil);
        out.push(compare("max_pool2d_forward", &shape, &y.to_vec(), &want_y, 0.0, 0.0));
        let want_arg_f: Vec<f64> = want_arg.iter().map(|&a| a as f64).collect();
        out.push(compare("max_pool2d_forward", &format!("{shape} argmax"), &arg.to_vec(), &want_arg_f, 0.0, 0.0));
        let dx =
            max_pool2d_backward(&Tensor::from_slice(gpu, &[n, c, oh, ow], &gy), &arg, &[n, c, h, w], k, s, p, ceil);
        let want_dx = cpu::max_pool2d_backward(&f64s(&gy), &want_arg, n * c, h, w);
        let dx = dx.to_vec();
        let blocks = blocks_fit(k, s, p);
        let label = format!("{shape}{}", if blocks { " (2x2 blocks)" } else { "" });
        out.push(compare("max_pool2d_backward", &label, &dx, &want_dx, 1e-6, 1e-6));
        if blocks {
            let gyt = Tensor::from_slice(gpu, &[n, c, oh, ow], &gy);
            let generic = backward_with(&gyt, &arg, &[n, c, h, w], (k, s, p, ceil), false).to_vec();
            // Tolerance 0: the two kernels' sums must be equal, term for term.
            out.push(compare("max_pool2d_backward", &format!("{shape} 2x2 blocks = generic kernel"), &dx, &f64s(&generic), 0.0, 0.0));
        }
    }
    out
}
