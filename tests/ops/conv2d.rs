//! conv2d: the f64 oracle against finite differences, every entry point against the oracle on odd shapes, batch
//! slicing under an artificial binding limit, PyTorch golden values, and full-size reductions.

use fluke::check::{assert_all_pass, compare, dot, f64s, finite_diff, rand_vec};
use fluke::gpu::Family;
use fluke::ops::conv2d::{self, cpu, Case};
use fluke::testing::gpu;
use fluke::{Tape, Tensor};

/// The CPU backward (input, weight, bias) equals central finite differences of L = sum(y * r).
#[test]
fn cpu_backward_matches_finite_differences() {
    for &(stride, pad, k) in &[(1usize, 1usize, 3usize), (2, 1, 3), (2, 0, 1), (2, 3, 7), (1, 0, 2)] {
        let (xs, ws) = ([2usize, 3, 9, 8], [4usize, 3, k, k]);
        let g = conv2d::Geom::new("fd", &xs, &ws, stride, pad);
        let x = f64s(&rand_vec(xs.iter().product(), 11));
        let w = f64s(&rand_vec(ws.iter().product(), 12));
        let b = f64s(&rand_vec(4, 13));
        let r = f64s(&rand_vec(g.y_shape().iter().product(), 14));
        let loss = |x: &[f64], w: &[f64], b: &[f64]| dot(&cpu::forward(x, &xs, w, &ws, Some(b), stride, pad), &r);
        let what = format!("k{k} s{stride} p{pad}");
        let fd_x = finite_diff(&x, 1e-5, |x| loss(x, &w, &b));
        let fd_w = finite_diff(&w, 1e-5, |w| loss(&x, w, &b));
        let fd_b = finite_diff(&b, 1e-5, |b| loss(&x, &w, b));
        let f32s = |v: &[f64]| v.iter().map(|&a| a as f32).collect::<Vec<_>>();
        let res = vec![
            compare("cpu::backward_input", &what, &f32s(&cpu::backward_input(&r, &w, &ws, &xs, stride, pad)), &fd_x, 1e-5, 1e-5),
            compare("cpu::backward_weight", &what, &f32s(&cpu::backward_weight(&x, &xs, &r, &ws, stride, pad)), &fd_w, 1e-5, 1e-5),
            compare("cpu::backward_bias", &what, &f32s(&cpu::backward_bias(&r, &g.y_shape())), &fd_b, 1e-5, 1e-5),
        ];
        assert_all_pass(&res);
    }
}

/// Every entry point (each kernel family) against the oracle on odd shapes, including the larger `full` cases.
#[test]
fn gpu_matches_oracle_on_odd_shapes() {
    assert_all_pass(&conv2d::self_check(&gpu(), true));
}

/// Deterministic: the same inputs give bit-identical weight gradients.
#[test]
fn weight_grad_is_deterministic() {
    let g = gpu();
    let x = Tensor::from_slice(&g, &[2, 5, 17, 13], &rand_vec(2 * 5 * 17 * 13, 3));
    let gy = Tensor::from_slice(&g, &[2, 6, 17, 13], &rand_vec(2 * 6 * 17 * 13, 4));
    let a = conv2d::conv2d_backward_weight(&x, &gy, &[6, 5, 3, 3], 1, 1).to_vec();
    let b = conv2d::conv2d_backward_weight(&x, &gy, &[6, 5, 3, 3], 1, 1).to_vec();
    assert_eq!(a, b);
}

/// Batches too large for one binding: with an artificial limit of a few images (and odd per-image sizes, so slices
/// start at unaligned elements), every entry point splits the batch and still matches the oracle.
#[test]
fn batch_slicing_under_a_small_binding_limit() {
    let g = gpu();
    let mut res = Vec::new();
    for c in [
        Case::new(7, 3, 11, 9, 5, 3, 2, 1, true),
        Case::new(5, 4, 8, 8, 6, 3, 1, 1, false),
        Case::new(6, 5, 7, 7, 3, 7, 2, 3, true),
        Case::new(5, 8, 6, 8, 10, 3, 1, 1, false),
    ] {
        // Room for about 2 images of the larger of x and y per binding.
        let img = (c.cin * c.h * c.w).max(c.cout * c.h * c.w) as u64 * 4;
        for family in [Family::Naive, Family::Portable, Family::Auto, Family::Gemm] {
            let _family = g.scoped(|o| o.family = family);
            // The same checks without the limit, to count the unsliced dispatches.
            let before = g.dispatches_total();
            conv2d::check_case(&g, &c, "unsliced");
            let unsliced = g.dispatches_total() - before;
            let _limit = g.scoped(|o| o.max_binding = Some(2 * img + 300));
            let before = g.dispatches_total();
            res.extend(conv2d::check_case(&g, &c, "sliced"));
            let sliced = g.dispatches_total() - before;
            assert!(sliced > unsliced, "{family:?}: the small limit did not split the batch ({sliced} vs {unsliced} dispatches)");
        }
    }
    assert_all_pass(&res);
}

