//! What the writer and the command layer have done, as Prometheus metrics of a registry of this
//! store's own (several stores may live in one test process), rendered for `GET /metrics`.
//! Names are part of the operators' contract (README, Operations): add, never rename.

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry, TextEncoder,
};

/// Upper bounds of the batch-size histogram buckets (requests per commit).
const BATCH_BUCKETS: [f64; 9] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// Seconds, from a tenth of a millisecond (an fsync on a fast disk) to ten seconds (a stall).
pub const SECONDS_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Where a command found the aggregate it decided on (the `source` label).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Loaded {
    /// This process's last command on the stream left it (`recent`).
    Cache,
    /// The stream's snapshot.
    Snapshot,
    /// Neither: folded from the first event.
    Log,
}

/// What the group-commit writer and the command layer have done since the process started.
#[derive(Debug)]
pub struct StoreMetrics {
    registry: Registry,
    commits: IntCounter,
    events_appended: IntCounter,
    append_requests: IntCounter,
    conflicts: IntCounter,
    batch_size: Histogram,
    append_seconds: Histogram,
    commit_seconds: HistogramVec,
    write_lock_seconds: Histogram,
    append_queue_seconds: Histogram,
    batch_seconds: Histogram,
    aggregate_loads: IntCounterVec,
    snapshots_written: IntCounter,
    follower_reads: IntCounterVec,
    aggregate_catch_ups: IntCounterVec,
}

/// Registers `metric` in `registry`. Names are constants of this crate, so a refusal (a name
/// registered twice, an invalid name) is a programming error caught by the first test.
pub fn registered<M: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: prometheus::Result<M>,
) -> M {
    #[allow(clippy::expect_used)]
    let metric = metric.expect("a valid metric");
    #[allow(clippy::expect_used)]
    registry
        .register(Box::new(metric.clone()))
        .expect("a metric name registered once");
    metric
}

impl Default for StoreMetrics {
    fn default() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str| registered(&registry, IntCounter::new(name, help));
        let seconds = |name: &str, help: &str| {
            registered(
                &registry,
                Histogram::with_opts(
                    HistogramOpts::new(name, help).buckets(SECONDS_BUCKETS.to_vec()),
                ),
            )
        };
        Self {
            commits: counter(
                "jono_store_commits_total",
                "Transactions committed by the event writer.",
            ),
            events_appended: counter("jono_store_events_appended_total", "Events appended to the log."),
            append_requests: counter(
                "jono_store_append_requests_total",
                "Append requests received by the writer.",
            ),
            conflicts: counter(
                "jono_store_conflicts_total",
                "Append requests refused for an expected-version conflict.",
            ),
            batch_size: registered(
                &registry,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "jono_store_batch_size",
                        "Append requests per commit (group commit).",
                    )
                    .buckets(BATCH_BUCKETS.to_vec()),
                ),
            ),
            append_seconds: seconds(
                "jono_store_append_seconds",
                "From an append request's arrival at the writer's queue to its answer (committed and fsynced).",
            ),
            commit_seconds: registered(
                &registry,
                HistogramVec::new(
                    HistogramOpts::new(
                        "jono_store_commit_seconds",
                        "Time of one batch's COMMIT, which waits for the fsync (SQLite: the WAL's; Postgres: the server's WAL flush).",
                    )
                    .buckets(SECONDS_BUCKETS.to_vec()),
                    &["backend"],
                ),
            ),
            append_queue_seconds: seconds(
                "jono_store_append_queue_seconds",
                "From an append request's handing to the writer to the start of the batch that takes it: the wait for the batches before it.",
            ),
            batch_seconds: seconds(
                "jono_store_batch_seconds",
                "One batch of the writer, from its start to its answers sent: its statements, COMMIT and fsync. An append's time beyond its queue wait and its batch is the wake-up of the task that asked.",
            ),
            write_lock_seconds: seconds(
                "jono_store_write_lock_seconds",
                "SQLite: the log writer's wait for jono.db's write lock at a batch's BEGIN, held meanwhile by another connection's write (a checkpoint's save, a lease, another process).",
            ),
            aggregate_loads: registered(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "jono_aggregate_loads_total",
                        "Aggregates a command started from, by source: cache (this process's last command left it), snapshot, or log (folded from the start).",
                    ),
                    &["source"],
                ),
            ),
            snapshots_written: counter(
                "jono_snapshots_written_total",
                "Aggregate snapshots written.",
            ),
            follower_reads: registered(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "jono_store_follower_reads_total",
                        "Reads of the log's followers (projectors, process manager, live hub, relays, router, sweeper), by source: memory (this process's newest commits alone) or database.",
                    ),
                    &["source"],
                ),
            ),
            aggregate_catch_ups: registered(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "jono_aggregate_catch_ups_total",
                        "A command's look for events stored after the aggregate it starts from, by source: memory (this process's newest commits alone) or database.",
                    ),
                    &["source"],
                ),
            ),
            registry,
        }
    }
}

