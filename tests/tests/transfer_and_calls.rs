//! Transfers and calls over HTTP: a customer moved to another queue waits again there, first
//! in line, whether it was still waiting or already picked, and the source queue's statistics
//! count the transfer out; a transfer only goes to an open queue of the same organization.
//! Calls start and end, for agents and the customer alike, and are refused when they should be.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use jono_tests::api::{self, Agent, Api, Reply, Watch};
use jono_tests::Storage;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn connect(base: &str, token: &str) -> Socket {
    let url = format!("{}/v1/ws?token={token}", base.replace("http://", "ws://"));
    let (socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("a WebSocket");
    socket
}

/// Frames until one satisfies `stop` (which is returned last); panics if the socket closes or
/// stays silent for 20 seconds first.
async fn until(socket: &mut Socket, stop: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut frames = Vec::new();
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(20), socket.next())
            .await
            .ok()
            .flatten()
            .and_then(Result::ok);
        let Some(frame) = frame else {
            panic!("the socket closed or fell silent before the expected frame: {frames:?}");
        };
        let Message::Text(text) = frame else {
            continue;
        };
        let frame: Value = serde_json::from_str(text.as_str()).expect("a JSON frame");
        let done = stop(&frame);
        frames.push(frame);
        if done {
            return frames;
        }
    }
}

async fn transfer(api: &Api, token: Option<&str>, conversation: Uuid, queue: Uuid) -> Reply {
    api.post(
        &format!("/v1/conversations/{conversation}/transfer"),
        token,
        json!({ "queue_id": queue }),
    )
    .await
}

async fn conversation(api: &Api, token: Option<&str>, conversation: Uuid) -> Value {
    api.get(&format!("/v1/conversations/{conversation}"), token)
        .await
        .expect(200, "reading the conversation")
        .body
}

async fn waiting(api: &Api, owner: &Agent, queue: Uuid) -> i64 {
    api.get(&format!("/v1/queues/{queue}"), owner.token())
        .await
        .expect(200, "reading a queue")
        .body["waiting"]
        .as_i64()
        .expect("a waiting count")
}

/// What an agent reads of a conversation that waits again, first, in `queue`.
#[track_caller]
fn assert_waits_first_in(view: &Value, queue: Uuid) {
    assert_eq!(view["status"], "waiting", "{view}");
    assert_eq!(view["agent_id"], Value::Null, "{view}");
    assert_eq!(view["queue_id"], json!(queue), "{view}");
    assert_eq!(view["queue_position"], 1, "{view}");
}

#[tokio::test]
async fn a_waiting_customer_goes_first_in_the_target_line_and_is_picked_there() {
    let storage = Storage::embedded();
    let (_server, api) = api::start(&storage);
    let owner = api::sign_up(&api, "Acme").await;
    let sales = api::open_queue_handled_by(&api, &owner, "Sales").await;
    let support = api::open_queue_handled_by(&api, &owner, "Support").await;
    // Someone waits in Support already; the transferred customer goes before them.
    let earlier = api::join(&api, support, json!({})).await;
    let customer = api::join(&api, sales, json!({"name": "Cora"})).await;
    let id = customer.conversation_id;

    transfer(&api, owner.token(), earlier.conversation_id, support)
        .await
        .expect_problem(409, "a transfer into the queue it waits in");

    transfer(&api, owner.token(), id, support)
        .await
        .expect(204, "transferring a waiting customer");
    assert_waits_first_in(&conversation(&api, owner.token(), id).await, support);
    let mine = conversation(&api, customer.token(), id).await;
    assert_eq!(mine["status"], "waiting", "{mine}");
    assert_eq!(mine["queue_position"], 1, "{mine}");
    assert_eq!(mine["agent"], Value::Null, "{mine}");
    assert_eq!(waiting(&api, &owner, support).await, 2);
    assert_eq!(waiting(&api, &owner, sales).await, 0);
    let behind = conversation(&api, owner.token(), earlier.conversation_id).await;
    assert_eq!(behind["queue_position"], 2, "{behind}");

    // The source queue counts a transfer out (a wait that ended so).
    let stats = api::stats_once(&api, &owner, sales, |stats| {
        stats["transferred_out"] == json!(1)
    })
    .await;
    assert_eq!(stats["transferred_out"], 1, "{stats}");

    // Picked in its new queue, before the customer who waited there.
    assert_eq!(api::pick(&api, &owner, support).await, id);
    let picked = conversation(&api, owner.token(), id).await;
    assert_eq!(picked["status"], "active", "{picked}");
    assert_eq!(picked["agent_id"], json!(owner.agent_id), "{picked}");
    assert_eq!(picked["queue_id"], json!(support), "{picked}");
    assert_eq!(
        api::pick(&api, &owner, support).await,
        earlier.conversation_id
    );
}

