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
        email_confirmed: false,
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

#[test]
fn an_address_is_confirmed_once() {
    let agent_id = account_id(SECRET, &email("ann@example.com"));
    let confirmed = AccountEvent::EmailConfirmed { agent_id };
    TestFramework::<Account>::with(())
        .given(vec![created("ann@example.com")])
        .when(AccountCommand::ConfirmEmail { agent_id })
        .then_expect_events(vec![confirmed.clone()]);
    TestFramework::<Account>::with(())
        .given(vec![created("ann@example.com"), confirmed])
        .when(AccountCommand::ConfirmEmail { agent_id })
        .then_expect_error(AccountError::EmailConfirmedAlready);
}

#[test]
fn no_account_has_nothing_to_confirm() {
    TestFramework::<Account>::with(())
        .given_no_previous_events()
        .when(AccountCommand::ConfirmEmail {
            agent_id: Uuid::from_u128(7),
        })
        .then_expect_error(AccountError::UnknownAccount);
}

#[test]
fn an_account_a_provider_vouched_for_is_created_confirmed() {
    let agent_id = account_id(SECRET, &email("ann@example.com"));
    let AccountCommand::CreateAccount {
        agent_id: id,
        email: address,
        name,
        ..
    } = create("ann@example.com")
    else {
        unreachable!("create makes a CreateAccount")
    };
    TestFramework::<Account>::with(())
        .given_no_previous_events()
        .when(AccountCommand::CreateAccount {
            agent_id: id,
            email: address,
            name,
            email_confirmed: true,
        })
        .then_expect_events(vec![
            created("ann@example.com"),
            AccountEvent::EmailConfirmed { agent_id },
        ]);
}
