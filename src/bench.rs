//! `fluke bench`: kernel throughput at the U-Net's real shapes and whole training/inference steps.
//!
//! Timing, two kinds:
//! - Whole steps (training step, inference, first step) are always wall clock around submitted-and-waited work:
//!   every such figure includes the driver's submission overhead, which is what a user waits for.
//! - Kernel rows use GPU timestamp queries when the adapter has them (`timing: "gpu"` in the JSON, "timing: GPU
//!   timestamps" in the summary line): each dispatch's own execution as the GPU measured it, with dispatches
//!   batched as in training. Without them (`timing: "wall"`) each dispatch is submitted and waited for alone and the
//!   CPU clock around it is recorded, which adds the submission and wait overhead to every row.
//!
//! Roofline: before anything else, `ops::roofline` measures what this adapter attains: a register-only FMA kernel
//! (GFLOP/s) and a vec4 copy (GB/s, bytes read + written). No spec sheet is needed, so it works on lavapipe as on a
//! GPU. Every kernel row with a FLOP and byte count shows its share of both peaks and the bound it sits on: memory
//! when its arithmetic intensity (FLOPs per byte) is below the ridge point (peak GFLOP/s / peak GB/s), else compute.
//!
//! `fluke bench --compare A.json B.json` prints two runs side by side (another adapter, driver, or a change).
//!
//! Per-kernel rows:
//! - every entry point of one profiled training step: calls per step and ms; the same for one inference batch
//!   (`fluke predict`'s path: the model frozen, BN folded into the convolutions);
//! - conv2d directions (forward, input gradient, weight gradient) timed alone at every distinct convolution shape of
//!   the network, after checking each against the CPU oracle on a small case; GFLOP/s = 2*MACs / time, GB/s =
//!   (input + weights + output bytes) / time.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::gpu::Gpu;
use crate::model::summary::{conv_layers, ConvShape};
use crate::model::{UNet, UNetConfig};
use crate::ops::conv2d;
use crate::optim::Adam;
use crate::tensor::Tensor;

/// `fluke bench`'s options; their defaults are `BenchArgs::default()` (also what benches/kernels.rs starts from).
#[derive(clap::Args, Clone, Debug)]
pub struct BenchArgs {
    /// Input size WxH
    #[arg(long, default_value_t = BenchArgs::default().size)]
    pub size: String,
    /// Images per step
    #[arg(long, default_value_t = BenchArgs::default().batch, value_parser = crate::args::parse_batch_arg)]
    pub batch: usize,
    /// Timed training steps after the first (median reported)
    #[arg(long, default_value_t = BenchArgs::default().steps)]
    pub steps: usize,
    /// Width divisor of the model (1 = the real network; 1, 2, 4, 8 or 16)
    #[arg(long, default_value_t = BenchArgs::default().width, value_parser = crate::args::parse_width_arg)]
    pub width: usize,
    /// Write the results as JSON
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Skip the per-shape conv2d table
    #[arg(long)]
    pub no_kernels: bool,
    /// Do not compile the first step's kernels ahead on a second device (lavapipe; for before/after figures of the
    /// first step with an empty Mesa shader cache)
    #[arg(long)]
    pub no_warm_up: bool,
    /// Print two JSON results of `fluke bench --json` side by side instead of running (no GPU needed)
    #[arg(long, num_args = 2, value_names = ["A.json", "B.json"])]
    pub compare: Option<Vec<PathBuf>>,
}

