//! Prometheus metrics of the HTTP side and the background work, in a registry of this state's
//! own, rendered after the store's for `GET /metrics`. Counters and histograms are updated
//! where things happen; the gauges of lag, waiting customers and disk are computed when scraped
//! ([`Metrics::refresh`]), from the log's head and what each consumer last reached. Every label
//! takes few values (route templates, status classes, projector and limit names, socket kinds):
//! never an id. Names are part of the operators' contract (README, Operations).

use std::path::Path;
use std::sync::atomic::AtomicBool;

use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use store::metrics::{registered, SECONDS_BUCKETS};

use crate::state::AppState;

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub requests: IntCounter,
    pub responses_4xx: IntCounter,
    pub responses_5xx: IntCounter,
    /// Seconds per request, by route template (`/queues/{queue_id}`) and status class (`2xx`).
    pub request_seconds: HistogramVec,
    /// The last position the process manager has finished.
    pub process_manager_position: IntGauge,
    pub follow_ups_run: IntCounter,
    pub follow_ups_settled: IntCounter,
    /// With NATS: whether the JetStream stream exists (created or verified by this process).
    pub outbox_stream_ready: AtomicBool,
    /// With NATS: 1 while this process holds the outbox lease and publishes.
    pub outbox_holder: IntGauge,
    /// The last position JetStream acknowledged to this process's relay.
    pub outbox_position: IntGauge,
    /// How far the relay is behind the log's head (as of its last batch).
    pub outbox_lag: IntGauge,
    /// 1 while this process runs the sweeper (always with the embedded store; on Postgres while
    /// it holds the sweeper's lease).
    pub sweeper_holder: IntGauge,
    /// 1 while this process delivers webhooks (always with the embedded store; on Postgres
    /// while it holds their lease).
    pub webhooks_holder: IntGauge,
    /// The last log position the webhook worker has owed to its endpoints.
    pub webhooks_position: IntGauge,
    /// Webhook delivery attempts by outcome (`delivered`, `failed`, `parked`).
    pub webhook_attempts: IntCounterVec,
    /// 1 when this process is configured with NATS (`JONO_NATS_URL`).
    pub nats_configured: IntGauge,
    /// With NATS: 1 while the relay's connection is up.
    pub nats_connected: IntGauge,
    /// Open WebSockets by kind (`agent`, `customer`).
    pub websockets_open: IntGaugeVec,
    /// WebSocket frames by kind and direction (`in`, `out`).
    pub websocket_frames: IntCounterVec,
    /// WebSockets closed because the client read too slowly, by kind.
    pub websocket_slow_closes: IntCounterVec,
    /// Requests refused by a rate limit, by the limit's name (`limits.rs`).
    pub rate_limited: IntCounterVec,
    /// 1 when this process sends email (`JONO_SMTP_URL`).
    pub mail_configured: IntGauge,
    /// Email the SMTP server took.
    pub mail_sent: IntCounter,
    /// Attempts to send an email that failed (each is tried again later).
    pub mail_failures: IntCounter,
    /// Email given up: its link expired before it could be sent, or it cannot be written.
    pub mail_dropped: IntCounter,
    /// Reads that waited [`crate::state::READ_WAIT`] for the read models and went ahead without
    /// them: each may have missed a command answered before it began (invariant 11).
    pub reads_ahead: IntCounter,
    /// The gauges computed when scraped.
    scraped: Scraped,
}

