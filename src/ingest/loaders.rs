//! Reading, parsing and preparing files on several threads, delivered in the order named.
//!
//! One reader thread left a core idle whenever it parsed (parsing is single-threaded) and
//! whenever the writer committed, so files are loaded by up to `MAX_LOADERS` threads. Each loader
//! claims the next file not yet claimed, so a loader that drew small files does not sit idle while
//! another works through large ones, and a forwarding thread hands the results to the writer in
//! the order given (a later file's version of a resource still wins, as with one reader).
//!
//! Loaders run ahead of the writer, so that they keep working while it commits, but within two
//! bounds: files claimed and not yet forwarded (`FILES_AHEAD_PER_LOADER` a loader), and their
//! input bytes (`IN_FLIGHT_BYTES`; one file may always start, whatever its size). Files are
//! claimed in order and take their bytes as they are claimed, so the bytes in flight always belong
//! to the files the forwarder waits for next, and a large file can never wait for room that later
//! files hold.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use tokio::sync::mpsc;

use super::pipeline::{load_file, Loaded};
use crate::fhir::Threads;
use crate::tokens::TokenCounter;

/// Loader threads at most (the writer and the index use the other cores' time too).
const MAX_LOADERS: usize = 4;

/// Input bytes claimed but not yet handed to the writer, across loaders (a soft cap: a file
/// always proceeds when nothing else is in flight).
const IN_FLIGHT_BYTES: u64 = 128 * 1024 * 1024;

/// Files a loader may run ahead of the writer (claimed and not yet forwarded). Holding at most
/// two finished files each, loaders sat idle through every one of the writer's commits
/// (sampling the threads' CPU every 100 ms) and the writer then waited for them; four finished
/// files each (five claimed, with the one in progress) raised the notes-heavy set's median rate
/// by 7%, and eight gave no more for another 160 MiB of peak memory (`tools/bench_alternate.py`,
/// one sitting).
const FILES_AHEAD_PER_LOADER: usize = 5;

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
    let limits = Limits { bytes: IN_FLIGHT_BYTES, files_ahead: n * FILES_AHEAD_PER_LOADER };
    spawn_with(files, max_bytes, counter, tx, n, limits)
}

/// `spawn` with the number of loaders and the bounds given.
fn spawn_with(
    files: Vec<PathBuf>,
    max_bytes: u64,
    counter: Option<Arc<dyn TokenCounter>>,
    tx: mpsc::Sender<Loaded>,
    loaders: usize,
    limits: Limits,
) -> JoinHandle<()> {
    let sizes = files.iter().map(|f| f.metadata().map_or(0, |m| m.len()).min(max_bytes)).collect();
    let turns = Arc::new(Turns::new(sizes, limits));
    let files = Arc::new(files);
    let threads: Vec<JoinHandle<()>> = (0..loaders)
        .map(|k| {
            let (files, turns, counter) = (files.clone(), turns.clone(), counter.clone());
            // Named, so profiles and stack dumps tell loaders from the writer.
            std::thread::Builder::new()
                .name(format!("ehrqa-load-{k}"))
                .spawn(move || load(&files, max_bytes, counter.as_deref(), &turns))
                .expect("starting a loader thread")
        })
        .collect();
    std::thread::Builder::new()
        .name("ehrqa-forward".into())
        .spawn(move || forward(&turns, threads, &tx))
        .expect("starting the forwarding thread")
}

/// One loader: claims files and loads them until none are left or nobody takes results.
fn load(files: &[PathBuf], max_bytes: u64, counter: Option<&dyn TokenCounter>, turns: &Turns) {
    let _stop = StopOnPanic(turns);
    lower_priority();
    while let Some(claim) = turns.claim() {
        // The writer waits for this very file: a second thread shortens that wait (at the
        // start of every ingest, and whenever loaders fall behind).
        let threads = if claim.awaited { Threads::TwoIfLarge } else { Threads::One };
        let loaded = load_file(&files[claim.index], max_bytes, counter, threads);
        turns.finish(claim, loaded);
    }
}

/// Stops loading if a loader panics: the file it claimed would never arrive, and the forwarder
/// would wait for it forever.
struct StopOnPanic<'a>(&'a Turns);

impl Drop for StopOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.close();
        }
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

