// batch_norm: 2-D batch normalisation with PyTorch semantics, per channel c over the M = N*H*W values x[:, c, :, :].
//
//   training forward:
//     mean_c = (1/M) sum x                      var_c = (1/M) sum (x - mean_c)^2        (biased variance)
//     rstd_c = 1 / sqrt(var_c + eps)            xhat  = (x - mean_c) * rstd_c
//     y      = gamma_c * xhat + beta_c
//     running_mean = (1 - momentum) * running_mean + momentum * mean_c
//     running_var  = (1 - momentum) * running_var  + momentum * var_c * M / (M - 1)   (UNBIASED variance)
//   eval forward: the same with mean = running_mean, var = running_var (no statistics, no update).
//
//   training backward (gradients flow through mean and var too), with dy = dL/dy:
//     dbeta_c  = sum dy                         dgamma_c = sum dy * xhat
//     dx       = gamma_c * rstd_c * (dy - dbeta_c / M - xhat * dgamma_c / M)
//   eval backward (mean, var are constants): dx = gamma_c * rstd_c * dy; dgamma, dbeta as above.
//
//   fused ReLU (p.relu = 1, training mode: conv -> BN -> ReLU in one op, z = max(y, 0)):
//     forward writes z instead of y (one pass instead of BN's and ReLU's);
//     backward takes dz and uses dy = dz * [y > 0] in the formulas above, y recomputed from x and stats by the
//     forward's own expression (so the mask is the forward's, bit for bit): no ReLU backward pass, and y is never
//     stored.
//
//   eval mode folded into the convolution before it (inference: no pass over the activations at all). With
//   s_c = gamma_c / sqrt(running_var_c + eps), for y = conv(x, w) without bias:
//     BN(y)[n, c] = s_c * (conv(x, w)[n, c] - running_mean_c) + beta_c = conv(x, w')[n, c] + shift_c
//     w'[c, ...] = s_c * w[c, ...]              shift_c = beta_c - s_c * running_mean_c
//   (batch_norm_fold; no gradient: the folded weights are a snapshot for inference).
//
// Reductions. A channel holds up to ~300k values, and llvmpipe silently stops a shader loop after 65,535 iterations
// per invocation, so no invocation may walk a whole channel. Every per-channel reduction is two dispatches:
//   *_tiles: one workgroup of 256 per (tile, channel); a tile is TILE = 4096 consecutive values of the channel in
//            (n, h, w) order, 16 per invocation, reduced in a fixed tree in workgroup memory -> partial[c, tile, 2].
//   *_merge: one invocation per channel folds its tiles in tile order (at most a few hundred).
// Both orders are fixed, so results are bit-identical run to run. The variance is numerically sound: each tile
// computes its own mean, then the sum of squared deviations from it (two passes over the 16 KiB tile, which is hot
// in cache), and the merge combines (count, mean, M2) triples with Chan's parallel formula. Neither step forms
// E[x^2] - E[x]^2, which cancels catastrophically when |mean| >> std.
//
// Split launches. When x is larger than one storage binding, the launchers bind x, dy, y and dx in batch runs of
// whole samples. The elementwise kernels then see their run only (p.n elements, indices from the run's first
// sample). A run's *_tiles dispatch tiles the values of its own samples (p.run_m per channel, fewer in the last run)
// and writes its tiles at p.tile0.. in partial, so tile counts restart at every run (tile_count); the merge folds all
// p.tiles tiles of a channel once. Unsplit there is one run (run_m = m, tile0 = 0). The launchers cut runs at whole
// tiles where they can, so the tiles, and every sum, are those of one launch.
//
// Thread mapping:
//   *_tiles                 grid (tiles of the run, C), workgroup 256, invocation lid handles tile values lid,
//                           lid+256, ...
//   *_merge, stats_eval,
//   update_running          one invocation per channel, workgroup 64
//   forward*, backward_input*  one invocation per element of x, 1-D grid folded past 65,535 workgroups
//
// vec4 variants (entry points ending in _vec4). On llvmpipe every storage load or store is a loop over the SIMD
// lanes with a bounds check per lane, so one vec4 access costs about what one f32 access does: moving 4 floats per
// access is ~4x cheaper per value. The _vec4 kernels read and write the same buffers through array<vec4<f32>> views
// (x4, dy4, y4, dx4). They need H*W % 4 == 0, so a vec4 never straddles two channel planes (and M, every tile start
// and every tile length are multiples of 4 too); the launchers fall back to the scalar kernels otherwise.
//   forward*_vec4, backward_input*_vec4  one invocation per 4 consecutive elements of x
//   *_tiles_vec4            grid (tiles of the run, C), workgroup 64 (WG4), invocation lid handles the vec4s lid,
//                           lid+64, ... of the tile (16 per pass); same tiles, same partial layout, same merge kernels
//
// Buffers (launchers bind by name; each entry point binds only what it uses). Params is the uniform at binding 0;
// a vec4 view (x4, dy4, y4, dx4) is bound under the name of the tensor it views and shares its binding number (no
// entry point uses both), so a vec4 entry point and its scalar twin take the same list.
//   x            [N, C, H, W]  read         (this run's samples)
//   dy           [N, C, H, W]  read         upstream gradient dL/dy (this run's samples)
//   gamma        [C]           read
//   beta         [C]           read
//   stats        [3, C]        read_write   rows: mean, biased var, rstd (saved by the forward for the backward)
//   partial      [C, tiles, 2] read_write   per-tile partial results of a reduction, all runs
//   y            [N, C, H, W]  read_write   the forward's output (this run's samples)
//   dx           [N, C, H, W]  read_write   the backward's dL/dx (this run's samples; shares y's binding number)
//   dgamma       [C]           read_write
//   dbeta        [C]           read_write
//   running_mean [C]           read_write   updated in place
//   running_var  [C]           read_write   updated in place
//   shift        [C]           read_write   batch_norm_fold's bias of the folded convolution
//   x4, dy4, y4, dx4           [N*C*H*W/4]  the vec4 views of x, dy, y, dx (the _vec4 entry points only)

