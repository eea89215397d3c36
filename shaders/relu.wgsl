// relu: rectified linear unit, elementwise, any shape.
//
//   forward:   y[i]  = max(x[i], 0)
//   backward:  dx[i] = gy[i] * (y[i] > 0 ? 1 : 0)
//
// The backward reads the saved OUTPUT y rather than x: y > 0 exactly where x > 0, and y is usually kept alive by the
// next layer anyway, so saving it costs no memory. At x == 0 the gradient is 0, as in PyTorch. A NaN input passes
// through (x < 0 is false for NaN), so divergence stays visible instead of being clamped to 0.
//
// Thread mapping: one invocation per element. The grid may be folded into 2-D past 65,535 workgroups, so the linear
// index is rebuilt from (workgroup_id, num_workgroups).
//
// vec4 variants (_vec4): one invocation per 4 consecutive elements, through array<vec4<f32>> views of the same
// buffers. On llvmpipe each storage access is a loop over the SIMD lanes with a per-lane bounds check, so a vec4
// access moves 4 floats for about the cost of one. The launcher uses them when the element count of a run is a
// multiple of 4 and the bound range starts 16-byte aligned (p.n is still counted in elements).
//
// Buffers (launchers bind by name; a vec4 view `x4` is bound under the name of the tensor it views, `x`, so a vec4
// entry point and its scalar twin take the same list):
//   relu_forward:        x (read)        | y (write)
//   relu_backward:       y_saved (read)  | gy (read)  | dx (write)
//   relu_forward_vec4:   x4 (read)       | y4 (write)                    views of x, y
//   relu_backward_vec4:  y_saved4 (read) | gy4 (read) | dx4 (write)     views of y_saved, gy, dx
// Params is the uniform at binding 0. Each entry point numbers its own buffers from 1; a view shares its tensor's
// number (no entry point uses both).

struct Params {
    n: u32,     // number of elements in this launch
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// relu_forward
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

// relu_backward
@group(0) @binding(1) var<storage, read> y_saved: array<f32>;
@group(0) @binding(2) var<storage, read> gy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

// relu_forward_vec4
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> y4: array<vec4<f32>>;

// relu_backward_vec4
@group(0) @binding(1) var<storage, read> y_saved4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> gy4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> dx4: array<vec4<f32>>;

const WG: u32 = 256u;

@compute @workgroup_size(256)
fn relu_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    if (i >= p.n) { return; }
    let v = x[i];
    y[i] = select(v, 0.0, v < 0.0);
}

@compute @workgroup_size(256)
fn relu_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    if (i >= p.n) { return; }
    // The gradient flows only where the unit was active.
    dx[i] = select(0.0, gy[i], y_saved[i] > 0.0);
}

@compute @workgroup_size(256)
fn relu_forward_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
    let i4 = (wid.y * nwg.x + wid.x) * WG + lid;
    if (i4 >= p.n / 4u) { return; }
    let v = x4[i4];
    y4[i4] = select(v, vec4<f32>(0.0), v < vec4<f32>(0.0));
}

@compute @workgroup_size(256)
fn relu_backward_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) lid: u32) {
    let i4 = (wid.y * nwg.x + wid.x) * WG + lid;
    if (i4 >= p.n / 4u) { return; }
    dx4[i4] = select(vec4<f32>(0.0), gy4[i4], y_saved4[i4] > vec4<f32>(0.0));
}
