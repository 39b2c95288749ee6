//! Crypto-shredding in the log: personal fields stored sealed, opened on every read, erased for
//! good once their subject's key is destroyed — including events written before sealing.

#![allow(clippy::unwrap_used)] // a test: a failed step is the failure

use serde_json::{json, Value};
use store::log::Backend;
use store::{AppendRequest, EventStore, NewEvent};
use uuid::Uuid;

use crate::common::TestDb;
use crate::on_both_backends;

const SECRET: &str = "my card is 4242-secret";

fn message(conversation: &str, sequence: i64, text: &str) -> NewEvent {
    NewEvent {
        event_id: Uuid::new_v4(),
        aggregate_type: "conversation".into(),
        aggregate_id: conversation.into(),
        sequence,
        event_type: "MessageSent".into(),
        event_version: "1".into(),
        payload: json!({
            "type": "MessageSent",
            "conversation_id": conversation,
            "organization_id": Uuid::nil(),
            "message_id": Uuid::new_v4(),
            "seq": sequence,
            "author": {"kind": "customer", "id": conversation, "name": "Maija Meikäläinen"},
            "text": text,
            "attachments": [],
        }),
        actor: None,
    }
}

async fn send(store: &EventStore, conversation: &str, sequence: i64, text: &str) {
    store
        .append(AppendRequest {
            events: vec![message(conversation, sequence, text)],
            expected: vec![("conversation".into(), conversation.into(), sequence - 1)],
            idempotency: None,
        })
        .await
        .expect("appended");
}

/// How many rows of the log hold `text` in the clear.
async fn in_the_clear(store: &EventStore, text: &str) -> i64 {
    let like = format!("%{text}%");
    match store.backend() {
        Backend::Sqlite(pool, _) => {
            sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE payload LIKE ?")
                .bind(like)
                .fetch_one(pool)
                .await
        }
        Backend::Postgres(pool) => {
            sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE payload::text LIKE $1")
                .bind(like)
                .fetch_one(pool)
                .await
        }
    }
    .expect("a count")
}

fn texts(events: &[store::StoredEvent]) -> Vec<Value> {
    events.iter().map(|e| e.payload["text"].clone()).collect()
}

async fn sealed_fields_open_on_read_and_read_as_erased_once_erased(db: TestDb) {
    let store = db.open().await;
    let erased = Uuid::new_v4().to_string();
    let kept = Uuid::new_v4().to_string();
    send(&store, &erased, 1, SECRET).await;
    send(&store, &kept, 1, "the other customer's words").await;

    assert_eq!(
        in_the_clear(&store, "4242-secret").await,
        0,
        "sealed in the log"
    );
    assert_eq!(in_the_clear(&store, "Meikäläinen").await, 0, "names too");
    let feed = store.read_after(0, 100).await.unwrap();
    assert_eq!(
        texts(&feed),
        [json!(SECRET), json!("the other customer's words")]
    );
    let stream = store.load_stream("conversation", &erased).await.unwrap();
    assert_eq!(stream[0].payload["author"]["name"], "Maija Meikäläinen");
    assert!(
        store.read_after_sealed(0, 100).await.unwrap()[0].payload["text"]
            .get(store::seal::SEALED)
            .is_some()
    );

    let report = store.erase_subject(&erased).await.unwrap();
    assert_eq!(report.rewritten, 0, "nothing was written before sealing");
    let feed = store.read_after(0, 100).await.unwrap();
    assert_eq!(
        texts(&feed),
        [
            json!(domain::values::ERASED),
            json!("the other customer's words")
        ]
    );
    assert_eq!(feed[0].payload["author"]["name"], domain::values::ERASED);
    // What the erased customer's conversation gets later keeps nothing either, on this
    // process and on another one that opens the same log.
    send(&store, &erased, 2, "after the erasure").await;
    let reopened = db.open().await;
    send(&reopened, &erased, 3, "after the erasure, elsewhere").await;
    assert_eq!(in_the_clear(&store, "after the erasure").await, 0);
    let stream = reopened.load_stream("conversation", &erased).await.unwrap();
    assert!(texts(&stream).iter().all(|t| t == domain::values::ERASED));
    // Idempotent.
    let again = store.erase_subject(&erased).await.unwrap();
    store.compact_after_erasure(again).await.unwrap();
}

