//! Comparing GPU results with the f64 CPU oracles: shared by `fluke check` (a self-test on the user's driver) and
//! by the tests, so both run exactly the same comparisons.

use rand::{Rng, SeedableRng};

/// One comparison: an entry point at a shape, its worst errors and the verdict.
#[derive(Clone, Debug)]
pub struct CheckResult {
    pub entry: String,
    pub shape: String,
    pub max_abs: f64,
    pub max_rel: f64,
    /// Tolerances: an element passes when |gpu - cpu| <= atol + rtol * |cpu|.
    pub atol: f64,
    pub rtol: f64,
    pub pass: bool,
}

/// Compare `gpu` against `cpu` element by element. NaN anywhere fails.
pub fn compare(entry: &str, shape: &str, gpu: &[f32], cpu: &[f64], atol: f64, rtol: f64) -> CheckResult {
    let mut max_abs = 0f64;
    let mut max_rel = 0f64;
    let mut pass = gpu.len() == cpu.len();
    for (&g, &c) in gpu.iter().zip(cpu) {
        let g = g as f64;
        let d = (g - c).abs();
        if !d.is_finite() {
            pass = false;
            max_abs = f64::INFINITY;
            continue;
        }
        max_abs = max_abs.max(d);
        max_rel = max_rel.max(d / c.abs().max(1e-12));
        if d > atol + rtol * c.abs() {
            pass = false;
        }
    }
    CheckResult { entry: entry.into(), shape: shape.into(), max_abs, max_rel, atol, rtol, pass }
}

