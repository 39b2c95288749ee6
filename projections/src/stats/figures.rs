//! From samples to API.md's figures, for one window of time. Pure.
//!
//! The choices API.md leaves open, made once here:
//! - **Which window.** A wait, a handle and a rating count in the window `from ≤ t < to` in which
//!   they *end* (a rating: in which it was given). `joined` counts the waits that *start* in the
//!   window — a `CustomerJoinedQueue` or a transfer into the queue, since API.md says a wait runs
//!   "from `CustomerJoinedQueue` (or a transfer into the queue)". So, per queue,
//!   `joined = picked + abandoned + timed_out + transferred-out waits + removed + Δwaiting`; an
//!   organization's figures are the sum of its queues' (a transfer between two of its queues is a
//!   transfer out of one and a join of the other).
//! - **`waiting_now`** is the number waiting at the instant `to`: the waits that started before
//!   `to` and had not ended before `to`. "At an instant" means after every event recorded before
//!   it, which is also what `--at` shows.
//! - **`transferred_out`** counts waits that ended by a transfer *and* handles that did (a picked
//!   conversation transferred to another queue), both in the window in which they ended.
//! - **`wait_seconds`** is over every wait that ended in the window, whatever ended it (a pick,
//!   an abandonment, a time-out, a transfer out or a removal by an agent); `handle_seconds` over
//!   every handle that ended in it.
//! - **`picked`**: the picks in the window (the waits it ended with a pick); per agent the same,
//!   and `handle_seconds_p50` over that agent's handles that ended in the window. An agent is
//!   listed when it has either; the list is ordered by `agent_id`.
//! - **Seconds** are fractional, to the millisecond: the log records microseconds, percentiles
//!   are taken over the exact durations and then rounded to the nearest millisecond.
//! - **Service-level targets.** A wait counts against the `target_wait_seconds` its queue had
//!   when it began, a first response against the `target_first_response_seconds` of the queue
//!   joined, at the join. Each is decided once, at an instant, and counts in the window holding
//!   that instant: *met* when the pick (or the agent's first message) comes at or before the
//!   target's deadline — decided then; *breached* when the deadline passes without it (still
//!   waiting or unanswered, or gone only later) — decided at the deadline, so a breach shows as
//!   soon as it happens. A wait that ends otherwise (abandoned, timed out, moved, removed) or a
//!   conversation ended unanswered before the deadline is neither. `met_share` is
//!   `met / (met + breached)`, `null` when nothing was decided.
//! - **`offers`** (auto routing): the offers made, accepted, declined and expired in the window,
//!   each counted at its own event; an offer made before `to` may end after it.
//! - **Percentiles** are nearest-rank: the `⌈q·n⌉`-th smallest of the `n` samples (at least the
//!   first), computed in integers so that `q·n` is never off by a rounding error.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::fold::{HandleOutcome, OfferOutcome, Response, Samples, Wait, WaitOutcome};
use super::Scope;

/// `{p50, p90, max}` in seconds; each `null` when there is no sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Percentiles {
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub max: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RatingFigures {
    pub count: u64,
    /// `null` without ratings.
    pub mean: Option<f64>,
}

/// One service-level target's figures over the window: a sample is decided when it meets the
/// target (the pick, or the agent's first message, within it) or when the target passes
/// without it (a breach, counted at that instant, whatever comes later).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default, JsonSchema)]
pub struct TargetFigures {
    pub met: u64,
    pub breached: u64,
    /// `met / (met + breached)`; `null` when nothing was decided.
    pub met_share: Option<f64>,
}

impl TargetFigures {
    fn count(&mut self, met: bool) {
        if met {
            self.met += 1;
        } else {
            self.breached += 1;
        }
    }

    fn done(mut self) -> Self {
        let decided = self.met + self.breached;
        self.met_share = (decided > 0).then(|| self.met as f64 / decided as f64);
        self
    }
}

