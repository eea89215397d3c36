//! Compile ahead on a second device: the first step on lavapipe with an empty Mesa shader cache spends more time in
//! llvmpipe's JIT than in its kernels (13.1 s against 6.2 s warm at batch 4, 384x192 on the 2-core AMD EPYC), and
//! that JIT runs in the device's one queue thread, at the first dispatch of each kernel, one kernel at a time, while
//! the machine's other cores wait for it.
//!
//! `Gpu::warm_up(entries)` opens a second device on the same adapter in a thread of its own and dispatches every
//! entry point in `entries` once, last first, on one workgroup of zeroed buffers with zeroed `Params` (every loop of
//! every kernel ends at once; what they write is thrown away). Each dispatch makes llvmpipe compile that kernel and
//! store it in Mesa's on-disk shader cache, where the main device finds it when it gets there: the main device
//! compiles from the front of the step and the second one from the back, and they meet in the middle. `entries` is
//! what the step will dispatch, in order: `Gpu::dry_run` of the step.
//!
//! Only where it pays: a Vulkan CPU adapter whose driver is Mesa (lavapipe: `is_mesa_cpu`), Mesa's shader cache not
//! turned off (`MESA_SHADER_CACHE_DISABLE`), and a second core. Elsewhere `warm_up` returns None: a real GPU's
//! driver compiles at pipeline creation, SwiftShader keeps no disk cache, and on one core the two devices would only
//! take turns. With a warm Mesa cache it costs a cache lookup per kernel.
//!
//! Dropping the `WarmUp` stops it after the kernel it is compiling and waits for that one (up to a second), so no
//! thread of a second device is left inside the driver when the program exits.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::{Bind, Gpu};
use crate::platform;

/// Bytes of each dummy storage buffer: above the fixed size of any storage global in shaders/ (runtime-sized arrays
/// need one element).
const DUMMY_BYTES: u64 = 64 * 1024;

/// A compile-ahead thread (`Gpu::warm_up`). Dropping it stops the thread and waits for it.
pub struct WarmUp {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicUsize>,
    total: usize,
    thread: Option<JoinHandle<()>>,
}

impl WarmUp {
    /// Stop and wait; returns (kernels dispatched on the second device, kernels it was given).
    pub fn finish(mut self) -> (usize, usize) {
        self.stop_and_join();
        (self.done.load(Ordering::Relaxed), self.total)
    }

    /// Wait until every kernel is dispatched (or the second device failed); returns what `finish` does.
    pub fn wait(mut self) -> (usize, usize) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        (self.done.load(Ordering::Relaxed), self.total)
    }

    fn stop_and_join(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for WarmUp {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Whether the adapter is Mesa's llvmpipe behind Vulkan (lavapipe), whose JIT runs at first dispatch and keeps an
/// on-disk cache.
fn is_mesa_cpu(gpu: &Gpu) -> bool {
    gpu.is_cpu() && gpu.info.backend == wgpu::Backend::Vulkan && gpu.info.name.to_lowercase().contains("llvmpipe")
}

/// Whether Mesa's shader cache is turned off by its environment variable.
fn mesa_cache_disabled() -> bool {
    std::env::var("MESA_SHADER_CACHE_DISABLE").is_ok_and(|v| matches!(v.to_lowercase().as_str(), "1" | "true" | "yes"))
}

impl Gpu {
    /// Compile `entries` ahead on a second device (see the module doc), in the order the main device will first
    /// dispatch them (repeats are dropped: the kernel check's and then the step's lists can be chained); None where
    /// that does not pay (not lavapipe, Mesa's cache off, one core) or `entries` is empty.
    pub fn warm_up(self: &Arc<Self>, mut entries: Vec<&'static str>) -> Option<WarmUp> {
        // Each entry point once, where the main device first meets it.
        let mut seen = std::collections::HashSet::new();
        entries.retain(|e| seen.insert(*e));
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if entries.is_empty() || !is_mesa_cpu(self) || mesa_cache_disabled() || cores < 2 {
            return None;
        }
        let (adapter, opts, shaders) = self.origin.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicUsize::new(0));
        let total = entries.len();
        let (stop2, done2) = (stop.clone(), done.clone());
        let thread = std::thread::Builder::new()
            .name("fluke-warm-up".into())
            .spawn(move || {
                let Ok(second) = platform::block_on(Gpu::with_adapter(adapter, &opts, &shaders)) else { return };
                for entry in entries.iter().rev() {
                    if stop2.load(Ordering::Relaxed) {
                        break;
                    }
                    if !second.dispatch_once(entry) {
                        break;
                    }
                    done2.fetch_add(1, Ordering::Relaxed);
                }
            })
            .ok()?;
        Some(WarmUp { stop, done, total, thread: Some(thread) })
    }

    /// One dispatch of `entry` on one workgroup with zeroed `Params` and a zeroed buffer per storage global, waited
    /// for. false when the entry point is unknown here or the device reported an error (the warm-up stops quietly:
    /// it only ever saves time).
    fn dispatch_once(self: &Arc<Self>, entry: &str) -> bool {
        let Some(k) = self.kernels.get(entry) else { return false };
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let bufs: Vec<_> = k.slots.iter().map(|_| self.alloc(DUMMY_BYTES)).collect();
        let binds: Vec<(u32, Bind)> = k.slots.iter().zip(&bufs).map(|(s, b)| (s.binding, Bind::from(b))).collect();
        self.record_dispatch(k, &[0u32; 64], &binds, [1, 1, 1]);
        self.sync();
        platform::scope_error(scope, String::new()).is_none()
    }
}
