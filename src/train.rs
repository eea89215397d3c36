//! Training: the notebook's workflow on the engine.
//!
//! One step: forward in training mode (BN batch statistics) -> BCE + Dice loss -> backward on the tape -> read the
//! loss (the only host round trip) -> if finite, Adam. An epoch runs the training set (augmented, shuffled, decoded
//! on CPU threads ahead of the GPU), then evaluates the validation set (soft Dice over the whole set, Dice and IoU
//! at threshold 0.5), then schedules (ReduceLROnPlateau, EarlyStopping, both maximising val Dice) and commits.
//!
//! The run folder (`--out`):
//!   config.json           every setting (so `--resume DIR` needs nothing else)
//!   state.json            epoch, lr, best, plateau and early-stop counters, history
//!   last.safetensors      weights after the last finished epoch (loads in PyTorch with strict=True)
//!   optimizer.safetensors Adam moments and step
//!   best.safetensors      weights with the best validation Dice
//!   metrics.csv, curves.png, overlays/epoch_NNN.png
//! Commit protocol (crash safety): last, optimizer and state are first written completely as `*.next` (each
//! atomically), then renamed into place, state last. On start, a complete `state.json.next` means the commit was
//! cut short and is rolled forward; stray `.next` files without it are discarded. So a kill at any moment leaves a
//! consistent, loadable generation, and resume repeats the interrupted epoch exactly (the data order and
//! augmentation are functions of (seed, epoch)), giving bit-identical weights.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::data::{self, Loader};
use crate::gpu::{Gpu, Plan};
use crate::graph::{Tape, Var};
use crate::model::{UNet, UNetConfig};
use crate::evaluate::{evaluate, upload_batch};
use crate::ops::bce_dice::bce_dice;
use crate::optim::Adam;
use crate::plot::EpochRow;
use crate::tensor::Tensor;

/// Every setting of a run (written to config.json).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainConfig {
    pub images: PathBuf,
    pub masks: PathBuf,
    pub val_images: Option<PathBuf>,
    pub val_masks: Option<PathBuf>,
    pub val_fraction: f64,
    pub out: PathBuf,
    pub width: u32,
    pub height: u32,
    pub batch: usize,
    pub epochs: usize,
    pub lr: f64,
    pub min_lr: f64,
    pub plateau_factor: f64,
    pub plateau_patience: usize,
    pub early_stop_patience: usize,
    pub seed: u64,
    pub augment: bool,
    pub width_div: usize,
    /// Which U-Net (runs written before there were two are smp's).
    #[serde(default)]
    pub arch: crate::model::Arch,
    /// Keras architecture: the pixel order of its input (None: BGR, or what --init's checkpoint records).
    #[serde(default)]
    pub input_order: Option<crate::model::keras::InputOrder>,
    pub init: Option<PathBuf>,
    pub strict: bool,
    /// Stop each epoch after this many steps (demos and tests); None = the whole set.
    pub max_steps_per_epoch: Option<usize>,
    /// Validation images drawn in each epoch's overlay PNG.
    pub overlays: usize,
}

/// The defaults, which are also `fluke train`'s (its options take theirs from here).
impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            images: PathBuf::new(),
            masks: PathBuf::new(),
            val_images: None,
            val_masks: None,
            val_fraction: 0.1,
            out: PathBuf::from("runs/fluke"),
            width: data::DEFAULT_SIZE.0,
            height: data::DEFAULT_SIZE.1,
            batch: 16,
            epochs: 40,
            lr: 1e-3,
            min_lr: 1e-6,
            plateau_factor: 0.5,
            plateau_patience: 5,
            early_stop_patience: 10,
            seed: 0,
            augment: true,
            width_div: UNetConfig::default().width_div,
            arch: crate::model::Arch::Smp,
            input_order: None,
            init: None,
            strict: false,
            max_steps_per_epoch: None,
            overlays: 4,
        }
    }
}

