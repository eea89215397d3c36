//! batch_norm: every entry point vs the f64 oracle on odd shapes and at the two full U-Net sizes, the oracle's
//! backward vs finite differences, the autograd wrapper, determinism, and PyTorch golden values
//! (tools/golden_batch_norm.py -> tests/golden/batch_norm.safetensors).

use fluke::check::{assert_all_pass, compare, dot, f64s, finite_diff, rand_vec};
use fluke::ops::batch_norm::{self as bn, cpu, Case};
use fluke::testing::gpu;
use fluke::{Tape, Tensor, Var};

#[test]
fn odd_shapes_match_oracle() {
    assert_all_pass(&bn::self_check(&gpu(), false));
}

#[test]
fn full_size_matches_oracle() {
    // 4x16x192x384 and 16x64x96x192: 294,912 values per channel, 72 tiles each (18.9M values per tensor).
    let g = gpu();
    let mut res = bn::check_shape(&g, [4, 16, 192, 384], 100, false);
    res.extend(bn::check_shape(&g, [16, 64, 96, 192], 200, false));
    fluke::check::print_table(&res);
    assert_all_pass(&res);
}

/// The scalar kernels (the fallback for H*W % 4 != 0) at a full U-Net size too: their reductions must also stay
/// under llvmpipe's loop limit and match the oracle over 294,912 values per channel.
#[test]
fn full_size_scalar_kernels_match_oracle() {
    let g = gpu();
    let _scalar = g.scoped(|o| o.vec4 = false);
    let res = bn::check_shape(&g, [4, 16, 192, 384], 300, false);
    fluke::check::print_table(&res);
    assert_all_pass(&res);
}

/// loss = sum(y * r) for a fixed r; the oracle's analytic gradients must match central differences.
#[test]
fn cpu_backward_matches_finite_differences() {
    let (n, c, hw) = (2, 3, 5);
    let eps = 1e-5;
    let cs = Case::new([n, c, 1, hw], 7);
    let (x, gamma, beta, r) = (f64s(&cs.x), f64s(&cs.gamma), f64s(&cs.beta), f64s(&cs.dy));
    let (rm, rv) = (f64s(&cs.rm), f64s(&cs.rv));
    let h = 1e-5;
    let close = |what: &str, a: &[f64], b: &[f64]| {
        for (i, (u, v)) in a.iter().zip(b).enumerate() {
            assert!((u - v).abs() <= 1e-6 + 1e-5 * v.abs(), "{what}[{i}]: analytic {u} vs finite difference {v}");
        }
    };

    // Training mode: through the batch mean and variance.
    let (dx, dgamma, dbeta) = cpu::backward_train(&x, &r, n, c, hw, &gamma, eps);
    let loss_x = |xv: &[f64]| dot(&cpu::forward_train(xv, n, c, hw, &gamma, &beta, eps).0, &r);
    close("train dx", &dx, &finite_diff(&x, h, loss_x));
    let loss_g = |gv: &[f64]| dot(&cpu::forward_train(&x, n, c, hw, gv, &beta, eps).0, &r);
    close("train dgamma", &dgamma, &finite_diff(&gamma, h, loss_g));
    let loss_b = |bv: &[f64]| dot(&cpu::forward_train(&x, n, c, hw, &gamma, bv, eps).0, &r);
    close("train dbeta", &dbeta, &finite_diff(&beta, h, loss_b));

    // Eval mode: running statistics are constants.
    let (dx, dgamma, dbeta) = cpu::backward_eval(&x, &r, n, c, hw, &gamma, &rm, &rv, eps);
    let loss_x = |xv: &[f64]| dot(&cpu::normalize(xv, n, c, hw, &rm, &rv, &gamma, &beta, eps), &r);
    close("eval dx", &dx, &finite_diff(&x, h, loss_x));
    let loss_g = |gv: &[f64]| dot(&cpu::normalize(&x, n, c, hw, &rm, &rv, gv, &beta, eps), &r);
    close("eval dgamma", &dgamma, &finite_diff(&gamma, h, loss_g));
    let loss_b = |bv: &[f64]| dot(&cpu::normalize(&x, n, c, hw, &rm, &rv, &gamma, bv, eps), &r);
    close("eval dbeta", &dbeta, &finite_diff(&beta, h, loss_b));

    // Training dx sums to zero per channel (the mean is subtracted): a property independent of the formula above.
    let dx = cpu::backward_train(&x, &r, n, c, hw, &gamma, eps).0;
    for ci in 0..c {
        let s: f64 = (0..n).map(|ni| dx[(ni * c + ci) * hw..][..hw].iter().sum::<f64>()).sum();
        assert!(s.abs() < 1e-9, "train dx of channel {ci} sums to {s}, not 0");
    }
}

