//! `jono stats` end to end: a small history made through the real aggregates and the command
//! layer on a fresh SQLite store — an abandonment, a time-out, a transfer of a waiting customer,
//! a transfer of a picked conversation, a rating — then its figures from `stats_from_log` and
//! from the real binary in its three formats, and the queue at three instants.
//!
//! `recorded_at` is the store's clock at each commit, so the steps sleep a little between them:
//! counts are exact, durations are checked to be at least the sleeps between their ends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use cqrs_es::Aggregate;
use domain::conversation::{Conversation, ConversationCommand, EndReason};
use domain::metadata::CustomerMetadata;
use domain::organization::{Organization, OrganizationCommand};
use domain::process::{follow_ups, FollowUp};
use domain::queue::{LeaveReason, Queue, QueueCommand};
use domain::values::{Author, Name, Score};
use domain::Event;
use projections::stats::{compute, queue_at, stats_from_log, Report, Scope, StatsError, StatsFold};
use serde_json::Value;
use store::command::{CommandContext, Commands};
use store::{EventStore, StoredEvent};
use uuid::Uuid;

const STEP: Duration = Duration::from_millis(30);

struct History {
    _dir: tempfile::TempDir,
    data: std::path::PathBuf,
    org: Uuid,
    a: Uuid,
    b: Uuid,
    x: Uuid,
    y: Uuid,
    c: [Uuid; 6],
    /// Before the queues existed; A with c1–c3 waiting; B with c1 (transferred in, picked);
    /// and the end (A closed, c5 waiting).
    instants: [DateTime<Utc>; 4],
    /// After everything.
    end: DateTime<Utc>,
}

/// Runs a command and, like the process manager, the follow-ups of what it appended.
async fn run<A>(commands: &Commands, id: Uuid, command: A::Command)
where
    A: domain::Snapshot + Aggregate<Services = ()>,
    A::Command: Clone,
    A::Error: std::fmt::Debug,
{
    let ctx = CommandContext::default();
    let executed = commands
        .execute::<A>(&id.to_string(), command, &(), &ctx)
        .await
        .expect("the command is accepted");
    follow(commands, executed.events).await;
}

async fn follow(commands: &Commands, events: Vec<StoredEvent>) {
    let ctx = CommandContext::default();
    let mut work: VecDeque<StoredEvent> = events.into();
    while let Some(stored) = work.pop_front() {
        let event = Event::decode(&stored.aggregate_type, stored.payload.clone()).expect("decodes");
        for follow_up in follow_ups(stored.event_id, &event) {
            let appended = match follow_up {
                FollowUp::Queue { queue_id, command } => commands
                    .execute::<Queue>(&queue_id.to_string(), command, &(), &ctx)
                    .await
                    .map(|e| e.events)
                    .unwrap_or_default(),
                FollowUp::Conversation {
                    conversation_id,
                    command,
                } => commands
                    .execute::<Conversation>(&conversation_id.to_string(), command, &(), &ctx)
                    .await
                    .map(|e| e.events)
                    .unwrap_or_default(),
                FollowUp::Transfer {
                    queue_id,
                    transfer_in,
                    conversation_id,
                    requeue,
                } => commands
                    .execute_pair::<Queue, Conversation>(
                        (&queue_id.to_string(), transfer_in),
                        (&conversation_id.to_string(), requeue),
                        (&(), &()),
                        &ctx,
                    )
                    .await
                    .map(|(a, b)| a.events.into_iter().chain(b.events).collect())
                    .unwrap_or_default(),
                FollowUp::Workload {
                    workload_id,
                    command,
                } => commands
                    .execute::<domain::workload::Workload>(
                        &workload_id.to_string(),
                        command,
                        &(),
                        &ctx,
                    )
                    .await
                    .map(|e| e.events)
                    .unwrap_or_default(),
            };
            work.extend(appended);
        }
    }
}

