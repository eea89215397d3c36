//! The notebook's model: Keras `segmentation_models` `Unet("seresnet34")` (docs/unet-spec.md section 1a), on the
//! same ops as the smp U-Net. Only the encoder differs; the decoder and head are the same network under Keras names.
//!
//! ```text
//! x [N,3,H,W] ImageNet-normalised RGB (fluke's input contract)
//! raw = 255 * (std * x + mean), channels reordered to BGR (or kept RGB)   a fixed 1x1 conv, not a parameter
//! bn_data: BN without scale (gamma = 1), eps 2e-5                          learned input normalisation
//! conv0 7x7/2 pad 3 -> bn0 -> relu0                                       f2 (skip)   [N, 64, H/2, W/2]
//! pooling0: max 3x3/2, pad 1 (zero padding in Keras = -inf padding here: the input is >= 0 after ReLU)
//! stage s (1..4), unit u (1..n), pre-activation SE block:
//!   a  = ReLU(bn1(x))                         the skip taps are `a` of unit 1 of stages 2, 3, 4 (f4, f8, f16)
//!   sc = conv1x1/s(a) in unit 1 (every stage, stage 1 too), else x         no BN, no bias
//!   y  = conv3x3/s(a) -> ReLU(bn2) -> conv3x3 -> SE (no BN after conv2)
//!   out = y + sc                                                           no ReLU after the add
//! bn1 -> relu1                                                            f32 (decoder input)
//! decoder block i: up2x, concat [up, skip], 2x (conv3x3 -> BN eps 1e-3 -> ReLU); head conv3x3 + bias
//! ```
//! BN: eps 2e-5 in the encoder, 1e-3 in the decoder (Keras' default); Keras momentum 0.99 (moving = 0.99 moving +
//! 0.01 batch) is PyTorch-form momentum 0.01; the moving variance takes the unbiased batch variance, as PyTorch's.
//! Keras has no `num_batches_tracked`.
//!
//! Input order: the notebook read photos with `cv2.imread`, so its weights expect BGR; weights trained on RGB set
//! `InputOrder::Rgb` (recorded in fluke's checkpoints as `fluke.input_order`).

use anyhow::{bail, Result};

use super::spec::{keras_se_name, keras_unit, LAYERS};
use super::Fwd;
use crate::data::{IMAGENET_MEAN, IMAGENET_STD};
use crate::graph::Var;
use crate::ops::{add::add, batch_norm::{batch_norm, batch_norm_relu, BnLayer}, concat::concat, conv2d::conv2d, max_pool2d::max_pool2d, upsample2x::upsample2x};
use crate::tensor::Tensor;

pub const ENCODER_EPS: f32 = 2e-5;
pub const DECODER_EPS: f32 = 1e-3;
/// Keras momentum 0.99 in PyTorch's form (weight of the new batch statistic).
pub const MOMENTUM: f32 = 0.01;
/// Metadata key for the input order in fluke checkpoints of this architecture.
pub const INPUT_ORDER_KEY: &str = "fluke.input_order";

/// Pixel order the model's first layer sees.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputOrder {
    /// Blue, green, red (what `cv2.imread` gives; the notebook's weights).
    #[default]
    Bgr,
    Rgb,
}

impl InputOrder {
    pub fn name(self) -> &'static str {
        match self {
            InputOrder::Bgr => "bgr",
            InputOrder::Rgb => "rgb",
        }
    }
    pub fn parse(s: &str) -> Result<InputOrder> {
        match s {
            "bgr" => Ok(InputOrder::Bgr),
            "rgb" => Ok(InputOrder::Rgb),
            _ => bail!("{INPUT_ORDER_KEY} = '{s}' is not 'bgr' or 'rgb'; the file is damaged"),
        }
    }
    /// Which RGB channel feeds model channel `o`.
    pub fn source(self, o: usize) -> usize {
        match self {
            InputOrder::Bgr => 2 - o,
            InputOrder::Rgb => o,
        }
    }
}

/// The fixed 1x1 conv from ImageNet-normalised RGB to raw 0-255 pixels in `order`: weight [3,3,1,1], bias [3].
/// raw[o] = 255 * std[c] * x[c] + 255 * mean[c] with c = order.source(o).
pub fn input_map(order: InputOrder) -> ([f32; 9], [f32; 3]) {
    let mut w = [0f32; 9];
    let mut b = [0f32; 3];
    for o in 0..3 {
        let c = order.source(o);
        w[o * 3 + c] = 255.0 * IMAGENET_STD[c];
        b[o] = 255.0 * IMAGENET_MEAN[c];
    }
    (w, b)
}

/// The host-side inverse of `input_map` (tests and goldens): raw pixels in `order`, [N,3,H,W] -> fluke's input.
pub fn from_raw(raw: &[f32], n: usize, hw: usize, order: InputOrder) -> Vec<f32> {
    let mut x = vec![0f32; raw.len()];
    for i in 0..n {
        for o in 0..3 {
            let c = order.source(o);
            for p in 0..hw {
                let v = raw[(i * 3 + o) * hw + p] as f64 / 255.0;
                x[(i * 3 + c) * hw + p] = ((v - IMAGENET_MEAN[c] as f64) / IMAGENET_STD[c] as f64) as f32;
            }
        }
    }
    x
}

