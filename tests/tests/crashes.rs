//! Repeated `kill -9` under load (issue "The edges hold", crashes): customers join, an agent
//! picks them and messages go back and forth while the server is killed again and again. After
//! every restart: no acknowledged join, pick or message is lost, every half-done follow-up (a
//! join's conversation, a pick's agent) is finished by the restarted process manager, and at the
//! end the read models equal those a rebuild makes from the log.
//!
//! `JONO_CRASH_ROUNDS` kills per backend: 4 in the test command; the full-size run is
//!
//!     JONO_CRASH_ROUNDS=20 cargo test -p jono-tests --test crashes -- --nocapture

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jono_tests::api::{self, eventually, Agent, Api};
use jono_tests::{jono, Storage};
use serde_json::{json, Value};
use uuid::Uuid;

#[derive(Default)]
struct Acknowledged {
    joins: Vec<Uuid>,
    picks: Vec<Uuid>,
    messages: Vec<(Uuid, String)>,
}

fn rounds() -> usize {
    std::env::var("JONO_CRASH_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(4)
}

/// Runs the three kinds of traffic until the server stops answering.
fn traffic(
    api: &Api,
    owner: &Agent,
    queue: Uuid,
    round: usize,
    acked: &Arc<Mutex<Acknowledged>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let join = {
        let (api, acked) = (api.clone(), acked.clone());
        tokio::spawn(async move {
            loop {
                let body = json!({"metadata": {"name": "Crash"}})
                    .to_string()
                    .into_bytes();
                let Ok(reply) = api
                    .try_raw(
                        "POST",
                        &format!("/v1/queues/{queue}/join"),
                        None,
                        Some(body),
                        &[],
                    )
                    .await
                else {
                    break;
                };
                if reply.status != 201 {
                    break;
                }
                acked
                    .lock()
                    .unwrap()
                    .joins
                    .push(reply.id("conversation_id"));
            }
        })
    };
    let pick = {
        let (api, acked, token) = (api.clone(), acked.clone(), owner.token.clone());
        tokio::spawn(async move {
            loop {
                let Ok(reply) = api
                    .try_raw(
                        "POST",
                        &format!("/v1/queues/{queue}/pick"),
                        Some(&token),
                        None,
                        &[],
                    )
                    .await
                else {
                    break;
                };
                match reply.status {
                    201 => acked
                        .lock()
                        .unwrap()
                        .picks
                        .push(reply.id("conversation_id")),
                    409 => tokio::time::sleep(Duration::from_millis(5)).await,
                    _ => break,
                }
            }
        })
    };
    let message = {
        let (api, acked, token) = (api.clone(), acked.clone(), owner.token.clone());
        tokio::spawn(async move {
            for n in 0.. {
                let last = acked.lock().unwrap().picks.last().copied();
                let Some(conversation) = last else {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                };
                let text = format!("round {round} message {n}");
                let body = json!({ "text": text }).to_string().into_bytes();
                let path = format!("/v1/conversations/{conversation}/messages");
                let Ok(reply) = api
                    .try_raw("POST", &path, Some(&token), Some(body), &[])
                    .await
                else {
                    break;
                };
                if reply.status != 201 {
                    break;
                }
                acked.lock().unwrap().messages.push((conversation, text));
            }
        })
    };
    vec![join, pick, message]
}

/// What the read models say: the organization's conversations and every picked one's messages.
async fn look(api: &Api, owner: &Agent, picked: &[Uuid]) -> Value {
    let mut conversations = Vec::new();
    let mut after = String::new();
    loop {
        let page = api
            .get(
                &format!(
                    "/v1/orgs/{}/conversations?limit=1000{after}",
                    owner.organization_id
                ),
                owner.token(),
            )
            .await
            .expect(200, "conversations");
        let items = page.body.as_array().unwrap().clone();
        let Some(last) = items.last() else { break };
        after = format!("&after={}", last["id"].as_str().unwrap());
        conversations.extend(items);
    }
    let mut messages = Vec::new();
    for conversation in picked {
        messages.push(api::texts(api, owner.token(), *conversation).await);
    }
    let mut queues = api
        .get(
            &format!("/v1/orgs/{}/queues", owner.organization_id),
            owner.token(),
        )
        .await
        .body;
    // How long the oldest customer has waited moves with the clock, not with the log.
    for queue in queues.as_array_mut().unwrap() {
        queue["oldest_wait_seconds"] = Value::Null;
    }
    json!({ "conversations": conversations, "messages": messages, "queues": queues })
}

async fn crash_again_and_again(storage: Storage) {
    let (mut server, mut api) = api::start(&storage);
    let owner = api::sign_up(&api, "Acme").await;
    let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
    let acked = Arc::new(Mutex::new(Acknowledged::default()));
    for round in 0..rounds() {
        let progress = |acked: &Mutex<Acknowledged>| {
            let acked = acked.lock().unwrap();
            acked.messages.len() + acked.picks.len()
        };
        let before = progress(&acked);
        let workers = traffic(&api, &owner, queue, round, &acked);
        // Let some of everything be acknowledged, then kill it mid-stride.
        for _ in 0..400 {
            let now = progress(&acked);
            if now >= before + 12 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        server.kill();
        for worker in workers {
            worker.await.unwrap();
        }
        (server, api) = api::start(&storage);
    }

    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(
        !acked.picks.is_empty() && !acked.messages.is_empty(),
        "the traffic got through"
    );
    eprintln!(
        "{} kills: {} joins, {} picks and {} messages acknowledged",
        rounds(),
        acked.joins.len(),
        acked.picks.len(),
        acked.messages.len()
    );
    // Every acknowledged join has its conversation, every pick its agent: the follow-ups that a
    // kill cut short were finished after the restart.
    for conversation in &acked.joins {
        let path = format!("/v1/conversations/{conversation}");
        let seen = eventually(
            || api.get(&path, owner.token()),
            |reply| reply.status == 200,
        )
        .await;
        assert_eq!(seen.status, 200, "the joined conversation {conversation}");
    }
    for conversation in &acked.picks {
        let path = format!("/v1/conversations/{conversation}");
        let seen = eventually(
            || api.get(&path, owner.token()),
            |reply| reply.body["agent_id"] == json!(owner.agent_id),
        )
        .await;
        assert_eq!(
            seen.body["agent_id"],
            json!(owner.agent_id),
            "the pick of {conversation}: {}",
            seen.text
        );
    }
    // No acknowledged message lost.
    let mut picked: Vec<Uuid> = acked.picks.clone();
    picked.sort();
    picked.dedup();
    for conversation in &picked {
        let texts = api::texts(&api, owner.token(), *conversation).await;
        for (of, text) in &acked.messages {
            if of == conversation {
                assert!(
                    texts.contains(text),
                    "{text:?} in {conversation}, acknowledged before a kill"
                );
            }
        }
    }

    // The read models equal a rebuild from the log.
    let seen = look(&api, &owner, &picked).await;
    assert_eq!(server.terminate().code(), Some(0));
    let args = storage.args();
    let mut rebuild: Vec<&str> = vec!["projections", "rebuild"];
    rebuild.extend(args.iter().map(String::as_str));
    let rebuilt = jono(&rebuild, &[]);
    assert!(
        rebuilt.status.success(),
        "rebuild: {}",
        String::from_utf8_lossy(&rebuilt.stderr)
    );
    let (_server, api) = api::start(&storage);
    let after = look(&api, &owner, &picked).await;
    assert_eq!(
        seen,
        after,
        "the read models after {} kills equal a rebuild",
        rounds()
    );
}

#[tokio::test]
async fn kill_9_again_and_again_on_sqlite_loses_nothing() {
    crash_again_and_again(Storage::embedded()).await;
}

#[tokio::test]
async fn kill_9_again_and_again_on_postgres_loses_nothing() {
    let Some(storage) = Storage::postgres() else {
        return;
    };
    crash_again_and_again(storage).await;
}
