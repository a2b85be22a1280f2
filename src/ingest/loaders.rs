//! Reading, parsing and preparing files on several threads, delivered in the order named.
//!
//! One reader thread left a core idle whenever it parsed (parsing is single-threaded) and
//! whenever the writer committed, so files are loaded by up to `MAX_LOADERS` threads: loader `k`
//! takes files `k`, `k + n`, `k + 2n`... and a forwarding thread takes one result from each loader
//! in turn, so the writer sees the files in the order given (a later file's version of a resource
//! still wins, as with one reader). Memory stays bounded: loaders start a file only while the
//! input bytes loaded and not yet forwarded stay under `IN_FLIGHT_BYTES` (one file may always
//! start, whatever its size), and each loader holds at most two finished files.

use std::path::PathBuf;
use std::sync::{mpsc as std_mpsc, Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use tokio::sync::mpsc;

use super::pipeline::{load_file, Loaded};
use crate::fhir::Threads;
use crate::tokens::TokenCounter;

/// Loader threads at most (the writer and the index use the other cores' time too).
const MAX_LOADERS: usize = 4;

/// Input bytes loaded but not yet handed to the writer, across loaders (a soft cap: one file
/// always proceeds when nothing else is in flight).
const IN_FLIGHT_BYTES: u64 = 128 * 1024 * 1024;

/// How far below the process's priority loader threads run, in nice steps (19 is the lowest
/// priority there is). Measured with `tools/bench_alternate.py` on two cores: 10 gave the
/// writer most of a core without leaving the loaders behind; 0, 5, 15 and 19 did no better in
/// the same sittings.
const LOADER_NICE: i32 = 10;

/// Starts loading `files`; their results arrive on `tx` in the order of `files`. The returned
/// handle ends when every file was sent or the receiver was dropped.
pub fn spawn(
    files: Vec<PathBuf>,
    max_bytes: u64,
    counter: Option<Arc<dyn TokenCounter>>,
    tx: mpsc::Sender<Loaded>,
) -> JoinHandle<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let n = cores.clamp(1, MAX_LOADERS).min(files.len().max(1));
    let budget = Arc::new(Budget::new(IN_FLIGHT_BYTES));
    let files = Arc::new(files);
    let loaders: Vec<Loader> = (0..n)
        .map(|k| Loader::start(k, n, files.clone(), max_bytes, counter.clone(), budget.clone()))
        .collect();
    std::thread::Builder::new()
        .name("ehrqa-forward".into())
        .spawn(move || forward(files.len(), loaders, &budget, &tx))
        .expect("starting the forwarding thread")
}

/// One loader thread and the results it has finished.
struct Loader {
    done: std_mpsc::Receiver<(Loaded, u64)>,
    thread: JoinHandle<()>,
}

impl Loader {
    /// Loads files `k`, `k + n`, `k + 2n`... holding at most two finished ones.
    fn start(
        k: usize,
        n: usize,
        files: Arc<Vec<PathBuf>>,
        max_bytes: u64,
        counter: Option<Arc<dyn TokenCounter>>,
        budget: Arc<Budget>,
    ) -> Self {
        let (tx, done) = std_mpsc::sync_channel(2);
        let body = move || {
            lower_priority();
            for f in files.iter().skip(k).step_by(n) {
                let size = f.metadata().map_or(0, |m| m.len()).min(max_bytes);
                if !budget.acquire(size) {
                    break;
                }
                if tx.send((load_file(f, max_bytes, counter.as_deref(), Threads::One), size)).is_err() {
                    budget.release(size);
                    break;
                }
            }
        };
        // Named, so profiles and stack dumps tell loaders from the writer.
        let thread = std::thread::Builder::new()
            .name(format!("ehrqa-load-{k}"))
            .spawn(body)
            .expect("starting a loader thread");
        Self { done, thread }
    }
}

/// Lowers the calling thread's scheduling priority by `LOADER_NICE` (Linux applies nice values
/// per thread). The writer and the index's threads consume what loaders produce and are the
/// longer path, so when the cores are short they go first and loaders take the time left over
/// (while the writer waits on a commit, for one); in the service, request handlers keep their
/// precedence over a running ingest too. Failing to lower it changes nothing but speed.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: reads and sets the priority of this thread only (`who` 0 is the caller on Linux);
    // no memory is passed.
    unsafe {
        let now = libc::getpriority(libc::PRIO_PROCESS, 0);
        libc::setpriority(libc::PRIO_PROCESS, 0, (now + LOADER_NICE).min(19));
    }
}

/// Hands the writer each file's result in order (file `i` from loader `i % n`), then stops the
/// loaders: once the writer is gone, those waiting on a full channel or on the budget end.
fn forward(count: usize, loaders: Vec<Loader>, budget: &Budget, tx: &mpsc::Sender<Loaded>) {
    for i in 0..count {
        let Ok((loaded, size)) = loaders[i % loaders.len()].done.recv() else { break };
        let gone = tx.blocking_send(loaded).is_err();
        budget.release(size);
        if gone {
            break;
        }
    }
    let threads: Vec<JoinHandle<()>> = loaders.into_iter().map(|l| l.thread).collect();
    budget.close();
    for t in threads {
        let _ = t.join();
    }
}

/// Input bytes in flight, with waiting for room.
struct Budget {
    limit: u64,
    state: Mutex<InFlight>,
    room: Condvar,
}

#[derive(Default)]
struct InFlight {
    used: u64,
    /// Nobody takes results any more: loaders stop.
    closed: bool,
}

impl Budget {
    fn new(limit: u64) -> Self {
        Self { limit, state: Mutex::default(), room: Condvar::new() }
    }

    /// Waits until `n` bytes fit (or nothing else is in flight), then takes them; `false` once
    /// the budget is closed.
    fn acquire(&self, n: u64) -> bool {
        let mut s = self.state.lock().expect("budget lock");
        while !s.closed && s.used > 0 && s.used + n > self.limit {
            s = self.room.wait(s).expect("budget lock");
        }
        s.used += n;
        !s.closed
    }

    fn release(&self, n: u64) {
        let mut s = self.state.lock().expect("budget lock");
        s.used = s.used.saturating_sub(n);
        self.room.notify_all();
    }

    fn close(&self) {
        self.state.lock().expect("budget lock").closed = true;
        self.room.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_over_the_limit_proceeds_alone_and_waits_for_room_otherwise() {
        let b = Arc::new(Budget::new(100));
        assert!(b.acquire(250), "nothing in flight: a file of any size starts");
        let waiter = {
            let b = b.clone();
            std::thread::spawn(move || b.acquire(10))
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!waiter.is_finished(), "no room while the large file is in flight");
        b.release(250);
        assert!(waiter.join().unwrap());
        assert!(b.acquire(90), "room for 90 more beside the 10");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_loader_thread_runs_below_the_process_priority_and_other_threads_do_not() {
        // SAFETY: reads the calling thread's priority.
        let priority = || unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        let process = priority();
        let loader = std::thread::spawn(move || {
            lower_priority();
            priority()
        })
        .join()
        .unwrap();
        assert_eq!(loader, (process + LOADER_NICE).min(19));
        assert_eq!(priority(), process, "only the loader's own thread is lowered");
    }

    #[test]
    fn closing_releases_waiting_loaders() {
        let b = Arc::new(Budget::new(100));
        assert!(b.acquire(100));
        let waiter = {
            let b = b.clone();
            std::thread::spawn(move || b.acquire(1))
        };
        b.close();
        assert!(!waiter.join().unwrap(), "a closed budget tells the loader to stop");
    }
}
