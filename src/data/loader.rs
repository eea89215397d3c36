//! The prefetching batch loader: decoding, resizing and augmentation on CPU threads while the GPU trains.
//!
//! One `Loader` is one pass over a list of pairs (one epoch). On the first `next()` it starts a producer thread
//! that walks the epoch's batches in order; the samples of each batch are prepared in parallel on a rayon pool
//! (`threads` workers, one pool per process) and the finished batch goes into a bounded channel (`prefetch`
//! batches deep), so the producer runs ahead of the consumer by up to `prefetch + 1` batches and then waits.
//!
//! Determinism, whatever the thread timing:
//!   - the epoch order is a ChaCha8 shuffle seeded by mix(mix(seed, epoch), SHUFFLE_TAG) (identity when not
//!     shuffling);
//!   - the sample at position p of the epoch is augmented with its own ChaCha8 stream seeded by
//!     mix(mix(seed, epoch), p), so it does not matter which worker takes it;
//!   - rayon's indexed `collect` keeps each batch in position order, and batches are sent in order.
//!
//! Same (pairs, seed, epoch, flags) -> bit-identical batches, with 1 thread or 16, cache or no cache.
//!
//! Per sample (`Sample` = after resize, before augmentation; what the optional `SampleCache` keeps):
//!   load_rgb + load_mask -> size check -> resize_rgb `[3, H, W]` in [0, 1], resize_mask `[H, W]` in {0,1}
//!   -> Augment::apply (training) -> normalize -> copied into the batch.
//! A sample that fails (file deleted or damaged since the scan) is skipped with a warning on stderr and its stem in
//! `Batch::skipped`; never a panic. A batch whose samples all failed is not yielded.
//!
//! Memory: a batch is N x 4 x H x W f32 (16 x 384x192 -> 18.9 MB). A cached sample is 4 x H x W f32
//! (1.18 MB at 384x192; 450 photos -> 530 MB), so the cache has a byte budget and stops adding when full.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use anyhow::{bail, Result};
use crossbeam_channel::{bounded, Receiver};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::augment::Augment;
use super::image_io::{load_mask, load_rgb, normalize, resize_mask, resize_rgb};
use super::{mix, Pair};

/// Tag for the shuffle stream (positions, which seed the per-sample streams, never reach it).
const SHUFFLE_TAG: u64 = 0x5348_5546_464C_4521;

/// One sample at model size, before augmentation and normalisation.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// `[3, H, W]` RGB in [0, 1].
    pub rgb: Vec<f32>,
    /// `[H, W]` in {0,1}.
    pub mask: Vec<f32>,
}

impl Sample {
    /// Decode, check sizes and resize one pair to (width, height). Errors name the file.
    pub fn load(pair: &Pair, width: u32, height: u32) -> Result<Sample> {
        let photo = load_rgb(&pair.image)?;
        let mask = load_mask(&pair.mask)?;
        if photo.dimensions() != mask.dimensions() {
            bail!(
                "the mask {} is {}x{} but its photo {} is {}x{}",
                pair.mask.display(),
                mask.width(),
                mask.height(),
                pair.image.display(),
                photo.width(),
                photo.height()
            );
        }
        Ok(Sample { rgb: resize_rgb(&photo, width, height), mask: resize_mask(&mask, width, height) })
    }

    fn bytes(&self) -> usize {
        (self.rgb.len() + self.mask.len()) * 4
    }
}

/// Decoded, resized samples kept across epochs, up to a byte budget (no eviction: once full, new samples are
/// prepared each time). Shared between loaders through an `Arc`; thread-safe. Cached or not, a sample's values are
/// the same, so the cache never changes a batch.
pub struct SampleCache {
    max_bytes: usize,
    inner: Mutex<CacheInner>,
}

#[derive(Default)]
struct CacheInner {
    map: HashMap<(PathBuf, PathBuf, u32, u32), Arc<Sample>>,
    bytes: usize,
}

impl SampleCache {
    /// A cache holding at most `max_bytes` of samples (0 = cache nothing).
    pub fn new(max_bytes: usize) -> Arc<SampleCache> {
        Arc::new(SampleCache { max_bytes, inner: Mutex::new(CacheInner::default()) })
    }

    /// The cached sample, or load it (outside the lock) and keep it when it fits the budget.
    pub fn get_or_load(&self, pair: &Pair, width: u32, height: u32) -> Result<Arc<Sample>> {
        // Keyed by both paths and the size, so one cache can serve train and validation, or two model sizes.
        let key = (pair.image.clone(), pair.mask.clone(), width, height);
        if let Some(s) = self.inner.lock().unwrap().map.get(&key) {
            return Ok(s.clone());
        }
        // Decoding happens without the lock, so workers never wait on each other; two workers may race to load the
        // same sample, and the loser's copy (identical) is simply not inserted.
        let s = Arc::new(Sample::load(pair, width, height)?);
        let mut inner = self.inner.lock().unwrap();
        if inner.bytes + s.bytes() <= self.max_bytes && !inner.map.contains_key(&key) {
            inner.bytes += s.bytes();
            inner.map.insert(key, s.clone());
        }
        Ok(s)
    }

