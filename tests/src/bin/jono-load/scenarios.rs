//! What the load tool does to a running Jono, as its users would: customers joining and agents
//! picking them, agents sending messages from many keep-alive connections at once, customers
//! watching their conversations over WebSockets, and long-lived conversations and queues.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt, TryStreamExt};
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch, Barrier};
use tokio_tungstenite::tungstenite::Message;

use crate::client::{Client, Customer};
use crate::figures::Samples;
use crate::Fallible;

/// How many setup calls run at once (joins, picks, WebSocket connections).
const SETUP_CONCURRENCY: usize = 8;

/// The organization a run works in: its owner (the one agent) and an open queue.
pub struct Org {
    /// The first node's address: setup and the single-connection figures go there.
    pub base: String,
    /// Every node's address (one without `--nodes`).
    pub bases: Vec<String>,
    pub organization: String,
    pub agent: String,
    pub token: String,
    pub queue: String,
}

impl Org {
    pub async fn new(bases: &[String]) -> Fallible<Self> {
        let base = bases.first().ok_or("no node")?;
        let client = Client::new(base)?;
        let (organization, agent, token) = client.sign_up().await?;
        let queue = client
            .open_queue(&token, &organization, &agent, "Load")
            .await?;
        Ok(Org {
            base: base.clone(),
            bases: bases.to_vec(),
            organization,
            agent,
            token,
            queue,
        })
    }

    /// `count` customers join `queue` and the agent picks each; every one stays active. In
    /// rounds of at most 64, so that few wait at once.
    pub async fn serve_customers(
        &self,
        queue: &str,
        count: usize,
        concurrency: usize,
    ) -> Fallible<Vec<Customer>> {
        let concurrency = concurrency.max(1);
        let clients = (0..concurrency)
            .map(|_| Client::new(&self.base))
            .collect::<Fallible<Vec<_>>>()?;
        let mut served = Vec::with_capacity(count);
        let mut next = 0;
        while next < count {
            let round = next..(next + 64).min(count);
            next = round.end;
            let customers: Vec<Customer> = futures::stream::iter(round.clone())
                .map(|number| {
                    let client = clients[number % clients.len()].clone();
                    async move { client.join(queue, number).await }
                })
                .buffer_unordered(concurrency)
                .try_collect()
                .await?;
            let picked: Vec<String> = futures::stream::iter(round)
                .map(|number| {
                    let client = clients[number % clients.len()].clone();
                    async move { client.pick(&self.token, queue).await }
                })
                .buffer_unordered(concurrency)
                .try_collect()
                .await?;
            for customer in &customers {
                if !picked.contains(&customer.conversation) {
                    return Err(format!(
                        "the picks did not pick conversation {}",
                        customer.conversation
                    )
                    .into());
                }
            }
            served.extend(customers);
        }
        Ok(served)
    }

    /// Customers for the throughput and live figures: `count` conversations, all picked.
    pub async fn conversations(&self, count: usize) -> Fallible<Vec<Customer>> {
        self.serve_customers(&self.queue, count, SETUP_CONCURRENCY)
            .await
    }
}

/// What a timed run of `SendMessage`s measured.
pub struct Sent {
    pub ok: u64,
    pub elapsed: Duration,
    pub samples: Samples,
    pub errors: Vec<String>,
}

impl Sent {
    pub fn per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }
}

/// How the senders pace themselves.
#[derive(Clone, Copy)]
pub enum Pace {
    /// Each client sends its next message as soon as the last is answered.
    Closed,
    /// `per_second` messages in all, evenly spread over the clients (open loop: a late answer
    /// does not delay the schedule of the other clients).
    Rate(f64),
}

