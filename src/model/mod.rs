//! The U-Net with a SE-ResNet34 encoder (timm `legacy_seresnet34`) and the smp decoder, on the engine's ops.
//!
//! ```text
//! x [N,3,H,W] (ImageNet-normalised RGB)
//! layer0: conv 7x7/2 pad 3 -> BN -> ReLU                         f2  [N, 64, H/2,  W/2 ]
//! pool0:  max_pool 3x3/2, pad 0, ceil_mode                           [N, 64, H/4,  W/4 ]
//! layer1..4: SE-ResNet basic blocks (3, 4, 6, 3)                 f4, f8, f16, f32 (64, 128, 256, 512 ch)
//!   block: out = ReLU(BN1(conv3x3/s(x))); out = ReLU(BN2(conv3x3(out)))      <- ReLU before SE (legacy SENet)
//!          se = sigmoid(fc2(ReLU(fc1(GAP(out)))));  out = out * se
//!          out = ReLU(out + shortcut),  shortcut = BN(conv1x1/s(x)) in block 0 of layers 2-4, else x
//! decoder block i (0..5), channels 256, 128, 64, 32, 16:
//!   x = upsample2x(x); x = concat([x, skip_i]) for i < 4 (skips f16, f8, f4, f2); x = ReLU(BN(conv3x3(x))) twice
//! head: conv 3x3 16->1 with bias -> logits [N,1,H,W]; sigmoid gives the mask probability
//! ```
//! Parameter names and shapes: `spec.rs`. BN eps 1e-5, momentum 0.1 (PyTorch).
//!
//! The second architecture, the notebook's Keras model (`Arch::Keras`), is `keras.rs`: same decoder and head,
//! pre-activation encoder. Both take the same input (ImageNet-normalised RGB, the data pipeline's one contract); the
//! Keras model first maps it back to the raw 0-255 pixels, in BGR or RGB order, that its `bn_data` layer expects.

pub mod cpu;
pub mod h5;
pub mod keras;
mod pickle;
pub mod pth;
pub mod spec;
pub mod stored_zip;
pub mod summary;
pub mod weights;

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{bail, Result};
use rand::{Rng, SeedableRng};

use crate::gpu::{Gpu, Plan};
use crate::graph::{Tape, Var};
use crate::ops::{
    add::add, batch_norm::{batch_norm, batch_norm_fold, batch_norm_relu, BnLayer}, channel_scale::channel_scale, concat::concat, conv2d::{conv2d, conv2d_forward_fixed, FixedWeights},
    global_avg_pool::global_avg_pool, max_pool2d::max_pool2d, relu::relu, sigmoid::sigmoid, upsample2x::upsample2x,
};
use crate::tensor::Tensor;
pub use spec::{state_dict_spec, Arch, Entry, Kind, UNetConfig};
use spec::Role;

pub const BN_EPS: f32 = 1e-5;
pub const BN_MOMENTUM: f32 = 0.1;

/// The model: every float tensor of the state dict on the GPU, plus the BN batch counters on the host.
pub struct UNet {
    pub cfg: UNetConfig,
    pub gpu: Arc<Gpu>,
    /// State-dict layout, in PyTorch order.
    pub entries: Vec<Entry>,
    /// Params and running statistics by name.
    pub tensors: HashMap<String, Tensor>,
    /// `num_batches_tracked` by BN prefix (e.g. "encoder.model.layer0.bn1").
    pub num_batches_tracked: RefCell<HashMap<String, i64>>,
    /// Keras architecture only: the pixel order its weights expect (`keras.rs`).
    pub input_order: keras::InputOrder,
    /// `Some` once `freeze` was called: every convolution followed by a BN, with the BN folded into it
    /// (`batch_norm_fold`: conv weight name -> (w', shift)), and every other convolution whose weights the kernels
    /// pack (the head; the Keras model's pre-activation convolutions: name -> (w, bias)), filled at the first
    /// inference forward that needs it; each weight's packed copy kept with it (`FixedWeights`).
    pub frozen: RefCell<Option<FrozenConvs>>,
}

/// A frozen model's convolutions by weight name: (weights, with their packed copy kept; bias or folded shift).
pub type FrozenConvs = HashMap<String, (FixedWeights, Option<Tensor>)>;

/// The parameters as tape variables for one forward pass.
pub type ParamVars = HashMap<String, Var>;

