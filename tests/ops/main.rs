//! Every op against its f64 oracle and its finite differences, the kernel families at the U-Net's sizes, the op
//! registry against shaders/, the generated WGSL, Tint, and the import layering.
//!
//! One test binary (fewer links; one shared device, `fluke::testing::gpu`, whose pipelines are created once).

mod adam;
mod batch_norm;
mod bce_dice;
mod conv2d;
mod core;
mod finite_diff_add;
mod generated_wgsl;
mod layers;
mod max_pool2d;
mod shaders;
mod small_ops;
mod tint;
