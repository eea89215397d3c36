//! adam: one Adam optimizer step as a kernel, in place on the parameter and its two moment buffers, PyTorch
//! semantics (torch.optim.Adam, no weight decay, no amsgrad):
//!
//!   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  mhat = m / (1 - b1^t);  vhat = v / (1 - b2^t)
//!   p -= lr * mhat / (sqrt(vhat) + eps)                         step t starts at 1
//!
//! The bias corrections are computed on the host in f64 and passed as `step_size = lr / (1 - b1^t)` and
//! `bc2_sqrt = sqrt(1 - b2^t)`; the kernel evaluates `p -= step_size * m / (sqrt(v) / bc2_sqrt + eps)`, the same
//! arrangement as PyTorch's single-tensor Adam (so eps sits on the bias-corrected sqrt(vhat)).
//! Defaults: b1 0.9, b2 0.999, eps 1e-8 (the Keras notebook used eps 1e-7 on the uncorrected sqrt(v); see
//! docs/unet-spec.md section 5).
//!
//! Launch: `adam_step_vec4` (4 elements per invocation through vec4 views) when the element count is a multiple of
//! 4, else `adam_step` (one per element).
//!
//! Not differentiable: no autograd wrapper. Shapes: p, g, m, v all the same (any shape), m and v start at zero.

use std::sync::Arc;

use crate::check::{compare, f64s, rand_vec, CheckResult};
use crate::gpu::{Gpu, ShaderFile};
use crate::tensor::Tensor;

pub const SHADERS: &[ShaderFile] = &[ShaderFile { file: "adam.wgsl", source: include_str!("../../shaders/adam.wgsl"), subgroups: false }];

/// PyTorch's defaults.
pub const BETA1: f32 = 0.9;
pub const BETA2: f32 = 0.999;
pub const EPS: f32 = 1e-8;

crate::ops::params! {
    /// Mirror of WGSL `Params` in shaders/adam.wgsl.
    pub struct Params {
        /// Number of elements.
        pub n: u32,
        /// lr / (1 - beta1^t): the learning rate with m's bias correction folded in.
        pub step_size: f32,
        /// sqrt(1 - beta2^t): v's bias correction, under the square root.
        pub bc2_sqrt: f32,
        /// Added to sqrt(vhat).
        pub eps: f32,
        /// Decay of v.
        pub beta2: f32,
        /// 1 - beta1: the lerp weight of g in m.
        pub one_minus_beta1: f32,
        /// 1 - beta2: the weight of g^2 in v.
        pub one_minus_beta2: f32,
        pub _pad0: u32,
    }
}

impl Params {
    /// Host side of the step: bias corrections in f64, rounded once to f32.
    pub fn new(n: usize, lr: f32, beta1: f32, beta2: f32, eps: f32, step: u32) -> Params {
        assert!(step >= 1, "adam_step: step counts from 1 (the bias correction 1 - beta^0 is 0), got {step}");
        let (b1, b2) = (beta1 as f64, beta2 as f64);
        let bc1 = 1.0 - b1.powi(step as i32);
        let bc2 = 1.0 - b2.powi(step as i32);
        Params {
            n: n as u32,
            step_size: (lr as f64 / bc1) as f32,
            bc2_sqrt: bc2.sqrt() as f32,
            eps,
            beta2,
            one_minus_beta1: (1.0 - b1) as f32,
            one_minus_beta2: (1.0 - b2) as f32,
            _pad0: 0,
        }
    }
}

/// In place: m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2; mhat = m/(1-b1^t); vhat = v/(1-b2^t);
/// p -= lr * mhat / (sqrt(vhat) + eps). step t starts at 1. Defaults b1 0.9, b2 0.999, eps 1e-8.
#[allow(clippy::too_many_arguments)]
pub fn adam_step(p: &Tensor, g: &Tensor, m: &Tensor, v: &Tensor, lr: f32, beta1: f32, beta2: f32, eps: f32, step: u32) {
    for (what, t) in [("gradient", g), ("m", m), ("v", v)] {
        assert_eq!(t.shape, p.shape, "adam_step: {what} shape {:?} differs from the parameter's {:?}", t.shape, p.shape);
    }
    let prm = Params::new(p.numel(), lr, beta1, beta2, eps, step);
    let binds = [("param", p.bind()), ("grad", g.bind()), ("m", m.bind()), ("v", v.bind())];
    // Whole buffers (offset 0): `adam_step_vec4` (reading the same names through its views) when n % 4 == 0.
    if crate::ops::vec4_range_ok(p.gpu(), 0, p.numel()) {
        p.gpu().dispatch_1d("adam_step_vec4", &prm, &binds, p.numel() as u64 / 4);
    } else {
        p.gpu().dispatch_1d("adam_step", &prm, &binds, p.numel() as u64);
    }
}

