//! API.md's Consistency rule (invariant 11, "reads wait, writes don't"), while sixteen other
//! writers keep the read models busy: a command is answered once its events are durable, and
//! a read begun after any caller's answer sees that write. On Postgres the writes go to one
//! `jono serve` and the reads and the next commands to another on the same database (and NATS,
//! which several nodes need).
//!
//! - A message one agent sent is in the list another caller reads right after the answer.
//! - A command right after the one that made what it acts on succeeds at once (a queue: its
//!   handler, opening, a join, the customer's message, the pick; a channel: a message).
//! - A member whose role changed is refused or let through at once by the new role, and a
//!   member removed is refused at once, on its next command.
//! - Bad input stays a 4xx that appends nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use jono_tests::api::{self, Agent, Api};
use jono_tests::nats::Nats;
use jono_tests::Storage;
use serde_json::json;
use uuid::Uuid;

/// How many callers keep writing meanwhile.
const WRITERS: usize = 16;
/// How many times each check is made under that load.
const ROUNDS: usize = 12;

/// Sixteen writers posting messages into channels of their own until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    written: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    async fn start(api: &Api, owner: &Agent) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for n in 0..WRITERS {
            let channel = api::create_channel(api, owner, &format!("load-{n}")).await;
            let (api, token) = (api.clone(), owner.token.clone());
            let (stop, written) = (stop.clone(), written.clone());
            tasks.push(tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    api::send_message(&api, Some(&token), channel, &format!("load {n}.{i}")).await;
                    written.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            }));
        }
        Load {
            stop,
            written,
            tasks,
        }
    }

    /// Stops the writers; how many messages they wrote.
    async fn stop(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.expect("a writer");
        }
        self.written.load(Ordering::Relaxed)
    }
}

fn ids(messages: &[serde_json::Value]) -> Vec<String> {
    messages
        .iter()
        .map(|message| message["id"].as_str().expect("an id").to_owned())
        .collect()
}

