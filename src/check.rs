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

/// The one entry point `gpu` ran since profiling started or was last read (`Gpu::take_profile`; profiling stays on),
/// asserted to be `want` (`what` names the case in the panic), as a label: "vec4" or "scalar". The self-checks label
/// their rows with it, so a row says which kernel it really checked.
pub fn kernel_label(gpu: &crate::gpu::Gpu, what: &str, want: &str) -> &'static str {
    kernels_label(gpu, what, &[want])
}

/// `kernel_label` for an op that runs several entry points (a reduction's partial and final passes): the entry points
/// run since the profile was last read must be exactly `want`, in any order; labelled by the first of `want`.
pub fn kernels_label(gpu: &crate::gpu::Gpu, what: &str, want: &[&str]) -> &'static str {
    let mut ran: Vec<&str> = gpu.take_profile().iter().map(|r| r.0).collect();
    ran.sort();
    let mut sorted = want.to_vec();
    sorted.sort();
    assert_eq!(ran, sorted, "{what}: ran {ran:?}, not {want:?}");
    if want[0].ends_with("_vec4") {
        "vec4"
    } else {
        "scalar"
    }
}
