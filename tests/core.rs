//! Runtime and tape: dispatch past 65,535 workgroups, gradient fan-in summed by the tape, determinism and buffer reuse.

use fluke::check::{assert_all_pass, rand_vec};
use fluke::ops::add;
use fluke::testing::gpu;
use fluke::{Tape, Tensor, Var};

#[test]
fn add_matches_oracle_including_folded_grid() {
    let g = gpu();
    assert_all_pass(&add::self_check(&g, true));
}

#[test]
fn tape_sums_fan_in_gradients() {
    // y = (a + b) + a  =>  dy/da = 2, dy/db = 1
    let g = gpu();
    let tape = Tape::new();
    let a = tape.param(&Tensor::from_slice(&g, &[5], &rand_vec(5, 1)));
    let b = tape.param(&Tensor::from_slice(&g, &[5], &rand_vec(5, 2)));
    let s = add::add(&tape, &a, &b);
    let y = add::add(&tape, &s, &a);
    let grads = tape.backward(&y, Tensor::full(&g, &[5], 1.0));
    assert_eq!(grads.get(&a).unwrap().to_vec(), vec![2.0; 5]);
    assert_eq!(grads.get(&b).unwrap().to_vec(), vec![1.0; 5]);
}

#[test]
fn inference_tape_records_nothing() {
    let g = gpu();
    let tape = Tape::inference();
    let a = tape.param(&Tensor::from_slice(&g, &[3], &[1.0, 2.0, 3.0]));
    let y = add::add(&tape, &a, &Var::constant(Tensor::full(&g, &[3], 1.0)));
    assert!(tape.is_empty());
    assert_eq!(y.t.to_vec(), vec![2.0, 3.0, 4.0]);
}

#[test]
fn fluke_check_self_test_passes_on_this_adapter() {
    // The same comparisons `fluke check` prints, for every op.
    let g = gpu();
    let results = fluke::ops::self_checks(&g, false);
    assert!(results.len() > 100, "only {} comparisons", results.len());
    assert_all_pass(&results);
}
