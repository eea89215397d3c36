//! conv2d: 2-D convolution, NCHW, weights OIHW, stride s, symmetric zero padding p, optional bias.
//!
//! ```text
//! x [N, Cin, H, W]   w [Cout, Cin, KH, KW]   b [Cout]   y [N, Cout, OH, OW],  OH = (H + 2p - KH)/s + 1 (same for OW)
//! y[n,co,oy,ox]   = b[co] + sum_{ci,ky,kx} w[co,ci,ky,kx] * x[n,ci,oy*s+ky-p,ox*s+kx-p]      (zero outside x)
//! dL/dx[n,ci,iy,ix] = sum_{co,ky,kx: oy*s+ky-p = iy, ox*s+kx-p = ix} dL/dy[n,co,oy,ox] * w[co,ci,ky,kx]
//! dL/dw[co,ci,ky,kx] = sum_{n,oy,ox} dL/dy[n,co,oy,ox] * x[n,ci,oy*s+ky-p,ox*s+kx-p]
//! dL/db[co]        = sum_{n,oy,ox} dL/dy[n,co,oy,ox]
//! ```
//! The autograd rule saves x and w (the forward's inputs; nothing else is needed).
//!
//! Launchers (one per public entry, named like the shader's entry points) pick the kernel for the shape and adapter
//! (`Variant::Auto`) and split the batch when a tensor is larger than one storage binding (lavapipe: 128 MiB): the
//! forward and input gradient run once per batch slice; the weight and bias gradients write partial sums per slice
//! and tile into one scratch tensor [tiles, M] and a last pass sums the tiles in a fixed order (deterministic).
//! `Launch` lets tests force a kernel variant or an artificially small binding limit.
//!
//! Kernel variants (shaders/conv2d.wgsl): the naive ones (one invocation per output, the readable baseline) and the
//! tiled implicit-GEMM ones: `conv2d_forward_3x3[_vec4]`, `conv2d_forward_3x3s2_vec4`, `conv2d_forward_tiled`,
//! `conv2d_backward_input_strided_vec4`, `conv2d_backward_input_tiled`, `conv2d_backward_weight_3x3[s2][_vec4]`,
//! `conv2d_backward_weight_tiled`, fed by `conv2d_pack_weight[_flipped][_vec4]`: register blocks of 16 pixels x 8
//! or 16 channels per invocation (`Variant::TiledPortable`). On devices with subgroups, `Variant::Tiled` runs the
//! twins in shaders/conv2d_subgroup.wgsl where their lane layout holds (`conv2d_forward_3x3[s2]_subgroup`,
//! `conv2d_backward_input_strided_subgroup`, `conv2d_backward_weight_3x3[s2]_subgroup`), which share loads across
//! a subgroup. All are checked against the same f64 oracle; benches/conv2d.rs times every variant per shape.
//! `FLUKE_NO_SUBGROUPS=1` turns the twins off (for comparisons, or a driver that miscompiles subgroup operations).
//!
//! Per device, on top of the shape rules: the kernel family (`Gpu::family`: Naive forces the baselines, Portable
//! the register-blocked kernels without subgroups) and the entry points the device does not allow (`Gpu::allowed`):
//! a subgroup kernel that failed validation on this driver (`validate.rs`) gives way to its portable twin, and a
//! kernel the adapter's compiler cannot build in seconds (SwiftShader: `SLOW_TO_BUILD` in gpu.rs) to the naive one.

use std::sync::Arc;


use crate::check::{compare, f64s, rand_vec, CheckResult};
use crate::gpu::{Bind, Family, Gpu, ShaderFile};
use crate::graph::{Tape, Var};
use crate::tensor::Tensor;

/// The baseline and register-blocked kernels, then the variants that share data across a subgroup (compiled only
/// where the device has subgroups): that file is appended to conv2d.wgsl, whose Params, bindings and helpers it uses
/// (the runtime skips the entry points compiled already).
pub const SHADERS: &[ShaderFile] = &[
    ShaderFile { file: "conv2d.wgsl", source: include_str!("../../shaders/conv2d.wgsl"), subgroups: false },
    ShaderFile {
        file: "conv2d_subgroup.wgsl",
        source: concat!(include_str!("../../shaders/conv2d.wgsl"), include_str!("../../shaders/conv2d_subgroup.wgsl")),
        subgroups: true,
    },
];

crate::ops::params! {
    /// Mirror of WGSL `Params` in shaders/conv2d.wgsl (field for field).
    pub struct Params {
        pub n: u32,
        pub cin: u32,
        pub h: u32,
        pub w: u32,
        pub cout: u32,
        pub oh: u32,
        pub ow: u32,
        pub kh: u32,
        pub kw: u32,
        pub stride: u32,
        pub pad: u32,
        pub has_bias: u32,
        pub tiles: u32,
        pub tile_len: u32,
        pub npos: u32,
        pub m: u32,
        pub off_x: u32,
        pub off_gy: u32,
        pub off_out: u32,
        pub cw: u32,
    }
}

/// The sizes of one convolution, checked once.
#[derive(Clone, Copy, Debug)]
pub struct Geom {
    pub n: usize,
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    pub kh: usize,
    pub kw: usize,
    pub oh: usize,
    pub ow: usize,
    pub stride: usize,
    pub pad: usize,
}

impl Geom {
    /// Validate x [N, Cin, H, W] and w [Cout, Cin, KH, KW]; `op` names the caller in panics.
    pub fn new(op: &str, x_shape: &[usize], w_shape: &[usize], stride: usize, pad: usize) -> Geom {
        assert_eq!(x_shape.len(), 4, "{op}: x must be NCHW, got {x_shape:?}");
        assert_eq!(w_shape.len(), 4, "{op}: w must be [Cout, Cin, KH, KW], got {w_shape:?}");
        assert!(stride >= 1, "{op}: stride must be >= 1");
        let (n, cin, h, w) = (x_shape[0], x_shape[1], x_shape[2], x_shape[3]);
        let (cout, wcin, kh, kw) = (w_shape[0], w_shape[1], w_shape[2], w_shape[3]);
        assert_eq!(cin, wcin, "{op}: x has {cin} channels but w expects {wcin} (x {x_shape:?}, w {w_shape:?})");
        assert!(h + 2 * pad >= kh && w + 2 * pad >= kw, "{op}: kernel {kh}x{kw} larger than padded input {h}x{w} pad {pad}");
        Geom { n, cin, h, w, cout, kh, kw, oh: (h + 2 * pad - kh) / stride + 1, ow: (w + 2 * pad - kw) / stride + 1, stride, pad }
    }
    pub fn x_shape(&self) -> [usize; 4] {
        [self.n, self.cin, self.h, self.w]
    }
    pub fn w_shape(&self) -> [usize; 4] {
        [self.cout, self.cin, self.kh, self.kw]
    }
    pub fn y_shape(&self) -> [usize; 4] {
        [self.n, self.cout, self.oh, self.ow]
    }
    /// Elements of one image of x and of y.
    fn x_img(&self) -> usize {
        self.cin * self.h * self.w
    }
    fn y_img(&self) -> usize {
        self.cout * self.oh * self.ow
    }
    /// Multiply-adds x 2 of the forward (the input and weight gradients cost the same).
    pub fn flops(&self) -> f64 {
        2.0 * (self.n * self.cout * self.oh * self.ow * self.cin * self.kh * self.kw) as f64
    }
    /// Params for a batch slice of `nb` images (offsets and tiling filled in by the launcher).
    fn params(&self, nb: usize) -> Params {
        Params {
            n: nb as u32,
            cin: self.cin as u32,
            h: self.h as u32,
            w: self.w as u32,
            cout: self.cout as u32,
            oh: self.oh as u32,
            ow: self.ow as u32,
            kh: self.kh as u32,
            kw: self.kw as u32,
            stride: self.stride as u32,
            pad: self.pad as u32,
            npos: (nb * self.oh * self.ow) as u32,
            ..Default::default()
        }
    }
}

