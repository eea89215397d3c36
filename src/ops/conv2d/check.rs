//! conv2d's self-check: every direction against the f64 oracle (`cpu`) on odd shapes, for each kernel family the
//! device can run, plus the packing kernels against their reference layout; `self_check` is what tests/ops/conv2d.rs
//! and `fluke check` run. A family is forced through the device's kernel options (`Gpu::scoped`), and a small
//! binding limit the same way (tests/ops/conv2d.rs), so these checks run exactly the launchers' code.

use std::sync::Arc;

use super::{conv2d_backward_bias, conv2d_backward_input, conv2d_backward_weight, conv2d_forward, conv2d_forward_relu, cpu, pack_kernel, pack_weights, Geom};
use crate::check::{compare, f64s, rand_vec, CheckResult};
use crate::gpu::{Family, Gpu};
use crate::tensor::Tensor;

/// One self-check case: x [n, cin, h, w], a k x k kernel to cout channels, stride, pad, bias.
#[derive(Clone, Copy, Debug)]
pub struct Case {
    pub n: usize,
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
    pub bias: bool,
}

impl Case {
    #[allow(clippy::too_many_arguments)]
    pub const fn new(n: usize, cin: usize, h: usize, w: usize, cout: usize, k: usize, stride: usize, pad: usize, bias: bool) -> Case {
        Case { n, cin, h, w, cout, k, stride, pad, bias }
    }
    fn label(&self) -> String {
        format!("{}x{}x{}x{} {}->{} k{} s{} p{}{}", self.n, self.cin, self.h, self.w, self.cin, self.cout, self.k, self.stride, self.pad, if self.bias { " +b" } else { "" })
    }
}

/// Odd shapes: size 1, primes, non-multiples of every tile, strides 1 and 2, pads 0/1/3, kernels 1/3/7, a [N,C,1,1]
/// 1x1 "FC" case with bias.
pub const CASES: &[Case] = &[
    Case::new(1, 1, 1, 1, 1, 1, 1, 0, false),
    Case::new(2, 3, 11, 13, 5, 3, 1, 1, true),
    Case::new(2, 4, 13, 7, 3, 3, 2, 1, false),
    Case::new(1, 3, 17, 19, 4, 7, 2, 3, false),
    Case::new(3, 5, 9, 11, 7, 1, 2, 0, false),
    Case::new(3, 37, 1, 1, 5, 1, 1, 0, true),
    Case::new(2, 6, 5, 5, 2, 3, 1, 0, true),
    Case::new(1, 2, 7, 5, 3, 3, 2, 3, true),
    // W % 4 == 0, 3x3 stride 1 pad 1: the vec4 forward (and stride-1 input grad), with a partial and a short row.
    Case::new(2, 5, 9, 20, 11, 3, 1, 1, true),
    Case::new(3, 4, 5, 12, 9, 3, 1, 1, false),
    // 4,440 positions: several partial-sum tiles in the weight and bias gradients.
    Case::new(3, 2, 40, 37, 3, 3, 1, 1, true),
    // Cin a multiple of 8, W % 4 == 0: the subgroup weight gradient; 20 channels pad to 16-channel blocks.
    Case::new(2, 8, 6, 12, 20, 3, 1, 1, true),
    Case::new(1, 16, 5, 8, 16, 3, 1, 1, false),
    // Strided with OW % 4 == 0: the vec4 / subgroup strided input gradients (7x7/2, 3x3/2 with 18 input channels
    // padded to 16-channel blocks, 1x1/2).
    Case::new(2, 3, 12, 16, 6, 7, 2, 3, false),
    Case::new(2, 18, 9, 16, 8, 3, 2, 1, false),
    Case::new(2, 5, 6, 8, 20, 1, 2, 0, true),
    // 3x3 stride 2 pad 1 with W = 2*OW and Cin % 8 == 0: the strided weight-gradient kernels (subgroup twin too).
    Case::new(2, 8, 8, 16, 12, 3, 2, 1, true),
    // Cout <= 4, W % 4 == 0: the strip weight gradient, with a partial strip (20 columns), Cin past one group of
    // 16, and 70 rows (two bands of 64).
    Case::new(2, 5, 9, 20, 1, 3, 1, 1, true),
    Case::new(1, 17, 6, 12, 3, 3, 1, 1, false),
    Case::new(1, 3, 70, 8, 1, 3, 1, 1, false),
];

