//! Handing a conversation over to a named teammate (issue 16, item 5), on SQLite and Postgres:
//! the conversation's agent offers it to a teammate, who accepts (and becomes its agent, its
//! workload taking the conversation in the same append, refused at `capacity_per_agent` with
//! nothing changed; the previous agent has room again) or declines (it stays). Only the named
//! teammate answers; an expired handoff is refused; the customer sees its new agent's name; the
//! teammate learns of it from the activity feed and the conversation's `handoff`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use jono_tests::api::{self, Agent, Api, Reply};
use jono_tests::Storage;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

/// The events of topic `topic` as `token`'s reader sees them, replayed from the beginning.
async fn topic_events(base: &str, token: &str, topic: &str) -> Vec<Value> {
    let url = format!("{}/v1/ws?token={token}", base.replace("http://", "ws://"));
    let (mut socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("a WebSocket");
    let subscribe = json!({"type": "subscribe", "topic": topic, "after": null});
    socket
        .send(Message::Text(subscribe.to_string().into()))
        .await
        .expect("subscribe");
    let mut events = Vec::new();
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(20), socket.next())
            .await
            .expect("a frame in time")
            .expect("the socket open")
            .expect("a frame");
        let Message::Text(text) = frame else { continue };
        let frame: Value = serde_json::from_str(text.as_str()).expect("JSON");
        match frame["type"].as_str() {
            Some("event") => events.push(frame["event"].clone()),
            Some("subscribed") => return events,
            other => panic!("unexpected frame {other:?}: {frame}"),
        }
    }
}

async fn hand_over(api: &Api, by: &Agent, conversation: Uuid, to: Uuid) -> Reply {
    api.post(
        &format!("/v1/conversations/{conversation}/handoff"),
        by.token(),
        json!({ "agent_id": to }),
    )
    .await
}

async fn answer(api: &Api, agent: &Agent, conversation: Uuid, how: &str) -> Reply {
    api.call(
        "POST",
        &format!("/v1/conversations/{conversation}/handoff/{how}"),
        agent.token(),
        None,
    )
    .await
}

async fn conversation(api: &Api, token: Option<&str>, conversation: Uuid) -> Value {
    api.get(&format!("/v1/conversations/{conversation}"), token)
        .await
        .expect(200, "the conversation")
        .body
}

/// The conversation as `owner` sees it, once `done` holds of it.
async fn conversation_when(
    api: &Api,
    owner: &Agent,
    id: Uuid,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let seen = api::eventually(|| conversation(api, owner.token(), id), &done).await;
    assert!(
        done(&seen),
        "the conversation never became as expected: {seen}"
    );
    seen
}

