//! bce_dice: every entry point vs the f64 oracle (odd sizes, extreme logits, full 16x1x192x384), the oracle's
//! gradient vs finite differences, stability at |z| = 1e4, the autograd wrapper, determinism, and PyTorch golden
//! values (tools/golden_bce_dice.py -> tests/golden/bce_dice.safetensors).

use fluke::check::{assert_all_pass, compare, f64s, finite_diff};
use fluke::ops::bce_dice::{self as bd, cpu};
use fluke::testing::gpu;
use fluke::{Tape, Tensor};

#[test]
fn odd_sizes_match_oracle() {
    assert_all_pass(&bd::self_check(&gpu(), false));
}

#[test]
fn full_size_matches_oracle() {
    // 16x1x192x384 = 1,179,648 values: 288 tiles.
    let res = bd::check_shape(&gpu(), [16, 1, 192, 384], 5, 6.0, false);
    fluke::check::print_table(&res);
    assert_all_pass(&res);
}

#[test]
fn cpu_backward_matches_finite_differences() {
    let (zv, tv) = bd::case(40, 9, 4.0, false);
    let (z, t) = (f64s(&zv), f64s(&tv));
    let gy = 1.3;
    let dz = cpu::backward(&z, &t, gy);
    let fd = finite_diff(&z, 1e-6, |zz| gy * cpu::forward(zz, &t).0);
    for (i, (a, b)) in dz.iter().zip(&fd).enumerate() {
        assert!((a - b).abs() <= 1e-8 + 1e-5 * b.abs(), "dz[{i}]: analytic {a} vs finite difference {b}");
    }
}

/// |z| = 1e4 everywhere, right and wrong signs: finite loss and gradient on the GPU, matching the oracle.
#[test]
fn stable_for_huge_logits() {
    let g = gpu();
    let zv: Vec<f32> = (0..1000).map(|i| if i % 3 == 0 { 1e4 } else { -1e4 }).collect();
    let tv: Vec<f32> = (0..1000).map(|i| if i % 2 == 0 { 1.0 } else { 0.0 }).collect();
    let z = Tensor::from_slice(&g, &[1, 1, 10, 100], &zv);
    let t = Tensor::from_slice(&g, &[1, 1, 10, 100], &tv);
    let (loss, dice, saved) = bd::bce_dice_forward(&z, &t);
    let dz = bd::bce_dice_backward(&z, &t, &saved, &Tensor::full(&g, &[1], 1.0)).to_vec();
    let (l, d) = (loss.to_vec()[0], dice.to_vec()[0]);
    assert!(l.is_finite() && d.is_finite(), "bce_dice: loss {l} / dice {d} not finite at |z| = 1e4");
    assert!(dz.iter().all(|v| v.is_finite()), "bce_dice: non-finite gradient at |z| = 1e4");
    let (zd, td) = (f64s(&zv), f64s(&tv));
    let (l_cpu, d_cpu, _) = cpu::forward(&zd, &td);
    let res = vec![
        compare("bce_dice loss |z|=1e4", "[1000]", &[l], &[l_cpu], 1e-5, 1e-5),
        compare("bce_dice dice |z|=1e4", "[1000]", &[d], &[d_cpu], 1e-6, 1e-5),
        compare("bce_dice dz |z|=1e4", "[1000]", &dz, &cpu::backward(&zd, &td, 1.0), 1e-7, 1e-4),
    ];
    assert_all_pass(&res);
}

#[test]
fn tape_wrapper() {
    let g = gpu();
    let shape = [2, 1, 9, 13];
    let (zv, tv) = bd::case(2 * 9 * 13, 21, 3.0, false);
    let tape = Tape::new();
    let z = tape.param(&Tensor::from_slice(&g, &shape, &zv));
    let t = Tensor::from_slice(&g, &shape, &tv);
    let (loss, dice) = bd::bce_dice(&tape, &z, &t);
    assert_eq!(loss.shape(), &[1]);
    assert_eq!(dice.shape, vec![1]);
    let grads = tape.backward(&loss, Tensor::full(&g, &[1], 1.0));
    let (zd, td) = (f64s(&zv), f64s(&tv));
    let (l_cpu, d_cpu, _) = cpu::forward(&zd, &td);
    let n = zd.len() as f64;
    assert_all_pass(&[
        compare("bce_dice loss", "tape", &loss.t.to_vec(), &[l_cpu], 1e-6, 1e-5),
        compare("bce_dice dice", "tape", &dice.to_vec(), &[d_cpu], 1e-6, 1e-5),
        compare("bce_dice dz", "tape", &grads.get(&z).unwrap().to_vec(), &cpu::backward(&zd, &td, 1.0), 1e-5 / n, 1e-4),
    ]);
}

