//! `conversations`: each conversation's kind, status, agent, metadata, tags, times and rating —
//! and so each agent's inbox and open count — plus each organization's tags, for suggestions.
//! The status follows the conversation's own stream (started → waiting or active, agent
//! assigned → active, requeued → waiting, ended), which the process manager keeps in step with
//! the queue's. Verified returning customers' conversations are linked by their reference, from
//! the queue's `CustomerJoinedQueue`.

pub mod read;

use std::collections::HashMap;

use async_trait::async_trait;
use domain::conversation::{ConversationEvent, ConversationKind};
use domain::queue::QueueEvent;
use domain::Event;
use serde_json::json;
use store::event::StoredEvent;

use crate::database::{micros, Tx};
use crate::params;
use crate::runs;
use crate::runtime::{Index, Projection, ProjectionError, Table};

pub struct Conversations;

const TABLES: &[Table] = &[
    Table {
        name: "rm_conversations",
        columns: "conversation_id TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT, \
                  organization_id TEXT NOT NULL, queue_id TEXT, status TEXT NOT NULL, \
                  agent_id TEXT, metadata TEXT NOT NULL, live TEXT NOT NULL, \
                  participants TEXT NOT NULL, created_at BIGINT NOT NULL, picked_at BIGINT, \
                  ended_at BIGINT, end_reason TEXT, created_position BIGINT NOT NULL, \
                  rating_score BIGINT, rating_comment TEXT, last_seq BIGINT NOT NULL, \
                  answered_at BIGINT, handoff_id TEXT, handoff_to TEXT, \
                  handoff_expires_at BIGINT, erased_at BIGINT",
        indexes: &[
            Index {
                name: "rm_conversations_by_org",
                columns: "organization_id, created_position",
                unique: false,
                lookup: false,
            },
            Index {
                name: "rm_conversations_by_agent",
                columns: "agent_id, status",
                unique: false,
                lookup: false,
            },
            // The retention duty's question: what of an organization ended before a time.
            Index {
                name: "rm_conversations_by_end",
                columns: "organization_id, ended_at",
                unique: false,
                lookup: false,
            },
        ],
        full_text: None,
    },
    Table {
        name: "rm_conversation_tags",
        columns: "conversation_id TEXT NOT NULL, tag TEXT NOT NULL, \
                  PRIMARY KEY (conversation_id, tag)",
        indexes: &[],
        full_text: None,
    },
    // How far each agent has read each conversation: its unread count is the conversation's
    // `last_seq` less this (an agent has read what it wrote).
    Table {
        name: "rm_reads",
        columns: "agent_id TEXT NOT NULL, conversation_id TEXT NOT NULL, seq BIGINT NOT NULL, \
                  PRIMARY KEY (agent_id, conversation_id)",
        indexes: &[],
        full_text: None,
    },
    // Verified customers (`VerifiedCustomer` of the join): which conversations are one
    // returning customer's. `user_id` and `name` are personal data, as in the event.
    Table {
        name: "rm_customer_links",
        columns: "conversation_id TEXT PRIMARY KEY, organization_id TEXT NOT NULL, \
                  queue_id TEXT NOT NULL, customer_ref TEXT NOT NULL, user_id TEXT NOT NULL, \
                  name TEXT, position BIGINT NOT NULL",
        indexes: &[Index {
            name: "rm_customer_links_by_ref",
            columns: "customer_ref, position",
            unique: false,
            lookup: false,
        }],
        full_text: None,
    },
    Table {
        name: "rm_org_tags",
        columns: "organization_id TEXT NOT NULL, tag TEXT NOT NULL, uses BIGINT NOT NULL, \
                  last_used BIGINT NOT NULL, PRIMARY KEY (organization_id, tag)",
        indexes: &[],
        full_text: None,
    },
];

fn json(value: &impl serde::Serialize) -> Result<String, ProjectionError> {
    serde_json::to_string(value).map_err(|e| ProjectionError::Invalid(e.to_string()))
}

