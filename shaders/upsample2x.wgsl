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
// Bindings (each entry point numbers its own; unused ones are not bound):
//   upsample2x_forward:   0 Params | 1 x (read)  | 2 y (write)
//   upsample2x_backward:  0 Params | 1 gy (read) | 2 dx (write)

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
