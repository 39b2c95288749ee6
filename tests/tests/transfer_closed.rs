//! A closed queue takes no transfer in, decided by the target queue in the append that moves
//! the customer (not by a read model beforehand): a transfer into a closed queue is refused
//! with nothing appended, and a transfer racing a close either arrives before the close or is
//! refused, whether the customer still waited or was picked. On both backends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use jono_tests::api::{self, Agent, Api, Reply, Watch};
use jono_tests::Storage;
use serde_json::{json, Value};
use uuid::Uuid;

async fn transfer(api: &Api, owner: &Agent, conversation: Uuid, queue: Uuid) -> Reply {
    api.post(
        &format!("/v1/conversations/{conversation}/transfer"),
        owner.token(),
        json!({ "queue_id": queue }),
    )
    .await
}

async fn close(api: &Api, owner: &Agent, queue: Uuid) -> Reply {
    api.call(
        "POST",
        &format!("/v1/queues/{queue}/close"),
        owner.token(),
        None,
    )
    .await
}

/// The activity of `queue` and `conversation` (what a transfer or a close would add).
async fn activity_of(api: &Api, owner: &Agent, queue: Uuid, conversation: Uuid) -> Vec<Value> {
    api::activity(api, owner.token())
        .await
        .into_iter()
        .filter(|item| {
            item["queue_id"] == json!(queue) || item["conversation_id"] == json!(conversation)
        })
        .collect()
}

async fn a_transfer_into_a_closed_queue_is_refused_with_nothing_appended(storage: Storage) {
    let (_server, api) = api::start(&storage);
    let owner = api::sign_up(&api, "Acme").await;
    let sales = api::open_queue_handled_by(&api, &owner, "Sales").await;
    let closed = api::open_queue_handled_by(&api, &owner, "Closed").await;
    close(&api, &owner, closed)
        .await
        .expect(204, "closing the target");
    let waiting = api::join(&api, sales, json!({})).await.conversation_id;
    let picked = api::join(&api, sales, json!({})).await.conversation_id;
    assert_eq!(api::pick(&api, &owner, sales).await, waiting);
    // `waiting` is picked now; the other one waits.
    let (picked, waiting) = (waiting, picked);

    for (what, id) in [
        ("a waiting customer", waiting),
        ("a picked conversation", picked),
    ] {
        let mut watch = Watch::new(
            &owner,
            vec![
                format!("/v1/conversations/{id}"),
                format!("/v1/orgs/{}/queues", owner.organization_id),
            ],
        );
        let before = watch.look(&api).await;
        let activity_before = activity_of(&api, &owner, closed, id).await;
        let refused = transfer(&api, &owner, id, closed)
            .await
            .expect_problem(409, what);
        assert_eq!(
            refused.body["detail"], "the target queue is closed",
            "{what}"
        );
        let after = watch.look(&api).await;
        api::assert_unchanged(&before, &after, "a refused transfer appends nothing");
        assert_eq!(
            activity_of(&api, &owner, closed, id).await,
            activity_before,
            "{what}: a refused transfer appends nothing"
        );
    }
    // The customer still waits where it waited, and is picked there.
    assert_eq!(api::pick(&api, &owner, sales).await, waiting);
    assert_eq!(api::try_pick(&api, &owner, closed).await, None);
}

#[tokio::test]
async fn a_transfer_into_a_closed_queue_is_refused_with_nothing_appended_on_sqlite() {
    a_transfer_into_a_closed_queue_is_refused_with_nothing_appended(Storage::embedded()).await;
}

#[tokio::test]
async fn a_transfer_into_a_closed_queue_is_refused_with_nothing_appended_on_postgres() {
    let Some(storage) = Storage::postgres() else {
        return;
    };
    a_transfer_into_a_closed_queue_is_refused_with_nothing_appended(storage).await;
}

/// How many times the transfer and the close race.
const ROUNDS: usize = 30;