/// `clients` keep-alive connections send messages for `duration`, spread over `conversations`
/// (client k sends to conversations k, k + clients, …, so none shares one with another while
/// there are at least as many conversations as clients). Each text is `prefix` followed by the
/// microseconds since `epoch` at which it was sent, for the WebSocket readers.
pub async fn send_messages(
    org: &Org,
    conversations: &[Customer],
    clients: usize,
    duration: Duration,
    pace: Pace,
    prefix: &'static str,
    epoch: Instant,
) -> Fallible<Sent> {
    if conversations.is_empty() {
        return Err("no conversations to send to".into());
    }
    let conversations: Arc<Vec<String>> = Arc::new(
        conversations
            .iter()
            .map(|c| c.conversation.clone())
            .collect(),
    );
    let barrier = Arc::new(Barrier::new(clients + 1));
    let mut tasks = Vec::new();
    for k in 0..clients {
        let client = Client::new(&org.bases[k % org.bases.len()])?;
        let token = org.token.clone();
        let conversations = conversations.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            // Open the connection before the clock starts.
            let warm = client.status("/healthz").await;
            barrier.wait().await;
            let start = Instant::now();
            let mut samples = Samples::default();
            let mut errors = Vec::new();
            if let Err(error) = warm {
                errors.push(error.to_string());
            }
            let mut ok = 0u64;
            let mut j = 0usize;
            loop {
                let slot = k + j * clients;
                if let Pace::Rate(rate) = pace {
                    let at = start + Duration::from_secs_f64(slot as f64 / rate);
                    if at >= start + duration {
                        break;
                    }
                    tokio::time::sleep_until(at.into()).await;
                } else if start.elapsed() >= duration {
                    break;
                }
                let conversation = &conversations[slot % conversations.len()];
                let began = Instant::now();
                let text = format!("{prefix}{}", began.duration_since(epoch).as_micros());
                match client.send(&token, conversation, &text).await {
                    Ok(()) => {
                        ok += 1;
                        samples.push(began.elapsed());
                    }
                    Err(error) => errors.push(error.to_string()),
                }
                j += 1;
            }
            (ok, samples, errors)
        }));
    }
    barrier.wait().await;
    let start = Instant::now();
    let mut sent = Sent {
        ok: 0,
        elapsed: Duration::ZERO,
        samples: Samples::default(),
        errors: Vec::new(),
    };
    for task in tasks {
        let (ok, samples, errors) = task.await?;
        sent.ok += ok;
        sent.samples.extend(samples);
        sent.errors.extend(errors);
    }
    sent.elapsed = start.elapsed();
    Ok(sent)
}

/// What the WebSocket readers saw.
pub struct Live {
    pub sent: Sent,
    pub received: u64,
    /// From the POST's start to the frame's arrival.
    pub samples: Samples,
}

/// Every conversation's customer subscribes to `conversation:ID` over its own WebSocket; then
/// messages are sent at `rate` over `clients` connections for `duration`, and each customer's
/// `MessageSent` frame is timed against the start of its POST.
pub async fn live(
    org: &Org,
    conversations: &[Customer],
    clients: usize,
    rate: f64,
    duration: Duration,
) -> Fallible<Live> {
    const PREFIX: &str = "live ";
    let epoch = Instant::now();
    // Conversation c is written to by clients of node c mod N (see `send_messages`): read it
    // from the next node.
    let nodes = org.bases.len();
    let (frames_tx, mut frames_rx) = mpsc::unbounded_channel::<Duration>();
    let (stop_tx, stop_rx) = watch::channel(false);
    let readers: Vec<tokio::task::JoinHandle<Fallible<()>>> = futures::stream::iter(
        conversations.iter().cloned().enumerate(),
    )
    .map(|(number, customer)| {
        let ws_base = org.bases[(number + 1) % nodes].replacen("http://", "ws://", 1);
        let url = format!("{ws_base}/v1/ws?token={}", customer.token);
        let frames = frames_tx.clone();
        let mut stop = stop_rx.clone();
        async move {
            let (mut socket, _) = tokio_tungstenite::connect_async(url).await?;
            let topic = format!("conversation:{}", customer.conversation);
            socket
                .send(Message::text(
                    json!({"type": "subscribe", "topic": topic, "after": null}).to_string(),
                ))
                .await?;
            // Past history (an earlier phase's messages) until `subscribed`.
            loop {
                let frame = socket.next().await.ok_or("the WebSocket closed")??;
                if let Message::Text(text) = frame {
                    let frame: Value = serde_json::from_str(&text)?;
                    match frame["type"].as_str() {
                        Some("subscribed") => break,
                        Some("error") => {
                            return Err(format!("subscribing to {topic}: {frame}").into())
                        }
                        _ => {}
                    }
                }
            }
            Ok::<_, crate::Error>(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stop.changed() => return Ok(()),
                        frame = socket.next() => {
                            let Some(frame) = frame else {
                                return Err("a WebSocket closed during the run".into());
                            };
                            let arrived = Instant::now();
                            if let Message::Text(text) = frame? {
                                if let Some(latency) = frame_latency(&text, epoch, arrived) {
                                    let _ = frames.send(latency);
                                }
                            }
                        }
                    }
                }
            }))
        }
    })
    .buffer_unordered(SETUP_CONCURRENCY * 4)
    .try_collect()
    .await?;
    drop(frames_tx);
    let sent = send_messages(
        org,
        conversations,
        clients,
        duration,
        Pace::Rate(rate),
        PREFIX,
        epoch,
    )
    .await?;
    // Every frame of an acknowledged message must arrive: wait for the stragglers, bounded.
    let mut samples = Samples::default();
    let mut received = 0u64;
    let deadline = Instant::now() + Duration::from_secs(10);
    while received < sent.ok {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        match tokio::time::timeout(deadline - now, frames_rx.recv()).await {
            Ok(Some(latency)) => {
                received += 1;
                samples.push(latency);
            }
            Ok(None) | Err(_) => break,
        }
    }
    let _ = stop_tx.send(true);
    for reader in readers {
        reader.await??;
    }
    Ok(Live {
        sent,
        received,
        samples,
    })
}

