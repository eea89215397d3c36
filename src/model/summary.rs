//! `fluke info --model`: a per-layer table like Keras' `model.summary()` (name, output shape, parameters, MACs).
//!
//! Parameters come from the state-dict layout (`spec.rs`), so the total is the real count (24,597,565 trainable at
//! full width). MACs count conv and SE-FC multiply-adds: a conv with weight [Co,Ci,k,k] producing an Ho x Wo map
//! costs Ho*Wo*Co*Ci*k*k; SE FCs run on 1x1 maps. At 384x192 the total is 8,790,894,080 (8.79 GMACs).

use super::spec::{keras_se_name, keras_unit, state_dict_spec, Arch, Kind, UNetConfig, LAYERS};

pub struct Row {
    pub name: String,
    /// Output shape for one image: [C, H, W].
    pub out: [usize; 3],
    pub params: usize,
    pub macs: u64,
}

/// The table for one image of `width` x `height`.
pub fn summary(cfg: &UNetConfig, width: usize, height: usize) -> Vec<Row> {
    if cfg.arch == Arch::Keras {
        return keras_summary(cfg, width, height);
    }
    let spec = state_dict_spec(cfg);
    let row = |name: &str, prefix: &str, out: [usize; 3]| -> Row {
        let mut params = 0;
        let mut macs = 0u64;
        for e in spec.iter().filter(|e| e.kind == Kind::Param && e.name.starts_with(prefix)) {
            params += e.numel();
            if e.shape.len() == 4 {
                let spatial = if e.name.contains("se_module") { 1 } else { out[1] * out[2] };
                macs += (e.numel() * spatial) as u64;
            }
        }
        Row { name: name.to_string(), out, params, macs }
    };
    let (h, w) = (height, width);
    let mut rows = vec![Row { name: "input".into(), out: [3, h, w], params: 0, macs: 0 }];
    rows.push(row("encoder.layer0 (conv7x7/2, bn, relu)", "encoder.model.layer0.", [cfg.stem(), h / 2, w / 2]));
    rows.push(Row { name: "encoder.pool0 (max 3x3/2, ceil)".into(), out: [cfg.stem(), h / 4, w / 4], params: 0, macs: 0 });
    let mut scale = 4;
    for (s, &blocks) in LAYERS.iter().enumerate() {
        if s > 0 {
            scale *= 2;
        }
        for b in 0..blocks {
            let what = if b == 0 && s > 0 { "SE basic block, /2, downsample" } else { "SE basic block" };
            rows.push(row(
                &format!("encoder.layer{}.{b} ({what})", s + 1),
                &format!("encoder.model.layer{}.{b}.", s + 1),
                [cfg.stage(s), h / scale, w / scale],
            ));
        }
    }
    for i in 0..5 {
        let scale = 16 >> i;
        let skip = if i < 4 { "up2x, concat skip, 2x conv-bn-relu" } else { "up2x, 2x conv-bn-relu" };
        rows.push(row(&format!("decoder.blocks.{i} ({skip})"), &format!("decoder.blocks.{i}."), [cfg.decoder(i), h / scale, w / scale]));
    }
    rows.push(row("segmentation_head (conv3x3 + bias)", "segmentation_head.", [1, h, w]));
    rows
}

/// The Keras architecture's table: rows gather tensors by Keras layer-name prefixes (SE convs by their index).
fn keras_summary(cfg: &UNetConfig, width: usize, height: usize) -> Vec<Row> {
    let spec = state_dict_spec(cfg);
    let row = |name: &str, prefixes: &[String], out: [usize; 3]| -> Row {
        let mut params = 0;
        let mut macs = 0u64;
        for e in spec.iter().filter(|e| e.kind == Kind::Param && prefixes.iter().any(|p| e.name.starts_with(p.as_str()))) {
            params += e.numel();
            if e.shape.len() == 4 {
                let spatial = if e.name.starts_with("conv2d") { 1 } else { out[1] * out[2] };
                macs += (e.numel() * spatial) as u64;
            }
        }
        Row { name: name.to_string(), out, params, macs }
    };
    let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let (h, w) = (height, width);
    let mut rows = vec![Row { name: "input (raw pixels, BGR)".into(), out: [3, h, w], params: 0, macs: 0 }];
    rows.push(row("bn_data (input BN, no scale)", &p(&["bn_data/"]), [3, h, w]));
    rows.push(row("conv0 (7x7/2), bn0, relu0", &p(&["conv0/", "bn0/"]), [cfg.stem(), h / 2, w / 2]));
    rows.push(Row { name: "pooling0 (max 3x3/2, pad 1)".into(), out: [cfg.stem(), h / 4, w / 4], params: 0, macs: 0 });
    let (mut scale, mut se) = (4, 0);
    for (s, &units) in LAYERS.iter().enumerate() {
        if s > 0 {
            scale *= 2;
        }
        for u in 0..units {
            let what = match (u, s) {
                (0, 0) => "pre-act SE block, 1x1 shortcut",
                (0, _) => "pre-act SE block, /2, 1x1 shortcut",
                _ => "pre-act SE block",
            };
            let unit = keras_unit(s, u);
            let prefixes = vec![format!("{unit}_"), format!("{}/", keras_se_name(se)), format!("{}/", keras_se_name(se + 1))];
            rows.push(row(&format!("{unit} ({what})"), &prefixes, [cfg.stage(s), h / scale, w / scale]));
            se += 2;
        }
    }
    rows.push(row("bn1, relu1", &p(&["bn1/"]), [cfg.stage(3), h / 32, w / 32]));
    for i in 0..5 {
        let scale = 16 >> i;
        let skip = if i < 4 { "up2x, concat skip, 2x conv-bn-relu" } else { "up2x, 2x conv-bn-relu" };
        rows.push(row(&format!("decoder_stage{i} ({skip})"), &[format!("decoder_stage{i}")], [cfg.decoder(i), h / scale, w / scale]));
    }
    rows.push(row("final_conv (conv3x3 + bias)", &p(&["final_conv/"]), [1, h, w]));
    rows
}

