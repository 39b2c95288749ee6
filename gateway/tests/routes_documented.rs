//! The router and the OpenAPI document list the same operations.
//!
//! The routers (`routes::*::router()`, `ws.rs`, `openapi.rs`) and the document's path table
//! (`openapi::operations`) are written apart; this test reads every `.route("PATH", METHOD(…))`
//! of the gateway's source and compares the set with the document's, so a route added to one
//! and not the other fails here. Axum cannot list a router's routes, hence the source.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::Path;

/// Served by the router and deliberately not in the document: the console's pages and files
/// (`web.rs`), which are HTML, scripts and styles for a browser, not the API.
const NOT_DOCUMENTED: &[&str] = &[
    "GET /",
    "GET /assets/{*path}",
    "GET /confirm/{token}",
    "GET /invite/{token}",
    "GET /loader.js",
    "GET /reset/{token}",
    "GET /widget",
];

const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

/// The `METHOD /path` of every `.route(…)` call in `source`.
fn routes_in(source: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = source;
    while let Some(start) = rest.find(".route(") {
        rest = &rest[start + ".route(".len()..];
        let trimmed = rest.trim_start();
        let Some(literal) = trimmed.strip_prefix('"') else {
            continue;
        };
        let Some(end) = literal.find('"') else {
            continue;
        };
        let path = &literal[..end];
        // The call's arguments, to its closing parenthesis.
        let mut depth = 1;
        let mut close = literal.len();
        for (i, c) in literal[end..].char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                close = end + i;
                break;
            }
        }
        let arguments = &literal[end + 1..close];
        for method in METHODS {
            let call = format!("{method}(");
            let mut at = 0;
            while let Some(i) = arguments[at..].find(&call) {
                let position = at + i;
                let before = arguments[..position].chars().next_back();
                // `get(`, `.get(`, `routing::get(`; not a handler named `…_get(`.
                if before.is_none_or(|c| matches!(c, '.' | ':' | ' ' | '\n' | ',' | '(')) {
                    found.push(format!("{} {path}", method.to_uppercase()));
                }
                at = position + call.len();
            }
        }
    }
    found
}

fn sources(dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(std::fs::read_to_string(&path).unwrap());
        }
    }
}

#[test]
fn the_router_serves_what_the_document_describes_and_nothing_else() {
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let routed: BTreeSet<String> = files.iter().flat_map(|file| routes_in(file)).collect();
    let document = gateway::openapi::document();
    let documented: BTreeSet<String> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| format!("{} {path}", method.to_uppercase()))
        })
        .collect();
    let exempt: BTreeSet<String> = NOT_DOCUMENTED.iter().map(|s| (*s).to_owned()).collect();
    let undocumented: Vec<&String> = routed
        .difference(&documented)
        .filter(|r| !exempt.contains(*r))
        .collect();
    let unrouted: Vec<&String> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty(),
        "routed but not in the document: {undocumented:?}"
    );
    assert!(
        unrouted.is_empty(),
        "in the document but not routed: {unrouted:?}"
    );
    let stale: Vec<&String> = exempt.difference(&routed).collect();
    assert!(stale.is_empty(), "exempted but not routed: {stale:?}");
}

#[test]
fn routes_are_read_from_their_calls() {
    let source = r#"
        Router::new()
            .route("/v1/a", get(show).post(create))
            .route(
                "/v1/b/{id}",
                axum::routing::delete(remove),
            )
            .route("/v1/c", post(target_get))
    "#;
    assert_eq!(
        routes_in(source),
        ["GET /v1/a", "POST /v1/a", "DELETE /v1/b/{id}", "POST /v1/c"]
    );
}