async fn handoffs(storage: Storage) {
    let (server, api) = api::start(&storage);
    let owner = api::sign_up(&api, "Acme").await;
    let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
    let first = api::invite_and_accept(&api, &owner, "agent", "First").await;
    let mate = api::invite_and_accept(&api, &owner, "agent", "Mate").await;
    let other = api::invite_and_accept(&api, &owner, "agent", "Other").await;
    for agent in [&first, &mate, &other] {
        api::add_handler(&api, &owner, queue, agent.agent_id).await;
    }
    api.put(
        &format!("/v1/queues/{queue}/settings"),
        owner.token(),
        json!({ "capacity_per_agent": 1, "offer_timeout_seconds": 600 }),
    )
    .await
    .expect(200, "a capacity of one");

    // The teammate has one conversation already: it is at capacity.
    let busy = api::join(&api, queue, json!({ "name": "Busy" })).await;
    assert_eq!(api::pick(&api, &mate, queue).await, busy.conversation_id);
    let ann = api::join(&api, queue, json!({ "name": "Ann" })).await;
    assert_eq!(api::pick(&api, &first, queue).await, ann.conversation_id);
    let c = ann.conversation_id;

    // Refusals of the offer: a waiting customer, its own agent, a stranger, a non-agent of it.
    let waiting = api::join(&api, queue, json!({ "name": "Waiting" })).await;
    hand_over(&api, &owner, waiting.conversation_id, mate.agent_id)
        .await
        .expect_problem(409, "a waiting customer has no agent to hand it over");
    hand_over(&api, &first, c, first.agent_id)
        .await
        .expect_problem(409, "to its own agent");
    hand_over(&api, &first, c, Uuid::new_v4())
        .await
        .expect_problem(404, "to someone not a member");
    hand_over(&api, &other, c, mate.agent_id)
        .await
        .expect_problem(403, "an agent who is not its agent, nor an operator");
    api.post(
        &format!("/v1/conversations/{c}/handoff"),
        first.token(),
        json!({ "agent_id": "nope" }),
    )
    .await
    .expect_problem(400, "a malformed agent id");
    api.call(
        "POST",
        &format!("/v1/conversations/{c}/handoff/accept"),
        ann.token(),
        None,
    )
    .await
    .expect_problem(403, "the customer answers no handoff");
    answer(&api, &mate, c, "accept")
        .await
        .expect_problem(409, "no handoff is open yet");

    hand_over(&api, &first, c, mate.agent_id)
        .await
        .expect(204, "handing over");
    let seen = conversation_when(&api, &owner, c, |seen| !seen["handoff"].is_null()).await;
    assert_eq!(seen["handoff"]["to_agent_id"], json!(mate.agent_id));
    assert_eq!(
        seen["agent_id"],
        json!(first.agent_id),
        "still the first agent's"
    );
    // The teammate learns of it from the activity feed: a row naming it.
    let rows = api::eventually(
        || api::activity(&api, mate.token()),
        |rows: &Vec<Value>| rows.iter().any(|row| row["type"] == "HandoffOffered"),
    )
    .await;
    let offered = rows
        .iter()
        .find(|row| row["type"] == "HandoffOffered")
        .expect("a HandoffOffered row");
    assert_eq!(offered["agent_id"], json!(mate.agent_id));
    assert_eq!(offered["conversation_id"], json!(c));

    // Only the named teammate answers.
    answer(&api, &other, c, "accept")
        .await
        .expect_problem(403, "another agent accepts");
    answer(&api, &other, c, "decline")
        .await
        .expect_problem(403, "another agent declines");

    // At capacity: refused, and nothing changes (the handoff stays open).
    answer(&api, &mate, c, "accept")
        .await
        .expect_problem(409, "the teammate at capacity");
    let seen = conversation(&api, owner.token(), c).await;
    assert_eq!(seen["agent_id"], json!(first.agent_id));
    assert_eq!(seen["handoff"]["to_agent_id"], json!(mate.agent_id));

    // With room, the teammate accepts and is the conversation's agent.
    api.call(
        "POST",
        &format!("/v1/conversations/{}/end", busy.conversation_id),
        mate.token(),
        None,
    )
    .await
    .expect(204, "the teammate ends its other conversation");
    let accepted = answer(&api, &mate, c, "accept")
        .await
        .expect(201, "accepting");
    assert_eq!(accepted.id("conversation_id"), c);
    let seen = conversation_when(&api, &owner, c, |seen| {
        seen["agent_id"] == json!(mate.agent_id) && seen["handoff"].is_null()
    })
    .await;
    assert_eq!(seen["status"], "active");
    answer(&api, &mate, c, "accept")
        .await
        .expect_problem(409, "accepting twice");
    // The customer sees its new agent's name.
    let mine = api::eventually(
        || conversation(&api, ann.token(), c),
        |mine: &Value| mine["agent"]["name"] == "Mate",
    )
    .await;
    assert_eq!(mine["agent"]["name"], "Mate", "{mine}");
    // Live, on its conversation's topic: the allow-listed accept with the new agent's name only.
    let seen = topic_events(&server.base, &ann.token, &format!("conversation:{c}")).await;
    let handed: Vec<&Value> = seen
        .iter()
        .filter(|event| event["type"].as_str().unwrap_or("").starts_with("Handoff"))
        .collect();
    assert_eq!(
        handed.len(),
        1,
        "only the accept reaches the customer: {seen:?}"
    );
    assert_eq!(handed[0]["type"], "HandoffAccepted");
    assert_eq!(handed[0]["agent"]["name"], "Mate");
    assert!(handed[0].get("agent_id").is_none(), "{}", handed[0]);
    assert!(handed[0].get("from_agent_id").is_none(), "{}", handed[0]);
    // The teammate's place is taken by it; the first agent has room again.
    let next = api::join(&api, queue, json!({ "name": "Next" })).await;
    assert_eq!(
        api::try_pick(&api, &mate, queue).await,
        None,
        "the teammate is at capacity with the handed-over conversation"
    );
    assert_eq!(
        api::try_pick(&api, &first, queue).await,
        Some(waiting.conversation_id),
        "the first agent has room again"
    );
    let _ = next;

    // A decline keeps the conversation with its agent.
    hand_over(&api, &mate, c, other.agent_id)
        .await
        .expect(204, "handing over again");
    answer(&api, &other, c, "decline")
        .await
        .expect(204, "declining");
    let seen = conversation_when(&api, &owner, c, |seen| seen["handoff"].is_null()).await;
    assert_eq!(seen["agent_id"], json!(mate.agent_id));
    answer(&api, &other, c, "accept")
        .await
        .expect_problem(409, "accepting a declined handoff");

    // An operator hands over anyone's conversation; a new handoff replaces the open one.
    hand_over(&api, &owner, c, first.agent_id)
        .await
        .expect(204, "an operator hands over");
    hand_over(&api, &mate, c, other.agent_id)
        .await
        .expect(204, "a new handoff replaces it");
    answer(&api, &first, c, "accept")
        .await
        .expect_problem(403, "the replaced handoff's teammate");

    // An ended conversation is handed over no more, and its open handoff is gone.
    api.call(
        "POST",
        &format!("/v1/conversations/{c}/end"),
        mate.token(),
        None,
    )
    .await
    .expect(204, "ending");
    answer(&api, &other, c, "accept")
        .await
        .expect_problem(409, "accepting after the end");
    hand_over(&api, &mate, c, other.agent_id)
        .await
        .expect_problem(409, "handing over an ended conversation");
}