async fn step() -> DateTime<Utc> {
    tokio::time::sleep(STEP).await;
    let now = Utc::now();
    tokio::time::sleep(STEP).await;
    now
}

async fn history() -> History {
    let dir = tempfile::tempdir().expect("a temp dir");
    let data = dir.path().to_path_buf();
    let store = EventStore::open_sqlite(&data)
        .await
        .expect("open the store");
    let commands = Commands::new(store.clone());
    let (org, a, b, x, y) = (
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
    );
    let c = [(); 6].map(|_| Uuid::new_v4());
    let join = |conversation_id| QueueCommand::JoinQueue {
        conversation_id,
        metadata: CustomerMetadata::default(),
        customer: None,
    };
    let pick = |agent_id| QueueCommand::PickCustomer {
        agent_id,
        agent_name: "Agent".into(),
    };

    let before = Utc::now();
    tokio::time::sleep(STEP).await;
    run::<Organization>(
        &commands,
        org,
        OrganizationCommand::CreateOrganization {
            organization_id: org,
            name: Name::parse("Acme").unwrap(),
            owner_id: None,
        },
    )
    .await;
    for (queue, name) in [(a, "Sales"), (b, "Support")] {
        let create = QueueCommand::CreateQueue {
            queue_id: queue,
            organization_id: org,
            name: Name::parse(name).unwrap(),
        };
        run::<Queue>(&commands, queue, create).await;
        run::<Queue>(
            &commands,
            queue,
            QueueCommand::OpenQueue {
                by: None,
                by_operator: false,
            },
        )
        .await;
        for agent in [x, y] {
            let add = QueueCommand::AddHandler {
                agent_id: agent,
                by: None,
            };
            run::<Queue>(&commands, queue, add).await;
        }
    }
    for conversation in &c[1..=3] {
        run::<Queue>(&commands, a, join(*conversation)).await;
    }
    let with_three_waiting = step().await;

    // X picks c1; c2 abandons; c3 times out.
    run::<Queue>(&commands, a, pick(x)).await;
    step().await;
    let abandon = QueueCommand::LeaveQueue {
        conversation_id: c[2],
        reason: LeaveReason::Abandoned,
        by: Some(Author::customer(c[2], "Customer")),
    };
    run::<Queue>(&commands, a, abandon).await;
    step().await;
    let time_out = QueueCommand::LeaveQueue {
        conversation_id: c[3],
        reason: LeaveReason::Timeout,
        by: None,
    };
    run::<Queue>(&commands, a, time_out).await;
    step().await;

    // c4 joins A and moves, waiting, to B, where Y picks it.
    run::<Queue>(&commands, a, join(c[4])).await;
    step().await;
    let transfer_out = QueueCommand::TransferOut {
        conversation_id: c[4],
        to_queue_id: b,
        by: Some(Author::agent(x, "X")),
    };
    run::<Queue>(&commands, a, transfer_out).await;
    step().await;
    run::<Queue>(&commands, b, pick(y)).await;
    step().await;

    // X sends its picked c1 to B, where it waits, first.
    let transfer_in = QueueCommand::TransferIn {
        transfer_id: Uuid::new_v4(),
        conversation_id: c[1],
        organization_id: org,
        from_queue_id: a,
        from_agent_id: Some(x),
        by: Some(Author::agent(x, "X")),
    };
    run::<Queue>(&commands, b, transfer_in).await;
    let with_c1_in_b = step().await;

    // Y ends c4, whose customer rates it 4.
    let end = ConversationCommand::EndConversation {
        by: Author::agent(y, "Y"),
        reason: EndReason::Ended,
        left_queue: None,
        at: None,
    };
    run::<Conversation>(&commands, c[4], end).await;
    step().await;
    let rate = ConversationCommand::Rate {
        score: Score::parse(4).unwrap(),
        comment: None,
        by: Author::customer(c[4], "Customer"),
    };
    run::<Conversation>(&commands, c[4], rate).await;
    step().await;

    // c5 joins A, which then closes with c5 still in line.
    run::<Queue>(&commands, a, join(c[5])).await;
    step().await;
    run::<Queue>(
        &commands,
        a,
        QueueCommand::CloseQueue {
            by: None,
            by_operator: false,
        },
    )
    .await;
    let end = step().await;
    History {
        _dir: dir,
        data,
        org,
        a,
        b,
        x,
        y,
        c,
        instants: [before, with_three_waiting, with_c1_in_b, end],
        end,
    }
}