/// When a sample with a target of `target` µs, begun at `start`, is decided, and whether it met
/// the target; `end` is when it ended and whether that was the awaited outcome. `None`: never
/// counted (it ended otherwise before the deadline).
pub fn decide(
    start: DateTime<Utc>,
    target: i64,
    end: Option<(DateTime<Utc>, bool)>,
) -> Option<(DateTime<Utc>, bool)> {
    let deadline = start + chrono::Duration::microseconds(target);
    match end {
        Some((at, true)) if at <= deadline => Some((at, true)),
        Some((at, false)) if at <= deadline => None,
        _ => Some((deadline, false)),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AgentFigures {
    pub agent_id: Uuid,
    pub picked: u64,
    pub handle_seconds_p50: Option<f64>,
}

/// Auto routing's offers in a window, each counted at its event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OfferFigures {
    pub offered: u64,
    pub accepted: u64,
    pub declined: u64,
    pub expired: u64,
}

/// The figures of one window, without the window itself (a bucket carries its `start`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Figures {
    pub joined: u64,
    pub picked: u64,
    pub abandoned: u64,
    pub timed_out: u64,
    pub transferred_out: u64,
    pub waiting_now: u64,
    pub wait_seconds: Percentiles,
    pub handle_seconds: Percentiles,
    pub rating: RatingFigures,
    pub per_agent: Vec<AgentFigures>,
    /// Against the queue's `target_wait_seconds` (the one in effect when each wait began).
    pub wait_target: TargetFigures,
    /// Against the queue's `target_first_response_seconds` (the one in effect at each join).
    pub first_response_target: TargetFigures,
    /// Auto routing's offers in the window, each counted at its own event.
    // Statistics computed before offers existed read as none (the default).
    #[serde(default)]
    pub offers: OfferFigures,
    /// Messages left when nobody could answer (`POST /v1/queues/{queue}/messages`), counted
    /// when they were left.
    #[serde(default)]
    pub messages_left: u64,
}

/// A queue's figures over `from ≤ t < to`, from the log alone (API.md, Statistics).
// API.md's statistics object: `{from, to, joined, …, per_agent}`; the OpenAPI document's
// schema of `GET /v1/queues/{queue}/stats` is this type's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct QueueStats {
    /// `null` when the window has no start.
    pub from: Option<DateTime<Utc>>,
    pub to: DateTime<Utc>,
    #[serde(flatten)]
    pub figures: Figures,
}

/// The `n`-th percentile (`percent` in 1..=100) of `sorted` by the nearest-rank method, or
/// `None` for no samples.
pub fn nearest_rank<T: Copy>(sorted: &[T], percent: u32) -> Option<T> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let percent = percent.clamp(1, 100) as usize;
    // ⌈percent·n/100⌉ without floating point.
    let rank = (percent * n).div_ceil(100).max(1);
    sorted.get(rank.min(n) - 1).copied()
}

/// Microseconds to seconds, rounded to the millisecond.
pub(crate) fn seconds(micros: i64) -> f64 {
    // Integer rounding, half away from zero, then one exact division: 1234567 µs → 1.235 s.
    let millis = if micros >= 0 {
        (micros + 500) / 1000
    } else {
        (micros - 500) / 1000
    };
    millis as f64 / 1000.0
}

pub(crate) fn micros(start: DateTime<Utc>, end: DateTime<Utc>) -> i64 {
    (end - start).num_microseconds().unwrap_or(i64::MAX)
}

fn percentiles(mut durations: Vec<i64>) -> Percentiles {
    durations.sort_unstable();
    Percentiles {
        p50: nearest_rank(&durations, 50).map(seconds),
        p90: nearest_rank(&durations, 90).map(seconds),
        max: durations.last().copied().map(seconds),
    }
}

fn in_scope(scope: Scope, queue_id: Option<Uuid>, organization_id: Uuid) -> bool {
    match scope {
        Scope::Queue(id) => queue_id == Some(id),
        Scope::Organization(id) => organization_id == id,
    }
}

