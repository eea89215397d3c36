//! Kernel validation on the user's device: before train/predict/eval trust the fast convolution kernels on an
//! adapter + driver they have not met, every convolution of the U-Net at the size in use runs once (at the job's
//! batch up to 4, all three directions) on seeded random data and is compared with f64 CPU sums at sampled outputs. A subgroup kernel
//! that fails is replaced by its portable twin on this device (`Gpu::disable`), with one line saying so; the
//! verdicts are cached per adapter, driver and fluke version in `<cache dir>/fluke/kernels.json`, so the check runs
//! once (a few seconds on lavapipe at 384x192).
//!
//! Why: whether a kernel with undefined behaviour (or a driver bug it trips) goes wrong depends on the driver and on
//! the CPU behind a software adapter, so no test run elsewhere can prove it right on yours (see README, "Right on
//! every adapter").
//!
//! Samples: for an output of K summed terms, the GPU value passes when |gpu - exact| <= 1e-4 * sum |terms| + 1e-6
//! (float32 accumulation error grows with sum |terms|, a wrong weight or lane gives errors of its order). Outputs
//! checked per direction: 3,072 random ones, the last 64 (tails of blocks) and one per channel.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::check::rand_vec;
use crate::gpu::{Gpu, Plan};
use crate::model::summary::{conv_layers, ConvShape};
use crate::model::UNetConfig;
use crate::ops::conv2d::{conv2d_backward_input, conv2d_backward_weight, conv2d_forward};
use crate::tensor::Tensor;

/// One direction of one convolution geometry, as validated.
#[derive(Clone, Debug)]
pub struct Verdict {
    /// "fwd", "input grad", "weight grad".
    pub pass_name: &'static str,
    /// x shape, w shape, stride, pad.
    pub geometry: String,
    /// Entry points that ran (packing kernels included).
    pub entries: Vec<&'static str>,
    /// Worst |gpu - exact| / (sum |terms|) over the samples.
    pub worst: f64,
    pub pass: bool,
}

/// Geometry key of a convolution: input [n, Cin, H, W], weight [Cout, Cin, k, k], stride, pad.
pub fn key(c: &ConvShape, n: usize) -> String {
    format!("x[{n},{},{},{}] w[{},{},{},{}] s{} p{}", c.cin, c.h, c.w, c.cout, c.cin, c.k, c.k, c.stride, c.pad)
}

/// The batch the check runs at for a job of batch `batch`: the job's own up to 4 (lane layouts depend on the batch;
/// beyond 4 images they repeat), at least 1.
pub fn check_batch(batch: usize) -> usize {
    batch.clamp(1, 4)
}

/// The convolutions of the U-Net at this size that run on the tiled kernels (the SE FCs on 1x1 maps run naive),
/// each geometry once.
pub fn geometries(cfg: &UNetConfig, width: usize, height: usize) -> Vec<ConvShape> {
    let mut seen = BTreeSet::new();
    conv_layers(cfg, width, height).into_iter().filter(|c| c.h * c.w > 1 && seen.insert(key(c, 1))).collect()
}

/// Run one geometry in the three directions with the launchers' own kernel choice and compare with f64 sums.
pub fn check_geometry(gpu: &Arc<Gpu>, c: &ConvShape, n: usize, seed: u64) -> Vec<Verdict> {
    crate::platform::block_on(check_geometry_faulty(gpu, c, n, seed, None))
}

