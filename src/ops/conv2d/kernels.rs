//! Which kernel runs: the rules per shape, on top of the device's kernel options. Every rule is here, so that a
//! reader finds in one place when each entry point of shaders/conv2d*.wgsl runs.
//!
//! 1. The family (`Gpu::family`): `Naive` runs the one-invocation-per-output kernels of conv2d.wgsl everywhere;
//!    `Portable` the register-blocked kernels of conv2d_tiled.wgsl and conv2d_vec4.wgsl; `Auto` those, with their
//!    subgroup twins (conv2d_subgroup.wgsl) where the device has subgroups and the twin's lane layout holds;
//!    `Gemm` and `Auto` on GPUs the implicit-GEMM kernels (rule 5).
//! 2. 1x1 outputs (the SE "FC" convolutions on [N, C, 1, 1]) run naive in every family: a 16-pixel row block would
//!    hold one pixel, and one invocation per output spreads better.
//! 3. The shape picks the register-blocked kernel (`forward`, `input_grad`, `weight_grad` below): the 3x3 kernels
//!    where the kernel is 3x3, vec4 loads where rows are a multiple of 4 floats (and the adapter's binding offsets
//!    keep batch runs 16-byte aligned), 16-channel blocks where they pay (8 for the head, Cout = 1), blocks of 12,
//!    8 or 4 pixels for rows of 12k, 8 or 4 pixels (the 3x3 subgroup forwards), the generic `_tiled` kernels
//!    otherwise.
//!    The stem (7x7 stride 2 pad 3) has its own forward and weight gradient, whose workgroups all need the same
//!    operand (the weights; the rows of x, which the weight gradient's subgroup twin loads once per subgroup); the
//!    1x1 stride-2 shortcuts (W = 2*OW) have their own forward (16 pixels x 16 channels per invocation) and weight
//!    gradient (4 input x 16 output channels, Cin % 4 == 0); 3x3 weight gradients with Cout <= 4 (the head) run in
//!    strips, one channel per invocation; subgroup 3x3 weight gradients whose tiles are not a multiple of 64 lanes
//!    run in workgroups of 16; the stride-2 input gradients of 3x3 pad 1 and 1x1 layers with W = 2*OW (the
//!    encoder's) run in row-parity classes with both column parities in one invocation, other strided input
//!    gradients in row-and-column parity classes.
//! 4. The device may not run an entry point (`Gpu::allowed`): a subgroup kernel that failed validation on this
//!    driver (src/validate.rs) gives way to its portable twin; a kernel the adapter's compiler cannot build in
//!    seconds (SwiftShader: `SLOW_TO_BUILD` in src/gpu.rs) to the naive one.
//!
//! 5. The GEMM kernels (conv2d_gemm.wgsl, launched from `gemm.rs`; `gemm` below) come before rules 2-3: `Gemm` runs
//!    them for every shape and direction (1x1 maps too); `Auto` runs them on adapters that are not CPUs (wgpu's
//!    `DeviceType` other than `Cpu`: `Gpu::is_cpu`) and the kernels of rules 1-3 on CPU adapters (lavapipe, GL on
//!    llvmpipe, SwiftShader). A GEMM entry point the device does not run (rule 4) gives way to what rules 1-3 pick.
//!
//! Why two families: the register-blocked kernels (up to 256 accumulators per invocation, no workgroup memory) suit
//! llvmpipe, whose threads run a whole workgroup each with large caches, and are limited by loads, which the
//! register blocks cut by 5-10x. On a GPU they spill registers and starve occupancy; the GEMM kernels keep 16
//! accumulators per invocation and reuse each loaded value 64 times from workgroup memory instead.

use super::Geom;
use crate::gpu::{Family, Gpu};

