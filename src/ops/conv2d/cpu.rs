//! The f64 oracle: plain loops over the formulas in the module header (rayon over output channels so the full-size
//! tests stay fast). Shapes are passed explicitly; tensors are flat NCHW / OIHW. Also the packed weight layouts the
//! register-blocked kernels read (`packed_weights`), to check the packing kernels against.

use rayon::prelude::*;

use super::Geom;

/// y [N, Cout, OH, OW]
pub fn forward(x: &[f64], x_shape: &[usize], w: &[f64], w_shape: &[usize], b: Option<&[f64]>, stride: usize, pad: usize) -> Vec<f64> {
    let g = Geom::new("cpu::forward", x_shape, w_shape, stride, pad);
    let mut y = vec![0.0; g.n * g.cout * g.oh * g.ow];
    // One chunk per (n, co) output plane.
    y.par_chunks_mut(g.oh * g.ow).enumerate().for_each(|(nc, plane)| {
        let (n, co) = (nc / g.cout, nc % g.cout);
        plane.fill(b.map_or(0.0, |b| b[co]));
        for ci in 0..g.cin {
            for ky in 0..g.kh {
                for kx in 0..g.kw {
                    let wv = w[((co * g.cin + ci) * g.kh + ky) * g.kw + kx];
                    for oy in 0..g.oh {
                        let iy = (oy * g.stride + ky) as isize - g.pad as isize;
                        if iy < 0 || iy >= g.h as isize {
                            continue;
                        }
                        let row = &x[((n * g.cin + ci) * g.h + iy as usize) * g.w..][..g.w];
                        for ox in 0..g.ow {
                            let ix = (ox * g.stride + kx) as isize - g.pad as isize;
                            if ix >= 0 && ix < g.w as isize {
                                plane[oy * g.ow + ox] += wv * row[ix as usize];
                            }
                        }
                    }
                }
            }
        }
    });
    y
}

/// dL/dx [N, Cin, H, W]: scatter each dL/dy through the taps that produced it (the transpose of `forward`).
pub fn backward_input(gy: &[f64], w: &[f64], w_shape: &[usize], x_shape: &[usize], stride: usize, pad: usize) -> Vec<f64> {
    let g = Geom::new("cpu::backward_input", x_shape, w_shape, stride, pad);
    let mut gx = vec![0.0; g.n * g.cin * g.h * g.w];
    gx.par_chunks_mut(g.h * g.w).enumerate().for_each(|(nc, plane)| {
        let (n, ci) = (nc / g.cin, nc % g.cin);
        for co in 0..g.cout {
            for ky in 0..g.kh {
                for kx in 0..g.kw {
                    let wv = w[((co * g.cin + ci) * g.kh + ky) * g.kw + kx];
                    for oy in 0..g.oh {
                        let iy = (oy * g.stride + ky) as isize - g.pad as isize;
                        if iy < 0 || iy >= g.h as isize {
                            continue;
                        }
                        let grow = &gy[((n * g.cout + co) * g.oh + oy) * g.ow..][..g.ow];
                        for (ox, &gv) in grow.iter().enumerate() {
                            let ix = (ox * g.stride + kx) as isize - g.pad as isize;
                            if ix >= 0 && ix < g.w as isize {
                                plane[iy as usize * g.w + ix as usize] += wv * gv;
                            }
                        }
                    }
                }
            }
        }
    });
    gx
}

/// dL/dw [Cout, Cin, KH, KW]
pub fn backward_weight(x: &[f64], x_shape: &[usize], gy: &[f64], w_shape: &[usize], stride: usize, pad: usize) -> Vec<f64> {
    let g = Geom::new("cpu::backward_weight", x_shape, w_shape, stride, pad);
    let mut gw = vec![0.0; g.cout * g.cin * g.kh * g.kw];
    gw.par_chunks_mut(g.kh * g.kw).enumerate().for_each(|(cc, taps)| {
        let (co, ci) = (cc / g.cin, cc % g.cin);
        for n in 0..g.n {
            for ky in 0..g.kh {
                for kx in 0..g.kw {
                    let mut acc = 0.0;
                    for oy in 0..g.oh {
                        let iy = (oy * g.stride + ky) as isize - g.pad as isize;
                        if iy < 0 || iy >= g.h as isize {
                            continue;
                        }
                        let row = &x[((n * g.cin + ci) * g.h + iy as usize) * g.w..][..g.w];
                        let grow = &gy[((n * g.cout + co) * g.oh + oy) * g.ow..][..g.ow];
                        for (ox, &gv) in grow.iter().enumerate() {
                            let ix = (ox * g.stride + kx) as isize - g.pad as isize;
                            if ix >= 0 && ix < g.w as isize {
                                acc += gv * row[ix as usize];
                            }
                        }
                    }
                    taps[ky * g.kw + kx] += acc;
                }
            }
        }
    });
    gw
}

/// dL/db [Cout]
pub fn backward_bias(gy: &[f64], y_shape: &[usize]) -> Vec<f64> {
    let (n, cout, hw) = (y_shape[0], y_shape[1], y_shape[2] * y_shape[3]);
    (0..cout).map(|co| (0..n).map(|i| gy[(i * cout + co) * hw..][..hw].iter().sum::<f64>()).sum()).collect()
}

/// The packed weights of shaders/conv2d_pack.wgsl for w [Cout, Cin, KH, KW] and blocks of `cw` channels, zero past
/// the last channel: forward `wp[(cb*K + k)*cw + c] = w[cb*cw + c, k]` (K = Cin*KH*KW), or `flipped`
/// `wp[(cb*K' + k')*cw + c] = w[co, cb*cw + c, KH-1-ky', KW-1-kx']` (K' = Cout*KH*KW, k' = (co*KH + ky')*KW + kx').
pub fn packed_weights(w: &[f32], w_shape: [usize; 4], cw: usize, flipped: bool) -> Vec<f32> {
    let [cout, cin, kh, kw] = w_shape;
    let (channels, kk) = if flipped { (cin, cout * kh * kw) } else { (cout, cin * kh * kw) };
    let cpad = channels.next_multiple_of(cw);
    let mut wp = vec![0.0; cpad * kk];
    for c in 0..channels {
        for k in 0..kk {
            let v = if flipped {
                let (co, ky, kx) = (k / (kh * kw), kh - 1 - k / kw % kh, kw - 1 - k % kw);
                w[((co * cin + c) * kh + ky) * kw + kx]
            } else {
                w[c * kk + k]
            };
            wp[((c / cw) * kk + k) * cw + c % cw] = v;
        }
    }
    wp
}