/// Each round, a transfer into the target (of a waiting customer in even rounds, of a picked
/// conversation in odd ones) and the target's close are sent at the same moment. Whatever the
/// interleaving, the log never has the customer arrive in the target's line while the target
/// is closed: the transfer came first (204), or it was refused (409) and the customer is where
/// it was.
async fn a_transfer_racing_a_close_never_arrives_after_it(storage: Storage) {
    let (_server, api) = api::start_with(&storage, &[("JONO_RATE_LIMITS", "off")]);
    let owner = api::sign_up(&api, "Acme").await;
    let sales = api::open_queue_handled_by(&api, &owner, "Sales").await;
    let target = api::create_queue(&api, &owner, "Target").await;
    api::add_handler(&api, &owner, target, owner.agent_id).await;
    let mut refused = 0;
    for round in 0..ROUNDS {
        api::open_queue(&api, &owner, target).await;
        let id = api::join(&api, sales, json!({})).await.conversation_id;
        if round % 2 == 1 {
            assert_eq!(api::pick(&api, &owner, sales).await, id);
        }
        let (moved, closed) = tokio::join!(
            transfer(&api, &owner, id, target),
            close(&api, &owner, target)
        );
        closed.expect(204, "closing the target");
        assert!(
            moved.status == 204 || moved.status == 409,
            "round {round}: {} {}",
            moved.status,
            moved.text
        );
        let view = api
            .get(&format!("/v1/conversations/{id}"), owner.token())
            .await
            .expect(200, "reading the conversation")
            .body;
        if moved.status == 204 {
            assert_eq!(view["queue_id"], json!(target), "round {round}: {view}");
            assert_eq!(view["status"], "waiting", "round {round}: {view}");
            // Out of the way of the next round: it leaves the target's line.
            assert_eq!(api::pick(&api, &owner, target).await, id, "round {round}");
        } else {
            refused += 1;
            assert_eq!(view["queue_id"], json!(sales), "round {round}: {view}");
            if round % 2 == 0 {
                assert_eq!(view["status"], "waiting", "round {round}: {view}");
                assert_eq!(api::pick(&api, &owner, sales).await, id, "round {round}");
            }
        }
    }
    // Over the whole log: every arrival in the target's line came while it was open.
    let mut open = false;
    for item in api::activity(&api, owner.token()).await {
        if item["queue_id"] != json!(target) {
            continue;
        }
        match item["type"].as_str() {
            Some("QueueOpened") => open = true,
            Some("QueueClosed") => open = false,
            Some("ConversationTransferred") => assert!(
                open,
                "a customer arrived in a closed queue's line at position {}",
                item["position"]
            ),
            _ => {}
        }
    }
    eprintln!("{refused} of {ROUNDS} transfers were refused by the close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transfer_racing_a_close_never_arrives_after_it_on_sqlite() {
    a_transfer_racing_a_close_never_arrives_after_it(Storage::embedded()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transfer_racing_a_close_never_arrives_after_it_on_postgres() {
    let Some(storage) = Storage::postgres() else {
        return;
    };
    a_transfer_racing_a_close_never_arrives_after_it(storage).await;
}

/// Who opens and closes a queue is the queue's stream to decide: a member who is not one of
/// its handlers is refused (403, nothing appended), a handler may, and a handler removed is
/// refused at once.
async fn only_handlers_and_operators_open_and_close_a_queue(storage: Storage) {
    let (_server, api) = api::start(&storage);
    let owner = api::sign_up(&api, "Acme").await;
    let queue = api::open_queue_handled_by(&api, &owner, "Sales").await;
    let member = api::invite_and_accept(&api, &owner, "agent", "Max Member").await;
    let before = api::activity(&api, owner.token()).await.len();
    close(&api, &member, queue)
        .await
        .expect_problem(403, "a member who does not handle the queue closing it");
    assert_eq!(api::activity(&api, owner.token()).await.len(), before);
    api::add_handler(&api, &owner, queue, member.agent_id).await;
    close(&api, &member, queue)
        .await
        .expect(204, "its handler closing it");
    api.call(
        "DELETE",
        &format!("/v1/queues/{queue}/handlers/{}", member.agent_id),
        owner.token(),
        None,
    )
    .await
    .expect(204, "the handler removed");
    api.call(
        "POST",
        &format!("/v1/queues/{queue}/open"),
        member.token(),
        None,
    )
    .await
    .expect_problem(403, "a removed handler opening it");
    close(&api, &owner, queue).await.expect(
        204,
        "an owner closing a queue it is not made a handler of by the call",
    );
}

#[tokio::test]
async fn only_handlers_and_operators_open_and_close_a_queue_on_sqlite() {
    only_handlers_and_operators_open_and_close_a_queue(Storage::embedded()).await;
}

#[tokio::test]
async fn only_handlers_and_operators_open_and_close_a_queue_on_postgres() {
    let Some(storage) = Storage::postgres() else {
        return;
    };
    only_handlers_and_operators_open_and_close_a_queue(storage).await;
}
