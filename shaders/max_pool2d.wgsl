// max_pool2d: 2-D max pooling over each channel plane, kernel k x k, stride s, padding p, PyTorch semantics.
//
//   x: [N, C, H, W]   y, argmax: [N, C, OH, OW]   (OH, OW from PyTorch's rule, computed on the host:
//                                                  OH = floor((H + 2p - k + (ceil_mode ? s - 1 : 0)) / s) + 1,
//                                                  minus 1 in ceil_mode when the last window would start at or past
//                                                  H + p, i.e. entirely in the right padding)
//   forward:   window (oy, ox) covers rows oy*s - p .. oy*s - p + k - 1 and the same for columns; the padding is
//              implicitly -inf, so only the in-image part of the window counts (it is never empty).
//              y[n, c, oy, ox]      = max of x over the window
//              argmax[n, c, oy, ox] = iy * W + ix of that maximum (index within the input plane), the FIRST maximum in
//                                     row-major window order, as PyTorch's CPU kernel (strict >; a NaN always wins)
//   backward:  dx[n, c, iy, ix] = sum of gy[n, c, oy, ox] over the windows (oy, ox) whose argmax is iy * W + ix
//
// argmax is stored as f32 (tensors are f32 only). An index below 2^24 is an exact f32 integer; the host asserts
// H * W < 2^24 (the U-Net's largest pooled plane is 96 * 192 = 18,432).
//
// Backward in gather form: one invocation per input element. The windows containing row iy are the oy with
// oy*s - p <= iy < oy*s - p + k, i.e. oy in [floor((iy + p - k) / s) + 1, floor((iy + p) / s)] (clipped to [0, OH)),
// at most ceil(k / s) of them; likewise for columns. The invocation checks each such window's argmax against its own
// index and sums the matching gy in row-major window order. No atomics, each dx element written once.
//
// Thread mapping: forward one invocation per output element, backward one per input element. Loops per invocation:
// k*k (forward), ceil(k/s)^2 (backward).
//
// Backward for k = 3, s = 2, p <= 1 (the U-Nets' stem pools), `max_pool2d_backward_k3s2`: one invocation per 2x2
// block of dx, rows 2a, 2a+1 and columns 2b, 2b+1. Element iy lies in the windows oy with 2*oy - p <= iy <= 2*oy - p + 2,
// so the block's two rows lie in windows a - 1 + p and a + p only (likewise columns): the block loads those four
// windows' argmax and gy once (8 loads for 4 elements, no division per element), and each element adds, in
// row-major window order, the gy of the windows whose argmax is its own index. A window not containing an element
// never names it, so this is the generic kernel's sum, term for term: the same bits.
//
// Buffers (launchers bind by name; Params is the uniform at binding 0, each entry point numbers its buffers from 1):
//   max_pool2d_forward:   x (read)  | y (write)            | argmax (write)
//   max_pool2d_backward:  gy (read) | argmax_saved (read)  | dx (write)      argmax_saved: the forward's argmax
//   max_pool2d_backward_k3s2: as max_pool2d_backward

struct Params {
    planes: u32,  // N * C in this launch
    h: u32,       // input height
    w: u32,       // input width
    oh: u32,      // output height
    ow: u32,      // output width
    k: u32,       // kernel size (square)
    s: u32,       // stride
    pad: u32,     // padding on each side
}

@group(0) @binding(0) var<uniform> p: Params;

// max_pool2d_forward
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> argmax: array<f32>;

// max_pool2d_backward
@group(0) @binding(1) var<storage, read> gy: array<f32>;
@group(0) @binding(2) var<storage, read> argmax_saved: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

const WG: u32 = 256u;

@compute @workgroup_size(256)
fn max_pool2d_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    let plane_out = p.oh * p.ow;
    if (i >= p.planes * plane_out) { return; }
    // i = plane * (OH * OW) + oy * OW + ox
    let plane = i / plane_out;
    let oy = (i % plane_out) / p.ow;
    let ox = i % p.ow;
    // The window's in-image part: rows [h0, h1), columns [w0, w1). Non-empty by the output-size rule.
    let hs = i32(oy * p.s) - i32(p.pad);
    let ws = i32(ox * p.s) - i32(p.pad);
    let h0 = u32(max(hs, 0));
    let w0 = u32(max(ws, 0));
    let h1 = u32(min(hs + i32(p.k), i32(p.h)));
    let w1 = u32(min(ws + i32(p.k), i32(p.w)));
    let base = plane * p.h * p.w;
    // Start from the window's first element: same result as PyTorch's start at -inf (the first element either
    // replaces -inf or is -inf itself, and PyTorch's initial index is that element too).
    var best = x[base + h0 * p.w + w0];
    var arg = h0 * p.w + w0;
    for (var iy = h0; iy < h1; iy++) {
        for (var ix = w0; ix < w1; ix++) {
            let v = x[base + iy * p.w + ix];
            // Strict > keeps the first maximum; v != v is NaN, which PyTorch lets win (and propagate).
            if (v > best || v != v) {
                best = v;
                arg = iy * p.w + ix;
            }
        }
    }
    y[i] = best;
    argmax[i] = f32(arg);
}