/// `writes` takes the commands, `reads` the reads and the commands right after them.
async fn consistency_under_load(writes: &Api, reads: &Api) {
    let owner = api::sign_up(writes, "Acme").await;
    let agent = api::invite_and_accept(writes, &owner, "agent", "Aino Agent").await;
    let operator = api::invite_and_accept(writes, &owner, "agent", "Otto Operator").await;
    let leaver = api::invite_and_accept(writes, &owner, "agent", "Leo Leaver").await;
    let channel = api::create_channel(writes, &owner, "general").await;
    let load = Load::start(writes, &owner).await;

    // A read begun after another caller's answer sees that write, either way round.
    for round in 0..ROUNDS {
        let (writer, reader) = if round % 2 == 0 {
            (&agent, &owner)
        } else {
            (&owner, &agent)
        };
        let (id, _) =
            api::send_message(writes, writer.token(), channel, &format!("round {round}")).await;
        let seen = ids(&api::messages(reads, reader.token(), channel).await);
        assert!(
            seen.contains(&id.to_string()),
            "round {round}: a message answered before the read began is missing"
        );
    }

    // Bad input is a 4xx that appends nothing.
    let before = api::messages(reads, owner.token(), channel).await;
    let path = format!("/v1/conversations/{channel}/messages");
    writes
        .post(&path, agent.token(), json!({"text": "   "}))
        .await
        .expect_problem(422, "an empty message");
    writes
        .post(&path, agent.token(), json!({"text": 7}))
        .await
        .expect_problem(400, "a message of the wrong type");
    let nowhere = format!("/v1/conversations/{}/messages", Uuid::new_v4());
    writes
        .post(&nowhere, agent.token(), json!({"text": "hello?"}))
        .await
        .expect_problem(404, "a message to no conversation");
    let after = api::messages(reads, owner.token(), channel).await;
    assert_eq!(ids(&before), ids(&after), "bad input appended nothing");

    // A command right after the one that made what it acts on succeeds at once.
    for round in 0..ROUNDS / 4 {
        let queue = api::create_queue(writes, &owner, &format!("Line {round}")).await;
        api::add_handler(reads, &owner, queue, agent.agent_id).await;
        api::open_queue(writes, &agent, queue).await;
        let customer = api::join(reads, queue, json!({"name": "Ville"})).await;
        api::send_message(writes, customer.token(), customer.conversation_id, "hei").await;
        let picked = api::pick(reads, &agent, queue).await;
        assert_eq!(picked, customer.conversation_id);
        api::send_message(writes, agent.token(), picked, "hello, Ville").await;
        let texts = api::texts(reads, customer.token(), picked).await;
        assert_eq!(texts, ["hei", "hello, Ville"], "round {round}");

        let fresh = api::create_channel(writes, &owner, &format!("fresh {round}")).await;
        api::send_message(reads, agent.token(), fresh, "first").await;
    }

    // A changed role takes effect on the very next command, raised or lowered.
    let queues = format!("/v1/orgs/{}/queues", owner.organization_id);
    let member = format!(
        "/v1/orgs/{}/members/{}",
        owner.organization_id, operator.agent_id
    );
    for round in 0..ROUNDS / 2 {
        for (role, status) in [("operator", 201), ("agent", 403)] {
            writes
                .put(&member, owner.token(), json!({"role": role}))
                .await
                .expect(200, "changing a role");
            let reply = reads
                .post(&queues, operator.token(), json!({"name": "Ops"}))
                .await;
            assert_eq!(
                reply.status, status,
                "round {round}: a queue by someone just made {role}: {}",
                reply.text
            );
        }
    }

    // A removal too.
    api::send_message(reads, leaver.token(), channel, "still here").await;
    writes
        .delete(
            &format!(
                "/v1/orgs/{}/members/{}",
                owner.organization_id, leaver.agent_id
            ),
            owner.token(),
        )
        .await
        .expect(204, "removing a member");
    reads
        .post(&path, leaver.token(), json!({"text": "am I still here?"}))
        .await
        .expect_problem(
            401,
            "a message by a member just removed (from its only organization)",
        );
    let texts = api::texts(reads, owner.token(), channel).await;
    assert!(texts.iter().any(|text| text == "still here"));
    assert!(
        !texts.iter().any(|text| text == "am I still here?"),
        "the removed member's message was not appended"
    );

    let written = load.stop().await;
    assert!(written > 0, "the other writers wrote meanwhile");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_see_every_answered_write_while_sixteen_others_write_on_sqlite() {
    let storage = Storage::embedded();
    let (_server, api) = api::start(&storage);
    consistency_under_load(&api, &api).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_see_every_answered_write_while_sixteen_others_write_across_two_processes_on_postgres(
) {
    // Several nodes on one database need NATS (without it a second node refuses to start).
    let (Some(storage), Some(nats)) = (Storage::postgres(), Nats::start()) else {
        return;
    };
    let env = [
        ("JONO_RATE_LIMITS", "off"),
        ("JONO_NATS_URL", nats.url.as_str()),
    ];
    let (first, writes) = api::start_with(&storage, &env);
    let (second, reads) = api::start_with(&storage, &env);
    let checked = tokio::spawn(async move { consistency_under_load(&writes, &reads).await }).await;
    if let Err(failure) = checked {
        // What each node said meanwhile (a read that went ahead of its read models says so).
        for (node, server) in [("the writes' node", &first), ("the reads' node", &second)] {
            let stderr = server.stderr();
            let warnings: Vec<&str> = stderr
                .lines()
                .filter(|line| line.contains("WARN"))
                .collect();
            eprintln!(
                "{node} warned:\n{}",
                warnings[warnings.len().saturating_sub(20)..].join("\n")
            );
        }
        std::panic::resume_unwind(failure.into_panic());
    }
}
