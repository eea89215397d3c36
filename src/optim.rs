//! Adam over named parameter tensors, with its moments on the GPU (PyTorch semantics; the update itself is the
//! `adam_step` kernel in shaders/adam.wgsl). Saved and restored with the run so `--resume` continues exactly.
//!
//! The optimizer knows tensors by name, not the model: whoever owns the parameters (the U-Net's `params()`, a test's
//! list) hands them in. Its state file is its own, safetensors with f32 tensors and metadata:
//!   m.<name>, v.<name>   first and second moments, shaped like the parameter
//!   step                 updates taken;  lr  the learning rate at the save;  fluke.optimizer = "adam"

use std::collections::HashMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use safetensors::{Dtype, SafeTensors};

use crate::ops::adam::adam_step;
use crate::tensor::Tensor;

pub struct Adam {
    pub lr: f64,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// Number of steps taken (bias correction uses step + 1 for the next one).
    pub step: u32,
    m: HashMap<String, Tensor>,
    v: HashMap<String, Tensor>,
}

impl Adam {
    /// Zero moments for every parameter in `params` (name, tensor).
    pub fn new<'a>(params: impl IntoIterator<Item = (&'a str, &'a Tensor)>, lr: f64) -> Adam {
        let mut m = HashMap::new();
        let mut v = HashMap::new();
        for (name, p) in params {
            m.insert(name.to_string(), Tensor::zeros(p.gpu(), &p.shape));
            v.insert(name.to_string(), Tensor::zeros(p.gpu(), &p.shape));
        }
        Adam { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: 0, m, v }
    }

    /// One update of every parameter in `params`, in place. Every one must have a gradient in `grads` (none is ever
    /// left stale) and moments from `new`.
    pub fn update<'a>(&mut self, params: impl IntoIterator<Item = (&'a str, &'a Tensor)>, grads: &HashMap<String, Tensor>) {
        self.step += 1;
        for (name, p) in params {
            let g = grads.get(name).unwrap_or_else(|| panic!("adam: no gradient for {name}"));
            let (m, v) = match (self.m.get(name), self.v.get(name)) {
                (Some(m), Some(v)) => (m, v),
                _ => panic!("adam: {name} was not given to Adam::new"),
            };
            adam_step(p, g, m, v, self.lr as f32, self.beta1, self.beta2, self.eps, self.step);
        }
    }

    /// Save moments and step (atomically).
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut names: Vec<&String> = self.m.keys().collect();
        names.sort();
        let mut blobs = Vec::new();
        for n in names {
            blobs.push((format!("m.{n}"), self.m[n].shape.clone(), self.m[n].to_vec()));
            blobs.push((format!("v.{n}"), self.v[n].shape.clone(), self.v[n].to_vec()));
        }
        let views: Vec<(String, safetensors::tensor::TensorView)> = blobs
            .iter()
            .map(|(n, s, d)| {
                (n.clone(), safetensors::tensor::TensorView::new(Dtype::F32, s.clone(), bytemuck::cast_slice(d)).unwrap())
            })
            .collect();
        let meta: HashMap<String, String> = [
            ("fluke.optimizer".to_string(), "adam".to_string()),
            ("step".to_string(), self.step.to_string()),
            ("lr".to_string(), format!("{:e}", self.lr)),
        ]
        .into();
        let bytes = safetensors::serialize(views, Some(meta))?;
        crate::fsutil::atomic_write(path, &bytes).with_context(|| format!("{}: cannot write optimizer state", path.display()))
    }

    /// Restore moments and step from `save`'s file. Every moment is checked (present, f32, right shape) before any
    /// is written, so a bad file leaves the optimizer untouched.
    pub fn load(&mut self, path: &Path) -> Result<()> {
        let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read optimizer state", path.display()))?;
        let file = SafeTensors::deserialize(&bytes)
            .map_err(|e| anyhow!("{}: not a valid safetensors file ({e}); optimizer state is written by `fluke train`", path.display()))?;
        let step: u32 = SafeTensors::read_metadata(&bytes)
            .ok()
            .and_then(|(_, m)| m.metadata().as_ref().and_then(|m| m.get("step")).and_then(|s| s.parse().ok()))
            .ok_or_else(|| anyhow!("{}: not a fluke optimizer state (no step)", path.display()))?;
        let mut writes = Vec::new();
        for (prefix, map) in [("m.", &self.m), ("v.", &self.v)] {
            for (name, t) in map {
                let key = format!("{prefix}{name}");
                let Ok(view) = file.tensor(&key) else {
                    bail!("{}: optimizer state lacks {key}; it belongs to another model", path.display())
                };
                if view.shape() != t.shape.as_slice() {
                    bail!("{}: {key} has shape {:?}, expected {:?}", path.display(), view.shape(), t.shape);
                }
                if view.dtype() != Dtype::F32 {
                    bail!("{}: {key} is {:?}; fluke writes optimizer state as F32", path.display(), view.dtype());
                }
                let data: Vec<f32> = view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
                writes.push((t, data));
            }
        }
        for (t, data) in writes {
            t.gpu().write(&t.buf, &data);
        }
        self.step = step;
        Ok(())
    }
}
