//! batch_norm: 2-D batch normalisation, PyTorch semantics (`nn.BatchNorm2d`), per channel c over M = N*H*W values.
//!
//! Training forward (batch statistics, biased variance):
//!   mean = (1/M) sum x,  var = (1/M) sum (x - mean)^2,  rstd = 1/sqrt(var + eps),  y = gamma * (x - mean) * rstd + beta
//!   running_mean <- (1 - momentum) running_mean + momentum mean
//!   running_var  <- (1 - momentum) running_var  + momentum var * M/(M-1)      (unbiased, as PyTorch)
//! Eval forward: y = gamma * (x - running_mean) / sqrt(running_var + eps) + beta.
//!
//! Backward, training mode (gradient flows through mean and var), xhat = (x - mean) * rstd:
//!   dbeta = sum dy,  dgamma = sum dy * xhat,  dx = gamma * rstd * (dy - dbeta/M - xhat * dgamma/M)
//! Backward, eval mode: dx = gamma * rstd * dy (statistics are constants), dgamma and dbeta as above.
//! Fused ReLU (`batch_norm_relu`, training mode; the model's every conv -> BN -> ReLU): z = max(y, 0) written by the
//! forward in place of y, and a backward that is BN's with dy = dz * [y > 0], y recomputed from x and the saved
//! statistics by the forward's own expression, so the mask is the forward's bit for bit. Against `batch_norm` then
//! `relu` it saves one pass over the activations forward and ReLU's whole backward pass, bit-identical results.
//! Eval mode folded into the convolution before it (inference, no gradient; `batch_norm_fold`): with
//!   s = gamma / sqrt(running_var + eps), BN(conv(x, w)) = conv(x, s w) + (beta - s running_mean).
//!
//! What the forward saves for the backward: x, gamma, and `stats` [3, C] = (mean, biased var, rstd) of the batch
//! (training) or a snapshot of the running statistics (eval), so a later in-place running update cannot change them.
//!
//! Per-channel reductions are tiled (shaders/batch_norm.wgsl explains why: llvmpipe's 65,535-iteration loop limit):
//! each reduction launcher below records `<name>_tiles` dispatches then one `<name>_merge`, through a scratch
//! `partial` [C, tiles, 2]. `num_batches_tracked` is the caller's (the model's) business.
//!
//! Over the storage-binding limit (lavapipe: 128 MiB; a conv output at batch 32) the [N, C, H, W] tensors are bound
//! in batch runs (`ops::runs::batch_runs`, see `runs`): the elementwise passes run once per run, and each run's
//! `_tiles` dispatch writes the partial results of its own tiles at their place in `partial`, which one merge folds in
//! tile order. A tile holds TILE values of one channel in (n, h, w) order and may span several samples, so runs are
//! cut to a multiple of TILE / gcd(H*W, TILE) samples: their tiles are then exactly those of one launch and every
//! result is bit-identical to the unsplit one. A 128 MiB binding holds that many samples of every layer at 384x192
//! (at most 512 samples of 72 values, the deepest layer's). Under a binding too small for that (the tests' 1,200
//! bytes; or, at sizes with odd deep rows such as 352x160, the deepest layers at batches over 500), each run's last
//! tile is short: the statistics and dgamma/dbeta are summed in other groups, equal within `check_shape`'s
//! tolerances, not bit for bit.
//!
//! Shapes: x, y, dy, dx [N, C, H, W]; gamma, beta, running_mean, running_var, dgamma, dbeta [C]; stats [3, C].

use std::sync::Arc;

use crate::check::{compare, f64s, rand_vec, CheckResult};
use crate::gpu::{Bind, Gpu, ShaderFile};
use crate::graph::{Tape, Var};
use crate::ops::runs::batch_runs;
use crate::ops::vec4_offset_ok;
use crate::tensor::Tensor;

pub const SHADERS: &[ShaderFile] = &[ShaderFile { file: "batch_norm.wgsl", source: include_str!("../../shaders/batch_norm.wgsl"), subgroups: false }];

/// The `_vec4` elementwise kernels on the plane grid (vec4 blocks of a plane, C, samples), WGSL `WG_PLANE` lanes.
const PLANE_GRID: &[&str] = &["batch_norm_forward_vec4", "batch_norm_backward_input_vec4"];
const WG_PLANE: usize = 64;

/// Values per tile of the `*_tiles` reductions (WGSL `TILE`).
pub const TILE: usize = 4096;

crate::ops::params! {
    /// Mirror of WGSL `Params` in shaders/batch_norm.wgsl.
    pub struct Params {
        /// Channels.
        pub c: u32,
        /// H * W, values per (sample, channel) plane.
        pub hw: u32,
        /// N * H * W, values per channel (the reduction length).
        pub m: u32,
        /// Elements of x in this launch (the 1-D grid of the elementwise kernels): N * C * H * W unless split.
        pub n: u32,
        /// Tiles per channel of all launches together (the row length of `partial`).
        pub tiles: u32,
        /// Added to the variance under the square root (PyTorch default 1e-5).
        pub eps: f32,
        /// Weight of the batch statistic in the running update (PyTorch default 0.1).
        pub momentum: f32,
        /// m / (m - 1) in f64 rounded once: turns the biased batch variance into the unbiased one for running_var.
        pub bessel: f32,
        /// This launch's first tile (the `*_tiles` kernels of a split launch).
        pub tile0: u32,
        /// Values per channel in each batch run but the last (= m unless split), and its tiles: tile counts restart
        /// at every run.
        pub run_m: u32,
        pub run_tiles: u32,
        /// 1: the training kernels fuse a ReLU (forward writes max(y, 0); the backward masks dy by y > 0).
        pub relu: u32,
    }
}

