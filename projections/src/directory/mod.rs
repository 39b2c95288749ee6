//! `directory`: who is who — accounts (login by email), organizations, memberships with roles,
//! invitations, the blocks of abusive visitors that operators review and lift, and the sign-in
//! rules an owner set (whether members need a second factor).

pub mod read;

use async_trait::async_trait;
use domain::account::AccountEvent;
use domain::organization::OrganizationEvent;
use domain::Event;
use store::event::StoredEvent;

use crate::database::{micros, Tx};
use crate::params;
use crate::runtime::{Index, Projection, ProjectionError, Table};

pub struct Directory;

const TABLES: &[Table] = &[
    Table {
        name: "rm_accounts",
        columns: "agent_id TEXT PRIMARY KEY, email TEXT NOT NULL, name TEXT NOT NULL, \
                  created_at BIGINT NOT NULL",
        indexes: &[Index {
            name: "rm_accounts_by_email",
            columns: "email",
            unique: true,
            lookup: true,
        }],
        full_text: None,
    },
    Table {
        name: "rm_organizations",
        columns: "organization_id TEXT PRIMARY KEY, name TEXT NOT NULL, \
                  created_at BIGINT NOT NULL, created_position BIGINT NOT NULL",
        indexes: &[],
        full_text: None,
    },
    Table {
        name: "rm_memberships",
        columns: "organization_id TEXT NOT NULL, agent_id TEXT NOT NULL, role TEXT NOT NULL, \
                  since BIGINT NOT NULL, position BIGINT NOT NULL, \
                  PRIMARY KEY (organization_id, agent_id)",
        indexes: &[Index {
            name: "rm_memberships_by_agent",
            columns: "agent_id",
            unique: false,
            lookup: false,
        }],
        full_text: None,
    },
    Table {
        name: "rm_invitations",
        columns: "invitation_id TEXT PRIMARY KEY, organization_id TEXT NOT NULL, \
                  email TEXT NOT NULL, role TEXT NOT NULL, expires_at BIGINT NOT NULL, \
                  invited_by TEXT, accepted BIGINT NOT NULL, accepted_by TEXT, \
                  created_at BIGINT NOT NULL",
        indexes: &[Index {
            name: "rm_invitations_by_org",
            columns: "organization_id",
            unique: false,
            lookup: false,
        }],
        full_text: None,
    },
    // A block until it is lifted; one that ran out stays until then, and a read leaves it out.
    Table {
        name: "rm_blocks",
        columns: "block_id TEXT PRIMARY KEY, organization_id TEXT NOT NULL, \
                  conversation_id TEXT NOT NULL, until BIGINT NOT NULL, reason TEXT, \
                  blocked_by TEXT NOT NULL, blocked_at BIGINT NOT NULL, \
                  by_address BIGINT NOT NULL, position BIGINT NOT NULL",
        indexes: &[Index {
            name: "rm_blocks_by_org",
            columns: "organization_id, position",
            unique: false,
            lookup: false,
        }],
        full_text: None,
    },
    // Only organizations whose owner set a rule have a row; none means no requirement.
    Table {
        name: "rm_org_sign_in",
        columns: "organization_id TEXT PRIMARY KEY, \
                  two_factor_required BIGINT NOT NULL DEFAULT 0, sso_issuer TEXT, \
                  sso_client_id TEXT, sso_required BIGINT NOT NULL DEFAULT 0",
        indexes: &[],
        full_text: None,
    },
    // Organizations whose operators set how long customers' personal data is kept
    // (`RetentionSet`); no row, or `NULL`, keeps it until erased by hand.
    Table {
        name: "rm_org_retention",
        columns: "organization_id TEXT PRIMARY KEY, retention_days BIGINT",
        indexes: &[],
        full_text: None,
    },
];

