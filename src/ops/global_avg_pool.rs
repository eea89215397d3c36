//! global_avg_pool: the mean of each channel plane (the SE block's squeeze), `y[n, c] = mean_{h, w} x[n, c, h, w]`.
//!
//! Shapes: x `[N, C, H, W]` -> y `[N, C, 1, 1]`.
//! Gradient: every input of a plane contributed 1/HW, so `dx[n, c, h, w] = gy[n, c] / HW`. Only x's shape is saved.
//!
//! The forward sums each plane in tiles of `TILE` values (partials), then sums the partials: no invocation loops
//! more than ~4,096 times, far from llvmpipe's silent 65,535-iteration cut-off (see shaders/global_avg_pool.wgsl).
//! Deterministic: fixed summation order, no atomics.

use crate::check::{compare, f64s, rand_vec, CheckResult};
use crate::gpu::ShaderFile;
use crate::graph::{Tape, Var};
use crate::ops::runs::batch_runs;
use crate::ops::vec4_offset_ok;
use crate::tensor::Tensor;

pub const SHADERS: &[ShaderFile] = &[ShaderFile { file: "global_avg_pool.wgsl", source: include_str!("../../shaders/global_avg_pool.wgsl"), subgroups: false }];

/// Values per partial sum in the forward's first pass.
pub const TILE: usize = 4096;

crate::ops::params! {
    /// Mirror of WGSL `Params` in shaders/global_avg_pool.wgsl.
    pub struct Params {
        /// N * C in this launch.
        pub planes: u32,
        /// H * W.
        pub hw: u32,
        /// Values per partial sum, and partial sums per plane (ceil(hw / tile)).
        pub tile: u32,
        pub tiles: u32,
        /// First plane of this launch within the [N, C] tensors (y, gy).
        pub plane0: u32,
        pub _pad: [u32; 3],
    }
}

/// y = mean over H, W  // x: [N, C, H, W] -> y: [N, C, 1, 1]
pub fn global_avg_pool_forward(x: &Tensor) -> Tensor {
    global_avg_pool_forward_tiled(x, TILE)
}

/// `global_avg_pool_forward` with an explicit tile size (tests use tiny tiles to exercise many partial sums on small
/// planes). Scratch: `part` [N * C * tiles], freed on return.
pub fn global_avg_pool_forward_tiled(x: &Tensor, tile: usize) -> Tensor {
    let (n, c, h, w) = x.nchw("global_avg_pool_forward");
    assert!(tile > 0, "global_avg_pool_forward: tile must be positive");
    let gpu = x.gpu();
    let hw = h * w;
    let tiles = hw.div_ceil(tile).max(1);
    let y = Tensor::empty(gpu, &[n, c, 1, 1]);
    for (n0, cnt) in batch_runs(gpu, "global_avg_pool_forward", n, &[(c * hw * 4) as u64]) {
        let planes = cnt * c;
        // Pass 1: part[plane * tiles + t] = sum of tile t of the plane (at most `tile` loop iterations each).
        // Pass 2: y[plane0 + plane] = sum of the plane's partials / HW (at most `tiles` iterations).
        // part goes back to the pool when dropped at the end of the run; the queue orders its reuse.
        let part = Tensor::empty(gpu, &[planes * tiles]);
        let p = Params {
            planes: planes as u32,
            hw: hw as u32,
            tile: tile as u32,
            tiles: tiles as u32,
            plane0: (n0 * c) as u32,
            _pad: [0; 3],
        };
        let xs = x.bind_range(n0 * c * hw, planes * hw);
        // The vec4 twin where planes and tiles hold 4k values and the range is 16-byte aligned.
        let v4 = hw.is_multiple_of(4) && tile.is_multiple_of(4) && vec4_offset_ok(gpu, xs.offset);
        let binds = [("x", xs), ("part", part.bind())];
        let entry = if v4 { "global_avg_pool_forward_partial_vec4" } else { "global_avg_pool_forward_partial" };
        gpu.dispatch_1d(entry, &p, &binds, (planes * tiles) as u64);
        gpu.dispatch_1d("global_avg_pool_forward", &p, &[("part_in", part.bind()), ("y", y.bind())], planes as u64);
    }
    y
}

