//! max_pool2d: GPU vs the f64 oracle on odd shapes, PyTorch golden values (outputs, indices, input gradients and the
//! output-size rule), the first-maximum rule on ties, finite differences of the oracle's backward, and the tape.
//!
//! Golden file: tests/golden/max_pool2d.safetensors, written by tools/golden_max_pool2d.py (PyTorch CPU, float32):
//!   y, idx = F.max_pool2d(x, k, s, p, ceil_mode=..., return_indices=True); y.backward(gy); dx = x.grad

use fluke::check::{assert_all_pass, compare, dot, f64s, finite_diff, rand_vec};
use fluke::ops::max_pool2d::{self, cpu, output_size};
use fluke::testing::gpu;
use fluke::{Tape, Tensor};
use safetensors::SafeTensors;

const GOLDEN: &[u8] = include_bytes!("../golden/max_pool2d.safetensors");

/// A golden tensor as (shape, f32 values).
fn golden(st: &SafeTensors, name: &str) -> (Vec<usize>, Vec<f32>) {
    let t = st.tensor(name).unwrap_or_else(|e| panic!("golden tensor {name}: {e}"));
    let v = t.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    (t.shape().to_vec(), v)
}

/// n distinct values in [-0.5, 0.5), in a seeded random order: no ties, neighbours at least 1/n apart.
fn distinct_values(n: usize, seed: u64) -> Vec<f32> {
    let keys = rand_vec(n, seed);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| keys[a].total_cmp(&keys[b]));
    let mut v = vec![0.0; n];
    for (rank, &i) in order.iter().enumerate() {
        v[i] = rank as f32 / n as f32 - 0.5;
    }
    v
}

#[test]
fn max_pool2d_matches_oracle() {
    assert_all_pass(&max_pool2d::self_check(&gpu(), true));
}

#[test]
fn max_pool2d_matches_pytorch_golden() {
    let gpu = gpu();
    let st = SafeTensors::deserialize(GOLDEN).unwrap();
    let mut results = Vec::new();
    let mut cases = 0;
    while st.tensor(&format!("c{cases}.meta")).is_ok() {
        let c = format!("c{cases}");
        let (_, meta) = golden(&st, &format!("{c}.meta"));
        let (k, s, p, ceil) = (meta[0] as usize, meta[1] as usize, meta[2] as usize, meta[3] != 0.0);
        let (xs, x) = golden(&st, &format!("{c}.x"));
        let (ys, y) = golden(&st, &format!("{c}.y"));
        let (_, idx) = golden(&st, &format!("{c}.idx"));
        let (_, gy) = golden(&st, &format!("{c}.gy"));
        let (_, dx) = golden(&st, &format!("{c}.dx"));
        let label = format!("{c} {xs:?} k{k} s{s} p{p} ceil {ceil}");

        let (gy_t, ga_t) = max_pool2d::max_pool2d_forward(&Tensor::from_slice(&gpu, &xs, &x), k, s, p, ceil);
        assert_eq!(gy_t.shape, ys, "{label}: output shape differs from PyTorch's");
        results.push(compare("max_pool2d_forward vs torch", &label, &gy_t.to_vec(), &f64s(&y), 0.0, 0.0));
        results.push(compare(
            "max_pool2d_forward vs torch",
            &format!("{label} idx"),
            &ga_t.to_vec(),
            &f64s(&idx),
            0.0,
            0.0,
        ));
        let gdx = max_pool2d::max_pool2d_backward(&Tensor::from_slice(&gpu, &ys, &gy), &ga_t, &xs, k, s, p, ceil);
        results.push(compare("max_pool2d_backward vs torch", &label, &gdx.to_vec(), &f64s(&dx), 1e-6, 1e-6));

        // The oracle agrees with PyTorch too.
        let planes = xs[0] * xs[1];
        let (cy, carg) = cpu::max_pool2d_forward(&f64s(&x), planes, xs[2], xs[3], k, s, p, ceil);
        results.push(compare("cpu::max_pool2d_forward vs torch", &label, &y, &cy, 0.0, 0.0));
        let cdx = cpu::max_pool2d_backward(&f64s(&gy), &carg, planes, xs[2], xs[3]);
        results.push(compare("cpu::max_pool2d_backward vs torch", &label, &dx, &cdx, 1e-6, 1e-6));
        cases += 1;
    }
    assert_eq!(cases, 8, "expected 8 golden cases");
    assert_all_pass(&results);
}

