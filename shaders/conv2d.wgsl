// conv2d: 2-D convolution, NCHW, weights OIHW, stride s, symmetric zero padding p, optional bias.
//
//   x  [N, Cin, H, W]     w [Cout, Cin, KH, KW]     b [Cout]     y [N, Cout, OH, OW]
//   OH = (H + 2p - KH) / s + 1,  OW = (W + 2p - KW) / s + 1
//
//   forward:         y[n,co,oy,ox]  = b[co] + sum_{ci,ky,kx} w[co,ci,ky,kx] * x[n,ci, oy*s+ky-p, ox*s+kx-p]
//                    (x outside [0,H)x[0,W) reads as 0: the zero padding)
//   input grad:      gx[n,ci,iy,ix] = sum_{co,ky,kx : oy*s = iy+p-ky, ox*s = ix+p-kx, oy,ox in range}
//                                       gy[n,co,oy,ox] * w[co,ci,ky,kx]
//   weight grad:     gw[co,ci,ky,kx] = sum_{n,oy,ox} gy[n,co,oy,ox] * x[n,ci, oy*s+ky-p, ox*s+kx-p]
//   bias grad:       gb[co]          = sum_{n,oy,ox} gy[n,co,oy,ox]
//
// Every entry point is gather-form: one invocation owns its output element(s) and overwrites them.
//
// The weight and bias gradients reduce over N*OH*OW positions (294,912 at batch 4, 192x384), but llvmpipe stops any
// invocation after 65,535 loop iterations. So they run in two passes:
//   1. `conv2d_backward_weight` / `conv2d_backward_bias` (and the tiled weight kernel): partial sums over one tile
//      of `tile_len` positions each, written to part[tile, m]  // [tiles, M], M = Cout*Cin*KH*KW or Cout
//   2. `conv2d_backward_reduce`: out[m] = sum_t part[t, m], always in the same order (deterministic).
//
// Batch slices: a tensor larger than one storage binding (lavapipe: 128 MiB) is processed in batch slices. The host
// binds a byte range starting at an aligned element `base`; the element offset of the slice inside that range is
// passed as off_x / off_gy / off_out, and `n` is the slice's batch size.
//
// Thread mapping (naive kernels): one invocation per output element, linear index i rebuilt from a grid that may be
// folded into 2-D past 65,535 workgroups: i = (wid.y * nwg.x + wid.x) * WG + lid.
//
// Bindings: 0 Params (uniform) | 1 x (read) | 2 w (read) | 3 b (read; bound to w and never read when has_bias=0)
//           | 4 gy (read) | 5 part (read: partial sums for the reduce pass) | 6 out (write: y, gx, part or gw/gb)
// Each entry point uses a subset; the runtime binds only those (naga reflection).

struct Params {
    n: u32,         // batch size of this slice
    cin: u32,
    h: u32,
    w: u32,
    cout: u32,
    oh: u32,
    ow: u32,
    kh: u32,
    kw: u32,
    stride: u32,
    pad: u32,
    has_bias: u32,  // 1: add b[co] in the forward
    tiles: u32,     // reduce pass: number of partial tiles; partial passes: tiles of this slice
    tile_len: u32,  // positions (n, oy, ox) per tile in the partial passes
    npos: u32,      // n * oh * ow of this slice
    m: u32,         // outputs of the reduction: Cout*Cin*KH*KW (weight) or Cout (bias)
    off_x: u32,     // element offsets inside the bound ranges (batch slices)
    off_gy: u32,
    off_out: u32,
    cw: u32,        // packed weights: channels per block (8 or 16)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> gy: array<f32>;
@group(0) @binding(5) var<storage, read> part: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;

const WG: u32 = 64u;

// ------------------------------------------------------------------------------------------------ naive kernels

// y[n,co,oy,ox], one invocation each. Loop count Cin*KH*KW (4,608 at 512 channels 3x3).
@compute @workgroup_size(64)
fn conv2d_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    if (i >= p.n * p.cout * p.oh * p.ow) { return; }
    let ox = i % p.ow;
    let oy = (i / p.ow) % p.oh;
    let co = (i / (p.ow * p.oh)) % p.cout;
    let n = i / (p.ow * p.oh * p.cout);
    var acc = 0.0;
    if (p.has_bias == 1u) { acc = bias[co]; }
    for (var ci = 0u; ci < p.cin; ci++) {
        for (var ky = 0u; ky < p.kh; ky++) {
            // Input row; i32 because the padding makes it negative at the top edge.
            let iy = i32(oy * p.stride + ky) - i32(p.pad);
            if (iy < 0 || iy >= i32(p.h)) { continue; }
            for (var kx = 0u; kx < p.kw; kx++) {
                let ix = i32(ox * p.stride + kx) - i32(p.pad);
                if (ix < 0 || ix >= i32(p.w)) { continue; }
                let xv = x[p.off_x + ((n * p.cin + ci) * p.h + u32(iy)) * p.w + u32(ix)];
                acc += xv * wt[((co * p.cin + ci) * p.kh + ky) * p.kw + kx];
            }
        }
    }
    out[p.off_out + i] = acc;
}

// gx[n,ci,iy,ix], one invocation each: gathers every (co, ky, kx) whose window covers (iy, ix). With stride s only
// the taps with (iy + p - ky) divisible by s hit an output row. Loop count Cout*KH*KW.
@compute @workgroup_size(64)
fn conv2d_backward_input(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                         @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    if (i >= p.n * p.cin * p.h * p.w) { return; }
    let ix = i % p.w;
    let iy = (i / p.w) % p.h;
    let ci = (i / (p.w * p.h)) % p.cin;
    let n = i / (p.w * p.h * p.cin);
    var acc = 0.0;
    for (var co = 0u; co < p.cout; co++) {
        for (var ky = 0u; ky < p.kh; ky++) {
            let ty = i32(iy + p.pad) - i32(ky);   // = oy * s when this tap hits output row oy
            if (ty < 0 || ty % i32(p.stride) != 0) { continue; }
            let oy = u32(ty) / p.stride;
            if (oy >= p.oh) { continue; }
            for (var kx = 0u; kx < p.kw; kx++) {
                let tx = i32(ix + p.pad) - i32(kx);
                if (tx < 0 || tx % i32(p.stride) != 0) { continue; }
                let ox = u32(tx) / p.stride;
                if (ox >= p.ow) { continue; }
                let g = gy[p.off_gy + ((n * p.cout + co) * p.oh + oy) * p.ow + ox];
                acc += g * wt[((co * p.cin + ci) * p.kh + ky) * p.kw + kx];
            }
        }
    }
    out[p.off_out + i] = acc;
}

// Pass 1 of the weight gradient: part[t, m] = sum over positions q in tile t of gy[n,co,oy,ox] * x[n,ci,iy,ix],
// m = ((co*Cin + ci)*KH + ky)*KW + kx. One invocation per (t, m); loop count tile_len (<= 32,768).
@compute @workgroup_size(64)
fn conv2d_backward_weight(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                          @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    if (i >= p.tiles * p.m) { return; }
    let m = i % p.m;
    let t = i / p.m;
    let kx = m % p.kw;
    let ky = (m / p.kw) % p.kh;
    let ci = (m / (p.kw * p.kh)) % p.cin;
    let co = m / (p.kw * p.kh * p.cin);
    let q0 = t * p.tile_len;
    let q1 = min(q0 + p.tile_len, p.npos);
    var acc = 0.0;
    for (var q = q0; q < q1; q++) {
        let ox = q % p.ow;
        let oy = (q / p.ow) % p.oh;
        let n = q / (p.ow * p.oh);
        let iy = i32(oy * p.stride + ky) - i32(p.pad);
        let ix = i32(ox * p.stride + kx) - i32(p.pad);
        if (iy < 0 || iy >= i32(p.h) || ix < 0 || ix >= i32(p.w)) { continue; }
        let g = gy[p.off_gy + ((n * p.cout + co) * p.oh + oy) * p.ow + ox];
        acc += g * x[p.off_x + ((n * p.cin + ci) * p.h + u32(iy)) * p.w + u32(ix)];
    }
    out[p.off_out + i] = acc;
}

// Pass 1 of the bias gradient: part[t, co] = sum over positions q in tile t of gy[n,co,oy,ox].
@compute @workgroup_size(64)
fn conv2d_backward_bias(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    if (i >= p.tiles * p.cout) { return; }
    let co = i % p.cout;
    let t = i / p.cout;
    let q0 = t * p.tile_len;
    let q1 = min(q0 + p.tile_len, p.npos);
    let hw = p.oh * p.ow;
    var acc = 0.0;
    for (var q = q0; q < q1; q++) {
        let n = q / hw;
        acc += gy[p.off_gy + (n * p.cout + co) * hw + q % hw];
    }
    out[p.off_out + i] = acc;
}

// Pass 2 (weight and bias gradients): out[m] = sum_{t < tiles} part[t * M + m], tiles in ascending order.
@compute @workgroup_size(64)
fn conv2d_backward_reduce(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                          @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    if (i >= p.m) { return; }
    var acc = 0.0;
    for (var t = 0u; t < p.tiles; t++) {
        acc += part[t * p.m + i];
    }
    out[p.off_out + i] = acc;
}

// ------------------------------------------------------------------------------------------------ tiled kernels
//
// Implicit GEMM without an im2col buffer: GEMM rows = output channels, columns = output pixels, reduction over
// k = (ci, ky, kx). What llvmpipe (Mesa 22.3: an LLVM JIT running 8 invocations per 256-bit SIMD vector) rewards,
// measured here and confirmed in its source (gallivm's SSBO load is a loop over the SIMD lanes with a bounds check
// and a branch per lane and component): arithmetic is nearly free, every storage load or store costs about 8
// scalar loads or stores, even when the address is the same for all invocations, and even from workgroup memory.
// A vec4 load moves 4 floats in one trip round that loop. So the kernels maximise multiply-adds per load:
//   - each invocation owns a register block of 16 consecutive output pixels of one row x 8 or 16 output channels
//     (32 or 64 vec4 accumulators written out by hand; a register array indexed by a loop counter is spilled to
//     memory and gathered per element, which cost more than the sums in the stores at the end);
//   - weights are packed so one vec4 load serves 4 channels, and each block of channels is contiguous;
//   - 3x3 kernels load each input row segment once for the three kx taps (as vec4 where rows are a multiple of 4
//     floats), and the weight gradients slide their 3x3 window along the row, four positions per step;
//   - padding is a select on a clamped index, so no branch depends on the invocation inside the loops;
//   - lanes enumerate (channel block, pixel block) so small deep-layer images still fill whole workgroups.
// conv2d_subgroup.wgsl holds twins of the 3x3 and strided kernels for devices with subgroups: values every lane of
// a subgroup needs (a tap's weights, a row of gy) are loaded once per subgroup and broadcast (2-3x fewer loads).
// The input gradient at stride 1 is the forward of gy with the flipped, transposed kernel (same kernels); at other
// strides it splits pixels into stride x stride parity classes so only the taps that hit are visited.

// Packed weights for the tiled forward, in blocks of cw (8 or 16) output channels, each block's K rows contiguous (an
// invocation streams through its block's weights in order, which keeps the deep layers' weights in cache):
//   wp[(cb*K + k)*cw + c] = w[cb*cw + c, k]  (0 past Cout; Cout rounded up to cw), k = (ci*KH + ky)*KW + kx,
// read as vec4: one load gives a tap's weights for 4 output channels.
@group(0) @binding(7) var<storage, read> wp: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> wp_out: array<f32>;

// One invocation per packed element; p.m = Cout rounded up to p.cw.
@compute @workgroup_size(64)
fn conv2d_pack_weight(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    let kk = p.cin * p.kh * p.kw;
    if (i >= kk * p.m) { return; }
    let k = (i / p.cw) % kk;
    let co = (i / (p.cw * kk)) * p.cw + i % p.cw;
    var v = 0.0;
    if (co < p.cout) { v = wt[co * kk + k]; }
    wp_out[i] = v;
}

// As `conv2d_pack_weight`, four consecutive channels of a block per invocation and one vec4 store (the packed
// length kk * p.m is a multiple of 4 because p.cw is): the layout the kernels read, at a quarter of the stores.
@group(0) @binding(11) var<storage, read_write> wp_out4: array<vec4<f32>>;

// w[co, k] for co = c .. c+3, 0 past Cout.
fn w4_of(c: u32, k: u32, kk: u32) -> vec4<f32> {
    let l = p.cout * kk - 1u;
    let v = vec4<f32>(wt[min(c * kk + k, l)], wt[min((c + 1u) * kk + k, l)], wt[min((c + 2u) * kk + k, l)],
                      wt[min((c + 3u) * kk + k, l)]);
    return select(vec4<f32>(0.0), v, vec4<u32>(c, c + 1u, c + 2u, c + 3u) < vec4<u32>(p.cout));
}

@compute @workgroup_size(64)
fn conv2d_pack_weight_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                           @builtin(local_invocation_index) lid: u32) {
    let i4 = (wid.y * nwg.x + wid.x) * WG + lid;
    let kk = p.cin * p.kh * p.kw;
    if (i4 * 4u >= kk * p.m) { return; }
    let i = i4 * 4u;
    let k = (i / p.cw) % kk;
    let co = (i / (p.cw * kk)) * p.cw + i % p.cw;
    wp_out4[i4] = w4_of(co, k, kk);
}

// x[base + iy*W + ix], or 0 outside the image (the zero padding). `base` is the (n, ci) plane.
fn xat(base: u32, iy: i32, ix: i32) -> f32 {
    let ok = iy >= 0 && iy < i32(p.h) && ix >= 0 && ix < i32(p.w);
    return select(0.0, x[select(base, base + u32(iy) * p.w + u32(ix), ok)], ok);
}

// The block of invocation `lane` when each owns `pw` pixels of a row: output row r = n*OH + oy of the slice and
// its first pixel ox0.
struct Block { n: u32, oy: u32, ox0: u32, ok: bool }
fn block_of(lane: u32, pw: u32) -> Block {
    let segs = (p.ow + pw - 1u) / pw;
    let r = lane / segs;
    let ok = r < p.n * p.oh;
    let rc = select(0u, r, ok);
    return Block(rc / p.oh, rc % p.oh, (lane % segs) * pw, ok);
}

// Write the block: out[(n*Cout + co)*OH*OW + oy*OW + ox] for 8 pixels x 4 channels (co0 ..), inside the tensor.
fn store8x4(b: Block, co0: u32, a: array<vec4<f32>, 8>) {
    if (!b.ok) { return; }
    for (var c = 0u; c < 4u; c++) {
        if (co0 + c >= p.cout) { return; }
        let row = p.off_out + ((b.n * p.cout + co0 + c) * p.oh + b.oy) * p.ow;
        for (var j = 0u; j < 8u; j++) {
            if (b.ox0 + j < p.ow) { out[row + b.ox0 + j] = a[j][c]; }
        }
    }
}

// Forward, any kernel and stride (the stem, strided convs, 1x1): invocation = 16 consecutive pixels of one output
// row x 8 output channels (32 vec4 accumulators, written out by hand); per tap 16 x loads + 2 vec4 weight loads
// feed 128 multiply-adds. Lanes enumerate (channel block, pixel block), pixel block fastest, so small images still
// fill whole workgroups. Loop count Cin*KH*KW.
@compute @workgroup_size(64)
fn conv2d_forward_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                        @builtin(local_invocation_index) lid: u32) {
    let lane = (wid.y * nwg.x + wid.x) * WG + lid;
    let pl = p.n * p.oh * ((p.ow + 15u) / 16u);
    let cblk = min(lane / pl, p.m / 8u - 1u);
    let b = block_of(select(lane % pl, pl, lane / pl >= p.m / 8u), 16u);
    let b1 = Block(b.n, b.oy, b.ox0 + 8u, b.ok);   // second half of the 16 pixels
    let wrow = cblk * p.cin * p.kh * p.kw;   // this block's packed rows (two vec4 each)
    let y0 = i32(b.oy * p.stride) - i32(p.pad);
    let x0 = i32(b.ox0 * p.stride) - i32(p.pad);
    let s = i32(p.stride);
    var a0 = vec4<f32>(0.0); var c0 = vec4<f32>(0.0); var a1 = vec4<f32>(0.0); var c1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0); var c2 = vec4<f32>(0.0); var a3 = vec4<f32>(0.0); var c3 = vec4<f32>(0.0);
    var a4 = vec4<f32>(0.0); var c4 = vec4<f32>(0.0); var a5 = vec4<f32>(0.0); var c5 = vec4<f32>(0.0);
    var a6 = vec4<f32>(0.0); var c6 = vec4<f32>(0.0); var a7 = vec4<f32>(0.0); var c7 = vec4<f32>(0.0);
    var a8 = vec4<f32>(0.0); var c8 = vec4<f32>(0.0); var a9 = vec4<f32>(0.0); var c9 = vec4<f32>(0.0);
    var a10 = vec4<f32>(0.0); var c10 = vec4<f32>(0.0); var a11 = vec4<f32>(0.0); var c11 = vec4<f32>(0.0);
    var a12 = vec4<f32>(0.0); var c12 = vec4<f32>(0.0); var a13 = vec4<f32>(0.0); var c13 = vec4<f32>(0.0);
    var a14 = vec4<f32>(0.0); var c14 = vec4<f32>(0.0); var a15 = vec4<f32>(0.0); var c15 = vec4<f32>(0.0);
    var k = 0u;
    for (var ci = 0u; ci < p.cin; ci++) {
        let base = p.off_x + (b.n * p.cin + ci) * p.h * p.w;
        for (var ky = 0u; ky < p.kh; ky++) {
            let iy = y0 + i32(ky);
            for (var kx = 0u; kx < p.kw; kx++) {
                let ix = x0 + i32(kx);
                // This tap's weights for channels 0-3 (wv) and 4-7 (vv) of the block; x under the 16 pixels.
                let wv = wp[(wrow + k) * 2u];
                let vv = wp[(wrow + k) * 2u + 1u];
                let r0 = xat(base, iy, ix + 0 * s); let r1 = xat(base, iy, ix + 1 * s);
                let r2 = xat(base, iy, ix + 2 * s); let r3 = xat(base, iy, ix + 3 * s);
                let r4 = xat(base, iy, ix + 4 * s); let r5 = xat(base, iy, ix + 5 * s);
                let r6 = xat(base, iy, ix + 6 * s); let r7 = xat(base, iy, ix + 7 * s);
                let r8 = xat(base, iy, ix + 8 * s); let r9 = xat(base, iy, ix + 9 * s);
                let r10 = xat(base, iy, ix + 10 * s); let r11 = xat(base, iy, ix + 11 * s);
                let r12 = xat(base, iy, ix + 12 * s); let r13 = xat(base, iy, ix + 13 * s);
                let r14 = xat(base, iy, ix + 14 * s); let r15 = xat(base, iy, ix + 15 * s);
                a0 += wv * r0; c0 += vv * r0; a1 += wv * r1; c1 += vv * r1; a2 += wv * r2; c2 += vv * r2;
                a3 += wv * r3; c3 += vv * r3; a4 += wv * r4; c4 += vv * r4; a5 += wv * r5; c5 += vv * r5;
                a6 += wv * r6; c6 += vv * r6; a7 += wv * r7; c7 += vv * r7; a8 += wv * r8; c8 += vv * r8;
                a9 += wv * r9; c9 += vv * r9; a10 += wv * r10; c10 += vv * r10; a11 += wv * r11; c11 += vv * r11;
                a12 += wv * r12; c12 += vv * r12; a13 += wv * r13; c13 += vv * r13; a14 += wv * r14; c14 += vv * r14;
                a15 += wv * r15; c15 += vv * r15;
                k++;
            }
        }
    }
    if (p.has_bias == 1u) {
        let bv = bias4(cblk * 8u);
        let bw = bias4(cblk * 8u + 4u);
        a0 += bv; a1 += bv; a2 += bv; a3 += bv; a4 += bv; a5 += bv; a6 += bv; a7 += bv;
        a8 += bv; a9 += bv; a10 += bv; a11 += bv; a12 += bv; a13 += bv; a14 += bv; a15 += bv;
        c0 += bw; c1 += bw; c2 += bw; c3 += bw; c4 += bw; c5 += bw; c6 += bw; c7 += bw;
        c8 += bw; c9 += bw; c10 += bw; c11 += bw; c12 += bw; c13 += bw; c14 += bw; c15 += bw;
    }
    store8x4(b, cblk * 8u, array<vec4<f32>, 8>(a0, a1, a2, a3, a4, a5, a6, a7));
    store8x4(b, cblk * 8u + 4u, array<vec4<f32>, 8>(c0, c1, c2, c3, c4, c5, c6, c7));
    store8x4(b1, cblk * 8u, array<vec4<f32>, 8>(a8, a9, a10, a11, a12, a13, a14, a15));
    store8x4(b1, cblk * 8u + 4u, array<vec4<f32>, 8>(c8, c9, c10, c11, c12, c13, c14, c15));
}

