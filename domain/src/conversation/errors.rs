use crate::error::{ErrorKind, Refusal};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConversationError {
    #[error("the conversation exists already")]
    AlreadyStarted,
    #[error("no such conversation")]
    UnknownConversation,
    #[error("you are not a participant of this conversation")]
    NotAParticipant,
    #[error("the conversation has ended")]
    ConversationEnded,
    #[error("only agents may do this")]
    AgentsOnly,
    #[error("only the customer may do this")]
    CustomerOnly,
    #[error("only a customer conversation has this")]
    NotACustomerConversation,
    #[error("a direct chat is between two different agents")]
    DirectWithSelf,
    #[error("a direct chat's id is derived from its pair")]
    DirectIdNotOfPair,
    #[error("this agent has the conversation already")]
    AlreadyAssigned,
    #[error("the conversation waits in this queue already")]
    AlreadyWaiting,
    #[error("the conversation is no longer with the agent it was transferred from")]
    NoLongerWithAgent,
    #[error("the customer waits in a queue: it leaves the line first")]
    StillWaiting,
    #[error("this message was sent already")]
    DuplicateMessage,
    #[error("an attachment is not one of this conversation's")]
    UnknownAttachment,
    #[error("a message carries at most 10 attachments")]
    TooManyAttachments,
    #[error("a message needs text or an attachment")]
    EmptyMessage,
    #[error("this attachment was uploaded already")]
    DuplicateAttachment,
    #[error("an attachment is at most 10 MiB")]
    AttachmentTooLarge,
    #[error("a conversation's attachments are at most 100 MiB together")]
    AttachmentQuotaExceeded,
    #[error("this note was added already")]
    DuplicateNote,
    #[error("this call exists already")]
    DuplicateCall,
    #[error("a call is in progress")]
    CallInProgress,
    #[error("no such call")]
    UnknownCall,
    #[error("the call has ended")]
    CallEnded,
    #[error("the conversation has been rated already")]
    AlreadyRated,
    #[error("the conversation has no message with this seq yet")]
    ReadPastTheEnd,
    #[error("the conversation has not ended")]
    NotEnded,
    #[error("the conversation ended too long ago to continue: start a new one")]
    ReopenWindowPassed,
    #[error("a left message is answered, not chatted in: only agents write in it")]
    LeftMessageIsAnswered,
    #[error("only an active conversation with an agent is handed over")]
    NotHandedOver,
    #[error("the conversation is with this agent already")]
    HandoffToItsAgent,
    #[error("only the conversation's agent or an operator hands it over")]
    NotYourConversation,
    #[error("no handoff of this conversation is open")]
    NoHandoffOpen,
    #[error("this conversation is handed over to another agent")]
    NotYourHandoff,
    #[error("the handoff has expired")]
    HandoffExpired,
    #[error("the handoff is not due to expire yet")]
    HandoffNotDue,
    #[error("conversation erased")]
    Erased,
}

impl Refusal for ConversationError {
    fn kind(&self) -> ErrorKind {
        match self {
            // A conversation the caller may not see is answered as unknown (never reveal it).
            Self::UnknownConversation | Self::NotAParticipant | Self::UnknownCall => {
                ErrorKind::NotFound
            }
            Self::AgentsOnly | Self::CustomerOnly | Self::NotYourConversation => {
                ErrorKind::Forbidden
            }
            Self::DirectWithSelf
            | Self::DirectIdNotOfPair
            | Self::UnknownAttachment
            | Self::TooManyAttachments
            | Self::EmptyMessage
            | Self::ReadPastTheEnd => ErrorKind::Invalid,
            Self::AttachmentTooLarge | Self::AttachmentQuotaExceeded => ErrorKind::TooLarge,
            Self::AlreadyStarted
            | Self::ConversationEnded
            | Self::NotACustomerConversation
            | Self::AlreadyAssigned
            | Self::AlreadyWaiting
            | Self::NoLongerWithAgent
            | Self::StillWaiting
            | Self::DuplicateMessage
            | Self::DuplicateAttachment
            | Self::DuplicateNote
            | Self::DuplicateCall
            | Self::CallInProgress
            | Self::CallEnded
            | Self::AlreadyRated
            | Self::NotEnded
            | Self::ReopenWindowPassed
            | Self::NotHandedOver
            | Self::HandoffToItsAgent
            | Self::NoHandoffOpen
            | Self::HandoffExpired
            | Self::HandoffNotDue
            | Self::Erased => ErrorKind::Conflict,
            Self::LeftMessageIsAnswered | Self::NotYourHandoff => ErrorKind::Forbidden,
        }
    }
}
