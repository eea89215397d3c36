//! bce_dice: the training loss of the notebook, over the whole batch (not per image):
//!
//!   p = sigmoid(z),  loss = mean(BCE(p, t)) + 1 - dice,  dice = (2 sum(p t) + 1) / (sum(p) + sum(t) + 1)
//!   BCE from logits, stable: max(z, 0) - z t + log(1 + exp(-|z|))
//!
//! Gradient (gy = dL/dloss, a [1] tensor), with I = sum p t and S = sum p + sum t:
//!   dz_i = gy * ( (p_i - t_i)/n - (2 t_i (S+1) - (2I+1)) / (S+1)^2 * p_i (1 - p_i) )
//! The first term is mean BCE's, the second is -d dice/dz_i through p_i (dp/dz = p (1 - p)).
//!
//! What the forward saves for the backward: z, t and `saved` [3] = (I, sum p, sum t).
//! The sums are tiled reductions (two dispatches each, `*_tiles` then `*_merge`; see shaders/bce_dice.wgsl).
//! Stable for |z| up to 1e4 and beyond: no NaN or Inf.
//!
//! Over the storage-binding limit (lavapipe: 128 MiB, a 33.5M-pixel batch) z, t and dz are bound in element ranges
//! (`ops::runs::elem_runs`), cut at whole tiles wherever a binding holds one (16 KiB, so on every adapter): each
//! run's `*_tiles` dispatch writes its tiles at their place in `partial`, the one merge folds them all in order, and
//! the sums are those of a single launch, bit for bit. (Only under a test limit below one tile are the runs' last
//! tiles short, which regroups the sums: equal within the check tolerances, not bit-identical.)
//!
//! Shapes: z, t, dz [N, 1, H, W] (any shape works: the op is over all elements); loss, dice, gy [1]; saved [3].

use std::sync::Arc;

use crate::check::{compare, f64s, rand_vec, CheckResult};
use crate::gpu::{Gpu, ShaderFile};
use crate::graph::{Tape, Var};
use crate::ops::runs::elem_runs;
use crate::tensor::Tensor;

pub const SHADERS: &[ShaderFile] = &[ShaderFile { file: "bce_dice.wgsl", source: include_str!("../../shaders/bce_dice.wgsl"), subgroups: false }];

/// Values per tile of the `*_tiles` reductions (WGSL `TILE`).
pub const TILE: usize = 4096;

crate::ops::params! {
    /// Mirror of WGSL `Params` in shaders/bce_dice.wgsl.
    pub struct Params {
        /// Elements in this launch (of N * H * W for a [N, 1, H, W] mask; the merges: all of them).
        pub n: u32,
        /// Tiles of all launches together (`partial`'s length): ceil(n / TILE) when the runs hold whole tiles.
        pub tiles: u32,
        /// 1 / (all elements) in f64 rounded once: the mean of the BCE terms and the scale of their gradient.
        pub inv_n: f32,
        /// This launch's first tile in `partial` (the `*_tiles` kernels).
        pub tile0: u32,
    }
}

/// The element ranges `(first, count)` the launches bind: one normally; over the binding limit, `elem_runs` cut to
/// whole tiles when a binding holds at least one, so the tiles are those of a single launch.
fn runs(gpu: &Gpu, n: usize) -> Vec<(usize, usize)> {
    let runs = elem_runs(gpu, n);
    let per = runs[0].1;
    if runs.len() == 1 || per < TILE {
        return runs;
    }
    let per = per / TILE * TILE;
    (0..n).step_by(per).map(|s| (s, per.min(n - s))).collect()
}

/// The Params of the merges (n = all elements, tiles = all tiles) and the runs; `op` names the caller.
fn params_for(op: &str, z: &Tensor, t: &Tensor) -> (Params, Vec<(usize, usize)>) {
    assert_eq!(z.shape, t.shape, "{op}: logits {:?} and target {:?} shapes differ", z.shape, t.shape);
    let n = z.numel();
    assert!(n > 0, "{op}: empty input");
    let runs = runs(z.gpu(), n);
    let tiles: usize = runs.iter().map(|&(_, c)| c.div_ceil(TILE)).sum();
    // The merge walks all tiles in one loop: stay far below llvmpipe's 65,535-iteration limit.
    assert!(tiles <= 16_384, "{op}: {n} elements need {tiles} tiles, over the 16,384 one merge may fold");
    (Params { n: n as u32, tiles: tiles as u32, inv_n: (1.0 / n as f64) as f32, tile0: 0 }, runs)
}

/// One `*_tiles` dispatch per run: the run's per-tile sums go to `partial` [tiles, 4] from tile `tile0` on.
fn launch_tiles(entry: &str, prm: &Params, runs: &[(usize, usize)], z: &Tensor, t: &Tensor, partial: &Tensor) {
    let mut tile0 = 0;
    for &(s, c) in runs {
        let run = Params { n: c as u32, tile0, ..*prm };
        let tiles = c.div_ceil(TILE) as u32;
        let binds = [("z", z.bind_range(s, c)), ("t", t.bind_range(s, c)), ("partial", partial.bind())];
        z.gpu().dispatch(entry, &run, &binds, [tiles, 1, 1]);
        tile0 += tiles;
    }
}

