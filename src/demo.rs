//! `fluke demo`: the README's main job end to end on an embedded default. Without data it synthesises a small fluke
//! set, trains a reduced model (width divisor and size small enough for a software GPU), predicts on held-out
//! photos and leaves everything in one folder.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;

use crate::gpu::Gpu;
use crate::predict::PredictConfig;
use crate::train::TrainConfig;

#[allow(clippy::too_many_arguments)]
pub fn demo(gpu: &Arc<Gpu>, images: Option<PathBuf>, masks: Option<PathBuf>, out: &Path, epochs: usize, w: u32, h: u32, width_div: usize) -> Result<()> {
    std::fs::create_dir_all(out)?;
    let (images, masks, holdout) = match (images, masks) {
        (Some(i), Some(m)) => (i.clone(), m, i),
        (None, None) => {
            let train_dir = out.join("data/train");
            let hold_dir = out.join("data/holdout");
            eprintln!("demo: synthesising 64 training and 12 held-out fluke photos in {}", out.join("data").display());
            crate::data::synth::write_dataset(&train_dir, 64, 7)?;
            crate::data::synth::write_dataset(&hold_dir, 12, 8)?;
            (train_dir.join("images"), train_dir.join("masks"), hold_dir.join("images"))
        }
        _ => anyhow::bail!("demo: give both --images and --masks, or neither (to use synthetic data)"),
    };
    let run = out.join("run");
    if run.join("state.json").exists() {
        std::fs::remove_dir_all(&run)?; // a demo always starts fresh
    }
    let cfg = TrainConfig {
        images,
        masks,
        out: run.clone(),
        width: w,
        height: h,
        batch: 8,
        epochs,
        width_div,
        plateau_patience: 3,
        early_stop_patience: 6,
        val_fraction: 0.15,
        ..TrainConfig::default()
    };
    let t0 = std::time::Instant::now();
    crate::train::train(gpu, &cfg, false)?;
    let pred = PredictConfig {
        weights: run.join("best.safetensors"),
        input: holdout,
        out: out.join("predictions"),
        size: Some((w, h)),
        ..PredictConfig::default()
    };
    crate::predict::predict(gpu, &pred)?;
    println!("\ndemo finished in {:.0} s. Look at:", t0.elapsed().as_secs_f64());
    println!("  {}   loss and Dice per epoch", run.join("curves.png").display());
    println!("  {}   photo | true mask | predicted mask, per epoch", run.join("overlays").display());
    println!("  {}   metrics per epoch", run.join("metrics.csv").display());
    println!("  {}   crops of every held-out photo", out.join("predictions/sheet.png").display());
    println!("  {}   masks, overlays, cut-outs (RGBA) and crops", out.join("predictions").display());
    Ok(())
}
