// conv2d prelude: what the fast conv2d kernels share. It declares no entry point; src/ops/conv2d/mod.rs (SHADERS)
// compiles conv2d_pack.wgsl, conv2d_tiled.wgsl, conv2d_vec4.wgsl and conv2d_subgroup.wgsl each with this file in
// front. The math, the index conventions and the batch runs are those of conv2d.wgsl (read it first).
//
// Params is conv2d.wgsl's struct, copied: tests/ops/shaders.rs checks both copies against the Rust mirror field for field.
//
// Bindings (a kernel binds the ones it uses, by name; a vec4 view such as x4 is bound by its tensor's name, x):
//   0 p      Params (uniform)
//   1 x      [N, Cin, H, W] read   input of the forward and the weight gradient; gy when the stride-1 input
//                                  gradient runs as a forward (see conv2d_tiled.wgsl)
//   2 x4     x as vec4      read   (rows that are a multiple of 4 floats, runs bound 16-byte aligned)
//   3 wt     [Cout, Cin, KH, KW] read   the weights, read only by the packing kernels
//   4 bias   [Cout]         read   bias of the forward (bound to another buffer and never read without EPI_BIAS)
//   5 gy     [N, Cout, OH, OW] read
//   6 gy4    gy as vec4     read
//   7 wp     packed weights as vec4, [blocks, K, cw] (conv2d_pack.wgsl)
//   8 out    write: y, gx, the weight gradient's partial sums part[tile, m], or the packed weights
//   9 out4   out as vec4    write  (the packing kernels)
//  10 wt4    wt as vec4     read   (the packing kernels when Cin*KH*KW % 4 == 0)

