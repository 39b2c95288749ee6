//! Blocks of abusive visitors: any member may block the customer of a conversation, for a
//! while; operators lift blocks; a blocked visitor cannot join.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};

use super::{Organization, OrganizationCommand, OrganizationError, OrganizationEvent as E};
use crate::values::{Role, VisitorKey};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Block {
    pub visitor: Option<VisitorKey>,
    pub until: DateTime<Utc>,
}

/// The shortest and the longest block.
pub const BLOCK_MINUTES: std::ops::RangeInclusive<i64> = 1..=365 * 24 * 60;

impl Organization {
    /// The latest end of a block of `visitor` still running at `at`.
    pub fn blocked_until(&self, visitor: &VisitorKey, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.blocks
            .values()
            .filter(|block| block.visitor.as_ref() == Some(visitor) && block.until > at)
            .map(|block| block.until)
            .max()
    }

    /// Decides `command`, one of: `BlockCustomer`, `LiftBlock`, `AdmitVisitor`.
    pub(super) async fn handle_block(
        &mut self,
        command: OrganizationCommand,
        sink: &EventSink<Self>,
    ) -> Result<(), OrganizationError> {
        use OrganizationCommand as C;
        match command {
            C::BlockCustomer {
                block_id,
                conversation_id,
                visitor,
                until,
                reason,
                by,
                at,
            } => {
                let organization_id = self.require_created()?;
                self.power_of(Some(by))?;
                let minutes = (until - at).num_minutes();
                if !BLOCK_MINUTES.contains(&minutes) {
                    return Err(OrganizationError::BlockLength);
                }
                if self.blocks.contains_key(&block_id) {
                    return Err(OrganizationError::BlockExists);
                }
                let event = E::CustomerBlocked {
                    organization_id,
                    block_id,
                    conversation_id,
                    visitor,
                    until,
                    reason,
                    blocked_by: by,
                    blocked_at: at,
                };
                sink.write(event, self).await;
            }
            C::LiftBlock { block_id, by, at } => {
                let organization_id = self.require_created()?;
                if self.power_of(by)? < Role::Operator {
                    return Err(OrganizationError::NotAllowed);
                }
                let block = self
                    .blocks
                    .get(&block_id)
                    .ok_or(OrganizationError::UnknownBlock)?;
                if block.until <= at {
                    return Err(OrganizationError::BlockEnded);
                }
                let event = E::CustomerBlockLifted {
                    organization_id,
                    block_id,
                    lifted_by: by,
                };
                sink.write(event, self).await;
            }
            C::AdmitVisitor { visitor, at } => {
                self.require_created()?;
                if let Some(until) = self.blocked_until(&visitor, at) {
                    return Err(OrganizationError::VisitorBlocked { until });
                }
            }
            _ => unreachable!("`handle` gives `handle_block` only the commands above"),
        }
        Ok(())
    }
}