// Forward, 3x3 stride 1: invocation = 16 consecutive pixels of one output row x 8 output channels, 32 vec4
// accumulators written out by hand (loops over register arrays are not unrolled into registers by llvmpipe, and
// measured 1.4x slower). Per (ci, ky) the 18 input values under the 16 pixels are loaded once and reused by the
// three kx taps: 18 x loads + 6 vec4 weight loads feed 384 multiply-adds. Loop count Cin*3.
@compute @workgroup_size(64)
fn conv2d_forward_3x3(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) lid: u32) {
    // Lanes enumerate (channel block of 8, pixel block of 16), pixel block fastest.
    let lane = (wid.y * nwg.x + wid.x) * WG + lid;
    let pl = p.n * p.oh * ((p.ow + 15u) / 16u);
    let cblk = min(lane / pl, p.m / 8u - 1u);
    let b = block_of(select(lane % pl, pl, lane / pl >= p.m / 8u), 16u);
    let b1 = Block(b.n, b.oy, b.ox0 + 8u, b.ok);   // second half of the 16 pixels
    let y0 = i32(b.oy) - i32(p.pad);
    let x0 = i32(b.ox0) - i32(p.pad);
    let wrow = cblk * p.cin * 9u;            // this block's packed rows (two vec4 each)
    var a0 = vec4<f32>(0.0); var c0 = vec4<f32>(0.0); var a1 = vec4<f32>(0.0); var c1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0); var c2 = vec4<f32>(0.0); var a3 = vec4<f32>(0.0); var c3 = vec4<f32>(0.0);
    var a4 = vec4<f32>(0.0); var c4 = vec4<f32>(0.0); var a5 = vec4<f32>(0.0); var c5 = vec4<f32>(0.0);
    var a6 = vec4<f32>(0.0); var c6 = vec4<f32>(0.0); var a7 = vec4<f32>(0.0); var c7 = vec4<f32>(0.0);
    var a8 = vec4<f32>(0.0); var c8 = vec4<f32>(0.0); var a9 = vec4<f32>(0.0); var c9 = vec4<f32>(0.0);
    var a10 = vec4<f32>(0.0); var c10 = vec4<f32>(0.0); var a11 = vec4<f32>(0.0); var c11 = vec4<f32>(0.0);
    var a12 = vec4<f32>(0.0); var c12 = vec4<f32>(0.0); var a13 = vec4<f32>(0.0); var c13 = vec4<f32>(0.0);
    var a14 = vec4<f32>(0.0); var c14 = vec4<f32>(0.0); var a15 = vec4<f32>(0.0); var c15 = vec4<f32>(0.0);
    var k = 0u;
    for (var ci = 0u; ci < p.cin; ci++) {
        let base = p.off_x + (b.n * p.cin + ci) * p.h * p.w;
        for (var ky = 0; ky < 3; ky++) {
            let iy = y0 + ky;
            let r0 = xat(base, iy, x0 + 0); let r1 = xat(base, iy, x0 + 1); let r2 = xat(base, iy, x0 + 2);
            let r3 = xat(base, iy, x0 + 3); let r4 = xat(base, iy, x0 + 4); let r5 = xat(base, iy, x0 + 5);
            let r6 = xat(base, iy, x0 + 6); let r7 = xat(base, iy, x0 + 7); let r8 = xat(base, iy, x0 + 8);
            let r9 = xat(base, iy, x0 + 9); let r10 = xat(base, iy, x0 + 10); let r11 = xat(base, iy, x0 + 11);
            let r12 = xat(base, iy, x0 + 12); let r13 = xat(base, iy, x0 + 13); let r14 = xat(base, iy, x0 + 14);
            let r15 = xat(base, iy, x0 + 15); let r16 = xat(base, iy, x0 + 16); let r17 = xat(base, iy, x0 + 17);
            // Weights of taps kx = 0, 1, 2 for channels 0-3 (w) and 4-7 (v) of the block.
            let wi = (wrow + k) * 2u;
            let w0 = wp[wi]; let v0 = wp[wi + 1u];
            let w1 = wp[wi + 2u]; let v1 = wp[wi + 3u];
            let w2 = wp[wi + 4u]; let v2 = wp[wi + 5u];
            a0 += w0 * r0 + w1 * r1 + w2 * r2; a1 += w0 * r1 + w1 * r2 + w2 * r3; a2 += w0 * r2 + w1 * r3 + w2 * r4;
            a3 += w0 * r3 + w1 * r4 + w2 * r5; a4 += w0 * r4 + w1 * r5 + w2 * r6; a5 += w0 * r5 + w1 * r6 + w2 * r7;
            a6 += w0 * r6 + w1 * r7 + w2 * r8; a7 += w0 * r7 + w1 * r8 + w2 * r9; a8 += w0 * r8 + w1 * r9 + w2 * r10;
            a9 += w0 * r9 + w1 * r10 + w2 * r11; a10 += w0 * r10 + w1 * r11 + w2 * r12;
            a11 += w0 * r11 + w1 * r12 + w2 * r13; a12 += w0 * r12 + w1 * r13 + w2 * r14;
            a13 += w0 * r13 + w1 * r14 + w2 * r15; a14 += w0 * r14 + w1 * r15 + w2 * r16;
            a15 += w0 * r15 + w1 * r16 + w2 * r17; c0 += v0 * r0 + v1 * r1 + v2 * r2;
            c1 += v0 * r1 + v1 * r2 + v2 * r3; c2 += v0 * r2 + v1 * r3 + v2 * r4; c3 += v0 * r3 + v1 * r4 + v2 * r5;
            c4 += v0 * r4 + v1 * r5 + v2 * r6; c5 += v0 * r5 + v1 * r6 + v2 * r7; c6 += v0 * r6 + v1 * r7 + v2 * r8;
            c7 += v0 * r7 + v1 * r8 + v2 * r9; c8 += v0 * r8 + v1 * r9 + v2 * r10;
            c9 += v0 * r9 + v1 * r10 + v2 * r11; c10 += v0 * r10 + v1 * r11 + v2 * r12;
            c11 += v0 * r11 + v1 * r12 + v2 * r13; c12 += v0 * r12 + v1 * r13 + v2 * r14;
            c13 += v0 * r13 + v1 * r14 + v2 * r15; c14 += v0 * r14 + v1 * r15 + v2 * r16;
            c15 += v0 * r15 + v1 * r16 + v2 * r17;
            k += 3u;
        }
    }
    if (p.has_bias == 1u) {
        let bv = bias4(cblk * 8u);
        let bw = bias4(cblk * 8u + 4u);
        a0 += bv; a1 += bv; a2 += bv; a3 += bv; a4 += bv; a5 += bv; a6 += bv; a7 += bv;
        a8 += bv; a9 += bv; a10 += bv; a11 += bv; a12 += bv; a13 += bv; a14 += bv; a15 += bv;
        c0 += bw; c1 += bw; c2 += bw; c3 += bw; c4 += bw; c5 += bw; c6 += bw; c7 += bw;
        c8 += bw; c9 += bw; c10 += bw; c11 += bw; c12 += bw; c13 += bw; c14 += bw; c15 += bw;
    }
    store8x4(b, cblk * 8u, array<vec4<f32>, 8>(a0, a1, a2, a3, a4, a5, a6, a7));
    store8x4(b, cblk * 8u + 4u, array<vec4<f32>, 8>(c0, c1, c2, c3, c4, c5, c6, c7));
    store8x4(b1, cblk * 8u, array<vec4<f32>, 8>(a8, a9, a10, a11, a12, a13, a14, a15));
    store8x4(b1, cblk * 8u + 4u, array<vec4<f32>, 8>(c8, c9, c10, c11, c12, c13, c14, c15));
}

// Forward, 3x3 stride 1 pad 1 with W % 4 == 0 and a 4-aligned slice offset: as `conv2d_forward_3x3`, but the
// 16 input columns under the pixels come as 4 vec4 loads (plus 2 scalars), cutting the loads per (ci, ky) from
// 18 x + 6 vec4 w to 2 x + 10 vec4. x4 is the same x slice viewed as vec4.
@group(0) @binding(9) var<storage, read> x4: array<vec4<f32>>;

@compute @workgroup_size(64)
fn conv2d_forward_3x3_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) lid: u32) {
    // Lanes enumerate (channel block of 8, pixel block of 16), pixel block fastest.
    let lane = (wid.y * nwg.x + wid.x) * WG + lid;
    let pl = p.n * p.oh * ((p.ow + 15u) / 16u);
    let cblk = min(lane / pl, p.m / 8u - 1u);
    let b = block_of(select(lane % pl, pl, lane / pl >= p.m / 8u), 16u);
    let b1 = Block(b.n, b.oy, b.ox0 + 8u, b.ok);   // second half of the 16 pixels
    let y0 = i32(b.oy) - i32(p.pad);
    let x0 = i32(b.ox0) - i32(p.pad);
    let wrow = cblk * p.cin * 9u;            // this block's packed rows (two vec4 each)
    var a0 = vec4<f32>(0.0); var c0 = vec4<f32>(0.0); var a1 = vec4<f32>(0.0); var c1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0); var c2 = vec4<f32>(0.0); var a3 = vec4<f32>(0.0); var c3 = vec4<f32>(0.0);
    var a4 = vec4<f32>(0.0); var c4 = vec4<f32>(0.0); var a5 = vec4<f32>(0.0); var c5 = vec4<f32>(0.0);
    var a6 = vec4<f32>(0.0); var c6 = vec4<f32>(0.0); var a7 = vec4<f32>(0.0); var c7 = vec4<f32>(0.0);
    var a8 = vec4<f32>(0.0); var c8 = vec4<f32>(0.0); var a9 = vec4<f32>(0.0); var c9 = vec4<f32>(0.0);
    var a10 = vec4<f32>(0.0); var c10 = vec4<f32>(0.0); var a11 = vec4<f32>(0.0); var c11 = vec4<f32>(0.0);
    var a12 = vec4<f32>(0.0); var c12 = vec4<f32>(0.0); var a13 = vec4<f32>(0.0); var c13 = vec4<f32>(0.0);
    var a14 = vec4<f32>(0.0); var c14 = vec4<f32>(0.0); var a15 = vec4<f32>(0.0); var c15 = vec4<f32>(0.0);
    // Columns ox0 + 4t + c inside the row.
    let cl = vec4<u32>(0u, 1u, 2u, 3u) + vec4<u32>(b.ox0);
    let m0 = cl < vec4<u32>(p.w);
    let m1 = cl + vec4<u32>(4u) < vec4<u32>(p.w);
    let m2 = cl + vec4<u32>(8u) < vec4<u32>(p.w);
    let m3 = cl + vec4<u32>(12u) < vec4<u32>(p.w);
    var k = 0u;
    for (var ci = 0u; ci < p.cin; ci++) {
        let base = p.off_x + (b.n * p.cin + ci) * p.h * p.w;
        for (var ky = 0; ky < 3; ky++) {
            let iy = y0 + ky;
            // Columns ox0-1 and ox0+16 as scalars, ox0 .. ox0+15 as four aligned vec4 loads (masked past the row
            // end and outside the image rows).
            let r0 = xat(base, iy, x0); let r17 = xat(base, iy, x0 + 17);
            let row_ok = iy >= 0 && iy < i32(p.h);
            let q = select(0u, (base + u32(iy) * p.w + b.ox0) / 4u, row_ok);
            let z = vec4<f32>(0.0);
            let q0 = select(z, x4[q], m0 & vec4<bool>(row_ok));
            let q1 = select(z, x4[q + 1u], m1 & vec4<bool>(row_ok));
            let q2 = select(z, x4[q + 2u], m2 & vec4<bool>(row_ok));
            let q3 = select(z, x4[q + 3u], m3 & vec4<bool>(row_ok));
            let r1 = q0.x; let r2 = q0.y; let r3 = q0.z; let r4 = q0.w;
            let r5 = q1.x; let r6 = q1.y; let r7 = q1.z; let r8 = q1.w;
            let r9 = q2.x; let r10 = q2.y; let r11 = q2.z; let r12 = q2.w;
            let r13 = q3.x; let r14 = q3.y; let r15 = q3.z; let r16 = q3.w;
            // Weights of taps kx = 0, 1, 2 for channels 0-3 (w) and 4-7 (v) of the block.
            let wi = (wrow + k) * 2u;
            let w0 = wp[wi]; let v0 = wp[wi + 1u];
            let w1 = wp[wi + 2u]; let v1 = wp[wi + 3u];
            let w2 = wp[wi + 4u]; let v2 = wp[wi + 5u];
            a0 += w0 * r0 + w1 * r1 + w2 * r2; a1 += w0 * r1 + w1 * r2 + w2 * r3; a2 += w0 * r2 + w1 * r3 + w2 * r4;
            a3 += w0 * r3 + w1 * r4 + w2 * r5; a4 += w0 * r4 + w1 * r5 + w2 * r6; a5 += w0 * r5 + w1 * r6 + w2 * r7;
            a6 += w0 * r6 + w1 * r7 + w2 * r8; a7 += w0 * r7 + w1 * r8 + w2 * r9; a8 += w0 * r8 + w1 * r9 + w2 * r10;
            a9 += w0 * r9 + w1 * r10 + w2 * r11; a10 += w0 * r10 + w1 * r11 + w2 * r12;
            a11 += w0 * r11 + w1 * r12 + w2 * r13; a12 += w0 * r12 + w1 * r13 + w2 * r14;
            a13 += w0 * r13 + w1 * r14 + w2 * r15; a14 += w0 * r14 + w1 * r15 + w2 * r16;
            a15 += w0 * r15 + w1 * r16 + w2 * r17; c0 += v0 * r0 + v1 * r1 + v2 * r2;
            c1 += v0 * r1 + v1 * r2 + v2 * r3; c2 += v0 * r2 + v1 * r3 + v2 * r4; c3 += v0 * r3 + v1 * r4 + v2 * r5;
            c4 += v0 * r4 + v1 * r5 + v2 * r6; c5 += v0 * r5 + v1 * r6 + v2 * r7; c6 += v0 * r6 + v1 * r7 + v2 * r8;
            c7 += v0 * r7 + v1 * r8 + v2 * r9; c8 += v0 * r8 + v1 * r9 + v2 * r10;
            c9 += v0 * r9 + v1 * r10 + v2 * r11; c10 += v0 * r10 + v1 * r11 + v2 * r12;
            c11 += v0 * r11 + v1 * r12 + v2 * r13; c12 += v0 * r12 + v1 * r13 + v2 * r14;
            c13 += v0 * r13 + v1 * r14 + v2 * r15; c14 += v0 * r14 + v1 * r15 + v2 * r16;
            c15 += v0 * r15 + v1 * r16 + v2 * r17;
            k += 3u;
        }
    }
    if (p.has_bias == 1u) {
        let bv = bias4(cblk * 8u);
        let bw = bias4(cblk * 8u + 4u);
        a0 += bv; a1 += bv; a2 += bv; a3 += bv; a4 += bv; a5 += bv; a6 += bv; a7 += bv;
        a8 += bv; a9 += bv; a10 += bv; a11 += bv; a12 += bv; a13 += bv; a14 += bv; a15 += bv;
        c0 += bw; c1 += bw; c2 += bw; c3 += bw; c4 += bw; c5 += bw; c6 += bw; c7 += bw;
        c8 += bw; c9 += bw; c10 += bw; c11 += bw; c12 += bw; c13 += bw; c14 += bw; c15 += bw;
    }
    store8x4(b, cblk * 8u, array<vec4<f32>, 8>(a0, a1, a2, a3, a4, a5, a6, a7));
    store8x4(b, cblk * 8u + 4u, array<vec4<f32>, 8>(c0, c1, c2, c3, c4, c5, c6, c7));
    store8x4(b1, cblk * 8u, array<vec4<f32>, 8>(a8, a9, a10, a11, a12, a13, a14, a15));
    store8x4(b1, cblk * 8u + 4u, array<vec4<f32>, 8>(c8, c9, c10, c11, c12, c13, c14, c15));
}