/// `check_geometry`, awaited (the one implementation; natively its readbacks complete as they are awaited), with the
/// results of entry point `fault` (when it runs) treated as off by one: the test hook that proves a failing kernel
/// gets replaced.
async fn check_geometry_faulty(gpu: &Arc<Gpu>, c: &ConvShape, n: usize, seed: u64, fault: Option<&str>) -> Vec<Verdict> {
    let (oh, ow) = c.out_hw();
    let xs = [n, c.cin, c.h, c.w];
    let ws = [c.cout, c.cin, c.k, c.k];
    let ys = [n, c.cout, oh, ow];
    let x = rand_vec(xs.iter().product(), seed);
    let w = rand_vec(ws.iter().product(), seed + 1);
    let gy = rand_vec(ys.iter().product(), seed + 2);
    let b = c.bias.then(|| rand_vec(c.cout, seed + 3));
    let xt = Tensor::from_slice(gpu, &xs, &x);
    let wt = Tensor::from_slice(gpu, &ws, &w);
    let gyt = Tensor::from_slice(gpu, &ys, &gy);
    let bt = b.as_ref().map(|b| Tensor::from_slice(gpu, &[c.cout], b));
    let g = Geo { n, cin: c.cin, h: c.h, w: c.w, cout: c.cout, k: c.k, s: c.stride, p: c.pad, oh, ow };
    let geometry = key(c, n);
    let mut out = Vec::new();
    type Launch<'a> = Box<dyn Fn() -> Tensor + 'a>;
    type Exact<'a> = Box<dyn Fn(usize) -> (f64, f64) + 'a>;
    let directions: [(&'static str, Launch, Exact); 3] = [
        ("fwd", Box::new(|| conv2d_forward(&xt, &wt, bt.as_ref(), c.stride, c.pad)), Box::new(|i| g.fwd(&x, &w, b.as_deref(), i))),
        ("input grad", Box::new(|| conv2d_backward_input(&gyt, &wt, &xs, c.stride, c.pad)), Box::new(|i| g.input_grad(&gy, &w, i))),
        ("weight grad", Box::new(|| conv2d_backward_weight(&xt, &gyt, &ws, c.stride, c.pad)), Box::new(|i| g.weight_grad(&x, &gy, i))),
    ];
    for (pass_name, launch, exact) in directions {
        // The entry points that ran, from the device's dispatch trace (no timing, no wait).
        gpu.start_trace();
        let t = launch();
        let entries = gpu.take_trace();
        let mut got = t.to_vec_async().await;
        if fault.is_some_and(|f| entries.contains(&f)) {
            got.iter_mut().for_each(|v| *v += 1.0);
        }
        let worst = sampled_error(&got, seed, t.shape[1], &exact);
        out.push(Verdict { pass_name, geometry: geometry.clone(), entries, worst, pass: worst <= 1e-4 });
    }
    out
}

/// Worst sampled |got - exact| relative to sum |terms| (+1e-6 absolute, folded into the ratio), NaN = infinity.
fn sampled_error(got: &[f32], seed: u64, channels: usize, exact: &dyn Fn(usize) -> (f64, f64)) -> f64 {
    let n = got.len();
    let mut idx: Vec<usize> = if n <= 4096 { (0..n).collect() } else { Vec::new() };
    if n > 4096 {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
        idx.extend((0..3072).map(|_| rng.random_range(0..n)));
        idx.extend(n - 64..n);
        let plane = n / channels.max(1);
        idx.extend((0..channels).map(|c| c * plane + rng.random_range(0..plane)));
    }
    let mut worst = 0f64;
    for i in idx {
        let (v, abs) = exact(i);
        let d = (got[i] as f64 - v).abs();
        let r = if d.is_finite() { (d - 1e-6).max(0.0) / abs.max(1e-30) } else { f64::INFINITY };
        worst = worst.max(r);
    }
    worst
}

/// A convolution's geometry for the sampled f64 sums.
struct Geo {
    n: usize,
    cin: usize,
    h: usize,
    w: usize,
    cout: usize,
    k: usize,
    s: usize,
    p: usize,
    oh: usize,
    ow: usize,
}

impl Geo {
    /// Input coordinate of output position o and tap t, if inside the image.
    fn at(&self, o: usize, t: usize, size: usize) -> Option<usize> {
        let i = (o * self.s + t) as isize - self.p as isize;
        (i >= 0 && (i as usize) < size).then_some(i as usize)
    }
    /// (y[i], sum |terms|) for flat output index i of [N, Cout, OH, OW].
    fn fwd(&self, x: &[f32], w: &[f32], b: Option<&[f32]>, i: usize) -> (f64, f64) {
        let (co, oy, ox) = (i / (self.oh * self.ow) % self.cout, i / self.ow % self.oh, i % self.ow);
        let x = &x[i / (self.cout * self.oh * self.ow) * self.cin * self.h * self.w..];
        let (mut v, mut a) = (b.map_or(0.0, |b| b[co] as f64), b.map_or(0.0, |b| (b[co] as f64).abs()));
        for ci in 0..self.cin {
            for ky in 0..self.k {
                let Some(iy) = self.at(oy, ky, self.h) else { continue };
                for kx in 0..self.k {
                    let Some(ix) = self.at(ox, kx, self.w) else { continue };
                    let t = w[((co * self.cin + ci) * self.k + ky) * self.k + kx] as f64 * x[(ci * self.h + iy) * self.w + ix] as f64;
                    v += t;
                    a += t.abs();
                }
            }
        }
        (v, a)
    }
    /// (gx[i], sum |terms|) for flat index i of [N, Cin, H, W].
    fn input_grad(&self, gy: &[f32], w: &[f32], i: usize) -> (f64, f64) {
        let (ci, iy, ix) = (i / (self.h * self.w) % self.cin, i / self.w % self.h, i % self.w);
        let gy = &gy[i / (self.cin * self.h * self.w) * self.cout * self.oh * self.ow..];
        let (mut v, mut a) = (0f64, 0f64);
        // Output position o reads input o*s - p + t: o = (i + p - t) / s when divisible and inside.
        let out_of = |i: usize, t: usize, n: usize| -> Option<usize> {
            let q = i as isize + self.p as isize - t as isize;
            (q >= 0 && (q as usize).is_multiple_of(self.s) && (q as usize / self.s) < n).then(|| q as usize / self.s)
        };
        for co in 0..self.cout {
            for ky in 0..self.k {
                let Some(oy) = out_of(iy, ky, self.oh) else { continue };
                for kx in 0..self.k {
                    let Some(ox) = out_of(ix, kx, self.ow) else { continue };
                    let t = w[((co * self.cin + ci) * self.k + ky) * self.k + kx] as f64 * gy[(co * self.oh + oy) * self.ow + ox] as f64;
                    v += t;
                    a += t.abs();
                }
            }
        }
        (v, a)
    }
    /// (gw[i], sum |terms|) for flat index i of [Cout, Cin, k, k].
    fn weight_grad(&self, x: &[f32], gy: &[f32], i: usize) -> (f64, f64) {
        let kk = self.k * self.k;
        let (co, ci, ky, kx) = (i / (self.cin * kk), i / kk % self.cin, i / self.k % self.k, i % self.k);
        let (mut v, mut a) = (0f64, 0f64);
        for b in 0..self.n {
            let (x, gy) = (&x[b * self.cin * self.h * self.w..], &gy[b * self.cout * self.oh * self.ow..]);
            for oy in 0..self.oh {
                let Some(iy) = self.at(oy, ky, self.h) else { continue };
                for ox in 0..self.ow {
                    let Some(ix) = self.at(ox, kx, self.w) else { continue };
                    let t = gy[(co * self.oh + oy) * self.ow + ox] as f64 * x[(ci * self.h + iy) * self.w + ix] as f64;
                    v += t;
                    a += t.abs();
                }
            }
        }
        (v, a)
    }
}

/// What a validation did.
#[derive(Debug, Default)]
pub struct Report {
    /// Every direction checked now (empty when the cache had them all).
    pub verdicts: Vec<Verdict>,
    /// Subgroup kernels replaced on this device now.
    pub replaced: Vec<String>,
    /// Failures that no replacement mended (a portable kernel wrong on this driver): the run must not trust it.
    pub unmended: Vec<Verdict>,
}

impl Report {
    /// The error for the first failure nothing mended (the job must not run on it), ending with `fix`; None when
    /// every kernel that runs is right.
    pub fn unmended_error(&self, gpu: &Gpu, fix: &str) -> Option<anyhow::Error> {
        let v = self.unmended.first()?;
        Some(anyhow::anyhow!(
            "kernel check: {} of {} ({}) is wrong on this adapter ({}, {} {}) and has no other twin: worst error {:.2e}; {fix}",
            v.pass_name,
            v.geometry,
            v.entries.join(", "),
            gpu.info.name,
            gpu.info.driver,
            gpu.info.driver_info,
            v.worst
        ))
    }
}

/// Validate every convolution of the network at this size, replacing failing subgroup and GEMM kernels by their
/// portable twins (re-checked). Geometries in `skip` are not run.
pub fn validate(gpu: &Arc<Gpu>, cfg: &UNetConfig, width: usize, height: usize, n: usize, skip: &BTreeSet<String>) -> Report {
    crate::platform::block_on(validate_async(gpu, cfg, width, height, n, skip, None))
}

/// `validate`, awaited (the browser page; a blocking readback can never complete there). `fault` as in
/// `validate_geometries`.
#[allow(clippy::too_many_arguments)]
pub async fn validate_async(gpu: &Arc<Gpu>, cfg: &UNetConfig, width: usize, height: usize, n: usize, skip: &BTreeSet<String>, fault: Option<&str>) -> Report {
    validate_geometries_async(gpu, &geometries(cfg, width, height), n, skip, fault).await
}

/// `validate` over given geometries; `fault` marks one entry point's results wrong (test hook, see
/// `check_geometry_faulty`).
pub fn validate_geometries(gpu: &Arc<Gpu>, geoms: &[ConvShape], n: usize, skip: &BTreeSet<String>, fault: Option<&str>) -> Report {
    crate::platform::block_on(validate_geometries_async(gpu, geoms, n, skip, fault))
}

/// `validate_geometries`, awaited: the one implementation.
pub async fn validate_geometries_async(gpu: &Arc<Gpu>, geoms: &[ConvShape], n: usize, skip: &BTreeSet<String>, fault: Option<&str>) -> Report {
    let mut rep = Report::default();
    for (i, c) in geoms.iter().enumerate() {
        if skip.contains(&key(c, n)) {
            continue;
        }
        let seed = 1000 + 10 * i as u64;
        let mut vs = check_geometry_faulty(gpu, c, n, seed, fault).await;
        // Replace each subgroup or GEMM kernel that ran in a failing direction (by its portable twin, or the
        // register-blocked kernel of that direction), then check again (until nothing changes).
        loop {
            let mut bad: Vec<&'static str> = vs
                .iter()
                .filter(|v| !v.pass)
                .flat_map(|v| v.entries.iter().copied())
                .filter(|e| (e.contains("subgroup") || e.ends_with("_gemm")) && gpu.allowed(e))
                .collect();
            bad.sort();
            bad.dedup();
            if bad.is_empty() {
                break;
            }
            for e in bad {
                gpu.disable(e);
                rep.replaced.push(e.to_string());
            }
            rep.verdicts.extend(vs);
            vs = check_geometry_faulty(gpu, c, n, seed, fault).await;
        }
        rep.unmended.extend(vs.iter().filter(|v| !v.pass).cloned());
        rep.verdicts.extend(vs);
    }
    rep
}

/// The default folder of the cache file `kernels.json`: `$XDG_CACHE_HOME/fluke`, else `$HOME/.cache/fluke` (the
/// caller reads the environment: main.rs, `testing`).
pub fn default_cache_dir(xdg_cache_home: Option<PathBuf>, home: Option<PathBuf>) -> Option<PathBuf> {
    Some(xdg_cache_home.or_else(|| home.map(|h| h.join(".cache")))?.join("fluke"))
}

/// Per device (adapter, backend, driver, fluke version, subgroup setting): the geometries validated and the
/// kernels replaced.
#[derive(Default, Serialize, Deserialize)]
struct Cache {
    devices: BTreeMap<String, DeviceEntry>,
}

#[derive(Default, Serialize, Deserialize)]
struct DeviceEntry {
    validated: BTreeSet<String>,
    replaced: BTreeSet<String>,
}

fn device_key(gpu: &Gpu) -> String {
    let i = &gpu.info;
    format!(
        "{} | {:?} | {} {} | fluke {} | subgroups {}",
        i.name,
        i.backend,
        i.driver,
        i.driver_info,
        env!("CARGO_PKG_VERSION"),
        gpu.has_subgroups()
    )
}

/// What `ensure` will dispatch for this job (`Plan`, in the order of first dispatch): every geometry the cache has not
/// validated yet, its three directions dry-run on zeros (`Gpu::dry_run`: nothing runs); empty when the cache has
/// them all. What `Gpu::warm_up` compiles ahead of the check.
pub fn check_plan(gpu: &Arc<Gpu>, cfg: &UNetConfig, width: usize, height: usize, batch: usize) -> Plan {
    let n = check_batch(batch);
    let cache: Cache = gpu
        .kernel_cache
        .as_ref()
        .and_then(|p| std::fs::read(p).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let validated = cache.devices.get(&device_key(gpu)).map(|e| e.validated.clone()).unwrap_or_default();
    let todo: Vec<ConvShape> = geometries(cfg, width, height).into_iter().filter(|c| !validated.contains(&key(c, n))).collect();
    gpu.dry_run(|| {
        for c in &todo {
            let (oh, ow) = c.out_hw();
            let (xs, ws, ys) = ([n, c.cin, c.h, c.w], [c.cout, c.cin, c.k, c.k], [n, c.cout, oh, ow]);
            let (x, w, gy) = (Tensor::zeros(gpu, &xs), Tensor::zeros(gpu, &ws), Tensor::zeros(gpu, &ys));
            let b = c.bias.then(|| Tensor::zeros(gpu, &[c.cout]));
            let _ = conv2d_forward(&x, &w, b.as_ref(), c.stride, c.pad);
            let _ = conv2d_backward_input(&gy, &w, &xs, c.stride, c.pad);
            let _ = conv2d_backward_weight(&x, &gy, &ws, c.stride, c.pad);
        }
    })
}

/// Before train/predict/eval: apply the cached verdicts for this device, validate what is new at this size, save,
/// and say in one line per replaced kernel what happened. An unreadable cache is ignored (and rewritten); a cache
/// that cannot be written only costs the check again next time. A failure nothing mended is an error.
pub fn ensure(gpu: &Arc<Gpu>, cfg: &UNetConfig, width: usize, height: usize, batch: usize) -> Result<()> {
    let n = check_batch(batch);
    let path = gpu.kernel_cache.clone();
    let mut cache: Cache =
        path.as_ref().and_then(|p| std::fs::read(p).ok()).and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
    let dk = device_key(gpu);
    let entry = cache.devices.entry(dk).or_default();
    for e in &entry.replaced {
        gpu.disable(e);
    }
    let todo: Vec<String> = geometries(cfg, width, height).iter().map(|c| key(c, n)).filter(|k| !entry.validated.contains(k)).collect();
    if todo.is_empty() {
        return Ok(());
    }
    let rep = validate(gpu, cfg, width, height, n, &entry.validated);
    for e in &rep.replaced {
        eprintln!(
            "fluke: kernel {e} computes wrong results on this adapter ({}, {} {}); using its portable twin instead \
             (correct, slower). Recorded in {}",
            gpu.info.name,
            gpu.info.driver,
            gpu.info.driver_info,
            path.as_ref().map_or("no cache".into(), |p| p.display().to_string())
        );
    }
    if let Some(e) = rep.unmended_error(gpu, "run `fluke check` and report the adapter") {
        return Err(e);
    }
    entry.validated.extend(todo);
    entry.replaced.extend(rep.replaced.iter().cloned());
    if let Some(p) = &path {
        let saved = p.parent().map(std::fs::create_dir_all).transpose().ok().and_then(|_| {
            crate::fsutil::atomic_write(p, &serde_json::to_vec_pretty(&cache).ok()?).ok()
        });
        if saved.is_none() {
            eprintln!("fluke: could not write the kernel check cache {} (the check runs again next time)", p.display());
        }
    }
    Ok(())
}
