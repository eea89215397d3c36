//! What the CPU behind llvmpipe pays for the instructions llvmpipe emits for a convolution's inner loop, against what
//! PyTorch's and numpy's kernels use: one core, 12 independent accumulators (enough to hide latency) in a stack
//! array, each loaded and stored once per statement as llvmpipe's spilled accumulators are.
//!
//!   cargo bench --bench cpu_ports
//!
//! Rows (x86-64 with AVX2 and FMA; the 512-bit rows need AVX-512F):
//! - `ymm vmulps + vaddps`: llvmpipe's multiply-add. Its NIR options lower every 32-bit `ffma` to a multiply and an
//!   add, and LLVM without fast-math does not fuse them again, so no WGSL spelling reaches `vfmadd` on lavapipe.
//! - `ymm vmulps + vaddps + vblendvps`: the same inside a shader loop, where llvmpipe writes every loop-carried value
//!   through the execution mask (`acc = select(mask, acc + w * x, acc)`): one blend per accumulator statement.
//! - `ymm 3 x (vmulps + vaddps) + vblendvps` and `9 x`: three or nine taps per statement (products summed, then
//!   written to the accumulator), the blend paid once per three or nine multiply-adds: a 3x3 kernel row per step
//!   against all three rows per step (`Rows::rows_at_once` in tools/gen_conv2d.rs).
//! - `ymm vfmadd231ps` and `zmm vfmadd231ps`: the fused 256- and 512-bit multiply-adds of BLAS and oneDNN.
//!
//! Why: on AMD's Zen 4 a multiply and an add go to separate pipes and a blend is one cheap uop, so llvmpipe's form
//! costs about what an FMA does; on Intel's recent server cores the multiplies, adds and the 3-uop `vblendvps` share
//! the same three vector ports, and the 512-bit FMAs that numpy's sgemm uses do four times the work per port-cycle.
//! The README's speed section ("Why an Intel CPU is slower") has the figures. Speed lives here, not in tests.

use std::hint::black_box;
use std::time::Instant;

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::asm;
    use std::arch::x86_64::*;

    /// Multiply-adds per iteration of every loop below, across its 12 accumulators (per SIMD vector).
    pub const ACC: usize = 12;

    /// Keeps a value in a register and opaque to the optimiser (no reassociation, no fusing across it).
    macro_rules! opaque {
        ($v:expr) => {
            asm!("/* {0} */", inout(ymm_reg) $v, options(nomem, nostack, preserves_flags))
        };
    }
    macro_rules! opaque512 {
        ($v:expr) => {
            asm!("/* {0} */", inout(zmm_reg) $v, options(nomem, nostack, preserves_flags))
        };
    }

    /// `iters` x 12 separate multiplies and adds (8 lanes). Returns a lane sum so nothing is optimised away.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn mul_add(iters: usize) -> f32 {
        let (m, c) = (_mm256_set1_ps(0.999), _mm256_set1_ps(0.001));
        let mut a = [_mm256_set1_ps(0.5); ACC];
        for _ in 0..iters {
            for v in a.iter_mut() {
                let mut p = _mm256_mul_ps(*v, m);
                opaque!(p);
                let mut s = _mm256_add_ps(p, c);
                opaque!(s);
                *v = s;
            }
        }
        lane_sum(&a)
    }

    /// As `mul_add`, each update written through a mask (`vblendvps`), as llvmpipe does inside a loop.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn mul_add_blend(iters: usize) -> f32 {
        let (m, c) = (_mm256_set1_ps(0.999), _mm256_set1_ps(0.001));
        let mut mask = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
        opaque!(mask);
        let mut a = [_mm256_set1_ps(0.5); ACC];
        for _ in 0..iters {
            for v in a.iter_mut() {
                let mut p = _mm256_mul_ps(*v, m);
                opaque!(p);
                let mut s = _mm256_add_ps(p, c);
                opaque!(s);
                let mut b = _mm256_blendv_ps(*v, s, mask);
                opaque!(b);
                *v = b;
            }
        }
        lane_sum(&a)
    }

    /// `T` taps per statement: the accumulator's product and `T - 1` independent products summed, then written
    /// through the mask: one blend per `T` multiply-adds (T = 3: a 3x3 kernel row per statement; T = 9: all nine taps).
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn taps_blend<const T: usize>(iters: usize) -> f32 {
        let m = _mm256_set1_ps(0.9 / T as f32);
        let mut x = [_mm256_set1_ps(0.001); T];
        let mut mask = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
        opaque!(mask);
        let mut a = [_mm256_set1_ps(0.5); ACC];
        for _ in 0..iters {
            for v in a.iter_mut() {
                // Opaque each time, so that the other products are not hoisted out of the loop.
                for xi in x.iter_mut().skip(1) {
                    opaque!(*xi);
                }
                let mut s = _mm256_mul_ps(*v, m);
                opaque!(s);
                for xi in x.iter().skip(1) {
                    let mut p = _mm256_mul_ps(*xi, m);
                    opaque!(p);
                    s = _mm256_add_ps(s, p);
                }
                let mut s = _mm256_add_ps(s, x[0]);
                opaque!(s);
                let mut b = _mm256_blendv_ps(*v, s, mask);
                opaque!(b);
                *v = b;
            }
        }
        lane_sum(&a)
    }

    /// `iters` x 12 fused multiply-adds, 8 lanes.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn fma256(iters: usize) -> f32 {
        let (m, c) = (_mm256_set1_ps(0.999), _mm256_set1_ps(0.001));
        let mut a = [_mm256_set1_ps(0.5); ACC];
        for _ in 0..iters {
            for v in a.iter_mut() {
                let mut s = _mm256_fmadd_ps(*v, m, c);
                opaque!(s);
                *v = s;
            }
        }
        lane_sum(&a)
    }

    /// `iters` x 12 fused multiply-adds, 16 lanes.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn fma512(iters: usize) -> f32 {
        let (m, c) = (_mm512_set1_ps(0.999), _mm512_set1_ps(0.001));
        let mut a = [_mm512_set1_ps(0.5); ACC];
        for _ in 0..iters {
            for v in a.iter_mut() {
                let mut s = _mm512_fmadd_ps(*v, m, c);
                opaque512!(s);
                *v = s;
            }
        }
        a.iter().map(|v| _mm512_reduce_add_ps(*v)).sum()
    }

    #[target_feature(enable = "avx2")]
    unsafe fn lane_sum(a: &[__m256; ACC]) -> f32 {
        let mut out = [0f32; 8];
        let mut t = _mm256_setzero_ps();
        for v in a {
            t = _mm256_add_ps(t, *v);
        }
        _mm256_storeu_ps(out.as_mut_ptr(), t);
        out.iter().sum()
    }
}

