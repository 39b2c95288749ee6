//! `jono stats`: API.md's queue statistics from the log alone, as a table, CSV or JSON, and
//! `--at T`, a queue as it stood at an instant. The figures come from `projections::stats`, the
//! same code `GET /v1/queues/{queue}/stats` answers with.

use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use projections::stats::{
    queue_at, stats_from_log, By, Figures, Percentiles, QueueSnapshot, Report, Scope,
};
use store::log::EventStore;
use uuid::Uuid;

use super::Failure;
use crate::config::{StatsArgs, StatsBy, StatsFormat};
use crate::plain;

/// What the arguments ask for, once checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Figures {
        scope: Scope,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        by: Option<By>,
    },
    At {
        queue_id: Uuid,
        at: DateTime<Utc>,
    },
}

impl Request {
    /// Checks the arguments, each mistake as one line.
    pub fn parse(args: &StatsArgs) -> Result<Self, Failure> {
        let queue = args
            .queue
            .as_deref()
            .map(|q| id("--queue", q))
            .transpose()?;
        let org = args.org.as_deref().map(|o| id("--org", o)).transpose()?;
        let from = args
            .from
            .as_deref()
            .map(|t| time("--from", t))
            .transpose()?;
        let to = args.to.as_deref().map(|t| time("--to", t)).transpose()?;
        let at = args.at.as_deref().map(|t| time("--at", t)).transpose()?;
        let by = args.by.map(|by| match by {
            StatsBy::Hour => By::Hour,
            StatsBy::Day => By::Day,
        });
        let scope = match (queue, org) {
            (Some(_), Some(_)) => return Err(fail("give either --queue or --org, not both")),
            (None, None) => return Err(fail("say whose statistics: --queue ID or --org ID")),
            (Some(queue), None) => Scope::Queue(queue),
            (None, Some(org)) => Scope::Organization(org),
        };
        if let Some(at) = at {
            let Scope::Queue(queue_id) = scope else {
                return Err(fail("--at shows one queue: use it with --queue"));
            };
            if from.is_some() || to.is_some() || by.is_some() {
                return Err(fail("--at is an instant: it takes no --from, --to or --by"));
            }
            return Ok(Request::At { queue_id, at });
        }
        if let (Some(from), Some(to)) = (from, to) {
            if from >= to {
                return Err(fail(&format!(
                    "--from ({}) must be before --to ({})",
                    rfc3339(from),
                    rfc3339(to)
                )));
            }
        }
        Ok(Request::Figures {
            scope,
            from,
            to,
            by,
        })
    }
}

/// Runs `jono stats` and returns what to print.
pub async fn run(store: &EventStore, args: &StatsArgs) -> Result<String, Failure> {
    let request = Request::parse(args)?;
    let format = args.format;
    match request {
        Request::Figures {
            scope,
            from,
            to,
            by,
        } => {
            let report = stats_from_log(store, scope, from, to, by)
                .await
                .map_err(|error| Failure(error.to_string()))?;
            match format {
                StatsFormat::Json => json(&report),
                StatsFormat::Csv => Ok(report_csv(&report)),
                StatsFormat::Table => Ok(report_table(scope, &report)),
            }
        }
        Request::At { queue_id, at } => {
            let snapshot = queue_at(store, queue_id, at)
                .await
                .map_err(|error| Failure(error.to_string()))?;
            match format {
                StatsFormat::Json => json(&snapshot),
                StatsFormat::Csv => Ok(snapshot_csv(&snapshot)),
                StatsFormat::Table => Ok(snapshot_table(&snapshot)),
            }
        }
    }
}

fn fail(message: &str) -> Failure {
    Failure(message.to_owned())
}

fn id(flag: &str, raw: &str) -> Result<Uuid, Failure> {
    Uuid::parse_str(raw.trim())
        .map_err(|_| Failure(format!("{flag}: {raw:?} is not an id (a UUID)")))
}

/// An RFC 3339 time (`2026-01-31T09:00:00Z`, any offset), or a bare date for its midnight UTC.
pub(super) fn time(flag: &str, raw: &str) -> Result<DateTime<Utc>, Failure> {
    let text = raw.trim();
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&Utc));
    }
    if let Some(midnight) = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
    {
        return Ok(midnight.and_utc());
    }
    Err(Failure(format!(
        "{flag}: {raw:?} is not an RFC 3339 time (such as 2026-01-31T09:00:00Z)"
    )))
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, Failure> {
    serde_json::to_string_pretty(value)
        .map(|mut text| {
            text.push('\n');
            text
        })
        .map_err(|error| Failure(format!("cannot write JSON: {error}")))
}

fn number(value: Option<f64>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

/// A window of the report: the total, or a bucket.
struct Window<'a> {
    period: &'static str,
    from: Option<DateTime<Utc>>,
    to: DateTime<Utc>,
    figures: &'a Figures,
}