/// A register-blocked kernel over (channel block, pixel block) lanes: the forwards and the strided input gradients.
#[derive(Clone, Copy, Debug)]
pub(super) struct Blocked {
    pub entry: &'static str,
    /// Channels per block of the packed weights it reads (8 or 16).
    pub cw: usize,
    /// Output pixels of a row per invocation.
    pub px: usize,
    /// Reads rows as vec4: every row of its input starts 16-byte aligned in the binding.
    pub vec4: bool,
    /// Shares loads across a subgroup: each channel block's pixel blocks are padded to whole subgroups
    /// (p.tile_len), so that no subgroup straddles two channel blocks.
    pub subgroup: bool,
    /// Channel blocks on the grid's y, pixel blocks on x (the weights' addresses depend on the workgroup only);
    /// else one 1-D grid of lanes.
    pub blocks_on_y: bool,
}

impl Blocked {
    const fn new(entry: &'static str, cw: usize, vec4: bool, subgroup: bool) -> Blocked {
        Blocked { entry, cw, px: 16, vec4, subgroup, blocks_on_y: false }
    }

    /// Lanes per channel block for `blocks` pixel blocks (the kernel's p.tile_len when it is a subgroup kernel).
    pub fn lanes_per_block(&self, gpu: &Gpu, blocks: usize) -> usize {
        if self.subgroup {
            blocks.next_multiple_of(gpu.subgroup_max_size() as usize)
        } else {
            blocks
        }
    }
}

/// The weight-gradient pass 1 kernel of a geometry and how its lanes are laid out.
#[derive(Clone, Copy, Debug)]
pub(super) struct WeightKernel {
    pub entry: &'static str,
    /// Invocations per tile.
    pub lanes: usize,
    /// Reads rows as vec4 (x4, gy4): both input runs start 16-byte aligned.
    pub vec4: bool,
    /// Tiles on the grid's y and a tile's lanes on x (uniform loop bounds per workgroup); else one 1-D grid of
    /// tiles x lanes.
    pub tiles_on_y: bool,
    /// Invocations per workgroup (the entry point's @workgroup_size).
    pub wg: usize,
    /// Tiles are (image, band of output rows, strip of 16 columns), lanes (co, ci) on the grid's x in workgroups of
    /// 16 ci (`conv2d_backward_weight_3x3_strip`); else tiles are bands of the run's flattened (n, oy) rows.
    pub strips: bool,
    /// Columns per strip.
    pub cols: usize,
}

/// How the input gradient runs.
pub(super) enum InputGrad {
    /// Stride 1: the forward of gy with the kernel flipped and transposed, on the transposed geometry.
    Flipped(Geom, Blocked),
    /// Other strides: parity classes.
    Strided(Blocked),
    /// Stride 2, 3x3 pad 1 or 1x1 pad 0, W = 2*OW: row parity classes, every column.
    Rows(Blocked),
}

/// Whether the register-blocked kernels may run for this geometry (rules 1 and 2).
fn blocked_ok(gpu: &Gpu, g: &Geom) -> bool {
    gpu.family() != Family::Naive && g.oh * g.ow != 1
}

/// Whether subgroup twins may run (rule 1): the family allows them and the device has them.
fn subgroups_ok(gpu: &Gpu) -> bool {
    gpu.family() == Family::Auto && gpu.has_subgroups()
}

/// Whether batch runs of rows that are a multiple of 4 floats start 16-byte aligned: the adapter's binding offset
/// alignment is a multiple of 16 bytes (runs begin at whole images, bound from an aligned element).
fn vec4_ok(gpu: &Gpu) -> bool {
    gpu.limits.min_storage_buffer_offset_alignment.is_multiple_of(16)
}

/// Rule 4: the kernel `choose` picks with subgroups when they may run, unless this device replaced that subgroup
/// kernel by its portable twin; then the portable one; None when that one is not allowed either.
fn allowed<K: Copy>(gpu: &Gpu, entry: impl Fn(&K) -> &'static str, choose: impl Fn(bool) -> K) -> Option<K> {
    let k = choose(subgroups_ok(gpu));
    let k = if !gpu.allowed(entry(&k)) { choose(false) } else { k };
    gpu.allowed(entry(&k)).then_some(k)
}

