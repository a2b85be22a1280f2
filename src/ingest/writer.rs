//! One writer per data directory.
//!
//! SQLite serialises writers itself, but a data directory is two stores (the database and the
//! tantivy index) that must move in step, and tantivy takes a single writer. So every write goes
//! through one gate with two locks:
//! - **in the process**, a fair async mutex: the service's bundle posts, sync jobs and
//!   transcriptions queue behind each other instead of failing;
//! - **across processes**, an exclusive advisory lock on `write.lock` in the data directory: a
//!   second process that wants to write (`ehrqa ingest` beside a running `ehrqa serve`, or two
//!   CLI ingests) waits at most its `write_wait` and is then told, in one line, which process
//!   holds the directory. The operating system drops the lock when its holder dies, SIGKILL
//!   included, so a crash never leaves the directory locked.
//!
//! Readers take no lock: SQLite's WAL and tantivy's segment snapshots let them read while a
//! writer writes.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, MutexGuard};

use super::IngestError;

/// Name of the lock file inside the data directory.
pub const LOCK_FILE: &str = "write.lock";

/// How often a waiting writer tries the other process's lock again.
const POLL: Duration = Duration::from_millis(50);

/// The way into writing one data directory.
pub struct WriteGate {
    queue: Mutex<()>,
    path: PathBuf,
}

/// Held while writing: the process's turn and the directory's lock. Dropping it releases both.
pub struct Writing<'a> {
    _turn: MutexGuard<'a, ()>,
    _file: LockedFile,
}

/// The lock file while this process holds its lock; dropping it unlocks, then closes.
///
/// Closing alone would not release the lock at once: the lock belongs to the open file, which a
/// child process forked at that moment (a test's server, an OCR tool) shares until its `exec`
/// closes it, so the next writer of this process would find the directory busy. Unlocking
/// releases it for every copy.
struct LockedFile(File);

impl Drop for LockedFile {
    fn drop(&mut self) {
        // An error leaves the lock to the close that follows.
        let _ = self.0.unlock();
    }
}

impl WriteGate {
    pub fn new(data_dir: &Path) -> Self {
        Self { queue: Mutex::new(()), path: data_dir.join(LOCK_FILE) }
    }

    /// Waits for this process's turn (however long the queue), then for the directory's lock
    /// for at most `wait`; `IngestError::Busy` when another process still holds it.
    pub async fn enter(&self, wait: Duration) -> Result<Writing<'_>, IngestError> {
        let turn = self.queue.lock().await;
        let deadline = Instant::now() + wait;
        loop {
            match self.try_file()? {
                Some(file) => return Ok(Writing { _turn: turn, _file: file }),
                None if Instant::now() >= deadline => return Err(self.busy()),
                None => tokio::time::sleep(POLL).await,
            }
        }
    }

    /// The gate if nobody, in this process or another, is writing now; else `None`.
    pub fn try_enter(&self) -> Result<Option<Writing<'_>>, IngestError> {
        let Ok(turn) = self.queue.try_lock() else { return Ok(None) };
        Ok(self.try_file()?.map(|file| Writing { _turn: turn, _file: file }))
    }

    /// Whether another process holds the directory's lock now (for `ehrqa check`).
    pub fn held_elsewhere(&self) -> Result<Option<u32>, IngestError> {
        match self.try_file()? {
            Some(_released_on_drop) => Ok(None),
            None => Ok(Some(self.holder().unwrap_or(0))),
        }
    }

    /// Takes the file lock without waiting, and writes this process's id into the file so a
    /// refused writer can say who holds it.
    fn try_file(&self) -> Result<Option<LockedFile>, IngestError> {
        let io = |source| IngestError::Lock { path: self.path.clone(), source };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Ok(None),
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        let mut locked = LockedFile(file);
        locked.0.set_len(0).map_err(io)?;
        locked.0.rewind().map_err(io)?;
        write!(locked.0, "{}", std::process::id()).map_err(io)?;
        Ok(Some(locked))
    }

    fn busy(&self) -> IngestError {
        IngestError::Busy {
            dir: self.path.parent().map(Path::to_owned).unwrap_or_default(),
            pid: self.holder(),
        }
    }

    /// The process id the holder wrote, if it is readable.
    fn holder(&self) -> Option<u32> {
        let mut s = String::new();
        File::open(&self.path).ok()?.read_to_string(&mut s).ok()?;
        s.trim().parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_gate_on_the_same_directory_is_refused_and_told_who_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (WriteGate::new(dir.path()), WriteGate::new(dir.path()));
        let held = a.enter(Duration::ZERO).await.unwrap();
        match b.enter(Duration::from_millis(120)).await {
            Err(IngestError::Busy { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("two writers entered one data directory"),
        }
        assert!(b.try_enter().unwrap().is_none());
        drop(held);
        assert!(b.enter(Duration::ZERO).await.is_ok(), "the lock is released with its holder");
    }

    /// A copy of the locked file (what a child forked while the lock is held has until it
    /// execs) must not keep the directory locked once the writer is done.
    #[tokio::test]
    async fn the_lock_is_released_even_while_a_copy_of_the_file_is_open() {
        let dir = tempfile::tempdir().unwrap();
        let gate = WriteGate::new(dir.path());
        let held = gate.enter(Duration::ZERO).await.unwrap();
        let copy = held._file.0.try_clone().unwrap();
        drop(held);
        assert!(gate.enter(Duration::ZERO).await.is_ok(), "the copy kept the directory locked");
        drop(copy);
    }

    #[tokio::test]
    async fn writers_of_one_process_queue_instead_of_failing() {
        let dir = tempfile::tempdir().unwrap();
        let gate = std::sync::Arc::new(WriteGate::new(dir.path()));
        let first = gate.enter(Duration::ZERO).await.unwrap();
        let g = gate.clone();
        let second = tokio::spawn(async move { g.enter(Duration::ZERO).await.map(|_| ()) });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!second.is_finished(), "the second writer waits its turn");
        drop(first);
        second.await.unwrap().expect("the second writer enters once the first is done");
    }
}