/// Whether the launchers take the `_vec4` entry points for this x: H*W % 4 == 0, so a vec4 never straddles two
/// channel planes (a run's ranges start at whole samples, so they are 16-byte aligned too; the launchers check it,
/// `ops::vec4_offset_ok`). `KernelOptions::vec4` false forces the scalar kernels.
pub fn uses_vec4(gpu: &Gpu, shape: &[usize]) -> bool {
    let hw = shape[2..].iter().product::<usize>();
    gpu.vec4() && shape.len() == 4 && hw % 4 == 0 && hw > 0
}

/// The batch runs `(first item, items)` of x [N, C, H, W]: one run normally; over the binding limit `batch_runs`,
/// shortened to a multiple of TILE / gcd(H*W, TILE) samples when a run holds that many, so that runs end where tiles
/// end (see the module header).
fn runs(gpu: &Gpu, op: &str, shape: &[usize]) -> Vec<(usize, usize)> {
    let (n, c, hw) = (shape[0], shape[1], shape[2] * shape[3]);
    let runs = batch_runs(gpu, op, n, &[(c * hw * 4) as u64]);
    // Samples whose H*W values fill whole tiles (TILE is a power of two, so the gcd is a power of two too).
    let whole = TILE >> hw.trailing_zeros().min(TILE.trailing_zeros());
    let per = runs[0].1;
    if runs.len() == 1 || per < whole {
        return runs;
    }
    let per = per / whole * whole;
    (0..n).step_by(per).map(|s| (s, per.min(n - s))).collect()
}

/// Params for a 4-D x and its batch runs; `op` names the caller in assertion messages.
fn params_for(x: &Tensor, op: &str) -> (Params, Vec<(usize, usize)>) {
    let (n, c, h, w) = x.nchw(op);
    let (hw, m) = (h * w, n * h * w);
    assert!(m > 0 && c > 0, "{op}: empty tensor {:?}", x.shape);
    let runs = runs(x.gpu(), op, &x.shape);
    let run_m = runs[0].1 * hw;
    let tiles: usize = runs.iter().map(|&(_, cnt)| (cnt * hw).div_ceil(TILE)).sum();
    assert!(tiles <= 65_535 && c <= 65_535, "{op}: {:?} exceeds the tile grid (at most 65,535 tiles and channels)", x.shape);
    // The merge kernels walk `tiles` in one loop: keep it far below llvmpipe's 65,535-iteration limit.
    assert!(tiles <= 16_384, "{op}: {m} values per channel need {tiles} tiles, over the 16,384 one merge may fold");
    let prm = Params {
        c: c as u32,
        hw: hw as u32,
        m: m as u32,
        n: x.numel() as u32,
        tiles: tiles as u32,
        eps: 0.0,
        momentum: 0.0,
        bessel: if m > 1 { (m as f64 / (m as f64 - 1.0)) as f32 } else { f32::NAN },
        tile0: 0,
        run_m: run_m as u32,
        run_tiles: run_m.div_ceil(TILE) as u32,
        relu: 0,
    };
    (prm, runs)
}

/// The buffers of one run: `binds(first, len)` binds the [N, C, H, W] tensors from element `first` for `len` elements
/// (the run's samples) and the per-channel ones whole.
type RunBinds<'a> = dyn Fn(usize, usize) -> Vec<(&'static str, Bind<'a>)> + 'a;

/// One dispatch per batch run of a kernel over x's elements (`tiles` false: the elementwise kernels, one invocation
/// per element or per 4 with `_vec4`) or over the run's tiles (`tiles` true: grid (tiles of the run, C), the run's
/// tiles written from `tile0` on). The `_vec4` entry point runs when `uses_vec4` and the run's range is aligned.
fn launch(
    gpu: &Gpu,
    shape: &[usize],
    (name, vec4): (&str, &str),
    tiles: bool,
    prm: &Params,
    runs: &[(usize, usize)],
    binds: &RunBinds,
) {
    let (c, hw) = (shape[1], shape[2] * shape[3]);
    let mut tile0 = 0;
    for &(n0, cnt) in runs {
        let (first, len) = (n0 * c * hw, cnt * c * hw);
        let v4 = uses_vec4(gpu, shape) && vec4_offset_ok(gpu, (first * 4) as u64);
        let entry = if v4 { vec4 } else { name };
        let run = Params { n: len as u32, tile0, ..*prm };
        if tiles {
            let count = (cnt * hw).div_ceil(TILE) as u32; // this run's tiles per channel
            gpu.dispatch(entry, &run, &binds(first, len), [count, c as u32, 1]);
            tile0 += count;
        } else if v4 && PLANE_GRID.contains(&entry) {
            let blocks = (hw / 4).div_ceil(WG_PLANE) as u32;
            gpu.dispatch(entry, &run, &binds(first, len), [blocks, c as u32, cnt as u32]);
        } else {
            gpu.dispatch_1d(entry, &run, &binds(first, len), if v4 { len as u64 / 4 } else { len as u64 });
        }
    }
}

fn assert_channels(op: &str, what: &str, t: &Tensor, c: usize) {
    assert_eq!(t.shape, vec![c], "{op}: {what} must have shape [{c}] (one per channel), got {:?}", t.shape);
}

