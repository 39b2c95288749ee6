//! `Workload`: the conversations one agent has open in one organization, one stream per pair
//! (a deterministic id, `ids::workload_id`). It decides `capacity_per_agent`: a pick or an
//! accepted offer appends to the queue's stream and to this one in one append, each at the
//! version it was decided against, so two picks at once cannot both fit in the last free place
//! (a stream's state decides, never a read model's count). The conversation's end, or its
//! transfer away from the agent, releases it (the process manager's follow-up, idempotent).
//!
//! It holds only what is open, and when the agent last took a conversation (auto routing
//! offers to the agent idle longest).

mod commands;
mod errors;
mod events;

pub use commands::WorkloadCommand;
pub use errors::WorkloadError;
pub use events::WorkloadEvent;

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Workload {
    /// The conversations the agent has open in the organization.
    pub open: BTreeSet<Uuid>,
    /// When the agent last took a conversation; `None` if never.
    pub last_taken_at: Option<DateTime<Utc>>,
}

impl crate::Snapshot for Workload {
    const SNAPSHOT_VERSION: u32 = 1;
}

impl Aggregate for Workload {
    const TYPE: &'static str = "workload";
    type Command = WorkloadCommand;
    type Event = WorkloadEvent;
    type Error = WorkloadError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        use WorkloadCommand as C;
        use WorkloadEvent as E;
        match command {
            C::Take {
                organization_id,
                agent_id,
                conversation_id,
                queue_id,
                capacity,
                at,
            } => {
                if self.open.contains(&conversation_id) {
                    return Err(WorkloadError::AlreadyTaken);
                }
                let open = u32::try_from(self.open.len()).unwrap_or(u32::MAX);
                if capacity.is_some_and(|max| open >= max.get()) {
                    return Err(WorkloadError::AtCapacity);
                }
                let event = E::ConversationTaken {
                    organization_id,
                    agent_id,
                    conversation_id,
                    queue_id,
                    at,
                };
                sink.write(event, self).await;
            }
            C::Release {
                organization_id,
                agent_id,
                conversation_id,
            } => {
                // Released already (or taken before workloads were kept): nothing to do.
                if self.open.contains(&conversation_id) {
                    let event = E::ConversationReleased {
                        organization_id,
                        agent_id,
                        conversation_id,
                    };
                    sink.write(event, self).await;
                }
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            WorkloadEvent::ConversationTaken {
                conversation_id,
                at,
                ..
            } => {
                self.open.insert(conversation_id);
                self.last_taken_at = Some(at);
            }
            WorkloadEvent::ConversationReleased {
                conversation_id, ..
            } => {
                self.open.remove(&conversation_id);
            }
        }
    }
}
