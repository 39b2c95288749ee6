//! The statistics fold: decoded events, with their time and position, in; the samples that
//! API.md's figures are computed from out. Pure: no IO, no clock. The log's order is the truth —
//! the queue's stream says who waits and who was picked, the conversation's stream when a handle
//! ends — so the fold keeps, per conversation, what is open (a wait or a handle) and closes it on
//! the event that ends it.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use domain::conversation::{Conversation, ConversationEvent};
use domain::queue::{LeaveReason, Queue, QueueEvent};
use domain::values::AuthorKind;
use domain::Event;
use uuid::Uuid;

use super::Scope;

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitOutcome {
    Picked {
        agent_id: Uuid,
    },
    /// The customer ended the conversation while waiting.
    Abandoned,
    TimedOut,
    /// Moved, still waiting, to another queue.
    TransferredOut,
    /// An agent ended the conversation while it waited.
    Removed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitEnd {
    pub at: DateTime<Utc>,
    pub outcome: WaitOutcome,
}

/// One stay in one queue's line: from a join or a transfer in, to whatever ended it (`None`
/// while it still waits at the end of the folded log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wait {
    pub queue_id: Uuid,
    pub organization_id: Uuid,
    pub conversation_id: Uuid,
    pub start: DateTime<Utc>,
    /// True when the wait began with a transfer in rather than a join.
    pub transferred_in: bool,
    /// The queue's `target_wait_seconds` when the wait began, in microseconds.
    pub target: Option<i64>,
    pub end: Option<WaitEnd>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseEnd {
    pub at: DateTime<Utc>,
    /// True for an agent's first message; false when the conversation ended unanswered.
    pub answered: bool,
}

/// The time from a customer's join to the first message by an agent, kept for a join into a
/// queue that had a `target_first_response_seconds` then; it counts for that queue, wherever
/// the conversation is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub queue_id: Uuid,
    pub organization_id: Uuid,
    pub conversation_id: Uuid,
    pub start: DateTime<Utc>,
    /// The target in microseconds.
    pub target: i64,
    pub end: Option<ResponseEnd>,
}

/// How a handle ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandleOutcome {
    /// `ConversationEnded`.
    Ended,
    /// The picked conversation was transferred to another queue.
    TransferredOut,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandleEnd {
    pub at: DateTime<Utc>,
    pub outcome: HandleOutcome,
}

/// One agent's time with one picked conversation, for the queue it was picked from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handle {
    pub queue_id: Uuid,
    pub organization_id: Uuid,
    pub agent_id: Uuid,
    pub conversation_id: Uuid,
    pub start: DateTime<Utc>,
    pub end: Option<HandleEnd>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rating {
    /// `None` for a conversation rated before any queue knew it (not counted for a queue).
    pub queue_id: Option<Uuid>,
    pub organization_id: Uuid,
    pub agent_id: Option<Uuid>,
    pub at: DateTime<Utc>,
    pub score: u8,
}

/// What became of an offer of auto routing, as its event says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferOutcome {
    /// `CustomerOffered`: an offer made.
    Offered,
    Accepted,
    Declined,
    Expired,
}

/// One offer event of a queue, at its time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferEvent {
    pub queue_id: Uuid,
    pub organization_id: Uuid,
    pub at: DateTime<Utc>,
    pub outcome: OfferOutcome,
}

/// A message left in a queue when nobody could answer (`MessageLeft`), at its time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftMessage {
    pub queue_id: Uuid,
    pub organization_id: Uuid,
    pub at: DateTime<Utc>,
}

/// A queue's life: its organization and every opening and closing, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueHistory {
    pub organization_id: Uuid,
    pub created_at: DateTime<Utc>,
    /// `(when, open)`: a new queue is closed until its first `(t, true)`.
    pub changes: Vec<(DateTime<Utc>, bool)>,
}

/// Everything the figures are computed from. Waits and handles are in the order they started.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    pub waits: Vec<Wait>,
    pub handles: Vec<Handle>,
    pub ratings: Vec<Rating>,
    /// First responses, in the order the joins happened.
    pub responses: Vec<Response>,
    /// Offers made, accepted, declined and expired, in log order.
    pub offers: Vec<OfferEvent>,
    /// Messages left, in log order.
    pub left_messages: Vec<LeftMessage>,
    pub queues: HashMap<Uuid, QueueHistory>,
    /// The last position folded (0 before any).
    pub position: i64,
}