/// Batch statistics of x: stats [3, C] = (mean, biased var, rstd = 1/sqrt(var + eps)).
/// Dispatches: `batch_norm_stats_tiles` (per-tile mean and M2, once per run), `batch_norm_stats_merge` (Chan merge).
pub fn batch_norm_stats(x: &Tensor, eps: f32) -> Tensor {
    let gpu = x.gpu();
    let (prm, runs) = params_for(x, "batch_norm_stats");
    let prm = Params { eps, ..prm };
    let c = prm.c as usize;
    let partial = Tensor::empty(gpu, &[c, prm.tiles as usize, 2]);
    let stats = Tensor::empty(gpu, &[3, c]);
    let entries = ("batch_norm_stats_tiles", "batch_norm_stats_tiles_vec4");
    launch(gpu, &x.shape, entries, true, &prm, &runs, &|first, len| {
        vec![("x", x.bind_range(first, len)), ("partial", partial.bind())]
    });
    let binds = [("stats", stats.bind()), ("partial", partial.bind())];
    gpu.dispatch_1d("batch_norm_stats_merge", &prm, &binds, c as u64);
    stats
}

/// A stats [3, C] snapshot of the running statistics (mean, var, rstd), for the eval-mode backward.
pub fn batch_norm_stats_eval(running_mean: &Tensor, running_var: &Tensor, eps: f32) -> Tensor {
    let c = running_mean.numel();
    assert_channels("batch_norm_stats_eval", "running_var", running_var, c);
    let stats = Tensor::empty(running_mean.gpu(), &[3, c]);
    let prm = Params { c: c as u32, eps, ..Params::default() };
    let binds = [("stats", stats.bind()), ("running_mean", running_mean.bind()), ("running_var", running_var.bind())];
    running_mean.gpu().dispatch_1d("batch_norm_stats_eval", &prm, &binds, c as u64);
    stats
}

/// y = gamma * (x - mean) * rstd + beta with stats [3, C] from `batch_norm_stats` (or `batch_norm_stats_eval`);
/// max(y, 0) when `relu` (the fused ReLU).
pub fn batch_norm_forward(x: &Tensor, stats: &Tensor, gamma: &Tensor, beta: &Tensor, relu: bool) -> Tensor {
    let (prm, runs) = params_for(x, "batch_norm_forward");
    let prm = Params { relu: relu.into(), ..prm };
    let c = prm.c as usize;
    assert_eq!(stats.shape, vec![3, c], "batch_norm_forward: stats must be [3, {c}]");
    assert_channels("batch_norm_forward", "gamma", gamma, c);
    assert_channels("batch_norm_forward", "beta", beta, c);
    let y = Tensor::empty(x.gpu(), &x.shape);
    let entries = ("batch_norm_forward", "batch_norm_forward_vec4");
    launch(x.gpu(), &x.shape, entries, false, &prm, &runs, &|first, len| {
        vec![
            ("x", x.bind_range(first, len)),
            ("gamma", gamma.bind()),
            ("beta", beta.bind()),
            ("stats", stats.bind()),
            ("y", y.bind_range(first, len)),
        ]
    });
    y
}

/// Eval mode: y = gamma * (x - running_mean) / sqrt(running_var + eps) + beta.
pub fn batch_norm_forward_eval(x: &Tensor, gamma: &Tensor, beta: &Tensor, running_mean: &Tensor, running_var: &Tensor, eps: f32) -> Tensor {
    let (prm, runs) = params_for(x, "batch_norm_forward_eval");
    let prm = Params { eps, ..prm };
    let c = prm.c as usize;
    for (what, t) in [("gamma", gamma), ("beta", beta), ("running_mean", running_mean), ("running_var", running_var)] {
        assert_channels("batch_norm_forward_eval", what, t, c);
    }
    let y = Tensor::empty(x.gpu(), &x.shape);
    let entries = ("batch_norm_forward_eval", "batch_norm_forward_eval_vec4");
    launch(x.gpu(), &x.shape, entries, false, &prm, &runs, &|first, len| {
        vec![
            ("x", x.bind_range(first, len)),
            ("gamma", gamma.bind()),
            ("beta", beta.bind()),
            ("y", y.bind_range(first, len)),
            ("running_mean", running_mean.bind()),
            ("running_var", running_var.bind()),
        ]
    });
    y
}

/// In place: running_mean, running_var <- (1 - momentum) * running + momentum * batch (var made unbiased with
/// M/(M-1), M = values per channel). `stats` from `batch_norm_stats`.
pub fn batch_norm_update_running(stats: &Tensor, running_mean: &Tensor, running_var: &Tensor, m: usize, momentum: f32) {
    let c = running_mean.numel();
    assert!(m > 1, "batch_norm_update_running: the unbiased variance needs more than 1 value per channel, got {m}");
    assert_eq!(stats.shape, vec![3, c], "batch_norm_update_running: stats must be [3, {c}]");
    assert_channels("batch_norm_update_running", "running_var", running_var, c);
    let prm = Params { c: c as u32, m: m as u32, momentum, bessel: (m as f64 / (m as f64 - 1.0)) as f32, ..Params::default() };
    let binds = [("stats", stats.bind()), ("running_mean", running_mean.bind()), ("running_var", running_var.bind())];
    running_mean.gpu().dispatch_1d("batch_norm_update_running", &prm, &binds, c as u64);
}