#[async_trait]
impl Projection for Conversations {
    fn name(&self) -> &'static str {
        "conversations"
    }

    fn version(&self) -> i64 {
        // 2: `last_seq` and `rm_reads` (unread counts). 3: left messages, reopening.
        // 4: `answered_at` (an agent's first message, for the first-response target) and
        // `rm_customer_links` (returning customers). 5: the open handoff to a teammate.
        // 6: `erased_at` (`CustomerErased`).
        6
    }

    fn tables(&self) -> &'static [Table] {
        TABLES
    }

    fn event_types(&self) -> Option<&'static [&'static str]> {
        const TYPES: &[&str] = &domain::event_types![
            "CustomerJoinedQueue",
            "ConversationStarted",
            "AgentAssigned",
            "ConversationRequeued",
            "CustomerMetadataSet",
            "LiveMetadataUpdated",
            "TagAdded",
            "TagRemoved",
            "ConversationRated",
            "ConversationEnded",
            "MessageSent",
            "ConversationRead",
            "ConversationReopened",
            "HandoffOffered",
            "HandoffAccepted",
            "HandoffDeclined",
            "HandoffExpired",
            "CustomerErased",
        ];
        Some(TYPES)
    }

    async fn apply(
        &self,
        tx: &mut Tx,
        event: &StoredEvent,
        decoded: &Event,
    ) -> Result<(), ProjectionError> {
        if let Event::Queue(QueueEvent::CustomerJoinedQueue {
            conversation_id,
            organization_id,
            queue_id,
            customer: Some(customer),
            ..
        }) = decoded
        {
            tx.execute(
                "INSERT INTO rm_customer_links{s} (conversation_id, organization_id, queue_id,
                 customer_ref, user_id, name, position) VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (conversation_id) DO NOTHING",
                params![
                    conversation_id,
                    organization_id,
                    queue_id,
                    customer.customer_ref,
                    customer.user_id.as_str(),
                    customer.name.as_ref().map(|name| name.as_str().to_owned()),
                    event.position
                ],
            )
            .await?;
            return Ok(());
        }
        let Event::Conversation(conversation_event) = decoded else {
            return Ok(());
        };
        use ConversationEvent as E;
        match conversation_event {
            E::ConversationStarted { .. }
            | E::AgentAssigned { .. }
            | E::ConversationReopened { .. }
            | E::ConversationRequeued { .. }
            | E::ConversationEnded { .. } => lifecycle(tx, event, conversation_event).await?,
            E::HandoffOffered { .. }
            | E::HandoffAccepted { .. }
            | E::HandoffDeclined { .. }
            | E::HandoffExpired { .. } => handoff(tx, conversation_event).await?,
            E::CustomerMetadataSet { .. }
            | E::LiveMetadataUpdated { .. }
            | E::TagAdded { .. }
            | E::TagRemoved { .. }
            | E::ConversationRated { .. }
            | E::CustomerErased { .. } => details(tx, event, conversation_event).await?,
            E::MessageSent { .. } | E::ConversationRead { .. } => {
                let mut traffic = Traffic::default();
                traffic.note(event, decoded);
                traffic.write(tx).await?
            }
            E::AttachmentUploaded { .. }
            | E::NoteAdded { .. }
            | E::CallStarted { .. }
            | E::CallEnded { .. } => {}
        }
        Ok(())
    }

    /// The batch's events in log order, except messages and reads: their rows are written
    /// once per conversation and per reader at the end of the batch ([`Traffic`]). A busy
    /// log is mostly messages, and one statement per message per row was a fifth of a
    /// rebuild's time; the rows end the same, since nothing else this projection does reads
    /// or writes those columns, and a conversation's row is made (`ConversationStarted`)
    /// before its first message.
    async fn apply_all(
        &self,
        tx: &mut Tx,
        events: &[crate::runs::Applied<'_>],
    ) -> Result<(), ProjectionError> {
        let mut traffic = Traffic::default();
        for (n, &(event, decoded)) in events.iter().enumerate() {
            crate::runtime::now_and_then(n).await;
            if !traffic.note(event, decoded) {
                self.apply(tx, event, decoded).await?;
            }
        }
        traffic.write(tx).await
    }
}

