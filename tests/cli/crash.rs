//! Crash safety and concurrency, through the real binary.
//!
//! Kill-and-resume: `fluke train` is SIGKILLed at several moments (fixed times, just after an epoch's commit, and
//! while a commit is being written, caught by polling for its `.next`/`.tmp-` files). After each kill the run
//! folder must hold loadable weights (when anything was committed), `fluke train --resume` must finish it, and the
//! final last.safetensors must be bit-identical, tensor by tensor, to an uninterrupted run with the same seed.
//! Two crashes that polling can rarely catch (inside the three renames of a commit) are built by hand from real
//! generations: the roll-forward of a complete `state.json.next` and the discarding of a torn `.next` file.
//!
//! Concurrency: a second `fluke train` on a folder in use is refused with one line naming the lock and the pid;
//! two runs on different folders both finish.


use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use crate::common::*;

const EPOCHS: &str = "6";

fn train_cmd_args<'a>(images: &'a str, masks: &'a str, out: &'a str, epochs: &'a str) -> Vec<&'a str> {
    let mut a = vec!["train", "--images", images, "--masks", masks, "--out", out];
    a.extend(TINY);
    a.extend(["--epochs", epochs, "--val-fraction", "0.25", "--seed", "7"]);
    a
}

fn spawn(args: &[&str]) -> Child {
    fluke_cmd(args).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap()
}

/// A file in `dir` whose name contains one of `marks`.
fn file_marked(dir: &Path, marks: &[&str]) -> Option<String> {
    let rd = std::fs::read_dir(dir).ok()?;
    rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).find(|n| marks.iter().any(|m| n.contains(m)))
}

/// A commit's `x.next` (or its temp file) or any atomic write's temp file `x.tmp-<pid>-<seq>`.
fn commit_in_progress(dir: &Path) -> Option<String> {
    file_marked(dir, &[".next", ".tmp-"])
}

/// Epochs committed in a run folder (0 when there is no state.json).
fn committed_epoch(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("state.json"))
        .ok()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .and_then(|v| v["epoch"].as_u64())
        .unwrap_or(0) as usize
}