/// (dgamma, dbeta) [C] each: dgamma = sum dy * xhat, dbeta = sum dy, xhat from `stats`. With `relu` (the fused
/// ReLU) dy is the gradient of max(y, 0) and is masked by y > 0, y recomputed from x, stats, gamma and beta.
/// Dispatches: `batch_norm_backward_params_tiles` (once per run), `batch_norm_backward_params_merge`.
pub fn batch_norm_backward_params(x: &Tensor, dy: &Tensor, stats: &Tensor, gamma: &Tensor, beta: &Tensor, relu: bool) -> (Tensor, Tensor) {
    let gpu = x.gpu();
    let (prm, runs) = params_for(x, "batch_norm_backward_params");
    let prm = Params { relu: relu.into(), ..prm };
    let c = prm.c as usize;
    assert_eq!(dy.shape, x.shape, "batch_norm_backward_params: dy shape differs from x");
    assert_eq!(stats.shape, vec![3, c], "batch_norm_backward_params: stats must be [3, {c}]");
    let partial = Tensor::empty(gpu, &[c, prm.tiles as usize, 2]);
    let dgamma = Tensor::empty(gpu, &[c]);
    let dbeta = Tensor::empty(gpu, &[c]);
    let entries = ("batch_norm_backward_params_tiles", "batch_norm_backward_params_tiles_vec4");
    launch(gpu, &x.shape, entries, true, &prm, &runs, &|first, len| {
        vec![
            ("x", x.bind_range(first, len)),
            ("dy", dy.bind_range(first, len)),
            ("stats", stats.bind()),
            ("partial", partial.bind()),
            ("gamma", gamma.bind()),
            ("beta", beta.bind()),
        ]
    });
    let binds = [("partial", partial.bind()), ("dgamma", dgamma.bind()), ("dbeta", dbeta.bind())];
    gpu.dispatch_1d("batch_norm_backward_params_merge", &prm, &binds, c as u64);
    (dgamma, dbeta)
}

/// Training mode: dx = gamma * rstd * (dy - dbeta/M - xhat * dgamma/M); with `relu` (the fused ReLU) dy masked as
/// in `batch_norm_backward_params`, which made dgamma and dbeta.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_backward_input(x: &Tensor, dy: &Tensor, gamma: &Tensor, beta: &Tensor, stats: &Tensor, dgamma: &Tensor, dbeta: &Tensor, relu: bool) -> Tensor {
    let (prm, runs) = params_for(x, "batch_norm_backward_input");
    let prm = Params { relu: relu.into(), ..prm };
    let c = prm.c as usize;
    assert_eq!(dy.shape, x.shape, "batch_norm_backward_input: dy shape differs from x");
    assert_eq!(stats.shape, vec![3, c], "batch_norm_backward_input: stats must be [3, {c}]");
    for (what, t) in [("gamma", gamma), ("beta", beta), ("dgamma", dgamma), ("dbeta", dbeta)] {
        assert_channels("batch_norm_backward_input", what, t, c);
    }
    let dx = Tensor::empty(x.gpu(), &x.shape);
    let entries = ("batch_norm_backward_input", "batch_norm_backward_input_vec4");
    launch(x.gpu(), &x.shape, entries, false, &prm, &runs, &|first, len| {
        vec![
            ("x", x.bind_range(first, len)),
            ("dy", dy.bind_range(first, len)),
            ("gamma", gamma.bind()),
            ("beta", beta.bind()),
            ("stats", stats.bind()),
            ("dx", dx.bind_range(first, len)),
            ("dgamma", dgamma.bind()),
            ("dbeta", dbeta.bind()),
        ]
    });
    dx
}

/// Eval mode: dx = gamma * rstd * dy, rstd from a `batch_norm_stats_eval` snapshot.
pub fn batch_norm_backward_input_eval(dy: &Tensor, gamma: &Tensor, stats: &Tensor) -> Tensor {
    let (prm, runs) = params_for(dy, "batch_norm_backward_input_eval");
    let c = prm.c as usize;
    assert_eq!(stats.shape, vec![3, c], "batch_norm_backward_input_eval: stats must be [3, {c}]");
    assert_channels("batch_norm_backward_input_eval", "gamma", gamma, c);
    let dx = Tensor::empty(dy.gpu(), &dy.shape);
    let entries = ("batch_norm_backward_input_eval", "batch_norm_backward_input_eval_vec4");
    launch(dy.gpu(), &dy.shape, entries, false, &prm, &runs, &|first, len| {
        vec![
            ("dy", dy.bind_range(first, len)),
            ("gamma", gamma.bind()),
            ("stats", stats.bind()),
            ("dx", dx.bind_range(first, len)),
        ]
    });
    dx
}

/// Eval-mode BN folded into the convolution before it, for inference: `(w', shift)` with
/// `conv(x, w') + shift == batch_norm_forward_eval(conv(x, w))` (the header's formula), w [Cout, Cin, KH, KW] (any
/// shape whose first axis is the BN's channels), shift [Cout]. No gradient: a snapshot of the current weights and
/// running statistics. One dispatch (`batch_norm_fold`) over the weights.
pub fn batch_norm_fold(w: &Tensor, gamma: &Tensor, beta: &Tensor, running_mean: &Tensor, running_var: &Tensor, eps: f32) -> (Tensor, Tensor) {
    let op = "batch_norm_fold";
    let c = *w.shape.first().unwrap_or_else(|| panic!("{op}: the weight has no channel axis"));
    let k = w.numel() / c.max(1);
    assert!(c > 0 && k > 0, "{op}: empty weight {:?}", w.shape);
    for (what, t) in [("gamma", gamma), ("beta", beta), ("running_mean", running_mean), ("running_var", running_var)] {
        assert_channels(op, what, t, c);
    }
    let gpu = w.gpu();
    let (wf, shift) = (Tensor::empty(gpu, &w.shape), Tensor::empty(gpu, &[c]));
    let prm = Params { c: c as u32, hw: k as u32, n: w.numel() as u32, eps, ..Params::default() };
    let binds = [
        ("x", w.bind()),
        ("gamma", gamma.bind()),
        ("beta", beta.bind()),
        ("running_mean", running_mean.bind()),
        ("running_var", running_var.bind()),
        ("y", wf.bind()),
        ("shift", shift.bind()),
    ];
    gpu.dispatch_1d(op, &prm, &binds, w.numel() as u64);
    (wf, shift)
}