struct Params {
    n: u32,         // images in this run
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
    epilogue: u32,  // forward only: EPI_BIAS adds b[co], EPI_RELU then takes max(y, 0)
    tiles: u32,     // weight gradient: tiles of this run
    tile_len: u32,  // weight gradient: output rows per tile; subgroup kernels: lanes per channel block
    npos: u32,      // n * oh * ow of this run
    m: u32,         // channels rounded up to whole blocks (forward, input gradient, packing); outputs of gw (weight)
    off_x: u32,     // element offsets of the run inside the bound ranges
    off_gy: u32,
    off_out: u32,
    cw: u32,        // packed weights: channels per block (8 or 16)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> wt: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read> gy: array<f32>;
@group(0) @binding(6) var<storage, read> gy4: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read> wp: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> out: array<f32>;
@group(0) @binding(9) var<storage, read_write> out4: array<vec4<f32>>;
@group(0) @binding(10) var<storage, read> wt4: array<vec4<f32>>;

const WG: u32 = 64u;
// The forward's epilogue bits (p.epilogue), as in conv2d.wgsl: the bias, then ReLU.
const EPI_BIAS: u32 = 1u;
const EPI_RELU: u32 = 2u;

// x[base + iy*W + ix], or 0 outside the image (the zero padding); `base` is the (n, ci) plane. A select on a clamped
// index, so no branch inside the kernels' loops depends on the invocation.
fn xat(base: u32, iy: i32, ix: i32) -> f32 {
    let ok = iy >= 0 && iy < i32(p.h) && ix >= 0 && ix < i32(p.w);
    return select(0.0, x[select(base, base + u32(iy) * p.w + u32(ix), ok)], ok);
}

// gy[base + oy*OW + ox], or 0 outside [0, OH) x [0, OW).
fn gat(base: u32, oy: i32, ox: i32) -> f32 {
    let ok = oy >= 0 && oy < i32(p.oh) && ox >= 0 && ox < i32(p.ow);
    return select(0.0, gy[select(base, base + u32(oy) * p.ow + u32(ox), ok)], ok);
}

// b[c .. c+3], or 0 without a bias (channels past Cout read a valid element and are never stored).
fn bias4(c: u32) -> vec4<f32> {
    let l = p.cout - 1u;
    let v = vec4<f32>(bias[min(c, l)], bias[min(c + 1u, l)], bias[min(c + 2u, l)], bias[min(c + 3u, l)]);
    return select(vec4<f32>(0.0), v, (p.epilogue & EPI_BIAS) != 0u);
}

// The forward's pixel block of invocation `lane` when each owns `pw` pixels of a row: image n, output row oy and
// first pixel ox0 of the run; ok = false for lanes past the last block (they compute on a clamped block, store nothing).
struct Block { n: u32, oy: u32, ox0: u32, ok: bool }
fn block_of(lane: u32, pw: u32) -> Block {
    let segs = (p.ow + pw - 1u) / pw;
    let r = lane / segs;
    let ok = r < p.n * p.oh;
    let rc = select(0u, r, ok);
    return Block(rc / p.oh, rc % p.oh, (lane % segs) * pw, ok);
}

// The stores of one output element's channels: out[o + c*stride] = channel c of the accumulators (component c % 4
// of vector c / 4), for c < count. Written out with constant indices: a register array indexed at run time is
// spilled to memory and gathered per element on llvmpipe.
fn put4(o: u32, stride: u32, count: u32, a: vec4<f32>) {
    if (count > 0u) { out[o] = a.x; }
    if (count > 1u) { out[o + stride] = a.y; }
    if (count > 2u) { out[o + 2u * stride] = a.z; }
    if (count > 3u) { out[o + 3u * stride] = a.w; }
}
fn put8(o: u32, stride: u32, count: u32, a0: vec4<f32>, a1: vec4<f32>) {
    put4(o, stride, count, a0);
    if (count > 4u) { put4(o + 4u * stride, stride, count - 4u, a1); }
}
fn put16(o: u32, stride: u32, count: u32, a0: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>, a3: vec4<f32>) {
    put8(o, stride, count, a0, a1);
    if (count > 8u) { put8(o + 8u * stride, stride, count - 8u, a2, a3); }
}

// Pixel j of forward block b, channels co0.. (8 or 16): y[n, co0 + c, oy, ox0 + j], inside the tensor.
// The values arrive with the bias added; with EPI_RELU they are stored as max(v, 0) (a select on a uniform: no
// divergent branch, and without the bit the values pass untouched).
fn epi4(v: vec4<f32>) -> vec4<f32> {
    return select(v, max(v, vec4<f32>(0.0)), (p.epilogue & EPI_RELU) != 0u);
}
fn put_px8(b: Block, j: u32, co0: u32, a0: vec4<f32>, a1: vec4<f32>) {
    if (!b.ok || b.ox0 + j >= p.ow) { return; }
    put8(p.off_out + ((b.n * p.cout + co0) * p.oh + b.oy) * p.ow + b.ox0 + j, p.oh * p.ow, p.cout - co0, epi4(a0), epi4(a1));
}
fn put_px16(b: Block, j: u32, co0: u32, a0: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>, a3: vec4<f32>) {
    if (!b.ok || b.ox0 + j >= p.ow) { return; }
    put16(p.off_out + ((b.n * p.cout + co0) * p.oh + b.oy) * p.ow + b.ox0 + j, p.oh * p.ow, p.cout - co0, epi4(a0), epi4(a1),
          epi4(a2), epi4(a3));
}

// Input column ix of an input-gradient row, channels ci0.. (8 or 16): gx[n, ci0 + c, iy, ix] = out[row + ix +
// c*H*W] where row is channel ci0's row iy, for ix inside the image.
fn put_gx8(row: u32, ix: i32, ci0: u32, a0: vec4<f32>, a1: vec4<f32>) {
    if (ix < 0 || ix >= i32(p.w)) { return; }
    put8(row + u32(ix), p.h * p.w, p.cin - ci0, a0, a1);
}
fn put_gx16(row: u32, ix: i32, ci0: u32, a0: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>, a3: vec4<f32>) {
    if (ix < 0 || ix >= i32(p.w)) { return; }
    put16(row + u32(ix), p.h * p.w, p.cin - ci0, a0, a1, a2, a3);
}
