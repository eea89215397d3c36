// concat: join two NCHW tensors along channels (the U-Net decoder's [upsampled, skip]).
//
//   a: [N, Ca, H, W]   b: [N, Cb, H, W]   y: [N, Ca + Cb, H, W]
//   forward:   y[n, c, h, w] = a[n, c, h, w]         for c <  Ca
//                            = b[n, c - Ca, h, w]    for c >= Ca
//   backward:  ga = gy[:, :Ca],  gb = gy[:, Ca:]      (gy is split back; no arithmetic)
//
// Thread mapping: one invocation per element of y (forward) or gy (backward). In the backward each invocation writes
// the single element of ga or gb its gy element maps to, so every gradient element is written exactly once
// (gather form, no races). H and W only appear as their product hw: within a channel plane the copy is contiguous.
//
// vec4 variants (_vec4): one invocation per 4 consecutive elements of a plane, through array<vec4<f32>> views of the
// same buffers (on llvmpipe one vec4 storage access costs about what one f32 access does). They need hw % 4 == 0,
// so a vec4 never straddles two planes; the launcher falls back to the scalar kernels otherwise.
//
// Buffers (launchers bind by name; a vec4 view `a4` is bound under the name of the tensor it views, `a`, so a vec4
// entry point and its scalar twin take the same list):
//   concat_forward:        a (read)   | b (read)    | y (write)
//   concat_backward:       gy (read)  | ga (write)  | gb (write)
//   concat_forward_vec4:   a4 (read)  | b4 (read)   | y4 (write)      views of a, b, y
//   concat_backward_vec4:  gy4 (read) | ga4 (write) | gb4 (write)     views of gy, ga, gb
// Params is the uniform at binding 0. Each entry point numbers its own buffers from 1; a view shares its tensor's
// number (no entry point uses both).

struct Params {
    n: u32,     // batch items in this launch
    ca: u32,    // channels of a
    cb: u32,    // channels of b
    hw: u32,    // H * W
}

@group(0) @binding(0) var<uniform> p: Params;

// concat_forward
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

// concat_backward
@group(0) @binding(1) var<storage, read> gy: array<f32>;
@group(0) @binding(2) var<storage, read_write> ga: array<f32>;
@group(0) @binding(3) var<storage, read_write> gb: array<f32>;

// concat_forward_vec4
@group(0) @binding(1) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> y4: array<vec4<f32>>;

// concat_backward_vec4
@group(0) @binding(1) var<storage, read> gy4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> ga4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> gb4: array<vec4<f32>>;

const WG: u32 = 256u;

@compute @workgroup_size(256)
fn concat_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    let c_all = p.ca + p.cb;
    if (i >= p.n * c_all * p.hw) { return; }
    // i = (n * (Ca + Cb) + c) * hw + k
    let k = i % p.hw;
    let c = (i / p.hw) % c_all;
    let n = i / (p.hw * c_all);
    if (c < p.ca) {
        y[i] = a[(n * p.ca + c) * p.hw + k];
    } else {
        y[i] = b[(n * p.cb + (c - p.ca)) * p.hw + k];
    }
}

@compute @workgroup_size(256)
fn concat_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    let c_all = p.ca + p.cb;
    if (i >= p.n * c_all * p.hw) { return; }
    let k = i % p.hw;
    let c = (i / p.hw) % c_all;
    let n = i / (p.hw * c_all);
    if (c < p.ca) {
        ga[(n * p.ca + c) * p.hw + k] = gy[i];
    } else {
        gb[(n * p.cb + (c - p.ca)) * p.hw + k] = gy[i];
    }
}

// concat_forward on vec4s: i4 = (n * (Ca + Cb) + c) * hw4 + k4, hw4 = hw / 4.
@compute @workgroup_size(256)
fn concat_forward_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                       @builtin(local_invocation_index) lid: u32) {
    let i4 = (wid.y * nwg.x + wid.x) * WG + lid;
    let c_all = p.ca + p.cb;
    let hw4 = p.hw / 4u;
    if (i4 >= p.n * c_all * hw4) { return; }
    let k4 = i4 % hw4;
    let c = (i4 / hw4) % c_all;
    let n = i4 / (hw4 * c_all);
    if (c < p.ca) {
        y4[i4] = a4[(n * p.ca + c) * hw4 + k4];
    } else {
        y4[i4] = b4[(n * p.cb + (c - p.ca)) * hw4 + k4];
    }
}

// concat_backward on vec4s (same indexing as concat_forward_vec4).
@compute @workgroup_size(256)
fn concat_backward_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                        @builtin(local_invocation_index) lid: u32) {
    let i4 = (wid.y * nwg.x + wid.x) * WG + lid;
    let c_all = p.ca + p.cb;
    let hw4 = p.hw / 4u;
    if (i4 >= p.n * c_all * hw4) { return; }
    let k4 = i4 % hw4;
    let c = (i4 / hw4) % c_all;
    let n = i4 / (hw4 * c_all);
    if (c < p.ca) {
        ga4[(n * p.ca + c) * hw4 + k4] = gy4[i4];
    } else {
        gb4[(n * p.cb + (c - p.ca)) * hw4 + k4] = gy4[i4];
    }
}
