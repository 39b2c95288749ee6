//! `GET /v1/ws` from the outside: a client that drops while messages keep arriving resumes
//! with `after` and gets each message exactly once, in order (invariant 7); topics are
//! authorized like HTTP (404 error frames); a customer's topic carries only its allow-list;
//! typing and signals reach the other participants; a client that stops reading is cut off
//! (1008/1013) instead of buffered without bound.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use jono_tests::api;
use jono_tests::Storage;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn connect(base: &str, token: &str) -> Socket {
    let url = format!("{}/v1/ws?token={token}", base.replace("http://", "ws://"));
    let (socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("a WebSocket");
    socket
}

/// A client whose kernel receive buffer is tiny, so that what it does not read stays with the
/// server instead of piling up in this machine's socket buffers.
async fn connect_small(base: &str, token: &str) -> Socket {
    let address: std::net::SocketAddr = base
        .trim_start_matches("http://")
        .parse()
        .expect("an address");
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket
        .set_recv_buffer_size(4096)
        .expect("a small receive buffer");
    let stream = socket.connect(address).await.expect("connect");
    let url = format!("ws://{address}/v1/ws?token={token}");
    let (socket, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream))
        .await
        .expect("a WebSocket");
    socket
}

async fn send(socket: &mut Socket, frame: Value) {
    socket
        .send(Message::Text(frame.to_string().into()))
        .await
        .expect("send a frame");
}

/// The next JSON frame, or `None` when the socket closed (or nothing came for 20 seconds).
async fn next(socket: &mut Socket) -> Option<Value> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(20), socket.next())
            .await
            .ok()??;
        match frame.ok()? {
            Message::Text(text) => return serde_json::from_str(text.as_str()).ok(),
            Message::Close(_) => return None,
            _ => continue,
        }
    }
}

/// Frames until one satisfies `stop`, which is returned last.
async fn until(socket: &mut Socket, stop: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut frames = Vec::new();
    while let Some(frame) = next(socket).await {
        let done = stop(&frame);
        frames.push(frame);
        if done {
            return frames;
        }
    }
    panic!("the socket closed before the expected frame; got {frames:?}")
}

async fn subscribe(socket: &mut Socket, topic: &str, after: Option<i64>) -> Vec<Value> {
    send(
        socket,
        json!({ "type": "subscribe", "topic": topic, "after": after }),
    )
    .await;
    until(socket, |f| {
        f["type"] == "subscribed" || f["type"] == "error"
    })
    .await
}