/// Width divisors the network supports (every channel count divides evenly down to 16-wide decoder stages).
pub fn check_width(width_div: usize) -> Result<()> {
    if width_div == 0 || 16 % width_div != 0 {
        bail!("width divisor {width_div} is not supported: use --width 1, 2, 4, 8 or 16");
    }
    Ok(())
}

/// Input sizes must be multiples of 32 (five 2x downsamplings), and at least 32.
pub fn check_input_size(width: u32, height: u32) -> Result<()> {
    if width < 32 || height < 32 || !width.is_multiple_of(32) || !height.is_multiple_of(32) {
        bail!(
            "size {width}x{height} is not supported: width and height must be multiples of 32 and at least 32 \
             (the U-Net halves the size five times); try {}x{}",
            (width.max(32) / 32) * 32,
            (height.max(32) / 32) * 32
        );
    }
    Ok(())
}

/// Parse "WxH" (e.g. "384x192"), then check it with `check_input_size`.
pub fn parse_size(s: &str) -> Result<(u32, u32)> {
    let bad = || anyhow::anyhow!("size '{s}' is not WxH (e.g. 384x192)");
    let (w, h) = s.trim().split_once(['x', 'X']).ok_or_else(bad)?;
    let w: u32 = w.trim().parse().map_err(|_| bad())?;
    let h: u32 = h.trim().parse().map_err(|_| bad())?;
    check_input_size(w, h)?;
    Ok((w, h))
}

/// A size as `parse_size` reads it: (384, 192) -> "384x192".
pub fn format_size((w, h): (u32, u32)) -> String {
    format!("{w}x{h}")
}

impl UNet {
    /// A freshly initialised model, as smp: He-uniform (fan_in, ReLU gain) for every conv, Xavier-uniform for the
    /// head, conv biases 0, BN gamma 1, beta 0, running mean 0, running var 1. Deterministic from `seed`.
    pub fn new(gpu: &Arc<Gpu>, cfg: UNetConfig, seed: u64) -> UNet {
        let entries = state_dict_spec(&cfg);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut tensors = HashMap::new();
        let mut nbt = HashMap::new();
        for e in &entries {
            let n = e.numel();
            let data: Vec<f32> = match spec::role(e) {
                Role::Counter => {
                    nbt.insert(e.name.trim_end_matches(".num_batches_tracked").to_string(), 0);
                    continue;
                }
                Role::RunningVar => vec![1.0; n],
                Role::RunningMean => vec![0.0; n],
                role @ (Role::Conv | Role::HeadConv) => {
                    let fan_in = (e.shape[1] * e.shape[2] * e.shape[3]) as f64;
                    let fan_out = (e.shape[0] * e.shape[2] * e.shape[3]) as f64;
                    let bound = if role == Role::HeadConv {
                        (6.0 / (fan_in + fan_out)).sqrt() // Xavier-uniform
                    } else {
                        (6.0 / fan_in).sqrt() // He-uniform: gain sqrt(2) * sqrt(3 / fan_in)
                    };
                    (0..n).map(|_| rng.random_range(-bound..bound) as f32).collect()
                }
                Role::BnScale => vec![1.0; n],
                Role::BnShift | Role::Bias => vec![0.0; n],
            };
            tensors.insert(e.name.clone(), Tensor::from_slice(gpu, &e.shape, &data));
        }
        UNet {
            cfg,
            gpu: gpu.clone(),
            entries,
            tensors,
            num_batches_tracked: RefCell::new(nbt),
            input_order: keras::InputOrder::default(),
            frozen: RefCell::new(None),
        }
    }

    /// Inference from now on: each later `predict` (an inference tape in eval mode) runs every convolution that a BN
    /// follows with the BN folded into its weights and bias (`batch_norm_fold`, computed once per convolution at
    /// first use and kept: a copy of those weights in GPU memory), so no BN pass runs over the activations. For a
    /// model whose weights and running statistics no longer change (`fluke predict`, the page, `fluke bench`'s
    /// inference); loading weights calls `thaw`, and training must not follow a freeze without it. Training and
    /// recording tapes never use the folded weights.
    pub fn freeze(&self) {
        *self.frozen.borrow_mut() = Some(HashMap::new());
    }

    /// Back to BN passes (forgets the folded weights).
    pub fn thaw(&self) {
        *self.frozen.borrow_mut() = None;
    }