fn windows(report: &Report) -> Vec<Window<'_>> {
    let mut rows = vec![Window {
        period: "total",
        from: report.from,
        to: report.to,
        figures: &report.total.figures,
    }];
    for (index, bucket) in report.buckets.iter().enumerate() {
        let end = report
            .buckets
            .get(index + 1)
            .map_or(report.to, |next| next.start);
        rows.push(Window {
            period: "bucket",
            from: Some(bucket.start),
            to: end,
            figures: &bucket.figures,
        });
    }
    rows
}

const FIGURE_COLUMNS: [&str; 25] = [
    "joined",
    "picked",
    "abandoned",
    "timed_out",
    "transferred_out",
    "waiting_now",
    "wait_p50",
    "wait_p90",
    "wait_max",
    "handle_p50",
    "handle_p90",
    "handle_max",
    "rating_count",
    "rating_mean",
    "wait_target_met",
    "wait_target_breached",
    "wait_target_met_share",
    "first_response_target_met",
    "first_response_target_breached",
    "first_response_target_met_share",
    "offered",
    "offers_accepted",
    "offers_declined",
    "offers_expired",
    "messages_left",
];

fn figure_cells(f: &Figures) -> Vec<String> {
    let p = |p: &Percentiles| [number(p.p50), number(p.p90), number(p.max)];
    let mut cells = vec![
        f.joined.to_string(),
        f.picked.to_string(),
        f.abandoned.to_string(),
        f.timed_out.to_string(),
        f.transferred_out.to_string(),
        f.waiting_now.to_string(),
    ];
    cells.extend(p(&f.wait_seconds));
    cells.extend(p(&f.handle_seconds));
    cells.push(f.rating.count.to_string());
    cells.push(number(f.rating.mean));
    for target in [&f.wait_target, &f.first_response_target] {
        cells.push(target.met.to_string());
        cells.push(target.breached.to_string());
        cells.push(number(target.met_share));
    }
    cells.extend(offer_cells(f));
    cells.push(f.messages_left.to_string());
    cells
}

/// The offers of auto routing: made, accepted, declined, expired.
fn offer_cells(f: &Figures) -> [String; 4] {
    let o = &f.offers;
    [o.offered, o.accepted, o.declined, o.expired].map(|n| n.to_string())
}

/// A header row, then per window one row of its figures and one row per agent (with
/// `agent_id`, `picked` and `handle_p50` only). Empty fields are `null`s.
fn report_csv(report: &Report) -> String {
    let mut out = String::new();
    let mut header = vec!["period", "from", "to", "agent_id"];
    header.extend(FIGURE_COLUMNS);
    out.push_str(&plain::csv_row(&header));
    out.push('\n');
    for Window {
        period,
        from,
        to,
        figures,
    } in windows(report)
    {
        let bounds = [from.map(rfc3339).unwrap_or_default(), rfc3339(to)];
        let mut row = vec![
            period.to_owned(),
            bounds[0].clone(),
            bounds[1].clone(),
            String::new(),
        ];
        row.extend(figure_cells(figures));
        out.push_str(&plain::csv_row(&row));
        out.push('\n');
        for agent in &figures.per_agent {
            let mut row = vec![
                period.to_owned(),
                bounds[0].clone(),
                bounds[1].clone(),
                agent.agent_id.to_string(),
            ];
            let mut cells = vec![String::new(); FIGURE_COLUMNS.len()];
            cells[1] = agent.picked.to_string();
            cells[9] = number(agent.handle_seconds_p50);
            row.extend(cells);
            out.push_str(&plain::csv_row(&row));
            out.push('\n');
        }
    }
    out
}