async fn events_from_before_sealing_are_rewritten_and_nothing_else_is(db: TestDb) {
    let store = db.open().await;
    let conversation = Uuid::new_v4().to_string();
    // An older Jono wrote this event with its fields in the clear.
    let old = message(&conversation, 1, SECRET);
    let old_join = json!({
        "type": "CustomerJoinedQueue", "queue_id": Uuid::nil(), "organization_id": Uuid::nil(),
        "conversation_id": conversation, "queue_position": 1, "welcome_message": null,
        "metadata": {"email": "maija@example.com"},
    });
    match store.backend() {
        Backend::Sqlite(pool, _) => {
            for (aggregate, id, kind, payload) in [
                (
                    "conversation",
                    conversation.as_str(),
                    "MessageSent",
                    &old.payload,
                ),
                ("queue", "q1", "CustomerJoinedQueue", &old_join),
            ] {
                sqlx::query(
                    "INSERT INTO events (event_id, aggregate_type, aggregate_id, sequence, \
                     event_type, event_version, payload, recorded_at) \
                     VALUES (?, ?, ?, 1, ?, '1', ?, '2020-01-01T00:00:00.000000Z')",
                )
                .bind(Uuid::new_v4().to_string())
                .bind(aggregate)
                .bind(id)
                .bind(kind)
                .bind(payload.to_string())
                .execute(pool)
                .await
                .unwrap();
            }
            sqlx::query(
                "UPDATE sealing SET from_position = (SELECT MAX(position) + 1 FROM events)",
            )
            .execute(pool)
            .await
            .unwrap();
        }
        Backend::Postgres(pool) => {
            for (aggregate, id, kind, payload) in [
                (
                    "conversation",
                    conversation.as_str(),
                    "MessageSent",
                    &old.payload,
                ),
                ("queue", "q1", "CustomerJoinedQueue", &old_join),
            ] {
                sqlx::query(
                    "INSERT INTO events (event_id, aggregate_type, aggregate_id, sequence, \
                     event_type, event_version, payload, recorded_at) \
                     VALUES ($1, $2, $3, 1, $4, '1', $5, now())",
                )
                .bind(Uuid::new_v4())
                .bind(aggregate)
                .bind(id)
                .bind(kind)
                .bind(payload)
                .execute(pool)
                .await
                .unwrap();
            }
            sqlx::query(
                "UPDATE sealing SET from_position = (SELECT MAX(position) + 1 FROM events)",
            )
            .execute(pool)
            .await
            .unwrap();
        }
    }
    assert_eq!(in_the_clear(&store, "4242-secret").await, 1);
    assert_eq!(in_the_clear(&store, "maija@example.com").await, 1);

    let report = store.erase_subject(&conversation).await.unwrap();
    assert_eq!(report.rewritten, 2, "the old message and the old join");
    assert_eq!(in_the_clear(&store, "4242-secret").await, 0);
    assert_eq!(in_the_clear(&store, "maija@example.com").await, 0);
    let feed = store.read_after(0, 10).await.unwrap();
    assert_eq!(feed[0].payload["text"], domain::values::ERASED);
    assert_eq!(feed[0].payload["seq"], 1, "what is not personal stays");
    assert_eq!(feed[1].payload["metadata"], json!({}));
    assert_eq!(feed[1].payload["queue_position"], 1);

    // The exception is the erasure's alone: the log still refuses every other change.
    let refused = match store.backend() {
        Backend::Sqlite(pool, _) => sqlx::query("UPDATE events SET payload = '{}'")
            .execute(pool)
            .await
            .is_err(),
        Backend::Postgres(pool) => sqlx::query("UPDATE events SET payload = '{}'::jsonb")
            .execute(pool)
            .await
            .is_err(),
    };
    assert!(refused, "an UPDATE outside an erasure is refused");
}

