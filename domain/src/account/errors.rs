use crate::error::{ErrorKind, Refusal};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    #[error("an account with this email exists")]
    EmailTaken,
    #[error("no such account")]
    UnknownAccount,
    #[error("the email address is confirmed already")]
    EmailConfirmedAlready,
}

impl Refusal for AccountError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::EmailTaken | Self::EmailConfirmedAlready => ErrorKind::Conflict,
            Self::UnknownAccount => ErrorKind::NotFound,
        }
    }
}