/// Hands the writer each file's result in order, then stops the loaders: once the writer is
/// gone, loaders waiting for a turn end. A loader's panic is this thread's, so the caller's join
/// fails instead of the ingest ending early as if the files had run out.
fn forward(turns: &Turns, loaders: Vec<JoinHandle<()>>, tx: &mpsc::Sender<Loaded>) {
    while let Some(loaded) = turns.take_next() {
        if tx.blocking_send(loaded).is_err() {
            break;
        }
    }
    turns.close();
    let panics: Vec<_> = loaders.into_iter().filter_map(|t| t.join().err()).collect();
    if let Some(panic) = panics.into_iter().next() {
        std::panic::resume_unwind(panic);
    }
}

/// How far loaders may run ahead of the writer.
#[derive(Clone, Copy)]
struct Limits {
    /// Input bytes claimed and not yet forwarded (a file always proceeds when none are).
    bytes: u64,
    /// Files claimed and not yet forwarded.
    files_ahead: usize,
}

/// Which file is claimed next, which are finished, and what is in flight: one lock for all of
/// it, so that claims take their bytes in file order.
struct Turns {
    sizes: Vec<u64>,
    limits: Limits,
    state: Mutex<TurnState>,
    changed: Condvar,
}

#[derive(Default)]
struct TurnState {
    /// The next file to claim.
    claimed: usize,
    /// The next file to forward: every earlier one was handed over.
    forwarded: usize,
    /// Bytes of the files claimed and not yet forwarded.
    bytes: u64,
    finished: HashMap<usize, Loaded>,
    /// Nobody takes results any more (or a loader died): loaders stop.
    closed: bool,
}

/// A file a loader took on.
#[derive(Debug)]
struct Claim {
    index: usize,
    /// Every earlier file was already forwarded: the writer is, or soon will be, waiting for
    /// this one.
    awaited: bool,
}

impl Turns {
    fn new(sizes: Vec<u64>, limits: Limits) -> Self {
        Self { sizes, limits, state: Mutex::default(), changed: Condvar::new() }
    }

