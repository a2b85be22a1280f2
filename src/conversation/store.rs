//! Conversations in memory, bounded: at most `max` of them, the least recently used dropped to
//! make room, and any idle longer than `idle` forgotten. A conversation belongs to one patient
//! and one owner (the API key that created it): looking it up under any other patient or owner
//! finds nothing, exactly as for an id that never existed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Conversation;

/// How many conversations are kept, and for how long without a question.
#[derive(Debug, Clone, Copy)]
pub struct StoreLimits {
    pub max: usize,
    pub idle: Duration,
}

impl Default for StoreLimits {
    fn default() -> Self {
        Self { max: 1_000, idle: Duration::from_secs(30 * 60) }
    }
}

/// One conversation's lock: a conversation answers one question at a time, in order.
pub type Shared = Arc<tokio::sync::Mutex<Conversation>>;

struct Entry<O> {
    owner: O,
    patient: String,
    used: Instant,
    conversation: Shared,
}

pub struct Conversations<O> {
    entries: Mutex<HashMap<String, Entry<O>>>,
    limits: StoreLimits,
}

impl<O: PartialEq> Conversations<O> {
    pub fn new(limits: StoreLimits) -> Self {
        Self { entries: Mutex::new(HashMap::new()), limits: StoreLimits { max: limits.max.max(1), ..limits } }
    }

    /// A new conversation about `patient` for `owner`; its id is 128 random bits (hex).
    pub fn create(&self, owner: O, patient: &str) -> Result<String, getrandom::Error> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes)?;
        let id = hex::encode(bytes);
        let now = Instant::now();
        let mut entries = self.entries.lock().expect("conversations lock");
        entries.retain(|_, e| now.duration_since(e.used) <= self.limits.idle);
        while entries.len() >= self.limits.max {
            let Some(oldest) = entries.iter().min_by_key(|(_, e)| e.used).map(|(k, _)| k.clone()) else {
                break;
            };
            entries.remove(&oldest);
        }
        let conversation = Arc::new(tokio::sync::Mutex::new(Conversation::new(&id, patient)));
        entries.insert(id.clone(), Entry { owner, patient: patient.to_owned(), used: now, conversation });
        Ok(id)
    }

    /// The conversation `id`, if `owner` created it about `patient` and it has not expired.
    pub fn get(&self, id: &str, owner: &O, patient: &str) -> Option<Shared> {
        let now = Instant::now();
        let mut entries = self.entries.lock().expect("conversations lock");
        let e = entries.get_mut(id)?;
        if now.duration_since(e.used) > self.limits.idle {
            entries.remove(id);
            return None;
        }
        if e.owner != *owner || e.patient != patient {
            return None;
        }
        e.used = now;
        Some(e.conversation.clone())
    }

    /// Conversations held (expired ones included until the next `create`).
    pub fn len(&self) -> usize {
        self.entries.lock().expect("conversations lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conversation_is_found_only_by_its_owner_under_its_patient() {
        let store = Conversations::new(StoreLimits::default());
        let id = store.create("alice", "p1").unwrap();
        assert_eq!(id.len(), 32);
        assert!(store.get(&id, &"alice", "p1").is_some());
        assert!(store.get(&id, &"alice", "p2").is_none());
        assert!(store.get(&id, &"bob", "p1").is_none());
        assert!(store.get("0000", &"alice", "p1").is_none());
        assert_ne!(store.create("alice", "p1").unwrap(), id);
    }

    #[test]
    fn the_least_recently_used_goes_first_and_idle_ones_expire() {
        let store = Conversations::new(StoreLimits { max: 2, idle: Duration::from_secs(60) });
        let a = store.create(1, "p").unwrap();
        std::thread::sleep(Duration::from_millis(2));
        let b = store.create(1, "p").unwrap();
        std::thread::sleep(Duration::from_millis(2));
        assert!(store.get(&a, &1, "p").is_some());
        let c = store.create(1, "p").unwrap();
        assert_eq!(store.len(), 2);
        assert!(store.get(&b, &1, "p").is_none(), "b was the least recently used");
        assert!(store.get(&a, &1, "p").is_some() && store.get(&c, &1, "p").is_some());

        let store = Conversations::new(StoreLimits { max: 10, idle: Duration::ZERO });
        let a = store.create(1, "p").unwrap();
        std::thread::sleep(Duration::from_millis(2));
        assert!(store.get(&a, &1, "p").is_none());
    }
}
