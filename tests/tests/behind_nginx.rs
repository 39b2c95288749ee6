//! Two `jono serve` nodes on one Postgres behind nginx, configured by `deploy/nginx/jono.conf`
//! (no sticky sessions): an agent's WebSocket and a customer's messages go through the proxy; the
//! node holding the WebSocket is killed with `kill -9` mid-traffic, the agent reconnects through
//! nginx (which now reaches the other node) with `after`, and has every acknowledged message
//! exactly once, in order (API.md, WebSocket; issue 14).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use jono_tests::api::{self, Api};
use jono_tests::nats::Nats;
use jono_tests::nginx::Nginx;
use jono_tests::{Server, Storage};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// An agent's socket through nginx, subscribed to `topic` after `after`, and the node serving it.
async fn subscribe(base: &str, token: &str, topic: &str, after: Option<i64>) -> (Socket, String) {
    try_subscribe(base, token, topic, after).await.unwrap()
}

/// As `subscribe`, for a proxy whose node may be gone: the handshake's error instead of a panic.
async fn try_subscribe(
    base: &str,
    token: &str,
    topic: &str,
    after: Option<i64>,
) -> Result<(Socket, String), tokio_tungstenite::tungstenite::Error> {
    let url = format!("{}/v1/ws?token={token}", base.replace("http://", "ws://"));
    let (mut socket, response) = tokio_tungstenite::connect_async(url).await?;
    let node = response
        .headers()
        .get("x-jono-upstream")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    // `$upstream_addr` lists every node tried, the one that answered last.
    let node = node.rsplit(", ").next().unwrap_or_default().to_owned();
    let subscribe = json!({ "type": "subscribe", "topic": topic, "after": after });
    socket
        .send(Message::Text(subscribe.to_string().into()))
        .await?;
    Ok((socket, node))
}

/// Sends `text` as the customer through nginx until it is acknowledged, with one key (a retry
/// after a lost answer is the same message).
async fn send(api: &Api, token: &str, conversation: Uuid, text: &str) {
    let key = Uuid::new_v4().to_string();
    let body = json!({ "text": text }).to_string().into_bytes();
    for _ in 0..100 {
        let reply = api
            .try_raw(
                "POST",
                &format!("/v1/conversations/{conversation}/messages"),
                Some(token),
                Some(body.clone()),
                &[("Idempotency-Key", &key)],
            )
            .await;
        match reply {
            Ok(reply) if reply.status == 201 => return,
            // The proxy's 502 while the dead node is still in its rotation, or a lost answer.
            Ok(reply) if reply.status >= 500 => {}
            Ok(reply) => panic!("sending {text}: {} {}", reply.status, reply.text),
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{text} was never acknowledged");
}

/// Reads frames until the socket ends or `done` holds for the messages seen; returns whether it
/// ended. Each `MessageSent` event's position and text are pushed to `seen`.
async fn read(
    socket: &mut Socket,
    seen: &mut Vec<(i64, String)>,
    done: impl Fn(&[(i64, String)]) -> bool,
) -> bool {
    while !done(seen) {
        let frame = match tokio::time::timeout(Duration::from_secs(30), socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => text,
            Ok(Some(Ok(Message::Close(_)) | Err(_)) | None) => return true,
            Ok(Some(Ok(_))) => continue,
            Err(_) => panic!("no frame for 30 s; seen {seen:?}"),
        };
        let frame: Value = serde_json::from_str(frame.as_str()).unwrap();
        if frame["type"] == "error" {
            panic!("{frame}");
        }
        if frame["type"] == "event" && frame["event"]["type"] == "MessageSent" {
            let text = frame["event"]["text"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            seen.push((frame["position"].as_i64().unwrap(), text));
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_reconnecting_through_nginx_after_its_node_died_misses_nothing_and_gets_nothing_twice(
) {
    let (Some(storage), Some(nats)) = (Storage::postgres(), Nats::start()) else {
        return;
    };
    let env = [
        ("JONO_RATE_LIMITS", "off"),
        ("JONO_SIGNUP", "open"),
        ("JONO_NATS_URL", nats.url.as_str()),
        ("JONO_TRUSTED_PROXIES", "127.0.0.1/32"),
    ];
    let first = Server::start(&storage, &env);
    let second = Server::start(&storage, &env);
    let Some(nginx) = Nginx::start(&[first.addr, second.addr]) else {
        return;
    };
    let api = Api::new(&nginx.base);
    let owner = api::sign_up(&api, "Acme").await;
    let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
    let customer = api::join(&api, queue, json!({"name": "Carla"})).await;
    let conversation = api::pick(&api, &owner, queue).await;
    let topic = format!("conversation:{conversation}");

    let (mut socket, node) = subscribe(&nginx.base, owner.token().unwrap(), &topic, None).await;
    let (doomed, survivor) = if node == first.addr.to_string() {
        (first, second)
    } else {
        assert_eq!(
            node,
            second.addr.to_string(),
            "nginx names the node: {node:?}"
        );
        (second, first)
    };

    let sent: Vec<String> = (0..30).map(|n| format!("m{n}")).collect();
    let mut seen = Vec::new();
    for text in &sent[..10] {
        send(&api, &customer.token, conversation, text).await;
    }
    let ended = read(&mut socket, &mut seen, |seen| seen.len() >= 10).await;
    assert!(!ended, "the socket ended before the node died");

    // The node holding the socket dies mid-traffic; the customer keeps writing through nginx.
    let writer = {
        let api = Api::new(&nginx.base);
        let token = customer.token.clone();
        let texts = sent[10..].to_vec();
        tokio::spawn(async move {
            for text in &texts {
                send(&api, &token, conversation, text).await;
            }
        })
    };
    doomed.kill();
    assert!(
        read(&mut socket, &mut seen, |_| false).await,
        "the socket ends with its node"
    );

    // The agent reconnects through nginx, after the last position it saw.
    let after = seen.last().map(|(position, _)| *position);
    let (mut socket, node) = loop {
        if let Ok(Ok(subscribed)) = tokio::time::timeout(
            Duration::from_secs(5),
            try_subscribe(&nginx.base, owner.token().unwrap(), &topic, after),
        )
        .await
        {
            break subscribed;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        node,
        survivor.addr.to_string(),
        "the surviving node serves the reconnection"
    );
    writer.await.unwrap();
    let total = sent.len();
    let ended = read(&mut socket, &mut seen, |seen| seen.len() >= total).await;
    assert!(
        !ended,
        "the surviving node's socket stays open; seen {seen:?}"
    );
    let texts: Vec<&str> = seen.iter().map(|(_, text)| text.as_str()).collect();
    assert_eq!(texts, sent, "every acknowledged message once, in order");
    assert!(
        seen.windows(2).all(|pair| pair[0].0 < pair[1].0),
        "positions rise: {seen:?}"
    );
    drop(nginx);
    drop(survivor);
}