/// Best of 5 runs of `f(iters)`: nanoseconds per multiply-add of one SIMD vector.
fn best_ns(iters: usize, per_iter: usize, f: impl Fn(usize) -> f32) -> f64 {
    (0..5)
        .map(|_| {
            let t = Instant::now();
            black_box(f(black_box(iters)));
            t.elapsed().as_secs_f64() * 1e9 / (iters * per_iter) as f64
        })
        .fold(f64::INFINITY, f64::min)
}

#[cfg(target_arch = "x86_64")]
fn main() {
    use x86::*;
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()))
        .unwrap_or_else(|| "unknown CPU".into());
    println!("cpu_ports on {cpu}: one core, 12 independent accumulators (a load and a store each per statement), best of 5");
    if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
        println!("no AVX2 + FMA: nothing to measure");
        return;
    }
    let iters = 50_000_000;
    let fma = best_ns(iters, ACC, |n| unsafe { fma256(n) });
    let row = |name: &str, lanes: usize, ns: f64| {
        println!("{name:<40} {ns:6.3} ns per vector multiply-add   {:7.1} GFLOP/s   {:4.2}x the time of a ymm FMA", 2.0 * lanes as f64 / ns, ns / fma);
    };
    row("ymm vfmadd231ps (BLAS, oneDNN)", 8, fma);
    row("ymm vmulps + vaddps (llvmpipe)", 8, best_ns(iters, ACC, |n| unsafe { mul_add(n) }));
    row("ymm vmulps + vaddps + vblendvps", 8, best_ns(iters, ACC, |n| unsafe { mul_add_blend(n) }));
    row("ymm 3 x (vmulps + vaddps) + vblendvps", 8, best_ns(iters / 3, 3 * ACC, |n| unsafe { taps_blend::<3>(n) }));
    row("ymm 9 x (vmulps + vaddps) + vblendvps", 8, best_ns(iters / 9, 9 * ACC, |n| unsafe { taps_blend::<9>(n) }));
    if is_x86_feature_detected!("avx512f") {
        row("zmm vfmadd231ps (numpy's sgemm here)", 16, best_ns(iters, ACC, |n| unsafe { fma512(n) }));
    } else {
        println!("zmm vfmadd231ps: no AVX-512F on this CPU");
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn main() {
    println!("cpu_ports measures x86-64 vector instructions; nothing to measure on this architecture");
}
