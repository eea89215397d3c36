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
    _pad0: u32,
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
