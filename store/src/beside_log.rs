//! The tables beside the log: what must never enter it (tokens' hashes, passwords, secrets,
//! links, attachments' bytes) and operational state that is not an event (kept answers, mail
//! waiting to go out, webhook deliveries owed). Each has a module of its own, named for what it
//! holds; [`migrate`] creates them all, on either backend, in the log's database.

use crate::dialect;
use crate::error::StoreError;
use crate::log::Backend;
use crate::{
    blob_table, credentials, email_links, identity_secrets, invitation_tokens, kept_answers,
    mail_outbox, second_factor, server_keys, sso_secrets, tokens, visitors, webhook_deliveries,
};

/// Creates the tables beside the log if they are missing (and forgets answers kept before they
/// were sealed: see [`kept_answers`]).
pub async fn migrate(backend: &Backend) -> Result<(), StoreError> {
    dialect::create(backend, &invitation_tokens::SCHEMA).await?;
    dialect::create(backend, &credentials::SCHEMA).await?;
    dialect::create(backend, &tokens::SCHEMA).await?;
    dialect::create(backend, &visitors::SCHEMA).await?;
    kept_answers::migrate(backend).await?;
    dialect::create(backend, &server_keys::SCHEMA).await?;
    dialect::create(backend, &blob_table::SCHEMA).await?;
    dialect::create(backend, &second_factor::SCHEMA).await?;
    dialect::create(backend, &mail_outbox::SCHEMA).await?;
    dialect::create(backend, &email_links::SCHEMA).await?;
    dialect::create(backend, &webhook_deliveries::SCHEMA).await?;
    dialect::create(backend, &identity_secrets::SCHEMA).await?;
    dialect::create(backend, &sso_secrets::SCHEMA).await
}
