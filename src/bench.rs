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
//! Per-kernel rows:
//! - every entry point of one profiled training step: calls per step and ms;
//! - conv2d directions (forward, input gradient, weight gradient) timed alone at every distinct convolution shape of
//!   the network, after checking each against the CPU oracle on a small case; GFLOP/s = 2*MACs / time, GB/s =
//!   (input + weights + output bytes) / time.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use serde::Serialize;

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
        }
    }
}

#[derive(Serialize, Clone, Debug)]
pub struct KernelRow {
    pub name: String,
    pub shape: String,
    pub calls: u64,
    pub ms: f64,
    pub gflops: Option<f64>,
    pub gbps: Option<f64>,
}

#[derive(Serialize, Debug)]
pub struct BenchReport {
    pub adapter: String,
    pub size: [u32; 2],
    pub batch: usize,
    pub width_div: usize,
    pub train_step_s: f64,
    pub train_images_per_s: f64,
    pub infer_images_per_s: f64,
    pub first_step_s: f64,
    /// Shader parsing at start-up plus every pipeline created by the end of the run (they are created at first use).
    pub pipeline_compile_s: f64,
    pub peak_gpu_bytes: u64,
    pub timing: &'static str,
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
    let mut opt = Adam::new(model.params(), 1e-3);
    let (x, t) = synthetic_batch(gpu, a.batch, wu, hu);

    // First step: all shader compilation (start-up) plus the first step's allocations.
    gpu.reset_peak();
    let t0 = Instant::now();
    crate::train::train_step(&model, &mut opt, &x, &t)?;
    gpu.sync();
    let first_step_s = gpu.compile_seconds + t0.elapsed().as_secs_f64();
    eprintln!(
        "first training step: {first_step_s:.2} s (of which shader parsing {:.2} s and pipeline creation {:.2} s)",
        gpu.compile_seconds,
        gpu.pipeline_seconds()
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
    let mut kernels: Vec<KernelRow> = profile
        .into_iter()
        .map(|(name, calls, secs)| KernelRow { name: name.into(), shape: "training step (all shapes)".into(), calls, ms: secs * 1e3, gflops: None, gbps: None })
        .collect();
    if !a.no_kernels {
        eprintln!("conv2d at every shape of the network (batch {}):", a.batch);
        kernels.extend(conv_table(gpu, &cfg, a.batch, wu, hu));
    }
    let report = BenchReport {
        adapter: gpu.info.name.clone(),
        size: [w, h],
        batch: a.batch,
        width_div: a.width,
        train_step_s,
        train_images_per_s: a.batch as f64 / train_step_s,
        infer_images_per_s: a.batch as f64 / infer_s,
        first_step_s,
        pipeline_compile_s: gpu.compile_seconds + gpu.pipeline_seconds(),
        peak_gpu_bytes: peak,
        timing,
        kernels,
    };
    println!("{:<32} {:<40} {:>6} {:>10} {:>9} {:>8}", "kernel", "shape", "calls", "ms/step", "GFLOP/s", "GB/s");
    for k in &report.kernels {
        let f = |v: Option<f64>| v.map(|x| format!("{x:.2}")).unwrap_or_else(|| "-".into());
        println!("{:<32} {:<40} {:>6} {:>10.2} {:>9} {:>8}", k.name, k.shape, k.calls, k.ms, f(k.gflops), f(k.gbps));
    }
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
