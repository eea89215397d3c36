//! fluke in a browser: the few calls the page (`index.html`, `fluke.js`) makes into the library, over
//! wasm-bindgen. Everything runs in the visitor's tab on the visitor's GPU (WebGPU); no byte leaves the machine.
//!
//! The page's flow, and the library call behind each step:
//! 1. `start()`: `Gpu::new_async` (the adapter and device requests are promises in a browser).
//!    `start`'s `limit_binding_mib` (the hook's `limit_binding_mib=`) asks for a device whose storage binding limit is
//!    at most that (`GpuOptions::max_storage_binding`): the page then meets a smaller adapter's limits for real.
//! 2. `Fluke::load_model(bytes, name, size)`: `UNet::from_checkpoint_bytes`, the loader of `fluke predict` (fluke's
//!    and smp's checkpoints; anything else is refused naming the file), then `check_fits` for one photo at the
//!    checkpoint's size (or `size`, the hook's `size=`, as `fluke predict --size`), against the device's limits.
//!    When it does not fit, the message names the limit and the largest size of the same shape that fits
//!    (`largest_fitting`, by the same rule).
//! 3. `Fluke::check_kernels()` (after each model load, before its photos): the first-use kernel check of `fluke
//!    predict`, `validate::validate_async` (awaited readbacks; `ensure`'s file cache is the native side's), so a
//!    subgroup or GEMM kernel that is wrong on the visitor's adapter is replaced by its portable twin before it
//!    touches a photo; the result JSON's `kernel_check` says what was checked and replaced.
//! 4. `Fluke::predict(bytes, name, tta)`: the photo decoded as `fluke predict` decodes it (`data::decode_rgb`,
//!    `data::prepare_image`), `predict::predict_batch_async` (the same test-time augmentation, awaited instead of
//!    blocking), `predict::photo_masks` (the same thresholds, components and crop box), and the PNGs
//!    `fluke predict` writes: mask, overlay, RGBA cut-out, crop.
//!
//! Native builds of this crate are empty (the whole file is for `wasm32`), so `cargo build --workspace` works.
#![cfg(target_arch = "wasm32")]

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use fluke::model::UNet;
use fluke::platform::Instant;
use fluke::{Gpu, GpuOptions};
use wasm_bindgen::prelude::*;

/// A started engine: the device, and the model once one is loaded.
#[wasm_bindgen]
pub struct Fluke {
    inner: Rc<Inner>,
}

struct Inner {
    gpu: Arc<Gpu>,
    model: RefCell<Option<Rc<Loaded>>>,
    /// Convolution geometries the kernel check has passed on this device (`validate::key`), this page session.
    checked: RefCell<BTreeSet<String>>,
    /// The kernel check's summary for the result JSON: {checked, kernels, replaced, seconds}.
    kernel_check: RefCell<serde_json::Value>,
}

struct Loaded {
    model: UNet,
    /// Model input size (width, height): the checkpoint's, else fluke's default.
    size: (u32, u32),
    name: String,
    params: usize,
}

/// One photo's results: a JSON summary and the files `fluke predict` would write, as PNG bytes.
#[wasm_bindgen]
pub struct PhotoResult {
    json: String,
    mask_png: Vec<u8>,
    overlay_png: Vec<u8>,
    rgba_png: Vec<u8>,
    crop_png: Vec<u8>,
}

#[wasm_bindgen]
impl PhotoResult {
    /// {file, width, height, fluke_fraction, components, bbox [x0, y0, x1, y1] or null, ms}.
    pub fn json(&self) -> String {
        self.json.clone()
    }
    /// The binary mask (0/255 grayscale) at the photo's size.
    pub fn mask_png(&self) -> Vec<u8> {
        self.mask_png.clone()
    }
    /// The photo with the mask tinted over it.
    pub fn overlay_png(&self) -> Vec<u8> {
        self.overlay_png.clone()
    }
    /// The photo with the mask as its alpha channel.
    pub fn rgba_png(&self) -> Vec<u8> {
        self.rgba_png.clone()
    }
    /// The tight crop on white; empty when no pixel reaches the crop threshold.
    pub fn crop_png(&self) -> Vec<u8> {
        self.crop_png.clone()
    }
}

/// The error as one line for the page: "a: b: c" (anyhow's chain).
fn js_err(e: anyhow::Error) -> JsError {
    JsError::new(&format!("{e:#}"))
}

