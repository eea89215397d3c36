//! Runtime and tape: dispatch past 65,535 workgroups, gradient fan-in summed by the tape, determinism and buffer reuse,
//! per-dispatch profiling (GPU timestamps and the wall-clock fallback).

use fluke::check::{assert_all_pass, rand_vec};
use fluke::ops::{add, relu};
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

/// A dry run is this thread's only: while one thread is inside `Gpu::dry_run` (its dispatches dropped, its readbacks
/// zeros), another thread's uploads, dispatches and readbacks on the same device run for real, and the dry thread
/// still reads zeros and lists its kernels. On a device of its own (the shared one checks turns).
#[test]
fn a_dry_run_on_one_thread_leaves_another_threads_work_running() {
    let _turn = gpu();
    let g = fluke::gpu::Gpu::new(&fluke::testing::options_from_env(), &fluke::ops::shaders()).expect("a GPU adapter");
    let inside = std::sync::Barrier::new(2);
    let done = std::sync::Barrier::new(2);
    std::thread::scope(|s| {
        let dry = s.spawn(|| {
            g.dry_run(|| {
                inside.wait();
                // The other thread works now; this one stays dry throughout.
                done.wait();
                assert!(g.is_dry());
                let a = Tensor::from_slice(&g, &[4], &[1.0, 2.0, 3.0, 4.0]);
                let y = relu::relu_forward(&a);
                assert_eq!(y.to_vec(), vec![0.0; 4], "a dry run read back values");
            })
        });
        inside.wait();
        assert!(!g.is_dry(), "another thread's dry run made this thread dry");
        let before = g.dispatches_total();
        let a = Tensor::from_slice(&g, &[4], &[-1.0, 2.0, -3.0, 4.0]);
        let y = relu::relu_forward(&a);
        assert_eq!(y.to_vec(), vec![0.0, 2.0, 0.0, 4.0], "work beside another thread's dry run was dropped");
        assert!(g.dispatches_total() > before, "the dispatch beside a dry run did not run");
        done.wait();
        let listed = dry.join().expect("the dry thread panicked").entries();
        assert!(!listed.is_empty() && listed.iter().all(|e| e.starts_with("relu_forward")), "the dry run listed {listed:?}");
    });
}

#[test]
fn fluke_check_self_test_passes_on_this_adapter() {
    // The same comparisons `fluke check` prints, for every op.
    let g = gpu();
    let results = fluke::ops::self_checks(&g, false);
    assert!(results.len() > 100, "only {} comparisons", results.len());
    assert_all_pass(&results);
}

/// Profile `add_forward` twice and `relu_forward` once on 2^20 elements (their vec4 entry points); check names, call counts, times and values.
fn profile_two_kernels(g: &std::sync::Arc<fluke::gpu::Gpu>) -> Vec<(&'static str, u64, f64)> {
    let n = 1 << 20;
    let a = Tensor::from_slice(g, &[n], &rand_vec(n, 1));
    let b = Tensor::from_slice(g, &[n], &rand_vec(n, 2));
    g.set_profiling(true);
    let y = add::add_forward(&a, &b);
    let y = add::add_forward(&y, &b);
    let r = relu::relu_forward(&y);
    let profile = g.take_profile();
    g.set_profiling(false);
    // Profiling must not change results: r = max(a + 2b, 0).
    let (av, bv, rv) = (a.to_vec(), b.to_vec(), r.to_vec());
    for i in (0..n).step_by(4099) {
        assert!((rv[i] - (av[i] + 2.0 * bv[i]).max(0.0)).abs() < 1e-5, "value {i} changed under profiling");
    }
    profile
}

fn assert_profile(profile: &[(&'static str, u64, f64)], timing: &str) {
    let mut rows: Vec<_> = profile.iter().map(|&(name, calls, _)| (name, calls)).collect();
    rows.sort();
    // 2^20 elements take the vec4 kernels.
    assert_eq!(rows, vec![("add_forward_vec4", 2), ("relu_forward_vec4", 1)], "{timing} profile: {profile:?}");
    for &(name, _, secs) in profile {
        // 2^20 elements take far more than one tick and far less than a minute, on any adapter.
        assert!(secs.is_finite() && secs > 0.0 && secs < 60.0, "{timing} profile: {name} took {secs} s");
    }
}

#[test]
fn profiling_times_every_dispatch_with_gpu_timestamps_when_available() {
    let g = gpu();
    let timing = g.profile_timing();
    assert_eq!(timing, if g.has_timestamps() { "gpu" } else { "wall" });
    assert_profile(&profile_two_kernels(&g), timing);
}

#[test]
fn profiling_falls_back_to_wall_clock() {
    let g = gpu();
    g.set_wall_clock_profiling(true);
    assert_eq!(g.profile_timing(), "wall");
    assert_profile(&profile_two_kernels(&g), "wall");
    g.set_wall_clock_profiling(false);
}

#[test]
fn timestamp_profile_survives_more_dispatches_than_one_query_set_holds() {
    // One query set holds 2048 dispatches; 2500 forces a read-back and a restart mid-run. profile_seconds sums them.
    let g = gpu();
    let a = Tensor::from_slice(&g, &[4], &[1.0, 2.0, 3.0, 4.0]);
    let one = Tensor::full(&g, &[4], 1.0);
    let mut y = a.clone();
    let secs = g.profile_seconds(|| {
        for _ in 0..2500 {
            y = add::add_forward(&y, &one);
        }
    });
    assert!(secs.is_finite() && secs > 0.0, "2500 dispatches took {secs} s");
    assert_eq!(y.to_vec(), vec![2501.0, 2502.0, 2503.0, 2504.0]);
    // And the counts: profiling again, by hand.
    g.set_profiling(true);
    for _ in 0..2500 {
        y = add::add_forward(&y, &one);
    }
    let profile = g.take_profile();
    g.set_profiling(false);
    assert_eq!(profile.len(), 1);
    assert_eq!((profile[0].0, profile[0].1), ("add_forward_vec4", 2500));
}