struct Params {
    c: u32,         // channels
    hw: u32,        // H * W, values per (sample, channel) plane
    m: u32,         // N * H * W, values per channel (all runs)
    n: u32,         // elements of x in this launch (N * C * H * W unless split)
    tiles: u32,     // tiles per channel of all runs together (partial's row length)
    eps: f32,       // added to the variance before the square root
    momentum: f32,  // running-stat update weight of the batch statistic
    bessel: f32,    // m / (m - 1), computed on the host in f64: biased -> unbiased variance for running_var
    tile0: u32,     // this launch's first tile (*_tiles)
    run_m: u32,     // values per channel in each run but the last (= m unless split)
    run_tiles: u32, // tiles of such a run: ceil(run_m / TILE)
    relu: u32,      // 1: ReLU(BN(x)) (training forward, backward params and input); 0: BN(x)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> beta: array<f32>;
@group(0) @binding(5) var<storage, read_write> stats: array<f32>;
@group(0) @binding(6) var<storage, read_write> partial: array<f32>;
@group(0) @binding(7) var<storage, read_write> y: array<f32>;
@group(0) @binding(7) var<storage, read_write> dx: array<f32>;
@group(0) @binding(8) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(9) var<storage, read_write> dbeta: array<f32>;
@group(0) @binding(10) var<storage, read_write> running_mean: array<f32>;
@group(0) @binding(11) var<storage, read_write> running_var: array<f32>;
@group(0) @binding(12) var<storage, read_write> shift: array<f32>;
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> dy4: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> y4: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> dx4: array<vec4<f32>>;

const WG: u32 = 256u;      // lanes of the 1-D elementwise kernels and of the tile reductions
const TILE: u32 = 4096u;   // values per tile = WG * 16 (16 loop iterations per invocation per pass)
const WG_CH: u32 = 64u;    // lanes of the per-channel kernels
const WG_PLANE: u32 = 64u; // lanes of the plane-grid vec4 kernels (batch_norm_forward_vec4, backward_input_vec4)
const WG4: u32 = 64u;      // lanes of the *_tiles_vec4 reductions: TILE / 4 / WG4 = 16 vec4s per invocation per pass

// Scratch for the tree reductions of the *_tiles kernels (256 * 8 bytes = 2 KiB).
var<workgroup> red: array<vec2<f32>, 256>;

// Index into x of value j (0 <= j < the run's values per channel, in (n, h, w) order) of channel c.
fn chan_index(c: u32, j: u32) -> u32 {
    let n = j / p.hw;
    let s = j - n * p.hw;
    return (n * p.c + c) * p.hw + s;
}

// Number of values in tile t of a channel: tile k of run r (tile t = r * run_tiles + k) holds the run's values
// k * TILE .. (k + 1) * TILE; the last tile of a run may be short. Unsplit, run_m = m: min(TILE, m - t * TILE).
fn tile_count(t: u32) -> u32 {
    let r = t / p.run_tiles;
    let run_values = min(p.run_m, p.m - r * p.run_m);
    return min(TILE, run_values - (t - r * p.run_tiles) * TILE);
}

// Sum of v over the workgroup, in a fixed tree order. Every lane gets the result. Must be called by all lanes.
fn workgroup_sum(lid: u32, v: vec2<f32>) -> vec2<f32> {
    red[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            red[lid] = red[lid] + red[lid + s];
        }
        workgroupBarrier();
    }
    let total = red[0];
    workgroupBarrier(); // everyone has read red[0] before the next call overwrites it
    return total;
}

