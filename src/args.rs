//! Value parsers for the command line (clap `value_parser`s), shared by main.rs and `fluke bench`: a bad value is a
//! usage error naming the fix.

use crate::model;

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

