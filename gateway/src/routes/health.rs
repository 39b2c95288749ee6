//! `GET /healthz` (the process is up), `GET /readyz` (the store answers and the background work
//! keeps up), `GET /metrics` (Prometheus text).

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// How far behind the log's head the process manager may be and still be called ready. It is
/// woken on every commit, so a lag that persists means it is stuck.
const READY_LAG: i64 = 1_000;

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.head().await {
        Ok(head) => {
            let done = state
                .metrics
                .process_manager_position
                .load(Ordering::Relaxed);
            let lag = head.saturating_sub(done);
            let body = json!({ "status": if lag <= READY_LAG { "ready" } else { "lagging" },
                "head": head, "process_manager": { "position": done, "lag": lag } });
            let status = if lag <= READY_LAG {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            (status, Json(body))
        }
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "detail": error.to_string() })),
        ),
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut out = String::new();
    state.store.metrics().render_prometheus(&mut out);
    state.metrics.render(&mut out);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
}
