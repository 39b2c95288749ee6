//! `GET /healthz` (the process is up), `GET /readyz` (the store answers, the projectors reached
//! the head and the background work keeps up), `GET /metrics` (Prometheus text).
//!
//! `/metrics` tells a stranger how busy the deployment is and how it is built, so it is not
//! public: on the main listener it needs `JONO_METRICS_TOKEN` as a bearer token, or, with no
//! token set, a scraper on this host (a loopback peer, not through a proxy); on
//! `JONO_METRICS_LISTEN`, an address of its own, it is served to whoever reaches that.

use std::sync::atomic::Ordering;
use std::time::Duration;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use projections::runtime::ProjectorState;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::json;

use crate::error::ApiError;
use crate::openapi::{Route, Routes};
use crate::state::AppState;

pub fn routes() -> Routes {
    Routes::new("health")
        .route(
            Route::get("/healthz", healthz)
                .id("healthz")
                .summary("The process is up")
                .public()
                .returns::<Health>(200, "Up."),
        )
        .route(
            Route::get("/readyz", readyz)
                .id("readyz")
                .summary("Ready to serve")
                .public()
                .describe(
                    "The store answers and every projector reached the log's head within 1 s; \
                     otherwise 503 with the reason.",
                )
                .returns::<Readiness>(200, "Ready.")
                .returns::<Readiness>(503, "Not ready, and why."),
        )
        .route(
            Route::get("/metrics", guarded_metrics)
                .id("metrics")
                .summary("Prometheus metrics")
                .public()
                .returns_as(
                    200,
                    "Prometheus text format.",
                    "text/plain",
                    json!({"type": "string"}),
                ),
        )
}

/// `GET /metrics` alone, for the metrics listener.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// `/metrics` on the main listener: see the module's comment.
async fn guarded_metrics(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let allowed = match &state.settings.metrics_token {
        Some(token) => {
            let given = headers
                .get(header::AUTHORIZATION)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.strip_prefix("Bearer "))
                .unwrap_or("");
            // Digests compared, so the time taken says nothing about the token.
            if crate::secrets::hash_token(given) != crate::secrets::hash_token(token) {
                return ApiError::Unauthorized.into_response();
            }
            true
        }
        None => {
            let proxied =
                headers.contains_key("x-forwarded-for") || headers.contains_key(header::FORWARDED);
            peer.ip().is_loopback() && !proxied
        }
    };
    if !allowed {
        return ApiError::NotFound.into_response();
    }
    metrics(State(state)).await.into_response()
}

#[derive(Serialize, JsonSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
}

async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".to_owned(),
    })
}

/// `ready`, or `unavailable` / `lagging` with a `detail`.
#[derive(Serialize, JsonSchema)]
pub struct Readiness {
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Diagnostics for an operator (not part of the contract): the log's head, the process
    /// manager's place and each projector's state. Absent when the store did not answer.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    #[schemars(skip)]
    pub progress: Option<Progress>,
}

/// How far the followers of the log are (`Readiness`).
#[derive(Serialize)]
pub struct Progress {
    head: i64,
    process_manager: ManagerProgress,
    projectors: BTreeMap<String, ProjectorState>,
}

#[derive(Serialize)]
struct ManagerProgress {
    position: i64,
    lag: i64,
}

/// How far behind the log's head the process manager may be and still be called ready. It is
/// woken on every commit, so a lag that persists means it is stuck.
const READY_LAG: i64 = 1_000;

/// How long `/readyz` waits for every projector to reach the head as it was at the request.
const PROJECTORS_WAIT: Duration = Duration::from_secs(1);

/// Ready when the store answers, every projector reaches the log's head (as it was at the
/// request) within a second, and the process manager keeps up. Otherwise 503 with the reason:
/// a failed projector says where and why.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let head = match state.store.head().await {
        Ok(head) => head,
        Err(error) => {
            let body = Readiness {
                status: "unavailable".to_owned(),
                detail: Some(error.to_string()),
                progress: None,
            };
            return (StatusCode::SERVICE_UNAVAILABLE, Json(body));
        }
    };
    let done = state.metrics.process_manager_position.get();
    let lag = head.saturating_sub(done);
    let projectors = if state.projections.snapshot().is_empty() {
        Err("no projector is running".to_owned())
    } else {
        state.projections.wait_for(head, PROJECTORS_WAIT).await
    };
    let states = state.projections.snapshot();
    let progress = Some(Progress {
        head,
        process_manager: ManagerProgress {
            position: done,
            lag,
        },
        projectors: states,
    });
    // With NATS, not before the JetStream stream exists (API.md, JetStream).
    let stream_missing = state.settings.nats_url.is_some()
        && !state.metrics.outbox_stream_ready.load(Ordering::Relaxed);
    let (code, status, detail) = match (&projectors, lag <= READY_LAG) {
        (Ok(()), true) if stream_missing => (
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            Some(format!(
                "the JetStream stream {} is not there yet (is NATS reachable?)",
                crate::outbox::STREAM
            )),
        ),
        (Ok(()), true) => (StatusCode::OK, "ready", None),
        (Err(reason), _) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "lagging",
            Some(format!("projectors: {reason}")),
        ),
        (Ok(()), false) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "lagging",
            Some(format!("the process manager is {lag} events behind")),
        ),
    };
    let body = Readiness {
        status: status.to_owned(),
        detail,
        progress,
    };
    (code, Json(body))
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let out = crate::metrics::Metrics::render(&state).await;
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
}