/// The autograd wrapper returns the launchers' gradients for x, w and b.
#[test]
fn autograd_wrapper_matches_launchers() {
    let g = gpu();
    let (xs, ws) = ([2usize, 3, 7, 6], [4usize, 3, 3, 3]);
    let xt = Tensor::from_slice(&g, &xs, &rand_vec(2 * 3 * 7 * 6, 5));
    let wt = Tensor::from_slice(&g, &ws, &rand_vec(4 * 3 * 9, 6));
    let bt = Tensor::from_slice(&g, &[4], &rand_vec(4, 7));
    let tape = Tape::new();
    let (x, w, b) = (tape.param(&xt), tape.param(&wt), tape.param(&bt));
    let y = conv2d::conv2d(&tape, &x, &w, Some(&b), 2, 1);
    let seed = Tensor::from_slice(&g, &y.t.shape, &rand_vec(y.t.numel(), 8));
    let grads = tape.backward(&y, seed.clone());
    assert_eq!(grads.get(&x).unwrap().to_vec(), conv2d::conv2d_backward_input(&seed, &wt, &xs, 2, 1).to_vec());
    assert_eq!(grads.get(&w).unwrap().to_vec(), conv2d::conv2d_backward_weight(&xt, &seed, &ws, 2, 1).to_vec());
    assert_eq!(grads.get(&b).unwrap().to_vec(), conv2d::conv2d_backward_bias(&seed).to_vec());
}

/// PyTorch golden values (tools/golden_conv2d.py: F.conv2d in float64, stored as f32): forward and the gradients of
/// L = sum(y * gy) for x, w and b, for every kernel family. Tolerance: |d| <= 1e-4 + 1e-4 |torch| (sums of at most
/// ~150 products of N(0,1) values in f32).
#[test]
fn matches_pytorch_golden() {
    let g = gpu();
    let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/conv2d.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let get = |name: &str| -> (Vec<usize>, Vec<f32>) {
        let v = st.tensor(name).unwrap_or_else(|e| panic!("golden tensor {name}: {e}"));
        (v.shape().to_vec(), v.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect())
    };
    let mut names: Vec<String> = st.names().iter().filter_map(|n| n.strip_suffix(".meta").map(String::from)).collect();
    names.sort();
    assert_eq!(names.len(), 6, "expected 6 golden cases, found {names:?}");
    let mut res = Vec::new();
    for name in &names {
        let (_, meta) = get(&format!("{name}.meta"));
        let (stride, pad, has_bias) = (meta[0] as usize, meta[1] as usize, meta[2] == 1.0);
        let t = |key: &str| {
            let (shape, data) = get(&format!("{name}.{key}"));
            (Tensor::from_slice(&g, &shape, &data), f64s(&data))
        };
        let ((x, _), (w, _), (gy, _), (_, y_want), (_, gx_want), (_, gw_want)) = (t("x"), t("w"), t("gy"), t("y"), t("gx"), t("gw"));
        let b = has_bias.then(|| t("b").0);
        for family in [Family::Naive, Family::Portable, Family::Auto, Family::Gemm] {
            let _family = g.scoped(|o| o.family = family);
            let what = format!("{name} {family:?}");
            let y = conv2d::conv2d_forward(&x, &w, b.as_ref(), stride, pad).to_vec();
            res.push(compare("conv2d_forward", &what, &y, &y_want, 1e-4, 1e-4));
            let gx = conv2d::conv2d_backward_input(&gy, &w, &x.shape, stride, pad).to_vec();
            res.push(compare("conv2d_backward_input", &what, &gx, &gx_want, 1e-4, 1e-4));
            let gw = conv2d::conv2d_backward_weight(&x, &gy, &w.shape, stride, pad).to_vec();
            res.push(compare("conv2d_backward_weight", &what, &gw, &gw_want, 1e-4, 1e-4));
            if has_bias {
                let gb = conv2d::conv2d_backward_bias(&gy).to_vec();
                res.push(compare("conv2d_backward_bias", &what, &gb, &t("gb").1, 1e-4, 1e-4));
            }
        }
    }
    assert_all_pass(&res);
}