#[async_trait]
impl Projection for Directory {
    fn name(&self) -> &'static str {
        "directory"
    }

    fn version(&self) -> i64 {
        // 4: `rm_org_retention`.
        4
    }

    fn tables(&self) -> &'static [Table] {
        TABLES
    }

    fn event_types(&self) -> Option<&'static [&'static str]> {
        const TYPES: &[&str] = &domain::event_types![
            "AccountCreated",
            "OrganizationCreated",
            "InvitationCreated",
            "InvitationAccepted",
            "InvitationRevoked",
            "MemberAdded",
            "MemberRoleChanged",
            "MemberRemoved",
            "CustomerBlocked",
            "CustomerBlockLifted",
            "TwoFactorRequirementSet",
            "SsoConfigured",
            "RetentionSet",
        ];
        Some(TYPES)
    }

    async fn apply(
        &self,
        tx: &mut Tx,
        event: &StoredEvent,
        decoded: &Event,
    ) -> Result<(), ProjectionError> {
        let at = micros(event.recorded_at);
        match decoded {
            Event::Account(AccountEvent::AccountCreated {
                agent_id,
                email,
                name,
            }) => {
                tx.execute(
                    "INSERT INTO rm_accounts{s} (agent_id, email, name, created_at)
                     VALUES ($1, $2, $3, $4)",
                    params![agent_id, email.as_str(), name.as_str(), at],
                )
                .await?;
            }
            Event::Organization(organization_event) => match organization_event {
                OrganizationEvent::OrganizationCreated { .. }
                | OrganizationEvent::InvitationCreated { .. }
                | OrganizationEvent::InvitationAccepted { .. }
                | OrganizationEvent::InvitationRevoked { .. }
                | OrganizationEvent::MemberAdded { .. }
                | OrganizationEvent::MemberRoleChanged { .. }
                | OrganizationEvent::MemberRemoved { .. } => {
                    membership(tx, event, organization_event).await?
                }
                OrganizationEvent::CustomerBlocked { .. }
                | OrganizationEvent::CustomerBlockLifted { .. } => {
                    blocks(tx, event, organization_event).await?
                }
                OrganizationEvent::TwoFactorRequirementSet { .. }
                | OrganizationEvent::RetentionSet { .. }
                | OrganizationEvent::SsoConfigured { .. } => {
                    settings(tx, organization_event).await?
                }
                // Webhook endpoints are read from the organization's stream and followed by
                // the webhook worker itself (gateway/src/webhooks/).
                OrganizationEvent::MemberSessionsEnded { .. }
                | OrganizationEvent::WebhookEndpointAdded { .. }
                | OrganizationEvent::WebhookEndpointRemoved { .. } => {}
            },
            _ => {}
        }
        Ok(())
    }
}

/// Organizations, their invitations and their members.
async fn membership(
    tx: &mut Tx,
    event: &StoredEvent,
    organization_event: &OrganizationEvent,
) -> Result<(), ProjectionError> {
    let at = micros(event.recorded_at);
    match organization_event {
        OrganizationEvent::OrganizationCreated {
            organization_id,
            name,
            ..
        } => {
            tx.execute(
                "INSERT INTO rm_organizations{s}
                 (organization_id, name, created_at, created_position)
                 VALUES ($1, $2, $3, $4)",
                params![organization_id, name.as_str(), at, event.position],
            )
            .await?;
        }
        OrganizationEvent::InvitationCreated {
            organization_id,
            invitation_id,
            email,
            role,
            expires_at,
            invited_by,
            ..
        } => {
            tx.execute(
                "INSERT INTO rm_invitations{s} (invitation_id, organization_id, email,
                 role, expires_at, invited_by, accepted, accepted_by, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, 0, NULL, $7)",
                params![
                    invitation_id,
                    organization_id,
                    email.as_str(),
                    role.as_str(),
                    micros(*expires_at),
                    *invited_by,
                    at
                ],
            )
            .await?;
        }
        OrganizationEvent::InvitationAccepted {
            invitation_id,
            agent_id,
            ..
        } => {
            tx.execute(
                "UPDATE rm_invitations{s} SET accepted = 1, accepted_by = $1
                 WHERE invitation_id = $2",
                params![agent_id, invitation_id],
            )
            .await?;
        }
        OrganizationEvent::InvitationRevoked { invitation_id, .. } => {
            tx.execute(
                "DELETE FROM rm_invitations{s} WHERE invitation_id = $1",
                params![invitation_id],
            )
            .await?;
        }
        OrganizationEvent::MemberAdded {
            organization_id,
            agent_id,
            role,
        } => {
            tx.execute(
                "INSERT INTO rm_memberships{s}
                 (organization_id, agent_id, role, since, position)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (organization_id, agent_id) DO UPDATE SET role = excluded.role",
                params![organization_id, agent_id, role.as_str(), at, event.position],
            )
            .await?;
        }
        OrganizationEvent::MemberRoleChanged {
            organization_id,
            agent_id,
            role,
            ..
        } => {
            tx.execute(
                "UPDATE rm_memberships{s} SET role = $1
                 WHERE organization_id = $2 AND agent_id = $3",
                params![role.as_str(), organization_id, agent_id],
            )
            .await?;
        }
        OrganizationEvent::MemberRemoved {
            organization_id,
            agent_id,
        } => {
            tx.execute(
                "DELETE FROM rm_memberships{s} WHERE organization_id = $1 AND agent_id = $2",
                params![organization_id, agent_id],
            )
            .await?;
        }
        _ => {}
    }
    Ok(())
}

