//! The `fluke` command line: a thin layer over the library. Every error is printed as one line and exits non-zero.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use fluke::data::DEFAULT_SIZE;
use fluke::model::{format_size, keras::InputOrder, Arch, UNetConfig};
use fluke::predict::{tta_text, PredictConfig};
use fluke::train::TrainConfig;
use fluke::{parse_batch_arg as parse_batch, parse_width_arg as parse_width, Gpu, GpuOptions};

#[derive(Parser)]
#[command(name = "fluke", version, about = "Train and run a SE-ResNet34 U-Net for whale-fluke masks on any GPU (wgpu + hand-written WGSL)")]
struct Cli {
    #[command(flatten)]
    gpu: GpuArgs,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args, Clone)]
struct GpuArgs {
    /// Adapter name substring; default: the best available
    #[arg(long, global = true, env = "FLUKE_ADAPTER")]
    adapter: Option<String>,
    /// Restrict to a backend: vulkan, metal, dx12, gl
    #[arg(long, global = true, env = "FLUKE_BACKEND")]
    backend: Option<String>,
    /// Do not use subgroup operations (the portable kernels run): for comparisons, or a driver that miscompiles them
    #[arg(long, global = true, env = "FLUKE_NO_SUBGROUPS", value_parser = clap::builder::BoolishValueParser::new())]
    no_subgroups: bool,
    /// Folder of the kernel check cache (kernels.json); default $XDG_CACHE_HOME/fluke or ~/.cache/fluke
    #[arg(long, global = true, env = "FLUKE_CACHE_DIR", value_name = "DIR")]
    cache_dir: Option<PathBuf>,
}

// Defaults come from one place: `TrainConfig::default()` and `PredictConfig::default()` (the library's), the model's
// `DEFAULT_SIZE` and `UNetConfig::default()`; the options below read them instead of repeating the numbers. Options
// of commands without a config struct (eval, synth, demo) hold their only copy here.

/// `--size`'s "WxH" text of the default model size.
fn default_size() -> String {
    format_size(DEFAULT_SIZE)
}

/// Help of a `--size` that defaults to the checkpoint's.
fn checkpoint_size_help() -> String {
    format!("Model input size WxH (default: the checkpoint's, else {})", default_size())
}

