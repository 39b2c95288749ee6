//! Deterministic ids (invariant 2: uniqueness across streams). Two commands that must never both
//! succeed — two sign-ups with one email, two direct chats of one pair — aim at the same stream,
//! so the store's expected-version check lets only one of them create it. An account's id is
//! derived under a secret of the deployment, so that nobody else can compute it from an email.

use uuid::Uuid;

use crate::metadata::ExternalUserId;
use crate::values::Email;

/// The namespace of every Jono UUIDv5.
const JONO: Uuid = Uuid::from_u128(0x6a6f_6e6f_2d6a_6f6e_6f2d_0000_0000_0001);

/// An account's id, and so its stream: a UUIDv5 of the lower-cased email under `secret`, a
/// namespace of 122 random bits that is the deployment's own (kept beside the log, never in
/// it). Without it nobody can compute an email's id, nor test a guessed email against an id
/// they saw (a customer sees its agent's `author.id`).
pub fn account_id(secret: Uuid, email: &Email) -> Uuid {
    Uuid::new_v5(&secret, format!("account:{}", email.as_str()).as_bytes())
}

/// The id accounts were given before ids were derived under a secret: a UUIDv5 of the email
/// under a namespace anyone can read here. Only to find the accounts of a store written then
/// (their ids are in the log and stay); no account is created under it any more.
pub fn legacy_account_id(email: &Email) -> Uuid {
    Uuid::new_v5(&JONO, format!("account:{}", email.as_str()).as_bytes())
}

/// A verified customer's reference (`metadata::VerifiedCustomer`): a UUIDv5 of the queue and the
/// site's user id under `secret`, the deployment's own (kept beside the log, never in it), so
/// the same user of the same queue's site is always the same customer, and nobody without the
/// secret can tell which user a reference is. Per queue, because each queue's identity secret
/// vouches for the ids of its own site only.
pub fn customer_ref(secret: Uuid, queue_id: Uuid, user_id: &ExternalUserId) -> Uuid {
    Uuid::new_v5(
        &secret,
        format!("customer:{queue_id}:{}", user_id.as_str()).as_bytes(),
    )
}

/// The one direct chat of two agents in an organization, whatever the order they are named in.
pub fn direct_conversation_id(organization_id: Uuid, a: Uuid, b: Uuid) -> Uuid {
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    Uuid::new_v5(
        &JONO,
        format!("direct:{organization_id}:{low}:{high}").as_bytes(),
    )
}

/// The stream that holds the canned responses of one scope (an agent's own, or an
/// organization's), so that a key is unique within its scope.
pub fn canned_scope_id(scope: crate::canned::Scope) -> Uuid {
    match scope {
        crate::canned::Scope::Personal { agent_id } => {
            Uuid::new_v5(&JONO, format!("canned:agent:{agent_id}").as_bytes())
        }
        crate::canned::Scope::Organization { organization_id } => {
            Uuid::new_v5(&JONO, format!("canned:org:{organization_id}").as_bytes())
        }
    }
}

/// The stream of one agent's open conversations in one organization (`workload::Workload`).
pub fn workload_id(organization_id: Uuid, agent_id: Uuid) -> Uuid {
    Uuid::new_v5(
        &JONO,
        format!("workload:{organization_id}:{agent_id}").as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_email_gives_one_account_id_whatever_its_case_and_each_deployment_its_own() {
        let secret = Uuid::new_v4();
        let ann = Email::parse("Ann@Example.com").unwrap();
        let a = account_id(secret, &ann);
        let b = account_id(secret, &Email::parse("ann@example.com").unwrap());
        let c = account_id(secret, &Email::parse("bob@example.com").unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, account_id(Uuid::new_v4(), &ann));
        assert_ne!(a, legacy_account_id(&ann));
    }

    #[test]
    fn a_sites_user_is_one_customer_per_queue_and_each_deployment_its_own() {
        let (secret, queue) = (Uuid::new_v4(), Uuid::new_v4());
        let user = ExternalUserId::parse("u-42").unwrap();
        let a = customer_ref(secret, queue, &user);
        assert_eq!(a, customer_ref(secret, queue, &user));
        assert_ne!(
            a,
            customer_ref(secret, queue, &ExternalUserId::parse("u-43").unwrap())
        );
        assert_ne!(a, customer_ref(secret, Uuid::new_v4(), &user));
        assert_ne!(a, customer_ref(Uuid::new_v4(), queue, &user));
    }

    #[test]
    fn a_pair_has_one_direct_chat_per_organization() {
        let (org, a, b) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(
            direct_conversation_id(org, a, b),
            direct_conversation_id(org, b, a)
        );
        assert_ne!(
            direct_conversation_id(org, a, b),
            direct_conversation_id(Uuid::new_v4(), a, b)
        );
    }
}
