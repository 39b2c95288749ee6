//! A queue's settings: the body of a change parsed into the domain's values (absent keeps a
//! setting, `null` clears it), and the change itself.

use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::Extension;
use domain::queue::{
    Colour, OfferTimeout, Queue, QueueCommand, Routing, SettingsPatch, WidgetPosition,
};
use domain::schedule::{OpeningHours, Origin};
use domain::values::{Limit, Name, WelcomeMessage};

use super::wire::{self, SettingsBody};
use super::{find_as_operator, rendered};
use crate::auth::{AgentCaller, Caller};
use crate::error::{invalid, ApiError};
use crate::extract::Body;
use crate::idempotency::IdempotencyKey;
use crate::openapi::Route;
use crate::state::AppState;
use crate::workflow::{self, context};

/// Changing the settings.
pub(super) fn routes() -> Vec<Route> {
    vec![Route::put("/v1/queues/{queue}/settings", change_settings)
        .id("changeQueueSettings")
        .summary("Change a queue's settings")
        .describe("Operators.")
        .body::<SettingsBody>()
        .returns::<wire::QueueView>(200, "The queue.")]
}

/// A customer's token outlives its conversation by a day (`auth::CUSTOMER_TOKEN_AFTER_END`),
/// so a reopening window is at most that.
const REOPEN_WINDOW_MAX: i64 = 86_400;

fn reopen_window(raw: Option<Option<i64>>) -> Result<Option<Option<Limit>>, ApiError> {
    match raw {
        Some(Some(seconds)) if seconds > REOPEN_WINDOW_MAX => Err(ApiError::Invalid(format!(
            "reopen_window_seconds is at most {REOPEN_WINDOW_MAX} (a day)"
        ))),
        Some(Some(seconds)) => Limit::parse(seconds, "reopen_window_seconds")
            .map(|limit| Some(Some(limit)))
            .map_err(invalid),
        Some(None) => Ok(Some(None)),
        None => Ok(None),
    }
}

impl SettingsBody {
    fn parse(self) -> Result<SettingsPatch, ApiError> {
        let name = match self.name {
            None => None,
            Some(None) => return Err(ApiError::Invalid("a queue's name cannot be cleared".into())),
            Some(Some(name)) => Some(Name::parse(name).map_err(invalid)?),
        };
        let limit = |raw: Option<Option<i64>>, field| match raw {
            Some(Some(raw)) => Limit::parse(raw, field)
                .map(|limit| Some(Some(limit)))
                .map_err(invalid),
            Some(None) => Ok(Some(None)),
            None => Ok(None),
        };
        let welcome_message = match self.welcome_message {
            Some(Some(text)) => Some(Some(WelcomeMessage::parse(text).map_err(invalid)?)),
            other => other.map(|_| None),
        };
        let opening_hours = match self.opening_hours {
            Some(Some(raw)) => Some(Some(OpeningHours::parse(raw).map_err(invalid)?)),
            other => other.map(|_| None),
        };
        let allowed_origins = match self.allowed_origins {
            Some(origins) => Some(
                origins
                    .unwrap_or_default()
                    .iter()
                    .map(Origin::parse)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(invalid)?,
            ),
            None => None,
        };
        let widget_position = match self.widget_position {
            Some(Some(raw)) => Some(WidgetPosition::parse(&raw).map_err(invalid)?),
            // `null` puts it back where it starts.
            Some(None) => Some(WidgetPosition::default()),
            None => None,
        };
        let widget_color = match self.widget_color {
            Some(Some(raw)) => Some(Some(Colour::parse(raw).map_err(invalid)?)),
            other => other.map(|_| None),
        };
        let routing = match self.routing {
            Some(Some(raw)) => Some(Routing::parse(&raw).map_err(invalid)?),
            // `null` puts it back to the default: manual.
            Some(None) => Some(Routing::default()),
            None => None,
        };
        let offer_timeout_seconds = match self.offer_timeout_seconds {
            Some(Some(raw)) => Some(OfferTimeout::parse(raw).map_err(invalid)?),
            Some(None) => Some(OfferTimeout::default()),
            None => None,
        };
        Ok(SettingsPatch {
            routing,
            offer_timeout_seconds,
            name,
            max_waiting: limit(self.max_waiting, "max_waiting")?,
            welcome_message,
            capacity_per_agent: limit(self.capacity_per_agent, "capacity_per_agent")?,
            opening_hours,
            allowed_origins,
            widget_position,
            widget_color,
            // `null` is the default: off.
            leave_message_when_offline: self
                .leave_message_when_offline
                .map(|offline| offline.unwrap_or(false)),
            reopen_window_seconds: reopen_window(self.reopen_window_seconds)?,
            target_wait_seconds: limit(self.target_wait_seconds, "target_wait_seconds")?,
            target_first_response_seconds: limit(
                self.target_first_response_seconds,
                "target_first_response_seconds",
            )?,
        })
    }
}