/// Larger odd shapes (`full`): channel counts past the tile sizes of the fast kernels.
pub const CASES_FULL: &[Case] = &[
    Case::new(2, 19, 23, 29, 33, 3, 1, 1, false),
    Case::new(3, 17, 21, 18, 70, 3, 2, 1, true),
    Case::new(1, 67, 9, 7, 65, 1, 1, 0, false),
    Case::new(2, 24, 10, 16, 40, 3, 1, 1, false),
    // The stem's kernels past one group of 64 output channels (70: a second group whose lanes mostly store nothing).
    Case::new(2, 2, 8, 8, 70, 7, 2, 3, false),
];

/// Tolerances for a sum of `len` products of values in [-1, 1], accumulated in f32.
fn tol(len: usize) -> (f64, f64) {
    (1e-5 + 3e-7 * len as f64, 1e-4)
}

/// Every direction for one case, with the kernels the device's current options pick, against the f64 oracle.
pub fn check_case(gpu: &Arc<Gpu>, c: &Case, tag: &str) -> Vec<CheckResult> {
    let xs = [c.n, c.cin, c.h, c.w];
    let ws = [c.cout, c.cin, c.k, c.k];
    let g = Geom::new("conv2d self_check", &xs, &ws, c.stride, c.pad);
    let seed = (c.n * 7 + c.cin * 131 + c.h * 17 + c.cout * 5 + c.k) as u64;
    let x = rand_vec(xs.iter().product(), seed);
    let w = rand_vec(ws.iter().product(), seed + 1);
    let b = rand_vec(c.cout, seed + 2);
    let gy = rand_vec(g.y_shape().iter().product(), seed + 3);
    let (tx, tw, tb, tgy) = (
        Tensor::from_slice(gpu, &xs, &x),
        Tensor::from_slice(gpu, &ws, &w),
        Tensor::from_slice(gpu, &[c.cout], &b),
        Tensor::from_slice(gpu, &g.y_shape(), &gy),
    );
    let (x64, w64, b64, gy64) = (f64s(&x), f64s(&w), f64s(&b), f64s(&gy));
    let label = format!("{} {tag}", c.label());
    let mut out = Vec::new();

    let y = conv2d_forward(&tx, &tw, c.bias.then_some(&tb), c.stride, c.pad).to_vec();
    let want = cpu::forward(&x64, &xs, &w64, &ws, c.bias.then_some(&b64[..]), c.stride, c.pad);
    let (a, r) = tol(c.cin * c.k * c.k);
    out.push(compare("conv2d_forward", &label, &y, &want, a, r));
    // The ReLU epilogue (inference): the same kernel, max(y, 0) stored.
    let y = conv2d_forward_relu(&tx, &tw, c.bias.then_some(&tb), c.stride, c.pad).to_vec();
    let want: Vec<f64> = want.iter().map(|v| v.max(0.0)).collect();
    out.push(compare("conv2d_forward (ReLU epilogue)", &label, &y, &want, a, r));

    let gx = conv2d_backward_input(&tgy, &tw, &xs, c.stride, c.pad).to_vec();
    let want = cpu::backward_input(&gy64, &w64, &ws, &xs, c.stride, c.pad);
    let (a, r) = tol(c.cout * c.k * c.k);
    out.push(compare("conv2d_backward_input", &label, &gx, &want, a, r));

    let gw = conv2d_backward_weight(&tx, &tgy, &ws, c.stride, c.pad).to_vec();
    let want = cpu::backward_weight(&x64, &xs, &gy64, &ws, c.stride, c.pad);
    let (a, r) = tol(c.n * g.oh * g.ow);
    out.push(compare("conv2d_backward_weight", &label, &gw, &want, a, r));

    if c.bias {
        let gb = conv2d_backward_bias(&tgy).to_vec();
        let want = cpu::backward_bias(&gy64, &g.y_shape());
        out.push(compare("conv2d_backward_bias", &label, &gb, &want, a, r));
    }
    out
}

/// The packing kernels against the reference layouts (`cpu::packed_weights`, bit-identical), forward and flipped,
/// with channel counts that need zero padding and both block widths.
fn pack_checks(gpu: &Arc<Gpu>) -> Vec<CheckResult> {
    let mut out = Vec::new();
    // The gathering kernels (Cin*KH*KW not a multiple of 4), then the tile kernels: Cin % 4 == 0 with Cout and Cin
    // padded to a block, both block widths, a 1x1 (forward tile, flipped gather) and the network's own 3x3 shapes.
    let shapes = [
        ([5usize, 3, 3, 3], 8usize),
        ([20, 7, 3, 3], 16),
        ([6, 9, 7, 7], 8),
        ([3, 17, 1, 1], 16),
        ([20, 12, 3, 3], 16),
        ([13, 4, 3, 3], 8),
        ([6, 8, 1, 1], 16),
        ([64, 3, 7, 7], 16),
        ([1, 16, 3, 3], 16),
        ([512, 256, 3, 3], 16),
    ];
    for (ws, cw) in shapes {
        let wv = rand_vec(ws.iter().product(), ws[0] as u64 * 31 + ws[1] as u64);
        let w = Tensor::from_slice(gpu, &ws, &wv);
        let label = format!("{ws:?} cw {cw}");
        for flipped in [false, true] {
            let want = f64s(&cpu::packed_weights(&wv, ws, cw, flipped));
            out.push(compare(pack_kernel(&ws, cw, flipped).0, &label, &pack_weights(&w, cw, flipped).to_vec(), &want, 0.0, 0.0));
        }
    }
    out
}