impl Fwd<'_> {
    /// A Keras BatchNormalization layer `{layer}/...:0`; `scale = false` uses gamma = 1 (bn_data).
    fn kbn(&self, x: &Var, layer: &str, eps: f32, scale: bool) -> Var {
        self.kbn_maybe_relu(x, layer, eps, scale, false)
    }

    /// ReLU(kbn(x)) (Keras' BatchNormalization then Activation('relu')): one fused op in training.
    fn kbn_relu(&self, x: &Var, layer: &str, eps: f32) -> Var {
        self.kbn_maybe_relu(x, layer, eps, true, true)
    }

    fn kbn_maybe_relu(&self, x: &Var, layer: &str, eps: f32, scale: bool, relu: bool) -> Var {
        let c = x.t.shape[1];
        let ones;
        let gamma = if scale {
            self.p(&format!("{layer}/gamma:0"))
        } else {
            ones = Var::constant(Tensor::from_slice(&self.m.gpu, &[c], &vec![1.0; c]));
            &ones
        };
        let bn = BnLayer {
            gamma,
            beta: self.p(&format!("{layer}/beta:0")),
            running_mean: self.m.tensor(&format!("{layer}/moving_mean:0")),
            running_var: self.m.tensor(&format!("{layer}/moving_variance:0")),
            momentum: MOMENTUM,
            eps,
        };
        let op = if relu { batch_norm_relu } else { batch_norm };
        op(self.tape, x, &bn, self.training)
    }

    fn kconv(&self, x: &Var, layer: &str, stride: usize, pad: usize, bias: bool) -> Var {
        let b = bias.then(|| format!("{layer}/bias:0"));
        self.plain_conv(x, &format!("{layer}/kernel:0"), b.as_deref(), stride, pad)
    }

    /// One pre-activation SE unit; returns (output, pre-activation `a`).
    fn unit(&self, x: &Var, s: usize, u: usize, se: usize) -> (Var, Var) {
        let p = keras_unit(s, u);
        let stride = if u == 0 && s > 0 { 2 } else { 1 };
        let a = self.kbn_relu(x, &format!("{p}_bn1"), ENCODER_EPS);
        let sc = if u == 0 { self.kconv(&a, &format!("{p}_sc"), stride, 0, false) } else { x.clone() };
        let y = self.kconv(&a, &format!("{p}_conv1"), stride, 1, false);
        let y = self.kbn_relu(&y, &format!("{p}_bn2"), ENCODER_EPS);
        let y = self.kconv(&y, &format!("{p}_conv2"), 1, 1, false);
        let (r, e) = (keras_se_name(se), keras_se_name(se + 1));
        let y = self.se(&y, (&format!("{r}/kernel:0"), &format!("{r}/bias:0")), (&format!("{e}/kernel:0"), &format!("{e}/bias:0")));
        (add(self.tape, &y, &sc), a)
    }

    /// The decoder's conv -> BN -> ReLU (one convolution pass on a frozen model's inference forward). The
    /// encoder's BNs come before their convolutions, with a ReLU between, so they stay BN passes.
    fn conv_bn_relu_k(&self, x: &Var, conv: &str, bn: &str) -> Var {
        let stats = ["gamma", "beta", "moving_mean", "moving_variance"].map(|k| format!("{bn}/{k}:0"));
        if let Some(y) = self.folded_conv(x, &format!("{conv}/kernel:0"), &stats, DECODER_EPS, 1, 1, true) {
            return y;
        }
        self.kbn_relu(&self.kconv(x, conv, 1, 1, false), bn, DECODER_EPS)
    }
}

/// Logits [N,1,H,W] (see the module header).
pub(crate) fn forward(f: &Fwd, x: &Var) -> Var {
    let (tape, gpu) = (f.tape, &f.m.gpu);
    let (w, b) = input_map(f.m.input_order);
    let mw = Var::constant(Tensor::from_slice(gpu, &[3, 3, 1, 1], &w));
    let mb = Var::constant(Tensor::from_slice(gpu, &[3], &b));
    let raw = conv2d(tape, x, &mw, Some(&mb), 1, 0);
    let y = f.kbn(&raw, "bn_data", ENCODER_EPS, false);
    let y = f.kconv(&y, "conv0", 2, 3, false);
    let x2 = f.kbn_relu(&y, "bn0", ENCODER_EPS);
    let mut feats = vec![x2.clone()];
    let mut y = max_pool2d(tape, &x2, 3, 2, 1, false);
    let mut se = 0;
    for (s, &units) in LAYERS.iter().enumerate() {
        for u in 0..units {
            let (out, a) = f.unit(&y, s, u, se);
            if u == 0 && s > 0 {
                feats.push(a); // stage{s+1}_unit1_relu1: the skip at this scale
            }
            y = out;
            se += 2;
        }
    }
    let mut d = f.kbn_relu(&y, "bn1", ENCODER_EPS);
    for i in 0..5 {
        let up = upsample2x(tape, &d);
        let inp = if i < 4 { concat(tape, &up, &feats[3 - i]) } else { up };
        let a = f.conv_bn_relu_k(&inp, &format!("decoder_stage{i}a_conv"), &format!("decoder_stage{i}a_bn"));
        d = f.conv_bn_relu_k(&a, &format!("decoder_stage{i}b_conv"), &format!("decoder_stage{i}b_bn"));
    }
    f.kconv(&d, "final_conv", 1, 1, true)
}
