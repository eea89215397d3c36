//! Weights read from safetensors or PyTorch `.pth` files, written as safetensors.
//!
//! The format is told from the first bytes, never the file name: a zip archive (`PK\x03\x04`, torch >= 1.6) or a
//! legacy torch pickle (PROTO + torch's magic number) goes to `pth.rs`, which reads the tensors without running
//! anything in the pickle; anything else is parsed as safetensors.
//! - Full state dict (fluke's own checkpoints and smp's): the 342 names of `spec.rs`, f32 tensors plus int64
//!   `num_batches_tracked` scalars. A model trained in PyTorch loads here (its `.pth` directly) and the reverse
//!   (`fluke export` writes safetensors; `tools/to_safetensors.py` is an optional Python route).
//! - Encoder only: a bare timm `legacy_seresnet34` state dict (keys without `encoder.model.`; `last_linear.*`
//!   ignored), which is how ImageNet-pretrained weights come in. Decoder and head keep their initialisation.
//!
//! Tensors stored as f32, f16, bf16 or f64 are accepted (converted with the `half` crate). Missing, unexpected or
//! mis-shaped tensors give one error listing each by name with expected and found shape.
//! fluke writes metadata `fluke.arch` and `fluke.width_div` so a width or architecture mismatch is named as such; a
//! file without them (from PyTorch or Keras) gets its architecture from its names and its width from its stem
//! convolution's shape (`inferred_width`).
//!
//! The Keras architecture (`keras.rs`): fluke's checkpoints of it hold Keras names with fluke's layouts (OIHW
//! kernels) plus `fluke.input_order`; Keras `.h5` files (`h5.rs`, detected from the bytes) load directly, the
//! whole U-Net or the ImageNet encoder (`seresnet34_imagenet_1000_no_top.h5`, no `decoder_stage*` weights).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use safetensors::{Dtype, SafeTensors};

use super::{keras, spec::Kind, Arch, UNet, UNetConfig};

/// `fluke.arch` of the smp architecture (kept for the files fluke wrote before there were two).
pub const ARCH: &str = "unet-legacy_seresnet34";
const ENCODER_PREFIX: &str = "encoder.model.";

/// One tensor read from a file, converted to f32 (int64 counters as f32 too, exact below 2^24).
pub struct Loaded {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
    pub is_int: bool,
}

/// Everything in a weight file (safetensors or .pth; a .pth has no metadata).
pub struct WeightFile {
    pub tensors: HashMap<String, Loaded>,
    pub metadata: HashMap<String, String>,
}

const FIX: &str = "pass a .safetensors file or a PyTorch .pth state dict written by fluke, smp or timm, or a Keras .h5 of the notebook's model";

/// Read a weight file (safetensors, .pth or Keras .h5, detected from its bytes); every failure names the file and
/// the fix.
pub fn read_weight_file(path: &Path) -> Result<WeightFile> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("{}: cannot read weight file (check the path; {FIX})", path.display()))?;
    parse_weight_bytes(&bytes).map_err(|e| anyhow!("{}: {e:#}", path.display()))
}

/// The architecture a file holds: its `fluke.arch`, else told by its names (Keras names end in `:0`).
pub fn file_arch(file: &WeightFile) -> Result<Arch> {
    if let Some(a) = file.metadata.get("fluke.arch") {
        return Arch::from_id(a).ok_or_else(|| anyhow!("metadata fluke.arch = '{a}' is not an architecture fluke knows (smp-legacy_seresnet34, keras-seresnet34)"));
    }
    Ok(if file.tensors.keys().any(|k| k.ends_with(":0")) { Arch::Keras } else { Arch::Smp })
}

/// The input order a Keras-architecture file records (BGR, the notebook's, when it records none).
pub fn recorded_input_order(file: &WeightFile) -> Result<keras::InputOrder> {
    match file.metadata.get(keras::INPUT_ORDER_KEY) {
        Some(s) => keras::InputOrder::parse(s),
        None => Ok(keras::InputOrder::Bgr),
    }
}

fn is_keras_decoder(name: &str) -> bool {
    name.starts_with("decoder_stage") || name.starts_with("final_conv")
}

/// Parse a weight file's bytes, safetensors or .pth by their first bytes (separate from I/O so the fuzzer can
/// drive it).
pub fn parse_weight_bytes(bytes: &[u8]) -> Result<WeightFile> {
    if bytes.starts_with(super::h5::MAGIC) {
        return super::h5::parse_keras_h5(bytes).map_err(|e| anyhow!("Keras .h5: {e:#}"));
    }
    if super::pth::detect_pth(bytes).is_some() {
        return super::pth::parse_pth_bytes(bytes).map_err(|e| anyhow!("PyTorch checkpoint: {e:#}"));
    }
    parse_safetensors_bytes(bytes)
}

/// Parse safetensors bytes.
pub fn parse_safetensors_bytes(bytes: &[u8]) -> Result<WeightFile> {
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

/// Width divisor of a file without fluke metadata (a .pth, an smp safetensors), from its stem convolution's output
/// channels (64 / k); None when that tensor is absent or fits no supported width (then loading names the problem).
pub fn inferred_width(file: &WeightFile) -> Option<usize> {
    let stem = file.tensors.get("encoder.model.layer0.conv1.weight").or_else(|| file.tensors.get("conv0/kernel:0"))?;
    let c = *stem.shape.first()?;
    (c > 0 && 64 % c == 0 && super::check_width(64 / c).is_ok()).then(|| 64 / c)
}

/// What part of the model a file initialises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadMode {
    /// A full smp/fluke state dict: every tensor must be present.
    Full,
    /// The encoder only: a bare timm `legacy_seresnet34` classifier, or a Keras seresnet34 without its top.
    TimmEncoder,
}

