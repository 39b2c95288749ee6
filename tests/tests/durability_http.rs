//! What HTTP acknowledged survives `kill -9`: messages answered 201 are all there after a
//! restart on the same data, in their order, with the same seq; so are the conversation, its
//! queue and the sessions. On the embedded store and, when one is set up, on Postgres.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jono_tests::api::{self, eventually};
use jono_tests::Storage;
use serde_json::json;

async fn acknowledged_messages_survive_kill_9(storage: Storage) {
    let (server, api) = api::start(&storage);
    let owner = api::sign_up(&api, "Acme").await;
    let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
    let customer = api::join(&api, queue, json!({"name": "Dora"})).await;
    let conversation = api::pick(&api, &owner, queue).await;

    // N messages, each acknowledged before the next.
    let mut acknowledged = Vec::new();
    for n in 1..=20 {
        let token = if n % 2 == 0 {
            owner.token()
        } else {
            customer.token()
        };
        let text = format!("message {n}");
        let (_, seq) = api::send_message(&api, token, conversation, &text).await;
        acknowledged.push((seq, text));
    }

    // Then a sender that keeps going while the server is killed under it: whatever it was
    // told 201 for must be there afterwards too.
    let in_flight = Arc::new(Mutex::new(Vec::new()));
    let sender = {
        let api = api.clone();
        let token = owner.token.clone();
        let in_flight = in_flight.clone();
        tokio::spawn(async move {
            for n in 21.. {
                let text = format!("message {n}");
                let body = json!({"text": text}).to_string().into_bytes();
                let path = format!("/v1/conversations/{conversation}/messages");
                let reply = api
                    .try_raw("POST", &path, Some(&token), Some(body), &[])
                    .await;
                let Ok(reply) = reply else {
                    break; // the server is gone: this one was never acknowledged
                };
                if reply.status != 201 {
                    break;
                }
                let seq = reply.body["seq"].as_i64().unwrap();
                in_flight.lock().unwrap().push((seq, text));
            }
        })
    };
    for _ in 0..200 {
        if in_flight.lock().unwrap().len() >= 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !in_flight.lock().unwrap().is_empty(),
        "the sender never got an answer"
    );
    server.kill();
    // The sender's next call fails (connection refused, or cut mid-way); either ends it.
    sender.await.expect("the sender ends cleanly");
    acknowledged.extend(in_flight.lock().unwrap().iter().cloned());

    let (_server, api) = api::start(&storage);
    // The customer still reads its conversation with its token, and the chat goes on.
    let view = api
        .get(
            &format!("/v1/conversations/{conversation}"),
            customer.token(),
        )
        .await
        .expect(200, "the customer's view after the restart");
    assert_eq!(view.body["status"], "active");
    let (_, last) = api::send_message(&api, customer.token(), conversation, "still here?").await;
    // Everything up to the new message: seq rises from 1 without gaps, and every acknowledged
    // message is at the seq it was acknowledged with. (A message in flight at the kill may or
    // may not be there; one that is has its own seq.)
    let stored = eventually(
        || api::messages(&api, owner.token(), conversation),
        |stored| stored.last().and_then(|m| m["seq"].as_i64()) == Some(last),
    )
    .await;
    let seqs: Vec<i64> = stored.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    let expected: Vec<i64> = (1..=last).collect();
    assert_eq!(
        seqs, expected,
        "seq rises from 1 to the new message without gaps"
    );
    assert_eq!(stored.last().unwrap()["text"], "still here?");
    for (seq, text) in &acknowledged {
        let message = &stored[(*seq - 1) as usize];
        assert_eq!(message["text"], json!(text), "seq {seq} after the restart");
    }
    // Acknowledged in order, stored in that order.
    let acked_seqs: Vec<i64> = acknowledged.iter().map(|(seq, _)| *seq).collect();
    assert!(
        acked_seqs.windows(2).all(|pair| pair[0] < pair[1]),
        "{acked_seqs:?}"
    );
    let queues = api
        .get(&format!("/v1/queues/{queue}"), owner.token())
        .await
        .expect(200, "the queue after the restart");
    assert_eq!(queues.body["open"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_kill_9_on_sqlite() {
    acknowledged_messages_survive_kill_9(Storage::embedded()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_kill_9_on_postgres() {
    let Some(storage) = Storage::postgres() else {
        return;
    };
    acknowledged_messages_survive_kill_9(storage).await;
}

#[tokio::test]
async fn a_graceful_restart_keeps_everything_too() {
    let storage = Storage::embedded();
    let (server, api) = api::start(&storage);
    let owner = api::sign_up(&api, "Acme").await;
    let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
    let waiting = api::join(&api, queue, json!({})).await;
    assert!(server.terminate().success());
    let (_server, api) = api::start(&storage);
    // The waiting customer is still first in line, and the agent picks it.
    let view = api
        .get(
            &format!("/v1/conversations/{}", waiting.conversation_id),
            waiting.token(),
        )
        .await
        .expect(200, "the waiting customer's view");
    assert_eq!(view.body["status"], "waiting");
    assert_eq!(view.body["queue_position"], 1);
    assert_eq!(
        api::pick(&api, &owner, queue).await,
        waiting.conversation_id
    );
}
