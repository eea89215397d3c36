// add: elementwise sum of two tensors of the same shape.
//
//   forward:   y[i] = a[i] + b[i]
//   backward:  dL/da[i] = dL/dy[i],  dL/db[i] = dL/dy[i]   (identity: the tape passes dy through, no kernel)
//
// The same kernel sums gradient contributions where a tensor feeds several ops (U-Net skips, residuals).
//
// Thread mapping: one invocation per element; the grid may be folded into 2-D past 65,535 workgroups, so the linear
// index is rebuilt from (workgroup_id, num_workgroups).
//
// add_forward_vec4: one invocation per 4 consecutive elements, through array<vec4<f32>> views of the same buffers
// (bindings 4-6). On llvmpipe each storage access is a loop over the SIMD lanes with a per-lane bounds check, so a
// vec4 access moves 4 floats for about the cost of one. Used when n % 4 == 0 (buffers are bound whole, offset 0).
//
// Bindings: 0 Params (uniform) | 1 a (read) | 2 b (read) | 3 y (write) | 4 a4 (read) | 5 b4 (read) | 6 y4 (write)

struct Params {
    n: u32,     // number of elements
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> b4: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> y4: array<vec4<f32>>;

const WG: u32 = 256u;

@compute @workgroup_size(256)
fn add_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    if (i >= p.n) { return; }
    y[i] = a[i] + b[i];
}

@compute @workgroup_size(256)
fn add_forward_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
    let i4 = (wid.y * nwg.x + wid.x) * WG + lid;
    if (i4 >= p.n / 4u) { return; }
    y4[i4] = a4[i4] + b4[i4];
}