/// Deterministic uniform values in [-1, 1).
pub fn rand_vec(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

pub fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// Central finite differences of a scalar function of `x` (f64), for checking the CPU backward oracles.
pub fn finite_diff(x: &[f64], eps: f64, f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    let mut xp = x.to_vec();
    (0..x.len())
        .map(|i| {
            let x0 = xp[i];
            xp[i] = x0 + eps;
            let fp = f(&xp);
            xp[i] = x0 - eps;
            let fm = f(&xp);
            xp[i] = x0;
            (fp - fm) / (2.0 * eps)
        })
        .collect()
}

/// `sum(a * b)`: turns a tensor output into a scalar loss with a fixed random upstream gradient `b`.
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Print a table of results; returns true when all passed.
pub fn print_table(results: &[CheckResult]) -> bool {
    println!("{:<36} {:<28} {:>11} {:>11}  result", "entry point", "shape", "max abs", "max rel");
    let mut ok = true;
    for r in results {
        ok &= r.pass;
        println!(
            "{:<36} {:<28} {:>11.3e} {:>11.3e}  {}",
            r.entry,
            r.shape,
            r.max_abs,
            r.max_rel,
            if r.pass { "pass" } else { "FAIL" }
        );
    }
    ok
}

/// Panic listing every failed comparison (for tests).
pub fn assert_all_pass(results: &[CheckResult]) {
    assert!(!results.is_empty(), "no comparisons were run");
    let failed: Vec<_> = results.iter().filter(|r| !r.pass).collect();
    assert!(
        failed.is_empty(),
        "{} of {} comparisons failed:\n{}",
        failed.len(),
        results.len(),
        failed
            .iter()
            .map(|r| format!("  {} {} max_abs {:.3e} max_rel {:.3e} (atol {:.1e} rtol {:.1e})", r.entry, r.shape, r.max_abs, r.max_rel, r.atol, r.rtol))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// `fluke check`'s network part: every convolution of the U-Net at the default size (384x192), all three
/// directions, with the kernels this device picks, against f64 sums (`validate`); failing subgroup kernels are
/// replaced by their portable twins and checked again. Prints the table and the kernels this device gets; true when
/// everything that will run passes.
pub fn print_network_checks(gpu: &std::sync::Arc<crate::Gpu>) -> bool {
    let (w, h) = crate::data::DEFAULT_SIZE;
    let cfg = crate::model::UNetConfig::default();
    println!();
    println!("every convolution of the U-Net at {w}x{h} (batch 1), with the kernels this device picks, against f64 sums:");
    let t0 = std::time::Instant::now();
    let rep = crate::validate::validate(gpu, &cfg, w as usize, h as usize, 1, &Default::default());
    println!("{:<40} {:<12} {:>10}  {:<6} kernels", "geometry", "direction", "error", "result");
    for v in &rep.verdicts {
        let k: Vec<&str> = v.entries.iter().copied().filter(|e| !e.contains("pack_weight") && !e.ends_with("reduce")).collect();
        println!("{:<40} {:<12} {:>10.2e}  {:<6} {}", v.geometry, v.pass_name, v.worst, if v.pass { "pass" } else { "FAIL" }, k.join(", "));
    }
    for e in &rep.replaced {
        println!("REPLACED on this device: {e} (wrong here; its portable twin runs instead)");
    }
    let mut used: Vec<&str> = rep.verdicts.iter().flat_map(|v| v.entries.iter().copied()).filter(|e| gpu.allowed(e)).collect();
    used.sort();
    used.dedup();
    println!("kernels this device runs for the U-Net's convolutions: {}", used.join(", "));
    println!(
        "{} checks in {:.1} s: {}",
        rep.verdicts.len(),
        t0.elapsed().as_secs_f64(),
        if rep.unmended.is_empty() { "every kernel that runs passes" } else { "FAILED (see above)" }
    );
    let fwd = network_forward_check(gpu, w as usize, h as usize);
    let grads = network_gradient_check(gpu);
    rep.unmended.is_empty() && fwd && grads
}

/// The whole network at `width` x `height`, eval mode, closed-form weights (`UNet::fill_golden`), one image: the
/// GPU's logits and probabilities against the float64 CPU network (`model::cpu`). Passes when the probabilities are
/// within 1e-4 and the logits within 3e-4 of their largest magnitude.
pub fn network_forward_check(gpu: &std::sync::Arc<crate::Gpu>, width: usize, height: usize) -> bool {
    let t0 = std::time::Instant::now();
    let mut model = crate::model::UNet::new(gpu, crate::model::UNetConfig::default(), 0);
    model.fill_golden();
    let shape = [1, 3, height, width];
    let (x, _) = crate::model::golden_batch(1, height, width);
    let tape = crate::Tape::inference();
    let vars = model.param_vars(&tape);
    let z = model.forward(&tape, &vars, &crate::Var::constant(crate::Tensor::from_slice(gpu, &shape, &x)), false).t.to_vec();
    let t_gpu = t0.elapsed().as_secs_f64();
    let r = crate::model::cpu::forward_eval(&model, &x, shape);
    let scale = r.iter().fold(0f64, |m, v| m.max(v.abs()));
    let (mut dz, mut dp) = (0f64, 0f64);
    for (&a, &b) in z.iter().zip(&r) {
        dz = dz.max((a as f64 - b).abs());
        dp = dp.max((1.0 / (1.0 + (-(a as f64)).exp()) - 1.0 / (1.0 + (-b).exp())).abs());
    }
    // Probabilities, what users get, within 1e-4 (the correctness target); logits within 3e-4 of their largest
    // magnitude (float32 through 72 layers: lavapipe measured 7.7e-5 at 384x192, PyTorch float32 1.5e-5 on 64
    // sampled logits).
    let ok = z.len() == r.len() && dz <= 3e-4 * scale && dp <= 1e-4;
    println!(
        "whole U-Net {width}x{height}, eval, against the float64 CPU network: logits max error {dz:.2e} (of max |logit| {scale:.2}), \
         probabilities max error {dp:.2e}: {} (GPU {t_gpu:.1} s, CPU {:.1} s)",
        if ok { "pass" } else { "FAIL" },
        t0.elapsed().as_secs_f64() - t_gpu
    );
    ok
}

/// One backward pass of the whole network (2x3x96x192, eval-mode BN, BCE + Dice, closed-form weights) against
/// PyTorch's float64 gradients of every parameter (tests/golden/unet_sizes.safetensors, built in): per tensor the
/// sampled error within 5x PyTorch float32's own error (at least 1e-2), as tests/model_sizes.rs.
pub fn network_gradient_check(gpu: &std::sync::Arc<crate::Gpu>) -> bool {
    const GOLD: &[u8] = include_bytes!("../tests/golden/unet_sizes.safetensors");
    let t0 = std::time::Instant::now();
    let gold = crate::model::weights::parse_weight_bytes(GOLD).expect("built-in golden");
    let get = |k: &str| &gold.tensors.get(k).unwrap_or_else(|| panic!("golden: no {k}")).data;
    let (n, h, w) = (2, 96, 192);
    let mut model = crate::model::UNet::new(gpu, crate::model::UNetConfig::default(), 0);
    model.fill_golden();
    let (x, t) = crate::model::golden_batch(n, h, w);
    let tape = crate::Tape::new();
    let vars = model.param_vars(&tape);
    let z = model.forward(&tape, &vars, &crate::Var::constant(crate::Tensor::from_slice(gpu, &[n, 3, h, w], &x)), false);
    let (loss, _) = crate::ops::bce_dice::bce_dice(&tape, &z, &crate::Tensor::from_slice(gpu, &[n, 1, h, w], &t));
    let grads = tape.backward(&loss, crate::Tensor::full(gpu, &[1], 1.0));
    let (mut failed, mut worst) = (Vec::new(), 0f64);
    for name in model.param_names() {
        let got = grads.get(&vars[&name]).expect("every parameter has a gradient").to_vec();
        let key = format!("b2_96x192.egrad.{name}");
        let (idx, val, st) = (get(&format!("{key}.idx")), get(&format!("{key}.val")), get(&format!("{key}.stats")));
        let e = idx.iter().zip(val).map(|(&i, &v)| (got[i as usize] as f64 - v as f64).abs()).fold(0f64, f64::max) / (st[2] as f64).max(1e-30);
        let torch = get(&format!("b2_96x192.torch_f32_e.{name}"));
        let bound = (5.0 * torch[0].max(torch[1]) as f64).max(1e-2);
        worst = worst.max(e / bound);
        if e >= bound {
            failed.push(format!("{name} {e:.2e} (bound {bound:.1e})"));
        }
    }
    let ok = failed.is_empty();
    println!(
        "whole U-Net 2x3x96x192 backward, every parameter's gradient against PyTorch float64: {} ({} tensors, worst error {:.0}% of its bound, {:.1} s){}",
        if ok { "pass" } else { "FAIL" },
        model.param_names().len(),
        100.0 * worst,
        t0.elapsed().as_secs_f64(),
        if ok { String::new() } else { format!(": {}", failed.join(", ")) }
    );
    ok
}
