//! Adam over the model's parameters, with its moments on the GPU (PyTorch semantics; the update itself is the
//! `adam_step` kernel in shaders/adam.wgsl). Saved and restored with the run so `--resume` continues exactly.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

use crate::model::UNet;
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
    /// Zero moments for every trainable parameter of `model`.
    pub fn new(model: &UNet, lr: f64) -> Adam {
        let mut m = HashMap::new();
        let mut v = HashMap::new();
        for name in model.param_names() {
            let shape = model.tensor(&name).shape.clone();
            m.insert(name.clone(), Tensor::zeros(&model.gpu, &shape));
            v.insert(name, Tensor::zeros(&model.gpu, &shape));
        }
        Adam { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: 0, m, v }
    }

    /// One update. Every parameter must have a gradient (none is ever left stale).
    pub fn update(&mut self, model: &UNet, grads: &HashMap<String, Tensor>) {
        self.step += 1;
        for name in model.param_names() {
            let g = grads.get(&name).unwrap_or_else(|| panic!("adam: no gradient for {name}"));
            adam_step(model.tensor(&name), g, &self.m[&name], &self.v[&name], self.lr as f32, self.beta1, self.beta2, self.eps, self.step);
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
                (n.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), bytemuck::cast_slice(d)).unwrap())
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

    /// Restore moments and step from `save`'s file.
    pub fn load(&mut self, path: &Path) -> Result<()> {
        let file = crate::model::weights::read_weight_file(path)?;
        let step: u32 = file
            .metadata
            .get("step")
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow!("{}: not a fluke optimizer state (no step)", path.display()))?;
        for (prefix, map) in [("m.", &self.m), ("v.", &self.v)] {
            for (name, t) in map {
                let key = format!("{prefix}{name}");
                let Some(l) = file.tensors.get(&key) else {
                    bail!("{}: optimizer state lacks {key}; it belongs to another model", path.display())
                };
                if l.shape != t.shape {
                    bail!("{}: {key} has shape {:?}, expected {:?}", path.display(), l.shape, t.shape);
                }
                t.gpu().write(&t.buf, &l.data);
            }
        }
        self.step = step;
        Ok(())
    }
}
