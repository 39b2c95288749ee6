//! What a route declaration can still get wrong.
//!
//! Every route is declared once (`openapi::Route`, in its module's `routes()`), and both the
//! router and the OpenAPI document are made from those declarations (`routes::all()`), so the
//! two cannot list different operations. What is left: a route of the API declared
//! `undocumented()`, an operation without its id or summary, two operations with one id, one
//! method and path declared twice.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use axum::Router;
use gateway::routes;
use gateway::state::AppState;

/// Served and deliberately not in the document: the console's pages and files (`web.rs`), which
/// are HTML, scripts and styles for a browser, not the API.
const NOT_DOCUMENTED: &[&str] = &[
    "GET /",
    "GET /assets/{*path}",
    "GET /confirm/{token}",
    "GET /invite/{token}",
    "GET /loader.js",
    "GET /reset/{token}",
    "GET /widget",
];

fn label(method: &str, path: &str) -> String {
    format!("{} {path}", method.to_uppercase())
}

#[test]
fn only_the_console_is_left_out_of_the_document() {
    let all = routes::all();
    let served: BTreeSet<String> = all
        .iter()
        .flat_map(|routes| routes.served())
        .map(|(method, path)| label(method, path))
        .collect();
    let documented: BTreeSet<String> = all
        .iter()
        .flat_map(|routes| routes.documented())
        .map(|route| label(route.method, route.path))
        .collect();
    let undocumented: BTreeSet<&str> = served.difference(&documented).map(String::as_str).collect();
    let expected: BTreeSet<&str> = NOT_DOCUMENTED.iter().copied().collect();
    assert_eq!(undocumented, expected);
}

#[test]
fn the_document_has_every_documented_route_and_nothing_else() {
    let documented: BTreeSet<String> = routes::all()
        .iter()
        .flat_map(|routes| routes.documented())
        .map(|route| label(route.method, route.path))
        .collect();
    let document = gateway::openapi::document();
    let in_document: BTreeSet<String> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| label(method, path))
        })
        .collect();
    assert_eq!(documented, in_document);
}

#[test]
fn every_operation_has_its_own_id_and_a_summary() {
    let mut ids: BTreeMap<&str, String> = BTreeMap::new();
    for module in routes::all() {
        for route in module.documented() {
            let at = label(route.method, route.path);
            assert!(!route.id().is_empty(), "{at} has no operationId");
            assert!(!route.summary().is_empty(), "{at} has no summary");
            if let Some(before) = ids.insert(route.id(), at.clone()) {
                panic!("{at} and {before} are both `{}`", route.id());
            }
        }
    }
}

#[test]
fn no_method_and_path_is_declared_twice() {
    let mut seen = BTreeSet::new();
    for module in routes::all() {
        for (method, path) in module.served() {
            assert!(seen.insert(label(method, path)), "{method} {path} twice");
        }
    }
}

#[test]
fn the_routers_merge() {
    // Axum panics on a method declared twice for one path, in one router or across two.
    let _: Router<AppState> = routes::all().iter().fold(Router::new(), |router, routes| {
        router.merge(routes.router())
    });
}
