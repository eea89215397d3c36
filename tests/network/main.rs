//! The whole U-Net: PyTorch goldens (eval, train, gradients, Adam trajectory) at the default and other sizes,
//! GPU memory over steps, training runs and resume, prediction and its outputs.
//!
//! One test binary (fewer links; one shared device, `fluke::testing::gpu`, whose pipelines are created once).

mod golden;
mod model;
mod model_sizes;
mod memory;
mod train;
mod predict;
mod keras;