impl TrainConfig {
    /// Reject settings that would panic or train on nonsense later (a NaN learning rate trains "fine" and yields NaN
    /// weights). Checked at the start of every run, resumed ones too, since config.json may have been edited.
    pub fn validate(&self) -> Result<()> {
        crate::model::check_input_size(self.width, self.height).context("--size")?;
        crate::model::check_width(self.width_div)?;
        if self.batch == 0 {
            bail!("--batch 0: the batch size must be at least 1");
        }
        if self.epochs == 0 {
            bail!("--epochs 0: nothing to train; use --epochs 1 or more");
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            bail!("--lr {}: the learning rate must be a positive number (e.g. 1e-3)", self.lr);
        }
        if !(self.min_lr.is_finite() && self.min_lr >= 0.0) {
            bail!("--min-lr {}: must be a number >= 0 (e.g. 1e-6)", self.min_lr);
        }
        if !(self.plateau_factor > 0.0 && self.plateau_factor <= 1.0) {
            bail!("--plateau-factor {}: must be in (0, 1] (e.g. 0.5)", self.plateau_factor);
        }
        if !(0.0..1.0).contains(&self.val_fraction) {
            bail!("--val-fraction {}: must be in [0, 1) (e.g. 0.1), or pass --val-images/--val-masks", self.val_fraction);
        }
        Ok(())
    }
}

/// Scheduler and bookkeeping state, committed after every epoch.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TrainState {
    /// Epochs finished.
    pub epoch: usize,
    pub lr: f64,
    pub best_val_dice: f64,
    pub best_epoch: usize,
    /// Epochs without improvement, for ReduceLROnPlateau and EarlyStopping.
    pub plateau_wait: usize,
    pub early_wait: usize,
    pub steps: u64,
    pub stopped_early: bool,
    pub history: Vec<EpochRow>,
}

/// Outcome of one training step.
pub struct StepResult {
    pub loss: f64,
    pub dice: f64,
}

/// Forward + loss + backward, then Adam if the loss is finite. Err (weights untouched) on NaN/Inf.
pub fn train_step(model: &UNet, opt: &mut Adam, x: &Tensor, t: &Tensor) -> Result<StepResult> {
    let gpu = &model.gpu;
    let tape = Tape::new();
    let vars = model.param_vars(&tape);
    let z = model.forward(&tape, &vars, &Var::constant(x.clone()), true);
    let (loss, dice) = bce_dice(&tape, &z, t);
    drop(z);
    let mut grads = tape.backward(&loss, Tensor::full(gpu, &[1], 1.0));
    let mut by_name = HashMap::new();
    for (name, v) in &vars {
        let g = grads.take(v).unwrap_or_else(|| panic!("train_step: no gradient reached {name}"));
        by_name.insert(name.clone(), g);
    }
    let l = loss.t.to_vec()[0] as f64;
    let d = dice.to_vec()[0] as f64;
    if !l.is_finite() {
        bail!("loss is {l}");
    }
    opt.update(model.params(), &by_name);
    Ok(StepResult { loss: l, dice: d })
}

/// What one training step (forward, loss, backward, Adam) dispatches at this batch shape (`Plan`: each entry point
/// with each distinct `Params`, in the order of first dispatch), found by a dry run (`Gpu::dry_run`: nothing runs on
/// the device); the BN counters the dry forward bumped are put back. What `Gpu::warm_up` compiles ahead of the first
/// step.
pub fn step_plan(model: &UNet, batch: usize, width: usize, height: usize) -> Plan {
    let gpu = &model.gpu;
    let counters = model.num_batches_tracked.borrow().clone();
    let plan = gpu.dry_run(|| {
        let x = Tensor::zeros(gpu, &[batch, 3, height, width]);
        let t = Tensor::zeros(gpu, &[batch, 1, height, width]);
        let mut opt = Adam::new(model.params(), 1e-3);
        let _ = train_step(model, &mut opt, &x, &t);
    });
    *model.num_batches_tracked.borrow_mut() = counters;
    plan
}

fn next_name(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".next");
    PathBuf::from(s)
}

/// The run folder's files.
pub struct RunFiles {
    pub dir: PathBuf,
}

impl RunFiles {
    pub fn config(&self) -> PathBuf {
        self.dir.join("config.json")
    }
    pub fn state(&self) -> PathBuf {
        self.dir.join("state.json")
    }
    pub fn last(&self) -> PathBuf {
        self.dir.join("last.safetensors")
    }
    pub fn best(&self) -> PathBuf {
        self.dir.join("best.safetensors")
    }
    pub fn optimizer(&self) -> PathBuf {
        self.dir.join("optimizer.safetensors")
    }
    fn committed(&self) -> [PathBuf; 3] {
        [self.last(), self.optimizer(), self.state()]
    }

