// conv2d_pack: the weights rearranged for the register-blocked kernels (compiled after conv2d_prelude.wgsl).
//
// Those kernels own a block of cw output channels (8 or 16) per invocation and stream through the reduction
// k = (ci, ky, kx) in order, needing at each k the weights of their cw channels. So the weights are transposed in
// blocks of cw channels, each block's K rows contiguous, and read as vec4 (one load = one tap's weights for 4
// channels); channels past the last are 0 (Cout rounded up to a whole block, p.m):
//
//   forward   wp[(cb*K + k)*cw + c] = w[cb*cw + c, k],     K = Cin*KH*KW,  k = (ci*KH + ky)*KW + kx
//   flipped   wp[(cb*K' + k')*cw + c] = w[co, cb*cw + c, KH-1-ky', KW-1-kx'],  K' = Cout*KH*KW,  k' = (co*KH + ky')*KW + kx'
//
// The flipped layout serves the input gradient, whose output channels are the forward's input channels: at stride 1
// it is the forward of gy with the kernel flipped and transposed (conv2d_tiled.wgsl), and the strided kernels read
// the same layout tap by tap. One invocation writes 4 consecutive channels of a block with one vec4 store (K*p.m is a
// multiple of 4 because cw is). src/ops/conv2d/cpu.rs (`packed_weights`) builds both layouts for the self-check;
// benches/conv2d_pack_scalar.wgsl keeps the one-float-per-invocation kernels they replaced.

// w[co, k] for co = c .. c+3, 0 past Cout (w seen as [Cout, K]).
fn w4_of(c: u32, k: u32, kk: u32) -> vec4<f32> {
    let l = p.cout * kk - 1u;
    let v = vec4<f32>(wt[min(c * kk + k, l)], wt[min((c + 1u) * kk + k, l)], wt[min((c + 2u) * kk + k, l)],
                      wt[min((c + 3u) * kk + k, l)]);
    return select(vec4<f32>(0.0), v, vec4<u32>(c, c + 1u, c + 2u, c + 3u) < vec4<u32>(p.cout));
}

// The forward layout; invocation i4 writes packed elements 4*i4 .. 4*i4+3.
@compute @workgroup_size(64)
fn conv2d_pack_weight_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                           @builtin(local_invocation_index) lid: u32) {
    let i4 = (wid.y * nwg.x + wid.x) * WG + lid;
    let kk = p.cin * p.kh * p.kw;
    if (i4 * 4u >= kk * p.m) { return; }
    let i = i4 * 4u;
    let k = (i / p.cw) % kk;
    let co = (i / (p.cw * kk)) * p.cw + i % p.cw;
    out4[i4] = w4_of(co, k, kk);
}

// The flipped layout; p.m = Cin rounded up to p.cw.
@compute @workgroup_size(64)
fn conv2d_pack_weight_flipped_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                                   @builtin(local_invocation_index) lid: u32) {
    let i4 = (wid.y * nwg.x + wid.x) * WG + lid;
    let kt = p.cout * p.kh * p.kw;
    if (i4 * 4u >= kt * p.m) { return; }
    let i = i4 * 4u;
    let kp = (i / p.cw) % kt;
    let ci = (i / (p.cw * kt)) * p.cw + i % p.cw;
    let kx = p.kw - 1u - kp % p.kw;
    let ky = p.kh - 1u - (kp / p.kw) % p.kh;
    let co = kp / (p.kw * p.kh);
    // w[co, ci + j, ky, kx] sits (ci + j) * KH*KW after w[co, 0, ky, kx].
    let base = (co * p.cin * p.kh + ky) * p.kw + kx;
    let st = p.kh * p.kw;
    let l = p.cout * p.cin * st - 1u;
    let v = vec4<f32>(wt[min(base + ci * st, l)], wt[min(base + (ci + 1u) * st, l)], wt[min(base + (ci + 2u) * st, l)],
                      wt[min(base + (ci + 3u) * st, l)]);
    out4[i4] = select(vec4<f32>(0.0), v, vec4<u32>(ci, ci + 1u, ci + 2u, ci + 3u) < vec4<u32>(p.cin));
}