#[derive(Subcommand)]
enum Cmd {
    /// Adapter, backend, driver and limits; with --model the per-layer table of the network
    Info {
        /// Print the network's per-layer table (shapes, parameters, MACs) instead of the adapters
        #[arg(long)]
        model: bool,
        /// Input size WxH for --model
        #[arg(long, default_value_t = default_size())]
        size: String,
        /// Width divisor for --model (1 = the real network; 1, 2, 4, 8 or 16)
        #[arg(long, default_value_t = UNetConfig::default().width_div, value_parser = parse_width)]
        width: usize,
        /// Architecture for --model
        #[arg(long, value_enum, default_value_t = Arch::Smp)]
        arch: Arch,
        /// Create every pipeline this adapter may run and list their creation times, slowest first
        #[arg(long)]
        pipelines: bool,
        /// With --pipelines: only this entry point (to time one kernel on a slow compiler)
        #[arg(long, value_name = "ENTRY", requires = "pipelines")]
        only: Option<String>,
    },
    /// Run every kernel against the CPU oracle on this GPU and print a table
    Check {
        /// Also run the full U-Net sizes (slow on software adapters)
        #[arg(long)]
        full: bool,
    },
    /// Train a model on a folder of photos and a folder of masks
    Train(TrainArgs),
    /// Dice and IoU of a model over a labelled set (per image CSV)
    Eval {
        /// A fluke or smp checkpoint (.safetensors or .pth) or a Keras .h5 of the notebook's model
        #[arg(long)]
        weights: PathBuf,
        /// Keras models only: override the pixel order the checkpoint records (bgr or rgb)
        #[arg(long, value_enum)]
        input_order: Option<InputOrder>,
        /// Folder of photos
        #[arg(long)]
        images: PathBuf,
        /// Folder of masks, matched to the photos by file stem (fluke > 108 in a grayscale image)
        #[arg(long)]
        masks: PathBuf,
        #[arg(long, help = checkpoint_size_help())]
        size: Option<String>,
        /// Photos per GPU batch
        #[arg(long, default_value_t = 4, value_parser = parse_batch)]
        batch: usize,
        /// Per-image CSV (default: eval.csv beside the weights)
        #[arg(long)]
        csv: Option<PathBuf>,
    },
    /// Predict masks, overlays, cut-outs, crops and a contact sheet for photos
    Predict(PredictArgs),
    /// Write a model's weights as safetensors, read from a .pth, .h5 or .safetensors (smp names for the smp
    /// architecture, Keras names for the Keras one)
    Export {
        /// A fluke, smp, PyTorch or Keras checkpoint: .safetensors, .pth (zip or legacy) or .h5, told apart by their bytes
        #[arg(long)]
        weights: PathBuf,
        /// The .safetensors file to write (atomically: a temporary name, then renamed)
        #[arg(long)]
        out: PathBuf,
    },
    /// Write a procedural fluke data set (images/ and masks/)
    Synth {
        /// Folder to write; the photos go to OUT/images, the masks to OUT/masks
        #[arg(long)]
        out: PathBuf,
        /// Number of photo and mask pairs
        #[arg(long, default_value_t = 64)]
        count: usize,
        /// Seed of the random scenes (the same seed writes the same set)
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// The whole job in one go: synthesise (or take) data, train a small model, predict, write pictures
    Demo {
        /// Folder of your own photos (with --masks; default: a synthetic set)
        #[arg(long)]
        images: Option<PathBuf>,
        /// Folder of masks for --images, matched by file stem
        #[arg(long)]
        masks: Option<PathBuf>,
        /// Folder for everything the demo writes (data, run, predictions)
        #[arg(long, default_value = "fluke-demo")]
        out: PathBuf,
        /// Training epochs
        #[arg(long, default_value_t = 6)]
        epochs: usize,
        /// Model input size WxH (multiples of 32; small keeps a software GPU quick)
        #[arg(long, default_value = "128x64")]
        size: String,
        /// Width divisor of the model (1 = the real network; 1, 2, 4, 8 or 16)
        #[arg(long, default_value_t = 4, value_parser = parse_width)]
        width: usize,
    },
    /// Time every kernel at the U-Net's shapes and whole training/inference steps
    Bench(fluke::bench::BenchArgs),
}

#[derive(Args)]
struct TrainArgs {
    /// Folder of training photos
    #[arg(long, required_unless_present = "resume")]
    images: Option<PathBuf>,
    /// Folder of masks, matched to the photos by file stem (fluke > 108 in a grayscale image)
    #[arg(long, required_unless_present = "resume")]
    masks: Option<PathBuf>,
    /// Continue a run folder exactly where it stopped (its config.json supplies every setting)
    #[arg(long, conflicts_with_all = ["images", "masks"])]
    resume: Option<PathBuf>,
    /// Folder of validation photos (with --val-masks; default: hold out --val-fraction of the training pairs)
    #[arg(long)]
    val_images: Option<PathBuf>,
    /// Folder of validation masks, matched to --val-images by file stem
    #[arg(long)]
    val_masks: Option<PathBuf>,
    /// Share of the pairs held out for validation when --val-images is not given (a seeded split)
    #[arg(long, default_value_t = TrainConfig::default().val_fraction)]
    val_fraction: f64,
    /// Run folder
    #[arg(long, default_value_os_t = TrainConfig::default().out)]
    out: PathBuf,
    /// Model input size, width x height (multiples of 32)
    #[arg(long, default_value_t = { let d = TrainConfig::default(); format_size((d.width, d.height)) })]
    size: String,
    /// Images per training step
    #[arg(long, default_value_t = TrainConfig::default().batch, value_parser = parse_batch)]
    batch: usize,
    /// Epochs to train (early stopping may end the run sooner)
    #[arg(long, default_value_t = TrainConfig::default().epochs)]
    epochs: usize,
    /// Adam's learning rate at the start
    #[arg(long, default_value_t = TrainConfig::default().lr)]
    lr: f64,
    /// The lowest learning rate the plateau schedule goes down to
    #[arg(long, default_value_t = TrainConfig::default().min_lr)]
    min_lr: f64,
    /// Learning-rate factor after --plateau-patience epochs without a better validation Dice
    #[arg(long, default_value_t = TrainConfig::default().plateau_factor)]
    plateau_factor: f64,
    /// Epochs without a better validation Dice before the learning rate is lowered
    #[arg(long, default_value_t = TrainConfig::default().plateau_patience)]
    plateau_patience: usize,
    /// Epochs without a better validation Dice before training stops
    #[arg(long, default_value_t = TrainConfig::default().early_stop_patience)]
    early_stop_patience: usize,
    /// Seed of the initialisation, split, shuffling and augmentation (the same seed gives the same run)
    #[arg(long, default_value_t = TrainConfig::default().seed)]
    seed: u64,
    /// Train on the photos as they are (default: random blur, shear, flip, rotation, contrast and brightness)
    #[arg(long)]
    no_augment: bool,
    /// Width divisor: every channel count divided by this (1 = the real network; 4 or 8 for quick runs)
    #[arg(long, default_value_t = TrainConfig::default().width_div, value_parser = parse_width)]
    width: usize,
    /// Which U-Net: smp's (timm legacy_seresnet34 encoder, ImageNet-normalised RGB) or the notebook's Keras
    /// segmentation_models Unet('seresnet34') (pre-activation encoder on raw 0-255 pixels)
    #[arg(long, value_enum, default_value_t = Arch::Smp)]
    arch: Arch,
    /// keras-seresnet34 only: the pixel order the model sees (default bgr, as the notebook's cv2.imread; rgb for
    /// weights trained on RGB)
    #[arg(long, value_enum)]
    input_order: Option<InputOrder>,
    /// Start from weights: a fluke/smp checkpoint, an ImageNet timm legacy_seresnet34 encoder, or for
    /// --arch keras-seresnet34 a Keras .h5 (the notebook's, or seresnet34_imagenet_1000_no_top.h5)
    #[arg(long)]
    init: Option<PathBuf>,
    /// Any data problem is fatal
    #[arg(long)]
    strict: bool,
    /// Cap the steps per epoch (quick experiments)
    #[arg(long)]
    max_steps: Option<usize>,
}

#[derive(Args)]
struct PredictArgs {
    /// A fluke or smp checkpoint (.safetensors or .pth) or a Keras .h5 of the notebook's model
    #[arg(long)]
    weights: PathBuf,
    /// Keras models only: override the pixel order the checkpoint records (bgr or rgb)
    #[arg(long, value_enum)]
    input_order: Option<InputOrder>,
    /// A photo or a folder of photos
    #[arg(long)]
    input: PathBuf,
    /// Output folder (masks, overlays, cut-outs, crops, sheet.png, summary.csv)
    #[arg(long, default_value_os_t = PredictConfig::default().out)]
    out: PathBuf,
    #[arg(long, help = checkpoint_size_help())]
    size: Option<String>,
    /// Test-time augmentation: none | flip | blur | flip,blur (the mean of the plain, flipped and blurred runs)
    #[arg(long, default_value_t = { let d = PredictConfig::default(); tta_text(d.tta_flip, d.tta_blur).to_string() })]
    tta: String,
    /// Probability above which a pixel is fluke (masks, overlays, cut-outs, components)
    #[arg(long, default_value_t = PredictConfig::default().threshold)]
    threshold: f32,
    /// Probability above which a pixel counts for the crop's bounding box
    #[arg(long, default_value_t = PredictConfig::default().crop_threshold)]
    crop_threshold: f32,
    /// Photos per GPU batch
    #[arg(long, default_value_t = PredictConfig::default().batch, value_parser = parse_batch)]
    batch: usize,
    /// Also write <stem>_probs.npy (float32, model size)
    #[arg(long)]
    save_probs: bool,
    /// Keep only the largest connected component
    #[arg(long)]
    keep_largest: bool,
    /// I/N: process every N-th photo starting at I (split an archive across machines)
    #[arg(long)]
    shard: Option<String>,
}

/// `--size WxH`, with the option named in the error.
fn size_arg(s: &str) -> Result<(u32, u32)> {
    fluke::parse_size(s).context("--size")
}

/// clap's usage errors span several lines (the error, the usage, a hint); fluke's rule is one line per error:
/// the error's own lines joined, then where to look for help.
fn one_line_usage_error(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let mut parts = Vec::new();
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with("Usage:") || l.starts_with("For more information") {
            break;
        }
        if !l.is_empty() {
            parts.push(l.to_string());
        }
    }
    format!("{} (see `fluke --help` or `fluke <command> --help`)", parts.join(" "))
}