#[tokio::test]
async fn an_active_conversation_waits_again_first_and_the_source_counts_it_out() {
    let storage = Storage::embedded();
    let (server, api) = api::start(&storage);
    let owner = api::sign_up(&api, "Acme").await;
    let sales = api::open_queue_handled_by(&api, &owner, "Sales").await;
    let support = api::open_queue_handled_by(&api, &owner, "Support").await;
    let earlier = api::join(&api, support, json!({})).await;
    let customer = api::join(&api, sales, json!({"name": "Cora"})).await;
    let id = customer.conversation_id;
    assert_eq!(api::pick(&api, &owner, sales).await, id);
    api::send_message(&api, owner.token(), id, "Let me find the right team").await;

    let mut socket = connect(&server.base, &customer.token).await;
    let topic = format!("conversation:{id}");
    let sink = socket.send(Message::Text(
        json!({"type": "subscribe", "topic": topic, "after": null})
            .to_string()
            .into(),
    ));
    sink.await.expect("subscribing");
    until(&mut socket, |frame| frame["type"] == "subscribed").await;

    transfer(&api, owner.token(), id, support)
        .await
        .expect(204, "transferring an active conversation");
    assert_waits_first_in(&conversation(&api, owner.token(), id).await, support);
    let mine = conversation(&api, customer.token(), id).await;
    assert_eq!(mine["status"], "waiting", "{mine}");
    assert_eq!(mine["agent"], Value::Null, "{mine}");
    assert_eq!(waiting(&api, &owner, support).await, 2);

    // The customer's topic says it waits again.
    let frames = until(&mut socket, |frame| {
        frame["event"]["type"] == "ConversationTransferred"
    })
    .await;
    let event = &frames.last().unwrap()["event"];
    assert_eq!(event["status"], "waiting", "{event}");
    assert_eq!(event["queue_position"], 1, "{event}");

    let stats = api::stats_once(&api, &owner, sales, |stats| {
        stats["transferred_out"] == json!(1)
    })
    .await;
    assert_eq!(stats["transferred_out"], 1, "{stats}");
    assert_eq!(stats["picked"], 1, "{stats}");

    // Messages carry on; the next pick in Support is this conversation.
    assert_eq!(api::pick(&api, &owner, support).await, id);
    assert_eq!(
        api::texts(&api, customer.token(), id).await,
        vec!["Let me find the right team"]
    );
    assert_eq!(
        api::pick(&api, &owner, support).await,
        earlier.conversation_id
    );
}

/// Two agents transfer the same picked conversation to two queues at the same moment. However
/// the two requests interleave, the customer ends up waiting in one line only: picking in both
/// queues gives it to one agent, never to two.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_transfers_of_a_picked_conversation_at_once_leave_it_in_one_line() {
    let storage = Storage::embedded();
    let (_server, api) = api::start_with(&storage, &[("JONO_RATE_LIMITS", "off")]);
    let owner = api::sign_up(&api, "Acme").await;
    let sales = api::open_queue_handled_by(&api, &owner, "Sales").await;
    let support = api::open_queue_handled_by(&api, &owner, "Support").await;
    let billing = api::open_queue_handled_by(&api, &owner, "Billing").await;
    for round in 0..6 {
        let id = api::join(&api, sales, json!({})).await.conversation_id;
        assert_eq!(api::pick(&api, &owner, sales).await, id);
        let (to_support, to_billing) = tokio::join!(
            transfer(&api, owner.token(), id, support),
            transfer(&api, owner.token(), id, billing),
        );
        for reply in [&to_support, &to_billing] {
            assert!(
                reply.status == 204 || reply.status == 409,
                "round {round}: {} {}",
                reply.status,
                reply.text
            );
        }
        assert!(
            to_support.status == 204 || to_billing.status == 204,
            "round {round}: one transfer at least is done"
        );
        let mut picks = 0;
        for queue in [support, billing] {
            if let Some(picked) = api::try_pick(&api, &owner, queue).await {
                assert_eq!(picked, id, "round {round}");
                picks += 1;
            }
        }
        assert_eq!(picks, 1, "round {round}: the customer waited in one line");
    }
}

