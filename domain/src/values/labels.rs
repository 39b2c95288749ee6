//! The short words that name things: a conversation's tags and a canned response's key, each
//! compared case-insensitively.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::InvalidValue;

/// A tag that classifies a conversation: 1 to 64 characters, compared case-insensitively and
/// stored lower-cased, so "Billing" and "billing" are one tag.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
pub struct Tag(String);

impl Tag {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(raw: impl AsRef<str>) -> Result<Self, InvalidValue> {
        let text = raw.as_ref().trim().to_lowercase();
        if text.is_empty() {
            return Err(InvalidValue::Empty { field: "tag" });
        }
        if text.chars().count() > Self::MAX_CHARS {
            return Err(InvalidValue::TooLong {
                field: "tag",
                max: Self::MAX_CHARS,
            });
        }
        if text.chars().any(char::is_control) {
            return Err(InvalidValue::Malformed {
                field: "tag",
                reason: "control characters are not allowed".into(),
            });
        }
        Ok(Self(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Tag {
    type Error = InvalidValue;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(raw)
    }
}

impl From<Tag> for String {
    fn from(value: Tag) -> Self {
        value.0
    }
}

/// The key of a canned response, typed as `/key` in a text field: 1 to 32 characters, no
/// whitespace (a space ends the key), no leading slash. Compared case-insensitively.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
pub struct CannedKey(String);

impl CannedKey {
    pub const MAX_CHARS: usize = 32;

    pub fn parse(raw: impl AsRef<str>) -> Result<Self, InvalidValue> {
        let text = raw.as_ref().trim();
        let text = text.strip_prefix('/').unwrap_or(text);
        if text.is_empty() {
            return Err(InvalidValue::Empty { field: "key" });
        }
        if text.chars().count() > Self::MAX_CHARS {
            return Err(InvalidValue::TooLong {
                field: "key",
                max: Self::MAX_CHARS,
            });
        }
        if text
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '/')
        {
            return Err(InvalidValue::Malformed {
                field: "key",
                reason: "a key has no spaces or slashes".into(),
            });
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form under which uniqueness is checked.
    pub fn folded(&self) -> String {
        self.0.to_lowercase()
    }
}

impl TryFrom<String> for CannedKey {
    type Error = InvalidValue;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(raw)
    }
}

impl From<CannedKey> for String {
    fn from(value: CannedKey) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_at_most_64_characters() {
        assert!(Tag::parse("t".repeat(64)).is_ok());
        assert!(Tag::parse("t".repeat(65)).is_err());
        assert!(Tag::parse("a\u{7}b").is_err());
    }

    #[test]
    fn canned_keys_have_no_spaces_and_drop_a_leading_slash() {
        assert_eq!(CannedKey::parse("/Terve").unwrap().as_str(), "Terve");
        assert_eq!(CannedKey::parse("Terve").unwrap().folded(), "terve");
        assert!(CannedKey::parse("two words").is_err());
        assert!(CannedKey::parse("k".repeat(33)).is_err());
        assert!(CannedKey::parse("/").is_err());
    }
}