/// The autograd wrapper: training mode (forward, running update, gradients) and eval mode, through a tape.
#[test]
fn tape_wrapper_training_and_eval() {
    let g = gpu();
    let shape = [3, 4, 5, 6];
    let (n, c, hw) = (3, 4, 30);
    let cs = Case::new(shape, 3);
    let (eps, momentum) = (1e-5f32, 0.1f32);
    let rm = Tensor::from_slice(&g, &[c], &cs.rm);
    let rv = Tensor::from_slice(&g, &[c], &cs.rv);
    let (xd, gd, bd, dyd) = (f64s(&cs.x), f64s(&cs.gamma), f64s(&cs.beta), f64s(&cs.dy));
    let l = format!("{shape:?}");
    let mut res = Vec::new();

    // Training.
    let tape = Tape::new();
    let x = tape.param(&Tensor::from_slice(&g, &shape, &cs.x));
    let gamma = tape.param(&Tensor::from_slice(&g, &[c], &cs.gamma));
    let beta = tape.param(&Tensor::from_slice(&g, &[c], &cs.beta));
    let y = bn::batch_norm(&tape, &x, &layer(&gamma, &beta, &rm, &rv, momentum, eps), true);
    let grads = tape.backward(&y, Tensor::from_slice(&g, &shape, &cs.dy));
    let (y_cpu, mean, var) = cpu::forward_train(&xd, n, c, hw, &gd, &bd, eps as f64);
    let (dx, dgamma, dbeta) = cpu::backward_train(&xd, &dyd, n, c, hw, &gd, eps as f64);
    let (mut rm_cpu, mut rv_cpu) = (f64s(&cs.rm), f64s(&cs.rv));
    cpu::update_running(&mut rm_cpu, &mut rv_cpu, &mean, &var, n * hw, momentum as f64);
    res.push(compare("batch_norm train y", &l, &y.t.to_vec(), &y_cpu, 1e-4, 1e-4));
    res.push(compare("batch_norm train dx", &l, &grads.get(&x).unwrap().to_vec(), &dx, 1e-4, 1e-3));
    res.push(compare("batch_norm train dgamma", &l, &grads.get(&gamma).unwrap().to_vec(), &dgamma, 1e-4, 1e-4));
    res.push(compare("batch_norm train dbeta", &l, &grads.get(&beta).unwrap().to_vec(), &dbeta, 1e-4, 1e-4));
    res.push(compare("batch_norm running_mean", &l, &rm.to_vec(), &rm_cpu, 1e-5, 1e-5));
    res.push(compare("batch_norm running_var", &l, &rv.to_vec(), &rv_cpu, 1e-5, 1e-5));

    // Eval, recording: gradients with the running statistics as constants; running stats unchanged.
    let tape = Tape::new();
    let x = tape.param(&Tensor::from_slice(&g, &shape, &cs.x));
    let gamma = tape.param(&Tensor::from_slice(&g, &[c], &cs.gamma));
    let beta = tape.param(&Tensor::from_slice(&g, &[c], &cs.beta));
    let y = bn::batch_norm(&tape, &x, &layer(&gamma, &beta, &rm, &rv, momentum, eps), false);
    let grads = tape.backward(&y, Tensor::from_slice(&g, &shape, &cs.dy));
    let y_cpu = cpu::normalize(&xd, n, c, hw, &rm_cpu, &rv_cpu, &gd, &bd, eps as f64);
    let (dx, dgamma, dbeta) = cpu::backward_eval(&xd, &dyd, n, c, hw, &gd, &rm_cpu, &rv_cpu, eps as f64);
    res.push(compare("batch_norm eval y", &l, &y.t.to_vec(), &y_cpu, 1e-4, 1e-4));
    res.push(compare("batch_norm eval dx", &l, &grads.get(&x).unwrap().to_vec(), &dx, 1e-5, 1e-5));
    res.push(compare("batch_norm eval dgamma", &l, &grads.get(&gamma).unwrap().to_vec(), &dgamma, 1e-3, 1e-4));
    res.push(compare("batch_norm eval dbeta", &l, &grads.get(&beta).unwrap().to_vec(), &dbeta, 1e-4, 1e-4));
    res.push(compare("batch_norm eval leaves running_mean", &l, &rm.to_vec(), &rm_cpu, 1e-5, 1e-5));
    res.push(compare("batch_norm eval leaves running_var", &l, &rv.to_vec(), &rv_cpu, 1e-5, 1e-5));

    // Eval on an inference tape: records nothing, same output.
    let tape = Tape::inference();
    let y2 = bn::batch_norm(&tape, &Var::constant(x.t.clone()), &layer(&gamma, &beta, &rm, &rv, momentum, eps), false);
    assert!(tape.is_empty(), "batch_norm: an inference tape must record nothing");
    assert_eq!(y2.t.to_vec(), y.t.to_vec(), "batch_norm: eval output differs between recording and inference tapes");
    assert_all_pass(&res);
}

