//! The log for analysts (issue 17, item 4): `jono export events` writes one row per event —
//! position, time, type, stream, flattened fields — as JSON Lines or Parquet, for a time range;
//! and the documented example (`scripts/analysts/queue_stats.py`, DuckDB over the Parquet
//! file) reproduces `jono stats` for a queue over a history with picks, abandonments, a
//! transfer of a picked conversation, ratings and a customer still waiting. On both backends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use jono_tests::api::{self, Api};
use jono_tests::Storage;
use serde_json::{json, Value};
use uuid::Uuid;

fn jono(storage: &Storage, args: &[&str]) -> std::process::Output {
    let mut all: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    all.extend(storage.args());
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let output = jono_tests::jono(&all, &[]);
    assert!(
        output.status.success(),
        "jono {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

async fn history(api: &Api) -> (Uuid, Uuid) {
    let owner = api::sign_up(api, "Acme").await;
    let colleague = api::invite_and_accept(api, &owner, "agent", "Colleague").await;
    let queue = api::open_queue_handled_by(api, &owner, "Support").await;
    api::add_handler(api, &owner, queue, colleague.agent_id).await;
    let other = api::open_queue_handled_by(api, &owner, "Billing").await;
    let rate = |c: &api::Customer, score: i64| {
        let path = format!("/v1/conversations/{}/rating", c.conversation_id);
        let token = c.token.clone();
        async move {
            api.post(&path, Some(&token), json!({"score": score}))
                .await
                .expect(204, "rating");
        }
    };
    let end = |token: Option<String>, c: Uuid| async move {
        api.call(
            "POST",
            &format!("/v1/conversations/{c}/end"),
            token.as_deref(),
            None,
        )
        .await
        .expect(204, "ending");
    };
    // Picked by the owner, ended by the owner, rated 5.
    let first = api::join(
        api,
        queue,
        json!({"name": "Ann", "email": "ann@example.test"}),
    )
    .await;
    let c = api::pick(api, &owner, queue).await;
    api::send_message(api, first.token(), c, "hello").await;
    api::send_message(api, owner.token(), c, "hi Ann").await;
    end(owner.token().map(str::to_owned), c).await;
    rate(&first, 5).await;
    // Abandoned while waiting.
    let second = api::join(api, queue, json!({})).await;
    end(Some(second.token.clone()), second.conversation_id).await;
    // Picked by the colleague and transferred to the other queue.
    let third = api::join(api, queue, json!({})).await;
    let c = api::pick(api, &colleague, queue).await;
    assert_eq!(c, third.conversation_id);
    api.post(
        &format!("/v1/conversations/{c}/transfer"),
        colleague.token(),
        json!({"queue_id": other}),
    )
    .await
    .expect(204, "a transfer");
    // Picked by the colleague, ended by its customer, rated 2.
    let fourth = api::join(api, queue, json!({})).await;
    let c = api::pick(api, &colleague, queue).await;
    assert_eq!(c, fourth.conversation_id);
    end(Some(fourth.token.clone()), c).await;
    rate(&fourth, 2).await;
    // Still waiting.
    api::join(api, queue, json!({"name": "Late"})).await;
    (queue, owner.organization_id)
}

async fn the_log_for_analysts(storage: &Storage) {
    let (server, api) = api::start_with(storage, &[("JONO_RATE_LIMITS", "off")]);
    let (queue, _org) = history(&api).await;
    drop(server);
    let dir = tempfile::tempdir().unwrap();

    // JSON Lines: one row per event, in position order, with its fields flattened.
    let jsonl = dir.path().join("events.jsonl");
    jono(
        storage,
        &["export", "events", "--output", jsonl.to_str().unwrap()],
    );
    let rows: Vec<Value> = std::fs::read_to_string(&jsonl)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(rows.len() > 20, "{} rows", rows.len());
    let positions: Vec<i64> = rows
        .iter()
        .map(|r| r["position"].as_i64().unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "position order");
    for row in &rows {
        for field in ["at", "type", "stream", "stream_id"] {
            assert!(row[field].is_string(), "{field} in {row}");
        }
    }
    let sent = rows.iter().find(|r| r["type"] == "MessageSent").unwrap();
    assert_eq!(sent["stream"], "conversation");
    assert!(sent["author.kind"].is_string(), "{sent}");
    let joined = rows
        .iter()
        .find(|r| r["type"] == "CustomerJoinedQueue")
        .unwrap();
    assert_eq!(joined["queue_id"], json!(queue));
    // Personal fields stay sealed: one column holding the ciphertext, never the clear text.
    let metadata = joined["metadata"].as_str().unwrap();
    assert!(metadata.starts_with("sealed:"), "{joined}");
    assert!(
        sent["text"].as_str().unwrap().starts_with("sealed:"),
        "{sent}"
    );
    let exported = std::fs::read_to_string(&jsonl).unwrap();
    assert!(
        !exported.contains("\"Ann\""),
        "the customer's name is not in the export"
    );

    // Standard output without --output; a range before everything is empty.
    let out = jono(storage, &["export", "events"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        rows.len()
    );
    let none = jono(storage, &["export", "events", "--to", "2001-01-01"]);
    assert!(none.stdout.is_empty());
    let later = rows[rows.len() / 2]["at"].as_str().unwrap().to_owned();
    let tail = jono(storage, &["export", "events", "--from", &later]);
    let tail = String::from_utf8_lossy(&tail.stdout).lines().count();
    assert!(tail > 0 && tail < rows.len(), "{tail} of {}", rows.len());

    // Parquet needs a file, and a bad range is one line.
    let mut args = vec!["export", "events", "--format", "parquet"];
    let store = storage.args();
    args.extend(store.iter().map(String::as_str));
    let refused = jono_tests::jono(&args, &[]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--output"));
    let mut args = vec![
        "export",
        "events",
        "--from",
        "2030-01-01",
        "--to",
        "2020-01-01",
    ];
    args.extend(store.iter().map(String::as_str));
    let refused = jono_tests::jono(&args, &[]);
    assert!(!refused.status.success());

    let parquet = dir.path().join("events.parquet");
    jono(
        storage,
        &[
            "export",
            "events",
            "--format",
            "parquet",
            "--output",
            parquet.to_str().unwrap(),
        ],
    );
    let Some(python) = jono_tests::venv_python("the DuckDB example") else {
        return;
    };
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scripts/analysts/queue_stats.py"
    );
    let output = Command::new(python)
        .arg(example)
        .arg(&parquet)
        .arg(queue.to_string())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let analyst: Value = serde_json::from_slice(&output.stdout).unwrap();
    let stats = jono(
        storage,
        &["stats", "--queue", &queue.to_string(), "--format", "json"],
    );
    let jono_stats: Value = serde_json::from_slice(&stats.stdout).unwrap();
    for figure in [
        "joined",
        "picked",
        "abandoned",
        "timed_out",
        "transferred_out",
        "waiting_now",
        "wait_seconds",
        "handle_seconds",
        "rating",
        "per_agent",
    ] {
        assert_eq!(
            analyst[figure], jono_stats["total"][figure],
            "{figure}: DuckDB {analyst} vs jono stats {jono_stats}"
        );
    }
    assert_eq!(analyst["joined"], 5);
    assert_eq!(analyst["transferred_out"], 1);
    assert_eq!(analyst["waiting_now"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_is_exported_and_duckdb_reproduces_jono_stats() {
    the_log_for_analysts(&Storage::embedded()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_is_exported_and_duckdb_reproduces_jono_stats_on_postgres() {
    if let Some(storage) = Storage::postgres() {
        the_log_for_analysts(&storage).await;
    }
}
