//! How a conversation begins: from a queue (a chat, or a message left while nobody answers),
//! as a channel of an organization, or as a direct chat of two agents. A stream starts once.

use cqrs_es::event_sink::EventSink;
use uuid::Uuid;

use super::{
    Conversation, ConversationCommand, ConversationError, ConversationEvent as E, ConversationKind,
};
use crate::metadata::CustomerMetadata;
use crate::values::Author;

impl Conversation {
    /// Starts the stream: `command` is one of the four that do.
    pub(super) async fn start(
        &mut self,
        command: ConversationCommand,
        sink: &EventSink<Self>,
    ) -> Result<(), ConversationError> {
        use ConversationCommand as C;
        if self.id.is_some() {
            return Err(ConversationError::AlreadyStarted);
        }
        match command {
            C::StartCustomerConversation {
                conversation_id,
                organization_id,
                queue_id,
                welcome_message,
                metadata,
            } => {
                let kind = ConversationKind::Customer;
                self.start_from_queue(
                    kind,
                    conversation_id,
                    organization_id,
                    queue_id,
                    metadata,
                    sink,
                )
                .await;
                if let Some(text) = welcome_message {
                    let message = E::MessageSent {
                        conversation_id,
                        organization_id,
                        message_id: Uuid::new_v5(&conversation_id, b"welcome"),
                        seq: self.last_seq + 1,
                        author: Author::system(),
                        text: text.as_str().to_owned(),
                        attachments: Vec::new(),
                    };
                    sink.write(message, self).await;
                }
            }
            C::LeaveMessage {
                conversation_id,
                organization_id,
                queue_id,
                metadata,
                message_id,
                text,
            } => {
                let kind = ConversationKind::LeftMessage;
                let author = self
                    .start_from_queue(
                        kind,
                        conversation_id,
                        organization_id,
                        queue_id,
                        metadata,
                        sink,
                    )
                    .await;
                let message = E::MessageSent {
                    conversation_id,
                    organization_id,
                    message_id,
                    seq: self.last_seq + 1,
                    author,
                    text: text.as_str().to_owned(),
                    attachments: Vec::new(),
                };
                sink.write(message, self).await;
            }
            C::StartChannel {
                conversation_id,
                organization_id,
                name,
                by,
            } => {
                let started = E::ConversationStarted {
                    conversation_id,
                    organization_id,
                    kind: ConversationKind::Channel,
                    queue_id: None,
                    name: Some(name),
                    participants: Vec::new(),
                    by: Some(by),
                };
                sink.write(started, self).await;
            }
            C::StartDirect {
                conversation_id,
                organization_id,
                agents,
            } => {
                self.start_direct(conversation_id, organization_id, agents, sink)
                    .await?
            }
            _ => unreachable!("`handle` gives `start` only the commands that start a stream"),
        }
        Ok(())
    }

    /// Starts a conversation from a queue, with what the customer said of itself; returns the
    /// customer as an author.
    async fn start_from_queue(
        &mut self,
        kind: ConversationKind,
        conversation_id: Uuid,
        organization_id: Uuid,
        queue_id: Uuid,
        metadata: CustomerMetadata,
        sink: &EventSink<Self>,
    ) -> Author {
        let started = E::ConversationStarted {
            conversation_id,
            organization_id,
            kind,
            queue_id: Some(queue_id),
            name: None,
            participants: Vec::new(),
            by: None,
        };
        sink.write(started, self).await;
        let customer = Author::customer(conversation_id, metadata.name().unwrap_or("Customer"));
        if !metadata.is_empty() {
            let set = E::CustomerMetadataSet {
                conversation_id,
                organization_id,
                metadata,
                by: customer.clone(),
            };
            sink.write(set, self).await;
        }
        customer
    }

    async fn start_direct(
        &mut self,
        conversation_id: Uuid,
        organization_id: Uuid,
        agents: [Uuid; 2],
        sink: &EventSink<Self>,
    ) -> Result<(), ConversationError> {
        let [a, b] = agents;
        if a == b {
            return Err(ConversationError::DirectWithSelf);
        }
        if conversation_id != crate::ids::direct_conversation_id(organization_id, a, b) {
            return Err(ConversationError::DirectIdNotOfPair);
        }
        let mut participants = vec![a, b];
        participants.sort();
        let started = E::ConversationStarted {
            conversation_id,
            organization_id,
            kind: ConversationKind::Direct,
            queue_id: None,
            name: None,
            participants,
            by: Some(a),
        };
        sink.write(started, self).await;
        Ok(())
    }
}
