// bce_dice: the training loss, binary cross-entropy (mean) plus soft Dice loss, over the whole batch at once.
//
//   p    = sigmoid(z)                                      z: logits, t: target mask in {0, 1}, n elements
//   bce  = max(z, 0) - z t + log(1 + exp(-|z|))            (= -t log p - (1-t) log(1-p), stable for any z)
//   I    = sum p t,   S = sum p + sum t
//   dice = (2 I + 1) / (S + 1)                             (soft Dice coefficient, smoothing 1)
//   loss = (1/n) sum bce + 1 - dice
//
//   gradient, for an upstream scalar gy = dL/dloss:
//     d bce_i / dz_i  = p_i - t_i
//     d dice / dp_i   = (2 t_i (S + 1) - (2 I + 1)) / (S + 1)^2,      dp_i / dz_i = p_i (1 - p_i)
//     dz_i = gy * ( (p_i - t_i) / n  -  (2 t_i (S + 1) - (2 I + 1)) / (S + 1)^2 * p_i (1 - p_i) )
//
// Numerics: with e = exp(-|z|) in (0, 1] nothing overflows for |z| up to 1e4 and beyond: p = 1/(1+e) or e/(1+e),
// p (1 - p) = e / (1+e)^2 without the cancellation of 1 - p, and log(1 + e) uses a log1p correction.
//
// Reductions (sum bce, I, sum p, sum t) run over up to 16*192*384 = 1.18M values, far past llvmpipe's 65,535 loop
// iterations per invocation, so they are tiled like batch_norm's: *_tiles = one workgroup of 256 per TILE = 4096
// values (16 per invocation) reduced in a fixed tree -> partial[tile, 4]; *_merge = one invocation folds the tiles in
// order. Fixed orders everywhere: bit-identical results run to run.
//
// Split launches: a batch larger than one storage binding is bound in element ranges (runs) of whole tiles. Each
// run's *_tiles dispatch sees its own range (p.n elements) and writes its tiles from p.tile0 on; the merge then folds
// p.tiles tiles, the same ones a single launch would have made. The backward runs per range too (elementwise).
//
// The hard statistics at threshold 0.5 (for Dice / IoU metrics) use the same scheme: p > 0.5 is z > 0.
//
// Thread mapping: *_tiles grid (tiles of this run), workgroup 256; *_merge a single invocation; backward one invocation
// per element of this run, 1-D grid folded past 65,535 workgroups.
//
// Buffers (launchers bind by name; each entry point binds only what it uses; Params is the uniform at binding 0):
//   z       [n]         read        logits (this run's range)
//   t       [n]         read        target mask (this run's range)
//   partial [tiles, 4]  read_write  per-tile sums of all runs
//   loss    [1]         read_write
//   dice    [1]         read_write
//   saved   [3]         read_write  (I, sum p, sum t): what the backward needs
//   gy      [1]         read        dL/dloss
//   dz      [n]         read_write  (this run's range)
//   hard    [3]         read_write  (sum (z>0) t, sum (z>0), sum t)

struct Params {
    n: u32,       // elements in this launch (the merges: all elements)
    tiles: u32,   // tiles of all launches together
    inv_n: f32,   // 1 / (all elements), computed on the host in f64
    tile0: u32,   // this launch's first tile in partial (*_tiles)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> z: array<f32>;
@group(0) @binding(2) var<storage, read> t: array<f32>;
@group(0) @binding(3) var<storage, read_write> partial: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> loss: array<f32>;
@group(0) @binding(5) var<storage, read_write> dice: array<f32>;
@group(0) @binding(6) var<storage, read_write> saved: array<f32>;
@group(0) @binding(7) var<storage, read> gy: array<f32>;
@group(0) @binding(8) var<storage, read_write> dz: array<f32>;
@group(0) @binding(9) var<storage, read_write> hard: array<f32>;

const WG: u32 = 256u;
const TILE: u32 = 4096u; // WG * 16

var<workgroup> red: array<vec4<f32>, 256>;

// Sum of v over the workgroup in a fixed tree order; every lane gets the result. Call from all lanes.
fn workgroup_sum(lid: u32, v: vec4<f32>) -> vec4<f32> {
    red[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            red[lid] = red[lid] + red[lid + s];
        }
        workgroupBarrier();
    }
    let total = red[0];
    workgroupBarrier();
    return total;
}

