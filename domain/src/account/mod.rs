//! `Account`: a person who signs in. Its stream id is derived from the lower-cased email under
//! the deployment's secret (`ids::account_id`, which the gateway holds and this aggregate does
//! not), so two creations with one email race on one stream and one loses.
//! The password hash is not here: secrets never enter the log.

mod commands;
mod errors;
mod events;

pub use commands::AccountCommand;
pub use errors::AccountError;
pub use events::AccountEvent;

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::values::{DisplayName, Email};

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Account {
    pub created: Option<AccountState>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountState {
    pub agent_id: Uuid,
    pub email: Email,
    pub name: DisplayName,
    /// Whether the address is known to be the person's (`EmailConfirmed`).
    #[serde(default)]
    pub email_confirmed: bool,
}

impl crate::Snapshot for Account {
    const SNAPSHOT_VERSION: u32 = 2;
}

impl Aggregate for Account {
    const TYPE: &'static str = "account";
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = AccountError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        match command {
            AccountCommand::CreateAccount {
                agent_id,
                email,
                name,
                email_confirmed,
            } => {
                if self.created.is_some() {
                    return Err(AccountError::EmailTaken);
                }
                sink.write(
                    AccountEvent::AccountCreated {
                        agent_id,
                        email,
                        name,
                    },
                    self,
                )
                .await;
                if email_confirmed {
                    sink.write(AccountEvent::EmailConfirmed { agent_id }, self)
                        .await;
                }
            }
            AccountCommand::ConfirmEmail { agent_id } => {
                let account = self.created.as_ref().ok_or(AccountError::UnknownAccount)?;
                if account.agent_id != agent_id {
                    return Err(AccountError::UnknownAccount);
                }
                if account.email_confirmed {
                    return Err(AccountError::EmailConfirmedAlready);
                }
                sink.write(AccountEvent::EmailConfirmed { agent_id }, self)
                    .await;
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            AccountEvent::AccountCreated {
                agent_id,
                email,
                name,
            } => {
                self.created = Some(AccountState {
                    agent_id,
                    email,
                    name,
                    email_confirmed: false,
                });
            }
            AccountEvent::EmailConfirmed { .. } => {
                if let Some(account) = &mut self.created {
                    account.email_confirmed = true;
                }
            }
        }
    }
}
