//! Many WebSockets on one node: what an idle, subscribed socket costs the server in memory (its
//! resident set before and after, divided by the sockets), and how fast one event fans out to
//! every subscriber of a topic (each frame timed against the start of its POST).

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt, TryStreamExt};
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

use crate::client::Client;
use crate::figures::Samples;
use crate::scenarios::Org;
use crate::Fallible;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Sockets opened at once while subscribing.
const CONNECTING: usize = 64;

/// The resident memory of process `pid`, in bytes (`VmRSS` of `/proc/PID/status`).
pub fn resident_bytes(pid: u32) -> Fallible<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or("no VmRSS in /proc/PID/status")?;
    Ok(kib * 1024)
}

/// `count` WebSockets of the org's agent, each subscribed to `topic` after `after` (its history
/// from there read up to `subscribed`), and the position `subscribed` named. The client's
/// buffers are small: thousands of them stay cheap here too.
pub async fn subscribe(
    org: &Org,
    topic: &str,
    after: Option<i64>,
    count: usize,
) -> Fallible<(Vec<Socket>, i64)> {
    let url = format!(
        "{}/v1/ws?token={}",
        org.base.replacen("http://", "ws://", 1),
        org.token
    );
    futures::stream::iter(0..count)
        .map(|_| {
            let url = url.clone();
            async move {
                let config = WebSocketConfig::default()
                    .read_buffer_size(4096)
                    .write_buffer_size(0);
                let (mut socket, _) =
                    tokio_tungstenite::connect_async_with_config(url, Some(config), false).await?;
                let subscribe = json!({"type": "subscribe", "topic": topic, "after": after});
                socket.send(Message::text(subscribe.to_string())).await?;
                loop {
                    let frame = socket.next().await.ok_or("the WebSocket closed")??;
                    if let Message::Text(text) = frame {
                        let frame: Value = serde_json::from_str(&text)?;
                        match frame["type"].as_str() {
                            Some("subscribed") => {
                                let at = frame["position"].as_i64().unwrap_or(0);
                                return Ok::<_, crate::Error>((socket, at));
                            }
                            Some("error") => {
                                return Err(format!("subscribing to {topic}: {frame}").into())
                            }
                            _ => {}
                        }
                    }
                }
            }
        })
        .buffer_unordered(CONNECTING)
        .try_collect::<Vec<_>>()
        .await
        .map(|sockets| {
            let at = sockets.iter().map(|(_, at)| *at).max().unwrap_or(0);
            (sockets.into_iter().map(|(socket, _)| socket).collect(), at)
        })
}

/// What `count` idle subscribed sockets cost the server.
pub struct Idle {
    pub count: usize,
    pub before: u64,
    pub after: u64,
}

impl Idle {
    pub fn per_socket(&self) -> f64 {
        self.after.saturating_sub(self.before) as f64 / self.count.max(1) as f64
    }
}

/// Opens `count` sockets subscribed to the org's queue and leaves them idle; the server's
/// resident memory before and after (read once the last has settled for a second). They
/// subscribe after the queue's newest event, as a console that has its history does: a socket's
/// own cost, not a replay's (a replay's allocations would stay in the allocator's pools and
/// count as the sockets').
pub async fn idle(org: &Org, pid: u32, count: usize) -> Fallible<Idle> {
    let topic = format!("queue:{}", org.queue);
    let (first, head) = subscribe(org, &topic, None, 1).await?;
    drop(first);
    let before = resident_bytes(pid)?;
    let (sockets, _) = subscribe(org, &topic, Some(head), count).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = resident_bytes(pid)?;
    drop(sockets);
    Ok(Idle {
        count,
        before,
        after,
    })
}

/// What the fan-out run saw: frames expected and received, and their latencies.
pub struct Fanout {
    pub expected: u64,
    pub received: u64,
    pub samples: Samples,
}

/// `subscribers` sockets follow one conversation; `messages` messages are sent into it, one every
/// 100 ms, each text carrying its send time; every frame's arrival is timed against it.
pub async fn fanout(
    org: &Org,
    conversation: &str,
    subscribers: usize,
    messages: usize,
) -> Fallible<Fanout> {
    const PREFIX: &str = "fan ";
    let (sockets, _) = subscribe(
        org,
        &format!("conversation:{conversation}"),
        None,
        subscribers,
    )
    .await?;
    let epoch = Instant::now();
    let (latencies, mut arrived) = mpsc::unbounded_channel::<Duration>();
    let (stop_tx, stop_rx) = watch::channel(false);
    let readers: Vec<_> = sockets
        .into_iter()
        .map(|mut socket| {
            let latencies = latencies.clone();
            let mut stop = stop_rx.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stop.changed() => return,
                        frame = socket.next() => {
                            let now = Instant::now();
                            let Some(Ok(Message::Text(text))) = frame else {
                                if frame.is_none() { return; }
                                continue;
                            };
                            if let Some(sent) = sent_at(&text, PREFIX, epoch) {
                                let _ = latencies.send(now.saturating_duration_since(sent));
                            }
                        }
                    }
                }
            })
        })
        .collect();
    drop(latencies);
    let client = Client::new(&org.base)?;
    let mut sent = 0u64;
    for _ in 0..messages {
        let text = format!("{PREFIX}{}", epoch.elapsed().as_micros());
        client.send(&org.token, conversation, &text).await?;
        sent += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let expected = sent * subscribers as u64;
    let mut samples = Samples::default();
    let mut received = 0u64;
    let deadline = Instant::now() + Duration::from_secs(10);
    while received < expected {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        match tokio::time::timeout(deadline - now, arrived.recv()).await {
            Ok(Some(latency)) => {
                received += 1;
                samples.push(latency);
            }
            Ok(None) | Err(_) => break,
        }
    }
    let _ = stop_tx.send(true);
    for reader in readers {
        let _ = reader.await;
    }
    Ok(Fanout {
        expected,
        received,
        samples,
    })
}

/// When the message a `MessageSent` frame carries was sent (its text is `prefix` and the
/// microseconds since `epoch`).
pub fn sent_at(text: &str, prefix: &str, epoch: Instant) -> Option<Instant> {
    let frame: Value = serde_json::from_str(text).ok()?;
    if frame["type"] != "event" || frame["event"]["type"] != "MessageSent" {
        return None;
    }
    let micros: u64 = frame["event"]["text"]
        .as_str()?
        .strip_prefix(prefix)?
        .parse()
        .ok()?;
    Some(epoch + Duration::from_micros(micros))
}
