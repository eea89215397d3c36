// conv2d, subgroup variants: the same convolution as conv2d.wgsl, for devices with subgroup operations. This file is
// compiled appended to conv2d.wgsl (src/ops/conv2d.rs: SUBGROUP_SHADER), so it uses that file's Params, bindings
// and helpers (xat, gat, block_of, store8x4, bias4), and only when the device has Features::SUBGROUP. Each entry
// point here has a portable twin in conv2d.wgsl that computes the same sums in the same order per output; the
// launcher picks this one only when its lane layout holds.
//
// Why: on a CPU adapter (llvmpipe) every storage-buffer load is a loop over the SIMD lanes with a bounds check per
// lane, so a value that all lanes of a subgroup need costs as much as one each. Here the lanes split such loads
// between them and subgroupBroadcast hands each lane the rest (a register shuffle). (naga 30 rejects
// `enable subgroups;`, which it does not need: the validator capability gates these builtins.)

// Forward, 3x3 stride 1 pad 1, W % 4 == 0, 4-aligned slice: 16 pixels of a row x 16 output channels per invocation
// (64 vec4 accumulators a{pixel}_{group}, written out by hand), weights packed in blocks of 16 channels
// (`conv2d_pack_weight` with cw = 16). The twelve weight vectors of each (ci, ky) (3 taps x 16 channels), which
// every lane of a subgroup needs, are loaded two per lane and broadcast: per (ci, ky) 4 vec4 + 2 scalar x loads
// and 2 vec4 weight loads per lane feed 768 multiply-adds. Lanes enumerate (channel block of 16, pixel block),
// pixel block fastest, with each channel block's pixel blocks padded to p.tile_len (a multiple of the subgroup
// size) so that no subgroup straddles two channel blocks; padding lanes run the loop on a clamped block (their
// loads feed the broadcasts) and store nothing. Loop count Cin*3.
@compute @workgroup_size(64)
fn conv2d_forward_3x3_subgroup(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                               @builtin(local_invocation_index) lid: u32,
                               @builtin(subgroup_invocation_id) sid: u32) {
    let lane = (wid.y * nwg.x + wid.x) * WG + lid;
    let pl = p.n * p.oh * ((p.ow + 15u) / 16u);
    let nblk = p.m / 16u;
    let cblk = min(lane / p.tile_len, nblk - 1u);
    let pb = lane % p.tile_len;
    let b = block_of(select(pb, pl, pb >= pl || lane / p.tile_len >= nblk), 16u);
    let y0 = i32(b.oy) - 1;
    let x0 = i32(b.ox0) - 1;
    let wrow = cblk * p.cin * 9u;            // this block's packed rows (four vec4 each)
    let s0 = sid % 8u;
    let s1 = min(sid % 8u, 3u) + 8u;
    var a0_0 = vec4<f32>(0.0); var a0_1 = vec4<f32>(0.0); var a0_2 = vec4<f32>(0.0); var a0_3 = vec4<f32>(0.0);
    var a1_0 = vec4<f32>(0.0); var a1_1 = vec4<f32>(0.0); var a1_2 = vec4<f32>(0.0); var a1_3 = vec4<f32>(0.0);
    var a2_0 = vec4<f32>(0.0); var a2_1 = vec4<f32>(0.0); var a2_2 = vec4<f32>(0.0); var a2_3 = vec4<f32>(0.0);
    var a3_0 = vec4<f32>(0.0); var a3_1 = vec4<f32>(0.0); var a3_2 = vec4<f32>(0.0); var a3_3 = vec4<f32>(0.0);
    var a4_0 = vec4<f32>(0.0); var a4_1 = vec4<f32>(0.0); var a4_2 = vec4<f32>(0.0); var a4_3 = vec4<f32>(0.0);
    var a5_0 = vec4<f32>(0.0); var a5_1 = vec4<f32>(0.0); var a5_2 = vec4<f32>(0.0); var a5_3 = vec4<f32>(0.0);
    var a6_0 = vec4<f32>(0.0); var a6_1 = vec4<f32>(0.0); var a6_2 = vec4<f32>(0.0); var a6_3 = vec4<f32>(0.0);
    var a7_0 = vec4<f32>(0.0); var a7_1 = vec4<f32>(0.0); var a7_2 = vec4<f32>(0.0); var a7_3 = vec4<f32>(0.0);
    var a8_0 = vec4<f32>(0.0); var a8_1 = vec4<f32>(0.0); var a8_2 = vec4<f32>(0.0); var a8_3 = vec4<f32>(0.0);
    var a9_0 = vec4<f32>(0.0); var a9_1 = vec4<f32>(0.0); var a9_2 = vec4<f32>(0.0); var a9_3 = vec4<f32>(0.0);
    var a10_0 = vec4<f32>(0.0); var a10_1 = vec4<f32>(0.0); var a10_2 = vec4<f32>(0.0); var a10_3 = vec4<f32>(0.0);
    var a11_0 = vec4<f32>(0.0); var a11_1 = vec4<f32>(0.0); var a11_2 = vec4<f32>(0.0); var a11_3 = vec4<f32>(0.0);
    var a12_0 = vec4<f32>(0.0); var a12_1 = vec4<f32>(0.0); var a12_2 = vec4<f32>(0.0); var a12_3 = vec4<f32>(0.0);
    var a13_0 = vec4<f32>(0.0); var a13_1 = vec4<f32>(0.0); var a13_2 = vec4<f32>(0.0); var a13_3 = vec4<f32>(0.0);
    var a14_0 = vec4<f32>(0.0); var a14_1 = vec4<f32>(0.0); var a14_2 = vec4<f32>(0.0); var a14_3 = vec4<f32>(0.0);
    var a15_0 = vec4<f32>(0.0); var a15_1 = vec4<f32>(0.0); var a15_2 = vec4<f32>(0.0); var a15_3 = vec4<f32>(0.0);
    // Columns ox0 + 4t + c inside the row.
    let cl = vec4<u32>(0u, 1u, 2u, 3u) + vec4<u32>(b.ox0);
    let m0 = cl + vec4<u32>(0u) < vec4<u32>(p.w);
    let m1 = cl + vec4<u32>(4u) < vec4<u32>(p.w);
    let m2 = cl + vec4<u32>(8u) < vec4<u32>(p.w);
    let m3 = cl + vec4<u32>(12u) < vec4<u32>(p.w);
    var k = 0u;
    for (var ci = 0u; ci < p.cin; ci++) {
        let base = p.off_x + (b.n * p.cin + ci) * p.h * p.w;
        for (var ky = 0; ky < 3; ky++) {
            let iy = y0 + ky;
            // Columns ox0-1 and ox0+16 as scalars, ox0 .. ox0+15 as four aligned vec4 loads (masked past the row
            // end and outside the image rows).
            let r0 = xat(base, iy, x0); let r17 = xat(base, iy, x0 + 17);
            let row_ok = iy >= 0 && iy < i32(p.h);
            let q = select(0u, (base + u32(iy) * p.w + b.ox0) / 4u, row_ok);
            let z = vec4<f32>(0.0);
            let q0 = select(z, x4[q + 0u], m0 & vec4<bool>(row_ok));
            let q1 = select(z, x4[q + 1u], m1 & vec4<bool>(row_ok));
            let q2 = select(z, x4[q + 2u], m2 & vec4<bool>(row_ok));
            let q3 = select(z, x4[q + 3u], m3 & vec4<bool>(row_ok));
            let r1 = q0.x; let r2 = q0.y; let r3 = q0.z; let r4 = q0.w; let r5 = q1.x; let r6 = q1.y; let r7 = q1.z; let r8 = q1.w; let r9 = q2.x; let r10 = q2.y; let r11 = q2.z; let r12 = q2.w; let r13 = q3.x; let r14 = q3.y; let r15 = q3.z; let r16 = q3.w;
            // Weight vectors of this (ci, ky): tap kx, channel group g at index 4*kx + g; lane s loads s and 8 + s.
            let wi = (wrow + k) * 4u;
            let la = wp[wi + s0];
            let lb = wp[wi + s1];
            let w0_0 = subgroupBroadcast(la, 0u);
            let w0_1 = subgroupBroadcast(la, 1u);
            let w0_2 = subgroupBroadcast(la, 2u);
            let w0_3 = subgroupBroadcast(la, 3u);
            let w1_0 = subgroupBroadcast(la, 4u);
            let w1_1 = subgroupBroadcast(la, 5u);
            let w1_2 = subgroupBroadcast(la, 6u);
            let w1_3 = subgroupBroadcast(la, 7u);
            let w2_0 = subgroupBroadcast(lb, 0u);
            let w2_1 = subgroupBroadcast(lb, 1u);
            let w2_2 = subgroupBroadcast(lb, 2u);
            let w2_3 = subgroupBroadcast(lb, 3u);
            a0_0 += w0_0 * r0 + w1_0 * r1 + w2_0 * r2;
            a0_1 += w0_1 * r0 + w1_1 * r1 + w2_1 * r2;
            a0_2 += w0_2 * r0 + w1_2 * r1 + w2_2 * r2;
            a0_3 += w0_3 * r0 + w1_3 * r1 + w2_3 * r2;
            a1_0 += w0_0 * r1 + w1_0 * r2 + w2_0 * r3;
            a1_1 += w0_1 * r1 + w1_1 * r2 + w2_1 * r3;
            a1_2 += w0_2 * r1 + w1_2 * r2 + w2_2 * r3;
            a1_3 += w0_3 * r1 + w1_3 * r2 + w2_3 * r3;
            a2_0 += w0_0 * r2 + w1_0 * r3 + w2_0 * r4;
            a2_1 += w0_1 * r2 + w1_1 * r3 + w2_1 * r4;
            a2_2 += w0_2 * r2 + w1_2 * r3 + w2_2 * r4;
            a2_3 += w0_3 * r2 + w1_3 * r3 + w2_3 * r4;
            a3_0 += w0_0 * r3 + w1_0 * r4 + w2_0 * r5;
            a3_1 += w0_1 * r3 + w1_1 * r4 + w2_1 * r5;
            a3_2 += w0_2 * r3 + w1_2 * r4 + w2_2 * r5;
            a3_3 += w0_3 * r3 + w1_3 * r4 + w2_3 * r5;
            a4_0 += w0_0 * r4 + w1_0 * r5 + w2_0 * r6;
            a4_1 += w0_1 * r4 + w1_1 * r5 + w2_1 * r6;
            a4_2 += w0_2 * r4 + w1_2 * r5 + w2_2 * r6;
            a4_3 += w0_3 * r4 + w1_3 * r5 + w2_3 * r6;
            a5_0 += w0_0 * r5 + w1_0 * r6 + w2_0 * r7;
            a5_1 += w0_1 * r5 + w1_1 * r6 + w2_1 * r7;
            a5_2 += w0_2 * r5 + w1_2 * r6 + w2_2 * r7;
            a5_3 += w0_3 * r5 + w1_3 * r6 + w2_3 * r7;
            a6_0 += w0_0 * r6 + w1_0 * r7 + w2_0 * r8;
            a6_1 += w0_1 * r6 + w1_1 * r7 + w2_1 * r8;
            a6_2 += w0_2 * r6 + w1_2 * r7 + w2_2 * r8;
            a6_3 += w0_3 * r6 + w1_3 * r7 + w2_3 * r8;
            a7_0 += w0_0 * r7 + w1_0 * r8 + w2_0 * r9;
            a7_1 += w0_1 * r7 + w1_1 * r8 + w2_1 * r9;
            a7_2 += w0_2 * r7 + w1_2 * r8 + w2_2 * r9;
            a7_3 += w0_3 * r7 + w1_3 * r8 + w2_3 * r9;
            a8_0 += w0_0 * r8 + w1_0 * r9 + w2_0 * r10;
            a8_1 += w0_1 * r8 + w1_1 * r9 + w2_1 * r10;
            a8_2 += w0_2 * r8 + w1_2 * r9 + w2_2 * r10;
            a8_3 += w0_3 * r8 + w1_3 * r9 + w2_3 * r10;
            a9_0 += w0_0 * r9 + w1_0 * r10 + w2_0 * r11;
            a9_1 += w0_1 * r9 + w1_1 * r10 + w2_1 * r11;
            a9_2 += w0_2 * r9 + w1_2 * r10 + w2_2 * r11;
            a9_3 += w0_3 * r9 + w1_3 * r10 + w2_3 * r11;
            a10_0 += w0_0 * r10 + w1_0 * r11 + w2_0 * r12;
            a10_1 += w0_1 * r10 + w1_1 * r11 + w2_1 * r12;
            a10_2 += w0_2 * r10 + w1_2 * r11 + w2_2 * r12;
            a10_3 += w0_3 * r10 + w1_3 * r11 + w2_3 * r12;
            a11_0 += w0_0 * r11 + w1_0 * r12 + w2_0 * r13;
            a11_1 += w0_1 * r11 + w1_1 * r12 + w2_1 * r13;
            a11_2 += w0_2 * r11 + w1_2 * r12 + w2_2 * r13;
            a11_3 += w0_3 * r11 + w1_3 * r12 + w2_3 * r13;
            a12_0 += w0_0 * r12 + w1_0 * r13 + w2_0 * r14;
            a12_1 += w0_1 * r12 + w1_1 * r13 + w2_1 * r14;
            a12_2 += w0_2 * r12 + w1_2 * r13 + w2_2 * r14;
            a12_3 += w0_3 * r12 + w1_3 * r13 + w2_3 * r14;
            a13_0 += w0_0 * r13 + w1_0 * r14 + w2_0 * r15;
            a13_1 += w0_1 * r13 + w1_1 * r14 + w2_1 * r15;
            a13_2 += w0_2 * r13 + w1_2 * r14 + w2_2 * r15;
            a13_3 += w0_3 * r13 + w1_3 * r14 + w2_3 * r15;
            a14_0 += w0_0 * r14 + w1_0 * r15 + w2_0 * r16;
            a14_1 += w0_1 * r14 + w1_1 * r15 + w2_1 * r16;
            a14_2 += w0_2 * r14 + w1_2 * r15 + w2_2 * r16;
            a14_3 += w0_3 * r14 + w1_3 * r15 + w2_3 * r16;
            a15_0 += w0_0 * r15 + w1_0 * r16 + w2_0 * r17;
            a15_1 += w0_1 * r15 + w1_1 * r16 + w2_1 * r17;
            a15_2 += w0_2 * r15 + w1_2 * r16 + w2_2 * r17;
            a15_3 += w0_3 * r15 + w1_3 * r16 + w2_3 * r17;
            k += 3u;
        }
    }
    if (p.has_bias == 1u) {
        let bv0 = bias4(cblk * 16u + 0u);
        let bv1 = bias4(cblk * 16u + 4u);
        let bv2 = bias4(cblk * 16u + 8u);
        let bv3 = bias4(cblk * 16u + 12u);
        a0_0 += bv0; a0_1 += bv1; a0_2 += bv2; a0_3 += bv3;
        a1_0 += bv0; a1_1 += bv1; a1_2 += bv2; a1_3 += bv3;
        a2_0 += bv0; a2_1 += bv1; a2_2 += bv2; a2_3 += bv3;
        a3_0 += bv0; a3_1 += bv1; a3_2 += bv2; a3_3 += bv3;
        a4_0 += bv0; a4_1 += bv1; a4_2 += bv2; a4_3 += bv3;
        a5_0 += bv0; a5_1 += bv1; a5_2 += bv2; a5_3 += bv3;
        a6_0 += bv0; a6_1 += bv1; a6_2 += bv2; a6_3 += bv3;
        a7_0 += bv0; a7_1 += bv1; a7_2 += bv2; a7_3 += bv3;
        a8_0 += bv0; a8_1 += bv1; a8_2 += bv2; a8_3 += bv3;
        a9_0 += bv0; a9_1 += bv1; a9_2 += bv2; a9_3 += bv3;
        a10_0 += bv0; a10_1 += bv1; a10_2 += bv2; a10_3 += bv3;
        a11_0 += bv0; a11_1 += bv1; a11_2 += bv2; a11_3 += bv3;
        a12_0 += bv0; a12_1 += bv1; a12_2 += bv2; a12_3 += bv3;
        a13_0 += bv0; a13_1 += bv1; a13_2 += bv2; a13_3 += bv3;
        a14_0 += bv0; a14_1 += bv1; a14_2 += bv2; a14_3 += bv3;
        a15_0 += bv0; a15_1 += bv1; a15_2 += bv2; a15_3 += bv3;
    }
    let b1 = Block(b.n, b.oy, b.ox0 + 8u, b.ok);   // second half of the 16 pixels
    store8x4(b, cblk * 16u + 0u, array<vec4<f32>, 8>(a0_0, a1_0, a2_0, a3_0, a4_0, a5_0, a6_0, a7_0));
    store8x4(b1, cblk * 16u + 0u, array<vec4<f32>, 8>(a8_0, a9_0, a10_0, a11_0, a12_0, a13_0, a14_0, a15_0));
    store8x4(b, cblk * 16u + 4u, array<vec4<f32>, 8>(a0_1, a1_1, a2_1, a3_1, a4_1, a5_1, a6_1, a7_1));
    store8x4(b1, cblk * 16u + 4u, array<vec4<f32>, 8>(a8_1, a9_1, a10_1, a11_1, a12_1, a13_1, a14_1, a15_1));
    store8x4(b, cblk * 16u + 8u, array<vec4<f32>, 8>(a0_2, a1_2, a2_2, a3_2, a4_2, a5_2, a6_2, a7_2));
    store8x4(b1, cblk * 16u + 8u, array<vec4<f32>, 8>(a8_2, a9_2, a10_2, a11_2, a12_2, a13_2, a14_2, a15_2));
    store8x4(b, cblk * 16u + 12u, array<vec4<f32>, 8>(a0_3, a1_3, a2_3, a3_3, a4_3, a5_3, a6_3, a7_3));
    store8x4(b1, cblk * 16u + 12u, array<vec4<f32>, 8>(a8_3, a9_3, a10_3, a11_3, a12_3, a13_3, a14_3, a15_3));
}

