// sigmoid: logistic function, elementwise, any shape (the U-Net's output activation and the SE gate).
//
//   forward:   y[i]  = 1 / (1 + exp(-x[i]))
//   backward:  dx[i] = gy[i] * y[i] * (1 - y[i])
//
// Stability: for x >= 0 we evaluate 1 / (1 + exp(-x)), for x < 0 the equal form e / (1 + e) with e = exp(x). Either
// way exp only sees a non-positive argument, so it never overflows to inf (exp(-x) for x = -1000 would), and the
// result for large |x| is the correctly rounded 0 or 1 limit.
//
// The backward reads the saved OUTPUT y (the derivative is a function of y alone), so x need not be kept.
//
// Thread mapping: one invocation per element; linear index rebuilt from the (possibly 2-D folded) grid.
//
// Buffers (launchers bind by name; Params is the uniform at binding 0, each entry point numbers its buffers from 1):
//   sigmoid_forward:   x (read)       | y (write)
//   sigmoid_backward:  y_saved (read) | gy (read) | dx (write)

struct Params {
    n: u32,     // number of elements in this launch
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// sigmoid_forward
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

// sigmoid_backward
@group(0) @binding(1) var<storage, read> y_saved: array<f32>;
@group(0) @binding(2) var<storage, read> gy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

const WG: u32 = 256u;

@compute @workgroup_size(256)
fn sigmoid_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    if (i >= p.n) { return; }
    let v = x[i];
    let e = exp(-abs(v));                   // in (0, 1]: never overflows
    let pos = 1.0 / (1.0 + e);              // sigmoid(|v|)
    y[i] = select(e / (1.0 + e), pos, v >= 0.0);
}

@compute @workgroup_size(256)
fn sigmoid_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    if (i >= p.n) { return; }
    let s = y_saved[i];
    dx[i] = gy[i] * s * (1.0 - s);
}
