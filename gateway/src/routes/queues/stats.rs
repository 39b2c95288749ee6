//! A queue's statistics for its operators: the `stats` read model's samples through the same
//! code as `jono stats`.

use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::Json;
use projections::stats::{stats_from_rows, QueueStats, Scope, StatsError};
use serde::Deserialize;

use super::find_as_operator;
use crate::auth::AgentCaller;
use crate::error::{invalid, ApiError};
use crate::extract::Params;
use crate::openapi::{time_schema, Route};
use crate::state::AppState;

/// The statistics.
pub(super) fn routes() -> Vec<Route> {
    vec![Route::get("/v1/queues/{queue}/stats", stats)
        .id("queueStats")
        .summary("A queue's statistics")
        .describe("Operators. A wait or a handle counts in the window in which it ends.")
        .query(
            "from",
            time_schema(),
            "The window's start (inclusive); default: the beginning of the log.",
        )
        .query(
            "to",
            time_schema(),
            "The window's end (exclusive); default: now.",
        )
        .returns::<QueueStats>(200, "The figures.")]
}

#[derive(Deserialize)]
struct StatsQuery {
    from: Option<String>,
    to: Option<String>,
}

/// API.md's statistics of the queue: the `stats` read model's samples (the log's, folded by the
/// `stats` projector) through the same code as `jono stats`.
async fn stats(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    agent: AgentCaller,
    Params(query): Params<StatsQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let queue = find_as_operator(&state, &agent, &queue).await?;
    let from = crate::extract::time("from", query.from.as_deref())?;
    let to = crate::extract::time("to", query.to.as_deref())?;
    let report = stats_from_rows(
        state.store.backend(),
        Scope::Queue(queue.id),
        from,
        to,
        None,
    )
    .await
    .map_err(|error| match error {
        StatsError::Store(error) => ApiError::from(error),
        StatsError::EmptyWindow { .. } => invalid(error),
        StatsError::UnknownQueue(_)
        | StatsError::UnknownOrganization(_)
        | StatsError::NotYetCreated { .. } => ApiError::NotFound,
        StatsError::Corrupt { .. } | StatsError::TooManyBuckets => {
            ApiError::Internal(error.to_string())
        }
    })?;
    Ok(Json(report.total))
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    #[test]
    fn stats_times_are_rfc_3339_or_dates() {
        assert_eq!(crate::extract::time("from", None).unwrap(), None);
        assert_eq!(crate::extract::time("from", Some("")).unwrap(), None);
        let t = crate::extract::time("from", Some("2026-01-31T11:00:00+02:00"))
            .unwrap()
            .unwrap();
        assert_eq!(t.to_rfc3339(), "2026-01-31T09:00:00+00:00");
        let d = crate::extract::time("from", Some("2026-01-31"))
            .unwrap()
            .unwrap();
        assert_eq!(d.to_rfc3339(), "2026-01-31T00:00:00+00:00");
        assert_eq!(
            crate::extract::time("to", Some("yesterday"))
                .unwrap_err()
                .status(),
            StatusCode::BAD_REQUEST
        );
    }
}
