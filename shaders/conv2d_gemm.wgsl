// conv2d as implicit GEMM through workgroup memory: the kernel family that real GPUs want (`Family::Gemm`, and
// `Family::Auto` on adapters that are not CPUs; the rule is in src/ops/conv2d/kernels.rs). Compiled after
// conv2d_prelude.wgsl (Params, bindings, index conventions of conv2d.wgsl; read those first).
//
// Why another family: the register-blocked kernels (conv2d_tiled/vec4/subgroup.wgsl) hold up to 256 f32
// accumulators per invocation and share nothing between invocations, which suits llvmpipe (one CPU thread runs a
// whole workgroup, caches are large, registers are many). A GPU runs 32 or 64 lanes in lock step with a few hundred
// 32-bit registers per lane: 256 accumulators spill to memory and leave room for one or two warps per core, too few
// to hide memory latency. The GPU way is a matrix product whose tiles are staged in the on-chip workgroup memory:
// each value loaded from global memory is then read 64 times from on-chip memory, and each invocation keeps only a
// 4x4 register tile (16 accumulators + 8 operands), so many workgroups fit a core at once.
//
// Every direction is one GEMM  C[r, c] = sum_k A[r, k] * B[k, c]  whose operands are read straight from the NCHW
// tensors through an index map (implicit: no im2col buffer is ever written):
//
//   forward       r = pixel (n, oy, ox) of y (R = N*OH*OW), c = output channel co (C = Cout),
//                 k = (ci, ky, kx) (K = Cin*KH*KW)
//                   A[r, k] = x[n, ci, oy*s + ky - p, ox*s + kx - p]  (0 outside x)      B[k, c] = w[co, ci, ky, kx]
//                   y[n, co, oy, ox] = b[co] + C[r, co]
//   input grad    one GEMM per parity class (py, px) in [0, s)^2 (the grid's z): the input pixels iy = py + s*a,
//                 ix = px + s*b receive exactly the taps ky = ky0 + s*ty, kx = kx0 + s*tx with
//                 ky0 = (py + p) mod s, kx0 = (px + p) mod s, from output row oy = a + dy - ty and column
//                 ox = b + dx - tx, dy = (py + p - ky0)/s, dx = (px + p - kx0)/s (the transposed convolution
//                 without its zero taps; at stride 1 one class, the forward with the flipped kernel).
//                 r = (n, a, b), c = ci, k = (co, ty, tx) (K = Cout * ceil((KH-ky0)/s) * ceil((KW-kx0)/s))
//                   A[r, k] = gy[n, co, a + dy - ty, b + dx - tx]  (0 outside gy)    B[k, c] = w[co, ci, ky, kx]
//                   gx[n, ci, py + s*a, px + s*b] = C[r, ci]    (a class with no taps, K = 0, writes zeros)
//   weight grad   r = kernel column (ci, ky, kx) (R = Cin*KH*KW), c = co (C = Cout), k = position q = (n, oy, ox)
//                 of one partial-sum tile t (k in [t*tile_len, min((t+1)*tile_len, N*OH*OW)))
//                   A[r, q] = x[n, ci, oy*s + ky - p, ox*s + kx - p]  (0 outside x)   B[q, c] = gy[n, co, oy, ox]
//                   part[t, co*R + r] = C[r, co]; conv2d_backward_reduce (conv2d.wgsl) sums the tiles in order,
//                   gw[co, ci, ky, kx] = sum_t part[t, co*R + r], exactly the scheme of the other families.
//
// Tiles: a workgroup of 16 x 16 = 256 invocations owns a 64 x 64 tile of C (rows r0..r0+63, columns c0..c0+63) and
// steps through K in chunks of 16: all 256 invocations load the chunk's A tile [16 k][64 r] and B tile [16 k][64 c]
// into workgroup memory (each loads 4 values of each), `workgroupBarrier()`, each invocation does its 16 k-steps of
// 4x4 multiply-adds from workgroup memory, `workgroupBarrier()` again before the next chunk overwrites the tiles.
// Invocation (tx, ty) = (lid % 16, lid / 16) owns rows r0 + tx + 16i and columns c0 + ty + 16j, i, j < 4: rows
// interleaved by 16 so that 16 neighbouring lanes load and store 16 neighbouring pixels (coalesced), and the four
// rows it needs at one k sit in one vec4 of workgroup memory (one 16-byte read; the same for the columns).
//   ga: array<vec4<f32>, 256>  ga[k*16 + t] = (A[r0+t, k], A[r0+t+16, k], A[r0+t+32, k], A[r0+t+48, k])   4 KiB
//   gb: array<vec4<f32>, 256>  gb[k*16 + t] = (B[k, c0+t], B[k, c0+t+16], B[k, c0+t+32], B[k, c0+t+48])   4 KiB
// 8 KiB of workgroup memory per workgroup, half of WebGPU's default 16 KiB limit (so two workgroups fit the
// smallest cores), 256 invocations (the default limit). Rows or columns past R or C and k past K load zeros and
// store nothing: every shape is right, bounds checks at every tile edge (the U-Net's odd 22- and 11-pixel rows).
// Loads are scalar gathers: in NCHW with padding and strides the 4 values of a row group are rarely contiguous and
// 16-byte aligned, and the 64-fold reuse from workgroup memory already makes the global loads a small share.
//
// Grids: workgroup g = wid.y * nwg.x + wid.x (folded past 65,535: `Gpu::groups_1d`) enumerates the tiles, column
// tiles fastest (neighbouring workgroups share their A rows in the cache); groups past the last tile return at once
// (a whole workgroup, so the barriers stay in uniform control flow). The input gradient's parity class is wid.z.
// Loop counts: the forward K/16 chunks (Cin*KH*KW <= 4,608 in the U-Net), the input gradient fewer, the weight
// gradient tile_len/16 chunks of 16 (tile_len <= 32,768: under llvmpipe's 65,535 iterations per loop).
// The accumulators are private variables: each entry point's invocation has its own 16.

