//! channel_scale: scale each channel plane by a per-(n, c) factor (the SE block's excitation `x * gate`).
//!
//! `y[n, c, h, w] = x[n, c, h, w] * s[n, c]`; shapes: x `[N, C, H, W]`, s `[N, C, 1, 1]` -> y `[N, C, H, W]`.
//! Gradients:
//!   dx[n, c, h, w] = gy[n, c, h, w] * s[n, c]
//!   ds[n, c]       = sum_{h, w} gy[n, c, h, w] * x[n, c, h, w]
//! The backward saves x and s (both are alive anyway: x is the block's activation, s the gate).
//!
//! ds sums a whole plane (up to 73,728 values), so it runs in two passes: partial sums over tiles of `TILE` values,
//! then the sum of the partials (no invocation loops more than ~4,096 times; llvmpipe silently stops loops past
//! 65,535 iterations). Deterministic: fixed order, no atomics.

use crate::check::{compare, f64s, rand_vec, CheckResult};
use crate::gpu::ShaderFile;
use crate::graph::{Tape, Var};
use crate::ops::runs::batch_runs;
use crate::ops::vec4_offset_ok;
use crate::tensor::Tensor;

pub const SHADERS: &[ShaderFile] = &[ShaderFile { file: "channel_scale.wgsl", source: include_str!("../../shaders/channel_scale.wgsl"), subgroups: false }];

/// Values per partial sum in the scale gradient's first pass.
pub const TILE: usize = 4096;

crate::ops::params! {
    /// Mirror of WGSL `Params` in shaders/channel_scale.wgsl.
    pub struct Params {
        /// N * C in this launch.
        pub planes: u32,
        /// H * W.
        pub hw: u32,
        /// Values per partial sum, and partial sums per plane (ceil(hw / tile)); 0 for the elementwise kernels.
        pub tile: u32,
        pub tiles: u32,
        /// First plane of this launch within the [N, C] tensors (s, ds).
        pub plane0: u32,
        pub _pad: [u32; 3],
    }
}

fn check_scale(op: &str, x_shape: &[usize], s: &Tensor) -> (usize, usize, usize) {
    assert_eq!(x_shape.len(), 4, "{op}: expected a 4-D NCHW tensor, got shape {x_shape:?}");
    let (n, c) = (x_shape[0], x_shape[1]);
    assert_eq!(s.shape, [n, c, 1, 1], "{op}: s must be [N, C, 1, 1] = [{n}, {c}, 1, 1], got {:?}", s.shape);
    (n, c, x_shape[2] * x_shape[3])
}

/// Shared launcher of the two elementwise kernels: out = big * s[plane]  // big: [N, C, H, W], s: [N, C, 1, 1]
/// `big` and `out` come with the names the entry point binds them under (x and y, or gy and dx).
/// `entry` is the scalar kernel and its `_vec4` twin, which runs where planes hold a multiple of 4 values and the
/// range is bound 16-byte aligned.
fn scale_planes([entry, entry4]: [&str; 2], (big_name, big): (&str, &Tensor), s: &Tensor, out_name: &str) -> Tensor {
    let (n, c, hw) = check_scale(entry, &big.shape, s);
    let gpu = big.gpu();
    let out = Tensor::empty(gpu, &big.shape);
    for (n0, cnt) in batch_runs(gpu, entry, n, &[(c * hw * 4) as u64]) {
        let planes = cnt * c;
        let p =
            Params { planes: planes as u32, hw: hw as u32, tile: 0, tiles: 0, plane0: (n0 * c) as u32, _pad: [0; 3] };
        let (first, len) = (n0 * c * hw, planes * hw);
        let binds = [(big_name, big.bind_range(first, len)), ("s", s.bind()), (out_name, out.bind_range(first, len))];
        if hw.is_multiple_of(4) && vec4_offset_ok(gpu, binds[0].1.offset) && vec4_offset_ok(gpu, binds[2].1.offset) {
            gpu.dispatch_1d(entry4, &p, &binds, (planes * hw / 4) as u64);
        } else {
            gpu.dispatch_1d(entry, &p, &binds, (planes * hw) as u64);
        }
    }
    out
}

/// y = x * s per channel  // x: [N, C, H, W], s: [N, C, 1, 1] -> y: [N, C, H, W]
pub fn channel_scale_forward(x: &Tensor, s: &Tensor) -> Tensor {
    scale_planes(["channel_scale_forward", "channel_scale_forward_vec4"], ("x", x), s, "y")
}

