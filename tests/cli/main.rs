//! The real `fluke` binary as a subprocess: every bad input gives one clear line, and runs killed at any point
//! resume bit-identically.
//!
//! One test binary (fewer links; one shared device, `fluke::testing::gpu`, whose pipelines are created once).

#[path = "../common/mod.rs"]
mod common;

mod cli_errors;
mod crash;
mod export;
