use crate::error::{ErrorKind, Refusal};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkloadError {
    #[error("you have as many open conversations as this queue allows an agent")]
    AtCapacity,
    #[error("the agent has this conversation already")]
    AlreadyTaken,
}

impl Refusal for WorkloadError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::AtCapacity | Self::AlreadyTaken => ErrorKind::Conflict,
        }
    }
}