/// Which kernels a launcher runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// The best kernel for the shape and adapter.
    Auto,
    /// The one-invocation-per-output baseline.
    Naive,
    /// The register-blocked implicit-GEMM kernels, with their subgroup twins where the device has subgroups.
    Tiled,
    /// The register-blocked kernels without subgroup operations (what devices without subgroups run; tested on
    /// every device against the same oracle).
    TiledPortable,
}

/// Launcher options: the kernel variant and the storage binding limit to split batches for (None: the adapter's).
#[derive(Clone, Copy, Debug)]
pub struct Launch {
    pub variant: Variant,
    pub max_binding: Option<u64>,
}

impl Default for Launch {
    fn default() -> Self {
        Launch { variant: Variant::Auto, max_binding: None }
    }
}

impl Launch {
    pub fn naive() -> Launch {
        Launch { variant: Variant::Naive, ..Default::default() }
    }
    pub fn tiled() -> Launch {
        Launch { variant: Variant::Tiled, ..Default::default() }
    }
    /// The kernel for a shape. `Auto` takes the tiled kernels everywhere except 1x1 outputs (the SE "FC" convs on
    /// [N, C, 1, 1]), where an invocation's 16-pixel row block would hold one pixel and the naive kernel's one
    /// invocation per output spreads better. The same choice serves lavapipe and real GPUs (`gpu.is_cpu()`): both
    /// are limited by loads, which the register blocks cut by 5-10x (see the shader header).
    fn pick(&self, gpu: &Gpu, g: &Geom) -> Variant {
        match self.variant {
            Variant::Auto if g.oh * g.ow == 1 => Variant::Naive,
            Variant::Auto if gpu.family() == Family::Naive => Variant::Naive,
            Variant::Auto => Variant::Tiled,
            v => v,
        }
    }
    /// Whether the subgroup twins may run: the variant allows them, the device has subgroups, and whole subgroups
    /// fit a 64-lane workgroup.
    fn subgroups(&self, gpu: &Gpu) -> bool {
        self.variant != Variant::TiledPortable && gpu.family() == Family::Auto && gpu.has_subgroups()
    }
    fn limit(&self, gpu: &Gpu) -> u64 {
        self.max_binding.unwrap_or(gpu.max_binding()).min(gpu.max_binding())
    }
}

// ---------------------------------------------------------------------------------------------- bindings

/// Storage binding numbers of shaders/conv2d.wgsl.
const X: usize = 1;
const W: usize = 2;
const B: usize = 3;
const GY: usize = 4;
const PART: usize = 5;
const OUT: usize = 6;
const WP: usize = 7;
const WP_OUT: usize = 8;
const X4: usize = 9;
const GY4: usize = 10;
const WP_OUT4: usize = 11;

/// The binding list for a dispatch: `set` places buffers at their binding numbers; every other slot repeats the
/// first of them (the entry point does not use it, so the runtime never binds it).
fn binds<'a>(set: &[(usize, Bind<'a>)]) -> [Bind<'a>; 11] {
    let mut v = [set[0].1; 11];
    for &(slot, b) in set {
        v[slot - 1] = b;
    }
    v
}

// ---------------------------------------------------------------------------------------------- batch slicing

/// Bytes kept free in every sliced binding: a range starts at an aligned element at most one alignment early.
const ALIGN_SLACK: u64 = 256;

/// Split a batch of `n` into slices [n0, n0 + nb) so that nb images of every tensor (elements per image in
/// `per_image`) fit one binding of `limit` bytes.
fn batch_slices(op: &str, n: usize, per_image: &[usize], limit: u64) -> Vec<(usize, usize)> {
    let biggest = per_image.iter().copied().max().unwrap_or(1).max(1) as u64 * 4;
    let room = limit.saturating_sub(ALIGN_SLACK);
    assert!(biggest <= room, "{op}: one image needs a {biggest}-byte binding, over the limit of {limit} bytes");
    let nb = ((room / biggest) as usize).clamp(1, n.max(1));
    (0..n).step_by(nb).map(|n0| (n0, nb.min(n - n0))).collect()
}

/// Bind elements [first, first + len) of `t`. The range starts at the aligned element at or before `first` (storage
/// bindings must start at a multiple of the adapter's offset alignment); the returned offset locates `first` in it.
fn bind_slice<'a>(gpu: &Gpu, t: &'a Tensor, first: usize, len: usize) -> (Bind<'a>, u32) {
    let align = (gpu.limits.min_storage_buffer_offset_alignment as usize / 4).max(1);
    let base = first / align * align;
    (t.bind_range(base, first - base + len), (first - base) as u32)
}

/// Positions per partial-sum tile for a reduction of `npos` positions into `m` outputs, over batch slices of at most
/// `slice_pos` positions each: at least `min_len` (enough work per invocation), at most 32,768 (the llvmpipe loop
/// limit is 65,535), and few enough tiles that the scratch [tiles, m] fits one binding.
fn tile_len_for(op: &str, npos: usize, slice_pos: usize, m: usize, min_len: usize, limit: u64) -> usize {
    let mut len = min_len.min(slice_pos.max(1));
    loop {
        let tiles = total_tiles(npos, slice_pos, len);
        if (tiles * m * 4) as u64 + ALIGN_SLACK <= limit {
            return len;
        }
        assert!(len < 32_768, "{op}: partial sums [{tiles}, {m}] do not fit a binding of {limit} bytes");
        len = (len * 2).min(32_768);
    }
}

/// Number of tiles when each slice of `slice_pos` positions (the last may be shorter) is cut into tiles of `len`.
fn total_tiles(npos: usize, slice_pos: usize, len: usize) -> usize {
    let full = npos / slice_pos.max(1);
    let rest = npos % slice_pos.max(1);
    full * slice_pos.div_ceil(len) + rest.div_ceil(len)
}

// ---------------------------------------------------------------------------------------------- launchers

/// y = conv(x, w) + b  // x [N,Cin,H,W], w [Cout,Cin,KH,KW], b [Cout] -> y [N,Cout,OH,OW]
pub fn conv2d_forward(x: &Tensor, w: &Tensor, b: Option<&Tensor>, stride: usize, pad: usize) -> Tensor {
    conv2d_forward_with(x, w, b, stride, pad, Launch::default())
}