/// What messages and reads leave in the rows, folded over a batch: per conversation its last
/// message and when an agent first answered; per agent and conversation the highest `seq` it
/// read (an agent has read what it wrote).
#[derive(Default)]
struct Traffic {
    last: HashMap<uuid::Uuid, (u64, Option<i64>)>,
    reads: HashMap<(uuid::Uuid, uuid::Uuid), u64>,
}

impl Traffic {
    /// Folds `decoded` in if it is a message or a read; false for any other event.
    fn note(&mut self, event: &StoredEvent, decoded: &Event) -> bool {
        let Event::Conversation(conversation_event) = decoded else {
            return false;
        };
        match conversation_event {
            ConversationEvent::MessageSent {
                conversation_id,
                seq,
                author,
                ..
            } => {
                let agent = author.kind == domain::values::AuthorKind::Agent;
                let answered = agent.then(|| micros(event.recorded_at));
                let (last, first) = self.last.entry(*conversation_id).or_insert((*seq, None));
                *last = *seq;
                *first = first.or(answered);
                if agent {
                    self.read(author.id, *conversation_id, *seq);
                }
                true
            }
            ConversationEvent::ConversationRead {
                conversation_id,
                agent_id,
                seq,
                ..
            } => {
                self.read(*agent_id, *conversation_id, *seq);
                true
            }
            _ => false,
        }
    }

    fn read(&mut self, agent_id: uuid::Uuid, conversation_id: uuid::Uuid, seq: u64) {
        let read = self.reads.entry((agent_id, conversation_id)).or_default();
        *read = (*read).max(seq);
    }

    /// Writes the rows: a statement per row on SQLite (no round trips there), one over all of
    /// them on Postgres (`crate::runs`). A read never goes back.
    async fn write(self, tx: &mut Tx) -> Result<(), ProjectionError> {
        if tx.is_postgres() {
            return self.write_sets(tx).await;
        }
        for (conversation_id, (seq, answered_at)) in self.last {
            tx.execute(
                "UPDATE rm_conversations{s} SET last_seq = $1,
                 answered_at = COALESCE(answered_at, $2) WHERE conversation_id = $3",
                params![seq, answered_at, conversation_id],
            )
            .await?;
        }
        for ((agent_id, conversation_id), seq) in self.reads {
            tx.execute(
                "INSERT INTO rm_reads{s} (agent_id, conversation_id, seq) VALUES ($1, $2, $3)
                 ON CONFLICT (agent_id, conversation_id)
                 DO UPDATE SET seq = CASE WHEN excluded.seq > rm_reads{s}.seq THEN excluded.seq ELSE rm_reads{s}.seq END",
                params![agent_id, conversation_id, seq],
            )
            .await?;
        }
        Ok(())
    }

    async fn write_sets(self, tx: &mut Tx) -> Result<(), ProjectionError> {
        let last: Vec<serde_json::Value> = self
            .last
            .into_iter()
            .map(|(conversation_id, (seq, answered_at))| {
                json!({"conversation_id": conversation_id, "seq": seq, "answered_at": answered_at})
            })
            .collect();
        runs::over(
            tx,
            "UPDATE rm_conversations{s} AS c SET last_seq = v.seq,
             answered_at = COALESCE(c.answered_at, v.answered_at)
             FROM json_to_recordset($1::json) AS v(conversation_id text, seq bigint,
             answered_at bigint)
             WHERE c.conversation_id = v.conversation_id",
            &last,
        )
        .await?;
        let reads: Vec<serde_json::Value> = self
            .reads
            .into_iter()
            .map(|((agent_id, conversation_id), seq)| {
                json!({"agent_id": agent_id, "conversation_id": conversation_id, "seq": seq})
            })
            .collect();
        runs::over(
            tx,
            "INSERT INTO rm_reads{s} (agent_id, conversation_id, seq)
             SELECT agent_id, conversation_id, seq
             FROM json_to_recordset($1::json) AS v(agent_id text, conversation_id text, seq bigint)
             ON CONFLICT (agent_id, conversation_id)
             DO UPDATE SET seq = CASE WHEN excluded.seq > rm_reads{s}.seq THEN excluded.seq ELSE rm_reads{s}.seq END",
            &reads,
        )
        .await?;
        Ok(())
    }
}

