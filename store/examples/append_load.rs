//! The log's writer alone under concurrent appends, without HTTP, read models or commands: how
//! many one-event appends a second the store commits, and what each costs this process's CPU.
//!
//!   append_load URL|DATA_DIR [WRITERS] [SECONDS]
//!
//! A `postgres://` URL runs in a fresh schema of that database (dropped after); anything else is
//! a fresh SQLite data directory to create. Each writer appends to a stream of its own, one
//! event shaped like a stored `MessageSent` (≈330 bytes of JSON) per request, as fast as it is
//! answered (each answer is durable). Defaults: 32 writers, 5 seconds.

use std::time::{Duration, Instant};

use serde_json::json;
use store::{AppendRequest, EventStore, NewEvent};
use uuid::Uuid;

fn message(stream: &str, sequence: i64) -> NewEvent {
    NewEvent {
        event_id: Uuid::new_v4(),
        aggregate_type: "conversation".into(),
        aggregate_id: stream.into(),
        sequence,
        event_type: "MessageSent".into(),
        event_version: "1".into(),
        payload: json!({
            "type": "MessageSent",
            "message_id": Uuid::new_v4(),
            "author": {"kind": "agent", "agent_id": "3f9a4c1e-agent"},
            "text": "Thanks for waiting, I am looking into your order right now and will be back in a moment.",
            "attachments": [],
            "sent_at": "2026-12-06T13:00:00.000000Z",
        }),
        actor: Some(json!({"agent_id": "3f9a4c1e-agent"})),
    }
}

/// This process's CPU time so far (user + system).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map_or(vec![], |(_, rest)| rest.split(' ').collect());
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<f64>().ok()))
        .sum();
    ticks / 100.0
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(target) = args.get(1) else {
        eprintln!("usage: append_load URL|DATA_DIR [WRITERS] [SECONDS]");
        std::process::exit(2);
    };
    let writers: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(32);
    let seconds: u64 = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(5);

    let mut schema = None;
    let store = if target.starts_with("postgres") {
        let name = format!("jono_append_load_{}", Uuid::new_v4().simple());
        let pool = sqlx::PgPool::connect(target).await.expect("connect");
        sqlx::query(&format!("CREATE SCHEMA {name}"))
            .execute(&pool)
            .await
            .expect("create a schema");
        schema = Some((pool, name.clone()));
        let separator = if target.contains('?') { '&' } else { '?' };
        let url = format!("{target}{separator}options=-csearch_path%3D{name}");
        EventStore::open_postgres(&url).await.expect("open")
    } else {
        EventStore::open_sqlite(std::path::Path::new(target))
            .await
            .expect("open")
    };

    let until = Instant::now() + Duration::from_secs(seconds);
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let stream = format!("load-{w}-{}", Uuid::new_v4().simple());
                let mut latencies = Vec::new();
                let mut sequence = 0;
                while Instant::now() < until {
                    sequence += 1;
                    let request = AppendRequest {
                        events: vec![message(&stream, sequence)],
                        expected: vec![("conversation".into(), stream.clone(), sequence - 1)],
                        idempotency: None,
                    };
                    let sent = Instant::now();
                    store.append(request).await.expect("append");
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("writer"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    latencies.sort();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q) as usize)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let metrics = store.metrics();
    println!(
        "{} appends in {elapsed:.1} s: {:.0} appends/s, p50 {:.2} ms, p99 {:.2} ms; \
         {} commits ({:.1} requests each); this process's CPU {:.3} ms per append",
        latencies.len(),
        latencies.len() as f64 / elapsed,
        at(0.5),
        at(0.99),
        metrics.commits(),
        metrics.append_requests() as f64 / metrics.commits().max(1) as f64,
        cpu * 1000.0 / latencies.len().max(1) as f64,
    );
    drop(store);
    if let Some((pool, name)) = schema {
        let _ = sqlx::query(&format!("DROP SCHEMA {name} CASCADE"))
            .execute(&pool)
            .await;
    }
}