// The chunk of K staged per barrier, and the tile edge (16 invocations x 4 rows).
const KC: u32 = 16u;
const TILE: u32 = 64u;
// Row coordinate for rows past the end: every tap of it falls outside the tensor, so it loads 0.
const OUTSIDE: i32 = -536870912;

var<workgroup> ga: array<vec4<f32>, 256>;
var<workgroup> gb: array<vec4<f32>, 256>;

// acc_j[i] = C[r0 + tx + 16i, c0 + ty + 16j].
var<private> acc0: vec4<f32>;
var<private> acc1: vec4<f32>;
var<private> acc2: vec4<f32>;
var<private> acc3: vec4<f32>;

// One staged chunk: the invocation's 4x4 outer products for 16 values of k, read from workgroup memory.
fn gemm_chunk(tx: u32, ty: u32) {
    for (var k = 0u; k < KC; k++) {
        let a = ga[k * 16u + tx];
        let b = gb[k * 16u + ty];
        acc0 += a * b.x;
        acc1 += a * b.y;
        acc2 += a * b.z;
        acc3 += a * b.w;
    }
}

// Where a GEMM row reads its 2-D plane: `base` the flat index of the plane's (0, 0), (y, x) the coordinate that tap
// (0, 0) reads (taps add to it), y = OUTSIDE for rows past the end.
struct Row { base: u32, y: i32, x: i32 }

// x at row `q`'s tap (dy, dx) of channel plane `plane` (elements past q.base), 0 outside [0, H) x [0, W).
fn x_tap(q: Row, plane: u32, dy: i32, dx: i32) -> f32 {
    let iy = q.y + dy;
    let ix = q.x + dx;
    let ok = iy >= 0 && iy < i32(p.h) && ix >= 0 && ix < i32(p.w);
    return select(0.0, x[select(0u, q.base + plane + u32(iy) * p.w + u32(ix), ok)], ok);
}

// gy at row `q`'s tap (dy, dx) of channel plane `plane`, 0 outside [0, OH) x [0, OW).
fn gy_tap(q: Row, plane: u32, dy: i32, dx: i32) -> f32 {
    let oy = q.y + dy;
    let ox = q.x + dx;
    let ok = oy >= 0 && oy < i32(p.oh) && ox >= 0 && ox < i32(p.ow);
    return select(0.0, gy[select(0u, q.base + plane + u32(oy) * p.ow + u32(ox), ok)], ok);
}

// ---------------------------------------------------------------------------------------------- forward

// The forward's row r = (n, oy, ox): image n's x, and the input pixel of tap (0, 0).
fn fwd_row(r: u32) -> Row {
    if (r >= p.npos) { return Row(0u, OUTSIDE, 0); }
    let ox = r % p.ow;
    let oy = (r / p.ow) % p.oh;
    let n = r / (p.ow * p.oh);
    return Row(p.off_x + n * p.cin * p.h * p.w, i32(oy * p.stride) - i32(p.pad), i32(ox * p.stride) - i32(p.pad));
}

