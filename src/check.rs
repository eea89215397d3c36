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
pub fn print_network_checks(gpu: &std::rc::Rc<crate::Gpu>) -> bool {
    let (w, h) = crate::data::DEFAULT_SIZE;
    let cfg = crate::model::UNetConfig::default();
    println!();
    println!("every convolution of the U-Net at {w}x{h} (batch 1), with the kernels this device picks, against f64 sums:");
    let t0 = std::time::Instant::now();
    let rep = crate::validate::validate(gpu, &cfg, w as usize, h as usize, &Default::default());
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
    rep.unmended.is_empty()
}