/// The latency a `MessageSent` frame of the live run carries (its text is the send time).
fn frame_latency(text: &str, epoch: Instant, arrived: Instant) -> Option<Duration> {
    let sent = crate::sockets::sent_at(text, "live ", epoch)?;
    Some(arrived.saturating_duration_since(sent))
}

/// Latencies of a conversation's first `samples` messages and of `samples` messages around the
/// `nth`, sent one after another by the agent into one fresh conversation.
pub struct History {
    pub first: Samples,
    pub around: Samples,
}

pub async fn history(org: &Org, nth: usize, samples: usize) -> Fallible<History> {
    let customer = org.serve_customers(&org.queue, 1, 1).await?;
    let conversation = &customer[0].conversation;
    let client = Client::new(&org.base)?;
    let around_from = nth.saturating_sub(samples / 2).max(samples + 1);
    let last = around_from + samples - 1;
    let mut first = Samples::default();
    let mut around = Samples::default();
    for seq in 1..=last {
        let began = Instant::now();
        client
            .send(&org.token, conversation, &format!("history {seq}"))
            .await?;
        if seq <= samples {
            first.push(began.elapsed());
        } else if seq >= around_from {
            around.push(began.elapsed());
        }
    }
    Ok(History { first, around })
}

/// Join and pick, one customer after another: `samples` in a fresh queue, then again once the
/// same queue has served `served` customers (every one left active).
pub struct Served {
    pub fresh: Samples,
    pub after: Samples,
}

pub async fn served(org: &Org, served: usize, samples: usize) -> Fallible<Served> {
    let client = Client::new(&org.base)?;
    let queue = client
        .open_queue(&org.token, &org.organization, &org.agent, "Served")
        .await?;
    let number = AtomicU64::new(0);
    let join_and_pick = || async {
        let began = Instant::now();
        let n = number.fetch_add(1, Ordering::Relaxed) as usize;
        let customer = client.join(&queue, n).await?;
        let picked = client.pick(&org.token, &queue).await?;
        if picked != customer.conversation {
            return Err(format!(
                "picked {picked}, not {} who alone waited",
                customer.conversation
            )
            .into());
        }
        Ok::<_, crate::Error>(began.elapsed())
    };
    let mut fresh = Samples::default();
    for _ in 0..samples {
        fresh.push(join_and_pick().await?);
    }
    org.serve_customers(&queue, served.saturating_sub(samples), 4)
        .await?;
    let mut after = Samples::default();
    for _ in 0..samples {
        after.push(join_and_pick().await?);
    }
    Ok(Served { fresh, after })
}
