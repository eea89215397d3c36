// channel_scale: multiply every channel plane by a per-(n, c) scale (the SE block's excitation, y = x * gate).
//
//   x: [N, C, H, W]   s: [N, C, 1, 1]   y: [N, C, H, W]
//   forward:          y[n, c, h, w]  = x[n, c, h, w] * s[n, c]
//   backward input:   dx[n, c, h, w] = gy[n, c, h, w] * s[n, c]
//   backward scale:   ds[n, c]       = sum_{h, w} gy[n, c, h, w] * x[n, c, h, w]
//
// The scale gradient is a reduction over a plane of up to 192 * 384 = 73,728 values, past llvmpipe's silent
// 65,535-iteration loop limit, so it runs in two passes like global_avg_pool:
//   channel_scale_backward_scale_partial  one invocation per (plane, tile): part[plane, t] = sum of gy * x on the tile
//   channel_scale_backward_scale          one invocation per plane: ds = sum over t of part[plane, t]
// Fixed summation order everywhere: bit-identical results from run to run, no atomics.
//
// forward and backward input are elementwise: one invocation per element.
//
// vec4 variants (entry points ending in _vec4), for H*W % 4 == 0 (a vec4 never straddles two planes) and ranges
// bound 16-byte aligned: the same formulas through array<vec4<f32>> views (x4, y4, gy4, dx4, x_saved4; a view is
// bound under the name of the tensor it views). On llvmpipe every storage access is a loop over the SIMD lanes, so
// moving 4 floats per access costs about what 1 did. forward/backward input: one invocation per vec4; the partial
// sums walk their tile (tile % 4 == 0) a vec4 at a time and add the 4 components at the end.
//
// `plane0` is the first plane of this launch in the small [N, C] tensors (s, ds), which are always bound whole; the
// big tensors (x, y, gy, dx) are bound from this launch's first batch item (see src/ops/runs.rs).
//
// Buffers (launchers bind by name; Params is the uniform at binding 0, each entry point numbers its buffers from 1;
// the _vec4 twins bind the same names):
//   channel_scale_forward:                 x (read)       | s (read)       | y (write)
//   channel_scale_backward_input:          gy (read)      | s (read)       | dx (write)
//   channel_scale_backward_scale_partial:  gy (read)      | x_saved (read) | part (write)
//   channel_scale_backward_scale:          part_in (read) | ds (write)          part_in: the first pass's part

struct Params {
    planes: u32,  // N * C in this launch
    hw: u32,      // H * W
    tile: u32,    // values per partial sum
    tiles: u32,   // ceil(hw / tile)
    plane0: u32,  // first plane of this launch within s / ds
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// channel_scale_forward (x, s, y); channel_scale_backward_input (gy, s, dx)
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> s: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(1) var<storage, read> gy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

// channel_scale_backward_scale_partial (gy, x_saved, part)
@group(0) @binding(2) var<storage, read> x_saved: array<f32>;
@group(0) @binding(3) var<storage, read_write> part: array<f32>;

// vec4 views of x, y, gy, dx, x_saved (the _vec4 entry points)
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> y4: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> gy4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> dx4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> x_saved4: array<vec4<f32>>;

// channel_scale_backward_scale (part_in, ds)
@group(0) @binding(1) var<storage, read> part_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> ds: array<f32>;

const WG: u32 = 256u;

@compute @workgroup_size(256)
fn channel_scale_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                         @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    if (i >= p.planes * p.hw) { return; }
    y[i] = x[i] * s[p.plane0 + i / p.hw];
}

@compute @workgroup_size(256)
fn channel_scale_backward_input(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                                @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    if (i >= p.planes * p.hw) { return; }
    dx[i] = gy[i] * s[p.plane0 + i / p.hw];
}

@compute @workgroup_size(256)
fn channel_scale_forward_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                              @builtin(local_invocation_index) lid: u32) {
    let i4 = (wid.y * nwg.x + wid.x) * WG + lid;
    let hw4 = p.hw / 4u;
    if (i4 >= p.planes * hw4) { return; }
    y4[i4] = x4[i4] * s[p.plane0 + i4 / hw4];
}

@compute @workgroup_size(256)
fn channel_scale_backward_input_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                                     @builtin(local_invocation_index) lid: u32) {
    let i4 = (wid.y * nwg.x + wid.x) * WG + lid;
    let hw4 = p.hw / 4u;
    if (i4 >= p.planes * hw4) { return; }
    dx4[i4] = gy4[i4] * s[p.plane0 + i4 / hw4];
}

@compute @workgroup_size(256)
fn channel_scale_backward_scale_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                                        @builtin(local_invocation_index) lid: u32) {
    let j = (wid.y * nwg.x + wid.x) * WG + lid;
    if (j >= p.planes * p.tiles) { return; }
    let plane = j / p.tiles;
    let t = j % p.tiles;
    let start = plane * p.hw + t * p.tile;
    let end = plane * p.hw + min((t + 1u) * p.tile, p.hw);
    var acc = 0.0;
    for (var k = start; k < end; k++) {
        acc += gy[k] * x_saved[k];
    }
    part[j] = acc;
}

@compute @workgroup_size(256)
fn channel_scale_backward_scale_partial_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                                             @builtin(local_invocation_index) lid: u32) {
    let j = (wid.y * nwg.x + wid.x) * WG + lid;
    if (j >= p.planes * p.tiles) { return; }
    let plane = j / p.tiles;
    let t = j % p.tiles;
    let start = (plane * p.hw + t * p.tile) / 4u;
    let end = (plane * p.hw + min((t + 1u) * p.tile, p.hw)) / 4u;
    var acc = vec4<f32>(0.0);
    for (var k = start; k < end; k++) {
        acc += gy4[k] * x_saved4[k];
    }
    part[j] = (acc.x + acc.y) + (acc.z + acc.w);
}

@compute @workgroup_size(256)
fn channel_scale_backward_scale(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                                @builtin(local_invocation_index) lid: u32) {
    let plane = (wid.y * nwg.x + wid.x) * WG + lid;
    if (plane >= p.planes) { return; }
    var acc = 0.0;
    for (var t = 0u; t < p.tiles; t++) {
        acc += part_in[plane * p.tiles + t];
    }
    ds[p.plane0 + plane] = acc;
}
