//! The pid file: created atomically, locked while the daemon lives.
//!
//! The lock, not the pid written inside, is what says a daemon runs: a
//! process that dies, even by SIGKILL, drops its lock, so a pid file whose
//! lock is free is stale and the next daemon takes it over.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Why a pid file could not be taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PidFileError {
    /// Another live process holds the pid file.
    #[error("another consumer is already running with pid file {path} (pid {})", pid.map_or("unknown".to_owned(), |p| p.to_string()))]
    AlreadyRunning {
        /// The pid file.
        path: PathBuf,
        /// The pid written in it, if readable.
        pid: Option<u32>,
    },
    /// The pid file could not be created, locked or written.
    #[error("pid file {path}: {source}")]
    Io {
        /// The pid file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Longer than any reader holds a pid file's lock: a lock held this long is
/// a live daemon's.
const READERS_LOCK: Duration = Duration::from_millis(100);

/// What a pid file says about its daemon, as init scripts report it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum PidStatus {
    /// A live process holds the pid file (exit status 0).
    Running(Option<u32>),
    /// The pid file exists but no process holds it (exit status 1).
    Dead(Option<u32>),
    /// There is no pid file (exit status 3).
    NotRunning,
}

impl PidStatus {
    /// The LSB init-script exit status: 0, 1 or 3.
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Running(_) => 0,
            Self::Dead(_) => 1,
            Self::NotRunning => 3,
        }
    }
}

/// A pid file this process holds; removed by [`PidFile::remove`].
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    // held open: the lock lives as long as the file handle
    _file: File,
}

