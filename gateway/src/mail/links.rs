//! The secrets emailed links carry: an address confirmation's and a password reset's token.
//! As every token of `crate::secrets`, 256 random bits handed out once (in the message) of which
//! only the SHA-256 is kept, beside the log and never in it ([`store::email_links`]). A link
//! works once ([`take`]: two uses race to one winner) and until it expires; a new link of the
//! same purpose for the same account replaces the one before.

use chrono::Utc;
use store::email_links as stored;
use store::error::StoreError;
use store::log::Backend;
use uuid::Uuid;

use crate::secrets::{hash_token, new_token};

pub use store::email_links::Purpose;

/// A new link's token for `agent_id`, working for `seconds`; the account's earlier link of
/// this purpose stops working, and expired links of anyone are forgotten.
pub async fn issue(
    backend: &Backend,
    purpose: Purpose,
    agent_id: Uuid,
    seconds: i64,
) -> Result<String, StoreError> {
    let now = Utc::now().timestamp();
    let token = new_token();
    stored::issue(
        backend,
        &hash_token(&token),
        purpose,
        agent_id,
        now,
        now + seconds,
    )
    .await?;
    Ok(token)
}

/// The account a live link of `purpose` belongs to, leaving the link as it is.
pub async fn peek(
    backend: &Backend,
    purpose: Purpose,
    token: &str,
) -> Result<Option<Uuid>, StoreError> {
    let now = Utc::now().timestamp();
    stored::peek(backend, &hash_token(token), purpose, now).await
}

/// Uses a link: the account it belongs to if it is live, and from now on it works no more.
pub async fn take(
    backend: &Backend,
    purpose: Purpose,
    token: &str,
) -> Result<Option<Uuid>, StoreError> {
    let taken = stored::take(backend, &hash_token(token), purpose).await?;
    let now = Utc::now().timestamp();
    Ok(taken
        .filter(|(_, expires_at)| *expires_at > now)
        .map(|(agent_id, _)| agent_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_link_works_once_for_its_purpose_and_a_new_one_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = store::log::EventStore::open_sqlite(dir.path())
            .await
            .unwrap();
        let backend = store.backend();
        crate::secrets::migrate(backend).await.unwrap();
        let agent = Uuid::new_v4();
        let first = issue(backend, Purpose::ResetPassword, agent, 60)
            .await
            .unwrap();
        assert_eq!(
            peek(backend, Purpose::ConfirmAddress, &first)
                .await
                .unwrap(),
            None,
            "a reset's link confirms nothing"
        );
        let second = issue(backend, Purpose::ResetPassword, agent, 60)
            .await
            .unwrap();
        assert_eq!(
            take(backend, Purpose::ResetPassword, &first).await.unwrap(),
            None
        );
        assert_eq!(
            peek(backend, Purpose::ResetPassword, &second)
                .await
                .unwrap(),
            Some(agent)
        );
        assert_eq!(
            take(backend, Purpose::ResetPassword, &second)
                .await
                .unwrap(),
            Some(agent)
        );
        assert_eq!(
            take(backend, Purpose::ResetPassword, &second)
                .await
                .unwrap(),
            None
        );
        // An expired link opens nothing.
        let late = issue(backend, Purpose::ConfirmAddress, agent, 0)
            .await
            .unwrap();
        assert_eq!(
            peek(backend, Purpose::ConfirmAddress, &late).await.unwrap(),
            None
        );
        assert_eq!(
            take(backend, Purpose::ConfirmAddress, &late).await.unwrap(),
            None
        );
    }
}