// Forward, 3x3 stride 2 pad 1 with W = 2*OW and W % 4 == 0 (the encoder's downsampling convolutions): 16 output
// pixels of a row x 16 output channels per invocation (64 vec4 accumulators), weights packed in blocks of 16
// channels. Output pixel ox0 + j, tap kx reads input column 2*ox0 + 2j - 1 + kx: per (ci, ky) one scalar (column
// 2*ox0 - 1) and eight vec4 loads (columns 2*ox0 .. 2*ox0 + 31) feed 768 multiply-adds. Loop count Cin*3.
@compute @workgroup_size(64)
fn conv2d_forward_3x3s2_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let lane = (wid.y * nwg.x + wid.x) * WG + lid;
    let pl = p.n * p.oh * ((p.ow + 15u) / 16u);
    let nblk = p.m / 16u;
    let cblk = min(lane / pl, nblk - 1u);
    let b = block_of(select(lane % pl, pl, lane / pl >= nblk), 16u);
    let y0 = 2 * i32(b.oy) - 1;
    let c0 = 2u * b.ox0;                      // first input column of the vec4 loads
    let wrow = cblk * p.cin * 9u;             // this block's packed rows (four vec4 each)
    let cl = vec4<u32>(0u, 1u, 2u, 3u) + vec4<u32>(c0);
    let m0 = cl + vec4<u32>(0u) < vec4<u32>(p.w);
    let m1 = cl + vec4<u32>(4u) < vec4<u32>(p.w);
    let m2 = cl + vec4<u32>(8u) < vec4<u32>(p.w);
    let m3 = cl + vec4<u32>(12u) < vec4<u32>(p.w);
    let m4 = cl + vec4<u32>(16u) < vec4<u32>(p.w);
    let m5 = cl + vec4<u32>(20u) < vec4<u32>(p.w);
    let m6 = cl + vec4<u32>(24u) < vec4<u32>(p.w);
    let m7 = cl + vec4<u32>(28u) < vec4<u32>(p.w);
    var a0_0 = vec4<f32>(0.0); var a0_1 = vec4<f32>(0.0); var a0_2 = vec4<f32>(0.0); var a0_3 = vec4<f32>(0.0);
    var a1_0 = vec4<f32>(0.0); var a1_1 = vec4<f32>(0.0); var a1_2 = vec4<f32>(0.0); var a1_3 = vec4<f32>(0.0);
    var a2_0 = vec4<f32>(0.0); var a2_1 = vec4<f32>(0.0); var a2_2 = vec4<f32>(0.0); var a2_3 = vec4<f32>(0.0);
    var a3_0 = vec4<f32>(0.0); var a3_1 = vec4<f32>(0.0); var a3_2 = vec4<f32>(0.0); var a3_3 = vec4<f32>(0.0);
    var a4_0 = vec4<f32>(0.0); var a4_1 = vec4<f32>(0.0); var a4_2 = vec4<f32>(0.0); var a4_3 = vec4<f32>(0.0);
    var a5_0 = vec4<f32>(0.0); var a5_1 = vec4<f32>(0.0); var a5_2 = vec4<f32>(0.0); var a5_3 = vec4<f32>(0.0);
    var a6_0 = vec4<f32>(0.0); var a6_1 = vec4<f32>(0.0); var a6_2 = vec4<f32>(0.0); var a6_3 = vec4<f32>(0.0);
    var a7_0 = vec4<f32>(0.0); var a7_1 = vec4<f32>(0.0); var a7_2 = vec4<f32>(0.0); var a7_3 = vec4<f32>(0.0);
    var a8_0 = vec4<f32>(0.0); var a8_1 = vec4<f32>(0.0); var a8_2 = vec4<f32>(0.0); var a8_3 = vec4<f32>(0.0);
    var a9_0 = vec4<f32>(0.0); var a9_1 = vec4<f32>(0.0); var a9_2 = vec4<f32>(0.0); var a9_3 = vec4<f32>(0.0);
    var a10_0 = vec4<f32>(0.0); var a10_1 = vec4<f32>(0.0); var a10_2 = vec4<f32>(0.0); var a10_3 = vec4<f32>(0.0);
    var a11_0 = vec4<f32>(0.0); var a11_1 = vec4<f32>(0.0); var a11_2 = vec4<f32>(0.0); var a11_3 = vec4<f32>(0.0);
    var a12_0 = vec4<f32>(0.0); var a12_1 = vec4<f32>(0.0); var a12_2 = vec4<f32>(0.0); var a12_3 = vec4<f32>(0.0);
    var a13_0 = vec4<f32>(0.0); var a13_1 = vec4<f32>(0.0); var a13_2 = vec4<f32>(0.0); var a13_3 = vec4<f32>(0.0);
    var a14_0 = vec4<f32>(0.0); var a14_1 = vec4<f32>(0.0); var a14_2 = vec4<f32>(0.0); var a14_3 = vec4<f32>(0.0);
    var a15_0 = vec4<f32>(0.0); var a15_1 = vec4<f32>(0.0); var a15_2 = vec4<f32>(0.0); var a15_3 = vec4<f32>(0.0);
    var k = 0u;
    for (var ci = 0u; ci < p.cin; ci++) {
        let base = p.off_x + (b.n * p.cin + ci) * p.h * p.w;
        for (var ky = 0; ky < 3; ky++) {
            let iy = y0 + ky;
            let row_ok = iy >= 0 && iy < i32(p.h);
            let q = select(0u, (base + u32(iy) * p.w + c0) / 4u, row_ok);
            let z = vec4<f32>(0.0);
            let e = xat(base, iy, i32(c0) - 1);
            let q0 = select(z, x4[q + 0u], m0 & vec4<bool>(row_ok));
            let q1 = select(z, x4[q + 1u], m1 & vec4<bool>(row_ok));
            let q2 = select(z, x4[q + 2u], m2 & vec4<bool>(row_ok));
            let q3 = select(z, x4[q + 3u], m3 & vec4<bool>(row_ok));
            let q4 = select(z, x4[q + 4u], m4 & vec4<bool>(row_ok));
            let q5 = select(z, x4[q + 5u], m5 & vec4<bool>(row_ok));
            let q6 = select(z, x4[q + 6u], m6 & vec4<bool>(row_ok));
            let q7 = select(z, x4[q + 7u], m7 & vec4<bool>(row_ok));
            let wi = (wrow + k) * 4u;
            let w0_0 = wp[wi + 0u]; let w0_1 = wp[wi + 1u]; let w0_2 = wp[wi + 2u]; let w0_3 = wp[wi + 3u];
            let w1_0 = wp[wi + 4u]; let w1_1 = wp[wi + 5u]; let w1_2 = wp[wi + 6u]; let w1_3 = wp[wi + 7u];
            let w2_0 = wp[wi + 8u]; let w2_1 = wp[wi + 9u]; let w2_2 = wp[wi + 10u]; let w2_3 = wp[wi + 11u];
            a0_0 += w0_0 * e + w1_0 * q0.x + w2_0 * q0.y;
            a0_1 += w0_1 * e + w1_1 * q0.x + w2_1 * q0.y;
            a0_2 += w0_2 * e + w1_2 * q0.x + w2_2 * q0.y;
            a0_3 += w0_3 * e + w1_3 * q0.x + w2_3 * q0.y;
            a1_0 += w0_0 * q0.y + w1_0 * q0.z + w2_0 * q0.w;
            a1_1 += w0_1 * q0.y + w1_1 * q0.z + w2_1 * q0.w;
            a1_2 += w0_2 * q0.y + w1_2 * q0.z + w2_2 * q0.w;
            a1_3 += w0_3 * q0.y + w1_3 * q0.z + w2_3 * q0.w;
            a2_0 += w0_0 * q0.w + w1_0 * q1.x + w2_0 * q1.y;
            a2_1 += w0_1 * q0.w + w1_1 * q1.x + w2_1 * q1.y;
            a2_2 += w0_2 * q0.w + w1_2 * q1.x + w2_2 * q1.y;
            a2_3 += w0_3 * q0.w + w1_3 * q1.x + w2_3 * q1.y;
            a3_0 += w0_0 * q1.y + w1_0 * q1.z + w2_0 * q1.w;
            a3_1 += w0_1 * q1.y + w1_1 * q1.z + w2_1 * q1.w;
            a3_2 += w0_2 * q1.y + w1_2 * q1.z + w2_2 * q1.w;
            a3_3 += w0_3 * q1.y + w1_3 * q1.z + w2_3 * q1.w;
            a4_0 += w0_0 * q1.w + w1_0 * q2.x + w2_0 * q2.y;
            a4_1 += w0_1 * q1.w + w1_1 * q2.x + w2_1 * q2.y;
            a4_2 += w0_2 * q1.w + w1_2 * q2.x + w2_2 * q2.y;
            a4_3 += w0_3 * q1.w + w1_3 * q2.x + w2_3 * q2.y;
            a5_0 += w0_0 * q2.y + w1_0 * q2.z + w2_0 * q2.w;
            a5_1 += w0_1 * q2.y + w1_1 * q2.z + w2_1 * q2.w;
            a5_2 += w0_2 * q2.y + w1_2 * q2.z + w2_2 * q2.w;
            a5_3 += w0_3 * q2.y + w1_3 * q2.z + w2_3 * q2.w;
            a6_0 += w0_0 * q2.w + w1_0 * q3.x + w2_0 * q3.y;
            a6_1 += w0_1 * q2.w + w1_1 * q3.x + w2_1 * q3.y;
            a6_2 += w0_2 * q2.w + w1_2 * q3.x + w2_2 * q3.y;
            a6_3 += w0_3 * q2.w + w1_3 * q3.x + w2_3 * q3.y;
            a7_0 += w0_0 * q3.y + w1_0 * q3.z + w2_0 * q3.w;
            a7_1 += w0_1 * q3.y + w1_1 * q3.z + w2_1 * q3.w;
            a7_2 += w0_2 * q3.y + w1_2 * q3.z + w2_2 * q3.w;
            a7_3 += w0_3 * q3.y + w1_3 * q3.z + w2_3 * q3.w;
            a8_0 += w0_0 * q3.w + w1_0 * q4.x + w2_0 * q4.y;
            a8_1 += w0_1 * q3.w + w1_1 * q4.x + w2_1 * q4.y;
            a8_2 += w0_2 * q3.w + w1_2 * q4.x + w2_2 * q4.y;
            a8_3 += w0_3 * q3.w + w1_3 * q4.x + w2_3 * q4.y;
            a9_0 += w0_0 * q4.y + w1_0 * q4.z + w2_0 * q4.w;
            a9_1 += w0_1 * q4.y + w1_1 * q4.z + w2_1 * q4.w;
            a9_2 += w0_2 * q4.y + w1_2 * q4.z + w2_2 * q4.w;
            a9_3 += w0_3 * q4.y + w1_3 * q4.z + w2_3 * q4.w;
            a10_0 += w0_0 * q4.w + w1_0 * q5.x + w2_0 * q5.y;
            a10_1 += w0_1 * q4.w + w1_1 * q5.x + w2_1 * q5.y;
            a10_2 += w0_2 * q4.w + w1_2 * q5.x + w2_2 * q5.y;
            a10_3 += w0_3 * q4.w + w1_3 * q5.x + w2_3 * q5.y;
            a11_0 += w0_0 * q5.y + w1_0 * q5.z + w2_0 * q5.w;
            a11_1 += w0_1 * q5.y + w1_1 * q5.z + w2_1 * q5.w;
            a11_2 += w0_2 * q5.y + w1_2 * q5.z + w2_2 * q5.w;
            a11_3 += w0_3 * q5.y + w1_3 * q5.z + w2_3 * q5.w;
            a12_0 += w0_0 * q5.w + w1_0 * q6.x + w2_0 * q6.y;
            a12_1 += w0_1 * q5.w + w1_1 * q6.x + w2_1 * q6.y;
            a12_2 += w0_2 * q5.w + w1_2 * q6.x + w2_2 * q6.y;
            a12_3 += w0_3 * q5.w + w1_3 * q6.x + w2_3 * q6.y;
            a13_0 += w0_0 * q6.y + w1_0 * q6.z + w2_0 * q6.w;
            a13_1 += w0_1 * q6.y + w1_1 * q6.z + w2_1 * q6.w;
            a13_2 += w0_2 * q6.y + w1_2 * q6.z + w2_2 * q6.w;
            a13_3 += w0_3 * q6.y + w1_3 * q6.z + w2_3 * q6.w;
            a14_0 += w0_0 * q6.w + w1_0 * q7.x + w2_0 * q7.y;
            a14_1 += w0_1 * q6.w + w1_1 * q7.x + w2_1 * q7.y;
            a14_2 += w0_2 * q6.w + w1_2 * q7.x + w2_2 * q7.y;
            a14_3 += w0_3 * q6.w + w1_3 * q7.x + w2_3 * q7.y;
            a15_0 += w0_0 * q7.y + w1_0 * q7.z + w2_0 * q7.w;
            a15_1 += w0_1 * q7.y + w1_1 * q7.z + w2_1 * q7.w;
            a15_2 += w0_2 * q7.y + w1_2 * q7.z + w2_2 * q7.w;
            a15_3 += w0_3 * q7.y + w1_3 * q7.z + w2_3 * q7.w;
            k += 3u;
        }
    }
    if (p.has_bias == 1u) {
        let bv0 = bias4(cblk * 16u + 0u);
        let bv1 = bias4(cblk * 16u + 4u);
        let bv2 = bias4(cblk * 16u + 8u);
        let bv3 = bias4(cblk * 16u + 12u);
        a0_0 += bv0; a0_1 += bv1; a0_2 += bv2; a0_3 += bv3;
        a1_0 += bv0; a1_1 += bv1; a1_2 += bv2; a1_3 += bv3;
        a2_0 += bv0; a2_1 += bv1; a2_2 += bv2; a2_3 += bv3;
        a3_0 += bv0; a3_1 += bv1; a3_2 += bv2; a3_3 += bv3;
        a4_0 += bv0; a4_1 += bv1; a4_2 += bv2; a4_3 += bv3;
        a5_0 += bv0; a5_1 += bv1; a5_2 += bv2; a5_3 += bv3;
        a6_0 += bv0; a6_1 += bv1; a6_2 += bv2; a6_3 += bv3;
        a7_0 += bv0; a7_1 += bv1; a7_2 += bv2; a7_3 += bv3;
        a8_0 += bv0; a8_1 += bv1; a8_2 += bv2; a8_3 += bv3;
        a9_0 += bv0; a9_1 += bv1; a9_2 += bv2; a9_3 += bv3;
        a10_0 += bv0; a10_1 += bv1; a10_2 += bv2; a10_3 += bv3;
        a11_0 += bv0; a11_1 += bv1; a11_2 += bv2; a11_3 += bv3;
        a12_0 += bv0; a12_1 += bv1; a12_2 += bv2; a12_3 += bv3;
        a13_0 += bv0; a13_1 += bv1; a13_2 += bv2; a13_3 += bv3;
        a14_0 += bv0; a14_1 += bv1; a14_2 += bv2; a14_3 += bv3;
        a15_0 += bv0; a15_1 += bv1; a15_2 += bv2; a15_3 += bv3;
    }
    let b1 = Block(b.n, b.oy, b.ox0 + 8u, b.ok);   // second half of the 16 pixels
    store8x4(b, cblk * 16u + 0u, array<vec4<f32>, 8>(a0_0, a1_0, a2_0, a3_0, a4_0, a5_0, a6_0, a7_0));
    store8x4(b1, cblk * 16u + 0u, array<vec4<f32>, 8>(a8_0, a9_0, a10_0, a11_0, a12_0, a13_0, a14_0, a15_0));
    store8x4(b, cblk * 16u + 4u, array<vec4<f32>, 8>(a0_1, a1_1, a2_1, a3_1, a4_1, a5_1, a6_1, a7_1));
    store8x4(b1, cblk * 16u + 4u, array<vec4<f32>, 8>(a8_1, a9_1, a10_1, a11_1, a12_1, a13_1, a14_1, a15_1));
    store8x4(b, cblk * 16u + 8u, array<vec4<f32>, 8>(a0_2, a1_2, a2_2, a3_2, a4_2, a5_2, a6_2, a7_2));
    store8x4(b1, cblk * 16u + 8u, array<vec4<f32>, 8>(a8_2, a9_2, a10_2, a11_2, a12_2, a13_2, a14_2, a15_2));
    store8x4(b, cblk * 16u + 12u, array<vec4<f32>, 8>(a0_3, a1_3, a2_3, a3_3, a4_3, a5_3, a6_3, a7_3));
    store8x4(b1, cblk * 16u + 12u, array<vec4<f32>, 8>(a8_3, a9_3, a10_3, a11_3, a12_3, a13_3, a14_3, a15_3));
}

// b[c .. c+3] (channels past Cout read a valid element; they are never stored).
fn bias4(c: u32) -> vec4<f32> {
    let l = p.cout - 1u;
    return vec4<f32>(bias[min(c, l)], bias[min(c + 1u, l)], bias[min(c + 2u, l)], bias[min(c + 3u, l)]);
}

// Packed weights for the input gradient, which at stride 1 is the forward of gy with the kernel flipped and
// transposed, padding KH-1-p: the same blocked layout over K' = Cout*KH*KW and blocks of cw input channels,
//   wp_out[(cb*K' + k')*cw + c] = w[co, cb*cw + c, KH-1-ky', KW-1-kx'],  k' = (co*KH + ky')*KW + kx'
// (0 past Cin); p.m = Cin rounded up to p.cw.
@compute @workgroup_size(64)
fn conv2d_pack_weight_flipped(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                              @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    let kt = p.cout * p.kh * p.kw;
    if (i >= kt * p.m) { return; }
    let kp = (i / p.cw) % kt;
    let ci = (i / (p.cw * kt)) * p.cw + i % p.cw;
    let kx = p.kw - 1u - kp % p.kw;
    let ky = p.kh - 1u - (kp / p.kw) % p.kh;
    let co = kp / (p.kw * p.kh);
    var v = 0.0;
    if (ci < p.cin) { v = wt[((co * p.cin + ci) * p.kh + ky) * p.kw + kx]; }
    wp_out[i] = v;
}

// As `conv2d_pack_weight_flipped`, four consecutive input channels per invocation and one vec4 store.
@compute @workgroup_size(64)
fn conv2d_pack_weight_flipped_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                                   @builtin(local_invocation_index) lid: u32) {
    let i4 = (wid.y * nwg.x + wid.x) * WG + lid;
    let kt = p.cout * p.kh * p.kw;
    if (i4 * 4u >= kt * p.m) { return; }
    let i = i4 * 4u;
    let kp = (i / p.cw) % kt;
    let ci = (i / (p.cw * kt)) * p.cw + i % p.cw;
    let kx = p.kw - 1u - kp % p.kw;
    let ky = p.kh - 1u - (kp / p.kw) % p.kh;
    let co = kp / (p.kw * p.kh);
    // w[co, ci + j, ky, kx] sits (ci + j) * KH*KW after w[co, 0, ky, kx].
    let base = (co * p.cin * p.kh + ky) * p.kw + kx;
    let st = p.kh * p.kw;
    let l = p.cout * p.cin * st - 1u;
    let v = vec4<f32>(wt[min(base + ci * st, l)], wt[min(base + (ci + 1u) * st, l)], wt[min(base + (ci + 2u) * st, l)],
                      wt[min(base + (ci + 3u) * st, l)]);
    wp_out4[i4] = select(vec4<f32>(0.0), v, vec4<u32>(ci, ci + 1u, ci + 2u, ci + 3u) < vec4<u32>(p.cin));
}

