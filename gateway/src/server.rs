//! Binding, serving and graceful shutdown. `serve` takes its listener and its shutdown signal
//! (STYLE.md habit 8), so tests can bind port 0 and stop it when they like.

use std::future::Future;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::app::app;
use crate::edge;
use crate::live::CloseOrder;
use crate::process_manager;
use crate::state::AppState;

/// How long `serve` waits for the projectors to prepare their tables before serving anyway.
const STARTUP_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

/// Serves HTTP on `listener` (and `GET /metrics` alone on `metrics`, if given) and runs the
/// background work until `shutdown` completes; then stops accepting, lets requests in flight
/// finish, and stops the background work.
pub async fn serve(
    mut state: AppState,
    listener: TcpListener,
    metrics: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop, stopped) = watch::channel(false);
    // With NATS, what crosses nodes besides the log (typing, signals, close orders); set before
    // any route or socket holds a copy of the state.
    let peers = state.settings.nats_url.clone().map(|url| {
        let (sender, receiver) = crate::peers::channel();
        state.live.peers = Some(sender);
        tokio::spawn(crate::peers::run(
            state.live.clone(),
            url,
            receiver,
            stopped.clone(),
        ))
    });
    // The read models, reporting into the statuses that commands and /readyz wait on.
    let projectors = projections::runtime::start_with(
        state.projections.clone(),
        state.store.clone(),
        projections::all(),
        projections::runtime::Options::default(),
        stopped.clone(),
    );
    // Accept requests only once every read model's tables exist (connections wait in the
    // listen backlog meanwhile), so an early read gets an answer rather than a missing table.
    if let Err(lag) = state.projections.wait_for(0, STARTUP_WAIT).await {
        tracing::warn!(%lag, "serving before every projector started");
    }
    let background = tokio::spawn(process_manager::run(state.clone(), stopped.clone()));
    let hub = tokio::spawn(
        state
            .live
            .hub
            .clone()
            .run(state.store.clone(), stopped.clone()),
    );
    let sweeper = tokio::spawn(crate::sweeper::run(state.clone(), stopped.clone()));
    let routing = tokio::spawn(crate::router::run(state.clone(), stopped.clone()));
    let node = tokio::spawn(crate::nodes::run(state.clone(), stopped.clone()));
    let mail = state.settings.mail.clone().map(|mailer| {
        tokio::spawn(crate::mail::sender::run(
            state.clone(),
            mailer,
            stopped.clone(),
        ))
    });
    let webhooks = tokio::spawn(crate::webhooks::run(state.clone(), stopped.clone()));
    let outbox = state.settings.nats_url.clone().map(|url| {
        tokio::spawn(crate::outbox::run(
            state.store.clone(),
            state.metrics.clone(),
            url,
            state.settings.nats_max_age,
            stopped.clone(),
        ))
    });
    // WebSockets stay open until told otherwise: tell them, or the graceful stop never ends.
    let closer = state.live.closer.clone();
    let shutdown = async move {
        shutdown.await;
        closer.close(CloseOrder::All);
    };
    let limits = state.settings.edge.clone();
    let trusted = state.settings.trusted_proxies.clone();
    // The metrics listener stops when the main one does.
    let (metrics_stop, metrics_stopped) = watch::channel(false);
    let metrics_server = metrics.map(|metrics| {
        let router = crate::routes::health::metrics_router(state.clone());
        let mut stopped = metrics_stopped.clone();
        let (limits, trusted) = (limits.clone(), trusted.clone());
        tokio::spawn(edge::serve(metrics, router, limits, trusted, async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }))
    });
    let router = app(state);
    let result = edge::serve(listener, router, limits, trusted, shutdown).await;
    let _ = metrics_stop.send(true);
    if let Some(metrics_server) = metrics_server {
        let _ = metrics_server.await;
    }
    let _ = stop.send(true);
    let _ = background.await;
    let _ = hub.await;
    let _ = sweeper.await;
    let _ = routing.await;
    let _ = node.await;
    let _ = webhooks.await;
    if let Some(peers) = peers {
        let _ = peers.await;
    }
    if let Some(outbox) = outbox {
        let _ = outbox.await;
    }
    if let Some(mail) = mail {
        let _ = mail.await;
    }
    projectors.join().await;
    result
}

/// Completes on SIGTERM or Ctrl-C. The handlers are installed when this is called, not when the
/// future is first polled: a signal that arrives in between (the server already answering, its
/// accept loop not yet looking at the shutdown) would otherwise kill the process instead of
/// stopping it cleanly.
pub fn termination() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (interrupt, terminate) = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let wait = |handler: Option<tokio::signal::unix::Signal>| async move {
                match handler {
                    Some(mut handler) => {
                        handler.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = wait(interrupt) => {}
                _ = wait(terminate) => {}
            }
        }
        #[cfg(not(unix))]
        {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        tracing::info!("shutting down");
    }
}
