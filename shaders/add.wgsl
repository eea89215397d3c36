// add: elementwise sum of two tensors of the same shape.
//
//   forward:   y[i] = a[i] + b[i]
//   backward:  dL/da[i] = dL/dy[i],  dL/db[i] = dL/dy[i]   (identity: the tape passes dy through, no kernel)
//
// The same kernel sums gradient contributions where a tensor feeds several ops (U-Net skips, residuals).
//
// Thread mapping: one invocation per element; the grid may be folded into 2-D past 65,535 workgroups, so the linear
// index is rebuilt from (workgroup_id, num_workgroups). A tensor larger than one storage binding is added in several
// launches over element ranges (src/ops/runs.rs); p.n counts the elements of this launch.
//
// add_forward_vec4: one invocation per 4 consecutive elements, through array<vec4<f32>> views of the same buffers.
// On llvmpipe each storage access is a loop over the SIMD lanes with a per-lane bounds check, so a vec4 access moves
// 4 floats for about the cost of one. Used when a launch's element count is a multiple of 4 and its ranges start
// 16-byte aligned.
//
// Buffers (launchers bind by name; a vec4 view `a4` is bound under the name of the tensor it views, `a`):
//   add_forward:       a (read) | b (read) | y (write)            [n]
//   add_forward_vec4:  a4 (read) | b4 (read) | y4 (write)         [n / 4], the views of a, b, y
// Params is the uniform at binding 0; each view shares its tensor's binding number (no entry point uses both).

struct Params {
    n: u32,     // number of elements in this launch
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(1) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> y4: array<vec4<f32>>;

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
