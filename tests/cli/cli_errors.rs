//! Every input error, through the real binary: ONE stderr line naming the file or option and the fix, a non-zero
//! exit, and never a panic or a backtrace. Bad data files in `train` are reported up front, one line each, and the
//! run goes on without them (with --strict they are fatal).
//!
//! `cargo test --test cli_errors -- --nocapture | grep '^ROW'` prints the messages as a markdown table.


use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::common::*;

/// A data set and a trained tiny checkpoint shared by the tests of this file (made once).
struct Fixture {
    images: PathBuf,
    masks: PathBuf,
    /// A run folder with a finished 1-epoch run (width 16, 64x32).
    run: PathBuf,
    ckpt: PathBuf,
    root: PathBuf,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        // Folders of earlier runs whose process is gone (a few MiB each) go first.
        #[cfg(unix)]
        for e in std::fs::read_dir(tmp).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("cli-errors-").and_then(|p| p.parse::<i32>().ok()) {
                // SAFETY: kill with signal 0 only checks whether the process exists.
                if pid > 0 && unsafe { libc::kill(pid, 0) } != 0 {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let root = tmp.join(format!("cli-errors-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let (images, masks) = synth(&root.join("data"), 8, 1);
        let run = root.join("run");
        let mut args = vec!["train", "--images", s(&images), "--masks", s(&masks), "--out", s(&run)];
        args.extend(TINY);
        args.extend(["--epochs", "1", "--max-steps", "1", "--val-fraction", "0.25"]);
        let o = fluke(&args);
        assert!(o.status.success(), "fixture training failed:\n{}", stderr(&o));
        let ckpt = run.join("last.safetensors");
        Fixture { images, masks, ckpt, run, root }
    })
}

/// A fresh folder inside the fixture root.
fn scratch(name: &str) -> PathBuf {
    let d = fixture().root.join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `train` on (images, masks) with the tiny model, one step.
fn train_args<'a>(images: &'a str, masks: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec!["train", "--images", images, "--masks", masks, "--out", out];
    a.extend(TINY);
    a.extend(["--epochs", "1", "--max-steps", "1", "--val-fraction", "0.25"]);
    a.extend(extra);
    a
}

/// Rewrite a safetensors file through `edit` (tensors by name, metadata).
fn rewrite_weights(
    src: &Path,
    dst: &Path,
    edit: impl FnOnce(&mut Vec<(String, fluke::model::weights::Loaded)>, &mut std::collections::HashMap<String, String>),
) {
    use safetensors::Dtype;
    let f = fluke::model::weights::read_weight_file(src).unwrap();
    let mut meta = f.metadata;
    let mut ts: Vec<(String, fluke::model::weights::Loaded)> = f.tensors.into_iter().collect();
    ts.sort_by(|a, b| a.0.cmp(&b.0));
    edit(&mut ts, &mut meta);
    // f32 tensors as f32, the int64 BN counters back as int64.
    let bytes: Vec<(Dtype, Vec<u8>)> = ts
        .iter()
        .map(|(_, t)| match t.is_int {
            true => (Dtype::I64, t.data.iter().flat_map(|&v| (v as i64).to_le_bytes()).collect()),
            false => (Dtype::F32, bytemuck::cast_slice(&t.data).to_vec()),
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = ts
        .iter()
        .zip(&bytes)
        .map(|((n, t), (dt, b))| (n.clone(), safetensors::tensor::TensorView::new(*dt, t.shape.clone(), b).unwrap()))
        .collect();
    let meta = if meta.is_empty() { None } else { Some(meta) };
    std::fs::write(dst, safetensors::serialize(views, meta).unwrap()).unwrap();
}

// ------------------------------------------------------------------------------------------------ data problems

/// Break one file of each kind in a 16-pair set; train must list each bad file (one line, file named, fix given)
/// BEFORE training starts, then train on the rest; --strict turns the same report into a failure.
#[test]
fn bad_data_files_are_reported_up_front_and_left_out() {
    let d = scratch("bad-data");
    let (images, masks) = synth(&d, 16, 2);
    let photos = files(&images);
    let mut bad: Vec<(&str, PathBuf)> = Vec::new();
    // Truncated PNG (half the file).
    let png = first_with_ext(&images, "png");
    let b = std::fs::read(&png).unwrap();
    std::fs::write(&png, &b[..b.len() / 2]).unwrap();
    bad.push(("truncated PNG photo", png.clone()));
    // Truncated JPEG (no end-of-image marker).
    let jpgs: Vec<PathBuf> = photos.iter().filter(|p| p.extension().unwrap() == "jpg").cloned().collect();
    let b = std::fs::read(&jpgs[0]).unwrap();
    std::fs::write(&jpgs[0], &b[..b.len() / 2]).unwrap();
    bad.push(("truncated JPEG photo", jpgs[0].clone()));
    // Corrupt PNG: one flipped byte in the middle of the pixel data (its CRC no longer matches).
    let png2 = files(&images).into_iter().filter(|p| p.extension().unwrap() == "png").nth(1).unwrap();
    let mut b = std::fs::read(&png2).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x5A;
    std::fs::write(&png2, &b).unwrap();
    bad.push(("corrupt PNG photo (flipped byte)", png2.clone()));
    // Corrupt JPEG header: the start-of-frame marker overwritten.
    let mut b = std::fs::read(&jpgs[1]).unwrap();
    let sof = b.windows(2).position(|w| w == [0xFF, 0xC0] || w == [0xFF, 0xC2]).expect("no SOF marker");
    b[sof + 1] = 0x00;
    b[sof + 5..sof + 9].fill(0);
    std::fs::write(&jpgs[1], &b).unwrap();
    bad.push(("corrupt JPEG photo (damaged header)", jpgs[1].clone()));
    // Not an image at all, despite .jpg.
    std::fs::write(&jpgs[2], b"this is a text file called .jpg\n").unwrap();
    bad.push(("non-image file with .jpg extension", jpgs[2].clone()));
    // Photo without mask.
    let stem = jpgs[3].file_stem().unwrap().to_str().unwrap().to_string();
    for m in files(&masks) {
        if m.file_stem().unwrap() == stem.as_str() {
            std::fs::remove_file(m).unwrap();
        }
    }
    bad.push(("photo without mask", jpgs[3].clone()));
    // Mask without photo.
    let orphan = masks.join("orphan_0001.png");
    image::GrayImage::new(40, 20).save(&orphan).unwrap();
    bad.push(("mask without photo", orphan.clone()));
    // Mask of another size than its photo.
    let stem4 = jpgs[4].file_stem().unwrap().to_str().unwrap();
    let m4 = files(&masks).into_iter().find(|m| m.file_stem().unwrap() == stem4).unwrap();
    image::GrayImage::new(33, 17).save_with_format(&m4, image::ImageFormat::Png).unwrap();
    bad.push(("mask of another size", m4.clone()));

    let out = d.join("run");
    let o = fluke(&train_args(s(&images), s(&masks), s(&out), &[]));
    assert_no_panic(&o);
    assert!(o.status.success(), "the run should go on without the bad files:\n{}", stderr(&o));
    let lines = err_lines(&o);
    let start = lines.iter().position(|l| l.starts_with("training on")).expect("no 'training on' line");
    // 16 pairs, 7 photos broken (the orphan mask breaks none): 9 usable, 25% of them for validation.
    assert!(lines[start].contains("7 train / 2 val"), "{}", lines[start]);
    for (class, file) in &bad {
        let name = file.file_name().unwrap().to_str().unwrap();
        let hits: Vec<(usize, &String)> = lines.iter().enumerate().filter(|(_, l)| l.contains(name)).collect();
        assert_eq!(hits.len(), 1, "{class}: expected one line naming {name}:\n{}", stderr(&o));
        let (i, l) = hits[0];
        assert!(i < start, "{class}: reported after training started: {l}");
        assert!(l.starts_with("warning: ") && l.contains("fix:"), "{class}: {l}");
        row(class, l, "cli_errors::bad_data_files_are_reported_up_front_and_left_out");
    }
    assert!(out.join("last.safetensors").exists());

    // --strict: the same report, then one error line, non-zero exit, nothing trained.
    let out2 = d.join("run-strict");
    let o = fluke(&train_args(s(&images), s(&masks), s(&out2), &["--strict"]));
    assert_no_panic(&o);
    assert!(!o.status.success());
    let lines = err_lines(&o);
    let errors: Vec<&String> = lines.iter().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{}", stderr(&o));
    assert_eq!(lines.last().unwrap(), errors[0]);
    assert!(errors[0].contains("--strict") && errors[0].contains("fix"), "{}", errors[0]);
    assert!(!lines.iter().any(|l| l.starts_with("training on")), "--strict trained anyway");
    assert!(!out2.join("last.safetensors").exists());
    row("any bad file with --strict", errors[0], "cli_errors::bad_data_files_are_reported_up_front_and_left_out");
}

#[test]
fn folder_problems_are_one_line() {
    let f = fixture();
    let d = scratch("folders");
    let empty = d.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = d.join("run");
    let o = fluke(&train_args(s(&empty), s(&f.masks), s(&out), &[]));
    let l = one_line_error(&o, &["empty", "fix"]);
    row("empty photo folder", &l, "cli_errors::folder_problems_are_one_line");

    let o = fluke(&train_args(s(&f.images), s(&empty), s(&out), &[]));
    let l = one_line_error(&o, &["empty", "fix"]);
    row("empty mask folder", &l, "cli_errors::folder_problems_are_one_line");

    let missing = d.join("no-such-folder");
    let o = fluke(&train_args(s(&missing), s(&f.masks), s(&out), &[]));
    let l = one_line_error(&o, &["no-such-folder", "--images"]);
    row("missing --images path", &l, "cli_errors::folder_problems_are_one_line");

    let o = fluke(&["eval", "--weights", s(&f.ckpt), "--images", s(&f.images), "--masks", s(&missing)]);
    let l = one_line_error(&o, &["no-such-folder", "--masks"]);
    row("missing --masks path (eval)", &l, "cli_errors::folder_problems_are_one_line");

    let o = fluke(&["predict", "--weights", s(&f.ckpt), "--input", s(&missing), "--out", s(&d.join("p"))]);
    let l = one_line_error(&o, &["no-such-folder"]);
    row("missing --input path (predict)", &l, "cli_errors::folder_problems_are_one_line");

    // Every file unusable: the problems go into the one error line.
    let junk = d.join("junk");
    std::fs::create_dir_all(junk.join("images")).unwrap();
    std::fs::create_dir_all(junk.join("masks")).unwrap();
    std::fs::write(junk.join("images/a.jpg"), b"not a jpeg").unwrap();
    std::fs::write(junk.join("masks/a.png"), b"not a png").unwrap();
    let o = fluke(&train_args(s(&junk.join("images")), s(&junk.join("masks")), s(&out), &[]));
    let l = one_line_error(&o, &["a.jpg", "a.png", "fix"]);
    row("no usable pair at all", &l, "cli_errors::folder_problems_are_one_line");

    // --out is a file.
    let file_out = d.join("a-file");
    std::fs::write(&file_out, b"x").unwrap();
    let o = fluke(&train_args(s(&f.images), s(&f.masks), s(&file_out), &[]));
    let l = one_line_error(&o, &["a-file"]);
    row("--out is a file", &l, "cli_errors::folder_problems_are_one_line");
}

// ------------------------------------------------------------------------------------------------ weight files

#[test]
fn bad_weight_files_are_one_line_for_predict_eval_and_init() {
    let f = fixture();
    let d = scratch("weights");
    let full = std::fs::read(&f.ckpt).unwrap();
    let truncated = d.join("truncated.safetensors");
    std::fs::write(&truncated, &full[..full.len() / 3]).unwrap();
    let jpeg = d.join("photo.safetensors");
    std::fs::copy(first_with_ext(&f.images, "jpg"), &jpeg).unwrap();
    let missing = d.join("missing.safetensors");
    // PyTorch files cut short, in both containers (tools/make_pth_fixtures.py).
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let cut_pth = |name: &str| {
        let b = std::fs::read(fixtures.join(format!("unet_w16_{name}.pth"))).unwrap();
        let p = d.join(format!("cut_{name}.pth"));
        std::fs::write(&p, &b[..b.len() / 2]).unwrap();
        p
    };
    let (cut_zip, cut_legacy) = (cut_pth("zip"), cut_pth("legacy"));
    let cases: [(&str, &Path, &[&str]); 5] = [
        ("truncated weight file", &truncated, &["truncated.safetensors", "safetensors"]),
        ("truncated .pth (zip)", &cut_zip, &["cut_zip.pth", "PyTorch checkpoint", "truncated"]),
        ("truncated .pth (legacy)", &cut_legacy, &["cut_legacy.pth", "PyTorch checkpoint", "truncated"]),
        ("non-safetensors weight file (a JPEG)", &jpeg, &["photo.safetensors", "safetensors"]),
        ("missing weight file", &missing, &["missing.safetensors", "path"]),
    ];
    for (class, w, needles) in cases {
        let o = fluke(&["predict", "--weights", s(w), "--input", s(&f.images), "--out", s(&d.join("p"))]);
        let l = one_line_error(&o, needles);
        row(&format!("{class} (predict)"), &l, "cli_errors::bad_weight_files_are_one_line_for_predict_eval_and_init");
        let o = fluke(&["eval", "--weights", s(w), "--images", s(&f.images), "--masks", s(&f.masks)]);
        let l = one_line_error(&o, needles);
        row(&format!("{class} (eval)"), &l, "cli_errors::bad_weight_files_are_one_line_for_predict_eval_and_init");
        let out = d.join("init-run");
        let o = fluke(&train_args(s(&f.images), s(&f.masks), s(&out), &["--init", s(w)]));
        let l = one_line_error(&o, needles);
        row(&format!("{class} (train --init)"), &l, "cli_errors::bad_weight_files_are_one_line_for_predict_eval_and_init");
        assert!(!out.join("config.json").exists(), "a failed --init must not leave a run behind");
    }
}

#[test]
fn weights_of_another_width_or_architecture_are_named() {
    let f = fixture();
    let d = scratch("arch");
    // A width-16 checkpoint into a width-8 run.
    let out = d.join("w8");
    let mut a = vec!["train", "--images", s(&f.images), "--masks", s(&f.masks), "--out", s(&out), "--init", s(&f.ckpt)];
    a.extend(["--width", "8", "--size", "64x32", "--batch", "4", "--epochs", "1"]);
    let o = fluke(&a);
    let l = one_line_error(&o, &["last.safetensors", "width divisor 16", "--width 16"]);
    row("checkpoint of another width (train --init)", &l, "cli_errors::weights_of_another_width_or_architecture_are_named");

    // Same file without fluke's metadata (as from PyTorch): the width comes from the stem's shape ([4, 3, 7, 7]:
    // 64 / 4 = 16), so predict runs; with one tensor mis-shaped besides, predict lists it.
    let bare = d.join("no-meta.safetensors");
    rewrite_weights(&f.ckpt, &bare, |_, meta| meta.clear());
    let o = fluke(&["predict", "--weights", s(&bare), "--input", s(&f.images), "--out", s(&d.join("p")), "--size", "64x32"]);
    assert!(o.status.success(), "a width-16 file without metadata: {}", stderr(&o));
    let bad = d.join("no-meta-misshaped.safetensors");
    rewrite_weights(&f.ckpt, &bad, |ts, meta| {
        meta.clear();
        ts.iter_mut().find(|t| t.0 == "segmentation_head.0.weight").unwrap().1.shape = vec![1, 9, 1, 1];
    });
    let o = fluke(&["predict", "--weights", s(&bad), "--input", s(&f.images), "--out", s(&d.join("p2"))]);
    let l = one_line_error(&o, &["no-meta-misshaped.safetensors", "width divisor 16", "segmentation_head.0.weight: expected shape [1, 1, 3, 3], found [1, 9, 1, 1]"]);
    row("mis-shaped tensor, no metadata (predict)", &l, "cli_errors::weights_of_another_width_or_architecture_are_named");

    // Another architecture: other tensor names.
    let other = d.join("other-arch.safetensors");
    rewrite_weights(&f.ckpt, &other, |ts, meta| {
        meta.clear();
        ts.truncate(3);
        for (i, t) in ts.iter_mut().enumerate() {
            t.0 = format!("encoder.features.{i}.weight");
        }
    });
    let o = fluke(&["eval", "--weights", s(&other), "--images", s(&f.images), "--masks", s(&f.masks)]);
    let l = one_line_error(&o, &["other-arch.safetensors", "missing encoder.model.layer0.conv1.weight", "unexpected encoder.features.0.weight"]);
    row("weights of another architecture (eval)", &l, "cli_errors::weights_of_another_width_or_architecture_are_named");

    // A bare encoder (ImageNet style): fine for --init, refused by predict (the decoder would be random).
    let enc = d.join("encoder-only.safetensors");
    rewrite_weights(&f.ckpt, &enc, |ts, _| {
        ts.retain(|t| t.0.starts_with("encoder.model."));
        for t in ts.iter_mut() {
            t.0 = t.0.trim_start_matches("encoder.model.").to_string();
        }
    });
    let o = fluke(&["predict", "--weights", s(&enc), "--input", s(&f.images), "--out", s(&d.join("p"))]);
    let l = one_line_error(&o, &["encoder-only.safetensors", "decoder", "--init"]);
    row("encoder-only weights (predict)", &l, "cli_errors::weights_of_another_width_or_architecture_are_named");

    // Damaged metadata: an impossible width.
    let w3 = d.join("width3.safetensors");
    rewrite_weights(&f.ckpt, &w3, |_, meta| {
        meta.insert("fluke.width_div".into(), "3".into());
    });
    let o = fluke(&["predict", "--weights", s(&w3), "--input", s(&f.images), "--out", s(&d.join("p"))]);
    let l = one_line_error(&o, &["width3.safetensors", "damaged"]);
    row("checkpoint with an impossible width in its metadata", &l, "cli_errors::weights_of_another_width_or_architecture_are_named");
}

// ------------------------------------------------------------------------------------------------ options

#[test]
fn bad_sizes_are_one_line() {
    let f = fixture();
    let d = scratch("sizes");
    let out = d.join("run");
    for (size, class, needle) in [("70x32", "--size not a multiple of 32", "64x32"), ("16x32", "--size too small", "32x32"), ("big", "--size not WxH", "WxH")] {
        let mut a = vec!["train", "--images", s(&f.images), "--masks", s(&f.masks), "--out", s(&out), "--size", size];
        a.extend(["--width", "16", "--epochs", "1"]);
        let o = fluke(&a);
        let l = one_line_error(&o, &["--size", size, needle]);
        row(class, &l, "cli_errors::bad_sizes_are_one_line");
    }
    let o = fluke(&["predict", "--weights", s(&f.ckpt), "--input", s(&f.images), "--out", s(&d.join("p")), "--size", "100x64"]);
    let l = one_line_error(&o, &["--size", "100x64", "96x64"]);
    row("--size not a multiple of 32 (predict)", &l, "cli_errors::bad_sizes_are_one_line");
}

/// Max resident set size (bytes) of a finished child, reaped with wait4 so the number is that child's alone.
#[cfg(target_os = "linux")]
#[allow(clippy::zombie_processes)] // reaped by wait4 below, which clippy cannot see
fn run_with_max_rss(args: &[&str]) -> (std::process::Output, u64) {
    use std::io::Read;
    let mut child = fluke_cmd(args).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let (mut so, mut se) = (Vec::new(), Vec::new());
    child.stdout.take().unwrap().read_to_end(&mut so).unwrap();
    child.stderr.take().unwrap().read_to_end(&mut se).unwrap();
    let mut status = 0;
    // SAFETY: plain wait4 on our own child; rusage is a plain C struct filled by the kernel.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut ru) };
    assert_eq!(r, child.id() as libc::pid_t);
    use std::os::unix::process::ExitStatusExt;
    let out = std::process::Output { status: std::process::ExitStatus::from_raw(status), stdout: so, stderr: se };
    (out, ru.ru_maxrss as u64 * 1024)
}

/// Tensors over the adapter's 128 MiB binding limit: the message names the tensor, the limit and a smaller batch,
/// and it comes before any big allocation (the offending tensor alone would be 8 GiB).
#[test]
#[cfg(target_os = "linux")]
fn batch_over_the_binding_limit_is_refused_before_allocating() {
    let f = fixture();
    let d = scratch("toobig");
    let mut a = vec!["train", "--images", s(&f.images), "--masks", s(&f.masks), "--out"];
    let out = d.join("run");
    a.extend([s(&out), "--size", "1024x1024", "--batch", "64", "--width", "1", "--epochs", "1"]);
    let t0 = std::time::Instant::now();
    let (o, rss) = run_with_max_rss(&a);
    let l = one_line_error(&o, &["batch 64", "1024x1024", "needs the tensor '", "MiB", "limit", "--batch "]);
    println!("too-big train: {:.1} s, max RSS {} MiB", t0.elapsed().as_secs_f64(), rss >> 20);
    assert!(rss < 1 << 30, "max RSS {} MiB: something big was allocated before the check", rss >> 20);
    row("batch x size over the 128 MiB binding limit (train)", &l, "cli_errors::batch_over_the_binding_limit_is_refused_before_allocating");

    let (o, rss) = run_with_max_rss(&["predict", "--weights", s(&f.ckpt), "--input", s(&f.images), "--out", s(&d.join("p")), "--size", "2048x2048", "--batch", "64"]);
    let l = one_line_error(&o, &["needs the tensor '", "MiB", "limit", "--batch "]);
    assert!(rss < 1 << 30, "max RSS {} MiB", rss >> 20);
    row("batch x size over the binding limit (predict)", &l, "cli_errors::batch_over_the_binding_limit_is_refused_before_allocating");

    let (o, rss) = run_with_max_rss(&["eval", "--weights", s(&f.ckpt), "--images", s(&f.images), "--masks", s(&f.masks), "--size", "2048x2048", "--batch", "64"]);
    let l = one_line_error(&o, &["needs the tensor '", "MiB", "limit", "--batch"]);
    assert!(rss < 1 << 30, "max RSS {} MiB", rss >> 20);
    row("batch x size over the binding limit (eval)", &l, "cli_errors::batch_over_the_binding_limit_is_refused_before_allocating");
}

#[test]
fn unknown_adapter_lists_the_available_ones() {
    let f = fixture();
    let d = scratch("adapter");
    let out = d.join("run");
    let mut a = train_args(s(&f.images), s(&f.masks), s(&out), &[]);
    a.extend(["--adapter", "no-such-gpu-xyz"]);
    let o = fluke(&a);
    let l = one_line_error(&o, &["--adapter", "no-such-gpu-xyz", "available adapters"]);
    row("unknown --adapter", &l, "cli_errors::unknown_adapter_lists_the_available_ones");
    let o = fluke(&["info", "--backend", "vulkan9"]);
    let l = one_line_error(&o, &["--backend", "vulkan9", "vulkan, metal, dx12, gl"]);
    row("unknown --backend", &l, "cli_errors::unknown_adapter_lists_the_available_ones");
}

#[test]
fn resume_of_something_that_is_not_a_run() {
    let f = fixture();
    let d = scratch("resume");
    let o = fluke(&["train", "--resume", s(&f.images)]);
    let l = one_line_error(&o, &["config.json", "--resume needs a run folder"]);
    row("--resume of a folder that is not a run", &l, "cli_errors::resume_of_something_that_is_not_a_run");
    let o = fluke(&["train", "--resume", s(&d.join("nowhere"))]);
    let l = one_line_error(&o, &["nowhere", "--resume"]);
    row("--resume of a missing folder", &l, "cli_errors::resume_of_something_that_is_not_a_run");
    // A run whose state.json was damaged (by hand: the commit protocol never leaves it half-written).
    let run = d.join("damaged");
    std::fs::create_dir_all(&run).unwrap();
    for e in files(&f.run) {
        if e.is_file() {
            std::fs::copy(&e, run.join(e.file_name().unwrap())).unwrap();
        }
    }
    std::fs::write(run.join("state.json"), b"{ \"epoch\": 1, ").unwrap();
    let o = fluke(&["train", "--resume", s(&run)]);
    let l = one_line_error(&o, &["state.json", "damaged"]);
    row("--resume with a damaged state.json", &l, "cli_errors::resume_of_something_that_is_not_a_run");
    // A finished run is not overwritten by a fresh `train --out`.
    let o = fluke(&train_args(s(&f.images), s(&f.masks), s(&f.run), &[]));
    let l = one_line_error(&o, &["already holds a run", "--resume"]);
    row("train --out of an existing run", &l, "cli_errors::resume_of_something_that_is_not_a_run");
}

/// Option values that used to panic or silently train on nonsense, and clap's own usage errors: one line each.
#[test]
fn bad_option_values_are_one_line() {
    let f = fixture();
    let d = scratch("options");
    let out = d.join("run");
    let cases: [(&str, &[&str], &[&str]); 8] = [
        ("--width not 1/2/4/8/16", &["--width", "3", "--batch", "4"], &["--width", "1, 2, 4, 8 or 16"]),
        ("--batch 0", &["--batch", "0", "--width", "16"], &["--batch", "at least 1"]),
        ("--val-fraction 1", &["--val-fraction", "1", "--width", "16", "--batch", "4"], &["--val-fraction", "[0, 1)"]),
        ("--lr nan", &["--lr", "nan", "--width", "16", "--batch", "4"], &["--lr", "positive"]),
        ("--lr negative", &["--lr=-0.1", "--width", "16", "--batch", "4"], &["--lr", "positive"]),
        ("--epochs 0", &["--epochs", "0", "--width", "16", "--batch", "4"], &["--epochs", "1 or more"]),
        ("--batch not a number", &["--batch", "many", "--width", "16"], &["--batch", "many"]),
        ("unknown option", &["--colour", "blue"], &["--colour"]),
    ];
    for (class, extra, needles) in cases {
        let mut a = vec!["train", "--images", s(&f.images), "--masks", s(&f.masks), "--out", s(&out), "--size", "64x32"];
        a.extend(extra);
        if !extra.contains(&"--epochs") {
            a.extend(["--epochs", "1"]);
        }
        let o = fluke(&a);
        let l = one_line_error(&o, needles);
        row(class, &l, "cli_errors::bad_option_values_are_one_line");
        assert!(!out.join("last.safetensors").exists(), "{class}: trained anyway");
    }
    let o = fluke(&["train", "--images", s(&f.images)]);
    let l = one_line_error(&o, &["--masks"]);
    row("missing required option", &l, "cli_errors::bad_option_values_are_one_line");
    let o = fluke(&["info", "--model", "--width", "5"]);
    let l = one_line_error(&o, &["--width"]);
    row("--width 5 (info --model)", &l, "cli_errors::bad_option_values_are_one_line");
    let o = fluke(&["predict", "--weights", s(&f.ckpt), "--input", s(&f.images), "--out", s(&d.join("p")), "--tta", "spin"]);
    let l = one_line_error(&o, &["--tta", "spin"]);
    row("unknown --tta", &l, "cli_errors::bad_option_values_are_one_line");
    let o = fluke(&["predict", "--weights", s(&f.ckpt), "--input", s(&f.images), "--out", s(&d.join("p")), "--shard", "4/4"]);
    let l = one_line_error(&o, &["--shard", "4/4"]);
    row("--shard out of range", &l, "cli_errors::bad_option_values_are_one_line");
    let o = fluke(&["frobnicate"]);
    let l = one_line_error(&o, &["frobnicate"]);
    row("unknown subcommand", &l, "cli_errors::bad_option_values_are_one_line");
}

/// predict on a folder with one unreadable photo: the others are written, the bad one is one warning line naming
/// it, and the exit code (2) says something was skipped.
#[test]
fn predict_skips_a_bad_photo_with_one_line_and_exit_code_2() {
    let f = fixture();
    let d = scratch("predict-bad");
    let input = d.join("in");
    std::fs::create_dir_all(&input).unwrap();
    for p in files(&f.images).into_iter().take(2) {
        std::fs::copy(&p, input.join(p.file_name().unwrap())).unwrap();
    }
    std::fs::write(input.join("broken.jpg"), b"definitely not a jpeg").unwrap();
    let out = d.join("out");
    let o = fluke(&["predict", "--weights", s(&f.ckpt), "--input", s(&input), "--out", s(&out), "--tta", "none"]);
    assert_no_panic(&o);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let lines: Vec<String> = err_lines(&o).into_iter().filter(|l| l.contains("broken.jpg")).collect();
    assert_eq!(lines.len(), 1, "{}", stderr(&o));
    row("unreadable photo in predict (skipped, exit 2)", &lines[0], "cli_errors::predict_skips_a_bad_photo_with_one_line_and_exit_code_2");
}

/// A loss that turns NaN (an absurd learning rate) stops `fluke train` with one line naming the step and the fix,
/// and the last committed checkpoint is left as it was.
#[test]
fn nan_loss_stops_the_cli_with_one_line_and_keeps_the_checkpoint() {
    let f = fixture();
    let d = scratch("nan");
    let run = d.join("run");
    std::fs::create_dir_all(&run).unwrap();
    for e in files(&f.run) {
        if e.is_file() {
            std::fs::copy(&e, run.join(e.file_name().unwrap())).unwrap();
        }
    }
    for (file, key, value) in [("config.json", "epochs", serde_json::json!(8)), ("config.json", "lr", serde_json::json!(1e30)), ("state.json", "lr", serde_json::json!(1e30))] {
        let p = run.join(file);
        let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        v[key] = value;
        std::fs::write(&p, v.to_string()).unwrap();
    }
    let o = fluke(&["train", "--resume", s(&run)]);
    assert_no_panic(&o);
    assert!(!o.status.success());
    let lines = err_lines(&o);
    let errors: Vec<&String> = lines.iter().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{}", stderr(&o));
    assert_eq!(lines.last().unwrap(), errors[0]);
    assert!(errors[0].contains("training stopped at step") && errors[0].contains("--lr"), "{}", errors[0]);
    assert!(errors[0].contains("NaN") || errors[0].contains("inf"), "{}", errors[0]);
    row("loss turns NaN/inf during training", errors[0], "cli_errors::nan_loss_stops_the_cli_with_one_line_and_keeps_the_checkpoint");
    // The committed generation is the epoch before the failing one, and its weights are all finite.
    let failing: usize = errors[0].split("(epoch ").nth(1).and_then(|t| t.split(',').next()).and_then(|n| n.parse().ok()).unwrap();
    let state: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("state.json")).unwrap()).unwrap();
    assert_eq!(state["epoch"].as_u64().unwrap() as usize, failing - 1);
    let w = fluke::model::weights::read_weight_file(&run.join("last.safetensors")).unwrap();
    assert!(w.tensors.values().all(|t| t.data.iter().all(|v| v.is_finite())), "NaN reached the committed checkpoint");
}

/// `bench --width 3`, `bench --batch 0` and `predict --batch 0` are usage errors (they ended in an internal error,
/// ran, and silently became 1).
#[test]
fn bench_and_predict_option_values_are_checked() {
    let d = scratch("bench-opts");
    let w = d.join("none.safetensors");
    let (ws, ds) = (w.to_str().unwrap(), d.to_str().unwrap());
    for (args, needles) in [
        (&["bench", "--width", "3"][..], &["--width", "1, 2, 4, 8 or 16"][..]),
        (&["bench", "--batch", "0"][..], &["--batch", "at least 1"][..]),
        (&["predict", "--weights", ws, "--input", ds, "--batch", "0"][..], &["--batch", "at least 1"][..]),
    ] {
        let o = fluke(args);
        let l = one_line_error(&o, needles);
        row(&args.join(" "), &l, "cli_errors::bench_and_predict_option_values_are_checked");
    }
}