/// Full-size reductions: the weight and bias gradients sum over N*OH*OW = 294,912 positions (the U-Net's real
/// reduction lengths, far past llvmpipe's 65,535-iteration limit per invocation), with few channels so the test
/// stays fast. A kernel that stopped early would miss whole tiles and fail by far more than the tolerance.
#[test]
fn full_size_weight_and_bias_reductions() {
    // The same comparisons `fluke check --full` runs: 294,912-position reductions against the f64 oracle.
    let g = gpu();
    let res = conv2d::full_size_checks(&g);
    for r in &res {
        eprintln!("{} {}: max abs {:.2e}", r.entry, r.shape, r.max_abs);
    }
    assert_all_pass(&res);
}

/// The launchers pick the kernels they claim: at a U-Net-like 3x3 shape (Cin % 8 == 0, W % 4 == 0) the auto family
/// runs the subgroup twins where the device has subgroups, the portable family the vec4 kernels and the gemm family
/// only the GEMM kernels, so the oracle checks above cover every family (a silent fallback would test one kernel
/// twice).
#[test]
fn tiled_variants_dispatch_the_expected_kernels() {
    let g = gpu();
    let (xs, ws) = ([2usize, 16, 6, 8], [16usize, 16, 3, 3]);
    let x = Tensor::from_slice(&g, &xs, &rand_vec(2 * 16 * 6 * 8, 11));
    let w = Tensor::from_slice(&g, &ws, &rand_vec(16 * 16 * 9, 12));
    let run = |family| {
        let _family = g.scoped(|o| o.family = family);
        g.set_profiling(true);
        let y = conv2d::conv2d_forward(&x, &w, None, 1, 1);
        conv2d::conv2d_backward_input(&y, &w, &xs, 1, 1);
        conv2d::conv2d_backward_weight(&x, &y, &ws, 1, 1);
        // Stride 2: gy [2, 16, 3, 4], rows of 4 floats.
        let y2 = conv2d::conv2d_forward(&x, &w, None, 2, 1);
        conv2d::conv2d_backward_input(&y2, &w, &xs, 2, 1);
        conv2d::conv2d_backward_weight(&x, &y2, &ws, 2, 1);
        let names: Vec<&str> = g.take_profile().iter().map(|e| e.0).collect();
        g.set_profiling(false);
        names
    };
    let portable = run(Family::Portable);
    for e in ["conv2d_forward_3x3_vec4", "conv2d_backward_weight_3x3_vec4", "conv2d_backward_input_3x3s2_vec4", "conv2d_backward_weight_3x3s2_vec4", "conv2d_forward_3x3s2_vec4"] {
        assert!(portable.contains(&e), "the portable family did not run {e}: {portable:?}");
    }
    assert!(!portable.iter().any(|e| e.contains("subgroup")), "the portable family ran a subgroup kernel: {portable:?}");
    let gemm = run(Family::Gemm);
    for e in ["conv2d_forward_gemm", "conv2d_backward_input_gemm", "conv2d_backward_weight_gemm"] {
        assert!(gemm.contains(&e), "the gemm family did not run {e}: {gemm:?}");
    }
    assert!(gemm.iter().all(|e| e.ends_with("_gemm") || *e == "conv2d_backward_reduce"), "the gemm family ran other kernels: {gemm:?}");
    let tiled = run(Family::Auto);
    if !g.is_cpu() {
        assert_eq!(tiled, gemm, "auto on a GPU should run the GEMM kernels");
    } else if g.has_subgroups() {
        for e in [
            // Rows of 8 pixels (the 16-pixel kernel runs in `every_unet_convolution_is_right_at_the_sizes_people_run`).
            "conv2d_forward_3x3_subgroup8",
            // 16 lanes per tile (Cin 16 x one block of 16 channels): the 16-invocation workgroups.
            "conv2d_backward_weight_3x3_subgroup_wg16",
            "conv2d_backward_input_3x3s2_subgroup",
            "conv2d_backward_weight_3x3s2_subgroup",
            "conv2d_forward_3x3s2_subgroup",
        ] {
            assert!(tiled.contains(&e), "the auto family did not run {e} on a device with subgroups: {tiled:?}");
        }
        // Rows of 12 pixels take the 12-pixel subgroup forward.
        let x12 = Tensor::from_slice(&g, &[1, 8, 3, 12], &rand_vec(8 * 3 * 12, 13));
        let w12 = Tensor::from_slice(&g, &[8, 8, 3, 3], &rand_vec(8 * 8 * 9, 14));
        g.set_profiling(true);
        let _auto = g.scoped(|o| o.family = Family::Auto);
        conv2d::conv2d_forward(&x12, &w12, None, 1, 1);
        let names: Vec<&str> = g.take_profile().iter().map(|e| e.0).collect();
        g.set_profiling(false);
        assert!(names.contains(&"conv2d_forward_3x3_subgroup12"), "rows of 12 did not run the 12-pixel kernel: {names:?}");
    } else {
        println!("device has no subgroups: the auto family runs the portable kernels ({tiled:?})");
    }
}

