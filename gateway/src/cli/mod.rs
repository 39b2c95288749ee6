//! What each subcommand does. Every failure comes back as one line for `main` to print.

mod admin;
mod backup;
mod export;
mod gdpr;
pub mod projections;
pub mod stats;

use std::fmt;

use std::time::Duration;

use store::log::EventStore;
use tokio::net::TcpListener;

use crate::blobs::{Blobs, UrlSigner};
use crate::client::TrustedProxies;
use crate::config::{
    AdminCommand, Cli, Command, ExportCommand, GdprCommand, Signup, StoreConfig, Switch,
};
use crate::edge::EdgeLimits;
use crate::state::{AppState, Settings};
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
                let mail = match mail.smtp_url.filter(|url| !url.trim().is_empty()) {
                    Some(url) => Some(std::sync::Arc::new(
                        crate::mail::Mailer::new(
                            url.trim(),
                            mail.mail_from.as_deref(),
                            mail.public_url.as_deref(),
                        )
                        .map_err(Failure)?,
                    )),
                    None => None,
                };
                let trusted_proxies =
                    TrustedProxies::parse(&edge.trusted_proxies).map_err(Failure)?;
                let embedded = matches!(store_config, StoreConfig::Embedded(_));
                let settings = Settings {
                    signup_open: signup.map_or(embedded, |signup| signup == Signup::Open),
                    rate_limits: rate_limits == Switch::On,
                    web_dir: web.or_else(|| {
                        let built = std::path::PathBuf::from("web/dist");
                        built.join("index.html").exists().then_some(built)
                    }),
                    trusted_proxies,
                    edge: EdgeLimits {
                        header_deadline: Duration::from_secs(edge.header_timeout_seconds),
                        body_deadline: Duration::from_secs(edge.body_timeout_seconds),
                        connections_per_address: usize::try_from(edge.max_connections_per_address)
                            .unwrap_or(usize::MAX),
                        connections: usize::try_from(edge.max_connections).unwrap_or(usize::MAX),
                    },
                    metrics_token: edge.metrics_token.filter(|token| !token.is_empty()),
                    nats_url: nats_url.filter(|url| !url.trim().is_empty()),
                    nats_max_age: Duration::from_secs(nats_max_age_hours.saturating_mul(3600)),
                    sso_private_networks,
                    mail,
                    webhook_private_networks,
                    data_dir: match &store_config {
                        StoreConfig::Embedded(dir) => Some(dir.clone()),
                        StoreConfig::Postgres(_) => None,
                    },
                };
                // Several nodes on one database need NATS; without it this node runs alone.
                // Held for as long as it serves.
                let nats = settings.nats_url.is_some();
                if let Some(place) = crate::nodes::join(&store, nats).await.map_err(Failure)? {
                    tokio::spawn(crate::nodes::keep(store.clone(), place, nats));
                }
                let listener = TcpListener::bind(listen).await.map_err(|error| {
                    Failure(format!("cannot listen on {listen}: {}", describe(&error)))
                })?;
                let address = listener
                    .local_addr()
                    .map_err(|error| Failure(error.to_string()))?;
                tracing::info!(%address, "jono is listening");
                match crate::web::source(settings.web_dir.as_deref()) {
                    Some(crate::web::Source::Folder(folder)) => {
                        tracing::info!(folder = %folder.display(), "serving the console from a folder");
                    }
                    Some(crate::web::Source::Embedded) => {
                        tracing::info!("serving the console embedded in this binary");
                    }
                    None => tracing::warn!(
                        "no console: this binary was built without web/dist and no --web DIR was given"
                    ),
                }
                let metrics_listener = match edge.metrics_listen {
                    Some(metrics) => {
                        let bound = TcpListener::bind(metrics).await.map_err(|error| {
                            Failure(format!(
                                "cannot listen on {metrics} for /metrics: {}",
                                describe(&error)
                            ))
                        })?;
                        tracing::info!(address = %metrics, "serving /metrics");
                        Some(bound)
                    }
                    None => None,
                };
                // Before anyone can know the address: a SIGTERM from then on stops it cleanly.
                let shutdown = server::termination();
                // One plain line on stdout, for people and for scripts that bound port 0.
                println!("jono listening on http://{address}");
                let mut state = AppState::new(store);
                state.settings = std::sync::Arc::new(settings);
                // Attachments: files beside the embedded log, the Postgres table otherwise,
                // and the kept key, so URLs handed out survive a restart.
                if let StoreConfig::Embedded(dir) = &store_config {
                    state.blobs = Blobs::in_data_dir(dir).await.map_err(|error| {
                        Failure(format!("cannot prepare the attachments folder: {error}"))
                    })?;
                }
                let key = secrets::url_signing_key(state.backend())
                    .await
                    .map_err(|error| Failure(format!("cannot read the signing key: {error}")))?;
                state.signer = UrlSigner::new(key);
                state.account_ids = secrets::account_id_secret(state.backend())
                    .await
                    .map_err(|error| Failure(format!("cannot read the id secret: {error}")))?;
                let visitors = secrets::visitor_key_secret(state.backend())
                    .await
                    .map_err(|error| Failure(format!("cannot read the visitor secret: {error}")))?;
                state.visitors = crate::client::VisitorKeys::new(visitors);
                let webhooks = secrets::webhook_signing_seed(state.backend())
                    .await
                    .map_err(|error| Failure(format!("cannot read the webhook key: {error}")))?;
                state.webhook_key = crate::webhooks::Signer::new(webhooks);
                server::serve(state, listener, metrics_listener, shutdown)
                    .await
                    .map_err(|error| Failure(format!("the server stopped: {error}")))
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

fn describe(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::AddrInUse => "the address is in use".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        std::io::ErrorKind::AddrNotAvailable => "the address is not available here".to_owned(),
        _ => error.to_string(),
    }
}
