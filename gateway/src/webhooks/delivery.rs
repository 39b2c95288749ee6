//! One delivery: its body, one try of it (`Ok` on a 2xx answer), and what the try came to in
//! the table — delivered, retried after an exponential back-off with jitter, or parked once
//! the next try would fall past the horizon.

use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};
use store::event::StoredEvent;
use store::webhook_deliveries as table;

use super::Config;
use crate::outbound;
use crate::state::AppState;

/// The first retry comes after about this long.
pub const FIRST_DELAY: Duration = Duration::from_secs(1);
/// Retries are never further apart than this.
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// At most this much of a refusing endpoint's answer is read (shown to operators).
pub const RESPONSE_CAP: usize = 512;

/// The body of a delivery: the event's position, type, time and organization, and its stored
/// fields as `data` (the log holds no secrets).
pub fn body(event: &StoredEvent) -> Value {
    let organization_id = event
        .payload
        .get("organization_id")
        .cloned()
        .unwrap_or(Value::Null);
    let mut data = event.payload.clone();
    if let Value::Object(map) = &mut data {
        // The stored enum tag repeats `event_type`.
        map.remove("type");
    }
    json!({
        "position": event.position,
        "event_type": event.event_type,
        "occurred_at": event.recorded_at,
        "organization_id": organization_id,
        "data": data,
    })
}

/// The wait before try `attempts + 1` after `attempts` failed ones: doubling from
/// [`FIRST_DELAY`], at most [`MAX_DELAY`], and between half and all of that (jitter, so that
/// endpoints that fail together do not retry together).
pub fn backoff(attempts: i64, jitter: f64) -> Duration {
    let exponent = u32::try_from(attempts.clamp(1, 30) - 1).unwrap_or(0);
    let full = FIRST_DELAY
        .saturating_mul(2u32.saturating_pow(exponent))
        .min(MAX_DELAY);
    full.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

/// What one attempt came to.
pub(super) struct Attempt {
    pub(super) endpoint_id: String,
    pub(super) position: i64,
    pub(super) outcome: Result<(), String>,
}

/// A finished attempt, into the table: delivered, retried later, or parked.
pub(super) async fn record(state: &AppState, config: &Config, done: Attempt) {
    let backend = state.backend();
    let attempts = &state.metrics.webhook_attempts;
    let result = match done.outcome {
        Ok(()) => {
            attempts.with_label_values(&["delivered"]).inc();
            table::delivered(backend, &done.endpoint_id, done.position).await
        }
        Err(error) => {
            let now = Utc::now().timestamp_millis();
            let row = match table::delivery(backend, &done.endpoint_id, done.position).await {
                Ok(Some(row)) => row,
                // Removed (with its endpoint) meanwhile.
                Ok(None) => return,
                Err(error) => {
                    tracing::warn!(%error, "the webhooks cannot read a delivery");
                    return;
                }
            };
            let first = row.first_attempt_at.unwrap_or(now);
            let delay = backoff(row.attempts + 1, rand::random::<f64>());
            let next = now.saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
            let horizon = i64::try_from(config.horizon.as_millis()).unwrap_or(i64::MAX);
            let parked = (next > first.saturating_add(horizon)).then_some(now);
            let outcome = if parked.is_some() { "parked" } else { "failed" };
            attempts.with_label_values(&[outcome]).inc();
            if parked.is_some() {
                tracing::warn!(endpoint = %done.endpoint_id, position = done.position, %error, "a webhook delivery is parked");
            } else {
                tracing::info!(endpoint = %done.endpoint_id, position = done.position, %error, "a webhook delivery failed; it will be retried");
            }
            table::failed(
                backend,
                &done.endpoint_id,
                done.position,
                first,
                next,
                parked,
                &error,
            )
            .await
        }
    };
    if let Err(error) = result {
        tracing::warn!(%error, "the webhooks cannot record a delivery");
    }
}

/// One try of one delivery: `Ok` on a 2xx answer.
pub(super) async fn attempt(
    state: &AppState,
    http: &outbound::Http,
    delivery: &table::Delivery,
) -> Result<(), String> {
    let url = table::endpoint_url(state.backend(), &delivery.endpoint_id)
        .await
        .map_err(|error| error.to_string())?
        .ok_or_else(|| "the endpoint was removed".to_owned())?;
    let event = state
        .store
        .read_positions(&[delivery.position])
        .await
        .map_err(|error| error.to_string())?
        .into_iter()
        .next()
        .ok_or_else(|| format!("no event at position {}", delivery.position))?;
    let body = serde_json::to_vec(&body(&event)).map_err(|error| error.to_string())?;
    let timestamp = Utc::now().timestamp();
    let signature = state.webhook_key.signature(timestamp, &body);
    let client = http.to(&url).map_err(|refused| refused.to_string())?;
    let response = client
        .post(&url)
        .header("content-type", "application/json")
        .header("user-agent", "Jono-Webhooks/1")
        .header("jono-signature", signature)
        .header("jono-position", event.position.to_string())
        .header("jono-event", event.event_type.as_str())
        .body(body)
        .send()
        .await
        .map_err(|error| outbound::error_text(&error))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    // What the endpoint said, for the operators: a little of it, never the whole.
    let mut said = Vec::new();
    let mut response = response;
    while said.len() < RESPONSE_CAP {
        match response.chunk().await {
            Ok(Some(chunk)) => said.extend_from_slice(&chunk),
            _ => break,
        }
    }
    said.truncate(RESPONSE_CAP);
    let said = String::from_utf8_lossy(&said);
    Err(format!("{url} answered {status}: {}", said.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_back_off_doubles_from_a_second_with_jitter_and_is_capped() {
        assert_eq!(backoff(1, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(1, 0.0), Duration::from_millis(500));
        assert_eq!(backoff(2, 1.0), Duration::from_secs(2));
        assert_eq!(backoff(5, 1.0), Duration::from_secs(16));
        assert_eq!(backoff(40, 1.0), MAX_DELAY);
        assert!(backoff(40, 0.3) < MAX_DELAY);
    }
}