/// Every convolution of the U-Net, in all three directions, at the sizes people run (192x96, the default 384x192,
/// 352x160 whose deep rows of 22 and 11 pixels are not multiples of 4, and the bench's 128x64, whose deep rows of 8
/// and 4 pixels take their own kernels), with the kernels each family picks on
/// this device, against f64 sums at sampled outputs (`fluke::validate`). This is the check that would have caught
/// the wrong 12-pixel subgroup forward: the odd small shapes above never pick it.
#[test]
fn every_unet_convolution_is_right_at_the_sizes_people_run() {
    let g = gpu();
    let cfg = fluke::model::UNetConfig::default();
    let mut failures = Vec::new();
    let mut used = std::collections::BTreeSet::new();
    let sizes = vec![(192, 96), (384, 192), (352, 160), (128, 64)];
    let mut families = vec![(Family::Auto, sizes.clone())];
    // Without subgroups the auto family picks exactly the portable kernels on a CPU adapter: checking them twice only
    // costs time.
    if g.has_subgroups() || !g.is_cpu() {
        families.push((Family::Portable, sizes));
    }
    // The GEMM kernels at every size where auto does not run them (CPU adapters); on a GPU auto is them.
    if g.is_cpu() {
        families.push((Family::Gemm, vec![(192, 96), (384, 192), (352, 160)]));
    }
    families.push((Family::Naive, vec![(192, 96)]));
    for (family, sizes) in families {
        let _f = g.scoped(|o| o.family = family);
        for (w, h) in sizes {
            for (i, c) in fluke::validate::geometries(&cfg, w, h).iter().enumerate() {
                for v in fluke::validate::check_geometry(&g, c, 1, 500 + i as u64) {
                    used.extend(v.entries.iter().copied());
                    if !v.pass {
                        failures.push(format!("{family:?} {w}x{h} {} {}: error {:.2e} ({})", v.geometry, v.pass_name, v.worst, v.entries.join(", ")));
                    }
                }
            }
        }
    }
    println!("kernels exercised: {used:?}");
    assert!(failures.is_empty(), "{} directions wrong:\n{}", failures.len(), failures.join("\n"));
    // Each family really ran (a silent fallback would test one kernel three times).
    for e in [
        "conv2d_forward",
        "conv2d_backward_input",
        "conv2d_backward_weight",
        "conv2d_forward_3x3_vec4",
        "conv2d_backward_input_strided_vec4",
        "conv2d_backward_input_3x3s2_vec4",
        "conv2d_backward_input_1x1s2_vec4",
        "conv2d_forward_1x1s2_vec4",
        "conv2d_backward_weight_1x1s2_vec4",
        "conv2d_backward_weight_3x3_strip",
        "conv2d_forward_7x7s2_vec4",
        "conv2d_backward_weight_7x7s2_vec4",
    ] {
        // Except kernels this adapter's compiler cannot build in time (SLOW_TO_BUILD: the stem's on SwiftShader).
        assert!(used.contains(e) || !g.allowed(e), "{e} never ran: {used:?}");
    }
    for e in ["conv2d_forward_gemm", "conv2d_backward_input_gemm", "conv2d_backward_weight_gemm"] {
        assert!(used.contains(e), "{e} never ran: {used:?}");
    }
    if g.has_subgroups() && g.is_cpu() {
        for e in [
            "conv2d_forward_3x3_subgroup",
            "conv2d_forward_3x3_subgroup12",
            "conv2d_forward_3x3_subgroup8",
            "conv2d_forward_3x3_subgroup4",
            "conv2d_backward_weight_3x3_subgroup",
            "conv2d_backward_weight_3x3_subgroup_wg16",
            "conv2d_forward_3x3s2_subgroup",
            "conv2d_backward_weight_7x7s2_subgroup",
            "conv2d_backward_input_3x3s2_subgroup",
            "conv2d_backward_input_1x1s2_subgroup",
            "conv2d_forward_1x1s2_subgroup",
            "conv2d_backward_weight_1x1s2_subgroup",
            "conv2d_backward_input_strided_subgroup",
        ] {
            assert!(used.contains(e), "{e} never ran on a device with subgroups: {used:?}");
        }
    }
}

