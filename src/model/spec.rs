//! The U-Net's state-dict layout: every tensor's name, shape and kind, in exactly the order of
//! `segmentation_models_pytorch.Unet("tu-legacy_seresnet34", decoder_channels=(256,128,64,32,16), classes=1)`
//! `.state_dict()` (342 entries at full width; tests/fixtures/state_dict_legacy_seresnet34.tsv).
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

/// Channel widths of a model with width divisor `k`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UNetConfig {
    /// Every channel count is divided by this (1 = the real network).
    pub width_div: usize,
}

impl Default for UNetConfig {
    fn default() -> Self {
        UNetConfig { width_div: 1 }
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
        assert!(width_div >= 1 && 16 % width_div == 0, "width divisor must be 1, 2, 4, 8 or 16");
        UNetConfig { width_div }
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

/// Every tensor of the model, in PyTorch state-dict order.
pub fn state_dict_spec(cfg: &UNetConfig) -> Vec<Entry> {
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

/// Number of trainable parameters (24,597,565 at width 1).
pub fn trainable_params(cfg: &UNetConfig) -> usize {
    state_dict_spec(cfg).iter().filter(|e| e.kind == Kind::Param).map(|e| e.numel()).sum()
}
