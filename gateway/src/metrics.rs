//! Prometheus counters of the HTTP side and the background work, rendered with the store's.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Metrics {
    pub requests: AtomicU64,
    pub responses_4xx: AtomicU64,
    pub responses_5xx: AtomicU64,
    /// The last position the process manager has finished.
    pub process_manager_position: AtomicI64,
    pub follow_ups_run: AtomicU64,
    pub follow_ups_settled: AtomicU64,
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
        let name = "jono_process_manager_position";
        let _ = writeln!(
            out,
            "# HELP {name} The last log position the process manager finished."
        );
        let _ = writeln!(out, "# TYPE {name} gauge");
        let _ = writeln!(
            out,
            "{name} {}",
            self.process_manager_position.load(Ordering::Relaxed)
        );
    }
}