fn in_window(t: DateTime<Utc>, from: Option<DateTime<Utc>>, to: DateTime<Utc>) -> bool {
    from.is_none_or(|from| from <= t) && t < to
}

/// API.md's figures for `scope` over `from ≤ t < to` (no lower bound without `from`).
pub fn compute(
    samples: &Samples,
    scope: Scope,
    from: Option<DateTime<Utc>>,
    to: DateTime<Utc>,
) -> QueueStats {
    let mut tally = Tally::default();
    for wait in &samples.waits {
        if !in_scope(scope, Some(wait.queue_id), wait.organization_id) {
            continue;
        }
        if in_window(wait.start, from, to) {
            tally.joined += 1;
        }
        if let Some((at, met)) = wait_decision(wait) {
            if in_window(at, from, to) {
                tally.wait_target.count(met);
            }
        }
        match wait.end {
            Some(end) if in_window(end.at, from, to) => {
                tally.wait(micros(wait.start, end.at), end.outcome)
            }
            Some(end) if wait.start < to && end.at >= to => tally.waiting_now += 1,
            None if wait.start < to => tally.waiting_now += 1,
            _ => {}
        }
    }
    for handle in &samples.handles {
        if !in_scope(scope, Some(handle.queue_id), handle.organization_id) {
            continue;
        }
        if let Some(end) = handle.end.filter(|end| in_window(end.at, from, to)) {
            tally.handle(handle.agent_id, micros(handle.start, end.at), end.outcome);
        }
    }
    for rating in &samples.ratings {
        if in_scope(scope, rating.queue_id, rating.organization_id)
            && in_window(rating.at, from, to)
        {
            tally.rating(rating.score);
        }
    }
    for offer in &samples.offers {
        if in_scope(scope, Some(offer.queue_id), offer.organization_id)
            && in_window(offer.at, from, to)
        {
            tally.offer(offer.outcome);
        }
    }
    for left in &samples.left_messages {
        if in_scope(scope, Some(left.queue_id), left.organization_id)
            && in_window(left.at, from, to)
        {
            tally.messages_left += 1;
        }
    }
    for response in &samples.responses {
        if !in_scope(scope, Some(response.queue_id), response.organization_id) {
            continue;
        }
        if let Some((at, met)) = response_decision(response) {
            if in_window(at, from, to) {
                tally.first_response_target.count(met);
            }
        }
    }
    QueueStats {
        from,
        to,
        figures: tally.figures(),
    }
}

/// Bucket sizes for `--by`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum By {
    Hour,
    Day,
}

impl By {
    fn micros(self) -> i64 {
        match self {
            By::Hour => 3_600_000_000,
            By::Day => 86_400_000_000,
        }
    }

    /// The start of the bucket (UTC, on the hour or at midnight) that holds `t`.
    pub fn floor(self, t: DateTime<Utc>) -> DateTime<Utc> {
        let step = self.micros();
        let floored = t.timestamp_micros().div_euclid(step) * step;
        DateTime::from_timestamp_micros(floored).unwrap_or(t)
    }
}

/// One bucket of `--by`: its `start`, then the figures of `[start, next start)` (the last bucket
/// ends at `to`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    pub start: DateTime<Utc>,
    #[serde(flatten)]
    pub figures: Figures,
}

/// More buckets than this is surely a mistake (a century by the hour) and is refused.
pub const MAX_BUCKETS: usize = 100_000;