#[test]
fn output_size_follows_pytorch() {
    let st = SafeTensors::deserialize(GOLDEN).unwrap();
    let (shape, rows) = golden(&st, "out_sizes");
    assert!(shape[0] > 1000 && shape[1] == 6);
    for r in rows.chunks_exact(6) {
        let [input, k, s, p, ceil, want] = [r[0], r[1], r[2], r[3], r[4], r[5]].map(|v| v as usize);
        let got = output_size(input, k, s, p, ceil != 0);
        assert_eq!(got, want, "output_size(input {input}, k {k}, s {s}, p {p}, ceil {}) vs PyTorch", ceil != 0);
    }
    // The U-Net's stem pool: 96x192 -> 48x96 with timm's (3, 2, 0, ceil) and with resnet-style (3, 2, 1).
    assert_eq!((output_size(96, 3, 2, 0, true), output_size(192, 3, 2, 0, true)), (48, 96));
    assert_eq!((output_size(96, 3, 2, 1, false), output_size(192, 3, 2, 1, false)), (48, 96));
    // ceil_mode with pad 1 keeps a last window that starts on the final pixel: 192 -> 97.
    assert_eq!(output_size(192, 3, 2, 1, true), 97);
}

#[test]
fn ties_go_to_the_first_maximum_in_window_order() {
    // Values on a coarse grid (many ties inside each window): GPU argmax and gradient routing match the oracle's
    // strict-> rule. A constant plane sends each window's gradient to its first (top-left in-image) element.
    let gpu = gpu();
    let (n, c, h, w) = (2, 3, 11, 13);
    let x: Vec<f32> = rand_vec(n * c * h * w, 81).iter().map(|v| (v * 2.0).round() / 2.0).collect();
    let mut results = Vec::new();
    for (p, ceil) in [(0, true), (1, false), (1, true)] {
        let (oh, ow) = (output_size(h, 3, 2, p, ceil), output_size(w, 3, 2, p, ceil));
        let gy = rand_vec(n * c * oh * ow, 82);
        let (_, arg) = max_pool2d::max_pool2d_forward(&Tensor::from_slice(&gpu, &[n, c, h, w], &x), 3, 2, p, ceil);
        let (_, want_arg) = cpu::max_pool2d_forward(&f64s(&x), n * c, h, w, 3, 2, p, ceil);
        let label = format!("ties p{p} ceil {ceil}");
        let want_f: Vec<f64> = want_arg.iter().map(|&a| a as f64).collect();
        results.push(compare("max_pool2d_forward", &label, &arg.to_vec(), &want_f, 0.0, 0.0));
        let dx = max_pool2d::max_pool2d_backward(
            &Tensor::from_slice(&gpu, &[n, c, oh, ow], &gy),
            &arg,
            &[n, c, h, w],
            3,
            2,
            p,
            ceil,
        );
        results.push(compare(
            "max_pool2d_backward",
            &label,
            &dx.to_vec(),
            &cpu::max_pool2d_backward(&f64s(&gy), &want_arg, n * c, h, w),
            1e-6,
            1e-6,
        ));
    }
    assert_all_pass(&results);
    // Constant plane, 5x5, k3 s2 p1: windows start at rows/cols -1, 1, 3 -> first in-image elements 0, 1, 3.
    let (_, arg) = max_pool2d::max_pool2d_forward(&Tensor::full(&gpu, &[1, 1, 5, 5], 1.0), 3, 2, 1, false);
    let firsts: Vec<f32> = [0, 1, 3].iter().flat_map(|&r| [0, 1, 3].map(|c| (r * 5 + c) as f32)).collect();
    assert_eq!(arg.to_vec(), firsts);
}

