//! What the worker owes: for each event, in log order, it first notes what it must know —
//! endpoints added and removed, conversations that are not customer conversations (whose
//! messages are never delivered) — then owes the event to each endpoint of its organization
//! that asked for its type (`store::webhook_deliveries::owe`, once per endpoint and position,
//! so a repeat after a crash adds nothing).

use std::collections::HashMap;

use chrono::Utc;
use domain::organization::WEBHOOK_EVENT_TYPES;
use serde_json::Value;
use store::event::StoredEvent;
use store::follow::Follower;
use store::webhook_deliveries as table;
use uuid::Uuid;

use crate::state::AppState;

/// What one turn of [`owe_next`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Owed {
    /// No event followed.
    Nothing,
    /// Events followed, and none of them was owed to an endpoint or changed the tables.
    Read,
    /// Some event wrote to the tables (a delivery owed, an endpoint, a private conversation).
    Written,
}

/// The events whose payloads the worker reads while no endpoint exists: what it must note
/// for later. The payloads of all others are skipped then (`Follower::set_skipped_payloads`):
/// in a deployment without webhooks, most of all it would read.
const NOTED: [&str; 3] = domain::event_types![
    "WebhookEndpointAdded",
    "WebhookEndpointRemoved",
    "ConversationStarted"
];

/// Every type but [`NOTED`].
const UNNOTED: [&str; domain::event::EVENT_TYPES.len() - NOTED.len()] = {
    let mut unnoted = [""; domain::event::EVENT_TYPES.len() - NOTED.len()];
    let (mut from, mut to) = (0, 0);
    while from < domain::event::EVENT_TYPES.len() {
        let name = domain::event::EVENT_TYPES[from];
        let mut noted = false;
        let mut n = 0;
        while n < NOTED.len() {
            noted |= domain::event::same(NOTED[n].as_bytes(), name.as_bytes());
            n += 1;
        }
        if !noted {
            unnoted[to] = name;
            to += 1;
        }
        from += 1;
    }
    unnoted
};

/// Notes and owes the events that follow in `feed`.
pub(super) async fn owe_next(state: &AppState, feed: &mut Follower) -> Result<Owed, String> {
    let backend = state.backend();
    let skipping = !table::any_endpoint(backend)
        .await
        .map_err(|error| error.to_string())?;
    feed.set_skipped_payloads(if skipping { &UNNOTED } else { &[] });
    let mut batch = feed.read().await.map_err(|error| error.to_string())?;
    if batch.is_empty() {
        return Ok(Owed::Nothing);
    }
    // Read without payloads: the events after a first endpoint's are read again, with theirs.
    if skipping {
        if let Some(added) = batch
            .iter()
            .position(|event| event.event_type == "WebhookEndpointAdded")
        {
            batch.truncate(added + 1);
            feed.seek(batch[added].position);
        }
    }
    let now = Utc::now().timestamp_millis();
    let mut owed = Owed::Read;
    let mut endpoints = Endpoints::default();
    for event in &batch {
        if owe_event(backend, &mut endpoints, event, now)
            .await
            .map_err(|error| error.to_string())?
        {
            owed = Owed::Written;
        }
    }
    Ok(owed)
}

/// The endpoints of the organizations a batch's events are of, each read once per batch (most
/// organizations have none, and a busy one's every message would read them again).
#[derive(Default)]
struct Endpoints {
    of: HashMap<String, Vec<table::Endpoint>>,
}

impl Endpoints {
    async fn of(
        &mut self,
        backend: &store::log::Backend,
        organization: &str,
    ) -> Result<&[table::Endpoint], store::error::StoreError> {
        if !self.of.contains_key(organization) {
            let endpoints = table::endpoints_of(backend, organization).await?;
            self.of.insert(organization.to_owned(), endpoints);
        }
        Ok(self.of.get(organization).map_or(&[], Vec::as_slice))
    }
}

