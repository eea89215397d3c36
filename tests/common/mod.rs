//! Helpers shared by the process-level tests (cli_errors, crash, memory): run the real `fluke` binary as a
//! subprocess on tiny synthetic data and a tiny model, and judge what it printed.
//!
//! The contract checked everywhere: an input error is ONE line on stderr that starts with `error:`, names the file
//! or option and says the fix, the exit code is non-zero, and nothing looks like a panic or a backtrace.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binary cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_fluke");

/// The tiny model every test trains: 1/16 of the channels, 64x32 input, batch 4 (a step takes ~0.1 s on lavapipe).
pub const TINY: [&str; 6] = ["--width", "16", "--size", "64x32", "--batch", "4"];

/// What a panic or an internal error would print; none of these may ever reach a user.
pub const PANIC_MARKERS: [&str; 4] = ["panicked", "RUST_BACKTRACE", "internal error", "stack backtrace"];

/// A `fluke` command with a quiet, reproducible environment.
pub fn fluke_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args).env_remove("FLUKE_ADAPTER").env("RUST_BACKTRACE", "0");
    c
}

/// Run `fluke args...` to completion.
pub fn fluke(args: &[&str]) -> Output {
    fluke_cmd(args).output().expect("cannot start the fluke binary")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Non-empty stderr lines.
pub fn err_lines(o: &Output) -> Vec<String> {
    stderr(o).lines().filter(|l| !l.trim().is_empty()).map(str::to_owned).collect()
}

pub fn assert_no_panic(o: &Output) {
    let e = stderr(o);
    for m in PANIC_MARKERS {
        assert!(!e.contains(m), "stderr shows a panic/backtrace marker '{m}':\n{e}");
    }
}

/// The process failed with exactly one stderr line, `error: ...`, containing every needle. Returns the line.
pub fn one_line_error(o: &Output, needles: &[&str]) -> String {
    assert_no_panic(o);
    assert!(!o.status.success(), "expected a failure, got success; stderr:\n{}", stderr(o));
    let lines = err_lines(o);
    assert_eq!(lines.len(), 1, "expected ONE stderr line, got {}:\n{}", lines.len(), stderr(o));
    let line = lines[0].clone();
    assert!(line.starts_with("error: "), "{line}");
    for n in needles {
        assert!(line.contains(n), "error line lacks '{n}': {line}");
    }
    line
}

/// Print a row for the summary table (`cargo test -- --nocapture | grep '^ROW'`).
pub fn row(class: &str, message: &str, test: &str) {
    println!("ROW | {class} | `{}` | {test} |", message.replace('|', "\\|"));
}

/// A fresh temp folder (removed when the guard drops).
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("fluke-proc-").tempdir().unwrap()
}

/// Write `count` synthetic photo/mask pairs into `dir/images` and `dir/masks`.
pub fn synth(dir: &Path, count: usize, seed: u64) -> (PathBuf, PathBuf) {
    fluke::data::synth::write_dataset(dir, count, seed).unwrap();
    (dir.join("images"), dir.join("masks"))
}

/// Sorted files of a folder.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

/// The first file in `dir` with extension `ext`.
pub fn first_with_ext(dir: &Path, ext: &str) -> PathBuf {
    files(dir).into_iter().find(|p| p.extension().is_some_and(|e| e == ext)).unwrap_or_else(|| panic!("no .{ext} in {}", dir.display()))
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every tensor of a safetensors file as (name -> f32 bits), for bit-exact comparisons.
pub fn tensor_bits(path: &Path) -> std::collections::BTreeMap<String, Vec<u32>> {
    let f = fluke::model::weights::read_weight_file(path).unwrap();
    f.tensors.into_iter().map(|(k, t)| (k, t.data.iter().map(|v| v.to_bits()).collect())).collect()
}