// Weight gradient, 3x3 stride 1, pass 1: invocation (ci, block of 8 output channels) owns the 72 outputs
// gw[co0..co0+7, ci, 0..2, 0..2] (18 vec4 accumulators, written out by hand) and sums the positions of tile
// wid.y = output rows [t*R, (t+1)*R) of the slice's flattened (n, oy), R = p.tile_len. Along a row the 3x3 input
// window slides by one column, so each position loads 3 new x values (one per kernel row) and 8 gy values for 72
// multiply-adds. Writes part[t, ((co*Cin + ci)*3 + ky)*3 + kx] (the naive layout, so `conv2d_backward_reduce`
// finishes it). Loop count R*OW + R.
@compute @workgroup_size(64)
fn conv2d_backward_weight_3x3(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let lane = wid.x * WG + lid;
    let ok = lane < p.cin * ((p.cout + 7u) / 8u);
    let lc = select(0u, lane, ok);
    let ci = lc % p.cin;
    let co0 = (lc / p.cin) * 8u;
    let ohw = p.oh * p.ow;
    let pp = i32(p.pad);
    // Channels past Cout read channel Cout-1 and are masked to 0; o1..o7 are the clamped plane offsets.
    let last = p.cout - 1u;
    let cm = vec4<f32>(vec4<bool>(co0 < p.cout, co0 + 1u < p.cout, co0 + 2u < p.cout, co0 + 3u < p.cout));
    let dm = vec4<f32>(vec4<bool>(co0 + 4u < p.cout, co0 + 5u < p.cout, co0 + 6u < p.cout, co0 + 7u < p.cout));
    let o1 = (min(co0 + 1u, last) - co0) * ohw; let o2 = (min(co0 + 2u, last) - co0) * ohw;
    let o3 = (min(co0 + 3u, last) - co0) * ohw; let o4 = (min(co0 + 4u, last) - co0) * ohw;
    let o5 = (min(co0 + 5u, last) - co0) * ohw; let o6 = (min(co0 + 6u, last) - co0) * ohw;
    let o7 = (min(co0 + 7u, last) - co0) * ohw;
    var a0 = vec4<f32>(0.0); var b0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0); var b1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0); var b2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0); var b3 = vec4<f32>(0.0);
    var a4 = vec4<f32>(0.0); var b4 = vec4<f32>(0.0);
    var a5 = vec4<f32>(0.0); var b5 = vec4<f32>(0.0);
    var a6 = vec4<f32>(0.0); var b6 = vec4<f32>(0.0);
    var a7 = vec4<f32>(0.0); var b7 = vec4<f32>(0.0);
    var a8 = vec4<f32>(0.0); var b8 = vec4<f32>(0.0);
    let r0 = wid.y * p.tile_len;
    let r1 = min(r0 + p.tile_len, p.n * p.oh);
    for (var r = r0; r < r1; r++) {
        let n = r / p.oh;
        let oy = r % p.oh;
        let gb = p.off_gy + ((n * p.cout + min(co0, last)) * p.oh + oy) * p.ow;
        let xb = p.off_x + (n * p.cin + ci) * p.h * p.w;
        let iy = i32(oy) - pp;
        // u{ky}{kx} = x[iy + ky, ox - p + kx]; primed for ox = 0 (the loop shifts before loading column +2).
        var u01 = xat(xb, iy + 0, -pp); var u02 = xat(xb, iy + 0, 1 - pp); var u00 = 0.0;
        var u11 = xat(xb, iy + 1, -pp); var u12 = xat(xb, iy + 1, 1 - pp); var u10 = 0.0;
        var u21 = xat(xb, iy + 2, -pp); var u22 = xat(xb, iy + 2, 1 - pp); var u20 = 0.0;
        for (var ox = 0u; ox < p.ow; ox++) {
            let q = gb + ox;
            let g = cm * vec4<f32>(gy[q], gy[q + o1], gy[q + o2], gy[q + o3]);
            let h = dm * vec4<f32>(gy[q + o4], gy[q + o5], gy[q + o6], gy[q + o7]);
            let ix = i32(ox) - pp;
            u00 = u01; u01 = u02; u02 = xat(xb, iy + 0, ix + 2);
            u10 = u11; u11 = u12; u12 = xat(xb, iy + 1, ix + 2);
            u20 = u21; u21 = u22; u22 = xat(xb, iy + 2, ix + 2);
            a0 += g * u00; a1 += g * u01; a2 += g * u02;
            b0 += h * u00; b1 += h * u01; b2 += h * u02;
            a3 += g * u10; a4 += g * u11; a5 += g * u12;
            b3 += h * u10; b4 += h * u11; b5 += h * u12;
            a6 += g * u20; a7 += g * u21; a8 += g * u22;
            b6 += h * u20; b7 += h * u21; b8 += h * u22;
        }
    }
    if (!ok) { return; }
    let m0 = p.off_out + wid.y * p.m + ci * 9u;
    let acc = array<vec4<f32>, 18>(a0, a1, a2, a3, a4, a5, a6, a7, a8, b0, b1, b2, b3, b4, b5, b6, b7, b8);
    for (var c = 0u; c < 8u; c++) {
        if (co0 + c >= p.cout) { return; }
        let o = m0 + (co0 + c) * p.cin * 9u;
        for (var t = 0u; t < 9u; t++) { out[o + t] = acc[(c / 4u) * 9u + t][c % 4u]; }
    }
}

// Weight gradient, 3x3 stride 1 pad 1 with OW % 4 == 0 and 4-aligned slice offsets (the U-Net's 3x3 layers):
// as `conv2d_backward_weight_3x3`, but invocation (ci, block of 16 output channels) owns 144 outputs
// gw[co0..co0+15, ci, 0..2, 0..2] (36 vec4 accumulators acc{tap}_{group}, written out by hand) and steps along a row
// four positions at a time: per step 16 vec4 gy loads (4 positions of each channel) and, per kernel row, one vec4 x
// load plus two edge scalars (the 6 columns under the 4 positions' 3-wide windows) feed 576 multiply-adds; the
// scalar kernel needs 44 loads for 288. Channels past Cout read channel Cout-1 and are never stored. gy4 / x4 view
// the same gy / x slices as vec4. Loop count R*OW/4 + R.
// Writes part[t, ((co*Cin + ci)*3 + ky)*3 + kx] like the scalar kernel, finished by `conv2d_backward_reduce`.
@group(0) @binding(10) var<storage, read> gy4: array<vec4<f32>>;

@compute @workgroup_size(64)
fn conv2d_backward_weight_3x3_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                                   @builtin(local_invocation_index) lid: u32) {
    // Lanes enumerate (tile, block of 16 output channels, ci), ci fastest, on a 1-D grid folded past 65,535 groups:
    // small layers (16 channels) still fill whole workgroups.
    let per_tile = p.cin * ((p.cout + 15u) / 16u);
    let flat = (wid.y * nwg.x + wid.x) * WG + lid;
    let ok = flat < p.tiles * per_tile;
    let tile = select(0u, flat / per_tile, ok);
    let lc = flat % per_tile;
    let ci = lc % p.cin;
    let co0 = (lc / p.cin) * 16u;
    let ohw = p.oh * p.ow;
    let last = p.cout - 1u;
    // Plane offsets of channels co0+1 .. co0+15 from channel co0, in vec4 units (clamped to the last channel).
    let o1 = (min(co0 + 1u, last) - min(co0, last)) * ohw / 4u;
    let o2 = (min(co0 + 2u, last) - min(co0, last)) * ohw / 4u;
    let o3 = (min(co0 + 3u, last) - min(co0, last)) * ohw / 4u;
    let o4 = (min(co0 + 4u, last) - min(co0, last)) * ohw / 4u;
    let o5 = (min(co0 + 5u, last) - min(co0, last)) * ohw / 4u;
    let o6 = (min(co0 + 6u, last) - min(co0, last)) * ohw / 4u;
    let o7 = (min(co0 + 7u, last) - min(co0, last)) * ohw / 4u;
    let o8 = (min(co0 + 8u, last) - min(co0, last)) * ohw / 4u;
    let o9 = (min(co0 + 9u, last) - min(co0, last)) * ohw / 4u;
    let o10 = (min(co0 + 10u, last) - min(co0, last)) * ohw / 4u;
    let o11 = (min(co0 + 11u, last) - min(co0, last)) * ohw / 4u;
    let o12 = (min(co0 + 12u, last) - min(co0, last)) * ohw / 4u;
    let o13 = (min(co0 + 13u, last) - min(co0, last)) * ohw / 4u;
    let o14 = (min(co0 + 14u, last) - min(co0, last)) * ohw / 4u;
    let o15 = (min(co0 + 15u, last) - min(co0, last)) * ohw / 4u;
    var acc0_0 = vec4<f32>(0.0); var acc0_1 = vec4<f32>(0.0); var acc0_2 = vec4<f32>(0.0); var acc0_3 = vec4<f32>(0.0);
    var acc1_0 = vec4<f32>(0.0); var acc1_1 = vec4<f32>(0.0); var acc1_2 = vec4<f32>(0.0); var acc1_3 = vec4<f32>(0.0);
    var acc2_0 = vec4<f32>(0.0); var acc2_1 = vec4<f32>(0.0); var acc2_2 = vec4<f32>(0.0); var acc2_3 = vec4<f32>(0.0);
    var acc3_0 = vec4<f32>(0.0); var acc3_1 = vec4<f32>(0.0); var acc3_2 = vec4<f32>(0.0); var acc3_3 = vec4<f32>(0.0);
    var acc4_0 = vec4<f32>(0.0); var acc4_1 = vec4<f32>(0.0); var acc4_2 = vec4<f32>(0.0); var acc4_3 = vec4<f32>(0.0);
    var acc5_0 = vec4<f32>(0.0); var acc5_1 = vec4<f32>(0.0); var acc5_2 = vec4<f32>(0.0); var acc5_3 = vec4<f32>(0.0);
    var acc6_0 = vec4<f32>(0.0); var acc6_1 = vec4<f32>(0.0); var acc6_2 = vec4<f32>(0.0); var acc6_3 = vec4<f32>(0.0);
    var acc7_0 = vec4<f32>(0.0); var acc7_1 = vec4<f32>(0.0); var acc7_2 = vec4<f32>(0.0); var acc7_3 = vec4<f32>(0.0);
    var acc8_0 = vec4<f32>(0.0); var acc8_1 = vec4<f32>(0.0); var acc8_2 = vec4<f32>(0.0); var acc8_3 = vec4<f32>(0.0);
    let r0 = tile * p.tile_len;
    let r1 = min(r0 + p.tile_len, p.n * p.oh);
    let w4 = p.ow / 4u;
    for (var r = r0; r < r1; r++) {
        let n = r / p.oh;
        let oy = r % p.oh;
        let gb = (p.off_gy + ((n * p.cout + min(co0, last)) * p.oh + oy) * p.ow) / 4u;
        let xb = p.off_x + (n * p.cin + ci) * p.h * p.w;
        let iy = i32(oy) - 1;
        for (var q = 0u; q < w4; q++) {
            let ox = i32(q * 4u);
            // gy of the 16 channels at positions ox .. ox+3.
            let g0 = gy4[gb + q];
            let g1 = gy4[gb + o1 + q];
            let g2 = gy4[gb + o2 + q];
            let g3 = gy4[gb + o3 + q];
            let g4 = gy4[gb + o4 + q];
            let g5 = gy4[gb + o5 + q];
            let g6 = gy4[gb + o6 + q];
            let g7 = gy4[gb + o7 + q];
            let g8 = gy4[gb + o8 + q];
            let g9 = gy4[gb + o9 + q];
            let g10 = gy4[gb + o10 + q];
            let g11 = gy4[gb + o11 + q];
            let g12 = gy4[gb + o12 + q];
            let g13 = gy4[gb + o13 + q];
            let g14 = gy4[gb + o14 + q];
            let g15 = gy4[gb + o15 + q];
            // Kernel row ky: x columns ox-1 .. ox+4 of input row iy+ky as e{ky}0, v{ky} (4 columns), e{ky}5.
            let y0 = iy + 0;
            let ok0 = y0 >= 0 && y0 < i32(p.h);
            let e00 = xat(xb, y0, ox - 1); let e05 = xat(xb, y0, ox + 4);
            let v0 = select(vec4<f32>(0.0), x4[(xb + u32(select(0, y0, ok0)) * p.w) / 4u + q], ok0);
            let y1 = iy + 1;
            let ok1 = y1 >= 0 && y1 < i32(p.h);
            let e10 = xat(xb, y1, ox - 1); let e15 = xat(xb, y1, ox + 4);
            let v1 = select(vec4<f32>(0.0), x4[(xb + u32(select(0, y1, ok1)) * p.w) / 4u + q], ok1);
            let y2 = iy + 2;
            let ok2 = y2 >= 0 && y2 < i32(p.h);
            let e20 = xat(xb, y2, ox - 1); let e25 = xat(xb, y2, ox + 4);
            let v2 = select(vec4<f32>(0.0), x4[(xb + u32(select(0, y2, ok2)) * p.w) / 4u + q], ok2);
            // Position j, tap (ky, kx): acc[ky*3+kx][group] += gy[4 channels of the group, ox+j] * x[iy+ky, ox+j+kx-1].
            let h0_0 = vec4<f32>(g0.x, g1.x, g2.x, g3.x);
            let h0_1 = vec4<f32>(g4.x, g5.x, g6.x, g7.x);
            let h0_2 = vec4<f32>(g8.x, g9.x, g10.x, g11.x);
            let h0_3 = vec4<f32>(g12.x, g13.x, g14.x, g15.x);
            acc0_0 += h0_0 * e00; acc0_1 += h0_1 * e00; acc0_2 += h0_2 * e00; acc0_3 += h0_3 * e00;
            acc1_0 += h0_0 * v0.x; acc1_1 += h0_1 * v0.x; acc1_2 += h0_2 * v0.x; acc1_3 += h0_3 * v0.x;
            acc2_0 += h0_0 * v0.y; acc2_1 += h0_1 * v0.y; acc2_2 += h0_2 * v0.y; acc2_3 += h0_3 * v0.y;
            acc3_0 += h0_0 * e10; acc3_1 += h0_1 * e10; acc3_2 += h0_2 * e10; acc3_3 += h0_3 * e10;
            acc4_0 += h0_0 * v1.x; acc4_1 += h0_1 * v1.x; acc4_2 += h0_2 * v1.x; acc4_3 += h0_3 * v1.x;
            acc5_0 += h0_0 * v1.y; acc5_1 += h0_1 * v1.y; acc5_2 += h0_2 * v1.y; acc5_3 += h0_3 * v1.y;
            acc6_0 += h0_0 * e20; acc6_1 += h0_1 * e20; acc6_2 += h0_2 * e20; acc6_3 += h0_3 * e20;
            acc7_0 += h0_0 * v2.x; acc7_1 += h0_1 * v2.x; acc7_2 += h0_2 * v2.x; acc7_3 += h0_3 * v2.x;
            acc8_0 += h0_0 * v2.y; acc8_1 += h0_1 * v2.y; acc8_2 += h0_2 * v2.y; acc8_3 += h0_3 * v2.y;
            let h1_0 = vec4<f32>(g0.y, g1.y, g2.y, g3.y);
            let h1_1 = vec4<f32>(g4.y, g5.y, g6.y, g7.y);
            let h1_2 = vec4<f32>(g8.y, g9.y, g10.y, g11.y);
            let h1_3 = vec4<f32>(g12.y, g13.y, g14.y, g15.y);
            acc0_0 += h1_0 * v0.x; acc0_1 += h1_1 * v0.x; acc0_2 += h1_2 * v0.x; acc0_3 += h1_3 * v0.x;
            acc1_0 += h1_0 * v0.y; acc1_1 += h1_1 * v0.y; acc1_2 += h1_2 * v0.y; acc1_3 += h1_3 * v0.y;
            acc2_0 += h1_0 * v0.z; acc2_1 += h1_1 * v0.z; acc2_2 += h1_2 * v0.z; acc2_3 += h1_3 * v0.z;
            acc3_0 += h1_0 * v1.x; acc3_1 += h1_1 * v1.x; acc3_2 += h1_2 * v1.x; acc3_3 += h1_3 * v1.x;
            acc4_0 += h1_0 * v1.y; acc4_1 += h1_1 * v1.y; acc4_2 += h1_2 * v1.y; acc4_3 += h1_3 * v1.y;
            acc5_0 += h1_0 * v1.z; acc5_1 += h1_1 * v1.z; acc5_2 += h1_2 * v1.z; acc5_3 += h1_3 * v1.z;
            acc6_0 += h1_0 * v2.x; acc6_1 += h1_1 * v2.x; acc6_2 += h1_2 * v2.x; acc6_3 += h1_3 * v2.x;
            acc7_0 += h1_0 * v2.y; acc7_1 += h1_1 * v2.y; acc7_2 += h1_2 * v2.y; acc7_3 += h1_3 * v2.y;
            acc8_0 += h1_0 * v2.z; acc8_1 += h1_1 * v2.z; acc8_2 += h1_2 * v2.z; acc8_3 += h1_3 * v2.z;
            let h2_0 = vec4<f32>(g0.z, g1.z, g2.z, g3.z);
            let h2_1 = vec4<f32>(g4.z, g5.z, g6.z, g7.z);
            let h2_2 = vec4<f32>(g8.z, g9.z, g10.z, g11.z);
            let h2_3 = vec4<f32>(g12.z, g13.z, g14.z, g15.z);
            acc0_0 += h2_0 * v0.y; acc0_1 += h2_1 * v0.y; acc0_2 += h2_2 * v0.y; acc0_3 += h2_3 * v0.y;
            acc1_0 += h2_0 * v0.z; acc1_1 += h2_1 * v0.z; acc1_2 += h2_2 * v0.z; acc1_3 += h2_3 * v0.z;
            acc2_0 += h2_0 * v0.w; acc2_1 += h2_1 * v0.w; acc2_2 += h2_2 * v0.w; acc2_3 += h2_3 * v0.w;
            acc3_0 += h2_0 * v1.y; acc3_1 += h2_1 * v1.y; acc3_2 += h2_2 * v1.y; acc3_3 += h2_3 * v1.y;
            acc4_0 += h2_0 * v1.z; acc4_1 += h2_1 * v1.z; acc4_2 += h2_2 * v1.z; acc4_3 += h2_3 * v1.z;
            acc5_0 += h2_0 * v1.w; acc5_1 += h2_1 * v1.w; acc5_2 += h2_2 * v1.w; acc5_3 += h2_3 * v1.w;
            acc6_0 += h2_0 * v2.y; acc6_1 += h2_1 * v2.y; acc6_2 += h2_2 * v2.y; acc6_3 += h2_3 * v2.y;
            acc7_0 += h2_0 * v2.z; acc7_1 += h2_1 * v2.z; acc7_2 += h2_2 * v2.z; acc7_3 += h2_3 * v2.z;
            acc8_0 += h2_0 * v2.w; acc8_1 += h2_1 * v2.w; acc8_2 += h2_2 * v2.w; acc8_3 += h2_3 * v2.w;
            let h3_0 = vec4<f32>(g0.w, g1.w, g2.w, g3.w);
            let h3_1 = vec4<f32>(g4.w, g5.w, g6.w, g7.w);
            let h3_2 = vec4<f32>(g8.w, g9.w, g10.w, g11.w);
            let h3_3 = vec4<f32>(g12.w, g13.w, g14.w, g15.w);
            acc0_0 += h3_0 * v0.z; acc0_1 += h3_1 * v0.z; acc0_2 += h3_2 * v0.z; acc0_3 += h3_3 * v0.z;
            acc1_0 += h3_0 * v0.w; acc1_1 += h3_1 * v0.w; acc1_2 += h3_2 * v0.w; acc1_3 += h3_3 * v0.w;
            acc2_0 += h3_0 * e05; acc2_1 += h3_1 * e05; acc2_2 += h3_2 * e05; acc2_3 += h3_3 * e05;
            acc3_0 += h3_0 * v1.z; acc3_1 += h3_1 * v1.z; acc3_2 += h3_2 * v1.z; acc3_3 += h3_3 * v1.z;
            acc4_0 += h3_0 * v1.w; acc4_1 += h3_1 * v1.w; acc4_2 += h3_2 * v1.w; acc4_3 += h3_3 * v1.w;
            acc5_0 += h3_0 * e15; acc5_1 += h3_1 * e15; acc5_2 += h3_2 * e15; acc5_3 += h3_3 * e15;
            acc6_0 += h3_0 * v2.z; acc6_1 += h3_1 * v2.z; acc6_2 += h3_2 * v2.z; acc6_3 += h3_3 * v2.z;
            acc7_0 += h3_0 * v2.w; acc7_1 += h3_1 * v2.w; acc7_2 += h3_2 * v2.w; acc7_3 += h3_3 * v2.w;
            acc8_0 += h3_0 * e25; acc8_1 += h3_1 * e25; acc8_2 += h3_2 * e25; acc8_3 += h3_3 * e25;
        }
    }
    if (!ok) { return; }
    let m0 = p.off_out + tile * p.m + ci * 9u;
    // Stores written out (constant register indices: a dynamically indexed accumulator array would be spilled
    // to memory and gathered per element).
    if (co0 + 0u < p.cout) {
        let o0 = m0 + (co0 + 0u) * p.cin * 9u;
        out[o0 + 0u] = acc0_0.x; out[o0 + 1u] = acc1_0.x; out[o0 + 2u] = acc2_0.x; out[o0 + 3u] = acc3_0.x; out[o0 + 4u] = acc4_0.x; out[o0 + 5u] = acc5_0.x; out[o0 + 6u] = acc6_0.x; out[o0 + 7u] = acc7_0.x; out[o0 + 8u] = acc8_0.x;
    }
    if (co0 + 1u < p.cout) {
        let o1 = m0 + (co0 + 1u) * p.cin * 9u;
        out[o1 + 0u] = acc0_0.y; out[o1 + 1u] = acc1_0.y; out[o1 + 2u] = acc2_0.y; out[o1 + 3u] = acc3_0.y; out[o1 + 4u] = acc4_0.y; out[o1 + 5u] = acc5_0.y; out[o1 + 6u] = acc6_0.y; out[o1 + 7u] = acc7_0.y; out[o1 + 8u] = acc8_0.y;
    }
    if (co0 + 2u < p.cout) {
        let o2 = m0 + (co0 + 2u) * p.cin * 9u;
        out[o2 + 0u] = acc0_0.z; out[o2 + 1u] = acc1_0.z; out[o2 + 2u] = acc2_0.z; out[o2 + 3u] = acc3_0.z; out[o2 + 4u] = acc4_0.z; out[o2 + 5u] = acc5_0.z; out[o2 + 6u] = acc6_0.z; out[o2 + 7u] = acc7_0.z; out[o2 + 8u] = acc8_0.z;
    }
    if (co0 + 3u < p.cout) {
        let o3 = m0 + (co0 + 3u) * p.cin * 9u;
        out[o3 + 0u] = acc0_0.w; out[o3 + 1u] = acc1_0.w; out[o3 + 2u] = acc2_0.w; out[o3 + 3u] = acc3_0.w; out[o3 + 4u] = acc4_0.w; out[o3 + 5u] = acc5_0.w; out[o3 + 6u] = acc6_0.w; out[o3 + 7u] = acc7_0.w; out[o3 + 8u] = acc8_0.w;
    }
    if (co0 + 4u < p.cout) {
        let o4 = m0 + (co0 + 4u) * p.cin * 9u;
        out[o4 + 0u] = acc0_1.x; out[o4 + 1u] = acc1_1.x; out[o4 + 2u] = acc2_1.x; out[o4 + 3u] = acc3_1.x; out[o4 + 4u] = acc4_1.x; out[o4 + 5u] = acc5_1.x; out[o4 + 6u] = acc6_1.x; out[o4 + 7u] = acc7_1.x; out[o4 + 8u] = acc8_1.x;
    }
    if (co0 + 5u < p.cout) {
        let o5 = m0 + (co0 + 5u) * p.cin * 9u;
        out[o5 + 0u] = acc0_1.y; out[o5 + 1u] = acc1_1.y; out[o5 + 2u] = acc2_1.y; out[o5 + 3u] = acc3_1.y; out[o5 + 4u] = acc4_1.y; out[o5 + 5u] = acc5_1.y; out[o5 + 6u] = acc6_1.y; out[o5 + 7u] = acc7_1.y; out[o5 + 8u] = acc8_1.y;
    }
    if (co0 + 6u < p.cout) {
        let o6 = m0 + (co0 + 6u) * p.cin * 9u;
        out[o6 + 0u] = acc0_1.z; out[o6 + 1u] = acc1_1.z; out[o6 + 2u] = acc2_1.z; out[o6 + 3u] = acc3_1.z; out[o6 + 4u] = acc4_1.z; out[o6 + 5u] = acc5_1.z; out[o6 + 6u] = acc6_1.z; out[o6 + 7u] = acc7_1.z; out[o6 + 8u] = acc8_1.z;
    }
    if (co0 + 7u < p.cout) {
        let o7 = m0 + (co0 + 7u) * p.cin * 9u;
        out[o7 + 0u] = acc0_1.w; out[o7 + 1u] = acc1_1.w; out[o7 + 2u] = acc2_1.w; out[o7 + 3u] = acc3_1.w; out[o7 + 4u] = acc4_1.w; out[o7 + 5u] = acc5_1.w; out[o7 + 6u] = acc6_1.w; out[o7 + 7u] = acc7_1.w; out[o7 + 8u] = acc8_1.w;
    }
    if (co0 + 8u < p.cout) {
        let o8 = m0 + (co0 + 8u) * p.cin * 9u;
        out[o8 + 0u] = acc0_2.x; out[o8 + 1u] = acc1_2.x; out[o8 + 2u] = acc2_2.x; out[o8 + 3u] = acc3_2.x; out[o8 + 4u] = acc4_2.x; out[o8 + 5u] = acc5_2.x; out[o8 + 6u] = acc6_2.x; out[o8 + 7u] = acc7_2.x; out[o8 + 8u] = acc8_2.x;
    }
    if (co0 + 9u < p.cout) {
        let o9 = m0 + (co0 + 9u) * p.cin * 9u;
        out[o9 + 0u] = acc0_2.y; out[o9 + 1u] = acc1_2.y; out[o9 + 2u] = acc2_2.y; out[o9 + 3u] = acc3_2.y; out[o9 + 4u] = acc4_2.y; out[o9 + 5u] = acc5_2.y; out[o9 + 6u] = acc6_2.y; out[o9 + 7u] = acc7_2.y; out[o9 + 8u] = acc8_2.y;
    }
    if (co0 + 10u < p.cout) {
        let o10 = m0 + (co0 + 10u) * p.cin * 9u;
        out[o10 + 0u] = acc0_2.z; out[o10 + 1u] = acc1_2.z; out[o10 + 2u] = acc2_2.z; out[o10 + 3u] = acc3_2.z; out[o10 + 4u] = acc4_2.z; out[o10 + 5u] = acc5_2.z; out[o10 + 6u] = acc6_2.z; out[o10 + 7u] = acc7_2.z; out[o10 + 8u] = acc8_2.z;
    }
    if (co0 + 11u < p.cout) {
        let o11 = m0 + (co0 + 11u) * p.cin * 9u;
        out[o11 + 0u] = acc0_2.w; out[o11 + 1u] = acc1_2.w; out[o11 + 2u] = acc2_2.w; out[o11 + 3u] = acc3_2.w; out[o11 + 4u] = acc4_2.w; out[o11 + 5u] = acc5_2.w; out[o11 + 6u] = acc6_2.w; out[o11 + 7u] = acc7_2.w; out[o11 + 8u] = acc8_2.w;
    }
    if (co0 + 12u < p.cout) {
        let o12 = m0 + (co0 + 12u) * p.cin * 9u;
        out[o12 + 0u] = acc0_3.x; out[o12 + 1u] = acc1_3.x; out[o12 + 2u] = acc2_3.x; out[o12 + 3u] = acc3_3.x; out[o12 + 4u] = acc4_3.x; out[o12 + 5u] = acc5_3.x; out[o12 + 6u] = acc6_3.x; out[o12 + 7u] = acc7_3.x; out[o12 + 8u] = acc8_3.x;
    }
    if (co0 + 13u < p.cout) {
        let o13 = m0 + (co0 + 13u) * p.cin * 9u;
        out[o13 + 0u] = acc0_3.y; out[o13 + 1u] = acc1_3.y; out[o13 + 2u] = acc2_3.y; out[o13 + 3u] = acc3_3.y; out[o13 + 4u] = acc4_3.y; out[o13 + 5u] = acc5_3.y; out[o13 + 6u] = acc6_3.y; out[o13 + 7u] = acc7_3.y; out[o13 + 8u] = acc8_3.y;
    }
    if (co0 + 14u < p.cout) {
        let o14 = m0 + (co0 + 14u) * p.cin * 9u;
        out[o14 + 0u] = acc0_3.z; out[o14 + 1u] = acc1_3.z; out[o14 + 2u] = acc2_3.z; out[o14 + 3u] = acc3_3.z; out[o14 + 4u] = acc4_3.z; out[o14 + 5u] = acc5_3.z; out[o14 + 6u] = acc6_3.z; out[o14 + 7u] = acc7_3.z; out[o14 + 8u] = acc8_3.z;
    }
    if (co0 + 15u < p.cout) {
        let o15 = m0 + (co0 + 15u) * p.cin * 9u;
        out[o15 + 0u] = acc0_3.w; out[o15 + 1u] = acc1_3.w; out[o15 + 2u] = acc2_3.w; out[o15 + 3u] = acc3_3.w; out[o15 + 4u] = acc4_3.w; out[o15 + 5u] = acc5_3.w; out[o15 + 6u] = acc6_3.w; out[o15 + 7u] = acc7_3.w; out[o15 + 8u] = acc8_3.w;
    }
}

