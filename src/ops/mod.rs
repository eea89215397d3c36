//! Every op: `shaders/<op>.wgsl` + `src/ops/<op>.rs` (launchers named like the entry points, autograd rule, f64 CPU
//! oracle in `mod cpu`, and `self_check`, the GPU-vs-oracle comparisons used by tests and `fluke check`).

use std::rc::Rc;

use crate::check::CheckResult;
use crate::gpu::Gpu;

pub mod adam;
pub mod add;
pub mod batch_norm;
pub mod bce_dice;

/// Every shader file, compiled at start-up: (file name under shaders/, source).
pub const SHADERS: &[(&str, &str)] = &[add::SHADER, batch_norm::SHADER, bce_dice::SHADER, adam::SHADER];

/// The size in bytes of each Rust `Params` mirror, by shader file (checked against the WGSL struct by a test).
pub const PARAMS_SIZES: &[(&str, usize)] = &[
    ("add.wgsl", std::mem::size_of::<add::Params>()),
    ("batch_norm.wgsl", std::mem::size_of::<batch_norm::Params>()),
    ("bce_dice.wgsl", std::mem::size_of::<bce_dice::Params>()),
    ("adam.wgsl", std::mem::size_of::<adam::Params>()),
];

/// Every op's self-check. `full` adds the full U-Net sizes (slow on software adapters).
pub fn self_checks(gpu: &Rc<Gpu>, full: bool) -> Vec<CheckResult> {
    let mut out = Vec::new();
    out.extend(add::self_check(gpu, full));
    out.extend(batch_norm::self_check(gpu, full));
    out.extend(bce_dice::self_check(gpu, full));
    out.extend(adam::self_check(gpu, full));
    out
}
