//! roofline: the kernels `fluke bench` measures an adapter's attainable peaks with: `roofline_fma` (multiply-adds in
//! registers only: GFLOP/s) and `roofline_copy` (a vec4 copy: GB/s). Not part of the network and without a
//! gradient; checked against its f64 oracle like every op, so a figure is never taken from a kernel that computes
//! something else. Measured here (lavapipe, 2-core Intel Xeon with AVX-512): the same FMAs with one step per loop iteration
//! ran at 41 GFLOP/s, four steps per iteration at 93: llvmpipe's per-iteration loop bookkeeping is that expensive.
//!
//! ```text
//! fma:  per invocation i, 8 chains c = 0..7 of 4 lanes l:  a <- fma(a, M, C) for `iters` steps (a multiple of 4),
//!       a0 = start(i, c, l)
//!       out[i] = sum over chains and lanes;  FLOPs = n * iters * 64
//! copy: y[i] = x[i] (vec4 elements);  bytes = n * 32
//! ```

use std::sync::Arc;

use crate::check::{compare, rand_vec, CheckResult};
use crate::gpu::{Gpu, ShaderFile};
use crate::tensor::Tensor;

pub const SHADERS: &[ShaderFile] =
    &[ShaderFile { file: "roofline.wgsl", source: include_str!("../../shaders/roofline.wgsl"), subgroups: false }];

crate::ops::params! {
    /// Mirror of WGSL `Params` in shaders/roofline.wgsl.
    pub struct Params {
        /// Invocations (fma) or vec4 elements (copy).
        pub n: u32,
        /// fma steps per chain.
        pub iters: u32,
        pub _pad: [u32; 2],
    }
}

/// Floating-point operations of one `roofline_fma` launch: 8 chains x 4 lanes x (multiply + add) per step.
pub fn fma_flops(n: usize, iters: u32) -> f64 {
    n as f64 * iters as f64 * 64.0
}

/// out[i] = the chains' sum after `iters` steps (a multiple of 4: the loop body does four), for i in 0..n.
pub fn roofline_fma(gpu: &Arc<Gpu>, n: usize, iters: u32) -> Tensor {
    assert!(iters.is_multiple_of(4), "roofline_fma: {iters} steps is not a multiple of 4");
    let out = Tensor::empty(gpu, &[n]);
    let p = Params { n: n as u32, iters, _pad: [0; 2] };
    gpu.dispatch_1d("roofline_fma", &p, &[("out", out.bind())], n as u64);
    out
}

/// y = x, through vec4 loads and stores; x's element count must be a multiple of 4.
pub fn roofline_copy(x: &Tensor, y: &Tensor) {
    assert!(x.numel().is_multiple_of(4) && x.shape == y.shape, "roofline_copy: x {:?} and y {:?} must match, with a multiple of 4 elements", x.shape, y.shape);
    let n4 = x.numel() / 4;
    let p = Params { n: n4 as u32, iters: 0, _pad: [0; 2] };
    x.gpu().dispatch_1d("roofline_copy", &p, &[("x", x.bind()), ("y", y.bind())], n4 as u64);
}

/// The f64 oracle.
pub mod cpu {
    const M: f64 = 0.9990234375;
    const C: f64 = 0.0009765625;

    /// The sum `roofline_fma` writes for invocation i.
    pub fn roofline_fma(i: usize, iters: u32) -> f64 {
        let s = (i % 1024) as f64 / 1024.0;
        let base = [s, s * 0.5, s * 0.25, s * 0.125];
        let mut total = 0.0;
        for c in 0..8 {
            for b in base {
                let mut a = b + 0.01 * c as f64;
                for _ in 0..iters {
                    a = a * M + C;
                }
                total += a;
            }
        }
        total
    }
}

/// GPU vs oracle: the fma kernel at a few sizes and step counts (not multiples of the 256-lane workgroup), the copy
/// exactly (tolerance 0). `full` adds the fma kernel past 65,535 workgroups (the folded grid).
pub fn self_check(gpu: &Arc<Gpu>, full: bool) -> Vec<CheckResult> {
    let mut out = Vec::new();
    for (n, iters) in [(1usize, 4u32), (300, 8), (1029, 1000)] {
        let got = roofline_fma(gpu, n, iters).to_vec();
        let want: Vec<f64> = (0..n).map(|i| cpu::roofline_fma(i, iters)).collect();
        // 32 values near 1 summed in f32, each after `iters` rounded fmas: a few ulps of 32.
        out.push(compare("roofline_fma", &format!("[{n}] {iters} steps"), &got, &want, 1e-4, 1e-5));
    }
    if full {
        // Past 65,535 workgroups: the folded grid.
        let n = 65_536 * 256 + 3;
        let got = roofline_fma(gpu, n, 4).to_vec();
        let want: Vec<f64> = (0..n).map(|i| cpu::roofline_fma(i, 4)).collect();
        out.push(compare("roofline_fma", &format!("[{n}] 4 steps"), &got, &want, 1e-4, 1e-5));
    }
    for n in [4usize, 1028, 1 << 20] {
        let xv = rand_vec(n, 31);
        let x = Tensor::from_slice(gpu, &[n], &xv);
        let y = Tensor::empty(gpu, &[n]);
        roofline_copy(&x, &y);
        let want: Vec<f64> = xv.iter().map(|&v| v as f64).collect();
        out.push(compare("roofline_copy", &format!("[{n}]"), &y.to_vec(), &want, 0.0, 0.0));
    }
    out
}