// w[co, k] of the forward and the input gradient's B, 0 for co >= Cout or k past the chunk's end (`ok`).
fn w_at(co: u32, i: u32, ok: bool) -> f32 {
    let okc = ok && co < p.cout;
    return select(0.0, wt[select(0u, i, okc)], okc);
}

// y[n, co, oy, ox] = b[co] + sum_k A[r, k] B[k, co]; grid: (pixel tiles) x (channel tiles), folded.
@compute @workgroup_size(256)
fn conv2d_forward_gemm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                       @builtin(local_invocation_index) lid: u32) {
    let ctiles = (p.cout + TILE - 1u) / TILE;
    let g = wid.y * nwg.x + wid.x;
    if (g >= ctiles * ((p.npos + TILE - 1u) / TILE)) { return; }
    let r0 = (g / ctiles) * TILE;
    let c0 = (g % ctiles) * TILE;
    let kk = p.kh * p.kw;
    let kdim = p.cin * kk;
    // Loading roles: A slot t = lid % 16 (rows r0 + t + 16i) at chunk row lid / 16; B chunk row lid % 16 (16
    // neighbouring lanes read 16 neighbouring weights) for slot lid / 16 (channels c0 + lid/16 + 16j).
    let t = lid % 16u;
    let q0 = fwd_row(r0 + t);
    let q1 = fwd_row(r0 + t + 16u);
    let q2 = fwd_row(r0 + t + 32u);
    let q3 = fwd_row(r0 + t + 48u);
    let ka = lid / 16u;
    let kb = lid % 16u;
    let cb = c0 + lid / 16u;
    for (var k0 = 0u; k0 < kdim; k0 += KC) {
        // A: tap (ci, ky, kx) of chunk row ka, for the slot's four pixels.
        let k = k0 + ka;
        let plane = select(p.cin, k / kk, k < kdim) * p.h * p.w;   // past K: a plane past x, never read (dy = OUTSIDE)
        let dy = select(OUTSIDE, i32((k % kk) / p.kw), k < kdim);
        let dx = i32(k % p.kw);
        ga[lid] = vec4<f32>(x_tap(q0, plane, dy, dx), x_tap(q1, plane, dy, dx), x_tap(q2, plane, dy, dx), x_tap(q3, plane, dy, dx));
        // B: w[co, k] for the slot's four channels.
        let kw_ = k0 + kb;
        let okb = kw_ < kdim;
        gb[kb * 16u + lid / 16u] = vec4<f32>(w_at(cb, cb * kdim + kw_, okb), w_at(cb + 16u, (cb + 16u) * kdim + kw_, okb),
                                             w_at(cb + 32u, (cb + 32u) * kdim + kw_, okb), w_at(cb + 48u, (cb + 48u) * kdim + kw_, okb));
        workgroupBarrier();
        gemm_chunk(lid % 16u, lid / 16u);
        workgroupBarrier();
    }
    let hw = p.oh * p.ow;
    let tx = lid % 16u;
    let ty = lid / 16u;
    let acc = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var j = 0u; j < 4u; j++) {
        let co = c0 + ty + 16u * j;
        if (co >= p.cout) { break; }
        let b = select(0.0, bias[co], (p.epilogue & EPI_BIAS) != 0u);
        let relu = (p.epilogue & EPI_RELU) != 0u;
        for (var i = 0u; i < 4u; i++) {
            let r = r0 + tx + 16u * i;
            if (r >= p.npos) { break; }
            let v = acc[j][i] + b;
            out[p.off_out + ((r / hw) * p.cout + co) * hw + r % hw] = select(v, max(v, 0.0), relu);
        }
    }
}

// ---------------------------------------------------------------------------------------------- input gradient

// The parity class (py, px) = (c / s, c % s): its first taps (ky0, kx0), tap counts (nty, ntx), output offsets
// (dy, dx) and pixel grid (rows, cols) (see the header).
struct Class { py: u32, px: u32, ky0: u32, kx0: u32, nty: u32, ntx: u32, dy: i32, dx: i32, rows: u32, cols: u32 }
fn class_of(c: u32) -> Class {
    let s = p.stride;
    let py = c / s;
    let px = c % s;
    let ky0 = (py + p.pad) % s;
    let kx0 = (px + p.pad) % s;
    let nty = select(0u, (p.kh - ky0 + s - 1u) / s, ky0 < p.kh);
    let ntx = select(0u, (p.kw - kx0 + s - 1u) / s, kx0 < p.kw);
    let rows = select(0u, (p.h - py + s - 1u) / s, py < p.h);
    let cols = select(0u, (p.w - px + s - 1u) / s, px < p.w);
    return Class(py, px, ky0, kx0, nty, ntx, i32((py + p.pad - ky0) / s), i32((px + p.pad - kx0) / s), rows, cols);
}

