//! `fluke check`'s network part (the per-op part is each op's `self_check`, `ops::self_checks`): every convolution of
//! the U-Net at the default size against f64 sums (`validate`), the whole network's forward against the f64 CPU
//! model (`model::cpu`), and its gradients against the built-in golden. Uses the comparison helpers of `check`.

/// `fluke check`'s network part: every convolution of the U-Net at the default size (384x192), all three
/// directions, with the kernels this device picks, against f64 sums (`validate`); failing subgroup kernels are
/// replaced by their portable twins and checked again. Prints the table and the kernels this device gets; true when
/// everything that will run passes.
pub fn print_network_checks(gpu: &std::sync::Arc<crate::Gpu>) -> bool {
    let (w, h) = crate::data::DEFAULT_SIZE;
    let cfg = crate::model::UNetConfig::default();
    println!();
    println!("every convolution of the U-Net at {w}x{h} (batch 1), with the kernels this device picks, against f64 sums:");
    let t0 = std::time::Instant::now();
    let rep = crate::validate::validate(gpu, &cfg, w as usize, h as usize, 1, &Default::default());
    println!("{:<40} {:<12} {:>10}  {:<6} kernels", "geometry", "direction", "error", "result");
    for v in &rep.verdicts {
        let k: Vec<&str> = v.entries.iter().copied().filter(|e| !e.contains("pack_weight") && !e.ends_with("reduce")).collect();
        println!("{:<40} {:<12} {:>10.2e}  {:<6} {}", v.geometry, v.pass_name, v.worst, if v.pass { "pass" } else { "FAIL" }, k.join(", "));
    }
    for e in &rep.replaced {
        println!("REPLACED on this device: {e} (wrong here; its portable twin runs instead)");
    }
    let mut used: Vec<&str> = rep.verdicts.iter().flat_map(|v| v.entries.iter().copied()).filter(|e| gpu.allowed(e)).collect();
    used.sort();
    used.dedup();
    println!("kernels this device runs for the U-Net's convolutions: {}", used.join(", "));
    println!(
        "{} checks in {:.1} s: {}",
        rep.verdicts.len(),
        t0.elapsed().as_secs_f64(),
        if rep.unmended.is_empty() { "every kernel that runs passes" } else { "FAILED (see above)" }
    );
    let fwd = network_forward_check(gpu, w as usize, h as usize);
    let grads = network_gradient_check(gpu);
    rep.unmended.is_empty() && fwd && grads
}

/// The whole network at `width` x `height`, eval mode, closed-form weights (`UNet::fill_golden`), one image: the
/// GPU's logits and probabilities against the float64 CPU network (`model::cpu`). Passes when the probabilities are
/// within 1e-4 and the logits within 3e-4 of their largest magnitude.
pub fn network_forward_check(gpu: &std::sync::Arc<crate::Gpu>, width: usize, height: usize) -> bool {
    let t0 = std::time::Instant::now();
    let mut model = crate::model::UNet::new(gpu, crate::model::UNetConfig::default(), 0);
    model.fill_golden();
    // As `fluke predict` runs it: BN folded into the convolutions (the oracle keeps them apart).
    model.freeze();
    let shape = [1, 3, height, width];
    let (x, _) = crate::model::golden_batch(1, height, width);
    let tape = crate::Tape::inference();
    let vars = model.param_vars(&tape);
    let z = model.forward(&tape, &vars, &crate::Var::constant(crate::Tensor::from_slice(gpu, &shape, &x)), false).t.to_vec();
    let t_gpu = t0.elapsed().as_secs_f64();
    let r = crate::model::cpu::forward_eval(&model, &x, shape);
    let scale = r.iter().fold(0f64, |m, v| m.max(v.abs()));
    let (mut dz, mut dp) = (0f64, 0f64);
    for (&a, &b) in z.iter().zip(&r) {
        dz = dz.max((a as f64 - b).abs());
        dp = dp.max((1.0 / (1.0 + (-(a as f64)).exp()) - 1.0 / (1.0 + (-b).exp())).abs());
    }
    // Probabilities, what users get, within 1e-4 (the correctness target); logits within 3e-4 of their largest
    // magnitude (float32 through 72 layers: lavapipe measured 7.7e-5 at 384x192, PyTorch float32 1.5e-5 on 64
    // sampled logits).
    let ok = z.len() == r.len() && dz <= 3e-4 * scale && dp <= 1e-4;
    println!(
        "whole U-Net {width}x{height}, eval, against the float64 CPU network: logits max error {dz:.2e} (of max |logit| {scale:.2}), \
         probabilities max error {dp:.2e}: {} (GPU {t_gpu:.1} s, CPU {:.1} s)",
        if ok { "pass" } else { "FAIL" },
        t0.elapsed().as_secs_f64() - t_gpu
    );
    ok
}