    /// Names of the trainable parameters, in state-dict order.
    pub fn param_names(&self) -> Vec<String> {
        self.entries.iter().filter(|e| e.kind == Kind::Param).map(|e| e.name.clone()).collect()
    }

    /// The trainable parameters (name, tensor), in state-dict order: what the optimizer updates.
    pub fn params(&self) -> impl Iterator<Item = (&str, &Tensor)> + '_ {
        self.entries.iter().filter(|e| e.kind == Kind::Param).map(|e| (e.name.as_str(), self.tensor(&e.name)))
    }

    pub fn tensor(&self, name: &str) -> &Tensor {
        self.tensors.get(name).unwrap_or_else(|| panic!("model: no tensor named {name}"))
    }

    /// Register the parameters on `tape` (training: they get gradients; inference tapes make them constants).
    pub fn param_vars(&self, tape: &Tape) -> ParamVars {
        self.param_names().into_iter().map(|n| {
            let v = tape.param(self.tensor(&n));
            (n, v)
        }).collect()
    }

    /// Logits [N,1,H,W] for a normalised input [N,3,H,W]. `training` selects batch statistics (and updates the
    /// running statistics and counters) or running statistics.
    pub fn forward(&self, tape: &Tape, vars: &ParamVars, x: &Var, training: bool) -> Var {
        let (_, c, h, w) = x.t.nchw("unet");
        assert_eq!(c, 3, "unet: input must have 3 channels, got {c}");
        assert!(h % 32 == 0 && w % 32 == 0, "unet: input {w}x{h} is not a multiple of 32");
        let f = Fwd { m: self, tape, vars, training };
        if self.cfg.arch == Arch::Keras {
            return keras::forward(&f, x);
        }
        let e = "encoder.model";
        // Encoder.
        let x0 = f.conv_bn_relu(x, &format!("{e}.layer0.conv1"), &format!("{e}.layer0.bn1"), 2, 3);
        let mut feats = vec![x0.clone()];
        let mut y = max_pool2d(tape, &x0, 3, 2, 0, true);
        for (s, &blocks) in spec::LAYERS.iter().enumerate() {
            for b in 0..blocks {
                let stride = if b == 0 && s > 0 { 2 } else { 1 };
                y = f.se_block(&y, &format!("{e}.layer{}.{b}", s + 1), stride, b == 0 && s > 0);
            }
            feats.push(y.clone());
        }
        // Decoder: start from f32, skips f16, f8, f4, f2.
        let mut d = feats.pop().unwrap();
        for i in 0..5 {
            let up = upsample2x(tape, &d);
            let inp = if i < 4 { concat(tape, &up, &feats[3 - i]) } else { up };
            let p = format!("decoder.blocks.{i}");
            let a = f.conv_bn_relu(&inp, &format!("{p}.conv1.0"), &format!("{p}.conv1.1"), 1, 1);
            d = f.conv_bn_relu(&a, &format!("{p}.conv2.0"), &format!("{p}.conv2.1"), 1, 1);
        }
        f.plain_conv(&d, "segmentation_head.0.weight", Some("segmentation_head.0.bias"), 1, 1)
    }

    /// Mask probabilities [N,1,H,W] in evaluation mode, recording nothing.
    pub fn predict(&self, x: &Tensor) -> Tensor {
        let tape = Tape::inference();
        let vars = self.param_vars(&tape);
        let z = self.forward(&tape, &vars, &Var::constant(x.clone()), false);
        sigmoid(&tape, &z).t
    }

    /// What `predict` dispatches for a batch of this shape (`Plan`: each entry point with each distinct `Params`, in
    /// the order of first dispatch), found by a dry run (`Gpu::dry_run`: nothing runs on the device); the folded
    /// weights a frozen model would cache from it are put back as they were. What `Gpu::warm_up` compiles ahead of
    /// the first batch.
    pub fn predict_plan(&self, batch: usize, width: usize, height: usize) -> Plan {
        let kept = self.frozen.borrow().clone();
        let plan = self.gpu.dry_run(|| {
            let _ = self.predict(&Tensor::zeros(&self.gpu, &[batch, 3, height, width]));
        });
        *self.frozen.borrow_mut() = kept;
        plan
    }

    /// Check that a batch at this size fits the adapter before anything is allocated. A launch whose tensors exceed
    /// one storage binding is split into runs of whole images (`ops::runs`; conv2d slices its own), so one image of
    /// each tensor must fit a binding, and the whole tensor one buffer (`max_buffer_size`). A tensor that is split
    /// binds each run from an image boundary, so its image must also be a multiple of the binding offset alignment.
    pub fn check_fits(&self, batch: usize, width: u32, height: u32) -> Result<()> {
        check_input_size(width, height)?;
        let limit = self.gpu.split_limit();
        let max_buffer = self.gpu.limits.max_buffer_size;
        let align = self.gpu.limits.min_storage_buffer_offset_alignment as u64;
        let (w, h, n) = (width as u64, height as u64, batch as u64);
        // (bytes of one image, name): the input, every conv output (and so every BN, ReLU, residual sum) and the
        // decoder's concatenations, the largest tensors of each stage.
        let mut tensors: Vec<(u64, String)> = vec![(3 * h * w * 4, format!("input (3x{height}x{width})"))];
        for (i, c) in summary::conv_layers(&self.cfg, width as usize, height as usize).iter().enumerate() {
            let (oh, ow) = c.out_hw();
            tensors.push(((c.cout * oh * ow * 4) as u64, format!("conv {i} output ({}x{}x{})", c.cout, oh, ow)));
        }
        for i in 0..5 {
            let (cin, skip) = self.cfg.decoder_io(i);
            let (dh, dw) = (h >> (4 - i), w >> (4 - i));
            let what = if skip > 0 { format!("concat of {cin}+{skip} channels") } else { "upsampled".to_string() };
            let name = format!("decoder.blocks.{i} input ({}x{dh}x{dw}, {what})", cin + skip);
            tensors.push(((cin + skip) as u64 * dh * dw * 4, name));
        }
        let adapter = &self.gpu.info.name;
        let mib = |b: u64| b >> 20;
        // One image of every tensor must fit a binding: no batch helps otherwise.
        let (per, name) = tensors.iter().max_by_key(|t| t.0).unwrap();
        if *per > limit {
            bail!(
                "batch {batch} at {width}x{height} needs the tensor '{name}' of {} MiB per image, over this adapter's \
                 storage binding limit of {} MiB ({adapter}): no --batch fits at this size; use a smaller --size or --width",
                mib(*per),
                mib(limit)
            );
        }
        // The largest batch each tensor allows: the whole batch in one buffer, and over one binding only if its images
        // can start runs at the binding alignment. The tensor that allows the least is the one to name.
        let fits = |per: u64| if per.is_multiple_of(align) { max_buffer / per } else { (limit / per).min(max_buffer / per) };
        let (per, name) = tensors.iter().min_by_key(|t| fits(t.0)).unwrap();
        if n > fits(*per) {
            let total = per * n;
            let (limit_name, cap, why) = if total > max_buffer {
                ("buffer size limit", max_buffer, String::new())
            } else {
                let why = format!(", and its images of {per} bytes cannot be split at the {align}-byte binding alignment");
                ("storage binding limit", limit, why)
            };
            bail!(
                "batch {batch} at {width}x{height} needs the tensor '{name}' of {} MiB, over this adapter's {limit_name} of \
                 {} MiB ({adapter}){why}; use --batch {} or smaller, or a smaller --size or --width",
                mib(total),
                mib(cap),
                fits(*per).max(1)
            );
        }
        Ok(())
    }

    /// Bump every BN counter (PyTorch increments num_batches_tracked once per training-mode forward).
    fn count_batch(&self, bn: &str) {
        *self.num_batches_tracked.borrow_mut().entry(bn.to_string()).or_insert(0) += 1;
    }
}

