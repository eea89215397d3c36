//! `fluke bench --compare A.json B.json`: two results side by side, with no GPU.

use fluke::bench::{compare, BenchReport, KernelRow, Roofline};

fn report(adapter: &str, step_s: f64, conv_ms: f64) -> BenchReport {
    BenchReport {
        adapter: adapter.into(),
        backend: "Vulkan".into(),
        driver: "Mesa".into(),
        device_type: "Cpu".into(),
        cpu: Some("Some CPU".into()),
        roofline: Some(Roofline { peak_gflops: 100.0, peak_gbps: 10.0 }),
        size: [384, 192],
        batch: 4,
        width_div: 1,
        train_step_s: step_s,
        train_images_per_s: 4.0 / step_s,
        infer_images_per_s: 12.0 / step_s,
        first_step_s: 2.0 * step_s,
        first_step_compiled_ahead: 0,
        pipeline_compile_s: 0.3,
        peak_gpu_bytes: 1 << 30,
        timing: "gpu".into(),
        kernels: vec![KernelRow {
            name: "conv2d_forward".into(),
            shape: "[4,64,96,192] k3 s1 -> 64".into(),
            calls: 6,
            ms: conv_ms,
            gflops: Some(50.0),
            gbps: Some(1.0),
            pct_peak_gflops: None,
            pct_peak_gbps: None,
            bound: None,
        }],
    }
}

#[test]
fn two_runs_print_side_by_side_with_ratios() {
    let d = tempfile::tempdir().unwrap();
    let (a, b) = (d.path().join("a.json"), d.path().join("b.json"));
    std::fs::write(&a, serde_json::to_vec(&report("adapter A", 4.0, 300.0)).unwrap()).unwrap();
    std::fs::write(&b, serde_json::to_vec(&report("adapter B", 2.0, 100.0)).unwrap()).unwrap();
    let out = compare(&a, &b).unwrap();
    assert!(out.contains("A: adapter A (Vulkan, Mesa on Some CPU)"), "{out}");
    assert!(out.contains("B: adapter B"), "{out}");
    // B's step is twice as fast, its conv row three times.
    let step = out.lines().find(|l| l.starts_with("train step (s)")).unwrap();
    assert!(step.trim_end().ends_with("2.00x"), "{step}");
    let conv = out.lines().find(|l| l.starts_with("conv2d_forward")).unwrap();
    assert!(conv.trim_end().ends_with("3.00x"), "{conv}");
    assert!(out.contains("1 kernel rows in both runs"), "{out}");
}

#[test]
fn a_file_that_is_not_a_bench_result_is_named() {
    let d = tempfile::tempdir().unwrap();
    let bad = d.path().join("bad.json");
    std::fs::write(&bad, b"{\"not\": 1}").unwrap();
    let err = format!("{:#}", compare(&bad, &bad).unwrap_err());
    assert!(err.contains("bad.json") && err.contains("not a `fluke bench --json` result"), "{err}");
}

#[test]
fn the_roofline_names_the_bound_by_the_ridge_point() {
    let r = Roofline { peak_gflops: 100.0, peak_gbps: 10.0 }; // ridge 10 FLOP/byte
    let row = |gflops: f64, gbps: f64| {
        let mut k = report("x", 1.0, 1.0).kernels.remove(0);
        k.gflops = Some(gflops);
        k.gbps = Some(gbps);
        r.annotate(&mut k);
        k
    };
    let k = row(50.0, 1.0); // 50 FLOP/byte
    assert_eq!(k.bound.as_deref(), Some("compute"));
    assert_eq!(k.pct_peak_gflops, Some(50.0));
    assert_eq!(k.pct_peak_gbps, Some(10.0));
    let k = row(20.0, 5.0); // 4 FLOP/byte
    assert_eq!(k.bound.as_deref(), Some("memory"));
}
