use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Scope;
use crate::values::{CannedKey, CannedText};

/// The gateway has checked that `by` may manage the scope (itself for personal responses, an
/// operator for an organization's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type")]
pub enum CannedCommand {
    CreateCannedResponse {
        response_id: Uuid,
        scope: Scope,
        key: CannedKey,
        text: CannedText,
        by: Uuid,
    },
    ChangeCannedResponse {
        response_id: Uuid,
        key: Option<CannedKey>,
        text: Option<CannedText>,
        by: Uuid,
    },
    DeleteCannedResponse {
        response_id: Uuid,
        by: Uuid,
    },
}
