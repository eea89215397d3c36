//! Atomic writes (no partial file, no stray temp file, old content kept on error) and the run-folder lock.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use fluke::fsutil::{atomic_write, atomic_write_with, save_png_atomic, RunLock};

/// A fresh folder under cargo's per-target scratch space.
fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("fsutil-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

#[test]
fn atomic_write_replaces_content_and_leaves_no_temp_file() {
    let dir = scratch("write");
    let p = dir.join("metrics.json");
    atomic_write(&p, b"first").unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), b"first");
    atomic_write(&p, b"second, longer content").unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), b"second, longer content");
    atomic_write_with(&p, |f| {
        use std::io::Write;
        writeln!(f, "third")?;
        Ok(())
    })
    .unwrap();
    assert_eq!(std::fs::read_to_string(&p).unwrap(), "third\n");
    assert_eq!(entries(&dir), vec!["metrics.json"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn atomic_write_with_error_keeps_old_content() {
    let dir = scratch("error");
    let p = dir.join("model.safetensors");
    atomic_write(&p, b"old weights").unwrap();
    let err = atomic_write_with(&p, |f| {
        use std::io::Write;
        f.write_all(b"half of the new wei")?;
        Err(anyhow!("disk full (simulated)"))
    })
    .unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("model.safetensors") && msg.contains("simulated"), "{msg}");
    assert_eq!(std::fs::read(&p).unwrap(), b"old weights");
    assert_eq!(entries(&dir), vec!["model.safetensors"], "temp file removed");
    // Writing into a missing folder fails with the path in the message.
    let e = format!("{:#}", atomic_write(&dir.join("nope/x.bin"), b"x").unwrap_err());
    assert!(e.contains("nope"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn save_png_atomic_round_trips() {
    let dir = scratch("png");
    let p = dir.join("mask.png");
    let img = image::GrayImage::from_fn(7, 5, |x, y| image::Luma([(x * 30 + y) as u8]));
    save_png_atomic(&image::DynamicImage::ImageLuma8(img.clone()), &p).unwrap();
    assert_eq!(image::open(&p).unwrap().to_luma8(), img);
    assert_eq!(entries(&dir), vec!["mask.png"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn run_lock_refuses_second_acquire_and_releases_on_drop() {
    let dir = scratch("lock");
    let lock = RunLock::acquire(&dir).unwrap();
    let pid = std::process::id();
    assert_eq!(std::fs::read_to_string(dir.join(".lock")).unwrap().trim(), pid.to_string());
    let e = RunLock::acquire(&dir).unwrap_err().to_string();
    assert!(e.contains("in use by process") && e.contains(&pid.to_string()), "{e}");
    assert!(e.contains(&dir.display().to_string()), "{e}");
    drop(lock);
    assert!(!dir.join(".lock").exists(), "released on drop");
    let again = RunLock::acquire(&dir).unwrap();
    drop(again);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn run_lock_takes_over_stale_lock() {
    let dir = scratch("stale");
    // A pid that surely is dead: a child we started and reaped.
    let mut child = std::process::Command::new("sh").arg("-c").arg("exit 0").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    std::fs::write(dir.join(".lock"), format!("{dead}\n")).unwrap();
    let lock = RunLock::acquire(&dir).unwrap();
    assert_eq!(std::fs::read_to_string(dir.join(".lock")).unwrap().trim(), std::process::id().to_string());
    // A torn (empty) lock file from a crash between create and write is stale too.
    drop(lock);
    std::fs::write(dir.join(".lock"), "").unwrap();
    let lock = RunLock::acquire(&dir).unwrap();
    drop(lock);
    assert_eq!(entries(&dir), Vec::<String>::new(), "no leftovers");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn run_lock_refuses_a_live_foreign_process() {
    let dir = scratch("live");
    let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
    std::fs::write(dir.join(".lock"), format!("{}\n", child.id())).unwrap();
    let r = RunLock::acquire(&dir);
    child.kill().unwrap();
    child.wait().unwrap();
    let e = r.unwrap_err().to_string();
    assert!(e.contains(&format!("in use by process {}", child.id())), "{e}");
    // Now that it is dead, the same lock is stale and gets taken over.
    drop(RunLock::acquire(&dir).unwrap());
    let _ = std::fs::remove_dir_all(&dir);
}