/// `conv2d_forward` with an explicit kernel variant and binding limit.
pub fn conv2d_forward_with(x: &Tensor, w: &Tensor, b: Option<&Tensor>, stride: usize, pad: usize, l: Launch) -> Tensor {
    let op = "conv2d_forward";
    let g = Geom::new(op, &x.shape, &w.shape, stride, pad);
    if let Some(b) = b {
        assert_eq!(b.shape, [g.cout], "{op}: bias must be [{}], got {:?}", g.cout, b.shape);
    }
    let gpu = x.gpu();
    let y = Tensor::empty(gpu, &g.y_shape());
    // Without a bias the binding is filled with w and never read (has_bias = 0).
    let bb = b.map(|b| b.bind()).unwrap_or(w.bind());
    // The tiled kernels read weights packed in blocks of k.cw output channels (Cout rounded up to k.cw). None: the
    // naive kernel (chosen, or the tiled one is not allowed on this device).
    let k = (l.pick(gpu, &g) != Variant::Naive).then(|| allowed(gpu, |sg| forward_kernel(&g, sg), l.subgroups(gpu))).flatten();
    let wp = k.as_ref().map(|k| pack_weight(w, &g, g.cout.next_multiple_of(k.cw), k.cw));
    for (n0, nb) in batch_slices(op, g.n, &[g.x_img(), g.y_img()], l.limit(gpu)) {
        let (bx, off_x) = bind_slice(gpu, x, n0 * g.x_img(), nb * g.x_img());
        let (by, off_out) = bind_slice(gpu, &y, n0 * g.y_img(), nb * g.y_img());
        let p = Params { has_bias: b.is_some() as u32, off_x, off_out, ..g.params(nb) };
        match (&wp, &k) {
            (Some(wp), Some(k)) => forward_tiled(&g, nb, p, bx, bb, by, wp, k),
            _ => gpu.dispatch_1d_by_position("conv2d_forward", &p, &binds(&[(X, bx), (W, w.bind()), (B, bb), (OUT, by)]), (nb * g.y_img()) as u64),
        }
    }
    y
}

/// A tiled kernel over (channel block, pixel block) lanes: the forwards and the strided input gradients.
struct FwdKernel {
    entry: &'static str,
    /// Channels per block of the packed weights it reads.
    cw: usize,
    /// Output pixels of a row per invocation.
    px: usize,
    /// Reads rows as vec4: every row of its input must start 16-byte aligned in the binding.
    vec4: bool,
    /// Shares loads across a subgroup: each channel block's pixel blocks are padded to whole subgroups
    /// (p.tile_len), so that no subgroup straddles two channel blocks.
    subgroup: bool,
}

impl FwdKernel {
    const fn new(entry: &'static str, cw: usize, vec4: bool, subgroup: bool) -> FwdKernel {
        FwdKernel { entry, cw, px: 16, vec4, subgroup }
    }

    /// Lanes per channel block for `blocks` pixel blocks (the kernel's p.tile_len when it is a subgroup kernel).
    fn lanes_per_block(&self, gpu: &Gpu, blocks: usize) -> usize {
        if self.subgroup {
            blocks.next_multiple_of(gpu.subgroup_max_size() as usize)
        } else {
            blocks
        }
    }

    /// The vec4 kernels need their input slice 16-byte aligned (true by construction: see `forward_kernel`).
    fn check_aligned(&self, off: u32, bind: &Bind) {
        if self.vec4 {
            assert!(off % 4 == 0 && bind.offset % 16 == 0, "conv2d: {}: input slice not 16-byte aligned", self.entry);
        }
    }
}

/// The kernel `choose` picks with subgroups when they may run, unless this device replaced that subgroup kernel by
/// its portable twin (`Gpu::disable`: it failed validation here): then the portable one; None when that one is not
/// allowed either (too slow to build on this adapter, or wrong here): the caller runs the naive kernel.
fn allowed(gpu: &Gpu, choose: impl Fn(bool) -> FwdKernel, subgroups: bool) -> Option<FwdKernel> {
    let k = choose(subgroups);
    let k = if k.subgroup && !gpu.allowed(k.entry) { choose(false) } else { k };
    gpu.allowed(k.entry).then_some(k)
}

/// The tiled forward kernel for a geometry. 3x3 stride-1 pad-1 layers whose rows are a multiple of 4 floats take
/// the vec4 kernels (every batch slice then starts 16-byte aligned: it begins at a whole image of C*H*W floats and
/// is bound from an aligned element), or with subgroups their subgroup twin (16 channels per invocation).
fn forward_kernel(g: &Geom, subgroups: bool) -> FwdKernel {
    let is3 = g.kh == 3 && g.kw == 3 && g.stride == 1;
    let vec4 = is3 && g.pad == 1 && g.w % 4 == 0;
    // 3x3 stride 2 pad 1 with W = 2*OW (the encoder's downsampling convolutions).
    if g.kh == 3 && g.kw == 3 && g.stride == 2 && g.pad == 1 && g.w == 2 * g.ow && g.w % 4 == 0 {
        let entry = if subgroups { "conv2d_forward_3x3s2_subgroup" } else { "conv2d_forward_3x3s2_vec4" };
        return FwdKernel::new(entry, 16, true, subgroups);
    }
    // Rows of 12, 24, 36 ... pixels: 12-pixel blocks waste nothing where 16-pixel blocks would waste a quarter.
    if vec4 && subgroups && g.ow % 12 == 0 && g.ow % 16 != 0 {
        return FwdKernel { px: 12, ..FwdKernel::new("conv2d_forward_3x3_subgroup12", 16, true, true) };
    }
    match (is3, vec4) {
        (true, true) if subgroups => FwdKernel::new("conv2d_forward_3x3_subgroup", 16, true, true),
        (true, true) => FwdKernel::new("conv2d_forward_3x3_vec4", CW, true, false),
        (true, false) => FwdKernel::new("conv2d_forward_3x3", CW, false, false),
        _ => FwdKernel::new("conv2d_forward_tiled", CW, false, false),
    }
}

/// The tiled input-gradient kernel for a convolution that is not stride 1 (parity classes). Rows of gy that are a
/// multiple of 4 floats (so every batch slice starts 16-byte aligned) and at most 4 taps per class along a row
/// take the vec4 kernel (16 channels per invocation) or its subgroup twin.
fn strided_input_kernel(g: &Geom, subgroups: bool) -> FwdKernel {
    let vec4 = g.ow % 4 == 0 && g.kw.div_ceil(g.stride) <= 4;
    match (vec4, subgroups) {
        (true, true) => FwdKernel::new("conv2d_backward_input_strided_subgroup", 16, true, true),
        (true, false) => FwdKernel::new("conv2d_backward_input_strided_vec4", 16, true, false),
        _ => FwdKernel::new("conv2d_backward_input_tiled", CW, false, false),
    }
}

