//! fluke: a from-scratch GPU compute engine (wgpu + hand-written WGSL, hand-written backward passes, a small tape)
//! that trains and runs a SE-ResNet34 U-Net for whale-fluke segmentation on any Vulkan, Metal or DX12 GPU.
//!
//! Reading order: `gpu` (device, pipelines, dispatch) -> `tensor` -> `graph` (the tape) -> `ops/*` (each op with its
//! shader) -> `model` (the U-Net) -> `optim` -> `data` -> `train` -> `predict`.

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

pub mod bench;
pub mod demo;
pub mod evaluate;
pub mod info;
pub mod model;
pub mod optim;
pub mod predict;
pub mod train;
pub mod validate;

/// `--width` (clap value parser): one of the divisors the network supports, so a bad value is a usage error.
pub fn parse_width_arg(s: &str) -> Result<usize, String> {
    let w: usize = s.trim().parse().map_err(|_| format!("'{s}' is not a number; use 1, 2, 4, 8 or 16"))?;
    model::check_width(w).map_err(|e| e.to_string())?;
    Ok(w)
}

/// `--batch` (clap value parser): a whole number of at least 1.
pub fn parse_batch_arg(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(b) if b >= 1 => Ok(b),
        _ => Err(format!("'{s}' is not a batch size; use a whole number of at least 1")),
    }
}