impl Default for BenchArgs {
    /// The real network at the default model size, batch 4, 3 timed steps, every table.
    fn default() -> Self {
        BenchArgs {
            size: crate::model::format_size(crate::data::DEFAULT_SIZE),
            batch: 4,
            steps: 3,
            width: UNetConfig::default().width_div,
            json: None,
            no_kernels: false,
            no_warm_up: false,
            compare: None,
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct KernelRow {
    pub name: String,
    pub shape: String,
    pub calls: u64,
    pub ms: f64,
    pub gflops: Option<f64>,
    pub gbps: Option<f64>,
    /// Shares of the measured peaks (`Roofline`), in percent, and "compute" or "memory" (see the module doc).
    #[serde(default)]
    pub pct_peak_gflops: Option<f64>,
    #[serde(default)]
    pub pct_peak_gbps: Option<f64>,
    #[serde(default)]
    pub bound: Option<String>,
}

/// What this adapter attains, measured by `ops::roofline`'s kernels.
#[derive(Serialize, Deserialize, Clone, Copy, Debug)]
pub struct Roofline {
    pub peak_gflops: f64,
    pub peak_gbps: f64,
}

impl Roofline {
    /// FLOPs per byte above which a kernel can reach the compute peak.
    pub fn ridge(&self) -> f64 {
        self.peak_gflops / self.peak_gbps
    }

    /// Fill a row's shares of the peaks and its bound (rows without FLOP and byte counts are left as they are).
    pub fn annotate(&self, k: &mut KernelRow) {
        if let (Some(f), Some(b)) = (k.gflops, k.gbps) {
            k.pct_peak_gflops = Some(100.0 * f / self.peak_gflops);
            k.pct_peak_gbps = Some(100.0 * b / self.peak_gbps);
            k.bound = Some(if f / b < self.ridge() { "memory" } else { "compute" }.into());
        }
    }
}

/// Measure the roofline: the FMA kernel over 1M invocations x 256 steps (537 MFLOP) and the copy of 32 MiB.
pub fn measure_roofline(gpu: &Arc<Gpu>) -> Roofline {
    use crate::ops::roofline;
    let (n, iters) = (1 << 20, 256);
    let fma_s = time_it(gpu, 5, || {
        let _ = roofline::roofline_fma(gpu, n, iters);
    });
    let elems = 8 << 20;
    let x = Tensor::zeros(gpu, &[elems]);
    let y = Tensor::zeros(gpu, &[elems]);
    let copy_s = time_it(gpu, 5, || roofline::roofline_copy(&x, &y));
    Roofline { peak_gflops: roofline::fma_flops(n, iters) / fma_s / 1e9, peak_gbps: (elems as f64 * 8.0) / copy_s / 1e9 }
}

/// The CPU behind a software adapter (lavapipe, llvmpipe, SwiftShader run on it): /proc/cpuinfo's model name.
fn cpu_model() -> Option<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("model name"))?;
    Some(line.split_once(':')?.1.trim().to_string())
}

#[derive(Serialize, Deserialize, Debug)]
pub struct BenchReport {
    pub adapter: String,
    #[serde(default)]
    pub backend: String,
    #[serde(default)]
    pub driver: String,
    #[serde(default)]
    pub device_type: String,
    /// On CPU adapters: the CPU model the kernels really run on.
    #[serde(default)]
    pub cpu: Option<String>,
    #[serde(default)]
    pub roofline: Option<Roofline>,
    pub size: [u32; 2],
    pub batch: usize,
    pub width_div: usize,
    pub train_step_s: f64,
    pub train_images_per_s: f64,
    pub infer_images_per_s: f64,
    pub first_step_s: f64,
    /// Kernel variants (entry point x distinct Params) a second device compiled ahead of the first step (src/gpu/warm_up.rs); 0: none (not lavapipe, or
    /// `--no-warm-up`).
    #[serde(default)]
    pub first_step_compiled_ahead: usize,
    /// Shader parsing at start-up plus every pipeline created by the end of the run (they are created at first use).
    pub pipeline_compile_s: f64,
    pub peak_gpu_bytes: u64,
    pub timing: String,
    pub kernels: Vec<KernelRow>,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// A synthetic batch: smooth random-ish photo and an ellipse mask.
fn synthetic_batch(gpu: &Arc<Gpu>, n: usize, w: usize, h: usize) -> (Tensor, Tensor) {
    let x: Vec<f32> = (0..n * 3 * h * w).map(|i| ((i as f32) * 0.013).sin()).collect();
    let mut t = vec![0f32; n * h * w];
    for k in 0..n {
        for y in 0..h {
            for xx in 0..w {
                let dy = (y as f32 - h as f32 / 2.0) / (h as f32 / 3.0);
                let dx = (xx as f32 - w as f32 / 2.0) / (w as f32 / 3.0);
                t[k * h * w + y * w + xx] = (dx * dx + dy * dy < 1.0) as u8 as f32;
            }
        }
    }
    (Tensor::from_slice(gpu, &[n, 3, h, w], &x), Tensor::from_slice(gpu, &[n, 1, h, w], &t))
}

/// Median seconds of `f` over `reps` runs after a warm-up. With timestamp queries: the GPU time of the dispatches
/// `f` records (`Gpu::profile_seconds`); otherwise wall clock around `f` and a wait for the GPU.
fn time_it(gpu: &Gpu, reps: usize, mut f: impl FnMut()) -> f64 {
    f(); // warm-up (first use of this shape allocates)
    gpu.sync();
    let mut v = Vec::new();
    let gpu_timing = gpu.profile_timing() == "gpu";
    for _ in 0..reps {
        if gpu_timing {
            v.push(gpu.profile_seconds(&mut f));
        } else {
            let t0 = Instant::now();
            f();
            gpu.sync();
            v.push(t0.elapsed().as_secs_f64());
        }
    }
    median(&mut v)
}

/// Time the three conv2d directions at every distinct conv shape of the network.
pub fn conv_table(gpu: &Arc<Gpu>, cfg: &UNetConfig, batch: usize, w: usize, h: usize) -> Vec<KernelRow> {
    let mut counts: HashMap<ConvShape, u64> = HashMap::new();
    let mut order = Vec::new();
    for c in conv_layers(cfg, w, h) {
        if !counts.contains_key(&c) {
            order.push(c.clone());
        }
        *counts.entry(c).or_insert(0) += 1;
    }
    let mut rows = Vec::new();
    for c in order {
        let (oh, ow) = c.out_hw();
        let x = Tensor::from_slice(gpu, &[batch, c.cin, c.h, c.w], &crate::check::rand_vec(batch * c.cin * c.h * c.w, 1));
        let wt = Tensor::from_slice(gpu, &[c.cout, c.cin, c.k, c.k], &crate::check::rand_vec(c.cout * c.cin * c.k * c.k, 2));
        let b = c.bias.then(|| Tensor::zeros(gpu, &[c.cout]));
        let gy = Tensor::from_slice(gpu, &[batch, c.cout, oh, ow], &crate::check::rand_vec(batch * c.cout * oh * ow, 3));
        let flops = 2.0 * c.macs() as f64 * batch as f64;
        let bytes = 4.0 * (x.numel() + wt.numel() + gy.numel()) as f64;
        let shape = format!("[{batch},{},{},{}] k{} s{} -> {}", c.cin, c.h, c.w, c.k, c.stride, c.cout);
        let reps = if flops > 5e9 { 1 } else { 3 };
        let calls = counts[&c];
        let mut push = |name: &str, secs: f64| {
            rows.push(KernelRow {
                name: name.into(),
                shape: shape.clone(),
                calls,
                ms: secs * 1e3 * calls as f64,
                gflops: Some(flops / secs / 1e9),
                gbps: Some(bytes / secs / 1e9),
                pct_peak_gflops: None,
                pct_peak_gbps: None,
                bound: None,
            })
        };
        let s = time_it(gpu, reps, || {
            let _ = conv2d::conv2d_forward(&x, &wt, b.as_ref(), c.stride, c.pad);
        });
        push("conv2d_forward", s);
        let s = time_it(gpu, reps, || {
            let _ = conv2d::conv2d_backward_input(&gy, &wt, &x.shape, c.stride, c.pad);
        });
        push("conv2d_backward_input", s);
        let s = time_it(gpu, reps, || {
            let _ = conv2d::conv2d_backward_weight(&x, &gy, &wt.shape, c.stride, c.pad);
        });
        push("conv2d_backward_weight", s);
        eprintln!("  {shape}: fwd {:.1} / dx {:.1} / dw {:.1} GFLOP/s", rows[rows.len() - 3].gflops.unwrap(), rows[rows.len() - 2].gflops.unwrap(), rows[rows.len() - 1].gflops.unwrap());
    }
    rows
}

pub fn run(gpu: &Arc<Gpu>, a: &BenchArgs) -> Result<BenchReport> {
    let (w, h) = crate::model::parse_size(&a.size)?;
    let cfg = UNetConfig::new(a.width);
    let (wu, hu) = (w as usize, h as usize);
    eprintln!(
        "bench on {} ({:?}, {:?}); shaders parsed in {:.2} s at start-up, pipelines created at first use{}",
        gpu.info.name,
        gpu.info.backend,
        gpu.info.device_type,
        gpu.compile_seconds,
        if gpu.is_cpu() { " (lavapipe/llvmpipe: a second run is faster when Mesa's shader cache is warm)" } else { "" }
    );
    let model = UNet::new(gpu, cfg, 0);
    model.check_fits(a.batch, w, h)?;
    let roof = measure_roofline(gpu);
    eprintln!(
        "roofline (measured): {:.1} GFLOP/s (register FMAs), {:.1} GB/s (vec4 copy), ridge {:.2} FLOP/byte",
        roof.peak_gflops,
        roof.peak_gbps,
        roof.ridge()
    );
    let mut opt = Adam::new(model.params(), 1e-3);
    let (x, t) = synthetic_batch(gpu, a.batch, wu, hu);

    // First step: all shader compilation (start-up) plus the first step's allocations; on lavapipe with a second
    // device compiling ahead from the back of the step (src/gpu/warm_up.rs), started inside the timed span.
    let t0 = Instant::now();
    let warm_up = if a.no_warm_up { None } else { gpu.warm_up(crate::train::step_plan(&model, a.batch, wu, hu)) };
    gpu.reset_peak();
    crate::train::train_step(&model, &mut opt, &x, &t)?;
    gpu.sync();
    let first_step_s = gpu.compile_seconds + t0.elapsed().as_secs_f64();
    let warm = warm_up.map(|w| w.finish());
    eprintln!(
        "first training step: {first_step_s:.2} s (of which shader parsing {:.2} s and pipeline creation {:.2} s); {}",
        gpu.compile_seconds,
        gpu.pipeline_seconds(),
        match warm {
            Some((done, total)) => format!("a second device compiled {done} of its {total} kernel variants (entry point x Params) ahead, from the back"),
            None if a.no_warm_up => "no compiling ahead (--no-warm-up)".to_string(),
            None => "no compiling ahead (only lavapipe with Mesa's shader cache and 2+ cores)".to_string(),
        }
    );
    let mut steps = Vec::new();
    for _ in 0..a.steps.max(1) {
        let t0 = Instant::now();
        crate::train::train_step(&model, &mut opt, &x, &t)?;
        gpu.sync();
        steps.push(t0.elapsed().as_secs_f64());
    }
    let peak = gpu.peak_live_bytes();
    let train_step_s = median(&mut steps);
    eprintln!("training step: {train_step_s:.3} s median of {} ({:.2} images/s), peak GPU memory {:.0} MiB", steps.len(), a.batch as f64 / train_step_s, peak as f64 / 1048576.0);
    let mut inf = Vec::new();
    // Inference as `fluke predict` runs it: BN folded into the convolutions (the first call folds, untimed).
    model.freeze();
    let _ = model.predict(&x).to_vec();
    for _ in 0..a.steps.max(1) {
        let t0 = Instant::now();
        let _ = model.predict(&x).to_vec();
        inf.push(t0.elapsed().as_secs_f64());
    }
    let infer_s = median(&mut inf);
    eprintln!("inference: {infer_s:.3} s per batch ({:.2} images/s)", a.batch as f64 / infer_s);

    // One profiled step: every entry point's calls and time (GPU timestamps or wall clock, see the module doc).
    let timing = gpu.profile_timing();
    gpu.set_profiling(true);
    let t0 = Instant::now();
    crate::train::train_step(&model, &mut opt, &x, &t)?;
    let profile = gpu.take_profile(); // waits for the step
    let profiled_step_s = t0.elapsed().as_secs_f64();
    gpu.set_profiling(false);
    let kernel_s: f64 = profile.iter().map(|&(_, _, s)| s).sum();
    eprintln!(
        "profiled step ({timing} timing): kernels sum to {:.1} ms; the step took {:.1} ms wall clock (median unprofiled step {:.1} ms)",
        kernel_s * 1e3,
        profiled_step_s * 1e3,
        train_step_s * 1e3
    );
    // One profiled inference batch (frozen, as above).
    gpu.set_profiling(true);
    let _ = model.predict(&x);
    let infer_profile = gpu.take_profile();
    gpu.set_profiling(false);
    let step = profile.into_iter().map(|r| (r, "training step (all shapes)"));
    let mut kernels: Vec<KernelRow> = step
        .chain(infer_profile.into_iter().map(|r| (r, "inference (all shapes)")))
        .map(|((name, calls, secs), shape)| KernelRow {
            name: name.into(),
            shape: shape.into(),
            calls,
            ms: secs * 1e3,
            gflops: None,
            gbps: None,
            pct_peak_gflops: None,
            pct_peak_gbps: None,
            bound: None,
        })
        .collect();
    if !a.no_kernels {
        eprintln!("conv2d at every shape of the network (batch {}):", a.batch);
        kernels.extend(conv_table(gpu, &cfg, a.batch, wu, hu));
    }
    for k in &mut kernels {
        roof.annotate(k);
    }
    let report = BenchReport {
        adapter: gpu.info.name.clone(),
        backend: format!("{:?}", gpu.info.backend),
        driver: format!("{} {}", gpu.info.driver, gpu.info.driver_info).trim().to_string(),
        device_type: format!("{:?}", gpu.info.device_type),
        cpu: if gpu.is_cpu() { cpu_model() } else { None },
        roofline: Some(roof),
        size: [w, h],
        batch: a.batch,
        width_div: a.width,
        train_step_s,
        train_images_per_s: a.batch as f64 / train_step_s,
        infer_images_per_s: a.batch as f64 / infer_s,
        first_step_s,
        first_step_compiled_ahead: warm.map_or(0, |(done, _)| done),
        pipeline_compile_s: gpu.compile_seconds + gpu.pipeline_seconds(),
        peak_gpu_bytes: peak,
        timing: timing.to_string(),
        kernels,
    };
    println!(
        "{:<32} {:<40} {:>6} {:>10} {:>9} {:>8} {:>7} {:>7} {:>8}",
        "kernel", "shape", "calls", "ms/step", "GFLOP/s", "GB/s", "%flops", "%bw", "bound"
    );
    for k in &report.kernels {
        let f = |v: Option<f64>| v.map(|x| format!("{x:.2}")).unwrap_or_else(|| "-".into());
        let pc = |v: Option<f64>| v.map(|x| format!("{x:.0}%")).unwrap_or_else(|| "-".into());
        println!(
            "{:<32} {:<40} {:>6} {:>10.2} {:>9} {:>8} {:>7} {:>7} {:>8}",
            k.name,
            k.shape,
            k.calls,
            k.ms,
            f(k.gflops),
            f(k.gbps),
            pc(k.pct_peak_gflops),
            pc(k.pct_peak_gbps),
            k.bound.as_deref().unwrap_or("-")
        );
    }
    let bounds = |b: &str| report.kernels.iter().filter(|k| k.bound.as_deref() == Some(b)).count();
    println!(
        "roofline: {:.1} GFLOP/s, {:.1} GB/s (ridge {:.2} FLOP/byte); of the rows with FLOP counts {} sit on the compute bound, {} on the memory bound",
        roof.peak_gflops,
        roof.peak_gbps,
        roof.ridge(),
        bounds("compute"),
        bounds("memory")
    );
    println!(
        "train step {:.3} s ({:.2} img/s), inference {:.2} img/s, first step {:.2} s, peak GPU memory {} MiB, timing: {}",
        report.train_step_s,
        report.train_images_per_s,
        report.infer_images_per_s,
        report.first_step_s,
        report.peak_gpu_bytes >> 20,
        // Whole-step figures are wall clock either way; only the kernel rows change.
        if timing == "gpu" { "GPU timestamps (kernel rows; whole steps wall clock)" } else { "wall clock" }
    );
    if let Some(p) = &a.json {
        crate::fsutil::atomic_write(p, serde_json::to_string_pretty(&report)?.as_bytes())?;
        eprintln!("wrote {}", p.display());
    }
    Ok(report)
}

/// `fluke bench --compare A.json B.json`: the two runs' machines, whole-step figures, roofline and every kernel row
/// they share (matched by name and shape), with B's speed relative to A's.
pub fn compare(a_path: &std::path::Path, b_path: &std::path::Path) -> Result<String> {
    use anyhow::Context;
    use std::fmt::Write;
    let read = |p: &std::path::Path| -> Result<BenchReport> {
        let bytes = std::fs::read(p).with_context(|| format!("{}: cannot read (fix: pass a file written by `fluke bench --json`)", p.display()))?;
        serde_json::from_slice(&bytes).with_context(|| format!("{}: not a `fluke bench --json` result", p.display()))
    };
    let (a, b) = (read(a_path)?, read(b_path)?);
    let mut out = String::new();
    let machine = |r: &BenchReport| {
        let cpu = r.cpu.as_deref().map(|c| format!(" on {c}")).unwrap_or_default();
        format!("{} ({}, {}{}), {}x{} batch {} width/{}", r.adapter, r.backend, r.driver, cpu, r.size[0], r.size[1], r.batch, r.width_div)
    };
    writeln!(out, "A: {}  [{}]", machine(&a), a_path.display())?;
    writeln!(out, "B: {}  [{}]", machine(&b), b_path.display())?;
    let row = |out: &mut String, what: &str, x: f64, y: f64, higher_is_better: bool| -> std::fmt::Result {
        let ratio = if higher_is_better { y / x } else { x / y };
        writeln!(out, "{what:<28} {x:>12.3} {y:>12.3} {:>9.2}x", ratio)
    };
    writeln!(out, "{:<28} {:>12} {:>12} {:>10}", "", "A", "B", "B vs A")?;
    row(&mut out, "train step (s)", a.train_step_s, b.train_step_s, false)?;
    row(&mut out, "train images/s", a.train_images_per_s, b.train_images_per_s, true)?;
    row(&mut out, "inference images/s", a.infer_images_per_s, b.infer_images_per_s, true)?;
    row(&mut out, "first step (s)", a.first_step_s, b.first_step_s, false)?;
    writeln!(out, "{:<28} {:>12} {:>12}", "  variants compiled ahead", a.first_step_compiled_ahead, b.first_step_compiled_ahead)?;
    row(&mut out, "peak GPU memory (MiB)", (a.peak_gpu_bytes >> 20) as f64, (b.peak_gpu_bytes >> 20) as f64, false)?;
    if let (Some(ra), Some(rb)) = (a.roofline, b.roofline) {
        row(&mut out, "roofline GFLOP/s", ra.peak_gflops, rb.peak_gflops, true)?;
        row(&mut out, "roofline GB/s", ra.peak_gbps, rb.peak_gbps, true)?;
    }
    writeln!(out, "{:<32} {:<40} {:>10} {:>10} {:>8}", "kernel", "shape", "A ms", "B ms", "B vs A")?;
    let mut shared = 0;
    for ka in &a.kernels {
        if let Some(kb) = b.kernels.iter().find(|k| k.name == ka.name && k.shape == ka.shape) {
            shared += 1;
            writeln!(out, "{:<32} {:<40} {:>10.2} {:>10.2} {:>7.2}x", ka.name, ka.shape, ka.ms, kb.ms, ka.ms / kb.ms)?;
        }
    }
    writeln!(out, "{shared} kernel rows in both runs (B vs A > 1: B is faster)")?;
    Ok(out)
}