    /// Number of cached samples.
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.inner.lock().unwrap().bytes
    }
}

/// One batch, ready for the GPU.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// `[n, 3, height, width]`, normalised with the ImageNet mean/std.
    pub images: Vec<f32>,
    /// `[n, 1, height, width]` in {0,1}.
    pub masks: Vec<f32>,
    /// The stem of each sample, in batch order.
    pub stems: Vec<String>,
    /// Samples in this batch (the requested batch size, less for the last partial batch or skipped samples).
    pub n: usize,
    pub width: u32,
    pub height: u32,
    /// `"<stem>: <error>"` for each sample of this batch's slot that failed to load and was left out.
    pub skipped: Vec<String>,
}

/// Batches per epoch for `n` pairs: ceil(n / batch), or floor(n / batch) with `drop_last`.
pub fn len_batches(n: usize, batch: usize, drop_last: bool) -> usize {
    assert!(batch > 0, "len_batches: batch must be > 0");
    if drop_last {
        n / batch
    } else {
        n.div_ceil(batch)
    }
}

/// The epoch's order of pair indices: a seeded shuffle, or 0..n.
pub fn epoch_order(n: usize, seed: u64, epoch: u64, shuffle: bool) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    if shuffle {
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(mix(mix(seed, epoch), SHUFFLE_TAG)));
    }
    order
}

/// Everything the producer thread needs; moved into it on the first `next()`.
struct Config {
    pairs: Vec<Pair>,
    width: u32,
    height: u32,
    batch: usize,
    seed: u64,
    epoch: u64,
    augment: Option<Augment>,
    shuffle: bool,
    drop_last: bool,
    cache: Option<Arc<SampleCache>>,
    threads: usize,
    prefetch: usize,
}

/// Prefetching, deterministic batch iterator over one epoch (see the module header).
pub struct Loader {
    config: Option<Config>,
    rx: Option<Receiver<Batch>>,
    worker: Option<JoinHandle<()>>,
    n_batches: usize,
    yielded: usize,
}

impl Loader {
    /// One epoch over `pairs` at model size (width, height). `augment` applies `Augment::default()` (the notebook's
    /// recipe; see `with_augment`), `shuffle` shuffles by (seed, epoch), `drop_last` drops a last partial batch.
    /// Nothing starts until the first `next()`, so the `with_*` settings can follow.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        pairs: Vec<Pair>,
        width: u32,
        height: u32,
        batch: usize,
        seed: u64,
        epoch: u64,
        augment: bool,
        shuffle: bool,
        drop_last: bool,
    ) -> Self {
        assert!(batch > 0, "Loader::new: batch must be > 0");
        assert!(width > 0 && height > 0, "Loader::new: empty model size {width}x{height}");
        let n_batches = len_batches(pairs.len(), batch, drop_last);
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let config = Config {
            pairs,
            width,
            height,
            batch,
            seed,
            epoch,
            augment: augment.then(Augment::default),
            shuffle,
            drop_last,
            cache: None,
            threads,
            prefetch: 2,
        };
        Loader { config: Some(config), rx: None, worker: None, n_batches, yielded: 0 }
    }

    /// Use this augmentation recipe instead (None = no augmentation).
    pub fn with_augment(mut self, augment: Option<Augment>) -> Self {
        self.config_mut("with_augment").augment = augment;
        self
    }

    /// Keep decoded, resized samples in `cache` (share one cache across epochs).
    pub fn with_cache(mut self, cache: Arc<SampleCache>) -> Self {
        self.config_mut("with_cache").cache = Some(cache);
        self
    }

    /// Worker threads preparing samples (default: the number of CPUs).
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.config_mut("with_threads").threads = threads.max(1);
        self
    }

    /// Finished batches waiting in the queue (default 2).
    pub fn with_prefetch(mut self, batches: usize) -> Self {
        self.config_mut("with_prefetch").prefetch = batches.max(1);
        self
    }

    /// Batches this epoch yields (fewer only when every sample of a batch failed to load).
    pub fn len_batches(&self) -> usize {
        self.n_batches
    }

    fn config_mut(&mut self, what: &str) -> &mut Config {
        self.config.as_mut().unwrap_or_else(|| panic!("Loader::{what}: called after iteration started"))
    }

    fn start(&mut self, c: Config) {
        let (tx, rx) = bounded::<Batch>(c.prefetch);
        self.rx = Some(rx);
        let spawned = std::thread::Builder::new().name("fluke-loader".into()).spawn(move || produce(c, tx));
        match spawned {
            Ok(h) => self.worker = Some(h),
            // No thread: rx's sender is gone, so the iterator just ends; say why.
            Err(e) => eprintln!("warning: cannot start the data loader thread: {e}"),
        }
    }
}

