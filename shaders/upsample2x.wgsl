// upsample2x: nearest-neighbour 2x upsampling of an NCHW tensor (the U-Net decoder's UpSampling2D / interpolate).
//
//   x: [N, C, H, W]   y: [N, C, 2H, 2W]
//   forward:   y[n, c, i, j]  = x[n, c, i / 2, j / 2]                   (integer division)
//   backward:  dx[n, c, i, j] = gy[n, c, 2i, 2j]   + gy[n, c, 2i, 2j+1]
//                             + gy[n, c, 2i+1, 2j] + gy[n, c, 2i+1, 2j+1]
//   Each input pixel was copied into one 2x2 block, so its gradient is the sum of that block, always added in this
//   order (deterministic).
//
// Thread mapping: forward one invocation per output element, backward one per input element (gather form: each
// invocation reads its 2x2 block of gy and writes its own dx element). N and C only appear as planes = N * C.
//
// vec4 variants (_vec4), for W % 4 == 0, through array<vec4<f32>> views of the same buffers (on llvmpipe one vec4
// storage access costs about what one f32 access does). One invocation per 4 input pixels of a row:
//   forward:   reads x4 once, writes 2 vec4s in output row 2iy and the same 2 in row 2iy + 1 (16 outputs)
//   backward:  reads 2 vec4s of gy in row 2iy and 2 in row 2iy + 1, writes one vec4 of dx; each sum is added in the
//              scalar kernel's order, so the results are bit-identical.
// The launcher falls back to the scalar kernels when W % 4 != 0.
//
// Buffers (launchers bind by name; a vec4 view `x4` is bound under the name of the tensor it views, `x`, so a vec4
// entry point and its scalar twin take the same list):
//   upsample2x_forward:        x (read)   | y (write)
//   upsample2x_backward:       gy (read)  | dx (write)
//   upsample2x_forward_vec4:   x4 (read)  | y4 (write)      views of x, y
//   upsample2x_backward_vec4:  gy4 (read) | dx4 (write)     views of gy, dx
// Params is the uniform at binding 0. Each entry point numbers its own buffers from 1; a view shares its tensor's
// number (no entry point uses both).

struct Params {
    planes: u32, // N * C in this launch
    h: u32,      // input height H (the output is 2H)
    w: u32,      // input width W (the output is 2W)
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// upsample2x_forward
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

// upsample2x_backward
@group(0) @binding(1) var<storage, read> gy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;

// upsample2x_forward_vec4
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> y4: array<vec4<f32>>;

// upsample2x_backward_vec4
@group(0) @binding(1) var<storage, read> gy4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dx4: array<vec4<f32>>;

const WG: u32 = 256u;

@compute @workgroup_size(256)
fn upsample2x_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    let w2 = 2u * p.w;
    let plane_out = 4u * p.h * p.w;
    if (i >= p.planes * plane_out) { return; }
    // i = plane * (2H * 2W) + oy * 2W + ox
    let plane = i / plane_out;
    let r = i % plane_out;
    let oy = r / w2;
    let ox = r % w2;
    y[i] = x[plane * p.h * p.w + (oy / 2u) * p.w + ox / 2u];
}

@compute @workgroup_size(256)
fn upsample2x_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                       @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    let plane_in = p.h * p.w;
    if (i >= p.planes * plane_in) { return; }
    // i = plane * (H * W) + iy * W + ix; its block in gy starts at row 2iy, column 2ix of a 2W-wide plane.
    let plane = i / plane_in;
    let r = i % plane_in;
    let iy = r / p.w;
    let ix = r % p.w;
    let w2 = 2u * p.w;
    let top = plane * 4u * plane_in + (2u * iy) * w2 + 2u * ix;
    let bottom = top + w2;
    dx[i] = gy[top] + gy[top + 1u] + gy[bottom] + gy[bottom + 1u];
}

// i4 = plane * (H * W/4) + iy * W/4 + ix4: input pixels 4 ix4 .. 4 ix4 + 3 of row iy. In vec4 units an output row is
// W/2 long, and the block's top-left output vec4 is plane * H*W + iy * W + 2 ix4.
@compute @workgroup_size(256)
fn upsample2x_forward_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                           @builtin(local_invocation_index) lid: u32) {
    let i4 = (wid.y * nwg.x + wid.x) * WG + lid;
    let w4 = p.w / 4u;
    let plane_in4 = p.h * w4;
    if (i4 >= p.planes * plane_in4) { return; }
    let plane = i4 / plane_in4;
    let r = i4 % plane_in4;
    let iy = r / w4;
    let ix4 = r % w4;
    let v = x4[i4];
    let top = plane * p.h * p.w + iy * p.w + 2u * ix4;
    let bottom = top + p.w / 2u;
    let left = v.xxyy;
    let right = v.zzww;
    y4[top] = left;
    y4[top + 1u] = right;
    y4[bottom] = left;
    y4[bottom + 1u] = right;
}

// Same indexing as upsample2x_forward_vec4; dx4[i4] gathers the four 2x2 blocks of its input pixels.
@compute @workgroup_size(256)
fn upsample2x_backward_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                            @builtin(local_invocation_index) lid: u32) {
    let i4 = (wid.y * nwg.x + wid.x) * WG + lid;
    let w4 = p.w / 4u;
    let plane_in4 = p.h * w4;
    if (i4 >= p.planes * plane_in4) { return; }
    let plane = i4 / plane_in4;
    let r = i4 % plane_in4;
    let iy = r / w4;
    let ix4 = r % w4;
    let top = plane * p.h * p.w + iy * p.w + 2u * ix4;
    let bottom = top + p.w / 2u;
    let t0 = gy4[top];
    let t1 = gy4[top + 1u];
    let b0 = gy4[bottom];
    let b1 = gy4[bottom + 1u];
    // Per input pixel: top-left + top-right + bottom-left + bottom-right, as the scalar kernel adds them.
    dx4[i4] = vec4<f32>(t0.xz, t1.xz) + vec4<f32>(t0.yw, t1.yw) + vec4<f32>(b0.xz, b1.xz) + vec4<f32>(b0.yw, b1.yw);
}
