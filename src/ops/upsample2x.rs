//! upsample2x: nearest-neighbour 2x upsampling, `y[n, c, h, w] = x[n, c, h / 2, w / 2]` (the U-Net decoder's
//! UpSampling2D; smp's `interpolate(mode="nearest")` to the skip's size is the same at the U-Net's even sizes).
//!
//! Shapes: x `[N, C, H, W]` -> y `[N, C, 2H, 2W]`.
//! Gradient: each input pixel was copied to a 2x2 block, so `dx[n, c, i, j] = sum of gy[n, c, 2i..2i+2, 2j..2j+2]`.
//! Nothing is saved.
//!
//! Launch: one invocation per output element (forward) / per input element (backward, gather form). At batch 16 the
//! last decoder block upsamples to 32 x 192 x 384 = 151 MB, over lavapipe's binding limit: the batch is split into
//! runs (`ops::runs`). When W % 4 == 0 (and every bound range starts 16-byte aligned) the `_vec4` entry points take
//! 4 input pixels per invocation instead.

use crate::check::{compare, f64s, rand_vec, CheckResult};
use crate::gpu::ShaderFile;
use crate::graph::{Tape, Var};
use crate::ops::runs::batch_runs;
use crate::ops::vec4_offset_ok;
use crate::tensor::Tensor;

pub const SHADERS: &[ShaderFile] = &[ShaderFile { file: "upsample2x.wgsl", source: include_str!("../../shaders/upsample2x.wgsl"), subgroups: false }];

crate::ops::params! {
    /// Mirror of WGSL `Params` in shaders/upsample2x.wgsl.
    pub struct Params {
        /// N * C in this launch.
        pub planes: u32,
        /// Input height and width (the output is twice each).
        pub h: u32,
        pub w: u32,
        pub _pad: u32,
    }
}

/// y = nearest 2x upsample of x  // x: [N, C, H, W] -> y: [N, C, 2H, 2W]
pub fn upsample2x_forward(x: &Tensor) -> Tensor {
    let (n, c, h, w) = x.nchw("upsample2x_forward");
    let gpu = x.gpu();
    let y = Tensor::empty(gpu, &[n, c, 2 * h, 2 * w]);
    let plane = h * w;
    // One batch item is `item` bytes of x and 4x that of y; runs bind whole items of both (see `ops::runs`).
    let item = (c * plane * 4) as u64;
    for (n0, cnt) in batch_runs(gpu, "upsample2x_forward", n, &[item, 4 * item]) {
        let p = Params { planes: (cnt * c) as u32, h: h as u32, w: w as u32, _pad: 0 };
        let binds = [
            ("x", x.bind_range(n0 * c * plane, cnt * c * plane)),
            ("y", y.bind_range(4 * n0 * c * plane, 4 * cnt * c * plane)),
        ];
        if w % 4 == 0 && binds.iter().all(|(_, b)| vec4_offset_ok(gpu, b.offset)) {
            // The same ranges through the views x4, y4; one invocation per 4 input pixels.
            gpu.dispatch_1d("upsample2x_forward_vec4", &p, &binds, (cnt * c * plane / 4) as u64);
        } else {
            gpu.dispatch_1d("upsample2x_forward", &p, &binds, (4 * cnt * c * plane) as u64);
        }
    }
    y
}

/// dx = sum of each 2x2 block of gy  // gy: [N, C, 2H, 2W] -> dx: [N, C, H, W]
pub fn upsample2x_backward(gy: &Tensor) -> Tensor {
    let (n, c, h2, w2) = gy.nchw("upsample2x_backward");
    assert!(h2 % 2 == 0 && w2 % 2 == 0, "upsample2x_backward: gy {:?} must have even H and W", gy.shape);
    let (h, w) = (h2 / 2, w2 / 2);
    let gpu = gy.gpu();
    let dx = Tensor::empty(gpu, &[n, c, h, w]);
    let plane = h * w;
    let item = (c * plane * 4) as u64;
    for (n0, cnt) in batch_runs(gpu, "upsample2x_backward", n, &[item, 4 * item]) {
        let p = Params { planes: (cnt * c) as u32, h: h as u32, w: w as u32, _pad: 0 };
        let binds = [
            ("gy", gy.bind_range(4 * n0 * c * plane, 4 * cnt * c * plane)),
            ("dx", dx.bind_range(n0 * c * plane, cnt * c * plane)),
        ];
        if w % 4 == 0 && binds.iter().all(|(_, b)| vec4_offset_ok(gpu, b.offset)) {
            gpu.dispatch_1d("upsample2x_backward_vec4", &p, &binds, (cnt * c * plane / 4) as u64);
        } else {
            gpu.dispatch_1d("upsample2x_backward", &p, &binds, (cnt * c * plane) as u64);
        }
    }
    dx
}