#[tokio::test]
async fn handoffs_on_sqlite() {
    handoffs(Storage::embedded()).await;
}

#[tokio::test]
async fn handoffs_on_postgres() {
    let Some(storage) = Storage::postgres() else {
        return;
    };
    handoffs(storage).await;
}

/// A handoff not accepted within the queue's `offer_timeout_seconds` is refused, and the
/// router records its expiry (`HandoffExpired`) once.
async fn expired(storage: Storage) {
    let (_server, api) = api::start(&storage);
    let owner = api::sign_up(&api, "Acme").await;
    let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
    let mate = api::invite_and_accept(&api, &owner, "agent", "Mate").await;
    api.put(
        &format!("/v1/queues/{queue}/settings"),
        owner.token(),
        json!({ "offer_timeout_seconds": 1 }),
    )
    .await
    .expect(200, "a short timeout");
    let ann = api::join(&api, queue, json!({ "name": "Ann" })).await;
    api::pick(&api, &owner, queue).await;
    hand_over(&api, &owner, ann.conversation_id, mate.agent_id)
        .await
        .expect(204, "handing over");
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    answer(&api, &mate, ann.conversation_id, "accept")
        .await
        .expect_problem(409, "accepting an expired handoff");
    // The router records the expiry: the handoff is gone from the conversation, and the
    // teammate's activity says so.
    let seen = conversation_when(&api, &owner, ann.conversation_id, |seen| {
        seen["handoff"].is_null()
    })
    .await;
    assert_eq!(seen["agent_id"], json!(owner.agent_id));
    let rows = api::eventually(
        || api::activity(&api, mate.token()),
        |rows: &Vec<Value>| rows.iter().any(|row| row["type"] == "HandoffExpired"),
    )
    .await;
    let expired = rows
        .iter()
        .find(|row| row["type"] == "HandoffExpired")
        .expect("a HandoffExpired row");
    assert_eq!(expired["agent_id"], json!(mate.agent_id));
    assert_eq!(
        rows.iter()
            .filter(|row| row["type"] == "HandoffExpired")
            .count(),
        1,
        "expired once"
    );
}

#[tokio::test]
async fn expired_handoffs_on_sqlite() {
    expired(Storage::embedded()).await;
}

#[tokio::test]
async fn expired_handoffs_on_postgres() {
    let Some(storage) = Storage::postgres() else {
        return;
    };
    expired(storage).await;
}
