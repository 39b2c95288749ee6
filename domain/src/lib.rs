//! Jono's domain: every aggregate, command, event and business rule, pure — no IO, no async
//! runtime of its own, no SQL, no HTTP. cqrs-es gives the vocabulary (`Aggregate`,
//! `DomainEvent`, the given/when/then `TestFramework`); the store runs it.
//!
//! - [`values`]: value types parsed once, with API.md's limits, a file per kind: `text.rs`
//!   (messages, notes, names, …), `labels.rs` (tags, canned keys), `people.rs` (email, password,
//!   role, author), `numbers.rs` (score, limits, retention).
//! - [`metadata`]: customer metadata and live metadata (JSON objects ≤ 16 KiB; links http(s)).
//! - [`schedule`]: a queue's opening hours and the origins allowed to embed its widget.
//! - [`ids`]: deterministic ids that make uniqueness across streams a stream's own rule.
//! - [`error`]: the kinds of refusal, which the gateway maps to HTTP statuses once.
//! - [`account`]: `Account`, a person who signs in, one stream per email.
//! - [`organization`]: `Organization`, its members, roles and invitations.
//! - [`queue`]: `Queue`, the only authority on who waits; join, pick, leave, time-out, transfer.
//! - [`conversation`]: `Conversation` of kind customer, channel or direct; messages and the rest.
//! - [`canned`]: `CannedResponses`, one stream per scope so a key is unique in it.
//! - [`workload`]: `Workload`, an agent's open conversations in an organization (capacity).
//! - [`event`]: all events as one type, decoded from the log by aggregate type.
//! - [`process`]: the process manager's follow-ups (join → conversation, pick → its agent, …).
//! - [`snapshot`]: `Snapshot`, the version of each aggregate's fold that tags its snapshots.
//!
//! An aggregate's folder holds `commands.rs`, `events.rs`, `errors.rs` and, in `mod.rs`, its
//! state, `handle` and `apply`; where it has many commands, `handle` only dispatches, and each
//! concept's commands are decided in a file of their own (`conversation/messages.rs`,
//! `queue/line.rs`, `organization/invitations.rs`, …), listed in the folder's `mod.rs`.
//!
//! Personal data (names, emails, message text, metadata, file names) travels in fields of its
//! own in every event, so it can be sealed per data subject later.

pub mod account;
pub mod canned;
pub mod conversation;
pub mod error;
pub mod event;
pub mod ids;
pub mod metadata;
pub mod organization;
pub mod process;
pub mod queue;
pub mod schedule;
pub mod snapshot;
pub mod values;
pub mod workload;

pub use error::{ErrorKind, Refusal};
pub use event::Event;
pub use snapshot::Snapshot;