// Weight gradient, 3x3 stride 2 pad 1 with W = 2*OW, OW % 4 == 0 and 4-aligned slices (the encoder's downsampling
// convolutions): `conv2d_backward_weight_3x3_vec4` with the input columns of four consecutive positions
// (2ox-1 .. 2ox+6) loaded as one scalar and two vec4 per kernel row.
@compute @workgroup_size(64)
fn conv2d_backward_weight_3x3s2_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                                   @builtin(local_invocation_index) lid: u32) {
    // Lanes enumerate (tile, block of 16 output channels, ci), ci fastest, on a 1-D grid folded past 65,535 groups:
    // small layers (16 channels) still fill whole workgroups.
    let per_tile = p.cin * ((p.cout + 15u) / 16u);
    let flat = (wid.y * nwg.x + wid.x) * WG + lid;
    let ok = flat < p.tiles * per_tile;
    let tile = select(0u, flat / per_tile, ok);
    let lc = flat % per_tile;
    let ci = lc % p.cin;
    let co0 = (lc / p.cin) * 16u;
    let ohw = p.oh * p.ow;
    let last = p.cout - 1u;
    // Plane offsets of channels co0+1 .. co0+15 from channel co0, in vec4 units (clamped to the last channel).
    let o1 = (min(co0 + 1u, last) - min(co0, last)) * ohw / 4u;
    let o2 = (min(co0 + 2u, last) - min(co0, last)) * ohw / 4u;
    let o3 = (min(co0 + 3u, last) - min(co0, last)) * ohw / 4u;
    let o4 = (min(co0 + 4u, last) - min(co0, last)) * ohw / 4u;
    let o5 = (min(co0 + 5u, last) - min(co0, last)) * ohw / 4u;
    let o6 = (min(co0 + 6u, last) - min(co0, last)) * ohw / 4u;
    let o7 = (min(co0 + 7u, last) - min(co0, last)) * ohw / 4u;
    let o8 = (min(co0 + 8u, last) - min(co0, last)) * ohw / 4u;
    let o9 = (min(co0 + 9u, last) - min(co0, last)) * ohw / 4u;
    let o10 = (min(co0 + 10u, last) - min(co0, last)) * ohw / 4u;
    let o11 = (min(co0 + 11u, last) - min(co0, last)) * ohw / 4u;
    let o12 = (min(co0 + 12u, last) - min(co0, last)) * ohw / 4u;
    let o13 = (min(co0 + 13u, last) - min(co0, last)) * ohw / 4u;
    let o14 = (min(co0 + 14u, last) - min(co0, last)) * ohw / 4u;
    let o15 = (min(co0 + 15u, last) - min(co0, last)) * ohw / 4u;
    var acc0_0 = vec4<f32>(0.0); var acc0_1 = vec4<f32>(0.0); var acc0_2 = vec4<f32>(0.0); var acc0_3 = vec4<f32>(0.0);
    var acc1_0 = vec4<f32>(0.0); var acc1_1 = vec4<f32>(0.0); var acc1_2 = vec4<f32>(0.0); var acc1_3 = vec4<f32>(0.0);
    var acc2_0 = vec4<f32>(0.0); var acc2_1 = vec4<f32>(0.0); var acc2_2 = vec4<f32>(0.0); var acc2_3 = vec4<f32>(0.0);
    var acc3_0 = vec4<f32>(0.0); var acc3_1 = vec4<f32>(0.0); var acc3_2 = vec4<f32>(0.0); var acc3_3 = vec4<f32>(0.0);
    var acc4_0 = vec4<f32>(0.0); var acc4_1 = vec4<f32>(0.0); var acc4_2 = vec4<f32>(0.0); var acc4_3 = vec4<f32>(0.0);
    var acc5_0 = vec4<f32>(0.0); var acc5_1 = vec4<f32>(0.0); var acc5_2 = vec4<f32>(0.0); var acc5_3 = vec4<f32>(0.0);
    var acc6_0 = vec4<f32>(0.0); var acc6_1 = vec4<f32>(0.0); var acc6_2 = vec4<f32>(0.0); var acc6_3 = vec4<f32>(0.0);
    var acc7_0 = vec4<f32>(0.0); var acc7_1 = vec4<f32>(0.0); var acc7_2 = vec4<f32>(0.0); var acc7_3 = vec4<f32>(0.0);
    var acc8_0 = vec4<f32>(0.0); var acc8_1 = vec4<f32>(0.0); var acc8_2 = vec4<f32>(0.0); var acc8_3 = vec4<f32>(0.0);
    let r0 = tile * p.tile_len;
    let r1 = min(r0 + p.tile_len, p.n * p.oh);
    let w4 = p.ow / 4u;
    for (var r = r0; r < r1; r++) {
        let n = r / p.oh;
        let oy = r % p.oh;
        let gb = (p.off_gy + ((n * p.cout + min(co0, last)) * p.oh + oy) * p.ow) / 4u;
        let xb = p.off_x + (n * p.cin + ci) * p.h * p.w;
        let iy = 2 * i32(oy) - 1;
        for (var q = 0u; q < w4; q++) {
            let ox = i32(q * 4u);
            // gy of the 16 channels at positions ox .. ox+3.
            let g0 = gy4[gb + q];
            let g1 = gy4[gb + o1 + q];
            let g2 = gy4[gb + o2 + q];
            let g3 = gy4[gb + o3 + q];
            let g4 = gy4[gb + o4 + q];
            let g5 = gy4[gb + o5 + q];
            let g6 = gy4[gb + o6 + q];
            let g7 = gy4[gb + o7 + q];
            let g8 = gy4[gb + o8 + q];
            let g9 = gy4[gb + o9 + q];
            let g10 = gy4[gb + o10 + q];
            let g11 = gy4[gb + o11 + q];
            let g12 = gy4[gb + o12 + q];
            let g13 = gy4[gb + o13 + q];
            let g14 = gy4[gb + o14 + q];
            let g15 = gy4[gb + o15 + q];
            // Kernel row ky: x columns 2ox-1 .. 2ox+6 of input row 2oy-1+ky as e{ky} and v{ky}, u{ky} (4 each).
            let y0 = iy + 0;
            let ok0 = y0 >= 0 && y0 < i32(p.h);
            let e0 = xat(xb, y0, 2 * ox - 1);
            let c0 = (xb + u32(select(0, y0, ok0)) * p.w) / 4u + 2u * q;
            let v0 = select(vec4<f32>(0.0), x4[c0], ok0); let u0 = select(vec4<f32>(0.0), x4[c0 + 1u], ok0);
            let y1 = iy + 1;
            let ok1 = y1 >= 0 && y1 < i32(p.h);
            let e1 = xat(xb, y1, 2 * ox - 1);
            let c1 = (xb + u32(select(0, y1, ok1)) * p.w) / 4u + 2u * q;
            let v1 = select(vec4<f32>(0.0), x4[c1], ok1); let u1 = select(vec4<f32>(0.0), x4[c1 + 1u], ok1);
            let y2 = iy + 2;
            let ok2 = y2 >= 0 && y2 < i32(p.h);
            let e2 = xat(xb, y2, 2 * ox - 1);
            let c2 = (xb + u32(select(0, y2, ok2)) * p.w) / 4u + 2u * q;
            let v2 = select(vec4<f32>(0.0), x4[c2], ok2); let u2 = select(vec4<f32>(0.0), x4[c2 + 1u], ok2);
            // Position j, tap (ky, kx): acc[ky*3+kx][group] += gy[4 channels, ox+j] * x[2oy-1+ky, 2(ox+j)-1+kx].
            let h0_0 = vec4<f32>(g0.x, g1.x, g2.x, g3.x);
            let h0_1 = vec4<f32>(g4.x, g5.x, g6.x, g7.x);
            let h0_2 = vec4<f32>(g8.x, g9.x, g10.x, g11.x);
            let h0_3 = vec4<f32>(g12.x, g13.x, g14.x, g15.x);
            acc0_0 += h0_0 * e0; acc0_1 += h0_1 * e0; acc0_2 += h0_2 * e0; acc0_3 += h0_3 * e0;
            acc1_0 += h0_0 * v0.x; acc1_1 += h0_1 * v0.x; acc1_2 += h0_2 * v0.x; acc1_3 += h0_3 * v0.x;
            acc2_0 += h0_0 * v0.y; acc2_1 += h0_1 * v0.y; acc2_2 += h0_2 * v0.y; acc2_3 += h0_3 * v0.y;
            acc3_0 += h0_0 * e1; acc3_1 += h0_1 * e1; acc3_2 += h0_2 * e1; acc3_3 += h0_3 * e1;
            acc4_0 += h0_0 * v1.x; acc4_1 += h0_1 * v1.x; acc4_2 += h0_2 * v1.x; acc4_3 += h0_3 * v1.x;
            acc5_0 += h0_0 * v1.y; acc5_1 += h0_1 * v1.y; acc5_2 += h0_2 * v1.y; acc5_3 += h0_3 * v1.y;
            acc6_0 += h0_0 * e2; acc6_1 += h0_1 * e2; acc6_2 += h0_2 * e2; acc6_3 += h0_3 * e2;
            acc7_0 += h0_0 * v2.x; acc7_1 += h0_1 * v2.x; acc7_2 += h0_2 * v2.x; acc7_3 += h0_3 * v2.x;
            acc8_0 += h0_0 * v2.y; acc8_1 += h0_1 * v2.y; acc8_2 += h0_2 * v2.y; acc8_3 += h0_3 * v2.y;
            let h1_0 = vec4<f32>(g0.y, g1.y, g2.y, g3.y);
            let h1_1 = vec4<f32>(g4.y, g5.y, g6.y, g7.y);
            let h1_2 = vec4<f32>(g8.y, g9.y, g10.y, g11.y);
            let h1_3 = vec4<f32>(g12.y, g13.y, g14.y, g15.y);
            acc0_0 += h1_0 * v0.y; acc0_1 += h1_1 * v0.y; acc0_2 += h1_2 * v0.y; acc0_3 += h1_3 * v0.y;
            acc1_0 += h1_0 * v0.z; acc1_1 += h1_1 * v0.z; acc1_2 += h1_2 * v0.z; acc1_3 += h1_3 * v0.z;
            acc2_0 += h1_0 * v0.w; acc2_1 += h1_1 * v0.w; acc2_2 += h1_2 * v0.w; acc2_3 += h1_3 * v0.w;
            acc3_0 += h1_0 * v1.y; acc3_1 += h1_1 * v1.y; acc3_2 += h1_2 * v1.y; acc3_3 += h1_3 * v1.y;
            acc4_0 += h1_0 * v1.z; acc4_1 += h1_1 * v1.z; acc4_2 += h1_2 * v1.z; acc4_3 += h1_3 * v1.z;
            acc5_0 += h1_0 * v1.w; acc5_1 += h1_1 * v1.w; acc5_2 += h1_2 * v1.w; acc5_3 += h1_3 * v1.w;
            acc6_0 += h1_0 * v2.y; acc6_1 += h1_1 * v2.y; acc6_2 += h1_2 * v2.y; acc6_3 += h1_3 * v2.y;
            acc7_0 += h1_0 * v2.z; acc7_1 += h1_1 * v2.z; acc7_2 += h1_2 * v2.z; acc7_3 += h1_3 * v2.z;
            acc8_0 += h1_0 * v2.w; acc8_1 += h1_1 * v2.w; acc8_2 += h1_2 * v2.w; acc8_3 += h1_3 * v2.w;
            let h2_0 = vec4<f32>(g0.z, g1.z, g2.z, g3.z);
            let h2_1 = vec4<f32>(g4.z, g5.z, g6.z, g7.z);
            let h2_2 = vec4<f32>(g8.z, g9.z, g10.z, g11.z);
            let h2_3 = vec4<f32>(g12.z, g13.z, g14.z, g15.z);
            acc0_0 += h2_0 * v0.w; acc0_1 += h2_1 * v0.w; acc0_2 += h2_2 * v0.w; acc0_3 += h2_3 * v0.w;
            acc1_0 += h2_0 * u0.x; acc1_1 += h2_1 * u0.x; acc1_2 += h2_2 * u0.x; acc1_3 += h2_3 * u0.x;
            acc2_0 += h2_0 * u0.y; acc2_1 += h2_1 * u0.y; acc2_2 += h2_2 * u0.y; acc2_3 += h2_3 * u0.y;
            acc3_0 += h2_0 * v1.w; acc3_1 += h2_1 * v1.w; acc3_2 += h2_2 * v1.w; acc3_3 += h2_3 * v1.w;
            acc4_0 += h2_0 * u1.x; acc4_1 += h2_1 * u1.x; acc4_2 += h2_2 * u1.x; acc4_3 += h2_3 * u1.x;
            acc5_0 += h2_0 * u1.y; acc5_1 += h2_1 * u1.y; acc5_2 += h2_2 * u1.y; acc5_3 += h2_3 * u1.y;
            acc6_0 += h2_0 * v2.w; acc6_1 += h2_1 * v2.w; acc6_2 += h2_2 * v2.w; acc6_3 += h2_3 * v2.w;
            acc7_0 += h2_0 * u2.x; acc7_1 += h2_1 * u2.x; acc7_2 += h2_2 * u2.x; acc7_3 += h2_3 * u2.x;
            acc8_0 += h2_0 * u2.y; acc8_1 += h2_1 * u2.y; acc8_2 += h2_2 * u2.y; acc8_3 += h2_3 * u2.y;
            let h3_0 = vec4<f32>(g0.w, g1.w, g2.w, g3.w);
            let h3_1 = vec4<f32>(g4.w, g5.w, g6.w, g7.w);
            let h3_2 = vec4<f32>(g8.w, g9.w, g10.w, g11.w);
            let h3_3 = vec4<f32>(g12.w, g13.w, g14.w, g15.w);
            acc0_0 += h3_0 * u0.y; acc0_1 += h3_1 * u0.y; acc0_2 += h3_2 * u0.y; acc0_3 += h3_3 * u0.y;
            acc1_0 += h3_0 * u0.z; acc1_1 += h3_1 * u0.z; acc1_2 += h3_2 * u0.z; acc1_3 += h3_3 * u0.z;
            acc2_0 += h3_0 * u0.w; acc2_1 += h3_1 * u0.w; acc2_2 += h3_2 * u0.w; acc2_3 += h3_3 * u0.w;
            acc3_0 += h3_0 * u1.y; acc3_1 += h3_1 * u1.y; acc3_2 += h3_2 * u1.y; acc3_3 += h3_3 * u1.y;
            acc4_0 += h3_0 * u1.z; acc4_1 += h3_1 * u1.z; acc4_2 += h3_2 * u1.z; acc4_3 += h3_3 * u1.z;
            acc5_0 += h3_0 * u1.w; acc5_1 += h3_1 * u1.w; acc5_2 += h3_2 * u1.w; acc5_3 += h3_3 * u1.w;
            acc6_0 += h3_0 * u2.y; acc6_1 += h3_1 * u2.y; acc6_2 += h3_2 * u2.y; acc6_3 += h3_3 * u2.y;
            acc7_0 += h3_0 * u2.z; acc7_1 += h3_1 * u2.z; acc7_2 += h3_2 * u2.z; acc7_3 += h3_3 * u2.z;
            acc8_0 += h3_0 * u2.w; acc8_1 += h3_1 * u2.w; acc8_2 += h3_2 * u2.w; acc8_3 += h3_3 * u2.w;
        }
    }
    if (!ok) { return; }
    let m0 = p.off_out + tile * p.m + ci * 9u;
    // Stores written out (constant register indices: a dynamically indexed accumulator array would be spilled
    // to memory and gathered per element).
    if (co0 + 0u < p.cout) {
        let o0 = m0 + (co0 + 0u) * p.cin * 9u;
        out[o0 + 0u] = acc0_0.x; out[o0 + 1u] = acc1_0.x; out[o0 + 2u] = acc2_0.x; out[o0 + 3u] = acc3_0.x; out[o0 + 4u] = acc4_0.x; out[o0 + 5u] = acc5_0.x; out[o0 + 6u] = acc6_0.x; out[o0 + 7u] = acc7_0.x; out[o0 + 8u] = acc8_0.x;
    }
    if (co0 + 1u < p.cout) {
        let o1 = m0 + (co0 + 1u) * p.cin * 9u;
        out[o1 + 0u] = acc0_0.y; out[o1 + 1u] = acc1_0.y; out[o1 + 2u] = acc2_0.y; out[o1 + 3u] = acc3_0.y; out[o1 + 4u] = acc4_0.y; out[o1 + 5u] = acc5_0.y; out[o1 + 6u] = acc6_0.y; out[o1 + 7u] = acc7_0.y; out[o1 + 8u] = acc8_0.y;
    }
    if (co0 + 2u < p.cout) {
        let o2 = m0 + (co0 + 2u) * p.cin * 9u;
        out[o2 + 0u] = acc0_0.z; out[o2 + 1u] = acc1_0.z; out[o2 + 2u] = acc2_0.z; out[o2 + 3u] = acc3_0.z; out[o2 + 4u] = acc4_0.z; out[o2 + 5u] = acc5_0.z; out[o2 + 6u] = acc6_0.z; out[o2 + 7u] = acc7_0.z; out[o2 + 8u] = acc8_0.z;
    }
    if (co0 + 3u < p.cout) {
        let o3 = m0 + (co0 + 3u) * p.cin * 9u;
        out[o3 + 0u] = acc0_0.w; out[o3 + 1u] = acc1_0.w; out[o3 + 2u] = acc2_0.w; out[o3 + 3u] = acc3_0.w; out[o3 + 4u] = acc4_0.w; out[o3 + 5u] = acc5_0.w; out[o3 + 6u] = acc6_0.w; out[o3 + 7u] = acc7_0.w; out[o3 + 8u] = acc8_0.w;
    }
    if (co0 + 4u < p.cout) {
        let o4 = m0 + (co0 + 4u) * p.cin * 9u;
        out[o4 + 0u] = acc0_1.x; out[o4 + 1u] = acc1_1.x; out[o4 + 2u] = acc2_1.x; out[o4 + 3u] = acc3_1.x; out[o4 + 4u] = acc4_1.x; out[o4 + 5u] = acc5_1.x; out[o4 + 6u] = acc6_1.x; out[o4 + 7u] = acc7_1.x; out[o4 + 8u] = acc8_1.x;
    }
    if (co0 + 5u < p.cout) {
        let o5 = m0 + (co0 + 5u) * p.cin * 9u;
        out[o5 + 0u] = acc0_1.y; out[o5 + 1u] = acc1_1.y; out[o5 + 2u] = acc2_1.y; out[o5 + 3u] = acc3_1.y; out[o5 + 4u] = acc4_1.y; out[o5 + 5u] = acc5_1.y; out[o5 + 6u] = acc6_1.y; out[o5 + 7u] = acc7_1.y; out[o5 + 8u] = acc8_1.y;
    }
    if (co0 + 6u < p.cout) {
        let o6 = m0 + (co0 + 6u) * p.cin * 9u;
        out[o6 + 0u] = acc0_1.z; out[o6 + 1u] = acc1_1.z; out[o6 + 2u] = acc2_1.z; out[o6 + 3u] = acc3_1.z; out[o6 + 4u] = acc4_1.z; out[o6 + 5u] = acc5_1.z; out[o6 + 6u] = acc6_1.z; out[o6 + 7u] = acc7_1.z; out[o6 + 8u] = acc8_1.z;
    }
    if (co0 + 7u < p.cout) {
        let o7 = m0 + (co0 + 7u) * p.cin * 9u;
        out[o7 + 0u] = acc0_1.w; out[o7 + 1u] = acc1_1.w; out[o7 + 2u] = acc2_1.w; out[o7 + 3u] = acc3_1.w; out[o7 + 4u] = acc4_1.w; out[o7 + 5u] = acc5_1.w; out[o7 + 6u] = acc6_1.w; out[o7 + 7u] = acc7_1.w; out[o7 + 8u] = acc8_1.w;
    }
    if (co0 + 8u < p.cout) {
        let o8 = m0 + (co0 + 8u) * p.cin * 9u;
        out[o8 + 0u] = acc0_2.x; out[o8 + 1u] = acc1_2.x; out[o8 + 2u] = acc2_2.x; out[o8 + 3u] = acc3_2.x; out[o8 + 4u] = acc4_2.x; out[o8 + 5u] = acc5_2.x; out[o8 + 6u] = acc6_2.x; out[o8 + 7u] = acc7_2.x; out[o8 + 8u] = acc8_2.x;
    }
    if (co0 + 9u < p.cout) {
        let o9 = m0 + (co0 + 9u) * p.cin * 9u;
        out[o9 + 0u] = acc0_2.y; out[o9 + 1u] = acc1_2.y; out[o9 + 2u] = acc2_2.y; out[o9 + 3u] = acc3_2.y; out[o9 + 4u] = acc4_2.y; out[o9 + 5u] = acc5_2.y; out[o9 + 6u] = acc6_2.y; out[o9 + 7u] = acc7_2.y; out[o9 + 8u] = acc8_2.y;
    }
    if (co0 + 10u < p.cout) {
        let o10 = m0 + (co0 + 10u) * p.cin * 9u;
        out[o10 + 0u] = acc0_2.z; out[o10 + 1u] = acc1_2.z; out[o10 + 2u] = acc2_2.z; out[o10 + 3u] = acc3_2.z; out[o10 + 4u] = acc4_2.z; out[o10 + 5u] = acc5_2.z; out[o10 + 6u] = acc6_2.z; out[o10 + 7u] = acc7_2.z; out[o10 + 8u] = acc8_2.z;
    }
    if (co0 + 11u < p.cout) {
        let o11 = m0 + (co0 + 11u) * p.cin * 9u;
        out[o11 + 0u] = acc0_2.w; out[o11 + 1u] = acc1_2.w; out[o11 + 2u] = acc2_2.w; out[o11 + 3u] = acc3_2.w; out[o11 + 4u] = acc4_2.w; out[o11 + 5u] = acc5_2.w; out[o11 + 6u] = acc6_2.w; out[o11 + 7u] = acc7_2.w; out[o11 + 8u] = acc8_2.w;
    }
    if (co0 + 12u < p.cout) {
        let o12 = m0 + (co0 + 12u) * p.cin * 9u;
        out[o12 + 0u] = acc0_3.x; out[o12 + 1u] = acc1_3.x; out[o12 + 2u] = acc2_3.x; out[o12 + 3u] = acc3_3.x; out[o12 + 4u] = acc4_3.x; out[o12 + 5u] = acc5_3.x; out[o12 + 6u] = acc6_3.x; out[o12 + 7u] = acc7_3.x; out[o12 + 8u] = acc8_3.x;
    }
    if (co0 + 13u < p.cout) {
        let o13 = m0 + (co0 + 13u) * p.cin * 9u;
        out[o13 + 0u] = acc0_3.y; out[o13 + 1u] = acc1_3.y; out[o13 + 2u] = acc2_3.y; out[o13 + 3u] = acc3_3.y; out[o13 + 4u] = acc4_3.y; out[o13 + 5u] = acc5_3.y; out[o13 + 6u] = acc6_3.y; out[o13 + 7u] = acc7_3.y; out[o13 + 8u] = acc8_3.y;
    }
    if (co0 + 14u < p.cout) {
        let o14 = m0 + (co0 + 14u) * p.cin * 9u;
        out[o14 + 0u] = acc0_3.z; out[o14 + 1u] = acc1_3.z; out[o14 + 2u] = acc2_3.z; out[o14 + 3u] = acc3_3.z; out[o14 + 4u] = acc4_3.z; out[o14 + 5u] = acc5_3.z; out[o14 + 6u] = acc6_3.z; out[o14 + 7u] = acc7_3.z; out[o14 + 8u] = acc8_3.z;
    }
    if (co0 + 15u < p.cout) {
        let o15 = m0 + (co0 + 15u) * p.cin * 9u;
        out[o15 + 0u] = acc0_3.w; out[o15 + 1u] = acc1_3.w; out[o15 + 2u] = acc2_3.w; out[o15 + 3u] = acc3_3.w; out[o15 + 4u] = acc4_3.w; out[o15 + 5u] = acc5_3.w; out[o15 + 6u] = acc6_3.w; out[o15 + 7u] = acc7_3.w; out[o15 + 8u] = acc8_3.w;
    }
}

