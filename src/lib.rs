//! fluke: a from-scratch GPU compute engine (wgpu + hand-written WGSL, hand-written backward passes, a small tape)
//! that trains and runs a SE-ResNet34 U-Net for whale-fluke segmentation on any Vulkan, Metal or DX12 GPU.
//!
//! Reading order, which is also the layering (a module uses only modules above it in this list; tests/ops/layers.rs
//! checks it): `gpu` (device, pipelines, named dispatch, kernel options) and `fsutil` -> `tensor` -> `graph` (the
//! tape) -> `ops/*` (each op with its shader; `ops::OPS` is the registry) -> `optim` (Adam over named tensors) ->
//! `model` (the U-Net), `data`, `postprocess` -> `validate`, `evaluate`, `args` -> `train`, `predict`, the commands
//! -> `main.rs`.
//!
//! Targets: everything here builds for native and for `wasm32-unknown-unknown` (the page in `src/web/`), except the
//! modules marked native-only below (they write files, plot with system font rasterising, or train); what differs
//! between a process and a browser tab (blocking waits, the clock) lives in `platform`.

pub mod platform;
pub mod check;
pub mod network_check;
pub mod fsutil;
pub mod data;
pub mod gpu;
pub mod graph;
pub mod ops;
/// Native only: curves.png for `fluke train` (font rasterising and files).
#[cfg(not(target_arch = "wasm32"))]
pub mod plot;
pub mod postprocess;
pub mod tensor;
/// Native only: the shared test device (a process-wide static; the browser's device is not `Send`).
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

pub use gpu::{Gpu, GpuOptions};
/// `fluke::parse_size` for the CLI and tests; it lives beside the size rule it applies.
pub use model::parse_size;
pub use graph::{Tape, Var};
pub use tensor::Tensor;
pub use args::{parse_batch_arg, parse_width_arg};

pub mod args;
/// Native only: `fluke bench`, `fluke demo` and `fluke train` (run folders, locks, threads).
#[cfg(not(target_arch = "wasm32"))]
pub mod bench;
#[cfg(not(target_arch = "wasm32"))]
pub mod demo;
pub mod evaluate;
/// Native only: `fluke info` lists every adapter of every backend.
#[cfg(not(target_arch = "wasm32"))]
pub mod info;
pub mod model;
pub mod optim;
pub mod predict;
#[cfg(not(target_arch = "wasm32"))]
pub mod train;
pub mod validate;