/// Where the kernel check keeps its verdicts: --cache-dir (FLUKE_CACHE_DIR), else the XDG cache folder.
fn kernel_cache(a: &GpuArgs) -> Option<PathBuf> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    let dir = a.cache_dir.clone().or_else(|| fluke::validate::default_cache_dir(env("XDG_CACHE_HOME"), env("HOME")))?;
    Some(dir.join("kernels.json"))
}

fn open_gpu(a: &GpuArgs) -> Result<std::sync::Arc<Gpu>> {
    Gpu::new(&GpuOptions { adapter: a.adapter.clone(), backend: a.backend.clone(), subgroups: !a.no_subgroups, kernel_cache: kernel_cache(a), ..GpuOptions::default() }, &fluke::ops::shaders())
}

fn main() {
    // A bug must not end in a backtrace: one line, non-zero exit.
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| info.payload().downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown".into());
        let loc = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        eprintln!("fluke: internal error: {msg}{loc} (please report it; set RUST_BACKTRACE=1 for details)");
    }));
    // Mesa's Vulkan drivers probe Wayland and complain on stderr when XDG_RUNTIME_DIR is unset (headless
    // machines, CI); fluke draws nothing on screen, so point it at a harmless folder.
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version are not errors: clap prints them as it likes.
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            eprintln!("{}", one_line_usage_error(&e));
            std::process::exit(2);
        }
    };
    match run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
            std::process::exit(1);
        }
    }
}