impl PidFile {
    /// Takes the pid file at `path` for this process: creates it if missing,
    /// takes over a stale one, and refuses when a live process holds it.
    pub fn acquire(path: &Path) -> Result<PidFile, PidFileError> {
        let io = |source| PidFileError::Io {
            path: path.to_owned(),
            source,
        };
        let mut refused_since: Option<Instant> = None;
        loop {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)
                .map_err(io)?;
            // read before the lock, for the warning below: once locked, the
            // file must be emptied at once
            let stale = read_pid(&mut file);
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    // A reader ([`status`](Self::status), as `start` waiting
                    // for this daemon) holds the lock for a moment; a live
                    // daemon holds it throughout.
                    let since = *refused_since.get_or_insert_with(Instant::now);
                    if since.elapsed() < READERS_LOCK {
                        std::thread::sleep(Duration::from_millis(1));
                        continue;
                    }
                    return Err(PidFileError::AlreadyRunning {
                        path: path.to_owned(),
                        pid: read_pid(&mut file),
                    });
                }
                Err(TryLockError::Error(error)) => return Err(io(error)),
            }
            // A reader that finds the file locked takes the pid inside for the
            // holder's, and a stale pid can still name a live process (a
            // killed daemon not yet reaped): empty the file at once, so that
            // it reads as "running, pid not yet known" until this process's
            // pid is in.
            file.set_len(0).map_err(io)?;
            // The previous holder may have removed the file between our open
            // and our lock: then the locked inode is no longer at `path`.
            let held = file.metadata().map_err(io)?;
            match std::fs::metadata(path) {
                Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => {}
                _ => continue,
            }
            if let Some(stale) = stale {
                log::warn!(
                    "replacing stale pid file {} of pid {stale}, which is gone",
                    path.display()
                );
            }
            let line = format!("{}\n", std::process::id());
            file.write_all_at(line.as_bytes(), 0).map_err(io)?;
            file.sync_all().map_err(io)?;
            return Ok(PidFile {
                path: path.to_owned(),
                _file: file,
            });
        }
    }

    /// The pid file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the pid file, then lets go of its lock.
    pub fn remove(self) {
        if let Err(error) = std::fs::remove_file(&self.path) {
            log::warn!("removing pid file {}: {error}", self.path.display());
        }
    }

    /// Removes the pid file at `path` if no process holds it: a dead
    /// daemon's. Returns whether it removed one; a file that a daemon holds
    /// (one that started meanwhile) is left alone.
    pub fn remove_stale(path: &Path) -> Result<bool, PidFileError> {
        let io = |source| PidFileError::Io {
            path: path.to_owned(),
            source,
        };
        let file = match File::open(path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(source) => return Err(io(source)),
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Ok(false),
            Err(TryLockError::Error(source)) => return Err(io(source)),
        }
        // under the lock, no daemon can take the file over: remove it if it
        // is still the file that was locked
        let held = file.metadata().map_err(io)?;
        match std::fs::metadata(path) {
            Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => {
                std::fs::remove_file(path).map_err(io)?;
                Ok(true)
            }
            Ok(_) => Ok(false),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(io(source)),
        }
    }

    /// What the pid file at `path` says.
    pub fn status(path: &Path) -> Result<PidStatus, PidFileError> {
        let io = |source| PidFileError::Io {
            path: path.to_owned(),
            source,
        };
        loop {
            let mut file = match File::open(path) {
                Ok(file) => file,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                    return Ok(PidStatus::NotRunning);
                }
                Err(source) => return Err(io(source)),
            };
            // the pid is read once the lock is seen held: a new holder
            // empties a stale pid first thing after it locks
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    return Ok(PidStatus::Running(read_pid(&mut file)));
                }
                Err(TryLockError::Error(source)) => return Err(io(source)),
            }
            let pid = read_pid(&mut file);
            // A daemon that exits removes its pid file and then lets go of
            // the lock: if it did both since our open, the unlocked file is
            // no longer at `path`, and the daemon ended cleanly rather than
            // died. Look again at what `path` holds now.
            let held = file.metadata().map_err(io)?;
            match std::fs::metadata(path) {
                Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => {
                    return Ok(PidStatus::Dead(pid));
                }
                Ok(_) => continue,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                    return Ok(PidStatus::NotRunning);
                }
                Err(source) => return Err(io(source)),
            }
        }
    }
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_pid_file_refuses_a_second_holder_and_reports_running() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("consumer.pid");
        assert_eq!(PidFile::status(&path).unwrap(), PidStatus::NotRunning);
        let held = PidFile::acquire(&path).unwrap();
        let me = Some(std::process::id());
        assert_eq!(PidFile::status(&path).unwrap(), PidStatus::Running(me));
        let err = PidFile::acquire(&path).unwrap_err();
        assert!(
            matches!(err, PidFileError::AlreadyRunning { pid, .. } if pid == me),
            "{err}"
        );
        assert!(err.to_string().contains("already running"));
        held.remove();
        assert!(!path.exists());
        assert_eq!(PidFile::status(&path).unwrap(), PidStatus::NotRunning);
    }

    #[test]
    fn a_stale_pid_file_is_dead_and_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("consumer.pid");
        std::fs::write(&path, "999999999\n").unwrap();
        assert_eq!(
            PidFile::status(&path).unwrap(),
            PidStatus::Dead(Some(999_999_999))
        );
        assert_eq!(PidFile::status(&path).unwrap().exit_code(), 1);
        let held = PidFile::acquire(&path).unwrap();
        let written = std::fs::read_to_string(&path).unwrap();
        assert_eq!(written.trim(), std::process::id().to_string());
        drop(held);
    }

    /// `status` locks the file for a moment to see whether a daemon holds
    /// it, and `start` calls it while its daemon starts: that brief lock must
    /// not make the daemon refuse its own pid file.
    #[test]
    fn a_readers_brief_lock_does_not_refuse_the_daemon() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("consumer.pid");
        let reader = File::create(&path).unwrap();
        reader.try_lock().unwrap();
        let held = std::thread::scope(|scope| {
            let daemon = scope.spawn(|| PidFile::acquire(&path));
            std::thread::sleep(Duration::from_millis(20));
            reader.unlock().unwrap();
            daemon.join().unwrap()
        });
        assert!(held.is_ok(), "{held:?}");
        // a lock held throughout is a live daemon's
        assert!(matches!(
            PidFile::acquire(&path),
            Err(PidFileError::AlreadyRunning { .. })
        ));
    }

    /// A daemon that exits cleanly removes its pid file, then lets go of the
    /// lock; a reader that opened the file just before must not take the
    /// unlocked, removed file for a dead daemon's (`stop` then reported
    /// "ended without removing its pid file").
    #[test]
    fn a_clean_exit_is_never_read_as_a_death() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("consumer.pid");
        let done = std::sync::atomic::AtomicBool::new(false);
        let deaths = std::thread::scope(|scope| {
            let reader = scope.spawn(|| {
                let mut deaths = 0;
                while !done.load(std::sync::atomic::Ordering::SeqCst) {
                    // Dead(None) is a file created but not yet locked and
                    // written by a starting daemon, another moment
                    if let PidStatus::Dead(Some(_)) = PidFile::status(&path).unwrap() {
                        deaths += 1;
                    }
                }
                deaths
            });
            let mut cycles = 0;
            while cycles < 3_000 {
                // the reader's own brief lock may refuse an acquire: retry
                match PidFile::acquire(&path) {
                    Ok(held) => {
                        held.remove();
                        cycles += 1;
                    }
                    Err(PidFileError::AlreadyRunning { .. }) => {}
                    Err(error) => {
                        done.store(true, std::sync::atomic::Ordering::SeqCst);
                        panic!("{error}");
                    }
                }
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            reader.join().unwrap()
        });
        assert_eq!(deaths, 0, "a clean exit was read as a death");
    }
}