/// One BatchNorm2d layer: its parameters (gradients flow to them), its running statistics (updated in place in
/// training) and its hyper-parameters. PyTorch's defaults: eps 1e-5, momentum 0.1.
pub struct BnLayer<'a> {
    pub gamma: &'a Var,
    pub beta: &'a Var,
    pub running_mean: &'a Tensor,
    pub running_var: &'a Tensor,
    pub momentum: f32,
    pub eps: f32,
}

/// Autograd wrapper. Training: normalise with batch statistics (biased variance), save mean and rstd for the
/// backward, and update the running stats in place: running = (1-momentum)*running + momentum*batch, with the
/// UNBIASED batch variance (n/(n-1)) for running_var. Eval: use the running stats. Gradients flow to x, gamma and
/// beta.
pub fn batch_norm(tape: &Tape, x: &Var, l: &BnLayer, training: bool) -> Var {
    bn_node(tape, x, l, training, false)
}

/// ReLU(batch_norm(..)) as one op in training mode (the fused ReLU of the module header: one forward pass instead of
/// two, no ReLU backward pass, the BN output never stored); in eval mode `batch_norm` then `relu`.
pub fn batch_norm_relu(tape: &Tape, x: &Var, l: &BnLayer, training: bool) -> Var {
    if training {
        bn_node(tape, x, l, true, true)
    } else {
        crate::ops::relu::relu(tape, &batch_norm(tape, x, l, false))
    }
}

fn bn_node(tape: &Tape, x: &Var, l: &BnLayer, training: bool, relu: bool) -> Var {
    let BnLayer { gamma, beta, running_mean, running_var, momentum, eps } = *l;
    let (n, _, h, w) = x.t.nchw("batch_norm");
    let m = n * h * w;
    if training {
        // PyTorch refuses this too ("Expected more than 1 value per channel when training"): with one value the
        // biased variance is 0 (the output collapses to beta) and the unbiased one divides by zero.
        assert!(m > 1, "batch_norm: training needs more than 1 value per channel (N*H*W = {m}, x {:?}): the batch variance is undefined", x.t.shape);
        let stats = batch_norm_stats(&x.t, eps);
        let y = batch_norm_forward(&x.t, &stats, &gamma.t, &beta.t, relu);
        // The running update reads the batch stats and writes only the running buffers: the saved `stats` stay
        // valid for the backward whatever happens to the running stats afterwards.
        batch_norm_update_running(&stats, running_mean, running_var, m, momentum);
        // Saved for the backward: x, gamma, stats [3, C] (mean, var, rstd), and beta for the fused ReLU's mask.
        let (xs, gs, bs) = (x.t.clone(), gamma.t.clone(), beta.t.clone());
        let name = if relu { "batch_norm_relu" } else { "batch_norm" };
        tape.record(name, &[x, gamma, beta], y, move |gy| {
            let (dgamma, dbeta) = batch_norm_backward_params(&xs, gy, &stats, &gs, &bs, relu);
            let dx = batch_norm_backward_input(&xs, gy, &gs, &bs, &stats, &dgamma, &dbeta, relu);
            vec![Some(dx), Some(dgamma), Some(dbeta)]
        })
    } else {
        assert!(!relu, "batch_norm: the fused ReLU is a training-mode op");
        let y = batch_norm_forward_eval(&x.t, &gamma.t, &beta.t, running_mean, running_var, eps);
        if !tape.is_recording() {
            // Inference: nothing to save, no snapshot dispatch.
            return Var::constant(y);
        }
        // Eval mode with a recording tape (e.g. frozen statistics while fine-tuning): snapshot the running stats, as
        // a later training forward would update them in place before this node's backward runs.
        let stats = batch_norm_stats_eval(running_mean, running_var, eps);
        let (xs, gs, bs) = (x.t.clone(), gamma.t.clone(), beta.t.clone());
        tape.record("batch_norm", &[x, gamma, beta], y, move |gy| {
            let (dgamma, dbeta) = batch_norm_backward_params(&xs, gy, &stats, &gs, &bs, false);
            let dx = batch_norm_backward_input_eval(gy, &gs, &stats);
            vec![Some(dx), Some(dgamma), Some(dbeta)]
        })
    }
}

/// The f64 oracle: plain loops over x [N, C, HW] (HW = H*W flattened).
pub mod cpu {
    /// Per-channel (mean, biased var), two-pass.
    pub fn stats(x: &[f64], n: usize, c: usize, hw: usize) -> (Vec<f64>, Vec<f64>) {
        let m = (n * hw) as f64;
        let mut mean = vec![0.0; c];
        let mut var = vec![0.0; c];
        for ci in 0..c {
            let mut s = 0.0;
            for ni in 0..n {
                for &v in &x[(ni * c + ci) * hw..][..hw] {
                    s += v;
                }
            }
            mean[ci] = s / m;
            let mut q = 0.0;
            for ni in 0..n {
                for &v in &x[(ni * c + ci) * hw..][..hw] {
                    q += (v - mean[ci]) * (v - mean[ci]);
                }
            }
            var[ci] = q / m;
        }
        (mean, var)
    }

    /// y = gamma * (x - mean) / sqrt(var + eps) + beta with the given per-channel mean, var (batch or running).
    #[allow(clippy::too_many_arguments)]
    pub fn normalize(x: &[f64], n: usize, c: usize, hw: usize, mean: &[f64], var: &[f64], gamma: &[f64], beta: &[f64], eps: f64) -> Vec<f64> {
        let mut y = vec![0.0; x.len()];
        for ni in 0..n {
            for ci in 0..c {
                let rstd = 1.0 / (var[ci] + eps).sqrt();
                let o = (ni * c + ci) * hw;
                for k in 0..hw {
                    y[o + k] = gamma[ci] * (x[o + k] - mean[ci]) * rstd + beta[ci];
                }
            }
        }
        y
    }

