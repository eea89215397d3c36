//! Compile ahead on a second device: the first step on lavapipe with an empty Mesa shader cache spends more time in
//! llvmpipe's JIT than in its kernels (13.5 s against 5.0 s warm at batch 4, 384x192 on the 2-core AMD EPYC), and
//! that JIT runs in the device's one queue thread, at the first dispatch of each kernel variant, one at a time, while
//! the machine's other cores wait for it.
//!
//! What gets compiled is a variant per distinct `Params`, not per kernel: lavapipe inlines the uniforms that a
//! kernel's loop bounds and branches read (Mesa's `lvp_inline_uniforms`, for shaders above a size) and compiles the
//! result, once per distinct set of values per device, through Mesa's on-disk shader cache (falling back to the
//! kernel as written, once, when inlining shrinks it too little). So the 53 kernels of a step at 384x192 make 304
//! distinct dispatches (most of the compile time in the first of each large kernel), and a dispatch with zeroed
//! `Params` (as this module did before) compiles a variant whose loops are all empty, which the step never runs.
//!
//! `Gpu::warm_up(plan)` opens a second device on the same adapter in a thread of its own and makes each dispatch of
//! `plan` once, last first, on one workgroup of zeroed buffers with the dispatch's real `Params` (a workgroup's
//! worth of work; reads past the small buffers are bounds-checked; what they write is thrown away). Each makes
//! llvmpipe compile that variant and store it in Mesa's on-disk shader cache, where the main device finds it when
//! it gets there: the main device compiles from the front of the step and the second one from the back, and they
//! meet in the middle. `plan` is what the step will dispatch, in order: `Gpu::dry_run` of the step (`Plan`).
//!
//! Only where it pays: a Vulkan CPU adapter whose driver is Mesa (lavapipe: `is_mesa_cpu`), Mesa's shader cache not
//! turned off (`MESA_SHADER_CACHE_DISABLE`), and a second core. Elsewhere `warm_up` returns None: a real GPU's
//! driver compiles at pipeline creation, SwiftShader keeps no disk cache, and on one core the two devices would only
//! take turns. With a warm Mesa cache it costs a cache lookup per variant.
//!
//! Dropping the `WarmUp` stops it after the variant it is compiling and waits for that one, so no thread of a
//! second device is left inside the driver when the program exits.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::{Bind, Gpu, Plan, PARAM_SLOT};
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
    /// Stop and wait; returns (variants dispatched on the second device, variants it was given).
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
    /// Compile the dispatches of `plan` ahead on a second device (see the module doc), in the order the main device
    /// will first make them (the kernel check's plan and then the step's can be chained: `Plan::then`); None where
    /// that does not pay (not lavapipe, Mesa's cache off, one core) or the plan is empty.
    pub fn warm_up(self: &Arc<Self>, plan: Plan) -> Option<WarmUp> {
        let entries = plan.dispatches;
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
                for (entry, params) in entries.iter().rev() {
                    if stop2.load(Ordering::Relaxed) {
                        break;
                    }
                    if !second.dispatch_once(entry, params) {
                        break;
                    }
                    done2.fetch_add(1, Ordering::Relaxed);
                }
            })
            .ok()?;
        Some(WarmUp { stop, done, total, thread: Some(thread) })
    }

    /// One dispatch of `entry` on one workgroup with these `Params` and a zeroed buffer per storage global, waited
    /// for. false when the entry point is unknown here or the device reported an error (the warm-up stops quietly:
    /// it only ever saves time).
    fn dispatch_once(self: &Arc<Self>, entry: &str, params: &[u8]) -> bool {
        let Some(k) = self.kernels.get(entry) else { return false };
        let mut p = [0u32; (PARAM_SLOT / 4) as usize];
        let Some(dst) = bytemuck::cast_slice_mut::<u32, u8>(&mut p).get_mut(..params.len()) else { return false };
        dst.copy_from_slice(params);
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let bufs: Vec<_> = k.slots.iter().map(|_| self.alloc(DUMMY_BYTES)).collect();
        let binds: Vec<(u32, Bind)> = k.slots.iter().zip(&bufs).map(|(s, b)| (s.binding, Bind::from(b))).collect();
        self.record_dispatch(k, &p, &binds, [1, 1, 1]);
        self.sync();
        platform::scope_error(scope, String::new()).is_none()
    }
}