fn message_seqs(frames: &[Value]) -> Vec<i64> {
    frames
        .iter()
        .filter(|f| f["type"] == "event" && f["event"]["type"] == "MessageSent")
        .map(|f| f["event"]["seq"].as_i64().expect("a seq"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_reconnects_with_after_gets_every_message_exactly_once() {
    let storage = Storage::embedded();
    let (server, api) = api::start(&storage);
    let owner = api::sign_up(&api, "Acme").await;
    let conversation = api::create_channel(&api, &owner, "Team").await;
    let topic = format!("conversation:{conversation}");

    // Messages keep arriving while the client comes and goes.
    let writer = {
        let api = api.clone();
        let token = owner.token.clone();
        tokio::spawn(async move {
            for n in 1..=60 {
                api::send_message(&api, Some(&token), conversation, &format!("message {n}")).await;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };

    let mut seen: Vec<i64> = Vec::new();
    let mut last: Option<i64> = None;
    for _ in 0..6 {
        let mut socket = connect(&server.base, &owner.token).await;
        let frames = subscribe(&mut socket, &topic, last).await;
        assert_eq!(frames.last().unwrap()["type"], "subscribed", "{frames:?}");
        let mut all = frames;
        // Read a few live frames, then drop the connection mid-stream.
        for _ in 0..5 {
            match tokio::time::timeout(Duration::from_millis(300), next(&mut socket)).await {
                Ok(Some(frame)) => all.push(frame),
                _ => break,
            }
        }
        for frame in &all {
            if let Some(position) = frame["position"].as_i64() {
                if frame["type"] == "event" {
                    assert!(
                        last.is_none_or(|last| position > last),
                        "positions only rise: {frame}"
                    );
                    last = Some(position);
                }
            }
        }
        seen.extend(message_seqs(&all));
        drop(socket);
    }
    writer.await.unwrap();
    // One last resume picks up whatever is left.
    let mut socket = connect(&server.base, &owner.token).await;
    let frames = subscribe(&mut socket, &topic, last).await;
    seen.extend(message_seqs(&frames));
    assert_eq!(
        seen,
        (1..=60).collect::<Vec<_>>(),
        "each message exactly once, in order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn topics_are_authorized_like_http() {
    let storage = Storage::embedded();
    let (server, api) = api::start(&storage);
    let owner = api::sign_up(&api, "Acme").await;
    let outsider = api::sign_up(&api, "Other").await;
    let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
    let customer = api::join(&api, queue, json!({"name": "Ann"})).await;
    let other_customer = api::join(&api, queue, json!({"name": "Bob"})).await;
    let conversation = api::create_channel(&api, &owner, "Team").await;

    let mut socket = connect(&server.base, &outsider.token).await;
    for topic in [
        format!("conversation:{conversation}"),
        format!("queue:{queue}"),
        format!("conversation:{}", customer.conversation_id),
    ] {
        let frames = subscribe(&mut socket, &topic, None).await;
        let last = frames.last().unwrap();
        assert_eq!(last["type"], "error", "{topic}: {last}");
        assert_eq!(last["status"], 404, "{topic}: {last}");
    }
    let mut socket = connect(&server.base, &other_customer.token).await;
    for topic in [
        format!("conversation:{}", customer.conversation_id),
        format!("queue:{queue}"),
        "activity".to_owned(),
    ] {
        let frames = subscribe(&mut socket, &topic, None).await;
        assert_eq!(frames.last().unwrap()["status"], 404, "{topic}: {frames:?}");
    }
    // Without a token there is no socket at all.
    let url = format!("{}/v1/ws", server.base.replace("http://", "ws://"));
    assert!(
        tokio_tungstenite::connect_async(url).await.is_err(),
        "no token, no socket"
    );
    // The owner sees them all.
    let mut socket = connect(&server.base, &owner.token).await;
    for topic in [
        format!("conversation:{conversation}"),
        format!("queue:{queue}"),
        "activity".to_owned(),
    ] {
        let frames = subscribe(&mut socket, &topic, None).await;
        assert_eq!(
            frames.last().unwrap()["type"],
            "subscribed",
            "{topic}: {frames:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_customer_hears_its_messages_and_pick_but_never_notes_tags_or_metadata() {
    let storage = Storage::embedded();
    let (server, api) = api::start(&storage);
    let owner = api::sign_up(&api, "Acme").await;
    let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
    let customer = api::join(
        &api,
        queue,
        json!({"name": "Ann", "email": "ann@example.com"}),
    )
    .await;
    let conversation = customer.conversation_id;

    let mut socket = connect(&server.base, &customer.token).await;
    let frames = subscribe(&mut socket, &format!("conversation:{conversation}"), None).await;
    assert_eq!(frames.last().unwrap()["type"], "subscribed", "{frames:?}");
    let place = until(&mut socket, |f| f["type"] == "queue").await;
    assert_eq!(place.last().unwrap()["queue_position"], 1);

    assert_eq!(api::pick(&api, &owner, queue).await, conversation);
    let path = format!("/v1/conversations/{conversation}");
    api.post(
        &format!("{path}/notes"),
        owner.token(),
        json!({"text": "secret note"}),
    )
    .await
    .expect(201, "a note");
    api.post(
        &format!("{path}/tags"),
        owner.token(),
        json!({"tag": "vip"}),
    )
    .await
    .expect(204, "a tag");
    api.put(
        &format!("{path}/metadata"),
        owner.token(),
        json!({"name": "Ann", "plan": "gold"}),
    )
    .await
    .expect(204, "metadata");
    api::send_message(&api, owner.token(), conversation, "Hello Ann").await;

    let frames = until(&mut socket, |f| f["event"]["type"] == "MessageSent").await;
    let text = serde_json::to_string(&frames).unwrap();
    assert!(
        frames
            .iter()
            .any(|f| f["event"]["type"] == "CustomerPicked"),
        "the pick reaches the customer: {text}"
    );
    for secret in [
        "secret note",
        "vip",
        "gold",
        "NoteAdded",
        "TagAdded",
        "CustomerMetadataSet",
        "ann@example.com",
    ] {
        assert!(
            !text.contains(secret),
            "{secret:?} reached the customer: {text}"
        );
    }
    let message = frames.last().unwrap();
    assert_eq!(message["event"]["text"], "Hello Ann");
    assert!(
        message["event"]["at"].is_string(),
        "events carry their time: {message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn typing_and_signals_reach_the_other_participants() {
    let storage = Storage::embedded();
    let (server, api) = api::start(&storage);
    let owner = api::sign_up(&api, "Acme").await;
    let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
    let customer = api::join(&api, queue, json!({"name": "Ann"})).await;
    let conversation = customer.conversation_id;
    api::pick(&api, &owner, queue).await;
    let topic = format!("conversation:{conversation}");

    let mut agent = connect(&server.base, &owner.token).await;
    subscribe(&mut agent, &topic, None).await;
    let mut client = connect(&server.base, &customer.token).await;
    subscribe(&mut client, &topic, None).await;

    send(
        &mut client,
        json!({"type": "typing", "conversation": conversation}),
    )
    .await;
    let typing = until(&mut agent, |f| f["type"] == "typing").await;
    let typing = typing.last().unwrap();
    assert_eq!(typing["conversation"], conversation.to_string());
    assert_eq!(typing["author"]["kind"], "customer");
    assert_eq!(typing["author"]["name"], "Ann");

    let offer = json!({"sdp": "v=0 offer", "kind": "offer"});
    send(
        &mut agent,
        json!({"type": "signal", "conversation": conversation, "data": offer}),
    )
    .await;
    let signal = until(&mut client, |f| f["type"] == "signal").await;
    let signal = signal.last().unwrap();
    assert_eq!(signal["data"], offer);
    assert_eq!(signal["from"]["kind"], "agent");
    assert_eq!(signal["from"]["id"], owner.agent_id.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_stops_reading_is_disconnected_not_buffered() {
    let storage = Storage::embedded();
    let (server, api) = api::start(&storage);
    let owner = api::sign_up(&api, "Acme").await;
    let conversation = api::create_channel(&api, &owner, "Team").await;
    let mut lazy = connect_small(&server.base, &owner.token).await;
    subscribe(&mut lazy, &format!("conversation:{conversation}"), None).await;

    // Far more than the socket buffers and the server's per-client queue hold.
    let text = "x".repeat(9_000);
    let mut writers = Vec::new();
    for _ in 0..8 {
        let (api, token, text) = (api.clone(), owner.token.clone(), text.clone());
        writers.push(tokio::spawn(async move {
            for _ in 0..150 {
                api::send_message(&api, Some(&token), conversation, &text).await;
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    // The client goes on not reading for longer than the server waits for room in its queue
    // (10 s). Not while the writers run: a server that takes all 1,200 messages in less than
    // that (each command folds only what is new) would otherwise see the client catch up and
    // rightly keep it, and the pings (every 20 s) would keep the loop below reading forever.
    tokio::time::sleep(Duration::from_secs(15)).await;
    // Now read: what was buffered comes first, then the end of the connection — with its
    // reason (1013) when the close frame still fit, or the bare end of the stream when even
    // that could not be written to a client that read nothing for so long.
    let mut code = None;
    let mut messages = 0;
    let mut ended = false;
    // Bounded, so that a server that keeps the session fails the test instead of hanging it.
    for _ in 0..2_000 {
        match tokio::time::timeout(Duration::from_secs(30), lazy.next()).await {
            Ok(Some(Ok(Message::Close(close)))) => {
                code = close.map(|close| u16::from(close.code));
                ended = true;
                break;
            }
            Ok(Some(Ok(Message::Text(_)))) => {
                messages += 1;
                if messages >= 1_200 {
                    // Everything came through: the session was kept (the assertions say so).
                    break;
                }
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_))) | Ok(None) => {
                ended = true;
                break;
            }
            Err(_) => break,
        }
    }
    assert!(
        ended,
        "the server ended the connection (it did not just go quiet) after {messages} frames"
    );
    assert!(
        code.is_none() || matches!(code, Some(1008 | 1013)),
        "closed as a slow reader, got {code:?} after {messages} frames"
    );
    assert!(
        messages < 1_200,
        "not everything was buffered for it: {messages}"
    );
    // The operator sees it (counted before the close frame is tried).
    if code != Some(1008) {
        let (_, metrics) = server.get("/metrics");
        assert!(
            metrics
                .lines()
                .any(|line| line == r#"jono_websocket_slow_closes_total{kind="agent"} 1"#),
            "{metrics}"
        );
    }
    // The server is fine, and the client can resume.
    assert_eq!(server.get("/readyz").0, 200);
    let mut again = connect(&server.base, &owner.token).await;
    let frames = subscribe(&mut again, &format!("conversation:{conversation}"), None).await;
    let seqs: BTreeMap<i64, ()> = message_seqs(&frames).into_iter().map(|s| (s, ())).collect();
    assert_eq!(
        seqs.len(),
        1_200,
        "a resume from the start replays every message"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_frame_over_64_kib_closes_the_socket() {
    let storage = Storage::embedded();
    let (server, api) = api::start(&storage);
    let owner = api::sign_up(&api, "Acme").await;
    let mut socket = connect(&server.base, &owner.token).await;
    // Within the limit: an unknown frame type is answered with an error frame.
    send(
        &mut socket,
        json!({"type": "nonsense", "pad": "x".repeat(60 * 1024)}),
    )
    .await;
    let reply = next(&mut socket).await.expect("an answer");
    assert_eq!(reply["type"], "error");
    assert_eq!(reply["status"], 400);
    // Over the limit: the server closes the connection with 1009 (message too big).
    let _ = socket
        .send(Message::Text("x".repeat(64 * 1024 + 1).into()))
        .await;
    let mut code = None;
    for _ in 0..5 {
        match tokio::time::timeout(Duration::from_secs(10), socket.next()).await {
            Ok(Some(Ok(Message::Close(close)))) => {
                code = close.map(|close| u16::from(close.code));
                break;
            }
            Ok(None) | Ok(Some(Err(_))) | Err(_) => break,
            Ok(Some(Ok(_))) => continue,
        }
    }
    assert_eq!(
        code,
        Some(1009),
        "an oversized frame closes the socket with 1009"
    );
    assert_eq!(server.get("/healthz").0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logout_closes_the_tokens_open_sockets_and_presence_follows_them() {
    let storage = Storage::embedded();
    let (server, api) = api::start(&storage);
    let owner = api::sign_up(&api, "Acme").await;
    let members = format!("/v1/orgs/{}/members", owner.organization_id);
    let status_of = |reply: api::Reply| {
        reply.body[0]["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };

    assert_eq!(
        status_of(
            api.get(&members, owner.token())
                .await
                .expect(200, "members")
        ),
        "offline"
    );
    let mut socket = connect(&server.base, &owner.token).await;
    subscribe(&mut socket, "activity", None).await;
    let online = api
        .get(&members, owner.token())
        .await
        .expect(200, "members");
    assert_eq!(online.body[0]["online"], true, "{}", online.text);
    assert_eq!(status_of(online), "online");
    api.put("/v1/me/status", owner.token(), json!({"status": "away"}))
        .await
        .expect(204, "away");
    assert_eq!(
        status_of(
            api.get(&members, owner.token())
                .await
                .expect(200, "members")
        ),
        "away"
    );
    api.put("/v1/me/status", owner.token(), json!({"status": "asleep"}))
        .await
        .expect_problem(422, "no such status");

    // A second session of the same agent stays; the logged-out one is closed at once.
    let other = api::login(&api, &owner.email, &owner.password).await;
    let mut kept = connect(&server.base, &other).await;
    subscribe(&mut kept, "activity", None).await;
    api.call("POST", "/v1/logout", owner.token(), None)
        .await
        .expect(204, "logout");
    let mut code = None;
    while let Ok(Some(frame)) = tokio::time::timeout(Duration::from_secs(10), socket.next()).await {
        if let Ok(Message::Close(Some(close))) = frame {
            code = Some(u16::from(close.code));
            break;
        }
    }
    assert_eq!(
        code,
        Some(1008),
        "the logged-out token's socket is closed as a policy matter"
    );
    send(
        &mut kept,
        json!({"type": "subscribe", "topic": "activity", "after": null}),
    )
    .await;
    let frames = until(&mut kept, |f| f["type"] == "subscribed").await;
    assert_eq!(
        frames.last().unwrap()["type"],
        "subscribed",
        "the other session lives on"
    );
}

/// The `activity` topic chooses events as `GET /v1/activity` does, and its frames carry the
/// events themselves, flat, plus `at` — the same `event` as the queue's own topic sends.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_activity_topic_carries_whole_events() {
    let storage = Storage::embedded();
    let (server, api) = api::start(&storage);
    let owner = api::sign_up(&api, "Acme").await;
    let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
    let customer = api::join(&api, queue, json!({"name": "Ann"})).await;
    assert_eq!(
        api::pick(&api, &owner, queue).await,
        customer.conversation_id
    );

    let mut socket = connect(&server.base, &owner.token).await;
    let activity = subscribe(&mut socket, "activity", None).await;
    let queue_topic = format!("queue:{queue}");
    let of_queue = subscribe(&mut socket, &queue_topic, None).await;
    let types: Vec<&str> = activity
        .iter()
        .filter(|frame| frame["type"] == "event")
        .map(|frame| frame["event"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["QueueOpened", "CustomerJoinedQueue", "CustomerPicked"],
        "{activity:?}"
    );
    for frame in activity.iter().filter(|frame| frame["type"] == "event") {
        let same = of_queue
            .iter()
            .find(|other| other["position"] == frame["position"])
            .unwrap_or_else(|| panic!("the queue topic has {frame}"));
        assert_eq!(frame["event"], same["event"], "{frame}");
        assert!(frame["event"]["at"].is_string(), "{frame}");
    }
    let joined = activity
        .iter()
        .find(|frame| frame["event"]["type"] == "CustomerJoinedQueue")
        .unwrap();
    assert_eq!(
        joined["event"]["conversation_id"],
        json!(customer.conversation_id)
    );
    assert_eq!(joined["event"]["queue_position"], 1, "{joined}");
}

/// A waiting customer hears its place whenever its line moves and when it moves to another
/// line; activity in other queues does not change what it hears.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_waiting_customer_hears_its_place_move() {
    let storage = Storage::embedded();
    let (server, api) = api::start_with(&storage, &[("JONO_RATE_LIMITS", "off")]);
    let owner = api::sign_up(&api, "Acme").await;
    let sales = api::open_queue_handled_by(&api, &owner, "Sales").await;
    let support = api::open_queue_handled_by(&api, &owner, "Support").await;
    let first = api::join(&api, sales, json!({})).await;
    let second = api::join(&api, sales, json!({})).await;
    let mut socket = connect(&server.base, &second.token).await;
    let topic = format!("conversation:{}", second.conversation_id);
    subscribe(&mut socket, &topic, None).await;
    let place = until(&mut socket, |f| f["type"] == "queue").await;
    assert_eq!(place.last().unwrap()["queue_position"], 2);

    // Another queue's customers come and go: nothing to hear.
    api::join(&api, support, json!({})).await;
    // Its own line moves: the first customer is picked.
    assert_eq!(api::pick(&api, &owner, sales).await, first.conversation_id);
    let place = until(&mut socket, |f| f["type"] == "queue").await;
    assert_eq!(
        place.len(),
        1,
        "only its own line's move is heard: {place:?}"
    );
    assert_eq!(place[0]["queue_position"], 1);

    let to_support = |conversation: uuid::Uuid| {
        let (api, owner) = (&api, &owner);
        async move {
            api.post(
                &format!("/v1/conversations/{conversation}/transfer"),
                owner.token(),
                json!({ "queue_id": support }),
            )
            .await
            .expect(204, "a transfer");
        }
    };
    // Transferred to Support, where one customer already waits: first there.
    to_support(second.conversation_id).await;
    let place = until(&mut socket, |f| f["type"] == "queue").await;
    assert_eq!(place.last().unwrap()["queue_position"], 1, "{place:?}");
    // Its new line moves under it: another customer transferred in later goes ahead of it,
    // and is picked. Only Support's stream says so: it hears the line it waits in now.
    let third = api::join(&api, sales, json!({})).await;
    to_support(third.conversation_id).await;
    let place = until(&mut socket, |f| f["type"] == "queue").await;
    assert_eq!(place.last().unwrap()["queue_position"], 2, "{place:?}");
    assert_eq!(
        api::pick(&api, &owner, support).await,
        third.conversation_id
    );
    let place = until(&mut socket, |f| f["type"] == "queue").await;
    assert_eq!(place.last().unwrap()["queue_position"], 1, "{place:?}");
    // Picked there before the customer who already waited.
    assert_eq!(
        api::pick(&api, &owner, support).await,
        second.conversation_id
    );
}

#[tokio::test]
async fn removal_from_one_organization_ends_exactly_its_subscriptions_at_once() {
    let storage = Storage::embedded();
    let (_server, api) = api::start(&storage);
    let acme = api::sign_up(&api, "Acme").await;
    let globex = api::sign_up(&api, "Globex").await;
    // Globex's owner is also an agent of Acme.
    let invitation = api::invite(&api, &acme, &globex.email, "agent").await;
    api.post(
        &format!("/v1/invitations/{invitation}/accept"),
        globex.token(),
        json!({}),
    )
    .await
    .expect(201, "an existing account accepts");
    let acme_queue = api::create_queue(&api, &acme, "Acme support").await;
    let globex_queue = api::create_queue(&api, &globex, "Globex support").await;

    let mut socket = connect(&api.base, &globex.token).await;
    let acme_topic = format!("queue:{acme_queue}");
    let globex_topic = format!("queue:{globex_queue}");
    let last = subscribe(&mut socket, &acme_topic, None).await;
    assert_eq!(last.last().unwrap()["type"], "subscribed", "{last:?}");
    let last = subscribe(&mut socket, &globex_topic, None).await;
    assert_eq!(last.last().unwrap()["type"], "subscribed", "{last:?}");

    api.delete(
        &format!(
            "/v1/orgs/{}/members/{}",
            acme.organization_id, globex.agent_id
        ),
        acme.token(),
    )
    .await
    .expect(204, "removed from Acme");
    let removed = std::time::Instant::now();
    let frames = until(&mut socket, |frame| {
        frame["type"] == "error" && frame["topic"] == acme_topic.as_str()
    })
    .await;
    // At once, not at the next periodic check (API.md: access ends at once).
    assert!(
        removed.elapsed() < Duration::from_secs(3),
        "Acme's topic ended {:?} after the removal",
        removed.elapsed()
    );
    assert_eq!(frames.last().unwrap()["status"], 404, "{frames:?}");

    // Acme's queue is no longer followed; Globex's still is, on the same socket.
    api::open_queue(&api, &acme, acme_queue).await;
    api::open_queue(&api, &globex, globex_queue).await;
    let frames = until(&mut socket, |frame| {
        frame["type"] == "event" && frame["topic"] == globex_topic.as_str()
    })
    .await;
    assert!(
        frames
            .iter()
            .all(|frame| frame["topic"] != acme_topic.as_str()),
        "nothing of Acme after the removal: {frames:?}"
    );
    assert_eq!(frames.last().unwrap()["event"]["type"], "QueueOpened");
}

#[tokio::test]
async fn typing_and_signal_frames_beyond_their_rate_are_refused_429() {
    let storage = Storage::embedded();
    // The limits on: the default of a deployment.
    let (_server, api) = api::start_with(&storage, &[]);
    let owner = api::sign_up(&api, "Acme").await;
    let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
    let customer = api::join(&api, queue, json!({})).await;
    let conversation = api::pick(&api, &owner, queue).await;
    let mut client = connect(&api.base, &customer.token).await;
    // Typing: 2 a second. Ten at once are more than that.
    for _ in 0..10 {
        send(
            &mut client,
            json!({"type": "typing", "conversation": conversation}),
        )
        .await;
    }
    let refused = until(&mut client, |f| f["type"] == "error" && f["status"] == 429).await;
    let refused = refused.last().unwrap();
    assert!(
        refused["detail"].as_str().unwrap().contains("typing"),
        "{refused}"
    );
    // Signals: 50 a second. A hundred at once are more than that.
    for _ in 0..100 {
        send(
            &mut client,
            json!({"type": "signal", "conversation": conversation, "data": {"candidate": "x"}}),
        )
        .await;
    }
    until(&mut client, |f| {
        f["type"] == "error"
            && f["status"] == 429
            && f["detail"].as_str().is_some_and(|d| d.contains("signal"))
    })
    .await;
}

/// A conversation's replay holds what its queue recorded of it — its join, which the queue
/// appended just before the conversation's first event, and its pick — and nothing of the
/// others the queue served before or after. The queue is read only from the conversation's
/// start on (replay.rs), so this fails if that start is one event too late.
#[tokio::test]
async fn a_conversations_replay_holds_its_queues_events_of_it_from_its_join_on() {
    let storage = Storage::embedded();
    let (server, api) = api::start(&storage);
    let owner = api::sign_up(&api, "Acme").await;
    let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
    let earlier = api::join(&api, queue, json!({"name": "Bea"})).await;
    let customer = api::join(&api, queue, json!({"name": "Ann"})).await;
    let later = api::join(&api, queue, json!({"name": "Cid"})).await;
    assert_eq!(
        api::pick(&api, &owner, queue).await,
        earlier.conversation_id
    );
    assert_eq!(
        api::pick(&api, &owner, queue).await,
        customer.conversation_id
    );
    assert_eq!(api::pick(&api, &owner, queue).await, later.conversation_id);

    let mut socket = connect(&server.base, &owner.token).await;
    let conversation = customer.conversation_id.to_string();
    let frames = subscribe(&mut socket, &format!("conversation:{conversation}"), None).await;
    assert_eq!(frames.last().unwrap()["type"], "subscribed", "{frames:?}");
    let events: Vec<&Value> = frames
        .iter()
        .filter(|frame| frame["type"] == "event")
        .map(|frame| &frame["event"])
        .collect();
    for event in &events {
        assert_eq!(
            event["conversation_id"], conversation,
            "only this conversation's events: {event}"
        );
    }
    let types: Vec<&str> = events
        .iter()
        .filter_map(|event| event["type"].as_str())
        .collect();
    for expected in ["CustomerJoinedQueue", "CustomerPicked"] {
        assert_eq!(
            types.iter().filter(|t| **t == expected).count(),
            1,
            "{expected} once in the replay: {types:?}"
        );
    }
}

/// The events of a conversation's topic in `frames`, as `(position, type)`.
fn positions_and_types(frames: &[Value]) -> Vec<(i64, String)> {
    frames
        .iter()
        .filter(|frame| frame["type"] == "event")
        .map(|frame| {
            (
                frame["position"].as_i64().expect("a position"),
                frame["event"]["type"].as_str().expect("a type").to_owned(),
            )
        })
        .collect()
}

/// A conversation's replay from any position is exactly what a subscriber saw live: through
/// a transfer to a second queue, a pick there, its end, a reopening, a transfer back, a pick
/// and a second end, while other customers join and are served in both queues before, during
/// and between. The replay reads its queues only in the stretches the conversation was open
/// in (replay.rs, `open_periods`): this fails if a stretch begins or ends an event too early
/// or too late, or if the queues' events of other customers leak in.
#[tokio::test]
async fn a_conversations_replay_from_any_position_is_what_a_live_subscriber_saw() {
    let storage = Storage::embedded();
    let (server, api) = api::start(&storage);
    let owner = api::sign_up(&api, "Acme").await;
    let support = api::open_queue_handled_by(&api, &owner, "Support").await;
    let billing = api::open_queue_handled_by(&api, &owner, "Billing").await;
    let token = owner.token();
    let post = |path: String| {
        let api = &api;
        async move { api.post(&path, token, json!({})).await }
    };
    let transfer = |id: uuid::Uuid, queue: uuid::Uuid| {
        let api = &api;
        async move {
            api.post(
                &format!("/v1/conversations/{id}/transfer"),
                token,
                json!({ "queue_id": queue }),
            )
            .await
            .expect(204, "a transfer");
        }
    };
    let bea = api::join(&api, support, json!({"name": "Bea"})).await;
    assert_eq!(api::pick(&api, &owner, support).await, bea.conversation_id);
    let ann = api::join(&api, support, json!({"name": "Ann"})).await;
    let id = ann.conversation_id;
    let topic = format!("conversation:{id}");
    let mut live = connect(&server.base, &owner.token).await;
    let mut seen = subscribe(&mut live, &topic, None).await;

    let cid = api::join(&api, support, json!({"name": "Cid"})).await;
    assert_eq!(api::pick(&api, &owner, support).await, id);
    transfer(id, billing).await;
    let dan = api::join(&api, billing, json!({"name": "Dan"})).await;
    assert_eq!(api::pick(&api, &owner, billing).await, id);
    post(format!("/v1/conversations/{id}/end"))
        .await
        .expect(204, "the first end");
    // Between the end and the reopening, both queues serve others.
    assert_eq!(api::pick(&api, &owner, support).await, cid.conversation_id);
    assert_eq!(api::pick(&api, &owner, billing).await, dan.conversation_id);
    let eve = api::join(&api, billing, json!({"name": "Eve"})).await;
    post(format!("/v1/conversations/{id}/reopen"))
        .await
        .expect(204, "the reopening");
    transfer(id, support).await;
    assert_eq!(api::pick(&api, &owner, support).await, id);
    assert_eq!(api::pick(&api, &owner, billing).await, eve.conversation_id);
    post(format!("/v1/conversations/{id}/end"))
        .await
        .expect(204, "the second end");
    let fin = api::join(&api, support, json!({"name": "Fin"})).await;
    assert_eq!(api::pick(&api, &owner, support).await, fin.conversation_id);

    let ends = |frames: &[Value]| {
        positions_and_types(frames)
            .iter()
            .filter(|(_, kind)| kind == "ConversationEnded")
            .count()
    };
    while ends(&seen) < 2 {
        seen.push(next(&mut live).await.expect("a live frame"));
    }
    let seen = positions_and_types(&seen);
    let kinds: Vec<&str> = seen.iter().map(|(_, kind)| kind.as_str()).collect();
    for (kind, times) in [
        ("CustomerJoinedQueue", 1),
        ("CustomerPicked", 3),
        ("ConversationTransferred", 2),
        ("ConversationRequeued", 2),
        ("AgentAssigned", 3),
        ("ConversationEnded", 2),
        ("ConversationReopened", 1),
    ] {
        assert_eq!(
            kinds.iter().filter(|k| **k == kind).count(),
            times,
            "{kind} {times} times live: {kinds:?}"
        );
    }

    let mut replaying = connect(&server.base, &owner.token).await;
    let mut from = vec![None];
    from.extend(seen.iter().map(|(position, _)| Some(*position)));
    for after in from {
        let replayed = subscribe(&mut replaying, &topic, after).await;
        let expected: Vec<(i64, String)> = seen
            .iter()
            .filter(|(position, _)| after.is_none_or(|after| *position > after))
            .cloned()
            .collect();
        assert_eq!(
            positions_and_types(&replayed),
            expected,
            "the replay after {after:?}"
        );
        send(
            &mut replaying,
            json!({"type": "unsubscribe", "topic": topic}),
        )
        .await;
    }
}
