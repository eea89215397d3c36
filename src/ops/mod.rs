//! Every op: `shaders/<op>.wgsl` + `src/ops/<op>.rs` (launchers named like the entry points, autograd rule, f64 CPU
//! oracle in `mod cpu`, and `self_check`, the GPU-vs-oracle comparisons used by tests and `fluke check`).

use std::rc::Rc;

use crate::check::CheckResult;
use crate::gpu::Gpu;

pub mod add;
pub mod conv2d;

/// Every shader file, compiled at start-up: (file name under shaders/, source).
pub const SHADERS: &[(&str, &str)] = &[add::SHADER, conv2d::SHADER];

/// The size in bytes of each Rust `Params` mirror, by shader file (checked against the WGSL struct by a test).
pub const PARAMS_SIZES: &[(&str, usize)] = &[
    ("add.wgsl", std::mem::size_of::<add::Params>()),
    ("conv2d.wgsl", std::mem::size_of::<conv2d::Params>()),
];

/// Every op's self-check. `full` adds the full U-Net sizes (slow on software adapters).
pub fn self_checks(gpu: &Rc<Gpu>, full: bool) -> Vec<CheckResult> {
    let mut out = Vec::new();
    out.extend(add::self_check(gpu, full));
    out.extend(conv2d::self_check(gpu, full));
    out
}