// Write 4 pixels x 4 channels (co0 ..) of a block, inside the tensor (the tail of a 12-pixel block).
fn store4x4(b: Block, co0: u32, a0: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>, a3: vec4<f32>) {
    if (!b.ok) { return; }
    let a = array<vec4<f32>, 4>(a0, a1, a2, a3);
    for (var c = 0u; c < 4u; c++) {
        if (co0 + c >= p.cout) { return; }
        let row = p.off_out + ((b.n * p.cout + co0 + c) * p.oh + b.oy) * p.ow;
        for (var j = 0u; j < 4u; j++) {
            if (b.ox0 + j < p.ow) { out[row + b.ox0 + j] = a[j][c]; }
        }
    }
}

// As `conv2d_forward_3x3_subgroup` with 12 pixels per invocation (48 vec4 accumulators): for rows of 12, 24 or 36
// pixels (the deep layers at 384x192) 16-pixel blocks would leave a quarter of the lanes' work padding. Per (ci, ky)
// 3 vec4 + 2 scalar x loads and 2 vec4 weight loads per lane feed 576 multiply-adds.
@compute @workgroup_size(64)
fn conv2d_forward_3x3_subgroup12(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                               @builtin(local_invocation_index) lid: u32,
                               @builtin(subgroup_invocation_id) sid: u32) {
    let lane = (wid.y * nwg.x + wid.x) * WG + lid;
    let pl = p.n * p.oh * ((p.ow + 11u) / 12u);
    let nblk = p.m / 16u;
    let cblk = min(lane / p.tile_len, nblk - 1u);
    let pb = lane % p.tile_len;
    let b = block_of(select(pb, pl, pb >= pl || lane / p.tile_len >= nblk), 12u);
    let y0 = i32(b.oy) - 1;
    let x0 = i32(b.ox0) - 1;
    let wrow = cblk * p.cin * 9u;            // this block's packed rows (four vec4 each)
    let s0 = sid % 8u;
    let s1 = min(sid % 8u, 3u) + 8u;
    var a0_0 = vec4<f32>(0.0); var a0_1 = vec4<f32>(0.0); var a0_2 = vec4<f32>(0.0); var a0_3 = vec4<f32>(0.0);
    var a1_0 = vec4<f32>(0.0); var a1_1 = vec4<f32>(0.0); var a1_2 = vec4<f32>(0.0); var a1_3 = vec4<f32>(0.0);
    var a2_0 = vec4<f32>(0.0); var a2_1 = vec4<f32>(0.0); var a2_2 = vec4<f32>(0.0); var a2_3 = vec4<f32>(0.0);
    var a3_0 = vec4<f32>(0.0); var a3_1 = vec4<f32>(0.0); var a3_2 = vec4<f32>(0.0); var a3_3 = vec4<f32>(0.0);
    var a4_0 = vec4<f32>(0.0); var a4_1 = vec4<f32>(0.0); var a4_2 = vec4<f32>(0.0); var a4_3 = vec4<f32>(0.0);
    var a5_0 = vec4<f32>(0.0); var a5_1 = vec4<f32>(0.0); var a5_2 = vec4<f32>(0.0); var a5_3 = vec4<f32>(0.0);
    var a6_0 = vec4<f32>(0.0); var a6_1 = vec4<f32>(0.0); var a6_2 = vec4<f32>(0.0); var a6_3 = vec4<f32>(0.0);
    var a7_0 = vec4<f32>(0.0); var a7_1 = vec4<f32>(0.0); var a7_2 = vec4<f32>(0.0); var a7_3 = vec4<f32>(0.0);
    var a8_0 = vec4<f32>(0.0); var a8_1 = vec4<f32>(0.0); var a8_2 = vec4<f32>(0.0); var a8_3 = vec4<f32>(0.0);
    var a9_0 = vec4<f32>(0.0); var a9_1 = vec4<f32>(0.0); var a9_2 = vec4<f32>(0.0); var a9_3 = vec4<f32>(0.0);
    var a10_0 = vec4<f32>(0.0); var a10_1 = vec4<f32>(0.0); var a10_2 = vec4<f32>(0.0); var a10_3 = vec4<f32>(0.0);
    var a11_0 = vec4<f32>(0.0); var a11_1 = vec4<f32>(0.0); var a11_2 = vec4<f32>(0.0); var a11_3 = vec4<f32>(0.0);
    // Columns ox0 + 4t + c inside the row.
    let cl = vec4<u32>(0u, 1u, 2u, 3u) + vec4<u32>(b.ox0);
    let m0 = cl + vec4<u32>(0u) < vec4<u32>(p.w);
    let m1 = cl + vec4<u32>(4u) < vec4<u32>(p.w);
    let m2 = cl + vec4<u32>(8u) < vec4<u32>(p.w);
    var k = 0u;
    for (var ci = 0u; ci < p.cin; ci++) {
        let base = p.off_x + (b.n * p.cin + ci) * p.h * p.w;
        for (var ky = 0; ky < 3; ky++) {
            let iy = y0 + ky;
            // Columns ox0-1 and ox0+12 as scalars, ox0 .. ox0+11 as three aligned vec4 loads (masked past the row
            // end and outside the image rows).
            let r0 = xat(base, iy, x0); let r13 = xat(base, iy, x0 + 13);
            let row_ok = iy >= 0 && iy < i32(p.h);
            let q = select(0u, (base + u32(iy) * p.w + b.ox0) / 4u, row_ok);
            let z = vec4<f32>(0.0);
            let q0 = select(z, x4[q + 0u], m0 & vec4<bool>(row_ok));
            let q1 = select(z, x4[q + 1u], m1 & vec4<bool>(row_ok));
            let q2 = select(z, x4[q + 2u], m2 & vec4<bool>(row_ok));
            let r1 = q0.x; let r2 = q0.y; let r3 = q0.z; let r4 = q0.w; let r5 = q1.x; let r6 = q1.y; let r7 = q1.z; let r8 = q1.w; let r9 = q2.x; let r10 = q2.y; let r11 = q2.z; let r12 = q2.w;
            // Weight vectors of this (ci, ky): tap kx, channel group g at index 4*kx + g; lane s loads s and 8 + s.
            let wi = (wrow + k) * 4u;
            let la = wp[wi + s0];
            let lb = wp[wi + s1];
            let w0_0 = subgroupBroadcast(la, 0u);
            let w0_1 = subgroupBroadcast(la, 1u);
            let w0_2 = subgroupBroadcast(la, 2u);
            let w0_3 = subgroupBroadcast(la, 3u);
            let w1_0 = subgroupBroadcast(la, 4u);
            let w1_1 = subgroupBroadcast(la, 5u);
            let w1_2 = subgroupBroadcast(la, 6u);
            let w1_3 = subgroupBroadcast(la, 7u);
            let w2_0 = subgroupBroadcast(lb, 0u);
            let w2_1 = subgroupBroadcast(lb, 1u);
            let w2_2 = subgroupBroadcast(lb, 2u);
            let w2_3 = subgroupBroadcast(lb, 3u);
            a0_0 += w0_0 * r0 + w1_0 * r1 + w2_0 * r2;
            a0_1 += w0_1 * r0 + w1_1 * r1 + w2_1 * r2;
            a0_2 += w0_2 * r0 + w1_2 * r1 + w2_2 * r2;
            a0_3 += w0_3 * r0 + w1_3 * r1 + w2_3 * r2;
            a1_0 += w0_0 * r1 + w1_0 * r2 + w2_0 * r3;
            a1_1 += w0_1 * r1 + w1_1 * r2 + w2_1 * r3;
            a1_2 += w0_2 * r1 + w1_2 * r2 + w2_2 * r3;
            a1_3 += w0_3 * r1 + w1_3 * r2 + w2_3 * r3;
            a2_0 += w0_0 * r2 + w1_0 * r3 + w2_0 * r4;
            a2_1 += w0_1 * r2 + w1_1 * r3 + w2_1 * r4;
            a2_2 += w0_2 * r2 + w1_2 * r3 + w2_2 * r4;
            a2_3 += w0_3 * r2 + w1_3 * r3 + w2_3 * r4;
            a3_0 += w0_0 * r3 + w1_0 * r4 + w2_0 * r5;
            a3_1 += w0_1 * r3 + w1_1 * r4 + w2_1 * r5;
            a3_2 += w0_2 * r3 + w1_2 * r4 + w2_2 * r5;
            a3_3 += w0_3 * r3 + w1_3 * r4 + w2_3 * r5;
            a4_0 += w0_0 * r4 + w1_0 * r5 + w2_0 * r6;
            a4_1 += w0_1 * r4 + w1_1 * r5 + w2_1 * r6;
            a4_2 += w0_2 * r4 + w1_2 * r5 + w2_2 * r6;
            a4_3 += w0_3 * r4 + w1_3 * r5 + w2_3 * r6;
            a5_0 += w0_0 * r5 + w1_0 * r6 + w2_0 * r7;
            a5_1 += w0_1 * r5 + w1_1 * r6 + w2_1 * r7;
            a5_2 += w0_2 * r5 + w1_2 * r6 + w2_2 * r7;
            a5_3 += w0_3 * r5 + w1_3 * r6 + w2_3 * r7;
            a6_0 += w0_0 * r6 + w1_0 * r7 + w2_0 * r8;
            a6_1 += w0_1 * r6 + w1_1 * r7 + w2_1 * r8;
            a6_2 += w0_2 * r6 + w1_2 * r7 + w2_2 * r8;
            a6_3 += w0_3 * r6 + w1_3 * r7 + w2_3 * r8;
            a7_0 += w0_0 * r7 + w1_0 * r8 + w2_0 * r9;
            a7_1 += w0_1 * r7 + w1_1 * r8 + w2_1 * r9;
            a7_2 += w0_2 * r7 + w1_2 * r8 + w2_2 * r9;
            a7_3 += w0_3 * r7 + w1_3 * r8 + w2_3 * r9;
            a8_0 += w0_0 * r8 + w1_0 * r9 + w2_0 * r10;
            a8_1 += w0_1 * r8 + w1_1 * r9 + w2_1 * r10;
            a8_2 += w0_2 * r8 + w1_2 * r9 + w2_2 * r10;
            a8_3 += w0_3 * r8 + w1_3 * r9 + w2_3 * r10;
            a9_0 += w0_0 * r9 + w1_0 * r10 + w2_0 * r11;
            a9_1 += w0_1 * r9 + w1_1 * r10 + w2_1 * r11;
            a9_2 += w0_2 * r9 + w1_2 * r10 + w2_2 * r11;
            a9_3 += w0_3 * r9 + w1_3 * r10 + w2_3 * r11;
            a10_0 += w0_0 * r10 + w1_0 * r11 + w2_0 * r12;
            a10_1 += w0_1 * r10 + w1_1 * r11 + w2_1 * r12;
            a10_2 += w0_2 * r10 + w1_2 * r11 + w2_2 * r12;
            a10_3 += w0_3 * r10 + w1_3 * r11 + w2_3 * r12;
            a11_0 += w0_0 * r11 + w1_0 * r12 + w2_0 * r13;
            a11_1 += w0_1 * r11 + w1_1 * r12 + w2_1 * r13;
            a11_2 += w0_2 * r11 + w1_2 * r12 + w2_2 * r13;
            a11_3 += w0_3 * r11 + w1_3 * r12 + w2_3 * r13;
            k += 3u;
        }
    }
    if (p.has_bias == 1u) {
        let bv0 = bias4(cblk * 16u + 0u);
        let bv1 = bias4(cblk * 16u + 4u);
        let bv2 = bias4(cblk * 16u + 8u);
        let bv3 = bias4(cblk * 16u + 12u);
        a0_0 += bv0; a0_1 += bv1; a0_2 += bv2; a0_3 += bv3;
        a1_0 += bv0; a1_1 += bv1; a1_2 += bv2; a1_3 += bv3;
        a2_0 += bv0; a2_1 += bv1; a2_2 += bv2; a2_3 += bv3;
        a3_0 += bv0; a3_1 += bv1; a3_2 += bv2; a3_3 += bv3;
        a4_0 += bv0; a4_1 += bv1; a4_2 += bv2; a4_3 += bv3;
        a5_0 += bv0; a5_1 += bv1; a5_2 += bv2; a5_3 += bv3;
        a6_0 += bv0; a6_1 += bv1; a6_2 += bv2; a6_3 += bv3;
        a7_0 += bv0; a7_1 += bv1; a7_2 += bv2; a7_3 += bv3;
        a8_0 += bv0; a8_1 += bv1; a8_2 += bv2; a8_3 += bv3;
        a9_0 += bv0; a9_1 += bv1; a9_2 += bv2; a9_3 += bv3;
        a10_0 += bv0; a10_1 += bv1; a10_2 += bv2; a10_3 += bv3;
        a11_0 += bv0; a11_1 += bv1; a11_2 += bv2; a11_3 += bv3;
    }
    let b1 = Block(b.n, b.oy, b.ox0 + 8u, b.ok);   // pixels 8 .. 11
    store8x4(b, cblk * 16u + 0u, array<vec4<f32>, 8>(a0_0, a1_0, a2_0, a3_0, a4_0, a5_0, a6_0, a7_0));
    store4x4(b1, cblk * 16u + 0u, a8_0, a9_0, a10_0, a11_0);
    store8x4(b, cblk * 16u + 4u, array<vec4<f32>, 8>(a0_1, a1_1, a2_1, a3_1, a4_1, a5_1, a6_1, a7_1));
    store4x4(b1, cblk * 16u + 4u, a8_1, a9_1, a10_1, a11_1);
    store8x4(b, cblk * 16u + 8u, array<vec4<f32>, 8>(a0_2, a1_2, a2_2, a3_2, a4_2, a5_2, a6_2, a7_2));
    store4x4(b1, cblk * 16u + 8u, a8_2, a9_2, a10_2, a11_2);
    store8x4(b, cblk * 16u + 12u, array<vec4<f32>, 8>(a0_3, a1_3, a2_3, a3_3, a4_3, a5_3, a6_3, a7_3));
    store4x4(b1, cblk * 16u + 12u, a8_3, a9_3, a10_3, a11_3);
}

