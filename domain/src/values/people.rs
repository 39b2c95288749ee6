//! Who someone is and what they may do: an email address, a password as typed, a visitor's
//! keyed hash, a role within an organization, the author of an event or a message.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::InvalidValue;

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
}
