//! add's gradients vs central finite differences. add has no backward kernel and no CPU backward: its whole rule is
//! the autograd wrapper (`ops::add::add`: dL/da = dL/db = dL/dy). So the tape's gradients, from the GPU, are checked
//! against finite differences of the f64 oracle's `L = sum((a + b) * g)` for a fixed random g, as the other ops'
//! backwards are. Fan-in too: in `add(x, x)` both contributions reach x and the tape sums them, dL/dx = 2 g.

use fluke::check::{assert_all_pass, compare, dot, f64s, finite_diff, rand_vec};
use fluke::ops::add;
use fluke::testing::gpu;
use fluke::{Tape, Tensor};

/// Upload f64 values as an f32 tensor (the test values are f32 numbers, so nothing is rounded).
fn upload(g: &std::sync::Arc<fluke::Gpu>, shape: &[usize], v: &[f64]) -> Tensor {
    Tensor::from_slice(g, shape, &v.iter().map(|&x| x as f32).collect::<Vec<_>>())
}

#[test]
fn add_gradients_match_finite_differences() {
    let gpu = gpu();
    // 210 elements: the scalar kernel; 1028 = 4 * 257: the vec4 one.
    for (shape, seed) in [(vec![2, 3, 5, 7], 10), (vec![4, 257], 20)] {
        let n: usize = shape.iter().product();
        let (a, b, g) = (f64s(&rand_vec(n, seed)), f64s(&rand_vec(n, seed + 1)), f64s(&rand_vec(n, seed + 2)));
        let label = format!("{shape:?}");

        // The tape: y = a + b, seeded with dL/dy = g.
        let tape = Tape::new();
        let (av, bv) = (tape.param(&upload(&gpu, &shape, &a)), tape.param(&upload(&gpu, &shape, &b)));
        let y = add::add(&tape, &av, &bv);
        let grads = tape.backward(&y, upload(&gpu, &shape, &g));

        // Finite differences of L(a, b) = sum((a + b) * g), in f64 through the oracle.
        let da = finite_diff(&a, 1e-6, |ap| dot(&add::cpu::add_forward(ap, &b), &g));
        let db = finite_diff(&b, 1e-6, |bp| dot(&add::cpu::add_forward(&a, bp), &g));
        assert_all_pass(&[
            compare("add dL/da (tape)", &label, &grads.get(&av).unwrap().to_vec(), &da, 1e-6, 1e-5),
            compare("add dL/db (tape)", &label, &grads.get(&bv).unwrap().to_vec(), &db, 1e-6, 1e-5),
        ]);

        // Fan-in: L(x) = sum((x + x) * g).
        let tape = Tape::new();
        let xv = tape.param(&upload(&gpu, &shape, &a));
        let y = add::add(&tape, &xv, &xv);
        let grads = tape.backward(&y, upload(&gpu, &shape, &g));
        let dx = finite_diff(&a, 1e-6, |xp| dot(&add::cpu::add_forward(xp, xp), &g));
        assert_all_pass(&[compare("add(x, x) dL/dx (tape)", &label, &grads.get(&xv).unwrap().to_vec(), &dx, 1e-6, 1e-5)]);
    }
}