/// One tiled forward dispatch over a slice of `nb` images (`p` holds the slice's offsets; x, bias and y bound).
/// Invocation = 16 pixels of a row x k.cw channels; lanes enumerate (channel block, pixel block).
fn forward_tiled(g: &Geom, nb: usize, p: Params, bx: Bind, bb: Bind, by: Bind, wp: &Tensor, k: &FwdKernel) {
    let gpu = wp.gpu();
    let cpad = g.cout.next_multiple_of(k.cw);
    let per_blk = k.lanes_per_block(gpu, nb * g.oh * g.ow.div_ceil(k.px));
    k.check_aligned(p.off_x, &bx);
    let p = Params { m: cpad as u32, cw: k.cw as u32, tile_len: per_blk as u32, ..p };
    let groups = gpu.groups_1d((per_blk * (cpad / k.cw)) as u64, 64);
    gpu.dispatch_by_position(k.entry, &p, &binds(&[(X, bx), (B, bb), (OUT, by), (WP, wp.bind()), (X4, bx)]), groups);
}

/// Channels per packed weight block of the tiled kernels that own 8 output channels per invocation (the 16-channel
/// ones say so in their `FwdKernel`).
const CW: usize = 8;

/// wp [cpad/cw, K, cw]: w [Cout, K] (K = Cin*KH*KW) transposed in blocks of cw channels, zero past Cout.
fn pack_weight(w: &Tensor, g: &Geom, cpad: usize, cw: usize) -> Tensor {
    let kk = g.cin * g.kh * g.kw;
    let wp = Tensor::empty(w.gpu(), &[cpad / cw, kk, cw]);
    let p = Params { m: cpad as u32, cw: cw as u32, ..g.params(0) };
    // Four channels per invocation (cw is a multiple of 4).
    w.gpu().dispatch_1d_by_position("conv2d_pack_weight_vec4", &p, &binds(&[(W, w.bind()), (WP_OUT4, wp.bind())]), (kk * cpad / 4) as u64);
    wp
}

/// dL/dx  // gy [N,Cout,OH,OW], w [Cout,Cin,KH,KW] -> gx with shape x_shape [N,Cin,H,W]
pub fn conv2d_backward_input(gy: &Tensor, w: &Tensor, x_shape: &[usize], stride: usize, pad: usize) -> Tensor {
    conv2d_backward_input_with(gy, w, x_shape, stride, pad, Launch::default())
}

pub fn conv2d_backward_input_with(gy: &Tensor, w: &Tensor, x_shape: &[usize], stride: usize, pad: usize, l: Launch) -> Tensor {
    let op = "conv2d_backward_input";
    let g = Geom::new(op, x_shape, &w.shape, stride, pad);
    assert_eq!(gy.shape, g.y_shape(), "{op}: gy shape {:?} does not match the forward output {:?}", gy.shape, g.y_shape());
    let gpu = gy.gpu();
    let gx = Tensor::empty(gpu, x_shape);
    // At stride 1 (square kernel, pad < K) the input gradient is a forward convolution of gy with the flipped,
    // transposed kernel and padding K-1-p, so it runs on the tiled forward kernels. Other strides use the parity-class
    // kernels (`strided_input_kernel`).
    let flip_ok = g.stride == 1 && g.kh == g.kw && g.pad < g.kh;
    let tiled = l.pick(gpu, &g) != Variant::Naive;
    // The transposed problem: input gy [N, Cout, OH, OW], output gx [N, Cin, H, W].
    let gt = Geom { cin: g.cout, h: g.oh, w: g.ow, cout: g.cin, oh: g.h, ow: g.w, pad: g.kh.wrapping_sub(1 + g.pad), ..g };
    let k = if flip_ok {
        allowed(gpu, |sg| forward_kernel(&gt, sg), l.subgroups(gpu))
    } else {
        allowed(gpu, |sg| strided_input_kernel(&g, sg), l.subgroups(gpu))
    };
    // None: the naive kernel (chosen, or the tiled one is not allowed on this device).
    let Some(k) = k.filter(|_| tiled) else {
        for (n0, nb) in batch_slices(op, g.n, &[g.x_img(), g.y_img()], l.limit(gpu)) {
            let (bgy, off_gy) = bind_slice(gpu, gy, n0 * g.y_img(), nb * g.y_img());
            let (bgx, off_out) = bind_slice(gpu, &gx, n0 * g.x_img(), nb * g.x_img());
            let p = Params { off_gy, off_out, ..g.params(nb) };
            gpu.dispatch_1d_by_position("conv2d_backward_input", &p, &binds(&[(GY, bgy), (W, w.bind()), (OUT, bgx)]), (nb * g.x_img()) as u64);
        }
        return gx;
    };
    // Flipped, transposed weights in blocks of k.cw input channels (the transposed problem's output channels).
    let cw = k.cw;
    let cpad = g.cin.next_multiple_of(cw);
    let wp = tiled.then(|| {
        let kt = g.cout * g.kh * g.kw;
        let wp = Tensor::empty(gpu, &[cpad / cw, kt, cw]);
        let p = Params { m: cpad as u32, cw: cw as u32, ..g.params(0) };
        gpu.dispatch_1d_by_position("conv2d_pack_weight_flipped_vec4", &p, &binds(&[(W, w.bind()), (WP_OUT4, wp.bind())]), (kt * cpad / 4) as u64);
        wp
    });
    for (n0, nb) in batch_slices(op, g.n, &[g.x_img(), g.y_img()], l.limit(gpu)) {
        let (bgy, off_gy) = bind_slice(gpu, gy, n0 * g.y_img(), nb * g.y_img());
        let (bgx, off_out) = bind_slice(gpu, &gx, n0 * g.x_img(), nb * g.x_img());
        if let Some(wp) = &wp {
            if flip_ok {
                let p = Params { off_x: off_gy, off_out, ..gt.params(nb) };
                forward_tiled(&gt, nb, p, bgy, bgy, bgx, wp, &k);
            } else {
                // Parity classes on z: rows A and columns B of each class, 16 columns x k.cw channels per
                // invocation; the subgroup kernel pads each channel block's pixel blocks to whole subgroups.
                let (rows, cols) = ((g.h + g.pad).div_ceil(g.stride), (g.w + g.pad).div_ceil(g.stride));
                let per_blk = k.lanes_per_block(gpu, nb * rows * cols.div_ceil(k.px));
                k.check_aligned(off_gy, &bgy);
                let [gx_, gy_, _] = gpu.groups_1d((per_blk * (cpad / k.cw)) as u64, 64);
                let groups = [gx_, gy_, (g.stride * g.stride) as u32];
                let p = Params { m: cpad as u32, cw: k.cw as u32, tile_len: per_blk as u32, off_gy, off_out, ..g.params(nb) };
                gpu.dispatch_by_position(k.entry, &p, &binds(&[(GY, bgy), (OUT, bgx), (WP, wp.bind()), (GY4, bgy)]), groups);
            }
            continue;
        }
        let p = Params { off_gy, off_out, ..g.params(nb) };
        gpu.dispatch_1d_by_position("conv2d_backward_input", &p, &binds(&[(GY, bgy), (W, w.bind()), (OUT, bgx)]), (nb * g.x_img()) as u64);
    }
    gx
}

