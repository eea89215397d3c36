//! Helpers for tests and benchmarks.

use std::rc::Rc;

use crate::gpu::{Gpu, GpuOptions};

thread_local! {
    // Never dropped: tearing a device down inside thread-local destructors trips wgpu's own thread-locals.
    static GPU: Rc<Gpu> = {
        let g = Gpu::new(&GpuOptions::default()).unwrap_or_else(|e| {
            panic!("this test needs a GPU adapter and found none usable: {e:#}. Fix: {}", adapter_fix())
        });
        // CI's adapter matrix names the adapter each pass must run on: a fallback to another one fails.
        if let Ok(want) = std::env::var("FLUKE_EXPECT_ADAPTER") {
            let got = format!("{} ({:?})", g.info.name, g.info.backend);
            assert!(
                got.to_lowercase().contains(&want.to_lowercase()),
                "FLUKE_EXPECT_ADAPTER={want} but the tests got the adapter {got}. Fix: {}",
                adapter_fix()
            );
        }
        std::mem::forget(g.clone());
        g
    };
}

/// The package that provides the adapter this environment asks for.
fn adapter_fix() -> &'static str {
    let icd = std::env::var("VK_ICD_FILENAMES").unwrap_or_default().to_lowercase();
    let backend = std::env::var("FLUKE_BACKEND").unwrap_or_default().to_lowercase();
    if icd.contains("swiftshader") {
        "SwiftShader ships with Debian's chromium package: `apt-get install -y chromium` \
         (VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json)"
    } else if backend.starts_with("gl") {
        "the GL backend needs Mesa's EGL and llvmpipe: `apt-get install -y libegl-mesa0 libgl1-mesa-dri`"
    } else {
        "install a Vulkan driver; on Linux without a GPU run `apt-get install -y mesa-vulkan-drivers` (lavapipe)"
    }
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
