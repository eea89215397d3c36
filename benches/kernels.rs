//! `cargo bench --bench kernels`: the same measurements as `fluke bench`, validate first, then time.
//! Environment: FLUKE_BENCH_SIZE, FLUKE_BENCH_BATCH, FLUKE_BENCH_WIDTH, FLUKE_BENCH_STEPS (each defaults to `fluke
//! bench`'s: `BenchArgs::default()`), FLUKE_BENCH_JSON (a path: write the results there).

fn main() {
    let gpu = fluke::testing::gpu();
    // Validate: every kernel against the CPU oracle on this adapter before anything is timed.
    let checks = fluke::ops::self_checks(&gpu, false);
    fluke::check::assert_all_pass(&checks);
    eprintln!("validated {} kernel comparisons against the CPU oracle", checks.len());
    let d = fluke::bench::BenchArgs::default();
    let env = |k: &str| std::env::var(k).ok();
    let num = |k: &str, default: usize| env(k).map_or(default, |v| v.parse().unwrap_or_else(|_| panic!("{k}={v} is not a number")));
    let args = fluke::bench::BenchArgs {
        compare: None,
        size: env("FLUKE_BENCH_SIZE").unwrap_or(d.size),
        batch: num("FLUKE_BENCH_BATCH", d.batch),
        steps: num("FLUKE_BENCH_STEPS", d.steps),
        width: num("FLUKE_BENCH_WIDTH", d.width),
        json: env("FLUKE_BENCH_JSON").map(Into::into),
        no_kernels: d.no_kernels,
        no_warm_up: d.no_warm_up,
    };
    fluke::bench::run(&gpu, &args).unwrap();
}