    fn lock(&self) -> MutexGuard<'_, TurnState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits until the next file fits the bounds, then claims it; `None` when every file is
    /// claimed or loading stopped.
    fn claim(&self) -> Option<Claim> {
        let mut s = self.lock();
        loop {
            if s.closed || s.claimed == self.sizes.len() {
                return None;
            }
            let size = self.sizes[s.claimed];
            let ahead = s.claimed - s.forwarded;
            let fits = ahead == 0 || (ahead < self.limits.files_ahead && s.bytes + size <= self.limits.bytes);
            if fits {
                let claim = Claim { index: s.claimed, awaited: ahead == 0 };
                s.claimed += 1;
                s.bytes += size;
                return Some(claim);
            }
            s = self.changed.wait(s).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    /// Files a claimed file's result.
    fn finish(&self, claim: Claim, loaded: Loaded) {
        self.lock().finished.insert(claim.index, loaded);
        self.changed.notify_all();
    }

    /// Waits for the next file's result in order; `None` after the last one, or once loading
    /// stopped.
    fn take_next(&self) -> Option<Loaded> {
        let mut s = self.lock();
        loop {
            if s.forwarded == self.sizes.len() {
                return None;
            }
            let next = s.forwarded;
            if let Some(loaded) = s.finished.remove(&next) {
                s.forwarded += 1;
                s.bytes = s.bytes.saturating_sub(self.sizes[next]);
                self.changed.notify_all();
                return Some(loaded);
            }
            if s.closed {
                return None;
            }
            s = self.changed.wait(s).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    /// Stops loading: waiting loaders end, and so does a forwarder waiting for a result.
    fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn turns(sizes: &[u64], bytes: u64, files_ahead: usize) -> Arc<Turns> {
        Arc::new(Turns::new(sizes.to_vec(), Limits { bytes, files_ahead }))
    }

    fn loaded(i: usize) -> Loaded {
        Loaded {
            source: format!("f{i}"),
            prepare_ms: 0.0,
            sha256: None,
            bytes: 0,
            result: Err(crate::fhir::InputError::Empty),
        }
    }

    /// Runs `claim` on another thread; the handle tells whether it has returned yet.
    fn claim_elsewhere(t: &Arc<Turns>) -> std::thread::JoinHandle<Option<Claim>> {
        let t = t.clone();
        let waiting = std::thread::spawn(move || t.claim());
        std::thread::sleep(Duration::from_millis(50));
        waiting
    }

    #[test]
    fn files_are_claimed_in_order_and_only_the_one_the_writer_waits_for_is_awaited() {
        let t = turns(&[10, 10, 10], 1000, 8);
        let first = t.claim().unwrap();
        assert_eq!(
            (first.index, first.awaited),
            (0, true),
            "nothing is forwarded yet: the writer waits for file 0"
        );
        let second = t.claim().unwrap();
        assert_eq!((second.index, second.awaited), (1, false));
        t.finish(second, loaded(1));
        t.finish(first, loaded(0));
        assert_eq!(t.take_next().unwrap().source, "f0");
        assert_eq!(
            t.take_next().unwrap().source,
            "f1",
            "results leave in file order, whoever finished first"
        );
        let third = t.claim().unwrap();
        assert_eq!((third.index, third.awaited), (2, true), "every earlier file was forwarded");
        t.finish(third, loaded(2));
        assert_eq!(t.take_next().unwrap().source, "f2");
        assert!(t.claim().is_none() && t.take_next().is_none(), "all files done");
    }

    /// A claim made now waits (for `why`) until `first`, file 0, is forwarded, then gets `next`.
    fn claim_waits_for_the_first(t: &Arc<Turns>, first: Claim, next: usize, why: &str) {
        let waiting = claim_elsewhere(t);
        assert!(!waiting.is_finished(), "{why}");
        t.finish(first, loaded(0));
        t.take_next().unwrap();
        assert_eq!(waiting.join().unwrap().unwrap().index, next);
    }

    #[test]
    fn a_file_over_the_byte_limit_proceeds_alone_and_the_next_waits_for_room() {
        let t = turns(&[250, 10], 100, 8);
        let big = t.claim().unwrap();
        claim_waits_for_the_first(&t, big, 1, "no room while the large file is in flight");
    }

    #[test]
    fn loaders_run_at_most_the_given_number_of_files_ahead() {
        let t = turns(&[1, 1, 1], 1000, 2);
        let (first, _second) = (t.claim().unwrap(), t.claim().unwrap());
        claim_waits_for_the_first(&t, first, 2, "two files are already ahead of the writer");
    }

    #[test]
    fn closing_releases_waiting_loaders_and_the_forwarder() {
        let t = turns(&[100, 100], 100, 8);
        let _first = t.claim().unwrap();
        let waiting = claim_elsewhere(&t);
        let forwarder = {
            let t = t.clone();
            std::thread::spawn(move || t.take_next().is_none())
        };
        t.close();
        assert!(waiting.join().unwrap().is_none(), "a closed turn tells the loader to stop");
        assert!(forwarder.join().unwrap(), "and the forwarder, whose file will never come");
    }

    /// Files larger than the byte budget, several loaders: every file still arrives, in order.
    /// (Before claims took their bytes in file order, a loader could wait for room that later
    /// files, already loaded by another loader, held while the forwarder waited for its file.)
    #[test]
    fn files_beyond_the_byte_budget_arrive_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<PathBuf> = (0..9)
            .map(|i| {
                let path = dir.path().join(format!("{i}.ndjson"));
                let patients: String = (0..=i)
                    .map(|k| format!("{{\"resourceType\":\"Patient\",\"id\":\"p{i}-{k}\"}}\n"))
                    .collect();
                std::fs::write(&path, patients).unwrap();
                path
            })
            .collect();
        let budget = files[4].metadata().unwrap().len() * 3 / 2;
        let (tx, mut rx) = mpsc::channel(1);
        let loading =
            spawn_with(files.clone(), u64::MAX, None, tx, 3, Limits { bytes: budget, files_ahead: 4 });
        let (done_tx, done) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut order = Vec::new();
            while let Some(l) = rx.blocking_recv() {
                assert!(l.result.is_ok(), "{:?}", l.result.err());
                order.push(l.source);
            }
            done_tx.send(order).unwrap();
        });
        let order = done.recv_timeout(Duration::from_secs(60)).expect("every file arrives");
        loading.join().unwrap();
        let named: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        assert_eq!(order, named);
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
}
