//! The U-Net's state-dict layout: every tensor's name, shape and kind, in exactly the order of
//! `segmentation_models_pytorch.Unet("tu-legacy_seresnet34", decoder_channels=(256,128,64,32,16), classes=1)`
//! `.state_dict()` (342 entries at full width; tests/fixtures/state_dict_legacy_seresnet34.tsv).
//!
//! The second architecture, `keras-seresnet34` (the notebook's Keras `segmentation_models` Unet('seresnet34'),
//! ../docs/unet-spec.md section 1a), is laid out in the order of tf.keras 2.15 `model.weights`, which is also the
//! order of a `save_weights` .h5 file (292 entries at full width, tests/fixtures/state_dict_keras_seresnet34.tsv,
//! written from the real model by tools/golden_keras.py; each unit-1 shortcut comes after its SE convs) under its Keras names (`stage1_unit1_bn1/gamma:0`, SE convs
//! `conv2d`, `conv2d_1`, ... as a fresh tf.keras session names them), with fluke's layouts: conv kernels OIHW (Keras
//! stores HWIO; `weights.rs` transposes on the way in). Keras BN has no `num_batches_tracked`.
//!
//! A width divisor `k` divides every channel count (encoder 64/64/128/256/512, decoder 256/128/64/32/16) by k and
//! keeps the SE reduction at 16 (reduced channels = max(1, C/16)), for fast tests and demos on slow adapters.

/// What a state-dict entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Trainable parameter (gets a gradient and Adam moments).
    Param,
    /// Batch-norm running statistic (f32, updated in training-mode forward).
    Buffer,
    /// Batch-norm `num_batches_tracked` (int64 scalar).
    Counter,
}

#[derive(Clone, Debug)]
pub struct Entry {
    pub name: String,
    pub shape: Vec<usize>,
    pub kind: Kind,
}

impl Entry {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Which U-Net: the encoder differs, the decoder and head are the same network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
pub enum Arch {
    /// smp `Unet("tu-legacy_seresnet34")`: timm's post-activation SE-ResNet34 on ImageNet-normalised RGB.
    #[default]
    #[value(name = "smp-legacy_seresnet34")]
    #[serde(rename = "unet-legacy_seresnet34")]
    Smp,
    /// Keras `segmentation_models` `Unet("seresnet34")`: pre-activation SE-ResNet34 on raw 0-255 pixels (BGR).
    #[value(name = "keras-seresnet34")]
    #[serde(rename = "unet-keras-seresnet34")]
    Keras,
}

impl Arch {
    /// The name recorded in checkpoints (`fluke.arch`).
    pub fn id(self) -> &'static str {
        match self {
            Arch::Smp => "unet-legacy_seresnet34",
            Arch::Keras => "unet-keras-seresnet34",
        }
    }
    /// The name `--arch` takes.
    pub fn cli_name(self) -> &'static str {
        match self {
            Arch::Smp => "smp-legacy_seresnet34",
            Arch::Keras => "keras-seresnet34",
        }
    }
    /// Parse a `fluke.arch` value (None: not an architecture fluke knows).
    pub fn from_id(s: &str) -> Option<Arch> {
        [Arch::Smp, Arch::Keras].into_iter().find(|a| a.id() == s || a.cli_name() == s)
    }
}

/// Architecture and channel widths of a model with width divisor `k`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UNetConfig {
    /// Every channel count is divided by this (1 = the real network).
    pub width_div: usize,
    /// Which encoder (runs and checkpoints written before the Keras architecture existed are smp's).
    #[serde(default)]
    pub arch: Arch,
}

impl Default for UNetConfig {
    fn default() -> Self {
        UNetConfig { width_div: 1, arch: Arch::Smp }
    }
}

/// Blocks per encoder stage (ResNet-34).
pub const LAYERS: [usize; 4] = [3, 4, 6, 3];
const STAGE_CH: [usize; 4] = [64, 128, 256, 512];
const DECODER_CH: [usize; 5] = [256, 128, 64, 32, 16];
/// SE reduction ratio.
pub const SE_REDUCTION: usize = 16;

