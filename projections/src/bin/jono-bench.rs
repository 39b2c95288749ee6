//! `jono-bench`: writes a realistic history into a store and times the statistics over it.
//!
//! ```text
//! jono-bench generate (--data DIR | --database-url URL) [--events N] [--orgs N] [--seed N]
//! jono-bench stats (--data DIR | --database-url URL)
//! ```
//!
//! `generate` runs the real aggregates in memory (so every event is one the domain would have
//! written, with the process manager's follow-ups) and appends them with `EventStore::append` in
//! large batches, each stream's sequence continuing where it stood; the process manager's
//! checkpoint is then set at the head, since every follow-up is already in the log. The ids of one queue and one
//! organization are written to `DIR/bench-ids.txt` for `jono stats` (with `--database-url`, to
//! the `--data` folder if one is given, else the current one). `stats` times
//! `stats_from_log` over the whole log for that queue, that organization and, by day, again.
//!
//! The store stamps `recorded_at` at commit, so the whole history lies within the minute or so
//! the generation takes: the durations are small, the work of reading and folding is the same.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use domain::conversation::{Conversation, ConversationCommand, EndReason};
use domain::metadata::CustomerMetadata;
use domain::organization::{Organization, OrganizationCommand};
use domain::process::{follow_ups, FollowUp};
use domain::queue::{LeaveReason, Queue, QueueCommand, SettingsPatch};
use domain::values::{Author, MessageText, Name, Score, WelcomeMessage};
use domain::Event;
use projections::stats::{stats_from_log, By, Scope};
use store::{AppendRequest, EventStore, NewEvent};
use uuid::Uuid;

const USAGE: &str = "usage: jono-bench generate (--data DIR | --database-url URL) [--events N] [--orgs N] [--seed N]\n       jono-bench stats (--data DIR | --database-url URL)";

/// Events per append: one transaction, one fsync.
const BATCH: usize = 5_000;
const QUEUES_PER_ORG: usize = 4;
const AGENTS_PER_ORG: usize = 8;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("jono-bench: {error}");
            ExitCode::FAILURE
        }
    }
}

struct Options {
    command: String,
    data: PathBuf,
    /// A Postgres log instead of `data`'s SQLite one (`data`, or the current folder, then
    /// only keeps `bench-ids.txt`).
    database_url: Option<String>,
    events: usize,
    orgs: usize,
    seed: u64,
}

fn options() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let command = args.next().ok_or(USAGE)?;
    let mut options = Options {
        command,
        data: PathBuf::new(),
        database_url: None,
        events: 1_000_000,
        orgs: 50,
        seed: 1,
    };
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let number = || {
            value
                .replace('_', "")
                .parse::<u64>()
                .map_err(|_| format!("{flag}: {value:?} is not a number"))
        };
        match flag.as_str() {
            "--data" => options.data = PathBuf::from(&value),
            "--database-url" => options.database_url = Some(value),
            "--events" => options.events = number()? as usize,
            "--orgs" => options.orgs = number()?.max(1) as usize,
            "--seed" => options.seed = number()?,
            _ => return Err(format!("unknown flag {flag}\n{USAGE}")),
        }
    }
    if options.data.as_os_str().is_empty() && options.database_url.is_none() {
        return Err(format!("--data or --database-url is required\n{USAGE}"));
    }
    Ok(options)
}

fn run() -> Result<(), String> {
    let options = options()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let store = match &options.database_url {
            Some(url) => EventStore::open_postgres(url).await,
            None => EventStore::open_sqlite(&options.data).await,
        }
        .map_err(|e| e.to_string())?;
        match options.command.as_str() {
            "generate" => generate(&store, &options).await,
            "stats" => time_stats(&store, &options).await,
            other => Err(format!("unknown command {other}\n{USAGE}")),
        }
    })
}

/// A small deterministic generator (xorshift64*), so that one seed gives one history.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn uuid(&mut self) -> Uuid {
        Uuid::from_u64_pair(self.next(), self.next())
    }
}

struct Org {
    queues: Vec<Uuid>,
    agents: Vec<Uuid>,
    /// Picked, not ended.
    active: Vec<Uuid>,
}

