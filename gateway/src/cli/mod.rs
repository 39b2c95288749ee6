//! What each subcommand does. Every failure comes back as one line for `main` to print.

mod admin;
mod backup;
mod export;
mod gdpr;
pub mod projections;
mod serve;
pub mod stats;

use std::fmt;

use std::time::Duration;

use store::log::EventStore;

use crate::config::{AdminCommand, Cli, Command, ExportCommand, GdprCommand, StoreConfig};
use crate::{secrets, server};

/// A failure to report: one line, no trace.
#[derive(Debug)]
pub struct Failure(pub String);

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failure {}

impl From<store::error::StoreError> for Failure {
    fn from(error: store::error::StoreError) -> Self {
        Self(error.to_string())
    }
}

pub fn run(cli: Cli) -> Result<(), Failure> {
    // Dropped last, after the runtime: it flushes the traces' last batch.
    let _telemetry = crate::telemetry::init(cli.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| Failure(format!("cannot start the runtime: {error}")))?;
    runtime.block_on(async move {
        let store_config = cli.store_config();
        // A restore goes into an empty store, so it must not open (and so create) one first.
        if let Command::Restore { from } = &cli.command {
            println!("{}", backup::restore(&store_config, from).await?);
            return Ok(());
        }
        // Before opening the store, which an embedded one would create.
        if let Command::Serve { nats_url, .. } | Command::Project { nats_url, .. } = &cli.command {
            check_nats(nats_url.as_deref(), &store_config)?;
        }
        let store = open_store(&store_config).await?;
        match cli.command {
            Command::Serve {
                listen,
                signup,
                rate_limits,
                web,
                nats_url,
                nats_max_age_hours,
                sso_private_networks,
                mail,
                webhook_private_networks,
                edge,
            } => {
                let choices = serve::Serve {
                    listen,
                    signup,
                    rate_limits,
                    web,
                    nats_url,
                    nats_max_age_hours,
                    sso_private_networks,
                    mail,
                    webhook_private_networks,
                    edge,
                };
                serve::serve(store, &store_config, choices).await
            }
            Command::Admin {
                command: AdminCommand::CreateOrg { name, owner_email },
            } => {
                let link = admin::create_org(&store, &name, &owner_email).await?;
                println!("{link}");
                Ok(())
            }
            Command::Stats(args) => {
                print!("{}", stats::run(&store, &args).await?);
                Ok(())
            }
            Command::Export {
                command: ExportCommand::Events(args),
            } => {
                eprint!("{}", export::run(&store, &args).await?);
                Ok(())
            }
            Command::Projections { command } => projections::run(&store, command).await,
            Command::Project {
                nats_url,
                nats_max_age_hours,
            } => {
                let nats_url = nats_url.filter(|url| !url.trim().is_empty());
                let max_age = Duration::from_secs(nats_max_age_hours.saturating_mul(3600));
                projections::project(&store, nats_url, max_age, server::termination()).await
            }
            Command::Backup { to } => {
                println!("{}", backup::backup(&store, &store_config, &to).await?);
                Ok(())
            }
            Command::Gdpr {
                command: GdprCommand::Erase { customer, org },
            } => {
                print!(
                    "{}",
                    gdpr::erase(store, &store_config, &customer, &org).await?
                );
                Ok(())
            }
            Command::Restore { .. } => Ok(()), // done above, before opening a store
        }
    })
}

/// Opens the log and the tables beside it.
pub async fn open_store(config: &StoreConfig) -> Result<EventStore, Failure> {
    let store = match config {
        StoreConfig::Embedded(dir) => EventStore::open_sqlite(dir).await?,
        StoreConfig::Postgres(url) => EventStore::open_postgres(url).await?,
    };
    secrets::migrate(store.backend())
        .await
        .map_err(|error| Failure(format!("cannot prepare the tables: {error}")))?;
    Ok(store)
}

/// NATS is for several processes on one Postgres: with the embedded store it is refused, and
/// an address it cannot use is refused too, each with one line.
fn check_nats(url: Option<&str>, store: &StoreConfig) -> Result<(), Failure> {
    let Some(url) = url.filter(|url| !url.trim().is_empty()) else {
        return Ok(());
    };
    if let StoreConfig::Embedded(_) = store {
        return Err(Failure(
            "--nats-url (JONO_NATS_URL) needs Postgres (--database-url): the embedded store serves one process".into(),
        ));
    }
    url.parse::<async_nats::ServerAddr>()
        .map(|_| ())
        .map_err(|_| Failure("the NATS URL is not valid; expected nats://HOST:PORT".into()))
}
