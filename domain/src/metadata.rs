//! Customer metadata (what a pre-chat form asked: name, email, anything) and live metadata (the
//! page the customer is on, and so on). Both are JSON objects of at most 16 KiB; both are personal
//! data and travel in fields of their own.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use uuid::Uuid;

use crate::values::{DisplayName, InvalidValue};

/// The most bytes either kind of metadata may take, serialized as JSON.
pub const METADATA_MAX_BYTES: usize = 16 * 1024;

/// Nesting deeper than this is refused: it serves no form and costs stack to walk.
const MAX_DEPTH: usize = 16;

fn parse_object(value: Value, field: &'static str) -> Result<Map<String, Value>, InvalidValue> {
    let Value::Object(map) = value else {
        return Err(InvalidValue::Malformed {
            field,
            reason: "must be a JSON object".into(),
        });
    };
    let size = serde_json::to_vec(&map)
        .map(|bytes| bytes.len())
        .unwrap_or(usize::MAX);
    if size > METADATA_MAX_BYTES {
        return Err(InvalidValue::TooLarge {
            field,
            max: METADATA_MAX_BYTES,
        });
    }
    if depth(&Value::Object(map.clone())) > MAX_DEPTH {
        return Err(InvalidValue::Malformed {
            field,
            reason: "is nested too deeply".into(),
        });
    }
    Ok(map)
}

fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// A customer's metadata: a JSON object of at most 16 KiB.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "Value", into = "Value")]
pub struct CustomerMetadata(Map<String, Value>);

impl CustomerMetadata {
    pub fn parse(value: Value) -> Result<Self, InvalidValue> {
        parse_object(value, "metadata").map(Self)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    /// The customer's name, if the pre-chat form asked for one.
    pub fn name(&self) -> Option<&str> {
        self.0
            .get("name")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|name| !name.is_empty())
    }
}

impl TryFrom<Value> for CustomerMetadata {
    type Error = InvalidValue;
    fn try_from(value: Value) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<CustomerMetadata> for Value {
    fn from(value: CustomerMetadata) -> Self {
        Value::Object(value.0)
    }
}

/// Live metadata: a JSON object of at most 16 KiB whose string values, wherever they are, use
/// http or https when they begin with a URI scheme, so that no `javascript:` link can reach an
/// agent's screen.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "Value", into = "Value")]
pub struct LiveMetadata(Map<String, Value>);

impl LiveMetadata {
    pub fn parse(value: Value) -> Result<Self, InvalidValue> {
        let map = parse_object(value, "live")?;
        check_schemes(&Value::Object(map.clone()))?;
        Ok(Self(map))
    }

    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }
}

impl TryFrom<Value> for LiveMetadata {
    type Error = InvalidValue;
    fn try_from(value: Value) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<LiveMetadata> for Value {
    fn from(value: LiveMetadata) -> Self {
        Value::Object(value.0)
    }
}

fn check_schemes(value: &Value) -> Result<(), InvalidValue> {
    match value {
        Value::String(text) => match uri_scheme(text) {
            Some(scheme) if scheme != "http" && scheme != "https" => Err(InvalidValue::Malformed {
                field: "live",
                reason: format!("a link must use http or https, not {scheme}:"),
            }),
            _ => Ok(()),
        },
        Value::Array(items) => items.iter().try_for_each(check_schemes),
        Value::Object(map) => map.values().try_for_each(check_schemes),
        _ => Ok(()),
    }
}

/// The lower-cased scheme a string begins with (`name:` per RFC 3986), if any. Leading whitespace
/// and control characters are skipped, as browsers skip them in an `href`.
pub fn uri_scheme(text: &str) -> Option<String> {
    let text = text.trim_start_matches(|c: char| c.is_whitespace() || c.is_control());
    let (scheme, _) = text.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    let valid = first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then(|| scheme.to_ascii_lowercase())
}

/// A customer the queue's site vouched for with an identity signed under the queue's identity
/// secret (checked by the gateway at the join; the secret never enters the log).
/// `customer_ref` links the customer's conversations in that queue: a UUIDv5 of the site's user
/// id under a secret of the deployment (`ids::customer_ref`), which says nothing to anyone
/// without that secret, so it is not personal data; `user_id` and `name` are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct VerifiedCustomer {
    pub customer_ref: Uuid,
    pub user_id: ExternalUserId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<DisplayName>,
}

