//! What the load tool measured: latency samples with their percentiles, and the figures it
//! prints as a table or as JSON, each beside what it is compared with (a ceiling or a baseline).

use std::time::Duration;

use serde_json::{json, Value};

/// Latencies of one kind of operation.
#[derive(Debug, Default, Clone)]
pub struct Samples(Vec<Duration>);

impl Samples {
    pub fn push(&mut self, latency: Duration) {
        self.0.push(latency);
    }

    pub fn extend(&mut self, other: Samples) {
        self.0.extend(other.0);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The `q` quantile (0.5 = median), nearest rank; `None` without samples.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        if self.0.is_empty() {
            return None;
        }
        let mut sorted = self.0.clone();
        sorted.sort_unstable();
        let rank = ((sorted.len() as f64) * q).ceil() as usize;
        sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
    }

    pub fn p50(&self) -> Option<Duration> {
        self.quantile(0.5)
    }

    pub fn p99(&self) -> Option<Duration> {
        self.quantile(0.99)
    }
}

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Figure {
    pub name: String,
    /// The figure itself (a rate, or a count), with its unit; `None` for latency-only figures.
    pub value: Option<(f64, &'static str)>,
    pub p50: Option<Duration>,
    pub p99: Option<Duration>,
    /// What the ratio compares with: a name and its value.
    pub reference: Option<(String, f64)>,
    /// `value / reference`, or for latency figures `p50 / reference p50`.
    pub ratio: Option<f64>,
}

impl Figure {
    pub fn new(name: impl Into<String>) -> Self {
        Figure {
            name: name.into(),
            value: None,
            p50: None,
            p99: None,
            reference: None,
            ratio: None,
        }
    }

    pub fn value(mut self, value: f64, unit: &'static str) -> Self {
        self.value = Some((value, unit));
        self
    }

    pub fn latencies(mut self, samples: &Samples) -> Self {
        self.p50 = samples.p50();
        self.p99 = samples.p99();
        self
    }

    /// Compares the value with a ceiling of the same unit.
    pub fn against(mut self, name: impl Into<String>, ceiling: f64) -> Self {
        if let Some((value, _)) = self.value {
            if ceiling > 0.0 {
                self.ratio = Some(value / ceiling);
            }
        }
        self.reference = Some((name.into(), ceiling));
        self
    }

    /// Compares the p50 with a baseline's p50 (history figures: ×1.0 is flat).
    pub fn against_p50(mut self, name: impl Into<String>, baseline: Option<Duration>) -> Self {
        if let (Some(p50), Some(base)) = (self.p50, baseline) {
            if !base.is_zero() {
                self.ratio = Some(p50.as_secs_f64() / base.as_secs_f64());
            }
            self.reference = Some((name.into(), base.as_secs_f64() * 1000.0));
        }
        self
    }

    pub fn json(&self) -> Value {
        json!({
            "figure": self.name,
            "value": self.value.map(|(v, _)| v),
            "unit": self.value.map(|(_, u)| u),
            "p50_ms": self.p50.map(millis),
            "p99_ms": self.p99.map(millis),
            "compared_with": self.reference.as_ref().map(|(name, _)| name.clone()),
            "compared_value": self.reference.as_ref().map(|(_, v)| *v),
            "ratio": self.ratio,
        })
    }
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn ms(duration: Option<Duration>) -> String {
    match duration {
        Some(d) if d < Duration::from_millis(10) => format!("{:.2} ms", millis(d)),
        Some(d) => format!("{:.1} ms", millis(d)),
        None => "-".into(),
    }
}

fn number(value: f64) -> String {
    if value >= 100.0 {
        let whole = value.round() as u64;
        let text = whole.to_string();
        let mut rest = text.as_str();
        let mut groups = Vec::new();
        while rest.len() > 3 {
            let (head, tail) = rest.split_at(rest.len() - 3);
            groups.push(tail);
            rest = head;
        }
        groups.push(rest);
        groups.reverse();
        groups.join(",")
    } else {
        format!("{value:.1}")
    }
}

/// The report as an aligned plain-text table.
pub fn table(figures: &[Figure]) -> String {
    let header = ["figure", "value", "p50", "p99", "compared with", "ratio"];
    let rows: Vec<[String; 6]> = figures
        .iter()
        .map(|f| {
            [
                f.name.clone(),
                f.value
                    .map(|(v, unit)| format!("{} {unit}", number(v)))
                    .unwrap_or_else(|| "-".into()),
                ms(f.p50),
                ms(f.p99),
                f.reference
                    .as_ref()
                    .map(|(name, v)| format!("{name} {}", number(*v)))
                    .unwrap_or_else(|| "-".into()),
                f.ratio
                    .map(|r| format!("{r:.2}×"))
                    .unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| -> String {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let pad = widths[i] - cell.chars().count();
            if i == 0 || i == 4 {
                out.push_str(cell);
                out.push_str(&" ".repeat(pad));
            } else {
                out.push_str(&" ".repeat(pad));
                out.push_str(cell);
            }
            out.push_str("  ");
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(&header.map(String::from));
    out.push_str(&line(&widths.map(|w| "-".repeat(w))));
    for row in &rows {
        out.push_str(&line(row));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let mut samples = Samples::default();
        for ms in 1..=100 {
            samples.push(Duration::from_millis(ms));
        }
        assert_eq!(samples.p50(), Some(Duration::from_millis(50)));
        assert_eq!(samples.p99(), Some(Duration::from_millis(99)));
        assert_eq!(Samples::default().p50(), None);
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(number(46_000.4), "46,000");
        assert_eq!(number(5_300.0), "5,300");
        assert_eq!(number(312.0), "312");
        assert_eq!(number(1.24), "1.2");
    }
}