/// dL/dw  // x [N,Cin,H,W], gy [N,Cout,OH,OW] -> gw with shape w_shape [Cout,Cin,KH,KW]
pub fn conv2d_backward_weight(x: &Tensor, gy: &Tensor, w_shape: &[usize], stride: usize, pad: usize) -> Tensor {
    conv2d_backward_weight_with(x, gy, w_shape, stride, pad, Launch::default())
}

pub fn conv2d_backward_weight_with(x: &Tensor, gy: &Tensor, w_shape: &[usize], stride: usize, pad: usize, l: Launch) -> Tensor {
    let op = "conv2d_backward_weight";
    let g = Geom::new(op, &x.shape, w_shape, stride, pad);
    assert_eq!(gy.shape, g.y_shape(), "{op}: gy shape {:?} does not match the forward output {:?}", gy.shape, g.y_shape());
    let gpu = x.gpu();
    let limit = l.limit(gpu);
    let m = g.cout * g.cin * g.kh * g.kw;
    let slices = batch_slices(op, g.n, &[g.x_img(), g.y_img()], limit);
    let hw = g.oh * g.ow;
    if l.pick(gpu, &g) != Variant::Naive && gpu.allowed(portable_weight_entry(&g)) {
        return backward_weight_tiled(x, gy, &g, &slices, l.subgroups(gpu));
    }
    let tile_len = tile_len_for(op, g.n * hw, slices[0].1 * hw, m, 2048, gpu.max_binding());
    let part = Tensor::empty(gpu, &[total_tiles(g.n * hw, slices[0].1 * hw, tile_len), m]);
    // Pass 1: each slice writes its tiles' partial sums into consecutive rows of `part`.
    let mut t0 = 0;
    for &(n0, nb) in &slices {
        let tiles = (nb * hw).div_ceil(tile_len);
        let (bx, off_x) = bind_slice(gpu, x, n0 * g.x_img(), nb * g.x_img());
        let (bgy, off_gy) = bind_slice(gpu, gy, n0 * g.y_img(), nb * g.y_img());
        let (bpart, off_out) = bind_slice(gpu, &part, t0 * m, tiles * m);
        let p = Params { tiles: tiles as u32, tile_len: tile_len as u32, m: m as u32, off_x, off_gy, off_out, ..g.params(nb) };
        gpu.dispatch_1d_by_position("conv2d_backward_weight", &p, &binds(&[(X, bx), (GY, bgy), (OUT, bpart)]), (tiles * m) as u64);
        t0 += tiles;
    }
    reduce_tiles(&part, w_shape)
}

/// The portable tiled weight-gradient kernel `backward_weight_tiled` runs for a geometry (every batch slice starts
/// 16-byte aligned when rows are a multiple of 4 floats: slices begin at whole images).
fn portable_weight_entry(g: &Geom) -> &'static str {
    let is3 = g.kh == 3 && g.kw == 3 && g.stride == 1 && g.pad == 1;
    let is3s2 = g.kh == 3 && g.kw == 3 && g.stride == 2 && g.pad == 1 && g.w == 2 * g.ow;
    match (is3, is3s2, g.ow % 4 == 0) {
        (true, _, true) => "conv2d_backward_weight_3x3_vec4",
        (_, true, true) => "conv2d_backward_weight_3x3s2_vec4",
        _ if g.kh == 3 && g.kw == 3 && g.stride == 1 => "conv2d_backward_weight_3x3",
        _ => "conv2d_backward_weight_tiled",
    }
}

/// The tiled weight gradient: partial sums over tiles of whole output rows, then the shared reduce pass.
fn backward_weight_tiled(x: &Tensor, gy: &Tensor, g: &Geom, slices: &[(usize, usize)], subgroups: bool) -> Tensor {
    let gpu = x.gpu();
    let kk = g.cin * g.kh * g.kw;
    let m = g.cout * kk;
    let is3 = g.kh == 3 && g.kw == 3 && g.stride == 1;
    // Tiles of R output rows (about 2,048 positions: loop count R*OW + R per invocation).
    let rows_min = (2048 / g.ow).max(1);
    let rows = tile_len_for("conv2d_backward_weight", g.n * g.oh, slices[0].1 * g.oh, m, rows_min, gpu.max_binding());
    assert!(rows * (g.ow + 1) < 40_000, "conv2d_backward_weight: rows of {} positions are too long for one tile", g.ow);
    let part = Tensor::empty(gpu, &[total_tiles(g.n * g.oh, slices[0].1 * g.oh, rows), m]);
    let mut t0 = 0;
    for &(n0, nb) in slices {
        let tiles = (nb * g.oh).div_ceil(rows);
        let (bx, off_x) = bind_slice(gpu, x, n0 * g.x_img(), nb * g.x_img());
        let (bgy, off_gy) = bind_slice(gpu, gy, n0 * g.y_img(), nb * g.y_img());
        let (bpart, off_out) = bind_slice(gpu, &part, t0 * m, tiles * m);
        let p = Params { tiles: tiles as u32, tile_len: rows as u32, m: m as u32, off_x, off_gy, off_out, ..g.params(nb) };
        // Every kernel below gets the same list (vec4 views included); each binds only what it uses.
        let bs = binds(&[(X, bx), (GY, bgy), (OUT, bpart), (X4, bx), (GY4, bgy)]);
        // The vec4 kernels read whole rows as vec4: every row must start at a multiple of 4 floats in its binding.
        let aligned = g.ow % 4 == 0 && off_x % 4 == 0 && off_gy % 4 == 0 && bx.offset % 16 == 0 && bgy.offset % 16 == 0;
        // 3x3 stride 2 pad 1 with W = 2*OW: the same kernels with strided input columns.
        let is3s2 = g.kh == 3 && g.kw == 3 && g.stride == 2 && g.pad == 1 && g.w == 2 * g.ow;
        let vec4_ok = (is3 || is3s2) && g.pad == 1 && aligned;
        if vec4_ok {
            // Invocation = (ci, 16 output channels) x 9 taps; lanes (tile, channel block, ci).
            let lanes = g.cin * g.cout.div_ceil(16);
            // The subgroup twin needs each subgroup inside one (tile, channel block): Cin a multiple of its size.
            let pick = |sg: bool| match (is3s2, sg) {
                (false, true) => "conv2d_backward_weight_3x3_subgroup",
                (false, false) => "conv2d_backward_weight_3x3_vec4",
                (true, true) => "conv2d_backward_weight_3x3s2_subgroup",
                (true, false) => "conv2d_backward_weight_3x3s2_vec4",
            };
            let sg = subgroups && g.cin % gpu.subgroup_max_size() as usize == 0 && gpu.allowed(pick(true));
            let entry = pick(sg);
            if sg {
                // Lanes on x, tiles on y: a workgroup's loop bounds depend on its tile only (uniform control flow
                // around the subgroup operations).
                gpu.dispatch_by_position(entry, &p, &bs, [lanes.div_ceil(64) as u32, tiles as u32, 1]);
            } else {
                gpu.dispatch_by_position(entry, &p, &bs, gpu.groups_1d((lanes * tiles) as u64, 64));
            }
        } else if is3 {
            // Lanes on x, tiles on y: invocation = (ci, 8 output channels) x 9 taps.
            let lanes = g.cin * g.cout.div_ceil(8);
            gpu.dispatch_by_position("conv2d_backward_weight_3x3", &p, &bs, [lanes.div_ceil(64) as u32, tiles as u32, 1]);
        } else {
            // Lanes on x, tiles on y: invocation = 8 consecutive k x 4 output channels.
            let lanes = kk.div_ceil(8) * g.cout.div_ceil(4);
            gpu.dispatch_by_position("conv2d_backward_weight_tiled", &p, &bs, [lanes.div_ceil(64) as u32, tiles as u32, 1]);
        }
        t0 += tiles;
    }
    reduce_tiles(&part, &g.w_shape())
}

