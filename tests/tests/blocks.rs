//! Blocking an abusive visitor (issue 12), black-box on both backends: an agent blocks the
//! customer of a conversation for a chosen time; the conversation ends, the customer's token
//! stops working and its socket closes, and joins from its address (an IPv6 client by its /64)
//! to any queue of the organization are refused — after a restart too — until an operator lifts
//! the block. Other visitors and other organizations are untouched; bad input changes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures::StreamExt;
use jono_tests::api::{self, join_from, Agent, Api};
use jono_tests::Storage;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

/// This host is the proxy, so each test names its clients in `X-Forwarded-For`.
const PROXY: (&str, &str) = ("JONO_TRUSTED_PROXIES", "127.0.0.1/32, ::1");

fn joined(reply: api::Reply, what: &str) -> (Uuid, String) {
    let reply = reply.expect(201, what);
    let token = reply.body["customer_token"].as_str().unwrap().to_owned();
    (reply.id("conversation_id"), token)
}

async fn block(api: &Api, by: &Agent, conversation: Uuid, body: Value) -> api::Reply {
    api.post(
        &format!("/v1/conversations/{conversation}/block"),
        by.token(),
        body,
    )
    .await
}

async fn blocks(api: &Api, by: &Agent) -> Vec<Value> {
    let path = format!("/v1/orgs/{}/blocks", by.organization_id);
    api.get(&path, by.token())
        .await
        .expect(200, "the running blocks")
        .body
        .as_array()
        .unwrap()
        .clone()
}

async fn the_story(storage: &Storage) {
    let (server, api) = api::start_with(storage, &[PROXY]);
    let owner = api::sign_up(&api, "Acme").await;
    let agent = api::invite_and_accept(&api, &owner, "agent", "Aino").await;
    let support = api::open_queue_handled_by(&api, &owner, "Support").await;
    let sales = api::open_queue_handled_by(&api, &owner, "Sales").await;
    let other_org = api::sign_up(&api, "Other").await;
    let elsewhere = api::open_queue_handled_by(&api, &other_org, "Elsewhere").await;

    let (conversation, customer_token) = joined(
        join_from(&api, support, "203.0.113.7").await,
        "the visitor joins",
    );
    api::add_handler(&api, &owner, support, agent.agent_id).await;
    let picked = api::pick(&api, &agent, support).await;
    assert_eq!(picked, conversation);

    // The customer listens on its conversation.
    let url = format!(
        "{}/v1/ws?token={customer_token}",
        api.base.replace("http://", "ws://")
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();

    let blocked = block(
        &api,
        &agent,
        conversation,
        json!({"minutes": 60, "reason": "abusive language"}),
    )
    .await
    .expect(201, "an agent blocks the customer");
    let block_id = blocked.id("block_id");
    assert!(blocked.body["until"].is_string(), "{}", blocked.text);

    // The conversation has ended, the customer's token no longer works, its socket closed.
    let shown = api
        .get(&format!("/v1/conversations/{conversation}"), owner.token())
        .await
        .expect(200, "the agent reads the conversation");
    assert_eq!(shown.body["status"], "ended", "{}", shown.text);
    api.get(
        &format!("/v1/conversations/{conversation}"),
        Some(&customer_token),
    )
    .await
    .expect_problem(401, "the blocked customer's token");
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(frame) = socket.next().await {
            if matches!(frame, Ok(Message::Close(_)) | Err(_)) {
                return true;
            }
        }
        true
    })
    .await
    .unwrap_or(false);
    assert!(closed, "the blocked customer's socket stays open");

    // Its address may not join any queue of the organization; others and elsewhere may.
    let refused = join_from(&api, support, "203.0.113.7")
        .await
        .expect_problem(403, "the blocked visitor joins again");
    assert!(
        refused.body["detail"].as_str().unwrap().contains("until"),
        "{}",
        refused.text
    );
    join_from(&api, sales, "203.0.113.7")
        .await
        .expect_problem(403, "the blocked visitor joins another queue");
    join_from(&api, support, "203.0.113.8")
        .await
        .expect(201, "another visitor");
    join_from(&api, elsewhere, "203.0.113.7")
        .await
        .expect(201, "another organization's queue");

    // Operators see the block; agents may neither list nor lift.
    let listed = blocks(&api, &owner).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["id"], block_id.to_string());
    assert_eq!(listed[0]["conversation_id"], conversation.to_string());
    assert_eq!(listed[0]["blocked_by"], agent.agent_id.to_string());
    assert_eq!(listed[0]["reason"], "abusive language");
    assert_eq!(listed[0]["by_address"], true);
    let path = format!("/v1/orgs/{}/blocks", owner.organization_id);
    api.get(&path, agent.token())
        .await
        .expect_problem(403, "an agent lists blocks");
    api.get(&path, other_org.token())
        .await
        .expect_problem(404, "another organization's owner lists them");
    let lift = format!("/v1/orgs/{}/blocks/{block_id}", owner.organization_id);
    api.delete(&lift, agent.token())
        .await
        .expect_problem(403, "an agent lifts a block");
    api.delete(
        &format!("/v1/orgs/{}/blocks/{block_id}", other_org.organization_id),
        other_org.token(),
    )
    .await
    .expect_problem(404, "another organization's owner lifts it");

    // The block holds after a restart: the key of the address is the deployment's.
    drop(socket);
    drop(server);
    let (_server, api) = api::start_with(storage, &[PROXY]);
    join_from(&api, support, "203.0.113.7")
        .await
        .expect_problem(403, "the blocked visitor after a restart");

    // An operator lifts it: the visitor joins again, and a second lift finds nothing.
    api.delete(&lift, owner.token())
        .await
        .expect(204, "the owner lifts the block");
    join_from(&api, support, "203.0.113.7")
        .await
        .expect(201, "the visitor after the lift");
    assert!(blocks(&api, &owner).await.is_empty());
    api.delete(&lift, owner.token())
        .await
        .expect_problem(404, "a lifted block");
}

