//! Training end to end on tiny synthetic data and a tiny model width: the loss falls, resume is bit-identical,
//! steady-state steps allocate no GPU buffers, and NaN stops the run without touching the checkpoint.

use std::path::{Path, PathBuf};

use fluke::model::{UNet, UNetConfig};
use fluke::optim::Adam;
use fluke::testing::gpu;
use fluke::train::{train, train_step, TrainConfig};
use fluke::Tensor;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("fluke-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn synth(dir: &Path, n: usize, seed: u64) {
    fluke::data::synth::write_dataset(dir, n, seed).unwrap();
}

fn tiny_cfg(data: &Path, out: &Path, epochs: usize) -> TrainConfig {
    TrainConfig {
        images: data.join("images"),
        masks: data.join("masks"),
        out: out.to_path_buf(),
        width: 64,
        height: 32,
        batch: 4,
        epochs,
        width_div: 16,
        val_fraction: 0.25,
        seed: 11,
        overlays: 2,
        ..TrainConfig::default()
    }
}

/// A blob batch: photo brighter where the mask is.
fn blob_batch(g: &std::sync::Arc<fluke::Gpu>, n: usize, w: usize, h: usize) -> (Tensor, Tensor) {
    let mut x = vec![0f32; n * 3 * h * w];
    let mut t = vec![0f32; n * h * w];
    for k in 0..n {
        for y in 0..h {
            for xx in 0..w {
                let dx = (xx as f32 - w as f32 * (0.3 + 0.1 * k as f32)) / (w as f32 / 4.0);
                let dy = (y as f32 - h as f32 / 2.0) / (h as f32 / 4.0);
                let m = (dx * dx + dy * dy < 1.0) as u8 as f32;
                t[k * h * w + y * w + xx] = m;
                for c in 0..3 {
                    x[((k * 3 + c) * h + y) * w + xx] = m * 1.5 - 0.5 + 0.1 * ((xx + y + c) as f32).sin();
                }
            }
        }
    }
    (Tensor::from_slice(g, &[n, 3, h, w], &x), Tensor::from_slice(g, &[n, 1, h, w], &t))
}

#[test]
fn loss_falls_and_steady_steps_allocate_nothing() {
    let g = gpu();
    let model = UNet::new(&g, UNetConfig::new(8), 1);
    let mut opt = Adam::new(model.params(), 1e-3);
    let (x, t) = blob_batch(&g, 2, 64, 64);
    let mut losses = Vec::new();
    let mut created = Vec::new();
    for _ in 0..8 {
        losses.push(train_step(&model, &mut opt, &x, &t).unwrap().loss);
        created.push(g.buffers_created());
    }
    println!("losses {losses:?}");
    assert!(losses[7] < losses[0] * 0.95 && losses.windows(2).all(|w| w[1] < w[0]), "loss did not fall: {losses:?}");
    // After the first step, no new GPU buffer is created.
    assert!(created[1..].iter().all(|&c| c == created[1]), "buffers created per step: {created:?}");
}

#[test]
fn same_inputs_give_bit_identical_gradients_and_weights() {
    let g = gpu();
    let (x, t) = blob_batch(&g, 2, 64, 32);
    let run = || {
        let model = UNet::new(&g, UNetConfig::new(16), 4);
        let mut opt = Adam::new(model.params(), 1e-3);
        for _ in 0..2 {
            train_step(&model, &mut opt, &x, &t).unwrap();
        }
        model.param_names().iter().flat_map(|n| model.tensor(n).to_vec()).map(f32::to_bits).collect::<Vec<u32>>()
    };
    assert_eq!(run(), run());
}