/// When to pull the plug.
#[derive(Debug, Clone, Copy)]
enum KillAt {
    /// This long after the start.
    After(Duration),
    /// As soon as state.json says this many epochs are done.
    Committed(usize),
    /// As soon as a file whose name contains the mark is seen, after this many epochs are done: `.tmp-` is any
    /// atomic write in progress (best.safetensors, curves.png, ...), `.next` a checkpoint commit in progress.
    FileSeen(usize, &'static str),
}

/// Start a run, kill it at `when`, return (what was seen at the kill, whether the process was still running).
fn run_and_kill(args: &[&str], dir: &Path, when: KillAt) -> (String, bool) {
    let mut child = spawn(args);
    let t0 = Instant::now();
    let seen = loop {
        if let Some(status) = child.try_wait().unwrap() {
            let _ = status;
            return (format!("process ended by itself after {:.2} s", t0.elapsed().as_secs_f64()), false);
        }
        match when {
            KillAt::After(d) if t0.elapsed() >= d => break format!("killed at {:.2} s", t0.elapsed().as_secs_f64()),
            KillAt::Committed(k) if committed_epoch(dir) >= k => break format!("killed after commit of epoch {k}"),
            KillAt::FileSeen(k, mark) if committed_epoch(dir) >= k => {
                if let Some(f) = file_marked(dir, &[mark]) {
                    break format!("killed while {f} existed (after epoch {})", committed_epoch(dir));
                }
            }
            _ => {}
        }
        // Tight polling for the commit window (a few ms of fsync); lazier otherwise.
        std::thread::sleep(Duration::from_micros(if matches!(when, KillAt::FileSeen(..)) { 200 } else { 5_000 }));
    };
    child.kill().unwrap(); // SIGKILL on Unix: no destructor, no lock release, no clean-up
    child.wait().unwrap();
    (seen, true)
}

/// After a crash: whatever was committed (best and last) loads and evaluates with `fluke eval`.
fn committed_weights_load(dir: &Path, images: &Path, masks: &Path) {
    for f in ["last.safetensors", "best.safetensors"] {
        let p = dir.join(f);
        if committed_epoch(dir) > 0 || p.exists() {
            let csv = dir.join("../eval-after-kill.csv");
            let o = fluke(&["eval", "--weights", s(&p), "--images", s(images), "--masks", s(masks), "--csv", s(&csv)]);
            assert_no_panic(&o);
            assert!(o.status.success(), "{} does not load after a kill:\n{}", p.display(), stderr(&o));
            assert!(String::from_utf8_lossy(&o.stdout).contains("soft Dice"));
        }
    }
}

fn resume(dir: &Path) -> String {
    let o = fluke(&["train", "--resume", s(dir)]);
    assert_no_panic(&o);
    assert!(o.status.success(), "resume of {} failed:\n{}", dir.display(), stderr(&o));
    stderr(&o).lines().find(|l| l.starts_with("resuming") || l.starts_with("nothing committed")).unwrap_or("").to_string()
}

fn assert_same_weights(a: &Path, b: &Path, what: &str) {
    let (ta, tb) = (tensor_bits(a), tensor_bits(b));
    assert_eq!(ta.keys().collect::<Vec<_>>(), tb.keys().collect::<Vec<_>>(), "{what}: tensor names differ");
    for (k, va) in &ta {
        assert!(va == &tb[k], "{what}: tensor {k} differs from the uninterrupted run");
    }
}

/// Set `epochs` in a run's config.json (to extend a finished short run, as a user would with a longer run).
fn set_epochs(dir: &Path, epochs: usize) {
    let p = dir.join("config.json");
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    v["epochs"] = serde_json::json!(epochs);
    std::fs::write(&p, v.to_string()).unwrap();
}

#[test]
fn killed_runs_resume_to_bit_identical_weights() {
    let root = tempdir();
    let (images, masks) = synth(&root.path().join("data"), 12, 5);
    // The reference: one uninterrupted run.
    let reference = root.path().join("reference");
    let t0 = Instant::now();
    let o = fluke(&train_cmd_args(s(&images), s(&masks), s(&reference), EPOCHS));
    assert!(o.status.success(), "{}", stderr(&o));
    let full = t0.elapsed();
    println!("uninterrupted run: {:.2} s", full.as_secs_f64());
    let reference_last = reference.join("last.safetensors");

    // Fixed times as fractions of the uninterrupted run, so they land mid-run on a fast or a slow adapter.
    let kills = [
        KillAt::After(full.mul_f64(0.3)),
        KillAt::After(full.mul_f64(0.6)),
        KillAt::After(full.mul_f64(0.9)),
        KillAt::Committed(1),
        KillAt::FileSeen(2, ".tmp-"),                    // any atomic write (best.safetensors, curves.png...)
        KillAt::FileSeen(3, "last.safetensors.next"),    // the commit's first file being written
        KillAt::FileSeen(4, "optimizer.safetensors.next"), // last.next complete, the optimizer's being written
    ];
    let mut really_killed = 0;
    for (i, when) in kills.iter().enumerate() {
        let dir = root.path().join(format!("killed-{i}"));
        let (seen, killed) = run_and_kill(&train_cmd_args(s(&images), s(&masks), s(&dir), EPOCHS), &dir, *when);
        really_killed += killed as usize;
        let at = committed_epoch(&dir);
        let leftovers = commit_in_progress(&dir);
        committed_weights_load(&dir, &images, &masks);
        let how = resume(&dir);
        assert_same_weights(&reference_last, &dir.join("last.safetensors"), &format!("{when:?}"));
        assert_eq!(committed_epoch(&dir), 6);
        assert!(!dir.join(".lock").exists(), "{when:?}: the lock outlived the resumed run");
        let stray = commit_in_progress(&dir);
        assert!(stray.is_none(), "{when:?}: stray commit file {stray:?} after resume");
        println!("KILL {when:?}: {seen}; committed epoch {at}; in-progress file {leftovers:?}; resume: '{how}'; final last.safetensors bit-identical");
    }
    // The time-based kills may miss on a fast machine; the event-based ones must not.
    assert!(really_killed >= 3, "only {really_killed} of the runs were still alive when killed");
}

/// The two crash points inside the renames of a commit, built from real generations of the same run.
#[test]
fn interrupted_commits_roll_forward_or_are_discarded() {
    let root = tempdir();
    let (images, masks) = synth(&root.path().join("data"), 12, 5);
    let run = |name: &str, epochs: &str| -> PathBuf {
        let d = root.path().join(name);
        let o = fluke(&train_cmd_args(s(&images), s(&masks), s(&d), epochs));
        assert!(o.status.success(), "{}", stderr(&o));
        d
    };
    let reference = run("reference", "3");
    let e1 = run("e1", "1");
    let e2 = run("e2", "2");
    let committed = ["last.safetensors", "optimizer.safetensors", "state.json"];

    // (a) Killed between renames: state.json.next is complete, last already renamed, optimizer and state not yet.
    let a = root.path().join("roll-forward");
    copy_dir(&e1, &a);
    std::fs::copy(e2.join("last.safetensors"), a.join("last.safetensors")).unwrap();
    std::fs::copy(e2.join("optimizer.safetensors"), a.join("optimizer.safetensors.next")).unwrap();
    std::fs::copy(e2.join("state.json"), a.join("state.json.next")).unwrap();
    std::fs::write(a.join(".lock"), b"999999999\n").unwrap(); // a dead owner's lock
    set_epochs(&a, 3);
    let how = resume(&a);
    assert!(how.contains("after epoch 2"), "roll-forward did not finish the commit: {how}");
    assert_same_weights(&reference.join("last.safetensors"), &a.join("last.safetensors"), "roll-forward");

    // (b) Killed while writing: a torn last.safetensors.next and an optimizer .next, no state.json.next.
    let b = root.path().join("discard");
    copy_dir(&e1, &b);
    let bytes = std::fs::read(e2.join("last.safetensors")).unwrap();
    std::fs::write(b.join("last.safetensors.next"), &bytes[..bytes.len() / 2]).unwrap();
    std::fs::copy(e2.join("optimizer.safetensors"), b.join("optimizer.safetensors.next")).unwrap();
    set_epochs(&b, 3);
    let how = resume(&b);
    assert!(how.contains("after epoch 1"), "a torn commit was not discarded: {how}");
    assert_same_weights(&reference.join("last.safetensors"), &b.join("last.safetensors"), "discard");
    for f in committed {
        assert!(!b.join(format!("{f}.next")).exists());
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in files(from) {
        if e.is_file() {
            std::fs::copy(&e, to.join(e.file_name().unwrap())).unwrap();
        }
    }
}

#[test]
fn a_second_run_on_the_same_folder_is_refused_and_different_folders_both_finish() {
    let root = tempdir();
    let (images, masks) = synth(&root.path().join("data"), 12, 9);
    let out = root.path().join("shared");
    let mut first = spawn(&train_cmd_args(s(&images), s(&masks), s(&out), "4"));
    let t0 = Instant::now();
    while !out.join(".lock").exists() {
        assert!(first.try_wait().unwrap().is_none(), "the first run ended before taking its lock");
        assert!(t0.elapsed() < Duration::from_secs(60), "no lock after 60 s");
        std::thread::sleep(Duration::from_millis(5));
    }
    let pid = first.id().to_string();
    let o = fluke(&train_cmd_args(s(&images), s(&masks), s(&out), "4"));
    let l = one_line_error(&o, &["in use by process", &pid, ".lock"]);
    row("second `fluke train` on a folder in use", &l, "crash::a_second_run_on_the_same_folder_is_refused_and_different_folders_both_finish");
    let o = fluke(&["train", "--resume", s(&out)]);
    one_line_error(&o, &["in use by process", &pid]);
    let status = first.wait().unwrap();
    assert!(status.success(), "the first run was disturbed by the refused ones");
    assert!(!out.join(".lock").exists(), "lock left behind by a clean exit");
    assert_eq!(committed_epoch(&out), 4);

    // Different folders: both run at the same time and both finish.
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    let mut ca = spawn(&train_cmd_args(s(&images), s(&masks), s(&a), "2"));
    let mut cb = spawn(&train_cmd_args(s(&images), s(&masks), s(&b), "2"));
    assert!(ca.wait().unwrap().success() && cb.wait().unwrap().success());
    assert_eq!((committed_epoch(&a), committed_epoch(&b)), (2, 2));
    // Same seed, same data: the two concurrent runs agree bit for bit.
    assert_same_weights(&a.join("last.safetensors"), &b.join("last.safetensors"), "concurrent runs");
}
