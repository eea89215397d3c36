//! fluke: a from-scratch GPU compute engine (wgpu + hand-written WGSL, hand-written backward passes, a small tape)
//! that trains and runs a SE-ResNet34 U-Net for whale-fluke segmentation on any Vulkan, Metal or DX12 GPU.
//!
//! Reading order: `gpu` (device, pipelines, dispatch) -> `tensor` -> `graph` (the tape) -> `ops/*` (each op with its
//! shader) -> `model` (the U-Net) -> `optim` -> `data` -> `train` -> `predict`.

pub mod check;
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
pub use graph::{Tape, Var};
pub use tensor::Tensor;

pub mod bench;
pub mod demo;
pub mod evaluate;
pub mod info;
pub mod model;
pub mod optim;
pub mod predict;
pub mod train;
pub mod validate;

/// Parse "WxH" (e.g. "384x192").
pub fn parse_size(s: &str) -> anyhow::Result<(u32, u32)> {
    let bad = || anyhow::anyhow!("size '{s}' is not WxH (e.g. 384x192)");
    let (w, h) = s.trim().split_once(['x', 'X']).ok_or_else(bad)?;
    let w: u32 = w.trim().parse().map_err(|_| bad())?;
    let h: u32 = h.trim().parse().map_err(|_| bad())?;
    model::check_input_size(w, h)?;
    Ok((w, h))
}
