//! `GET /healthz` (the process is up), `GET /readyz` (the store answers, the projectors reached
//! the head and the background work keeps up), `GET /metrics` (Prometheus text).

use std::sync::atomic::Ordering;
use std::time::Duration;

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
    let done = state
        .metrics
        .process_manager_position
        .load(Ordering::Relaxed);
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
    let status = match (&projectors, lag <= READY_LAG) {
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