#[test]
fn max_pool2d_cpu_backward_matches_finite_differences() {
    // Distinct inputs at least 1/n apart: a 1e-6 step never changes a window's argmax.
    for (p, ceil) in [(0, true), (1, false), (1, true)] {
        let (planes, h, w) = (2, 7, 9);
        let x = f64s(&distinct_values(planes * h * w, 83));
        let (oh, ow) = (output_size(h, 3, 2, p, ceil), output_size(w, 3, 2, p, ceil));
        let g = f64s(&rand_vec(planes * oh * ow, 84));
        let (_, arg) = cpu::max_pool2d_forward(&x, planes, h, w, 3, 2, p, ceil);
        let analytic = cpu::max_pool2d_backward(&g, &arg, planes, h, w);
        let numeric = finite_diff(&x, 1e-6, |xp| dot(&cpu::max_pool2d_forward(xp, planes, h, w, 3, 2, p, ceil).0, &g));
        let r = compare(
            "cpu::max_pool2d_backward",
            "finite differences",
            &numeric.iter().map(|&v| v as f32).collect::<Vec<_>>(),
            &analytic,
            1e-6,
            1e-5,
        );
        assert!(r.pass, "p {p} ceil {ceil}: max abs {:.3e}", r.max_abs);
    }
}

#[test]
fn max_pool2d_on_the_tape() {
    let gpu = gpu();
    let (n, c, h, w) = (2, 3, 13, 17);
    let x32 = distinct_values(n * c * h * w, 85);
    let tape = Tape::new();
    let x = tape.param(&Tensor::from_slice(&gpu, &[n, c, h, w], &x32));
    let y = max_pool2d::max_pool2d(&tape, &x, 3, 2, 0, true);
    assert_eq!(y.shape(), &[n, c, 6, 8]);
    let g = rand_vec(y.t.numel(), 86);
    let grads = tape.backward(&y, Tensor::from_slice(&gpu, y.shape(), &g));
    let (_, arg) = cpu::max_pool2d_forward(&f64s(&x32), n * c, h, w, 3, 2, 0, true);
    let want = cpu::max_pool2d_backward(&f64s(&g), &arg, n * c, h, w);
    assert_all_pass(&[compare("max_pool2d tape", "dx", &grads.get(&x).unwrap().to_vec(), &want, 1e-6, 1e-6)]);
}

#[test]
fn split_launches_give_identical_results() {
    // With a 1,200-byte binding limit the batch of 5 runs as one item per launch (x item: 4 x 8 x 8 floats = 1 KiB,
    // y item: 4 x 4 x 4 floats = 256 bytes, both multiples of any binding offset alignment).
    let gpu = gpu();
    let (n, c, h, w) = (5, 4, 8, 8);
    let x = Tensor::from_slice(&gpu, &[n, c, h, w], &rand_vec(n * c * h * w, 87));
    let gy = Tensor::from_slice(&gpu, &[n, c, 4, 4], &rand_vec(n * c * 16, 88));
    let run = || {
        let (y, arg) = max_pool2d::max_pool2d_forward(&x, 3, 2, 0, true);
        let dx = max_pool2d::max_pool2d_backward(&gy, &arg, &x.shape, 3, 2, 0, true);
        [y.to_vec(), arg.to_vec(), dx.to_vec()]
    };
    let whole = run();
    let split = {
        let _small = gpu.scoped(|o| o.max_binding = Some(1200));
        run()
    };
    assert_eq!(fluke::ops::runs::batch_runs_with("t", n, &[1024, 256], 1200, 256).len(), 5);
    for (name, (a, b)) in ["y", "argmax", "dx"].iter().zip(whole.iter().zip(&split)) {
        assert_eq!(a, b, "max_pool2d {name}: split launches differ from one launch");
    }
}