/// The conversation's status and agent through its life: started, assigned, requeued,
/// reopened, ended.
async fn lifecycle(
    tx: &mut Tx,
    event: &StoredEvent,
    conversation_event: &ConversationEvent,
) -> Result<(), ProjectionError> {
    use ConversationEvent as E;
    let at = micros(event.recorded_at);
    match conversation_event {
        E::ConversationStarted {
            conversation_id,
            organization_id,
            kind,
            queue_id,
            name,
            participants,
            ..
        } => {
            let status = match kind {
                ConversationKind::Customer | ConversationKind::LeftMessage => {
                    read::ConversationStatus::Waiting
                }
                ConversationKind::Channel | ConversationKind::Direct => {
                    read::ConversationStatus::Active
                }
            };
            tx.execute(
                "INSERT INTO rm_conversations{s} (conversation_id, kind, name, organization_id,
                 queue_id, status, agent_id, metadata, live, participants, created_at,
                 created_position, last_seq)
                 VALUES ($1, $2, $3, $4, $5, $6, NULL, '{}', '{}', $7, $8, $9, 0)",
                params![
                    conversation_id,
                    kind.as_str(),
                    name.as_ref().map(|n| n.as_str().to_owned()),
                    organization_id,
                    *queue_id,
                    status.as_str(),
                    json(participants)?,
                    at,
                    event.position
                ],
            )
            .await?;
        }
        E::AgentAssigned {
            conversation_id,
            queue_id,
            agent_id,
            ..
        } => {
            tx.execute(
                "UPDATE rm_conversations{s} SET status = 'active', agent_id = $1,
                 queue_id = $2, picked_at = $3 WHERE conversation_id = $4",
                params![agent_id, queue_id, at, conversation_id],
            )
            .await?;
        }
        E::ConversationReopened {
            conversation_id,
            agent_id,
            ..
        } => {
            tx.execute(
                "UPDATE rm_conversations{s} SET status = 'active', agent_id = $1,
                 ended_at = NULL, end_reason = NULL WHERE conversation_id = $2",
                params![agent_id, conversation_id],
            )
            .await?;
        }
        E::ConversationRequeued {
            conversation_id,
            queue_id,
            ..
        } => {
            tx.execute(
                "UPDATE rm_conversations{s} SET status = 'waiting', agent_id = NULL,
                 handoff_id = NULL, handoff_to = NULL, handoff_expires_at = NULL,
                 queue_id = $1, picked_at = NULL WHERE conversation_id = $2",
                params![queue_id, conversation_id],
            )
            .await?;
        }
        E::ConversationEnded {
            conversation_id,
            reason,
            ..
        } => {
            let reason = json(reason)?;
            tx.execute(
                "UPDATE rm_conversations{s} SET status = 'ended', ended_at = $1, end_reason = $2,
                 handoff_id = NULL, handoff_to = NULL, handoff_expires_at = NULL
                 WHERE conversation_id = $3",
                params![at, reason.trim_matches('"').to_owned(), conversation_id],
            )
            .await?;
        }
        _ => {}
    }
    Ok(())
}

