//! The small ops of the U-Net: relu, sigmoid, concat, upsample2x, global_avg_pool, channel_scale.
//! For each: GPU vs the f64 oracle on odd shapes (`self_check`), the oracle's backward vs central finite differences
//! of `L = sum(y * g)` for a fixed random g, and the autograd wrapper end to end on the tape.

use fluke::check::{assert_all_pass, compare, dot, f64s, finite_diff, rand_vec};
use fluke::ops::{concat, relu, sigmoid};
use fluke::testing::gpu;
use fluke::{Tape, Tensor};

/// Assert that `analytic` (a CPU backward) matches finite differences of `x -> dot(f(x), g)`.
fn assert_fd(name: &str, x: &[f64], g: &[f64], f: impl Fn(&[f64]) -> Vec<f64>, analytic: &[f64]) {
    let numeric = finite_diff(x, 1e-6, |xp| dot(&f(xp), g));
    let r = compare(name, "finite differences", &numeric.iter().map(|&v| v as f32).collect::<Vec<_>>(), analytic, 1e-6, 1e-5);
    assert!(r.pass, "{name}: CPU backward differs from finite differences: max abs {:.3e}", r.max_abs);
}

/// Uniform values in [-1, 1) kept at least 1e-3 away from 0 (so relu's kink is never inside a finite difference).
fn away_from_zero(n: usize, seed: u64) -> Vec<f64> {
    f64s(&rand_vec(n, seed)).into_iter().map(|v| if v.abs() < 1e-3 { 0.5 } else { v }).collect()
}

// ------------------------------------------------------------------------------------------------------- relu

#[test]
fn relu_matches_oracle_including_folded_grid() {
    assert_all_pass(&relu::self_check(&gpu(), true));
}

#[test]
fn relu_cpu_backward_matches_finite_differences() {
    let x = away_from_zero(97, 1);
    let g = f64s(&rand_vec(97, 2));
    let y = relu::cpu::relu_forward(&x);
    assert_fd("relu", &x, &g, relu::cpu::relu_forward, &relu::cpu::relu_backward(&y, &g));
}

// ---------------------------------------------------------------------------------------------------- sigmoid

#[test]
fn sigmoid_matches_oracle_and_is_stable_for_large_inputs() {
    assert_all_pass(&sigmoid::self_check(&gpu(), true));
    // No NaN or inf anywhere, exact limits at the extremes.
    let g = gpu();
    let y = sigmoid::sigmoid_forward(&Tensor::from_slice(&g, &[4], &[-1e30, -1000.0, 1000.0, 1e30])).to_vec();
    assert_eq!(y, vec![0.0, 0.0, 1.0, 1.0]);
}

#[test]
fn sigmoid_cpu_backward_matches_finite_differences() {
    let x: Vec<f64> = f64s(&rand_vec(97, 3)).iter().map(|v| v * 6.0).collect();
    let g = f64s(&rand_vec(97, 4));
    let y = sigmoid::cpu::sigmoid_forward(&x);
    assert_fd("sigmoid", &x, &g, sigmoid::cpu::sigmoid_forward, &sigmoid::cpu::sigmoid_backward(&y, &g));
}

#[test]
fn relu_then_sigmoid_on_the_tape() {
    // L = sum(sigmoid(relu(x)) * g): dL/dx = relu'(x) * sigmoid'(relu(x)) * g, composed from the oracles.
    let gpu = gpu();
    let x = away_from_zero(301, 5);
    let g = rand_vec(301, 6);
    let tape = Tape::new();
    let xv = tape.param(&Tensor::from_slice(&gpu, &[301], &x.iter().map(|&v| v as f32).collect::<Vec<_>>()));
    let r = relu::relu(&tape, &xv);
    let s = sigmoid::sigmoid(&tape, &r);
    let grads = tape.backward(&s, Tensor::from_slice(&gpu, &[301], &g));
    let r64 = relu::cpu::relu_forward(&x);
    let s64 = sigmoid::cpu::sigmoid_forward(&r64);
    let want = relu::cpu::relu_backward(&r64, &sigmoid::cpu::sigmoid_backward(&s64, &f64s(&g)));
    assert_all_pass(&[compare("relu+sigmoid tape", "[301]", &grads.get(&xv).unwrap().to_vec(), &want, 1e-6, 1e-5)]);
}

// ----------------------------------------------------------------------------------------------------- concat

#[test]
fn concat_matches_oracle() {
    assert_all_pass(&concat::self_check(&gpu(), true));
}

#[test]
fn concat_cpu_backward_matches_finite_differences() {
    let (n, ca, cb, hw) = (2, 3, 2, 5);
    let a = f64s(&rand_vec(n * ca * hw, 7));
    let b = f64s(&rand_vec(n * cb * hw, 8));
    let g = f64s(&rand_vec(n * (ca + cb) * hw, 9));
    let (ga, gb) = concat::cpu::concat_backward(&g, n, ca, cb, hw);
    assert_fd("concat a", &a, &g, |ap| concat::cpu::concat_forward(ap, &b, n, ca, cb, hw), &ga);
    assert_fd("concat b", &b, &g, |bp| concat::cpu::concat_forward(&a, bp, n, ca, cb, hw), &gb);
}

#[test]
fn concat_on_the_tape_splits_the_gradient() {
    let gpu = gpu();
    let (n, ca, cb, h, w) = (2, 3, 5, 3, 7);
    let tape = Tape::new();
    let a = tape.param(&Tensor::from_slice(&gpu, &[n, ca, h, w], &rand_vec(n * ca * h * w, 10)));
    let b = tape.param(&Tensor::from_slice(&gpu, &[n, cb, h, w], &rand_vec(n * cb * h * w, 11)));
    let y = concat::concat(&tape, &a, &b);
    assert_eq!(y.shape(), &[n, ca + cb, h, w]);
    let g = rand_vec(n * (ca + cb) * h * w, 12);
    let grads = tape.backward(&y, Tensor::from_slice(&gpu, y.shape(), &g));
    let (wa, wb) = concat::cpu::concat_backward(&f64s(&g), n, ca, cb, h * w);
    assert_all_pass(&[
        compare("concat tape", "ga", &grads.get(&a).unwrap().to_vec(), &wa, 0.0, 0.0),
        compare("concat tape", "gb", &grads.get(&b).unwrap().to_vec(), &wb, 0.0, 0.0),
    ]);
}
