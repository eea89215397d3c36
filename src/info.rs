//! `fluke info`: what the adapter is and the limits that matter to fluke.

use anyhow::Result;

use crate::gpu::{enumerate_adapters, Gpu};

pub fn print_adapters(backend: &Option<String>) -> Result<()> {
    let adapters = enumerate_adapters(backend.as_deref())?;
    println!("adapters:");
    for a in &adapters {
        let i = a.get_info();
        println!("  {} ({:?}, {:?}, driver {} {})", i.name, i.backend, i.device_type, i.driver, i.driver_info);
    }
    if adapters.is_empty() {
        println!("  none: {}", crate::gpu::NO_ADAPTER_FIX);
    }
    Ok(())
}

pub fn print_gpu(gpu: &Gpu) {
    let i = &gpu.info;
    let l = &gpu.limits;
    println!("selected: {}", i.name);
    println!("  backend            {:?}", i.backend);
    println!("  device type        {:?}", i.device_type);
    println!("  driver             {} {}", i.driver, i.driver_info);
    println!("  vendor/device id   {:#06x}/{:#06x}", i.vendor, i.device);
    println!("  max buffer size    {} MiB", l.max_buffer_size >> 20);
    println!("  max storage binding {} MiB", l.max_storage_buffer_binding_size >> 20);
    println!("  max workgroup mem  {} KiB", l.max_compute_workgroup_storage_size >> 10);
    println!("  max invocations/wg {}", l.max_compute_invocations_per_workgroup);
    println!("  max workgroups/dim {}", l.max_compute_workgroups_per_dimension);
    println!("  storage buffers/stage {}", l.max_storage_buffers_per_shader_stage);
    println!("  timestamp queries  {}", gpu.features.contains(wgpu::Features::TIMESTAMP_QUERY));
    // Whether the subgroup conv2d kernels run (off without the feature, or with --no-subgroups / FLUKE_NO_SUBGROUPS).
    println!(
        "  subgroup kernels   {} (subgroup size {}-{})",
        gpu.has_subgroups(),
        gpu.info.subgroup_min_size,
        gpu.info.subgroup_max_size
    );
    // Which conv2d family `auto` runs here (the rule: src/ops/conv2d/kernels.rs).
    let conv = if gpu.is_cpu() { "register-blocked (a CPU adapter)" } else { "implicit GEMM, conv2d_gemm.wgsl (not a CPU adapter)" };
    println!("  conv2d kernels     {conv}");
    println!(
        "  pipelines          {} entry points, shaders parsed in {:.2} s; each pipeline is created at first use",
        gpu.entry_points().len(),
        gpu.compile_seconds
    );
    let off = gpu.disabled();
    if !off.is_empty() {
        println!("  not run here       {} (a subgroup kernel gives way to its portable twin, others to the naive kernels)", off.join(", "));
    }
}

/// Create every pipeline this device may choose (one at a time, each line printed as it is done) and list them
/// again slowest first.
pub fn print_pipelines(gpu: &Gpu, only: Option<&str>) {
    use std::io::Write;
    let entries: Vec<&str> = gpu.entry_points().into_iter().filter(|e| gpu.allowed(e) && only.is_none_or(|o| *e == o)).collect();
    println!("creating {} pipelines:", entries.len());
    for e in &entries {
        let t0 = std::time::Instant::now();
        gpu.prepare(&[e]);
        println!("  {:<44} {:>8.3} s", e, t0.elapsed().as_secs_f64());
        let _ = std::io::stdout().flush();
    }
    println!("slowest first (total {:.2} s):", gpu.pipeline_seconds());
    for (e, file, s) in gpu.pipeline_times() {
        println!("  {:<44} {:<22} {:>8.3} s", e, file, s);
    }
}
