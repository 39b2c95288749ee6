//! The whole HTTP surface as a function of its state (STYLE.md habit 5).

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tracing::Instrument;

use crate::error::ApiError;
use crate::state::AppState;
use crate::{consistency, idempotency, routes};

pub fn app(state: AppState) -> Router {
    routes::all()
        .iter()
        .fold(Router::new(), |router, routes| {
            router.merge(routes.router())
        })
        .fallback(crate::web::fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            consistency::reads_wait,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            idempotency::layer,
        ))
        // Outside the idempotency layer, which buffers bodies: every read of a body has its deadline.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::edge::body_deadline,
        ))
        .layer(middleware::from_fn(security_headers))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

async fn method_not_allowed() -> Response {
    ApiError::MethodNotAllowed.into_response()
}

/// Headers fit for a console served from the same origin: no sniffing, no framing by other
/// sites, scripts and styles only from here.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // A page that states its own policy (the widget, framed by its queue's sites) says who
    // may frame it there; X-Frame-Options cannot list sites, so it goes only with ours.
    if headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        return response;
    }
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(
        "default-src 'self'; connect-src 'self'; img-src 'self' data: blob:; object-src 'none'; base-uri 'self'; frame-ancestors 'self'",
    ));
    headers.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    response
}

/// Every request: its span (the parent of its commands' and appends' spans, exported over OTLP
/// when that is on, continuing a caller's `traceparent`, and naming the trace in each log line
/// written under it), and its count and duration by route template, never the path's ids.
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        route = %route,
        status = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    crate::telemetry::start_request(&span, request.headers());
    state.metrics.requests.inc();
    let started = Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    span.record("status", status.as_u16());
    state
        .metrics
        .request_seconds
        .with_label_values(&[
            route.as_str(),
            crate::metrics::status_class(status.as_u16()),
        ])
        .observe(started.elapsed().as_secs_f64());
    if status.is_client_error() {
        state.metrics.responses_4xx.inc();
    } else if status.is_server_error() {
        state.metrics.responses_5xx.inc();
    }
    response
}