impl Samples {
    /// The waits still open at the end of the folded log.
    pub fn open_waits(&self) -> impl Iterator<Item = &Wait> {
        self.waits.iter().filter(|wait| wait.end.is_none())
    }
}

/// The fold. Keep only the samples of one scope with [`StatsFold::for_scope`] (the figures are
/// the same, the memory smaller); [`StatsFold::default`] keeps every queue's.
#[derive(Debug, Default)]
pub struct StatsFold {
    scope: Option<Scope>,
    samples: Samples,
    /// Conversation → index in `samples.waits` of its open wait.
    waiting: HashMap<Uuid, usize>,
    /// Conversation → index in `samples.handles` of its open handle.
    handling: HashMap<Uuid, usize>,
    /// Every conversation that ever waited in the scope (only kept for a scoped fold).
    seen: HashSet<Uuid>,
    /// Each queue's service-level targets now, in microseconds.
    targets: HashMap<Uuid, Targets>,
    /// Conversation → index in `samples.responses` of its unanswered first response.
    responding: HashMap<Uuid, usize>,
}

/// A queue's service-level targets, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Targets {
    pub wait: Option<i64>,
    pub first_response: Option<i64>,
}

impl Targets {
    pub fn of(settings: &domain::queue::QueueSettings) -> Self {
        let micros = |seconds: Option<domain::values::Limit>| {
            seconds.map(|seconds| i64::from(seconds.get()) * 1_000_000)
        };
        Self {
            wait: micros(settings.target_wait_seconds),
            first_response: micros(settings.target_first_response_seconds),
        }
    }
}

/// The stored event types the fold reads; a reader may skip the rest without decoding them.
/// Of `MessageSent`, only an agent's counts (the first answer); a reader may skip the others.
pub const EVENT_TYPES: [&str; 16] = domain::event_types![
    "QueueCreated",
    "QueueOpened",
    "QueueClosed",
    "QueueSettingsChanged",
    "MessageSent",
    "CustomerJoinedQueue",
    "CustomerLeftQueue",
    "CustomerPicked",
    "ConversationTransferred",
    "ConversationRated",
    "ConversationEnded",
    "CustomerOffered",
    "OfferAccepted",
    "OfferDeclined",
    "OfferExpired",
    "MessageLeft",
];

impl StatsFold {
    pub fn for_scope(scope: Scope) -> Self {
        Self {
            scope: Some(scope),
            ..Self::default()
        }
    }

    /// Whether the fold could learn anything from a stored event, told by its stream and type
    /// alone — so that a reader decodes only those. A scoped fold skips other queues' events
    /// (but for transfers, which may end a handle of its own) and the conversations that never
    /// waited in its scope.
    pub fn wants(&self, aggregate_type: &str, aggregate_id: &str, event_type: &str) -> bool {
        if !EVENT_TYPES.contains(&event_type) {
            return false;
        }
        if self.scope.is_none() || event_type == "QueueCreated" {
            return true;
        }
        let Ok(id) = Uuid::parse_str(aggregate_id) else {
            // Not ours to judge: let decoding report it.
            return true;
        };
        if aggregate_type == Queue::TYPE {
            event_type == "ConversationTransferred"
                || self
                    .samples
                    .queues
                    .get(&id)
                    .is_some_and(|queue| self.keeps(id, queue.organization_id))
        } else if aggregate_type == Conversation::TYPE {
            self.seen.contains(&id)
        } else {
            true
        }
    }

    fn keeps(&self, queue_id: Uuid, organization_id: Uuid) -> bool {
        match self.scope {
            None => true,
            Some(Scope::Queue(id)) => id == queue_id,
            Some(Scope::Organization(id)) => id == organization_id,
        }
    }

    /// Folds one event recorded at `at`, at `position` of the log. Events must come in log order.
    pub fn apply(&mut self, position: i64, at: DateTime<Utc>, event: &Event) {
        self.samples.position = self.samples.position.max(position);
        match event {
            Event::Queue(event) => self.apply_queue(at, event),
            Event::Conversation(event) => self.apply_conversation(at, event),
            _ => {}
        }
    }