impl UNetConfig {
    pub fn new(width_div: usize) -> UNetConfig {
        UNetConfig::with_arch(width_div, Arch::Smp)
    }
    pub fn with_arch(width_div: usize, arch: Arch) -> UNetConfig {
        assert!(width_div >= 1 && 16 % width_div == 0, "width divisor must be 1, 2, 4, 8 or 16");
        UNetConfig { width_div, arch }
    }
    fn div(&self, c: usize) -> usize {
        (c / self.width_div).max(1)
    }
    /// Stem output channels.
    pub fn stem(&self) -> usize {
        self.div(64)
    }
    /// Output channels of encoder stage s (0..4).
    pub fn stage(&self, s: usize) -> usize {
        self.div(STAGE_CH[s])
    }
    /// SE reduced channels for a block of c channels.
    pub fn se(&self, c: usize) -> usize {
        (c / SE_REDUCTION).max(1)
    }
    /// Output channels of decoder block i (0..5).
    pub fn decoder(&self, i: usize) -> usize {
        self.div(DECODER_CH[i])
    }
    /// Channels of the encoder feature maps [f2 (stem), f4, f8, f16, f32].
    pub fn features(&self) -> [usize; 5] {
        [self.stem(), self.stage(0), self.stage(1), self.stage(2), self.stage(3)]
    }
    /// (input channels, skip channels) of decoder block i: input = previous block (or the deepest feature).
    pub fn decoder_io(&self, i: usize) -> (usize, usize) {
        let f = self.features();
        let cin = if i == 0 { f[4] } else { self.decoder(i - 1) };
        let skip = if i < 4 { f[3 - i] } else { 0 };
        (cin, skip)
    }
}

fn bn(out: &mut Vec<Entry>, prefix: &str, c: usize) {
    for (s, k) in [("weight", Kind::Param), ("bias", Kind::Param), ("running_mean", Kind::Buffer), ("running_var", Kind::Buffer)] {
        out.push(Entry { name: format!("{prefix}.{s}"), shape: vec![c], kind: k });
    }
    out.push(Entry { name: format!("{prefix}.num_batches_tracked"), shape: vec![], kind: Kind::Counter });
}

fn conv(out: &mut Vec<Entry>, name: &str, cout: usize, cin: usize, k: usize) {
    out.push(Entry { name: name.to_string(), shape: vec![cout, cin, k, k], kind: Kind::Param });
}

fn bias(out: &mut Vec<Entry>, name: &str, c: usize) {
    out.push(Entry { name: name.to_string(), shape: vec![c], kind: Kind::Param });
}

/// Every tensor of the model, in PyTorch state-dict order (Keras `model.weights` order for the Keras architecture).
pub fn state_dict_spec(cfg: &UNetConfig) -> Vec<Entry> {
    if cfg.arch == Arch::Keras {
        return keras_spec(cfg);
    }
    let mut v = Vec::new();
    let e = "encoder.model";
    conv(&mut v, &format!("{e}.layer0.conv1.weight"), cfg.stem(), 3, 7);
    bn(&mut v, &format!("{e}.layer0.bn1"), cfg.stem());
    let mut cin = cfg.stem();
    for (s, &blocks) in LAYERS.iter().enumerate() {
        let c = cfg.stage(s);
        let r = cfg.se(c);
        for b in 0..blocks {
            let p = format!("{e}.layer{}.{b}", s + 1);
            let bin = if b == 0 { cin } else { c };
            conv(&mut v, &format!("{p}.conv1.weight"), c, bin, 3);
            bn(&mut v, &format!("{p}.bn1"), c);
            conv(&mut v, &format!("{p}.conv2.weight"), c, c, 3);
            bn(&mut v, &format!("{p}.bn2"), c);
            conv(&mut v, &format!("{p}.se_module.fc1.weight"), r, c, 1);
            bias(&mut v, &format!("{p}.se_module.fc1.bias"), r);
            conv(&mut v, &format!("{p}.se_module.fc2.weight"), c, r, 1);
            bias(&mut v, &format!("{p}.se_module.fc2.bias"), c);
            if b == 0 && s > 0 {
                conv(&mut v, &format!("{p}.downsample.0.weight"), c, bin, 1);
                bn(&mut v, &format!("{p}.downsample.1"), c);
            }
        }
        cin = c;
    }
    for i in 0..5 {
        let (cin, skip) = cfg.decoder_io(i);
        let c = cfg.decoder(i);
        let p = format!("decoder.blocks.{i}");
        conv(&mut v, &format!("{p}.conv1.0.weight"), c, cin + skip, 3);
        bn(&mut v, &format!("{p}.conv1.1"), c);
        conv(&mut v, &format!("{p}.conv2.0.weight"), c, c, 3);
        bn(&mut v, &format!("{p}.conv2.1"), c);
    }
    conv(&mut v, "segmentation_head.0.weight", 1, cfg.decoder(4), 3);
    bias(&mut v, "segmentation_head.0.bias", 1);
    v
}

/// A Keras BatchNormalization: gamma (unless `scale=False`), beta, moving mean and variance.
fn keras_bn(out: &mut Vec<Entry>, layer: &str, c: usize, scale: bool) {
    let mut parts = vec![("beta", Kind::Param), ("moving_mean", Kind::Buffer), ("moving_variance", Kind::Buffer)];
    if scale {
        parts.insert(0, ("gamma", Kind::Param));
    }
    for (s, k) in parts {
        out.push(Entry { name: format!("{layer}/{s}:0"), shape: vec![c], kind: k });
    }
}