#[test]
fn deterministic() {
    let g = gpu();
    let shape = [3, 1, 77, 91]; // 21,021 values: 6 tiles, the last one short
    let (zv, tv) = bd::case(3 * 77 * 91, 4, 5.0, true);
    let z = Tensor::from_slice(&g, &shape, &zv);
    let t = Tensor::from_slice(&g, &shape, &tv);
    let gy = Tensor::full(&g, &[1], 1.0);
    let run = || {
        let (l, d, s) = bd::bce_dice_forward(&z, &t);
        let dz = bd::bce_dice_backward(&z, &t, &s, &gy);
        (l.to_vec(), d.to_vec(), s.to_vec(), dz.to_vec(), bd::bce_dice_hard_stats(&z, &t).to_vec())
    };
    assert!(run() == run(), "bce_dice: two runs on the same input differ");
}

/// The loss over a batch larger than one binding: z, t and dz bound in element ranges, each range's tiles merged
/// in order by one merge. Runs of whole tiles (any binding of 16 KiB or more, so every real adapter) give the same
/// bits as one launch; runs shorter than a tile (a 1,200-byte test limit) regroup the sums and stay within the
/// oracle tolerances.
#[test]
fn split_launches_match_one_launch() {
    let g = gpu();
    let shape = [3, 1, 77, 91]; // 21,021 values: 6 tiles, the last one short
    let n = 3 * 77 * 91;
    let (zv, tv) = bd::case(n, 4, 5.0, true);
    let z = Tensor::from_slice(&g, &shape, &zv);
    let t = Tensor::from_slice(&g, &shape, &tv);
    let gy = Tensor::full(&g, &[1], 0.75);
    let run = || {
        let tape = Tape::new();
        let zp = tape.param(&z);
        let (loss, dice) = bd::bce_dice(&tape, &zp, &t);
        let dz = tape.backward(&loss, gy.clone()).get(&zp).unwrap().to_vec();
        [loss.t.to_vec(), dice.to_vec(), dz, bd::bce_dice_hard_stats(&z, &t).to_vec()]
    };
    let bits = |v: &[Vec<f32>; 4]| v.iter().map(|x| x.iter().map(|f| f.to_bits()).collect::<Vec<_>>()).collect::<Vec<_>>();
    let whole = run();
    let split = {
        // 20,000 bytes: element ranges of up to 5,000 floats, cut to whole tiles of 4,096: 6 launches.
        let _limit = g.scoped(|o| o.max_binding = Some(20_000));
        assert!(fluke::ops::runs::elem_runs(&g, n).len() > 1, "the test limit must split the launches");
        run()
    };
    assert_eq!(bits(&whole), bits(&split), "bce_dice: launches split at whole tiles differ from one launch");
    // Runs of at most 300 floats, shorter than a tile: the oracle's tolerances hold (forward, backward, hard stats).
    let _limit = g.scoped(|o| o.max_binding = Some(1200));
    let runs = fluke::ops::runs::elem_runs(&g, n);
    assert!(runs.len() > 1 && runs[0].1 < bd::TILE, "the test limit must split into runs shorter than a tile");
    assert_all_pass(&bd::check_shape(&g, shape, 4, 5.0, true));
}

fn golden(st: &safetensors::SafeTensors, name: &str) -> (Vec<usize>, Vec<f32>) {
    let t = st.tensor(name).unwrap_or_else(|e| panic!("golden tensor {name}: {e}"));
    assert_eq!(t.dtype(), safetensors::Dtype::F32, "{name}: expected float32");
    let v = t.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    (t.shape().to_vec(), v)
}

/// PyTorch: binary_cross_entropy_with_logits (mean) + 1 - soft Dice, and its autograd dz (in float64).
#[test]
fn matches_pytorch_golden() {
    let g = gpu();
    let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/bce_dice.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut res = Vec::new();
    for key in ["a", "b"] {
        let (shape, zv) = golden(&st, &format!("{key}.z"));
        let tv = golden(&st, &format!("{key}.t")).1;
        let want = |n: &str| f64s(&golden(&st, &format!("{key}.{n}")).1);
        let tape = Tape::new();
        let z = tape.param(&Tensor::from_slice(&g, &shape, &zv));
        let (loss, dice) = bd::bce_dice(&tape, &z, &Tensor::from_slice(&g, &shape, &tv));
        let grads = tape.backward(&loss, Tensor::full(&g, &[1], 1.0));
        let l = format!("{key} {shape:?}");
        let n = zv.len() as f64;
        res.push(compare("golden loss", &l, &loss.t.to_vec(), &want("loss"), 1e-6, 1e-5));
        res.push(compare("golden dice", &l, &dice.to_vec(), &want("dice"), 1e-6, 1e-5));
        res.push(compare("golden dz", &l, &grads.get(&z).unwrap().to_vec(), &want("dz"), 1e-5 / n, 1e-4));
    }
    fluke::check::print_table(&res);
    assert_all_pass(&res);
}