fn run(cli: Cli) -> Result<i32> {
    match cli.cmd {
        Cmd::Info { model, size, width, arch, pipelines, only } => {
            if model {
                let (w, h) = size_arg(&size)?;
                let cfg = fluke::model::UNetConfig::with_arch(width, arch);
                print!("{}", fluke::model::summary::render(&cfg, w as usize, h as usize));
            } else {
                fluke::info::print_adapters(&cli.gpu.backend)?;
                let gpu = open_gpu(&cli.gpu)?;
                fluke::info::print_gpu(&gpu);
                if pipelines {
                    fluke::info::print_pipelines(&gpu, only.as_deref());
                }
            }
            Ok(0)
        }
        Cmd::Check { full } => {
            let gpu = open_gpu(&cli.gpu)?;
            println!("fluke check on {} ({:?}, {:?})", gpu.info.name, gpu.info.backend, gpu.info.device_type);
            let results = fluke::ops::self_checks(&gpu, full);
            let ok = fluke::check::print_table(&results);
            let failed = results.iter().filter(|r| !r.pass).count();
            println!("{} passed, {} failed", results.len() - failed, failed);
            let net_ok = fluke::network_check::print_network_checks(&gpu);
            Ok(if ok && net_ok { 0 } else { 1 })
        }
        Cmd::Train(a) => {
            let gpu = open_gpu(&cli.gpu)?;
            if let Some(dir) = a.resume {
                let cfg = fluke::train::load_config(&dir)?;
                fluke::train::train(&gpu, &cfg, true)?;
            } else {
                let (w, h) = size_arg(&a.size)?;
                let cfg = TrainConfig {
                    images: a.images.unwrap(),
                    masks: a.masks.unwrap(),
                    val_images: a.val_images,
                    val_masks: a.val_masks,
                    val_fraction: a.val_fraction,
                    out: a.out,
                    width: w,
                    height: h,
                    batch: a.batch,
                    epochs: a.epochs,
                    lr: a.lr,
                    min_lr: a.min_lr,
                    plateau_factor: a.plateau_factor,
                    plateau_patience: a.plateau_patience,
                    early_stop_patience: a.early_stop_patience,
                    seed: a.seed,
                    augment: TrainConfig::default().augment && !a.no_augment,
                    width_div: a.width,
                    arch: a.arch,
                    input_order: a.input_order,
                    init: a.init,
                    strict: a.strict,
                    max_steps_per_epoch: a.max_steps,
                    overlays: TrainConfig::default().overlays, // no option: the library's choice
                };
                fluke::train::train(&gpu, &cfg, false)?;
            }
            Ok(0)
        }
        Cmd::Eval { weights, input_order, images, masks, size, batch, csv } => {
            let gpu = open_gpu(&cli.gpu)?;
            let size = size.map(|s| size_arg(&s)).transpose()?;
            let csv = csv.unwrap_or_else(|| weights.with_file_name("eval.csv"));
            fluke::evaluate::eval_command(&gpu, &weights, input_order, &images, &masks, size, batch, &csv)?;
            Ok(0)
        }
        Cmd::Predict(a) => {
            let gpu = open_gpu(&cli.gpu)?;
            let (flip, blur) = fluke::predict::parse_tta(&a.tta)?;
            let cfg = PredictConfig {
                weights: a.weights,
                input_order: a.input_order,
                input: a.input,
                out: a.out,
                size: a.size.map(|s| size_arg(&s)).transpose()?,
                tta_flip: flip,
                tta_blur: blur,
                threshold: a.threshold,
                crop_threshold: a.crop_threshold,
                batch: a.batch,
                save_probs: a.save_probs,
                keep_largest: a.keep_largest,
                shard: a.shard.map(|s| fluke::predict::parse_shard(&s)).transpose()?,
                sheet: PredictConfig::default().sheet,
            };
            let s = fluke::predict::predict(&gpu, &cfg)?;
            Ok(if s.failed > 0 { 2 } else { 0 })
        }
        Cmd::Export { weights, out } => {
            let gpu = open_gpu(&cli.gpu)?;
            let n = fluke::model::UNet::export(&gpu, &weights, &out)?;
            println!("wrote {} ({n} tensors) from {}", out.display(), weights.display());
            Ok(0)
        }
        Cmd::Synth { out, count, seed } => {
            fluke::data::synth::write_dataset(&out, count, seed).with_context(|| format!("{}: synth failed", out.display()))?;
            println!("wrote {count} photos and masks to {}/images and {}/masks", out.display(), out.display());
            Ok(0)
        }
        Cmd::Demo { images, masks, out, epochs, size, width } => {
            let gpu = open_gpu(&cli.gpu)?;
            let (w, h) = size_arg(&size)?;
            fluke::demo::demo(&gpu, images, masks, &out, epochs, w, h, width)?;
            Ok(0)
        }
        Cmd::Bench(a) => {
            if let Some(files) = &a.compare {
                print!("{}", fluke::bench::compare(&files[0], &files[1])?);
                return Ok(0);
            }
            let gpu = open_gpu(&cli.gpu)?;
            fluke::bench::run(&gpu, &a)?;
            Ok(0)
        }
    }
}
