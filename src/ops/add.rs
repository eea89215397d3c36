//! add: `y = a + b`, elementwise, same shape. Backward is the identity on both inputs (no kernel).
//! Also used by the tape to sum gradient contributions.
//!
//! Launch: `add_forward_vec4` (4 elements per invocation through vec4 views) when the element count is a multiple of
//! 4, else `add_forward` (one per element).


use crate::gpu::ShaderFile;
use crate::graph::{Tape, Var};
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
    let y = Tensor::empty(a.gpu(), &a.shape);
    let n = a.numel() as u32;
    let prm = Params { n, _pad: [0; 3] };
    // Whole buffers (offset 0): `add_forward_vec4` (bindings 4-6 view the same buffers) when n % 4 == 0.
    if crate::ops::vec4_range_ok(a.gpu(), 0, a.numel()) {
        let binds = [a.bind(), b.bind(), y.bind(), a.bind(), b.bind(), y.bind()];
        a.gpu().dispatch_1d_by_position("add_forward_vec4", &prm, &binds, n as u64 / 4);
    } else {
        a.gpu().dispatch_1d_by_position("add_forward", &prm, &[a.bind(), b.bind(), y.bind()], n as u64);
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
/// and with `full` 65,536 * 256 + 4: vec4 kernel; 1028 again with vec4 switched off).
pub fn self_check(gpu: &std::sync::Arc<crate::gpu::Gpu>, full: bool) -> Vec<crate::check::CheckResult> {
    let mut out = Vec::new();
    let mut sizes = vec![(1usize, true), (257, true), (1031, true), (4, true), (1028, true), (1028, false)];
    if full {
        // more than 65,535 workgroups: exercises the folded grid (scalar); the vec4 one needs 16,385 groups
        sizes.extend([(65_536 * 256 + 3, true), (65_536 * 256 + 4, true)]);
    }
    for (n, vec4) in sizes {
        let _guard = gpu.scoped(|o| o.vec4 = vec4);
        let label = format!("[{n}] {}", if crate::ops::vec4_range_ok(gpu, 0, n) { "vec4" } else { "scalar" });
        let a = crate::check::rand_vec(n, 1);
        let b = crate::check::rand_vec(n, 2);
        let ga = Tensor::from_slice(gpu, &[n], &a);
        let gb = Tensor::from_slice(gpu, &[n], &b);
        let y = add_forward(&ga, &gb).to_vec();
        let want = cpu::add_forward(&crate::check::f64s(&a), &crate::check::f64s(&b));
        out.push(crate::check::compare("add_forward", &label, &y, &want, 1e-6, 1e-6));
    }
    out
}
