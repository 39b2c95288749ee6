//! Reads by key that many requests ask at the same moment, asked of the database together: a
//! request's lookup joins the next read of its kind, which starts as soon as the one in flight
//! has answered, with every key that arrived meanwhile (at most [`Gathered::new`]'s `most`).
//! On Postgres each statement costs a round trip and the server's time to parse, plan and
//! answer it, and a message's request read its session and its conversation in statements of
//! their own, as many as the message's share of every other statement (BENCHMARKS.md). Nothing
//! waits to fill a batch: an idle server reads a lone key at once, as before, and a busy one
//! reads the keys that queued behind its last read.
//!
//! The reads run in a task of their own, so a request that goes away (its client hung up)
//! never strands the others that joined its read.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// One read of several keys: what it found, by key (a key it did not find is absent).
pub type Read<K, V, E> = Arc<
    dyn Fn(Vec<K>) -> Pin<Box<dyn Future<Output = Result<HashMap<K, V>, E>> + Send>> + Send + Sync,
>;

/// What a lookup answers: the value, or none.
pub type Answer<V, E> = Result<Option<V>, Unread<E>>;

/// Why a lookup has no answer.
#[derive(Debug)]
pub enum Unread<E> {
    /// The read it joined failed (the error is shared by every lookup of that read).
    Failed(Arc<E>),
    /// The read it joined panicked.
    Lost,
}

/// Lookups of one kind, read together: see the module's documentation.
pub struct Gathered<K, V, E> {
    read: Read<K, V, E>,
    most: usize,
    state: Arc<Mutex<Waiting<K, V, E>>>,
}

impl<K, V, E> Clone for Gathered<K, V, E> {
    fn clone(&self) -> Self {
        Gathered {
            read: self.read.clone(),
            most: self.most,
            state: self.state.clone(),
        }
    }
}

struct Waiting<K, V, E> {
    keys: Vec<(K, oneshot::Sender<Answer<V, E>>)>,
    /// A task is reading: it takes what waits when its read is done.
    reading: bool,
}

impl<K, V, E> Gathered<K, V, E>
where
    K: Clone + Eq + Hash + Send + 'static,
    V: Clone + Send + 'static,
    E: Send + Sync + 'static,
{
    /// Lookups read by `read`, at most `most` keys at a time.
    pub fn new(most: usize, read: Read<K, V, E>) -> Self {
        Gathered {
            read,
            most: most.max(1),
            state: Arc::new(Mutex::new(Waiting {
                keys: Vec::new(),
                reading: false,
            })),
        }
    }

    /// The value of `key`, read with whatever other keys are asked meanwhile. The read starts
    /// after this call began, so it sees every write committed before.
    pub async fn get(&self, key: K) -> Answer<V, E> {
        let (answer, answered) = oneshot::channel();
        let lead = {
            let mut waiting = self.lock();
            waiting.keys.push((key, answer));
            !std::mem::replace(&mut waiting.reading, true)
        };
        if lead {
            tokio::spawn(self.clone().read_all());
        }
        // A reading task that ends without answering panicked (its guard dropped the senders).
        answered.await.unwrap_or(Err(Unread::Lost))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting<K, V, E>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads what waits, again and again, until nothing does.
    async fn read_all(self) {
        let mut guard = Reading {
            state: self.state.clone(),
            done: false,
        };
        loop {
            let batch: Vec<(K, oneshot::Sender<Answer<V, E>>)> = {
                let mut waiting = self.lock();
                if waiting.keys.is_empty() {
                    waiting.reading = false;
                    break;
                }
                let take = waiting.keys.len().min(self.most);
                waiting.keys.drain(..take).collect()
            };
            let mut asked = HashSet::new();
            let keys: Vec<K> = batch
                .iter()
                .map(|(key, _)| key.clone())
                .filter(|key| asked.insert(key.clone()))
                .collect();
            match (self.read)(keys).await {
                Ok(found) => {
                    for (key, answer) in batch {
                        let _ = answer.send(Ok(found.get(&key).cloned()));
                    }
                }
                Err(error) => {
                    let error = Arc::new(error);
                    for (_, answer) in batch {
                        let _ = answer.send(Err(Unread::Failed(error.clone())));
                    }
                }
            }
        }
        guard.done = true;
    }
}

/// Drops what waits and lets the next lookup read, if a reading task unwinds.
struct Reading<K, V, E> {
    state: Arc<Mutex<Waiting<K, V, E>>>,
    done: bool,
}

impl<K, V, E> Drop for Reading<K, V, E> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut waiting = self.state.lock().unwrap_or_else(|e| e.into_inner());
        waiting.keys.clear();
        waiting.reading = false;
    }
}