/// The gauges computed when scraped ([`Metrics::refresh`]): the log's head, each consumer's
/// lag, the waiting customers, the data directory's disk.
#[derive(Debug)]
struct Scraped {
    head: IntGauge,
    projector_position: IntGaugeVec,
    projector_lag_events: IntGaugeVec,
    projector_lag_seconds: prometheus::GaugeVec,
    projector_failed: IntGaugeVec,
    process_manager_lag_events: IntGauge,
    process_manager_lag_seconds: prometheus::Gauge,
    outbox_lag_seconds: prometheus::Gauge,
    waiting_customers: IntGauge,
    oldest_wait_seconds: prometheus::Gauge,
    data_dir_free_bytes: IntGauge,
    data_dir_size_bytes: IntGauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let registry = Registry::new();
        let d = Declare(&registry);
        d.build_info();
        let metrics = Self {
            requests: d.counter("jono_http_requests_total", "HTTP requests received."),
            responses_4xx: d.counter(
                "jono_http_responses_4xx_total",
                "HTTP responses with a 4xx status.",
            ),
            responses_5xx: d.counter(
                "jono_http_responses_5xx_total",
                "HTTP responses with a 5xx status.",
            ),
            request_seconds: registered(
                d.0,
                HistogramVec::new(
                    HistogramOpts::new(
                        "jono_http_request_duration_seconds",
                        "Time to answer an HTTP request (to its response's head; a WebSocket's upgrade), by route template and status class.",
                    )
                    .buckets(SECONDS_BUCKETS.to_vec()),
                    &["route", "status"],
                ),
            ),
            process_manager_position: d.gauge(
                "jono_process_manager_position",
                "The last log position the process manager finished.",
            ),
            follow_ups_run: d.counter(
                "jono_follow_ups_total",
                "Process-manager follow-up commands that appended events.",
            ),
            follow_ups_settled: d.counter(
                "jono_follow_ups_settled_total",
                "Process-manager follow-ups found already done.",
            ),
            outbox_stream_ready: AtomicBool::new(false),
            outbox_holder: d.gauge(
                "jono_outbox_holder",
                "1 while this process holds the outbox lease and publishes to JetStream.",
            ),
            outbox_position: d.gauge(
                "jono_outbox_position",
                "The last log position JetStream acknowledged to this process's relay.",
            ),
            outbox_lag: d.gauge(
                "jono_outbox_lag",
                "Events between the log's head and the relay's position.",
            ),
            mail_configured: d.gauge(
                "jono_mail_configured",
                "1 when this process sends email (JONO_SMTP_URL).",
            ),
            mail_sent: d.counter("jono_mail_sent_total", "Email the SMTP server took."),
            mail_failures: d.counter(
                "jono_mail_failures_total",
                "Attempts to send an email that failed; each is tried again with back-off.",
            ),
            mail_dropped: d.counter(
                "jono_mail_dropped_total",
                "Email given up: its link expired before it could be sent, or it cannot be written.",
            ),
            sweeper_holder: d.gauge(
                "jono_sweeper_holder",
                "1 while this process runs the sweeper (time-outs, opening hours).",
            ),
            webhooks_holder: d.gauge(
                "jono_webhooks_holder",
                "1 while this process delivers the webhooks (holds their lease).",
            ),
            webhooks_position: d.gauge(
                "jono_webhooks_position",
                "The last log position the webhook worker has owed to its endpoints.",
            ),
            webhook_attempts: d.counters(
                "jono_webhook_attempts_total",
                "Webhook delivery attempts: delivered, failed (to be retried), parked (retries ran out).",
                &["outcome"],
            ),
            nats_configured: d.gauge(
                "jono_nats_configured",
                "1 when this process relays the log to NATS (JONO_NATS_URL).",
            ),
            nats_connected: d.gauge(
                "jono_nats_connected",
                "1 while the outbox relay's NATS connection is up (0 without NATS).",
            ),
            websockets_open: d.gauges(
                "jono_websockets_open",
                "Open WebSocket sessions by kind of caller.",
                &["kind"],
            ),
            websocket_frames: d.counters(
                "jono_websocket_frames_total",
                "WebSocket frames received (in) and sent (out), by kind of caller.",
                &["kind", "direction"],
            ),
            websocket_slow_closes: d.counters(
                "jono_websocket_slow_closes_total",
                "WebSocket sessions closed because the client read too slowly (1013).",
                &["kind"],
            ),
            rate_limited: d.counters(
                "jono_rate_limited_total",
                "Requests and frames refused by a rate limit, by the limit's name.",
                &["limit"],
            ),
            reads_ahead: d.counter(
                "jono_reads_ahead_total",
                "Reads that waited 5 s for the read models and went ahead without them.",
            ),
            scraped: Scraped::declare(&d),
            registry,
        };
        metrics.zero_series();
        metrics
    }
}

impl Metrics {
    /// Every series of a bounded label set, at 0 from the start: a rate over a series that
    /// appears later misses its first increase, and a dashboard shows 0 rather than nothing.
    fn zero_series(&self) {
        for kind in ["agent", "customer"] {
            self.websockets_open.with_label_values(&[kind]);
            self.websocket_slow_closes.with_label_values(&[kind]);
            for direction in ["in", "out"] {
                self.websocket_frames.with_label_values(&[kind, direction]);
            }
        }
        for rate in crate::limits::ALL {
            self.rate_limited.with_label_values(&[rate.name]);
        }
    }
}