/// dx = gy * s per channel  // gy: [N, C, H, W], s: [N, C, 1, 1] -> dx: [N, C, H, W]
pub fn channel_scale_backward_input(gy: &Tensor, s: &Tensor) -> Tensor {
    scale_planes(["channel_scale_backward_input", "channel_scale_backward_input_vec4"], ("gy", gy), s, "dx")
}

/// ds[n, c] = sum_{h, w} gy * x  // gy, x: [N, C, H, W] -> ds: [N, C, 1, 1]
pub fn channel_scale_backward_scale(gy: &Tensor, x: &Tensor) -> Tensor {
    channel_scale_backward_scale_tiled(gy, x, TILE)
}

/// `channel_scale_backward_scale` with an explicit tile size (tests use tiny tiles to exercise many partial sums on
/// small planes). Scratch: `part` [N * C * tiles], freed on return.
pub fn channel_scale_backward_scale_tiled(gy: &Tensor, x: &Tensor, tile: usize) -> Tensor {
    let (n, c, h, w) = x.nchw("channel_scale_backward_scale");
    assert_eq!(gy.shape, x.shape, "channel_scale_backward_scale: gy {:?} and x {:?} differ", gy.shape, x.shape);
    assert!(tile > 0, "channel_scale_backward_scale: tile must be positive");
    let gpu = x.gpu();
    let hw = h * w;
    let tiles = hw.div_ceil(tile).max(1);
    let ds = Tensor::empty(gpu, &[n, c, 1, 1]);
    let item = (c * hw * 4) as u64;
    for (n0, cnt) in batch_runs(gpu, "channel_scale_backward_scale", n, &[item]) {
        let planes = cnt * c;
        // Pass 1: part[plane * tiles + t] = sum of gy * x over tile t (at most `tile` loop iterations each).
        // Pass 2: ds[plane0 + plane] = sum of the plane's partials (at most `tiles` iterations).
        let part = Tensor::empty(gpu, &[planes * tiles]);
        let p = Params {
            planes: planes as u32,
            hw: hw as u32,
            tile: tile as u32,
            tiles: tiles as u32,
            plane0: (n0 * c) as u32,
            _pad: [0; 3],
        };
        let range = (n0 * c * hw, planes * hw);
        let (gyr, xr) = (gy.bind_range(range.0, range.1), x.bind_range(range.0, range.1));
        let v4 = hw.is_multiple_of(4) && tile.is_multiple_of(4) && vec4_offset_ok(gpu, gyr.offset) && vec4_offset_ok(gpu, xr.offset);
        let binds = [("gy", gyr), ("x_saved", xr), ("part", part.bind())];
        let entry = if v4 { "channel_scale_backward_scale_partial_vec4" } else { "channel_scale_backward_scale_partial" };
        gpu.dispatch_1d(entry, &p, &binds, (planes * tiles) as u64);
        let binds = [("part_in", part.bind()), ("ds", ds.bind())];
        gpu.dispatch_1d("channel_scale_backward_scale", &p, &binds, planes as u64);
    }
    ds
}

/// Autograd: saves x and s; dL/dx = gy * s, dL/ds = sum_hw gy * x (each computed only when that input needs it).
pub fn channel_scale(tape: &Tape, x: &Var, s: &Var) -> Var {
    let y = channel_scale_forward(&x.t, &s.t);
    let (xs, ss) = (x.t.clone(), s.t.clone());
    // Skip a gradient nobody asked for (e.g. a constant gate in tests); in the SE block both are needed.
    let (need_x, need_s) = (x.id.is_some(), s.id.is_some());
    tape.record("channel_scale", &[x, s], y, move |gy| {
        vec![
            need_x.then(|| channel_scale_backward_input(gy, &ss)),
            need_s.then(|| channel_scale_backward_scale(gy, &xs)),
        ]
    })
}

/// The f64 oracle. `planes` = N * C, `hw` = H * W; s and ds hold one value per plane.
pub mod cpu {
    pub fn channel_scale_forward(x: &[f64], s: &[f64], hw: usize) -> Vec<f64> {
        x.iter().enumerate().map(|(i, &v)| v * s[i / hw]).collect()
    }
    pub fn channel_scale_backward_input(gy: &[f64], s: &[f64], hw: usize) -> Vec<f64> {
        channel_scale_forward(gy, s, hw)
    }
    pub fn channel_scale_backward_scale(gy: &[f64], x: &[f64], planes: usize, hw: usize) -> Vec<f64> {
        (0..planes).map(|p| (p * hw..(p + 1) * hw).map(|i| gy[i] * x[i]).sum()).collect()
    }
}