// The input gradient's row r = (n, a, b) of class `cl`: image n's gy, and the output pixel of tap (0, 0).
fn bwd_row(cl: Class, r: u32) -> Row {
    if (r >= p.n * cl.rows * cl.cols) { return Row(0u, OUTSIDE, 0); }
    let b = r % cl.cols;
    let a = (r / cl.cols) % cl.rows;
    let n = r / (cl.cols * cl.rows);
    return Row(p.off_gy + n * p.cout * p.oh * p.ow, i32(a) + cl.dy, i32(b) + cl.dx);
}

// gx[n, ci, py + s*a, px + s*b] = sum_{co, ty, tx} gy[n, co, a + dy - ty, b + dx - tx] w[co, ci, ky, kx];
// grid: (pixel tiles of the largest class) x (channel tiles), folded, times the s*s classes on z.
@compute @workgroup_size(256)
fn conv2d_backward_input_gemm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                              @builtin(local_invocation_index) lid: u32) {
    let cl = class_of(wid.z);
    let ctiles = (p.cin + TILE - 1u) / TILE;
    let rdim = p.n * cl.rows * cl.cols;
    let g = wid.y * nwg.x + wid.x;
    if (g >= ctiles * ((rdim + TILE - 1u) / TILE)) { return; }
    let r0 = (g / ctiles) * TILE;
    let c0 = (g % ctiles) * TILE;
    let taps = cl.nty * cl.ntx;
    let kdim = p.cout * taps;
    let t = lid % 16u;
    let q0 = bwd_row(cl, r0 + t);
    let q1 = bwd_row(cl, r0 + t + 16u);
    let q2 = bwd_row(cl, r0 + t + 32u);
    let q3 = bwd_row(cl, r0 + t + 48u);
    let ka = lid / 16u;
    let kb = lid % 16u;
    let cb = c0 + lid / 16u;
    let ohw = p.oh * p.ow;
    for (var k0 = 0u; k0 < kdim; k0 += KC) {
        // A: gy of tap (co, ty, tx) at chunk row ka (loop runs only when taps > 0).
        let k = k0 + ka;
        let ok = k < kdim;
        let tap = k % taps;
        let plane = select(p.cout, k / taps, ok) * ohw;
        let dy = select(OUTSIDE, -i32(tap / cl.ntx), ok);
        let dx = -i32(tap % cl.ntx);
        ga[lid] = vec4<f32>(gy_tap(q0, plane, dy, dx), gy_tap(q1, plane, dy, dx), gy_tap(q2, plane, dy, dx), gy_tap(q3, plane, dy, dx));
        // B: w[co, ci, ky0 + s*ty, kx0 + s*tx] for the slot's four input channels (co < Cout via okb).
        let kw_ = k0 + kb;
        let okb = kw_ < kdim;
        let co = kw_ / taps;
        let tb = kw_ % taps;
        let ky = cl.ky0 + p.stride * (tb / cl.ntx);
        let kx = cl.kx0 + p.stride * (tb % cl.ntx);
        let wi = ((co * p.cin + cb) * p.kh + ky) * p.kw + kx;    // channel cb; + 16*KH*KW per 16 channels
        let step = 16u * p.kh * p.kw;
        gb[kb * 16u + lid / 16u] = vec4<f32>(w_in(cb, wi, okb), w_in(cb + 16u, wi + step, okb), w_in(cb + 32u, wi + 2u * step, okb),
                                             w_in(cb + 48u, wi + 3u * step, okb));
        workgroupBarrier();
        gemm_chunk(lid % 16u, lid / 16u);
        workgroupBarrier();
    }
    let tx = lid % 16u;
    let ty = lid / 16u;
    let hw = p.h * p.w;
    let acc = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var j = 0u; j < 4u; j++) {
        let ci = c0 + ty + 16u * j;
        if (ci >= p.cin) { break; }
        for (var i = 0u; i < 4u; i++) {
            let r = r0 + tx + 16u * i;
            if (r >= rdim) { break; }
            let b = r % cl.cols;
            let a = (r / cl.cols) % cl.rows;
            let n = r / (cl.cols * cl.rows);
            out[p.off_out + (n * p.cin + ci) * hw + (cl.py + p.stride * a) * p.w + cl.px + p.stride * b] = acc[j][i];
        }
    }
}

