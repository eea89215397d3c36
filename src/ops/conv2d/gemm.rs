//! The implicit-GEMM launchers (shaders/conv2d_gemm.wgsl; its header has the GEMM of each direction, the tiles and
//! why a GPU wants them). Each direction is one matrix product C = A B tiled 64 x 64 per workgroup of 256
//! invocations, K stepped 16 at a time through 8 KiB of workgroup memory:
//!
//! ```text
//! forward      C [N*OH*OW, Cout]           = A [N*OH*OW, Cin*KH*KW] (x patches)  B = w^T         (+ bias)
//! input grad   C [N*(H/s)*(W/s), Cin]      = A (gy patches)  B = w, per parity class (py, px) in [0, s)^2
//! weight grad  part[t] [Cout, Cin*KH*KW]   = gy [Cout, tile t's positions]  x patches [positions, Cin*KH*KW]
//! ```
//! Batch runs (`batch_spans`) as in the other families: the forward and input gradient dispatch once per run, the
//! weight gradient writes each run's partial-sum tiles of `tile_len` positions (2,048 or more: `tile_len_for`, at
//! most 32,768, so that no loop passes llvmpipe's 65,535 iterations and [tiles, M] fits one binding) into one
//! scratch tensor, and `conv2d_backward_reduce` sums the tiles in order (deterministic). The bias gradient has no
//! GEMM form worth one (a sum over positions); every family runs `conv2d_backward_bias`.
//!
//! The launchers are named like their entry points; `kernels::gemm` says when they run (the rule is in kernels.rs).

use super::{reduce_tiles, tile_len_for, weight_partials, Geom, Params};
use crate::gpu::Gpu;
use crate::ops::runs::batch_spans;
use crate::tensor::Tensor;

/// Rows and columns of C per workgroup (shaders/conv2d_gemm.wgsl `TILE`).
const TILE: usize = 64;
/// Invocations per workgroup (16 x 16).
const WG: u32 = 256;

/// The grid for `tiles` workgroups, folded into (x, y) past 65,535 (the shaders skip the groups past the last tile).
fn grid(gpu: &Gpu, tiles: usize) -> [u32; 3] {
    gpu.groups_1d(tiles as u64 * WG as u64, WG)
}

/// y = conv(x, w) + b, then max(y, 0) with EPI_RELU in `epilogue`  // x [N,Cin,H,W], w [Cout,Cin,KH,KW], b [Cout] -> y
/// [N,Cout,OH,OW]; `g` checked by the caller.
pub(super) fn conv2d_forward_gemm(x: &Tensor, w: &Tensor, b: Option<&Tensor>, epilogue: u32, g: &Geom) -> Tensor {
    let entry = "conv2d_forward_gemm";
    let gpu = x.gpu();
    let y = Tensor::empty(gpu, &g.y_shape());
    // Without a bias the kernel's `bias` is bound to w and never read (no EPI_BIAS in `epilogue`).
    let bias = b.unwrap_or(w).bind();
    for r in &batch_spans(gpu, entry, g.n, &[g.x_img(), g.y_img()]) {
        let (sx, sy) = (r.spans[0], r.spans[1]);
        let p = Params { epilogue, off_x: sx.offset(), off_out: sy.offset(), ..g.params(r.count) };
        // C [run pixels, Cout] in 64 x 64 tiles.
        let tiles = (r.count * g.oh * g.ow).div_ceil(TILE) * g.cout.div_ceil(TILE);
        let bufs = [("x", sx.bind(x)), ("wt", w.bind()), ("bias", bias), ("out", sy.bind(&y))];
        gpu.dispatch(entry, &p, &bufs, grid(gpu, tiles));
    }
    y
}

/// dL/dx  // gy [N,Cout,OH,OW], w [Cout,Cin,KH,KW] -> gx [N,Cin,H,W]: the s*s parity classes on the grid's z, each
/// a GEMM over its pixels (the largest class, (0, 0), sets the grid; the others skip their extra tiles).
pub(super) fn conv2d_backward_input_gemm(gy: &Tensor, w: &Tensor, g: &Geom) -> Tensor {
    let entry = "conv2d_backward_input_gemm";
    let gpu = gy.gpu();
    let gx = Tensor::empty(gpu, &g.x_shape());
    let (rows, cols) = (g.h.div_ceil(g.stride), g.w.div_ceil(g.stride));
    for r in &batch_spans(gpu, entry, g.n, &[g.y_img(), g.x_img()]) {
        let (sgy, sgx) = (r.spans[0], r.spans[1]);
        let p = Params { off_gy: sgy.offset(), off_out: sgx.offset(), ..g.params(r.count) };
        let tiles = (r.count * rows * cols).div_ceil(TILE) * g.cin.div_ceil(TILE);
        let [gx_, gy_, _] = grid(gpu, tiles);
        let bufs = [("gy", sgy.bind(gy)), ("wt", w.bind()), ("out", sgx.bind(&gx))];
        gpu.dispatch(entry, &p, &bufs, [gx_, gy_, (g.stride * g.stride) as u32]);
    }
    gx
}

/// dL/dw  // x [N,Cin,H,W], gy [N,Cout,OH,OW] -> gw [Cout,Cin,KH,KW]: pass 1 writes part[t] = the GEMM over tile t's
/// positions, `reduce_tiles` sums the tiles in order.
pub(super) fn conv2d_backward_weight_gemm(x: &Tensor, gy: &Tensor, g: &Geom) -> Tensor {
    let entry = "conv2d_backward_weight_gemm";
    let gpu = x.gpu();
    let cols = g.cin * g.kh * g.kw;
    let m = g.cout * cols;
    let hw = g.oh * g.ow;
    let runs = batch_spans(gpu, entry, g.n, &[g.x_img(), g.y_img()]);
    let run_len = runs[0].count;
    // Tiles of at least 2,048 positions: 128 chunks of 16 per invocation, and C tiles x position tiles workgroups.
    let tile_len = tile_len_for(entry, g.n * hw, run_len * hw, m, 2048, gpu.max_binding());
    let part = weight_partials(entry, g, x, gy, &runs, (tile_len, |n| (n * hw).div_ceil(tile_len)), |p, bufs| {
        let groups = p.tiles as usize * cols.div_ceil(TILE) * g.cout.div_ceil(TILE);
        gpu.dispatch(entry, p, bufs, grid(gpu, groups));
    });
    reduce_tiles(&part, &g.w_shape())
}