// log(1 + e) for e in [0, 1], accurate when e is tiny (log(1 + e) ~ e where 1 + e rounds to 1).
fn log1p_small(e: f32) -> f32 {
    let u = 1.0 + e;
    if (u == 1.0) { return e; }
    return log(u) * (e / (u - 1.0));   // u - 1 is exact: the rounding of 1 + e is corrected for
}

// Per-tile (sum bce, sum p t, sum p, sum t) of this run -> partial[tile0 + tile].
@compute @workgroup_size(256)
fn bce_dice_forward_tiles(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let j0 = wid.x * TILE;
    let cnt = min(TILE, p.n - j0);
    var acc = vec4<f32>(0.0);
    for (var k = lid; k < cnt; k += WG) {
        let zi = z[j0 + k];
        let ti = t[j0 + k];
        let e = exp(-abs(zi));                                // in (0, 1]: never overflows
        let pi = select(e / (1.0 + e), 1.0 / (1.0 + e), zi >= 0.0);
        let bce = max(zi, 0.0) - zi * ti + log1p_small(e);
        acc += vec4<f32>(bce, pi * ti, pi, ti);
    }
    let total = workgroup_sum(lid, acc);
    if (lid == 0u) {
        partial[p.tile0 + wid.x] = total;
    }
}

// Fold the tiles in order, then loss, dice and the saved sums.
@compute @workgroup_size(1)
fn bce_dice_forward_merge() {
    var s = vec4<f32>(0.0);
    for (var i = 0u; i < p.tiles; i++) {
        s += partial[i];
    }
    let d = (2.0 * s.y + 1.0) / (s.z + s.w + 1.0);
    loss[0] = s.x * p.inv_n + 1.0 - d;
    dice[0] = d;
    saved[0] = s.y;
    saved[1] = s.z;
    saved[2] = s.w;
}

// dz_i = gy * ((p_i - t_i) / n - (2 t_i (S + 1) - (2 I + 1)) / (S + 1)^2 * p_i (1 - p_i)).
@compute @workgroup_size(256)
fn bce_dice_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    if (i >= p.n) { return; }
    let s1 = saved[1] + saved[2] + 1.0;          // S + 1
    let num = 2.0 * saved[0] + 1.0;              // 2 I + 1
    let zi = z[i];
    let ti = t[i];
    let e = exp(-abs(zi));
    let pi = select(e / (1.0 + e), 1.0 / (1.0 + e), zi >= 0.0);
    let dpdz = e / ((1.0 + e) * (1.0 + e));      // p (1 - p), no cancellation
    let ddice = (2.0 * ti * s1 - num) / (s1 * s1);
    dz[i] = gy[0] * ((pi - ti) * p.inv_n - ddice * dpdz);
}

// Per-tile (sum (z>0) t, sum (z>0), sum t) of this run -> partial[tile0 + tile].
@compute @workgroup_size(256)
fn bce_dice_hard_tiles(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let j0 = wid.x * TILE;
    let cnt = min(TILE, p.n - j0);
    var acc = vec4<f32>(0.0);
    for (var k = lid; k < cnt; k += WG) {
        let pos = select(0.0, 1.0, z[j0 + k] > 0.0);   // p > 0.5  <=>  z > 0
        let ti = t[j0 + k];
        acc += vec4<f32>(pos * ti, pos, ti, 0.0);
    }
    let total = workgroup_sum(lid, acc);
    if (lid == 0u) {
        partial[p.tile0 + wid.x] = total;
    }
}

// Fold the hard-statistics tiles in order -> hard[3]. Counts are exact in f32 up to 2^24.
@compute @workgroup_size(1)
fn bce_dice_hard_merge() {
    var s = vec4<f32>(0.0);
    for (var i = 0u; i < p.tiles; i++) {
        s += partial[i];
    }
    hard[0] = s.x;
    hard[1] = s.y;
    hard[2] = s.z;
}
