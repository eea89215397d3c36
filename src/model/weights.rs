//! Weights in safetensors, read and written.
//!
//! - Full state dict (fluke's own checkpoints and smp's): the 342 names of `spec.rs`, f32 tensors plus int64
//!   `num_batches_tracked` scalars. A model trained in PyTorch loads here and the reverse (`tools/to_safetensors.py`
//!   converts a `.pth`).
//! - Encoder only: a bare timm `legacy_seresnet34` state dict (keys without `encoder.model.`; `last_linear.*`
//!   ignored), which is how ImageNet-pretrained weights come in. Decoder and head keep their initialisation.
//!
//! Tensors stored as f32, f16, bf16 or f64 are accepted (converted with the `half` crate). Missing, unexpected or
//! mis-shaped tensors give one error listing each by name with expected and found shape.
//! fluke writes metadata `fluke.arch` and `fluke.width_div` so a width mismatch is named as such.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use safetensors::{Dtype, SafeTensors};

use super::{spec::Kind, UNet, UNetConfig};

pub const ARCH: &str = "unet-legacy_seresnet34";
const ENCODER_PREFIX: &str = "encoder.model.";

/// One tensor read from a file, converted to f32 (int64 counters as f32 too, exact below 2^24).
pub struct Loaded {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
    pub is_int: bool,
}

/// Everything in a safetensors file.
pub struct WeightFile {
    pub tensors: HashMap<String, Loaded>,
    pub metadata: HashMap<String, String>,
}

const FIX: &str = "pass a .safetensors file written by fluke, smp or timm (convert a .pth with tools/to_safetensors.py)";

/// Read a safetensors file; every failure names the file and the fix.
pub fn read_weight_file(path: &Path) -> Result<WeightFile> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("{}: cannot read weight file (check the path; {FIX})", path.display()))?;
    parse_weight_bytes(&bytes).map_err(|e| anyhow!("{}: {e}", path.display()))
}

/// Parse safetensors bytes (separate from I/O so the fuzzer can drive it).
pub fn parse_weight_bytes(bytes: &[u8]) -> Result<WeightFile> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| anyhow!("not a valid safetensors file ({e}); {FIX}"))?;
    let metadata = SafeTensors::read_metadata(bytes)
        .ok()
        .and_then(|(_, m)| m.metadata().clone())
        .unwrap_or_default();
    let mut tensors = HashMap::new();
    for (name, view) in st.tensors() {
        let raw = view.data();
        let (data, is_int): (Vec<f32>, bool) = match view.dtype() {
            Dtype::F32 => (raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(), false),
            Dtype::F16 => (raw.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(), false),
            Dtype::BF16 => (raw.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(), false),
            Dtype::F64 => (raw.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap()) as f32).collect(), false),
            Dtype::I64 => (raw.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f32).collect(), true),
            other => bail!("tensor {name} has dtype {other:?}; fluke reads f32, f16, bf16, f64 and int64; {FIX}"),
        };
        tensors.insert(name, Loaded { shape: view.shape().to_vec(), data, is_int });
    }
    Ok(WeightFile { tensors, metadata })
}

/// Width divisor recorded in a fluke checkpoint (None for files from PyTorch).
pub fn recorded_width(file: &WeightFile) -> Option<usize> {
    file.metadata.get("fluke.width_div").and_then(|s| s.parse().ok())
}

/// What part of the model a file initialises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadMode {
    /// A full smp/fluke state dict: every tensor must be present.
    Full,
    /// A bare timm `legacy_seresnet34` classifier: the encoder only.
    TimmEncoder,
}

/// Decide whether a file is a full state dict or a bare timm encoder.
pub fn detect_mode(file: &WeightFile) -> LoadMode {
    if file.tensors.keys().any(|k| k.starts_with("encoder.") || k.starts_with("decoder.")) {
        LoadMode::Full
    } else {
        LoadMode::TimmEncoder
    }
}

/// Metadata key under which `fluke train` records the model input size ("WxH").
pub const SIZE_KEY: &str = "fluke.size";