// workgroup_sum for the WG4-lane *_tiles_vec4 kernels (same fixed tree, first WG4 slots of red).
fn workgroup_sum4(lid: u32, v: vec2<f32>) -> vec2<f32> {
    red[lid] = v;
    workgroupBarrier();
    for (var s = WG4 / 2u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            red[lid] = red[lid] + red[lid + s];
        }
        workgroupBarrier();
    }
    let total = red[0];
    workgroupBarrier();
    return total;
}

// Index into x4 of the vec4 holding values j..j+3 (j % 4 == 0, in (n, h, w) order) of channel c. Needs hw % 4 == 0.
fn chan_index4(c: u32, j: u32) -> u32 {
    return chan_index(c, j) / 4u;
}

// Sum of the 4 components.
fn hsum(v: vec4<f32>) -> f32 {
    return (v.x + v.y) + (v.z + v.w);
}

// The fused ReLU of the training forward (p.relu = 1): max(v, 0), NaN kept (as relu.wgsl).
fn relu1(v: f32) -> f32 {
    return select(v, 0.0, p.relu != 0u && v < 0.0);
}

fn relu4(v: vec4<f32>) -> vec4<f32> {
    if (p.relu == 0u) { return v; }
    return select(v, vec4<f32>(0.0), v < vec4<f32>(0.0));
}

// The gradient reaching the BN output under the fused ReLU: dy where the forward's output y = xhat * gamma + beta
// (recomputed from x, by the forward's own expression) was positive, else 0 (as relu_backward: 0 at y == 0).
fn relu_grad1(g: f32, y: f32) -> f32 {
    return select(g, 0.0, p.relu != 0u && !(y > 0.0));
}

fn relu_grad4(g: vec4<f32>, y: vec4<f32>) -> vec4<f32> {
    if (p.relu == 0u) { return g; }
    return select(vec4<f32>(0.0), g, y > vec4<f32>(0.0));
}

// Per-tile mean and M2 (sum of squared deviations from the tile mean): partial[c, t] = (mean_t, M2_t), for the tiles
// of this run.
@compute @workgroup_size(256)
fn batch_norm_stats_tiles(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = p.tile0 + wid.x;   // the tile's index in partial; wid.x is its index within this run
    let c = wid.y;
    let j0 = wid.x * TILE;
    let cnt = tile_count(t);
    // Pass 1: the tile mean.
    var s = 0.0;
    for (var k = lid; k < cnt; k += WG) {
        s += x[chan_index(c, j0 + k)];
    }
    let mean_t = workgroup_sum(lid, vec2<f32>(s, 0.0)).x / f32(cnt);
    // Pass 2: squared deviations from the tile mean (the tile is still in cache).
    var q = 0.0;
    for (var k = lid; k < cnt; k += WG) {
        let d = x[chan_index(c, j0 + k)] - mean_t;
        q += d * d;
    }
    let m2_t = workgroup_sum(lid, vec2<f32>(q, 0.0)).x;
    if (lid == 0u) {
        let o = (c * p.tiles + t) * 2u;
        partial[o] = mean_t;
        partial[o + 1u] = m2_t;
    }
}