// Forward, 3x3 stride 2 pad 1: `conv2d_forward_3x3s2_vec4` in conv2d.wgsl with each (ci, ky)'s twelve weight vectors
// loaded two per lane and broadcast, and the lane layout of `conv2d_forward_3x3_subgroup` (channel blocks padded to
// whole subgroups, p.tile_len).
@compute @workgroup_size(64)
fn conv2d_forward_3x3s2_subgroup(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32, @builtin(subgroup_invocation_id) sid: u32) {
    let lane = (wid.y * nwg.x + wid.x) * WG + lid;
    let pl = p.n * p.oh * ((p.ow + 15u) / 16u);
    let nblk = p.m / 16u;
    let cblk = min(lane / p.tile_len, nblk - 1u);
    let pb = lane % p.tile_len;
    let b = block_of(select(pb, pl, pb >= pl || lane / p.tile_len >= nblk), 16u);
    let s0 = sid % 8u;
    let s1 = min(sid % 8u, 3u) + 8u;
    let y0 = 2 * i32(b.oy) - 1;
    let c0 = 2u * b.ox0;                      // first input column of the vec4 loads
    let wrow = cblk * p.cin * 9u;             // this block's packed rows (four vec4 each)
    let cl = vec4<u32>(0u, 1u, 2u, 3u) + vec4<u32>(c0);
    let m0 = cl + vec4<u32>(0u) < vec4<u32>(p.w);
    let m1 = cl + vec4<u32>(4u) < vec4<u32>(p.w);
    let m2 = cl + vec4<u32>(8u) < vec4<u32>(p.w);
    let m3 = cl + vec4<u32>(12u) < vec4<u32>(p.w);
    let m4 = cl + vec4<u32>(16u) < vec4<u32>(p.w);
    let m5 = cl + vec4<u32>(20u) < vec4<u32>(p.w);
    let m6 = cl + vec4<u32>(24u) < vec4<u32>(p.w);
    let m7 = cl + vec4<u32>(28u) < vec4<u32>(p.w);
    var a0_0 = vec4<f32>(0.0); var a0_1 = vec4<f32>(0.0); var a0_2 = vec4<f32>(0.0); var a0_3 = vec4<f32>(0.0);
    var a1_0 = vec4<f32>(0.0); var a1_1 = vec4<f32>(0.0); var a1_2 = vec4<f32>(0.0); var a1_3 = vec4<f32>(0.0);
    var a2_0 = vec4<f32>(0.0); var a2_1 = vec4<f32>(0.0); var a2_2 = vec4<f32>(0.0); var a2_3 = vec4<f32>(0.0);
    var a3_0 = vec4<f32>(0.0); var a3_1 = vec4<f32>(0.0); var a3_2 = vec4<f32>(0.0); var a3_3 = vec4<f32>(0.0);
    var a4_0 = vec4<f32>(0.0); var a4_1 = vec4<f32>(0.0); var a4_2 = vec4<f32>(0.0); var a4_3 = vec4<f32>(0.0);
    var a5_0 = vec4<f32>(0.0); var a5_1 = vec4<f32>(0.0); var a5_2 = vec4<f32>(0.0); var a5_3 = vec4<f32>(0.0);
    var a6_0 = vec4<f32>(0.0); var a6_1 = vec4<f32>(0.0); var a6_2 = vec4<f32>(0.0); var a6_3 = vec4<f32>(0.0);
    var a7_0 = vec4<f32>(0.0); var a7_1 = vec4<f32>(0.0); var a7_2 = vec4<f32>(0.0); var a7_3 = vec4<f32>(0.0);
    var a8_0 = vec4<f32>(0.0); var a8_1 = vec4<f32>(0.0); var a8_2 = vec4<f32>(0.0); var a8_3 = vec4<f32>(0.0);
    var a9_0 = vec4<f32>(0.0); var a9_1 = vec4<f32>(0.0); var a9_2 = vec4<f32>(0.0); var a9_3 = vec4<f32>(0.0);
    var a10_0 = vec4<f32>(0.0); var a10_1 = vec4<f32>(0.0); var a10_2 = vec4<f32>(0.0); var a10_3 = vec4<f32>(0.0);
    var a11_0 = vec4<f32>(0.0); var a11_1 = vec4<f32>(0.0); var a11_2 = vec4<f32>(0.0); var a11_3 = vec4<f32>(0.0);
    var a12_0 = vec4<f32>(0.0); var a12_1 = vec4<f32>(0.0); var a12_2 = vec4<f32>(0.0); var a12_3 = vec4<f32>(0.0);
    var a13_0 = vec4<f32>(0.0); var a13_1 = vec4<f32>(0.0); var a13_2 = vec4<f32>(0.0); var a13_3 = vec4<f32>(0.0);
    var a14_0 = vec4<f32>(0.0); var a14_1 = vec4<f32>(0.0); var a14_2 = vec4<f32>(0.0); var a14_3 = vec4<f32>(0.0);
    var a15_0 = vec4<f32>(0.0); var a15_1 = vec4<f32>(0.0); var a15_2 = vec4<f32>(0.0); var a15_3 = vec4<f32>(0.0);
    var k = 0u;
    for (var ci = 0u; ci < p.cin; ci++) {
        let base = p.off_x + (b.n * p.cin + ci) * p.h * p.w;
        for (var ky = 0; ky < 3; ky++) {
            let iy = y0 + ky;
            let row_ok = iy >= 0 && iy < i32(p.h);
            let q = select(0u, (base + u32(iy) * p.w + c0) / 4u, row_ok);
            let z = vec4<f32>(0.0);
            let e = xat(base, iy, i32(c0) - 1);
            let q0 = select(z, x4[q + 0u], m0 & vec4<bool>(row_ok));
            let q1 = select(z, x4[q + 1u], m1 & vec4<bool>(row_ok));
            let q2 = select(z, x4[q + 2u], m2 & vec4<bool>(row_ok));
            let q3 = select(z, x4[q + 3u], m3 & vec4<bool>(row_ok));
            let q4 = select(z, x4[q + 4u], m4 & vec4<bool>(row_ok));
            let q5 = select(z, x4[q + 5u], m5 & vec4<bool>(row_ok));
            let q6 = select(z, x4[q + 6u], m6 & vec4<bool>(row_ok));
            let q7 = select(z, x4[q + 7u], m7 & vec4<bool>(row_ok));
            let wi = (wrow + k) * 4u;
            let la = wp[wi + s0];
            let lb = wp[wi + s1];
            let w0_0 = subgroupBroadcast(la, 0u); let w0_1 = subgroupBroadcast(la, 1u); let w0_2 = subgroupBroadcast(la, 2u); let w0_3 = subgroupBroadcast(la, 3u);
            let w1_0 = subgroupBroadcast(la, 4u); let w1_1 = subgroupBroadcast(la, 5u); let w1_2 = subgroupBroadcast(la, 6u); let w1_3 = subgroupBroadcast(la, 7u);
            let w2_0 = subgroupBroadcast(lb, 0u); let w2_1 = subgroupBroadcast(lb, 1u); let w2_2 = subgroupBroadcast(lb, 2u); let w2_3 = subgroupBroadcast(lb, 3u);
            a0_0 += w0_0 * e + w1_0 * q0.x + w2_0 * q0.y;
            a0_1 += w0_1 * e + w1_1 * q0.x + w2_1 * q0.y;
            a0_2 += w0_2 * e + w1_2 * q0.x + w2_2 * q0.y;
            a0_3 += w0_3 * e + w1_3 * q0.x + w2_3 * q0.y;
            a1_0 += w0_0 * q0.y + w1_0 * q0.z + w2_0 * q0.w;
            a1_1 += w0_1 * q0.y + w1_1 * q0.z + w2_1 * q0.w;
            a1_2 += w0_2 * q0.y + w1_2 * q0.z + w2_2 * q0.w;
            a1_3 += w0_3 * q0.y + w1_3 * q0.z + w2_3 * q0.w;
            a2_0 += w0_0 * q0.w + w1_0 * q1.x + w2_0 * q1.y;
            a2_1 += w0_1 * q0.w + w1_1 * q1.x + w2_1 * q1.y;
            a2_2 += w0_2 * q0.w + w1_2 * q1.x + w2_2 * q1.y;
            a2_3 += w0_3 * q0.w + w1_3 * q1.x + w2_3 * q1.y;
            a3_0 += w0_0 * q1.y + w1_0 * q1.z + w2_0 * q1.w;
            a3_1 += w0_1 * q1.y + w1_1 * q1.z + w2_1 * q1.w;
            a3_2 += w0_2 * q1.y + w1_2 * q1.z + w2_2 * q1.w;
            a3_3 += w0_3 * q1.y + w1_3 * q1.z + w2_3 * q1.w;
            a4_0 += w0_0 * q1.w + w1_0 * q2.x + w2_0 * q2.y;
            a4_1 += w0_1 * q1.w + w1_1 * q2.x + w2_1 * q2.y;
            a4_2 += w0_2 * q1.w + w1_2 * q2.x + w2_2 * q2.y;
            a4_3 += w0_3 * q1.w + w1_3 * q2.x + w2_3 * q2.y;
            a5_0 += w0_0 * q2.y + w1_0 * q2.z + w2_0 * q2.w;
            a5_1 += w0_1 * q2.y + w1_1 * q2.z + w2_1 * q2.w;
            a5_2 += w0_2 * q2.y + w1_2 * q2.z + w2_2 * q2.w;
            a5_3 += w0_3 * q2.y + w1_3 * q2.z + w2_3 * q2.w;
            a6_0 += w0_0 * q2.w + w1_0 * q3.x + w2_0 * q3.y;
            a6_1 += w0_1 * q2.w + w1_1 * q3.x + w2_1 * q3.y;
            a6_2 += w0_2 * q2.w + w1_2 * q3.x + w2_2 * q3.y;
            a6_3 += w0_3 * q2.w + w1_3 * q3.x + w2_3 * q3.y;
            a7_0 += w0_0 * q3.y + w1_0 * q3.z + w2_0 * q3.w;
            a7_1 += w0_1 * q3.y + w1_1 * q3.z + w2_1 * q3.w;
            a7_2 += w0_2 * q3.y + w1_2 * q3.z + w2_2 * q3.w;
            a7_3 += w0_3 * q3.y + w1_3 * q3.z + w2_3 * q3.w;
            a8_0 += w0_0 * q3.w + w1_0 * q4.x + w2_0 * q4.y;
            a8_1 += w0_1 * q3.w + w1_1 * q4.x + w2_1 * q4.y;
            a8_2 += w0_2 * q3.w + w1_2 * q4.x + w2_2 * q4.y;
            a8_3 += w0_3 * q3.w + w1_3 * q4.x + w2_3 * q4.y;
            a9_0 += w0_0 * q4.y + w1_0 * q4.z + w2_0 * q4.w;
            a9_1 += w0_1 * q4.y + w1_1 * q4.z + w2_1 * q4.w;
            a9_2 += w0_2 * q4.y + w1_2 * q4.z + w2_2 * q4.w;
            a9_3 += w0_3 * q4.y + w1_3 * q4.z + w2_3 * q4.w;
            a10_0 += w0_0 * q4.w + w1_0 * q5.x + w2_0 * q5.y;
            a10_1 += w0_1 * q4.w + w1_1 * q5.x + w2_1 * q5.y;
            a10_2 += w0_2 * q4.w + w1_2 * q5.x + w2_2 * q5.y;
            a10_3 += w0_3 * q4.w + w1_3 * q5.x + w2_3 * q5.y;
            a11_0 += w0_0 * q5.y + w1_0 * q5.z + w2_0 * q5.w;
            a11_1 += w0_1 * q5.y + w1_1 * q5.z + w2_1 * q5.w;
            a11_2 += w0_2 * q5.y + w1_2 * q5.z + w2_2 * q5.w;
            a11_3 += w0_3 * q5.y + w1_3 * q5.z + w2_3 * q5.w;
            a12_0 += w0_0 * q5.w + w1_0 * q6.x + w2_0 * q6.y;
            a12_1 += w0_1 * q5.w + w1_1 * q6.x + w2_1 * q6.y;
            a12_2 += w0_2 * q5.w + w1_2 * q6.x + w2_2 * q6.y;
            a12_3 += w0_3 * q5.w + w1_3 * q6.x + w2_3 * q6.y;
            a13_0 += w0_0 * q6.y + w1_0 * q6.z + w2_0 * q6.w;
            a13_1 += w0_1 * q6.y + w1_1 * q6.z + w2_1 * q6.w;
            a13_2 += w0_2 * q6.y + w1_2 * q6.z + w2_2 * q6.w;
            a13_3 += w0_3 * q6.y + w1_3 * q6.z + w2_3 * q6.w;
            a14_0 += w0_0 * q6.w + w1_0 * q7.x + w2_0 * q7.y;
            a14_1 += w0_1 * q6.w + w1_1 * q7.x + w2_1 * q7.y;
            a14_2 += w0_2 * q6.w + w1_2 * q7.x + w2_2 * q7.y;
            a14_3 += w0_3 * q6.w + w1_3 * q7.x + w2_3 * q7.y;
            a15_0 += w0_0 * q7.y + w1_0 * q7.z + w2_0 * q7.w;
            a15_1 += w0_1 * q7.y + w1_1 * q7.z + w2_1 * q7.w;
            a15_2 += w0_2 * q7.y + w1_2 * q7.z + w2_2 * q7.w;
            a15_3 += w0_3 * q7.y + w1_3 * q7.z + w2_3 * q7.w;
            k += 3u;
        }
    }
    if (p.has_bias == 1u) {
        let bv0 = bias4(cblk * 16u + 0u);
        let bv1 = bias4(cblk * 16u + 4u);
        let bv2 = bias4(cblk * 16u + 8u);
        let bv3 = bias4(cblk * 16u + 12u);
        a0_0 += bv0; a0_1 += bv1; a0_2 += bv2; a0_3 += bv3;
        a1_0 += bv0; a1_1 += bv1; a1_2 += bv2; a1_3 += bv3;
        a2_0 += bv0; a2_1 += bv1; a2_2 += bv2; a2_3 += bv3;
        a3_0 += bv0; a3_1 += bv1; a3_2 += bv2; a3_3 += bv3;
        a4_0 += bv0; a4_1 += bv1; a4_2 += bv2; a4_3 += bv3;
        a5_0 += bv0; a5_1 += bv1; a5_2 += bv2; a5_3 += bv3;
        a6_0 += bv0; a6_1 += bv1; a6_2 += bv2; a6_3 += bv3;
        a7_0 += bv0; a7_1 += bv1; a7_2 += bv2; a7_3 += bv3;
        a8_0 += bv0; a8_1 += bv1; a8_2 += bv2; a8_3 += bv3;
        a9_0 += bv0; a9_1 += bv1; a9_2 += bv2; a9_3 += bv3;
        a10_0 += bv0; a10_1 += bv1; a10_2 += bv2; a10_3 += bv3;
        a11_0 += bv0; a11_1 += bv1; a11_2 += bv2; a11_3 += bv3;
        a12_0 += bv0; a12_1 += bv1; a12_2 += bv2; a12_3 += bv3;
        a13_0 += bv0; a13_1 += bv1; a13_2 += bv2; a13_3 += bv3;
        a14_0 += bv0; a14_1 += bv1; a14_2 += bv2; a14_3 += bv3;
        a15_0 += bv0; a15_1 += bv1; a15_2 += bv2; a15_3 += bv3;
    }
    let b1 = Block(b.n, b.oy, b.ox0 + 8u, b.ok);   // second half of the 16 pixels
    store8x4(b, cblk * 16u + 0u, array<vec4<f32>, 8>(a0_0, a1_0, a2_0, a3_0, a4_0, a5_0, a6_0, a7_0));
    store8x4(b1, cblk * 16u + 0u, array<vec4<f32>, 8>(a8_0, a9_0, a10_0, a11_0, a12_0, a13_0, a14_0, a15_0));
    store8x4(b, cblk * 16u + 4u, array<vec4<f32>, 8>(a0_1, a1_1, a2_1, a3_1, a4_1, a5_1, a6_1, a7_1));
    store8x4(b1, cblk * 16u + 4u, array<vec4<f32>, 8>(a8_1, a9_1, a10_1, a11_1, a12_1, a13_1, a14_1, a15_1));
    store8x4(b, cblk * 16u + 8u, array<vec4<f32>, 8>(a0_2, a1_2, a2_2, a3_2, a4_2, a5_2, a6_2, a7_2));
    store8x4(b1, cblk * 16u + 8u, array<vec4<f32>, 8>(a8_2, a9_2, a10_2, a11_2, a12_2, a13_2, a14_2, a15_2));
    store8x4(b, cblk * 16u + 12u, array<vec4<f32>, 8>(a0_3, a1_3, a2_3, a3_3, a4_3, a5_3, a6_3, a7_3));
    store8x4(b1, cblk * 16u + 12u, array<vec4<f32>, 8>(a8_3, a9_3, a10_3, a11_3, a12_3, a13_3, a14_3, a15_3));
}