/// The open handoff to a teammate, while it is open.
async fn handoff(
    tx: &mut Tx,
    conversation_event: &ConversationEvent,
) -> Result<(), ProjectionError> {
    use ConversationEvent as E;
    match conversation_event {
        E::HandoffOffered {
            conversation_id,
            handoff_id,
            to_agent_id,
            expires_at,
            ..
        } => {
            tx.execute(
                "UPDATE rm_conversations{s} SET handoff_id = $1, handoff_to = $2,
                 handoff_expires_at = $3 WHERE conversation_id = $4",
                params![
                    handoff_id,
                    to_agent_id,
                    micros(*expires_at),
                    conversation_id
                ],
            )
            .await?;
        }
        E::HandoffAccepted {
            conversation_id,
            agent_id,
            ..
        } => {
            tx.execute(
                "UPDATE rm_conversations{s} SET agent_id = $1, handoff_id = NULL,
                 handoff_to = NULL, handoff_expires_at = NULL WHERE conversation_id = $2",
                params![agent_id, conversation_id],
            )
            .await?;
        }
        E::HandoffDeclined {
            conversation_id, ..
        }
        | E::HandoffExpired {
            conversation_id, ..
        } => {
            tx.execute(
                "UPDATE rm_conversations{s} SET handoff_id = NULL, handoff_to = NULL,
                 handoff_expires_at = NULL WHERE conversation_id = $1",
                params![conversation_id],
            )
            .await?;
        }
        _ => {}
    }
    Ok(())
}

/// What is known about the customer and the conversation: metadata, live metadata, tags,
/// the rating, and the erasure of what is personal.
async fn details(
    tx: &mut Tx,
    event: &StoredEvent,
    conversation_event: &ConversationEvent,
) -> Result<(), ProjectionError> {
    use ConversationEvent as E;
    match conversation_event {
        E::CustomerMetadataSet {
            conversation_id,
            metadata,
            ..
        } => {
            tx.execute(
                "UPDATE rm_conversations{s} SET metadata = $1 WHERE conversation_id = $2",
                params![json(metadata)?, conversation_id],
            )
            .await?;
        }
        E::LiveMetadataUpdated {
            conversation_id,
            live,
            ..
        } => {
            tx.execute(
                "UPDATE rm_conversations{s} SET live = $1 WHERE conversation_id = $2",
                params![json(live)?, conversation_id],
            )
            .await?;
        }
        E::TagAdded {
            conversation_id,
            organization_id,
            tag,
            ..
        } => {
            tx.execute(
                "INSERT INTO rm_conversation_tags{s} (conversation_id, tag) VALUES ($1, $2)
                 ON CONFLICT (conversation_id, tag) DO NOTHING",
                params![conversation_id, tag.as_str()],
            )
            .await?;
            tx.execute(
                "INSERT INTO rm_org_tags{s} (organization_id, tag, uses, last_used)
                 VALUES ($1, $2, 1, $3) ON CONFLICT (organization_id, tag)
                 DO UPDATE SET uses = rm_org_tags{s}.uses + 1, last_used = excluded.last_used",
                params![organization_id, tag.as_str(), event.position],
            )
            .await?;
        }
        E::TagRemoved {
            conversation_id,
            tag,
            ..
        } => {
            tx.execute(
                "DELETE FROM rm_conversation_tags{s} WHERE conversation_id = $1 AND tag = $2",
                params![conversation_id, tag.as_str()],
            )
            .await?;
        }
        E::ConversationRated {
            conversation_id,
            score,
            comment,
            ..
        } => {
            tx.execute(
                "UPDATE rm_conversations{s} SET rating_score = $1, rating_comment = $2
                 WHERE conversation_id = $3",
                params![
                    i64::from(score.get()),
                    comment.as_ref().map(|c| c.as_str().to_owned()),
                    conversation_id
                ],
            )
            .await?;
        }
        // The customer's words about itself go; the conversation's shape, times and
        // score (statistics) stay. A verified customer's link goes too: nothing ties the
        // conversation to the person any more.
        E::CustomerErased {
            conversation_id,
            at: erased_at,
            ..
        } => {
            tx.execute(
                "UPDATE rm_conversations{s} SET metadata = '{}', live = '{}',
                 rating_comment = NULL, erased_at = $1 WHERE conversation_id = $2",
                params![micros(*erased_at), conversation_id],
            )
            .await?;
            tx.execute(
                "DELETE FROM rm_customer_links{s} WHERE conversation_id = $1",
                params![conversation_id],
            )
            .await?;
        }
        _ => {}
    }
    Ok(())
}
