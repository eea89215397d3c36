//! Splitting one launch into runs so that every storage binding fits the adapter's limit.
//!
//! Why: a storage binding is capped (lavapipe: 128 MiB), and a few U-Net tensors at batch 16 are larger, e.g. the
//! decoder's concat at 128 x 96 x 192 and the upsampled 32 x 192 x 384, both 151 MB. The ops in this crate that may
//! meet such tensors run their kernel once per run, binding byte ranges of the tensors (`Tensor::bind_range`).
//!
//! - Elementwise kernels split the flat element range (`elem_runs`).
//! - NCHW kernels split the batch into runs of whole items (`batch_runs`), so the kernels need not know.
//! - Kernels that take an element offset per tensor (conv2d's `off_x`, `off_gy`, `off_out`) split the batch with
//!   `batch_spans`: a run may start at any item, and each tensor's range starts at the aligned element at or before
//!   the run's first element, `Span::skip` elements early (the kernel adds `skip` to its indices).
//!
//! A range must start at a multiple of the adapter's `min_storage_buffer_offset_alignment` (256 bytes on most
//! adapters). When everything fits in one binding there is one run starting at 0 and no constraint. When a split is
//! needed, `batch_runs` panics with the op's name if a batch item's byte size is not aligned (never the case at the
//! U-Net's shapes, whose planes are multiples of 64 floats); `batch_spans` leaves room for the skip instead (at most
//! the alignment less 4 bytes per range, for tensors whose items are not aligned).

use crate::gpu::{Bind, Gpu};
use crate::tensor::Tensor;

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
            b.is_multiple_of(align),
            "{op}: the batch must be split to fit the {limit}-byte binding limit, but a batch item of {b} bytes is not \
             a multiple of the {align}-byte binding offset alignment; use a smaller batch"
        );
    }
    split(op, n, item_bytes, limit, align)
}

/// The items per run for `batch_runs_with` and `batch_spans_with`: as many as fit every tensor's range, counting
/// for each tensor whose items are not aligned the worst skip (`align` - 4 bytes: the ranges hold f32s).
fn split(op: &str, n: usize, item_bytes: &[u64], limit: u64, align: u64) -> Vec<(usize, usize)> {
    let biggest = item_bytes.iter().copied().max().unwrap_or(0).max(1);
    if biggest * n as u64 <= limit {
        return vec![(0, n)];
    }
    let per = item_bytes
        .iter()
        .map(|&b| {
            let slack = if b.is_multiple_of(align) { 0 } else { align.saturating_sub(4) };
            assert!(
                b.max(1) + slack <= limit,
                "{op}: one batch item needs a {b}-byte binding (+{slack} for its offset), over the storage binding \
                 limit of {limit} bytes; use a smaller image size"
            );
            ((limit - slack) / b.max(1)) as usize
        })
        .min()
        .unwrap_or(n)
        .max(1);
    (0..n).step_by(per).map(|s| (s, per.min(n - s))).collect()
}

/// One run of `batch_spans`: items `[first, first + count)` and, per tensor (in the order the item sizes were
/// given), the range bound for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchRun {
    pub first: usize,
    pub count: usize,
    pub spans: Vec<Span>,
}

/// The bound range of one tensor in a run, in f32 elements: `len` elements from `start` (aligned), the run's first
/// item `skip` elements in. Covers exactly the run's items: `skip + count * item = len`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub len: usize,
    pub skip: usize,
}

impl Span {
    /// The range of `t` to bind.
    pub fn bind<'a>(&self, t: &'a Tensor) -> Bind<'a> {
        t.bind_range(self.start, self.len)
    }
    /// `skip` as a kernel's Params offset.
    pub fn offset(&self) -> u32 {
        u32::try_from(self.skip).expect("a span's skip is below the offset alignment")
    }
}

