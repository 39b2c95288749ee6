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
    },
    /// Operator tasks.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
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
