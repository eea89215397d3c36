//! conv2d at the U-Net's real shapes: for each kernel family, validate against the f64 oracle (on one image), then
//! time (wall clock around `gpu.sync()`), and print GFLOP/s and the kernels that ran. Then the lab: kernels no
//! launcher picks, kept here (their WGSL beside this file), each validated and timed against the product's.
//!
//!   cargo bench --bench conv2d                # all shapes, every family, then the lab
//!   cargo bench --bench conv2d -- fwd 64      # only rows whose name contains every filter word
//!   FLUKE_BENCH_SECS=3 cargo bench ...        # longer best-of window per row (noisy, shared machines)
//!
//! Families (`Gpu::scoped`): Naive (one invocation per output), Portable (register-blocked, no subgroup operations)
//! Auto (the same with subgroup twins where the device has subgroups; the GEMM kernels on GPUs) and Gemm (implicit
//! GEMM through workgroup memory, shaders/conv2d_gemm.wgsl, forced).
//!
//! FLOPs = 2 * N * Cout * OH * OW * Cin * KH * KW for each of forward, input gradient and weight gradient.

use std::sync::Arc;
use std::time::Instant;

use fluke::check::{compare, f64s, rand_vec};
use fluke::gpu::{Family, Gpu, ShaderFile};
use fluke::ops::conv2d::{self, cpu, Geom, Params};
use fluke::Tensor;

