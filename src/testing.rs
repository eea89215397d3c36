//! Helpers for tests and benchmarks.

use std::rc::Rc;

use crate::gpu::{Gpu, GpuOptions};

thread_local! {
    // Never dropped: tearing a device down inside thread-local destructors trips wgpu's own thread-locals.
    static GPU: Rc<Gpu> = {
        let g = Gpu::new(&GpuOptions::default()).unwrap_or_else(|e| {
            panic!("this test needs a GPU adapter and found none usable: {e:#}. Fix: install a Vulkan driver; on Linux \
                    without a GPU run `apt-get install -y mesa-vulkan-drivers` (lavapipe)")
        });
        std::mem::forget(g.clone());
        g
    };
}

/// The GPU for this test thread (created once per thread). Panics, failing the test, when no adapter exists.
pub fn gpu() -> Rc<Gpu> {
    GPU.with(|g| g.clone())
}

/// The real fluke photos, when present (`../shared/data/flukes` from the crate root, or `FLUKE_DATA`).
pub fn real_data_dir() -> Option<std::path::PathBuf> {
    let p = std::env::var("FLUKE_DATA")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/flukes"));
    if p.join("images").is_dir() {
        Some(p)
    } else {
        eprintln!("real data folder {} is absent: skipping the real-data part of this test", p.display());
        None
    }
}