/// The kernel families this device can run, each with its check tag: naive and auto everywhere, portable where auto
/// runs other kernels (subgroup twins, or the GEMM kernels on a GPU; on a CPU adapter without subgroups auto runs
/// exactly the portable kernels), and gemm where auto does not run it (CPU adapters).
pub fn families(gpu: &Gpu) -> Vec<(Family, &'static str)> {
    let mut f = vec![(Family::Naive, "naive"), (Family::Auto, "auto")];
    if gpu.has_subgroups() || !gpu.is_cpu() {
        f.push((Family::Portable, "portable"));
    }
    if gpu.is_cpu() {
        f.push((Family::Gemm, "gemm"));
    }
    f
}

/// GPU vs oracle for every direction in every family (`families`) on odd shapes; `full` adds larger channel counts.
/// Also the weight packing kernels.
pub fn self_check(gpu: &Arc<Gpu>, full: bool) -> Vec<CheckResult> {
    let mut out = pack_checks(gpu);
    let cases = CASES.iter().chain(if full { CASES_FULL } else { &[] });
    for c in cases {
        for (family, tag) in families(gpu) {
            let _family = gpu.scoped(|o| o.family = family);
            out.extend(check_case(gpu, c, tag));
        }
    }
    out
}

/// Weight and bias gradients at the U-Net's full reduction lengths (N*OH*OW = 294,912 positions) against the f64
/// oracle: the decoder's 16->16 3x3 at batch 4, 192x384, a batch-16 96x192 layer (64 channels in the model, 8 here)
/// and its stride-2 1x1 shortcut, with the device's kernels (and the naive and GEMM ones for the first). Run by
/// tests/ops/conv2d.rs.
pub fn full_size_checks(g: &Arc<Gpu>) -> Vec<CheckResult> {
    let cases: &[([usize; 4], usize, usize, usize, usize)] =
        &[([4, 16, 192, 384], 16, 3, 1, 1), ([16, 8, 96, 192], 8, 3, 1, 1), ([16, 8, 96, 192], 8, 1, 2, 0)];
    let mut res = Vec::new();
    for (i, &(xs, cout, k, stride, pad)) in cases.iter().enumerate() {
        let ws = [cout, xs[1], k, k];
        let geom = Geom::new("conv2d full-size check", &xs, &ws, stride, pad);
        let ys = geom.y_shape();
        let x = rand_vec(xs.iter().product(), 100 + i as u64);
        let gy = rand_vec(ys.iter().product(), 200 + i as u64);
        let (tx, tgy) = (Tensor::from_slice(g, &xs, &x), Tensor::from_slice(g, &ys, &gy));
        let (x64, gy64) = (f64s(&x), f64s(&gy));
        let want_w = cpu::backward_weight(&x64, &xs, &gy64, &ws, stride, pad);
        let want_b = cpu::backward_bias(&gy64, &ys);
        let npos = ys[0] * ys[2] * ys[3];
        // f32 sums of npos products in [-1, 1] (magnitude ~ sqrt(npos)/3 ~ 180); measured errors are ~6e-4. One
        // missing tile of 2,048 positions would be off by ~15.
        let (atol, rtol) = (1e-2, 1e-5);
        let what = format!("x {xs:?} w {ws:?} s{stride} ({npos} positions)");
        let gw = conv2d_backward_weight(&tx, &tgy, &ws, stride, pad).to_vec();
        res.push(compare("conv2d_backward_weight", &what, &gw, &want_w, atol, rtol));
        let gb = conv2d_backward_bias(&tgy).to_vec();
        res.push(compare("conv2d_backward_bias", &what, &gb, &want_b, atol, rtol));
        if i == 0 {
            for (family, tag) in [(Family::Naive, "naive"), (Family::Gemm, "gemm")] {
                let _family = g.scoped(|o| o.family = family);
                let gw = conv2d_backward_weight(&tx, &tgy, &ws, stride, pad).to_vec();
                res.push(compare("conv2d_backward_weight", &format!("{what} {tag}"), &gw, &want_w, atol, rtol));
            }
        }
    }
    res
}
