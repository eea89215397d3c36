//! `cargo bench --bench kernels`: the same measurements as `fluke bench`, validate first, then time.
//! Environment: FLUKE_BENCH_SIZE (default 384x192), FLUKE_BENCH_BATCH (4), FLUKE_BENCH_WIDTH (1), FLUKE_BENCH_STEPS (3).

fn main() {
    let gpu = fluke::testing::gpu();
    // Validate: every kernel against the CPU oracle on this adapter before anything is timed.
    let checks = fluke::ops::self_checks(&gpu, false);
    fluke::check::assert_all_pass(&checks);
    eprintln!("validated {} kernel comparisons against the CPU oracle", checks.len());
    let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_string());
    let args = fluke::bench::BenchArgs {
        size: env("FLUKE_BENCH_SIZE", "384x192"),
        batch: env("FLUKE_BENCH_BATCH", "4").parse().unwrap(),
        steps: env("FLUKE_BENCH_STEPS", "3").parse().unwrap(),
        width: env("FLUKE_BENCH_WIDTH", "1").parse().unwrap(),
        json: std::env::var("FLUKE_BENCH_JSON").ok().map(Into::into),
        no_kernels: false,
    };
    fluke::bench::run(&gpu, &args).unwrap();
}