/// dL/db  // gy [N,Cout,OH,OW] -> [Cout]
pub fn conv2d_backward_bias(gy: &Tensor) -> Tensor {
    conv2d_backward_bias_with(gy, Launch::default())
}

pub fn conv2d_backward_bias_with(gy: &Tensor, l: Launch) -> Tensor {
    let op = "conv2d_backward_bias";
    let (n, cout, oh, ow) = gy.nchw(op);
    let gpu = gy.gpu();
    let limit = l.limit(gpu);
    let hw = oh * ow;
    let slices = batch_slices(op, n, &[cout * hw], limit);
    let tile_len = tile_len_for(op, n * hw, slices[0].1 * hw, cout, 2048, gpu.max_binding());
    let part = Tensor::empty(gpu, &[total_tiles(n * hw, slices[0].1 * hw, tile_len), cout]);
    let mut t0 = 0;
    for &(n0, nb) in &slices {
        let tiles = (nb * hw).div_ceil(tile_len);
        let (bgy, off_gy) = bind_slice(gpu, gy, n0 * cout * hw, nb * cout * hw);
        let (bpart, off_out) = bind_slice(gpu, &part, t0 * cout, tiles * cout);
        let p = Params {
            n: nb as u32,
            cout: cout as u32,
            oh: oh as u32,
            ow: ow as u32,
            tiles: tiles as u32,
            tile_len: tile_len as u32,
            npos: (nb * hw) as u32,
            m: cout as u32,
            off_gy,
            off_out,
            ..Default::default()
        };
        gpu.dispatch_1d_by_position("conv2d_backward_bias", &p, &binds(&[(GY, bgy), (OUT, bpart)]), (tiles * cout) as u64);
        t0 += tiles;
    }
    reduce_tiles(&part, &[cout])
}

/// Pass 2 of the weight and bias gradients: out[m] = sum over the rows of part [tiles, M], in row order.
fn reduce_tiles(part: &Tensor, out_shape: &[usize]) -> Tensor {
    let (tiles, m) = (part.shape[0], part.shape[1]);
    if tiles == 1 {
        // One tile holds the whole sum already.
        return part.reshape(out_shape);
    }
    let gpu = part.gpu();
    let out = Tensor::empty(gpu, out_shape);
    let p = Params { tiles: tiles as u32, m: m as u32, ..Default::default() };
    let bp = part.bind();
    gpu.dispatch_1d_by_position("conv2d_backward_reduce", &p, &binds(&[(PART, bp), (OUT, out.bind())]), m as u64);
    out
}

// ---------------------------------------------------------------------------------------------- autograd

/// y = conv2d(x, w) + b on the tape. Saves x and w; backward gives dL/dx (skipped when x needs no gradient, e.g.
/// the input image), dL/dw and dL/db.
pub fn conv2d(tape: &Tape, x: &Var, w: &Var, b: Option<&Var>, stride: usize, pad: usize) -> Var {
    let y = conv2d_forward(&x.t, &w.t, b.map(|b| &b.t), stride, pad);
    let (xs, ws) = (x.t.clone(), w.t.clone());
    let (need_gx, need_gw, has_b) = (x.id.is_some(), w.id.is_some(), b.is_some());
    let mut inputs = vec![x, w];
    inputs.extend(b);
    tape.record("conv2d", &inputs, y, move |gy| {
        let gx = need_gx.then(|| conv2d_backward_input(gy, &ws, &xs.shape, stride, pad));
        let gw = need_gw.then(|| conv2d_backward_weight(&xs, gy, &ws.shape, stride, pad));
        let mut grads = vec![gx, gw];
        if has_b {
            grads.push(Some(conv2d_backward_bias(gy)));
        }
        grads
    })
}

// ---------------------------------------------------------------------------------------------- CPU oracle

/// The f64 oracle: plain loops over the formulas in the header (rayon over output channels so the full-size tests
/// stay fast). Shapes are passed explicitly; tensors are flat NCHW / OIHW.
pub mod cpu {
    use rayon::prelude::*;

    use super::Geom;

    /// y [N, Cout, OH, OW]
    pub fn forward(x: &[f64], x_shape: &[usize], w: &[f64], w_shape: &[usize], b: Option<&[f64]>, stride: usize, pad: usize) -> Vec<f64> {
        let g = Geom::new("cpu::forward", x_shape, w_shape, stride, pad);
        let mut y = vec![0.0; g.n * g.cout * g.oh * g.ow];
        // One chunk per (n, co) output plane.
        y.par_chunks_mut(g.oh * g.ow).enumerate().for_each(|(nc, plane)| {
            let (n, co) = (nc / g.cout, nc % g.cout);
            plane.fill(b.map_or(0.0, |b| b[co]));
            for ci in 0..g.cin {
                for ky in 0..g.kh {
                    for kx in 0..g.kw {
                        let wv = w[((co * g.cin + ci) * g.kh + ky) * g.kw + kx];
                        for oy in 0..g.oh {
                            let iy = (oy * g.stride + ky) as isize - g.pad as isize;
                            if iy < 0 || iy >= g.h as isize {
                                continue;
                            }
                            let row = &x[((n * g.cin + ci) * g.h + iy as usize) * g.w..][..g.w];
                            for ox in 0..g.ow {
                                let ix = (ox * g.stride + kx) as isize - g.pad as isize;
                                if ix >= 0 && ix < g.w as isize {
                                    plane[oy * g.ow + ox] += wv * row[ix as usize];
                                }
                            }
                        }
                    }
                }
            }
        });
        y
    }

    /// dL/dx [N, Cin, H, W]: scatter each dL/dy through the taps that produced it (the transpose of `forward`).
    pub fn backward_input(gy: &[f64], w: &[f64], w_shape: &[usize], x_shape: &[usize], stride: usize, pad: usize) -> Vec<f64> {
        let g = Geom::new("cpu::backward_input", x_shape, w_shape, stride, pad);
        let mut gx = vec![0.0; g.n * g.cin * g.h * g.w];
        gx.par_chunks_mut(g.h * g.w).enumerate().for_each(|(nc, plane)| {
            let (n, ci) = (nc / g.cin, nc % g.cin);
            for co in 0..g.cout {
                for ky in 0..g.kh {
                    for kx in 0..g.kw {
                        let wv = w[((co * g.cin + ci) * g.kh + ky) * g.kw + kx];
                        for oy in 0..g.oh {
                            let iy = (oy * g.stride + ky) as isize - g.pad as isize;
                            if iy < 0 || iy >= g.h as isize {
                                continue;
                            }
                            let grow = &gy[((n * g.cout + co) * g.oh + oy) * g.ow..][..g.ow];
                            for ox in 0..g.ow {
                                let ix = (ox * g.stride + kx) as isize - g.pad as isize;
                                if ix >= 0 && ix < g.w as isize {
                                    plane[iy as usize * g.w + ix as usize] += wv * grow[ox];
                                }
                            }
                        }
                    }
                }
            }
        });
        gx
    }

