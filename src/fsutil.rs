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
//! Run lock: an OS file lock on `<dir>/.lock`, taken with `std::fs::File::try_lock` (flock on unix, LockFileEx on
//! Windows). The kernel releases it when the holder's file is closed, which happens however the process ends
//! (exit, panic, SIGKILL, power cut), so a lock is held exactly while its owner lives. A pid file checked with
//! `kill(pid, 0)` cannot know that: it takes an exiting process or a zombie for a live owner, and after a reboot
//! or in a container (where every run may be pid 1) the pid of a dead run often belongs to a live process, and
//! `--resume` was refused. The pid is still written into the file, but only to name the owner in the refusal.
//! std rather than a crate (fs4, fd-lock): the lock is in std since Rust 1.89, has the semantics we need (flock
//! locks belong to the open file, so a second open in the same process is refused too, and std opens files
//! close-on-exec, so child processes never inherit it) and costs no dependency and no `unsafe`.
//!
//! The lock file stays while its run holds it and, on unix, is removed by its holder on release. Removing a lock
//! file is the classic race: B opens `.lock`, A unlinks it and closes, B locks the now nameless file, C creates a
//! new `.lock` and locks that: two owners. Two rules close it. (1) Only the holder unlinks, and before it unlocks.
//! (2) After locking, the taker checks that `.lock` still names the file it locked (same device and inode); if not,
//! it locked a file its holder had just removed, and it starts again. So whoever passes the check locked the file
//! that `.lock` names at a moment when nobody else held it, and nobody can remove it while it holds it. Off unix
//! std cannot tell a file's identity, so there the file is never removed: a leftover `.lock` that nobody has
//! locked means nothing, and is simply locked by the next run.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
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

/// Is `name` an atomic write's temp file, `<name>.tmp-<pid>-<seq>`?
fn is_temp_name(name: &str) -> bool {
    let Some((_, tail)) = name.rsplit_once(".tmp-") else { return false };
    let Some((pid, seq)) = tail.split_once('-') else { return false };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(pid) && digits(seq)
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

/// Exclusive lock on a run folder: an OS lock on `<dir>/.lock`, whose text is the holder's pid (see the module
/// header). Released on Drop, and by the kernel if the process dies without dropping it.
#[derive(Debug)]
pub struct RunLock {
    dir: PathBuf,
    path: PathBuf,
    /// The locked file. Closing it (Drop, or the death of the process) releases the lock.
    file: File,
}

impl RunLock {
    /// Take the lock on `dir` (which must exist). Errors if another open file holds it: another process, or this
    /// one (a second acquire while the first is held is refused). A `.lock` that nobody holds (its run ended or was
    /// killed) is simply taken, whatever pid it names.
    pub fn acquire(dir: &Path) -> Result<RunLock> {
        let path = dir.join(".lock");
        // More than one round only when a holder removed the file between our open and our lock (rule 2).
        for _ in 0..10 {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false) // the holder's pid must survive our open, for the refusal's message
                .open(&path)
                .with_context(|| format!("opening lock {}", path.display()))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    let owner = match read_owner(&file) {
                        Some(pid) => format!("process {pid}"),
                        None => "another process".to_string(),
                    };
                    bail!(
                        "run folder {} is in use by {owner} (it holds {}); wait for it to finish or use another folder",
                        dir.display(),
                        path.display()
                    )
                }
                Err(TryLockError::Error(e)) => {
                    return Err(e).with_context(|| format!("locking {} (does this file system support locks?)", path.display()))
                }
            }
            if !names_file(&path, &file)? {
                continue; // we locked a file its holder had just removed: the lock that counts is the new .lock
            }
            let mut f = &file;
            f.set_len(0).with_context(|| format!("writing lock {}", path.display()))?;
            f.write_all(format!("{}\n", std::process::id()).as_bytes())
                .with_context(|| format!("writing lock {}", path.display()))?;
            return Ok(RunLock { dir: dir.to_path_buf(), path, file });
        }
        bail!("could not take the lock {} (other processes keep removing it)", path.display())
    }

    /// The lock file's path (`<dir>/.lock`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The folder this lock holds.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Remove every atomic-write temp file (`<name>.tmp-<pid>-<seq>`) in `folder`, the run folder or one inside it.
    /// Returns how many were removed. A kill between steps 1 and 3 of an atomic write leaves one, as large as the
    /// file it was replacing (up to 2x the model). Holding the lock is what makes this safe without asking whether
    /// their pids live: no other process writes into a locked run folder, so each one is a dead run's. Call it
    /// before this run writes anything there (its own live temp files would go too).
    pub fn remove_temp_files(&self, folder: &Path) -> Result<usize> {
        assert!(folder.starts_with(&self.dir), "RunLock::remove_temp_files: {} is outside {}", folder.display(), self.dir.display());
        let mut removed = 0;
        for entry in fs::read_dir(folder).with_context(|| format!("listing {}", folder.display()))? {
            let path = entry.with_context(|| format!("listing {}", folder.display()))?.path();
            let temp = path.file_name().and_then(|n| n.to_str()).is_some_and(is_temp_name);
            if temp && path.is_file() {
                fs::remove_file(&path).with_context(|| format!("removing stale temp file {}", path.display()))?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Rule 1: remove the file while still holding it (the lock goes when `file` is closed, after this). The
        // check guards against a `.lock` that somebody replaced by hand: that one is not ours to remove.
        if cfg!(unix) && names_file(&self.path, &self.file).unwrap_or(false) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// The pid a lock's holder wrote into it. A holder writes it just after locking, so an empty file is given a
/// moment (up to 0.2 s) to fill. None if it never does, or the file cannot be read (Windows locks block reads).
fn read_owner(file: &File) -> Option<u32> {
    for _ in 0..20 {
        let mut text = String::new();
        let mut f = file;
        if f.seek(SeekFrom::Start(0)).is_err() || f.read_to_string(&mut text).is_err() {
            return None;
        }
        if let Ok(pid) = text.trim().parse() {
            return Some(pid);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    None
}

/// Does `path` still name the open `file` (same device and inode)? False if `path` is gone. Off unix std cannot
/// tell a file's identity; there the lock file is never removed, so the name is always the file.
fn names_file(path: &Path, file: &File) -> Result<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let open = file.metadata().with_context(|| format!("stat of lock {}", path.display()))?;
        match fs::metadata(path) {
            Ok(named) => Ok(named.dev() == open.dev() && named.ino() == open.ino()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e).with_context(|| format!("stat of lock {}", path.display())),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (path, file);
        Ok(true)
    }
}