thread_local! {
    /// The message of the last Rust panic (a panic reaches JavaScript only as "RuntimeError: unreachable").
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The last panic's message, for the page to show instead of "unreachable" (empty when none happened).
#[wasm_bindgen]
pub fn last_panic() -> String {
    LAST_PANIC.with(|p| p.borrow().clone().unwrap_or_default())
}

/// Open the visitor's WebGPU adapter and device and parse every shader. `adapter_name`: what the page read from
/// `adapter.info` ("vendor architecture"), used when wgpu reports no name (`GpuOptions::name_if_unnamed`).
/// `limit_binding_mib`: ask for a device whose storage binding limit is at most this many MiB
/// (`GpuOptions::max_storage_binding`; WebGPU grants at least 128 MiB), to meet a smaller adapter's limits for real.
#[wasm_bindgen]
pub async fn start(adapter_name: String, limit_binding_mib: Option<u32>) -> Result<Fluke, JsError> {
    std::panic::set_hook(Box::new(|info| {
        let msg = info.to_string();
        web_sys::console::error_1(&JsValue::from_str(&msg));
        LAST_PANIC.with(|p| *p.borrow_mut() = Some(msg));
    }));
    let opts = GpuOptions {
        name_if_unnamed: Some(adapter_name),
        max_storage_binding: limit_binding_mib.map(|m| u64::from(m) << 20),
        ..GpuOptions::default()
    };
    let gpu = Gpu::new_async(&opts, &fluke::ops::shaders()).await.map_err(js_err)?;
    let inner = Inner {
        gpu,
        model: RefCell::new(None),
        checked: RefCell::new(BTreeSet::new()),
        kernel_check: RefCell::new(serde_json::Value::Null),
    };
    Ok(Fluke { inner: Rc::new(inner) })
}

/// The largest size with the shape of `width` x `height` (the width a multiple of 32 stepping down by 32, the height
/// in proportion rounded down to a multiple of 32) at which one photo fits this device by `check_fits`'s own rule;
/// None when none does.
fn largest_fitting(model: &UNet, width: u32, height: u32) -> Option<(u32, u32)> {
    (1..width / 32)
        .rev()
        .map(|k| (k * 32, (u64::from(k * 32) * u64::from(height) / u64::from(width) / 32).max(1) as u32 * 32))
        .find(|&(w, h)| model.check_fits(1, w, h).is_ok())
}

fn png(img: image::DynamicImage) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png).context("PNG encoding failed")?;
    Ok(out)
}

#[wasm_bindgen]
impl Fluke {
    /// JSON: {name, description, backend, device_type, max_storage_binding_mib, max_buffer_mib}.
    pub fn adapter(&self) -> String {
        let g = &self.inner.gpu;
        serde_json::json!({
            "name": g.info.name,
            "backend": format!("{:?}", g.info.backend),
            "device_type": format!("{:?}", g.info.device_type),
            "max_storage_binding_mib": g.limits.max_storage_buffer_binding_size >> 20,
            "max_buffer_mib": g.limits.max_buffer_size >> 20,
        })
        .to_string()
    }

    /// Load a checkpoint from its bytes; JSON {name, width_div, size: [w, h], params, bytes}. `size`: "WxH" to run the
    /// model at instead of the checkpoint's size (as `fluke predict --size`; empty: the checkpoint's). A file that is
    /// not a fluke/smp U-Net, or a size the device cannot hold, is an error naming the file and the fix (for the
    /// latter, the limit and the largest size of the same shape that fits); a malformed `size` is `parse_size`'s.
    pub fn load_model(&self, bytes: &[u8], name: &str, size: &str) -> Result<String, JsError> {
        let gpu = &self.inner.gpu;
        let (model, meta) = UNet::from_checkpoint_bytes(gpu, bytes, name).map_err(js_err)?;
        let asked = (!size.trim().is_empty()).then(|| fluke::parse_size(size)).transpose().map_err(js_err)?;
        let size = asked.or(meta).unwrap_or(fluke::data::DEFAULT_SIZE);
        if let Err(e) = model.check_fits(1, size.0, size.1) {
            let fix = largest_fitting(&model, size.0, size.1).map_or(String::new(), |(w, h)| {
                format!(
                    "; the largest size of this shape that fits this GPU is {w}x{h}: use a model trained at that size \
                     or smaller (fluke train --size {w}x{h})"
                )
            });
            return Err(js_err(anyhow!("{name}: this GPU cannot run the model at {}x{}: {e}{fix}", size.0, size.1)));
        }
        // As `fluke predict`: the weights are final, so each BN is folded into its convolution (`UNet::freeze`).
        model.freeze();
        let params: usize = model.params().map(|(_, t)| t.numel()).sum();
        let info = serde_json::json!({
            "name": name,
            "width_div": model.cfg.width_div,
            "size": [size.0, size.1],
            "params": params,
            "bytes": bytes.len(),
        });
        *self.inner.model.borrow_mut() = Some(Rc::new(Loaded { model, size, name: name.to_string(), params }));
        Ok(info.to_string())
    }