/// Render the table with totals.
pub fn render(cfg: &UNetConfig, width: usize, height: usize) -> String {
    let rows = summary(cfg, width, height);
    let mut s = String::new();
    let arch = match cfg.arch {
        Arch::Smp => "smp Unet(tu-legacy_seresnet34)",
        Arch::Keras => "Keras segmentation_models Unet(seresnet34)",
    };
    s += &format!("{arch}, width divisor {}, input {width}x{height} (W x H), per image\n", cfg.width_div);
    s += &format!("{:<58} {:>18} {:>12} {:>16}\n", "layer", "output (C,H,W)", "params", "MACs");
    s += &format!("{}\n", "-".repeat(107));
    for r in &rows {
        let shape = format!("{}x{}x{}", r.out[0], r.out[1], r.out[2]);
        s += &format!("{:<58} {:>18} {:>12} {:>16}\n", r.name, shape, group(r.params as u64), group(r.macs));
    }
    let params: usize = rows.iter().map(|r| r.params).sum();
    let macs: u64 = rows.iter().map(|r| r.macs).sum();
    let spec = state_dict_spec(cfg);
    let buffers: usize = spec.iter().filter(|e| e.kind == Kind::Buffer).map(|e| e.numel()).sum();
    s += &format!("{}\n", "-".repeat(107));
    s += &format!("Trainable params: {}\n", group(params as u64));
    s += &format!("Non-trainable (BN running statistics): {}\n", group(buffers as u64));
    s += &format!("Total params: {}\n", group((params + buffers) as u64));
    s += &format!("Total MACs: {} ({:.2} GMACs), about {:.1} GFLOP forward\n", group(macs), macs as f64 / 1e9, 2.0 * macs as f64 / 1e9);
    s
}

/// Totals (trainable params, MACs) for one image.
pub fn totals(cfg: &UNetConfig, width: usize, height: usize) -> (usize, u64) {
    let rows = summary(cfg, width, height);
    (rows.iter().map(|r| r.params).sum(), rows.iter().map(|r| r.macs).sum())
}

fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// One convolution of the network, as the kernels see it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConvShape {
    pub cin: usize,
    pub cout: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
    /// Input spatial size (H, W).
    pub h: usize,
    pub w: usize,
    pub bias: bool,
}

impl ConvShape {
    pub fn out_hw(&self) -> (usize, usize) {
        ((self.h + 2 * self.pad - self.k) / self.stride + 1, (self.w + 2 * self.pad - self.k) / self.stride + 1)
    }
    /// Multiply-adds for one image.
    pub fn macs(&self) -> u64 {
        let (oh, ow) = self.out_hw();
        (oh * ow * self.cout * self.cin * self.k * self.k) as u64
    }
}

/// Every convolution of the U-Net for one `width` x `height` image, in forward order.
pub fn conv_layers(cfg: &UNetConfig, width: usize, height: usize) -> Vec<ConvShape> {
    let mut v = Vec::new();
    let c = |cin, cout, k, stride, pad, h, w, bias| ConvShape { cin, cout, k, stride, pad, h, w, bias };
    let keras = cfg.arch == Arch::Keras;
    if keras {
        v.push(c(3, 3, 1, 1, 0, height, width, true)); // the fixed input map to raw BGR pixels
    }
    v.push(c(3, cfg.stem(), 7, 2, 3, height, width, false));
    let (mut h, mut w) = (height / 4, width / 4);
    let mut cin = cfg.stem();
    for (s, &blocks) in LAYERS.iter().enumerate() {
        let ch = cfg.stage(s);
        for b in 0..blocks {
            let stride = if b == 0 && s > 0 { 2 } else { 1 };
            let bin = if b == 0 { cin } else { ch };
            if keras && b == 0 {
                v.push(c(bin, ch, 1, stride, 0, h, w, false)); // the 1x1 shortcut, every stage's unit 1
            }
            v.push(c(bin, ch, 3, stride, 1, h, w, false));
            let (oh, ow) = (h / stride, w / stride);
            v.push(c(ch, ch, 3, 1, 1, oh, ow, false));
            v.push(c(ch, cfg.se(ch), 1, 1, 0, 1, 1, true));
            v.push(c(cfg.se(ch), ch, 1, 1, 0, 1, 1, true));
            if b == 0 && s > 0 && !keras {
                v.push(c(bin, ch, 1, 2, 0, h, w, false));
            }
            h = oh;
            w = ow;
        }
        cin = ch;
    }
    for i in 0..5 {
        let (cin, skip) = cfg.decoder_io(i);
        h *= 2;
        w *= 2;
        v.push(c(cin + skip, cfg.decoder(i), 3, 1, 1, h, w, false));
        v.push(c(cfg.decoder(i), cfg.decoder(i), 3, 1, 1, h, w, false));
    }
    v.push(c(cfg.decoder(4), 1, 3, 1, 1, h, w, true));
    v
}