impl Scraped {
    fn declare(d: &Declare<'_>) -> Self {
        Self {
        head: d.gauge("jono_log_head", "The log's readable head position."),
        projector_position: d.gauges(
            "jono_projector_position",
            "The last log position each projector applied.",
            &["projector"],
        ),
        projector_lag_events: d.gauges(
            "jono_projector_lag_events",
            "Events between the log's head and each projector's position.",
            &["projector"],
        ),
        projector_lag_seconds: registered(
            d.0,
            prometheus::GaugeVec::new(
                Opts::new(
                    "jono_projector_lag_seconds",
                    "Age of the oldest event each projector has not applied (0 at the head).",
                ),
                &["projector"],
            ),
        ),
        projector_failed: d.gauges(
            "jono_projector_failed",
            "1 while a projector is stuck on an event that fails.",
            &["projector"],
        ),
        process_manager_lag_events: d.gauge(
            "jono_process_manager_lag_events",
            "Events between the log's head and the process manager's position.",
        ),
        process_manager_lag_seconds: d.float(
            "jono_process_manager_lag_seconds",
            "Age of the oldest event the process manager has not finished (0 at the head).",
        ),
        outbox_lag_seconds: d.float(
            "jono_outbox_lag_seconds",
            "Age of the oldest event the outbox relay holding the lease here has not published (0 at the head or without the lease).",
        ),
        waiting_customers: d.gauge(
            "jono_waiting_customers",
            "Customers waiting in a queue's line, all queues together.",
        ),
        oldest_wait_seconds: d.float(
            "jono_oldest_wait_seconds",
            "How long the customer waiting longest, in any queue, has waited.",
        ),
        data_dir_free_bytes: d.gauge(
            "jono_data_dir_free_bytes",
            "Bytes free to Jono on the data directory's filesystem (embedded store; 0 with Postgres).",
        ),
        data_dir_size_bytes: d.gauge(
            "jono_data_dir_size_bytes",
            "Size of the data directory's filesystem (embedded store; 0 with Postgres).",
        ),        }
    }
}

/// Declares metrics in one registry.
struct Declare<'a>(&'a Registry);

impl Declare<'_> {
    fn counter(&self, name: &str, help: &str) -> IntCounter {
        registered(self.0, IntCounter::new(name, help))
    }

    fn gauge(&self, name: &str, help: &str) -> IntGauge {
        registered(self.0, IntGauge::new(name, help))
    }

    fn float(&self, name: &str, help: &str) -> prometheus::Gauge {
        registered(self.0, prometheus::Gauge::new(name, help))
    }

    fn counters(&self, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
        registered(self.0, IntCounterVec::new(Opts::new(name, help), labels))
    }

    fn gauges(&self, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
        registered(self.0, IntGaugeVec::new(Opts::new(name, help), labels))
    }

    /// `jono_build_info`: always 1, labelled with the version.
    fn build_info(&self) {
        let build = self.gauges(
            "jono_build_info",
            "Always 1; the labels say which build of Jono this is.",
            &["version"],
        );
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
    }
}

/// The status class of a response, a label of few values.
pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

impl Metrics {
    /// The text of `GET /metrics`: the store's metrics, then these, refreshed.
    pub async fn render(state: &AppState) -> String {
        let mut out = String::new();
        state.store.metrics().render_prometheus(&mut out);
        state.metrics.refresh(state).await;
        // Encoding fails only on an invalid metric, which registration refused.
        let _ = TextEncoder::new().encode_utf8(&state.metrics.registry.gather(), &mut out);
        out
    }

    /// Sets the gauges computed when scraped. What cannot be read now keeps its last value
    /// (a scrape must not fail because the read models are busy).
    async fn refresh(&self, state: &AppState) {
        let now = chrono::Utc::now();
        let Ok(head) = state.store.head().await else {
            return;
        };
        self.scraped.head.set(head);
        // Age of the first event after `position`: how long ago its consumer fell behind.
        let age = |position: i64| async move {
            if position >= head {
                return 0.0;
            }
            match state.store.read_after(position, 1).await {
                Ok(events) => events.first().map_or(0.0, |event| {
                    (now - event.recorded_at).num_milliseconds().max(0) as f64 / 1000.0
                }),
                Err(_) => 0.0,
            }
        };
        for (name, projector) in state.projections.snapshot() {
            let labels = [name.as_str()];
            let position = projector.position().unwrap_or(0);
            self.scraped
                .projector_position
                .with_label_values(&labels)
                .set(position);
            self.scraped
                .projector_lag_events
                .with_label_values(&labels)
                .set(head.saturating_sub(position).max(0));
            self.scraped
                .projector_lag_seconds
                .with_label_values(&labels)
                .set(age(position).await);
            let failed = matches!(
                projector,
                projections::runtime::ProjectorState::Failed { .. }
            );
            self.scraped
                .projector_failed
                .with_label_values(&labels)
                .set(i64::from(failed));
        }
        let done = self.process_manager_position.get();
        self.scraped
            .process_manager_lag_events
            .set(head.saturating_sub(done).max(0));
        self.scraped
            .process_manager_lag_seconds
            .set(age(done).await);
        let relayed = self.outbox_position.get();
        self.scraped
            .outbox_lag_seconds
            .set(if self.outbox_holder.get() == 1 {
                age(relayed).await
            } else {
                0.0
            });
        if let Ok((waiting, oldest)) =
            projections::queues::read::waiting_overall(state.backend()).await
        {
            self.scraped.waiting_customers.set(waiting);
            self.scraped
                .oldest_wait_seconds
                .set(oldest.map_or(0.0, |since| {
                    (now - since).num_milliseconds().max(0) as f64 / 1000.0
                }));
        }
        if let Some(dir) = &state.settings.data_dir {
            if let Some((free, size)) = filesystem_space(dir) {
                self.scraped.data_dir_free_bytes.set(free);
                self.scraped.data_dir_size_bytes.set(size);
            }
        }
    }
}

