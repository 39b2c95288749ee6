//! Value types, each parsed once (STYLE.md habit 4): once a `MessageText` exists it is valid,
//! and no handler checks it again. Deserializing goes through the same `parse`, so a stored or
//! received value can never bypass the limits of API.md's Limits section.
//!
//! The files: this one, what every value shares (the refusal, the erased placeholder); `text`,
//! the bounded texts people write (messages, notes, names, …); `labels`, the short words that
//! name things (tags, canned responses' keys); `people`, who someone is and may do (email,
//! password, visitor key, role, author); `numbers`, the bounded numbers (score, limits,
//! retention).

mod labels;
mod numbers;
mod people;
mod text;

pub use labels::{CannedKey, Tag};
pub use numbers::{Limit, RetentionDays, Score};
pub use people::{Author, AuthorKind, Email, Password, Role, VisitorKey};
pub use text::{
    BlockReason, CannedText, DisplayName, FileName, MessageText, Name, NoteText, RatingComment,
    WelcomeMessage,
};

/// What an erased personal field reads as (a sealed field whose data subject's key was
/// destroyed, or a read-model row of an erased customer): valid for every text type it replaces.
pub const ERASED: &str = "[erased]";

/// Why a value was refused. The gateway answers 422 with this text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidValue {
    #[error("{field} must not be empty")]
    Empty { field: &'static str },
    #[error("{field} is longer than {max} characters")]
    TooLong { field: &'static str, max: usize },
    #[error("{field} is larger than {max} bytes as JSON")]
    TooLarge { field: &'static str, max: usize },
    #[error("{field} is not valid: {reason}")]
    Malformed { field: &'static str, reason: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deserializing_goes_through_parse() {
        let refused: Result<MessageText, _> = serde_json::from_str("\"\"");
        assert!(refused.is_err());
        let tag: Tag = serde_json::from_str("\"Billing\"").unwrap();
        assert_eq!(tag.as_str(), "billing");
        assert!(serde_json::from_str::<Score>("6").is_err());
        assert!(serde_json::from_str::<Score>("0").is_err());
        assert_eq!(serde_json::from_str::<Score>("5").unwrap().get(), 5);
    }
}
