//! The web console and the customer widget, built from `web/` (`npm run build` writes
//! `web/dist`) and served by `jono serve` itself: `/` and `/invite/…` are the console,
//! `/widget?queue=ID` the widget that sites embed with `/loader.js`, `/assets/…` their files.
//! They come from `--web DIR` (or `web/dist` in the working folder), else from the copy embedded
//! in the binary at build time (`gateway/build.rs`).
//!
//! The widget may be framed only by the sites its queue allows (`allowed_origins`), through
//! `Content-Security-Policy: frame-ancestors`; everything else only by this origin.

use std::borrow::Cow;
use std::path::{Component, Path, PathBuf};

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::error::ApiError;
use crate::openapi::{Route, Routes};
use crate::state::AppState;

/// The console's pages and files: HTML, scripts and styles for a browser, not the API, so not in
/// the OpenAPI document.
pub fn routes() -> Routes {
    Routes::new("web")
        .route(Route::get("/", console).undocumented())
        .route(Route::get("/invite/{token}", console).undocumented())
        .route(Route::get("/confirm/{token}", console).undocumented())
        .route(Route::get("/reset/{token}", console).undocumented())
        .route(Route::get("/widget", widget).undocumented())
        .route(Route::get("/loader.js", loader).undocumented())
        .route(Route::get("/assets/{*path}", asset).undocumented())
}

/// The console's policy: everything from here, WebSockets to here, images also as data/blob.
const CONSOLE_CSP: &str = "default-src 'self'; connect-src 'self'; img-src 'self' data: blob:; \
     media-src 'self' blob:; style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'self'; \
     frame-ancestors 'self'";

/// The files of `web/dist` as they were when this binary was built (empty without a build).
mod embedded {
    include!(concat!(env!("OUT_DIR"), "/web_files.rs"));
}

/// Where the console's files come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source<'a> {
    /// A build folder on disk: `--web DIR`, or `web/dist` in the working folder.
    Folder(&'a Path),
    /// The build embedded in the binary.
    Embedded,
}

/// The source a server with this folder setting serves, if any.
pub fn source(folder: Option<&Path>) -> Option<Source<'_>> {
    match folder {
        Some(folder) => Some(Source::Folder(folder)),
        None => (!embedded::FILES.is_empty()).then_some(Source::Embedded),
    }
}

fn web_source(state: &AppState) -> Result<Source<'_>, ApiError> {
    source(state.settings.web_dir.as_deref()).ok_or(ApiError::NotFound)
}

/// A file of the build, never outside it.
async fn file(
    source: Source<'_>,
    relative: &str,
) -> Result<(Cow<'static, [u8]>, &'static str), ApiError> {
    let relative = Path::new(relative);
    if relative
        .components()
        .any(|part| !matches!(part, Component::Normal(_)))
    {
        return Err(ApiError::NotFound);
    }
    let kind = content_type(relative);
    match source {
        Source::Folder(dir) => {
            let path: PathBuf = dir.join(relative);
            let bytes = tokio::fs::read(&path)
                .await
                .map_err(|_| ApiError::NotFound)?;
            Ok((Cow::Owned(bytes), kind))
        }
        Source::Embedded => {
            let wanted = relative
                .components()
                .map(|part| part.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            let index = embedded::FILES
                .binary_search_by(|(path, _)| (*path).cmp(wanted.as_str()))
                .map_err(|_| ApiError::NotFound)?;
            Ok((Cow::Borrowed(embedded::FILES[index].1), kind))
        }
    }
}

fn content_type(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|ext| ext.to_str())
        .unwrap_or_default()
    {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn page(bytes: Cow<'static, [u8]>, csp: &str) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(csp) = HeaderValue::from_str(csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    (StatusCode::OK, headers, bytes).into_response()
}

/// Any other GET outside the API is a console path (the console routes in the browser); the
/// rest is unknown.
pub async fn fallback(
    State(state): State<AppState>,
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> Response {
    let api = uri.path() == "/v1" || uri.path().starts_with("/v1/");
    if method != axum::http::Method::GET || api || web_source(&state).is_err() {
        return ApiError::NotFound.into_response();
    }
    match console(State(state)).await {
        Ok(page) => page,
        Err(error) => error.into_response(),
    }
}

async fn console(State(state): State<AppState>) -> Result<Response, ApiError> {
    let (bytes, _) = file(web_source(&state)?, "index.html").await?;
    Ok(page(bytes, CONSOLE_CSP))
}

#[derive(Deserialize)]
struct WidgetQuery {
    queue: Option<String>,
}

async fn widget(
    State(state): State<AppState>,
    Query(query): Query<WidgetQuery>,
) -> Result<Response, ApiError> {
    let (bytes, _) = file(web_source(&state)?, "widget.html").await?;
    let mut ancestors = vec!["'self'".to_owned()];
    if let Some(queue_id) = query.queue.as_deref().and_then(|id| id.parse().ok()) {
        if let Some(queue) = projections::queues::read::queue(state.backend(), queue_id).await? {
            let origins = queue
                .settings
                .get("allowed_origins")
                .and_then(|value| value.as_array());
            for origin in origins
                .into_iter()
                .flatten()
                .filter_map(|origin| origin.as_str())
            {
                // Origins were parsed by the domain: scheme://host[:port], nothing else.
                ancestors.push(origin.to_owned());
            }
        }
    }
    let csp = CONSOLE_CSP.replace(
        "frame-ancestors 'self'",
        &format!("frame-ancestors {}", ancestors.join(" ")),
    );
    Ok(page(bytes, &csp))
}

async fn loader(State(state): State<AppState>) -> Result<Response, ApiError> {
    let (bytes, kind) = file(web_source(&state)?, "loader.js").await?;
    Ok((
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        bytes,
    )
        .into_response())
}

async fn asset(
    State(state): State<AppState>,
    UrlPath(path): UrlPath<String>,
) -> Result<Response, ApiError> {
    let (bytes, kind) = file(web_source(&state)?, &format!("assets/{path}")).await?;
    // Built assets carry a hash in their names: they never change under one name.
    let cache = "public, max-age=31536000, immutable";
    Ok((
        [(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, cache)],
        bytes,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_file_outside_the_build_is_never_served() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), "<p>hi</p>").unwrap();
        let folder = Source::Folder(dir.path());
        assert!(file(folder, "index.html").await.is_ok());
        assert!(file(folder, "../secret").await.is_err());
        assert!(file(folder, "/etc/passwd").await.is_err());
        assert!(file(folder, "missing.js").await.is_err());
        assert!(file(Source::Embedded, "../index.html").await.is_err());
        assert!(file(Source::Embedded, "missing.js").await.is_err());
    }
}
