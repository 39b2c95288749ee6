//! Value types, each parsed once (STYLE.md habit 4): once a `MessageText` exists it is valid,
//! and no handler checks it again. Deserializing goes through the same `parse`, so a stored or
//! received value can never bypass the limits of API.md's Limits section.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

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

/// Who a visitor is, for a block, without saying where it is: a keyed hash (hex) of its client
/// address (IPv4, or the /64 of IPv6), made by the gateway under a secret of the deployment, so
/// the log never holds an address and nobody without the secret can compute one from another.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
pub struct VisitorKey(String);

impl VisitorKey {
    pub fn parse(raw: impl AsRef<str>) -> Result<Self, InvalidValue> {
        let raw = raw.as_ref();
        if (16..=64).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Self(raw.to_ascii_lowercase()))
        } else {
            Err(InvalidValue::Malformed {
                field: "visitor",
                reason: "a visitor key is 16 to 64 hexadecimal digits".into(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for VisitorKey {
    type Error = InvalidValue;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(raw)
    }
}

impl From<VisitorKey> for String {
    fn from(value: VisitorKey) -> Self {
        value.0
    }
}

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

/// An email address, lower-cased. Checked for shape only: one `@` with text on both sides, a dot
/// in the domain, no spaces; delivery is the only real proof.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    pub const MAX_CHARS: usize = 254;

    pub fn parse(raw: impl AsRef<str>) -> Result<Self, InvalidValue> {
        let text = raw.as_ref().trim().to_lowercase();
        let malformed = |reason: &str| InvalidValue::Malformed {
            field: "email",
            reason: reason.to_owned(),
        };
        if text.is_empty() {
            return Err(InvalidValue::Empty { field: "email" });
        }
        if text.chars().count() > Self::MAX_CHARS {
            return Err(InvalidValue::TooLong {
                field: "email",
                max: Self::MAX_CHARS,
            });
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(malformed("an email address has no spaces"));
        }
        let Some((local, domain)) = text.split_once('@') else {
            return Err(malformed("an email address has an @"));
        };
        if local.is_empty() || domain.is_empty() || domain.contains('@') {
            return Err(malformed("an email address is local@domain"));
        }
        if !domain.contains('.') || domain.starts_with('.') || domain.ends_with('.') {
            return Err(malformed("the domain of an email address has a dot"));
        }
        Ok(Self(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Email {
    type Error = InvalidValue;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(raw)
    }
}

impl From<Email> for String {
    fn from(value: Email) -> Self {
        value.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A password as typed: at least 10 characters, at most 1,000 (hashing a megabyte is a denial of
/// service). It is never serialized: hashing happens outside the domain and the hash is never in
/// the log.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 10;
    pub const MAX_CHARS: usize = 1_000;

    pub fn parse(raw: impl Into<String>) -> Result<Self, InvalidValue> {
        let raw = raw.into();
        let count = raw.chars().count();
        if count < Self::MIN_CHARS {
            return Err(InvalidValue::Malformed {
                field: "password",
                reason: format!("a password has at least {} characters", Self::MIN_CHARS),
            });
        }
        if count > Self::MAX_CHARS {
            return Err(InvalidValue::TooLong {
                field: "password",
                max: Self::MAX_CHARS,
            });
        }
        Ok(Self(raw))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// A rating score, 1 to 5.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(try_from = "u8", into = "u8")]
pub struct Score(u8);

impl Score {
    pub fn parse(raw: i64) -> Result<Self, InvalidValue> {
        match u8::try_from(raw) {
            Ok(score @ 1..=5) => Ok(Self(score)),
            _ => Err(InvalidValue::Malformed {
                field: "score",
                reason: "a score is a whole number from 1 to 5".into(),
            }),
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for Score {
    type Error = InvalidValue;
    fn try_from(raw: u8) -> Result<Self, Self::Error> {
        Self::parse(i64::from(raw))
    }
}

impl From<Score> for u8 {
    fn from(value: Score) -> Self {
        value.0
    }
}

/// A positive count used by queue settings (`max_waiting`, `capacity_per_agent`, and the
/// service-level targets in seconds): 1 to 100,000.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(try_from = "u32", into = "u32")]
pub struct Limit(u32);

impl Limit {
    pub const MAX: u32 = 100_000;

    pub fn parse(raw: i64, field: &'static str) -> Result<Self, InvalidValue> {
        match u32::try_from(raw) {
            Ok(value) if (1..=Self::MAX).contains(&value) => Ok(Self(value)),
            _ => Err(InvalidValue::Malformed {
                field,
                reason: format!("must be a whole number from 1 to {}", Self::MAX),
            }),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for Limit {
    type Error = InvalidValue;
    fn try_from(raw: u32) -> Result<Self, Self::Error> {
        Self::parse(i64::from(raw), "limit")
    }
}

impl From<Limit> for u32 {
    fn from(value: Limit) -> Self {
        value.0
    }
}

/// How many days an organization keeps its customers' personal data after a conversation
/// ends (`RetentionSet`): 1 to 3,650 (ten years).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(try_from = "u32", into = "u32")]
pub struct RetentionDays(u32);

impl RetentionDays {
    pub const MAX: u32 = 3_650;

    pub fn parse(raw: i64) -> Result<Self, InvalidValue> {
        match u32::try_from(raw) {
            Ok(days) if (1..=Self::MAX).contains(&days) => Ok(Self(days)),
            _ => Err(InvalidValue::Malformed {
                field: "retention_days",
                reason: format!("must be a whole number of days from 1 to {}", Self::MAX),
            }),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for RetentionDays {
    type Error = InvalidValue;
    fn try_from(raw: u32) -> Result<Self, Self::Error> {
        Self::parse(i64::from(raw))
    }
}

impl From<RetentionDays> for u32 {
    fn from(value: RetentionDays) -> Self {
        value.0
    }
}

/// A role within an organization. `owner` ⊇ `operator` ⊇ `agent`: the order of the variants is
/// the order of power, so `role >= Role::Operator` reads as "at least an operator".
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Agent,
    Operator,
    Owner,
}

impl Role {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        match raw {
            "agent" => Ok(Self::Agent),
            "operator" => Ok(Self::Operator),
            "owner" => Ok(Self::Owner),
            _ => Err(InvalidValue::Malformed {
                field: "role",
                reason: "a role is agent, operator or owner".into(),
            }),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Operator => "operator",
            Self::Owner => "owner",
        }
    }

    /// Whether a member of role `self` may grant or take away `target`: operators manage agents,
    /// only owners manage operators and owners.
    pub fn may_manage(self, target: Role) -> bool {
        match target {
            Role::Agent => self >= Role::Operator,
            Role::Operator | Role::Owner => self == Role::Owner,
        }
    }
}

/// Who caused an event or wrote a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Author {
    pub kind: AuthorKind,
    /// The agent's id, the conversation id for its customer, nil for the system.
    pub id: Uuid,
    /// Personal data: the display name at the time of writing.
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AuthorKind {
    Agent,
    Customer,
    System,
}

impl Author {
    pub fn agent(id: Uuid, name: impl Into<String>) -> Self {
        Self {
            kind: AuthorKind::Agent,
            id,
            name: name.into(),
        }
    }

    pub fn customer(conversation_id: Uuid, name: impl Into<String>) -> Self {
        Self {
            kind: AuthorKind::Customer,
            id: conversation_id,
            name: name.into(),
        }
    }

    pub fn system() -> Self {
        Self {
            kind: AuthorKind::System,
            id: Uuid::nil(),
            name: "Jono".into(),
        }
    }

    pub fn is_agent(&self) -> bool {
        self.kind == AuthorKind::Agent
    }

    pub fn is_customer(&self) -> bool {
        self.kind == AuthorKind::Customer
    }
}

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

    #[test]
    fn emails_are_lower_cased_and_shaped() {
        assert_eq!(
            Email::parse(" Ann@Example.COM ").unwrap().as_str(),
            "ann@example.com"
        );
        for bad in [
            "",
            "ann",
            "ann@",
            "@example.com",
            "ann@example",
            "a b@example.com",
            "a@b@c.d",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn passwords_have_at_least_ten_characters_and_never_print() {
        assert!(Password::parse("123456789").is_err());
        let password = Password::parse("1234567890").unwrap();
        assert_eq!(format!("{password:?}"), "Password(***)");
    }

    #[test]
    fn roles_are_ordered_by_power() {
        assert!(Role::Owner > Role::Operator && Role::Operator > Role::Agent);
        assert!(Role::Operator.may_manage(Role::Agent));
        assert!(!Role::Operator.may_manage(Role::Operator));
        assert!(Role::Owner.may_manage(Role::Owner));
        assert!(!Role::Agent.may_manage(Role::Agent));
        assert!(Role::parse("admin").is_err());
    }

    #[test]
    fn limits_are_positive() {
        assert!(Limit::parse(0, "max_waiting").is_err());
        assert!(Limit::parse(-1, "max_waiting").is_err());
        assert_eq!(Limit::parse(3, "max_waiting").unwrap().get(), 3);
    }
}
