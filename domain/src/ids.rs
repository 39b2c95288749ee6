//! Deterministic ids (invariant 2: uniqueness across streams). Two commands that must never both
//! succeed — two sign-ups with one email, two direct chats of one pair — aim at the same stream,
//! so the store's expected-version check lets only one of them create it.

use uuid::Uuid;

use crate::values::Email;

/// The namespace of every Jono UUIDv5.
const JONO: Uuid = Uuid::from_u128(0x6a6f_6e6f_2d6a_6f6e_6f2d_0000_0000_0001);

/// An account's id, and so its stream: a UUIDv5 of the lower-cased email.
pub fn account_id(email: &Email) -> Uuid {
    Uuid::new_v5(&JONO, format!("account:{}", email.as_str()).as_bytes())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_email_gives_one_account_id_whatever_its_case() {
        let a = account_id(&Email::parse("Ann@Example.com").unwrap());
        let b = account_id(&Email::parse("ann@example.com").unwrap());
        let c = account_id(&Email::parse("bob@example.com").unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
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