/// Keras conv kernel `{layer}/kernel:0` (held OIHW here) and, with `bias`, `{layer}/bias:0`.
fn keras_conv(out: &mut Vec<Entry>, layer: &str, cout: usize, cin: usize, k: usize, bias: bool) {
    conv(out, &format!("{layer}/kernel:0"), cout, cin, k);
    if bias {
        out.push(Entry { name: format!("{layer}/bias:0"), shape: vec![cout], kind: Kind::Param });
    }
}

/// Keras layer name of SE conv `i` (0 = stage 1 unit 1's reduce, 1 its expand, ...), as a fresh tf.keras session
/// auto-names them.
pub fn keras_se_name(i: usize) -> String {
    if i == 0 { "conv2d".to_string() } else { format!("conv2d_{i}") }
}

/// Keras layer names of encoder unit `u` (0-based) of stage `s` (0-based): `stage{s+1}_unit{u+1}`.
pub fn keras_unit(s: usize, u: usize) -> String {
    format!("stage{}_unit{}", s + 1, u + 1)
}

fn keras_spec(cfg: &UNetConfig) -> Vec<Entry> {
    let mut v = Vec::new();
    keras_bn(&mut v, "bn_data", 3, false);
    keras_conv(&mut v, "conv0", cfg.stem(), 3, 7, false);
    keras_bn(&mut v, "bn0", cfg.stem(), true);
    let mut cin = cfg.stem();
    let mut se = 0;
    for (s, &blocks) in LAYERS.iter().enumerate() {
        let c = cfg.stage(s);
        let r = cfg.se(c);
        for u in 0..blocks {
            let p = keras_unit(s, u);
            let bin = if u == 0 { cin } else { c };
            keras_bn(&mut v, &format!("{p}_bn1"), bin, true);
            keras_conv(&mut v, &format!("{p}_conv1"), c, bin, 3, false);
            keras_bn(&mut v, &format!("{p}_bn2"), c, true);
            keras_conv(&mut v, &format!("{p}_conv2"), c, c, 3, false);
            keras_conv(&mut v, &keras_se_name(se), r, c, 1, true);
            keras_conv(&mut v, &keras_se_name(se + 1), c, r, 1, true);
            // Keras orders layers topologically: the shortcut conv comes after the SE branch it is added to.
            if u == 0 {
                keras_conv(&mut v, &format!("{p}_sc"), c, bin, 1, false);
            }
            se += 2;
        }
        cin = c;
    }
    keras_bn(&mut v, "bn1", cin, true);
    for i in 0..5 {
        let (cin, skip) = cfg.decoder_io(i);
        let c = cfg.decoder(i);
        keras_conv(&mut v, &format!("decoder_stage{i}a_conv"), c, cin + skip, 3, false);
        keras_bn(&mut v, &format!("decoder_stage{i}a_bn"), c, true);
        keras_conv(&mut v, &format!("decoder_stage{i}b_conv"), c, c, 3, false);
        keras_bn(&mut v, &format!("decoder_stage{i}b_bn"), c, true);
    }
    keras_conv(&mut v, "final_conv", 1, cfg.decoder(4), 3, true);
    v
}

/// What a tensor is for, from its name (either architecture): drives initialisation and the golden fill.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Conv,
    /// The head's conv (Xavier/Glorot-uniform init).
    HeadConv,
    BnScale,
    BnShift,
    Bias,
    RunningMean,
    RunningVar,
    Counter,
}

pub fn role(e: &Entry) -> Role {
    let n = e.name.as_str();
    match e.kind {
        Kind::Counter => Role::Counter,
        Kind::Buffer if n.ends_with("running_var") || n.ends_with("moving_variance:0") => Role::RunningVar,
        Kind::Buffer => Role::RunningMean,
        Kind::Param if e.shape.len() == 4 && (n.starts_with("segmentation_head") || n.starts_with("final_conv")) => Role::HeadConv,
        Kind::Param if e.shape.len() == 4 => Role::Conv,
        Kind::Param if n.ends_with("/gamma:0") || n.ends_with(".weight") => Role::BnScale,
        Kind::Param if n.ends_with("/beta:0") || (n.ends_with(".bias") && !is_conv_bias(n)) => Role::BnShift,
        Kind::Param => Role::Bias,
    }
}

fn is_conv_bias(n: &str) -> bool {
    n.contains("se_module.") || n.starts_with("segmentation_head")
}

/// Number of trainable parameters (24,597,565 at width 1).
pub fn trainable_params(cfg: &UNetConfig) -> usize {
    state_dict_spec(cfg).iter().filter(|e| e.kind == Kind::Param).map(|e| e.numel()).sum()
}