/// Bytes available to an unprivileged writer and the size of the filesystem holding `dir`.
fn filesystem_space(dir: &Path) -> Option<(i64, i64)> {
    let stat = rustix::fs::statvfs(dir).ok()?;
    let block = stat.f_frsize;
    let free = stat.f_bavail.saturating_mul(block);
    let size = stat.f_blocks.saturating_mul(block);
    Some((
        i64::try_from(free).unwrap_or(i64::MAX),
        i64::try_from(size).unwrap_or(i64::MAX),
    ))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use projections::runtime::{Options, ProjectorState};
    use serde_json::json;
    use store::{AppendRequest, EventStore, NewEvent};
    use tokio::sync::watch;

    use super::*;

    /// The value of the one series `series` (name and labels) in `text`.
    fn value(text: &str, series: &str) -> f64 {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
            .parse()
            .unwrap()
    }

    /// Three events no read model can apply (a known type in a stream of no aggregate: an event
    /// of an unknown type would be skipped): every projector stops at 0 and fails, and the
    /// process manager (not running here) is at 0 too; `/metrics` says how far behind each is,
    /// in events and in seconds since the first event it has not applied was committed.
    #[tokio::test]
    async fn consumers_behind_the_head_show_their_lag_in_events_and_seconds() {
        let dir = tempfile::tempdir().unwrap();
        let store = EventStore::open_sqlite(dir.path()).await.unwrap();
        for sequence in 1..=3 {
            store
                .append(AppendRequest {
                    events: vec![NewEvent {
                        event_id: uuid::Uuid::new_v4(),
                        aggregate_type: "probe".into(),
                        aggregate_id: "p1".into(),
                        sequence,
                        // A type every node knows, of a stream no read model can decode.
                        event_type: "QueueCreated".into(),
                        event_version: "1".into(),
                        payload: json!({}),
                        actor: None,
                    }],
                    expected: vec![("probe".into(), "p1".into(), sequence - 1)],
                    idempotency: None,
                })
                .await
                .unwrap();
        }
        let state = AppState::new(store.clone());
        let (_stop, stopped) = watch::channel(false);
        let _projectors = projections::runtime::start_with(
            state.projections.clone(),
            store,
            projections::all(),
            Options::default(),
            stopped,
        );
        // The projections that decode `QueueCreated` fail on it; the others skip it (an event
        // of a type they do not apply is never decoded for them) and reach the head.
        let settled = |states: &std::collections::BTreeMap<String, ProjectorState>| {
            !states.is_empty()
                && states.values().all(|state| match state {
                    ProjectorState::Failed {
                        position: 0, error, ..
                    } => error.contains("probe"),
                    ProjectorState::Running { position } => *position == 3,
                    _ => false,
                })
                && states
                    .values()
                    .any(|state| matches!(state, ProjectorState::Failed { .. }))
        };
        for _ in 0..500 {
            if settled(&state.projections.snapshot()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let projectors = state.projections.snapshot();
        assert!(settled(&projectors), "{projectors:?}");
        // Some time after the first event's commit, at millisecond resolution.
        tokio::time::sleep(Duration::from_millis(20)).await;

        let text = Metrics::render(&state).await;
        assert_eq!(value(&text, "jono_log_head"), 3.0);
        for (name, projector) in &projectors {
            let labels = format!("{{projector=\"{name}\"}}");
            let lag = value(&text, &format!("jono_projector_lag_events{labels}"));
            let failed = value(&text, &format!("jono_projector_failed{labels}"));
            let seconds = value(&text, &format!("jono_projector_lag_seconds{labels}"));
            if matches!(projector, ProjectorState::Failed { .. }) {
                assert_eq!((lag, failed), (3.0, 1.0), "{name}");
                assert!(seconds > 0.0 && seconds < 60.0, "{name}: {seconds}");
            } else {
                assert_eq!((lag, failed, seconds), (0.0, 0.0, 0.0), "{name}");
            }
        }
        assert_eq!(value(&text, "jono_process_manager_lag_events"), 3.0);
        let seconds = value(&text, "jono_process_manager_lag_seconds");
        assert!(seconds > 0.0 && seconds < 60.0, "{seconds}");
        // Without the outbox lease, no relay lag is claimed.
        assert_eq!(value(&text, "jono_outbox_lag_seconds"), 0.0);
    }
}