/// A site's own id for one of its users, exactly as the site signed it: 1 to 256 characters,
/// no control characters, no space at either end.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct ExternalUserId(String);

impl ExternalUserId {
    pub const MAX_CHARS: usize = 256;

    pub fn parse(raw: impl Into<String>) -> Result<Self, InvalidValue> {
        let raw = raw.into();
        if raw.is_empty() {
            return Err(InvalidValue::Empty { field: "user_id" });
        }
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(InvalidValue::TooLong {
                field: "user_id",
                max: Self::MAX_CHARS,
            });
        }
        if raw.chars().any(char::is_control) || raw.trim() != raw {
            return Err(InvalidValue::Malformed {
                field: "user_id",
                reason: "must have no control characters and no space at either end".into(),
            });
        }
        Ok(Self(raw))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ExternalUserId {
    type Error = InvalidValue;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(raw)
    }
}

impl From<ExternalUserId> for String {
    fn from(value: ExternalUserId) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn metadata_is_an_object_of_at_most_16_kib() {
        assert!(CustomerMetadata::parse(json!({"name": "Ann"})).is_ok());
        assert!(CustomerMetadata::parse(json!(["no"])).is_err());
        assert!(CustomerMetadata::parse(json!("no")).is_err());
        let big = "x".repeat(METADATA_MAX_BYTES);
        assert!(matches!(
            CustomerMetadata::parse(json!({ "a": big })),
            Err(InvalidValue::TooLarge { .. })
        ));
        let fits = "x".repeat(METADATA_MAX_BYTES - 10);
        assert!(CustomerMetadata::parse(json!({ "a": fits })).is_ok());
    }

    #[test]
    fn the_customer_name_comes_from_the_form() {
        let metadata = CustomerMetadata::parse(json!({"name": " Ann "})).unwrap();
        assert_eq!(metadata.name(), Some("Ann"));
        assert_eq!(CustomerMetadata::default().name(), None);
    }

    #[test]
    fn live_links_use_http_or_https() {
        assert!(LiveMetadata::parse(json!({"page": "https://shop.example/cart"})).is_ok());
        assert!(LiveMetadata::parse(json!({"page": "http://shop.example/"})).is_ok());
        assert!(LiveMetadata::parse(json!({"clock": "10:30"})).is_ok());
        for bad in [
            "javascript:alert(1)",
            " JavaScript:alert(1)",
            "data:text/html,x",
            "\u{1}vbscript:x",
        ] {
            assert!(
                LiveMetadata::parse(json!({ "page": bad })).is_err(),
                "{bad}"
            );
        }
        assert!(LiveMetadata::parse(json!({"deep": {"list": ["javascript:x"]}})).is_err());
    }

    #[test]
    fn a_sites_user_id_is_kept_exactly_as_signed() {
        assert_eq!(
            ExternalUserId::parse("user-42").unwrap().as_str(),
            "user-42"
        );
        for bad in ["", " 42", "42 ", "4\n2", "4\u{0}2"] {
            assert!(ExternalUserId::parse(bad).is_err(), "{bad:?}");
        }
        assert!(ExternalUserId::parse("x".repeat(257)).is_err());
        assert!(ExternalUserId::parse("x".repeat(256)).is_ok());
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut value = json!(1);
        for _ in 0..40 {
            value = json!({ "a": value });
        }
        assert!(CustomerMetadata::parse(value).is_err());
    }
}
