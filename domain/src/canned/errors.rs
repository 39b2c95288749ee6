use crate::error::{ErrorKind, Refusal};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CannedError {
    #[error("this key is taken in this scope")]
    KeyTaken,
    #[error("no such canned response")]
    UnknownResponse,
    #[error("the canned response exists already")]
    AlreadyCreated,
    #[error("these canned responses belong to another scope")]
    OtherScope,
}

impl Refusal for CannedError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::KeyTaken | Self::AlreadyCreated => ErrorKind::Conflict,
            Self::UnknownResponse => ErrorKind::NotFound,
            Self::OtherScope => ErrorKind::Invalid,
        }
    }
}