/// The forward's kernel; None: the naive one.
pub(super) fn forward(gpu: &Gpu, g: &Geom) -> Option<Blocked> {
    if !blocked_ok(gpu, g) {
        return None;
    }
    let vec4 = vec4_ok(gpu);
    allowed(gpu, |k: &Blocked| k.entry, |sg| forward_for(g, sg, vec4))
}

/// The blocked forward for a geometry. 3x3 stride-1 pad-1 layers whose rows are a multiple of 4 floats take the
/// vec4 kernels, or with subgroups their twin (16 channels per invocation); 3x3 stride 2 pad 1 with W = 2*OW the
/// strided vec4 kernels, and 1x1 stride 2 pad 0 with W = 2*OW (the shortcuts) theirs; 7x7 stride 2 pad 3 with W % 4 == 0 (the stem) its own vec4 kernel; other 3x3 stride-1
/// layers the scalar 3x3 kernel; everything else the generic one.
fn forward_for(g: &Geom, subgroups: bool, vec4_ok: bool) -> Blocked {
    let is3 = g.kh == 3 && g.kw == 3 && g.stride == 1;
    let vec4 = vec4_ok && is3 && g.pad == 1 && g.w.is_multiple_of(4);
    // 3x3 stride 2 pad 1 with W = 2*OW (the encoder's downsampling convolutions).
    if vec4_ok && g.kh == 3 && g.kw == 3 && g.stride == 2 && g.pad == 1 && g.w == 2 * g.ow && g.w.is_multiple_of(4) {
        let entry = if subgroups { "conv2d_forward_3x3s2_subgroup" } else { "conv2d_forward_3x3s2_vec4" };
        return Blocked::new(entry, 16, true, subgroups);
    }
    // 1x1 stride 2 pad 0 with W = 2*OW (the encoder's shortcuts).
    if vec4_ok && g.kh == 1 && g.kw == 1 && g.stride == 2 && g.pad == 0 && g.w == 2 * g.ow && g.w.is_multiple_of(4) {
        let entry = if subgroups { "conv2d_forward_1x1s2_subgroup" } else { "conv2d_forward_1x1s2_vec4" };
        return Blocked::new(entry, 16, true, subgroups);
    }
    // 7x7 stride 2 pad 3 (the stem).
    if vec4_ok && g.kh == 7 && g.kw == 7 && g.stride == 2 && g.pad == 3 && g.w.is_multiple_of(4) {
        return Blocked { blocks_on_y: true, ..Blocked::new("conv2d_forward_7x7s2_vec4", 16, true, false) };
    }
    // Rows of 12, 24, 36 ... pixels: 12-pixel blocks waste nothing where 16-pixel blocks would waste a quarter.
    if vec4 && subgroups && g.ow.is_multiple_of(12) && !g.ow.is_multiple_of(16) {
        return Blocked { px: 12, ..Blocked::new("conv2d_forward_3x3_subgroup12", 16, true, true) };
    }
    // Rows of 8 and of 4 pixels (the deep layers at 128x64): 8- and 4-pixel blocks, where 16-pixel blocks would
    // waste half and three quarters.
    if vec4 && subgroups && (g.ow == 8 || g.ow == 4) {
        let entry = if g.ow == 8 { "conv2d_forward_3x3_subgroup8" } else { "conv2d_forward_3x3_subgroup4" };
        return Blocked { px: g.ow, ..Blocked::new(entry, 16, true, true) };
    }
    match (is3, vec4) {
        // The head (Cout = 1): 8-channel blocks waste half as much as 16-channel ones.
        (true, true) if subgroups && g.cout > 8 => Blocked::new("conv2d_forward_3x3_subgroup", 16, true, true),
        (true, true) => Blocked::new("conv2d_forward_3x3_vec4", 8, true, false),
        (true, false) => Blocked::new("conv2d_forward_3x3", 8, false, false),
        _ => Blocked::new("conv2d_forward_tiled", 8, false, false),
    }
}