// Where a lane of the *_tiles_vec4 kernels walks a channel: value j0 + lid * 4 as (sample n, offset s in the plane),
// and the step of WG4 * 4 values as (sa whole planes, sb values): one division per lane, none per loop trip.
struct Walk { n: u32, s: u32, sa: u32, sb: u32 }

fn walk_start(j: u32) -> Walk {
    let n = j / p.hw;
    let sa = (WG4 * 4u) / p.hw;
    return Walk(n, j - n * p.hw, sa, WG4 * 4u - sa * p.hw);
}

// Index into x4 / dy4 of the walk's vec4 in channel c.
fn walk_index(w: Walk, c: u32) -> u32 {
    return ((w.n * p.c + c) * p.hw + w.s) / 4u;
}

fn walk_next(w: Walk) -> Walk {
    var n = w.n + w.sa;
    var s = w.s + w.sb;
    if (s >= p.hw) {
        s -= p.hw;
        n += 1u;
    }
    return Walk(n, s, w.sa, w.sb);
}

// batch_norm_stats_tiles through x4: each lane accumulates its vec4s component-wise, then sums the 4 components.
@compute @workgroup_size(64)
fn batch_norm_stats_tiles_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = p.tile0 + wid.x;
    let c = wid.y;
    let j0 = wid.x * TILE;
    let cnt = tile_count(t);   // a multiple of 4, since H*W is
    let start = walk_start(j0 + lid * 4u);
    // Pass 1: the tile mean.
    var s4 = vec4<f32>(0.0);
    var w = start;
    for (var k = lid * 4u; k < cnt; k += WG4 * 4u) {
        s4 += x4[walk_index(w, c)];
        w = walk_next(w);
    }
    let mean_t = workgroup_sum4(lid, vec2<f32>(hsum(s4), 0.0)).x / f32(cnt);
    // Pass 2: squared deviations from the tile mean.
    var q4 = vec4<f32>(0.0);
    w = start;
    for (var k = lid * 4u; k < cnt; k += WG4 * 4u) {
        let d = x4[walk_index(w, c)] - vec4<f32>(mean_t);
        q4 += d * d;
        w = walk_next(w);
    }
    let m2_t = workgroup_sum4(lid, vec2<f32>(hsum(q4), 0.0)).x;
    if (lid == 0u) {
        let o = (c * p.tiles + t) * 2u;
        partial[o] = mean_t;
        partial[o + 1u] = m2_t;
    }
}

// Fold a channel's tiles with Chan's formula: for sets a, b with counts na, nb,
//   delta = mean_b - mean_a;  mean = mean_a + delta * nb / (na + nb);  M2 = M2_a + M2_b + delta^2 * na * nb / (na + nb)
// then var = M2 / m (biased) and rstd = 1 / sqrt(var + eps) -> stats[:, c].
@compute @workgroup_size(64)
fn batch_norm_stats_merge(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    if (c >= p.c) { return; }
    var na = 0.0;
    var mean = 0.0;
    var m2 = 0.0;
    for (var t = 0u; t < p.tiles; t++) {
        let o = (c * p.tiles + t) * 2u;
        let nb = f32(tile_count(t));
        let nab = na + nb;
        let delta = partial[o] - mean;
        mean += delta * (nb / nab);
        m2 += partial[o + 1u] + delta * delta * (na * nb / nab);
        na = nab;
    }
    let var_b = m2 / f32(p.m);
    stats[c] = mean;
    stats[p.c + c] = var_b;
    stats[2u * p.c + c] = 1.0 / sqrt(var_b + p.eps);
}

// Eval-mode statistics as a stats tensor (a snapshot of the running stats for the eval-mode backward).
@compute @workgroup_size(64)
fn batch_norm_stats_eval(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    if (c >= p.c) { return; }
    stats[c] = running_mean[c];
    stats[p.c + c] = running_var[c];
    stats[2u * p.c + c] = 1.0 / sqrt(running_var[c] + p.eps);
}

// In place: running = (1 - momentum) * running + momentum * batch, with the unbiased batch variance.
@compute @workgroup_size(64)
fn batch_norm_update_running(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    if (c >= p.c) { return; }
    running_mean[c] = (1.0 - p.momentum) * running_mean[c] + p.momentum * stats[c];
    running_var[c] = (1.0 - p.momentum) * running_var[c] + p.momentum * (stats[p.c + c] * p.bessel);
}