    fn apply_queue(&mut self, at: DateTime<Utc>, event: &QueueEvent) {
        use QueueEvent as E;
        match event {
            E::QueueCreated {
                queue_id,
                organization_id,
                ..
            } => {
                // Every queue's history is kept, so a caller can tell an unknown queue from a
                // quiet one whatever the scope.
                self.samples.queues.insert(
                    *queue_id,
                    QueueHistory {
                        organization_id: *organization_id,
                        created_at: at,
                        changes: Vec::new(),
                    },
                );
            }
            E::QueueOpened { queue_id, .. } | E::QueueClosed { queue_id, .. } => {
                let open = matches!(event, E::QueueOpened { .. });
                if let Some(history) = self.samples.queues.get_mut(queue_id) {
                    history.changes.push((at, open));
                }
            }
            E::CustomerJoinedQueue {
                queue_id,
                organization_id,
                conversation_id,
                ..
            } => self.join(at, *queue_id, *organization_id, *conversation_id),
            E::CustomerLeftQueue {
                conversation_id,
                reason,
                ..
            } => {
                let outcome = match reason {
                    LeaveReason::Abandoned => WaitOutcome::Abandoned,
                    LeaveReason::Timeout => WaitOutcome::TimedOut,
                    LeaveReason::Removed => WaitOutcome::Removed,
                    LeaveReason::Transferred => WaitOutcome::TransferredOut,
                };
                self.end_wait(at, *conversation_id, outcome);
            }
            E::CustomerPicked {
                queue_id,
                organization_id,
                conversation_id,
                agent_id,
                ..
            } => self.pick(at, *queue_id, *organization_id, *conversation_id, *agent_id),
            E::ConversationTransferred {
                queue_id,
                organization_id,
                conversation_id,
                ..
            } => {
                // A picked conversation has no `CustomerLeftQueue`: its transfer, stored in the
                // target queue, is what ends the handle in the source queue.
                self.end_handle(at, *conversation_id, HandleOutcome::TransferredOut);
                self.start_wait(at, *queue_id, *organization_id, *conversation_id, true);
            }
            E::QueueSettingsChanged {
                queue_id, settings, ..
            } => {
                self.targets.insert(*queue_id, Targets::of(settings));
            }
            E::CustomerOffered { .. }
            | E::OfferAccepted { .. }
            | E::OfferDeclined { .. }
            | E::OfferExpired { .. } => self.offer_event(at, event),
            E::MessageLeft {
                queue_id,
                organization_id,
                ..
            } => {
                if self.keeps(*queue_id, *organization_id) {
                    self.samples.left_messages.push(LeftMessage {
                        queue_id: *queue_id,
                        organization_id: *organization_id,
                        at,
                    });
                }
            }
            E::QueueHandlerAdded { .. } | E::QueueHandlerRemoved { .. } => {}
        }
    }

    /// A join: a new wait, and a first response awaited if the queue has a target for it.
    fn join(
        &mut self,
        at: DateTime<Utc>,
        queue_id: Uuid,
        organization_id: Uuid,
        conversation_id: Uuid,
    ) {
        self.start_wait(at, queue_id, organization_id, conversation_id, false);
        let target = self.targets.get(&queue_id).and_then(|t| t.first_response);
        if let Some(target) = target.filter(|_| self.keeps(queue_id, organization_id)) {
            self.responding
                .insert(conversation_id, self.samples.responses.len());
            self.samples.responses.push(Response {
                queue_id,
                organization_id,
                conversation_id,
                start: at,
                target,
                end: None,
            });
        }
    }

    /// A pick: the wait ends and a handle starts.
    fn pick(
        &mut self,
        at: DateTime<Utc>,
        queue_id: Uuid,
        organization_id: Uuid,
        conversation_id: Uuid,
        agent_id: Uuid,
    ) {
        self.end_wait(at, conversation_id, WaitOutcome::Picked { agent_id });
        // A conversation has one agent at a time; a stale handle (which the domain
        // never leaves) would be closed by the new pick.
        self.end_handle(at, conversation_id, HandleOutcome::TransferredOut);
        if self.keeps(queue_id, organization_id) {
            self.handling
                .insert(conversation_id, self.samples.handles.len());
            self.samples.handles.push(Handle {
                queue_id,
                organization_id,
                agent_id,
                conversation_id,
                start: at,
                end: None,
            });
        }
    }