/// The input gradient's kernel; None: the naive one. At stride 1 (square kernel, pad < K) the input gradient is a
/// forward convolution of gy with the flipped, transposed kernel and padding K-1-p, so it runs on the forward
/// kernels; stride 2 with 3x3 pad 1 or 1x1 pad 0 and W = 2*OW (the encoder's) uses the row-parity kernels (every
/// column of a row in one invocation); other strides the parity-class kernels: gy rows that are a multiple of 4
/// floats with at most 4 taps per class along a row take the vec4 kernel (16 channels per invocation) or its
/// subgroup twin.
pub(super) fn input_grad(gpu: &Gpu, g: &Geom) -> Option<InputGrad> {
    if !blocked_ok(gpu, g) {
        return None;
    }
    let vec4 = vec4_ok(gpu);
    if g.stride == 1 && g.kh == g.kw && g.pad < g.kh {
        // The transposed problem: input gy [N, Cout, OH, OW], output gx [N, Cin, H, W].
        let gt = Geom { cin: g.cout, h: g.oh, w: g.ow, cout: g.cin, oh: g.h, ow: g.w, pad: g.kh - 1 - g.pad, ..*g };
        return allowed(gpu, |k: &Blocked| k.entry, |sg| forward_for(&gt, sg, vec4)).map(|k| InputGrad::Flipped(gt, k));
    }
    // 3x3 pad 1 and 1x1 pad 0 at stride 2 with W = 2*OW (the encoder's downsampling convolutions and shortcuts).
    let rows = g.stride == 2 && g.w == 2 * g.ow && g.kh == g.kw && ((g.kh == 3 && g.pad == 1) || (g.kh == 1 && g.pad == 0));
    if vec4 && rows && g.ow.is_multiple_of(4) {
        let choose = |sg: bool| {
            let entry = match (g.kh, sg) {
                (3, true) => "conv2d_backward_input_3x3s2_subgroup",
                (3, false) => "conv2d_backward_input_3x3s2_vec4",
                (_, true) => "conv2d_backward_input_1x1s2_subgroup",
                (_, false) => "conv2d_backward_input_1x1s2_vec4",
            };
            Blocked::new(entry, 16, true, sg)
        };
        if let Some(k) = allowed(gpu, |k: &Blocked| k.entry, choose) {
            return Some(InputGrad::Rows(k));
        }
    }
    let v4 = vec4 && g.ow.is_multiple_of(4) && g.kw.div_ceil(g.stride) <= 4;
    let choose = |sg: bool| match (v4, sg) {
        (true, true) => Blocked::new("conv2d_backward_input_strided_subgroup", 16, true, true),
        (true, false) => Blocked::new("conv2d_backward_input_strided_vec4", 16, true, false),
        _ => Blocked::new("conv2d_backward_input_tiled", 8, false, false),
    };
    allowed(gpu, |k: &Blocked| k.entry, choose).map(InputGrad::Strided)
}

/// Output channels up to which the 3x3 weight gradient runs in strips, one channel per invocation, rather than in
/// blocks of 16 channels.
const NARROW: usize = 4;