    /// Training forward: (y, batch mean, batch biased var).
    #[allow(clippy::too_many_arguments)]
    pub fn forward_train(x: &[f64], n: usize, c: usize, hw: usize, gamma: &[f64], beta: &[f64], eps: f64) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let (mean, var) = stats(x, n, c, hw);
        (normalize(x, n, c, hw, &mean, &var, gamma, beta, eps), mean, var)
    }

    /// Eval forward: normalise with the running statistics.
    #[allow(clippy::too_many_arguments)]
    pub fn forward_eval(x: &[f64], n: usize, c: usize, hw: usize, gamma: &[f64], beta: &[f64], rm: &[f64], rv: &[f64], eps: f64) -> Vec<f64> {
        normalize(x, n, c, hw, rm, rv, gamma, beta, eps)
    }

    /// The folded convolution (w' [C, K] row-major, shift [C]): w'[c, k] = s_c w[c, k], shift_c = beta_c - s_c mean_c,
    /// s_c = gamma_c / sqrt(var_c + eps).
    #[allow(clippy::too_many_arguments)]
    pub fn fold(w: &[f64], c: usize, gamma: &[f64], beta: &[f64], rm: &[f64], rv: &[f64], eps: f64) -> (Vec<f64>, Vec<f64>) {
        let k = w.len() / c;
        let s: Vec<f64> = (0..c).map(|ci| gamma[ci] / (rv[ci] + eps).sqrt()).collect();
        let wf = w.iter().enumerate().map(|(i, v)| v * s[i / k]).collect();
        (wf, (0..c).map(|ci| beta[ci] - s[ci] * rm[ci]).collect())
    }

    /// In place running update with the unbiased variance var * m / (m - 1).
    pub fn update_running(rm: &mut [f64], rv: &mut [f64], mean: &[f64], var: &[f64], m: usize, momentum: f64) {
        let bessel = m as f64 / (m as f64 - 1.0);
        for ci in 0..rm.len() {
            rm[ci] = (1.0 - momentum) * rm[ci] + momentum * mean[ci];
            rv[ci] = (1.0 - momentum) * rv[ci] + momentum * var[ci] * bessel;
        }
    }

    /// (dgamma, dbeta): sums of dy * xhat and dy per channel, xhat = (x - mean) / sqrt(var + eps).
    #[allow(clippy::too_many_arguments)]
    pub fn backward_params(x: &[f64], dy: &[f64], n: usize, c: usize, hw: usize, mean: &[f64], var: &[f64], eps: f64) -> (Vec<f64>, Vec<f64>) {
        let mut dgamma = vec![0.0; c];
        let mut dbeta = vec![0.0; c];
        for ni in 0..n {
            for ci in 0..c {
                let rstd = 1.0 / (var[ci] + eps).sqrt();
                let o = (ni * c + ci) * hw;
                for k in 0..hw {
                    dbeta[ci] += dy[o + k];
                    dgamma[ci] += dy[o + k] * (x[o + k] - mean[ci]) * rstd;
                }
            }
        }
        (dgamma, dbeta)
    }

    /// Training backward through the batch mean and variance: (dx, dgamma, dbeta).
    /// dx = gamma * rstd * (dy - dbeta/M - xhat * dgamma/M).
    #[allow(clippy::too_many_arguments)]
    pub fn backward_train(x: &[f64], dy: &[f64], n: usize, c: usize, hw: usize, gamma: &[f64], eps: f64) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let (mean, var) = stats(x, n, c, hw);
        let (dgamma, dbeta) = backward_params(x, dy, n, c, hw, &mean, &var, eps);
        let m = (n * hw) as f64;
        let mut dx = vec![0.0; x.len()];
        for ni in 0..n {
            for ci in 0..c {
                let rstd = 1.0 / (var[ci] + eps).sqrt();
                let o = (ni * c + ci) * hw;
                for k in 0..hw {
                    let xhat = (x[o + k] - mean[ci]) * rstd;
                    dx[o + k] = gamma[ci] * rstd * (dy[o + k] - dbeta[ci] / m - xhat * dgamma[ci] / m);
                }
            }
        }
        (dx, dgamma, dbeta)
    }

    /// Eval backward with constant running statistics: (dx, dgamma, dbeta), dx = gamma * rstd * dy.
    #[allow(clippy::too_many_arguments)]
    pub fn backward_eval(x: &[f64], dy: &[f64], n: usize, c: usize, hw: usize, gamma: &[f64], rm: &[f64], rv: &[f64], eps: f64) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let (dgamma, dbeta) = backward_params(x, dy, n, c, hw, rm, rv, eps);
        let mut dx = vec![0.0; x.len()];
        for ni in 0..n {
            for ci in 0..c {
                let rstd = 1.0 / (rv[ci] + eps).sqrt();
                let o = (ni * c + ci) * hw;
                for k in 0..hw {
                    dx[o + k] = gamma[ci] * rstd * dy[o + k];
                }
            }
        }
        (dx, dgamma, dbeta)
    }
}

/// Test data for shape [n, c, h, w]: x with a per-channel offset of up to ~100 (so a variance formula that cancels
/// would show), gamma, beta, running stats, upstream gradient.
pub struct Case {
    pub shape: [usize; 4],
    pub x: Vec<f32>,
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
    pub rm: Vec<f32>,
    pub rv: Vec<f32>,
    pub dy: Vec<f32>,
}

