//! The small ops of the U-Net: relu, sigmoid, concat, upsample2x, global_avg_pool, channel_scale.
//! For each: GPU vs the f64 oracle on odd shapes (`self_check`), the oracle's backward vs central finite differences
//! of `L = sum(y * g)` for a fixed random g, and the autograd wrapper end to end on the tape. Last, every elementwise
//! and per-image op (add too) split over the binding limit against one launch.

use fluke::check::{assert_all_pass, compare, dot, f64s, finite_diff, rand_vec};
use fluke::ops::runs::{batch_runs, elem_runs};
use fluke::ops::{add, channel_scale, concat, global_avg_pool, relu, sigmoid, upsample2x};
use fluke::testing::gpu;
use fluke::{Tape, Tensor};

/// Assert that `analytic` (a CPU backward) matches finite differences of `x -> dot(f(x), g)`.
fn assert_fd(name: &str, x: &[f64], g: &[f64], f: impl Fn(&[f64]) -> Vec<f64>, analytic: &[f64]) {
    let numeric = finite_diff(x, 1e-6, |xp| dot(&f(xp), g));
    let r = compare(
        name,
        "finite differences",
        &numeric.iter().map(|&v| v as f32).collect::<Vec<_>>(),
        analytic,
        1e-6,
        1e-5,
    );
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

// ------------------------------------------------------------------------------------------------- upsample2x

#[test]
fn upsample2x_matches_oracle_including_split_batch() {
    // `full` includes [16, 32, 96, 192] -> 151 MB output: more than one run on a 128 MiB binding limit.
    assert_all_pass(&upsample2x::self_check(&gpu(), true));
}

#[test]
fn upsample2x_cpu_backward_matches_finite_differences() {
    let (planes, h, w) = (3, 3, 5);
    let x = f64s(&rand_vec(planes * h * w, 13));
    let g = f64s(&rand_vec(planes * 4 * h * w, 14));
    let f = |xp: &[f64]| upsample2x::cpu::upsample2x_forward(xp, planes, h, w);
    assert_fd("upsample2x", &x, &g, f, &upsample2x::cpu::upsample2x_backward(&g, planes, h, w));
}

#[test]
fn upsample2x_on_the_tape() {
    let gpu = gpu();
    let (n, c, h, w) = (2, 3, 5, 7);
    let tape = Tape::new();
    let x = tape.param(&Tensor::from_slice(&gpu, &[n, c, h, w], &rand_vec(n * c * h * w, 15)));
    let y = upsample2x::upsample2x(&tape, &x);
    assert_eq!(y.shape(), &[n, c, 2 * h, 2 * w]);
    let g = rand_vec(n * c * 4 * h * w, 16);
    let grads = tape.backward(&y, Tensor::from_slice(&gpu, y.shape(), &g));
    let want = upsample2x::cpu::upsample2x_backward(&f64s(&g), n * c, h, w);
    assert_all_pass(&[compare("upsample2x tape", "dx", &grads.get(&x).unwrap().to_vec(), &want, 1e-6, 1e-6)]);
}

// ------------------------------------------------------------------------------------------- global_avg_pool

#[test]
fn global_avg_pool_matches_oracle_at_full_size() {
    // `full` includes 4x16x192x384 (73,728 values per plane) and 16x64x96x192.
    assert_all_pass(&global_avg_pool::self_check(&gpu(), true));
}

#[test]
fn global_avg_pool_is_deterministic() {
    let gpu = gpu();
    let x = Tensor::from_slice(&gpu, &[2, 3, 97, 101], &rand_vec(2 * 3 * 97 * 101, 17));
    let a = global_avg_pool::global_avg_pool_forward_tiled(&x, 100).to_vec();
    let b = global_avg_pool::global_avg_pool_forward_tiled(&x, 100).to_vec();
    assert_eq!(a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), b.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
}

#[test]
fn global_avg_pool_cpu_backward_matches_finite_differences() {
    let (planes, hw) = (4, 6);
    let x = f64s(&rand_vec(planes * hw, 18));
    let g = f64s(&rand_vec(planes, 19));
    let f = |xp: &[f64]| global_avg_pool::cpu::global_avg_pool_forward(xp, planes, hw);
    assert_fd("global_avg_pool", &x, &g, f, &global_avg_pool::cpu::global_avg_pool_backward(&g, planes, hw));
}

// --------------------------------------------------------------------------------------------- channel_scale

#[test]
fn channel_scale_matches_oracle_at_full_size() {
    // `full` includes 4x16x192x384 (73,728 values per plane) and 16x64x96x192 for the scale gradient.
    assert_all_pass(&channel_scale::self_check(&gpu(), true));
}

#[test]
fn channel_scale_cpu_backward_matches_finite_differences() {
    let (planes, hw) = (4, 6);
    let x = f64s(&rand_vec(planes * hw, 20));
    let s = f64s(&rand_vec(planes, 21));
    let g = f64s(&rand_vec(planes * hw, 22));
    let dx = channel_scale::cpu::channel_scale_backward_input(&g, &s, hw);
    let ds = channel_scale::cpu::channel_scale_backward_scale(&g, &x, planes, hw);
    assert_fd("channel_scale x", &x, &g, |xp| channel_scale::cpu::channel_scale_forward(xp, &s, hw), &dx);
    assert_fd("channel_scale s", &s, &g, |sp| channel_scale::cpu::channel_scale_forward(&x, sp, hw), &ds);
}

#[test]
fn squeeze_excite_on_the_tape() {
    // The SE pattern without the 1x1 convs: y = x * sigmoid(global_avg_pool(x)); x feeds two ops, so its gradient is
    // the tape's sum of both paths. Checked against the composed oracles.
    let gpu = gpu();
    let (n, c, h, w) = (2, 3, 5, 7);
    let hw = h * w;
    let x32 = rand_vec(n * c * hw, 23);
    let g32 = rand_vec(n * c * hw, 24);
    let tape = Tape::new();
    let x = tape.param(&Tensor::from_slice(&gpu, &[n, c, h, w], &x32));
    let pooled = global_avg_pool::global_avg_pool(&tape, &x);
    let gate = sigmoid::sigmoid(&tape, &pooled);
    let y = channel_scale::channel_scale(&tape, &x, &gate);
    let grads = tape.backward(&y, Tensor::from_slice(&gpu, &[n, c, h, w], &g32));

    let (x64, g64) = (f64s(&x32), f64s(&g32));
    let m = global_avg_pool::cpu::global_avg_pool_forward(&x64, n * c, hw);
    let s = sigmoid::cpu::sigmoid_forward(&m);
    let dx_direct = channel_scale::cpu::channel_scale_backward_input(&g64, &s, hw);
    let ds = channel_scale::cpu::channel_scale_backward_scale(&g64, &x64, n * c, hw);
    let dm = sigmoid::cpu::sigmoid_backward(&s, &ds);
    let dx_pool = global_avg_pool::cpu::global_avg_pool_backward(&dm, n * c, hw);
    let want: Vec<f64> = dx_direct.iter().zip(&dx_pool).map(|(a, b)| a + b).collect();
    // And the whole composition against finite differences, in f64.
    let f = |xp: &[f64]| {
        let s = sigmoid::cpu::sigmoid_forward(&global_avg_pool::cpu::global_avg_pool_forward(xp, n * c, hw));
        channel_scale::cpu::channel_scale_forward(xp, &s, hw)
    };
    assert_fd("squeeze_excite", &x64, &g64, f, &want);
    assert_all_pass(&[compare("squeeze_excite tape", "dx", &grads.get(&x).unwrap().to_vec(), &want, 1e-6, 1e-5)]);
}

// ------------------------------------------------------------------------------------- split launches (ops::runs)

fn bits(t: &Tensor) -> Vec<u32> {
    t.to_vec().iter().map(|v| v.to_bits()).collect()
}

#[test]
fn launches_split_over_the_binding_limit_give_identical_results() {
    // Every op run whole and again with a 1,200-byte binding limit (several launches over batch runs or element
    // ranges, each binding a byte range of the tensors): the results must be bit-identical. One batch item is
    // 2 x 4 x 8 floats = 256 bytes, a multiple of any adapter's binding offset alignment.
    let gpu = gpu();
    let (n, c, h, w) = (5, 2, 4, 8);
    let numel = n * c * h * w;
    let x = Tensor::from_slice(&gpu, &[n, c, h, w], &rand_vec(numel, 91));
    let b = Tensor::from_slice(&gpu, &[n, 2 * c, h, w], &rand_vec(2 * numel, 92));
    let g = Tensor::from_slice(&gpu, &[n, c, h, w], &rand_vec(numel, 93));
    let g_cat = Tensor::from_slice(&gpu, &[n, 3 * c, h, w], &rand_vec(3 * numel, 94));
    let g_up = Tensor::from_slice(&gpu, &[n, c, 2 * h, 2 * w], &rand_vec(4 * numel, 95));
    let s = Tensor::from_slice(&gpu, &[n, c, 1, 1], &rand_vec(n * c, 96));
    let run_all = || -> Vec<(&str, Vec<u32>)> {
        let (ga, gb) = concat::concat_backward(&g_cat, c);
        vec![
            ("add_forward", bits(&add::add_forward(&x, &g))),
            ("relu_forward", bits(&relu::relu_forward(&x))),
            ("relu_backward", bits(&relu::relu_backward(&x, &g))),
            ("sigmoid_forward", bits(&sigmoid::sigmoid_forward(&x))),
            ("sigmoid_backward", bits(&sigmoid::sigmoid_backward(&x, &g))),
            ("concat_forward", bits(&concat::concat_forward(&x, &b))),
            ("concat_backward a", bits(&ga)),
            ("concat_backward b", bits(&gb)),
            ("upsample2x_forward", bits(&upsample2x::upsample2x_forward(&x))),
            ("upsample2x_backward", bits(&upsample2x::upsample2x_backward(&g_up))),
            ("global_avg_pool_forward", bits(&global_avg_pool::global_avg_pool_forward_tiled(&x, 5))),
            ("global_avg_pool_backward", bits(&global_avg_pool::global_avg_pool_backward(&s, &x.shape))),
            ("channel_scale_forward", bits(&channel_scale::channel_scale_forward(&x, &s))),
            ("channel_scale_backward_input", bits(&channel_scale::channel_scale_backward_input(&g, &s))),
            ("channel_scale_backward_scale", bits(&channel_scale::channel_scale_backward_scale_tiled(&g, &x, 5))),
        ]
    };
    let whole = run_all();
    let split = {
        let _limit = gpu.scoped(|o| o.max_binding = Some(1200));
        // The override really splits: 5 items of 256 bytes (4 per run), 320 floats in two element ranges.
        assert_eq!(batch_runs(&gpu, "t", n, &[256]).len(), 2);
        assert_eq!(elem_runs(&gpu, numel).len(), 2);
        run_all()
    };
    for ((name, a), (_, b)) in whole.iter().zip(&split) {
        assert_eq!(a, b, "{name}: split launches differ from one launch");
    }
}