// Input gradient, stride >= 2 with OW % 4 == 0, a 4-aligned gy slice and ceil(KW/s) <= 4: as
// `conv2d_backward_input_strided_vec4` in conv2d.wgsl, with each tap's four weight vectors loaded once per subgroup
// (lane s < 4 loads vector s) and broadcast. Lanes enumerate (channel block of 16, pixel block) with each channel
// block's pixel blocks padded to p.tile_len (whole subgroups); padding lanes run the loops on block 0 and store
// nothing.
@compute @workgroup_size(64)
fn conv2d_backward_input_strided_subgroup(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32, @builtin(subgroup_invocation_id) sid: u32) {
    let s = p.stride;
    let py = wid.z / s;
    let px = wid.z % s;
    let rows = (p.h + p.pad + s - 1u) / s;       // A in [0, rows) covers iy in [0, H)
    let cols = (p.w + p.pad + s - 1u) / s;
    let segs = (cols + 15u) / 16u;
    let pl = p.n * rows * segs;                  // pixel blocks of this class
    let nblk = p.m / 16u;
    let lane = (wid.y * nwg.x + wid.x) * WG + lid;
    let cblk = min(lane / p.tile_len, nblk - 1u);
    let ok = lane % p.tile_len < pl && lane / p.tile_len < nblk;
    let pb = select(0u, lane % p.tile_len, ok);
    let b0 = (pb % segs) * 16u;
    let a_ = i32((pb / segs) % rows);
    let n = (pb / segs) / rows;
    let wrow = cblk * p.cout * p.kh * p.kw;      // this block's packed rows (four vec4 each)
    let ohw = p.oh * p.ow;
    let cl = vec4<u32>(0u, 1u, 2u, 3u) + vec4<u32>(b0);
    let m0 = cl + vec4<u32>(0u) < vec4<u32>(p.ow);
    let m1 = cl + vec4<u32>(4u) < vec4<u32>(p.ow);
    let m2 = cl + vec4<u32>(8u) < vec4<u32>(p.ow);
    let m3 = cl + vec4<u32>(12u) < vec4<u32>(p.ow);
    var acc0_0 = vec4<f32>(0.0); var acc0_1 = vec4<f32>(0.0); var acc0_2 = vec4<f32>(0.0); var acc0_3 = vec4<f32>(0.0);
    var acc1_0 = vec4<f32>(0.0); var acc1_1 = vec4<f32>(0.0); var acc1_2 = vec4<f32>(0.0); var acc1_3 = vec4<f32>(0.0);
    var acc2_0 = vec4<f32>(0.0); var acc2_1 = vec4<f32>(0.0); var acc2_2 = vec4<f32>(0.0); var acc2_3 = vec4<f32>(0.0);
    var acc3_0 = vec4<f32>(0.0); var acc3_1 = vec4<f32>(0.0); var acc3_2 = vec4<f32>(0.0); var acc3_3 = vec4<f32>(0.0);
    var acc4_0 = vec4<f32>(0.0); var acc4_1 = vec4<f32>(0.0); var acc4_2 = vec4<f32>(0.0); var acc4_3 = vec4<f32>(0.0);
    var acc5_0 = vec4<f32>(0.0); var acc5_1 = vec4<f32>(0.0); var acc5_2 = vec4<f32>(0.0); var acc5_3 = vec4<f32>(0.0);
    var acc6_0 = vec4<f32>(0.0); var acc6_1 = vec4<f32>(0.0); var acc6_2 = vec4<f32>(0.0); var acc6_3 = vec4<f32>(0.0);
    var acc7_0 = vec4<f32>(0.0); var acc7_1 = vec4<f32>(0.0); var acc7_2 = vec4<f32>(0.0); var acc7_3 = vec4<f32>(0.0);
    var acc8_0 = vec4<f32>(0.0); var acc8_1 = vec4<f32>(0.0); var acc8_2 = vec4<f32>(0.0); var acc8_3 = vec4<f32>(0.0);
    var acc9_0 = vec4<f32>(0.0); var acc9_1 = vec4<f32>(0.0); var acc9_2 = vec4<f32>(0.0); var acc9_3 = vec4<f32>(0.0);
    var acc10_0 = vec4<f32>(0.0); var acc10_1 = vec4<f32>(0.0); var acc10_2 = vec4<f32>(0.0); var acc10_3 = vec4<f32>(0.0);
    var acc11_0 = vec4<f32>(0.0); var acc11_1 = vec4<f32>(0.0); var acc11_2 = vec4<f32>(0.0); var acc11_3 = vec4<f32>(0.0);
    var acc12_0 = vec4<f32>(0.0); var acc12_1 = vec4<f32>(0.0); var acc12_2 = vec4<f32>(0.0); var acc12_3 = vec4<f32>(0.0);
    var acc13_0 = vec4<f32>(0.0); var acc13_1 = vec4<f32>(0.0); var acc13_2 = vec4<f32>(0.0); var acc13_3 = vec4<f32>(0.0);
    var acc14_0 = vec4<f32>(0.0); var acc14_1 = vec4<f32>(0.0); var acc14_2 = vec4<f32>(0.0); var acc14_3 = vec4<f32>(0.0);
    var acc15_0 = vec4<f32>(0.0); var acc15_1 = vec4<f32>(0.0); var acc15_2 = vec4<f32>(0.0); var acc15_3 = vec4<f32>(0.0);
    let z = vec4<f32>(0.0);
    for (var co = 0u; co < p.cout; co++) {
        let gb = p.off_gy + (n * p.cout + co) * ohw;
        var dj = 0;                                 // (ky - py) / s, counted
        for (var ky = py; ky < p.kh; ky += s) {
            let oy = a_ - dj;
            dj++;
            let rok = oy >= 0 && oy < i32(p.oh);
            let rb = select(0u, (gb + u32(oy) * p.ow + b0) / 4u, rok);
            let q0 = select(z, gy4[rb], m0 & vec4<bool>(rok));
            let q1 = select(z, gy4[rb + 1u], m1 & vec4<bool>(rok));
            let q2 = select(z, gy4[rb + 2u], m2 & vec4<bool>(rok));
            let q3 = select(z, gy4[rb + 3u], m3 & vec4<bool>(rok));
            // Column b0 + c for c = -3 .. 15 (left of the block only as far as the taps reach).
            let cm1 = gat(gb, oy, i32(b0) - 1);
            let cm2 = gat(gb, oy, i32(b0) - 2);
            let cm3 = gat(gb, oy, i32(b0) - 3);
            // Window g_j = column b0 - t + j for tap t (shifted right by one column per tap).
            var g0 = q0.x; var g1 = q0.y; var g2 = q0.z; var g3 = q0.w; var g4 = q1.x; var g5 = q1.y; var g6 = q1.z; var g7 = q1.w; var g8 = q2.x; var g9 = q2.y; var g10 = q2.z; var g11 = q2.w; var g12 = q3.x; var g13 = q3.y; var g14 = q3.z; var g15 = q3.w;
            var l1 = cm1; var l2 = cm2;
            for (var kx = px; kx < p.kw; kx += s) {
                let wi = (wrow + (co * p.kh + p.kh - 1u - ky) * p.kw + p.kw - 1u - kx) * 4u;
                let wl = wp[wi + min(sid % 8u, 3u)];
                let w0 = subgroupBroadcast(wl, 0u); let w1 = subgroupBroadcast(wl, 1u); let w2 = subgroupBroadcast(wl, 2u); let w3 = subgroupBroadcast(wl, 3u);
                acc0_0 += w0 * g0; acc0_1 += w1 * g0; acc0_2 += w2 * g0; acc0_3 += w3 * g0;
                acc1_0 += w0 * g1; acc1_1 += w1 * g1; acc1_2 += w2 * g1; acc1_3 += w3 * g1;
                acc2_0 += w0 * g2; acc2_1 += w1 * g2; acc2_2 += w2 * g2; acc2_3 += w3 * g2;
                acc3_0 += w0 * g3; acc3_1 += w1 * g3; acc3_2 += w2 * g3; acc3_3 += w3 * g3;
                acc4_0 += w0 * g4; acc4_1 += w1 * g4; acc4_2 += w2 * g4; acc4_3 += w3 * g4;
                acc5_0 += w0 * g5; acc5_1 += w1 * g5; acc5_2 += w2 * g5; acc5_3 += w3 * g5;
                acc6_0 += w0 * g6; acc6_1 += w1 * g6; acc6_2 += w2 * g6; acc6_3 += w3 * g6;
                acc7_0 += w0 * g7; acc7_1 += w1 * g7; acc7_2 += w2 * g7; acc7_3 += w3 * g7;
                acc8_0 += w0 * g8; acc8_1 += w1 * g8; acc8_2 += w2 * g8; acc8_3 += w3 * g8;
                acc9_0 += w0 * g9; acc9_1 += w1 * g9; acc9_2 += w2 * g9; acc9_3 += w3 * g9;
                acc10_0 += w0 * g10; acc10_1 += w1 * g10; acc10_2 += w2 * g10; acc10_3 += w3 * g10;
                acc11_0 += w0 * g11; acc11_1 += w1 * g11; acc11_2 += w2 * g11; acc11_3 += w3 * g11;
                acc12_0 += w0 * g12; acc12_1 += w1 * g12; acc12_2 += w2 * g12; acc12_3 += w3 * g12;
                acc13_0 += w0 * g13; acc13_1 += w1 * g13; acc13_2 += w2 * g13; acc13_3 += w3 * g13;
                acc14_0 += w0 * g14; acc14_1 += w1 * g14; acc14_2 += w2 * g14; acc14_3 += w3 * g14;
                acc15_0 += w0 * g15; acc15_1 += w1 * g15; acc15_2 += w2 * g15; acc15_3 += w3 * g15;
                g15 = g14; g14 = g13; g13 = g12; g12 = g11; g11 = g10; g10 = g9; g9 = g8; g8 = g7; g7 = g6; g6 = g5; g5 = g4; g4 = g3; g3 = g2; g2 = g1; g1 = g0; g0 = l1; l1 = l2; l2 = cm3;
            }
        }
    }
    if (!ok) { return; }
    let iy = a_ * i32(s) + i32(py) - i32(p.pad);
    if (iy < 0 || iy >= i32(p.h)) { return; }
    // Stores written out (constant register indices: a dynamically indexed accumulator array would be spilled
    // to memory and gathered per element).
    let ix0 = i32(b0 * s + px) - i32(p.pad);
    let x0 = ix0 + 0 * i32(s); let k0 = x0 >= 0 && x0 < i32(p.w);
    let x1 = ix0 + 1 * i32(s); let k1 = x1 >= 0 && x1 < i32(p.w);
    let x2 = ix0 + 2 * i32(s); let k2 = x2 >= 0 && x2 < i32(p.w);
    let x3 = ix0 + 3 * i32(s); let k3 = x3 >= 0 && x3 < i32(p.w);
    let x4 = ix0 + 4 * i32(s); let k4 = x4 >= 0 && x4 < i32(p.w);
    let x5 = ix0 + 5 * i32(s); let k5 = x5 >= 0 && x5 < i32(p.w);
    let x6 = ix0 + 6 * i32(s); let k6 = x6 >= 0 && x6 < i32(p.w);
    let x7 = ix0 + 7 * i32(s); let k7 = x7 >= 0 && x7 < i32(p.w);
    let x8 = ix0 + 8 * i32(s); let k8 = x8 >= 0 && x8 < i32(p.w);
    let x9 = ix0 + 9 * i32(s); let k9 = x9 >= 0 && x9 < i32(p.w);
    let x10 = ix0 + 10 * i32(s); let k10 = x10 >= 0 && x10 < i32(p.w);
    let x11 = ix0 + 11 * i32(s); let k11 = x11 >= 0 && x11 < i32(p.w);
    let x12 = ix0 + 12 * i32(s); let k12 = x12 >= 0 && x12 < i32(p.w);
    let x13 = ix0 + 13 * i32(s); let k13 = x13 >= 0 && x13 < i32(p.w);
    let x14 = ix0 + 14 * i32(s); let k14 = x14 >= 0 && x14 < i32(p.w);
    let x15 = ix0 + 15 * i32(s); let k15 = x15 >= 0 && x15 < i32(p.w);
    if (cblk * 16u + 0u < p.cin) {
        let row = p.off_out + ((n * p.cin + cblk * 16u + 0u) * p.h + u32(iy)) * p.w;
        if (k0) { out[row + u32(x0)] = acc0_0.x; }
        if (k1) { out[row + u32(x1)] = acc1_0.x; }
        if (k2) { out[row + u32(x2)] = acc2_0.x; }
        if (k3) { out[row + u32(x3)] = acc3_0.x; }
        if (k4) { out[row + u32(x4)] = acc4_0.x; }
        if (k5) { out[row + u32(x5)] = acc5_0.x; }
        if (k6) { out[row + u32(x6)] = acc6_0.x; }
        if (k7) { out[row + u32(x7)] = acc7_0.x; }
        if (k8) { out[row + u32(x8)] = acc8_0.x; }
        if (k9) { out[row + u32(x9)] = acc9_0.x; }
        if (k10) { out[row + u32(x10)] = acc10_0.x; }
        if (k11) { out[row + u32(x11)] = acc11_0.x; }
        if (k12) { out[row + u32(x12)] = acc12_0.x; }
        if (k13) { out[row + u32(x13)] = acc13_0.x; }
        if (k14) { out[row + u32(x14)] = acc14_0.x; }
        if (k15) { out[row + u32(x15)] = acc15_0.x; }
    }
    if (cblk * 16u + 1u < p.cin) {
        let row = p.off_out + ((n * p.cin + cblk * 16u + 1u) * p.h + u32(iy)) * p.w;
        if (k0) { out[row + u32(x0)] = acc0_0.y; }
        if (k1) { out[row + u32(x1)] = acc1_0.y; }
        if (k2) { out[row + u32(x2)] = acc2_0.y; }
        if (k3) { out[row + u32(x3)] = acc3_0.y; }
        if (k4) { out[row + u32(x4)] = acc4_0.y; }
        if (k5) { out[row + u32(x5)] = acc5_0.y; }
        if (k6) { out[row + u32(x6)] = acc6_0.y; }
        if (k7) { out[row + u32(x7)] = acc7_0.y; }
        if (k8) { out[row + u32(x8)] = acc8_0.y; }
        if (k9) { out[row + u32(x9)] = acc9_0.y; }
        if (k10) { out[row + u32(x10)] = acc10_0.y; }
        if (k11) { out[row + u32(x11)] = acc11_0.y; }
        if (k12) { out[row + u32(x12)] = acc12_0.y; }
        if (k13) { out[row + u32(x13)] = acc13_0.y; }
        if (k14) { out[row + u32(x14)] = acc14_0.y; }
        if (k15) { out[row + u32(x15)] = acc15_0.y; }
    }
    if (cblk * 16u + 2u < p.cin) {
        let row = p.off_out + ((n * p.cin + cblk * 16u + 2u) * p.h + u32(iy)) * p.w;
        if (k0) { out[row + u32(x0)] = acc0_0.z; }
        if (k1) { out[row + u32(x1)] = acc1_0.z; }
        if (k2) { out[row + u32(x2)] = acc2_0.z; }
        if (k3) { out[row + u32(x3)] = acc3_0.z; }
        if (k4) { out[row + u32(x4)] = acc4_0.z; }
        if (k5) { out[row + u32(x5)] = acc5_0.z; }
        if (k6) { out[row + u32(x6)] = acc6_0.z; }
        if (k7) { out[row + u32(x7)] = acc7_0.z; }
        if (k8) { out[row + u32(x8)] = acc8_0.z; }
        if (k9) { out[row + u32(x9)] = acc9_0.z; }
        if (k10) { out[row + u32(x10)] = acc10_0.z; }
        if (k11) { out[row + u32(x11)] = acc11_0.z; }
        if (k12) { out[row + u32(x12)] = acc12_0.z; }
        if (k13) { out[row + u32(x13)] = acc13_0.z; }
        if (k14) { out[row + u32(x14)] = acc14_0.z; }
        if (k15) { out[row + u32(x15)] = acc15_0.z; }
    }
    if (cblk * 16u + 3u < p.cin) {
        let row = p.off_out + ((n * p.cin + cblk * 16u + 3u) * p.h + u32(iy)) * p.w;
        if (k0) { out[row + u32(x0)] = acc0_0.w; }
        if (k1) { out[row + u32(x1)] = acc1_0.w; }
        if (k2) { out[row + u32(x2)] = acc2_0.w; }
        if (k3) { out[row + u32(x3)] = acc3_0.w; }
        if (k4) { out[row + u32(x4)] = acc4_0.w; }
        if (k5) { out[row + u32(x5)] = acc5_0.w; }
        if (k6) { out[row + u32(x6)] = acc6_0.w; }
        if (k7) { out[row + u32(x7)] = acc7_0.w; }
        if (k8) { out[row + u32(x8)] = acc8_0.w; }
        if (k9) { out[row + u32(x9)] = acc9_0.w; }
        if (k10) { out[row + u32(x10)] = acc10_0.w; }
        if (k11) { out[row + u32(x11)] = acc11_0.w; }
        if (k12) { out[row + u32(x12)] = acc12_0.w; }
        if (k13) { out[row + u32(x13)] = acc13_0.w; }
        if (k14) { out[row + u32(x14)] = acc14_0.w; }
        if (k15) { out[row + u32(x15)] = acc15_0.w; }
    }
    if (cblk * 16u + 4u < p.cin) {
        let row = p.off_out + ((n * p.cin + cblk * 16u + 4u) * p.h + u32(iy)) * p.w;
        if (k0) { out[row + u32(x0)] = acc0_1.x; }
        if (k1) { out[row + u32(x1)] = acc1_1.x; }
        if (k2) { out[row + u32(x2)] = acc2_1.x; }
        if (k3) { out[row + u32(x3)] = acc3_1.x; }
        if (k4) { out[row + u32(x4)] = acc4_1.x; }
        if (k5) { out[row + u32(x5)] = acc5_1.x; }
        if (k6) { out[row + u32(x6)] = acc6_1.x; }
        if (k7) { out[row + u32(x7)] = acc7_1.x; }
        if (k8) { out[row + u32(x8)] = acc8_1.x; }
        if (k9) { out[row + u32(x9)] = acc9_1.x; }
        if (k10) { out[row + u32(x10)] = acc10_1.x; }
        if (k11) { out[row + u32(x11)] = acc11_1.x; }
        if (k12) { out[row + u32(x12)] = acc12_1.x; }
        if (k13) { out[row + u32(x13)] = acc13_1.x; }
        if (k14) { out[row + u32(x14)] = acc14_1.x; }
        if (k15) { out[row + u32(x15)] = acc15_1.x; }
    }
    if (cblk * 16u + 5u < p.cin) {
        let row = p.off_out + ((n * p.cin + cblk * 16u + 5u) * p.h + u32(iy)) * p.w;
        if (k0) { out[row + u32(x0)] = acc0_1.y; }
        if (k1) { out[row + u32(x1)] = acc1_1.y; }
        if (k2) { out[row + u32(x2)] = acc2_1.y; }
        if (k3) { out[row + u32(x3)] = acc3_1.y; }
        if (k4) { out[row + u32(x4)] = acc4_1.y; }
        if (k5) { out[row + u32(x5)] = acc5_1.y; }
        if (k6) { out[row + u32(x6)] = acc6_1.y; }
        if (k7) { out[row + u32(x7)] = acc7_1.y; }
        if (k8) { out[row + u32(x8)] = acc8_1.y; }
        if (k9) { out[row + u32(x9)] = acc9_1.y; }
        if (k10) { out[row + u32(x10)] = acc10_1.y; }
        if (k11) { out[row + u32(x11)] = acc11_1.y; }
        if (k12) { out[row + u32(x12)] = acc12_1.y; }
        if (k13) { out[row + u32(x13)] = acc13_1.y; }
        if (k14) { out[row + u32(x14)] = acc14_1.y; }
        if (k15) { out[row + u32(x15)] = acc15_1.y; }
    }
    if (cblk * 16u + 6u < p.cin) {
        let row = p.off_out + ((n * p.cin + cblk * 16u + 6u) * p.h + u32(iy)) * p.w;
        if (k0) { out[row + u32(x0)] = acc0_1.z; }
        if (k1) { out[row + u32(x1)] = acc1_1.z; }
        if (k2) { out[row + u32(x2)] = acc2_1.z; }
        if (k3) { out[row + u32(x3)] = acc3_1.z; }
        if (k4) { out[row + u32(x4)] = acc4_1.z; }
        if (k5) { out[row + u32(x5)] = acc5_1.z; }
        if (k6) { out[row + u32(x6)] = acc6_1.z; }
        if (k7) { out[row + u32(x7)] = acc7_1.z; }
        if (k8) { out[row + u32(x8)] = acc8_1.z; }
        if (k9) { out[row + u32(x9)] = acc9_1.z; }
        if (k10) { out[row + u32(x10)] = acc10_1.z; }
        if (k11) { out[row + u32(x11)] = acc11_1.z; }
        if (k12) { out[row + u32(x12)] = acc12_1.z; }
        if (k13) { out[row + u32(x13)] = acc13_1.z; }
        if (k14) { out[row + u32(x14)] = acc14_1.z; }
        if (k15) { out[row + u32(x15)] = acc15_1.z; }
    }
    if (cblk * 16u + 7u < p.cin) {
        let row = p.off_out + ((n * p.cin + cblk * 16u + 7u) * p.h + u32(iy)) * p.w;
        if (k0) { out[row + u32(x0)] = acc0_1.w; }
        if (k1) { out[row + u32(x1)] = acc1_1.w; }
        if (k2) { out[row + u32(x2)] = acc2_1.w; }
        if (k3) { out[row + u32(x3)] = acc3_1.w; }
        if (k4) { out[row + u32(x4)] = acc4_1.w; }
        if (k5) { out[row + u32(x5)] = acc5_1.w; }
        if (k6) { out[row + u32(x6)] = acc6_1.w; }
        if (k7) { out[row + u32(x7)] = acc7_1.w; }
        if (k8) { out[row + u32(x8)] = acc8_1.w; }
        if (k9) { out[row + u32(x9)] = acc9_1.w; }
        if (k10) { out[row + u32(x10)] = acc10_1.w; }
        if (k11) { out[row + u32(x11)] = acc11_1.w; }
        if (k12) { out[row + u32(x12)] = acc12_1.w; }
        if (k13) { out[row + u32(x13)] = acc13_1.w; }
        if (k14) { out[row + u32(x14)] = acc14_1.w; }
        if (k15) { out[row + u32(x15)] = acc15_1.w; }
    }
    if (cblk * 16u + 8u < p.cin) {
        let row = p.off_out + ((n * p.cin + cblk * 16u + 8u) * p.h + u32(iy)) * p.w;
        if (k0) { out[row + u32(x0)] = acc0_2.x; }
        if (k1) { out[row + u32(x1)] = acc1_2.x; }
        if (k2) { out[row + u32(x2)] = acc2_2.x; }
        if (k3) { out[row + u32(x3)] = acc3_2.x; }
        if (k4) { out[row + u32(x4)] = acc4_2.x; }
        if (k5) { out[row + u32(x5)] = acc5_2.x; }
        if (k6) { out[row + u32(x6)] = acc6_2.x; }
        if (k7) { out[row + u32(x7)] = acc7_2.x; }
        if (k8) { out[row + u32(x8)] = acc8_2.x; }
        if (k9) { out[row + u32(x9)] = acc9_2.x; }
        if (k10) { out[row + u32(x10)] = acc10_2.x; }
        if (k11) { out[row + u32(x11)] = acc11_2.x; }
        if (k12) { out[row + u32(x12)] = acc12_2.x; }
        if (k13) { out[row + u32(x13)] = acc13_2.x; }
        if (k14) { out[row + u32(x14)] = acc14_2.x; }
        if (k15) { out[row + u32(x15)] = acc15_2.x; }
    }
    if (cblk * 16u + 9u < p.cin) {
        let row = p.off_out + ((n * p.cin + cblk * 16u + 9u) * p.h + u32(iy)) * p.w;
        if (k0) { out[row + u32(x0)] = acc0_2.y; }
        if (k1) { out[row + u32(x1)] = acc1_2.y; }
        if (k2) { out[row + u32(x2)] = acc2_2.y; }
        if (k3) { out[row + u32(x3)] = acc3_2.y; }
        if (k4) { out[row + u32(x4)] = acc4_2.y; }
        if (k5) { out[row + u32(x5)] = acc5_2.y; }
        if (k6) { out[row + u32(x6)] = acc6_2.y; }
        if (k7) { out[row + u32(x7)] = acc7_2.y; }
        if (k8) { out[row + u32(x8)] = acc8_2.y; }
        if (k9) { out[row + u32(x9)] = acc9_2.y; }
        if (k10) { out[row + u32(x10)] = acc10_2.y; }
        if (k11) { out[row + u32(x11)] = acc11_2.y; }
        if (k12) { out[row + u32(x12)] = acc12_2.y; }
        if (k13) { out[row + u32(x13)] = acc13_2.y; }
        if (k14) { out[row + u32(x14)] = acc14_2.y; }
        if (k15) { out[row + u32(x15)] = acc15_2.y; }
    }
    if (cblk * 16u + 10u < p.cin) {
        let row = p.off_out + ((n * p.cin + cblk * 16u + 10u) * p.h + u32(iy)) * p.w;
        if (k0) { out[row + u32(x0)] = acc0_2.z; }
        if (k1) { out[row + u32(x1)] = acc1_2.z; }
        if (k2) { out[row + u32(x2)] = acc2_2.z; }
        if (k3) { out[row + u32(x3)] = acc3_2.z; }
        if (k4) { out[row + u32(x4)] = acc4_2.z; }
        if (k5) { out[row + u32(x5)] = acc5_2.z; }
        if (k6) { out[row + u32(x6)] = acc6_2.z; }
        if (k7) { out[row + u32(x7)] = acc7_2.z; }
        if (k8) { out[row + u32(x8)] = acc8_2.z; }
        if (k9) { out[row + u32(x9)] = acc9_2.z; }
        if (k10) { out[row + u32(x10)] = acc10_2.z; }
        if (k11) { out[row + u32(x11)] = acc11_2.z; }
        if (k12) { out[row + u32(x12)] = acc12_2.z; }
        if (k13) { out[row + u32(x13)] = acc13_2.z; }
        if (k14) { out[row + u32(x14)] = acc14_2.z; }
        if (k15) { out[row + u32(x15)] = acc15_2.z; }
    }
    if (cblk * 16u + 11u < p.cin) {
        let row = p.off_out + ((n * p.cin + cblk * 16u + 11u) * p.h + u32(iy)) * p.w;
        if (k0) { out[row + u32(x0)] = acc0_2.w; }
        if (k1) { out[row + u32(x1)] = acc1_2.w; }
        if (k2) { out[row + u32(x2)] = acc2_2.w; }
        if (k3) { out[row + u32(x3)] = acc3_2.w; }
        if (k4) { out[row + u32(x4)] = acc4_2.w; }
        if (k5) { out[row + u32(x5)] = acc5_2.w; }
        if (k6) { out[row + u32(x6)] = acc6_2.w; }
        if (k7) { out[row + u32(x7)] = acc7_2.w; }
        if (k8) { out[row + u32(x8)] = acc8_2.w; }
        if (k9) { out[row + u32(x9)] = acc9_2.w; }
        if (k10) { out[row + u32(x10)] = acc10_2.w; }
        if (k11) { out[row + u32(x11)] = acc11_2.w; }
        if (k12) { out[row + u32(x12)] = acc12_2.w; }
        if (k13) { out[row + u32(x13)] = acc13_2.w; }
        if (k14) { out[row + u32(x14)] = acc14_2.w; }
        if (k15) { out[row + u32(x15)] = acc15_2.w; }
    }
    if (cblk * 16u + 12u < p.cin) {
        let row = p.off_out + ((n * p.cin + cblk * 16u + 12u) * p.h + u32(iy)) * p.w;
        if (k0) { out[row + u32(x0)] = acc0_3.x; }
        if (k1) { out[row + u32(x1)] = acc1_3.x; }
        if (k2) { out[row + u32(x2)] = acc2_3.x; }
        if (k3) { out[row + u32(x3)] = acc3_3.x; }
        if (k4) { out[row + u32(x4)] = acc4_3.x; }
        if (k5) { out[row + u32(x5)] = acc5_3.x; }
        if (k6) { out[row + u32(x6)] = acc6_3.x; }
        if (k7) { out[row + u32(x7)] = acc7_3.x; }
        if (k8) { out[row + u32(x8)] = acc8_3.x; }
        if (k9) { out[row + u32(x9)] = acc9_3.x; }
        if (k10) { out[row + u32(x10)] = acc10_3.x; }
        if (k11) { out[row + u32(x11)] = acc11_3.x; }
        if (k12) { out[row + u32(x12)] = acc12_3.x; }
        if (k13) { out[row + u32(x13)] = acc13_3.x; }
        if (k14) { out[row + u32(x14)] = acc14_3.x; }
        if (k15) { out[row + u32(x15)] = acc15_3.x; }
    }
    if (cblk * 16u + 13u < p.cin) {
        let row = p.off_out + ((n * p.cin + cblk * 16u + 13u) * p.h + u32(iy)) * p.w;
        if (k0) { out[row + u32(x0)] = acc0_3.y; }
        if (k1) { out[row + u32(x1)] = acc1_3.y; }
        if (k2) { out[row + u32(x2)] = acc2_3.y; }
        if (k3) { out[row + u32(x3)] = acc3_3.y; }
        if (k4) { out[row + u32(x4)] = acc4_3.y; }
        if (k5) { out[row + u32(x5)] = acc5_3.y; }
        if (k6) { out[row + u32(x6)] = acc6_3.y; }
        if (k7) { out[row + u32(x7)] = acc7_3.y; }
        if (k8) { out[row + u32(x8)] = acc8_3.y; }
        if (k9) { out[row + u32(x9)] = acc9_3.y; }
        if (k10) { out[row + u32(x10)] = acc10_3.y; }
        if (k11) { out[row + u32(x11)] = acc11_3.y; }
        if (k12) { out[row + u32(x12)] = acc12_3.y; }
        if (k13) { out[row + u32(x13)] = acc13_3.y; }
        if (k14) { out[row + u32(x14)] = acc14_3.y; }
        if (k15) { out[row + u32(x15)] = acc15_3.y; }
    }
    if (cblk * 16u + 14u < p.cin) {
        let row = p.off_out + ((n * p.cin + cblk * 16u + 14u) * p.h + u32(iy)) * p.w;
        if (k0) { out[row + u32(x0)] = acc0_3.z; }
        if (k1) { out[row + u32(x1)] = acc1_3.z; }
        if (k2) { out[row + u32(x2)] = acc2_3.z; }
        if (k3) { out[row + u32(x3)] = acc3_3.z; }
        if (k4) { out[row + u32(x4)] = acc4_3.z; }
        if (k5) { out[row + u32(x5)] = acc5_3.z; }
        if (k6) { out[row + u32(x6)] = acc6_3.z; }
        if (k7) { out[row + u32(x7)] = acc7_3.z; }
        if (k8) { out[row + u32(x8)] = acc8_3.z; }
        if (k9) { out[row + u32(x9)] = acc9_3.z; }
        if (k10) { out[row + u32(x10)] = acc10_3.z; }
        if (k11) { out[row + u32(x11)] = acc11_3.z; }
        if (k12) { out[row + u32(x12)] = acc12_3.z; }
        if (k13) { out[row + u32(x13)] = acc13_3.z; }
        if (k14) { out[row + u32(x14)] = acc14_3.z; }
        if (k15) { out[row + u32(x15)] = acc15_3.z; }
    }
    if (cblk * 16u + 15u < p.cin) {
        let row = p.off_out + ((n * p.cin + cblk * 16u + 15u) * p.h + u32(iy)) * p.w;
        if (k0) { out[row + u32(x0)] = acc0_3.w; }
        if (k1) { out[row + u32(x1)] = acc1_3.w; }
        if (k2) { out[row + u32(x2)] = acc2_3.w; }
        if (k3) { out[row + u32(x3)] = acc3_3.w; }
        if (k4) { out[row + u32(x4)] = acc4_3.w; }
        if (k5) { out[row + u32(x5)] = acc5_3.w; }
        if (k6) { out[row + u32(x6)] = acc6_3.w; }
        if (k7) { out[row + u32(x7)] = acc7_3.w; }
        if (k8) { out[row + u32(x8)] = acc8_3.w; }
        if (k9) { out[row + u32(x9)] = acc9_3.w; }
        if (k10) { out[row + u32(x10)] = acc10_3.w; }
        if (k11) { out[row + u32(x11)] = acc11_3.w; }
        if (k12) { out[row + u32(x12)] = acc12_3.w; }
        if (k13) { out[row + u32(x13)] = acc13_3.w; }
        if (k14) { out[row + u32(x14)] = acc14_3.w; }
        if (k15) { out[row + u32(x15)] = acc15_3.w; }
    }
}

