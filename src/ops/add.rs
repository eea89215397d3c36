//! add: `y = a + b`, elementwise, same shape. Backward is the identity on both inputs (no kernel).
//! Also used by the tape to sum gradient contributions.
//!
//! Launch: `add_forward_vec4` (4 elements per invocation through vec4 views) when a launch's element count is a
//! multiple of 4 and its ranges start 16-byte aligned (`ops::vec4_range_ok`), else `add_forward` (one per element).
//! Tensors larger than one storage binding (the residual sums and gradient sums of big batches) are added in several
//! launches over element ranges (`ops::runs`): elementwise, so the result is the same bit for bit.

use crate::check::{compare, f64s, rand_vec, CheckResult};
use crate::gpu::{Gpu, ShaderFile};
use crate::graph::{Tape, Var};
use crate::ops::runs::elem_runs;
use crate::ops::vec4_range_ok;
use crate::tensor::Tensor;

pub const SHADERS: &[ShaderFile] = &[ShaderFile { file: "add.wgsl", source: include_str!("../../shaders/add.wgsl"), subgroups: false }];

crate::ops::params! {
    /// Mirror of WGSL `Params` in shaders/add.wgsl.
    pub struct Params {
        pub n: u32,
        pub _pad: [u32; 3],
    }
}

/// y = a + b  // a, b, y: same shape
pub fn add_forward(a: &Tensor, b: &Tensor) -> Tensor {
    assert_eq!(a.shape, b.shape, "add_forward: shapes differ");
    let gpu = a.gpu();
    let y = Tensor::empty(gpu, &a.shape);
    // Normally one run; tensors over the binding limit go in aligned element ranges (`ops::runs`).
    for (s, c) in elem_runs(gpu, a.numel()) {
        let prm = Params { n: c as u32, _pad: [0; 3] };
        // The same list serves both entry points: `add_forward_vec4` reads the names through its views a4, b4, y4.
        let binds = [("a", a.bind_range(s, c)), ("b", b.bind_range(s, c)), ("y", y.bind_range(s, c))];
        if vec4_range_ok(gpu, binds[0].1.offset, c) {
            gpu.dispatch_1d("add_forward_vec4", &prm, &binds, c as u64 / 4);
        } else {
            gpu.dispatch_1d("add_forward", &prm, &binds, c as u64);
        }
    }
    y
}

/// Autograd: saves nothing; dL/da = dL/db = dL/dy.
pub fn add(tape: &Tape, a: &Var, b: &Var) -> Var {
    let y = add_forward(&a.t, &b.t);
    tape.record("add", &[a, b], y, |gy| vec![Some(gy.clone()), Some(gy.clone())])
}

pub mod cpu {
    /// y = a + b in f64.
    pub fn add_forward(a: &[f64], b: &[f64]) -> Vec<f64> {
        a.iter().zip(b).map(|(x, y)| x + y).collect()
    }
}

/// GPU vs CPU on odd sizes (1, a prime, one past 65,535 workgroups: scalar kernel) and multiples of 4 (4, 1028,
/// and with `full` 65,536 * 256 + 4: vec4 kernel; 1028 again with vec4 switched off). Each row is labelled with the
/// kernel that ran, as the device profiler counted it (`take_profile`), asserted to be the one the options and the
/// size call for.
pub fn self_check(gpu: &std::sync::Arc<Gpu>, full: bool) -> Vec<CheckResult> {
    let mut out = Vec::new();
    let mut sizes = vec![(1usize, true), (257, true), (1031, true), (4, true), (1028, true), (1028, false)];
    if full {
        // more than 65,535 workgroups: exercises the folded grid (scalar); the vec4 one needs 16,385 groups
        sizes.extend([(65_536 * 256 + 3, true), (65_536 * 256 + 4, true)]);
    }
    gpu.set_profiling(true);
    for (n, vec4) in sizes {
        let _guard = gpu.scoped(|o| o.vec4 = vec4);
        let want = if vec4_range_ok(gpu, 0, n) { "add_forward_vec4" } else { "add_forward" };
        let a = rand_vec(n, 1);
        let b = rand_vec(n, 2);
        let y = add_forward(&Tensor::from_slice(gpu, &[n], &a), &Tensor::from_slice(gpu, &[n], &b)).to_vec();
        let label = format!("[{n}] {}", crate::check::kernel_label(gpu, &format!("add_forward [{n}] with vec4 {vec4}"), want));
        out.push(compare("add_forward", &label, &y, &cpu::add_forward(&f64s(&a), &f64s(&b)), 1e-6, 1e-6));
    }
    gpu.set_profiling(false);
    out
}
