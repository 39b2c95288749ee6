//! The OpenAPI 3.1 document of API.md, built in Rust and served at `GET /v1/openapi.json`
//! (STYLE.md habit 11: wire types are generated, not hand-copied).
//!
//! Every route is declared once, in its routes module's `routes()`, as a [`Route`]: the axum
//! route and its operation together (`registry.rs`). The app's router and this document are
//! built from the same declarations (`routes::all()`), so they cannot disagree; routes that are
//! not part of the API (the console's pages) are declared `undocumented()`.
//!
//! Each request and response body is the type its handler takes or returns (`Json<T>`), declared
//! once in its routes module (`routes::*`, `routes::conversations::wire`, `routes::queues::wire`)
//! and deriving `JsonSchema`; schemars writes its JSON Schema (2020-12, the dialect of OpenAPI
//! 3.1) into `components/schemas` (`document.rs`). Where a body carries the domain's own type
//! (`Role`, `ConversationKind`, `QueueSettings`, opening hours) that type is used, so the
//! document follows the domain when it changes; the queue statistics are
//! `projections::stats::QueueStats` itself. The schemas still declared here are the WebSocket
//! frames' (`websocket.rs`), which `ws.rs` writes as JSON values. `schemas/openapi.json` is this
//! document, committed; its drift test fails when the two differ.
//!
//! Every operation lists its success responses and a `default` response: the
//! `application/problem+json` body `{type, title, status, detail}` that every error has.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{json, Value};

mod document;
mod registry;
mod websocket;

pub use document::document;
pub use registry::{Documented, Route, Routes};
pub use websocket::{websocket, Participant, WsClientFrame, WsEvent, WsServerFrame};

pub fn routes() -> Routes {
    Routes::new("health").route(
        Route::get("/v1/openapi.json", serve)
            .id("openapi")
            .summary("This document")
            .public()
            .returns_as(
                200,
                "The OpenAPI 3.1 document.",
                "application/json",
                json!({"type": "object"}),
            ),
    )
}

async fn serve() -> impl IntoResponse {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    let body = DOCUMENT.get_or_init(|| document().to_string());
    ([(header::CONTENT_TYPE, "application/json")], body.as_str())
}

/// The schema of a query parameter that is a UUID.
pub fn uuid_schema() -> Value {
    json!({"type": "string", "format": "uuid"})
}

/// The schema of a query parameter that is a time.
pub fn time_schema() -> Value {
    json!({"type": "string", "description": "An RFC 3339 time, or a date (midnight UTC)."})
}
