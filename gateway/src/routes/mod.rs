//! One module per area of the contract; each declares its routes in `routes()`, which make both its
//! router and its operations in the OpenAPI document (`openapi/`). The wire types of an area —
//! the request bodies its handlers take and the answers they return, each `Serialize` or
//! `Deserialize` and `JsonSchema` — are declared once, in its module, and the OpenAPI document
//! (`openapi/`) references those same types.

pub mod accounts;
pub mod activity;
pub mod attachments;
pub mod audit;
pub mod blocks;
pub mod canned;
pub mod conversations;
pub mod email;
pub mod erasures;
pub mod handoff;
pub mod health;
pub mod left_messages;
pub mod offers;
pub mod organizations;
pub mod queues;
pub mod search;
pub mod sessions;
pub mod sso;
pub mod two_factor;
pub mod webhooks;

/// Every route the server answers, module by module: the app's router and the OpenAPI document
/// are both made from these.
pub fn all() -> Vec<crate::openapi::Routes> {
    vec![
        health::routes(),
        accounts::routes(),
        email::routes(),
        two_factor::routes(),
        sessions::routes(),
        sso::routes(),
        organizations::routes(),
        queues::routes(),
        offers::routes(),
        handoff::routes(),
        left_messages::routes(),
        audit::routes(),
        crate::ws::routes(),
        crate::web::routes(),
        conversations::routes(),
        blocks::routes(),
        erasures::routes(),
        webhooks::routes(),
        search::routes(),
        canned::routes(),
        activity::routes(),
        crate::openapi::routes(),
        attachments::routes(),
    ]
}

/// Helpers the wire types share.
pub mod wire {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::de::DeserializeOwned;
    use serde::Serializer;

    use crate::error::ApiError;

    /// A domain enum from the text a read model keeps of it (the enum's own serde name, as the
    /// projection wrote it): unknown text is a corrupt row, never the caller's fault.
    pub fn parse<T: DeserializeOwned>(text: &str) -> Result<T, ApiError> {
        serde_json::from_value(serde_json::Value::String(text.to_owned()))
            .map_err(|error| ApiError::Internal(format!("a read model holds {text:?}: {error}")))
    }

    /// A time in whole seconds (`2026-01-02T03:04:05Z`), for the answers that always had it so.
    pub fn seconds<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&at.to_rfc3339_opts(SecondsFormat::Secs, true))
    }
}
