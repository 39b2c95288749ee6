//! Opening hours and allowed origins: queue settings with rules of their own.

use std::fmt;

use chrono::{DateTime, Datelike, NaiveTime, Utc, Weekday};
use chrono_tz::Tz;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::values::InvalidValue;

/// A weekly schedule in a named time zone: `{timezone, weekly: [{day, open, close}]}`. A queue
/// with opening hours is opened and closed on schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "RawOpeningHours", into = "RawOpeningHours")]
pub struct OpeningHours {
    timezone: Tz,
    weekly: Vec<Period>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Period {
    day: Weekday,
    open: NaiveTime,
    close: NaiveTime,
}

/// The wire form of opening hours. `day` is `mon` … `sun`; `open` and `close` are `HH:MM` in
/// the time zone (an IANA name such as `Europe/Helsinki`); `close` after `open`, or `24:00`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RawOpeningHours {
    pub timezone: String,
    pub weekly: Vec<RawPeriod>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RawPeriod {
    pub day: String,
    pub open: String,
    pub close: String,
}

const DAYS: [(&str, Weekday); 7] = [
    ("mon", Weekday::Mon),
    ("tue", Weekday::Tue),
    ("wed", Weekday::Wed),
    ("thu", Weekday::Thu),
    ("fri", Weekday::Fri),
    ("sat", Weekday::Sat),
    ("sun", Weekday::Sun),
];

fn malformed(reason: impl Into<String>) -> InvalidValue {
    InvalidValue::Malformed {
        field: "opening_hours",
        reason: reason.into(),
    }
}

/// `24:00` is the end of the day; chrono has no such time, so it is kept as 23:59:59.999….
fn end_of_day() -> NaiveTime {
    NaiveTime::from_hms_nano_opt(23, 59, 59, 999_999_999).unwrap_or(NaiveTime::MIN)
}

fn parse_time(raw: &str, closing: bool) -> Result<NaiveTime, InvalidValue> {
    if closing && raw == "24:00" {
        return Ok(end_of_day());
    }
    NaiveTime::parse_from_str(raw, "%H:%M")
        .map_err(|_| malformed(format!("{raw:?} is not a time of day as HH:MM")))
}

fn format_time(time: NaiveTime) -> String {
    if time == end_of_day() {
        "24:00".to_owned()
    } else {
        time.format("%H:%M").to_string()
    }
}

impl OpeningHours {
    pub const MAX_PERIODS: usize = 70;

    pub fn parse(raw: RawOpeningHours) -> Result<Self, InvalidValue> {
        let timezone: Tz = raw
            .timezone
            .parse()
            .map_err(|_| malformed(format!("{:?} is not a known time zone", raw.timezone)))?;
        if raw.weekly.len() > Self::MAX_PERIODS {
            return Err(malformed(format!("at most {} periods", Self::MAX_PERIODS)));
        }
        let mut weekly = Vec::with_capacity(raw.weekly.len());
        for period in raw.weekly {
            let day = DAYS
                .iter()
                .find(|(name, _)| period.day.eq_ignore_ascii_case(name))
                .map(|(_, day)| *day)
                .ok_or_else(|| malformed(format!("{:?} is not mon … sun", period.day)))?;
            let open = parse_time(&period.open, false)?;
            let close = parse_time(&period.close, true)?;
            if close <= open {
                return Err(malformed("a period closes after it opens"));
            }
            weekly.push(Period { day, open, close });
        }
        Ok(Self { timezone, weekly })
    }

