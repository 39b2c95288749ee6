use crate::error::{ErrorKind, Refusal};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    #[error("an account with this email exists")]
    EmailTaken,
}

impl Refusal for AccountError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::EmailTaken => ErrorKind::Conflict,
        }
    }
}