/// The buckets of `[from, to)` by hour or day, every one listed, empty or not. Without `from`
/// they begin with the bucket of the scope's first sample, at the start of its hour or day. `None` when there would be more than
/// [`MAX_BUCKETS`].
pub fn compute_buckets(
    samples: &Samples,
    scope: Scope,
    from: Option<DateTime<Utc>>,
    to: DateTime<Utc>,
    by: By,
) -> Option<Vec<Bucket>> {
    let first = from.or_else(|| first_sample(samples, scope));
    let Some(first) = first.filter(|first| *first < to) else {
        return Some(Vec::new());
    };
    let step = by.micros();
    let first_start = by.floor(first).timestamp_micros();
    let count = usize::try_from((to.timestamp_micros() - 1 - first_start) / step + 1).ok()?;
    if count > MAX_BUCKETS {
        return None;
    }
    let start_of = |index: usize| -> DateTime<Utc> {
        let micros = first_start + step * index as i64;
        DateTime::from_timestamp_micros(micros).unwrap_or(to)
    };
    // The window of bucket i is [max(start_i, from), min(start_{i+1}, to)).
    let index_of = |t: DateTime<Utc>| -> Option<usize> {
        if !in_window(t, Some(first), to) {
            return None;
        }
        usize::try_from((t.timestamp_micros() - first_start) / step).ok()
    };
    let mut tallies: Vec<Tally> = (0..count).map(|_| Tally::default()).collect();
    // Waiting at the end of bucket i = waits started before it − waits ended before it.
    let mut started_before = vec![0i64; count + 1];
    let mut ended_before = vec![0i64; count + 1];
    let bound = |t: DateTime<Utc>| -> usize {
        // The first bucket whose end is after t: t counts as "before" the ends of it and later.
        if t < first {
            return 0;
        }
        index_of(t).unwrap_or(count)
    };
    for wait in &samples.waits {
        if !in_scope(scope, Some(wait.queue_id), wait.organization_id) {
            continue;
        }
        if let Some(index) = index_of(wait.start) {
            tallies[index].joined += 1;
        }
        started_before[bound(wait.start)] += 1;
        if let Some((at, met)) = wait_decision(wait) {
            if let Some(index) = index_of(at) {
                tallies[index].wait_target.count(met);
            }
        }
        if let Some(end) = wait.end {
            if let Some(index) = index_of(end.at) {
                tallies[index].wait(micros(wait.start, end.at), end.outcome);
            }
            ended_before[bound(end.at)] += 1;
        }
    }
    for handle in &samples.handles {
        if !in_scope(scope, Some(handle.queue_id), handle.organization_id) {
            continue;
        }
        if let Some(end) = handle.end {
            if let Some(index) = index_of(end.at) {
                tallies[index].handle(handle.agent_id, micros(handle.start, end.at), end.outcome);
            }
        }
    }
    for rating in &samples.ratings {
        if in_scope(scope, rating.queue_id, rating.organization_id) {
            if let Some(index) = index_of(rating.at) {
                tallies[index].rating(rating.score);
            }
        }
    }
    for offer in &samples.offers {
        if in_scope(scope, Some(offer.queue_id), offer.organization_id) {
            if let Some(index) = index_of(offer.at) {
                tallies[index].offer(offer.outcome);
            }
        }
    }
    for left in &samples.left_messages {
        if in_scope(scope, Some(left.queue_id), left.organization_id) {
            if let Some(index) = index_of(left.at) {
                tallies[index].messages_left += 1;
            }
        }
    }
    for response in &samples.responses {
        if !in_scope(scope, Some(response.queue_id), response.organization_id) {
            continue;
        }
        if let Some((at, met)) = response_decision(response) {
            if let Some(index) = index_of(at) {
                tallies[index].first_response_target.count(met);
            }
        }
    }
    let (mut started, mut ended) = (0i64, 0i64);
    let mut buckets = Vec::with_capacity(count);
    for (index, mut tally) in tallies.into_iter().enumerate() {
        started += started_before[index];
        ended += ended_before[index];
        tally.waiting_now = u64::try_from(started - ended).unwrap_or(0);
        // A bucket starts on its hour or day, but the first one not before `from` when given.
        let start = match from {
            Some(from) => start_of(index).max(from),
            None => start_of(index),
        };
        buckets.push(Bucket {
            start,
            figures: tally.figures(),
        });
    }
    Some(buckets)
}

/// A wait against its target: met by a pick.
fn wait_decision(wait: &Wait) -> Option<(DateTime<Utc>, bool)> {
    let target = wait.target?;
    let end = wait.end.map(|end| {
        let picked = matches!(end.outcome, WaitOutcome::Picked { .. });
        (end.at, picked)
    });
    decide(wait.start, target, end)
}