/// One forward pass's context.
pub(crate) struct Fwd<'a> {
    m: &'a UNet,
    tape: &'a Tape,
    vars: &'a ParamVars,
    training: bool,
}

impl Fwd<'_> {
    fn p(&self, name: &str) -> &Var {
        self.vars.get(name).unwrap_or_else(|| panic!("unet: parameter {name} missing"))
    }

    fn bn(&self, x: &Var, prefix: &str) -> Var {
        self.bn_maybe_relu(x, prefix, false)
    }

    /// ReLU(BN(x)): in training one fused op (`batch_norm_relu`), else BN then ReLU.
    fn bn_relu(&self, x: &Var, prefix: &str) -> Var {
        self.bn_maybe_relu(x, prefix, true)
    }

    fn bn_maybe_relu(&self, x: &Var, prefix: &str, relu: bool) -> Var {
        if self.training {
            self.m.count_batch(prefix);
        }
        let layer = BnLayer {
            gamma: self.p(&format!("{prefix}.weight")),
            beta: self.p(&format!("{prefix}.bias")),
            running_mean: self.m.tensor(&format!("{prefix}.running_mean")),
            running_var: self.m.tensor(&format!("{prefix}.running_var")),
            momentum: BN_MOMENTUM,
            eps: BN_EPS,
        };
        let op = if relu { batch_norm_relu } else { batch_norm };
        op(self.tape, x, &layer, self.training)
    }

    /// The squeeze-and-excitation gate applied: out * sigmoid(fc2(ReLU(fc1(GAP(out))))), 1x1 convs with bias.
    fn se(&self, out: &Var, fc1: (&str, &str), fc2: (&str, &str)) -> Var {
        let s = global_avg_pool(self.tape, out); // [N,C,1,1]
        let s = conv2d(self.tape, &s, self.p(fc1.0), Some(self.p(fc1.1)), 1, 0);
        let s = relu(self.tape, &s);
        let s = conv2d(self.tape, &s, self.p(fc2.0), Some(self.p(fc2.1)), 1, 0);
        let s = sigmoid(self.tape, &s);
        channel_scale(self.tape, out, &s)
    }

    /// ReLU(BN(conv(x))), conv without bias: one convolution with the BN folded in and the ReLU in its store on a
    /// frozen model's inference forward.
    fn conv_bn_relu(&self, x: &Var, conv: &str, bn: &str, stride: usize, pad: usize) -> Var {
        let (w, stats) = Self::conv_bn_names(conv, bn);
        if let Some(y) = self.folded_conv(x, &w, &stats, BN_EPS, stride, pad, true) {
            return y;
        }
        let y = conv2d(self.tape, x, self.p(&w), None, stride, pad);
        self.bn_relu(&y, bn)
    }

    /// BN(conv(x)), conv without bias (the shortcuts): folded into one convolution as above.
    fn conv_bn(&self, x: &Var, conv: &str, bn: &str, stride: usize, pad: usize) -> Var {
        let (w, stats) = Self::conv_bn_names(conv, bn);
        if let Some(y) = self.folded_conv(x, &w, &stats, BN_EPS, stride, pad, false) {
            return y;
        }
        let y = conv2d(self.tape, x, self.p(&w), None, stride, pad);
        self.bn(&y, bn)
    }

    /// The conv's weight name and its BN's [gamma, beta, running_mean, running_var] names (smp's layout).
    fn conv_bn_names(conv: &str, bn: &str) -> (String, [String; 4]) {
        (format!("{conv}.weight"), ["weight", "bias", "running_mean", "running_var"].map(|k| format!("{bn}.{k}")))
    }

    /// conv(x, w) (no bias) then eval-mode BN with tensors `[gamma, beta, running_mean, running_var]`, and a ReLU
    /// when `relu`, as one convolution pass: the BN folded into the weights and bias (`batch_norm_fold`, cached in
    /// `UNet::frozen` under the weight's name) and the ReLU in the kernels' store (`conv2d_forward_relu`). Only when
    /// the model is frozen and this forward is inference (eval mode, nothing recorded); `None` otherwise.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn folded_conv(&self, x: &Var, w: &str, bn: &[String; 4], eps: f32, stride: usize, pad: usize, relu: bool) -> Option<Var> {
        self.frozen_conv(x, w, relu, stride, pad, || {
            let t = |name: &str| self.m.tensor(name);
            let (wf, shift) = batch_norm_fold(t(w), t(&bn[0]), t(&bn[1]), t(&bn[2]), t(&bn[3]), eps);
            (wf, Some(shift))
        })
    }

    /// conv(x, w) + b: on a frozen model's inference forward with the weights kept packed between batches (in
    /// `UNet::frozen` under the weight's name), else recorded on the tape.
    pub(crate) fn plain_conv(&self, x: &Var, w: &str, b: Option<&str>, stride: usize, pad: usize) -> Var {
        self.frozen_conv(x, w, false, stride, pad, || (self.m.tensor(w).clone(), b.map(|b| self.m.tensor(b).clone())))
            .unwrap_or_else(|| conv2d(self.tape, x, self.p(w), b.map(|b| self.p(b)), stride, pad))
    }

    /// The convolution cached under weight name `w` in `UNet::frozen` (its (weights, bias or shift) made by `make` at
    /// first use, the weights' packed copy kept), applied to x with the ReLU epilogue when `relu`. Only when the
    /// model is frozen and this forward is inference (eval mode, nothing recorded); `None` otherwise.
    fn frozen_conv(&self, x: &Var, w: &str, relu: bool, stride: usize, pad: usize, make: impl FnOnce() -> (Tensor, Option<Tensor>)) -> Option<Var> {
        if self.training || self.tape.is_recording() {
            return None;
        }
        let mut cache = self.m.frozen.borrow_mut();
        let (wf, shift) = cache.as_mut()?.entry(w.to_string()).or_insert_with(|| {
            let (wf, shift) = make();
            (FixedWeights::new(wf), shift)
        });
        Some(Var::constant(conv2d_forward_fixed(&x.t, wf, shift.as_ref(), relu, stride, pad)))
    }

    /// A SE-ResNet basic block (see the module header).
    fn se_block(&self, x: &Var, p: &str, stride: usize, downsample: bool) -> Var {
        let out = self.conv_bn_relu(x, &format!("{p}.conv1"), &format!("{p}.bn1"), stride, 1);
        let out = self.conv_bn_relu(&out, &format!("{p}.conv2"), &format!("{p}.bn2"), 1, 1);
        let (w1, b1) = (format!("{p}.se_module.fc1.weight"), format!("{p}.se_module.fc1.bias"));
        let (w2, b2) = (format!("{p}.se_module.fc2.weight"), format!("{p}.se_module.fc2.bias"));
        let out = self.se(&out, (&w1, &b1), (&w2, &b2));
        let shortcut = if downsample {
            self.conv_bn(x, &format!("{p}.downsample.0"), &format!("{p}.downsample.1"), stride, 0)
        } else {
            x.clone()
        };
        let sum = add(self.tape, &out, &shortcut);
        relu(self.tape, &sum)
    }
}