fn at_least(seconds: Option<f64>, steps: u32) {
    let seconds = seconds.expect("a figure");
    let floor = STEP.as_secs_f64() * f64::from(steps);
    assert!(seconds >= floor, "{seconds} s < {floor} s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn figures_of_a_small_history_from_the_log() {
    let h = history().await;
    let store = EventStore::open_sqlite(&h.data).await.unwrap();

    let report = stats_from_log(&store, Scope::Queue(h.a), None, Some(h.end), None)
        .await
        .unwrap();
    let f = &report.total.figures;
    assert_eq!(report.from, None);
    assert_eq!(f.joined, 4 + 1, "c1–c5");
    assert_eq!(f.picked, 1);
    assert_eq!(f.abandoned, 1);
    assert_eq!(f.timed_out, 1);
    assert_eq!(f.transferred_out, 2, "c4 while waiting, c1 once picked");
    assert_eq!(f.waiting_now, 1, "c5");
    // c3 waited through three steps (two pairs of sleeps each) before timing out.
    at_least(f.wait_seconds.max, 6);
    // c1 was handled from its pick to its transfer.
    at_least(f.handle_seconds.max, 2 * 6);
    assert_eq!(f.rating.count, 0);
    assert_eq!(f.rating.mean, None);
    assert_eq!(f.per_agent.len(), 1);
    assert_eq!((f.per_agent[0].agent_id, f.per_agent[0].picked), (h.x, 1));
    assert!(report.buckets.is_empty());

    let b = stats_from_log(&store, Scope::Queue(h.b), None, Some(h.end), None)
        .await
        .unwrap()
        .total
        .figures;
    assert_eq!((b.joined, b.picked, b.waiting_now), (2, 1, 1));
    assert_eq!((b.abandoned, b.timed_out, b.transferred_out), (0, 0, 0));
    assert_eq!((b.rating.count, b.rating.mean), (1, Some(4.0)));
    at_least(b.handle_seconds.p50, 2 * 2);
    assert_eq!(b.per_agent.len(), 1);
    assert_eq!((b.per_agent[0].agent_id, b.per_agent[0].picked), (h.y, 1));

    let org = stats_from_log(&store, Scope::Organization(h.org), None, Some(h.end), None)
        .await
        .unwrap()
        .total
        .figures;
    assert_eq!((org.joined, org.picked, org.waiting_now), (7, 2, 2));
    assert_eq!(
        (org.abandoned, org.timed_out, org.transferred_out),
        (1, 1, 2)
    );
    assert_eq!(org.rating.count, 1);

    // A window that starts once c1–c3 waited: their waits end in it, but only c4 and c5 join.
    let from = h.instants[1] + chrono::Duration::milliseconds(1);
    let window = stats_from_log(&store, Scope::Queue(h.a), Some(from), Some(h.end), None)
        .await
        .unwrap()
        .total
        .figures;
    assert_eq!(window.joined, 2, "c4 and c5");
    assert_eq!(
        (window.picked, window.abandoned, window.timed_out),
        (1, 1, 1)
    );

    // The SQL filter of the SQLite path leaves out nothing: a plain fold over the whole feed
    // gives the same figures for every scope and window.
    let mut fold = StatsFold::default();
    for stored in store.read_after(0, 100_000).await.unwrap() {
        if let Ok(event) = Event::decode(&stored.aggregate_type, stored.payload) {
            fold.apply(stored.position, stored.recorded_at, &event);
        }
    }
    let everything = fold.into_samples();
    for scope in [
        Scope::Queue(h.a),
        Scope::Queue(h.b),
        Scope::Organization(h.org),
    ] {
        for from in [None, Some(from)] {
            let report = stats_from_log(&store, scope, from, Some(h.end), None)
                .await
                .unwrap();
            assert_eq!(report.total, compute(&everything, scope, from, h.end));
        }
    }

    let unknown = stats_from_log(&store, Scope::Queue(Uuid::new_v4()), None, None, None).await;
    assert!(matches!(unknown, Err(StatsError::UnknownQueue(_))));
    let unknown = stats_from_log(&store, Scope::Organization(h.a), None, None, None).await;
    assert!(matches!(unknown, Err(StatsError::UnknownOrganization(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_at_three_instants() {
    let h = history().await;
    let store = EventStore::open_sqlite(&h.data).await.unwrap();

    let before = queue_at(&store, h.a, h.instants[0]).await;
    assert!(matches!(before, Err(StatsError::NotYetCreated { .. })));

    let first = queue_at(&store, h.a, h.instants[1]).await.unwrap();
    assert!(first.open);
    assert_eq!(first.name, "Sales");
    let line: Vec<_> = first.waiting.iter().map(|w| w.conversation_id).collect();
    assert_eq!(line, vec![h.c[1], h.c[2], h.c[3]]);
    assert_eq!(
        first.waiting.iter().map(|w| w.position).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert!(first.waiting[0].since <= first.waiting[2].since);
    assert!(first.waiting[2].since < h.instants[1]);

    let second_a = queue_at(&store, h.a, h.instants[2]).await.unwrap();
    assert!(second_a.open && second_a.waiting.is_empty());
    let second_b = queue_at(&store, h.b, h.instants[2]).await.unwrap();
    let line: Vec<_> = second_b.waiting.iter().map(|w| w.conversation_id).collect();
    assert_eq!(line, vec![h.c[1]], "transferred in, first");
    assert!(second_b.waiting[0].since > h.instants[1]);

    let last = queue_at(&store, h.a, h.instants[3]).await.unwrap();
    assert!(!last.open);
    let line: Vec<_> = last.waiting.iter().map(|w| w.conversation_id).collect();
    assert_eq!(line, vec![h.c[5]]);
    at_least(Some(last.waiting[0].waited_seconds), 2);
}

fn jono(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_jono"))
        .arg("--data")
        .arg(data)
        .arg("stats")
        .args(args)
        .env_remove("JONO_DATABASE_URL")
        .env("JONO_LOG", "warn")
        .output()
        .expect("run jono")
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "jono failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).expect("UTF-8")
}

/// As the CLI prints a time: to the microsecond the store keeps, without trailing zeros.
fn rfc3339(t: DateTime<Utc>) -> String {
    t.trunc_subsecs(6)
        .to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jono_stats_prints_json_csv_and_a_table() {
    let h = history().await;
    let (a, to) = (h.a.to_string(), rfc3339(h.end));

    // JSON: {from, to, total, buckets}, the same figures as the library's.
    let json = stdout(&jono(
        &h.data,
        &["--queue", &a, "--to", &to, "--format", "json"],
    ));
    let report: Report = serde_json::from_str(&json).expect("the report");
    let store = EventStore::open_sqlite(&h.data).await.unwrap();
    let end = DateTime::parse_from_rfc3339(&to).unwrap().to_utc();
    let direct = stats_from_log(&store, Scope::Queue(h.a), None, Some(end), None)
        .await
        .unwrap();
    assert_eq!(report, direct);
    let value: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["from"], Value::Null);
    assert_eq!(value["buckets"], serde_json::json!([]));
    let total = &value["total"];
    for field in [
        "from",
        "to",
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
        assert!(total.get(field).is_some(), "total lacks {field}");
    }
    assert_eq!(total["abandoned"], 1);
    assert_eq!(total["rating"]["mean"], Value::Null);
    assert!(total["wait_seconds"]["p90"].is_number());

    // With --by day: one bucket (the history took seconds), with a start.
    let json = stdout(&jono(
        &h.data,
        &[
            "--org",
            &h.org.to_string(),
            "--to",
            &to,
            "--by",
            "day",
            "--format",
            "json",
        ],
    ));
    let value: Value = serde_json::from_str(&json).unwrap();
    let buckets = value["buckets"].as_array().expect("buckets");
    assert!(!buckets.is_empty());
    assert!(buckets[0]["start"].is_string());
    let joined: u64 = buckets.iter().map(|b| b["joined"].as_u64().unwrap()).sum();
    assert_eq!(joined, 7);

    // CSV: a header, the total row, one row per agent.
    let csv = stdout(&jono(
        &h.data,
        &["--queue", &a, "--to", &to, "--format", "csv"],
    ));
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("period,from,to,agent_id,joined,picked,abandoned,timed_out"));
    let header: Vec<&str> = lines[0].split(',').collect();
    let total: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(header.len(), total.len());
    let cell = |name: &str| total[header.iter().position(|h| *h == name).unwrap()];
    assert_eq!(cell("period"), "total");
    assert_eq!(cell("from"), "");
    assert_eq!(
        (cell("joined"), cell("abandoned"), cell("timed_out")),
        ("5", "1", "1")
    );
    assert_eq!(cell("rating_mean"), "");
    assert_eq!(lines.len(), 3);
    assert!(lines[2].contains(&h.x.to_string()));

    // The table: a title, aligned columns, the agents.
    let table = stdout(&jono(&h.data, &["--queue", &a, "--to", &to]));
    assert!(table.contains(&format!("queue {a}")));
    assert!(table.contains("the start of the log"));
    let header = table.lines().find(|l| l.starts_with("window")).unwrap();
    let total = table.lines().find(|l| l.starts_with("total")).unwrap();
    assert_eq!(header.len(), total.len(), "aligned:\n{table}");
    assert!(table.contains(&h.x.to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jono_stats_at_an_instant_and_its_mistakes() {
    let h = history().await;
    let (a, at) = (h.a.to_string(), rfc3339(h.instants[1]));
    let table = stdout(&jono(&h.data, &["--queue", &a, "--at", &at]));
    assert!(table.contains("open, 3 waiting"), "{table}");
    assert!(table.contains(&h.c[3].to_string()));

    let json = stdout(&jono(
        &h.data,
        &["--queue", &a, "--at", &at, "--format", "json"],
    ));
    let value: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["open"], true);
    assert_eq!(value["waiting"][0]["conversation_id"], h.c[1].to_string());
    assert_eq!(value["waiting"][2]["position"], 3);

    let end = rfc3339(h.instants[3]);
    let csv = stdout(&jono(
        &h.data,
        &["--queue", &a, "--at", &end, "--format", "csv"],
    ));
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "queue_id,at,open,waiting,position,conversation_id,since,waited_seconds"
    );
    assert!(lines[1].starts_with(&format!("{a},{end},false,1,1,{}", h.c[5])));

    for (args, want) in [
        (vec!["--from", "2026-01-01"], "say whose statistics"),
        (vec!["--queue", "nope"], "is not an id"),
        (
            vec!["--queue", &a, "--from", "last tuesday"],
            "not an RFC 3339 time",
        ),
        (
            vec!["--queue", &a, "--from", &end, "--to", &at],
            "must be before --to",
        ),
        (vec!["--org", &a], "no organization"),
    ] {
        let output = jono(&h.data, &args);
        assert!(!output.status.success(), "{args:?} succeeded");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(want), "{stderr} lacks {want}");
    }
}
