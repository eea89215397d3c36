//! Files without a GPU: data loading and its problems, atomic writes and the run lock, fuzzed images and weight
//! files, post-processing.
//!
//! One test binary (fewer links; one shared device, `fluke::testing::gpu`, whose pipelines are created once).

mod data;
mod fsutil;
mod fuzz_images;
mod fuzz_weights;
mod fuzz_h5;
mod pth;
mod fuzz_pth;
mod bench_compare;
mod postprocess;
