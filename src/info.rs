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
    println!("  max storage binding {} MiB", (l.max_storage_buffer_binding_size as u64) >> 20);
    println!("  max workgroup mem  {} KiB", l.max_compute_workgroup_storage_size >> 10);
    println!("  max invocations/wg {}", l.max_compute_invocations_per_workgroup);
    println!("  max workgroups/dim {}", l.max_compute_workgroups_per_dimension);
    println!("  storage buffers/stage {}", l.max_storage_buffers_per_shader_stage);
    println!("  timestamp queries  {}", gpu.features.contains(wgpu::Features::TIMESTAMP_QUERY));
    // Whether the subgroup conv2d kernels run (off without the feature, or with FLUKE_NO_SUBGROUPS set).
    println!(
        "  subgroup kernels   {} (subgroup size {}-{})",
        gpu.has_subgroups(),
        gpu.info.subgroup_min_size,
        gpu.info.subgroup_max_size
    );
    println!("  pipelines          {} entry points compiled in {:.2} s", gpu.entry_points().len(), gpu.compile_seconds);
}
