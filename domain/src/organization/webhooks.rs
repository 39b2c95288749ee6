//! Webhook endpoints, which operators register: where the organization's events of some types
//! are delivered (the deliveries themselves are the gateway's operational work, not the log's).

use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Organization, OrganizationCommand, OrganizationError, OrganizationEvent as E};
use crate::values::Role;

/// Where the organization's events of some types are delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookEndpoint {
    pub id: Uuid,
    pub url: String,
    pub event_types: Vec<String>,
}

/// The events an endpoint may receive, by their log names: a customer joined, left (or timed
/// out), was picked or transferred; a message was sent; a conversation was rated or ended.
pub const WEBHOOK_EVENT_TYPES: [&str; 9] = crate::event_types![
    "CustomerJoinedQueue",
    "CustomerLeftQueue",
    "CustomerPicked",
    "ConversationTransferred",
    "MessageSent",
    "ConversationRated",
    "ConversationEnded",
    "MessageLeft",
    "ConversationReopened",
];
/// Endpoints per organization.
pub const WEBHOOK_ENDPOINTS_MAX: usize = 10;
/// The longest endpoint URL, in bytes.
pub const WEBHOOK_URL_MAX: usize = 2000;

impl Organization {
    /// Decides `command`, one of: `AddWebhookEndpoint`, `RemoveWebhookEndpoint`.
    pub(super) async fn handle_webhook(
        &mut self,
        command: OrganizationCommand,
        sink: &EventSink<Self>,
    ) -> Result<(), OrganizationError> {
        use OrganizationCommand as C;
        match command {
            C::AddWebhookEndpoint {
                endpoint_id,
                url,
                event_types,
                by,
            } => {
                let organization_id = self.require_created()?;
                if self.power_of(by)? < Role::Operator {
                    return Err(OrganizationError::NotAllowed);
                }
                let url = url.trim().to_owned();
                let lower = url.to_ascii_lowercase();
                let http = lower.starts_with("https://") || lower.starts_with("http://");
                let chosen: Vec<String> = WEBHOOK_EVENT_TYPES
                    .iter()
                    .filter(|known| event_types.iter().any(|asked| asked == *known))
                    .map(|known| (*known).to_owned())
                    .collect();
                let unknown = event_types
                    .iter()
                    .any(|asked| !WEBHOOK_EVENT_TYPES.contains(&asked.as_str()));
                if !http
                    || url.len() > WEBHOOK_URL_MAX
                    || url.chars().any(char::is_whitespace)
                    || chosen.is_empty()
                    || unknown
                {
                    return Err(OrganizationError::WebhookSettings);
                }
                if self
                    .webhooks
                    .iter()
                    .any(|endpoint| endpoint.id == endpoint_id || endpoint.url == url)
                {
                    return Err(OrganizationError::WebhookExists);
                }
                if self.webhooks.len() >= WEBHOOK_ENDPOINTS_MAX {
                    return Err(OrganizationError::TooManyWebhooks);
                }
                let event = E::WebhookEndpointAdded {
                    organization_id,
                    endpoint_id,
                    url,
                    event_types: chosen,
                    added_by: by,
                };
                sink.write(event, self).await;
            }
            C::RemoveWebhookEndpoint { endpoint_id, by } => {
                let organization_id = self.require_created()?;
                if self.power_of(by)? < Role::Operator {
                    return Err(OrganizationError::NotAllowed);
                }
                if !self
                    .webhooks
                    .iter()
                    .any(|endpoint| endpoint.id == endpoint_id)
                {
                    return Err(OrganizationError::UnknownWebhook);
                }
                let event = E::WebhookEndpointRemoved {
                    organization_id,
                    endpoint_id,
                    removed_by: by,
                };
                sink.write(event, self).await;
            }
            _ => unreachable!("`handle` gives `handle_webhook` only the commands above"),
        }
        Ok(())
    }
}
