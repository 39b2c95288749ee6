//! `KeptFold`: a duty's fold of the log (the sweeper's, the router's) resumed where it was last
//! kept, never read from the log's first event again at a start.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use store::follow::Follower;
use store::kept_fold::KeptFold;

use crate::common::{append_to, TestDb};
use crate::on_both_backends;

on_both_backends!(a_kept_fold_resumes_where_it_was_kept_and_only_under_its_version);

/// A fold of the log: how many events of each stream.
#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
struct Counts(BTreeMap<String, i64>);

async fn fold_up_to_the_head(feed: &mut Follower, counts: &mut Counts) {
    loop {
        let batch = feed.read().await.expect("read");
        for event in &batch {
            *counts.0.entry(event.aggregate_id.clone()).or_default() += 1;
        }
        if feed.caught_up() {
            return;
        }
    }
}

async fn a_kept_fold_resumes_where_it_was_kept_and_only_under_its_version(db: TestDb) {
    let store = db.open().await;
    // Nothing kept: a fresh fold from the start.
    let (mut kept, mut counts, position) = KeptFold::resume::<Counts>(&store, "test", 1).await;
    assert_eq!((position, &counts), (0, &Counts::default()));

    store.append(append_to("a", 0, 3)).await.expect("append");
    store.append(append_to("b", 0, 2)).await.expect("append");
    let mut feed = Follower::new("test", &store, position);
    fold_up_to_the_head(&mut feed, &mut counts).await;
    let head = feed.position();
    // Too soon and too little for `keep`: nothing is written yet.
    kept.keep(&store, &counts, head).await;
    let (_, _, nothing) = KeptFold::resume::<Counts>(&store, "test", 1).await;
    assert_eq!(nothing, 0, "kept after five events");
    kept.keep_now(&store, &counts, head).await;

    // A later start resumes there and folds only what came after.
    store.append(append_to("a", 3, 1)).await.expect("append");
    let (_, mut resumed, from) = KeptFold::resume::<Counts>(&store, "test", 1).await;
    assert_eq!(from, head);
    assert_eq!(resumed, counts);
    let mut feed = Follower::new("test", &store, from);
    fold_up_to_the_head(&mut feed, &mut resumed).await;
    let whole = Counts(BTreeMap::from([("a".into(), 4), ("b".into(), 2)]));
    assert_eq!(
        resumed, whole,
        "the kept part and the rest, each event once"
    );

    // Another version of the fold, or another duty, starts from the log's first event.
    let (_, other, at) = KeptFold::resume::<Counts>(&store, "test", 2).await;
    assert_eq!((at, other), (0, Counts::default()));
    let (_, other, at) = KeptFold::resume::<Counts>(&store, "another", 1).await;
    assert_eq!((at, other), (0, Counts::default()));
}
