//! Blocking work done on an async task's own thread.

/// Runs blocking work in place: on a multi-threaded runtime the thread's other tasks move to
/// another worker first (so a task spawned just before, such as a database commit, goes on
/// meanwhile); on a current-thread runtime (an actix worker) it simply runs.
pub fn in_place<T>(work: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(work),
        _ => work(),
    }
}
