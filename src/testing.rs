//! Helpers for tests and benchmarks.

use std::cell::Cell;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use crate::gpu::{Gpu, GpuOptions};

/// The device options the tests run with, from the environment the adapter matrix sets (`FLUKE_ADAPTER`,
/// `FLUKE_BACKEND`, `FLUKE_NO_SUBGROUPS`, `FLUKE_CACHE_DIR`: the test harness's counterpart of main.rs's command line).
pub fn options_from_env() -> GpuOptions {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    GpuOptions {
        adapter: var("FLUKE_ADAPTER"),
        backend: var("FLUKE_BACKEND"),
        subgroups: !var("FLUKE_NO_SUBGROUPS").is_some_and(|v| v != "0" && v != "false"),
        kernel_cache: var("FLUKE_CACHE_DIR")
            .map(std::path::PathBuf::from)
            .or_else(|| crate::validate::default_cache_dir(var("XDG_CACHE_HOME").map(Into::into), var("HOME").map(Into::into)))
            .map(|d| d.join("kernels.json")),
        ..GpuOptions::default()
    }
}

/// One device per test binary: created by the first test that asks, then shared. libtest runs tests on several
/// threads; the device is `Send + Sync`, and `gpu()` also serialises the tests that hold it (`TestGpu` holds a lock),
/// so one test's kernel options (`Gpu::scoped`), profiling, dry runs or pool counters never mix with another's. The
/// device checks the turns (`Gpu::take_turns`): a test that records work, or drops a tensor, after its turn ended (a
/// model made with `UNet::new(&gpu(), ..)` used on the next line) panics instead of running beside another test.
static GPU: OnceLock<Result<Arc<Gpu>, String>> = OnceLock::new();
static TURN: Mutex<()> = Mutex::new(());

thread_local! {
    /// How many `TestGpu`s this thread holds: a test that asks again (a helper calling `gpu()`) must not wait on itself.
    static HELD: Cell<usize> = const { Cell::new(0) };
}

fn shared() -> Arc<Gpu> {
    let r = GPU.get_or_init(|| {
        let g = Gpu::new(&options_from_env(), &crate::ops::shaders())
            .map_err(|e| format!("this test needs a GPU adapter and found none usable: {e:#}. Fix: {}", adapter_fix()))?;
        // CI's adapter matrix names the adapter each pass must run on: a fallback to another one fails.
        if let Ok(want) = std::env::var("FLUKE_EXPECT_ADAPTER") {
            let got = format!("{} ({:?})", g.info.name, g.info.backend);
            if !got.to_lowercase().contains(&want.to_lowercase()) {
                return Err(format!("FLUKE_EXPECT_ADAPTER={want} but the tests got the adapter {got}. Fix: {}", adapter_fix()));
            }
        }
        // Tests take turns: work recorded outside the turn that `gpu()` hands out panics (see `Gpu::take_turns`).
        g.take_turns(true);
        // Never dropped: the static lives until the process exits.
        Ok(g)
    });
    match r {
        Ok(g) => g.clone(),
        Err(e) => panic!("{e}"),
    }
}

/// This test's handle on the shared device (derefs to `Arc<Gpu>`); other tests that ask wait until it is dropped.
pub struct TestGpu {
    gpu: Arc<Gpu>,
    /// The device's kernel choice when this test took it (outermost handle only): put back when it is dropped, so a
    /// test that disables a kernel (`Gpu::disable`, the validation tests) leaves the next test the device it found.
    found: Option<(crate::gpu::KernelOptions, std::collections::BTreeSet<String>)>,
    _turn: Option<MutexGuard<'static, ()>>,
}

impl std::ops::Deref for TestGpu {
    type Target = Arc<Gpu>;
    fn deref(&self) -> &Arc<Gpu> {
        &self.gpu
    }
}

impl Drop for TestGpu {
    fn drop(&mut self) {
        // Leave nothing recorded for the next test (not while unwinding: a lost device would panic again).
        if !std::thread::panicking() {
            self.gpu.sync();
        }
        if let Some(found) = self.found.take() {
            self.gpu.restore_choice(found);
            self.gpu.set_holder(None);
        }
        HELD.with(|h| h.set(h.get() - 1));
    }
}

/// The shared device for this test. Panics, failing the test, when no adapter exists.
pub fn gpu() -> TestGpu {
    let gpu = shared();
    let turn = if HELD.with(|h| h.get()) == 0 { Some(TURN.lock().unwrap_or_else(|e| e.into_inner())) } else { None };
    HELD.with(|h| h.set(h.get() + 1));
    let found = turn.is_some().then(|| gpu.choice_snapshot());
    if turn.is_some() {
        gpu.set_holder(Some(std::thread::current().id()));
    }
    TestGpu { gpu, found, _turn: turn }
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