// Input gradient, any stride (the tiled path for stride != 1): pixels are split into s*s parity classes
// (wid.z = py*s + px) with iy + p = s*A + py and ix + p = s*B + px. Within a class exactly the taps
// ky = py + s*j, kx = px + s*i reach an output, at oy = A - j, ox = B - i, so the loops visit only taps that hit
// (no wasted multiply-adds, no modulo in the loop):
//   gx[n,ci,iy,ix] = sum_{co, j, i} gy[n,co,A-j,B-i] * w[co,ci,py+s*j,px+s*i]
// Invocation = 16 consecutive B of one (n, A) x 8 input channels (32 vec4 accumulators written out by hand); per tap
// 16 gy loads + 2 vec4 weight loads (packed flipped: `conv2d_pack_weight_flipped`) feed 128 multiply-adds. Lanes
// enumerate (channel block, pixel block). Loop count Cout*ceil(KH/s)*ceil(KW/s).
@compute @workgroup_size(64)
fn conv2d_backward_input_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                               @builtin(local_invocation_index) lid: u32) {
    let s = p.stride;
    let py = wid.z / s;
    let px = wid.z % s;
    let rows = (p.h + p.pad + s - 1u) / s;       // A in [0, rows) covers iy in [0, H)
    let cols = (p.w + p.pad + s - 1u) / s;
    let pl = p.n * rows * ((cols + 15u) / 16u);  // pixel blocks of this class
    let lane = (wid.y * nwg.x + wid.x) * WG + lid;
    let ok = lane < pl * (p.m / 8u);
    let lc = select(0u, lane, ok);
    let cblk = lc / pl;
    let pb = lc % pl;
    let segs = (cols + 15u) / 16u;
    let b0 = (pb % segs) * 16u;
    let a_ = i32((pb / segs) % rows);
    let n = (pb / segs) / rows;
    let wrow = cblk * p.cout * p.kh * p.kw;  // this block's packed rows (two vec4 each)
    let ohw = p.oh * p.ow;
    var a0 = vec4<f32>(0.0); var c0 = vec4<f32>(0.0); var a1 = vec4<f32>(0.0); var c1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0); var c2 = vec4<f32>(0.0); var a3 = vec4<f32>(0.0); var c3 = vec4<f32>(0.0);
    var a4 = vec4<f32>(0.0); var c4 = vec4<f32>(0.0); var a5 = vec4<f32>(0.0); var c5 = vec4<f32>(0.0);
    var a6 = vec4<f32>(0.0); var c6 = vec4<f32>(0.0); var a7 = vec4<f32>(0.0); var c7 = vec4<f32>(0.0);
    var a8 = vec4<f32>(0.0); var c8 = vec4<f32>(0.0); var a9 = vec4<f32>(0.0); var c9 = vec4<f32>(0.0);
    var a10 = vec4<f32>(0.0); var c10 = vec4<f32>(0.0); var a11 = vec4<f32>(0.0); var c11 = vec4<f32>(0.0);
    var a12 = vec4<f32>(0.0); var c12 = vec4<f32>(0.0); var a13 = vec4<f32>(0.0); var c13 = vec4<f32>(0.0);
    var a14 = vec4<f32>(0.0); var c14 = vec4<f32>(0.0); var a15 = vec4<f32>(0.0); var c15 = vec4<f32>(0.0);
    for (var co = 0u; co < p.cout; co++) {
        let gb = p.off_gy + (n * p.cout + co) * ohw;
        var dj = 0;                                 // (ky - py) / s, counted (no division in the loop)
        for (var ky = py; ky < p.kh; ky += s) {
            let oy = a_ - dj;
            dj++;
            var di = 0;
            for (var kx = px; kx < p.kw; kx += s) {
                let ox0 = i32(b0) - di;
                di++;
                // Packed flipped row k' = (co*KH + KH-1-ky)*KW + KW-1-kx holds w[co, ci.., ky, kx].
                let wi = (wrow + (co * p.kh + p.kh - 1u - ky) * p.kw + p.kw - 1u - kx) * 2u;
                let wv = wp[wi];
                let vv = wp[wi + 1u];
                let g0 = gat(gb, oy, ox0 + 0); let g1 = gat(gb, oy, ox0 + 1); let g2 = gat(gb, oy, ox0 + 2);
                let g3 = gat(gb, oy, ox0 + 3); let g4 = gat(gb, oy, ox0 + 4); let g5 = gat(gb, oy, ox0 + 5);
                let g6 = gat(gb, oy, ox0 + 6); let g7 = gat(gb, oy, ox0 + 7); let g8 = gat(gb, oy, ox0 + 8);
                let g9 = gat(gb, oy, ox0 + 9); let g10 = gat(gb, oy, ox0 + 10); let g11 = gat(gb, oy, ox0 + 11);
                let g12 = gat(gb, oy, ox0 + 12); let g13 = gat(gb, oy, ox0 + 13); let g14 = gat(gb, oy, ox0 + 14);
                let g15 = gat(gb, oy, ox0 + 15);
                a0 += wv * g0; c0 += vv * g0; a1 += wv * g1; c1 += vv * g1; a2 += wv * g2; c2 += vv * g2;
                a3 += wv * g3; c3 += vv * g3; a4 += wv * g4; c4 += vv * g4; a5 += wv * g5; c5 += vv * g5;
                a6 += wv * g6; c6 += vv * g6; a7 += wv * g7; c7 += vv * g7; a8 += wv * g8; c8 += vv * g8;
                a9 += wv * g9; c9 += vv * g9; a10 += wv * g10; c10 += vv * g10; a11 += wv * g11; c11 += vv * g11;
                a12 += wv * g12; c12 += vv * g12; a13 += wv * g13; c13 += vv * g13; a14 += wv * g14; c14 += vv * g14;
                a15 += wv * g15; c15 += vv * g15;
            }
        }
    }
    if (!ok) { return; }
    let iy = a_ * i32(s) + i32(py) - i32(p.pad);
    if (iy < 0 || iy >= i32(p.h)) { return; }
    let acc = array<vec4<f32>, 32>(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15,
                                   c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15);
    for (var c = 0u; c < 8u; c++) {
        let ci = cblk * 8u + c;
        if (ci >= p.cin) { return; }
        let row = p.off_out + ((n * p.cin + ci) * p.h + u32(iy)) * p.w;
        for (var j = 0u; j < 16u; j++) {
            let ix = i32((b0 + j) * s + px) - i32(p.pad);
            if (ix >= 0 && ix < i32(p.w)) { out[row + u32(ix)] = acc[(c / 4u) * 16u + j][c % 4u]; }
        }
    }
}

