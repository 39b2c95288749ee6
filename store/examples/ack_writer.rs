//! A writer for the durability tests (`tests/durability.rs`): appends to the SQLite log in
//! DATA_DIR and prints `ack STREAM SEQUENCE` on stdout after each append is acknowledged.
//!
//!   ack_writer DATA_DIR sequential COUNT   one append at a time (the fsync test)
//!   ack_writer DATA_DIR concurrent TASKS   TASKS writers forever, until killed (the kill -9 test)

use std::io::Write;

use serde_json::json;
use store::{AppendRequest, EventStore, NewEvent};
use uuid::Uuid;

fn event(stream: &str, sequence: i64) -> NewEvent {
    NewEvent {
        event_id: Uuid::new_v4(),
        aggregate_type: "ack".into(),
        aggregate_id: stream.into(),
        sequence,
        event_type: "Acked".into(),
        event_version: "1".into(),
        payload: json!({ "type": "Acked", "sequence": sequence }),
        actor: None,
    }
}

async fn append(store: &EventStore, stream: &str, sequence: i64) -> bool {
    let request = AppendRequest {
        events: vec![event(stream, sequence)],
        expected: vec![("ack".into(), stream.into(), sequence - 1)],
        idempotency: None,
    };
    store.append(request).await.is_ok()
}

fn ack(stream: &str, sequence: i64) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "ack {stream} {sequence}");
    let _ = out.flush();
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(mode), Some(n)) = (args.get(1), args.get(2), args.get(3)) else {
        eprintln!("usage: ack_writer DATA_DIR sequential|concurrent N");
        std::process::exit(2);
    };
    let n: i64 = n.parse().unwrap_or(1);
    let Ok(store) = EventStore::open_sqlite(std::path::Path::new(dir)).await else {
        eprintln!("cannot open the store");
        std::process::exit(1);
    };
    if mode == "sequential" {
        for sequence in 1..=n {
            if append(&store, "one", sequence).await {
                ack("one", sequence);
            }
        }
        return;
    }
    let mut tasks = Vec::new();
    for task in 0..n {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let stream = format!("s{task}");
            for sequence in 1.. {
                if !append(&store, &stream, sequence).await {
                    return;
                }
                ack(&stream, sequence);
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
}
