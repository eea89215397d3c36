//! Every op: `shaders/<op>.wgsl` + `src/ops/<op>.rs` (launchers named like the entry points, autograd rule, f64 CPU
//! oracle in `mod cpu`, and `self_check`, the GPU-vs-oracle comparisons used by tests and `fluke check`).
//! `runs` is a helper, not an op: it splits launches whose tensors exceed one storage binding.

use std::sync::Arc;

use crate::check::CheckResult;
use crate::gpu::{Gpu, ShaderFile};

/// Declare an op's `Params`, the Rust mirror of the WGSL `struct Params` its shaders read at binding 0: a `#[repr(C)]`
/// plain-old-data struct plus `Params::FIELDS`, each field's name and byte offset, which a test compares with the
/// layout naga computes for the WGSL struct (same names, same offsets, same size; `_pad` fields are padding).
macro_rules! params {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* pub $f:ident : $t:ty),* $(,)? }) => {
        $(#[$m])*
        #[repr(C)]
        #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable, Default, Debug)]
        pub struct $name { $($(#[$fm])* pub $f: $t),* }
        impl $name {
            /// (field, byte offset) of every field, checked against the WGSL struct by tests/ops/shaders.rs.
            pub const FIELDS: &'static [(&'static str, usize)] = &[$((stringify!($f), std::mem::offset_of!($name, $f))),*];
        }
    };
}
pub(crate) use params;

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
pub mod roofline;
pub mod runs;
pub mod sigmoid;
pub mod upsample2x;

/// One row per op: everything the runtime and the checks need to know about it. Adding an op means adding its
/// module above and its row here; tests/ops/shaders.rs fails when a file in shaders/ is in no row.
pub struct Op {
    /// The op's name: `src/ops/<name>.rs`, `shaders/<name>*.wgsl`.
    pub name: &'static str,
    /// Its shader files, handed to `Gpu::new` by the caller (`shaders()`).
    pub shaders: &'static [ShaderFile],
    /// `size_of::<Params>()` and `Params::FIELDS`, checked against the WGSL `struct Params` of each file.
    pub params_size: usize,
    pub params_fields: &'static [(&'static str, usize)],
    /// GPU vs f64 oracle on the op's shapes (`full`: the full U-Net sizes too): tests and `fluke check`.
    pub self_check: fn(&Arc<Gpu>, bool) -> Vec<CheckResult>,
}

macro_rules! op {
    ($m:ident) => {
        Op {
            name: stringify!($m),
            shaders: $m::SHADERS,
            params_size: std::mem::size_of::<$m::Params>(),
            params_fields: $m::Params::FIELDS,
            self_check: $m::self_check,
        }
    };
}

/// The registry.
pub const OPS: &[Op] = &[
    op!(add),
    op!(conv2d),
    op!(batch_norm),
    op!(bce_dice),
    op!(adam),
    op!(channel_scale),
    op!(concat),
    op!(global_avg_pool),
    op!(max_pool2d),
    op!(relu),
    op!(roofline),
    op!(sigmoid),
    op!(upsample2x),
];

/// Every op's shader files, for `Gpu::new`.
pub fn shaders() -> Vec<ShaderFile> {
    OPS.iter().flat_map(|o| o.shaders.iter().copied()).collect()
}

/// Every op's self-check. `full` adds the full U-Net sizes (slow on software adapters).
pub fn self_checks(gpu: &Arc<Gpu>, full: bool) -> Vec<CheckResult> {
    OPS.iter().flat_map(|o| (o.self_check)(gpu, full)).collect()
}

/// Whether a flat range of `elems` f32s bound at byte `offset` can be read as `array<vec4<f32>>` with nothing left
/// over, and the device lets launchers use vec4 kernels (`Gpu::vec4`): the count is a non-zero multiple of 4 and the
/// range starts 16-byte aligned. (Shape conditions, such as batch_norm's H*W % 4 == 0, are the op's own.)
pub fn vec4_range_ok(gpu: &Gpu, offset: u64, elems: usize) -> bool {
    gpu.vec4() && elems > 0 && elems.is_multiple_of(4) && offset.is_multiple_of(16)
}

/// Whether a bound range starting at byte `offset` can be viewed as `array<vec4<f32>>` (16-byte aligned, vec4 on);
/// for ops whose shape condition already makes every count a multiple of 4.
pub fn vec4_offset_ok(gpu: &Gpu, offset: u64) -> bool {
    gpu.vec4() && offset.is_multiple_of(16)
}
