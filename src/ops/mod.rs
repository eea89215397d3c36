//! Every op: `shaders/<op>.wgsl` + `src/ops/<op>.rs` (launchers named like the entry points, autograd rule, f64 CPU
//! oracle in `mod cpu`, and `self_check`, the GPU-vs-oracle comparisons used by tests and `fluke check`).
//! `runs` is a helper, not an op: it splits launches whose tensors exceed one storage binding.

use std::rc::Rc;

use crate::check::CheckResult;
use crate::gpu::Gpu;

pub mod adam;
pub mod add;
pub mod batch_norm;
pub mod bce_dice;
pub mod channel_scale;
pub mod concat;
pub mod conv2d;
pub mod global_avg_pool;
pub mod max_pool2d;
pub mod relu;
pub mod runs;
pub mod sigmoid;
pub mod upsample2x;

/// Every shader file, compiled at start-up: (file name under shaders/, source).
pub const SHADERS: &[(&str, &str)] = &[
    add::SHADER,
    conv2d::SHADER,
    batch_norm::SHADER,
    bce_dice::SHADER,
    adam::SHADER,
    channel_scale::SHADER,
    concat::SHADER,
    global_avg_pool::SHADER,
    max_pool2d::SHADER,
    relu::SHADER,
    sigmoid::SHADER,
    upsample2x::SHADER,
];

/// Shader files that use subgroup operations (`enable subgroups;`): compiled only on devices with
/// `Features::SUBGROUP`; every kernel in them has a portable twin that runs elsewhere.
pub const SUBGROUP_SHADERS: &[(&str, &str)] = &[conv2d::SUBGROUP_SHADER];

/// The size in bytes of each Rust `Params` mirror, by shader file (checked against the WGSL struct by a test).
pub const PARAMS_SIZES: &[(&str, usize)] = &[
    ("add.wgsl", std::mem::size_of::<add::Params>()),
    ("conv2d.wgsl", std::mem::size_of::<conv2d::Params>()),
    ("batch_norm.wgsl", std::mem::size_of::<batch_norm::Params>()),
    ("bce_dice.wgsl", std::mem::size_of::<bce_dice::Params>()),
    ("adam.wgsl", std::mem::size_of::<adam::Params>()),
    ("channel_scale.wgsl", std::mem::size_of::<channel_scale::Params>()),
    ("concat.wgsl", std::mem::size_of::<concat::Params>()),
    ("global_avg_pool.wgsl", std::mem::size_of::<global_avg_pool::Params>()),
    ("max_pool2d.wgsl", std::mem::size_of::<max_pool2d::Params>()),
    ("relu.wgsl", std::mem::size_of::<relu::Params>()),
    ("sigmoid.wgsl", std::mem::size_of::<sigmoid::Params>()),
    ("upsample2x.wgsl", std::mem::size_of::<upsample2x::Params>()),
];

/// Every op's self-check. `full` adds the full U-Net sizes (slow on software adapters).
pub fn self_checks(gpu: &Rc<Gpu>, full: bool) -> Vec<CheckResult> {
    let mut out = Vec::new();
    out.extend(add::self_check(gpu, full));
    out.extend(conv2d::self_check(gpu, full));
    out.extend(batch_norm::self_check(gpu, full));
    out.extend(bce_dice::self_check(gpu, full));
    out.extend(adam::self_check(gpu, full));
    out.extend(channel_scale::self_check(gpu, full));
    out.extend(concat::self_check(gpu, full));
    out.extend(global_avg_pool::self_check(gpu, full));
    out.extend(max_pool2d::self_check(gpu, full));
    out.extend(relu::self_check(gpu, full));
    out.extend(sigmoid::self_check(gpu, full));
    out.extend(upsample2x::self_check(gpu, full));
    out
}
