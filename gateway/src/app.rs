//! The whole HTTP surface as a function of its state (STYLE.md habit 5).

use std::sync::atomic::Ordering;

use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;

use crate::routes;
use crate::state::AppState;

pub fn app(state: AppState) -> Router {
    Router::new()
        .merge(routes::health::router())
        .layer(middleware::from_fn_with_state(state.clone(), count))
        .with_state(state)
}

async fn count(State(state): State<AppState>, request: Request, next: Next) -> Response {
    state.metrics.requests.fetch_add(1, Ordering::Relaxed);
    let response = next.run(request).await;
    let status = response.status();
    if status.is_client_error() {
        state.metrics.responses_4xx.fetch_add(1, Ordering::Relaxed);
    } else if status.is_server_error() {
        state.metrics.responses_5xx.fetch_add(1, Ordering::Relaxed);
    }
    response
}