// Weight gradient, 3x3 stride 1 pad 1, OW % 4 == 0, Cin a multiple of the subgroup size: as
// `conv2d_backward_weight_3x3_vec4` in conv2d.wgsl (invocation (ci, 16 output channels) x 9 taps, four positions
// per step), but the lanes of a subgroup hold consecutive ci of the same 16 channels, so they need the same 16 gy
// vectors: each lane loads two of them (vectors sid % 8 and 8 + sid % 8) and subgroupBroadcast hands every lane
// all 16. Per step: 2 vec4 gy loads + 3 vec4 and 6 scalar x loads per lane feed 576 multiply-adds.
@compute @workgroup_size(64)
fn conv2d_backward_weight_3x3_subgroup(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                                       @builtin(local_invocation_index) lid: u32,
                                       @builtin(subgroup_invocation_id) sid: u32) {
    // Tiles on the grid's y, lanes of a tile on x: the row loop's bounds depend on the workgroup only, so the
    // subgroup operations inside it run in uniform control flow (WGSL's uniformity rule, which Tint enforces).
    let per_tile = p.cin * ((p.cout + 15u) / 16u);
    let tile = wid.y;
    let ok = wid.x * WG + lid < per_tile;
    let lc = min(wid.x * WG + lid, per_tile - 1u);
    let ci = lc % p.cin;
    let co0 = (lc / p.cin) * 16u;
    let ohw = p.oh * p.ow;
    let last = p.cout - 1u;
    // This lane's two gy channels (clamped to the last channel), as plane offsets from channel co0 in vec4 units.
    let ca = min(co0 + sid % 8u, last);
    let cb = min(co0 + 8u + sid % 8u, last);
    let oa = (ca - min(co0, last)) * ohw / 4u;
    let ob = (cb - min(co0, last)) * ohw / 4u;
    var acc0_0 = vec4<f32>(0.0); var acc0_1 = vec4<f32>(0.0); var acc0_2 = vec4<f32>(0.0); var acc0_3 = vec4<f32>(0.0);
    var acc1_0 = vec4<f32>(0.0); var acc1_1 = vec4<f32>(0.0); var acc1_2 = vec4<f32>(0.0); var acc1_3 = vec4<f32>(0.0);
    var acc2_0 = vec4<f32>(0.0); var acc2_1 = vec4<f32>(0.0); var acc2_2 = vec4<f32>(0.0); var acc2_3 = vec4<f32>(0.0);
    var acc3_0 = vec4<f32>(0.0); var acc3_1 = vec4<f32>(0.0); var acc3_2 = vec4<f32>(0.0); var acc3_3 = vec4<f32>(0.0);
    var acc4_0 = vec4<f32>(0.0); var acc4_1 = vec4<f32>(0.0); var acc4_2 = vec4<f32>(0.0); var acc4_3 = vec4<f32>(0.0);
    var acc5_0 = vec4<f32>(0.0); var acc5_1 = vec4<f32>(0.0); var acc5_2 = vec4<f32>(0.0); var acc5_3 = vec4<f32>(0.0);
    var acc6_0 = vec4<f32>(0.0); var acc6_1 = vec4<f32>(0.0); var acc6_2 = vec4<f32>(0.0); var acc6_3 = vec4<f32>(0.0);
    var acc7_0 = vec4<f32>(0.0); var acc7_1 = vec4<f32>(0.0); var acc7_2 = vec4<f32>(0.0); var acc7_3 = vec4<f32>(0.0);
    var acc8_0 = vec4<f32>(0.0); var acc8_1 = vec4<f32>(0.0); var acc8_2 = vec4<f32>(0.0); var acc8_3 = vec4<f32>(0.0);
    let r0 = tile * p.tile_len;
    let r1 = min(r0 + p.tile_len, p.n * p.oh);
    let w4 = p.ow / 4u;
    for (var r = r0; r < r1; r++) {
        let n = r / p.oh;
        let oy = r % p.oh;
        let gb = (p.off_gy + ((n * p.cout + min(co0, last)) * p.oh + oy) * p.ow) / 4u;
        let xb = p.off_x + (n * p.cin + ci) * p.h * p.w;
        let iy = i32(oy) - 1;
        for (var q = 0u; q < w4; q++) {
            let ox = i32(q * 4u);
            let la = gy4[gb + oa + q];
            let lb = gy4[gb + ob + q];
            let g0 = subgroupBroadcast(la, 0u);
            let g1 = subgroupBroadcast(la, 1u);
            let g2 = subgroupBroadcast(la, 2u);
            let g3 = subgroupBroadcast(la, 3u);
            let g4 = subgroupBroadcast(la, 4u);
            let g5 = subgroupBroadcast(la, 5u);
            let g6 = subgroupBroadcast(la, 6u);
            let g7 = subgroupBroadcast(la, 7u);
            let g8 = subgroupBroadcast(lb, 0u);
            let g9 = subgroupBroadcast(lb, 1u);
            let g10 = subgroupBroadcast(lb, 2u);
            let g11 = subgroupBroadcast(lb, 3u);
            let g12 = subgroupBroadcast(lb, 4u);
            let g13 = subgroupBroadcast(lb, 5u);
            let g14 = subgroupBroadcast(lb, 6u);
            let g15 = subgroupBroadcast(lb, 7u);
            let y0 = iy + 0;
            let ok0 = y0 >= 0 && y0 < i32(p.h);
            let e00 = xat(xb, y0, ox - 1); let e05 = xat(xb, y0, ox + 4);
            let v0 = select(vec4<f32>(0.0), x4[(xb + u32(select(0, y0, ok0)) * p.w) / 4u + q], ok0);
            let y1 = iy + 1;
            let ok1 = y1 >= 0 && y1 < i32(p.h);
            let e10 = xat(xb, y1, ox - 1); let e15 = xat(xb, y1, ox + 4);
            let v1 = select(vec4<f32>(0.0), x4[(xb + u32(select(0, y1, ok1)) * p.w) / 4u + q], ok1);
            let y2 = iy + 2;
            let ok2 = y2 >= 0 && y2 < i32(p.h);
            let e20 = xat(xb, y2, ox - 1); let e25 = xat(xb, y2, ox + 4);
            let v2 = select(vec4<f32>(0.0), x4[(xb + u32(select(0, y2, ok2)) * p.w) / 4u + q], ok2);
            let h0_0 = vec4<f32>(g0.x, g1.x, g2.x, g3.x);
            let h0_1 = vec4<f32>(g4.x, g5.x, g6.x, g7.x);
            let h0_2 = vec4<f32>(g8.x, g9.x, g10.x, g11.x);
            let h0_3 = vec4<f32>(g12.x, g13.x, g14.x, g15.x);
            acc0_0 += h0_0 * e00; acc0_1 += h0_1 * e00; acc0_2 += h0_2 * e00; acc0_3 += h0_3 * e00;
            acc1_0 += h0_0 * v0.x; acc1_1 += h0_1 * v0.x; acc1_2 += h0_2 * v0.x; acc1_3 += h0_3 * v0.x;
            acc2_0 += h0_0 * v0.y; acc2_1 += h0_1 * v0.y; acc2_2 += h0_2 * v0.y; acc2_3 += h0_3 * v0.y;
            acc3_0 += h0_0 * e10; acc3_1 += h0_1 * e10; acc3_2 += h0_2 * e10; acc3_3 += h0_3 * e10;
            acc4_0 += h0_0 * v1.x; acc4_1 += h0_1 * v1.x; acc4_2 += h0_2 * v1.x; acc4_3 += h0_3 * v1.x;
            acc5_0 += h0_0 * v1.y; acc5_1 += h0_1 * v1.y; acc5_2 += h0_2 * v1.y; acc5_3 += h0_3 * v1.y;
            acc6_0 += h0_0 * e20; acc6_1 += h0_1 * e20; acc6_2 += h0_2 * e20; acc6_3 += h0_3 * e20;
            acc7_0 += h0_0 * v2.x; acc7_1 += h0_1 * v2.x; acc7_2 += h0_2 * v2.x; acc7_3 += h0_3 * v2.x;
            acc8_0 += h0_0 * v2.y; acc8_1 += h0_1 * v2.y; acc8_2 += h0_2 * v2.y; acc8_3 += h0_3 * v2.y;
            let h1_0 = vec4<f32>(g0.y, g1.y, g2.y, g3.y);
            let h1_1 = vec4<f32>(g4.y, g5.y, g6.y, g7.y);
            let h1_2 = vec4<f32>(g8.y, g9.y, g10.y, g11.y);
            let h1_3 = vec4<f32>(g12.y, g13.y, g14.y, g15.y);
            acc0_0 += h1_0 * v0.x; acc0_1 += h1_1 * v0.x; acc0_2 += h1_2 * v0.x; acc0_3 += h1_3 * v0.x;
            acc1_0 += h1_0 * v0.y; acc1_1 += h1_1 * v0.y; acc1_2 += h1_2 * v0.y; acc1_3 += h1_3 * v0.y;
            acc2_0 += h1_0 * v0.z; acc2_1 += h1_1 * v0.z; acc2_2 += h1_2 * v0.z; acc2_3 += h1_3 * v0.z;
            acc3_0 += h1_0 * v1.x; acc3_1 += h1_1 * v1.x; acc3_2 += h1_2 * v1.x; acc3_3 += h1_3 * v1.x;
            acc4_0 += h1_0 * v1.y; acc4_1 += h1_1 * v1.y; acc4_2 += h1_2 * v1.y; acc4_3 += h1_3 * v1.y;
            acc5_0 += h1_0 * v1.z; acc5_1 += h1_1 * v1.z; acc5_2 += h1_2 * v1.z; acc5_3 += h1_3 * v1.z;
            acc6_0 += h1_0 * v2.x; acc6_1 += h1_1 * v2.x; acc6_2 += h1_2 * v2.x; acc6_3 += h1_3 * v2.x;
            acc7_0 += h1_0 * v2.y; acc7_1 += h1_1 * v2.y; acc7_2 += h1_2 * v2.y; acc7_3 += h1_3 * v2.y;
            acc8_0 += h1_0 * v2.z; acc8_1 += h1_1 * v2.z; acc8_2 += h1_2 * v2.z; acc8_3 += h1_3 * v2.z;
            let h2_0 = vec4<f32>(g0.z, g1.z, g2.z, g3.z);
            let h2_1 = vec4<f32>(g4.z, g5.z, g6.z, g7.z);
            let h2_2 = vec4<f32>(g8.z, g9.z, g10.z, g11.z);
            let h2_3 = vec4<f32>(g12.z, g13.z, g14.z, g15.z);
            acc0_0 += h2_0 * v0.y; acc0_1 += h2_1 * v0.y; acc0_2 += h2_2 * v0.y; acc0_3 += h2_3 * v0.y;
            acc1_0 += h2_0 * v0.z; acc1_1 += h2_1 * v0.z; acc1_2 += h2_2 * v0.z; acc1_3 += h2_3 * v0.z;
            acc2_0 += h2_0 * v0.w; acc2_1 += h2_1 * v0.w; acc2_2 += h2_2 * v0.w; acc2_3 += h2_3 * v0.w;
            acc3_0 += h2_0 * v1.y; acc3_1 += h2_1 * v1.y; acc3_2 += h2_2 * v1.y; acc3_3 += h2_3 * v1.y;
            acc4_0 += h2_0 * v1.z; acc4_1 += h2_1 * v1.z; acc4_2 += h2_2 * v1.z; acc4_3 += h2_3 * v1.z;
            acc5_0 += h2_0 * v1.w; acc5_1 += h2_1 * v1.w; acc5_2 += h2_2 * v1.w; acc5_3 += h2_3 * v1.w;
            acc6_0 += h2_0 * v2.y; acc6_1 += h2_1 * v2.y; acc6_2 += h2_2 * v2.y; acc6_3 += h2_3 * v2.y;
            acc7_0 += h2_0 * v2.z; acc7_1 += h2_1 * v2.z; acc7_2 += h2_2 * v2.z; acc7_3 += h2_3 * v2.z;
            acc8_0 += h2_0 * v2.w; acc8_1 += h2_1 * v2.w; acc8_2 += h2_2 * v2.w; acc8_3 += h2_3 * v2.w;
            let h3_0 = vec4<f32>(g0.w, g1.w, g2.w, g3.w);
            let h3_1 = vec4<f32>(g4.w, g5.w, g6.w, g7.w);
            let h3_2 = vec4<f32>(g8.w, g9.w, g10.w, g11.w);
            let h3_3 = vec4<f32>(g12.w, g13.w, g14.w, g15.w);
            acc0_0 += h3_0 * v0.z; acc0_1 += h3_1 * v0.z; acc0_2 += h3_2 * v0.z; acc0_3 += h3_3 * v0.z;
            acc1_0 += h3_0 * v0.w; acc1_1 += h3_1 * v0.w; acc1_2 += h3_2 * v0.w; acc1_3 += h3_3 * v0.w;
            acc2_0 += h3_0 * e05; acc2_1 += h3_1 * e05; acc2_2 += h3_2 * e05; acc2_3 += h3_3 * e05;
            acc3_0 += h3_0 * v1.z; acc3_1 += h3_1 * v1.z; acc3_2 += h3_2 * v1.z; acc3_3 += h3_3 * v1.z;
            acc4_0 += h3_0 * v1.w; acc4_1 += h3_1 * v1.w; acc4_2 += h3_2 * v1.w; acc4_3 += h3_3 * v1.w;
            acc5_0 += h3_0 * e15; acc5_1 += h3_1 * e15; acc5_2 += h3_2 * e15; acc5_3 += h3_3 * e15;
            acc6_0 += h3_0 * v2.z; acc6_1 += h3_1 * v2.z; acc6_2 += h3_2 * v2.z; acc6_3 += h3_3 * v2.z;
            acc7_0 += h3_0 * v2.w; acc7_1 += h3_1 * v2.w; acc7_2 += h3_2 * v2.w; acc7_3 += h3_3 * v2.w;
            acc8_0 += h3_0 * e25; acc8_1 += h3_1 * e25; acc8_2 += h3_2 * e25; acc8_3 += h3_3 * e25;
        }
    }
    if (!ok) { return; }
    let m0 = p.off_out + tile * p.m + ci * 9u;
    // Stores written out (constant register indices: a dynamically indexed accumulator array would be spilled
    // to memory and gathered per element).
    if (co0 + 0u < p.cout) {
        let o0 = m0 + (co0 + 0u) * p.cin * 9u;
        out[o0 + 0u] = acc0_0.x; out[o0 + 1u] = acc1_0.x; out[o0 + 2u] = acc2_0.x; out[o0 + 3u] = acc3_0.x; out[o0 + 4u] = acc4_0.x; out[o0 + 5u] = acc5_0.x; out[o0 + 6u] = acc6_0.x; out[o0 + 7u] = acc7_0.x; out[o0 + 8u] = acc8_0.x;
    }
    if (co0 + 1u < p.cout) {
        let o1 = m0 + (co0 + 1u) * p.cin * 9u;
        out[o1 + 0u] = acc0_0.y; out[o1 + 1u] = acc1_0.y; out[o1 + 2u] = acc2_0.y; out[o1 + 3u] = acc3_0.y; out[o1 + 4u] = acc4_0.y; out[o1 + 5u] = acc5_0.y; out[o1 + 6u] = acc6_0.y; out[o1 + 7u] = acc7_0.y; out[o1 + 8u] = acc8_0.y;
    }
    if (co0 + 2u < p.cout) {
        let o2 = m0 + (co0 + 2u) * p.cin * 9u;
        out[o2 + 0u] = acc0_0.z; out[o2 + 1u] = acc1_0.z; out[o2 + 2u] = acc2_0.z; out[o2 + 3u] = acc3_0.z; out[o2 + 4u] = acc4_0.z; out[o2 + 5u] = acc5_0.z; out[o2 + 6u] = acc6_0.z; out[o2 + 7u] = acc7_0.z; out[o2 + 8u] = acc8_0.z;
    }
    if (co0 + 3u < p.cout) {
        let o3 = m0 + (co0 + 3u) * p.cin * 9u;
        out[o3 + 0u] = acc0_0.w; out[o3 + 1u] = acc1_0.w; out[o3 + 2u] = acc2_0.w; out[o3 + 3u] = acc3_0.w; out[o3 + 4u] = acc4_0.w; out[o3 + 5u] = acc5_0.w; out[o3 + 6u] = acc6_0.w; out[o3 + 7u] = acc7_0.w; out[o3 + 8u] = acc8_0.w;
    }
    if (co0 + 4u < p.cout) {
        let o4 = m0 + (co0 + 4u) * p.cin * 9u;
        out[o4 + 0u] = acc0_1.x; out[o4 + 1u] = acc1_1.x; out[o4 + 2u] = acc2_1.x; out[o4 + 3u] = acc3_1.x; out[o4 + 4u] = acc4_1.x; out[o4 + 5u] = acc5_1.x; out[o4 + 6u] = acc6_1.x; out[o4 + 7u] = acc7_1.x; out[o4 + 8u] = acc8_1.x;
    }
    if (co0 + 5u < p.cout) {
        let o5 = m0 + (co0 + 5u) * p.cin * 9u;
        out[o5 + 0u] = acc0_1.y; out[o5 + 1u] = acc1_1.y; out[o5 + 2u] = acc2_1.y; out[o5 + 3u] = acc3_1.y; out[o5 + 4u] = acc4_1.y; out[o5 + 5u] = acc5_1.y; out[o5 + 6u] = acc6_1.y; out[o5 + 7u] = acc7_1.y; out[o5 + 8u] = acc8_1.y;
    }
    if (co0 + 6u < p.cout) {
        let o6 = m0 + (co0 + 6u) * p.cin * 9u;
        out[o6 + 0u] = acc0_1.z; out[o6 + 1u] = acc1_1.z; out[o6 + 2u] = acc2_1.z; out[o6 + 3u] = acc3_1.z; out[o6 + 4u] = acc4_1.z; out[o6 + 5u] = acc5_1.z; out[o6 + 6u] = acc6_1.z; out[o6 + 7u] = acc7_1.z; out[o6 + 8u] = acc8_1.z;
    }
    if (co0 + 7u < p.cout) {
        let o7 = m0 + (co0 + 7u) * p.cin * 9u;
        out[o7 + 0u] = acc0_1.w; out[o7 + 1u] = acc1_1.w; out[o7 + 2u] = acc2_1.w; out[o7 + 3u] = acc3_1.w; out[o7 + 4u] = acc4_1.w; out[o7 + 5u] = acc5_1.w; out[o7 + 6u] = acc6_1.w; out[o7 + 7u] = acc7_1.w; out[o7 + 8u] = acc8_1.w;
    }
    if (co0 + 8u < p.cout) {
        let o8 = m0 + (co0 + 8u) * p.cin * 9u;
        out[o8 + 0u] = acc0_2.x; out[o8 + 1u] = acc1_2.x; out[o8 + 2u] = acc2_2.x; out[o8 + 3u] = acc3_2.x; out[o8 + 4u] = acc4_2.x; out[o8 + 5u] = acc5_2.x; out[o8 + 6u] = acc6_2.x; out[o8 + 7u] = acc7_2.x; out[o8 + 8u] = acc8_2.x;
    }
    if (co0 + 9u < p.cout) {
        let o9 = m0 + (co0 + 9u) * p.cin * 9u;
        out[o9 + 0u] = acc0_2.y; out[o9 + 1u] = acc1_2.y; out[o9 + 2u] = acc2_2.y; out[o9 + 3u] = acc3_2.y; out[o9 + 4u] = acc4_2.y; out[o9 + 5u] = acc5_2.y; out[o9 + 6u] = acc6_2.y; out[o9 + 7u] = acc7_2.y; out[o9 + 8u] = acc8_2.y;
    }
    if (co0 + 10u < p.cout) {
        let o10 = m0 + (co0 + 10u) * p.cin * 9u;
        out[o10 + 0u] = acc0_2.z; out[o10 + 1u] = acc1_2.z; out[o10 + 2u] = acc2_2.z; out[o10 + 3u] = acc3_2.z; out[o10 + 4u] = acc4_2.z; out[o10 + 5u] = acc5_2.z; out[o10 + 6u] = acc6_2.z; out[o10 + 7u] = acc7_2.z; out[o10 + 8u] = acc8_2.z;
    }
    if (co0 + 11u < p.cout) {
        let o11 = m0 + (co0 + 11u) * p.cin * 9u;
        out[o11 + 0u] = acc0_2.w; out[o11 + 1u] = acc1_2.w; out[o11 + 2u] = acc2_2.w; out[o11 + 3u] = acc3_2.w; out[o11 + 4u] = acc4_2.w; out[o11 + 5u] = acc5_2.w; out[o11 + 6u] = acc6_2.w; out[o11 + 7u] = acc7_2.w; out[o11 + 8u] = acc8_2.w;
    }
    if (co0 + 12u < p.cout) {
        let o12 = m0 + (co0 + 12u) * p.cin * 9u;
        out[o12 + 0u] = acc0_3.x; out[o12 + 1u] = acc1_3.x; out[o12 + 2u] = acc2_3.x; out[o12 + 3u] = acc3_3.x; out[o12 + 4u] = acc4_3.x; out[o12 + 5u] = acc5_3.x; out[o12 + 6u] = acc6_3.x; out[o12 + 7u] = acc7_3.x; out[o12 + 8u] = acc8_3.x;
    }
    if (co0 + 13u < p.cout) {
        let o13 = m0 + (co0 + 13u) * p.cin * 9u;
        out[o13 + 0u] = acc0_3.y; out[o13 + 1u] = acc1_3.y; out[o13 + 2u] = acc2_3.y; out[o13 + 3u] = acc3_3.y; out[o13 + 4u] = acc4_3.y; out[o13 + 5u] = acc5_3.y; out[o13 + 6u] = acc6_3.y; out[o13 + 7u] = acc7_3.y; out[o13 + 8u] = acc8_3.y;
    }
    if (co0 + 14u < p.cout) {
        let o14 = m0 + (co0 + 14u) * p.cin * 9u;
        out[o14 + 0u] = acc0_3.z; out[o14 + 1u] = acc1_3.z; out[o14 + 2u] = acc2_3.z; out[o14 + 3u] = acc3_3.z; out[o14 + 4u] = acc4_3.z; out[o14 + 5u] = acc5_3.z; out[o14 + 6u] = acc6_3.z; out[o14 + 7u] = acc7_3.z; out[o14 + 8u] = acc8_3.z;
    }
    if (co0 + 15u < p.cout) {
        let o15 = m0 + (co0 + 15u) * p.cin * 9u;
        out[o15 + 0u] = acc0_3.w; out[o15 + 1u] = acc1_3.w; out[o15 + 2u] = acc2_3.w; out[o15 + 3u] = acc3_3.w; out[o15 + 4u] = acc4_3.w; out[o15 + 5u] = acc5_3.w; out[o15 + 6u] = acc6_3.w; out[o15 + 7u] = acc7_3.w; out[o15 + 8u] = acc8_3.w;
    }
}