impl Case {
    pub fn new(shape: [usize; 4], seed: u64) -> Case {
        let [n, c, h, w] = shape;
        let hw = h * w;
        let mut x = rand_vec(n * c * hw, seed);
        for (i, v) in x.iter_mut().enumerate() {
            let ci = (i / hw) % c;
            *v = *v * (1.0 + ci as f32 * 0.37) + (ci as f32 * 13.7) % 100.0;
        }
        let gamma = rand_vec(c, seed + 1).iter().map(|v| 1.0 + 0.5 * v).collect();
        let beta = rand_vec(c, seed + 2);
        let rm = rand_vec(c, seed + 3);
        let rv = rand_vec(c, seed + 4).iter().map(|v| 1.0 + 0.8 * v).collect();
        let dy = rand_vec(n * c * hw, seed + 5);
        Case { shape, x, gamma, beta, rm, rv, dy }
    }
}

/// GPU vs the f64 oracle at `shape`: stats, training forward, running update, training backward (params and
/// input); `with_eval` adds the eval forward and eval backward. The rows are labelled "vec4" or "scalar" by the
/// entry points that ran, as the device profiler counted them (`take_profile`), asserted to be the ones the options
/// and the shape call for.
pub fn check_shape(gpu: &Arc<Gpu>, shape: [usize; 4], seed: u64, with_eval: bool) -> Vec<CheckResult> {
    let (eps, momentum) = (1e-5f32, 0.1f32);
    let cs = Case::new(shape, seed);
    let [n, c, h, w] = shape;
    let hw = h * w;
    let m = n * hw;
    // The rows get their kernel label at the end, from what ran.
    let label = format!("{shape:?}");
    let up = |s: &[usize], v: &[f32]| Tensor::from_slice(gpu, s, v);
    let (x, dy) = (up(&shape, &cs.x), up(&shape, &cs.dy));
    let (gamma, beta, rm, rv) = (up(&[c], &cs.gamma), up(&[c], &cs.beta), up(&[c], &cs.rm), up(&[c], &cs.rv));
    let (xd, dyd, gd, bd) = (f64s(&cs.x), f64s(&cs.dy), f64s(&cs.gamma), f64s(&cs.beta));
    let mut out = Vec::new();
    gpu.set_profiling(true);

    // Training forward.
    let stats = batch_norm_stats(&x, eps);
    let y = batch_norm_forward(&x, &stats, &gamma, &beta, false);
    batch_norm_update_running(&stats, &rm, &rv, m, momentum);
    let s = stats.to_vec();
    let (y_cpu, mean, var) = cpu::forward_train(&xd, n, c, hw, &gd, &bd, eps as f64);
    let rstd: Vec<f64> = var.iter().map(|v| 1.0 / (v + eps as f64).sqrt()).collect();
    out.push(compare("batch_norm_stats (mean)", &label, &s[..c], &mean, 1e-5, 1e-5));
    out.push(compare("batch_norm_stats (var)", &label, &s[c..2 * c], &var, 1e-6, 2e-5));
    out.push(compare("batch_norm_stats (rstd)", &label, &s[2 * c..], &rstd, 1e-6, 2e-5));
    out.push(compare("batch_norm_forward", &label, &y.to_vec(), &y_cpu, 1e-4, 1e-4));
    let (mut rm_cpu, mut rv_cpu) = (f64s(&cs.rm), f64s(&cs.rv));
    if m > 1 {
        cpu::update_running(&mut rm_cpu, &mut rv_cpu, &mean, &var, m, momentum as f64);
        out.push(compare("batch_norm_update_running (mean)", &label, &rm.to_vec(), &rm_cpu, 1e-5, 1e-5));
        out.push(compare("batch_norm_update_running (var)", &label, &rv.to_vec(), &rv_cpu, 1e-6, 2e-5));
    }

    // Training backward.
    let (dgamma, dbeta) = batch_norm_backward_params(&x, &dy, &stats, &gamma, &beta, false);
    let dx = batch_norm_backward_input(&x, &dy, &gamma, &beta, &stats, &dgamma, &dbeta, false);
    let (dx_cpu, dg_cpu, db_cpu) = cpu::backward_train(&xd, &dyd, n, c, hw, &gd, eps as f64);
    // The sums run over M values of size ~1: scale the absolute tolerance with sqrt(M).
    let sum_atol = 1e-5 * (m as f64).sqrt();
    out.push(compare("batch_norm_backward_params (dgamma)", &label, &dgamma.to_vec(), &dg_cpu, sum_atol, 1e-4));
    out.push(compare("batch_norm_backward_params (dbeta)", &label, &dbeta.to_vec(), &db_cpu, sum_atol, 1e-4));
    out.push(compare("batch_norm_backward_input", &label, &dx.to_vec(), &dx_cpu, 1e-4, 1e-3));

    // The fused ReLU: z = max(y, 0); its backward is BN's with dy masked by z > 0. The oracle takes the mask from
    // the GPU's own z (at |y| ~ 1e-7 the f32 and f64 signs may differ): what is checked is that the backward's
    // recomputed y gives the forward's mask, and the masked formulas.
    let z = batch_norm_forward(&x, &stats, &gamma, &beta, true).to_vec();
    let z_cpu: Vec<f64> = y_cpu.iter().map(|&v| v.max(0.0)).collect();
    out.push(compare("batch_norm_forward (fused relu)", &label, &z, &z_cpu, 1e-4, 1e-4));
    let (dgr, dbr) = batch_norm_backward_params(&x, &dy, &stats, &gamma, &beta, true);
    let dxr = batch_norm_backward_input(&x, &dy, &gamma, &beta, &stats, &dgr, &dbr, true);
    let dyr: Vec<f64> = dyd.iter().zip(&z).map(|(&g, &zv)| if zv > 0.0 { g } else { 0.0 }).collect();
    let (dxr_cpu, dgr_cpu, dbr_cpu) = cpu::backward_train(&xd, &dyr, n, c, hw, &gd, eps as f64);
    out.push(compare("batch_norm_backward_params (fused relu dgamma)", &label, &dgr.to_vec(), &dgr_cpu, sum_atol, 1e-4));
    out.push(compare("batch_norm_backward_params (fused relu dbeta)", &label, &dbr.to_vec(), &dbr_cpu, sum_atol, 1e-4));
    out.push(compare("batch_norm_backward_input (fused relu)", &label, &dxr.to_vec(), &dxr_cpu, 1e-4, 1e-3));

    if with_eval {
        // Eval forward and backward with the (updated) running statistics.
        let y = batch_norm_forward_eval(&x, &gamma, &beta, &rm, &rv, eps);
        let (rmv, rvv) = (f64s(&rm.to_vec()), f64s(&rv.to_vec()));
        let y_cpu = cpu::forward_eval(&xd, n, c, hw, &gd, &bd, &rmv, &rvv, eps as f64);
        out.push(compare("batch_norm_forward_eval", &label, &y.to_vec(), &y_cpu, 1e-4, 1e-4));
        let es = batch_norm_stats_eval(&rm, &rv, eps);
        let (dgamma, dbeta) = batch_norm_backward_params(&x, &dy, &es, &gamma, &beta, false);
        let dx = batch_norm_backward_input_eval(&dy, &gamma, &es);
        let (dx_cpu, dg_cpu, db_cpu) = cpu::backward_eval(&xd, &dyd, n, c, hw, &gd, &rmv, &rvv, eps as f64);
        // Eval-mode xhat is not normalised (x carries offsets up to 100): relative tolerance on dgamma.
        out.push(compare("batch_norm_backward_params (eval dgamma)", &label, &dgamma.to_vec(), &dg_cpu, sum_atol, 1e-4));
        out.push(compare("batch_norm_backward_params (eval dbeta)", &label, &dbeta.to_vec(), &db_cpu, sum_atol, 1e-4));
        out.push(compare("batch_norm_backward_input_eval", &label, &dx.to_vec(), &dx_cpu, 1e-5, 1e-5));
        // Folded into a convolution weight [C, 3, 3, 3] (inference).
        let wv = rand_vec(c * 27, seed + 6);
        let (wf, shift) = batch_norm_fold(&up(&[c, 3, 3, 3], &wv), &gamma, &beta, &rm, &rv, eps);
        let (wf_cpu, shift_cpu) = cpu::fold(&f64s(&wv), c, &gd, &bd, &rmv, &rvv, eps as f64);
        out.push(compare("batch_norm_fold (weight)", &label, &wf.to_vec(), &wf_cpu, 1e-6, 1e-6));
        out.push(compare("batch_norm_fold (shift)", &label, &shift.to_vec(), &shift_cpu, 1e-5, 1e-5));
    }

    // What ran: the kernels with a vec4 twin as `_vec4` where the options and H*W allow it, the rest as they are.
    let mut ran: Vec<&str> = gpu.take_profile().iter().map(|r| r.0).collect();
    gpu.set_profiling(false);
    let v4 = if uses_vec4(gpu, &shape) { "_vec4" } else { "" };
    let mut want: Vec<String> = ["stats_tiles", "forward", "backward_params_tiles", "backward_input"]
        .iter()
        .chain(if with_eval { &["forward_eval", "backward_input_eval"][..] } else { &[] })
        .map(|k| format!("batch_norm_{k}{v4}"))
        .chain(["stats_merge", "update_running", "backward_params_merge"].map(|k| format!("batch_norm_{k}")))
        .chain(with_eval.then(|| "batch_norm_stats_eval".to_string()))
        .chain(with_eval.then(|| "batch_norm_fold".to_string()))
        .collect();
    ran.sort();
    want.sort();
    assert_eq!(ran, want, "batch_norm check_shape: {shape:?} ran these entry points, not those expected");
    let kind = if ran.iter().any(|e| e.ends_with("_vec4")) { "vec4" } else { "scalar" };
    for r in &mut out {
        r.shape = format!("{label} {kind}");
    }
    out
}

