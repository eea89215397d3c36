//! Every op: `shaders/<op>.wgsl` + `src/ops/<op>.rs` (launchers named like the entry points, autograd rule, f64 CPU
//! oracle in `mod cpu`, and `self_check`, the GPU-vs-oracle comparisons used by tests and `fluke check`).
//! `runs` is a helper, not an op: it splits launches whose tensors exceed one storage binding.

use std::cell::Cell;
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

thread_local! {
    static VEC4: Cell<bool> = const { Cell::new(true) };
}

/// Test hook: on this thread, let launchers pick their `_vec4` entry points (true, the default) or force the scalar
/// baseline kernels (false), so tests can check both paths on the same shapes. Returns the previous setting.
pub fn set_vec4_enabled(on: bool) -> bool {
    VEC4.with(|c| c.replace(on))
}

/// Scoped `set_vec4_enabled`: sets the switch and restores the previous setting when dropped.
pub struct Vec4Guard(bool);

impl Vec4Guard {
    pub fn set(on: bool) -> Vec4Guard {
        Vec4Guard(set_vec4_enabled(on))
    }
}

impl Drop for Vec4Guard {
    fn drop(&mut self) {
        set_vec4_enabled(self.0);
    }
}

/// Whether launchers may use `_vec4` entry points on this thread (see `set_vec4_enabled`).
pub fn vec4_enabled() -> bool {
    VEC4.with(|c| c.get())
}

/// Whether a flat range of `elems` f32s bound at byte `offset` can be read as `array<vec4<f32>>` with nothing left
/// over: the count is a non-zero multiple of 4 and the range starts 16-byte aligned. (Shape conditions, such as
/// batch_norm's H*W % 4 == 0, are the op's own.)
pub fn vec4_range_ok(offset: u64, elems: usize) -> bool {
    vec4_enabled() && elems > 0 && elems % 4 == 0 && offset % 16 == 0
}

/// Whether a bound range starting at byte `offset` can be viewed as `array<vec4<f32>>` (16-byte aligned, vec4
/// enabled); for ops whose shape condition already makes every count a multiple of 4.
pub fn vec4_offset_ok(offset: u64) -> bool {
    vec4_enabled() && offset % 16 == 0
}

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

/// Shader files that use subgroup operations (subgroupBroadcast): compiled only on devices with
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