/// Input size recorded in a fluke checkpoint (None for files from PyTorch or without a valid size).
pub fn recorded_size(file: &WeightFile) -> Option<(u32, u32)> {
    file.metadata.get(SIZE_KEY).and_then(|s| super::parse_size(s).ok())
}

impl UNet {
    /// Build a model whose width matches a checkpoint, then load it.
    pub fn from_file(gpu: &std::sync::Arc<crate::gpu::Gpu>, path: &Path) -> Result<UNet> {
        Ok(UNet::from_checkpoint(gpu, path)?.0)
    }

    /// `from_file`, also returning the input size the checkpoint records (read from the same single parse).
    pub fn from_checkpoint(gpu: &std::sync::Arc<crate::gpu::Gpu>, path: &Path) -> Result<(UNet, Option<(u32, u32)>)> {
        let file = read_weight_file(path)?;
        Self::from_weight_file(gpu, &file, path)
    }

    /// `from_checkpoint` of a file's bytes already in memory (a browser page); `name` is what errors call it.
    pub fn from_checkpoint_bytes(gpu: &std::sync::Arc<crate::gpu::Gpu>, bytes: &[u8], name: &str) -> Result<(UNet, Option<(u32, u32)>)> {
        let file = parse_weight_bytes(bytes).map_err(|e| anyhow!("{name}: {e}"))?;
        Self::from_weight_file(gpu, &file, Path::new(name))
    }

    fn from_weight_file(gpu: &std::sync::Arc<crate::gpu::Gpu>, file: &WeightFile, path: &Path) -> Result<(UNet, Option<(u32, u32)>)> {
        let width = recorded_width(&file).unwrap_or(1);
        // The metadata is data from a file: an impossible width is a damaged file, not a reason to panic.
        super::check_width(width).map_err(|_| anyhow!("{}: metadata fluke.width_div = {width} is not a width fluke makes; the file is damaged", path.display()))?;
        let mode = detect_mode(&file);
        // A bare encoder would leave the decoder at its random initialisation: predictions would be noise.
        if mode != LoadMode::Full {
            bail!(
                "{}: holds no U-Net decoder (no encoder.*/decoder.* tensors: an ImageNet encoder or another model); \
                 predict and eval need a full checkpoint, e.g. best.safetensors from `fluke train` (an encoder goes \
                 to `fluke train --init`)",
                path.display()
            );
        }
        let mut m = UNet::new(gpu, UNetConfig::new(width), 0);
        m.load_weight_file(file, mode).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        Ok((m, recorded_size(file)))
    }

    /// Load weights from a file into this model (full or encoder-only, detected).
    pub fn load(&mut self, path: &Path) -> Result<LoadMode> {
        let file = read_weight_file(path)?;
        let mode = detect_mode(&file);
        self.load_weight_file(&file, mode).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        Ok(mode)
    }