/// Forward: (loss [1], dice [1], saved [3] = (sum p t, sum p, sum t)).
/// Dispatches: `bce_dice_forward_tiles` (once per run), `bce_dice_forward_merge`.
pub fn bce_dice_forward(z: &Tensor, t: &Tensor) -> (Tensor, Tensor, Tensor) {
    let gpu = z.gpu();
    let (prm, runs) = params_for("bce_dice_forward", z, t);
    let partial = Tensor::empty(gpu, &[prm.tiles as usize, 4]);
    let (loss, dice, saved) = (Tensor::empty(gpu, &[1]), Tensor::empty(gpu, &[1]), Tensor::empty(gpu, &[3]));
    launch_tiles("bce_dice_forward_tiles", &prm, &runs, z, t, &partial);
    let binds = [("partial", partial.bind()), ("loss", loss.bind()), ("dice", dice.bind()), ("saved", saved.bind())];
    gpu.dispatch("bce_dice_forward_merge", &prm, &binds, [1, 1, 1]);
    (loss, dice, saved)
}

/// Backward: dz = gy * ((p - t)/n - d dice/dz), from the forward's `saved` sums. gy: [1]. Elementwise, per run.
pub fn bce_dice_backward(z: &Tensor, t: &Tensor, saved: &Tensor, gy: &Tensor) -> Tensor {
    let (prm, runs) = params_for("bce_dice_backward", z, t);
    assert_eq!(saved.shape, vec![3], "bce_dice_backward: saved must be [3] (from bce_dice_forward)");
    assert_eq!(gy.numel(), 1, "bce_dice_backward: the upstream gradient of a scalar loss has 1 element, got {:?}", gy.shape);
    let dz = Tensor::empty(z.gpu(), &z.shape);
    for (s, c) in runs {
        let run = Params { n: c as u32, ..prm };
        let binds = [
            ("z", z.bind_range(s, c)),
            ("t", t.bind_range(s, c)),
            ("saved", saved.bind()),
            ("gy", gy.bind()),
            ("dz", dz.bind_range(s, c)),
        ];
        z.gpu().dispatch_1d("bce_dice_backward", &run, &binds, c as u64);
    }
    dz
}

/// Hard statistics at threshold 0.5 for the metrics: [3] = (sum (p>0.5) t, sum (p>0.5), sum t), p > 0.5 being z > 0.
/// Hard Dice = 2 h0 / (h1 + h2), IoU = h0 / (h1 + h2 - h0). Dispatches: `bce_dice_hard_tiles` (per run), `_merge`.
pub fn bce_dice_hard_stats(z: &Tensor, t: &Tensor) -> Tensor {
    let gpu = z.gpu();
    let (prm, runs) = params_for("bce_dice_hard_stats", z, t);
    let partial = Tensor::empty(gpu, &[prm.tiles as usize, 4]);
    let hard = Tensor::empty(gpu, &[3]);
    launch_tiles("bce_dice_hard_tiles", &prm, &runs, z, t, &partial);
    gpu.dispatch("bce_dice_hard_merge", &prm, &[("partial", partial.bind()), ("hard", hard.bind())], [1, 1, 1]);
    hard
}

/// Autograd wrapper. z: logits [N,1,H,W]; t: target mask in {0,1} same shape. Returns (loss Var of shape [1], dice
/// Tensor of shape [1]). Saves z, t and the three sums; the gradient flows to z only.
pub fn bce_dice(tape: &Tape, z: &Var, t: &Tensor) -> (Var, Tensor) {
    let (loss, dice, saved) = bce_dice_forward(&z.t, t);
    let (zs, ts) = (z.t.clone(), t.clone());
    let loss = tape.record("bce_dice", &[z], loss, move |gy| vec![Some(bce_dice_backward(&zs, &ts, &saved, gy))]);
    (loss, dice)
}

/// The f64 oracle.
pub mod cpu {
    /// Stable sigmoid.
    pub fn sigmoid(z: f64) -> f64 {
        let e = (-z.abs()).exp();
        if z >= 0.0 {
            1.0 / (1.0 + e)
        } else {
            e / (1.0 + e)
        }
    }

    /// (loss, dice, [sum p t, sum p, sum t]).
    pub fn forward(z: &[f64], t: &[f64]) -> (f64, f64, [f64; 3]) {
        let (mut bce, mut pt, mut sp, mut st) = (0.0, 0.0, 0.0, 0.0);
        for (&zi, &ti) in z.iter().zip(t) {
            let p = sigmoid(zi);
            bce += zi.max(0.0) - zi * ti + (-zi.abs()).exp().ln_1p();
            pt += p * ti;
            sp += p;
            st += ti;
        }
        let dice = (2.0 * pt + 1.0) / (sp + st + 1.0);
        (bce / z.len() as f64 + 1.0 - dice, dice, [pt, sp, st])
    }

