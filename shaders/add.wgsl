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
// Bindings: 0 Params (uniform) | 1 a (read) | 2 b (read) | 3 y (write)

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

const WG: u32 = 256u;

@compute @workgroup_size(256)
fn add_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    if (i >= p.n) { return; }
    y[i] = a[i] + b[i];
}