/// The data worker pool with `threads` workers, built once per process and shared by every epoch's loader (a new
/// pool per epoch would start and stop threads every epoch, and glibc's cache of their stacks makes host memory
/// creep in steps).
fn data_pool(threads: usize) -> Result<std::sync::Arc<rayon::ThreadPool>, rayon::ThreadPoolBuildError> {
    static POOLS: std::sync::Mutex<Vec<(usize, std::sync::Arc<rayon::ThreadPool>)>> = std::sync::Mutex::new(Vec::new());
    let mut pools = POOLS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, p)) = pools.iter().find(|(n, _)| *n == threads) {
        return Ok(p.clone());
    }
    let p = std::sync::Arc::new(
        rayon::ThreadPoolBuilder::new().num_threads(threads).thread_name(|i| format!("fluke-data-{i}")).build()?,
    );
    pools.push((threads, p.clone()));
    Ok(p)
}

/// The producer: prepare batches in order, send each; stop early when the receiver is gone.
fn produce(c: Config, tx: crossbeam_channel::Sender<Batch>) {
    let pool = match data_pool(c.threads) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("warning: cannot start the data worker threads: {e}");
            return;
        }
    };
    let order = epoch_order(c.pairs.len(), c.seed, c.epoch, c.shuffle);
    let (w, h) = (c.width, c.height);
    let hw = (w * h) as usize;
    let epoch_seed = mix(c.seed, c.epoch);
    // Batch b holds the epoch positions b*batch .. b*batch + len; the chunking, not the threads, decides this.
    for (b, chunk) in order.chunks(c.batch).enumerate() {
        if c.drop_last && chunk.len() < c.batch {
            break;
        }
        // Prepare the batch's samples in parallel; results come back in position order.
        let results: Vec<(String, Result<Sample>)> = pool.install(|| {
            chunk
                .par_iter()
                .enumerate()
                .map(|(j, &idx)| {
                    let pair = &c.pairs[idx];
                    let pos = (b * c.batch + j) as u64;
                    (pair.stem.clone(), prepare(pair, &c, ChaCha8Rng::seed_from_u64(mix(epoch_seed, pos))))
                })
                .collect()
        });
        let mut batch = Batch {
            images: Vec::with_capacity(chunk.len() * 3 * hw),
            masks: Vec::with_capacity(chunk.len() * hw),
            stems: Vec::new(),
            n: 0,
            width: w,
            height: h,
            skipped: Vec::new(),
        };
        // Stack the samples that loaded into [n, 3, H, W] and [n, 1, H, W], in position order.
        for (stem, r) in results {
            match r {
                Ok(s) => {
                    batch.images.extend_from_slice(&s.rgb);
                    batch.masks.extend_from_slice(&s.mask);
                    batch.stems.push(stem);
                    batch.n += 1;
                }
                Err(e) => {
                    eprintln!("warning: skipping sample {stem}: {e:#}");
                    batch.skipped.push(format!("{stem}: {e:#}"));
                }
            }
        }
        if batch.n == 0 {
            continue;
        }
        if tx.send(batch).is_err() {
            return; // the Loader was dropped mid-epoch
        }
    }
}

/// One sample: load (or fetch from the cache), augment, normalise.
fn prepare(pair: &Pair, c: &Config, mut rng: ChaCha8Rng) -> Result<Sample> {
    // The cached sample is shared, so augmentation works on a copy.
    let mut s = match &c.cache {
        Some(cache) => (*cache.get_or_load(pair, c.width, c.height)?).clone(),
        None => Sample::load(pair, c.width, c.height)?,
    };
    if let Some(a) = &c.augment {
        a.apply(&mut s.rgb, &mut s.mask, c.width, c.height, &mut rng);
    }
    normalize(&mut s.rgb);
    Ok(s)
}

impl Iterator for Loader {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        // Lazy start: the first call moves the configuration into the producer thread.
        if let Some(c) = self.config.take() {
            self.start(c);
        }
        let b = self.rx.as_ref()?.recv().ok();
        if b.is_some() {
            self.yielded += 1;
        }
        b
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.n_batches.saturating_sub(self.yielded)))
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        // Close the channel first so a producer blocked on `send` wakes up and exits, then wait for it.
        self.rx = None;
        if let Some(h) = self.worker.take() {
            let _ = h.join();
        }
    }
}