/// A waiting customer gives up at the moment an agent transfers it. Whichever comes first, the
/// conversation ends and no line keeps the customer: nobody can pick a conversation that has
/// ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_customer_who_leaves_during_its_transfer_waits_nowhere() {
    let storage = Storage::embedded();
    let (_server, api) = api::start_with(&storage, &[("JONO_RATE_LIMITS", "off")]);
    let owner = api::sign_up(&api, "Acme").await;
    let sales = api::open_queue_handled_by(&api, &owner, "Sales").await;
    let support = api::open_queue_handled_by(&api, &owner, "Support").await;
    for round in 0..8 {
        let customer = api::join(&api, sales, json!({})).await;
        let id = customer.conversation_id;
        let end = format!("/v1/conversations/{id}/end");
        let (moved, ended) = tokio::join!(
            transfer(&api, owner.token(), id, support),
            api.call("POST", &end, customer.token(), None),
        );
        assert!(
            moved.status == 204 || moved.status == 409,
            "round {round}: {} {}",
            moved.status,
            moved.text
        );
        assert!(
            ended.status == 204 || ended.status == 409,
            "round {round}: {} {}",
            ended.status,
            ended.text
        );
        let view = conversation(&api, owner.token(), id).await;
        if view["status"] != "ended" {
            // The transfer came first and the end was refused: it waits in Support.
            assert_waits_first_in(&view, support);
            api.call("POST", &end, customer.token(), None)
                .await
                .expect(204, "ending it after all");
        }
        for queue in [sales, support] {
            assert_eq!(
                api::try_pick(&api, &owner, queue).await,
                None,
                "round {round}: a pick found the ended conversation"
            );
        }
    }
}

#[tokio::test]
async fn transfers_are_refused_where_the_contract_says() {
    let storage = Storage::embedded();
    let (_server, api) = api::start(&storage);
    let owner = api::sign_up(&api, "Acme").await;
    let sales = api::open_queue_handled_by(&api, &owner, "Sales").await;
    let closed = api::create_queue(&api, &owner, "Closed").await;
    let other = api::sign_up(&api, "Globex").await;
    let theirs = api::open_queue_handled_by(&api, &other, "Theirs").await;
    let customer = api::join(&api, sales, json!({})).await;
    let id = customer.conversation_id;

    transfer(&api, owner.token(), id, closed)
        .await
        .expect_problem(409, "a closed target");

    // Another organization's queue is never revealed, and nothing is appended.
    let mut watch = Watch::new(
        &owner,
        vec![
            format!("/v1/conversations/{id}"),
            format!("/v1/orgs/{}/queues", owner.organization_id),
        ],
    );
    let before = watch.look(&api).await;
    transfer(&api, owner.token(), id, theirs)
        .await
        .expect_problem(404, "another organization's queue");
    transfer(&api, owner.token(), id, Uuid::new_v4())
        .await
        .expect_problem(404, "an unknown queue");
    let after = watch.look(&api).await;
    api::assert_unchanged(&before, &after, "a refused transfer appends nothing");
    assert_eq!(waiting(&api, &other, theirs).await, 0);

    // An outsider, the customer itself, a body of the wrong shape.
    transfer(&api, other.token(), id, theirs)
        .await
        .expect_problem(404, "an outsider");
    transfer(&api, customer.token(), id, sales)
        .await
        .expect_problem(403, "its customer");
    api.post(
        &format!("/v1/conversations/{id}/transfer"),
        owner.token(),
        json!({"queue_id": "not a queue"}),
    )
    .await
    .expect_problem(400, "a queue_id that is no id");

    // Only a customer conversation moves between queues.
    let channel = api::create_channel(&api, &owner, "Team").await;
    transfer(&api, owner.token(), channel, sales)
        .await
        .expect_problem(409, "a channel");

    // An ended conversation stays ended.
    api.call(
        "POST",
        &format!("/v1/conversations/{id}/end"),
        owner.token(),
        None,
    )
    .await
    .expect(204, "ending");
    api::open_queue(&api, &owner, closed).await;
    transfer(&api, owner.token(), id, closed)
        .await
        .expect_problem(409, "an ended conversation");
    assert_eq!(waiting(&api, &owner, closed).await, 0);
}

