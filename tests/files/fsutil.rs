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

/// Env var that turns `lock_holder_child` into a lock holder: the folder to lock.
const HOLD_ENV: &str = "FLUKE_TEST_HOLD_LOCK";

/// What `lock_holder_child` prints once it holds the lock.
const HELD: &str = "fluke-test-lock-held";

/// Not a test of its own: the body of the child process that `spawn_holder` starts (this test binary run again).
/// It takes the lock, says so on stdout and waits to be killed (at most 2 minutes), so the lock is released by the kernel, not by Drop.
#[test]
#[ignore = "helper process for run_lock_refuses_a_live_foreign_process"]
fn lock_holder_child() {
    let Some(dir) = std::env::var_os(HOLD_ENV) else { return };
    let _lock = RunLock::acquire(Path::new(&dir)).unwrap();
    println!("{HELD}"); // after libtest's "test lock_holder_child ... " on the same line
    // Killed long before this; the limit only keeps a parent that failed from leaving it behind for good.
    std::thread::sleep(std::time::Duration::from_secs(120));
}

/// Start a second process that holds the lock on `dir`, and wait until it does.
fn spawn_holder(dir: &Path) -> std::process::Child {
    use std::io::BufRead;
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "fsutil::lock_holder_child", "--ignored", "--nocapture", "--test-threads", "1"])
        .env(HOLD_ENV, dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = std::io::BufReader::new(child.stdout.take().unwrap());
    let locked = out.lines().map_while(|l| l.ok()).any(|l| l.contains(HELD));
    assert!(locked, "the lock holder process ended without taking the lock");
    child
}

#[test]
fn run_lock_refuses_a_live_foreign_process() {
    let dir = scratch("live");
    let mut child = spawn_holder(&dir);
    let r = RunLock::acquire(&dir);
    child.kill().unwrap(); // SIGKILL on unix: no Drop runs, the kernel drops the lock with the process
    child.wait().unwrap();
    let e = r.unwrap_err().to_string();
    assert!(e.contains(&format!("in use by process {}", child.id())), "{e}");
    // Now that it is dead, the same lock is stale and gets taken over.
    assert!(dir.join(".lock").exists(), "the killed holder left its lock file");
    drop(RunLock::acquire(&dir).unwrap());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn run_lock_refuses_a_file_locked_in_this_process() {
    let dir = scratch("file");
    // Any open file holding the OS lock counts, whatever the lock file says (here: our pid, as a holder writes it).
    let held = std::fs::OpenOptions::new().create(true).truncate(true).write(true).open(dir.join(".lock")).unwrap();
    std::fs::write(dir.join(".lock"), format!("{}\n", std::process::id())).unwrap();
    held.lock().unwrap();
    let e = RunLock::acquire(&dir).unwrap_err().to_string();
    assert!(e.contains(&format!("in use by process {}", std::process::id())), "{e}");
    assert!(e.contains(".lock"), "{e}");
    // A holder that never wrote its pid is still a holder.
    held.set_len(0).unwrap();
    let e = RunLock::acquire(&dir).unwrap_err().to_string();
    assert!(e.contains("in use by another process"), "{e}");
    held.unlock().unwrap();
    drop(RunLock::acquire(&dir).unwrap());
    drop(held);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn run_lock_takes_over_a_lock_file_whose_pid_lives_on() {
    // PID reuse (after a reboot, in a container): the lock file of a killed run names a pid that now belongs to a
    // live process. Nobody holds the OS lock, so the folder is free.
    let dir = scratch("reused");
    let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
    std::fs::write(dir.join(".lock"), format!("{}\n", child.id())).unwrap();
    let r = RunLock::acquire(&dir);
    child.kill().unwrap();
    child.wait().unwrap();
    let lock = r.unwrap();
    assert_eq!(std::fs::read_to_string(dir.join(".lock")).unwrap().trim(), std::process::id().to_string());
    // Our own pid in an unlocked file (a previous run that was pid 1 in its container, as this one may be).
    drop(lock);
    std::fs::write(dir.join(".lock"), format!("{}\n", std::process::id())).unwrap();
    drop(RunLock::acquire(&dir).unwrap());
    assert_eq!(entries(&dir), Vec::<String>::new(), "no leftovers");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn run_lock_removes_only_temp_files_in_its_folder() {
    let dir = scratch("temps");
    std::fs::create_dir_all(dir.join("overlays")).unwrap();
    let temps = ["last.safetensors.tmp-4242-0", "curves.png.tmp-1-17", "overlays/epoch_001.png.tmp-99-3"];
    let kept = ["metrics.csv", "state.json.next", "notes.tmp-x-1", "a.tmp-12", "a.tmp-12-"];
    for f in temps.iter().chain(&kept) {
        std::fs::write(dir.join(f), b"x").unwrap();
    }
    // Our own pid's temp files go too: in a container a killed run and this one may share a pid.
    let ours = format!("best.safetensors.tmp-{}-0", std::process::id());
    std::fs::write(dir.join(&ours), b"x").unwrap();
    let lock = RunLock::acquire(&dir).unwrap();
    assert_eq!(lock.remove_temp_files(&dir).unwrap(), 3);
    assert_eq!(lock.remove_temp_files(&dir.join("overlays")).unwrap(), 1);
    let mut want: Vec<String> = kept.iter().map(|s| s.to_string()).chain([".lock".to_string(), "overlays".to_string()]).collect();
    want.sort();
    assert_eq!(entries(&dir), want);
    assert_eq!(entries(&dir.join("overlays")), Vec::<String>::new());
    drop(lock);
    let _ = std::fs::remove_dir_all(&dir);
}