async fn change_settings(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    agent: AgentCaller,
    key: Option<Extension<IdempotencyKey>>,
    Body(body): Body<SettingsBody>,
) -> Result<impl IntoResponse, ApiError> {
    let queue = find_as_operator(&state, &agent, &queue).await?;
    let patch = body.parse()?;
    let change = QueueCommand::ChangeSettings {
        patch,
        by: Some(agent.agent_id),
    };
    let caller = Caller::Agent(agent);
    let executed = workflow::run::<Queue>(
        &state,
        queue.id,
        change,
        &context(Some(&caller), key.as_deref()),
    )
    .await?;
    // The answer shows the change: it waits for the read model to have it.
    state
        .wait_for_read_models(workflow::last_position(&executed))
        .await;
    rendered(&state, queue.id).await
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use serde_json::{json, Value};

    use super::*;

    fn patch(body: Value) -> Result<SettingsPatch, ApiError> {
        serde_json::from_value::<SettingsBody>(body)
            .map_err(|e| ApiError::BadRequest(e.to_string()))?
            .parse()
    }

    #[test]
    fn absent_keeps_and_null_clears() {
        let empty = patch(json!({})).unwrap();
        assert_eq!(empty, SettingsPatch::default());
        let cleared = patch(json!({
            "max_waiting": null, "welcome_message": null, "capacity_per_agent": null,
            "opening_hours": null, "allowed_origins": null,
            "target_wait_seconds": null, "target_first_response_seconds": null
        }))
        .unwrap();
        assert_eq!(cleared.target_wait_seconds, Some(None));
        assert_eq!(cleared.target_first_response_seconds, Some(None));
        assert_eq!(cleared.max_waiting, Some(None));
        assert_eq!(cleared.welcome_message, Some(None));
        assert_eq!(cleared.capacity_per_agent, Some(None));
        assert_eq!(cleared.opening_hours, Some(None));
        assert_eq!(cleared.allowed_origins, Some(vec![]));
        assert_eq!(cleared.name, None);
    }

    #[test]
    fn settings_are_parsed_into_the_domains_values() {
        let set = patch(json!({
            "name": " Sales ", "max_waiting": 3, "welcome_message": "Hi!", "capacity_per_agent": 2,
            "opening_hours": {"timezone": "Europe/Helsinki", "weekly": [{"day": "mon", "open": "09:00", "close": "17:00"}]},
            "allowed_origins": ["https://Shop.Example"]
        }))
        .unwrap();
        assert_eq!(set.name.unwrap().as_str(), "Sales");
        assert_eq!(set.max_waiting.flatten().map(Limit::get), Some(3));
        assert_eq!(set.capacity_per_agent.flatten().map(Limit::get), Some(2));
        assert!(set.opening_hours.flatten().is_some());
        assert_eq!(
            set.allowed_origins.unwrap()[0].as_str(),
            "https://shop.example"
        );
    }

    #[test]
    fn bad_values_are_422_and_wrong_types_400() {
        let status = |body: Value| patch(body).map(|_| ()).unwrap_err().status();
        for bad in [
            json!({"max_waiting": 0}),
            json!({"max_waiting": -1}),
            json!({"capacity_per_agent": 0}),
            json!({"name": ""}),
            json!({"name": null}),
            json!({"welcome_message": "  "}),
            json!({"allowed_origins": ["ftp://x"]}),
            json!({"opening_hours": {"timezone": "Mars/Olympus", "weekly": []}}),
            json!({"opening_hours": {"timezone": "UTC", "weekly": [{"day": "mon", "open": "17:00", "close": "09:00"}]}}),
        ] {
            assert_eq!(
                status(bad.clone()),
                StatusCode::UNPROCESSABLE_ENTITY,
                "{bad}"
            );
        }
        for wrong in [
            json!({"max_waiting": "3"}),
            json!({"max_waiting": 1.5}),
            json!({"name": 3}),
            json!({"allowed_origins": "https://a"}),
            json!({"opening_hours": "always"}),
        ] {
            assert_eq!(status(wrong.clone()), StatusCode::BAD_REQUEST, "{wrong}");
        }
    }
}