#[test]
#[should_panic(expected = "batch_norm: training needs more than 1 value per channel")]
fn training_with_one_value_per_channel_panics() {
    let g = gpu();
    let tape = Tape::new();
    let x = tape.param(&Tensor::from_slice(&g, &[1, 2, 1, 1], &[1.0, 2.0]));
    let gamma = tape.param(&Tensor::full(&g, &[2], 1.0));
    let beta = tape.param(&Tensor::zeros(&g, &[2]));
    let (rm, rv) = (Tensor::zeros(&g, &[2]), Tensor::full(&g, &[2], 1.0));
    bn::batch_norm(&tape, &x, &layer(&gamma, &beta, &rm, &rv, 0.1, 1e-5), true);
}

/// Same input, bit-identical statistics and gradients (fixed reduction order, no atomics).
#[test]
fn deterministic() {
    let g = gpu();
    let shape = [2, 3, 70, 90]; // 12,600 values per channel: 4 tiles crossing the sample boundary
    let x = Tensor::from_slice(&g, &shape, &rand_vec(2 * 3 * 70 * 90, 1));
    let dy = Tensor::from_slice(&g, &shape, &rand_vec(2 * 3 * 70 * 90, 2));
    let gamma = Tensor::full(&g, &[3], 1.5);
    let beta = Tensor::full(&g, &[3], -0.25);
    for relu in [false, true] {
        let run = || {
            let s = bn::batch_norm_stats(&x, 1e-5);
            let (dg, db) = bn::batch_norm_backward_params(&x, &dy, &s, &gamma, &beta, relu);
            let dx = bn::batch_norm_backward_input(&x, &dy, &gamma, &beta, &s, &dg, &db, relu);
            (s.to_vec(), dg.to_vec(), db.to_vec(), dx.to_vec())
        };
        let a = run();
        let b = run();
        assert!(a == b, "batch_norm (fused relu {relu}): two runs on the same input differ");
    }
}

/// The fused `batch_norm_relu` is `relu(batch_norm(..))` bit for bit: output, running statistics and the three
/// gradients (its backward masks the incoming gradient exactly where relu_backward does, then sums in the same
/// order). At the full decoder size 4x16x192x384 (vec4 kernels, 72 tiles per channel) and an odd shape (scalar
/// kernels); eval mode takes the unfused ops and must match too.
#[test]
fn fused_relu_equals_batch_norm_then_relu_bit_for_bit() {
    let g = gpu();
    for (shape, seed) in [([4, 16, 192, 384], 7), ([2, 7, 13, 11], 8)] {
        let cs = Case::new(shape, seed);
        let c = shape[1];
        let bits = |t: &Tensor| t.to_vec().iter().map(|v| v.to_bits()).collect::<Vec<u32>>();
        let run = |fused: bool, training: bool| {
            let (rm, rv) = (Tensor::from_slice(&g, &[c], &cs.rm), Tensor::from_slice(&g, &[c], &cs.rv));
            let tape = Tape::new();
            let x = tape.param(&Tensor::from_slice(&g, &shape, &cs.x));
            let gamma = tape.param(&Tensor::from_slice(&g, &[c], &cs.gamma));
            let beta = tape.param(&Tensor::from_slice(&g, &[c], &cs.beta));
            let z = if fused {
                bn::batch_norm_relu(&tape, &x, &layer(&gamma, &beta, &rm, &rv, 0.1, 1e-5), training)
            } else {
                fluke::ops::relu::relu(&tape, &bn::batch_norm(&tape, &x, &layer(&gamma, &beta, &rm, &rv, 0.1, 1e-5), training))
            };
            let grads = tape.backward(&z, Tensor::from_slice(&g, &shape, &cs.dy));
            let on = z.t.to_vec().iter().filter(|&&v| v > 0.0).count();
            let out = vec![bits(&z.t), bits(&rm), bits(&rv), bits(grads.get(&x).unwrap()), bits(grads.get(&gamma).unwrap()), bits(grads.get(&beta).unwrap())];
            (out, on)
        };
        for training in [true, false] {
            let (fused, on) = run(true, training);
            let (plain, _) = run(false, training);
            // Both classes present, or the mask would test nothing (eval mode normalises with the running
            // statistics, far from Case's channel offsets, so most outputs are positive there).
            let n = cs.x.len();
            let ok = if training { on > n / 10 && on < n * 9 / 10 } else { on > 0 && on < n };
            assert!(ok, "{shape:?} training {training}: {on} of {n} outputs positive");
            for (k, what) in ["output", "running_mean", "running_var", "dx", "dgamma", "dbeta"].iter().enumerate() {
                let bad = fused[k].iter().zip(&plain[k]).filter(|(a, b)| a != b).count();
                assert_eq!(bad, 0, "{shape:?} training {training}: fused batch_norm_relu {what} differs from batch_norm + relu in {bad} values");
            }
        }
    }
}