@compute @workgroup_size(256)
fn max_pool2d_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                       @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    let plane_in = p.h * p.w;
    if (i >= p.planes * plane_in) { return; }
    let plane = i / plane_in;
    let idx = i % plane_in;           // this element's index within its plane, as stored in argmax
    let iy = idx / p.w;
    let ix = idx % p.w;
    // Windows containing row iy: oy in [oy0, oy1]; containing column ix: ox in [ox0, ox1] (empty when lo > hi).
    let ry = iy + p.pad;
    let rx = ix + p.pad;
    let oy0 = select(0u, (ry - p.k) / p.s + 1u, ry >= p.k);
    let ox0 = select(0u, (rx - p.k) / p.s + 1u, rx >= p.k);
    let oy1 = min(ry / p.s, p.oh - 1u);
    let ox1 = min(rx / p.s, p.ow - 1u);
    let me = f32(idx);
    let base = plane * p.oh * p.ow;
    var acc = 0.0;
    for (var oy = oy0; oy <= oy1; oy++) {
        for (var ox = ox0; ox <= ox1; ox++) {
            let o = base + oy * p.ow + ox;
            if (argmax_saved[o] == me) {
                acc += gy[o];
            }
        }
    }
    dx[i] = acc;
}

// Window (oy, ox) of plane `base` (its first output element) as (argmax, gy); argmax -1 (no element's index) when the
// window is outside the output.
fn window(base: u32, oy: i32, ox: i32) -> vec2<f32> {
    if (oy < 0 || ox < 0 || oy >= i32(p.oh) || ox >= i32(p.ow)) { return vec2<f32>(-1.0, 0.0); }
    let o = base + u32(oy) * p.ow + u32(ox);
    return vec2<f32>(argmax_saved[o], gy[o]);
}

// dx of element (iy, ix) of the block from the four windows w00, w01, w10, w11 (row-major), written when inside the
// plane.
fn put_block_element(plane: u32, iy: u32, ix: u32, w00: vec2<f32>, w01: vec2<f32>, w10: vec2<f32>, w11: vec2<f32>) {
    if (iy >= p.h || ix >= p.w) { return; }
    let me = f32(iy * p.w + ix);
    var acc = 0.0;
    if (w00.x == me) { acc += w00.y; }
    if (w01.x == me) { acc += w01.y; }
    if (w10.x == me) { acc += w10.y; }
    if (w11.x == me) { acc += w11.y; }
    dx[plane * p.h * p.w + iy * p.w + ix] = acc;
}

@compute @workgroup_size(256)
fn max_pool2d_backward_k3s2(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                            @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    let bw = (p.w + 1u) / 2u;
    let per = ((p.h + 1u) / 2u) * bw;   // 2x2 blocks per plane (the last row / column of blocks may be half)
    if (i >= p.planes * per) { return; }
    let plane = i / per;
    let a = (i % per) / bw;
    let b = (i % per) % bw;
    let base = plane * p.oh * p.ow;
    let oy = i32(a) - 1 + i32(p.pad);
    let ox = i32(b) - 1 + i32(p.pad);
    let w00 = window(base, oy, ox);
    let w01 = window(base, oy, ox + 1);
    let w10 = window(base, oy + 1, ox);
    let w11 = window(base, oy + 1, ox + 1);
    put_block_element(plane, 2u * a, 2u * b, w00, w01, w10, w11);
    put_block_element(plane, 2u * a, 2u * b + 1u, w00, w01, w10, w11);
    put_block_element(plane, 2u * a + 1u, 2u * b, w00, w01, w10, w11);
    put_block_element(plane, 2u * a + 1u, 2u * b + 1u, w00, w01, w10, w11);
}
