// global_avg_pool: mean over each channel plane (the SE block's squeeze).
//
//   x: [N, C, H, W]   y: [N, C, 1, 1]
//   forward:   y[n, c]        = (1 / HW) * sum_{h, w} x[n, c, h, w]
//   backward:  dx[n, c, h, w] = gy[n, c] / HW
//
// Why two passes: llvmpipe silently stops a shader loop after 65,535 iterations per invocation, and a plane can hold
// 192 * 384 = 73,728 values. So the sum is split into tiles of `tile` values (4,096 by default):
//   global_avg_pool_forward_partial  one invocation per (plane, tile): part[plane, t] = sum of that tile
//   global_avg_pool_forward          one invocation per plane: y = (sum over t of part[plane, t]) / HW
// No invocation loops more than max(tile, HW / tile) times. Every sum runs in a fixed order, so results are
// bit-identical from run to run (no atomics).
//
// The backward is elementwise: one invocation per element of dx.
//
// vec4 variants (entry points ending in _vec4), for H*W % 4 == 0 (a vec4 never straddles two planes) and ranges
// bound 16-byte aligned: the same sums through the views x4 and dx4 (bound under the names x and dx). On llvmpipe
// every storage access is a loop over the SIMD lanes, so 4 floats per access cost about what 1 did. The partial
// sums walk their tile (tile % 4 == 0) a vec4 at a time and add the 4 components at the end (another fixed order);
// the backward writes one vec4 per invocation.
//
// `plane0` is the first plane of this launch in the small [N, C] tensors (y, gy), which are always bound whole; the
// big tensors (x, dx) are bound from this launch's first batch item (see src/ops/runs.rs).
//
// Buffers (launchers bind by name; Params is the uniform at binding 0, each entry point numbers its buffers from 1):
//   global_avg_pool_forward_partial:  x (read)       | part (write)  [planes * tiles]
//   global_avg_pool_forward:          part_in (read) | y (write)     [N * C]          part_in: the first pass's part
//   global_avg_pool_backward:         gy (read)      | dx (write)    [planes * HW]

struct Params {
    planes: u32,  // N * C in this launch
    hw: u32,      // H * W
    tile: u32,    // values per partial sum
    tiles: u32,   // ceil(hw / tile)
    plane0: u32,  // first plane of this launch within y / gy
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// global_avg_pool_forward_partial
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> part: array<f32>;

// global_avg_pool_forward
@group(0) @binding(1) var<storage, read> part_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

// global_avg_pool_backward
@group(0) @binding(1) var<storage, read> gy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;

// vec4 views of x and dx (the _vec4 entry points)
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dx4: array<vec4<f32>>;

const WG: u32 = 256u;

@compute @workgroup_size(256)
fn global_avg_pool_forward_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                                   @builtin(local_invocation_index) lid: u32) {
    let j = (wid.y * nwg.x + wid.x) * WG + lid;
    if (j >= p.planes * p.tiles) { return; }
    let plane = j / p.tiles;
    let t = j % p.tiles;
    let start = plane * p.hw + t * p.tile;
    let end = plane * p.hw + min((t + 1u) * p.tile, p.hw);
    var s = 0.0;
    for (var k = start; k < end; k++) {
        s += x[k];
    }
    part[j] = s;
}

@compute @workgroup_size(256)
fn global_avg_pool_forward_partial_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                                        @builtin(local_invocation_index) lid: u32) {
    let j = (wid.y * nwg.x + wid.x) * WG + lid;
    if (j >= p.planes * p.tiles) { return; }
    let plane = j / p.tiles;
    let t = j % p.tiles;
    let start = (plane * p.hw + t * p.tile) / 4u;
    let end = (plane * p.hw + min((t + 1u) * p.tile, p.hw)) / 4u;
    var s = vec4<f32>(0.0);
    for (var k = start; k < end; k++) {
        s += x4[k];
    }
    part[j] = (s.x + s.y) + (s.z + s.w);
}

@compute @workgroup_size(256)
fn global_avg_pool_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                           @builtin(local_invocation_index) lid: u32) {
    let plane = (wid.y * nwg.x + wid.x) * WG + lid;
    if (plane >= p.planes) { return; }
    var s = 0.0;
    for (var t = 0u; t < p.tiles; t++) {
        s += part_in[plane * p.tiles + t];
    }
    y[p.plane0 + plane] = s / f32(p.hw);
}

@compute @workgroup_size(256)
fn global_avg_pool_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                            @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    if (i >= p.planes * p.hw) { return; }
    dx[i] = gy[p.plane0 + i / p.hw] / f32(p.hw);
}

@compute @workgroup_size(256)
fn global_avg_pool_backward_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                                 @builtin(local_invocation_index) lid: u32) {
    let i4 = (wid.y * nwg.x + wid.x) * WG + lid;
    let hw4 = p.hw / 4u;
    if (i4 >= p.planes * hw4) { return; }
    dx4[i4] = vec4<f32>(gy[p.plane0 + i4 / hw4] / f32(p.hw));
}
