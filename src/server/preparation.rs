//! Backpressure for ingest: preparing an input (parsing, decoding notes, normalising, counting
//! tokens) and holding the prepared batch until it is stored cost memory in proportion to the
//! input's size, so requests share a budget of bytes in preparation at once.
//!
//! Without it, N simultaneous 60 MB bodies are each prepared at once and their costs add up. With
//! it, small inputs still run side by side, a large one waits for room, and a bounded amount may
//! wait; beyond that a request is refused at once (503 with Retry-After) instead of piling up
//! bodies in memory.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::ApiError;

/// The budget counts KiB, so that a 64 MiB budget fits a semaphore's permits.
const UNIT: usize = 1024;

pub struct PreparationBudget {
    running: Arc<Semaphore>,
    /// The budget in units; also the most units that may wait.
    total: usize,
    waiting: AtomicUsize,
    /// Seconds a refused client is told to wait.
    retry_after: u64,
}

/// Held while one input is prepared and stored.
pub type PreparationPermit = OwnedSemaphorePermit;

impl PreparationBudget {
    /// `bytes` of input may be in preparation at once, and as many more may wait.
    pub fn new(bytes: usize) -> Self {
        let total = bytes.div_ceil(UNIT).clamp(1, u32::MAX as usize).min(Semaphore::MAX_PERMITS);
        Self { running: Arc::new(Semaphore::new(total)), total, waiting: AtomicUsize::new(0), retry_after: 5 }
    }

    /// Room for an input of `bytes` now, or once inputs ahead are done; `Unavailable` when as
    /// much as the whole budget already waits. An input larger than the budget takes all of it.
    pub async fn enter(&self, bytes: usize) -> Result<PreparationPermit, ApiError> {
        let units = bytes.div_ceil(UNIT).clamp(1, self.total);
        let n = u32::try_from(units).expect("the budget fits in u32");
        if let Ok(p) = self.running.clone().try_acquire_many_owned(n) {
            return Ok(p);
        }
        let _waiting =
            Waiting::join(&self.waiting, units, self.total).ok_or_else(|| ApiError::Unavailable {
                reason: "the service is busy preparing other inputs".into(),
                retry_after: self.retry_after,
            })?;
        let permit = self.running.clone().acquire_many_owned(n).await;
        permit.map_err(|_| ApiError::NotReady("shutting down".into()))
    }

    /// Bytes of input waiting for room (a multiple of 1 KiB).
    pub fn waiting_bytes(&self) -> usize {
        self.waiting.load(Ordering::SeqCst) * UNIT
    }
}

/// A place among the waiting, given back when the wait ends or its request is dropped.
struct Waiting<'a> {
    count: &'a AtomicUsize,
    units: usize,
}

impl<'a> Waiting<'a> {
    fn join(count: &'a AtomicUsize, units: usize, max: usize) -> Option<Self> {
        let before = count.fetch_add(units, Ordering::SeqCst);
        let joined = Self { count, units };
        (before + units <= max).then_some(joined)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(self.units, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn large_inputs_take_turns_and_the_wait_is_bounded() {
        let mib = 1024 * 1024;
        let budget = Arc::new(PreparationBudget::new(4 * mib));
        let first = budget.enter(3 * mib).await.unwrap();
        let small = budget.enter(mib / 2).await.unwrap(); // fits beside the first
        let b = budget.clone();
        let second = tokio::spawn(async move { b.enter(3 * mib).await.map(|_| ()) });
        while budget.waiting_bytes() == 0 {
            tokio::task::yield_now().await;
        }
        // 3 MiB wait; 2 MiB more would pass the 4 MiB that may wait.
        assert!(matches!(budget.enter(2 * mib).await, Err(ApiError::Unavailable { .. })));
        assert_eq!(budget.waiting_bytes(), 3 * mib);
        drop((first, small));
        second.await.unwrap().unwrap();
        assert_eq!(budget.waiting_bytes(), 0);
        // Larger than the whole budget: it takes all of it rather than never running.
        drop(budget.enter(10 * mib).await.unwrap());
    }

    #[tokio::test]
    async fn a_dropped_request_leaves_the_queue() {
        let budget = Arc::new(PreparationBudget::new(1024 * 1024));
        let all = budget.enter(1024 * 1024).await.unwrap();
        let b = budget.clone();
        let waiter = tokio::spawn(async move { b.enter(1024).await.map(|_| ()) });
        while budget.waiting_bytes() == 0 {
            tokio::task::yield_now().await;
        }
        waiter.abort();
        let _ = waiter.await;
        assert_eq!(budget.waiting_bytes(), 0);
        drop(all);
    }
}