// gy[base + oy*OW + ox], or 0 outside [0, OH) x [0, OW).
fn gat(base: u32, oy: i32, ox: i32) -> f32 {
    let ok = oy >= 0 && oy < i32(p.oh) && ox >= 0 && ox < i32(p.ow);
    return select(0.0, gy[select(base, base + u32(oy) * p.ow + u32(ox), ok)], ok);
}

// Input gradient, stride >= 2 with OW % 4 == 0, a 4-aligned gy slice and ceil(KW/s) <= 4 (the U-Net's strided
// convolutions: 7x7/2, 3x3/2, 1x1/2): the parity classes of `conv2d_backward_input_tiled`, but invocation = 16
// consecutive B x 16 input channels (64 vec4 accumulators acc{j}_{g}). For one (co, ky) every kx tap reads the same gy
// row at columns b0 - t + j (t = tap index along kx), so the row is loaded once: 4 vec4 loads for columns
// b0 .. b0+15 and up to 3 scalars for b0-3 .. b0-1, then each tap adds 16 x 16 products (weights packed flipped in
// blocks of 16 channels, four vec4 per tap); the column window shifts right by one per tap.
// Loop count Cout*ceil(KH/s).
@compute @workgroup_size(64)
fn conv2d_backward_input_strided_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let s = p.stride;
    let py = wid.z / s;
    let px = wid.z % s;
    let rows = (p.h + p.pad + s - 1u) / s;       // A in [0, rows) covers iy in [0, H)
    let cols = (p.w + p.pad + s - 1u) / s;
    let segs = (cols + 15u) / 16u;
    let pl = p.n * rows * segs;                  // pixel blocks of this class
    let nblk = p.m / 16u;
    let lane = (wid.y * nwg.x + wid.x) * WG + lid;
    let ok = lane < pl * nblk;
    let lc = select(0u, lane, ok);
    let cblk = lc / pl;
    let pb = lc % pl;
    let b0 = (pb % segs) * 16u;
    let a_ = i32((pb / segs) % rows);
    let n = (pb / segs) / rows;
    let wrow = cblk * p.cout * p.kh * p.kw;      // this block's packed rows (four vec4 each)
    let ohw = p.oh * p.ow;
    let cl = vec4<u32>(0u, 1u, 2u, 3u) + vec4<u32>(b0);
    let m0 = cl + vec4<u32>(0u) < vec4<u32>(p.ow);
    let m1 = cl + vec4<u32>(4u) < vec4<u32>(p.ow);
    let m2 = cl + vec4<u32>(8u) < vec4<u32>(p.ow);
    let m3 = cl + vec4<u32>(12u) < vec4<u32>(p.ow);
    var acc0_0 = vec4<f32>(0.0); var acc0_1 = vec4<f32>(0.0); var acc0_2 = vec4<f32>(0.0); var acc0_3 = vec4<f32>(0.0);
    var acc1_0 = vec4<f32>(0.0); var acc1_1 = vec4<f32>(0.0); var acc1_2 = vec4<f32>(0.0); var acc1_3 = vec4<f32>(0.0);
    var acc2_0 = vec4<f32>(0.0); var acc2_1 = vec4<f32>(0.0); var acc2_2 = vec4<f32>(0.0); var acc2_3 = vec4<f32>(0.0);
    var acc3_0 = vec4<f32>(0.0); var acc3_1 = vec4<f32>(0.0); var acc3_2 = vec4<f32>(0.0); var acc3_3 = vec4<f32>(0.0);
    var acc4_0 = vec4<f32>(0.0); var acc4_1 = vec4<f32>(0.0); var acc4_2 = vec4<f32>(0.0); var acc4_3 = vec4<f32>(0.0);
    var acc5_0 = vec4<f32>(0.0); var acc5_1 = vec4<f32>(0.0); var acc5_2 = vec4<f32>(0.0); var acc5_3 = vec4<f32>(0.0);
    var acc6_0 = vec4<f32>(0.0); var acc6_1 = vec4<f32>(0.0); var acc6_2 = vec4<f32>(0.0); var acc6_3 = vec4<f32>(0.0);
    var acc7_0 = vec4<f32>(0.0); var acc7_1 = vec4<f32>(0.0); var acc7_2 = vec4<f32>(0.0); var acc7_3 = vec4<f32>(0.0);
    var acc8_0 = vec4<f32>(0.0); var acc8_1 = vec4<f32>(0.0); var acc8_2 = vec4<f32>(0.0); var acc8_3 = vec4<f32>(0.0);
    var acc9_0 = vec4<f32>(0.0); var acc9_1 = vec4<f32>(0.0); var acc9_2 = vec4<f32>(0.0); var acc9_3 = vec4<f32>(0.0);
    var acc10_0 = vec4<f32>(0.0); var acc10_1 = vec4<f32>(0.0); var acc10_2 = vec4<f32>(0.0); var acc10_3 = vec4<f32>(0.0);
    var acc11_0 = vec4<f32>(0.0); var acc11_1 = vec4<f32>(0.0); var acc11_2 = vec4<f32>(0.0); var acc11_3 = vec4<f32>(0.0);
    var acc12_0 = vec4<f32>(0.0); var acc12_1 = vec4<f32>(0.0); var acc12_2 = vec4<f32>(0.0); var acc12_3 = vec4<f32>(0.0);
    var acc13_0 = vec4<f32>(0.0); var acc13_1 = vec4<f32>(0.0); var acc13_2 = vec4<f32>(0.0); var acc13_3 = vec4<f32>(0.0);
    var acc14_0 = vec4<f32>(0.0); var acc14_1 = vec4<f32>(0.0); var acc14_2 = vec4<f32>(0.0); var acc14_3 = vec4<f32>(0.0);
    var acc15_0 = vec4<f32>(0.0); var acc15_1 = vec4<f32>(0.0); var acc15_2 = vec4<f32>(0.0); var acc15_3 = vec4<f32>(0.0);
    let z = vec4<f32>(0.0);
    for (var co = 0u; co < p.cout; co++) {
        let gb = p.off_gy + (n * p.cout + co) * ohw;
        var dj = 0;                                 // (ky - py) / s, counted
        for (var ky = py; ky < p.kh; ky += s) {
            let oy = a_ - dj;
            dj++;
            let rok = oy >= 0 && oy < i32(p.oh);
            let rb = select(0u, (gb + u32(oy) * p.ow + b0) / 4u, rok);
            let q0 = select(z, gy4[rb], m0 & vec4<bool>(rok));
            let q1 = select(z, gy4[rb + 1u], m1 & vec4<bool>(rok));
            let q2 = select(z, gy4[rb + 2u], m2 & vec4<bool>(rok));
            let q3 = select(z, gy4[rb + 3u], m3 & vec4<bool>(rok));
            // Column b0 + c for c = -3 .. 15 (left of the block only as far as the taps reach).
            let cm1 = gat(gb, oy, i32(b0) - 1);
            let cm2 = gat(gb, oy, i32(b0) - 2);
            let cm3 = gat(gb, oy, i32(b0) - 3);
            // Window g_j = column b0 - t + j for tap t (shifted right by one column per tap).
            var g0 = q0.x; var g1 = q0.y; var g2 = q0.z; var g3 = q0.w; var g4 = q1.x; var g5 = q1.y; var g6 = q1.z; var g7 = q1.w; var g8 = q2.x; var g9 = q2.y; var g10 = q2.z; var g11 = q2.w; var g12 = q3.x; var g13 = q3.y; var g14 = q3.z; var g15 = q3.w;
            var l1 = cm1; var l2 = cm2;
            for (var kx = px; kx < p.kw; kx += s) {
                let wi = (wrow + (co * p.kh + p.kh - 1u - ky) * p.kw + p.kw - 1u - kx) * 4u;
                let w0 = wp[wi + 0u]; let w1 = wp[wi + 1u]; let w2 = wp[wi + 2u]; let w3 = wp[wi + 3u];
                acc0_0 += w0 * g0; acc0_1 += w1 * g0; acc0_2 += w2 * g0; acc0_3 += w3 * g0;
                acc1_0 += w0 * g1; acc1_1 += w1 * g1; acc1_2 += w2 * g1; acc1_3 += w3 * g1;
                acc2_0 += w0 * g2; acc2_1 += w1 * g2; acc2_2 += w2 * g2; acc2_3 += w3 * g2;
                acc3_0 += w0 * g3; acc3_1 += w1 * g3; acc3_2 += w2 * g3; acc3_3 += w3 * g3;
                acc4_0 += w0 * g4; acc4_1 += w1 * g4; acc4_2 += w2 * g4; acc4_3 += w3 * g4;
                acc5_0 += w0 * g5; acc5_1 += w1 * g5; acc5_2 += w2 * g5; acc5_3 += w3 * g5;
                acc6_0 += w0 * g6; acc6_1 += w1 * g6; acc6_2 += w2 * g6; acc6_3 += w3 * g6;
                acc7_0 += w0 * g7; acc7_1 += w1 * g7; acc7_2 += w2 * g7; acc7_3 += w3 * g7;
                acc8_0 += w0 * g8; acc8_1 += w1 * g8; acc8_2 += w2 * g8; acc8_3 += w3 * g8;
                acc9_0 += w0 * g9; acc9_1 += w1 * g9; acc9_2 += w2 * g9; acc9_3 += w3 * g9;
                acc10_0 += w0 * g10; acc10_1 += w1 * g10; acc10_2 += w2 * g10; acc10_3 += w3 * g10;
                acc11_0 += w0 * g11; acc11_1 += w1 * g11; acc11_2 += w2 * g11; acc11_3 += w3 * g11;
                acc12_0 += w0 * g12; acc12_1 += w1 * g12; acc12_2 += w2 * g12; acc12_3 += w3 * g12;
                acc13_0 += w0 * g13; acc13_1 += w1 * g13; acc13_2 += w2 * g13; acc13_3 += w3 * g13;
                acc14_0 += w0 * g14; acc14_1 += w1 * g14; acc14_2 += w2 * g14; acc14_3 += w3 * g14;
                acc15_0 += w0 * g15; acc15_1 += w1 * g15; acc15_2 += w2 * g15; acc15_3 += w3 * g15;
                g15 = g14; g14 = g13; g13 = g12; g12 = g11; g11 = g10; g10 = g9; g9 = g8; g8 = g7; g7 = g6; g6 = g5; g5 = g4; g4 = g3; g3 = g2; g2 = g1; g1 = g0; g0 = l1; l1 = l2; l2 = cm3;
            }
        }
    }
    if (!ok) { return; }
    let iy = a_ * i32(s) + i32(py) - i32(p.pad);
    if (iy < 0 || iy >= i32(p.h)) { return; }
    // Stores written out (constant register indices: a dynamically indexed accumulator array would be spilled
    // to memory and gathered per element).
    let ix0 = i32(b0 * s + px) - i32(p.pad);
    let x0 = ix0 + 0 * i32(s); let k0 = x0 >= 0 && x0 < i32(p.w);
    let x1 = ix0 + 1 * i32(s); let k1 = x1 >= 0 && x1 < i32(p.w);
    let x2 = ix0 + 2 * i32(s); let k2 = x2 >= 0 && x2 < i32(p.w);
    let x3 = ix0 + 3 * i32(s); let k3 = x3 >= 0 && x3 < i32(p.w);
    let x4 = ix0 + 4 * i32(s); let k4 = x4 >= 0 && x4 < i32(p.w);
    let x5 = ix0 + 5 * i32(s); let k5 = x5 >= 0 && x5 < i32(p.w);
    let x6 = ix0 + 6 * i32(s); let k6 = x6 >= 0 && x6 < i32(p.w);
    let x7 = ix0 + 7 * i32(s); let k7 = x7 >= 0 && x7 < i32(p.w);
    let x8 = ix0 + 8 * i32(s); let k8 = x8 >= 0 && x8 < i32(p.w);
    let x9 = ix0 + 9 * i32(s); let k9 = x9 >= 0 && x9 < i32(p.w);
    let x10 = ix0 + 10 * i32(s); let k10 = x10 >= 0 && x10 < i32(p.w);
    let x11 = ix0 + 11 * i32(s); let k11 = x11 >= 0 && x11 < i32(p.w);
    let x12 = ix0 + 12 * i32(s); let k12 = x12 >= 0 && x12 < i32(p.w);
    let x13 = ix0 + 13 * i32(s); let k13 = x13 >= 0 && x13 < i32(p.w);
    let x14 = ix0 + 14 * i32(s); let k14 = x14 >= 0 && x14 < i32(p.w);
    let x15 = ix0 + 15 * i32(s); let k15 = x15 >= 0 && x15 < i32(p.w);
    if (cblk * 16u + 0u < p.cin) {
        let row = p.off_out + ((n * p.cin + cblk * 16u + 0u) * p.h + u32(iy)) * p.w;
        if (k0) { out[row + u32(x0)] = acc0_0.x; }
        if (k1) { out[row + u32(x1)] = acc1_0.x; }
        if (k2) { out[row + u32(x2)] = acc2_0.x; }
        if (k3) { out[row + u32(x3)] = acc3_0.x; }
        if (k4) { out[row + u32(x4)] = acc4_0.x; }
        if (k5) { out[row + u32(x5)] = acc5_0.x; }
        if (k6) { out[row + u32(x6)] = acc6_0.x; }
        if (k7) { out[row + u32(x7)] = acc7_0.x; }
        if (k8) { out[row + u32(x8)] = acc8_0.x; }
        if (k9) { out[row + u32(x9)] = acc9_0.x; }
        if (k10) { out[row + u32(x10)] = acc10_0.x; }
        if (k11) { out[row + u32(x11)] = acc11_0.x; }
        if (k12) { out[row + u32(x12)] = acc12_0.x; }
        if (k13) { out[row + u32(x13)] = acc13_0.x; }
        if (k14) { out[row + u32(x14)] = acc14_0.x; }
        if (k15) { out[row + u32(x15)] = acc15_0.x; }
    }
    if (cblk * 16u + 1u < p.cin) {
        let row = p.off_out + ((n * p.cin + cblk * 16u + 1u) * p.h + u32(iy)) * p.w;
        if (k0) { out[row + u32(x0)] = acc0_0.y; }
        if (k1) { out[row + u32(x1)] = acc1_0.y; }
        if (k2) { out[row + u32(x2)] = acc2_0.y; }
        if (k3) { out[row + u32(x3)] = acc3_0.y; }
        if (k4) { out[row + u32(x4)] = acc4_0.y; }
        if (k5) { out[row + u32(x5)] = acc5_0.y; }
        if (k6) { out[row + u32(x6)] = acc6_0.y; }
        if (k7) { out[row + u32(x7)] = acc7_0.y; }
        if (k8) { out[row + u32(x8)] = acc8_0.y; }
        if (k9) { out[row + u32(x9)] = acc9_0.y; }
        if (k10) { out[row + u32(x10)] = acc10_0.y; }
        if (k11) { out[row + u32(x11)] = acc11_0.y; }
        if (k12) { out[row + u32(x12)] = acc12_0.y; }
        if (k13) { out[row + u32(x13)] = acc13_0.y; }
        if (k14) { out[row + u32(x14)] = acc14_0.y; }
        if (k15) { out[row + u32(x15)] = acc15_0.y; }
    }
    if (cblk * 16u + 2u < p.cin) {
        let row = p.off_out + ((n * p.cin + cblk * 16u + 2u) * p.h + u32(iy)) * p.w;
        if (k0) { out[row + u32(x0)] = acc0_0.z; }
        if (k1) { out[row + u32(x1)] = acc1_0.z; }
        if (k2) { out[row + u32(x2)] = acc2_0.z; }
        if (k3) { out[row + u32(x3)] = acc3_0.z; }
        if (k4) { out[row + u32(x4)] = acc4_0.z; }
        if (k5) { out[row + u32(x5)] = acc5_0.z; }
        if (k6) { out[row + u32(x6)] = acc6_0.z; }
        if (k7) { out[row + u32(x7)] = acc7_0.z; }
        if (k8) { out[row + u32(x8)] = acc8_0.z; }
        if (k9) { out[row + u32(x9)] = acc9_0.z; }
        if (k10) { out[row + u32(x10)] = acc10_0.z; }
        if (k11) { out[row + u32(x11)] = acc11_0.z; }
        if (k12) { out[row + u32(x12)] = acc12_0.z; }
        if (k13) { out[row + u32(x13)] = acc13_0.z; }
        if (k14) { out[row + u32(x14)] = acc14_0.z; }
        if (k15) { out[row + u32(x15)] = acc15_0.z; }
    }
    if (cblk * 16u + 3u < p.cin) {
        let row = p.off_out + ((n * p.cin + cblk * 16u + 3u) * p.h + u32(iy)) * p.w;
        if (k0) { out[row + u32(x0)] = acc0_0.w; }
        if (k1) { out[row + u32(x1)] = acc1_0.w; }
        if (k2) { out[row + u32(x2)] = acc2_0.w; }
        if (k3) { out[row + u32(x3)] = acc3_0.w; }
        if (k4) { out[row + u32(x4)] = acc4_0.w; }
        if (k5) { out[row + u32(x5)] = acc5_0.w; }
        if (k6) { out[row + u32(x6)] = acc6_0.w; }
        if (k7) { out[row + u32(x7)] = acc7_0.w; }
        if (k8) { out[row + u32(x8)] = acc8_0.w; }
        if (k9) { out[row + u32(x9)] = acc9_0.w; }
        if (k10) { out[row + u32(x10)] = acc10_0.w; }
        if (k11) { out[row + u32(x11)] = acc11_0.w; }
        if (k12) { out[row + u32(x12)] = acc12_0.w; }
        if (k13) { out[row + u32(x13)] = acc13_0.w; }
        if (k14) { out[row + u32(x14)] = acc14_0.w; }
        if (k15) { out[row + u32(x15)] = acc15_0.w; }
    }
    if (cblk * 16u + 4u < p.cin) {
        let row = p.off_out + ((n * p.cin + cblk * 16u + 4u) * p.h + u32(iy)) * p.w;
        if (k0) { out[row + u32(x0)] = acc0_1.x; }
        if (k1) { out[row + u32(x1)] = acc1_1.x; }
        if (k2) { out[row + u32(x2)] = acc2_1.x; }
        if (k3) { out[row + u32(x3)] = acc3_1.x; }
        if (k4) { out[row + u32(x4)] = acc4_1.x; }
        if (k5) { out[row + u32(x5)] = acc5_1.x; }
        if (k6) { out[row + u32(x6)] = acc6_1.x; }
        if (k7) { out[row + u32(x7)] = acc7_1.x; }
        if (k8) { out[row + u32(x8)] = acc8_1.x; }
        if (k9) { out[row + u32(x9)] = acc9_1.x; }
        if (k10) { out[row + u32(x10)] = acc10_1.x; }
        if (k11) { out[row + u32(x11)] = acc11_1.x; }
        if (k12) { out[row + u32(x12)] = acc12_1.x; }
        if (k13) { out[row + u32(x13)] = acc13_1.x; }
        if (k14) { out[row + u32(x14)] = acc14_1.x; }
        if (k15) { out[row + u32(x15)] = acc15_1.x; }
    }
    if (cblk * 16u + 5u < p.cin) {
        let row = p.off_out + ((n * p.cin + cblk * 16u + 5u) * p.h + u32(iy)) * p.w;
        if (k0) { out[row + u32(x0)] = acc0_1.y; }
        if (k1) { out[row + u32(x1)] = acc1_1.y; }
        if (k2) { out[row + u32(x2)] = acc2_1.y; }
        if (k3) { out[row + u32(x3)] = acc3_1.y; }
        if (k4) { out[row + u32(x4)] = acc4_1.y; }
        if (k5) { out[row + u32(x5)] = acc5_1.y; }
        if (k6) { out[row + u32(x6)] = acc6_1.y; }
        if (k7) { out[row + u32(x7)] = acc7_1.y; }
        if (k8) { out[row + u32(x8)] = acc8_1.y; }
        if (k9) { out[row + u32(x9)] = acc9_1.y; }
        if (k10) { out[row + u32(x10)] = acc10_1.y; }
        if (k11) { out[row + u32(x11)] = acc11_1.y; }
        if (k12) { out[row + u32(x12)] = acc12_1.y; }
        if (k13) { out[row + u32(x13)] = acc13_1.y; }
        if (k14) { out[row + u32(x14)] = acc14_1.y; }
        if (k15) { out[row + u32(x15)] = acc15_1.y; }
    }
    if (cblk * 16u + 6u < p.cin) {
        let row = p.off_out + ((n * p.cin + cblk * 16u + 6u) * p.h + u32(iy)) * p.w;
        if (k0) { out[row + u32(x0)] = acc0_1.z; }
        if (k1) { out[row + u32(x1)] = acc1_1.z; }
        if (k2) { out[row + u32(x2)] = acc2_1.z; }
        if (k3) { out[row + u32(x3)] = acc3_1.z; }
        if (k4) { out[row + u32(x4)] = acc4_1.z; }
        if (k5) { out[row + u32(x5)] = acc5_1.z; }
        if (k6) { out[row + u32(x6)] = acc6_1.z; }
        if (k7) { out[row + u32(x7)] = acc7_1.z; }
        if (k8) { out[row + u32(x8)] = acc8_1.z; }
        if (k9) { out[row + u32(x9)] = acc9_1.z; }
        if (k10) { out[row + u32(x10)] = acc10_1.z; }
        if (k11) { out[row + u32(x11)] = acc11_1.z; }
        if (k12) { out[row + u32(x12)] = acc12_1.z; }
        if (k13) { out[row + u32(x13)] = acc13_1.z; }
        if (k14) { out[row + u32(x14)] = acc14_1.z; }
        if (k15) { out[row + u32(x15)] = acc15_1.z; }
    }
    if (cblk * 16u + 7u < p.cin) {
        let row = p.off_out + ((n * p.cin + cblk * 16u + 7u) * p.h + u32(iy)) * p.w;
        if (k0) { out[row + u32(x0)] = acc0_1.w; }
        if (k1) { out[row + u32(x1)] = acc1_1.w; }
        if (k2) { out[row + u32(x2)] = acc2_1.w; }
        if (k3) { out[row + u32(x3)] = acc3_1.w; }
        if (k4) { out[row + u32(x4)] = acc4_1.w; }
        if (k5) { out[row + u32(x5)] = acc5_1.w; }
        if (k6) { out[row + u32(x6)] = acc6_1.w; }
        if (k7) { out[row + u32(x7)] = acc7_1.w; }
        if (k8) { out[row + u32(x8)] = acc8_1.w; }
        if (k9) { out[row + u32(x9)] = acc9_1.w; }
        if (k10) { out[row + u32(x10)] = acc10_1.w; }
        if (k11) { out[row + u32(x11)] = acc11_1.w; }
        if (k12) { out[row + u32(x12)] = acc12_1.w; }
        if (k13) { out[row + u32(x13)] = acc13_1.w; }
        if (k14) { out[row + u32(x14)] = acc14_1.w; }
        if (k15) { out[row + u32(x15)] = acc15_1.w; }
    }
    if (cblk * 16u + 8u < p.cin) {
        let row = p.off_out + ((n * p.cin + cblk * 16u + 8u) * p.h + u32(iy)) * p.w;
        if (k0) { out[row + u32(x0)] = acc0_2.x; }
        if (k1) { out[row + u32(x1)] = acc1_2.x; }
        if (k2) { out[row + u32(x2)] = acc2_2.x; }
        if (k3) { out[row + u32(x3)] = acc3_2.x; }
        if (k4) { out[row + u32(x4)] = acc4_2.x; }
        if (k5) { out[row + u32(x5)] = acc5_2.x; }
        if (k6) { out[row + u32(x6)] = acc6_2.x; }
        if (k7) { out[row + u32(x7)] = acc7_2.x; }
        if (k8) { out[row + u32(x8)] = acc8_2.x; }
        if (k9) { out[row + u32(x9)] = acc9_2.x; }
        if (k10) { out[row + u32(x10)] = acc10_2.x; }
        if (k11) { out[row + u32(x11)] = acc11_2.x; }
        if (k12) { out[row + u32(x12)] = acc12_2.x; }
        if (k13) { out[row + u32(x13)] = acc13_2.x; }
        if (k14) { out[row + u32(x14)] = acc14_2.x; }
        if (k15) { out[row + u32(x15)] = acc15_2.x; }
    }
    if (cblk * 16u + 9u < p.cin) {
        let row = p.off_out + ((n * p.cin + cblk * 16u + 9u) * p.h + u32(iy)) * p.w;
        if (k0) { out[row + u32(x0)] = acc0_2.y; }
        if (k1) { out[row + u32(x1)] = acc1_2.y; }
        if (k2) { out[row + u32(x2)] = acc2_2.y; }
        if (k3) { out[row + u32(x3)] = acc3_2.y; }
        if (k4) { out[row + u32(x4)] = acc4_2.y; }
        if (k5) { out[row + u32(x5)] = acc5_2.y; }
        if (k6) { out[row + u32(x6)] = acc6_2.y; }
        if (k7) { out[row + u32(x7)] = acc7_2.y; }
        if (k8) { out[row + u32(x8)] = acc8_2.y; }
        if (k9) { out[row + u32(x9)] = acc9_2.y; }
        if (k10) { out[row + u32(x10)] = acc10_2.y; }
        if (k11) { out[row + u32(x11)] = acc11_2.y; }
        if (k12) { out[row + u32(x12)] = acc12_2.y; }
        if (k13) { out[row + u32(x13)] = acc13_2.y; }
        if (k14) { out[row + u32(x14)] = acc14_2.y; }
        if (k15) { out[row + u32(x15)] = acc15_2.y; }
    }
    if (cblk * 16u + 10u < p.cin) {
        let row = p.off_out + ((n * p.cin + cblk * 16u + 10u) * p.h + u32(iy)) * p.w;
        if (k0) { out[row + u32(x0)] = acc0_2.z; }
        if (k1) { out[row + u32(x1)] = acc1_2.z; }
        if (k2) { out[row + u32(x2)] = acc2_2.z; }
        if (k3) { out[row + u32(x3)] = acc3_2.z; }
        if (k4) { out[row + u32(x4)] = acc4_2.z; }
        if (k5) { out[row + u32(x5)] = acc5_2.z; }
        if (k6) { out[row + u32(x6)] = acc6_2.z; }
        if (k7) { out[row + u32(x7)] = acc7_2.z; }
        if (k8) { out[row + u32(x8)] = acc8_2.z; }
        if (k9) { out[row + u32(x9)] = acc9_2.z; }
        if (k10) { out[row + u32(x10)] = acc10_2.z; }
        if (k11) { out[row + u32(x11)] = acc11_2.z; }
        if (k12) { out[row + u32(x12)] = acc12_2.z; }
        if (k13) { out[row + u32(x13)] = acc13_2.z; }
        if (k14) { out[row + u32(x14)] = acc14_2.z; }
        if (k15) { out[row + u32(x15)] = acc15_2.z; }
    }
    if (cblk * 16u + 11u < p.cin) {
        let row = p.off_out + ((n * p.cin + cblk * 16u + 11u) * p.h + u32(iy)) * p.w;
        if (k0) { out[row + u32(x0)] = acc0_2.w; }
        if (k1) { out[row + u32(x1)] = acc1_2.w; }
        if (k2) { out[row + u32(x2)] = acc2_2.w; }
        if (k3) { out[row + u32(x3)] = acc3_2.w; }
        if (k4) { out[row + u32(x4)] = acc4_2.w; }
        if (k5) { out[row + u32(x5)] = acc5_2.w; }
        if (k6) { out[row + u32(x6)] = acc6_2.w; }
        if (k7) { out[row + u32(x7)] = acc7_2.w; }
        if (k8) { out[row + u32(x8)] = acc8_2.w; }
        if (k9) { out[row + u32(x9)] = acc9_2.w; }
        if (k10) { out[row + u32(x10)] = acc10_2.w; }
        if (k11) { out[row + u32(x11)] = acc11_2.w; }
        if (k12) { out[row + u32(x12)] = acc12_2.w; }
        if (k13) { out[row + u32(x13)] = acc13_2.w; }
        if (k14) { out[row + u32(x14)] = acc14_2.w; }
        if (k15) { out[row + u32(x15)] = acc15_2.w; }
    }
    if (cblk * 16u + 12u < p.cin) {
        let row = p.off_out + ((n * p.cin + cblk * 16u + 12u) * p.h + u32(iy)) * p.w;
        if (k0) { out[row + u32(x0)] = acc0_3.x; }
        if (k1) { out[row + u32(x1)] = acc1_3.x; }
        if (k2) { out[row + u32(x2)] = acc2_3.x; }
        if (k3) { out[row + u32(x3)] = acc3_3.x; }
        if (k4) { out[row + u32(x4)] = acc4_3.x; }
        if (k5) { out[row + u32(x5)] = acc5_3.x; }
        if (k6) { out[row + u32(x6)] = acc6_3.x; }
        if (k7) { out[row + u32(x7)] = acc7_3.x; }
        if (k8) { out[row + u32(x8)] = acc8_3.x; }
        if (k9) { out[row + u32(x9)] = acc9_3.x; }
        if (k10) { out[row + u32(x10)] = acc10_3.x; }
        if (k11) { out[row + u32(x11)] = acc11_3.x; }
        if (k12) { out[row + u32(x12)] = acc12_3.x; }
        if (k13) { out[row + u32(x13)] = acc13_3.x; }
        if (k14) { out[row + u32(x14)] = acc14_3.x; }
        if (k15) { out[row + u32(x15)] = acc15_3.x; }
    }
    if (cblk * 16u + 13u < p.cin) {
        let row = p.off_out + ((n * p.cin + cblk * 16u + 13u) * p.h + u32(iy)) * p.w;
        if (k0) { out[row + u32(x0)] = acc0_3.y; }
        if (k1) { out[row + u32(x1)] = acc1_3.y; }
        if (k2) { out[row + u32(x2)] = acc2_3.y; }
        if (k3) { out[row + u32(x3)] = acc3_3.y; }
        if (k4) { out[row + u32(x4)] = acc4_3.y; }
        if (k5) { out[row + u32(x5)] = acc5_3.y; }
        if (k6) { out[row + u32(x6)] = acc6_3.y; }
        if (k7) { out[row + u32(x7)] = acc7_3.y; }
        if (k8) { out[row + u32(x8)] = acc8_3.y; }
        if (k9) { out[row + u32(x9)] = acc9_3.y; }
        if (k10) { out[row + u32(x10)] = acc10_3.y; }
        if (k11) { out[row + u32(x11)] = acc11_3.y; }
        if (k12) { out[row + u32(x12)] = acc12_3.y; }
        if (k13) { out[row + u32(x13)] = acc13_3.y; }
        if (k14) { out[row + u32(x14)] = acc14_3.y; }
        if (k15) { out[row + u32(x15)] = acc15_3.y; }
    }
    if (cblk * 16u + 14u < p.cin) {
        let row = p.off_out + ((n * p.cin + cblk * 16u + 14u) * p.h + u32(iy)) * p.w;
        if (k0) { out[row + u32(x0)] = acc0_3.z; }
        if (k1) { out[row + u32(x1)] = acc1_3.z; }
        if (k2) { out[row + u32(x2)] = acc2_3.z; }
        if (k3) { out[row + u32(x3)] = acc3_3.z; }
        if (k4) { out[row + u32(x4)] = acc4_3.z; }
        if (k5) { out[row + u32(x5)] = acc5_3.z; }
        if (k6) { out[row + u32(x6)] = acc6_3.z; }
        if (k7) { out[row + u32(x7)] = acc7_3.z; }
        if (k8) { out[row + u32(x8)] = acc8_3.z; }
        if (k9) { out[row + u32(x9)] = acc9_3.z; }
        if (k10) { out[row + u32(x10)] = acc10_3.z; }
        if (k11) { out[row + u32(x11)] = acc11_3.z; }
        if (k12) { out[row + u32(x12)] = acc12_3.z; }
        if (k13) { out[row + u32(x13)] = acc13_3.z; }
        if (k14) { out[row + u32(x14)] = acc14_3.z; }
        if (k15) { out[row + u32(x15)] = acc15_3.z; }
    }
    if (cblk * 16u + 15u < p.cin) {
        let row = p.off_out + ((n * p.cin + cblk * 16u + 15u) * p.h + u32(iy)) * p.w;
        if (k0) { out[row + u32(x0)] = acc0_3.w; }
        if (k1) { out[row + u32(x1)] = acc1_3.w; }
        if (k2) { out[row + u32(x2)] = acc2_3.w; }
        if (k3) { out[row + u32(x3)] = acc3_3.w; }
        if (k4) { out[row + u32(x4)] = acc4_3.w; }
        if (k5) { out[row + u32(x5)] = acc5_3.w; }
        if (k6) { out[row + u32(x6)] = acc6_3.w; }
        if (k7) { out[row + u32(x7)] = acc7_3.w; }
        if (k8) { out[row + u32(x8)] = acc8_3.w; }
        if (k9) { out[row + u32(x9)] = acc9_3.w; }
        if (k10) { out[row + u32(x10)] = acc10_3.w; }
        if (k11) { out[row + u32(x11)] = acc11_3.w; }
        if (k12) { out[row + u32(x12)] = acc12_3.w; }
        if (k13) { out[row + u32(x13)] = acc13_3.w; }
        if (k14) { out[row + u32(x14)] = acc14_3.w; }
        if (k15) { out[row + u32(x15)] = acc15_3.w; }
    }
}
// Weight gradient, any kernel, pass 1: invocation owns 4 output channels x 8 consecutive k = (ci, ky, kx) and sums
// the positions of tile wid.y = output rows [t*R, (t+1)*R) of the slice's
// flattened (n, oy), R = p.tile_len. Per position: 4 gy loads + 8 x loads feed 32 multiply-adds. Writes
// part[t, co*K + k]. Loop count R*OW + R + 8.
@compute @workgroup_size(64)
fn conv2d_backward_weight_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let kk = p.cin * p.kh * p.kw;
    // Lanes enumerate (channel block, k block), k block fastest; lanes past the last block redo block 0 unstored.
    let nkb = (kk + 7u) / 8u;
    let lane = wid.x * WG + lid;
    let live = lane < nkb * ((p.cout + 3u) / 4u);
    let lc = select(0u, lane, live);
    let k0 = (lc % nkb) * 8u;
    let co0 = (lc / nkb) * 4u;
    let ohw = p.oh * p.ow;
    let hw = p.h * p.w;
    let cm = vec4<f32>(vec4<bool>(co0 < p.cout, co0 + 1u < p.cout, co0 + 2u < p.cout, co0 + 3u < p.cout));
    let c1 = min(co0 + 1u, p.cout - 1u) - co0;
    let c2 = min(co0 + 2u, p.cout - 1u) - co0;
    let c3 = min(co0 + 3u, p.cout - 1u) - co0;
    // Per k of the block: plane offset ci*H*W and tap (ky - p, kx - p); k past K reads tap 0 and is not stored.
    var xo: array<u32, 8>;
    var ty: array<i32, 8>;
    var tx: array<i32, 8>;
    for (var j = 0u; j < 8u; j++) {
        let k = select(0u, k0 + j, k0 + j < kk);
        xo[j] = (k / (p.kh * p.kw)) * hw;
        ty[j] = i32((k / p.kw) % p.kh) - i32(p.pad);
        tx[j] = i32(k % p.kw) - i32(p.pad);
    }
    var a = array<vec4<f32>, 8>();
    let r0 = wid.y * p.tile_len;
    let r1 = min(r0 + p.tile_len, p.n * p.oh);
    for (var r = r0; r < r1; r++) {
        let n = r / p.oh;
        let oy = r % p.oh;
        let gb = p.off_gy + ((n * p.cout + co0) * p.oh + oy) * p.ow;
        let xb = p.off_x + n * p.cin * hw;
        let iy = i32(oy * p.stride);
        for (var ox = 0u; ox < p.ow; ox++) {
            let g = cm * vec4<f32>(gy[gb + ox], gy[gb + c1 * ohw + ox], gy[gb + c2 * ohw + ox], gy[gb + c3 * ohw + ox]);
            let ix = i32(ox * p.stride);
            a[0] += g * xat(xb + xo[0], iy + ty[0], ix + tx[0]);
            a[1] += g * xat(xb + xo[1], iy + ty[1], ix + tx[1]);
            a[2] += g * xat(xb + xo[2], iy + ty[2], ix + tx[2]);
            a[3] += g * xat(xb + xo[3], iy + ty[3], ix + tx[3]);
            a[4] += g * xat(xb + xo[4], iy + ty[4], ix + tx[4]);
            a[5] += g * xat(xb + xo[5], iy + ty[5], ix + tx[5]);
            a[6] += g * xat(xb + xo[6], iy + ty[6], ix + tx[6]);
            a[7] += g * xat(xb + xo[7], iy + ty[7], ix + tx[7]);
        }
    }
    if (!live) { return; }
    let m0 = p.off_out + wid.y * p.m;
    for (var c = 0u; c < 4u; c++) {
        if (co0 + c >= p.cout) { return; }
        for (var j = 0u; j < 8u; j++) {
            if (k0 + j < kk) { out[m0 + (co0 + c) * kk + k0 + j] = a[j][c]; }
        }
    }
}