    /// Finish or discard an interrupted commit (see the module header), and delete a killed writer's temp files
    /// (`lock`, on this folder, is what makes every temp file in it a dead run's).
    pub fn recover(&self, lock: &crate::fsutil::RunLock) -> Result<()> {
        let state_next = next_name(&self.state());
        if state_next.exists() {
            for f in self.committed() {
                let n = next_name(&f);
                if n.exists() {
                    std::fs::rename(&n, &f).with_context(|| format!("{}: cannot finish interrupted commit", n.display()))?;
                }
            }
        } else {
            for f in self.committed() {
                let _ = std::fs::remove_file(next_name(&f));
            }
        }
        // Half-written temp files of the killed run (weights, optimizer, pictures) are garbage, up to 2x the model.
        lock.remove_temp_files(&self.dir)?;
        let overlays = self.dir.join("overlays");
        if overlays.is_dir() {
            lock.remove_temp_files(&overlays)?;
        }
        Ok(())
    }

    /// Write weights, optimizer and state as one generation.
    pub fn commit(&self, model: &UNet, opt: &Adam, state: &TrainState, meta: &HashMap<String, String>) -> Result<()> {
        model.save(&next_name(&self.last()), meta)?;
        opt.save(&next_name(&self.optimizer()))?;
        crate::fsutil::atomic_write(&next_name(&self.state()), serde_json::to_string_pretty(state)?.as_bytes())?;
        for f in self.committed() {
            std::fs::rename(next_name(&f), &f).with_context(|| format!("{}: cannot commit checkpoint", f.display()))?;
        }
        Ok(())
    }
}

fn metrics_csv(rows: &[EpochRow]) -> String {
    let mut s = String::from("epoch,lr,train_loss,train_dice,val_loss,val_dice,seconds,images_per_s\n");
    for r in rows {
        s += &format!(
            "{},{:e},{:.6},{:.6},{:.6},{:.6},{:.2},{:.3}\n",
            r.epoch, r.lr, r.train_loss, r.train_dice, r.val_loss, r.val_dice, r.seconds, r.images_per_s
        );
    }
    s
}

/// Load config.json of a run (for --resume).
pub fn load_config(dir: &Path) -> Result<TrainConfig> {
    let p = dir.join("config.json");
    let text = std::fs::read_to_string(&p).with_context(|| {
        format!("{}: cannot read the run's config; --resume needs a run folder written by `fluke train --out`", p.display())
    })?;
    let mut cfg: TrainConfig =
        serde_json::from_str(&text).with_context(|| format!("{}: not a valid fluke config", p.display()))?;
    // The run lives where it is now: a folder that was moved or copied must not resume (and write) at its old path.
    cfg.out = dir.to_path_buf();
    Ok(cfg)
}

