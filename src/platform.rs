//! The seam between a native process and a browser tab: the few things that differ, and nothing else.
//!
//! - Waiting. Native code may block until the GPU is done (`block_on`, `wait_for_gpu`); a browser never lets a tab
//!   block: a buffer map or an error scope completes only after the current JavaScript task returns, so every
//!   wait there is a future the page awaits. The GPU runtime writes each wait once, as `async` (`Gpu::new_async`,
//!   `Gpu::read_f32_async`), and the native blocking calls are `block_on` of those futures: one code path.
//!   In a browser `block_on` only accepts a future that is already complete, and otherwise panics naming the
//!   async call to use, so a blocking readback on the web fails loudly instead of hanging the tab.
//! - The clock: `Instant` is std's natively and `performance.now()` in a browser (std's panics there).
//! - Errors from work that cannot be awaited where it is recorded (pipeline creation at first dispatch): natively
//!   the error scope is waited for and the error returned; in a browser it is reported when it arrives
//!   (`report_scope`) and kept for the page to ask for (`take_gpu_error`).
//!
//! Files, threads and progress bars are not here: the modules that use them are native-only (see lib.rs).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

/// std's `Instant` natively; one built on `performance.now()` in a browser.
pub use web_time::Instant;

/// Run a future to completion, blocking the thread (native).
#[cfg(not(target_arch = "wasm32"))]
pub fn block_on<F: Future>(f: F) -> F::Output {
    pollster::block_on(f)
}

/// In a browser: the value of a future that is already complete. A browser tab cannot block, so a future that is
/// still waiting (a readback, an adapter request) panics naming the async call to use instead.
#[cfg(target_arch = "wasm32")]
pub fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    match f.as_mut().poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!(
            "a blocking GPU wait in a browser: it can never complete there; use the async call \
             (Gpu::new_async, Gpu::read_f32_async, Tensor::to_vec_async)"
        ),
    }
}

/// Make the device run what was submitted until it is idle (native). In a browser the GPU runs by itself and map
/// callbacks arrive once the page yields, so this does nothing there.
pub fn wait_for_gpu(device: &wgpu::Device) {
    #[cfg(not(target_arch = "wasm32"))]
    device.poll(wgpu::PollType::wait_indefinitely()).expect("wait_for_gpu: device lost while waiting");
    #[cfg(target_arch = "wasm32")]
    let _ = device;
}

/// The result of a validation error scope around work recorded synchronously (pipeline creation): natively the
/// error, waited for; in a browser always None at once, with the error (if any) reported when it arrives.
pub fn scope_error(scope: wgpu::ErrorScopeGuard, what: String) -> Option<String> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = &what;
        block_on(scope.pop()).map(|e| e.to_string())
    }
    #[cfg(target_arch = "wasm32")]
    {
        let pop = scope.pop();
        wasm_bindgen_futures::spawn_local(async move {
            if let Some(e) = pop.await {
                record_gpu_error(format!("{what}: {e}"));
            }
        });
        None
    }
}

/// The first GPU error reported asynchronously (browser: `scope_error`, the device's uncaptured-error handler).
static GPU_ERROR: Mutex<Option<String>> = Mutex::new(None);

/// Keep a GPU error for `take_gpu_error` (the first one wins: later errors usually follow from it).
pub fn record_gpu_error(msg: String) {
    let mut e = GPU_ERROR.lock().unwrap_or_else(|p| p.into_inner());
    if e.is_none() {
        *e = Some(msg);
    }
}

/// The GPU error kept by `record_gpu_error`, if any, clearing it.
pub fn take_gpu_error() -> Option<String> {
    GPU_ERROR.lock().unwrap_or_else(|p| p.into_inner()).take()
}

/// A one-value channel from a wgpu callback (a buffer map) to the task awaiting it. Shared state behind a mutex so
/// the sender is `Send` natively (wgpu's callbacks must be there); single-threaded in a browser.
struct Slot<T> {
    value: Option<T>,
    waker: Option<Waker>,
}

pub struct Sender<T>(Arc<Mutex<Slot<T>>>);
pub struct Receiver<T>(Arc<Mutex<Slot<T>>>);

pub fn oneshot<T>() -> (Sender<T>, Receiver<T>) {
    let s = Arc::new(Mutex::new(Slot { value: None, waker: None }));
    (Sender(s.clone()), Receiver(s))
}

impl<T> Sender<T> {
    pub fn send(self, v: T) {
        let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        s.value = Some(v);
        if let Some(w) = s.waker.take() {
            w.wake();
        }
    }
}

impl<T> Future for Receiver<T> {
    type Output = T;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match s.value.take() {
            Some(v) => Poll::Ready(v),
            None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}
