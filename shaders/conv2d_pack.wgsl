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
// multiple of 4 because cw is), gathering its four values one float at a time. When K = Cin*KH*KW is a multiple of 4
// (every U-Net layer but the stem, Cin = 3) the weights can be read as vec4 too, and two faster kernels move 4x4
// tiles through registers instead: `conv2d_pack_weight_k4` (forward) and `conv2d_pack_weight_flipped_3x3` (flipped,
// 3x3). On llvmpipe a load whose address differs per lane costs per lane and per component, so one vec4 load per
// four values instead of four gathered scalars matters (the step's 93 packs took 138 ms of a 1.15 s step at 128x64).
// src/ops/conv2d/cpu.rs (`packed_weights`) builds both layouts for the self-check, which runs all four kernels;
// benches/conv2d_pack_scalar.wgsl keeps the one-float-per-invocation kernels the first two replaced.

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

// The forward layout when K % 4 == 0: invocation (group of 4 channels c0 = 4*cg, k4) moves the 4x4 tile
// w[c0 .. c0+3, 4*k4 .. 4*k4+3] with four vec4 loads (four consecutive k of one channel) and four vec4 stores (one k
// of the four channels), a transpose in registers. Channels past Cout are 0. Lanes run along k4: consecutive loads.
@compute @workgroup_size(64)
fn conv2d_pack_weight_k4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                         @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    let k4n = p.cin * p.kh * p.kw / 4u;
    if (i >= k4n * (p.m / 4u)) { return; }
    let k4 = i % k4n;
    let c0 = (i / k4n) * 4u;
    let groups = p.cw / 4u;
    // Vector of (k = 4*k4, channels c0 .. c0+3) in the packed layout: ((cb*K + k)*cw + c0 % cw) / 4; k + 1 is
    // `groups` vectors further.
    let o = ((c0 / p.cw) * k4n * 4u + 4u * k4) * groups + (c0 % p.cw) / 4u;
    let last = p.cout * k4n - 1u;
    let z = vec4<f32>(0.0);
    let a = select(z, wt4[min(c0 * k4n + k4, last)], c0 < p.cout);
    let b = select(z, wt4[min((c0 + 1u) * k4n + k4, last)], c0 + 1u < p.cout);
    let c = select(z, wt4[min((c0 + 2u) * k4n + k4, last)], c0 + 2u < p.cout);
    let d = select(z, wt4[min((c0 + 3u) * k4n + k4, last)], c0 + 3u < p.cout);
    out4[o] = vec4<f32>(a.x, b.x, c.x, d.x);
    out4[o + groups] = vec4<f32>(a.y, b.y, c.y, d.y);
    out4[o + 2u * groups] = vec4<f32>(a.z, b.z, c.z, d.z);
    out4[o + 3u * groups] = vec4<f32>(a.w, b.w, c.w, d.w);
}

// The flipped layout of a 3x3 kernel with Cin % 4 == 0: invocation (co, group of 4 input channels ci0 = 4*cg) reads
// w[co, ci0 .. ci0+3, :, :], 36 contiguous floats f[9i + t] (channel ci0 + i, tap t = ky*3 + kx), as nine vec4
// loads and writes the nine flipped taps t' = 8 - t (k' = co*9 + t') as nine vec4 stores of the four channels:
// vector (cb*K' + k')*cw/4 + (ci0 % cw)/4 = vec4(f[8 - t'], f[17 - t'], f[26 - t'], f[35 - t']). Channels past Cin
// (whole groups, as Cin % 4 == 0) are 0.
@compute @workgroup_size(64)
fn conv2d_pack_weight_flipped_3x3(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                                  @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    let cgs = p.m / 4u;
    if (i >= p.cout * cgs) { return; }
    let ci0 = (i % cgs) * 4u;
    let co = i / cgs;
    let groups = p.cw / 4u;
    let o = ((ci0 / p.cw) * p.cout * 9u + co * 9u) * groups + (ci0 % p.cw) / 4u;
    let ok = ci0 < p.cin;
    let s = select(0u, (co * p.cin + ci0) * 9u / 4u, ok);
    let z = vec4<f32>(0.0);
    let v0 = select(z, wt4[s], ok); let v1 = select(z, wt4[s + 1u], ok); let v2 = select(z, wt4[s + 2u], ok);
    let v3 = select(z, wt4[s + 3u], ok); let v4 = select(z, wt4[s + 4u], ok); let v5 = select(z, wt4[s + 5u], ok);
    let v6 = select(z, wt4[s + 6u], ok); let v7 = select(z, wt4[s + 7u], ok); let v8 = select(z, wt4[s + 8u], ok);
    out4[o] = vec4<f32>(v2.x, v4.y, v6.z, v8.w);
    out4[o + groups] = vec4<f32>(v1.w, v4.x, v6.y, v8.z);
    out4[o + 2u * groups] = vec4<f32>(v1.z, v3.w, v6.x, v8.y);
    out4[o + 3u * groups] = vec4<f32>(v1.y, v3.z, v5.w, v8.x);
    out4[o + 4u * groups] = vec4<f32>(v1.x, v3.y, v5.z, v7.w);
    out4[o + 5u * groups] = vec4<f32>(v0.w, v3.x, v5.y, v7.z);
    out4[o + 6u * groups] = vec4<f32>(v0.z, v2.w, v5.x, v7.y);
    out4[o + 7u * groups] = vec4<f32>(v0.y, v2.z, v4.w, v7.x);
    out4[o + 8u * groups] = vec4<f32>(v0.x, v2.y, v4.z, v6.w);
}