    /// dL/dw [Cout, Cin, KH, KW]
    pub fn backward_weight(x: &[f64], x_shape: &[usize], gy: &[f64], w_shape: &[usize], stride: usize, pad: usize) -> Vec<f64> {
        let g = Geom::new("cpu::backward_weight", x_shape, w_shape, stride, pad);
        let mut gw = vec![0.0; g.cout * g.cin * g.kh * g.kw];
        gw.par_chunks_mut(g.kh * g.kw).enumerate().for_each(|(cc, taps)| {
            let (co, ci) = (cc / g.cin, cc % g.cin);
            for n in 0..g.n {
                for ky in 0..g.kh {
                    for kx in 0..g.kw {
                        let mut acc = 0.0;
                        for oy in 0..g.oh {
                            let iy = (oy * g.stride + ky) as isize - g.pad as isize;
                            if iy < 0 || iy >= g.h as isize {
                                continue;
                            }
                            let row = &x[((n * g.cin + ci) * g.h + iy as usize) * g.w..][..g.w];
                            let grow = &gy[((n * g.cout + co) * g.oh + oy) * g.ow..][..g.ow];
                            for ox in 0..g.ow {
                                let ix = (ox * g.stride + kx) as isize - g.pad as isize;
                                if ix >= 0 && ix < g.w as isize {
                                    acc += grow[ox] * row[ix as usize];
                                }
                            }
                        }
                        taps[ky * g.kw + kx] += acc;
                    }
                }
            }
        });
        gw
    }

    /// dL/db [Cout]
    pub fn backward_bias(gy: &[f64], y_shape: &[usize]) -> Vec<f64> {
        let (n, cout, hw) = (y_shape[0], y_shape[1], y_shape[2] * y_shape[3]);
        (0..cout).map(|co| (0..n).map(|i| gy[(i * cout + co) * hw..][..hw].iter().sum::<f64>()).sum()).collect()
    }
}

// ---------------------------------------------------------------------------------------------- self-check

/// One self-check case: x [n, cin, h, w], a k x k kernel to cout channels, stride, pad, bias.
#[derive(Clone, Copy, Debug)]
pub struct Case {
    pub n: usize,
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
    pub bias: bool,
}

impl Case {
    pub const fn new(n: usize, cin: usize, h: usize, w: usize, cout: usize, k: usize, stride: usize, pad: usize, bias: bool) -> Case {
        Case { n, cin, h, w, cout, k, stride, pad, bias }
    }
    fn label(&self) -> String {
        format!("{}x{}x{}x{} {}->{} k{} s{} p{}{}", self.n, self.cin, self.h, self.w, self.cin, self.cout, self.k, self.stride, self.pad, if self.bias { " +b" } else { "" })
    }
}

/// Odd shapes: size 1, primes, non-multiples of every tile, strides 1 and 2, pads 0/1/3, kernels 1/3/7, a [N,C,1,1]
/// 1x1 "FC" case with bias.
pub const CASES: &[Case] = &[
    Case::new(1, 1, 1, 1, 1, 1, 1, 0, false),
    Case::new(2, 3, 11, 13, 5, 3, 1, 1, true),
    Case::new(2, 4, 13, 7, 3, 3, 2, 1, false),
    Case::new(1, 3, 17, 19, 4, 7, 2, 3, false),
    Case::new(3, 5, 9, 11, 7, 1, 2, 0, false),
    Case::new(3, 37, 1, 1, 5, 1, 1, 0, true),
    Case::new(2, 6, 5, 5, 2, 3, 1, 0, true),
    Case::new(1, 2, 7, 5, 3, 3, 2, 3, true),
    // W % 4 == 0, 3x3 stride 1 pad 1: the vec4 forward (and stride-1 input grad), with a partial and a short row.
    Case::new(2, 5, 9, 20, 11, 3, 1, 1, true),
    Case::new(3, 4, 5, 12, 9, 3, 1, 1, false),
    // 4,440 positions: several partial-sum tiles in the weight and bias gradients.
    Case::new(3, 2, 40, 37, 3, 3, 1, 1, true),
    // Cin a multiple of 8, W % 4 == 0: the subgroup weight gradient; 20 channels pad to 16-channel blocks.
    Case::new(2, 8, 6, 12, 20, 3, 1, 1, true),
    Case::new(1, 16, 5, 8, 16, 3, 1, 1, false),
    // Strided with OW % 4 == 0: the vec4 / subgroup strided input gradients (7x7/2, 3x3/2 with 18 input channels
    // padded to 16-channel blocks, 1x1/2).
    Case::new(2, 3, 12, 16, 6, 7, 2, 3, false),
    Case::new(2, 18, 9, 16, 8, 3, 2, 1, false),
    Case::new(2, 5, 6, 8, 20, 1, 2, 0, true),
    // 3x3 stride 2 pad 1 with W = 2*OW and Cin % 8 == 0: the strided weight-gradient kernels (subgroup twin too).
    Case::new(2, 8, 8, 16, 12, 3, 2, 1, true),
];

/// Larger odd shapes (`full`): channel counts past the tile sizes of the fast kernels.
pub const CASES_FULL: &[Case] = &[
    Case::new(2, 19, 23, 29, 33, 3, 1, 1, false),
    Case::new(3, 17, 21, 18, 70, 3, 2, 1, true),
    Case::new(1, 67, 9, 7, 65, 1, 1, 0, false),
    Case::new(2, 24, 10, 16, 40, 3, 1, 1, false),
];

/// Tolerances for a sum of `len` products of values in [-1, 1], accumulated in f32.
fn tol(len: usize) -> (f64, f64) {
    (1e-5 + 3e-7 * len as f64, 1e-4)
}