/// Decide whether a file is a full state dict or a bare timm encoder.
pub fn detect_mode(file: &WeightFile) -> LoadMode {
    if file.tensors.keys().any(|k| k.starts_with("encoder.") || k.starts_with("decoder.") || is_keras_decoder(k)) {
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
        let width = recorded_width(file).or_else(|| inferred_width(file)).unwrap_or(1);
        let arch = file_arch(file).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        // The metadata is data from a file: an impossible width is a damaged file, not a reason to panic.
        super::check_width(width).map_err(|_| anyhow!("{}: metadata fluke.width_div = {width} is not a width fluke makes; the file is damaged", path.display()))?;
        let mode = detect_mode(file);
        // A bare encoder would leave the decoder at its random initialisation: predictions would be noise.
        if mode != LoadMode::Full {
            bail!(
                "{}: holds no U-Net decoder (no encoder.*/decoder.* tensors: an ImageNet encoder or another model); \
                 predict, eval and export need a full checkpoint, e.g. best.safetensors from `fluke train` (an encoder goes \
                 to `fluke train --init`)",
                path.display()
            );
        }
        let mut m = UNet::new(gpu, UNetConfig::with_arch(width, arch), 0);
        m.load_weight_file(file, mode).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        if arch == Arch::Keras {
            m.input_order = recorded_input_order(file).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        }
        Ok((m, recorded_size(file)))
    }

    /// `--input-order`: only the Keras architecture has one.
    pub fn set_input_order(&mut self, order: Option<keras::InputOrder>, path: &Path) -> Result<()> {
        if let Some(o) = order {
            if self.cfg.arch != Arch::Keras {
                bail!("{}: --input-order applies to keras-seresnet34 models; this one is {}", path.display(), self.cfg.arch.cli_name());
            }
            self.input_order = o;
        }
        Ok(())
    }

    /// Load weights from a file into this model (full or encoder-only, detected).
    pub fn load(&mut self, path: &Path) -> Result<LoadMode> {
        let file = read_weight_file(path)?;
        let mode = detect_mode(&file);
        self.load_weight_file(&file, mode).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        if self.cfg.arch == Arch::Keras && file.metadata.contains_key(keras::INPUT_ORDER_KEY) {
            self.input_order = recorded_input_order(&file).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        }
        Ok(mode)
    }

    /// Check every name and shape first, then write: a bad file leaves the model untouched.
    pub fn load_weight_file(&mut self, file: &WeightFile, mode: LoadMode) -> Result<()> {
        // New weights: folded copies of the old ones (`freeze`) would be stale.
        self.thaw();
        let arch = file_arch(file)?;
        if arch != self.cfg.arch {
            bail!(
                "the file holds a {} model but this model is {}; pass --arch {}",
                arch.cli_name(),
                self.cfg.arch.cli_name(),
                arch.cli_name()
            );
        }
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
            match (mode, arch) {
                (LoadMode::Full, _) => Some(name.to_string()),
                (LoadMode::TimmEncoder, Arch::Smp) => name.strip_prefix(ENCODER_PREFIX).map(|s| s.to_string()),
                (LoadMode::TimmEncoder, Arch::Keras) => (!is_keras_decoder(name)).then(|| name.to_string()),
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
                "weights do not fit U-Net({}, width divisor {}) [{n} problem(s): {} missing, {} unexpected, {} \
                 mis-shaped]: {}",
                self.cfg.arch.cli_name(),
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
        meta.insert("fluke.arch".into(), self.cfg.arch.id().into());
        if self.cfg.arch == Arch::Keras {
            meta.insert(keras::INPUT_ORDER_KEY.into(), self.input_order.name().into());
        }
        meta.insert("fluke.width_div".into(), self.cfg.width_div.to_string());
        Ok(safetensors::serialize(views, Some(meta))?)
    }

    /// `fluke export`: load a checkpoint as predict does (either format, width from its metadata or its shapes) and
    /// save it as safetensors under the model's own names (`self.entries`, the architecture's state-dict layout),
    /// keeping the input size it records. Returns the number of tensors written.
    pub fn export(gpu: &std::sync::Arc<crate::gpu::Gpu>, weights: &Path, out: &Path) -> Result<usize> {
        let (model, size) = UNet::from_checkpoint(gpu, weights)?;
        let mut extra = HashMap::new();
        if let Some(wh) = size {
            extra.insert(SIZE_KEY.to_string(), super::format_size(wh));
        }
        model.save(out, &extra)?;
        Ok(model.entries.len())
    }

    /// Save the full state dict atomically (temporary file, fsync, rename).
    pub fn save(&self, path: &Path, extra: &HashMap<String, String>) -> Result<()> {
        let bytes = self.to_safetensors(extra)?;
        crate::fsutil::atomic_write(path, &bytes).with_context(|| format!("{}: cannot write checkpoint", path.display()))
    }
}
