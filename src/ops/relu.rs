//! relu: `y = max(x, 0)`, elementwise, any shape.
//!
//! Gradient: `dx = gy * (y > 0)` (0 at x == 0, as PyTorch). The forward output y is what the backward saves: it tells
//! where the unit was active and is usually alive anyway as the next layer's input.
//!
//! Launch: one invocation per element (`relu_forward`, `relu_backward`), or per 4 elements through vec4 views
//! (`relu_forward_vec4`, `relu_backward_vec4`) when a run's element count is a multiple of 4 and its range starts
//! 16-byte aligned (`ops::vec4_range_ok`); tensors larger than one storage binding run in several element ranges
//! (`ops::runs`).

use crate::check::{compare, f64s, rand_vec, CheckResult};
use crate::gpu::ShaderFile;
use crate::graph::{Tape, Var};
use crate::ops::runs::elem_runs;
use crate::ops::vec4_range_ok;
use crate::tensor::Tensor;

pub const SHADERS: &[ShaderFile] = &[ShaderFile { file: "relu.wgsl", source: include_str!("../../shaders/relu.wgsl"), subgroups: false }];

crate::ops::params! {
    /// Mirror of WGSL `Params` in shaders/relu.wgsl.
    pub struct Params {
        pub n: u32,
        pub _pad: [u32; 3],
    }
}

/// y = max(x, 0)  // x, y: same shape
pub fn relu_forward(x: &Tensor) -> Tensor {
    let gpu = x.gpu();
    let y = Tensor::empty(gpu, &x.shape);
    // Normally one run; tensors over the binding limit go in aligned element ranges (`ops::runs`).
    for (s, c) in elem_runs(gpu, x.numel()) {
        let p = Params { n: c as u32, _pad: [0; 3] };
        // One list for both entry points: `relu_forward_vec4` reads x and y through its views x4, y4.
        let binds = [("x", x.bind_range(s, c)), ("y", y.bind_range(s, c))];
        if vec4_range_ok(gpu, binds[0].1.offset, c) {
            gpu.dispatch_1d("relu_forward_vec4", &p, &binds, c as u64 / 4);
        } else {
            gpu.dispatch_1d("relu_forward", &p, &binds, c as u64);
        }
    }
    y
}

/// dx = gy * (y > 0)  // y: the saved forward output; y, gy, dx: same shape
pub fn relu_backward(y: &Tensor, gy: &Tensor) -> Tensor {
    assert_eq!(y.shape, gy.shape, "relu_backward: y {:?} and gy {:?} differ", y.shape, gy.shape);
    let gpu = y.gpu();
    let dx = Tensor::empty(gpu, &y.shape);
    for (s, c) in elem_runs(gpu, y.numel()) {
        let p = Params { n: c as u32, _pad: [0; 3] };
        let binds = [("y_saved", y.bind_range(s, c)), ("gy", gy.bind_range(s, c)), ("dx", dx.bind_range(s, c))];
        if vec4_range_ok(gpu, binds[0].1.offset, c) {
            gpu.dispatch_1d("relu_backward_vec4", &p, &binds, c as u64 / 4);
        } else {
            gpu.dispatch_1d("relu_backward", &p, &binds, c as u64);
        }
    }
    dx
}

/// Autograd: saves the output y; dL/dx = relu_backward(y, dL/dy).
pub fn relu(tape: &Tape, x: &Var) -> Var {
    let y = relu_forward(&x.t);
    // Cloning a Tensor clones an Rc: the closure keeps y's buffer alive until the backward, no copy.
    let saved = y.clone();
    tape.record("relu", &[x], y, move |gy| vec![Some(relu_backward(&saved, gy))])
}

/// The f64 oracle.
pub mod cpu {
    pub fn relu_forward(x: &[f64]) -> Vec<f64> {
        x.iter().map(|&v| if v < 0.0 { 0.0 } else { v }).collect()
    }
    pub fn relu_backward(y: &[f64], gy: &[f64]) -> Vec<f64> {
        y.iter().zip(gy).map(|(&y, &g)| if y > 0.0 { g } else { 0.0 }).collect()
    }
}

/// GPU vs CPU on odd sizes (1, primes, not multiples of the 256-lane workgroup: scalar kernels) and multiples of 4
/// (4, 1028: vec4 kernels, checked again with them switched off); `full` adds 65,536 * 256 + 3 (scalar, past 65,535
/// workgroups: the folded grid) and 65,536 * 256 + 4 (vec4, 16,385 workgroups). relu is exact: tolerance 0.
/// Each row is labelled with the kernel that ran, as the device profiler counted it (`take_profile`), asserted to be
/// the one the options and the size call for.
pub fn self_check(gpu: &std::sync::Arc<crate::gpu::Gpu>, full: bool) -> Vec<CheckResult> {
    let mut out = Vec::new();
    let mut sizes = vec![(1usize, true), (257, true), (1031, true), (4, true), (1028, true), (1028, false)];
    if full {
        sizes.extend([(65_536 * 256 + 3, true), (65_536 * 256 + 4, true)]);
    }
    gpu.set_profiling(true);
    // The one entry point the last launch ran, asserted to be `want`, as "vec4" or "scalar".
    let ran = |want: &str| crate::check::kernel_label(gpu, "relu self_check", want);
    for (n, vec4) in sizes {
        let _guard = gpu.scoped(|o| o.vec4 = vec4);
        let v4 = if vec4_range_ok(gpu, 0, n) { "_vec4" } else { "" };
        let x = rand_vec(n, 11);
        let gy = rand_vec(n, 12);
        let xt = Tensor::from_slice(gpu, &[n], &x);
        let y = relu_forward(&xt);
        let yv = y.to_vec();
        let shape = format!("[{n}] {}", ran(&format!("relu_forward{v4}")));
        let want_y = cpu::relu_forward(&f64s(&x));
        out.push(compare("relu_forward", &shape, &yv, &want_y, 0.0, 0.0));
        let dx = relu_backward(&y, &Tensor::from_slice(gpu, &[n], &gy)).to_vec();
        let shape = format!("[{n}] {}", ran(&format!("relu_backward{v4}")));
        out.push(compare("relu_backward", &shape, &dx, &cpu::relu_backward(&want_y, &f64s(&gy)), 0.0, 0.0));
    }
    gpu.set_profiling(false);
    out
}
