//! `CannedResponses`: one stream per scope, so a key is unique within it.

mod common;

use common::{id, AGENT, ORG};
use cqrs_es::test::TestFramework;
use domain::canned::{CannedCommand as C, CannedError, CannedEvent as E, CannedResponses, Scope};
use domain::ids::canned_scope_id;
use domain::values::{CannedKey, CannedText};
use uuid::Uuid;

const PERSONAL: Scope = Scope::Personal { agent_id: AGENT };
const ORGANIZATION: Scope = Scope::Organization {
    organization_id: ORG,
};

fn test() -> TestFramework<CannedResponses> {
    TestFramework::<CannedResponses>::with(())
}

fn key(raw: &str) -> CannedKey {
    CannedKey::parse(raw).expect("a valid test value")
}

fn text(raw: &str) -> CannedText {
    CannedText::parse(raw).expect("a valid test value")
}

fn create(response_id: Uuid, scope: Scope, raw_key: &str) -> C {
    C::CreateCannedResponse {
        response_id,
        scope,
        key: key(raw_key),
        text: text("Hello and welcome!"),
        by: AGENT,
    }
}

fn created(response_id: Uuid, scope: Scope, raw_key: &str) -> E {
    E::CannedResponseCreated {
        response_id,
        scope,
        key: key(raw_key),
        text: text("Hello and welcome!"),
        by: AGENT,
    }
}

fn change(response_id: Uuid, raw_key: Option<&str>, raw_text: Option<&str>) -> C {
    C::ChangeCannedResponse {
        response_id,
        key: raw_key.map(key),
        text: raw_text.map(text),
        by: AGENT,
    }
}

// ---- CreateCannedResponse ----

#[test]
fn an_agent_creates_a_personal_canned_response() {
    test()
        .given_no_previous_events()
        .when(create(id(1), PERSONAL, "/hello"))
        .then_expect_events(vec![created(id(1), PERSONAL, "hello")]);
}

#[test]
fn a_key_is_unique_in_its_scope_case_insensitively() {
    test()
        .given(vec![created(id(1), ORGANIZATION, "Hello")])
        .when(create(id(2), ORGANIZATION, "hELLO"))
        .then_expect_error(CannedError::KeyTaken);
}

#[test]
fn a_deleted_responses_key_is_free_again() {
    test()
        .given(vec![
            created(id(1), PERSONAL, "hello"),
            E::CannedResponseDeleted {
                response_id: id(1),
                scope: PERSONAL,
                by: AGENT,
            },
        ])
        .when(create(id(2), PERSONAL, "hello"))
        .then_expect_events(vec![created(id(2), PERSONAL, "hello")]);
}

#[test]
fn a_response_id_is_used_once() {
    test()
        .given(vec![created(id(1), PERSONAL, "hello")])
        .when(create(id(1), PERSONAL, "bye"))
        .then_expect_error(CannedError::AlreadyCreated);
}

#[test]
fn a_scopes_stream_holds_only_that_scopes_responses() {
    test()
        .given(vec![created(id(1), PERSONAL, "hello")])
        .when(create(id(2), ORGANIZATION, "bye"))
        .then_expect_error(CannedError::OtherScope);
}

#[test]
fn the_same_key_lives_in_two_scopes_because_they_are_two_streams() {
    assert_ne!(canned_scope_id(PERSONAL), canned_scope_id(ORGANIZATION));
    assert_ne!(
        canned_scope_id(PERSONAL),
        canned_scope_id(Scope::Personal { agent_id: id(0x99) })
    );
    assert_eq!(
        canned_scope_id(PERSONAL),
        canned_scope_id(Scope::Personal { agent_id: AGENT })
    );
}

// ---- ChangeCannedResponse ----

#[test]
fn a_change_records_the_key_and_text_after_it() {
    test()
        .given(vec![created(id(1), PERSONAL, "hello")])
        .when(change(id(1), None, Some("Hi there")))
        .then_expect_events(vec![E::CannedResponseChanged {
            response_id: id(1),
            scope: PERSONAL,
            key: key("hello"),
            text: text("Hi there"),
            by: AGENT,
        }]);
}

#[test]
fn a_response_may_change_the_case_of_its_own_key() {
    test()
        .given(vec![created(id(1), PERSONAL, "hello")])
        .when(change(id(1), Some("Hello"), None))
        .then_expect_events(vec![E::CannedResponseChanged {
            response_id: id(1),
            scope: PERSONAL,
            key: key("Hello"),
            text: text("Hello and welcome!"),
            by: AGENT,
        }]);
}

#[test]
fn a_change_cannot_take_another_responses_key() {
    test()
        .given(vec![
            created(id(1), PERSONAL, "hello"),
            created(id(2), PERSONAL, "bye"),
        ])
        .when(change(id(2), Some("HELLO"), None))
        .then_expect_error(CannedError::KeyTaken);
}

#[test]
fn a_change_that_changes_nothing_writes_nothing() {
    test()
        .given(vec![created(id(1), PERSONAL, "hello")])
        .when(change(id(1), Some("hello"), Some("Hello and welcome!")))
        .then_expect_events(vec![]);
    test()
        .given(vec![created(id(1), PERSONAL, "hello")])
        .when(change(id(1), None, None))
        .then_expect_events(vec![]);
}

#[test]
fn an_unknown_response_cannot_change() {
    test()
        .given_no_previous_events()
        .when(change(id(1), None, Some("x")))
        .then_expect_error(CannedError::UnknownResponse);
    test()
        .given(vec![created(id(1), PERSONAL, "hello")])
        .when(change(id(2), None, Some("x")))
        .then_expect_error(CannedError::UnknownResponse);
}

// ---- DeleteCannedResponse ----

#[test]
fn a_response_is_deleted() {
    test()
        .given(vec![created(id(1), ORGANIZATION, "hello")])
        .when(C::DeleteCannedResponse {
            response_id: id(1),
            by: AGENT,
        })
        .then_expect_events(vec![E::CannedResponseDeleted {
            response_id: id(1),
            scope: ORGANIZATION,
            by: AGENT,
        }]);
}

#[test]
fn an_unknown_or_deleted_response_cannot_be_deleted() {
    test()
        .given_no_previous_events()
        .when(C::DeleteCannedResponse {
            response_id: id(1),
            by: AGENT,
        })
        .then_expect_error(CannedError::UnknownResponse);
    test()
        .given(vec![
            created(id(1), PERSONAL, "hello"),
            E::CannedResponseDeleted {
                response_id: id(1),
                scope: PERSONAL,
                by: AGENT,
            },
        ])
        .when(C::DeleteCannedResponse {
            response_id: id(1),
            by: AGENT,
        })
        .then_expect_error(CannedError::UnknownResponse);
}

#[test]
fn a_deleted_response_cannot_change() {
    test()
        .given(vec![
            created(id(1), PERSONAL, "hello"),
            E::CannedResponseDeleted {
                response_id: id(1),
                scope: PERSONAL,
                by: AGENT,
            },
        ])
        .when(change(id(1), None, Some("x")))
        .then_expect_error(CannedError::UnknownResponse);
}
