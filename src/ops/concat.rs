//! concat: join two NCHW tensors along channels, `y = [a, b]` (the U-Net decoder's `cat([upsampled, skip], 1)`).
//!
//! Shapes: a `[N, Ca, H, W]`, b `[N, Cb, H, W]` -> y `[N, Ca + Cb, H, W]`.
//! Gradient: the upstream gradient is split back, `ga = gy[:, :Ca]`, `gb = gy[:, Ca:]`. Nothing is saved but Ca.
//!
//! Launch: one invocation per element of y (forward) or gy (backward). At batch 16 the decoder's concat output
//! (128 x 96 x 192) is 151 MB, over lavapipe's 128 MiB binding limit, so the batch is split into runs (`ops::runs`).
//! When H*W % 4 == 0 (and every bound range starts 16-byte aligned) the `_vec4` entry points move 4 elements per
//! invocation instead.

use crate::check::{compare, f64s, rand_vec, CheckResult};
use crate::gpu::ShaderFile;
use crate::graph::{Tape, Var};
use crate::ops::runs::batch_runs;
use crate::ops::vec4_offset_ok;
use crate::tensor::Tensor;

pub const SHADERS: &[ShaderFile] = &[ShaderFile { file: "concat.wgsl", source: include_str!("../../shaders/concat.wgsl"), subgroups: false }];

crate::ops::params! {
    /// Mirror of WGSL `Params` in shaders/concat.wgsl.
    pub struct Params {
        /// Batch items in this launch.
        pub n: u32,
        pub ca: u32,
        pub cb: u32,
        /// H * W.
        pub hw: u32,
    }
}

/// y = [a, b] along channels  // a: [N, Ca, H, W], b: [N, Cb, H, W] -> y: [N, Ca + Cb, H, W]
pub fn concat_forward(a: &Tensor, b: &Tensor) -> Tensor {
    let (n, ca, h, w) = a.nchw("concat_forward");
    let (nb, cb, hb, wb) = b.nchw("concat_forward");
    assert!((n, h, w) == (nb, hb, wb), "concat_forward: a {:?} and b {:?} must agree in N, H and W", a.shape, b.shape);
    let gpu = a.gpu();
    let hw = h * w;
    let y = Tensor::empty(gpu, &[n, ca + cb, h, w]);
    // Bytes one batch item occupies in a tensor of c channels. Usually one run covers the whole batch; at batch 16
    // the decoder's 151 MB concat runs as several, each binding items [n0, n0 + cnt) of all three tensors, so the
    // kernel always indexes from its own first item.
    let item = |c: usize| (c * hw * 4) as u64;
    for (n0, cnt) in batch_runs(gpu, "concat_forward", n, &[item(ca), item(cb), item(ca + cb)]) {
        let p = Params { n: cnt as u32, ca: ca as u32, cb: cb as u32, hw: hw as u32 };
        let binds = [
            ("a", a.bind_range(n0 * ca * hw, cnt * ca * hw)),
            ("b", b.bind_range(n0 * cb * hw, cnt * cb * hw)),
            ("y", y.bind_range(n0 * (ca + cb) * hw, cnt * (ca + cb) * hw)),
        ];
        let total = cnt * (ca + cb) * hw;
        // One list for both entry points: `concat_forward_vec4` reads the same ranges through its views a4, b4, y4.
        if hw % 4 == 0 && binds.iter().all(|(_, b)| vec4_offset_ok(gpu, b.offset)) {
            gpu.dispatch_1d("concat_forward_vec4", &p, &binds, total as u64 / 4);
        } else {
            gpu.dispatch_1d("concat_forward", &p, &binds, total as u64);
        }
    }
    y
}

/// (ga, gb) = (gy[:, :ca], gy[:, ca:])  // gy: [N, Ca + Cb, H, W] -> ga: [N, Ca, H, W], gb: [N, Cb, H, W]
pub fn concat_backward(gy: &Tensor, ca: usize) -> (Tensor, Tensor) {
    let (n, c, h, w) = gy.nchw("concat_backward");
    assert!(ca <= c, "concat_backward: ca = {ca} exceeds gy's {c} channels");
    let cb = c - ca;
    let gpu = gy.gpu();
    let hw = h * w;
    let ga = Tensor::empty(gpu, &[n, ca, h, w]);
    let gb = Tensor::empty(gpu, &[n, cb, h, w]);
    // Same batch runs as the forward (see there); one invocation per gy element writes its ga or gb element.
    let item = |c: usize| (c * hw * 4) as u64;
    for (n0, cnt) in batch_runs(gpu, "concat_backward", n, &[item(ca), item(cb), item(c)]) {
        let p = Params { n: cnt as u32, ca: ca as u32, cb: cb as u32, hw: hw as u32 };
        let binds = [
            ("gy", gy.bind_range(n0 * c * hw, cnt * c * hw)),
            ("ga", ga.bind_range(n0 * ca * hw, cnt * ca * hw)),
            ("gb", gb.bind_range(n0 * cb * hw, cnt * cb * hw)),
        ];
        if hw % 4 == 0 && binds.iter().all(|(_, b)| vec4_offset_ok(gpu, b.offset)) {
            gpu.dispatch_1d("concat_backward_vec4", &p, &binds, (cnt * c * hw) as u64 / 4);
        } else {
            gpu.dispatch_1d("concat_backward", &p, &binds, (cnt * c * hw) as u64);
        }
    }
    (ga, gb)
}