/// The f64 oracle.
pub mod cpu {
    /// One Adam step in place, textbook form: p -= lr * mhat / (sqrt(vhat) + eps).
    #[allow(clippy::too_many_arguments)]
    pub fn adam_step(p: &mut [f64], g: &[f64], m: &mut [f64], v: &mut [f64], lr: f64, b1: f64, b2: f64, eps: f64, step: u32) {
        let bc1 = 1.0 - b1.powi(step as i32);
        let bc2 = 1.0 - b2.powi(step as i32);
        for i in 0..p.len() {
            m[i] = b1 * m[i] + (1.0 - b1) * g[i];
            v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
            let mhat = m[i] / bc1;
            let vhat = v[i] / bc2;
            p[i] -= lr * mhat / (vhat.sqrt() + eps);
        }
    }
}

/// Gradient for step `s`: uniform in [-scale, scale), with every 13th value exactly 0 (m = v = 0 stays exact and the
/// update is then driven by eps alone).
pub fn grad_for(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut g = rand_vec(n, seed);
    for (i, x) in g.iter_mut().enumerate() {
        *x = if i % 13 == 0 { 0.0 } else { *x * scale };
    }
    g
}

/// `steps` Adam steps on n elements, GPU vs oracle after each step (p, m, v). Each row is labelled with the kernel
/// that ran, as the device profiler counted it (`take_profile`), asserted to be the one the options and n call for.
pub fn check_steps(gpu: &Arc<Gpu>, n: usize, steps: u32, seed: u64, lr: f32) -> Vec<CheckResult> {
    let (b1, b2, eps) = (BETA1, BETA2, EPS);
    let p0 = rand_vec(n, seed);
    let p = Tensor::from_slice(gpu, &[n], &p0);
    let m = Tensor::zeros(gpu, &[n]);
    let v = Tensor::zeros(gpu, &[n]);
    let (mut pc, mut mc, mut vc) = (f64s(&p0), vec![0.0; n], vec![0.0; n]);
    let mut out = Vec::new();
    let want = if crate::ops::vec4_range_ok(gpu, 0, n) { "adam_step_vec4" } else { "adam_step" };
    gpu.set_profiling(true);
    for step in 1..=steps {
        // Gradients shrink over the steps, as in training: exercises the bias corrections.
        let gv = grad_for(n, seed * 100 + step as u64, 1.0 / step as f32);
        let g = Tensor::from_slice(gpu, &[n], &gv);
        adam_step(&p, &g, &m, &v, lr, b1, b2, eps, step);
        cpu::adam_step(&mut pc, &f64s(&gv), &mut mc, &mut vc, lr as f64, b1 as f64, b2 as f64, eps as f64, step);
        let pv = p.to_vec();
        let l = format!("[{n}] {} step {step}", crate::check::kernel_label(gpu, &format!("adam_step [{n}] step {step}"), want));
        out.push(compare("adam_step (p)", &l, &pv, &pc, 1e-6, 1e-6));
        out.push(compare("adam_step (m)", &l, &m.to_vec(), &mc, 1e-7, 1e-5));
        out.push(compare("adam_step (v)", &l, &v.to_vec(), &vc, 1e-9, 1e-5));
    }
    gpu.set_profiling(false);
    out
}

/// Odd sizes (scalar kernel) and multiples of 4 (vec4 kernel, and scalar forced) over several steps; `full` adds
/// the 512x512x3x3 conv weight (2,359,296, vec4) and one size past 65,535 workgroups of 256 (folded grid, scalar).
pub fn self_check(gpu: &Arc<Gpu>, full: bool) -> Vec<CheckResult> {
    let mut out = Vec::new();
    out.extend(check_steps(gpu, 1, 3, 1, 1e-3));
    out.extend(check_steps(gpu, 1031, 5, 2, 1e-3));
    // Multiples of 4: the vec4 kernel, and the scalar one on the same size with vec4 switched off.
    out.extend(check_steps(gpu, 4, 3, 5, 1e-3));
    out.extend(check_steps(gpu, 1028, 5, 6, 1e-3));
    {
        let _scalar = gpu.scoped(|o| o.vec4 = false);
        out.extend(check_steps(gpu, 1028, 5, 6, 1e-3));
    }
    if full {
        out.extend(check_steps(gpu, 512 * 512 * 3 * 3, 4, 3, 1e-3));
        out.extend(check_steps(gpu, 65_536 * 256 + 3, 2, 4, 1e-2));
    }
    out
}
