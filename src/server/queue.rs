//! Backpressure for generation: a fixed number of generations run at once, a bounded number
//! wait; beyond that a request is refused at once (429 with Retry-After) instead of piling up.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::ApiError;

pub struct GenerationQueue {
    running: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
    /// Seconds a refused client is told to wait.
    retry_after: u64,
}

/// Held for the length of one generation.
pub type Slot = OwnedSemaphorePermit;

impl GenerationQueue {
    pub fn new(concurrent: usize, max_waiting: usize) -> Self {
        Self {
            running: Arc::new(Semaphore::new(concurrent.max(1))),
            waiting: AtomicUsize::new(0),
            max_waiting,
            retry_after: 5,
        }
    }

    /// A slot now, or after the generations ahead finish; `Busy` when the queue is full.
    pub async fn enter(&self) -> Result<Slot, ApiError> {
        if let Ok(p) = self.running.clone().try_acquire_owned() {
            return Ok(p);
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(ApiError::Busy { retry_after: self.retry_after });
        }
        let permit = self.running.clone().acquire_owned().await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        permit.map_err(|_| ApiError::NotReady("shutting down".into()))
    }

    /// Requests waiting for a slot.
    pub fn depth(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_when_full() {
        let q = Arc::new(GenerationQueue::new(1, 1));
        let first = q.enter().await.unwrap();
        let q2 = q.clone();
        let waiter = tokio::spawn(async move { q2.enter().await.map(|_| ()) });
        while q.depth() == 0 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(q.enter().await, Err(ApiError::Busy { .. })));
        drop(first);
        waiter.await.unwrap().unwrap();
        assert_eq!(q.depth(), 0);
    }
}