#[tokio::test]
async fn a_blocked_visitor_cannot_come_back_until_an_operator_lifts_the_block() {
    the_story(&Storage::embedded()).await;
}

#[tokio::test]
async fn a_blocked_visitor_cannot_come_back_until_an_operator_lifts_the_block_on_postgres() {
    if let Some(storage) = Storage::postgres() {
        the_story(&storage).await;
    }
}

#[tokio::test]
async fn an_ipv6_visitor_is_blocked_by_its_64() {
    let storage = Storage::embedded();
    let (_server, api) = api::start_with(&storage, &[PROXY]);
    let owner = api::sign_up(&api, "Acme").await;
    let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
    let (conversation, _) = joined(
        join_from(&api, queue, "2001:db8:1:2::1").await,
        "an IPv6 visitor",
    );
    block(&api, &owner, conversation, json!({}))
        .await
        .expect(201, "blocked for the default day");
    join_from(&api, queue, "2001:db8:1:2:ffff::9")
        .await
        .expect_problem(403, "another address of the same /64");
    join_from(&api, queue, "2001:db8:1:3::1")
        .await
        .expect(201, "the next /64");
}

#[tokio::test]
async fn a_bad_block_is_refused_and_changes_nothing() {
    let storage = Storage::embedded();
    let (_server, api) = api::start_with(&storage, &[PROXY]);
    let owner = api::sign_up(&api, "Acme").await;
    let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
    let (conversation, customer_token) = joined(
        join_from(&api, queue, "198.51.100.1").await,
        "a visitor joins",
    );
    for (body, status) in [
        (json!({"minutes": 0}), 422),
        (json!({"minutes": -5}), 422),
        (json!({"minutes": 525_601}), 422),
        (json!({"minutes": i64::MAX}), 422),
        (json!({"minutes": "an hour"}), 400),
        (json!({"minutes": 1.5}), 400),
        (json!({"reason": "x".repeat(501)}), 422),
        (json!({"reason": 7}), 400),
    ] {
        block(&api, &owner, conversation, body.clone())
            .await
            .expect_problem(status, &format!("blocking with {body}"));
    }
    // The customer may not block itself, nor anyone block a channel.
    block(
        &api,
        &api::Agent {
            token: customer_token.clone(),
            ..owner.clone()
        },
        conversation,
        json!({}),
    )
    .await
    .expect_problem(403, "the customer blocks itself");
    let channel = api::create_channel(&api, &owner, "Team").await;
    block(&api, &owner, channel, json!({}))
        .await
        .expect_problem(409, "blocking a channel");
    block(&api, &owner, Uuid::new_v4(), json!({}))
        .await
        .expect_problem(404, "an unknown conversation");
    // Nothing changed: the customer still waits, its token works, its address may join.
    let shown = api
        .get(
            &format!("/v1/conversations/{conversation}"),
            Some(&customer_token),
        )
        .await
        .expect(200, "the customer's token");
    assert_eq!(shown.body["status"], "waiting", "{}", shown.text);
    assert!(blocks(&api, &owner).await.is_empty());
    join_from(&api, queue, "198.51.100.1")
        .await
        .expect(201, "the visitor joins again");
}

/// A block of a customer who already left still holds its address (an agent reviewing an
/// ended chat), and a retried block with its key blocks once.
#[tokio::test]
async fn an_ended_conversation_can_be_blocked_once_per_key() {
    let storage = Storage::embedded();
    let (_server, api) = api::start_with(&storage, &[PROXY]);
    let owner = api::sign_up(&api, "Acme").await;
    let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
    let (conversation, customer_token) = joined(
        join_from(&api, queue, "192.0.2.44").await,
        "a visitor joins",
    );
    api.post(
        &format!("/v1/conversations/{conversation}/end"),
        Some(&customer_token),
        json!({}),
    )
    .await
    .expect(204, "the customer leaves");
    let path = format!("/v1/conversations/{conversation}/block");
    let body = br#"{"minutes": 10}"#.to_vec();
    let headers = [("idempotency-key", "block-1")];
    let first = api
        .raw("POST", &path, owner.token(), Some(body.clone()), &headers)
        .await
        .expect(201, "blocking an ended conversation");
    let again = api
        .raw("POST", &path, owner.token(), Some(body), &headers)
        .await
        .expect(201, "the retry");
    assert_eq!(first.body, again.body);
    assert_eq!(blocks(&api, &owner).await.len(), 1);
    join_from(&api, queue, "192.0.2.44")
        .await
        .expect_problem(403, "the visitor of the ended conversation");
}
