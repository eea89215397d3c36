//! File-system helpers for outputs that must never be half-written, and a lock so two runs never share a folder.
//!
//! Atomic write (the classic write-temp-then-rename):
//!   1. write the bytes to `<dir>/<name>.tmp-<pid>-<seq>` (same folder, so the rename never crosses file systems);
//!   2. fsync the temp file (its data is on disk before its name is);
//!   3. rename it over `<dir>/<name>` (atomic on POSIX and on NTFS: readers see the old file or the new one);
//!   4. fsync the folder (the rename itself survives a power cut; unix only, Windows has no folder handles).
//!
//! A crash at any step leaves either the old file intact or the new file complete, plus at worst a stray temp file.
//! If the writer closure fails, the temp file is removed and the old file is untouched.
//!
//! Run lock: `<dir>/.lock` is created with O_EXCL (`create_new`) and holds the owner's pid. A lock whose pid is dead
//! (the run crashed or was killed) is stale and is taken over; a live one is refused with a message naming the pid.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{bail, Context, Result};

/// Per-process counter so two threads writing the same path never share a temp file.
static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// The temp path next to `path`: `<name>.tmp-<pid>-<seq>`.
fn tmp_path(path: &Path) -> Result<PathBuf> {
    let name = path.file_name().with_context(|| format!("atomic write: {} has no file name", path.display()))?;
    let seq = TMP_SEQ.fetch_add(1, Ordering::Relaxed);
    let mut tmp = name.to_os_string();
    tmp.push(format!(".tmp-{}-{}", std::process::id(), seq));
    Ok(path.with_file_name(tmp))
}

/// Remove the temp files that killed writers left in `dir` (`<name>.tmp-<pid>-<seq>` whose pid is dead; a crash
/// between steps 1 and 3 above leaves one, as large as the file it was replacing). Returns how many were removed.
/// Live writers' temp files are left alone.
pub fn remove_stale_temp_files(dir: &Path) -> Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry.with_context(|| format!("listing {}", dir.display()))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
        // "<name>.tmp-<pid>-<seq>": the pid is the second-to-last dash field after the last ".tmp-".
        let Some((_, tail)) = name.rsplit_once(".tmp-") else { continue };
        let Some((pid, seq)) = tail.split_once('-') else { continue };
        let (Ok(pid), true) = (pid.parse::<u32>(), !seq.is_empty() && seq.bytes().all(|b| b.is_ascii_digit())) else {
            continue;
        };
        if !pid_alive(pid) && path.is_file() {
            fs::remove_file(&path).with_context(|| format!("removing stale temp file {}", path.display()))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// fsync a folder so a rename (or create/remove) inside it is durable. No-op where folders cannot be opened.
fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        let d = File::open(dir).with_context(|| format!("opening folder {} to fsync it", dir.display()))?;
        d.sync_all().with_context(|| format!("fsync of folder {}", dir.display()))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// The folder that holds `path` ("." for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Write `bytes` to `path` atomically (see the module header).
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    atomic_write_with(path, |f| {
        f.write_all(bytes)?;
        Ok(())
    })
}

/// Let `f` fill a fresh temp file, then fsync and rename it over `path`. If `f` fails, the temp file is removed,
/// `path` keeps its old content, and the error comes back with the path in its message.
pub fn atomic_write_with(path: &Path, f: impl FnOnce(&mut File) -> Result<()>) -> Result<()> {
    let tmp = tmp_path(path)?;
    let result = (|| -> Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .with_context(|| format!("creating temp file {}", tmp.display()))?;
        f(&mut file).with_context(|| format!("writing {}", path.display()))?;
        file.flush().with_context(|| format!("writing {}", path.display()))?;
        file.sync_all().with_context(|| format!("fsync of {}", tmp.display()))?;
        drop(file); // close before rename: Windows refuses to rename an open file
        fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
        Ok(())
    })();
    if result.is_err() {
        // Best effort: the error we return is the interesting one, not a failed clean-up.
        let _ = fs::remove_file(&tmp);
        return result;
    }
    sync_dir(parent_dir(path))
}

