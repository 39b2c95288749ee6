//! `store::gathered`: lookups asked while a read is in flight are read together in the next
//! one, each answered with its own value; a failed read answers each of its lookups with the
//! failure; a read that panics leaves the next lookup free to read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use store::gathered::{Answer, Gathered, Read, Unread};
use tokio::sync::Semaphore;

/// A read that doubles each key, records the keys it was asked, and first waits for a permit.
fn doubling(asked: Arc<Mutex<Vec<Vec<u32>>>>, permits: Arc<Semaphore>) -> Read<u32, u32, String> {
    Arc::new(move |keys: Vec<u32>| {
        let asked = asked.clone();
        let permits = permits.clone();
        Box::pin(async move {
            permits.acquire().await.map_err(|e| e.to_string())?.forget();
            asked
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(keys.clone());
            if keys.contains(&13) {
                return Err("thirteen".to_owned());
            }
            if keys.contains(&666) {
                panic!("a read that panics");
            }
            Ok(keys
                .into_iter()
                .filter(|key| *key != 0)
                .map(|key| (key, key * 2))
                .collect::<HashMap<_, _>>())
        })
    })
}

type Doubled = Gathered<u32, u32, String>;

/// A lookup of `key` in a task of its own.
fn lookup(gathered: &Doubled, key: u32) -> tokio::task::JoinHandle<Answer<u32, String>> {
    let gathered = gathered.clone();
    tokio::spawn(async move { gathered.get(key).await })
}

type Asked = Arc<Mutex<Vec<Vec<u32>>>>;

/// A gathered read of [`doubling`], with what it was asked and the permits it waits for.
fn gathering(most: usize, permits: usize) -> (Doubled, Asked, Arc<Semaphore>) {
    let asked = Arc::new(Mutex::new(Vec::new()));
    let permits = Arc::new(Semaphore::new(permits));
    let gathered = Gathered::new(most, doubling(asked.clone(), permits.clone()));
    (gathered, asked, permits)
}

/// Lets the spawned lookups and reads run until they wait (a lookup is queued when its future
/// is first polled); the tests run on one thread, so this is a matter of turns, not time.
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
}

#[tokio::test]
async fn lookups_made_during_a_read_are_read_together_in_the_next_one() {
    let (gathered, asked, permits) = gathering(64, 0);
    let first = lookup(&gathered, 1);
    settle().await;
    // The first read is in flight (waiting for its permit); ten lookups queue behind it, one
    // of them a key already asked and one a key that is not there.
    let later: Vec<_> = [2, 3, 4, 5, 6, 7, 8, 9, 2, 0]
        .into_iter()
        .map(|key| (key, lookup(&gathered, key)))
        .collect();
    settle().await;
    permits.add_permits(2);
    assert_eq!(first.await.unwrap().unwrap(), Some(2));
    for (key, lookup) in later {
        let answer = lookup.await.unwrap();
        let expected = (key != 0).then_some(key * 2);
        assert_eq!(answer.unwrap(), expected, "key {key}");
    }
    let asked = asked.lock().unwrap().clone();
    assert_eq!(asked, vec![vec![1], vec![2, 3, 4, 5, 6, 7, 8, 9, 0]]);
}

#[tokio::test]
async fn a_read_takes_at_most_its_most_keys() {
    let (gathered, asked, permits) = gathering(3, 0);
    let lookups: Vec<_> = (1..=7).map(|key| lookup(&gathered, key)).collect();
    settle().await;
    permits.add_permits(10);
    for (key, lookup) in (1..=7).zip(lookups) {
        assert_eq!(lookup.await.unwrap().unwrap(), Some(key * 2));
    }
    let asked = asked.lock().unwrap().clone();
    assert!(asked.iter().all(|keys| keys.len() <= 3), "{asked:?}");
    assert_eq!(asked.concat().len(), 7);
}

#[tokio::test]
async fn a_failed_read_fails_each_of_its_lookups_and_the_next_read_goes_on() {
    let (gathered, _, permits) = gathering(64, 0);
    let first = lookup(&gathered, 1);
    settle().await;
    let doomed: Vec<_> = [13, 4]
        .into_iter()
        .map(|key| lookup(&gathered, key))
        .collect();
    settle().await;
    permits.add_permits(3);
    assert_eq!(first.await.unwrap().unwrap(), Some(2));
    for lookup in doomed {
        match lookup.await.unwrap() {
            Err(Unread::Failed(error)) => assert_eq!(*error, "thirteen"),
            other => panic!("expected the read's failure, got {other:?}"),
        }
    }
    assert_eq!(gathered.get(5).await.unwrap(), Some(10));
}

#[tokio::test]
async fn a_read_that_panics_loses_its_lookups_and_the_next_one_reads_again() {
    let (gathered, _, _) = gathering(64, 10);
    assert!(matches!(gathered.get(666).await, Err(Unread::Lost)));
    assert_eq!(gathered.get(7).await.unwrap(), Some(14));
}

#[tokio::test]
async fn a_lookup_that_goes_away_leaves_its_read_to_answer_the_others() {
    let (gathered, _, permits) = gathering(64, 0);
    // The lookup that starts the read is dropped while the read waits; one that joined it
    // later is still answered.
    let leader = lookup(&gathered, 1);
    settle().await;
    let follower = lookup(&gathered, 2);
    settle().await;
    leader.abort();
    permits.add_permits(2);
    assert_eq!(follower.await.unwrap().unwrap(), Some(4));
}