#[test]
fn resume_after_interruption_is_bit_identical() {
    let g = gpu();
    let data = tmp("resume-data");
    synth(&data, 12, 3);
    // Uninterrupted: 3 epochs.
    let a = tmp("resume-a");
    let cfg_a = tiny_cfg(&data, &a, 3);
    train(&g, &cfg_a, false).unwrap();
    // Interrupted after epoch 1 (as a crash would leave it), then resumed to 3.
    let b = tmp("resume-b");
    let mut cfg_b = tiny_cfg(&data, &b, 1);
    train(&g, &cfg_b, false).unwrap();
    cfg_b.epochs = 3;
    std::fs::write(b.join("config.json"), serde_json::to_string(&cfg_b).unwrap()).unwrap();
    let cfg_b = fluke::train::load_config(&b).unwrap();
    train(&g, &cfg_b, true).unwrap();
    let wa = fluke::model::weights::read_weight_file(&a.join("last.safetensors")).unwrap();
    let wb = fluke::model::weights::read_weight_file(&b.join("last.safetensors")).unwrap();
    assert_eq!(wa.tensors.len(), wb.tensors.len());
    for (k, ta) in &wa.tensors {
        let tb = &wb.tensors[k];
        let same = ta.data.iter().zip(&tb.data).all(|(x, y)| x.to_bits() == y.to_bits());
        assert!(same, "{k} differs after resume");
    }
    for f in ["metrics.csv", "curves.png", "best.safetensors", "optimizer.safetensors", "config.json", "state.json"] {
        assert!(b.join(f).exists(), "{f} missing");
    }
    assert!(std::fs::read_dir(b.join("overlays")).unwrap().count() >= 3);
    let csv = std::fs::read_to_string(b.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");
}

#[test]
fn a_finished_run_folder_is_not_overwritten() {
    let g = gpu();
    let data = tmp("exists-data");
    synth(&data, 8, 5);
    let out = tmp("exists-out");
    let cfg = TrainConfig { max_steps_per_epoch: Some(1), ..tiny_cfg(&data, &out, 1) };
    train(&g, &cfg, false).unwrap();
    let before = std::fs::read(out.join("last.safetensors")).unwrap();
    let err = train(&g, &cfg, false).unwrap_err().to_string();
    assert!(err.contains("--resume"), "{err}");
    assert_eq!(std::fs::read(out.join("last.safetensors")).unwrap(), before);
}

#[test]
fn nan_loss_stops_the_run_and_keeps_the_checkpoint() {
    let g = gpu();
    let data = tmp("nan-data");
    synth(&data, 8, 6);
    let out = tmp("nan-out");
    let cfg = TrainConfig { max_steps_per_epoch: Some(1), ..tiny_cfg(&data, &out, 1) };
    train(&g, &cfg, false).unwrap();
    let before = std::fs::read(out.join("last.safetensors")).unwrap();
    // An absurd learning rate makes the weights blow up within a few steps.
    let mut cfg2 = cfg.clone();
    cfg2.epochs = 6;
    cfg2.lr = 1e30;
    cfg2.max_steps_per_epoch = None;
    std::fs::write(out.join("config.json"), serde_json::to_string(&cfg2).unwrap()).unwrap();
    let mut st: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("state.json")).unwrap()).unwrap();
    st["lr"] = serde_json::json!(1e30);
    std::fs::write(out.join("state.json"), st.to_string()).unwrap();
    let err = train(&g, &cfg2, true).unwrap_err().to_string();
    assert!(err.contains("step") && (err.contains("NaN") || err.contains("inf")), "{err}");
    // The last committed checkpoint still loads.
    let m = UNet::from_file(&g, &out.join("last.safetensors")).unwrap();
    assert!(m.tensor("segmentation_head.0.weight").to_vec().iter().all(|v| v.is_finite()));
    let _ = before;
}

