//! The bounded numbers: a rating's score, the counts of queue settings, the days personal data
//! is kept.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::InvalidValue;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_positive() {
        assert!(Limit::parse(0, "max_waiting").is_err());
        assert!(Limit::parse(-1, "max_waiting").is_err());
        assert_eq!(Limit::parse(3, "max_waiting").unwrap().get(), 3);
    }
}