/// Autograd: saves nothing; dL/dx = upsample2x_backward(dL/dy).
pub fn upsample2x(tape: &Tape, x: &Var) -> Var {
    let y = upsample2x_forward(&x.t);
    tape.record("upsample2x", &[x], y, |gy| vec![Some(upsample2x_backward(gy))])
}

/// The f64 oracle. `planes` = N * C; H, W are the input's.
pub mod cpu {
    /// Each output pixel copies the input pixel at half its coordinates.
    pub fn upsample2x_forward(x: &[f64], planes: usize, h: usize, w: usize) -> Vec<f64> {
        let mut y = vec![0.0; planes * 4 * h * w];
        for pl in 0..planes {
            for oy in 0..2 * h {
                for ox in 0..2 * w {
                    y[(pl * 2 * h + oy) * 2 * w + ox] = x[(pl * h + oy / 2) * w + ox / 2];
                }
            }
        }
        y
    }
    /// Each input pixel sums the 2x2 block of gy it was copied to (the same order as the kernel).
    pub fn upsample2x_backward(gy: &[f64], planes: usize, h: usize, w: usize) -> Vec<f64> {
        let mut dx = vec![0.0; planes * h * w];
        for pl in 0..planes {
            for iy in 0..h {
                for ix in 0..w {
                    let mut s = 0.0;
                    for dy in 0..2 {
                        for dxx in 0..2 {
                            s += gy[(pl * 2 * h + 2 * iy + dy) * 2 * w + 2 * ix + dxx];
                        }
                    }
                    dx[(pl * h + iy) * w + ix] = s;
                }
            }
        }
        dx
    }
}

/// GPU vs CPU on odd shapes (N = 1, primes); `full` adds the last decoder block at batch 16 (32 x 96 x 192 -> 151 MB
/// output), which splits the batch into runs on adapters with a 128 MiB binding limit. Each row is labelled with the
/// kernels that ran, as the device profiler counted them (`take_profile`), asserted to be the ones the options and
/// the shape call for.
pub fn self_check(gpu: &std::sync::Arc<crate::gpu::Gpu>, full: bool) -> Vec<CheckResult> {
    let mut out = Vec::new();
    // W % 4 == 0 takes the vec4 kernels ((3, 2, 6, 12) also with them switched off, (1, 1, 1, 4) is one vec4).
    let mut shapes = vec![
        (1usize, 1usize, 1usize, 1usize, true),
        (1, 3, 7, 9, true),
        (2, 5, 13, 17, true),
        (3, 2, 6, 12, true),
        (3, 2, 6, 12, false),
        (1, 1, 1, 4, true),
        (2, 3, 5, 8, true),
    ];
    if full {
        shapes.push((16, 32, 96, 192, true));
    }
    gpu.set_profiling(true);
    // The entry point the last launches ran (one, however many runs), asserted to be `want`, as "vec4" or "scalar".
    let ran = |want: &str| crate::check::kernel_label(gpu, "upsample2x self_check", want);
    for (n, c, h, w, vec4) in shapes {
        let _guard = gpu.scoped(|o| o.vec4 = vec4);
        // Batch runs start at whole items of 4 * C * H * W bytes: 16-byte aligned whenever W % 4 == 0.
        let v4 = if w % 4 == 0 && vec4_offset_ok(gpu, 0) { "_vec4" } else { "" };
        let x = rand_vec(n * c * h * w, 41);
        let gy = rand_vec(n * c * 4 * h * w, 42);
        let y = upsample2x_forward(&Tensor::from_slice(gpu, &[n, c, h, w], &x)).to_vec();
        let shape = format!("[{n},{c},{h},{w}] {}", ran(&format!("upsample2x_forward{v4}")));
        out.push(compare("upsample2x_forward", &shape, &y, &cpu::upsample2x_forward(&f64s(&x), n * c, h, w), 0.0, 0.0));
        drop(y);
        let dx = upsample2x_backward(&Tensor::from_slice(gpu, &[n, c, 2 * h, 2 * w], &gy)).to_vec();
        let shape = format!("[{n},{c},{h},{w}] {}", ran(&format!("upsample2x_backward{v4}")));
        let want = cpu::upsample2x_backward(&f64s(&gy), n * c, h, w);
        out.push(compare("upsample2x_backward", &shape, &dx, &want, 1e-6, 1e-6));
    }
    gpu.set_profiling(false);
    out
}
