//! Prometheus counters of the HTTP side and the background work, rendered with the store's.

use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Metrics {
    pub requests: AtomicU64,
    pub responses_4xx: AtomicU64,
    pub responses_5xx: AtomicU64,
    /// The last position the process manager has finished.
    pub process_manager_position: AtomicI64,
    pub follow_ups_run: AtomicU64,
    pub follow_ups_settled: AtomicU64,
    /// With NATS: whether the JetStream stream exists (created or verified by this process).
    pub outbox_stream_ready: AtomicBool,
    /// With NATS: 1 while this process holds the outbox lease and publishes.
    pub outbox_holder: AtomicI64,
    /// The last position JetStream acknowledged to this process's relay.
    pub outbox_position: AtomicI64,
    /// How far the relay is behind the log's head (as of its last batch).
    pub outbox_lag: AtomicI64,
    /// 1 while this process runs the sweeper (always with the embedded store; on Postgres while
    /// it holds the sweeper's lease).
    pub sweeper_holder: AtomicI64,
}

impl Metrics {
    pub fn render(&self, out: &mut String) {
        let counters = [
            (
                "jono_http_requests_total",
                "HTTP requests received.",
                &self.requests,
            ),
            (
                "jono_http_responses_4xx_total",
                "HTTP responses with a 4xx status.",
                &self.responses_4xx,
            ),
            (
                "jono_http_responses_5xx_total",
                "HTTP responses with a 5xx status.",
                &self.responses_5xx,
            ),
            (
                "jono_follow_ups_total",
                "Process-manager follow-up commands that appended events.",
                &self.follow_ups_run,
            ),
            (
                "jono_follow_ups_settled_total",
                "Process-manager follow-ups found already done.",
                &self.follow_ups_settled,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
        }
        let gauges = [
            (
                "jono_process_manager_position",
                "The last log position the process manager finished.",
                &self.process_manager_position,
            ),
            (
                "jono_outbox_holder",
                "1 while this process holds the outbox lease and publishes to JetStream.",
                &self.outbox_holder,
            ),
            (
                "jono_sweeper_holder",
                "1 while this process runs the sweeper (time-outs, opening hours).",
                &self.sweeper_holder,
            ),
            (
                "jono_outbox_position",
                "The last log position JetStream acknowledged to this process's relay.",
                &self.outbox_position,
            ),
            (
                "jono_outbox_lag",
                "Events between the log's head and the relay's position.",
                &self.outbox_lag,
            ),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
            let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
        }
    }
}