async fn start_call(api: &Api, token: Option<&str>, conversation: Uuid) -> Reply {
    api.call(
        "POST",
        &format!("/v1/conversations/{conversation}/calls"),
        token,
        None,
    )
    .await
}

async fn end_call(api: &Api, token: Option<&str>, conversation: Uuid, call: Uuid) -> Reply {
    api.call(
        "POST",
        &format!("/v1/conversations/{conversation}/calls/{call}/end"),
        token,
        None,
    )
    .await
}

#[tokio::test]
async fn calls_start_and_end_for_participants_only() {
    let storage = Storage::embedded();
    let (server, api) = api::start(&storage);
    let owner = api::sign_up(&api, "Acme").await;
    let sales = api::open_queue_handled_by(&api, &owner, "Sales").await;
    let outsider = api::sign_up(&api, "Globex").await;
    let customer = api::join(&api, sales, json!({})).await;
    let someone_else = api::join(&api, sales, json!({})).await;
    let id = customer.conversation_id;
    assert_eq!(api::pick(&api, &owner, sales).await, id);

    let mut socket = connect(&server.base, &customer.token).await;
    let sink = socket.send(Message::Text(
        json!({"type": "subscribe", "topic": format!("conversation:{id}"), "after": null})
            .to_string()
            .into(),
    ));
    sink.await.expect("subscribing");
    until(&mut socket, |frame| frame["type"] == "subscribed").await;

    // An agent calls; a second call while it runs is refused; the customer hangs up.
    let call = start_call(&api, owner.token(), id)
        .await
        .expect(201, "an agent starts a call")
        .id("call_id");
    let heard = until(&mut socket, |frame| frame["event"]["type"] == "CallStarted").await;
    assert_eq!(heard.last().unwrap()["event"]["call_id"], json!(call));
    start_call(&api, customer.token(), id)
        .await
        .expect_problem(409, "a call in progress");
    end_call(&api, owner.token(), id, Uuid::new_v4())
        .await
        .expect_problem(404, "an unknown call");
    end_call(&api, outsider.token(), id, call)
        .await
        .expect_problem(404, "an outsider ends the call");
    end_call(&api, someone_else.token(), id, call)
        .await
        .expect_problem(404, "another customer ends the call");
    end_call(&api, customer.token(), id, call)
        .await
        .expect(204, "the customer hangs up");
    until(&mut socket, |frame| frame["event"]["type"] == "CallEnded").await;
    end_call(&api, owner.token(), id, call)
        .await
        .expect_problem(409, "a call ended already");

    // The customer calls back.
    let again = start_call(&api, customer.token(), id)
        .await
        .expect(201, "the customer starts a call")
        .id("call_id");
    assert_ne!(again, call);
    end_call(&api, owner.token(), id, again)
        .await
        .expect(204, "the agent hangs up");

    // Outsiders never reach it; an ended conversation takes no call.
    start_call(&api, outsider.token(), id)
        .await
        .expect_problem(404, "an outsider");
    start_call(&api, someone_else.token(), id)
        .await
        .expect_problem(404, "another customer");
    start_call(&api, None, id)
        .await
        .expect_problem(401, "no token");
    api.call(
        "POST",
        &format!("/v1/conversations/{id}/end"),
        owner.token(),
        None,
    )
    .await
    .expect(204, "ending");
    start_call(&api, owner.token(), id)
        .await
        .expect_problem(409, "an ended conversation");
}
