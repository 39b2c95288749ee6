use crate::error::{ErrorKind, Refusal};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    #[error("the queue exists already")]
    AlreadyCreated,
    #[error("no such queue")]
    UnknownQueue,
    #[error("the queue is closed")]
    QueueClosed,
    #[error("the queue is full")]
    QueueFull,
    #[error("this conversation has joined the queue already")]
    AlreadyJoined,
    #[error("the customer is not waiting in this queue")]
    NotWaiting,
    #[error("the conversation is waiting in this queue already")]
    AlreadyWaiting,
    #[error("nobody is waiting")]
    NobodyWaiting,
    #[error("you are not a handler of this queue")]
    NotAHandler,
    #[error("the queue routes its customers by hand: it makes no offers")]
    NotAutoRouted,
    #[error("the customer is under an offer already")]
    AlreadyOffered,
    #[error("this agent declined this customer already")]
    DeclinedBefore,
    #[error("no offer of this customer is open")]
    NoOffer,
    #[error("the offer of this customer is another agent's")]
    NotYourOffer,
    #[error("the offer has expired")]
    OfferExpired,
    #[error("the offer has not expired yet")]
    OfferNotDue,
    #[error("a transfer goes to a queue of the same organization")]
    OtherOrganization,
    #[error("a transfer names the queue it goes to")]
    TransferNeedsTarget,
    #[error("this transfer has arrived already")]
    TransferAlreadyArrived,
    #[error("the target queue is closed")]
    TargetClosed,
}

impl Refusal for QueueError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::UnknownQueue | Self::OtherOrganization => ErrorKind::NotFound,
            Self::NotAHandler => ErrorKind::Forbidden,
            Self::TransferNeedsTarget => ErrorKind::Invalid,
            Self::AlreadyCreated
            | Self::QueueClosed
            | Self::QueueFull
            | Self::AlreadyJoined
            | Self::NotWaiting
            | Self::AlreadyWaiting
            | Self::NobodyWaiting
            | Self::NotAutoRouted
            | Self::AlreadyOffered
            | Self::DeclinedBefore
            | Self::NoOffer
            | Self::NotYourOffer
            | Self::OfferExpired
            | Self::OfferNotDue
            | Self::TransferAlreadyArrived
            | Self::TargetClosed => ErrorKind::Conflict,
        }
    }
}