// y = (x - mean) * rstd * gamma + beta, with the batch statistics in stats.
@compute @workgroup_size(256)
fn batch_norm_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    if (i >= p.n) { return; }
    let c = (i / p.hw) % p.c;
    let xhat = (x[i] - stats[c]) * stats[2u * p.c + c];
    y[i] = relu1(xhat * gamma[c] + beta[c]);
}

// The vec4 index of lane `lid` of workgroup `wid` on the plane grid (vec4 blocks of a plane, C, samples of the run):
// channel wid.y, sample wid.z, vec4 wid.x * WG_PLANE + lid of the plane; NONE past the plane's end.
const NONE: u32 = 0xffffffffu;
fn plane_index4(wid: vec3<u32>, lid: u32) -> u32 {
    let s4 = wid.x * WG_PLANE + lid;
    let hw4 = p.hw / 4u;
    if (s4 >= hw4) { return NONE; }
    return (wid.z * p.c + wid.y) * hw4 + s4;
}

// batch_norm_forward, 4 elements of one channel plane per invocation; grid (vec4 blocks of a plane, C, samples of the
// run), so the channel and sample come from the workgroup id: no division, and the per-channel loads are uniform
// (one load for the whole SIMD row on llvmpipe instead of one per lane).
@compute @workgroup_size(64)
fn batch_norm_forward_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i4 = plane_index4(wid, lid);
    if (i4 == NONE) { return; }
    let c = wid.y;
    let xhat = (x4[i4] - vec4<f32>(stats[c])) * stats[2u * p.c + c];
    y4[i4] = relu4(xhat * gamma[c] + vec4<f32>(beta[c]));
}

// y = (x - running_mean) / sqrt(running_var + eps) * gamma + beta.
@compute @workgroup_size(256)
fn batch_norm_forward_eval(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                           @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    if (i >= p.n) { return; }
    let c = (i / p.hw) % p.c;
    let xhat = (x[i] - running_mean[c]) * (1.0 / sqrt(running_var[c] + p.eps));
    y[i] = xhat * gamma[c] + beta[c];
}

// batch_norm_forward_eval, 4 elements of one channel plane per invocation.
@compute @workgroup_size(256)
fn batch_norm_forward_eval_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                                @builtin(local_invocation_index) lid: u32) {
    let i4 = (wid.y * nwg.x + wid.x) * WG + lid;
    if (i4 >= p.n / 4u) { return; }
    let c = (i4 * 4u / p.hw) % p.c;
    let xhat = (x4[i4] - vec4<f32>(running_mean[c])) * (1.0 / sqrt(running_var[c] + p.eps));
    y4[i4] = xhat * gamma[c] + vec4<f32>(beta[c]);
}

// Eval-mode BN folded into the convolution before it (see the header): x is that convolution's weight [C, K] with
// K = Cin*KH*KW (p.c = C, p.hw = K, p.n = C*K), y the folded weight, shift the folded bias. One invocation per
// weight; the first of each channel row also writes shift. s_c is computed as batch_norm_forward_eval computes it.
@compute @workgroup_size(256)
fn batch_norm_fold(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    if (i >= p.n) { return; }
    let c = i / p.hw;
    let s = (1.0 / sqrt(running_var[c] + p.eps)) * gamma[c];
    y[i] = x[i] * s;
    if (i % p.hw == 0u) {
        shift[c] = beta[c] - running_mean[c] * s;
    }
}

// Per-tile (sum dy, sum dy * xhat) -> partial[c, t], for the tiles of this run.
@compute @workgroup_size(256)
fn batch_norm_backward_params_tiles(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = p.tile0 + wid.x;
    let c = wid.y;
    let j0 = wid.x * TILE;
    let cnt = tile_count(t);
    let mean = stats[c];
    let rstd = stats[2u * p.c + c];
    var acc = vec2<f32>(0.0, 0.0);
    let ga = gamma[c];
    let be = beta[c];
    for (var k = lid; k < cnt; k += WG) {
        let i = chan_index(c, j0 + k);
        let xhat = (x[i] - mean) * rstd;
        let g = relu_grad1(dy[i], xhat * ga + be);
        acc += vec2<f32>(g, g * xhat);
    }
    let total = workgroup_sum(lid, acc);
    if (lid == 0u) {
        let o = (c * p.tiles + t) * 2u;
        partial[o] = total.x;
        partial[o + 1u] = total.y;
    }
}