    /// One event of auto routing's offers.
    fn offer_event(&mut self, at: DateTime<Utc>, event: &QueueEvent) {
        use QueueEvent as E;
        let (queue_id, organization_id, outcome) = match event {
            E::CustomerOffered {
                queue_id,
                organization_id,
                ..
            } => (*queue_id, *organization_id, OfferOutcome::Offered),
            E::OfferAccepted {
                queue_id,
                organization_id,
                ..
            } => (*queue_id, *organization_id, OfferOutcome::Accepted),
            E::OfferDeclined {
                queue_id,
                organization_id,
                ..
            } => (*queue_id, *organization_id, OfferOutcome::Declined),
            E::OfferExpired {
                queue_id,
                organization_id,
                ..
            } => (*queue_id, *organization_id, OfferOutcome::Expired),
            _ => return,
        };
        if self.keeps(queue_id, organization_id) {
            self.samples.offers.push(OfferEvent {
                queue_id,
                organization_id,
                at,
                outcome,
            });
        }
    }

    fn apply_conversation(&mut self, at: DateTime<Utc>, event: &ConversationEvent) {
        use ConversationEvent as E;
        match event {
            // Whether the end follows a leave (`was_waiting`) or a pick, the queue's stream has
            // already said what became of the wait; only an open handle ends here.
            E::ConversationEnded {
                conversation_id, ..
            } => {
                self.end_handle(at, *conversation_id, HandleOutcome::Ended);
                self.end_response(at, *conversation_id, false);
            }
            E::MessageSent {
                conversation_id,
                author,
                ..
            } if author.kind == AuthorKind::Agent => self.end_response(at, *conversation_id, true),
            E::ConversationRated {
                queue_id,
                organization_id,
                agent_id,
                score,
                ..
            } => {
                let kept = match (self.scope, queue_id) {
                    (Some(Scope::Queue(_)), None) => false,
                    (_, Some(queue_id)) => self.keeps(*queue_id, *organization_id),
                    (_, None) => self.keeps(Uuid::nil(), *organization_id),
                };
                if kept {
                    self.samples.ratings.push(Rating {
                        queue_id: *queue_id,
                        organization_id: *organization_id,
                        agent_id: *agent_id,
                        at,
                        score: score.get(),
                    });
                }
            }
            _ => {}
        }
    }

    fn start_wait(
        &mut self,
        at: DateTime<Utc>,
        queue_id: Uuid,
        organization_id: Uuid,
        conversation_id: Uuid,
        transferred_in: bool,
    ) {
        // The domain lets a conversation wait in one queue at a time; should a log say
        // otherwise, the newer wait replaces the older, which ends as moved on.
        self.end_wait(at, conversation_id, WaitOutcome::TransferredOut);
        if self.keeps(queue_id, organization_id) {
            if self.scope.is_some() {
                self.seen.insert(conversation_id);
            }
            self.waiting
                .insert(conversation_id, self.samples.waits.len());
            self.samples.waits.push(Wait {
                queue_id,
                organization_id,
                conversation_id,
                start: at,
                transferred_in,
                target: self.targets.get(&queue_id).and_then(|t| t.wait),
                end: None,
            });
        }
    }

    fn end_wait(&mut self, at: DateTime<Utc>, conversation_id: Uuid, outcome: WaitOutcome) {
        if let Some(index) = self.waiting.remove(&conversation_id) {
            if let Some(wait) = self.samples.waits.get_mut(index) {
                wait.end = Some(WaitEnd { at, outcome });
            }
        }
    }

    fn end_handle(&mut self, at: DateTime<Utc>, conversation_id: Uuid, outcome: HandleOutcome) {
        if let Some(index) = self.handling.remove(&conversation_id) {
            if let Some(handle) = self.samples.handles.get_mut(index) {
                handle.end = Some(HandleEnd { at, outcome });
            }
        }
    }

    fn end_response(&mut self, at: DateTime<Utc>, conversation_id: Uuid, answered: bool) {
        if let Some(index) = self.responding.remove(&conversation_id) {
            if let Some(response) = self.samples.responses.get_mut(index) {
                response.end = Some(ResponseEnd { at, answered });
            }
        }
    }

    pub fn samples(&self) -> &Samples {
        &self.samples
    }

    pub fn into_samples(self) -> Samples {
        self.samples
    }
}