    /// dz = gy * ((p - t)/n - (2 t (S+1) - (2I+1)) / (S+1)^2 * p (1 - p)).
    pub fn backward(z: &[f64], t: &[f64], gy: f64) -> Vec<f64> {
        let (_, _, [pt, sp, st]) = forward(z, t);
        let s1 = sp + st + 1.0;
        let num = 2.0 * pt + 1.0;
        let n = z.len() as f64;
        z.iter()
            .zip(t)
            .map(|(&zi, &ti)| {
                let p = sigmoid(zi);
                let e = (-zi.abs()).exp();
                let dpdz = e / ((1.0 + e) * (1.0 + e));
                gy * ((p - ti) / n - (2.0 * ti * s1 - num) / (s1 * s1) * dpdz)
            })
            .collect()
    }

    /// (sum (z>0) t, sum (z>0), sum t).
    pub fn hard_stats(z: &[f64], t: &[f64]) -> [f64; 3] {
        let mut h = [0.0; 3];
        for (&zi, &ti) in z.iter().zip(t) {
            let pos = if zi > 0.0 { 1.0 } else { 0.0 };
            h[0] += pos * ti;
            h[1] += pos;
            h[2] += ti;
        }
        h
    }
}

/// Test data: logits `scale * U(-1, 1)` with every 97th value pushed to +-1e4 when `extreme`, and a mask that is
/// mostly 1 where z is high (like a half-trained net) so I, sum p and sum t are all sizeable.
pub fn case(n: usize, seed: u64, scale: f32, extreme: bool) -> (Vec<f32>, Vec<f32>) {
    let r = rand_vec(n, seed);
    let s = rand_vec(n, seed + 1);
    let mut z: Vec<f32> = r.iter().map(|v| v * scale).collect();
    if extreme {
        for (i, v) in z.iter_mut().enumerate().filter(|(i, _)| i % 97 == 0) {
            *v = if i % 2 == 0 { 1e4 } else { -1e4 };
        }
    }
    let t = r.iter().zip(&s).map(|(a, b)| if a + 0.6 * b > 0.2 { 1.0 } else { 0.0 }).collect();
    (z, t)
}

/// GPU vs the f64 oracle on n elements as [N, 1, H, W]: forward (loss, dice, saved), backward for gy, hard stats.
pub fn check_shape(gpu: &Arc<Gpu>, shape: [usize; 4], seed: u64, scale: f32, extreme: bool) -> Vec<CheckResult> {
    let n: usize = shape.iter().product();
    let (zv, tv) = case(n, seed, scale, extreme);
    let z = Tensor::from_slice(gpu, &shape, &zv);
    let t = Tensor::from_slice(gpu, &shape, &tv);
    let gyv = 0.75f32;
    let gy = Tensor::from_slice(gpu, &[1], &[gyv]);
    let (zd, td) = (f64s(&zv), f64s(&tv));
    let label = format!("{shape:?}{}", if extreme { " +-1e4" } else { "" });
    let mut out = Vec::new();

    let (loss, dice, saved) = bce_dice_forward(&z, &t);
    let (l_cpu, d_cpu, s_cpu) = cpu::forward(&zd, &td);
    // Sums of n values: relative tolerance ~ f32 accumulation error; the loss with |z| ~ 1e4 has large terms too.
    out.push(compare("bce_dice_forward (loss)", &label, &loss.to_vec(), &[l_cpu], 1e-5, 1e-5));
    out.push(compare("bce_dice_forward (dice)", &label, &dice.to_vec(), &[d_cpu], 1e-6, 1e-5));
    out.push(compare("bce_dice_forward (saved)", &label, &saved.to_vec(), &s_cpu, 1e-3, 1e-5));
    let dz = bce_dice_backward(&z, &t, &saved, &gy);
    let dz_cpu = cpu::backward(&zd, &td, gyv as f64);
    // dz has a (p - t)/n term of size ~1/n: the absolute tolerance is relative to 1/n.
    out.push(compare("bce_dice_backward", &label, &dz.to_vec(), &dz_cpu, 1e-4 / n as f64, 1e-4));
    let hard = bce_dice_hard_stats(&z, &t);
    out.push(compare("bce_dice_hard_stats", &label, &hard.to_vec(), &cpu::hard_stats(&zd, &td), 0.0, 0.0));
    out
}

/// Odd sizes (1 element, a prime, not a multiple of 256, several tiles), extreme logits; `full` adds 16x1x192x384.
pub fn self_check(gpu: &Arc<Gpu>, full: bool) -> Vec<CheckResult> {
    let mut out = Vec::new();
    out.extend(check_shape(gpu, [1, 1, 1, 1], 1, 3.0, false));
    out.extend(check_shape(gpu, [1, 1, 1, 257], 2, 3.0, false));
    out.extend(check_shape(gpu, [3, 1, 37, 101], 3, 6.0, false));
    out.extend(check_shape(gpu, [2, 1, 41, 103], 4, 20.0, true));
    if full {
        out.extend(check_shape(gpu, [16, 1, 192, 384], 5, 6.0, false));
    }
    out
}