// batch_norm_backward_params_tiles through x4 and dy4 (component-wise lane accumulators, summed at the end).
@compute @workgroup_size(64)
fn batch_norm_backward_params_tiles_vec4(@builtin(workgroup_id) wid: vec3<u32>,
                                         @builtin(local_invocation_index) lid: u32) {
    let t = p.tile0 + wid.x;
    let c = wid.y;
    let j0 = wid.x * TILE;
    let cnt = tile_count(t);
    let mean = stats[c];
    let rstd = stats[2u * p.c + c];
    let ga = gamma[c];
    let be = beta[c];
    var sb = vec4<f32>(0.0);
    var sg = vec4<f32>(0.0);
    var w = walk_start(j0 + lid * 4u);
    for (var k = lid * 4u; k < cnt; k += WG4 * 4u) {
        let i4 = walk_index(w, c);
        let xhat = (x4[i4] - vec4<f32>(mean)) * rstd;
        let g = relu_grad4(dy4[i4], xhat * ga + vec4<f32>(be));
        sb += g;
        sg += g * xhat;
        w = walk_next(w);
    }
    let total = workgroup_sum4(lid, vec2<f32>(hsum(sb), hsum(sg)));
    if (lid == 0u) {
        let o = (c * p.tiles + t) * 2u;
        partial[o] = total.x;
        partial[o + 1u] = total.y;
    }
}

// dbeta_c = sum over tiles of sum dy, dgamma_c = sum over tiles of sum dy * xhat, in tile order.
@compute @workgroup_size(64)
fn batch_norm_backward_params_merge(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    if (c >= p.c) { return; }
    var sb = 0.0;
    var sg = 0.0;
    for (var t = 0u; t < p.tiles; t++) {
        let o = (c * p.tiles + t) * 2u;
        sb += partial[o];
        sg += partial[o + 1u];
    }
    dbeta[c] = sb;
    dgamma[c] = sg;
}

// Training mode: dx = gamma * rstd * (dy - dbeta / m - xhat * dgamma / m).
@compute @workgroup_size(256)
fn batch_norm_backward_input(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                             @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    if (i >= p.n) { return; }
    let c = (i / p.hw) % p.c;
    let rstd = stats[2u * p.c + c];
    let xhat = (x[i] - stats[c]) * rstd;
    let g = relu_grad1(dy[i], xhat * gamma[c] + beta[c]);
    let inv_m = 1.0 / f32(p.m);
    dx[i] = gamma[c] * rstd * (g - dbeta[c] * inv_m - xhat * (dgamma[c] * inv_m));
}

// batch_norm_backward_input, 4 elements of one channel plane per invocation, on batch_norm_forward_vec4's grid.
@compute @workgroup_size(64)
fn batch_norm_backward_input_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i4 = plane_index4(wid, lid);
    if (i4 == NONE) { return; }
    let c = wid.y;
    let rstd = stats[2u * p.c + c];
    let xhat = (x4[i4] - vec4<f32>(stats[c])) * rstd;
    let g = relu_grad4(dy4[i4], xhat * gamma[c] + vec4<f32>(beta[c]));
    let inv_m = 1.0 / f32(p.m);
    dx4[i4] = gamma[c] * rstd * (g - vec4<f32>(dbeta[c] * inv_m) - xhat * (dgamma[c] * inv_m));
}

// Eval mode (statistics are constants): dx = gamma * rstd * dy.
@compute @workgroup_size(256)
fn batch_norm_backward_input_eval(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                                  @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    if (i >= p.n) { return; }
    let c = (i / p.hw) % p.c;
    dx[i] = gamma[c] * stats[2u * p.c + c] * dy[i];
}

// batch_norm_backward_input_eval, 4 elements of one channel plane per invocation.
@compute @workgroup_size(256)
fn batch_norm_backward_input_eval_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                                       @builtin(local_invocation_index) lid: u32) {
    let i4 = (wid.y * nwg.x + wid.x) * WG + lid;
    if (i4 >= p.n / 4u) { return; }
    let c = (i4 * 4u / p.hw) % p.c;
    dx4[i4] = gamma[c] * stats[2u * p.c + c] * dy4[i4];
}
