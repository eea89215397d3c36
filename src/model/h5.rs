//! Keras `.h5` weights in: `Model.save_weights("x.h5")` and `ModelCheckpoint(save_weights_only=True)` files of the
//! notebook's network (Keras 2 / tf.keras layout), read with the pure-Rust `hdf5-pure` crate (no libhdf5).
//!
//! Layout read: the root (or its `model_weights` group, in a whole-model `model.save` file) has the attribute
//! `layer_names`, the layers in model order; each layer's group has `weight_names`; each weight is the dataset at
//! `<layer>/<weight name>`. Names are kept (Keras names are fluke's names for this architecture) except the SE
//! convs, which Keras auto-names per session (`conv2d`, `conv2d_1`, ... in a fresh one, `conv2d_32`... when the
//! notebook built a model before): they are renamed by their position in the file, as Keras itself loads them.
//! Conv kernels are transposed from Keras' HWIO to fluke's OIHW. Stored f32 or f64 (f64 narrowed).

use std::collections::HashMap;

use anyhow::{anyhow, bail, Result};
use hdf5_pure::{AttrValue, File, Group};

use super::spec::{keras_se_name, Arch};
use super::weights::{Loaded, WeightFile};

/// HDF5's signature (at offset 0 in files Keras writes).
pub const MAGIC: &[u8; 8] = b"\x89HDF\r\n\x1a\n";

/// An auto-named Keras conv (`conv2d`, `conv2d_N`): the SE layers of this network.
fn is_auto_conv(layer: &str) -> bool {
    layer == "conv2d" || layer.strip_prefix("conv2d_").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn strings(attrs: &HashMap<String, AttrValue>, key: &str, what: &str) -> Result<Vec<String>> {
    match attrs.get(key) {
        None => bail!("{what} has no '{key}' attribute"),
        Some(v) => match v.as_strings() {
            Some(s) => Ok(s.to_vec()),
            None => match v.as_str() {
                Some(s) => Ok(vec![s.to_string()]),
                // Keras writes an empty list as a zero-length float array (layers without weights).
                None => Ok(Vec::new()),
            },
        },
    }
}

/// Parse the bytes of a Keras weights file into fluke's tensors (separate from I/O for the fuzzer).
pub fn parse_keras_h5(bytes: &[u8]) -> Result<WeightFile> {
    let file = File::from_bytes(bytes.to_vec()).map_err(|e| anyhow!("not a readable HDF5 file ({e})"))?;
    let root = file.root();
    let top: Group = match root.group("model_weights") {
        Ok(g) => g,
        Err(_) => root,
    };
    let attrs = top.attrs().map_err(|e| anyhow!("cannot read the HDF5 root attributes ({e})"))?;
    if !attrs.contains_key("layer_names") {
        bail!(
            "an HDF5 file without Keras' 'layer_names' attribute: not a Keras 2 save_weights file (a Keras 3 \
             .weights.h5 is not read; save with tf.keras 2 or model.save_weights('x.h5'))"
        );
    }
    let layers = strings(&attrs, "layer_names", "the file")?;
    let mut tensors = HashMap::new();
    let mut se = 0;
    for layer in &layers {
        let g = top.group(layer).map_err(|e| anyhow!("layer '{layer}' is listed but has no group ({e})"))?;
        let gattrs = g.attrs().map_err(|e| anyhow!("layer '{layer}': cannot read its attributes ({e})"))?;
        let names = strings(&gattrs, "weight_names", &format!("layer '{layer}'"))?;
        if names.is_empty() {
            continue;
        }
        let rename = is_auto_conv(layer).then(|| {
            se += 1;
            keras_se_name(se - 1)
        });
        for w in &names {
            let ds = g.dataset(w).map_err(|e| anyhow!("weight '{w}' of layer '{layer}' is missing ({e})"))?;
            let shape: Vec<usize> = ds.shape().map_err(|e| anyhow!("weight '{w}': {e}"))?.iter().map(|&d| d as usize).collect();
            let data = ds.read_f32().map_err(|e| anyhow!("weight '{w}': cannot read it as floats ({e})"))?;
            let n: usize = shape.iter().product();
            if data.len() != n {
                bail!("weight '{w}' holds {} values for shape {shape:?}; the file is damaged", data.len());
            }
            let (shape, data) = if shape.len() == 4 { hwio_to_oihw(&shape, &data) } else { (shape, data) };
            let name = match &rename {
                Some(r) => format!("{r}/{}", w.rsplit('/').next().unwrap_or(w)),
                None => w.clone(),
            };
            tensors.insert(name, Loaded { shape, data, is_int: false });
        }
    }
    if tensors.is_empty() {
        bail!("the Keras file lists {} layers but holds no weights", layers.len());
    }
    let mut metadata = HashMap::new();
    metadata.insert("fluke.arch".to_string(), Arch::Keras.id().to_string());
    Ok(WeightFile { tensors, metadata })
}

/// Keras kernel [kh, kw, cin, cout] -> fluke's [cout, cin, kh, kw].
pub fn hwio_to_oihw(shape: &[usize], data: &[f32]) -> (Vec<usize>, Vec<f32>) {
    let (kh, kw, ci, co) = (shape[0], shape[1], shape[2], shape[3]);
    let mut out = vec![0f32; data.len()];
    for y in 0..kh {
        for x in 0..kw {
            for i in 0..ci {
                for o in 0..co {
                    out[((o * ci + i) * kh + y) * kw + x] = data[((y * kw + x) * ci + i) * co + o];
                }
            }
        }
    }
    (vec![co, ci, kh, kw], out)
}