/// GPU vs CPU on odd shapes (N = 1, primes, one-pixel planes: scalar kernels) and planes of 4k values (vec4
/// kernels, checked again with them switched off), default and tiny tiles; `full` adds the full-size reductions the
/// brief names: 4 x 16 x 192 x 384 (73,728 values per plane) and 16 x 64 x 96 x 192. Each row is labelled with the
/// kernel that ran, as the device profiler counted it, asserted to be the one the options and the shape call for.
pub fn self_check(gpu: &std::sync::Arc<crate::gpu::Gpu>, full: bool) -> Vec<CheckResult> {
    let mut out = Vec::new();
    // (N, C, H, W, tile, vec4 allowed)
    let mut cases = vec![
        (1usize, 1usize, 1usize, 1usize, TILE, true),
        (2, 3, 5, 7, TILE, true),
        (1, 5, 13, 17, TILE, true),
        (3, 7, 13, 17, 10, true), // 221 values in 23 tiles, the last holding 1
        (2, 3, 6, 12, 72, true),  // exactly one full tile (vec4)
        (2, 3, 6, 12, 72, false),
        (3, 5, 4, 9, 8, true), // 36 values in 5 tiles of 8, the last holding 4 (vec4)
    ];
    if full {
        cases.push((4, 16, 192, 384, TILE, true));
        cases.push((16, 64, 96, 192, TILE, true));
    }
    gpu.set_profiling(true);
    let ran = |want: String| crate::check::kernel_label(gpu, "channel_scale self_check", &want);
    for (n, c, h, w, tile, vec4) in cases {
        let _guard = gpu.scoped(|o| o.vec4 = vec4);
        let hw = h * w;
        let v4 = if gpu.vec4() && hw.is_multiple_of(4) { "_vec4" } else { "" };
        let pv4 = if v4.is_empty() || !tile.is_multiple_of(4) { "" } else { "_vec4" };
        let shape = format!("[{n},{c},{h},{w}] tile {tile}");
        let x = rand_vec(n * c * hw, 61);
        let s = rand_vec(n * c, 62);
        // Offset gy so that ds = sum gy * x has a mean part and does not cancel to ~0 (relative error meaningful).
        let gy: Vec<f32> = rand_vec(n * c * hw, 63).iter().map(|v| v + 0.5).collect();
        let xt = Tensor::from_slice(gpu, &[n, c, h, w], &x);
        let st = Tensor::from_slice(gpu, &[n, c, 1, 1], &s);
        let gyt = Tensor::from_slice(gpu, &[n, c, h, w], &gy);
        let (x64, s64, gy64) = (f64s(&x), f64s(&s), f64s(&gy));
        let y = channel_scale_forward(&xt, &st).to_vec();
        let label = format!("{shape} {}", ran(format!("channel_scale_forward{v4}")));
        out.push(compare("channel_scale_forward", &label, &y, &cpu::channel_scale_forward(&x64, &s64, hw), 1e-7, 1e-6));
        let dx = channel_scale_backward_input(&gyt, &st).to_vec();
        let label = format!("{shape} {}", ran(format!("channel_scale_backward_input{v4}")));
        let want = cpu::channel_scale_backward_input(&gy64, &s64, hw);
        out.push(compare("channel_scale_backward_input", &label, &dx, &want, 1e-7, 1e-6));
        let ds = channel_scale_backward_scale_tiled(&gyt, &xt, tile).to_vec();
        let partial = format!("channel_scale_backward_scale_partial{pv4}");
        let want_k = [partial.as_str(), "channel_scale_backward_scale"];
        let label = format!("{shape} {}", crate::check::kernels_label(gpu, "channel_scale self_check", &want_k));
        let want = cpu::channel_scale_backward_scale(&gy64, &x64, n * c, hw);
        // A sum of up to 73,728 products of size ~1 in f32: allow ~1e-5 relative plus an absolute floor.
        out.push(compare("channel_scale_backward_scale", &label, &ds, &want, 1e-3, 1e-4));
    }
    gpu.set_profiling(false);
    out
}