// w at flat index i for input channel ci, 0 for ci >= Cin or k past the chunk's end (`ok`).
fn w_in(ci: u32, i: u32, ok: bool) -> f32 {
    let okc = ok && ci < p.cin;
    return select(0.0, wt[select(0u, i, okc)], okc);
}

// ---------------------------------------------------------------------------------------------- weight gradient

// The weight gradient's row r = (ci, ky, kx) (a kernel column): channel ci's plane, and the tap offset (ky - p,
// kx - p) that position (oy*s, ox*s) adds to.
fn wgrad_row(r: u32) -> Row {
    let kk = p.kh * p.kw;
    if (r >= p.cin * kk) { return Row(0u, OUTSIDE, 0); }
    return Row((r / kk) * p.h * p.w, i32((r % kk) / p.kw) - i32(p.pad), i32(r % p.kw) - i32(p.pad));
}

// part[t, co*R + r] = sum over the positions q of tile t of x[n, ci, oy*s+ky-p, ox*s+kx-p] gy[n, co, oy, ox];
// grid: tiles x (channel tiles) x (column tiles), column tiles fastest, folded.
@compute @workgroup_size(256)
fn conv2d_backward_weight_gemm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                               @builtin(local_invocation_index) lid: u32) {
    let rdim = p.cin * p.kh * p.kw;
    let rtiles = (rdim + TILE - 1u) / TILE;
    let ctiles = (p.cout + TILE - 1u) / TILE;
    let g = wid.y * nwg.x + wid.x;
    if (g >= rtiles * ctiles * p.tiles) { return; }
    let r0 = (g % rtiles) * TILE;
    let c0 = ((g / rtiles) % ctiles) * TILE;
    let tile = g / (rtiles * ctiles);
    let qa = tile * p.tile_len;
    let qb = min(qa + p.tile_len, p.npos);
    // Loading roles: position qq = lid % 16 of the chunk (16 neighbouring lanes read 16 neighbouring pixels of x
    // and gy), slot u = lid / 16: A rows r0 + u + 16i (kernel columns), B columns c0 + u + 16j (output channels).
    let u = lid / 16u;
    let qq = lid % 16u;
    let q0 = wgrad_row(r0 + u);
    let q1 = wgrad_row(r0 + u + 16u);
    let q2 = wgrad_row(r0 + u + 32u);
    let q3 = wgrad_row(r0 + u + 48u);
    let cb = c0 + u;
    let hw = p.h * p.w;
    let ohw = p.oh * p.ow;
    for (var k0 = qa; k0 < qb; k0 += KC) {
        // Position q = (n, oy, ox) of this lane's chunk row; past the tile's end it loads zeros.
        let q = k0 + qq;
        let ok = q < qb;
        let qc = select(qa, q, ok);
        let ox = qc % p.ow;
        let oy = (qc / p.ow) % p.oh;
        let n = qc / ohw;
        // A: x of the slot's four kernel columns at this position; its Row.base is the channel plane.
        let img = p.off_x + n * p.cin * hw;
        let dy = select(OUTSIDE, i32(oy * p.stride), ok);
        let dx = i32(ox * p.stride);
        ga[qq * 16u + u] = vec4<f32>(x_tap(q0, img, dy, dx), x_tap(q1, img, dy, dx), x_tap(q2, img, dy, dx), x_tap(q3, img, dy, dx));
        // B: gy[n, co, oy, ox] for the slot's four output channels.
        let gi = p.off_gy + (n * p.cout + cb) * ohw + oy * p.ow + ox;
        gb[qq * 16u + u] = vec4<f32>(gy_ch(cb, gi, ok), gy_ch(cb + 16u, gi + 16u * ohw, ok), gy_ch(cb + 32u, gi + 32u * ohw, ok),
                                     gy_ch(cb + 48u, gi + 48u * ohw, ok));
        workgroupBarrier();
        gemm_chunk(lid % 16u, lid / 16u);
        workgroupBarrier();
    }
    let tx = lid % 16u;
    let ty = lid / 16u;
    let acc = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var j = 0u; j < 4u; j++) {
        let co = c0 + ty + 16u * j;
        if (co >= p.cout) { break; }
        for (var i = 0u; i < 4u; i++) {
            let r = r0 + tx + 16u * i;
            if (r >= rdim) { break; }
            out[p.off_out + tile * p.m + co * rdim + r] = acc[j][i];
        }
    }
}

// gy at flat index i for output channel co, 0 for co >= Cout or past the tile (`ok`).
fn gy_ch(co: u32, i: u32, ok: bool) -> f32 {
    let okc = ok && co < p.cout;
    return select(0.0, gy[select(0u, i, okc)], okc);
}
