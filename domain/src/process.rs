//! The process manager of invariant 2, as pure functions: an event in, the commands that finish
//! its work in other streams out. The store runs them from the durable feed (so a crash between
//! the first event and its follow-up only delays the follow-up), and the gateway may run the
//! same follow-ups at once to answer sooner. Running one twice is harmless: a follow-up whose
//! work is already done is refused by its aggregate (`AlreadyStarted`, `AlreadyAssigned`,
//! `ConversationEnded`, `AlreadyWaiting`), and a refused follow-up is settled, not retried.

use uuid::Uuid;

use crate::conversation::{ConversationCommand, ConversationEvent, EndReason};
use crate::event::Event;
use crate::ids::workload_id;
use crate::queue::{self, LeaveReason, QueueCommand, QueueEvent};
use crate::workload::WorkloadCommand;

#[derive(Debug, Clone, PartialEq)]
pub enum FollowUp {
    Queue {
        queue_id: Uuid,
        command: QueueCommand,
    },
    Conversation {
        conversation_id: Uuid,
        command: ConversationCommand,
    },
    /// A waiting customer's arrival in its transfer's target line (`transfer_in`, on queue
    /// `queue_id`) and its conversation waiting there (`requeue`), run as one append: both or
    /// neither. A conversation that ended meanwhile refuses its requeue, so no line keeps a
    /// customer who has gone.
    Transfer {
        queue_id: Uuid,
        transfer_in: QueueCommand,
        conversation_id: Uuid,
        requeue: ConversationCommand,
    },
    /// An agent's workload (`ids::workload_id`) lets go of a conversation that ended or was
    /// transferred away from it; a repeat finds nothing to release.
    Workload {
        workload_id: Uuid,
        command: WorkloadCommand,
    },
}

/// The release of `conversation_id` from `agent_id`'s workload in `organization_id`.
fn release(organization_id: Uuid, agent_id: Uuid, conversation_id: Uuid) -> FollowUp {
    FollowUp::Workload {
        workload_id: workload_id(organization_id, agent_id),
        command: WorkloadCommand::Release {
            organization_id,
            agent_id,
            conversation_id,
        },
    }
}

/// The start of the conversation a join decided, which runs in the join's own append: the
/// conversation's stream then refuses a repeat of the join (`AlreadyStarted`) after its customer
/// has left the queue's line, which the queue no longer remembers.
pub fn start_of_join(decided: &[QueueEvent]) -> Option<ConversationCommand> {
    decided.iter().find_map(|event| match event {
        QueueEvent::CustomerJoinedQueue {
            queue_id,
            organization_id,
            conversation_id,
            welcome_message,
            metadata,
            ..
        } => Some(ConversationCommand::StartCustomerConversation {
            conversation_id: *conversation_id,
            organization_id: *organization_id,
            queue_id: *queue_id,
            welcome_message: welcome_message.clone(),
            metadata: metadata.clone(),
        }),
        _ => None,
    })
}

/// The follow-ups of one event; most events have none. `event_id` is the stored event's id:
/// a transfer's id is derived from it, so every run of one follow-up names the same transfer.
pub fn follow_ups(event_id: Uuid, event: &Event) -> Vec<FollowUp> {
    match event {
        Event::Conversation(event) => of_conversation(event),
        Event::Queue(event) => of_queue(event_id, event),
        _ => Vec::new(),
    }
}

/// An agent has room again when its conversation ended or was handed over.
fn of_conversation(event: &ConversationEvent) -> Vec<FollowUp> {
    match event {
        ConversationEvent::ConversationEnded {
            conversation_id,
            organization_id,
            agent_id: Some(agent_id),
            ..
        } => vec![release(*organization_id, *agent_id, *conversation_id)],
        // Handed over: the agent it came from has room again (its teammate took it in the
        // accept's own append).
        ConversationEvent::HandoffAccepted {
            conversation_id,
            organization_id,
            from_agent_id: Some(from_agent_id),
            agent_id,
            ..
        } if from_agent_id != agent_id => {
            vec![release(*organization_id, *from_agent_id, *conversation_id)]
        }
        _ => Vec::new(),
    }
}

/// The other streams' part of a join, a pick, a leave and a transfer.
fn of_queue(event_id: Uuid, event: &QueueEvent) -> Vec<FollowUp> {
    match event {
        QueueEvent::CustomerJoinedQueue {
            conversation_id, ..
        } => start_of_join(std::slice::from_ref(event))
            .map(|command| FollowUp::Conversation {
                conversation_id: *conversation_id,
                command,
            })
            .into_iter()
            .collect(),
        QueueEvent::CustomerPicked {
            queue_id,
            conversation_id,
            agent_id,
            ..
        } => {
            vec![FollowUp::Conversation {
                conversation_id: *conversation_id,
                command: ConversationCommand::AssignAgent {
                    agent_id: *agent_id,
                    queue_id: *queue_id,
                },
            }]
        }
        QueueEvent::CustomerLeftQueue {
            queue_id,
            organization_id,
            conversation_id,
            reason,
            to_queue_id,
            by,
            transfer_id: arrived_by,
        } => match (reason, to_queue_id) {
            // Arrived in the same append (`TransferAcross`): nothing left to do.
            (LeaveReason::Transferred, _) if arrived_by.is_some() => Vec::new(),
            (LeaveReason::Transferred, Some(to_queue_id)) => {
                let transfer_id = Uuid::new_v5(&event_id, b"transfer");
                vec![FollowUp::Transfer {
                    queue_id: *to_queue_id,
                    transfer_in: QueueCommand::TransferIn {
                        transfer_id,
                        conversation_id: *conversation_id,
                        organization_id: *organization_id,
                        from_queue_id: *queue_id,
                        from_agent_id: None,
                        by: by.clone(),
                    },
                    conversation_id: *conversation_id,
                    requeue: ConversationCommand::Requeue {
                        queue_id: *to_queue_id,
                        transfer_id,
                        from_agent_id: None,
                    },
                }]
            }
            (LeaveReason::Transferred, None) => Vec::new(),
            (reason, _) => {
                let end_reason = match reason {
                    LeaveReason::Abandoned => EndReason::Abandoned,
                    LeaveReason::Timeout => EndReason::Timeout,
                    LeaveReason::Removed | LeaveReason::Transferred => EndReason::Ended,
                };
                vec![FollowUp::Conversation {
                    conversation_id: *conversation_id,
                    command: ConversationCommand::EndConversation {
                        by: queue::leaver(*reason, *conversation_id, by),
                        reason: end_reason,
                        left_queue: Some(*queue_id),
                        at: None,
                    },
                }]
            }
        },
        QueueEvent::ConversationTransferred {
            transfer_id,
            queue_id,
            organization_id,
            conversation_id,
            from_agent_id,
            ..
        } => {
            let mut follow_ups = vec![FollowUp::Conversation {
                conversation_id: *conversation_id,
                command: ConversationCommand::Requeue {
                    queue_id: *queue_id,
                    transfer_id: *transfer_id,
                    from_agent_id: *from_agent_id,
                },
            }];
            // Taken from its agent: the agent has room again.
            if let Some(agent_id) = from_agent_id {
                follow_ups.push(release(*organization_id, *agent_id, *conversation_id));
            }
            follow_ups
        }
        _ => Vec::new(),
    }
}
