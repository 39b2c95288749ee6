//! The outbox relay against a real nats-server (API.md, JetStream; invariant 6): every committed
//! event reaches the stream `JONO_EVENTS` in log order, with `Nats-Msg-Id` = its position, the
//! documented subject and the WebSocket body; an outage of NATS never fails a command and loses
//! nothing; of two `jono serve`, the lease holder publishes and the other takes over when it dies.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, Context};
use futures::StreamExt;
use jono_tests::api::{self, Agent, Api};
use jono_tests::nats::Nats;
use jono_tests::{Server, Storage};
use serde_json::{json, Value};
use store::{EventStore, StoredEvent};
use uuid::Uuid;

/// One message of the stream, as a consumer sees it.
#[derive(Debug)]
struct Published {
    subject: String,
    id: i64,
    body: Value,
}

async fn jetstream(nats: &Nats) -> Context {
    jetstream::new(async_nats::connect(nats.url.as_str()).await.unwrap())
}

/// Every event in the log, read directly.
async fn logged(storage: &Storage) -> Vec<StoredEvent> {
    let Storage::Postgres(url) = storage else {
        unreachable!("NATS needs Postgres")
    };
    let store = EventStore::open_postgres(url).await.unwrap();
    store.read_after(0, 100_000).await.unwrap()
}