/// The weight gradient's pass 1 kernel; None: the naive one. 3x3 pad 1 layers with rows of 4k floats (stride 1, or
/// stride 2 with W = 2*OW) take the vec4 kernels (invocation = (ci, 16 output channels) x 9 taps), whose subgroup
/// twins need each subgroup inside one (tile, channel block): Cin a multiple of the subgroup size. Other 3x3
/// stride-1 layers take the scalar 3x3 kernel (ci, 8 output channels), everything else the generic one (8
/// consecutive k x 4 output channels).
pub(super) fn weight_grad(gpu: &Gpu, g: &Geom) -> Option<WeightKernel> {
    if !blocked_ok(gpu, g) {
        return None;
    }
    let is3 = g.kh == 3 && g.kw == 3 && g.stride == 1;
    let is3s2 = g.kh == 3 && g.kw == 3 && g.stride == 2 && g.pad == 1 && g.w == 2 * g.ow;
    let vec4 = vec4_ok(gpu) && (is3 || is3s2) && g.pad == 1 && g.ow.is_multiple_of(4);
    let stem = vec4_ok(gpu) && g.kh == 7 && g.kw == 7 && g.stride == 2 && g.pad == 3 && g.w.is_multiple_of(4) && g.ow.is_multiple_of(4);
    // 1x1 stride 2 pad 0 with W = 2*OW (the encoder's shortcuts): 4 input channels per invocation.
    let pointwise = vec4_ok(gpu) && g.kh == 1 && g.kw == 1 && g.stride == 2 && g.pad == 0 && g.w == 2 * g.ow && g.ow.is_multiple_of(4) && g.cin.is_multiple_of(4);
    let choose = |sg: bool| {
        if pointwise {
            let sg = sg && (g.cin / 4).is_multiple_of(gpu.subgroup_max_size() as usize);
            let entry = if sg { "conv2d_backward_weight_1x1s2_subgroup" } else { "conv2d_backward_weight_1x1s2_vec4" };
            WeightKernel { entry, lanes: g.cin / 4 * g.cout.div_ceil(16), vec4: true, tiles_on_y: sg, wg: 64, strips: false, cols: 0 }
        } else if stem {
            // Workgroups of 16 lanes, 4 output channels each, of one input channel.
            let lanes = g.cin * g.cout.div_ceil(64) * 16;
            let entry = if sg { "conv2d_backward_weight_7x7s2_subgroup" } else { "conv2d_backward_weight_7x7s2_vec4" };
            WeightKernel { entry, lanes, vec4: true, tiles_on_y: true, wg: 16, strips: false, cols: 0 }
        } else if vec4 && is3 && g.cout <= NARROW {
            WeightKernel { entry: "conv2d_backward_weight_3x3_strip", lanes: g.cin.next_multiple_of(16) * g.cout, vec4: true, tiles_on_y: true, wg: 16, strips: true, cols: 16 }
        } else if vec4 {
            let sg = sg && g.cin.is_multiple_of(gpu.subgroup_max_size() as usize);
            let lanes = g.cin * g.cout.div_ceil(16);
            // Tiles of fewer lanes than a multiple of 64 (the full-resolution decoder: 16 or 32) take workgroups of 16.
            let wg = if sg && !is3s2 && !lanes.is_multiple_of(64) { 16 } else { 64 };
            let entry = match (is3s2, sg, wg) {
                (false, true, 16) => "conv2d_backward_weight_3x3_subgroup_wg16",
                (false, true, _) => "conv2d_backward_weight_3x3_subgroup",
                (false, false, _) => "conv2d_backward_weight_3x3_vec4",
                (true, true, _) => "conv2d_backward_weight_3x3s2_subgroup",
                (true, false, _) => "conv2d_backward_weight_3x3s2_vec4",
            };
            WeightKernel { entry, lanes, vec4: true, tiles_on_y: sg, wg, strips: false, cols: 0 }
        } else if is3 {
            WeightKernel { entry: "conv2d_backward_weight_3x3", lanes: g.cin * g.cout.div_ceil(8), vec4: false, tiles_on_y: true, wg: 64, strips: false, cols: 0 }
        } else {
            let lanes = (g.cin * g.kh * g.kw).div_ceil(8) * g.cout.div_ceil(4);
            WeightKernel { entry: "conv2d_backward_weight_tiled", lanes, vec4: false, tiles_on_y: true, wg: 64, strips: false, cols: 0 }
        }
    };
    allowed(gpu, |k: &WeightKernel| k.entry, choose)
}

/// Rule 5: whether the implicit-GEMM kernel `entry` runs: the family asks for it (`Gemm`, or `Auto` on an adapter
/// that is not a CPU) and the device runs it.
pub(super) fn gemm(gpu: &Gpu, entry: &str) -> bool {
    let wanted = match gpu.family() {
        Family::Gemm => true,
        Family::Auto => !gpu.is_cpu(),
        Family::Portable | Family::Naive => false,
    };
    wanted && gpu.allowed(entry)
}
