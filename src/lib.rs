//! fluke: a from-scratch GPU compute engine (wgpu + hand-written WGSL, hand-written backward passes, a small tape)
//! that trains and runs a SE-ResNet34 U-Net for whale-fluke segmentation on any Vulkan, Metal or DX12 GPU.
//!
//! Reading order, which is also the layering (a module uses only modules above it in this list; tests/ops/layers.rs
//! checks it): `gpu` (device, pipelines, named dispatch, kernel options) and `fsutil` -> `tensor` -> `graph` (the
//! tape) -> `ops/*` (each op with its shader; `ops::OPS` is the registry) -> `optim` (Adam over named tensors) ->
//! `model` (the U-Net), `data`, `postprocess` -> `validate`, `evaluate`, `args` -> `train`, `predict`, the commands
//! -> `main.rs`.

pub mod check;
pub mod network_check;
pub mod fsutil;
pub mod data;
pub mod gpu;
pub mod graph;
pub mod ops;
pub mod plot;
pub mod postprocess;
pub mod tensor;
pub mod testing;

pub use gpu::{Gpu, GpuOptions};
/// `fluke::parse_size` for the CLI and tests; it lives beside the size rule it applies.
pub use model::parse_size;
pub use graph::{Tape, Var};
pub use tensor::Tensor;
pub use args::{parse_batch_arg, parse_width_arg};

pub mod args;
pub mod bench;
pub mod demo;
pub mod evaluate;
pub mod info;
pub mod model;
pub mod optim;
pub mod predict;
pub mod train;
pub mod validate;
