//! sigmoid: `y = 1 / (1 + exp(-x))`, elementwise, any shape (the U-Net's output activation and the SE gate).
//!
//! Gradient: `dx = gy * y * (1 - y)`, a function of the output alone, so the backward saves y (not x).
//! The kernel is stable for large |x|: exp only ever sees -|x| (see shaders/sigmoid.wgsl).
//!
//! Launch: one invocation per element; tensors larger than one storage binding run in element ranges (`ops::runs`).

use crate::check::{compare, f64s, rand_vec, CheckResult};
use crate::gpu::ShaderFile;
use crate::graph::{Tape, Var};
use crate::ops::runs::elem_runs;
use crate::tensor::Tensor;

pub const SHADERS: &[ShaderFile] = &[ShaderFile { file: "sigmoid.wgsl", source: include_str!("../../shaders/sigmoid.wgsl"), subgroups: false }];

crate::ops::params! {
    /// Mirror of WGSL `Params` in shaders/sigmoid.wgsl.
    pub struct Params {
        pub n: u32,
        pub _pad: [u32; 3],
    }
}

/// y = 1 / (1 + exp(-x))  // x, y: same shape
pub fn sigmoid_forward(x: &Tensor) -> Tensor {
    let gpu = x.gpu();
    let y = Tensor::empty(gpu, &x.shape);
    // Normally one run; tensors over the binding limit go in aligned element ranges (`ops::runs`).
    for (s, c) in elem_runs(gpu, x.numel()) {
        let p = Params { n: c as u32, _pad: [0; 3] };
        gpu.dispatch_1d("sigmoid_forward", &p, &[("x", x.bind_range(s, c)), ("y", y.bind_range(s, c))], c as u64);
    }
    y
}

/// dx = gy * y * (1 - y)  // y: the saved forward output; y, gy, dx: same shape
pub fn sigmoid_backward(y: &Tensor, gy: &Tensor) -> Tensor {
    assert_eq!(y.shape, gy.shape, "sigmoid_backward: y {:?} and gy {:?} differ", y.shape, gy.shape);
    let gpu = y.gpu();
    let dx = Tensor::empty(gpu, &y.shape);
    for (s, c) in elem_runs(gpu, y.numel()) {
        let p = Params { n: c as u32, _pad: [0; 3] };
        let binds = [("y_saved", y.bind_range(s, c)), ("gy", gy.bind_range(s, c)), ("dx", dx.bind_range(s, c))];
        gpu.dispatch_1d("sigmoid_backward", &p, &binds, c as u64);
    }
    dx
}

/// Autograd: saves the output y; dL/dx = sigmoid_backward(y, dL/dy).
pub fn sigmoid(tape: &Tape, x: &Var) -> Var {
    let y = sigmoid_forward(&x.t);
    let saved = y.clone();
    tape.record("sigmoid", &[x], y, move |gy| vec![Some(sigmoid_backward(&saved, gy))])
}

/// The f64 oracle.
pub mod cpu {
    pub fn sigmoid_forward(x: &[f64]) -> Vec<f64> {
        x.iter().map(|&v| 1.0 / (1.0 + (-v).exp())).collect()
    }
    pub fn sigmoid_backward(y: &[f64], gy: &[f64]) -> Vec<f64> {
        y.iter().zip(gy).map(|(&y, &g)| g * y * (1.0 - y)).collect()
    }
}

/// GPU vs CPU on odd sizes, with inputs spread over [-20, 20] plus extremes (+-88, +-100, +-1000) where a naive
/// `1 / (1 + exp(-x))` overflows.
pub fn self_check(gpu: &std::sync::Arc<crate::gpu::Gpu>, full: bool) -> Vec<CheckResult> {
    let mut out = Vec::new();
    let mut sizes = vec![1usize, 257, 1031];
    if full {
        sizes.push(300_007);
    }
    for n in sizes {
        let mut x: Vec<f32> = rand_vec(n, 21).iter().map(|v| v * 20.0).collect();
        let extremes = [-1000.0f32, -100.0, -88.0, -20.0, 0.0, 20.0, 88.0, 100.0, 1000.0];
        for (xi, e) in x.iter_mut().zip(extremes) {
            *xi = e;
        }
        let n = x.len();
        let shape = format!("[{n}]");
        let gy = rand_vec(n, 22);
        let y = sigmoid_forward(&Tensor::from_slice(gpu, &[n], &x));
        let want_y = cpu::sigmoid_forward(&f64s(&x));
        out.push(compare("sigmoid_forward", &shape, &y.to_vec(), &want_y, 1e-7, 1e-5));
        let dx = sigmoid_backward(&y, &Tensor::from_slice(gpu, &[n], &gy)).to_vec();
        // The oracle's backward takes the GPU's y (in f64), so this isolates the backward kernel.
        let want_dx = cpu::sigmoid_backward(&f64s(&y.to_vec()), &f64s(&gy));
        out.push(compare("sigmoid_backward", &shape, &dx, &want_dx, 1e-7, 1e-5));
    }
    out
}
