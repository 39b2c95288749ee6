//! `canned`: canned responses, personal (an agent's) or an organization's.

pub mod read;

use async_trait::async_trait;
use domain::canned::{CannedEvent, Scope};
use domain::Event;
use store::event::StoredEvent;
use uuid::Uuid;

use crate::database::Tx;
use crate::params;
use crate::runtime::{Index, Projection, ProjectionError, Table};

pub struct Canned;

const TABLES: &[Table] = &[Table {
    name: "rm_canned",
    columns: "response_id TEXT PRIMARY KEY, scope TEXT NOT NULL, agent_id TEXT, \
              organization_id TEXT, key TEXT NOT NULL, text TEXT NOT NULL, \
              created_position BIGINT NOT NULL",
    indexes: &[
        Index {
            name: "rm_canned_by_agent",
            columns: "agent_id",
            unique: false,
            lookup: false,
        },
        Index {
            name: "rm_canned_by_org",
            columns: "organization_id",
            unique: false,
            lookup: false,
        },
    ],
    full_text: None,
}];

fn scope_columns(scope: &Scope) -> (&'static str, Option<Uuid>, Option<Uuid>) {
    match scope {
        Scope::Personal { agent_id } => ("agent", Some(*agent_id), None),
        Scope::Organization { organization_id } => ("organization", None, Some(*organization_id)),
    }
}

#[async_trait]
impl Projection for Canned {
    fn name(&self) -> &'static str {
        "canned"
    }

    fn version(&self) -> i64 {
        1
    }

    fn tables(&self) -> &'static [Table] {
        TABLES
    }

    fn event_types(&self) -> Option<&'static [&'static str]> {
        const TYPES: &[&str] = &domain::event_types![
            "CannedResponseCreated",
            "CannedResponseChanged",
            "CannedResponseDeleted",
        ];
        Some(TYPES)
    }

    async fn apply(
        &self,
        tx: &mut Tx,
        event: &StoredEvent,
        decoded: &Event,
    ) -> Result<(), ProjectionError> {
        let Event::Canned(canned) = decoded else {
            return Ok(());
        };
        match canned {
            CannedEvent::CannedResponseCreated {
                response_id,
                scope,
                key,
                text,
                ..
            } => {
                let (scope, agent_id, organization_id) = scope_columns(scope);
                tx.execute(
                    "INSERT INTO rm_canned{s} (response_id, scope, agent_id, organization_id, key,
                     text, created_position) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    params![
                        response_id,
                        scope,
                        agent_id,
                        organization_id,
                        key.as_str(),
                        text.as_str(),
                        event.position
                    ],
                )
                .await?;
            }
            CannedEvent::CannedResponseChanged {
                response_id,
                key,
                text,
                ..
            } => {
                tx.execute(
                    "UPDATE rm_canned{s} SET key = $1, text = $2 WHERE response_id = $3",
                    params![key.as_str(), text.as_str(), response_id],
                )
                .await?;
            }
            CannedEvent::CannedResponseDeleted { response_id, .. } => {
                tx.execute(
                    "DELETE FROM rm_canned{s} WHERE response_id = $1",
                    params![response_id],
                )
                .await?;
            }
        }
        Ok(())
    }
}
