//! Splitting one launch into runs so that every storage binding fits the adapter's limit.
//!
//! Why: a storage binding is capped (lavapipe: 128 MiB), and a few U-Net tensors at batch 16 are larger, e.g. the
//! decoder's concat at 128 x 96 x 192 and the upsampled 32 x 192 x 384, both 151 MB. The ops in this crate that may
//! meet such tensors (relu, sigmoid, concat, upsample2x, max_pool2d, global_avg_pool, channel_scale) run their kernel
//! once per run, binding byte ranges of the tensors (`Tensor::bind_range`).
//!
//! - Elementwise kernels split the flat element range (`elem_runs`).
//! - NCHW kernels split the batch into runs of whole items (`batch_runs`), so the kernels need not know.
//!
//! A range must start at a multiple of the adapter's `min_storage_buffer_offset_alignment` (256 bytes on most
//! adapters). When everything fits in one binding there is one run starting at 0 and no constraint; when a split is
//! needed and a batch item's byte size is not aligned, `batch_runs` panics with the op's name (never the case at the
//! U-Net's shapes, whose planes are multiples of 64 floats).

use crate::gpu::Gpu;

/// The binding limit the launchers split against: the adapter's, or the device's kernel options' smaller test limit.
fn limit(gpu: &Gpu) -> u64 {
    gpu.split_limit()
}

/// Runs `(first, count)` of `numel` elements, each at most `limit` bytes and starting at a multiple of `align` bytes.
pub fn elem_runs_with(numel: usize, limit: u64, align: u64) -> Vec<(usize, usize)> {
    if (numel as u64) * 4 <= limit {
        return vec![(0, numel)];
    }
    // Largest run: `limit` bytes rounded down to a whole number of alignment units (at least one unit).
    let unit = (align / 4).max(1) as usize;
    let max = ((limit / 4) as usize / unit).max(1) * unit;
    (0..numel).step_by(max).map(|s| (s, max.min(numel - s))).collect()
}

/// Runs `(first_item, items)` of a batch of `n` items, where one item occupies `item_bytes[t]` bytes of tensor `t`:
/// every tensor's range in a run is at most `limit` bytes and, when there is more than one run, starts at a
/// multiple of `align` bytes.
pub fn batch_runs_with(op: &str, n: usize, item_bytes: &[u64], limit: u64, align: u64) -> Vec<(usize, usize)> {
    let biggest = item_bytes.iter().copied().max().unwrap_or(0).max(1);
    if biggest * n as u64 <= limit {
        return vec![(0, n)];
    }
    assert!(
        biggest <= limit,
        "{op}: one batch item needs a {biggest}-byte binding, over the adapter's storage binding limit of {limit} bytes"
    );
    for &b in item_bytes {
        assert!(
            b % align == 0,
            "{op}: the batch must be split to fit the {limit}-byte binding limit, but a batch item of {b} bytes is not \
             a multiple of the {align}-byte binding offset alignment; use a smaller batch"
        );
    }
    let per = (limit / biggest) as usize;
    (0..n).step_by(per).map(|s| (s, per.min(n - s))).collect()
}

/// `elem_runs_with` at this adapter's limits.
pub fn elem_runs(gpu: &Gpu, numel: usize) -> Vec<(usize, usize)> {
    elem_runs_with(numel, limit(gpu), gpu.limits.min_storage_buffer_offset_alignment as u64)
}

/// `batch_runs_with` at this adapter's limits.
pub fn batch_runs(gpu: &Gpu, op: &str, n: usize, item_bytes: &[u64]) -> Vec<(usize, usize)> {
    batch_runs_with(op, n, item_bytes, limit(gpu), gpu.limits.min_storage_buffer_offset_alignment as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_run_when_it_fits() {
        assert_eq!(elem_runs_with(1000, 4000, 256), vec![(0, 1000)]);
        assert_eq!(batch_runs_with("t", 3, &[12, 4], 36, 256), vec![(0, 3)]);
    }

    #[test]
    fn runs_cover_everything_aligned_and_under_the_limit() {
        // 1000 floats, 1000-byte limit, 256-byte alignment: runs of 192 floats (768 bytes).
        let r = elem_runs_with(1000, 1000, 256);
        assert_eq!(r.iter().map(|x| x.1).sum::<usize>(), 1000);
        assert!(r.iter().all(|&(s, c)| (s * 4) % 256 == 0 && c * 4 <= 1000));
        assert_eq!(r[1], (192, 192));
        // 5 items of 512 and 256 bytes under a 1100-byte limit: 2 items per run.
        assert_eq!(batch_runs_with("t", 5, &[512, 256], 1100, 256), vec![(0, 2), (2, 2), (4, 1)]);
    }

    #[test]
    #[should_panic(expected = "t: the batch must be split")]
    fn unaligned_items_that_need_a_split_panic() {
        batch_runs_with("t", 4, &[300], 1000, 256);
    }
}
