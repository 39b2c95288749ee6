//! The command line. Every flag has the environment variable API.md names; every subcommand
//! takes `--data` / `JONO_DATA_DIR` (and `--database-url`) the same way.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "jono",
    version,
    about = "Jono: event-sourced customer-service chat"
)]
pub struct Cli {
    /// Where the embedded store keeps its SQLite log, read models and attachments.
    #[arg(long, env = "JONO_DATA_DIR", default_value = "./data", global = true)]
    pub data: PathBuf,

    /// Keep everything in Postgres instead (postgres://…).
    #[arg(long, env = "JONO_DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,

    /// Log lines as text for people or JSON for collectors.
    #[arg(long, env = "JONO_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Signup {
    Open,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    On,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The HTTP and WebSocket gateway with its background work, in one process.
    Serve {
        /// The address to listen on.
        #[arg(long, env = "JONO_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Whether anyone may sign up (default: open with the embedded store, closed with
        /// Postgres). `jono admin create-org` works either way.
        #[arg(long, env = "JONO_SIGNUP", value_enum)]
        signup: Option<Signup>,
        /// The abuse limits of API.md; `off` for load tests.
        #[arg(long, env = "JONO_RATE_LIMITS", value_enum, default_value_t = Switch::On)]
        rate_limits: Switch,
        /// The built web console and widget (default: `web/dist` when it exists).
        #[arg(long, env = "JONO_WEB_DIR")]
        web: Option<std::path::PathBuf>,
        /// Publish every committed event to NATS JetStream (nats://HOST:PORT), stream
        /// `JONO_EVENTS`. Needs Postgres (`--database-url`).
        #[arg(long, env = "JONO_NATS_URL", hide_env_values = true)]
        nats_url: Option<String>,
        /// How long the JetStream stream keeps an event, in hours (1 to 87,600): its copies
        /// carry personal fields opened, so this is erasure's horizon there.
        #[arg(long, env = "JONO_NATS_MAX_AGE_HOURS", default_value_t = 168,
              value_parser = clap::value_parser!(u64).range(1..=87_600))]
        nats_max_age_hours: u64,
        /// Let organizations' OpenID providers be on loopback or private networks (a provider
        /// inside the company's network). Off, Jono fetches only public addresses, so an owner
        /// cannot point it at the server's own network.
        #[arg(long, env = "JONO_SSO_PRIVATE_NETWORKS")]
        sso_private_networks: bool,
        /// Let organizations' webhook endpoints be on loopback or private networks. Off, Jono
        /// delivers only to public addresses (checked on the address it connects to, no
        /// redirects followed), so an operator cannot point it at the server's own network.
        #[arg(long, env = "JONO_WEBHOOK_PRIVATE_NETWORKS")]
        webhook_private_networks: bool,
        #[command(flatten)]
        mail: MailArgs,
        #[command(flatten)]
        edge: EdgeArgs,
    },
    /// Operator tasks.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Queue statistics from the log alone (API.md, Statistics), or a queue as it stood at an
    /// instant (`--at`).
    Stats(StatsArgs),
    /// The log for analysts' own tools (README, Exporting the log).
    Export {
        #[command(subcommand)]
        command: ExportCommand,
    },
    /// The read models' projectors: where each stands, and rebuilding them.
    Projections {
        #[command(subcommand)]
        command: ProjectionsCommand,
    },
    /// Run the projectors (and nothing else) until SIGTERM.
    Project {
        /// Also take part in publishing the log to NATS JetStream, as `jono serve` does (one
        /// process of the deployment publishes at a time). Needs Postgres.
        #[arg(long, env = "JONO_NATS_URL", hide_env_values = true)]
        nats_url: Option<String>,
        /// As `jono serve --nats-max-age-hours`.
        #[arg(long, env = "JONO_NATS_MAX_AGE_HOURS", default_value_t = 168,
              value_parser = clap::value_parser!(u64).range(1..=87_600))]
        nats_max_age_hours: u64,
    },
    /// A consistent copy of the store into the folder TO (new or empty), taken while Jono
    /// serves: SQLite's `VACUUM INTO` and the attachments, or `pg_dump` of Jono's schema.
    Backup {
        /// The folder to write the backup to.
        to: PathBuf,
    },
    /// Data subjects' rights (GDPR): erasing a customer's personal data.
    Gdpr {
        #[command(subcommand)]
        command: GdprCommand,
    },
    /// Brings the backup in the folder FROM back into an empty store (`--data` or
    /// `--database-url`); the log, read models, secrets and attachments are as they were.
    Restore {
        /// The folder `jono backup` wrote.
        from: PathBuf,
    },
}

/// Email (README, Email): without `--smtp-url` Jono sends none, and nothing needs an address
/// confirmed.
#[derive(Debug, Clone, clap::Args)]
pub struct MailArgs {
    /// The SMTP server, in lettre's URL form: `smtp://HOST:PORT` (plain; add
    /// `?tls=opportunistic` for STARTTLS when offered, `?tls=required` to insist),
    /// `smtps://USER:PASSWORD@HOST` (TLS from the start, port 465 by default).
    #[arg(long, env = "JONO_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// The sender of Jono's email: `Name <address>` or `address`. Needed with `--smtp-url`.
    #[arg(long, env = "JONO_MAIL_FROM")]
    pub mail_from: Option<String>,
    /// Where people reach this deployment (`https://chat.example.com`): the links in email
    /// point there. Needed with `--smtp-url`.
    #[arg(long, env = "JONO_PUBLIC_URL")]
    pub public_url: Option<String>,
}