    /// The first-use kernel check of `fluke predict` (`validate::validate_async`) for the loaded model's
    /// convolutions at its size: each runs once on seeded data against f64 sums, and a subgroup or GEMM kernel that
    /// is wrong on this adapter is replaced by its portable twin for the rest of the session. Resolves to JSON
    /// {checked (geometries), kernels (the entry points that ran), replaced, seconds}; rejects when a wrong kernel has
    /// no twin. Geometries already checked in this page session are skipped. `fault` (empty: none) treats that entry point's results as wrong: the automation hook's
    /// test of this path (`&kernel_fault=`).
    pub fn check_kernels(&self, fault: String) -> js_sys::Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            check_kernels(&inner, (!fault.is_empty()).then_some(fault.as_str())).await.map(JsValue::from).map_err(|e| js_err(e).into())
        })
    }

    /// Predict one photo from its bytes with `tta` ("none", "flip", "blur", "flip,blur"), resolving to a
    /// `PhotoResult`. Thresholds are `fluke predict`'s defaults (0.5, crop 0.25).
    pub fn predict(&self, bytes: Vec<u8>, name: String, tta: String) -> js_sys::Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            predict_photo(&inner, &bytes, &name, &tta).await.map(JsValue::from).map_err(|e| js_err(e).into())
        })
    }
}

async fn check_kernels(inner: &Inner, fault: Option<&str>) -> Result<String> {
    let loaded = inner.model.borrow().clone().context("load a model first")?;
    let (w, h) = loaded.size;
    let gpu = &inner.gpu;
    let n = fluke::validate::check_batch(1);
    let t0 = Instant::now();
    let skip = inner.checked.borrow().clone();
    let rep = fluke::validate::validate_async(gpu, &loaded.model.cfg, w as usize, h as usize, n, &skip, fault).await;
    if let Some(e) = fluke::platform::take_gpu_error() {
        anyhow::bail!("the GPU reported an error during the kernel check: {e}");
    }
    if let Some(e) = rep.unmended_error(gpu, "try another browser or GPU, and report the adapter") {
        return Err(e);
    }
    let geoms: BTreeSet<String> = rep.verdicts.iter().map(|v| v.geometry.clone()).collect();
    inner.checked.borrow_mut().extend(geoms.iter().cloned());
    // The entry points that computed the checked results (packing kernels included), each once.
    let kernels: BTreeSet<&str> = rep.verdicts.iter().flat_map(|v| v.entries.iter().copied()).collect();
    let summary = serde_json::json!({
        "checked": geoms.len(),
        "kernels": kernels,
        "replaced": rep.replaced,
        "seconds": t0.elapsed().as_secs_f64(),
    });
    *inner.kernel_check.borrow_mut() = summary.clone();
    Ok(summary.to_string())
}

async fn predict_photo(inner: &Inner, bytes: &[u8], name: &str, tta: &str) -> Result<PhotoResult> {
    let loaded = inner.model.borrow().clone().context("load a model first")?;
    let (flip, blur) = fluke::predict::parse_tta(tta)?;
    let defaults = fluke::predict::PredictConfig::default();
    let t0 = Instant::now();
    let img = fluke::data::decode_rgb(bytes, name)?;
    let (w, h) = loaded.size;
    let chw = fluke::data::prepare_image(&img, w, h);
    let photo = image::DynamicImage::ImageRgb32F(img).to_rgb8();
    let (ow, oh) = photo.dimensions();
    let probs = fluke::predict::predict_batch_async(&loaded.model, &[chw], w, h, flip, blur).await.remove(0);
    if let Some(e) = fluke::platform::take_gpu_error() {
        anyhow::bail!("the GPU reported an error while running {}: {e}", loaded.name);
    }
    let m = fluke::predict::photo_masks(&probs, w, h, ow, oh, defaults.threshold, defaults.crop_threshold, false);
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    let crop_png = match m.bbox {
        Some(b) => png(image::DynamicImage::ImageRgb8(fluke::postprocess::crop_on_white(&photo, &m.crop_mask, b)))?,
        None => Vec::new(),
    };
    let json = serde_json::json!({
        "file": name,
        "width": ow,
        "height": oh,
        "fluke_fraction": m.fraction,
        "components": m.components,
        "bbox": m.bbox.map(|b| [b.x0, b.y0, b.x1, b.y1]),
        "model": {"name": loaded.name, "size": [w, h], "width_div": loaded.model.cfg.width_div, "params": loaded.params},
        "adapter": inner.gpu.info.name,
        "tta": fluke::predict::tta_text(flip, blur),
        "kernel_check": inner.kernel_check.borrow().clone(),
        "ms": ms,
    });
    Ok(PhotoResult {
        json: json.to_string(),
        mask_png: png(image::DynamicImage::ImageLuma8(fluke::predict::mask_image(&m.mask, ow, oh)))?,
        overlay_png: png(image::DynamicImage::ImageRgb8(fluke::postprocess::overlay(&photo, &m.mask)))?,
        rgba_png: png(image::DynamicImage::ImageRgba8(fluke::postprocess::rgba(&photo, &m.mask)))?,
        crop_png,
    })
}