/// The warm-up's list (src/gpu/warm_up.rs) is what a step really runs: a dry run of one training step at the default
/// size and width lists exactly the entry points a real step then dispatches, and runs nothing itself (no dispatch,
/// the BN counters as they were, the model's weights untouched).
#[test]
fn a_dry_run_lists_the_kernels_a_real_step_runs_and_runs_nothing() {
    let g = gpu();
    let (w, h) = fluke::data::DEFAULT_SIZE;
    let (w, h) = (w as usize, h as usize);
    let model = UNet::new(&g, UNetConfig::new(1), 5);
    let counters = model.num_batches_tracked.borrow().clone();
    let weights = model.tensor("segmentation_head.0.weight").to_vec();
    let dispatches = g.dispatches_total();
    let plan = fluke::train::step_plan(&model, 1, w, h);
    let planned = plan.entries();
    assert_eq!(g.dispatches_total(), dispatches, "the dry run dispatched kernels");
    assert_eq!(*model.num_batches_tracked.borrow(), counters, "the dry run left the BN counters bumped");
    assert_eq!(model.tensor("segmentation_head.0.weight").to_vec(), weights, "the dry run changed the weights");
    let mut seen = planned.clone();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), planned.len(), "the dry run listed an entry point twice: {planned:?}");

    let (x, t) = blob_batch(&g, 1, w, h);
    let mut opt = Adam::new(model.params(), 1e-3);
    g.start_trace();
    train_step(&model, &mut opt, &x, &t).unwrap();
    let ran_plan = g.take_trace_plan();
    // The same dispatches with the same Params, in the same order: lavapipe compiles per distinct Params (Mesa's
    // uniform inlining), so the warm-up compiles what the step runs only if the Params are the step's own.
    assert_eq!(plan.dispatches.len(), ran_plan.dispatches.len(), "dry run and real step made different numbers of distinct dispatches");
    for (i, (p, r)) in plan.dispatches.iter().zip(&ran_plan.dispatches).enumerate() {
        assert_eq!(p, r, "distinct dispatch {i}: dry run (left) and real step (right) differ");
    }
    let mut ran = ran_plan.entries();
    ran.sort();
    assert!(ran.len() > 20, "a real step ran only {ran:?}");
    assert_eq!(seen, ran, "dry run (left) and real step (right) differ");
}

/// On lavapipe with Mesa's shader cache on and two or more cores, `warm_up` compiles a step's kernels on a second
/// device: every one of them dispatches there without a device error; elsewhere it declines (None).
#[test]
fn warm_up_compiles_every_kernel_of_a_step_on_a_second_device() {
    let g = gpu();
    let model = UNet::new(&g, UNetConfig::new(16), 6);
    let plan = fluke::train::step_plan(&model, 2, 64, 32);
    let n = plan.dispatches.len();
    assert!(n > plan.entries().len(), "no kernel dispatched with two different Params");
    let lavapipe = g.is_cpu() && g.info.backend == wgpu::Backend::Vulkan && g.info.name.to_lowercase().contains("llvmpipe");
    let cache_off = std::env::var("MESA_SHADER_CACHE_DISABLE").is_ok_and(|v| matches!(v.to_lowercase().as_str(), "1" | "true" | "yes"));
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    match g.warm_up(plan) {
        Some(w) => {
            assert!(lavapipe && !cache_off && cores >= 2, "warm_up ran on {} ({:?})", g.info.name, g.info.backend);
            assert_eq!(w.wait(), (n, n), "not every kernel dispatched on the second device");
        }
        None => assert!(!lavapipe || cache_off || cores < 2, "warm_up declined on lavapipe with {cores} cores"),
    }
}

/// The warm-up's list for the kernel check (`validate::check_plan`): exactly the entry points the check then runs
/// for the geometries it has not validated (all of them without a cache file).
#[test]
fn the_kernel_checks_dry_run_lists_the_kernels_it_runs() {
    let g = gpu();
    let cfg = UNetConfig::new(16);
    let mut planned = fluke::validate::check_plan(&g, &cfg, 64, 32, 2).entries();
    planned.sort();
    let mut ran: Vec<&str> = fluke::validate::geometries(&cfg, 64, 32)
        .iter()
        .flat_map(|c| fluke::validate::check_geometry(&g, c, 2, 9))
        .flat_map(|v| v.entries)
        .collect();
    ran.sort();
    ran.dedup();
    if g.kernel_cache.is_none() {
        assert_eq!(planned, ran, "dry run (left) and check (right) differ");
    } else {
        // A cache file may hold these geometries already: then the check runs nothing of them.
        assert!(planned.iter().all(|e| ran.contains(e)), "dry run listed kernels the check does not run: {planned:?}");
    }
}
