//! conv2d at the U-Net's real shapes: validate every variant against the f64 oracle (on one image), then time it
//! (wall clock around `gpu.sync()`), and print GFLOP/s.
//!
//!   cargo bench --bench conv2d                # all shapes, every variant
//!   cargo bench --bench conv2d -- fwd 64      # only rows whose name contains every filter word
//!   FLUKE_BENCH_SECS=3 cargo bench ...        # longer best-of window per row (noisy, shared machines)
//!
//! Variants: Naive (one invocation per output), TiledPortable (register-blocked, no subgroup operations) and Tiled
//! (the same with subgroup twins where the device has subgroups).
//!
//! FLOPs = 2 * N * Cout * OH * OW * Cin * KH * KW for each of forward, input gradient and weight gradient.

use std::time::Instant;

use fluke::check::{compare, f64s, rand_vec};
use fluke::ops::conv2d::{self, cpu, Geom, Launch, Variant};
use fluke::Tensor;

/// (label, batch, Cin, H, W, Cout, k, stride, pad): input shapes at a 192x384 image.
const SHAPES: &[(&str, usize, usize, usize, usize, usize, usize, usize, usize)] = &[
    ("enc 64ch 48x96", 4, 64, 48, 96, 64, 3, 1, 1),
    ("enc 128ch 24x48", 4, 128, 24, 48, 128, 3, 1, 1),
    ("enc 256ch 12x24", 4, 256, 12, 24, 256, 3, 1, 1),
    ("enc 512ch 6x12", 4, 512, 6, 12, 512, 3, 1, 1),
    ("enc 512ch 6x12 b16", 16, 512, 6, 12, 512, 3, 1, 1),
    ("enc 64->128 s2", 4, 64, 48, 96, 128, 3, 2, 1),
    ("dec 32->16 192x384", 4, 32, 192, 384, 16, 3, 1, 1),
    ("stem 7x7/2 3->64", 4, 3, 192, 384, 64, 7, 2, 3),
];

/// Seconds of repeated runs per row (FLUKE_BENCH_SECS, default 1): the best run is reported.
fn secs_budget() -> f64 {
    std::env::var("FLUKE_BENCH_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(1.0)
}

fn time(mut f: impl FnMut()) -> f64 {
    let gpu = fluke::testing::gpu();
    f();
    gpu.sync();
    let mut best = f64::INFINITY;
    let t_all = Instant::now();
    while t_all.elapsed().as_secs_f64() < secs_budget() || best == f64::INFINITY {
        let t = Instant::now();
        f();
        gpu.sync();
        best = best.min(t.elapsed().as_secs_f64());
    }
    best
}

fn main() {
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let gpu = fluke::testing::gpu();
    println!("adapter: {} ({:?}), pipelines compiled in {:.2} s", gpu.info.name, gpu.info.device_type, gpu.compile_seconds);
    println!("{:<22} {:<7} {:<7} {:>10} {:>9} {:>10}", "shape", "pass", "variant", "ms", "GFLOP/s", "max rel");
    for &(label, n, cin, h, w, cout, k, s, pad) in SHAPES {
        let variants = [Variant::Naive, Variant::TiledPortable, Variant::Tiled];
        for (pass, variant) in ["fwd", "bwd_in", "bwd_w"].into_iter().flat_map(|p| variants.map(|v| (p, v))) {
            let name = format!("{label} {pass} {variant:?}");
            if !filters.iter().all(|f| name.contains(f.as_str())) {
                continue;
            }
            let l = Launch { variant, max_binding: None };
            let g = Geom::new("bench", &[n, cin, h, w], &[cout, cin, k, k], s, pad);
            // Validate on one image against the oracle.
            let g1 = Geom { n: 1, ..g };
            let (xs, ws, ys) = (g1.x_shape(), g1.w_shape(), g1.y_shape());
            let (x, wv, gy) = (rand_vec(xs.iter().product(), 1), rand_vec(ws.iter().product(), 2), rand_vec(ys.iter().product(), 3));
            let (tx, tw, tgy) = (Tensor::from_slice(&gpu, &xs, &x), Tensor::from_slice(&gpu, &ws, &wv), Tensor::from_slice(&gpu, &ys, &gy));
            let (got, want) = match pass {
                "fwd" => (conv2d::conv2d_forward_with(&tx, &tw, None, s, pad, l).to_vec(), cpu::forward(&f64s(&x), &xs, &f64s(&wv), &ws, None, s, pad)),
                "bwd_in" => (conv2d::conv2d_backward_input_with(&tgy, &tw, &xs, s, pad, l).to_vec(), cpu::backward_input(&f64s(&gy), &f64s(&wv), &ws, &xs, s, pad)),
                _ => (conv2d::conv2d_backward_weight_with(&tx, &tgy, &ws, s, pad, l).to_vec(), cpu::backward_weight(&f64s(&x), &xs, &f64s(&gy), &ws, s, pad)),
            };
            let r = compare(pass, label, &got, &want, 1e-3, 1e-3);
            assert!(r.pass, "{name}: does not match the oracle: max abs {:.3e}", r.max_abs);
            // Time at the full batch.
            let (xs, ws, ys) = (g.x_shape(), g.w_shape(), g.y_shape());
            let (tx, tw, tgy) = (
                Tensor::from_slice(&gpu, &xs, &rand_vec(xs.iter().product(), 1)),
                Tensor::from_slice(&gpu, &ws, &rand_vec(ws.iter().product(), 2)),
                Tensor::from_slice(&gpu, &ys, &rand_vec(ys.iter().product(), 3)),
            );
            let secs = match pass {
                "fwd" => time(|| drop(conv2d::conv2d_forward_with(&tx, &tw, None, s, pad, l))),
                "bwd_in" => time(|| drop(conv2d::conv2d_backward_input_with(&tgy, &tw, &xs, s, pad, l))),
                _ => time(|| drop(conv2d::conv2d_backward_weight_with(&tx, &tgy, &ws, s, pad, l))),
            };
            println!("{:<22} {:<7} {:<7} {:>10.2} {:>9.2} {:>10.2e}", label, pass, format!("{variant:?}"), secs * 1e3, g.flops() / secs / 1e9, r.max_rel.min(r.max_abs));
        }
    }
}