/// Odd shapes (N = 1, prime C, H*W not a multiple of 256, channels spanning several tiles and sample boundaries,
/// H*W = 1) take the scalar kernels; shapes with H*W % 4 == 0 take the `_vec4` kernels and are checked a second time
/// with them switched off (the scalar baseline on the same shapes). `full` adds the two full U-Net sizes of 18.9M
/// values (vec4 path; slow on software adapters).
pub fn self_check(gpu: &Arc<Gpu>, full: bool) -> Vec<CheckResult> {
    let mut out = Vec::new();
    let shapes: [[usize; 4]; 5] = [[1, 3, 5, 7], [2, 7, 13, 11], [3, 5, 67, 71], [5, 2, 1, 1], [1, 2, 1, 2]];
    for (i, s) in shapes.into_iter().enumerate() {
        out.extend(check_shape(gpu, s, 10 + i as u64, true));
    }
    // H*W = 4 (one vec4 per plane), 20, and 68*72 = 4896 (4 tiles per channel, the last short, tiles crossing
    // sample boundaries, C prime).
    let shapes4: [[usize; 4]; 3] = [[1, 2, 1, 4], [2, 3, 4, 5], [3, 5, 68, 72]];
    for (i, s) in shapes4.into_iter().enumerate() {
        for on in [true, false] {
            let _guard = gpu.scoped(|o| o.vec4 = on);
            out.extend(check_shape(gpu, s, 20 + i as u64, true));
        }
    }
    if full {
        out.extend(check_shape(gpu, [4, 16, 192, 384], 100, false));
        out.extend(check_shape(gpu, [16, 64, 96, 192], 200, false));
    }
    out
}