/// Runs of a batch of `n` items for kernels that take an element offset per tensor: item `t` of the batch holds
/// `item_elems[t]` f32s of tensor `t`, and every tensor's range in a run (skip included) is at most `limit` bytes
/// and starts at a multiple of `align` bytes.
pub fn batch_spans_with(op: &str, n: usize, item_elems: &[usize], limit: u64, align: u64) -> Vec<BatchRun> {
    let item_bytes: Vec<u64> = item_elems.iter().map(|&e| e as u64 * 4).collect();
    let unit = (align / 4).max(1) as usize;
    split(op, n, &item_bytes, limit, align)
        .into_iter()
        .map(|(first, count)| BatchRun {
            first,
            count,
            spans: item_elems
                .iter()
                .map(|&e| {
                    let at = first * e;
                    let start = at / unit * unit;
                    Span { start, len: at - start + count * e, skip: at - start }
                })
                .collect(),
        })
        .collect()
}

/// `elem_runs_with` at this adapter's limits.
pub fn elem_runs(gpu: &Gpu, numel: usize) -> Vec<(usize, usize)> {
    elem_runs_with(numel, gpu.split_limit(), gpu.limits.min_storage_buffer_offset_alignment as u64)
}

/// `batch_runs_with` at this adapter's limits.
pub fn batch_runs(gpu: &Gpu, op: &str, n: usize, item_bytes: &[u64]) -> Vec<(usize, usize)> {
    batch_runs_with(op, n, item_bytes, gpu.split_limit(), gpu.limits.min_storage_buffer_offset_alignment as u64)
}

/// `batch_spans_with` at this adapter's limits.
pub fn batch_spans(gpu: &Gpu, op: &str, n: usize, item_elems: &[usize]) -> Vec<BatchRun> {
    batch_spans_with(op, n, item_elems, gpu.split_limit(), gpu.limits.min_storage_buffer_offset_alignment as u64)
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

    #[test]
    fn spans_fit_one_run_when_the_batch_fits() {
        let r = batch_spans_with("t", 3, &[10, 4], 120, 256);
        assert_eq!(r, vec![BatchRun { first: 0, count: 3, spans: vec![Span { start: 0, len: 30, skip: 0 }, Span { start: 0, len: 12, skip: 0 }] }]);
    }

    #[test]
    fn spans_start_aligned_cover_their_items_and_fit_the_limit() {
        // Items of 75 and 20 floats (300 and 80 bytes, not multiples of 256), a 1,000-byte limit: 300*n + 252 <= 1000
        // allows 2 items per run.
        let (n, items, limit, align) = (7usize, [75usize, 20], 1000u64, 256u64);
        let runs = batch_spans_with("t", n, &items, limit, align);
        assert_eq!(runs.iter().map(|r| (r.first, r.count)).collect::<Vec<_>>(), vec![(0, 2), (2, 2), (4, 2), (6, 1)]);
        for r in &runs {
            for (s, &e) in r.spans.iter().zip(&items) {
                assert_eq!(s.start * 4 % align as usize, 0, "{s:?}: not aligned");
                assert_eq!(s.start + s.skip, r.first * e, "{s:?}: does not start at the run's first item");
                assert_eq!(s.len, s.skip + r.count * e, "{s:?}: does not cover the run's items");
                assert!(s.len as u64 * 4 <= limit, "{s:?}: over the limit");
                assert!(s.skip * 4 < align as usize);
            }
        }
        // Run 2 starts at float 150 = 600 bytes: bound from byte 512 (float 128), 22 floats in.
        assert_eq!(runs[1].spans[0], Span { start: 128, len: 22 + 150, skip: 22 });
    }

    #[test]
    fn spans_of_aligned_items_need_no_slack() {
        // 64-float items (256 bytes): 3 per 800-byte run, as `batch_runs_with` splits them, every skip 0.
        let runs = batch_spans_with("t", 5, &[64], 800, 256);
        assert_eq!(runs.iter().map(|r| (r.first, r.count)).collect::<Vec<_>>(), batch_runs_with("t", 5, &[256], 800, 256));
        assert!(runs.iter().all(|r| r.spans[0].skip == 0));
    }

    #[test]
    #[should_panic(expected = "t: one batch item needs")]
    fn spans_panic_when_one_item_does_not_fit() {
        batch_spans_with("t", 2, &[300], 1000, 256);
    }
}