/// Autograd: saves Ca only; dL/da, dL/db = concat_backward(dL/dy, Ca).
pub fn concat(tape: &Tape, a: &Var, b: &Var) -> Var {
    let y = concat_forward(&a.t, &b.t);
    let ca = a.t.shape[1];
    tape.record("concat", &[a, b], y, move |gy| {
        let (ga, gb) = concat_backward(gy, ca);
        vec![Some(ga), Some(gb)]
    })
}

/// The f64 oracle. Tensors are flat NCHW slices; `hw` = H * W.
pub mod cpu {
    /// Per batch item: a's Ca planes, then b's Cb planes.
    pub fn concat_forward(a: &[f64], b: &[f64], n: usize, ca: usize, cb: usize, hw: usize) -> Vec<f64> {
        let mut y = Vec::with_capacity(n * (ca + cb) * hw);
        for i in 0..n {
            y.extend_from_slice(&a[i * ca * hw..(i + 1) * ca * hw]);
            y.extend_from_slice(&b[i * cb * hw..(i + 1) * cb * hw]);
        }
        y
    }
    /// Per batch item: the first Ca planes of gy go to ga, the rest to gb.
    pub fn concat_backward(gy: &[f64], n: usize, ca: usize, cb: usize, hw: usize) -> (Vec<f64>, Vec<f64>) {
        let (mut ga, mut gb) = (Vec::new(), Vec::new());
        for i in 0..n {
            let base = i * (ca + cb) * hw;
            ga.extend_from_slice(&gy[base..base + ca * hw]);
            gb.extend_from_slice(&gy[base + ca * hw..base + (ca + cb) * hw]);
        }
        (ga, gb)
    }
}

/// GPU vs CPU on odd shapes (N = 1, primes, planes not multiples of the workgroup). A copy is exact: tolerance 0.
/// Each row is labelled with the kernel that ran, as the device profiler counted it (`take_profile`), asserted to be
/// the one the options and the shape call for.
pub fn self_check(gpu: &std::sync::Arc<crate::gpu::Gpu>, full: bool) -> Vec<CheckResult> {
    let mut out = Vec::new();
    // (N, Ca, Cb, H, W)
    // H*W % 4 == 0 ((1, 3, 2, 2, 6), (3, 5, 7, 1, 4) and the full one) takes the vec4 kernels; (1, 3, 2, 2, 6) is
    // checked again with them switched off.
    let mut shapes = vec![
        (1usize, 1usize, 1usize, 1usize, 1usize, true),
        (2, 3, 4, 5, 7, true),
        (1, 17, 19, 13, 17, true),
        (3, 5, 2, 7, 11, true),
        (1, 3, 2, 2, 6, true),
        (1, 3, 2, 2, 6, false),
        (3, 5, 7, 1, 4, true),
    ];
    if full {
        shapes.push((2, 64, 64, 96, 192, true)); // the decoder's x2 concat at batch 2
    }
    gpu.set_profiling(true);
    // The one entry point the last launch ran, asserted to be `want`, as "vec4" or "scalar".
    let ran = |want: &str| crate::check::kernel_label(gpu, "concat self_check", want);
    for (n, ca, cb, h, w, vec4) in shapes {
        let _guard = gpu.scoped(|o| o.vec4 = vec4);
        // Whole tensors (offset 0): the shape alone decides.
        let v4 = if (h * w) % 4 == 0 && vec4_offset_ok(gpu, 0) { "_vec4" } else { "" };
        let shape = format!("[{n},{ca}]+[{n},{cb}] x {h}x{w}");
        let hw = h * w;
        let a = rand_vec(n * ca * hw, 31);
        let b = rand_vec(n * cb * hw, 32);
        let gy = rand_vec(n * (ca + cb) * hw, 33);
        let y =
            concat_forward(&Tensor::from_slice(gpu, &[n, ca, h, w], &a), &Tensor::from_slice(gpu, &[n, cb, h, w], &b));
        let y = y.to_vec();
        let label = format!("{shape} {}", ran(&format!("concat_forward{v4}")));
        let want = cpu::concat_forward(&f64s(&a), &f64s(&b), n, ca, cb, hw);
        out.push(compare("concat_forward", &label, &y, &want, 0.0, 0.0));
        let (ga, gb) = concat_backward(&Tensor::from_slice(gpu, &[n, ca + cb, h, w], &gy), ca);
        let (ga, gb) = (ga.to_vec(), gb.to_vec());
        let label = format!("{shape} {}", ran(&format!("concat_backward{v4}")));
        let (wa, wb) = cpu::concat_backward(&f64s(&gy), n, ca, cb, hw);
        out.push(compare("concat_backward", &format!("{label} ga"), &ga, &wa, 0.0, 0.0));
        out.push(compare("concat_backward", &format!("{label} gb"), &gb, &wb, 0.0, 0.0));
    }
    gpu.set_profiling(false);
    out
}
