//! `GET /healthz` (the process is up), `GET /readyz` (the store answers, the projectors reached
//! the head and the background work keeps up), `GET /metrics` (Prometheus text).
//!
//! `/metrics` tells a stranger how busy the deployment is and how it is built, so it is not
//! public: on the main listener it needs `JONO_METRICS_TOKEN` as a bearer token, or, with no
//! token set, a scraper on this host (a loopback peer, not through a proxy); on
//! `JONO_METRICS_LISTEN`, an address of its own, it is served to whoever reaches that.

use std::sync::atomic::Ordering;
use std::time::Duration;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(guarded_metrics))
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

async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
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
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "detail": error.to_string() })),
            )
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
    let mut body = json!({ "head": head,
        "process_manager": { "position": done, "lag": lag },
        "projectors": states });
    // With NATS, not before the JetStream stream exists (API.md, JetStream).
    let stream_missing = state.settings.nats_url.is_some()
        && !state.metrics.outbox_stream_ready.load(Ordering::Relaxed);
    let status = match (&projectors, lag <= READY_LAG) {
        (Ok(()), true) if stream_missing => {
            body["status"] = json!("unavailable");
            body["detail"] = json!(format!(
                "the JetStream stream {} is not there yet (is NATS reachable?)",
                crate::outbox::STREAM
            ));
            StatusCode::SERVICE_UNAVAILABLE
        }
        (Ok(()), true) => {
            body["status"] = json!("ready");
            StatusCode::OK
        }
        (Err(reason), _) => {
            body["status"] = json!("lagging");
            body["detail"] = json!(format!("projectors: {reason}"));
            StatusCode::SERVICE_UNAVAILABLE
        }
        (Ok(()), false) => {
            body["status"] = json!("lagging");
            body["detail"] = json!(format!("the process manager is {lag} events behind"));
            StatusCode::SERVICE_UNAVAILABLE
        }
    };
    (status, Json(body))
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