/// dx = gy / HW broadcast over each plane  // gy: [N, C, 1, 1] -> dx: x_shape = [N, C, H, W]
pub fn global_avg_pool_backward(gy: &Tensor, x_shape: &[usize]) -> Tensor {
    assert_eq!(x_shape.len(), 4, "global_avg_pool_backward: x_shape {x_shape:?} is not NCHW");
    let (n, c, h, w) = (x_shape[0], x_shape[1], x_shape[2], x_shape[3]);
    assert_eq!(gy.shape, [n, c, 1, 1], "global_avg_pool_backward: gy must be [N, C, 1, 1] for x {x_shape:?}");
    let gpu = gy.gpu();
    let hw = h * w;
    let dx = Tensor::empty(gpu, x_shape);
    for (n0, cnt) in batch_runs(gpu, "global_avg_pool_backward", n, &[(c * hw * 4) as u64]) {
        let planes = cnt * c;
        let p =
            Params { planes: planes as u32, hw: hw as u32, tile: 0, tiles: 0, plane0: (n0 * c) as u32, _pad: [0; 3] };
        let binds = [("gy", gy.bind()), ("dx", dx.bind_range(n0 * c * hw, planes * hw))];
        if hw.is_multiple_of(4) && vec4_offset_ok(gpu, binds[1].1.offset) {
            gpu.dispatch_1d("global_avg_pool_backward_vec4", &p, &binds, (planes * hw / 4) as u64);
        } else {
            gpu.dispatch_1d("global_avg_pool_backward", &p, &binds, (planes * hw) as u64);
        }
    }
    dx
}

/// Autograd: saves x's shape; dL/dx = global_avg_pool_backward(dL/dy, x_shape).
pub fn global_avg_pool(tape: &Tape, x: &Var) -> Var {
    let y = global_avg_pool_forward(&x.t);
    let x_shape = x.t.shape.clone();
    tape.record("global_avg_pool", &[x], y, move |gy| vec![Some(global_avg_pool_backward(gy, &x_shape))])
}

/// The f64 oracle. `planes` = N * C, `hw` = H * W.
pub mod cpu {
    pub fn global_avg_pool_forward(x: &[f64], planes: usize, hw: usize) -> Vec<f64> {
        (0..planes).map(|p| x[p * hw..(p + 1) * hw].iter().sum::<f64>() / hw as f64).collect()
    }
    pub fn global_avg_pool_backward(gy: &[f64], planes: usize, hw: usize) -> Vec<f64> {
        (0..planes * hw).map(|i| gy[i / hw] / hw as f64).collect()
    }
}

/// GPU vs CPU on odd shapes (N = 1, primes, one-pixel planes: scalar kernels) and planes of 4k values (vec4
/// kernels, checked again with them switched off), with the default tile and with tiny tiles (many partials, a
/// ragged last tile); `full` adds the full-size planes the brief names: 4 x 16 x 192 x 384 (73,728 values per
/// plane, past llvmpipe's loop limit for a one-pass sum) and 16 x 64 x 96 x 192. Each row is labelled with the
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
    for (n, c, h, w, tile, vec4) in cases {
        let _guard = gpu.scoped(|o| o.vec4 = vec4);
        let hw = h * w;
        let v4 = if gpu.vec4() && hw.is_multiple_of(4) { "_vec4" } else { "" };
        let pv4 = if v4.is_empty() || !tile.is_multiple_of(4) { "" } else { "_vec4" };
        let shape = format!("[{n},{c},{h},{w}] tile {tile}");
        // Offset by 0.5 so the mean is far from 0 and a relative tolerance is meaningful.
        let x: Vec<f32> = rand_vec(n * c * hw, 51).iter().map(|v| v + 0.5).collect();
        let gy = rand_vec(n * c, 52);
        let y = global_avg_pool_forward_tiled(&Tensor::from_slice(gpu, &[n, c, h, w], &x), tile).to_vec();
        let partial = format!("global_avg_pool_forward_partial{pv4}");
        let want_k = [partial.as_str(), "global_avg_pool_forward"];
        let label = format!("{shape} {}", crate::check::kernels_label(gpu, "global_avg_pool self_check", &want_k));
        let want = cpu::global_avg_pool_forward(&f64s(&x), n * c, hw);
        out.push(compare("global_avg_pool_forward", &label, &y, &want, 1e-6, 1e-5));
        let dx = global_avg_pool_backward(&Tensor::from_slice(gpu, &[n, c, 1, 1], &gy), &[n, c, h, w]).to_vec();
        let label = format!("{shape} {}", crate::check::kernel_label(gpu, "global_avg_pool self_check", &format!("global_avg_pool_backward{v4}")));
        let want = cpu::global_avg_pool_backward(&f64s(&gy), n * c, hw);
        out.push(compare("global_avg_pool_backward", &label, &dx, &want, 1e-9, 1e-6));
    }
    gpu.set_profiling(false);
    out
}