/// The stream's messages, read with a consumer of its own, until every position of `want` is
/// among them (or about twenty seconds passed: the caller's assertion shows what came).
async fn published(js: &Context, want: &BTreeSet<i64>) -> Vec<Published> {
    let stream = js.get_stream("JONO_EVENTS").await.unwrap();
    let consumer: consumer::PullConsumer = stream
        .create_consumer(consumer::pull::Config {
            deliver_policy: consumer::DeliverPolicy::All,
            ack_policy: consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut seen = BTreeSet::new();
    for _ in 0..200 {
        if want.is_subset(&seen) {
            break;
        }
        let mut batch = consumer
            .fetch()
            .max_messages(1_000)
            .messages()
            .await
            .unwrap();
        let mut any = false;
        while let Some(message) = batch.next().await {
            let message = message.unwrap();
            let id = message
                .headers
                .as_ref()
                .and_then(|headers| headers.get("Nats-Msg-Id"))
                .map(|value| value.as_str().parse::<i64>().unwrap())
                .expect("a Nats-Msg-Id");
            seen.insert(id);
            got.push(Published {
                subject: message.subject.to_string(),
                id,
                body: serde_json::from_slice(&message.payload).unwrap(),
            });
            any = true;
        }
        if !any {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    got
}

/// Positions in the order of their first publication.
fn first_seen(published: &[Published]) -> Vec<i64> {
    let mut seen = BTreeSet::new();
    published
        .iter()
        .filter(|message| seen.insert(message.id))
        .map(|message| message.id)
        .collect()
}

fn positions(events: &[StoredEvent]) -> Vec<i64> {
    events.iter().map(|event| event.position).collect()
}

/// Some traffic: a queue, a customer, a pick and messages both ways.
async fn traffic(api: &Api, owner: &Agent, queue: Uuid, messages: usize) -> Uuid {
    let customer = api::join(api, queue, json!({"name": "Carla"})).await;
    let conversation = api::pick(api, owner, queue).await;
    assert_eq!(conversation, customer.conversation_id);
    for n in 0..messages {
        api::send_message(api, Some(&customer.token), conversation, &format!("hi {n}")).await;
        api::send_message(api, owner.token(), conversation, &format!("hello {n}")).await;
    }
    conversation
}

/// The `event` of every `event` frame an agent's WebSocket replays for `topic`.
async fn websocket_events(base: &str, token: &str, topic: &str) -> Vec<Value> {
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let url = format!("{}/v1/ws?token={token}", base.replace("http://", "ws://"));
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let subscribe = json!({ "type": "subscribe", "topic": topic, "after": null });
    socket
        .send(Message::Text(subscribe.to_string().into()))
        .await
        .unwrap();
    let mut events = Vec::new();
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(20), socket.next())
            .await
            .expect("a frame")
            .expect("an open socket")
            .unwrap();
        let Message::Text(text) = frame else {
            continue;
        };
        let frame: Value = serde_json::from_str(text.as_str()).unwrap();
        match frame["type"].as_str() {
            Some("event") => events.push(frame["event"].clone()),
            Some("subscribed") => return events,
            Some("error") => panic!("{frame}"),
            _ => {}
        }
    }
}

async fn serve(storage: &Storage, nats: &Nats) -> (Server, Api) {
    api::start_with(
        storage,
        &[("JONO_RATE_LIMITS", "off"), ("JONO_NATS_URL", &nats.url)],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_is_published_in_log_order_with_its_position_subject_and_body() {
    let (Some(storage), Some(nats)) = (Storage::postgres(), Nats::start()) else {
        return;
    };
    let (server, api) = serve(&storage, &nats).await;
    let js = jetstream(&nats).await;
    // Ready means the stream exists.
    js.get_stream("JONO_EVENTS")
        .await
        .expect("the stream, once ready");

    let owner = api::sign_up(&api, "Acme").await;
    let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
    let conversation = traffic(&api, &owner, queue, 3).await;

    let events = logged(&storage).await;
    let want: BTreeSet<i64> = positions(&events).into_iter().collect();
    let got = published(&js, &want).await;
    let ids: Vec<i64> = got.iter().map(|message| message.id).collect();
    assert_eq!(ids, positions(&events), "each event once, in log order");
    let mut organizations = BTreeSet::new();
    for (event, message) in events.iter().zip(&got) {
        let organization = event.payload["organization_id"]
            .as_str()
            .unwrap_or("_")
            .to_owned();
        assert_eq!(
            message.subject,
            format!("jono.events.{organization}.{}", event.event_type)
        );
        organizations.insert(organization);
        assert_eq!(message.body, gateway::ws::full_body(event), "{message:?}");
        assert_eq!(message.body["position"], json!(event.position));
        assert_eq!(message.body["type"], json!(event.event_type));
        assert!(message.body["at"].is_string(), "{message:?}");
        assert_eq!(
            message.body["conversation_id"],
            event.payload["conversation_id"]
        );
    }
    assert!(organizations.contains(&owner.organization_id.to_string()));

    // The body is what an agent's WebSocket says of the same event.
    let frames = websocket_events(
        &server.base,
        owner.token().unwrap(),
        &format!("conversation:{conversation}"),
    )
    .await;
    assert!(frames.len() >= 7, "{frames:?}");
    for frame in &frames {
        let message = got
            .iter()
            .find(|message| json!(message.id) == frame["position"])
            .unwrap_or_else(|| panic!("JetStream has {frame}"));
        assert_eq!(&message.body, frame);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_outage_fails_no_command_and_loses_no_event() {
    let (Some(storage), Some(mut nats)) = (Storage::postgres(), Nats::start()) else {
        return;
    };
    let (server, api) = serve(&storage, &nats).await;
    let js = jetstream(&nats).await;
    let owner = api::sign_up(&api, "Acme").await;
    let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
    traffic(&api, &owner, queue, 2).await;
    let before: BTreeSet<i64> = positions(&logged(&storage).await).into_iter().collect();
    published(&js, &before).await;
    assert!(metric_line(&server, "jono_nats_configured 1"));
    assert!(nats_connected_becomes(&server, true).await, "connected");

    nats.stop();
    assert!(
        nats_connected_becomes(&server, false).await,
        "/metrics shows the outage"
    );
    // Every command is answered as usual (each step asserts its 2xx).
    traffic(&api, &owner, queue, 5).await;
    // The relay tried and failed (its retry is what this test is about) before NATS returns.
    for _ in 0..600 {
        if server.stderr().contains("cannot publish to JetStream") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        server.stderr().contains("cannot publish to JetStream"),
        "the relay noticed the outage: {}",
        server.stderr()
    );
    traffic(&api, &owner, queue, 1).await;
    nats.resume();
    assert!(
        nats_connected_becomes(&server, true).await,
        "/metrics shows the reconnection"
    );

    let events = logged(&storage).await;
    let want: BTreeSet<i64> = positions(&events).into_iter().collect();
    assert!(want.len() > before.len());
    let js = jetstream(&nats).await;
    let got = published(&js, &want).await;
    let ids: BTreeSet<i64> = got.iter().map(|message| message.id).collect();
    assert_eq!(ids, want, "every event, none missing");
    assert_eq!(first_seen(&got), positions(&events), "in log order");
}

/// Whether this server's `/metrics` has `line`.
fn metric_line(server: &Server, line: &str) -> bool {
    let (status, text) = server.get("/metrics");
    assert_eq!(status, 200);
    text.lines().any(|found| found == line)
}

/// Whether this server holds the outbox lease, from its `/metrics`.
fn holds_lease(server: &Server) -> bool {
    metric_line(server, "jono_outbox_holder 1")
}

/// Whether `jono_nats_connected` comes to say `up` within about thirty seconds.
async fn nats_connected_becomes(server: &Server, up: bool) -> bool {
    let line = format!("jono_nats_connected {}", u8::from(up));
    for _ in 0..300 {
        if metric_line(server, &line) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_nodes_one_publishes_and_the_other_takes_over_when_it_dies() {
    let (Some(storage), Some(nats)) = (Storage::postgres(), Nats::start()) else {
        return;
    };
    let (first, api_first) = serve(&storage, &nats).await;
    let (second, api_second) = serve(&storage, &nats).await;
    let js = jetstream(&nats).await;
    let owner = api::sign_up(&api_first, "Acme").await;
    let queue = api::open_queue_handled_by(&api_second, &owner, "Support").await;
    traffic(&api_first, &owner, queue, 2).await;
    traffic(&api_second, &owner, queue, 2).await;
    let events = logged(&storage).await;
    let want: BTreeSet<i64> = positions(&events).into_iter().collect();
    let got = published(&js, &want).await;
    assert_eq!(
        got.iter().map(|message| message.id).collect::<Vec<_>>(),
        positions(&events),
        "each event once, in log order, from both nodes' commands"
    );
    let (holder, other, api_other) = match (holds_lease(&first), holds_lease(&second)) {
        (true, false) => (first, second, api_second),
        (false, true) => (second, first, api_first),
        both => panic!("exactly one node holds the lease: {both:?}"),
    };

    holder.kill();
    traffic(&api_other, &owner, queue, 3).await;
    let events = logged(&storage).await;
    let want: BTreeSet<i64> = positions(&events).into_iter().collect();
    let got = published(&js, &want).await;
    let ids: BTreeSet<i64> = got.iter().map(|message| message.id).collect();
    assert_eq!(ids, want, "no gap after the take-over");
    assert_eq!(first_seen(&got), positions(&events), "in log order");
    assert!(holds_lease(&other), "the survivor holds the lease");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_ready_until_the_stream_exists() {
    let (Some(storage), Some(mut nats)) = (Storage::postgres(), Nats::start()) else {
        return;
    };
    nats.stop();
    let server = Server::start(&storage, &[("JONO_NATS_URL", &nats.url)]);
    // Without NATS the stream cannot exist: never ready, however long it waits.
    let mut ready = server.get("/readyz");
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        ready = server.get("/readyz");
    }
    assert_eq!(ready.0, 503, "{}", ready.1);
    assert!(ready.1.contains("JONO_EVENTS"), "{}", ready.1);
    // Waiting for NATS does not hold up a stop.
    let other = Server::start(&storage, &[("JONO_NATS_URL", &nats.url)]);
    std::thread::sleep(Duration::from_millis(500));
    let (status, stderr) = other.terminate_with_stderr();
    assert!(status.success(), "{status:?}: {stderr}");

    nats.resume();
    for _ in 0..300 {
        if ready.0 == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        ready = server.get("/readyz");
    }
    assert_eq!(ready.0, 200, "{}", ready.1);
    jetstream(&nats)
        .await
        .get_stream("JONO_EVENTS")
        .await
        .expect("the stream, once ready");
}

/// A `jono project` process, killed when dropped.
struct Projector(std::process::Child);

impl Drop for Projector {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jono_project_with_nats_publishes_for_nodes_without_it() {
    let (Some(storage), Some(nats)) = (Storage::postgres(), Nats::start()) else {
        return;
    };
    // The node serves without NATS; the projector process publishes.
    let (_server, api) = api::start(&storage);
    let _projector = Projector(
        std::process::Command::new(jono_tests::jono_bin())
            .arg("project")
            .args(storage.args())
            .args(["--nats-url", &nats.url])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let owner = api::sign_up(&api, "Acme").await;
    let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
    traffic(&api, &owner, queue, 2).await;
    let events = logged(&storage).await;
    let want: BTreeSet<i64> = positions(&events).into_iter().collect();
    let js = jetstream(&nats).await;
    // The stream appears once the projector made it.
    for _ in 0..200 {
        if js.get_stream("JONO_EVENTS").await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = published(&js, &want).await;
    assert_eq!(
        got.iter().map(|message| message.id).collect::<Vec<_>>(),
        positions(&events)
    );
}

/// JetStream's copies carry personal fields opened, so the stream keeps them no longer than
/// `JONO_NATS_MAX_AGE_HOURS` (erasure's horizon there); a stream an older Jono made to keep
/// them forever is brought down to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_keeps_events_no_longer_than_the_configured_age() {
    let (Some(storage), Some(nats)) = (Storage::postgres(), Nats::start()) else {
        return;
    };
    let js = jetstream(&nats).await;
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "JONO_EVENTS".to_owned(),
        subjects: vec!["jono.events.>".to_owned()],
        ..Default::default()
    })
    .await
    .expect("a stream without an age limit");
    let (_server, _api) = api::start_with(
        &storage,
        &[
            ("JONO_RATE_LIMITS", "off"),
            ("JONO_NATS_URL", &nats.url),
            ("JONO_NATS_MAX_AGE_HOURS", "2"),
        ],
    );
    let mut kept = Duration::ZERO;
    for _ in 0..100 {
        let mut stream = js.get_stream("JONO_EVENTS").await.expect("the stream");
        kept = stream.info().await.expect("its info").config.max_age;
        if kept == Duration::from_secs(2 * 3600) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(kept, Duration::from_secs(2 * 3600));
}