impl StoreMetrics {
    pub(crate) fn record_batch(&self, requests: usize, events: usize, conflicts: usize) {
        let requests = requests as u64;
        self.commits.inc();
        self.events_appended.inc_by(events as u64);
        self.append_requests.inc_by(requests);
        self.conflicts.inc_by(conflicts as u64);
        self.batch_size.observe(requests as f64);
    }

    /// Requests answered by a failed batch still count as requests.
    pub(crate) fn record_failed_batch(&self, requests: usize) {
        self.append_requests.inc_by(requests as u64);
    }

    pub(crate) fn record_append(&self, seconds: f64) {
        self.append_seconds.observe(seconds);
    }

    pub(crate) fn record_commit(&self, backend: &'static str, seconds: f64) {
        self.commit_seconds
            .with_label_values(&[backend])
            .observe(seconds);
    }

    pub(crate) fn record_append_queue(&self, seconds: f64) {
        self.append_queue_seconds.observe(seconds);
    }

    pub(crate) fn record_batch_time(&self, seconds: f64) {
        self.batch_seconds.observe(seconds);
    }

    pub(crate) fn record_write_lock(&self, seconds: f64) {
        self.write_lock_seconds.observe(seconds);
    }

    pub(crate) fn record_load(&self, source: Loaded) {
        let source = match source {
            Loaded::Cache => "cache",
            Loaded::Snapshot => "snapshot",
            Loaded::Log => "log",
        };
        self.aggregate_loads.with_label_values(&[source]).inc();
    }

    /// A follower's read: answered from this process's newest commits alone, or not.
    pub(crate) fn record_follower_read(&self, from_memory: bool) {
        let source = if from_memory { "memory" } else { "database" };
        self.follower_reads.with_label_values(&[source]).inc();
    }

    /// A command's look for events stored after its aggregate: from memory alone, or not.
    pub(crate) fn record_aggregate_catch_up(&self, from_memory: bool) {
        let source = if from_memory { "memory" } else { "database" };
        self.aggregate_catch_ups.with_label_values(&[source]).inc();
    }

    /// The log writer's waits for `jono.db`'s write lock, in seconds all together, and how
    /// many batches began.
    pub fn write_lock_waits(&self) -> (f64, u64) {
        (
            self.write_lock_seconds.get_sample_sum(),
            self.write_lock_seconds.get_sample_count(),
        )
    }

    /// Commands' looks for later events answered from memory alone.
    pub fn aggregate_catch_ups_from_memory(&self) -> u64 {
        self.aggregate_catch_ups
            .with_label_values(&["memory"])
            .get()
    }

    /// Commands' looks for later events that read the database.
    pub fn aggregate_catch_ups_from_database(&self) -> u64 {
        self.aggregate_catch_ups
            .with_label_values(&["database"])
            .get()
    }

    /// Followers' reads that went to the database.
    pub fn follower_reads_from_database(&self) -> u64 {
        self.follower_reads.with_label_values(&["database"]).get()
    }

    /// Followers' reads answered from memory alone.
    pub fn follower_reads_from_memory(&self) -> u64 {
        self.follower_reads.with_label_values(&["memory"]).get()
    }

    pub(crate) fn record_snapshot_written(&self) {
        self.snapshots_written.inc();
    }

    pub fn commits(&self) -> u64 {
        self.commits.get()
    }

    pub fn events_appended(&self) -> u64 {
        self.events_appended.get()
    }

    pub fn append_requests(&self) -> u64 {
        self.append_requests.get()
    }

    pub fn conflicts(&self) -> u64 {
        self.conflicts.get()
    }

    /// Appends the metrics to `out` in the Prometheus text exposition format.
    pub fn render_prometheus(&self, out: &mut String) {
        // Encoding to a String fails only on an invalid metric, which registration refused.
        let _ = TextEncoder::new().encode_utf8(&self.registry.gather(), out);
    }
}