/// (label, batch, Cin, H, W, Cout, k, stride, pad): input shapes at a 192x384 image.
type Shape = (&'static str, usize, usize, usize, usize, usize, usize, usize, usize);
const SHAPES: &[Shape] = &[
    ("enc 64ch 48x96", 4, 64, 48, 96, 64, 3, 1, 1),
    ("enc 128ch 24x48", 4, 128, 24, 48, 128, 3, 1, 1),
    ("enc 256ch 12x24", 4, 256, 12, 24, 256, 3, 1, 1),
    ("enc 512ch 6x12", 4, 512, 6, 12, 512, 3, 1, 1),
    ("enc 512ch 6x12 b16", 16, 512, 6, 12, 512, 3, 1, 1),
    ("enc 64->128 s2", 4, 64, 48, 96, 128, 3, 2, 1),
    ("dec 32->16 192x384", 4, 32, 192, 384, 16, 3, 1, 1),
    ("stem 7x7/2 3->64", 4, 3, 192, 384, 64, 7, 2, 3),
    ("dec 16->16 192x384", 4, 16, 192, 384, 16, 3, 1, 1),
    ("head 16->1 192x384", 4, 16, 192, 384, 1, 3, 1, 1),
    ("enc 128->256 s2", 4, 128, 24, 48, 256, 3, 2, 1),
    ("enc 256->512 s2", 4, 256, 12, 24, 512, 3, 2, 1),
    ("short 64->128 1x1/2", 4, 64, 48, 96, 128, 1, 2, 0),
    ("short 128->256 1x1/2", 4, 128, 24, 48, 256, 1, 2, 0),
    ("short 256->512 1x1/2", 4, 256, 12, 24, 512, 1, 2, 0),
];

/// The lab's kernels, compiled after the prelude like the product's fast files.
const LAB: ShaderFile = ShaderFile {
    file: "conv2d_pack_scalar.wgsl (benches/)",
    source: concat!(include_str!("../shaders/conv2d_prelude.wgsl"), include_str!("conv2d_pack_scalar.wgsl")),
    subgroups: false,
};

/// Seconds of repeated runs per row (FLUKE_BENCH_SECS, default 1): the best run is reported.
fn secs_budget() -> f64 {
    std::env::var("FLUKE_BENCH_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(1.0)
}

fn time(gpu: &Gpu, mut f: impl FnMut()) -> f64 {
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

/// The entry points `f` dispatches (weight packing and the reduce pass left out).
fn kernels_of(gpu: &Gpu, f: impl FnOnce()) -> String {
    gpu.set_profiling(true);
    f();
    let mut names: Vec<&str> = gpu.take_profile().iter().map(|e| e.0).filter(|e| !e.contains("pack") && !e.contains("reduce")).collect();
    gpu.set_profiling(false);
    names.sort();
    names.join(",")
}

fn main() {
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let wanted = |name: &str| filters.iter().all(|f| name.contains(f.as_str()));
    let mut shaders = fluke::ops::shaders();
    shaders.push(LAB);
    let gpu = Gpu::new(&fluke::testing::options_from_env(), &shaders).expect("a GPU adapter");
    println!("adapter: {} ({:?}), shaders parsed in {:.2} s", gpu.info.name, gpu.info.device_type, gpu.compile_seconds);
    println!("{:<22} {:<7} {:<8} {:>10} {:>9} {:>10}  kernel", "shape", "pass", "family", "ms", "GFLOP/s", "max rel");
    for &(label, n, cin, h, w, cout, k, s, pad) in SHAPES {
        let families = [Family::Naive, Family::Portable, Family::Auto, Family::Gemm];
        for (pass, family) in ["fwd", "bwd_in", "bwd_w"].into_iter().flat_map(|p| families.map(|f| (p, f))) {
            let name = format!("{label} {pass} {family:?}");
            if !wanted(&name) {
                continue;
            }
            let _family = gpu.scoped(|o| o.family = family);
            let g = Geom::new("bench", &[n, cin, h, w], &[cout, cin, k, k], s, pad);
            // Validate on one image against the oracle.
            let g1 = Geom { n: 1, ..g };
            let (xs, ws, ys) = (g1.x_shape(), g1.w_shape(), g1.y_shape());
            let (x, wv, gy) = (rand_vec(xs.iter().product(), 1), rand_vec(ws.iter().product(), 2), rand_vec(ys.iter().product(), 3));
            let (tx, tw, tgy) = (Tensor::from_slice(&gpu, &xs, &x), Tensor::from_slice(&gpu, &ws, &wv), Tensor::from_slice(&gpu, &ys, &gy));
            let (got, want) = match pass {
                "fwd" => (conv2d::conv2d_forward(&tx, &tw, None, s, pad).to_vec(), cpu::forward(&f64s(&x), &xs, &f64s(&wv), &ws, None, s, pad)),
                "bwd_in" => (conv2d::conv2d_backward_input(&tgy, &tw, &xs, s, pad).to_vec(), cpu::backward_input(&f64s(&gy), &f64s(&wv), &ws, &xs, s, pad)),
                _ => (conv2d::conv2d_backward_weight(&tx, &tgy, &ws, s, pad).to_vec(), cpu::backward_weight(&f64s(&x), &xs, &f64s(&gy), &ws, s, pad)),
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
            let run = || match pass {
                "fwd" => drop(conv2d::conv2d_forward(&tx, &tw, None, s, pad)),
                "bwd_in" => drop(conv2d::conv2d_backward_input(&tgy, &tw, &xs, s, pad)),
                _ => drop(conv2d::conv2d_backward_weight(&tx, &tgy, &ws, s, pad)),
            };
            let kernels = kernels_of(&gpu, run);
            let secs = time(&gpu, run);
            let fam = format!("{family:?}");
            let (ms, gflops, rel) = (secs * 1e3, g.flops() / secs / 1e9, r.max_rel.min(r.max_abs));
            println!("{label:<22} {pass:<7} {fam:<8} {ms:>10.2} {gflops:>9.2} {rel:>10.2e}  {kernels}");
        }
    }
    lab_packing(&gpu, &wanted);
}

/// The lab: the scalar packing kernels (one float per invocation) against the product's vec4 ones, at the U-Net's
/// largest weights, each checked against the reference layout first.
fn lab_packing(gpu: &Arc<Gpu>, wanted: &dyn Fn(&str) -> bool) {
    let ws = [512usize, 512, 3, 3];
    let wv = rand_vec(ws.iter().product(), 5);
    let w = Tensor::from_slice(gpu, &ws, &wv);
    if !wanted("lab pack conv2d_pack_weight") {
        return;
    }
    println!("\nlab: weight packing, w {ws:?}, blocks of 16 channels");
    for flipped in [false, true] {
        let want = f64s(&cpu::packed_weights(&wv, ws, 16, flipped));
        let (scalar, vec4) = if flipped {
            ("conv2d_pack_weight_flipped", "conv2d_pack_weight_flipped_vec4")
        } else {
            ("conv2d_pack_weight", "conv2d_pack_weight_vec4")
        };
        let packed = Tensor::empty(gpu, &[want.len()]);
        let p = Params { cin: 512, cout: 512, kh: 3, kw: 3, m: 512, cw: 16, ..Default::default() };
        let run_scalar = || gpu.dispatch_1d(scalar, &p, &[("wt", w.bind()), ("out", packed.bind())], want.len() as u64);
        run_scalar();
        let r = compare(scalar, "lab", &packed.to_vec(), &want, 0.0, 0.0);
        assert!(r.pass, "{scalar}: does not match the reference layout");
        let t_scalar = time(gpu, run_scalar);
        let t_vec4 = time(gpu, || drop(conv2d::pack_weights(&w, 16, flipped)));
        println!("  {scalar:<34} {:>8.3} ms   {vec4}: {:>8.3} ms", t_scalar * 1e3, t_vec4 * 1e3);
    }
}