async fn owe_event(
    backend: &store::log::Backend,
    endpoints: &mut Endpoints,
    event: &StoredEvent,
    now: i64,
) -> Result<bool, store::error::StoreError> {
    let field = |name: &str| event.payload.get(name).and_then(Value::as_str);
    let id = |name: &str| field(name).and_then(|raw| raw.parse::<Uuid>().ok());
    match event.event_type.as_str() {
        "WebhookEndpointAdded" => {
            if let (Some(endpoint), Some(organization), Some(url)) =
                (id("endpoint_id"), id("organization_id"), field("url"))
            {
                let types: Vec<String> = event
                    .payload
                    .get("event_types")
                    .and_then(|types| serde_json::from_value(types.clone()).ok())
                    .unwrap_or_default();
                table::add_endpoint(backend, endpoint, organization, url, &types).await?;
            }
            endpoints.of.clear();
            return Ok(true);
        }
        "WebhookEndpointRemoved" => {
            if let Some(endpoint) = id("endpoint_id") {
                table::remove_endpoint(backend, endpoint).await?;
            }
            endpoints.of.clear();
            return Ok(true);
        }
        "ConversationStarted" => {
            // A customer's conversation: a chat, or a left message.
            if !matches!(field("kind"), Some("customer" | "left_message")) {
                if let Some(conversation) = field("conversation_id") {
                    table::note_private_conversation(backend, conversation).await?;
                    return Ok(true);
                }
            }
            return Ok(false);
        }
        _ => {}
    }
    if !WEBHOOK_EVENT_TYPES.contains(&event.event_type.as_str()) {
        return Ok(false);
    }
    let Some(organization) = field("organization_id") else {
        return Ok(false);
    };
    let wanted: Vec<String> = endpoints
        .of(backend, organization)
        .await?
        .iter()
        .filter(|endpoint| endpoint.event_types.contains(&event.event_type))
        .map(|endpoint| endpoint.endpoint_id.clone())
        .collect();
    if wanted.is_empty() {
        return Ok(false);
    }
    // Channels and direct chats are the agents' own: nothing of theirs is sent out.
    if let Some(conversation) = field("conversation_id") {
        if table::is_private_conversation(backend, conversation).await? {
            return Ok(false);
        }
    }
    for endpoint_id in &wanted {
        table::owe(
            backend,
            endpoint_id,
            event.position,
            organization,
            &event.event_type,
            now,
        )
        .await?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use store::{AppendRequest, NewEvent};

    use super::*;
    use crate::webhooks::testing::{embedded_state, org_with_endpoint};

    /// While no endpoint exists the payloads are skipped; a first endpoint and an event owed
    /// to it read in that same batch must still be owed: the batch stops at the endpoint, and
    /// what follows is read again with its payloads.
    #[tokio::test]
    async fn an_event_read_in_the_batch_of_the_first_endpoint_is_still_owed() {
        let (_dir, state) = embedded_state().await;
        let org = org_with_endpoint(&state, "CustomerJoinedQueue").await;
        let queue = Uuid::new_v4();
        let joined = state
            .store
            .append(AppendRequest {
                events: vec![NewEvent {
                    event_id: Uuid::new_v4(),
                    aggregate_type: "queue".into(),
                    aggregate_id: queue.to_string(),
                    sequence: 1,
                    event_type: "CustomerJoinedQueue".into(),
                    event_version: "1".into(),
                    payload: json!({
                        "type": "CustomerJoinedQueue",
                        "queue_id": queue,
                        "organization_id": org,
                        "conversation_id": Uuid::new_v4(),
                    }),
                    actor: None,
                }],
                expected: vec![("queue".into(), queue.to_string(), 0)],
                idempotency: None,
            })
            .await
            .unwrap();
        // One feed over the whole log, its first batch all three events.
        let mut feed = Follower::new("webhooks", &state.store, 0).batch(100);
        for _ in 0..10 {
            if owe_next(&state, &mut feed).await.unwrap() == Owed::Nothing {
                break;
            }
        }
        assert_eq!(
            table::owed_positions(state.backend(), org).await.unwrap(),
            vec![joined[0].position]
        );
    }

    #[test]
    fn without_endpoints_only_what_must_be_noted_is_read() {
        for noted in NOTED {
            assert!(!UNNOTED.contains(&noted));
        }
        assert!(UNNOTED.contains(&"MessageSent"));
        assert_eq!(
            UNNOTED.len() + NOTED.len(),
            domain::event::EVENT_TYPES.len()
        );
    }
}