/// Columns padded to their widest cell: the first to the left, the rest to the right.
fn aligned(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|row| row.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            let cell = plain::one_line(cell);
            if c == 0 {
                let _ = write!(line, "{cell:<width$}", width = widths[c]);
            } else {
                let _ = write!(line, "  {cell:>width$}", width = widths[c]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn dash(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"))
}

fn report_table(scope: Scope, report: &Report) -> String {
    let whose = match scope {
        Scope::Queue(id) => format!("queue {id}"),
        Scope::Organization(id) => format!("organization {id}"),
    };
    let from = report
        .from
        .map_or_else(|| "the start of the log".to_owned(), rfc3339);
    let mut out = format!(
        "Statistics of {whose}, from {from} to {} (seconds; - = no samples)\n\n",
        rfc3339(report.to)
    );
    let mut header = vec!["window".to_owned()];
    header.extend(FIGURE_COLUMNS.iter().map(|c| (*c).to_owned()));
    let mut rows = vec![header];
    for Window {
        period,
        from,
        figures,
        ..
    } in windows(report)
    {
        let label = match period {
            "total" => "total".to_owned(),
            _ => from.map(rfc3339).unwrap_or_default(),
        };
        let p = |p: &Percentiles| [dash(p.p50), dash(p.p90), dash(p.max)];
        let mut row = vec![
            label,
            figures.joined.to_string(),
            figures.picked.to_string(),
            figures.abandoned.to_string(),
            figures.timed_out.to_string(),
            figures.transferred_out.to_string(),
            figures.waiting_now.to_string(),
        ];
        row.extend(p(&figures.wait_seconds));
        row.extend(p(&figures.handle_seconds));
        row.push(figures.rating.count.to_string());
        row.push(
            figures
                .rating
                .mean
                .map_or_else(|| "-".to_owned(), |m| format!("{m:.2}")),
        );
        for target in [&figures.wait_target, &figures.first_response_target] {
            row.push(target.met.to_string());
            row.push(target.breached.to_string());
            row.push(dash(target.met_share));
        }
        row.extend(offer_cells(figures));
        row.push(figures.messages_left.to_string());
        rows.push(row);
    }
    out.push_str(&aligned(&rows));
    let agents = &report.total.figures.per_agent;
    if !agents.is_empty() {
        out.push('\n');
        let mut rows = vec![vec![
            "agent".to_owned(),
            "picked".to_owned(),
            "handle_p50".to_owned(),
        ]];
        for agent in agents {
            rows.push(vec![
                agent.agent_id.to_string(),
                agent.picked.to_string(),
                dash(agent.handle_seconds_p50),
            ]);
        }
        out.push_str(&aligned(&rows));
    }
    out
}

/// A header row, then one row per waiting customer (one row with empty customer fields when
/// nobody waits, so that `open` is always there).
fn snapshot_csv(snapshot: &QueueSnapshot) -> String {
    let mut out =
        String::from("queue_id,at,open,waiting,position,conversation_id,since,waited_seconds\n");
    let head = [
        snapshot.queue_id.to_string(),
        rfc3339(snapshot.at),
        snapshot.open.to_string(),
        snapshot.waiting.len().to_string(),
    ];
    if snapshot.waiting.is_empty() {
        let _ = writeln!(out, "{},,,,", plain::csv_row(&head));
    }
    for customer in &snapshot.waiting {
        let mut row = head.to_vec();
        row.extend([
            customer.position.to_string(),
            customer.conversation_id.to_string(),
            rfc3339(customer.since),
            customer.waited_seconds.to_string(),
        ]);
        let _ = writeln!(out, "{}", plain::csv_row(&row));
    }
    out
}

fn snapshot_table(snapshot: &QueueSnapshot) -> String {
    let state = if snapshot.open { "open" } else { "closed" };
    let mut out = format!(
        "Queue {} ({}) at {}: {state}, {} waiting\n",
        snapshot.queue_id,
        plain::one_line(&snapshot.name),
        rfc3339(snapshot.at),
        snapshot.waiting.len()
    );
    if !snapshot.waiting.is_empty() {
        out.push('\n');
        let mut rows = vec![vec![
            "position".to_owned(),
            "conversation".to_owned(),
            "since".to_owned(),
            "waited_seconds".to_owned(),
        ]];
        for customer in &snapshot.waiting {
            rows.push(vec![
                customer.position.to_string(),
                customer.conversation_id.to_string(),
                rfc3339(customer.since),
                format!("{:.3}", customer.waited_seconds),
            ]);
        }
        out.push_str(&aligned(&rows));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(parts: &[(&str, &str)]) -> StatsArgs {
        let mut args = StatsArgs::default();
        for (flag, value) in parts {
            let value = Some((*value).to_owned());
            match *flag {
                "queue" => args.queue = value,
                "org" => args.org = value,
                "from" => args.from = value,
                "to" => args.to = value,
                "at" => args.at = value,
                other => panic!("no flag {other}"),
            }
        }
        args
    }

    const Q: &str = "00000000-0000-0000-0000-00000000000a";

    #[test]
    fn times_are_rfc_3339_or_a_date() {
        let t = time("--from", "2026-01-31T10:00:00+01:00").expect("a time");
        assert_eq!(rfc3339(t), "2026-01-31T09:00:00Z");
        let d = time("--from", "2026-01-31").expect("a date");
        assert_eq!(rfc3339(d), "2026-01-31T00:00:00Z");
        let error = time("--from", "yesterday").expect_err("not a time");
        assert!(error
            .0
            .starts_with("--from: \"yesterday\" is not an RFC 3339 time"));
    }

    #[test]
    fn bad_arguments_are_refused_with_one_line() {
        for (parts, want) in [
            (vec![], "say whose statistics"),
            (vec![("queue", Q), ("org", Q)], "not both"),
            (vec![("queue", "q1")], "--queue: \"q1\" is not an id"),
            (
                vec![("org", Q), ("at", "2026-01-01")],
                "use it with --queue",
            ),
            (
                vec![("queue", Q), ("at", "2026-01-01"), ("from", "2026-01-01")],
                "takes no --from",
            ),
            (
                vec![("queue", Q), ("from", "2026-01-02"), ("to", "2026-01-01")],
                "must be before --to",
            ),
        ] {
            let error = Request::parse(&args(&parts)).expect_err("refused");
            assert!(error.0.contains(want), "{} lacks {want}", error.0);
            assert!(!error.0.contains('\n'));
        }
    }

    #[test]
    fn aligned_columns_pad_to_the_widest_cell() {
        let rows = vec![
            vec!["a".to_owned(), "1".to_owned()],
            vec!["longer".to_owned(), "100".to_owned()],
        ];
        assert_eq!(aligned(&rows), "a         1\nlonger  100\n");
    }
}