/// Encode `img` as PNG in memory, then write it atomically. The format is PNG whatever the extension says.
pub fn save_png_atomic(img: &image::DynamicImage, path: &Path) -> Result<()> {
    let mut buf = std::io::Cursor::new(Vec::new());
    img.write_to(&mut buf, image::ImageFormat::Png).with_context(|| format!("encoding PNG for {}", path.display()))?;
    atomic_write(path, buf.get_ref())
}

/// Is process `pid` alive? `kill(pid, 0)` sends nothing and only checks: 0 = alive, EPERM = alive but not ours,
/// ESRCH = gone. Off unix we cannot tell cheaply, so we say "alive" (the safe answer: never steal a live lock;
/// the error message tells the user how to remove a stale one by hand).
fn pid_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(p) = libc::pid_t::try_from(pid) else { return false };
        if p <= 0 {
            return false; // 0 and negatives address process groups, never a lock owner
        }
        // SAFETY: kill with signal 0 performs only the existence and permission check.
        let r = unsafe { libc::kill(p, 0) };
        r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// Exclusive lock on a run folder: `<dir>/.lock` holding our pid. Released (the file removed) on Drop.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
    /// What we wrote into the lock file; Drop removes the file only if it still says this.
    token: String,
}

impl RunLock {
    /// Take the lock on `dir` (which must exist). Errors if a live process holds it (this process included: a
    /// second acquire while the first is held is refused). A lock left by a dead process is taken over.
    pub fn acquire(dir: &Path) -> Result<RunLock> {
        let path = dir.join(".lock");
        let token = format!("{}\n", std::process::id());
        // A few rounds: each stale take-over is followed by a fresh O_EXCL attempt that another process may win.
        for _ in 0..5 {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    f.write_all(token.as_bytes()).with_context(|| format!("writing lock {}", path.display()))?;
                    f.sync_all().with_context(|| format!("fsync of lock {}", path.display()))?;
                    return Ok(RunLock { path, token });
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e).with_context(|| format!("creating lock {}", path.display())),
            }
            // Somebody holds (or held) it: who?
            let content = match fs::read_to_string(&path) {
                Ok(c) => c,
                Err(e) if e.kind() == ErrorKind::NotFound => continue, // released meanwhile: try again
                Err(e) => return Err(e).with_context(|| format!("reading lock {}", path.display())),
            };
            let owner: Option<u32> = content.trim().parse().ok();
            match owner {
                Some(pid) if pid_alive(pid) => bail!(
                    "run folder {} is in use by process {pid}; wait for it to finish, use another folder, \
                     or delete {} if that process is not fluke",
                    dir.display(),
                    path.display()
                ),
                // Dead owner, or a torn/empty file (a crash between create and write): stale.
                _ => Self::take_over_stale(&path, &content)?,
            }
        }
        bail!("could not take the lock {} (other processes keep racing for it)", path.display())
    }

    /// Move a stale lock out of the way. Rename is atomic, so of several processes racing for the same stale lock
    /// only one moves it; if what we moved turns out to be a fresh lock (someone took over between our read and our
    /// rename), we put it back (hard_link fails rather than clobber a newer lock).
    fn take_over_stale(path: &Path, stale: &str) -> Result<()> {
        let mut aside = path.as_os_str().to_os_string();
        aside.push(format!(".stale-{}", std::process::id()));
        let aside = PathBuf::from(aside);
        match fs::rename(path, &aside) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()), // someone else moved it
            Err(e) => return Err(e).with_context(|| format!("removing stale lock {}", path.display())),
        }
        let moved = fs::read_to_string(&aside).unwrap_or_default();
        if moved != stale {
            let _ = fs::hard_link(&aside, path);
        }
        let _ = fs::remove_file(&aside);
        Ok(())
    }

    /// The lock file's path (`<dir>/.lock`).
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Remove only our own lock: if it was (wrongly) taken over, the new owner's file stays.
        if fs::read_to_string(&self.path).map(|c| c == self.token).unwrap_or(false) {
            let _ = fs::remove_file(&self.path);
        }
    }
}
