//! relu: `y = max(x, 0)`, elementwise, any shape.
//!
//! Gradient: `dx = gy * (y > 0)` (0 at x == 0, as PyTorch). The forward output y is what the backward saves: it tells
//! where the unit was active and is usually alive anyway as the next layer's input.
//!
//! Launch: one invocation per element; tensors larger than one storage binding run in several element ranges
//! (`ops::runs`).

use bytemuck::{Pod, Zeroable};

use crate::check::{compare, f64s, rand_vec, CheckResult};
use crate::graph::{Tape, Var};
use crate::ops::runs::elem_runs;
use crate::tensor::Tensor;

pub const SHADER: (&str, &str) = ("relu.wgsl", include_str!("../../shaders/relu.wgsl"));

/// Mirror of WGSL `Params` in shaders/relu.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct Params {
    pub n: u32,
    pub _pad: [u32; 3],
}

/// y = max(x, 0)  // x, y: same shape
pub fn relu_forward(x: &Tensor) -> Tensor {
    let gpu = x.gpu();
    let y = Tensor::empty(gpu, &x.shape);
    // Normally one run; tensors over the binding limit go in aligned element ranges (`ops::runs`).
    for (s, c) in elem_runs(gpu, x.numel()) {
        let p = Params { n: c as u32, _pad: [0; 3] };
        gpu.dispatch_1d("relu_forward", &p, &[x.bind_range(s, c), y.bind_range(s, c)], c as u64);
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
        let binds = [y.bind_range(s, c), gy.bind_range(s, c), dx.bind_range(s, c)];
        gpu.dispatch_1d("relu_backward", &p, &binds, c as u64);
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

/// GPU vs CPU on odd sizes (1, primes, not multiples of the 256-lane workgroup); `full` adds one past 65,535
/// workgroups (exercises the folded grid). relu is exact, so the tolerance is 0.
pub fn self_check(gpu: &std::rc::Rc<crate::gpu::Gpu>, full: bool) -> Vec<CheckResult> {
    let mut out = Vec::new();
    let mut sizes = vec![1usize, 257, 1031];
    if full {
        sizes.push(65_536 * 256 + 3);
    }
    for n in sizes {
        let shape = format!("[{n}]");
        let x = rand_vec(n, 11);
        let gy = rand_vec(n, 12);
        let xt = Tensor::from_slice(gpu, &[n], &x);
        let y = relu_forward(&xt);
        let want_y = cpu::relu_forward(&f64s(&x));
        out.push(compare("relu_forward", &shape, &y.to_vec(), &want_y, 0.0, 0.0));
        let dx = relu_backward(&y, &Tensor::from_slice(gpu, &[n], &gy)).to_vec();
        out.push(compare("relu_backward", &shape, &dx, &cpu::relu_backward(&want_y, &f64s(&gy)), 0.0, 0.0));
    }
    out
}