/// Training (forward, running update, backward) and eval (forward, backward on a recording tape) through the tape:
/// every output and gradient, as bits.
fn tape_outputs(g: &std::sync::Arc<fluke::gpu::Gpu>, cs: &Case) -> Vec<Vec<u32>> {
    let c = cs.shape[1];
    let bits = |t: &Tensor| t.to_vec().iter().map(|v| v.to_bits()).collect::<Vec<u32>>();
    let (rm, rv) = (Tensor::from_slice(g, &[c], &cs.rm), Tensor::from_slice(g, &[c], &cs.rv));
    let mut out = Vec::new();
    for training in [true, false] {
        let tape = Tape::new();
        let x = tape.param(&Tensor::from_slice(g, &cs.shape, &cs.x));
        let gamma = tape.param(&Tensor::from_slice(g, &[c], &cs.gamma));
        let beta = tape.param(&Tensor::from_slice(g, &[c], &cs.beta));
        let y = bn::batch_norm(&tape, &x, &layer(&gamma, &beta, &rm, &rv, 0.1, 1e-5), training);
        let grads = tape.backward(&y, Tensor::from_slice(g, &cs.shape, &cs.dy));
        out.extend([bits(&y.t), bits(grads.get(&x).unwrap()), bits(grads.get(&gamma).unwrap())]);
        out.extend([bits(grads.get(&beta).unwrap()), bits(&rm), bits(&rv)]);
    }
    out
}

/// Over the binding limit x, dy and the outputs are bound in batch runs. Where runs can end where tiles end (a run of
/// a multiple of TILE / gcd(H*W, TILE) samples fits the binding, as at every U-Net layer big enough to split), the
/// tiles, and so every sum, are those of one launch: bit-identical, training and eval, vec4 and scalar kernels.
#[test]
fn split_launches_match_one_launch_bit_for_bit() {
    let g = gpu();
    // (shape, binding limit): H*W = 1024, tiles of 4 samples, runs of 5 samples cut to 4 (4, 4, 1); H*W = 18,432
    // (4.5 tiles per plane), runs of 3 samples cut to 2 (2, 2).
    let cases: [([usize; 4], u64); 2] = [([9, 3, 32, 32], 5 * 3 * 1024 * 4), ([4, 2, 96, 192], 3 * 2 * 18_432 * 4)];
    for (i, (shape, limit)) in cases.into_iter().enumerate() {
        let cs = Case::new(shape, 40 + i as u64);
        let item = (shape[1] * shape[2] * shape[3] * 4) as u64;
        for vec4 in [true, false] {
            let _v = g.scoped(|o| o.vec4 = vec4);
            let whole = tape_outputs(&g, &cs);
            let split = {
                let _limit = g.scoped(|o| o.max_binding = Some(limit));
                assert!(fluke::ops::runs::batch_runs(&g, "t", shape[0], &[item]).len() > 1, "{shape:?}: no split");
                tape_outputs(&g, &cs)
            };
            for (k, (a, b)) in whole.iter().zip(&split).enumerate() {
                let what = ["train y", "train dx", "train dgamma", "train dbeta", "running_mean", "running_var"][k % 6];
                let mode = if k < 6 { "" } else { " (eval pass)" };
                assert_eq!(a, b, "batch_norm {shape:?} vec4 {vec4}: {what}{mode} differs between split and whole launches");
            }
        }
    }
}

