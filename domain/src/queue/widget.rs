//! How a queue's widget looks on the sites that embed it: which bottom corner its launcher and
//! panel take, and the launcher's colour. Settings of the queue, so the loader needs nothing
//! but the queue's id.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::values::InvalidValue;

/// The bottom corner of the host page the widget takes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WidgetPosition {
    #[default]
    Right,
    Left,
}

impl WidgetPosition {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        match raw {
            "right" => Ok(Self::Right),
            "left" => Ok(Self::Left),
            other => Err(InvalidValue::Malformed {
                field: "widget_position",
                reason: format!("{other:?} is neither \"right\" nor \"left\""),
            }),
        }
    }
}

/// A colour as `#rrggbb` (lower-cased; `#RGB` is widened), nothing else: it goes into the host
/// page's styles, so no other CSS can ride along.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
#[schemars(with = "String")]
pub struct Colour(String);

impl Colour {
    pub fn parse(raw: impl AsRef<str>) -> Result<Self, InvalidValue> {
        let text = raw.as_ref().trim().to_ascii_lowercase();
        let bad = || InvalidValue::Malformed {
            field: "widget_color",
            reason: format!("{text:?} is not a colour such as #1f6feb"),
        };
        let hex = text.strip_prefix('#').ok_or_else(bad)?;
        if !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad());
        }
        match hex.len() {
            6 => Ok(Self(text)),
            3 => Ok(Self(hex.chars().fold(String::from("#"), |mut out, c| {
                out.push(c);
                out.push(c);
                out
            }))),
            _ => Err(bad()),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Colour {
    type Error = InvalidValue;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(raw)
    }
}

impl From<Colour> for String {
    fn from(colour: Colour) -> Self {
        colour.0
    }
}

impl fmt::Display for Colour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_colour_is_hex_and_nothing_else() {
        assert_eq!(Colour::parse("#1F6FEB").unwrap().as_str(), "#1f6feb");
        assert_eq!(Colour::parse(" #abc ").unwrap().as_str(), "#aabbcc");
        for bad in [
            "1f6feb",
            "#1f6fe",
            "#1f6febff",
            "#ggg",
            "red",
            "#fff;}body{display:none",
            "",
        ] {
            assert!(Colour::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_position_is_a_bottom_corner() {
        assert_eq!(WidgetPosition::parse("left").unwrap(), WidgetPosition::Left);
        assert_eq!(WidgetPosition::default(), WidgetPosition::Right);
        assert!(WidgetPosition::parse("top").is_err());
    }
}