/// Train (or resume) a run. Returns the final state.
pub fn train(gpu: &Arc<Gpu>, cfg: &TrainConfig, resume: bool) -> Result<TrainState> {
    cfg.validate()?;
    std::fs::create_dir_all(&cfg.out).with_context(|| format!("{}: cannot create the run folder (fix: --out must name a folder, new or existing)", cfg.out.display()))?;
    let lock = crate::fsutil::RunLock::acquire(&cfg.out)?;
    let files = RunFiles { dir: cfg.out.clone() };

    // Data: scan and report problems up front.
    let (pairs, problems) = data::scan_pairs(&cfg.images, &cfg.masks)?;
    let (train_pairs, val_pairs, all_problems) = match (&cfg.val_images, &cfg.val_masks) {
        (Some(vi), Some(vm)) => {
            let (vp, vprob) = data::scan_pairs(vi, vm)?;
            let mut p = problems;
            p.extend(vprob);
            (pairs, vp, p)
        }
        (None, None) => {
            let (t, v) = data::split(pairs, cfg.val_fraction, cfg.seed);
            (t, v, problems)
        }
        _ => bail!("--val-images and --val-masks go together: give both or neither"),
    };
    if !all_problems.is_empty() {
        for p in &all_problems {
            eprintln!("warning: {p}");
        }
        eprintln!("{} file(s) with problems were left out", all_problems.len());
        if cfg.strict {
            bail!(
                "{} data problem(s) found and --strict is set (listed above; fix: repair or remove those files, or run \
                 without --strict to train on the usable pairs only)",
                all_problems.len()
            );
        }
    }
    if train_pairs.is_empty() {
        bail!("no training images left after the validation split; add photos or lower --val-fraction");
    }
    if val_pairs.is_empty() {
        bail!("the validation set is empty; raise --val-fraction or pass --val-images/--val-masks");
    }

    // Model and optimizer.
    let mut model = UNet::new(gpu, UNetConfig::with_arch(cfg.width_div, cfg.arch), cfg.seed);
    model.check_fits(cfg.batch, cfg.width, cfg.height)?;
    // lavapipe with a cold shader cache: a second device compiles the step's kernels from the back while the kernel
    // check and the first step compile them from the front (src/gpu/warm_up.rs). Stopped after the first step.
    let (w, h) = (cfg.width as usize, cfg.height as usize);
    let mut warm_up = gpu.warm_up(crate::validate::check_plan(gpu, &model.cfg, w, h, cfg.batch).then(step_plan(&model, cfg.batch, w, h)));
    crate::validate::ensure(gpu, &model.cfg, w, h, cfg.batch)?;
    let mut opt = Adam::new(model.params(), cfg.lr);
    let mut state = TrainState { lr: cfg.lr, best_val_dice: f64::NEG_INFINITY, ..Default::default() };
    if resume {
        files.recover(&lock)?;
        if files.state().exists() {
            state = serde_json::from_str(&std::fs::read_to_string(files.state())?)
                .with_context(|| {
                    format!(
                        "{}: damaged run state (fix: restore the file, or start a new run from these weights with \
                         `fluke train --init {}` and another --out)",
                        files.state().display(),
                        files.last().display()
                    )
                })?;
            model.load(&files.last())?;
            opt.load(&files.optimizer())?;
            opt.lr = state.lr;
            eprintln!("resuming {} after epoch {} (lr {:e})", cfg.out.display(), state.epoch, state.lr);
        } else {
            eprintln!("nothing committed yet in {}: starting from the beginning", cfg.out.display());
        }
    } else {
        if files.state().exists() {
            bail!(
                "{} already holds a run; continue it with `fluke train --resume {}` or choose another --out",
                cfg.out.display(),
                cfg.out.display()
            );
        }
        if let Some(init) = &cfg.init {
            let mode = model.load(init)?;
            eprintln!("initialised from {} ({mode:?})", init.display());
        }
        if let Some(order) = cfg.input_order {
            model.input_order = order;
        }
        crate::fsutil::atomic_write(&files.config(), serde_json::to_string_pretty(cfg)?.as_bytes())?;
    }
    let meta: HashMap<String, String> = [(crate::model::weights::SIZE_KEY.to_string(), format!("{}x{}", cfg.width, cfg.height))].into();
    eprintln!(
        "training on {} ({:?}): {} train / {} val images at {}x{}, batch {}, {} width divisor {}",
        gpu.info.name, gpu.info.backend, train_pairs.len(), val_pairs.len(), cfg.width, cfg.height, cfg.batch, cfg.arch.cli_name(), cfg.width_div
    );

    while state.epoch < cfg.epochs && !state.stopped_early {
        let epoch = state.epoch + 1;
        let t0 = Instant::now();
        let loader = Loader::new(train_pairs.clone(), cfg.width, cfg.height, cfg.batch, cfg.seed, epoch as u64, cfg.augment, true, false);
        let steps = loader.len_batches().min(cfg.max_steps_per_epoch.unwrap_or(usize::MAX));
        let bar = indicatif::ProgressBar::new(steps as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg} eta {eta}")
                .unwrap()
                .progress_chars("=> "),
        );
        bar.set_prefix(format!("{epoch}/{}", cfg.epochs));
        let (mut loss_sum, mut dice_sum, mut seen) = (0f64, 0f64, 0usize);
        for (i, b) in loader.take(steps).enumerate() {
            let (x, t) = upload_batch(gpu, &b, cfg.width, cfg.height);
            let r = train_step(&model, &mut opt, &x, &t).map_err(|e| {
                anyhow::anyhow!(
                    "training stopped at step {} (epoch {epoch}, batch {}): {e}; the last good checkpoint in {} is kept; \
                     try a lower --lr",
                    state.steps + 1,
                    i + 1,
                    cfg.out.display()
                )
            })?;
            state.steps += 1;
            warm_up.take(); // the first step has compiled everything a step needs
            loss_sum += r.loss * b.n as f64;
            dice_sum += r.dice * b.n as f64;
            seen += b.n;
            let ips = seen as f64 / t0.elapsed().as_secs_f64();
            bar.set_message(format!("loss {:.4} dice {:.4} {:.2} img/s", loss_sum / seen as f64, dice_sum / seen as f64, ips));
            bar.inc(1);
        }
        bar.finish_and_clear();
        let train_secs = t0.elapsed().as_secs_f64();
        let (val, _, kept) = evaluate(&model, &val_pairs, cfg.width, cfg.height, cfg.batch, cfg.overlays);
        let row = EpochRow {
            epoch,
            lr: state.lr,
            train_loss: loss_sum / seen.max(1) as f64,
            train_dice: dice_sum / seen.max(1) as f64,
            val_loss: val.loss,
            val_dice: val.dice,
            seconds: t0.elapsed().as_secs_f64(),
            images_per_s: seen as f64 / train_secs,
        };
        // Schedulers: maximise validation Dice.
        let improved = val.dice > state.best_val_dice;
        if improved {
            state.best_val_dice = val.dice;
            state.best_epoch = epoch;
            state.plateau_wait = 0;
            state.early_wait = 0;
            model.save(&files.best(), &meta)?;
        } else {
            state.plateau_wait += 1;
            state.early_wait += 1;
            if state.plateau_wait >= cfg.plateau_patience {
                let new_lr = (state.lr * cfg.plateau_factor).max(cfg.min_lr);
                if new_lr < state.lr {
                    eprintln!("epoch {epoch}: val Dice has not improved for {} epochs; lr {:e} -> {:e}", state.plateau_wait, state.lr, new_lr);
                }
                state.lr = new_lr;
                state.plateau_wait = 0;
            }
            if state.early_wait >= cfg.early_stop_patience {
                eprintln!("epoch {epoch}: early stopping (no val Dice improvement for {} epochs)", state.early_wait);
                state.stopped_early = true;
            }
        }
        opt.lr = state.lr;
        println!(
            "epoch {epoch:>3}/{}  loss {:.4}  dice {:.4}  val_loss {:.4}  val_dice {:.4} (at 0.5: dice {:.4} IoU {:.4})  lr {:.1e}  {:.1}s  {:.2} img/s{}",
            cfg.epochs, row.train_loss, row.train_dice, val.loss, val.dice, val.dice_hard, val.iou_hard, row.lr, row.seconds,
            row.images_per_s, if improved { "  *best" } else { "" }
        );
        state.history.push(row);
        state.epoch = epoch;
        // Pictures and tables (each written atomically), then the checkpoint commit.
        crate::fsutil::atomic_write(&cfg.out.join("metrics.csv"), metrics_csv(&state.history).as_bytes())?;
        crate::plot::plot_curves(&state.history, &cfg.out.join("curves.png"))?;
        if !kept.is_empty() {
            let rows: Vec<_> = kept
                .iter()
                .map(|(img, m, p)| {
                    let photo = data::to_rgb8(img, cfg.width, cfg.height);
                    let tm: Vec<u8> = m.iter().map(|&v| (v > 0.5) as u8).collect();
                    let pm: Vec<u8> = p.iter().map(|&v| (v > 0.5) as u8).collect();
                    (photo, tm, pm)
                })
                .collect();
            let img = crate::postprocess::overlay_rows(&rows);
            std::fs::create_dir_all(cfg.out.join("overlays"))?;
            crate::fsutil::save_png_atomic(&image::DynamicImage::ImageRgb8(img), &cfg.out.join(format!("overlays/epoch_{epoch:03}.png")))?;
        }
        files.commit(&model, &opt, &state, &meta)?;
    }
    eprintln!(
        "done: best val Dice {:.4} at epoch {}; weights in {} (best) and {} (last)",
        state.best_val_dice,
        state.best_epoch,
        files.best().display(),
        files.last().display()
    );
    Ok(state)
}