/// One backward pass of the whole network (2x3x96x192, eval-mode BN, BCE + Dice, closed-form weights) against
/// PyTorch's float64 gradients of every parameter (tests/golden/unet_sizes.safetensors, built in): per tensor the
/// sampled error within 5x PyTorch float32's own error (at least 1e-2), as tests/network/model_sizes.rs.
pub fn network_gradient_check(gpu: &std::sync::Arc<crate::Gpu>) -> bool {
    const GOLD: &[u8] = include_bytes!("../tests/golden/unet_sizes.safetensors");
    let t0 = std::time::Instant::now();
    let gold = crate::model::weights::parse_weight_bytes(GOLD).expect("built-in golden");
    let get = |k: &str| &gold.tensors.get(k).unwrap_or_else(|| panic!("golden: no {k}")).data;
    let (n, h, w) = (2, 96, 192);
    let mut model = crate::model::UNet::new(gpu, crate::model::UNetConfig::default(), 0);
    model.fill_golden();
    let (x, t) = crate::model::golden_batch(n, h, w);
    let tape = crate::Tape::new();
    let vars = model.param_vars(&tape);
    let z = model.forward(&tape, &vars, &crate::Var::constant(crate::Tensor::from_slice(gpu, &[n, 3, h, w], &x)), false);
    let (loss, _) = crate::ops::bce_dice::bce_dice(&tape, &z, &crate::Tensor::from_slice(gpu, &[n, 1, h, w], &t));
    let grads = tape.backward(&loss, crate::Tensor::full(gpu, &[1], 1.0));
    let (mut failed, mut worst) = (Vec::new(), 0f64);
    for name in model.param_names() {
        let got = grads.get(&vars[&name]).expect("every parameter has a gradient").to_vec();
        let key = format!("b2_96x192.egrad.{name}");
        let (idx, val, st) = (get(&format!("{key}.idx")), get(&format!("{key}.val")), get(&format!("{key}.stats")));
        let e = idx.iter().zip(val).map(|(&i, &v)| (got[i as usize] as f64 - v as f64).abs()).fold(0f64, f64::max) / (st[2] as f64).max(1e-30);
        let torch = get(&format!("b2_96x192.torch_f32_e.{name}"));
        let bound = (5.0 * torch[0].max(torch[1]) as f64).max(1e-2);
        worst = worst.max(e / bound);
        if e >= bound {
            failed.push(format!("{name} {e:.2e} (bound {bound:.1e})"));
        }
    }
    let ok = failed.is_empty();
    println!(
        "whole U-Net 2x3x96x192 backward, every parameter's gradient against PyTorch float64: {} ({} tensors, worst error {:.0}% of its bound, {:.1} s){}",
        if ok { "pass" } else { "FAIL" },
        model.param_names().len(),
        100.0 * worst,
        t0.elapsed().as_secs_f64(),
        if ok { String::new() } else { format!(": {}", failed.join(", ")) }
    );
    ok
}
