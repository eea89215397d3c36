//! The whole U-Net in float64 on the CPU, eval mode, from the ops' own CPU oracles (`ops::<op>::cpu`): the
//! reference `fluke check` compares the GPU network with at the default size. Same structure as `UNet::forward`
//! (module header of `model/mod.rs`); weights are read back from the GPU model.

use std::collections::HashMap;

use crate::ops::{
    add, batch_norm, channel_scale, concat, conv2d, global_avg_pool, max_pool2d, relu, sigmoid, upsample2x,
};

use super::{spec, UNet, BN_EPS};

/// An f64 tensor: shape [N, C, H, W] and data.
struct T {
    s: [usize; 4],
    d: Vec<f64>,
}

struct Net {
    w: HashMap<String, (Vec<usize>, Vec<f64>)>,
}

impl Net {
    fn p(&self, name: &str) -> &(Vec<usize>, Vec<f64>) {
        self.w.get(name).unwrap_or_else(|| panic!("model cpu: no tensor {name}"))
    }
    fn conv(&self, x: &T, name: &str, bias: Option<&str>, stride: usize, pad: usize) -> T {
        let (ws, w) = self.p(name);
        let b = bias.map(|b| &self.p(b).1[..]);
        let d = conv2d::cpu::forward(&x.d, &x.s, w, ws, b, stride, pad);
        let (oh, ow) = ((x.s[2] + 2 * pad - ws[2]) / stride + 1, (x.s[3] + 2 * pad - ws[3]) / stride + 1);
        T { s: [x.s[0], ws[0], oh, ow], d }
    }
    fn bn(&self, x: &T, prefix: &str) -> T {
        let g = |k: &str| &self.p(&format!("{prefix}.{k}")).1[..];
        let d = batch_norm::cpu::forward_eval(&x.d, x.s[0], x.s[1], x.s[2] * x.s[3], g("weight"), g("bias"), g("running_mean"), g("running_var"), BN_EPS as f64);
        T { s: x.s, d }
    }
    fn conv_bn_relu(&self, x: &T, conv: &str, bn: &str, stride: usize, pad: usize) -> T {
        let y = self.bn(&self.conv(x, &format!("{conv}.weight"), None, stride, pad), bn);
        T { s: y.s, d: relu::cpu::relu_forward(&y.d) }
    }
    fn se_block(&self, x: &T, p: &str, stride: usize, downsample: bool) -> T {
        let out = self.conv_bn_relu(x, &format!("{p}.conv1"), &format!("{p}.bn1"), stride, 1);
        let out = self.conv_bn_relu(&out, &format!("{p}.conv2"), &format!("{p}.bn2"), 1, 1);
        let [n, c, h, w] = out.s;
        let s = T { s: [n, c, 1, 1], d: global_avg_pool::cpu::global_avg_pool_forward(&out.d, n * c, h * w) };
        let s = self.conv(&s, &format!("{p}.se_module.fc1.weight"), Some(&format!("{p}.se_module.fc1.bias")), 1, 0);
        let s = T { s: s.s, d: relu::cpu::relu_forward(&s.d) };
        let s = self.conv(&s, &format!("{p}.se_module.fc2.weight"), Some(&format!("{p}.se_module.fc2.bias")), 1, 0);
        let s = sigmoid::cpu::sigmoid_forward(&s.d);
        let out = channel_scale::cpu::channel_scale_forward(&out.d, &s, h * w);
        let short = if downsample {
            let sc = self.conv(x, &format!("{p}.downsample.0.weight"), None, stride, 0);
            self.bn(&sc, &format!("{p}.downsample.1")).d
        } else {
            x.d.clone()
        };
        T { s: [n, c, h, w], d: relu::cpu::relu_forward(&add::cpu::add_forward(&out, &short)) }
    }
}

/// Eval-mode logits [N, 1, H, W] of `model` for a normalised input `x` [N, 3, H, W], in float64.
pub fn forward_eval(model: &UNet, x: &[f32], shape: [usize; 4]) -> Vec<f64> {
    let w = model
        .entries
        .iter()
        .filter(|e| e.kind != spec::Kind::Counter)
        .map(|e| (e.name.clone(), (e.shape.clone(), model.tensor(&e.name).to_vec().iter().map(|&v| v as f64).collect())))
        .collect();
    let net = Net { w };
    let e = "encoder.model";
    let x = T { s: shape, d: x.iter().map(|&v| v as f64).collect() };
    let x0 = net.conv_bn_relu(&x, &format!("{e}.layer0.conv1"), &format!("{e}.layer0.bn1"), 2, 3);
    let [n, c, h, w] = x0.s;
    let (pooled, _) = max_pool2d::cpu::max_pool2d_forward(&x0.d, n * c, h, w, 3, 2, 0, true);
    let (ph, pw) = (max_pool2d::output_size(h, 3, 2, 0, true), max_pool2d::output_size(w, 3, 2, 0, true));
    let mut y = T { s: [n, c, ph, pw], d: pooled };
    let mut feats = vec![x0];
    for (s, &blocks) in spec::LAYERS.iter().enumerate() {
        for b in 0..blocks {
            let stride = if b == 0 && s > 0 { 2 } else { 1 };
            y = net.se_block(&y, &format!("{e}.layer{}.{b}", s + 1), stride, b == 0 && s > 0);
        }
        feats.push(T { s: y.s, d: y.d.clone() });
    }
    let mut d = feats.pop().unwrap();
    for i in 0..5 {
        let [n, c, h, w] = d.s;
        let up = T { s: [n, c, 2 * h, 2 * w], d: upsample2x::cpu::upsample2x_forward(&d.d, n * c, h, w) };
        let inp = if i < 4 {
            let skip = &feats[3 - i];
            T { s: [n, c + skip.s[1], 2 * h, 2 * w], d: concat::cpu::concat_forward(&up.d, &skip.d, n, c, skip.s[1], 4 * h * w) }
        } else {
            up
        };
        let p = format!("decoder.blocks.{i}");
        let a = net.conv_bn_relu(&inp, &format!("{p}.conv1.0"), &format!("{p}.conv1.1"), 1, 1);
        d = net.conv_bn_relu(&a, &format!("{p}.conv2.0"), &format!("{p}.conv2.1"), 1, 1);
    }
    net.conv(&d, "segmentation_head.0.weight", Some("segmentation_head.0.bias"), 1, 1).d
}
