// roofline: the two kernels `fluke bench` measures an adapter's attainable peaks with (no spec sheet needed).
//
//   roofline_fma:   8 independent vec4 chains per invocation, each  a = fma(a, M, C)  for p.iters steps (a multiple
//                   of 4; the loop body does 4), all in
//                   registers; then out[i] = the sum of every lane of every chain (so nothing is optimised away).
//                   FLOPs = n * iters * 8 chains * 4 lanes * 2.
//   roofline_copy:  y4[i] = x4[i], one vec4 per invocation. Bytes = n * 16 read + n * 16 written.
//
// The chains converge to the fixed point C / (1 - M) = 1 from any start in [0, 1], so values stay finite for any
// iteration count; the oracle (`ops::roofline::cpu`) runs the same recurrence in f64. Eight chains hide the FMA
// latency (each FMA depends on the previous one of its chain only). p.iters stays at a few thousand: llvmpipe stops
// any loop after 65,535 iterations.
//
// Bindings (launchers bind by name): p (Params), out (fma result), x, y (the copy's source and destination, read as
// vec4 views x4, y4).

struct Params {
    n: u32,      // invocations (fma) or vec4 elements (copy)
    iters: u32,  // fma steps per chain
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> y4: array<vec4<f32>>;

const WG: u32 = 256u;
const M: f32 = 0.9990234375; // 1 - 2^-10: exact in f32
const C: f32 = 0.0009765625; // 2^-10

@compute @workgroup_size(256)
fn roofline_fma(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    if (i >= p.n) { return; }
    // Start values in [0, 1), different per invocation and chain.
    let s = f32(i % 1024u) / 1024.0;
    var a0 = vec4<f32>(s, s * 0.5, s * 0.25, s * 0.125);
    var a1 = a0 + 0.01; var a2 = a0 + 0.02; var a3 = a0 + 0.03;
    var a4 = a0 + 0.04; var a5 = a0 + 0.05; var a6 = a0 + 0.06; var a7 = a0 + 0.07;
    let m = vec4<f32>(M);
    let c = vec4<f32>(C);
    // Four steps per loop iteration, so the loop's own bookkeeping (llvmpipe counts every iteration) stays small
    // beside the 32 vec4 FMAs.
    for (var k = 0u; k < p.iters; k += 4u) {
        a0 = fma(a0, m, c); a1 = fma(a1, m, c); a2 = fma(a2, m, c); a3 = fma(a3, m, c);
        a4 = fma(a4, m, c); a5 = fma(a5, m, c); a6 = fma(a6, m, c); a7 = fma(a7, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c); a2 = fma(a2, m, c); a3 = fma(a3, m, c);
        a4 = fma(a4, m, c); a5 = fma(a5, m, c); a6 = fma(a6, m, c); a7 = fma(a7, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c); a2 = fma(a2, m, c); a3 = fma(a3, m, c);
        a4 = fma(a4, m, c); a5 = fma(a5, m, c); a6 = fma(a6, m, c); a7 = fma(a7, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c); a2 = fma(a2, m, c); a3 = fma(a3, m, c);
        a4 = fma(a4, m, c); a5 = fma(a5, m, c); a6 = fma(a6, m, c); a7 = fma(a7, m, c);
    }
    let t = (a0 + a1) + (a2 + a3) + (a4 + a5) + (a6 + a7);
    out[i] = (t.x + t.y) + (t.z + t.w);
}

@compute @workgroup_size(256)
fn roofline_copy(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    if (i >= p.n) { return; }
    y4[i] = x4[i];
}