/// Under a binding smaller than a tile's samples (1,200 bytes: 4 samples per run, whose last tile is short), the
/// reductions are grouped differently: every entry point still matches the oracle within `check_shape`'s tolerances
/// (H*W % 4 == 0: vec4 and scalar kernels; H*W = 1: scalar only).
#[test]
fn split_launches_with_short_tiles_match_oracle() {
    let g = gpu();
    let _limit = g.scoped(|o| o.max_binding = Some(1200));
    for (i, shape) in [[5usize, 2, 4, 8], [5, 64, 1, 1]].into_iter().enumerate() {
        assert!(fluke::ops::runs::batch_runs(&g, "t", 5, &[256]).len() > 1);
        for vec4 in [true, false] {
            let _v = g.scoped(|o| o.vec4 = vec4);
            assert_all_pass(&bn::check_shape(&g, shape, 60 + i as u64, true));
        }
    }
}

/// Read a float32 tensor from a safetensors file.
fn golden(st: &safetensors::SafeTensors, name: &str) -> Vec<f32> {
    let t = st.tensor(name).unwrap_or_else(|e| panic!("golden tensor {name}: {e}"));
    assert_eq!(t.dtype(), safetensors::Dtype::F32, "{name}: expected float32");
    t.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

fn golden_shape(st: &safetensors::SafeTensors, name: &str) -> Vec<usize> {
    st.tensor(name).unwrap().shape().to_vec()
}

/// PyTorch nn.BatchNorm2d (eps 1e-5, momentum 0.1): train output, gradients, running update, eval output.
#[test]
fn matches_pytorch_golden() {
    let g = gpu();
    let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/batch_norm.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut res = Vec::new();
    for key in ["a", "b"] {
        let get = |n: &str| golden(&st, &format!("{key}.{n}"));
        let shape = golden_shape(&st, &format!("{key}.x"));
        let c = shape[1];
        let l = format!("{key} {shape:?}");
        let rm = Tensor::from_slice(&g, &[c], &get("rm0"));
        let rv = Tensor::from_slice(&g, &[c], &get("rv0"));
        let tape = Tape::new();
        let x = tape.param(&Tensor::from_slice(&g, &shape, &get("x")));
        let gamma = tape.param(&Tensor::from_slice(&g, &[c], &get("gamma")));
        let beta = tape.param(&Tensor::from_slice(&g, &[c], &get("beta")));
        let y = bn::batch_norm(&tape, &x, &layer(&gamma, &beta, &rm, &rv, 0.1, 1e-5), true);
        let grads = tape.backward(&y, Tensor::from_slice(&g, &shape, &get("gy")));
        let want = |n: &str| f64s(&get(n));
        res.push(compare("golden y_train", &l, &y.t.to_vec(), &want("y_train"), 1e-5, 1e-5));
        res.push(compare("golden dx", &l, &grads.get(&x).unwrap().to_vec(), &want("dx"), 1e-5, 1e-4));
        res.push(compare("golden dgamma", &l, &grads.get(&gamma).unwrap().to_vec(), &want("dgamma"), 1e-5, 1e-5));
        res.push(compare("golden dbeta", &l, &grads.get(&beta).unwrap().to_vec(), &want("dbeta"), 1e-5, 1e-5));
        res.push(compare("golden running_mean", &l, &rm.to_vec(), &want("rm1"), 1e-6, 1e-6));
        res.push(compare("golden running_var", &l, &rv.to_vec(), &want("rv1"), 1e-6, 1e-6));
        let y_eval = bn::batch_norm(&Tape::inference(), &x, &layer(&gamma, &beta, &rm, &rv, 0.1, 1e-5), false);
        res.push(compare("golden y_eval", &l, &y_eval.t.to_vec(), &want("y_eval"), 1e-5, 1e-5));
    }
    fluke::check::print_table(&res);
    assert_all_pass(&res);
}

/// The layer of the tests' tensors.
fn layer<'a>(gamma: &'a Var, beta: &'a Var, rm: &'a Tensor, rv: &'a Tensor, momentum: f32, eps: f32) -> bn::BnLayer<'a> {
    bn::BnLayer { gamma, beta, running_mean: rm, running_var: rv, momentum, eps }
}
