//! What the nodes of a Postgres deployment share (`store::cluster`, `store::lease`): leases,
//! whole or shared, each deployment's own; sockets that count while their node beats; rate
//! buckets that allow a burst once however many ask at once. Postgres only: the embedded store
//! serves one process and has none of it.

use std::time::Duration;

use store::cluster::SocketKind;
use uuid::Uuid;

use crate::common::TestDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_lease_keeps_out_everyone_and_shares_keep_out_a_whole_one() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let store = db.open().await;
    let whole = store.try_lease("nodes").await.unwrap().expect("free");
    assert!(store.try_lease("nodes").await.unwrap().is_none());
    assert!(store.try_lease_shared("nodes").await.unwrap().is_none());
    // Another deployment, in another schema of the same database, has leases of its own.
    let neighbour = db.neighbour().await.expect("a second schema");
    assert!(neighbour.try_lease("nodes").await.unwrap().is_some());
    drop(whole);
    // Released with its connection (closing it may take a moment).
    let mut first = None;
    for _ in 0..100 {
        first = store.try_lease_shared("nodes").await.unwrap();
        if first.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(first.is_some(), "a share once the whole lease is gone");
    let second = store.try_lease_shared("nodes").await.unwrap();
    assert!(second.is_some(), "shares go together");
    assert!(store.try_lease("nodes").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_count_while_their_node_beats_and_leave_with_it() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let store = db.open().await;
    let cluster = store.cluster().expect("Postgres");
    let (node, other) = (Uuid::new_v4(), Uuid::new_v4());
    let (agent, customer, quiet) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    cluster.beat(node).await.unwrap();
    cluster
        .set_sockets(node, SocketKind::Agent, &[(agent, 2)])
        .await
        .unwrap();
    cluster
        .set_sockets(node, SocketKind::Customer, &[(customer, 1)])
        .await
        .unwrap();
    // Rows of a node that never beat do not count.
    cluster
        .set_sockets(other, SocketKind::Agent, &[(quiet, 1)])
        .await
        .unwrap();
    let presence = cluster
        .presence(&[agent, quiet, customer], Duration::from_secs(300))
        .await
        .unwrap();
    assert!(presence[&agent].connected);
    assert!(!presence[&quiet].connected);
    assert!(!presence[&customer].connected, "a customer is not an agent");
    let signs = cluster.customer_signs(&[customer, agent]).await.unwrap();
    assert!(signs.connected.contains(&customer));
    assert!(!signs.connected.contains(&agent));
    assert!(signs.seen.contains_key(&customer), "the node's beat counts");

    cluster.declare(quiet, true).await.unwrap();
    let presence = cluster
        .presence(&[quiet], Duration::from_secs(300))
        .await
        .unwrap();
    assert!(presence[&quiet].declared && presence[&quiet].away);

    cluster
        .set_sockets(node, SocketKind::Agent, &[(agent, 0)])
        .await
        .unwrap();
    let presence = cluster
        .presence(&[agent], Duration::from_secs(300))
        .await
        .unwrap();
    assert!(!presence[&agent].connected, "its last socket closed");
    cluster.leave(node).await.unwrap();
    let signs = cluster.customer_signs(&[customer]).await.unwrap();
    assert!(!signs.connected.contains(&customer), "gone with its node");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_allows_its_burst_once_however_many_ask_at_once() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let store = db.open().await;
    let cluster = store.cluster().expect("Postgres");
    // Ten an hour: nothing refills within the test.
    let per_second = 10.0 / 3600.0;
    let tries: Vec<_> = (0..30)
        .map(|_| {
            let cluster = cluster.clone();
            tokio::spawn(async move {
                cluster
                    .take("signup", "address:1.2.3.4", per_second, 10.0)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut allowed = 0;
    for taken in tries {
        match taken.await.unwrap() {
            Ok(()) => allowed += 1,
            Err(retry_after) => assert!(retry_after >= 1),
        }
    }
    assert_eq!(allowed, 10);
    // Another key has its own bucket.
    assert_eq!(
        cluster
            .take("signup", "address:5.6.7.8", per_second, 10.0)
            .await
            .unwrap(),
        Ok(())
    );
}
