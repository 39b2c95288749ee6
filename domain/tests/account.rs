//! `Account`: one stream per email, so a second sign-up with the same email is refused.

use cqrs_es::test::TestFramework;
use domain::account::{Account, AccountCommand, AccountError, AccountEvent};
use domain::ids::account_id;
use uuid::Uuid;

/// The deployment's secret of these tests.
const SECRET: Uuid = Uuid::from_u128(0x5ec2e7);
use domain::values::{DisplayName, Email};

fn email(raw: &str) -> Email {
    Email::parse(raw).expect("a valid test value")
}

fn display(raw: &str) -> DisplayName {
    DisplayName::parse(raw).expect("a valid test value")
}

fn create(raw_email: &str) -> AccountCommand {
    let email = email(raw_email);
    AccountCommand::CreateAccount {
        agent_id: account_id(SECRET, &email),
        email,
        name: display("Ann"),
    }
}

fn created(raw_email: &str) -> AccountEvent {
    let email = email(raw_email);
    AccountEvent::AccountCreated {
        agent_id: account_id(SECRET, &email),
        email,
        name: display("Ann"),
    }
}

#[test]
fn a_new_email_creates_an_account() {
    TestFramework::<Account>::with(())
        .given_no_previous_events()
        .when(create("ann@example.com"))
        .then_expect_events(vec![created("ann@example.com")]);
}

#[test]
fn an_email_that_has_an_account_is_taken() {
    TestFramework::<Account>::with(())
        .given(vec![created("ann@example.com")])
        .when(create("ann@example.com"))
        .then_expect_error(AccountError::EmailTaken);
}

#[test]
fn an_email_in_other_case_is_the_same_account() {
    // "ANN@Example.com" parses to the same lower-cased email, so to the same stream.
    TestFramework::<Account>::with(())
        .given(vec![created("ann@example.com")])
        .when(create("ANN@Example.com"))
        .then_expect_error(AccountError::EmailTaken);
}