/// The aggregates in memory and the events not yet appended.
struct World {
    queues: HashMap<Uuid, Queue>,
    conversations: HashMap<Uuid, Conversation>,
    organizations: HashMap<Uuid, Organization>,
    versions: HashMap<(&'static str, Uuid), i64>,
    pending: Vec<NewEvent>,
    /// Each stream's version before its first pending event.
    expected: HashMap<(&'static str, Uuid), i64>,
    written: usize,
    rng: Rng,
}

impl World {
    fn record<E: DomainEvent>(
        &mut self,
        kind: &'static str,
        id: Uuid,
        event: &E,
    ) -> Result<(), String> {
        let version = self.versions.entry((kind, id)).or_insert(0);
        self.expected.entry((kind, id)).or_insert(*version);
        *version += 1;
        let sequence = *version;
        let event_id = self.rng.uuid();
        self.pending.push(NewEvent {
            event_id,
            aggregate_type: kind.to_owned(),
            aggregate_id: id.to_string(),
            sequence,
            event_type: event.event_type(),
            event_version: event.event_version(),
            payload: serde_json::to_value(event).map_err(|e| e.to_string())?,
            actor: None,
        });
        Ok(())
    }

    async fn flush(&mut self, store: &EventStore) -> Result<(), String> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let events = std::mem::take(&mut self.pending);
        let expected = self
            .expected
            .drain()
            .map(|((kind, id), version)| (kind.to_owned(), id.to_string(), version))
            .collect();
        self.written += events.len();
        store
            .append(AppendRequest {
                events,
                expected,
                idempotency: None,
            })
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Runs a queue command and every follow-up it sets off; `false` if the queue refused it.
    async fn queue(&mut self, id: Uuid, command: QueueCommand) -> Result<bool, String> {
        let aggregate = self.queues.entry(id).or_default();
        let sink = EventSink::default();
        if aggregate.handle(command, &(), &sink).await.is_err() {
            return Ok(false);
        }
        for event in sink.collect().await {
            self.record(Queue::TYPE, id, &event)?;
            let event_id = self.pending.last().map_or(Uuid::nil(), |e| e.event_id);
            for follow_up in follow_ups(event_id, &Event::Queue(event)) {
                match follow_up {
                    FollowUp::Conversation {
                        conversation_id,
                        command,
                    } => {
                        self.conversation(conversation_id, command).await?;
                    }
                    FollowUp::Queue { queue_id, command } => {
                        Box::pin(self.queue(queue_id, command)).await?;
                    }
                    // One generator, one step at a time: the arrival's own follow-up requeues
                    // the conversation, as the pair would.
                    FollowUp::Transfer {
                        queue_id,
                        transfer_in,
                        ..
                    } => {
                        Box::pin(self.queue(queue_id, transfer_in)).await?;
                    }
                    // Its picks take no workloads (the read models' speed is what it
                    // measures), so there is none to release.
                    FollowUp::Workload { .. } => {}
                }
            }
        }
        Ok(true)
    }

    async fn conversation(
        &mut self,
        id: Uuid,
        command: ConversationCommand,
    ) -> Result<bool, String> {
        let aggregate = self.conversations.entry(id).or_default();
        let sink = EventSink::default();
        if aggregate.handle(command, &(), &sink).await.is_err() {
            return Ok(false);
        }
        for event in sink.collect().await {
            self.record(Conversation::TYPE, id, &event)?;
        }
        Ok(true)
    }

    async fn organization(&mut self, id: Uuid, command: OrganizationCommand) -> Result<(), String> {
        let aggregate = self.organizations.entry(id).or_default();
        let sink = EventSink::default();
        aggregate
            .handle(command, &(), &sink)
            .await
            .map_err(|e| e.to_string())?;
        for event in sink.collect().await {
            self.record(Organization::TYPE, id, &event)?;
        }
        Ok(())
    }

    fn total(&self) -> usize {
        self.written + self.pending.len()
    }

    /// `count` organizations, each with its queues (open, with a welcome) and its agents, who
    /// handle every queue.
    async fn create_organizations(&mut self, count: usize) -> Result<Vec<(Uuid, Org)>, String> {
        let mut orgs = Vec::new();
        for n in 0..count {
            let organization_id = self.rng.uuid();
            let create = OrganizationCommand::CreateOrganization {
                organization_id,
                name: name(&format!("Organization {n}"))?,
                owner_id: None,
            };
            self.organization(organization_id, create).await?;
            let agents: Vec<Uuid> = (0..AGENTS_PER_ORG).map(|_| self.rng.uuid()).collect();
            let mut queues = Vec::new();
            for q in 0..QUEUES_PER_ORG {
                let queue_id = self.rng.uuid();
                let create = QueueCommand::CreateQueue {
                    queue_id,
                    organization_id,
                    name: name(&format!("Queue {q}"))?,
                };
                self.queue(queue_id, create).await?;
                let welcome = WelcomeMessage::parse("Welcome! An agent will be with you shortly.")
                    .map_err(|e| e.to_string())?;
                let settings = QueueCommand::ChangeSettings {
                    patch: SettingsPatch {
                        welcome_message: Some(Some(welcome)),
                        ..SettingsPatch::default()
                    },
                    by: None,
                };
                self.queue(queue_id, settings).await?;
                self.queue(
                    queue_id,
                    QueueCommand::OpenQueue {
                        by: None,
                        by_operator: false,
                    },
                )
                .await?;
                for agent_id in &agents {
                    let add = QueueCommand::AddHandler {
                        agent_id: *agent_id,
                        by: None,
                    };
                    self.queue(queue_id, add).await?;
                }
                queues.push(queue_id);
            }
            orgs.push((
                organization_id,
                Org {
                    queues,
                    agents,
                    active: Vec::new(),
                },
            ));
        }
        Ok(orgs)
    }

    /// How a waiting customer goes: gives up, times out, or moves to another of `org`'s queues.
    fn leave_command(&mut self, org: &Org, conversation_id: Uuid) -> QueueCommand {
        match self.rng.below(3) {
            0 => QueueCommand::LeaveQueue {
                conversation_id,
                reason: LeaveReason::Abandoned,
                by: Some(Author::customer(conversation_id, "Customer")),
            },
            1 => QueueCommand::LeaveQueue {
                conversation_id,
                reason: LeaveReason::Timeout,
                by: None,
            },
            _ => {
                let queues = &org.queues;
                QueueCommand::TransferOut {
                    conversation_id,
                    to_queue_id: queues[self.rng.below(queues.len())],
                    by: None,
                }
            }
        }
    }

    /// One of `org`'s active conversations ends (and is rated now and then) or is transferred;
    /// whether it ended.
    async fn end_or_transfer(
        &mut self,
        org: &mut Org,
        organization_id: Uuid,
    ) -> Result<bool, String> {
        let index = self.rng.below(org.active.len());
        let conversation_id = org.active.swap_remove(index);
        let Some(conversation) = self.conversations.get(&conversation_id) else {
            return Ok(false);
        };
        let (agent_id, from_queue) = (conversation.agent_id, conversation.queue_id);
        if self.rng.chance(10) {
            let queues = &org.queues;
            let target = queues[self.rng.below(queues.len())];
            let transfer = QueueCommand::TransferIn {
                transfer_id: self.rng.uuid(),
                conversation_id,
                organization_id,
                from_queue_id: from_queue.unwrap_or(target),
                from_agent_id: agent_id,
                by: None,
            };
            self.queue(target, transfer).await?;
            return Ok(false);
        }
        let by = agent_id.map_or_else(Author::system, |a| Author::agent(a, "Agent"));
        let end = ConversationCommand::EndConversation {
            by,
            reason: EndReason::Ended,
            left_queue: None,
            at: None,
        };
        self.conversation(conversation_id, end).await?;
        if self.rng.chance(40) {
            let score = 1 + self.rng.below(5) as i64;
            let rate = ConversationCommand::Rate {
                score: Score::parse(score).map_err(|e| e.to_string())?,
                comment: None,
                by: Author::customer(conversation_id, "Customer"),
            };
            self.conversation(conversation_id, rate).await?;
        }
        self.conversations.remove(&conversation_id);
        Ok(true)
    }
}

fn name(text: &str) -> Result<Name, String> {
    Name::parse(text).map_err(|e| e.to_string())
}

const LINES: [&str; 6] = [
    "Hello, I have a question about my order.",
    "Sure, could you give me the order number?",
    "It is 48213, placed last Tuesday.",
    "Thanks! I can see it left the warehouse this morning.",
    "Great, and when will it arrive?",
    "Within two working days. Anything else I can help with?",
];

async fn generate(store: &EventStore, options: &Options) -> Result<(), String> {
    let started = Instant::now();
    let mut world = World {
        queues: HashMap::new(),
        conversations: HashMap::new(),
        organizations: HashMap::new(),
        versions: HashMap::new(),
        pending: Vec::new(),
        expected: HashMap::new(),
        written: 0,
        rng: Rng(options.seed.max(1)),
    };
    let mut orgs = world.create_organizations(options.orgs).await?;
    let (bench_org, bench_queue) = (orgs[0].0, orgs[0].1.queues[0]);

    while world.total() < options.events {
        let o = world.rng.below(orgs.len());
        let organization_id = orgs[o].0;
        let queue_id = orgs[o].1.queues[world.rng.below(QUEUES_PER_ORG)];
        let waiting = world.queues.get(&queue_id).map_or(0, |q| q.waiting.len());
        let roll = world.rng.below(100);
        match roll {
            // A customer joins (at most a handful wait per queue).
            0..=14 if waiting < 6 => {
                let conversation_id = world.rng.uuid();
                let join = QueueCommand::JoinQueue {
                    conversation_id,
                    metadata: CustomerMetadata::default(),
                    customer: None,
                };
                world.queue(queue_id, join).await?;
            }
            // An agent picks the longest-waiting customer.
            15..=27 if waiting > 0 => {
                let agents = &orgs[o].1.agents;
                let agent_id = agents[world.rng.below(agents.len())];
                let front = world
                    .queues
                    .get(&queue_id)
                    .and_then(|q| q.waiting.front().copied());
                let pick = QueueCommand::PickCustomer {
                    agent_id,
                    agent_name: "Agent".into(),
                };
                if world.queue(queue_id, pick).await? {
                    if let Some(conversation_id) = front {
                        orgs[o].1.active.push(conversation_id);
                    }
                }
            }
            // A waiting customer gives up, times out, or moves to another queue.
            28..=30 if waiting > 0 => {
                let Some(conversation_id) = world
                    .queues
                    .get(&queue_id)
                    .and_then(|q| q.waiting.back().copied())
                else {
                    continue;
                };
                let command = world.leave_command(&orgs[o].1, conversation_id);
                world.queue(queue_id, command).await?;
            }
            // A message in an active conversation (most of the log).
            31..=92 if !orgs[o].1.active.is_empty() => {
                let active = &orgs[o].1.active;
                let conversation_id = active[world.rng.below(active.len())];
                let Some(conversation) = world.conversations.get(&conversation_id) else {
                    continue;
                };
                let author = match conversation.agent_id {
                    Some(agent) if world.rng.chance(50) => Author::agent(agent, "Agent"),
                    _ => Author::customer(conversation_id, "Customer"),
                };
                let text = LINES[world.rng.below(LINES.len())];
                let send = ConversationCommand::SendMessage {
                    message_id: world.rng.uuid(),
                    author,
                    text: Some(MessageText::parse(text).map_err(|e| e.to_string())?),
                    attachments: Vec::new(),
                };
                world.conversation(conversation_id, send).await?;
            }
            // An active conversation ends, is rated now and then, or is transferred.
            93..=99 if !orgs[o].1.active.is_empty() => {
                let ended = world
                    .end_or_transfer(&mut orgs[o].1, organization_id)
                    .await?;
                if !ended {
                    continue;
                }
            }
            _ => {}
        }
        if world.pending.len() >= BATCH {
            world.flush(store).await?;
            if world.written % 100_000 < BATCH {
                eprintln!("{} events", world.written);
            }
        }
    }
    world.flush(store).await?;
    // Every event's follow-ups ran in `World` as it was written: the process manager of a
    // `jono serve` on this store has nothing to repeat.
    let head = store.head().await.map_err(|e| e.to_string())?;
    store
        .set_checkpoint(EventStore::PROCESS_MANAGER_CHECKPOINT, head)
        .await
        .map_err(|e| e.to_string())?;
    let ids = format!("queue {bench_queue}\norg {bench_org}\n");
    std::fs::write(options.data.join("bench-ids.txt"), ids).map_err(|e| e.to_string())?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "wrote {} events in {seconds:.1} s ({:.0} events/s); queue {bench_queue}, org {bench_org}",
        world.written,
        world.written as f64 / seconds
    );
    Ok(())
}

fn bench_ids(options: &Options) -> Result<(Uuid, Uuid), String> {
    let text = std::fs::read_to_string(options.data.join("bench-ids.txt"))
        .map_err(|e| format!("bench-ids.txt: {e} (run `jono-bench generate` first)"))?;
    let id = |key: &str| -> Result<Uuid, String> {
        text.lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|rest| Uuid::parse_str(rest.trim()).ok())
            .ok_or_else(|| format!("bench-ids.txt has no {key}"))
    };
    Ok((id("queue ")?, id("org ")?))
}

async fn time_stats(store: &EventStore, options: &Options) -> Result<(), String> {
    let (queue, org) = bench_ids(options)?;
    let head = store.head().await.map_err(|e| e.to_string())?;
    println!("log head: position {head}");
    for (label, scope, by) in [
        ("queue", Scope::Queue(queue), None),
        ("organization", Scope::Organization(org), None),
        ("queue --by day", Scope::Queue(queue), Some(By::Day)),
    ] {
        let started = Instant::now();
        let report = stats_from_log(store, scope, None, None, by)
            .await
            .map_err(|e| e.to_string())?;
        let seconds = started.elapsed().as_secs_f64();
        let f = &report.total.figures;
        println!(
            "stats {label}: {seconds:.2} s ({:.0} events/s) — joined {}, picked {}, abandoned {}, timed_out {}, transferred_out {}, ratings {}",
            head as f64 / seconds,
            f.joined,
            f.picked,
            f.abandoned,
            f.timed_out,
            f.transferred_out,
            f.rating.count
        );
    }
    Ok(())
}
