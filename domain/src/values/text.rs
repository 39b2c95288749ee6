//! The texts people write, each trimmed, non-empty and bounded in characters (API.md's
//! Limits): messages, notes, welcome messages, canned texts, names, file names, comments,
//! reasons.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::InvalidValue;

/// Defines a string value type that is trimmed, non-empty and at most `$max` characters.
macro_rules! bounded_text {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The most characters this value may hold.
            pub const MAX_CHARS: usize = $max;

            /// Trims the text and checks it is not empty and within the limit.
            pub fn parse(raw: impl AsRef<str>) -> Result<Self, InvalidValue> {
                let text = raw.as_ref().trim();
                if text.is_empty() {
                    return Err(InvalidValue::Empty { field: $field });
                }
                if text.chars().count() > Self::MAX_CHARS {
                    return Err(InvalidValue::TooLong { field: $field, max: Self::MAX_CHARS });
                }
                Ok(Self(text.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidValue;
            fn try_from(raw: String) -> Result<Self, Self::Error> {
                Self::parse(raw)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

bounded_text!(
    /// The text of a message: 1 to 10,000 characters.
    MessageText,
    "text",
    10_000
);
bounded_text!(
    /// The text of a private note: 1 to 10,000 characters.
    NoteText,
    "text",
    10_000
);
bounded_text!(
    /// A queue's welcome message, sent as message 1 of each of its conversations.
    WelcomeMessage,
    "welcome_message",
    10_000
);
bounded_text!(
    /// The text of a canned response: 1 to 10,000 characters.
    CannedText,
    "text",
    10_000
);
bounded_text!(
    /// A person's display name.
    DisplayName,
    "name",
    200
);
bounded_text!(
    /// The name of an organization, a queue or a channel.
    Name,
    "name",
    200
);
bounded_text!(
    /// A file name of an attachment, as the uploader gave it.
    FileName,
    "name",
    255
);
bounded_text!(
    /// A comment given with a rating.
    RatingComment,
    "comment",
    2_000
);
bounded_text!(
    /// Why an agent blocked a customer, for the operators who review blocks.
    BlockReason,
    "reason",
    500
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_text_is_trimmed_and_bounded() {
        assert_eq!(MessageText::parse("  hi ").unwrap().as_str(), "hi");
        assert_eq!(
            MessageText::parse("   "),
            Err(InvalidValue::Empty { field: "text" })
        );
        assert!(MessageText::parse("x".repeat(10_000)).is_ok());
        assert!(matches!(
            MessageText::parse("x".repeat(10_001)),
            Err(InvalidValue::TooLong { max: 10_000, .. })
        ));
        // Characters, not bytes: 10,000 two-byte letters fit.
        assert!(MessageText::parse("ä".repeat(10_000)).is_ok());
    }
}