    /// Whether the schedule says open at instant `at`.
    pub fn is_open_at(&self, at: DateTime<Utc>) -> bool {
        let local = at.with_timezone(&self.timezone);
        let (day, time) = (local.weekday(), local.time());
        self.weekly
            .iter()
            .any(|p| p.day == day && p.open <= time && time < p.close)
    }
}

impl TryFrom<RawOpeningHours> for OpeningHours {
    type Error = InvalidValue;
    fn try_from(raw: RawOpeningHours) -> Result<Self, Self::Error> {
        Self::parse(raw)
    }
}

impl From<OpeningHours> for RawOpeningHours {
    fn from(hours: OpeningHours) -> Self {
        let weekly = hours
            .weekly
            .iter()
            .map(|p| RawPeriod {
                day: DAYS
                    .iter()
                    .find(|(_, day)| *day == p.day)
                    .map(|(name, _)| (*name).to_owned())
                    .unwrap_or_default(),
                open: format_time(p.open),
                close: format_time(p.close),
            })
            .collect();
        Self {
            timezone: hours.timezone.name().to_owned(),
            weekly,
        }
    }
}

/// A site that may embed a queue's widget: `http(s)://host[:port]`, with no path, lower-cased.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
pub struct Origin(String);

impl Origin {
    pub fn parse(raw: impl AsRef<str>) -> Result<Self, InvalidValue> {
        let text = raw
            .as_ref()
            .trim()
            .trim_end_matches('/')
            .to_ascii_lowercase();
        let bad = || InvalidValue::Malformed {
            field: "allowed_origins",
            reason: format!("{text:?} is not an origin such as https://shop.example"),
        };
        let rest = text
            .strip_prefix("https://")
            .or_else(|| text.strip_prefix("http://"))
            .ok_or_else(bad)?;
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        };
        let host_ok = !host.is_empty()
            && host.len() <= 253
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0));
        if !host_ok || !port_ok {
            return Err(bad());
        }
        Ok(Self(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Origin {
    type Error = InvalidValue;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(raw)
    }
}

impl From<Origin> for String {
    fn from(origin: Origin) -> Self {
        origin.0
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn weekdays_nine_to_five() -> OpeningHours {
        let weekly = ["mon", "tue", "wed", "thu", "fri"]
            .iter()
            .map(|day| RawPeriod {
                day: (*day).into(),
                open: "09:00".into(),
                close: "17:00".into(),
            })
            .collect();
        OpeningHours::parse(RawOpeningHours {
            timezone: "Europe/Helsinki".into(),
            weekly,
        })
        .unwrap()
    }

    #[test]
    fn opening_hours_follow_the_local_clock() {
        let hours = weekdays_nine_to_five();
        // Wednesday 2026-11-25 07:30 UTC is 09:30 in Helsinki (UTC+2).
        assert!(hours.is_open_at(Utc.with_ymd_and_hms(2026, 11, 25, 7, 30, 0).unwrap()));
        assert!(!hours.is_open_at(Utc.with_ymd_and_hms(2026, 11, 25, 6, 30, 0).unwrap()));
        assert!(!hours.is_open_at(Utc.with_ymd_and_hms(2026, 11, 25, 15, 0, 0).unwrap()));
        // Saturday.
        assert!(!hours.is_open_at(Utc.with_ymd_and_hms(2026, 11, 28, 10, 0, 0).unwrap()));
    }

    #[test]
    fn opening_hours_refuse_nonsense() {
        let period = |day: &str, open: &str, close: &str| RawPeriod {
            day: day.into(),
            open: open.into(),
            close: close.into(),
        };
        let parse = |tz: &str, p: RawPeriod| {
            OpeningHours::parse(RawOpeningHours {
                timezone: tz.into(),
                weekly: vec![p],
            })
        };
        assert!(parse("Mars/Olympus", period("mon", "09:00", "17:00")).is_err());
        assert!(parse("UTC", period("someday", "09:00", "17:00")).is_err());
        assert!(parse("UTC", period("mon", "17:00", "09:00")).is_err());
        assert!(parse("UTC", period("mon", "9", "17:00")).is_err());
        assert!(parse("UTC", period("mon", "00:00", "24:00")).is_ok());
    }

    #[test]
    fn opening_hours_round_trip_through_json() {
        let hours = weekdays_nine_to_five();
        let json = serde_json::to_value(&hours).unwrap();
        assert_eq!(json["timezone"], "Europe/Helsinki");
        assert_eq!(json["weekly"][0]["day"], "mon");
        let back: OpeningHours = serde_json::from_value(json).unwrap();
        assert_eq!(back, hours);
    }

    #[test]
    fn origins_are_scheme_host_and_port() {
        assert_eq!(
            Origin::parse("https://Shop.Example/").unwrap().as_str(),
            "https://shop.example"
        );
        assert!(Origin::parse("http://localhost:3000").is_ok());
        for bad in [
            "shop.example",
            "ftp://shop.example",
            "https://",
            "https://a/b",
            "https://a:0",
            "https://a:99999",
        ] {
            assert!(Origin::parse(bad).is_err(), "{bad}");
        }
    }
}