/// On SQLite, once erased and compacted, no byte of the log's files holds the text: the
/// sealed events hold only ciphertext, the rewritten old ones were overwritten in place
/// (`secure_delete`), and the write-ahead log is truncated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_files_keep_no_erased_byte() {
    let db = TestDb::sqlite();
    let store = db.open().await;
    let conversation = Uuid::new_v4().to_string();
    let Backend::Sqlite(pool, _) = store.backend().clone() else {
        unreachable!()
    };
    sqlx::query(
        "INSERT INTO events (event_id, aggregate_type, aggregate_id, sequence, event_type, \
         event_version, payload, recorded_at) \
         VALUES (?, 'conversation', ?, 1, 'MessageSent', '1', ?, '2020-01-01T00:00:00.000000Z')",
    )
    .bind(Uuid::new_v4().to_string())
    .bind(&conversation)
    .bind(message(&conversation, 1, SECRET).payload.to_string())
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("UPDATE sealing SET from_position = (SELECT MAX(position) + 1 FROM events)")
        .execute(&pool)
        .await
        .unwrap();
    send(&store, &conversation, 2, "second 4242-secret").await;
    let files = || {
        std::fs::read_dir(db.data_dir().unwrap())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.is_file())
            .collect::<Vec<_>>()
    };
    let holding = |needle: &str| {
        files()
            .into_iter()
            .filter(|path| {
                let bytes = std::fs::read(path).unwrap();
                bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
            })
            .collect::<Vec<_>>()
    };
    assert!(
        !holding("4242-secret").is_empty(),
        "the old event holds it before the erasure"
    );
    let erased = store.erase_subject(&conversation).await.unwrap();
    store.compact_after_erasure(erased).await.unwrap();
    assert_eq!(holding("4242-secret"), Vec::<std::path::PathBuf>::new());
}

/// Another process erases a subject whose key this process's writer keeps: what this writer
/// seals afterwards with the kept key reads as erased in the file, and so must it from this
/// process's tail (`store::tail`), which keeps fresh commits opened — once a reader has met
/// the subject's `CustomerErased`, as every follower does before any later event of it.
async fn another_process_erasure_reaches_the_events_this_process_keeps_opened(db: TestDb) {
    let here = db.open().await;
    let elsewhere = db.open().await;
    let subject = Uuid::new_v4().to_string();
    send(&here, &subject, 1, SECRET).await;
    // The erasure, as the product does it: the event, then the key destroyed.
    elsewhere
        .append(AppendRequest {
            events: vec![NewEvent {
                event_id: Uuid::new_v4(),
                aggregate_type: "conversation".into(),
                aggregate_id: subject.clone(),
                sequence: 2,
                event_type: "CustomerErased".into(),
                event_version: "1".into(),
                payload: json!({"type": "CustomerErased", "conversation_id": subject}),
                actor: None,
            }],
            expected: vec![("conversation".into(), subject.clone(), 1)],
            idempotency: None,
        })
        .await
        .unwrap();
    elsewhere.erase_subject(&subject).await.unwrap();
    let feed = here.read_after(0, 100).await.unwrap();
    assert_eq!(feed.len(), 2);
    assert_eq!(feed[1].event_type, "CustomerErased");
    // Sealed with the key this writer still keeps, which is gone.
    send(&here, &subject, 3, "after the erasure").await;
    let later = here.read_after(feed[1].position, 100).await.unwrap();
    assert_eq!(texts(&later), [json!(domain::values::ERASED)]);
    assert_eq!(later[0].payload["author"]["name"], domain::values::ERASED);
}

on_both_backends!(
    sealed_fields_open_on_read_and_read_as_erased_once_erased,
    events_from_before_sealing_are_rewritten_and_nothing_else_is,
    another_process_erasure_reaches_the_events_this_process_keeps_opened,
);