/// Every entry point for one case and launch options, against the f64 oracle.
pub fn check_case(gpu: &Arc<Gpu>, c: &Case, l: Launch, tag: &str) -> Vec<CheckResult> {
    let xs = [c.n, c.cin, c.h, c.w];
    let ws = [c.cout, c.cin, c.k, c.k];
    let g = Geom::new("conv2d self_check", &xs, &ws, c.stride, c.pad);
    let seed = (c.n * 7 + c.cin * 131 + c.h * 17 + c.cout * 5 + c.k) as u64;
    let x = rand_vec(xs.iter().product(), seed);
    let w = rand_vec(ws.iter().product(), seed + 1);
    let b = rand_vec(c.cout, seed + 2);
    let gy = rand_vec(g.y_shape().iter().product(), seed + 3);
    let (tx, tw, tb, tgy) = (
        Tensor::from_slice(gpu, &xs, &x),
        Tensor::from_slice(gpu, &ws, &w),
        Tensor::from_slice(gpu, &[c.cout], &b),
        Tensor::from_slice(gpu, &g.y_shape(), &gy),
    );
    let (x64, w64, b64, gy64) = (f64s(&x), f64s(&w), f64s(&b), f64s(&gy));
    let label = format!("{} {tag}", c.label());
    let mut out = Vec::new();

    let y = conv2d_forward_with(&tx, &tw, c.bias.then_some(&tb), c.stride, c.pad, l).to_vec();
    let want = cpu::forward(&x64, &xs, &w64, &ws, c.bias.then_some(&b64[..]), c.stride, c.pad);
    let (a, r) = tol(c.cin * c.k * c.k);
    out.push(compare("conv2d_forward", &label, &y, &want, a, r));

    let gx = conv2d_backward_input_with(&tgy, &tw, &xs, c.stride, c.pad, l).to_vec();
    let want = cpu::backward_input(&gy64, &w64, &ws, &xs, c.stride, c.pad);
    let (a, r) = tol(c.cout * c.k * c.k);
    out.push(compare("conv2d_backward_input", &label, &gx, &want, a, r));

    let gw = conv2d_backward_weight_with(&tx, &tgy, &ws, c.stride, c.pad, l).to_vec();
    let want = cpu::backward_weight(&x64, &xs, &gy64, &ws, c.stride, c.pad);
    let (a, r) = tol(c.n * g.oh * g.ow);
    out.push(compare("conv2d_backward_weight", &label, &gw, &want, a, r));

    if c.bias {
        let gb = conv2d_backward_bias_with(&tgy, l).to_vec();
        let want = cpu::backward_bias(&gy64, &g.y_shape());
        out.push(compare("conv2d_backward_bias", &label, &gb, &want, a, r));
    }
    out
}

/// The vec4 weight packing kernels against the scalar ones (bit-identical layouts), forward and flipped, with
/// channel counts that need zero padding and both block widths.
fn pack_checks(gpu: &Arc<Gpu>) -> Vec<CheckResult> {
    let mut out = Vec::new();
    for (ws, cw) in [([5usize, 3, 3, 3], 8usize), ([20, 7, 3, 3], 16), ([6, 9, 7, 7], 8), ([3, 17, 1, 1], 16)] {
        let w = Tensor::from_slice(gpu, &ws, &rand_vec(ws.iter().product(), ws[0] as u64 * 31 + ws[1] as u64));
        let g = Geom::new("conv2d pack check", &[1, ws[1], 9, 9], &ws, 1, ws[2] / 2);
        let label = format!("{ws:?} cw {cw}");
        for (flipped, channels, kk) in [(false, ws[0], ws[1] * ws[2] * ws[3]), (true, ws[1], ws[0] * ws[2] * ws[3])] {
            let cpad = channels.next_multiple_of(cw);
            let p = Params { m: cpad as u32, cw: cw as u32, ..g.params(0) };
            let (a, b) = (Tensor::empty(gpu, &[cpad * kk]), Tensor::empty(gpu, &[cpad * kk]));
            let (scalar, vec4) = if flipped {
                ("conv2d_pack_weight_flipped", "conv2d_pack_weight_flipped_vec4")
            } else {
                ("conv2d_pack_weight", "conv2d_pack_weight_vec4")
            };
            gpu.dispatch_1d_by_position(scalar, &p, &binds(&[(W, w.bind()), (WP_OUT, a.bind())]), (kk * cpad) as u64);
            gpu.dispatch_1d_by_position(vec4, &p, &binds(&[(W, w.bind()), (WP_OUT4, b.bind())]), (kk * cpad / 4) as u64);
            out.push(compare(vec4, &label, &b.to_vec(), &f64s(&a.to_vec()), 0.0, 0.0));
        }
    }
    out
}

/// GPU vs oracle for every entry point (naive, tiled, and portable where the tiled ones use subgroups) on odd shapes;
/// `full` adds larger channel counts. Also the weight packing kernels.
pub fn self_check(gpu: &Arc<Gpu>, full: bool) -> Vec<CheckResult> {
    let mut out = pack_checks(gpu);
    let cases = CASES.iter().chain(if full { CASES_FULL } else { &[] });
    for c in cases {
        out.extend(check_case(gpu, c, Launch::naive(), "naive"));
        out.extend(check_case(gpu, c, Launch::tiled(), "tiled"));
        if gpu.has_subgroups() {
            out.extend(check_case(gpu, c, Launch { variant: Variant::TiledPortable, ..Default::default() }, "portable"));
        }
    }
    out
}

/// Weight and bias gradients at the U-Net's full reduction lengths (N*OH*OW = 294,912 positions) against the f64
/// oracle: the decoder's 16->16 3x3 at batch 4, 192x384, a batch-16 96x192 layer (64 channels in the model, 8 here)
/// and its stride-2 1x1 shortcut. Part of `fluke check --full` and tests/conv2d.rs.
pub fn full_size_checks(g: &Arc<Gpu>) -> Vec<CheckResult> {
    let cases: &[([usize; 4], usize, usize, usize, usize)] =
        &[([4, 16, 192, 384], 16, 3, 1, 1), ([16, 8, 96, 192], 8, 3, 1, 1), ([16, 8, 96, 192], 8, 1, 2, 0)];
    let mut res = Vec::new();
    for (i, &(xs, cout, k, stride, pad)) in cases.iter().enumerate() {
        let ws = [cout, xs[1], k, k];
        let geom = Geom::new("conv2d full-size check", &xs, &ws, stride, pad);
        let ys = geom.y_shape();
        let x = crate::check::rand_vec(xs.iter().product(), 100 + i as u64);
        let gy = crate::check::rand_vec(ys.iter().product(), 200 + i as u64);
        let (tx, tgy) = (Tensor::from_slice(g, &xs, &x), Tensor::from_slice(g, &ys, &gy));
        let (x64, gy64) = (crate::check::f64s(&x), crate::check::f64s(&gy));
        let want_w = cpu::backward_weight(&x64, &xs, &gy64, &ws, stride, pad);
        let want_b = cpu::backward_bias(&gy64, &ys);
        let npos = ys[0] * ys[2] * ys[3];
        // f32 sums of npos products in [-1, 1] (magnitude ~ sqrt(npos)/3 ~ 180); measured errors are ~6e-4. One
        // missing tile of 2,048 positions would be off by ~15.
        let (atol, rtol) = (1e-2, 1e-5);
        let what = format!("x {xs:?} w {ws:?} s{stride} ({npos} positions)");
        let gw = conv2d_backward_weight(&tx, &tgy, &ws, stride, pad).to_vec();
        res.push(crate::check::compare("conv2d_backward_weight", &what, &gw, &want_w, atol, rtol));
        let gb = conv2d_backward_bias(&tgy).to_vec();
        res.push(crate::check::compare("conv2d_backward_bias", &what, &gb, &want_b, atol, rtol));
        if i == 0 {
            let gw = conv2d_backward_weight_with(&tx, &tgy, &ws, stride, pad, Launch::naive()).to_vec();
            res.push(crate::check::compare("conv2d_backward_weight", &format!("{what} naive"), &gw, &want_w, atol, rtol));
        }
    }
    res
}