/// The blocks of abusive visitors still running.
async fn blocks(
    tx: &mut Tx,
    event: &StoredEvent,
    organization_event: &OrganizationEvent,
) -> Result<(), ProjectionError> {
    match organization_event {
        OrganizationEvent::CustomerBlocked {
            organization_id,
            block_id,
            conversation_id,
            visitor,
            until,
            reason,
            blocked_by,
            blocked_at,
        } => {
            tx.execute(
                "INSERT INTO rm_blocks{s} (block_id, organization_id, conversation_id,
                 until, reason, blocked_by, blocked_at, by_address, position)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                params![
                    block_id,
                    organization_id,
                    conversation_id,
                    micros(*until),
                    reason.as_ref().map(|reason| reason.as_str().to_owned()),
                    blocked_by,
                    micros(*blocked_at),
                    i64::from(visitor.is_some()),
                    event.position
                ],
            )
            .await?;
        }
        OrganizationEvent::CustomerBlockLifted { block_id, .. } => {
            tx.execute(
                "DELETE FROM rm_blocks{s} WHERE block_id = $1",
                params![block_id],
            )
            .await?;
        }
        _ => {}
    }
    Ok(())
}

/// An organization's sign-in rules (second factor, single sign-on) and its retention.
async fn settings(
    tx: &mut Tx,
    organization_event: &OrganizationEvent,
) -> Result<(), ProjectionError> {
    match organization_event {
        OrganizationEvent::TwoFactorRequirementSet {
            organization_id,
            required,
            ..
        } => {
            tx.execute(
                "INSERT INTO rm_org_sign_in{s} (organization_id, two_factor_required)
                 VALUES ($1, $2) ON CONFLICT (organization_id)
                 DO UPDATE SET two_factor_required = excluded.two_factor_required",
                params![organization_id, i64::from(*required)],
            )
            .await?;
        }
        OrganizationEvent::RetentionSet {
            organization_id,
            retention_days,
            ..
        } => {
            tx.execute(
                "INSERT INTO rm_org_retention{s} (organization_id, retention_days)
                 VALUES ($1, $2) ON CONFLICT (organization_id)
                 DO UPDATE SET retention_days = excluded.retention_days",
                params![
                    organization_id,
                    retention_days.map(|days| i64::from(days.get()))
                ],
            )
            .await?;
        }
        OrganizationEvent::SsoConfigured {
            organization_id,
            issuer,
            client_id,
            required,
            ..
        } => {
            tx.execute(
                "INSERT INTO rm_org_sign_in{s}
                 (organization_id, sso_issuer, sso_client_id, sso_required)
                 VALUES ($1, $2, $3, $4) ON CONFLICT (organization_id)
                 DO UPDATE SET sso_issuer = excluded.sso_issuer,
                 sso_client_id = excluded.sso_client_id,
                 sso_required = excluded.sso_required",
                params![
                    organization_id,
                    issuer.as_str(),
                    client_id.as_str(),
                    i64::from(*required)
                ],
            )
            .await?;
        }
        _ => {}
    }
    Ok(())
}
