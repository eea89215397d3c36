//! NumPy `.npy` writer for f32 arrays (what `np.load` reads back as `float32`, C order).
//!
//! Format v1.0 (numpy/lib/format.py):
//!   b"\x93NUMPY" | major 1 | minor 0 | header_len: u16 little-endian | header | data
//!   header = "{'descr': '<f4', 'fortran_order': False, 'shape': (h, w), }" padded with spaces and ended by "\n"
//!            so that 10 + header_len is a multiple of 64 (numpy >= 1.x aligns to 64; readers accept any 16-multiple)
//!   data   = the values as little-endian f32, row-major.
//! It is a file format, not a library, so we write these few lines ourselves rather than take a crate.

use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{ensure, Result};

use crate::fsutil::atomic_write_with;

/// The full preamble (magic, version, length, padded dict) for an f32 C-order array of `shape`.
pub fn npy_header(shape: &[usize]) -> Vec<u8> {
    // Python tuple syntax: "()", "(5,)", "(3, 4)".
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let tuple = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {tuple}, }}");
    // Pad with spaces so preamble (10 bytes) + dict + "\n" is a multiple of 64.
    let total = (10 + dict.len() + 1).div_ceil(64) * 64;
    while 10 + dict.len() + 1 < total {
        dict.push(' ');
    }
    dict.push('\n');
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

/// Write `data` (row-major, `shape.iter().product()` values) as a `<f4` .npy file, atomically.
pub fn write_npy_f32(path: &Path, data: &[f32], shape: &[usize]) -> Result<()> {
    let n: usize = shape.iter().product();
    ensure!(
        n == data.len(),
        "writing {}: shape {shape:?} holds {n} values but {} were given",
        path.display(),
        data.len()
    );
    atomic_write_with(path, |f| {
        let mut wr = BufWriter::new(f);
        wr.write_all(&npy_header(shape))?;
        for v in data {
            wr.write_all(&v.to_le_bytes())?;
        }
        wr.flush()?;
        Ok(())
    })
}