/// The goldens' batch (tools/golden_unet_sizes.py): input x[i] = 0.5 sin(0.013 i) + 0.3 cos(0.0071 i) over the flat
/// index of [n, 3, h, w], and mask t[b, 0, y, x] = 1 inside the ellipse ((y - h/2) / (h/3))^2 + ((x - w/2) /
/// (w/3 + 4b))^2 < 1.
pub fn golden_batch(n: usize, h: usize, w: usize) -> (Vec<f32>, Vec<f32>) {
    let x = (0..n * 3 * h * w).map(|i| (0.5 * (0.013 * i as f64).sin() + 0.3 * (0.0071 * i as f64).cos()) as f32).collect();
    let mut t = vec![0f32; n * h * w];
    for b in 0..n {
        for y in 0..h {
            for xx in 0..w {
                let dy = (y as f64 - h as f64 / 2.0) / (h as f64 / 3.0);
                let dx = (xx as f64 - w as f64 / 2.0) / (w as f64 / 3.0 + 4.0 * b as f64);
                t[(b * h + y) * w + xx] = (dy * dy + dx * dx < 1.0) as u8 as f32;
            }
        }
    }
    (x, t)
}

/// Deterministic fill used by the PyTorch golden (tools/golden_unet.py documents the formula) and the Keras one
/// (tools/golden_keras.py), by the tensor's role.
pub fn golden_fill(e: &Entry, j: usize) -> Vec<f32> {
    let (role, shape) = (spec::role(e), &e.shape);
    let n: usize = shape.iter().product();
    (0..n)
        .map(|i| {
            let s = (0.731 * i as f64 + 1.37 * j as f64 + 0.1).sin();
            let v = match role {
                Role::Conv | Role::HeadConv => s * (3.0 / (shape[1] * shape[2] * shape[3]) as f64).sqrt(),
                Role::RunningVar => 1.25 + 0.25 * s,
                Role::BnScale => 1.0 + 0.1 * s,
                Role::RunningMean | Role::BnShift | Role::Bias | Role::Counter => 0.1 * s,
            };
            v as f32
        })
        .collect()
}

impl UNet {
    /// Overwrite every float tensor with `golden_fill` (tensor index j counts float tensors in state-dict order).
    pub fn fill_golden(&mut self) {
        let mut j = 0;
        for e in &self.entries {
            if e.kind == Kind::Counter {
                continue;
            }
            let data = golden_fill(e, j);
            self.gpu.write(&self.tensors[&e.name].buf, &data);
            j += 1;
        }
    }
}