// Weight gradient, 3x3 stride 2 pad 1: `conv2d_backward_weight_3x3s2_vec4` in conv2d.wgsl with the gy vectors
// shared across the subgroup as in `conv2d_backward_weight_3x3_subgroup`.
@compute @workgroup_size(64)
fn conv2d_backward_weight_3x3s2_subgroup(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                                       @builtin(local_invocation_index) lid: u32,
                                       @builtin(subgroup_invocation_id) sid: u32) {
    // Tiles on the grid's y, lanes of a tile on x: the row loop's bounds depend on the workgroup only, so the
    // subgroup operations inside it run in uniform control flow (WGSL's uniformity rule, which Tint enforces).
    let per_tile = p.cin * ((p.cout + 15u) / 16u);
    let tile = wid.y;
    let ok = wid.x * WG + lid < per_tile;
    let lc = min(wid.x * WG + lid, per_tile - 1u);
    let ci = lc % p.cin;
    let co0 = (lc / p.cin) * 16u;
    let ohw = p.oh * p.ow;
    let last = p.cout - 1u;
    // This lane's two gy channels (clamped to the last channel), as plane offsets from channel co0 in vec4 units.
    let ca = min(co0 + sid % 8u, last);
    let cb = min(co0 + 8u + sid % 8u, last);
    let oa = (ca - min(co0, last)) * ohw / 4u;
    let ob = (cb - min(co0, last)) * ohw / 4u;
    var acc0_0 = vec4<f32>(0.0); var acc0_1 = vec4<f32>(0.0); var acc0_2 = vec4<f32>(0.0); var acc0_3 = vec4<f32>(0.0);
    var acc1_0 = vec4<f32>(0.0); var acc1_1 = vec4<f32>(0.0); var acc1_2 = vec4<f32>(0.0); var acc1_3 = vec4<f32>(0.0);
    var acc2_0 = vec4<f32>(0.0); var acc2_1 = vec4<f32>(0.0); var acc2_2 = vec4<f32>(0.0); var acc2_3 = vec4<f32>(0.0);
    var acc3_0 = vec4<f32>(0.0); var acc3_1 = vec4<f32>(0.0); var acc3_2 = vec4<f32>(0.0); var acc3_3 = vec4<f32>(0.0);
    var acc4_0 = vec4<f32>(0.0); var acc4_1 = vec4<f32>(0.0); var acc4_2 = vec4<f32>(0.0); var acc4_3 = vec4<f32>(0.0);
    var acc5_0 = vec4<f32>(0.0); var acc5_1 = vec4<f32>(0.0); var acc5_2 = vec4<f32>(0.0); var acc5_3 = vec4<f32>(0.0);
    var acc6_0 = vec4<f32>(0.0); var acc6_1 = vec4<f32>(0.0); var acc6_2 = vec4<f32>(0.0); var acc6_3 = vec4<f32>(0.0);
    var acc7_0 = vec4<f32>(0.0); var acc7_1 = vec4<f32>(0.0); var acc7_2 = vec4<f32>(0.0); var acc7_3 = vec4<f32>(0.0);
    var acc8_0 = vec4<f32>(0.0); var acc8_1 = vec4<f32>(0.0); var acc8_2 = vec4<f32>(0.0); var acc8_3 = vec4<f32>(0.0);
    let r0 = tile * p.tile_len;
    let r1 = min(r0 + p.tile_len, p.n * p.oh);
    let w4 = p.ow / 4u;
    for (var r = r0; r < r1; r++) {
        let n = r / p.oh;
        let oy = r % p.oh;
        let gb = (p.off_gy + ((n * p.cout + min(co0, last)) * p.oh + oy) * p.ow) / 4u;
        let xb = p.off_x + (n * p.cin + ci) * p.h * p.w;
        let iy = 2 * i32(oy) - 1;
        for (var q = 0u; q < w4; q++) {
            let ox = i32(q * 4u);
            let la = gy4[gb + oa + q];
            let lb = gy4[gb + ob + q];
            let g0 = subgroupBroadcast(la, 0u);
            let g1 = subgroupBroadcast(la, 1u);
            let g2 = subgroupBroadcast(la, 2u);
            let g3 = subgroupBroadcast(la, 3u);
            let g4 = subgroupBroadcast(la, 4u);
            let g5 = subgroupBroadcast(la, 5u);
            let g6 = subgroupBroadcast(la, 6u);
            let g7 = subgroupBroadcast(la, 7u);
            let g8 = subgroupBroadcast(lb, 0u);
            let g9 = subgroupBroadcast(lb, 1u);
            let g10 = subgroupBroadcast(lb, 2u);
            let g11 = subgroupBroadcast(lb, 3u);
            let g12 = subgroupBroadcast(lb, 4u);
            let g13 = subgroupBroadcast(lb, 5u);
            let g14 = subgroupBroadcast(lb, 6u);
            let g15 = subgroupBroadcast(lb, 7u);
            // Kernel row ky: x columns 2ox-1 .. 2ox+6 of input row 2oy-1+ky as e{ky} and v{ky}, u{ky} (4 each).
            let y0 = iy + 0;
            let ok0 = y0 >= 0 && y0 < i32(p.h);
            let e0 = xat(xb, y0, 2 * ox - 1);
            let c0 = (xb + u32(select(0, y0, ok0)) * p.w) / 4u + 2u * q;
            let v0 = select(vec4<f32>(0.0), x4[c0], ok0); let u0 = select(vec4<f32>(0.0), x4[c0 + 1u], ok0);
            let y1 = iy + 1;
            let ok1 = y1 >= 0 && y1 < i32(p.h);
            let e1 = xat(xb, y1, 2 * ox - 1);
            let c1 = (xb + u32(select(0, y1, ok1)) * p.w) / 4u + 2u * q;
            let v1 = select(vec4<f32>(0.0), x4[c1], ok1); let u1 = select(vec4<f32>(0.0), x4[c1 + 1u], ok1);
            let y2 = iy + 2;
            let ok2 = y2 >= 0 && y2 < i32(p.h);
            let e2 = xat(xb, y2, 2 * ox - 1);
            let c2 = (xb + u32(select(0, y2, ok2)) * p.w) / 4u + 2u * q;
            let v2 = select(vec4<f32>(0.0), x4[c2], ok2); let u2 = select(vec4<f32>(0.0), x4[c2 + 1u], ok2);
            // Position j, tap (ky, kx): acc[ky*3+kx][group] += gy[4 channels, ox+j] * x[2oy-1+ky, 2(ox+j)-1+kx].
            let h0_0 = vec4<f32>(g0.x, g1.x, g2.x, g3.x);
            let h0_1 = vec4<f32>(g4.x, g5.x, g6.x, g7.x);
            let h0_2 = vec4<f32>(g8.x, g9.x, g10.x, g11.x);
            let h0_3 = vec4<f32>(g12.x, g13.x, g14.x, g15.x);
            acc0_0 += h0_0 * e0; acc0_1 += h0_1 * e0; acc0_2 += h0_2 * e0; acc0_3 += h0_3 * e0;
            acc1_0 += h0_0 * v0.x; acc1_1 += h0_1 * v0.x; acc1_2 += h0_2 * v0.x; acc1_3 += h0_3 * v0.x;
            acc2_0 += h0_0 * v0.y; acc2_1 += h0_1 * v0.y; acc2_2 += h0_2 * v0.y; acc2_3 += h0_3 * v0.y;
            acc3_0 += h0_0 * e1; acc3_1 += h0_1 * e1; acc3_2 += h0_2 * e1; acc3_3 += h0_3 * e1;
            acc4_0 += h0_0 * v1.x; acc4_1 += h0_1 * v1.x; acc4_2 += h0_2 * v1.x; acc4_3 += h0_3 * v1.x;
            acc5_0 += h0_0 * v1.y; acc5_1 += h0_1 * v1.y; acc5_2 += h0_2 * v1.y; acc5_3 += h0_3 * v1.y;
            acc6_0 += h0_0 * e2; acc6_1 += h0_1 * e2; acc6_2 += h0_2 * e2; acc6_3 += h0_3 * e2;
            acc7_0 += h0_0 * v2.x; acc7_1 += h0_1 * v2.x; acc7_2 += h0_2 * v2.x; acc7_3 += h0_3 * v2.x;
            acc8_0 += h0_0 * v2.y; acc8_1 += h0_1 * v2.y; acc8_2 += h0_2 * v2.y; acc8_3 += h0_3 * v2.y;
            let h1_0 = vec4<f32>(g0.y, g1.y, g2.y, g3.y);
            let h1_1 = vec4<f32>(g4.y, g5.y, g6.y, g7.y);
            let h1_2 = vec4<f32>(g8.y, g9.y, g10.y, g11.y);
            let h1_3 = vec4<f32>(g12.y, g13.y, g14.y, g15.y);
            acc0_0 += h1_0 * v0.y; acc0_1 += h1_1 * v0.y; acc0_2 += h1_2 * v0.y; acc0_3 += h1_3 * v0.y;
            acc1_0 += h1_0 * v0.z; acc1_1 += h1_1 * v0.z; acc1_2 += h1_2 * v0.z; acc1_3 += h1_3 * v0.z;
            acc2_0 += h1_0 * v0.w; acc2_1 += h1_1 * v0.w; acc2_2 += h1_2 * v0.w; acc2_3 += h1_3 * v0.w;
            acc3_0 += h1_0 * v1.y; acc3_1 += h1_1 * v1.y; acc3_2 += h1_2 * v1.y; acc3_3 += h1_3 * v1.y;
            acc4_0 += h1_0 * v1.z; acc4_1 += h1_1 * v1.z; acc4_2 += h1_2 * v1.z; acc4_3 += h1_3 * v1.z;
            acc5_0 += h1_0 * v1.w; acc5_1 += h1_1 * v1.w; acc5_2 += h1_2 * v1.w; acc5_3 += h1_3 * v1.w;
            acc6_0 += h1_0 * v2.y; acc6_1 += h1_1 * v2.y; acc6_2 += h1_2 * v2.y; acc6_3 += h1_3 * v2.y;
            acc7_0 += h1_0 * v2.z; acc7_1 += h1_1 * v2.z; acc7_2 += h1_2 * v2.z; acc7_3 += h1_3 * v2.z;
            acc8_0 += h1_0 * v2.w; acc8_1 += h1_1 * v2.w; acc8_2 += h1_2 * v2.w; acc8_3 += h1_3 * v2.w;
            let h2_0 = vec4<f32>(g0.z, g1.z, g2.z, g3.z);
            let h2_1 = vec4<f32>(g4.z, g5.z, g6.z, g7.z);
            let h2_2 = vec4<f32>(g8.z, g9.z, g10.z, g11.z);
            let h2_3 = vec4<f32>(g12.z, g13.z, g14.z, g15.z);
            acc0_0 += h2_0 * v0.w; acc0_1 += h2_1 * v0.w; acc0_2 += h2_2 * v0.w; acc0_3 += h2_3 * v0.w;
            acc1_0 += h2_0 * u0.x; acc1_1 += h2_1 * u0.x; acc1_2 += h2_2 * u0.x; acc1_3 += h2_3 * u0.x;
            acc2_0 += h2_0 * u0.y; acc2_1 += h2_1 * u0.y; acc2_2 += h2_2 * u0.y; acc2_3 += h2_3 * u0.y;
            acc3_0 += h2_0 * v1.w; acc3_1 += h2_1 * v1.w; acc3_2 += h2_2 * v1.w; acc3_3 += h2_3 * v1.w;
            acc4_0 += h2_0 * u1.x; acc4_1 += h2_1 * u1.x; acc4_2 += h2_2 * u1.x; acc4_3 += h2_3 * u1.x;
            acc5_0 += h2_0 * u1.y; acc5_1 += h2_1 * u1.y; acc5_2 += h2_2 * u1.y; acc5_3 += h2_3 * u1.y;
            acc6_0 += h2_0 * v2.w; acc6_1 += h2_1 * v2.w; acc6_2 += h2_2 * v2.w; acc6_3 += h2_3 * v2.w;
            acc7_0 += h2_0 * u2.x; acc7_1 += h2_1 * u2.x; acc7_2 += h2_2 * u2.x; acc7_3 += h2_3 * u2.x;
            acc8_0 += h2_0 * u2.y; acc8_1 += h2_1 * u2.y; acc8_2 += h2_2 * u2.y; acc8_3 += h2_3 * u2.y;
            let h3_0 = vec4<f32>(g0.w, g1.w, g2.w, g3.w);
            let h3_1 = vec4<f32>(g4.w, g5.w, g6.w, g7.w);
            let h3_2 = vec4<f32>(g8.w, g9.w, g10.w, g11.w);
            let h3_3 = vec4<f32>(g12.w, g13.w, g14.w, g15.w);
            acc0_0 += h3_0 * u0.y; acc0_1 += h3_1 * u0.y; acc0_2 += h3_2 * u0.y; acc0_3 += h3_3 * u0.y;
            acc1_0 += h3_0 * u0.z; acc1_1 += h3_1 * u0.z; acc1_2 += h3_2 * u0.z; acc1_3 += h3_3 * u0.z;
            acc2_0 += h3_0 * u0.w; acc2_1 += h3_1 * u0.w; acc2_2 += h3_2 * u0.w; acc2_3 += h3_3 * u0.w;
            acc3_0 += h3_0 * u1.y; acc3_1 += h3_1 * u1.y; acc3_2 += h3_2 * u1.y; acc3_3 += h3_3 * u1.y;
            acc4_0 += h3_0 * u1.z; acc4_1 += h3_1 * u1.z; acc4_2 += h3_2 * u1.z; acc4_3 += h3_3 * u1.z;
            acc5_0 += h3_0 * u1.w; acc5_1 += h3_1 * u1.w; acc5_2 += h3_2 * u1.w; acc5_3 += h3_3 * u1.w;
            acc6_0 += h3_0 * u2.y; acc6_1 += h3_1 * u2.y; acc6_2 += h3_2 * u2.y; acc6_3 += h3_3 * u2.y;
            acc7_0 += h3_0 * u2.z; acc7_1 += h3_1 * u2.z; acc7_2 += h3_2 * u2.z; acc7_3 += h3_3 * u2.z;
            acc8_0 += h3_0 * u2.w; acc8_1 += h3_1 * u2.w; acc8_2 += h3_2 * u2.w; acc8_3 += h3_3 * u2.w;
        }
    }
    if (!ok) { return; }
    let m0 = p.off_out + tile * p.m + ci * 9u;
    // Stores written out (constant register indices: a dynamically indexed accumulator array would be spilled
    // to memory and gathered per element).
    if (co0 + 0u < p.cout) {
        let o0 = m0 + (co0 + 0u) * p.cin * 9u;
        out[o0 + 0u] = acc0_0.x; out[o0 + 1u] = acc1_0.x; out[o0 + 2u] = acc2_0.x; out[o0 + 3u] = acc3_0.x; out[o0 + 4u] = acc4_0.x; out[o0 + 5u] = acc5_0.x; out[o0 + 6u] = acc6_0.x; out[o0 + 7u] = acc7_0.x; out[o0 + 8u] = acc8_0.x;
    }
    if (co0 + 1u < p.cout) {
        let o1 = m0 + (co0 + 1u) * p.cin * 9u;
        out[o1 + 0u] = acc0_0.y; out[o1 + 1u] = acc1_0.y; out[o1 + 2u] = acc2_0.y; out[o1 + 3u] = acc3_0.y; out[o1 + 4u] = acc4_0.y; out[o1 + 5u] = acc5_0.y; out[o1 + 6u] = acc6_0.y; out[o1 + 7u] = acc7_0.y; out[o1 + 8u] = acc8_0.y;
    }
    if (co0 + 2u < p.cout) {
        let o2 = m0 + (co0 + 2u) * p.cin * 9u;
        out[o2 + 0u] = acc0_0.z; out[o2 + 1u] = acc1_0.z; out[o2 + 2u] = acc2_0.z; out[o2 + 3u] = acc3_0.z; out[o2 + 4u] = acc4_0.z; out[o2 + 5u] = acc5_0.z; out[o2 + 6u] = acc6_0.z; out[o2 + 7u] = acc7_0.z; out[o2 + 8u] = acc8_0.z;
    }
    if (co0 + 3u < p.cout) {
        let o3 = m0 + (co0 + 3u) * p.cin * 9u;
        out[o3 + 0u] = acc0_0.w; out[o3 + 1u] = acc1_0.w; out[o3 + 2u] = acc2_0.w; out[o3 + 3u] = acc3_0.w; out[o3 + 4u] = acc4_0.w; out[o3 + 5u] = acc5_0.w; out[o3 + 6u] = acc6_0.w; out[o3 + 7u] = acc7_0.w; out[o3 + 8u] = acc8_0.w;
    }
    if (co0 + 4u < p.cout) {
        let o4 = m0 + (co0 + 4u) * p.cin * 9u;
        out[o4 + 0u] = acc0_1.x; out[o4 + 1u] = acc1_1.x; out[o4 + 2u] = acc2_1.x; out[o4 + 3u] = acc3_1.x; out[o4 + 4u] = acc4_1.x; out[o4 + 5u] = acc5_1.x; out[o4 + 6u] = acc6_1.x; out[o4 + 7u] = acc7_1.x; out[o4 + 8u] = acc8_1.x;
    }
    if (co0 + 5u < p.cout) {
        let o5 = m0 + (co0 + 5u) * p.cin * 9u;
        out[o5 + 0u] = acc0_1.y; out[o5 + 1u] = acc1_1.y; out[o5 + 2u] = acc2_1.y; out[o5 + 3u] = acc3_1.y; out[o5 + 4u] = acc4_1.y; out[o5 + 5u] = acc5_1.y; out[o5 + 6u] = acc6_1.y; out[o5 + 7u] = acc7_1.y; out[o5 + 8u] = acc8_1.y;
    }
    if (co0 + 6u < p.cout) {
        let o6 = m0 + (co0 + 6u) * p.cin * 9u;
        out[o6 + 0u] = acc0_1.z; out[o6 + 1u] = acc1_1.z; out[o6 + 2u] = acc2_1.z; out[o6 + 3u] = acc3_1.z; out[o6 + 4u] = acc4_1.z; out[o6 + 5u] = acc5_1.z; out[o6 + 6u] = acc6_1.z; out[o6 + 7u] = acc7_1.z; out[o6 + 8u] = acc8_1.z;
    }
    if (co0 + 7u < p.cout) {
        let o7 = m0 + (co0 + 7u) * p.cin * 9u;
        out[o7 + 0u] = acc0_1.w; out[o7 + 1u] = acc1_1.w; out[o7 + 2u] = acc2_1.w; out[o7 + 3u] = acc3_1.w; out[o7 + 4u] = acc4_1.w; out[o7 + 5u] = acc5_1.w; out[o7 + 6u] = acc6_1.w; out[o7 + 7u] = acc7_1.w; out[o7 + 8u] = acc8_1.w;
    }
    if (co0 + 8u < p.cout) {
        let o8 = m0 + (co0 + 8u) * p.cin * 9u;
        out[o8 + 0u] = acc0_2.x; out[o8 + 1u] = acc1_2.x; out[o8 + 2u] = acc2_2.x; out[o8 + 3u] = acc3_2.x; out[o8 + 4u] = acc4_2.x; out[o8 + 5u] = acc5_2.x; out[o8 + 6u] = acc6_2.x; out[o8 + 7u] = acc7_2.x; out[o8 + 8u] = acc8_2.x;
    }
    if (co0 + 9u < p.cout) {
        let o9 = m0 + (co0 + 9u) * p.cin * 9u;
        out[o9 + 0u] = acc0_2.y; out[o9 + 1u] = acc1_2.y; out[o9 + 2u] = acc2_2.y; out[o9 + 3u] = acc3_2.y; out[o9 + 4u] = acc4_2.y; out[o9 + 5u] = acc5_2.y; out[o9 + 6u] = acc6_2.y; out[o9 + 7u] = acc7_2.y; out[o9 + 8u] = acc8_2.y;
    }
    if (co0 + 10u < p.cout) {
        let o10 = m0 + (co0 + 10u) * p.cin * 9u;
        out[o10 + 0u] = acc0_2.z; out[o10 + 1u] = acc1_2.z; out[o10 + 2u] = acc2_2.z; out[o10 + 3u] = acc3_2.z; out[o10 + 4u] = acc4_2.z; out[o10 + 5u] = acc5_2.z; out[o10 + 6u] = acc6_2.z; out[o10 + 7u] = acc7_2.z; out[o10 + 8u] = acc8_2.z;
    }
    if (co0 + 11u < p.cout) {
        let o11 = m0 + (co0 + 11u) * p.cin * 9u;
        out[o11 + 0u] = acc0_2.w; out[o11 + 1u] = acc1_2.w; out[o11 + 2u] = acc2_2.w; out[o11 + 3u] = acc3_2.w; out[o11 + 4u] = acc4_2.w; out[o11 + 5u] = acc5_2.w; out[o11 + 6u] = acc6_2.w; out[o11 + 7u] = acc7_2.w; out[o11 + 8u] = acc8_2.w;
    }
    if (co0 + 12u < p.cout) {
        let o12 = m0 + (co0 + 12u) * p.cin * 9u;
        out[o12 + 0u] = acc0_3.x; out[o12 + 1u] = acc1_3.x; out[o12 + 2u] = acc2_3.x; out[o12 + 3u] = acc3_3.x; out[o12 + 4u] = acc4_3.x; out[o12 + 5u] = acc5_3.x; out[o12 + 6u] = acc6_3.x; out[o12 + 7u] = acc7_3.x; out[o12 + 8u] = acc8_3.x;
    }
    if (co0 + 13u < p.cout) {
        let o13 = m0 + (co0 + 13u) * p.cin * 9u;
        out[o13 + 0u] = acc0_3.y; out[o13 + 1u] = acc1_3.y; out[o13 + 2u] = acc2_3.y; out[o13 + 3u] = acc3_3.y; out[o13 + 4u] = acc4_3.y; out[o13 + 5u] = acc5_3.y; out[o13 + 6u] = acc6_3.y; out[o13 + 7u] = acc7_3.y; out[o13 + 8u] = acc8_3.y;
    }
    if (co0 + 14u < p.cout) {
        let o14 = m0 + (co0 + 14u) * p.cin * 9u;
        out[o14 + 0u] = acc0_3.z; out[o14 + 1u] = acc1_3.z; out[o14 + 2u] = acc2_3.z; out[o14 + 3u] = acc3_3.z; out[o14 + 4u] = acc4_3.z; out[o14 + 5u] = acc5_3.z; out[o14 + 6u] = acc6_3.z; out[o14 + 7u] = acc7_3.z; out[o14 + 8u] = acc8_3.z;
    }
    if (co0 + 15u < p.cout) {
        let o15 = m0 + (co0 + 15u) * p.cin * 9u;
        out[o15 + 0u] = acc0_3.w; out[o15 + 1u] = acc1_3.w; out[o15 + 2u] = acc2_3.w; out[o15 + 3u] = acc3_3.w; out[o15 + 4u] = acc4_3.w; out[o15 + 5u] = acc5_3.w; out[o15 + 6u] = acc6_3.w; out[o15 + 7u] = acc7_3.w; out[o15 + 8u] = acc8_3.w;
    }
}