/// A first response against its target: met by an agent's message.
fn response_decision(response: &Response) -> Option<(DateTime<Utc>, bool)> {
    let end = response.end.map(|end| (end.at, end.answered));
    decide(response.start, response.target, end)
}

fn first_sample(samples: &Samples, scope: Scope) -> Option<DateTime<Utc>> {
    let waits = samples
        .waits
        .iter()
        .filter(|w| in_scope(scope, Some(w.queue_id), w.organization_id))
        .map(|w| w.start);
    let ratings = samples
        .ratings
        .iter()
        .filter(|r| in_scope(scope, r.queue_id, r.organization_id))
        .map(|r| r.at);
    // A handle starts with a pick, which ends a wait that started earlier.
    waits.chain(ratings).min()
}

/// What one window accumulates.
#[derive(Debug, Default)]
struct Tally {
    joined: u64,
    picked: u64,
    abandoned: u64,
    timed_out: u64,
    transferred_out: u64,
    waiting_now: u64,
    waits: Vec<i64>,
    handles: Vec<i64>,
    rating_count: u64,
    rating_sum: u64,
    agents: BTreeMap<Uuid, AgentTally>,
    wait_target: TargetFigures,
    first_response_target: TargetFigures,
    offers: OfferFigures,
    messages_left: u64,
}

#[derive(Debug, Default)]
struct AgentTally {
    picked: u64,
    handles: Vec<i64>,
}

impl Tally {
    fn wait(&mut self, duration: i64, outcome: WaitOutcome) {
        self.waits.push(duration);
        match outcome {
            WaitOutcome::Picked { agent_id } => {
                self.picked += 1;
                self.agents.entry(agent_id).or_default().picked += 1;
            }
            WaitOutcome::Abandoned => self.abandoned += 1,
            WaitOutcome::TimedOut => self.timed_out += 1,
            WaitOutcome::TransferredOut => self.transferred_out += 1,
            WaitOutcome::Removed => {}
        }
    }

    fn handle(&mut self, agent_id: Uuid, duration: i64, outcome: HandleOutcome) {
        self.handles.push(duration);
        self.agents
            .entry(agent_id)
            .or_default()
            .handles
            .push(duration);
        if outcome == HandleOutcome::TransferredOut {
            self.transferred_out += 1;
        }
    }

    fn offer(&mut self, outcome: OfferOutcome) {
        let count = match outcome {
            OfferOutcome::Offered => &mut self.offers.offered,
            OfferOutcome::Accepted => &mut self.offers.accepted,
            OfferOutcome::Declined => &mut self.offers.declined,
            OfferOutcome::Expired => &mut self.offers.expired,
        };
        *count += 1;
    }

    fn rating(&mut self, score: u8) {
        self.rating_count += 1;
        self.rating_sum += u64::from(score);
    }

    fn figures(self) -> Figures {
        let per_agent = self
            .agents
            .into_iter()
            .map(|(agent_id, mut agent)| {
                agent.handles.sort_unstable();
                AgentFigures {
                    agent_id,
                    picked: agent.picked,
                    handle_seconds_p50: nearest_rank(&agent.handles, 50).map(seconds),
                }
            })
            .collect();
        Figures {
            joined: self.joined,
            picked: self.picked,
            abandoned: self.abandoned,
            timed_out: self.timed_out,
            transferred_out: self.transferred_out,
            waiting_now: self.waiting_now,
            wait_seconds: percentiles(self.waits),
            handle_seconds: percentiles(self.handles),
            rating: RatingFigures {
                count: self.rating_count,
                mean: (self.rating_count > 0)
                    .then(|| self.rating_sum as f64 / self.rating_count as f64),
            },
            per_agent,
            wait_target: self.wait_target.done(),
            first_response_target: self.first_response_target.done(),
            offers: self.offers,
            messages_left: self.messages_left,
        }
    }
}
