//! The data side of training, all on the CPU: find photo/mask pairs, decode and resize them to the model size,
//! augment them, and feed batches to the GPU from worker threads ahead of time.
//!
//! The flow for one training sample:
//! ```text
//!   pairs::scan_pairs(images/, masks/)      match by file stem, decode every file once, report bad ones up front
//!   pairs::split(pairs, 0.1, seed)          seeded train/validation split
//!   loader::Loader (worker threads)         per sample:
//!     image_io::load_rgb   -> RGB f32 [0, 1] (grayscale -> 3 equal channels)     any size
//!     image_io::load_mask  -> 0/255 (pixel > 108, the notebook's rule)          same size as the photo
//!     image_io::resize_rgb -> [3, H, W] in [0, 1], Catmull-Rom (bicubic) with antialiasing
//!     image_io::resize_mask-> [H, W] in {0,1}, area average then > 0.5
//!         (these two are what the optional SampleCache keeps)
//!     augment::Augment     -> same geometric warp on photo and mask; blur, contrast, brightness on the photo
//!     image_io::normalize  -> (x - IMAGENET_MEAN[c]) / IMAGENET_STD[c]
//!   Batch { images [N,3,H,W], masks [N,1,H,W] }
//! ```
//! The model input contract: CHW f32 RGB, normalised with the ImageNet mean and std below; the mask is 1xHxW in
//! {0,1}. Sizes are always given as (width, height); the default model size is 384x192.
//!
//! Determinism: every random choice (shuffle, split, augmentation, synthetic images) comes from a ChaCha8 stream
//! seeded from the user's seed and the position of the item, never from which thread got there first.

pub mod augment;
pub mod image_io;
pub mod loader;
pub mod pairs;
pub mod synth;

pub use augment::{augment, Augment};
pub use image_io::{
    load_mask, decode_rgb, load_rgb, normalize, prepare_image, prepare_mask, resample_plane, resize_mask, resize_rgb, to_gray8,
    to_rgb8, Filter,
};
pub use loader::{len_batches, Batch, Loader, Sample, SampleCache};
pub use pairs::{list_images, problems_report, scan_pairs, split, strict_check, Pair, Problem};

/// ImageNet channel means (RGB, on [0, 1] values): what the pretrained encoders were trained with.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet channel standard deviations (RGB, on [0, 1] values).
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Default model input size, (width, height): the notebook's 384x192.
pub const DEFAULT_SIZE: (u32, u32) = (384, 192);

/// File extensions read as images (compared case-insensitively).
pub const IMAGE_EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

/// A 64-bit mixer (splitmix64's finaliser). Seeds for the per-item random streams are `mix` chains of the user's
/// seed and the item's coordinates, so nearby seeds and positions still give unrelated streams.
pub fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_add(0x9E37_79B9_7F4A_7C15).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
