// adam: one Adam optimizer step, in place, PyTorch semantics (torch.optim.Adam, no weight decay, no amsgrad).
//
//   m     <- b1 m + (1 - b1) g                 (written as PyTorch's lerp: m + (1 - b1) (g - m))
//   v     <- b2 v + (1 - b2) g^2
//   param <- param - step_size * m / (sqrt(v) / bc2_sqrt + eps)
//   with, for step t = 1, 2, ... (computed on the host in f64):
//     step_size = lr / (1 - b1^t)               (bias correction of m)
//     bc2_sqrt  = sqrt(1 - b2^t)                (bias correction of v, under the square root)
//   This is exactly p -= lr * mhat / (sqrt(vhat) + eps) with mhat = m/(1-b1^t), vhat = v/(1-b2^t), arranged as
//   PyTorch arranges it (eps is added to the bias-corrected sqrt(vhat)).
//
// No gradient: this is not a differentiable op. Each invocation owns one element of param, m and v.
//
// Thread mapping: one invocation per element, 1-D grid folded past 65,535 workgroups (2.36M-element conv weights
// need 9,216 groups; larger tensors fold).
//
// adam_step_vec4: the same arithmetic on 4 consecutive elements per invocation, through array<vec4<f32>> views of
// the same buffers. On llvmpipe each storage access is a loop over the SIMD lanes with a per-lane bounds check, so a
// vec4 access moves 4 floats for about the cost of one. Used when n % 4 == 0 (buffers bound whole).
//
// Buffers (launchers bind by name; a vec4 view `m4` is bound under the name of the tensor it views, `m`, so both
// entry points take the same list). Params is the uniform at binding 0; a view shares its tensor's binding number.
//   adam_step:       param [n] read_write | grad [n] read | m [n] read_write | v [n] read_write
//   adam_step_vec4:  param4 | grad4 | m4 | v4   [n/4], the views of param, grad, m, v

struct Params {
    n: u32,                 // number of elements
    step_size: f32,         // lr / (1 - beta1^t)
    bc2_sqrt: f32,          // sqrt(1 - beta2^t)
    eps: f32,               // added to sqrt(vhat)
    beta2: f32,             // decay of v
    one_minus_beta1: f32,   // 1 - beta1, rounded once on the host (m's lerp weight)
    one_minus_beta2: f32,   // 1 - beta2
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;
@group(0) @binding(1) var<storage, read_write> param4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> grad4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> m4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> v4: array<vec4<f32>>;

const WG: u32 = 256u;

@compute @workgroup_size(256)
fn adam_step(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    if (i >= p.n) { return; }
    let g = grad[i];
    let mi = m[i] + p.one_minus_beta1 * (g - m[i]);
    let vi = v[i] * p.beta2 + p.one_minus_beta2 * g * g;
    m[i] = mi;
    v[i] = vi;
    param[i] = param[i] - p.step_size * (mi / (sqrt(vi) / p.bc2_sqrt + p.eps));
}

@compute @workgroup_size(256)
fn adam_step_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
    let i4 = (wid.y * nwg.x + wid.x) * WG + lid;
    if (i4 >= p.n / 4u) { return; }
    let g = grad4[i4];
    let m0 = m4[i4];
    let mi = m0 + p.one_minus_beta1 * (g - m0);
    let vi = v4[i4] * p.beta2 + p.one_minus_beta2 * g * g;
    m4[i4] = mi;
    v4[i4] = vi;
    param4[i4] = param4[i4] - p.step_size * (mi / (sqrt(vi) / p.bc2_sqrt + vec4<f32>(p.eps)));
}
