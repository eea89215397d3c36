//! Evaluation: loss, soft Dice over a whole set, Dice and IoU at threshold 0.5 (over the set and per image).
//! Used after every training epoch and by `fluke eval`.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::data::{Batch, Loader, Pair};
use crate::gpu::Gpu;
use crate::graph::{Tape, Var};
use crate::model::UNet;
use crate::ops::bce_dice::bce_dice_forward;
use crate::tensor::Tensor;

/// Metrics of one pass over a set.
#[derive(Clone, Copy, Debug, Default)]
pub struct SetMetrics {
    pub loss: f64,
    /// Soft Dice over the whole set: (2 sum(p t) + 1) / (sum p + sum t + 1).
    pub dice: f64,
    /// Dice and IoU of the masks thresholded at 0.5, over the whole set.
    pub dice_hard: f64,
    pub iou_hard: f64,
    pub images: usize,
}

/// Dice and IoU of one image at threshold 0.5.
#[derive(Clone, Debug)]
pub struct ImageMetrics {
    pub stem: String,
    pub dice: f64,
    pub iou: f64,
}

/// A sample kept for overlays: (normalised photo CHW, true mask, probabilities).
pub type Kept = (Vec<f32>, Vec<f32>, Vec<f32>);

/// Hard Dice and IoU from counts (smoothed by 1, so two empty masks score 1).
fn hard_scores(inter: f64, pred: f64, truth: f64) -> (f64, f64) {
    ((2.0 * inter + 1.0) / (pred + truth + 1.0), (inter + 1.0) / (pred + truth - inter + 1.0))
}

/// Upload a CPU batch: photos [N, 3, H, W] and masks [N, 1, H, W]. Shared by evaluation and training (train.rs
/// imports it from here: the training job sits above evaluation).
pub fn upload_batch(gpu: &Arc<Gpu>, b: &Batch, w: u32, h: u32) -> (Tensor, Tensor) {
    let (w, h) = (w as usize, h as usize);
    let x = Tensor::from_slice(gpu, &[b.n, 3, h, w], &b.images);
    let t = Tensor::from_slice(gpu, &[b.n, 1, h, w], &b.masks);
    (x, t)
}

/// Evaluate in evaluation mode (running BN statistics, nothing recorded). Keeps up to `keep` samples for overlays.
pub fn evaluate(model: &UNet, pairs: &[Pair], w: u32, h: u32, batch: usize, keep: usize) -> (SetMetrics, Vec<ImageMetrics>, Vec<Kept>) {
    let gpu = &model.gpu;
    let loader = Loader::new(pairs.to_vec(), w, h, batch, 0, 0, false, false, false);
    let (mut sum_pt, mut sum_p, mut sum_t, mut loss_sum) = (0f64, 0f64, 0f64, 0f64);
    let (mut set_inter, mut set_pred) = (0f64, 0f64);
    let mut per_image = Vec::new();
    let mut kept = Vec::new();
    let plane = (w * h) as usize;
    let mut images = 0;
    for b in loader {
        let (x, t) = upload_batch(gpu, &b, w, h);
        let tape = Tape::inference();
        let vars = model.param_vars(&tape);
        let z = model.forward(&tape, &vars, &Var::constant(x), false);
        let (loss, _, _) = bce_dice_forward(&z.t, &t);
        let probs = crate::ops::sigmoid::sigmoid_forward(&z.t).to_vec();
        loss_sum += loss.to_vec()[0] as f64 * b.n as f64;
        for i in 0..b.n {
            let (p, m) = (&probs[i * plane..(i + 1) * plane], &b.masks[i * plane..(i + 1) * plane]);
            let (mut inter, mut pred, mut truth) = (0f64, 0f64, 0f64);
            for (&p, &t) in p.iter().zip(m) {
                let (p, t) = (p as f64, t as f64);
                sum_pt += p * t;
                sum_p += p;
                sum_t += t;
                truth += t;
                if p > 0.5 {
                    pred += 1.0;
                    inter += t;
                }
            }
            set_inter += inter;
            set_pred += pred;
            let (dice, iou) = hard_scores(inter, pred, truth);
            per_image.push(ImageMetrics { stem: b.stems[i].clone(), dice, iou });
            if kept.len() < keep {
                kept.push((b.images[i * 3 * plane..(i + 1) * 3 * plane].to_vec(), m.to_vec(), p.to_vec()));
            }
        }
        images += b.n;
    }
    let (dice_hard, iou_hard) = hard_scores(set_inter, set_pred, sum_t);
    let m = SetMetrics {
        loss: loss_sum / images.max(1) as f64,
        dice: (2.0 * sum_pt + 1.0) / (sum_p + sum_t + 1.0),
        dice_hard,
        iou_hard,
        images,
    };
    (m, per_image, kept)
}

/// `fluke eval`: print set metrics, write per-image CSV.
#[allow(clippy::too_many_arguments)]
pub fn eval_command(
    gpu: &Arc<Gpu>,
    weights: &Path,
    input_order: Option<crate::model::keras::InputOrder>,
    images: &Path,
    masks: &Path,
    size: Option<(u32, u32)>,
    batch: usize,
    csv: &Path,
) -> Result<()> {
    let (mut model, meta_size) = UNet::from_checkpoint(gpu, weights)?;
    model.set_input_order(input_order, weights)?;
    // The weights are final: BN folded into the convolutions, as `fluke predict` runs them.
    model.freeze();
    let (w, h) = size.or(meta_size).unwrap_or(crate::data::DEFAULT_SIZE);
    model.check_fits(batch, w, h)?;
    crate::validate::ensure(&model.gpu, &model.cfg, w as usize, h as usize, batch)?;
    let (pairs, problems) = crate::data::scan_pairs(images, masks)?;
    for p in &problems {
        eprintln!("warning: {p}");
    }
    let (m, per_image, _) = evaluate(&model, &pairs, w, h, batch, 0);
    let mut f = std::io::BufWriter::new(std::fs::File::create(csv).with_context(|| format!("{}: cannot write", csv.display()))?);
    writeln!(f, "image,dice,iou")?;
    for r in &per_image {
        writeln!(f, "{},{:.6},{:.6}", r.stem, r.dice, r.iou)?;
    }
    f.flush()?;
    println!(
        "{} images at {w}x{h}: loss {:.4}  soft Dice {:.4}  Dice@0.5 {:.4}  IoU@0.5 {:.4}  (per image: {})",
        m.images,
        m.loss,
        m.dice,
        m.dice_hard,
        m.iou_hard,
        csv.display()
    );
    Ok(())
}
