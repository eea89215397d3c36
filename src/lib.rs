//! fluke: a from-scratch GPU compute engine (wgpu + hand-written WGSL, hand-written backward passes, a small tape)
//! that trains and runs a SE-ResNet34 U-Net for whale-fluke segmentation on any Vulkan, Metal or DX12 GPU.
//!
//! Reading order: `gpu` (device, pipelines, dispatch) -> `tensor` -> `graph` (the tape) -> `ops/*` (each op with its
//! shader) -> `model` (the U-Net) -> `optim` -> `data` -> `train` -> `predict`.

pub mod check;
pub mod data;
pub mod gpu;
pub mod graph;
pub mod ops;
pub mod tensor;
pub mod testing;

pub use gpu::{Gpu, GpuOptions};
pub use graph::{Tape, Var};
pub use tensor::Tensor;
