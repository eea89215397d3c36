// The lab's packing kernels (benches/conv2d.rs), compiled after shaders/conv2d_prelude.wgsl: one packed float per
// invocation, the first version of shaders/conv2d_pack.wgsl. No launcher picks them: the product packs four
// channels per invocation with one vec4 store (a quarter of the stores). Same layouts (see conv2d_pack.wgsl), p.m =
// the packed channel count rounded up to p.cw.

// The forward layout: wp[(cb*K + k)*cw + c] = w[cb*cw + c, k], 0 past Cout.
@compute @workgroup_size(64)
fn conv2d_pack_weight(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    let kk = p.cin * p.kh * p.kw;
    if (i >= kk * p.m) { return; }
    let k = (i / p.cw) % kk;
    let co = (i / (p.cw * kk)) * p.cw + i % p.cw;
    var v = 0.0;
    if (co < p.cout) { v = wt[co * kk + k]; }
    out[i] = v;
}

// The flipped layout: wp[(cb*K' + k')*cw + c] = w[co, cb*cw + c, KH-1-ky', KW-1-kx'], 0 past Cin.
@compute @workgroup_size(64)
fn conv2d_pack_weight_flipped(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                              @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    let kt = p.cout * p.kh * p.kw;
    if (i >= kt * p.m) { return; }
    let kp = (i / p.cw) % kt;
    let ci = (i / (p.cw * kt)) * p.cw + i % p.cw;
    let kx = p.kw - 1u - kp % p.kw;
    let ky = p.kh - 1u - (kp / p.kw) % p.kh;
    let co = kp / (p.kw * p.kh);
    var v = 0.0;
    if (ci < p.cin) { v = wt[((co * p.cin + ci) * p.kh + ky) * p.kw + kx]; }
    out[i] = v;
}
