//! Reading the goldens the Python scripts in tools/ write, and the error measure the model tests compare with.

use std::collections::HashMap;

use fluke::model::weights;

/// Every tensor of tests/golden/`file` as (shape, values).
pub fn load(file: &str) -> HashMap<String, (Vec<usize>, Vec<f32>)> {
    let path = format!("{}/tests/golden/{file}", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let f = weights::parse_weight_bytes(&bytes).unwrap();
    f.tensors.into_iter().map(|(k, v)| (k, (v.shape, v.data))).collect()
}

/// Largest |a-b| / (max |b| over the tensor): errors relative to the tensor's scale.
pub fn rel_err(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0f64, |m, v| m.max(v.abs() as f64)).max(1e-12);
    a.iter().zip(b).map(|(x, y)| (*x as f64 - *y as f64).abs()).fold(0f64, f64::max) / scale
}
