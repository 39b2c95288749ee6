//! `jono projections status`, `jono projections rebuild [NAME…]` and `jono project`.

use std::future::Future;
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};
use projections::runtime::{self, Options, Progress, Projection};
use store::log::EventStore;
use tokio::sync::watch;

use super::Failure;
use crate::config::ProjectionsCommand;

pub async fn run(store: &EventStore, command: ProjectionsCommand) -> Result<(), Failure> {
    match command {
        ProjectionsCommand::Status => {
            print!("{}", status(store).await?);
            Ok(())
        }
        ProjectionsCommand::Rebuild { names } => rebuild(store, &names).await,
    }
}

/// One line per projection: its checkpoint, the log's head, the lag and its state.
pub async fn status(store: &EventStore) -> Result<String, Failure> {
    let head = store.head().await?;
    let mut out = format!(
        "{:<14} {:>12} {:>12} {:>10}  {}\n",
        "PROJECTION", "CHECKPOINT", "HEAD", "LAG", "STATE"
    );
    for projection in projections::all() {
        let name = projection.name();
        let found = runtime::checkpoint(store, name)
            .await
            .map_err(|error| Failure(format!("cannot read {name}'s checkpoint: {error}")))?;
        let failure = runtime::recorded_failure(store, name)
            .await
            .map_err(|error| Failure(format!("cannot read {name}'s state: {error}")))?;
        let rebuilding = runtime::checkpoint(store, &runtime::rebuild_name(name))
            .await
            .map_err(|error| Failure(format!("cannot read {name}'s rebuild: {error}")))?;
        let (checkpoint, state) = match found {
            None => (0, "not started".to_owned()),
            Some((position, version)) => {
                let state = if let Some((failed_at, error)) = failure {
                    format!("failed at position {failed_at}: {error}")
                } else if version != projection.version() {
                    format!(
                        "version {version}, needs {} (rebuilds at start)",
                        projection.version()
                    )
                } else if let Some((at, _)) = rebuilding {
                    format!("rebuilding (fresh tables at {at})")
                } else if position >= head {
                    "caught up".to_owned()
                } else {
                    "behind".to_owned()
                };
                (position, state)
            }
        };
        let lag = head.saturating_sub(checkpoint).max(0);
        out.push_str(&format!(
            "{name:<14} {checkpoint:>12} {head:>12} {lag:>10}  {state}\n"
        ));
    }
    Ok(out)
}

/// Rebuilds the named projections (all without names) together, in one pass over the log,
/// with one progress bar.
async fn rebuild(store: &EventStore, names: &[String]) -> Result<(), Failure> {
    let all = projections::all();
    let chosen: Vec<Arc<dyn Projection>> = if names.is_empty() {
        all
    } else {
        let mut chosen = Vec::new();
        for name in names {
            let found = all
                .iter()
                .find(|p| p.name() == name.as_str())
                .ok_or_else(|| {
                    let known: Vec<&str> = all.iter().map(|p| p.name()).collect();
                    Failure(format!(
                        "no projection is called {name:?}; there are: {}",
                        known.join(", ")
                    ))
                })?;
            if !chosen
                .iter()
                .any(|c: &Arc<dyn Projection>| c.name() == found.name())
            {
                chosen.push(Arc::clone(found));
            }
        }
        chosen
    };
    let style = ProgressStyle::with_template(
        "{prefix:>14} [{bar:40}] {pos}/{len} events, {per_sec}, ETA {eta} {msg}",
    )
    .map_err(|error| Failure(format!("progress bar: {error}")))?
    .progress_chars("=> ");
    let names: Vec<&str> = chosen.iter().map(|p| p.name()).collect();
    let names = names.join(", ");
    let head = store.head().await?;
    let bar = ProgressBar::new(u64::try_from(head).unwrap_or(0));
    bar.set_style(style);
    bar.set_prefix(if chosen.len() == 1 {
        names.clone()
    } else {
        format!("{} projections", chosen.len())
    });
    let shown = bar.clone();
    let report = move |progress: Progress| {
        shown.set_length(u64::try_from(progress.head.max(progress.position)).unwrap_or(0));
        shown.set_position(u64::try_from(progress.position).unwrap_or(0));
    };
    // A `jono serve` may run beside it: its projectors get the lock between fill transactions.
    let options = Options {
        batch: runtime::REBUILD_BATCH,
        crash: None,
        exclusive: false,
    };
    let refs: Vec<&dyn Projection> = chosen.iter().map(|p| p.as_ref()).collect();
    let position = runtime::rebuild_all(store, &refs, &options, &report)
        .await
        .map_err(|error| {
            bar.abandon_with_message("failed");
            Failure(format!("rebuilding {names}: {error}"))
        })?;
    bar.finish_with_message("swapped in");
    for name in chosen.iter().map(|p| p.name()) {
        tracing::info!(projection = name, position, "rebuilt");
        println!("{name}: rebuilt up to position {position}");
    }
    Ok(())
}

/// Runs every projector until `shutdown` completes (`jono project`).
pub async fn project(
    store: &EventStore,
    nats_url: Option<String>,
    nats_max_age: std::time::Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Failure> {
    let (stop, stopped) = watch::channel(false);
    let projectors = runtime::start(
        store.clone(),
        projections::all(),
        Options::default(),
        stopped.clone(),
    );
    // With NATS, the leased outbox relay too (its metrics are not served here).
    let outbox = nats_url.map(|url| {
        tokio::spawn(crate::outbox::run(
            store.clone(),
            std::sync::Arc::default(),
            url,
            nats_max_age,
            stopped,
        ))
    });
    tracing::info!("projectors running");
    shutdown.await;
    let _ = stop.send(true);
    projectors.join().await;
    if let Some(outbox) = outbox {
        let _ = outbox.await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn status_shows_each_projection_and_a_rebuild_catches_them_up() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::cli::open_store(&crate::config::StoreConfig::Embedded(
            dir.path().to_path_buf(),
        ))
        .await
        .unwrap();
        crate::cli::admin::create_org(&store, "Acme", "owner@acme.example")
            .await
            .unwrap();
        let before = status(&store).await.unwrap();
        assert!(before.contains("directory"), "{before}");
        assert!(before.contains("not started"), "{before}");

        rebuild(&store, &["directory".to_owned()]).await.unwrap();
        let after = status(&store).await.unwrap();
        let line = after.lines().find(|l| l.starts_with("directory")).unwrap();
        assert!(line.ends_with("caught up"), "{after}");
        assert!(
            line.contains(" 2 "),
            "checkpoint and head are both 2: {after}"
        );

        let unknown = rebuild(&store, &["nope".to_owned()]).await.unwrap_err();
        assert!(unknown.0.contains("directory, queues"), "{unknown}");
    }
}
