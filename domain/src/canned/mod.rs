//! `CannedResponses`: the canned responses of one scope — an agent's own, or an organization's —
//! in one stream whose id is derived from the scope (`ids::canned_scope_id`), so a key is unique
//! within its scope by construction. Typing `/key` and a space in any text field expands one.

mod commands;
mod errors;
mod events;

pub use commands::CannedCommand;
pub use errors::CannedError;
pub use events::CannedEvent;

use std::collections::BTreeMap;

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::values::{CannedKey, CannedText};

/// Whose canned responses these are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "scope", rename_all = "lowercase")]
pub enum Scope {
    Personal { agent_id: Uuid },
    Organization { organization_id: Uuid },
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct CannedResponses {
    pub scope: Option<Scope>,
    pub responses: BTreeMap<Uuid, Response>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Response {
    pub key: CannedKey,
    pub text: CannedText,
}

impl CannedResponses {
    fn key_taken(&self, key: &CannedKey, except: Option<Uuid>) -> bool {
        self.responses
            .iter()
            .any(|(id, response)| Some(*id) != except && response.key.folded() == key.folded())
    }
}

impl crate::Snapshot for CannedResponses {
    const SNAPSHOT_VERSION: u32 = 1;
}

impl Aggregate for CannedResponses {
    const TYPE: &'static str = "canned_responses";
    type Command = CannedCommand;
    type Event = CannedEvent;
    type Error = CannedError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        match command {
            CannedCommand::CreateCannedResponse {
                response_id,
                scope,
                key,
                text,
                by,
            } => {
                if self.scope.is_some_and(|existing| existing != scope) {
                    return Err(CannedError::OtherScope);
                }
                if self.responses.contains_key(&response_id) {
                    return Err(CannedError::AlreadyCreated);
                }
                if self.key_taken(&key, None) {
                    return Err(CannedError::KeyTaken);
                }
                let event = CannedEvent::CannedResponseCreated {
                    response_id,
                    scope,
                    key,
                    text,
                    by,
                };
                sink.write(event, self).await;
            }
            CannedCommand::ChangeCannedResponse {
                response_id,
                key,
                text,
                by,
            } => {
                let scope = self.scope.ok_or(CannedError::UnknownResponse)?;
                let current = self
                    .responses
                    .get(&response_id)
                    .ok_or(CannedError::UnknownResponse)?;
                let key = key.unwrap_or_else(|| current.key.clone());
                let text = text.unwrap_or_else(|| current.text.clone());
                if self.key_taken(&key, Some(response_id)) {
                    return Err(CannedError::KeyTaken);
                }
                if key == current.key && text == current.text {
                    return Ok(());
                }
                let event = CannedEvent::CannedResponseChanged {
                    response_id,
                    scope,
                    key,
                    text,
                    by,
                };
                sink.write(event, self).await;
            }
            CannedCommand::DeleteCannedResponse { response_id, by } => {
                let scope = self.scope.ok_or(CannedError::UnknownResponse)?;
                if !self.responses.contains_key(&response_id) {
                    return Err(CannedError::UnknownResponse);
                }
                sink.write(
                    CannedEvent::CannedResponseDeleted {
                        response_id,
                        scope,
                        by,
                    },
                    self,
                )
                .await;
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            CannedEvent::CannedResponseCreated {
                response_id,
                scope,
                key,
                text,
                ..
            } => {
                self.scope = Some(scope);
                self.responses.insert(response_id, Response { key, text });
            }
            CannedEvent::CannedResponseChanged {
                response_id,
                key,
                text,
                ..
            } => {
                self.responses.insert(response_id, Response { key, text });
            }
            CannedEvent::CannedResponseDeleted { response_id, .. } => {
                self.responses.remove(&response_id);
            }
        }
    }
}