/// A kernel that fails validation is replaced by its portable twin on that device, and the twin is then checked.
/// On a device of its own: a replacement lasts as long as the device, and the tests that share the binary's device
/// must still find the subgroup kernels there (they failed when this test happened to run first).
#[test]
fn a_failing_kernel_is_replaced_by_its_portable_twin() {
    let _turn = gpu();
    let g = fluke::gpu::Gpu::new(&fluke::testing::options_from_env(), &fluke::ops::shaders()).expect("a GPU adapter");
    // The 256-channel 12x24 layer of the default size.
    let c = fluke::model::summary::ConvShape { cin: 256, cout: 256, k: 3, stride: 1, pad: 1, h: 12, w: 24, bias: false };
    let first = fluke::validate::check_geometry(&g, &c, 2, 7);
    let fast = first[0].entries.iter().copied().find(|e| e.starts_with("conv2d_forward_3x3") || e.ends_with("_gemm")).expect("a fast forward ran");
    let rep = fluke::validate::validate_geometries(&g, std::slice::from_ref(&c), 2, &Default::default(), Some(fast));
    if fast.ends_with("_gemm") {
        // A GPU: auto runs the GEMM kernels; a failing one gives way to the register-blocked kernel.
        assert_eq!(rep.replaced, vec![fast.to_string()]);
        assert!(rep.unmended.is_empty(), "the register-blocked kernel failed: {:?}", rep.unmended);
        let again = fluke::validate::check_geometry(&g, &c, 2, 7);
        assert!(again[0].entries.iter().any(|e| e.starts_with("conv2d_forward_3x3")), "{:?}", again[0].entries);
    } else if fast.contains("subgroup") {
        assert_eq!(rep.replaced, vec![fast.to_string()]);
        assert!(!g.allowed(fast));
        assert!(rep.unmended.is_empty(), "the portable twin failed: {:?}", rep.unmended);
        let again = fluke::validate::check_geometry(&g, &c, 2, 7);
        assert!(again[0].entries.contains(&"conv2d_forward_3x3_vec4"), "{:?}", again[0].entries);
        assert!(again.iter().all(|v| v.pass));
    } else {
        // No subgroups here: the portable kernel itself failed (injected) and nothing can replace it.
        assert!(rep.replaced.is_empty());
        assert!(!rep.unmended.is_empty(), "an injected failure was not reported");
    }
}

/// The same for the GEMM family: a failing GEMM kernel gives way to the register-blocked kernel of its direction
/// (rule 4 of src/ops/conv2d/kernels.rs), which is then checked. On a device of its own (see above).
#[test]
fn a_failing_gemm_kernel_gives_way_to_the_register_blocked_kernel() {
    let _turn = gpu();
    let g = fluke::gpu::Gpu::new(&fluke::testing::options_from_env(), &fluke::ops::shaders()).expect("a GPU adapter");
    let _f = g.scoped(|o| o.family = Family::Gemm);
    let c = fluke::model::summary::ConvShape { cin: 32, cout: 24, k: 3, stride: 1, pad: 1, h: 12, w: 24, bias: false };
    let first = fluke::validate::check_geometry(&g, &c, 2, 7);
    assert_eq!(first[0].entries, ["conv2d_forward_gemm"], "the gemm family ran other kernels");
    let rep = fluke::validate::validate_geometries(&g, std::slice::from_ref(&c), 2, &Default::default(), Some("conv2d_forward_gemm"));
    assert_eq!(rep.replaced, vec!["conv2d_forward_gemm".to_string()]);
    assert!(!g.allowed("conv2d_forward_gemm"));
    assert!(rep.unmended.is_empty(), "the register-blocked kernel failed: {:?}", rep.unmended);
    let again = fluke::validate::check_geometry(&g, &c, 2, 7);
    assert!(again[0].entries.iter().any(|e| e.starts_with("conv2d_forward_3x3")), "{:?}", again[0].entries);
    // The other directions still run their GEMM kernels.
    assert!(again[1].entries.contains(&"conv2d_backward_input_gemm") && again[2].entries.contains(&"conv2d_backward_weight_gemm"));
    assert!(again.iter().all(|v| v.pass));
}