/// The network edge of `jono serve` (API.md, Limits): who the client is behind a proxy, the
/// connection caps, the header and body deadlines, and who may read `/metrics`. None of these
/// is a rate limit: `JONO_RATE_LIMITS=off` leaves them on.
#[derive(Debug, Clone, clap::Args)]
pub struct EdgeArgs {
    /// Reverse proxies (CIDRs or addresses, comma-separated) whose `X-Forwarded-For` names the
    /// client: the nearest untrusted address in it is the client's. None by default.
    #[arg(long, env = "JONO_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: String,
    /// Seconds a request's headers may take to arrive.
    #[arg(long, env = "JONO_HEADER_TIMEOUT_SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub header_timeout_seconds: u64,
    /// Seconds a request's body may take to arrive.
    #[arg(long, env = "JONO_BODY_TIMEOUT_SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub body_timeout_seconds: u64,
    /// Open connections from one client address; past it a connection is answered 503.
    #[arg(long, env = "JONO_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections_per_address: u64,
    /// Open connections in all; past it a connection is answered 503.
    #[arg(long, env = "JONO_MAX_CONNECTIONS", default_value_t = 50_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: u64,
    /// Also serve `GET /metrics` on this address, to whoever reaches it (a private interface).
    #[arg(long, env = "JONO_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// A bearer token that opens `GET /metrics` on the main listener. Without it (and without
    /// `--metrics-listen`), only a scraper on this host gets `/metrics` there.
    #[arg(long, env = "JONO_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// Each projection's checkpoint, the log's head, the lag, and its state.
    Status,
    /// Rebuild projections from the start of the log into fresh tables, then swap them in at
    /// once; a running `jono serve` keeps answering meanwhile. All of them without NAME; several
    /// are rebuilt together, in one pass over the log.
    Rebuild {
        /// Projections to rebuild (see `jono projections status` for the names).
        names: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum GdprCommand {
    /// Erase a customer's personal data: one conversation (its id), or every conversation of a
    /// verified returning customer in the organization (its `customer_ref`). Prints what was
    /// erased.
    Erase {
        /// A conversation id, or a verified customer's `customer_ref`.
        #[arg(long, value_name = "CONVERSATION-ID|CUSTOMER-REF")]
        customer: String,
        /// The organization it belongs to.
        #[arg(long, value_name = "ORG-ID")]
        org: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an organization and an owner invitation for EMAIL; prints its link `/invite/TOKEN`.
    CreateOrg {
        #[arg(long)]
        name: String,
        #[arg(long)]
        owner_email: String,
    },
}

/// `jono stats --queue ID|--org ID [--from T] [--to T] [--by hour|day] [--format …]` or
/// `jono stats --queue ID --at T`. Ids and times are checked by `cli::stats`, so that every
/// mistake is reported as one line.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct StatsArgs {
    /// One queue's figures.
    #[arg(long, value_name = "ID")]
    pub queue: Option<String>,
    /// Every queue of one organization together.
    #[arg(long, value_name = "ID")]
    pub org: Option<String>,
    /// The window's start, RFC 3339 (default: the start of the log).
    #[arg(long, value_name = "T")]
    pub from: Option<String>,
    /// The window's end, not included, RFC 3339 (default: now).
    #[arg(long, value_name = "T")]
    pub to: Option<String>,
    /// Also the figures of each hour or day of the window (UTC).
    #[arg(long, value_enum)]
    pub by: Option<StatsBy>,
    /// The queue as it stood at instant T: open or closed, and who waited, in order, since when.
    #[arg(long, value_name = "T")]
    pub at: Option<String>,
    #[arg(long, value_enum, default_value_t = StatsFormat::Table)]
    pub format: StatsFormat,
}

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// Every event of a time range, one row each: position, time, type, stream and its fields
    /// flattened.
    Events(ExportArgs),
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// From this time (inclusive), RFC 3339 or a date (default: the start of the log).
    #[arg(long, value_name = "T")]
    pub from: Option<String>,
    /// Up to this time (not included), RFC 3339 or a date (default: everything).
    #[arg(long, value_name = "T")]
    pub to: Option<String>,
    #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
    pub format: ExportFormat,
    /// The file to write (standard output for JSON Lines without it; Parquet needs one).
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per line.
    #[default]
    Jsonl,
    /// Apache Parquet, one typed column per field.
    Parquet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatsBy {
    Hour,
    Day,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum StatsFormat {
    #[default]
    Table,
    Csv,
    Json,
}

/// Where the log lives.
#[derive(Debug, Clone)]
pub enum StoreConfig {
    Embedded(PathBuf),
    Postgres(String),
}

impl Cli {
    pub fn store_config(&self) -> StoreConfig {
        match &self.database_url {
            Some(url) if !url.trim().is_empty() => StoreConfig::Postgres(url.clone()),
            _ => StoreConfig::Embedded(self.data.clone()),
        }
    }
}