    /// Check every name and shape first, then write: a bad file leaves the model untouched.
    pub fn load_weight_file(&mut self, file: &WeightFile, mode: LoadMode) -> Result<()> {
        if let Some(k) = recorded_width(file) {
            if k != self.cfg.width_div {
                bail!(
                    "checkpoint was trained with width divisor {k} but the model has width divisor {}; pass --width {k} \
                     (or load it with the width it was trained with)",
                    self.cfg.width_div
                );
            }
        }
        let key_of = |name: &str| -> Option<String> {
            match mode {
                LoadMode::Full => Some(name.to_string()),
                LoadMode::TimmEncoder => name.strip_prefix(ENCODER_PREFIX).map(|s| s.to_string()),
            }
        };
        // Three lists: missing, unexpected, mis-shaped. Each is cut at 15 so that a file of another architecture
        // (hundreds missing) still shows some of its own names, which is what tells the user what the file is.
        let mut missing = Vec::new();
        let mut shape_problems = Vec::new();
        let mut expected_keys = std::collections::HashSet::new();
        for e in &self.entries {
            let Some(key) = key_of(&e.name) else { continue };
            expected_keys.insert(key.clone());
            match file.tensors.get(&key) {
                None => missing.push(format!("missing {key} (expected shape {:?})", e.shape)),
                Some(t) if t.shape != e.shape => {
                    shape_problems.push(format!("{key}: expected shape {:?}, found {:?}", e.shape, t.shape))
                }
                _ => {}
            }
        }
        let mut unexpected_keys: Vec<&String> = file
            .tensors
            .keys()
            .filter(|k| !(expected_keys.contains(*k) || mode == LoadMode::TimmEncoder && k.starts_with("last_linear.")))
            .collect();
        unexpected_keys.sort();
        let unexpected: Vec<String> =
            unexpected_keys.iter().map(|k| format!("unexpected {k} (shape {:?})", file.tensors[*k].shape)).collect();
        let n = missing.len() + unexpected.len() + shape_problems.len();
        if n > 0 {
            const SHOWN: usize = 15;
            let mut shown = Vec::new();
            for list in [&missing, &unexpected, &shape_problems] {
                shown.extend(list.iter().take(SHOWN).cloned());
                if list.len() > SHOWN {
                    shown.push(format!("... {} more like this", list.len() - SHOWN));
                }
            }
            bail!(
                "weights do not fit U-Net({ARCH}, width divisor {}) [{n} problem(s): {} missing, {} unexpected, {} \
                 mis-shaped]: {}",
                self.cfg.width_div,
                missing.len(),
                unexpected.len(),
                shape_problems.len(),
                shown.join("; ")
            );
        }
        for e in &self.entries {
            let Some(key) = key_of(&e.name) else { continue };
            let t = &file.tensors[&key];
            match e.kind {
                Kind::Counter => {
                    let prefix = e.name.trim_end_matches(".num_batches_tracked").to_string();
                    self.num_batches_tracked.borrow_mut().insert(prefix, t.data.first().copied().unwrap_or(0.0) as i64);
                }
                _ => {
                    if t.data.iter().any(|v| !v.is_finite()) {
                        bail!("tensor {key} contains NaN or infinite values; the checkpoint is damaged");
                    }
                    self.gpu.write(&self.tensors[&e.name].buf, &t.data);
                }
            }
        }
        Ok(())
    }

    /// The full state dict as safetensors bytes (f32 tensors, int64 counters), with fluke metadata plus `extra`.
    pub fn to_safetensors(&self, extra: &HashMap<String, String>) -> Result<Vec<u8>> {
        let mut blobs: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
        let nbt = self.num_batches_tracked.borrow();
        for e in &self.entries {
            match e.kind {
                Kind::Counter => {
                    let prefix = e.name.trim_end_matches(".num_batches_tracked");
                    let v = nbt.get(prefix).copied().unwrap_or(0);
                    blobs.push((e.name.clone(), Dtype::I64, vec![], v.to_le_bytes().to_vec()));
                }
                _ => {
                    let data = self.tensors[&e.name].to_vec();
                    blobs.push((e.name.clone(), Dtype::F32, e.shape.clone(), bytemuck::cast_slice(&data).to_vec()));
                }
            }
        }
        let views: Vec<(String, safetensors::tensor::TensorView)> = blobs
            .iter()
            .map(|(n, d, s, b)| (n.clone(), safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap()))
            .collect();
        let mut meta = extra.clone();
        meta.insert("format".into(), "pt".into());
        meta.insert("fluke.arch".into(), ARCH.into());
        meta.insert("fluke.width_div".into(), self.cfg.width_div.to_string());
        Ok(safetensors::serialize(views, Some(meta))?)
    }

    /// Save the full state dict atomically (temporary file, fsync, rename).
    pub fn save(&self, path: &Path, extra: &HashMap<String, String>) -> Result<()> {
        let bytes = self.to_safetensors(extra)?;
        crate::fsutil::atomic_write(path, &bytes).with_context(|| format!("{}: cannot write checkpoint", path.display()))
    }
}
