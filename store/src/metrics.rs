//! Counters of the writer, rendered in the Prometheus text format for `GET /metrics`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Upper bounds of the batch-size histogram buckets (requests per commit).
const BATCH_BUCKETS: [u64; 9] = [1, 2, 4, 8, 16, 32, 64, 128, 256];

/// What the group-commit writer has done since the process started.
#[derive(Debug, Default)]
pub struct StoreMetrics {
    commits: AtomicU64,
    events_appended: AtomicU64,
    append_requests: AtomicU64,
    conflicts: AtomicU64,
    batch_buckets: [AtomicU64; BATCH_BUCKETS.len()],
    batch_sum: AtomicU64,
    batch_count: AtomicU64,
}

impl StoreMetrics {
    pub(crate) fn record_batch(&self, requests: usize, events: usize, conflicts: usize) {
        let requests = requests as u64;
        self.commits.fetch_add(1, Relaxed);
        self.events_appended.fetch_add(events as u64, Relaxed);
        self.append_requests.fetch_add(requests, Relaxed);
        self.conflicts.fetch_add(conflicts as u64, Relaxed);
        self.batch_sum.fetch_add(requests, Relaxed);
        self.batch_count.fetch_add(1, Relaxed);
        if let Some(i) = BATCH_BUCKETS.iter().position(|&bound| requests <= bound) {
            self.batch_buckets[i].fetch_add(1, Relaxed);
        }
    }

    /// Requests answered by a failed batch still count as requests.
    pub(crate) fn record_failed_batch(&self, requests: usize) {
        self.append_requests.fetch_add(requests as u64, Relaxed);
    }

    pub fn commits(&self) -> u64 {
        self.commits.load(Relaxed)
    }

    pub fn events_appended(&self) -> u64 {
        self.events_appended.load(Relaxed)
    }

    pub fn append_requests(&self) -> u64 {
        self.append_requests.load(Relaxed)
    }

    pub fn conflicts(&self) -> u64 {
        self.conflicts.load(Relaxed)
    }

    /// Appends the counters to `out` in the Prometheus text exposition format.
    pub fn render_prometheus(&self, out: &mut String) {
        let counters = [
            (
                "jono_store_commits_total",
                "Transactions committed by the event writer.",
                self.commits(),
            ),
            (
                "jono_store_events_appended_total",
                "Events appended to the log.",
                self.events_appended(),
            ),
            (
                "jono_store_append_requests_total",
                "Append requests received by the writer.",
                self.append_requests(),
            ),
            (
                "jono_store_conflicts_total",
                "Append requests refused for an expected-version conflict.",
                self.conflicts(),
            ),
        ];
        // Writing to a String cannot fail, so the results are ignored.
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        }
        let name = "jono_store_batch_size";
        let _ = writeln!(
            out,
            "# HELP {name} Append requests per commit (group commit)."
        );
        let _ = writeln!(out, "# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, bucket) in BATCH_BUCKETS.iter().zip(&self.batch_buckets) {
            cumulative += bucket.load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let count = self.batch_count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {}", self.batch_sum.load(Relaxed));
        let _ = writeln!(out, "{name}_count {count}");
    }
}
