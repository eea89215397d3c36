//! adam: the kernel vs the f64 oracle over several steps, on odd sizes, the 512x512x3x3 conv weight (2,359,296
//! elements) and a size past 65,535 workgroups (folded grid); plus properties that do not depend on the oracle.

use fluke::check::assert_all_pass;
use fluke::ops::adam;
use fluke::testing::gpu;
use fluke::Tensor;

#[test]
fn odd_sizes_match_oracle_over_steps() {
    assert_all_pass(&adam::self_check(&gpu(), false));
}

#[test]
fn conv_weight_size_matches_oracle() {
    // 512x512x3x3: 9,216 workgroups of 256.
    assert_all_pass(&adam::check_steps(&gpu(), 512 * 512 * 3 * 3, 4, 3, 1e-3));
}

#[test]
fn folded_grid_matches_oracle() {
    // 65,536 * 256 + 3 elements need 65,537 workgroups: the grid folds into 2-D.
    assert_all_pass(&adam::check_steps(&gpu(), 65_536 * 256 + 3, 2, 4, 1e-2));
}

/// Step 1 from zero moments: mhat = g and vhat = g^2 exactly, so p moves by lr * g / (|g| + eps), about lr * sign(g);
/// a zero gradient leaves p, m, v untouched.
#[test]
fn first_step_moves_by_lr_times_sign() {
    let g = gpu();
    let gv = [0.5f32, -2.0, 1e-3, 0.0, -7e-5];
    let p = Tensor::from_slice(&g, &[5], &[1.0; 5]);
    let grad = Tensor::from_slice(&g, &[5], &gv);
    let (m, v) = (Tensor::zeros(&g, &[5]), Tensor::zeros(&g, &[5]));
    adam::adam_step(&p, &grad, &m, &v, 0.01, adam::BETA1, adam::BETA2, adam::EPS, 1);
    let pv = p.to_vec();
    for (i, (&pi, &gi)) in pv.iter().zip(&gv).enumerate() {
        let want = 1.0 - 0.01 * (gi as f64) / ((gi as f64).abs() + 1e-8);
        assert!((pi as f64 - want).abs() < 1e-6, "adam_step: p[{i}] = {pi}, want {want} after one step with g = {gi}");
    }
    assert_eq!(pv[3], 1.0, "adam_step: a zero gradient must leave the parameter unchanged");
    assert_eq!(m.to_vec()[3], 0.0);
    assert_eq!(v.to_vec()[3], 0.0);
}

#[test]
#[should_panic(expected = "adam_step: step counts from 1")]
fn step_zero_panics() {
    let g = gpu();
    let t = Tensor::zeros(&g, &[4]);
    adam::adam_step(&t, &t, &t, &t, 1e-3, 0.9, 0.999, 1e-8, 0);
}

