//! The tables beside the log: each concept's typed functions, on both backends.

#![allow(clippy::unwrap_used)] // a test: a failed step is the failure

use chrono::DateTime;
use store::beside_log::migrate;
use store::email_links::{self, Purpose};
use store::invitation_tokens::{self, InvitationToken};
use store::log::Backend;
use store::mail_outbox::{self, NewMail};
use store::sso_secrets::{self, SignIn};
use store::tokens::{self, Device};
use store::{
    blob_table, credentials, identity_secrets, kept_answers, second_factor, server_keys, visitors,
    webhook_deliveries,
};
use uuid::Uuid;

use crate::common::TestDb;
use crate::on_both_backends;

on_both_backends!(
    the_tables_are_created_once_and_kept_on_reopening,
    a_session_is_found_by_its_hash_until_it_is_revoked,
    an_account_is_claimed_once_and_an_abandoned_claim_can_be_taken_again,
    a_kept_answer_wins_until_it_expires_then_is_pruned,
    an_erasure_forgets_the_answers_about_its_conversation,
    a_server_key_is_made_once_and_kept,
    an_invitation_token_opens_its_invitation_and_no_other,
    a_visitor_is_remembered_once_and_forgotten,
    a_second_factor_step_and_code_are_taken_once,
    a_challenge_ends_once_and_after_its_failures,
    a_sign_in_is_taken_once,
    an_email_link_is_taken_once_and_replaced_by_a_new_one,
    a_mail_is_claimed_once_retried_and_forgotten,
    a_webhook_delivery_is_owed_once_parked_and_redelivered,
    an_identity_secret_is_replaced_and_removed,
    attachment_bytes_are_kept_read_and_deleted,
);

async fn opened(db: &TestDb) -> store::EventStore {
    let store = db.open().await;
    migrate(store.backend()).await.expect("migrate");
    store
}

async fn the_tables_are_created_once_and_kept_on_reopening(db: TestDb) {
    let store = opened(&db).await;
    let agent = Uuid::new_v4();
    credentials::set_password_hash(store.backend(), agent, "hash")
        .await
        .unwrap();
    let key = server_keys::key_or_keep(store.backend(), "k", [7; 32])
        .await
        .unwrap();
    drop(store);
    let store = opened(&db).await;
    assert_eq!(
        credentials::password_hash(store.backend(), agent)
            .await
            .unwrap()
            .as_deref(),
        Some("hash")
    );
    let again = server_keys::key_or_keep(store.backend(), "k", [8; 32])
        .await
        .unwrap();
    assert_eq!(again, key);
}

async fn a_session_is_found_by_its_hash_until_it_is_revoked(db: TestDb) {
    let store = opened(&db).await;
    let backend = store.backend();
    let agent = Uuid::new_v4();
    let device = Device {
        user_agent: Some("browser".into()),
        address: Some("192.0.2.1".into()),
    };
    tokens::insert_agent_token(backend, "h1", agent, &device, Some(500), 100)
        .await
        .unwrap();
    tokens::insert_agent_token(backend, "h2", agent, &Device::default(), None, 100)
        .await
        .unwrap();
    tokens::touch_agent_token(backend, "h2", 200).await.unwrap();
    let found = tokens::agent_token(backend, "h1").await.unwrap().unwrap();
    assert_eq!((found.agent_id, found.last_used_at), (agent, 100));
    assert_eq!(found.ends_at, Some(500));
    let sessions = tokens::sessions_of(backend, agent, 0, 300).await.unwrap();
    let hashes: Vec<&str> = sessions.iter().map(|s| s.token_hash.as_str()).collect();
    assert_eq!(hashes, ["h2", "h1"], "the latest used first");
    assert_eq!(sessions[1].device, device);
    // Ended, or used before the horizon: not listed.
    assert_eq!(
        tokens::sessions_of(backend, agent, 0, 500)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        tokens::sessions_of(backend, agent, 150, 300)
            .await
            .unwrap()
            .len(),
        1
    );
    tokens::revoke_agent_tokens(backend, agent, Some("h2"))
        .await
        .unwrap();
    assert_eq!(tokens::agent_token(backend, "h1").await.unwrap(), None);
    tokens::revoke_agent_token(backend, "h2").await.unwrap();
    assert_eq!(tokens::agent_token(backend, "h2").await.unwrap(), None);

    let conversation = Uuid::new_v4();
    tokens::insert_customer_token(backend, "c1", conversation, 100)
        .await
        .unwrap();
    assert_eq!(
        tokens::customer_token(backend, "c1").await.unwrap(),
        Some(conversation)
    );
    assert_eq!(
        tokens::revoke_customer_tokens(backend, conversation)
            .await
            .unwrap(),
        ["c1"]
    );
    assert_eq!(tokens::customer_token(backend, "c1").await.unwrap(), None);
}

async fn an_account_is_claimed_once_and_an_abandoned_claim_can_be_taken_again(db: TestDb) {
    let store = opened(&db).await;
    let backend = store.backend();
    let agent = Uuid::new_v4();
    assert!(credentials::claim_account(backend, agent, 1000, 400)
        .await
        .unwrap());
    assert!(!credentials::claim_account(backend, agent, 1001, 401)
        .await
        .unwrap());
    // Given back before anything was written, it can be claimed again.
    credentials::release_claim(backend, agent).await.unwrap();
    assert!(credentials::claim_account(backend, agent, 1002, 402)
        .await
        .unwrap());
    assert!(credentials::insert_password_hash(backend, agent, "first")
        .await
        .unwrap());
    assert!(!credentials::insert_password_hash(backend, agent, "second")
        .await
        .unwrap());
    assert_eq!(
        credentials::password_hash(backend, agent)
            .await
            .unwrap()
            .as_deref(),
        Some("first")
    );
    // Once the account has its password the claim is never given back nor taken again,
    // however old it grows.
    credentials::release_claim(backend, agent).await.unwrap();
    assert!(!credentials::claim_account(backend, agent, 9000, 8000)
        .await
        .unwrap());
    // An abandoned claim (old, no password) can be taken again, once.
    let abandoned = Uuid::new_v4();
    assert!(credentials::claim_account(backend, abandoned, 1000, 400)
        .await
        .unwrap());
    assert!(credentials::claim_account(backend, abandoned, 9000, 8000)
        .await
        .unwrap());
    assert!(!credentials::claim_account(backend, abandoned, 9001, 8001)
        .await
        .unwrap());
    credentials::set_password_hash(backend, abandoned, "set")
        .await
        .unwrap();
    assert_eq!(
        credentials::password_hash(backend, abandoned)
            .await
            .unwrap()
            .as_deref(),
        Some("set")
    );
}

async fn a_kept_answer_wins_until_it_expires_then_is_pruned(db: TestDb) {
    let store = opened(&db).await;
    let backend = store.backend();
    kept_answers::keep(backend, "k", "h", 201, "sealed:first", 1000, 0)
        .await
        .unwrap();
    kept_answers::keep(backend, "k", "h2", 201, "sealed:second", 1001, 1)
        .await
        .unwrap();
    let found = kept_answers::find(backend, "k", 1000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            found.request_hash.as_str(),
            found.status,
            found.body.as_str()
        ),
        ("h", 201, "sealed:first")
    );
    assert_eq!(kept_answers::find(backend, "k", 1001).await.unwrap(), None);
    // Expired, it is replaced by the next one kept.
    kept_answers::keep(backend, "k", "h3", 200, "sealed:third", 2000, 1001)
        .await
        .unwrap();
    let found = kept_answers::find(backend, "k", 2000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found.request_hash.as_str(), found.status), ("h3", 200));
    assert_eq!(kept_answers::prune(backend, 2000).await.unwrap(), 0);
    assert_eq!(kept_answers::prune(backend, 2001).await.unwrap(), 1);
    assert_eq!(kept_answers::find(backend, "k", 0).await.unwrap(), None);
}

async fn an_erasure_forgets_the_answers_about_its_conversation(db: TestDb) {
    let store = opened(&db).await;
    let backend = store.backend();
    let (conversation, other) = (Uuid::new_v4(), Uuid::new_v4());
    for (key, about) in [("a", conversation), ("b", conversation), ("c", other)] {
        kept_answers::keep(backend, key, "h", 200, "sealed:x", 1000, 0)
            .await
            .unwrap();
        kept_answers::keep_subject(backend, key, about)
            .await
            .unwrap();
    }
    assert_eq!(
        kept_answers::forget_of(backend, conversation)
            .await
            .unwrap(),
        2
    );
    assert_eq!(kept_answers::find(backend, "a", 0).await.unwrap(), None);
    assert!(kept_answers::find(backend, "c", 0).await.unwrap().is_some());
    // An answer kept before sealing is forgotten when the tables are migrated again.
    kept_answers::keep(backend, "plain", "h", 200, "{\"token\":1}", 1000, 0)
        .await
        .unwrap();
    migrate(backend).await.unwrap();
    assert_eq!(kept_answers::find(backend, "plain", 0).await.unwrap(), None);
    assert!(kept_answers::find(backend, "c", 0).await.unwrap().is_some());
}

async fn a_server_key_is_made_once_and_kept(db: TestDb) {
    let store = opened(&db).await;
    let backend = store.backend();
    let first = server_keys::key_or_keep(backend, "url_signing", [1; 32])
        .await
        .unwrap();
    assert_eq!(first, [1; 32]);
    let again = server_keys::key_or_keep(backend, "url_signing", [2; 32])
        .await
        .unwrap();
    assert_eq!(again, [1; 32], "the first one kept wins");
    let other = server_keys::key_or_keep(backend, "account_ids", [3; 32])
        .await
        .unwrap();
    assert_eq!(other, [3; 32], "a key of its own");
}

async fn an_invitation_token_opens_its_invitation_and_no_other(db: TestDb) {
    let store = opened(&db).await;
    let backend = store.backend();
    let invitation = InvitationToken {
        invitation_id: Uuid::new_v4(),
        organization_id: Uuid::new_v4(),
        expires_at: DateTime::from_timestamp(2_000_000_000, 0).unwrap(),
    };
    invitation_tokens::insert(backend, "hash", &invitation)
        .await
        .unwrap();
    assert_eq!(
        invitation_tokens::find(backend, "hash").await.unwrap(),
        Some(invitation.clone())
    );
    assert_eq!(
        invitation_tokens::find(backend, "other").await.unwrap(),
        None
    );
    invitation_tokens::delete_of(backend, invitation.invitation_id)
        .await
        .unwrap();
    assert_eq!(
        invitation_tokens::find(backend, "hash").await.unwrap(),
        None
    );
}

async fn a_visitor_is_remembered_once_and_forgotten(db: TestDb) {
    let store = opened(&db).await;
    let backend = store.backend();
    let conversation = Uuid::new_v4();
    visitors::remember(backend, conversation, "first")
        .await
        .unwrap();
    visitors::remember(backend, conversation, "second")
        .await
        .unwrap();
    assert_eq!(
        visitors::visitor_of(backend, conversation)
            .await
            .unwrap()
            .as_deref(),
        Some("first")
    );
    visitors::forget(backend, conversation).await.unwrap();
    assert_eq!(
        visitors::visitor_of(backend, conversation).await.unwrap(),
        None
    );
}

async fn a_second_factor_step_and_code_are_taken_once(db: TestDb) {
    let store = opened(&db).await;
    let backend = store.backend();
    let (agent, other) = (Uuid::new_v4(), Uuid::new_v4());
    assert!(second_factor::begin(backend, agent, "FIRST", 1)
        .await
        .unwrap());
    assert!(second_factor::begin(backend, agent, "SECOND", 2)
        .await
        .unwrap());
    let pending = second_factor::enrolment(backend, agent)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (pending.secret.as_str(), pending.confirmed),
        ("SECOND", false)
    );
    // A confirmation takes a step of an unconfirmed enrolment only.
    assert!(!second_factor::take_step(backend, agent, 10, false)
        .await
        .unwrap());
    assert!(second_factor::take_step(backend, agent, 10, true)
        .await
        .unwrap());
    assert!(!second_factor::begin(backend, agent, "THIRD", 3)
        .await
        .unwrap());
    assert!(!second_factor::take_step(backend, agent, 10, false)
        .await
        .unwrap());
    assert!(second_factor::take_step(backend, agent, 11, false)
        .await
        .unwrap());
    let confirmed = second_factor::enrolment(backend, agent)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            confirmed.secret.as_str(),
            confirmed.confirmed,
            confirmed.last_step
        ),
        ("SECOND", true, Some(11))
    );

    let hashes: Vec<String> = (0..3).map(|i| format!("code{i}")).collect();
    second_factor::replace_recovery_codes(backend, agent, &hashes)
        .await
        .unwrap();
    assert_eq!(
        second_factor::recovery_codes_left(backend, agent)
            .await
            .unwrap(),
        3
    );
    assert!(!second_factor::use_recovery_code(backend, other, "code0")
        .await
        .unwrap());
    assert!(second_factor::use_recovery_code(backend, agent, "code0")
        .await
        .unwrap());
    assert!(!second_factor::use_recovery_code(backend, agent, "code0")
        .await
        .unwrap());
    assert_eq!(
        second_factor::recovery_codes_left(backend, agent)
            .await
            .unwrap(),
        2
    );
    second_factor::replace_recovery_codes(backend, agent, &["new".to_owned()])
        .await
        .unwrap();
    assert!(!second_factor::use_recovery_code(backend, agent, "code1")
        .await
        .unwrap());
    second_factor::remove(backend, agent).await.unwrap();
    assert_eq!(
        second_factor::enrolment(backend, agent).await.unwrap(),
        None
    );
    assert_eq!(
        second_factor::recovery_codes_left(backend, agent)
            .await
            .unwrap(),
        0
    );
}

async fn a_challenge_ends_once_and_after_its_failures(db: TestDb) {
    let store = opened(&db).await;
    let backend = store.backend();
    let agent = Uuid::new_v4();
    second_factor::insert_challenge(backend, "c1", agent, 100, 400)
        .await
        .unwrap();
    assert_eq!(
        second_factor::challenge(backend, "c1", 400, 2)
            .await
            .unwrap(),
        Some(agent)
    );
    assert_eq!(
        second_factor::challenge(backend, "c1", 401, 2)
            .await
            .unwrap(),
        None
    );
    second_factor::challenge_failed(backend, "c1")
        .await
        .unwrap();
    second_factor::challenge_failed(backend, "c1")
        .await
        .unwrap();
    assert_eq!(
        second_factor::challenge(backend, "c1", 200, 2)
            .await
            .unwrap(),
        None
    );
    // A new challenge forgets those expired.
    second_factor::insert_challenge(backend, "c2", agent, 500, 800)
        .await
        .unwrap();
    assert!(!second_factor::end_challenge(backend, "c1").await.unwrap());
    assert!(second_factor::end_challenge(backend, "c2").await.unwrap());
    assert!(!second_factor::end_challenge(backend, "c2").await.unwrap());
}

async fn a_sign_in_is_taken_once(db: TestDb) {
    let store = opened(&db).await;
    let backend = store.backend();
    let organization = Uuid::new_v4();
    sso_secrets::set_client_secret(backend, organization, "one")
        .await
        .unwrap();
    sso_secrets::set_client_secret(backend, organization, "two")
        .await
        .unwrap();
    assert_eq!(
        sso_secrets::client_secret(backend, organization)
            .await
            .unwrap()
            .as_deref(),
        Some("two")
    );
    let sign_in = SignIn {
        organization_id: organization,
        nonce: "n".into(),
        verifier: "v".into(),
        redirect_uri: "https://jono.test/back".into(),
    };
    sso_secrets::begin(backend, "s1", &sign_in, 100, 700)
        .await
        .unwrap();
    assert_eq!(
        sso_secrets::take(backend, "s1").await.unwrap(),
        Some((sign_in.clone(), 700))
    );
    assert_eq!(sso_secrets::take(backend, "s1").await.unwrap(), None);
    // A new sign-in forgets those expired.
    sso_secrets::begin(backend, "s2", &sign_in, 100, 700)
        .await
        .unwrap();
    sso_secrets::begin(backend, "s3", &sign_in, 701, 1300)
        .await
        .unwrap();
    assert_eq!(sso_secrets::take(backend, "s2").await.unwrap(), None);
}

async fn an_email_link_is_taken_once_and_replaced_by_a_new_one(db: TestDb) {
    let store = opened(&db).await;
    let backend = store.backend();
    let agent = Uuid::new_v4();
    let reset = Purpose::ResetPassword;
    email_links::issue(backend, "l1", reset, agent, 100, 160)
        .await
        .unwrap();
    assert_eq!(
        email_links::peek(backend, "l1", Purpose::ConfirmAddress, 100)
            .await
            .unwrap(),
        None,
        "a reset's link confirms nothing"
    );
    assert_eq!(
        email_links::peek(backend, "l1", reset, 159).await.unwrap(),
        Some(agent)
    );
    assert_eq!(
        email_links::peek(backend, "l1", reset, 160).await.unwrap(),
        None
    );
    email_links::issue(backend, "l2", reset, agent, 100, 160)
        .await
        .unwrap();
    assert_eq!(email_links::take(backend, "l1", reset).await.unwrap(), None);
    assert_eq!(
        email_links::take(backend, "l2", reset).await.unwrap(),
        Some((agent, 160))
    );
    assert_eq!(email_links::take(backend, "l2", reset).await.unwrap(), None);
}

async fn a_mail_is_claimed_once_retried_and_forgotten(db: TestDb) {
    let store = opened(&db).await;
    let backend = store.backend();
    let mail = NewMail {
        mail_id: "m1",
        kind: "password_reset",
        recipient: "a@example.com",
        subject: "Reset",
        body: "https://jono.test/reset/secret",
        created_at: 1000,
        deliver_before: 2800,
    };
    mail_outbox::queue(backend, &mail).await.unwrap();
    let (first, dropped) = mail_outbox::claim(backend, 1000, 10, 1120).await.unwrap();
    assert_eq!((first.len(), dropped), (1, 0));
    assert_eq!((first[0].attempts, first[0].body.as_str()), (1, mail.body));
    // Claimed: nobody else gets it meanwhile.
    assert!(mail_outbox::claim(backend, 1000, 10, 1120)
        .await
        .unwrap()
        .0
        .is_empty());
    assert_eq!(mail_outbox::next_due(backend).await.unwrap(), Some(1120));
    mail_outbox::retry(backend, "m1", 1005).await.unwrap();
    assert!(mail_outbox::claim(backend, 1004, 10, 1124)
        .await
        .unwrap()
        .0
        .is_empty());
    assert_eq!(mail_outbox::next_due(backend).await.unwrap(), Some(1005));
    let (again, _) = mail_outbox::claim(backend, 1005, 10, 1125).await.unwrap();
    assert_eq!(again[0].attempts, 2);
    mail_outbox::delivered(backend, "m1").await.unwrap();
    assert_eq!(mail_outbox::next_due(backend).await.unwrap(), None);
    // A message past its `deliver_before` is dropped, not claimed.
    mail_outbox::queue(
        backend,
        &NewMail {
            mail_id: "m2",
            ..mail
        },
    )
    .await
    .unwrap();
    let (late, dropped) = mail_outbox::claim(backend, 2800, 10, 2920).await.unwrap();
    assert_eq!((late.len(), dropped), (0, 1));
}

async fn a_webhook_delivery_is_owed_once_parked_and_redelivered(db: TestDb) {
    let store = opened(&db).await;
    let backend = store.backend();
    let (endpoint, organization) = (Uuid::new_v4(), Uuid::new_v4());
    let (e, o) = (endpoint.to_string(), organization.to_string());
    let types = vec!["ConversationStarted".to_owned()];
    webhook_deliveries::add_endpoint(backend, endpoint, organization, "https://a.test", &types)
        .await
        .unwrap();
    let endpoints = webhook_deliveries::endpoints_of(backend, &o).await.unwrap();
    assert_eq!(endpoints.len(), 1);
    assert_eq!(endpoints[0].event_types, types);
    assert_eq!(
        webhook_deliveries::endpoint_url(backend, &e)
            .await
            .unwrap()
            .as_deref(),
        Some("https://a.test")
    );
    webhook_deliveries::note_private_conversation(backend, "c")
        .await
        .unwrap();
    webhook_deliveries::note_private_conversation(backend, "c")
        .await
        .unwrap();
    assert!(webhook_deliveries::is_private_conversation(backend, "c")
        .await
        .unwrap());
    assert!(!webhook_deliveries::is_private_conversation(backend, "d")
        .await
        .unwrap());

    for position in [5, 7, 5] {
        webhook_deliveries::owe(backend, &e, position, &o, "ConversationStarted", 100)
            .await
            .unwrap();
    }
    let heads = webhook_deliveries::heads(backend).await.unwrap();
    assert_eq!(heads.len(), 1);
    assert_eq!((heads[0].position, heads[0].attempts), (5, 0));
    webhook_deliveries::failed(backend, &e, 5, 100, 200, Some(150), "refused")
        .await
        .unwrap();
    let parked = webhook_deliveries::parked(backend, organization)
        .await
        .unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].last_error.as_deref(), Some("refused"));
    assert_eq!((parked[0].attempts, parked[0].parked_at), (1, Some(150)));
    assert!(
        webhook_deliveries::redeliver(backend, organization, endpoint, 5, 300)
            .await
            .unwrap()
    );
    assert!(
        !webhook_deliveries::redeliver(backend, organization, endpoint, 5, 300)
            .await
            .unwrap()
    );
    let row = webhook_deliveries::delivery(backend, &e, 5)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (row.attempts, row.next_attempt_at, row.parked_at),
        (0, 300, None)
    );
    assert_eq!(
        webhook_deliveries::owed_positions(backend, organization)
            .await
            .unwrap(),
        [5, 7]
    );
    webhook_deliveries::delivered(backend, &e, 5).await.unwrap();
    webhook_deliveries::forget_position(backend, organization, 7)
        .await
        .unwrap();
    assert!(webhook_deliveries::heads(backend).await.unwrap().is_empty());
    webhook_deliveries::owe(backend, &e, 9, &o, "ConversationStarted", 100)
        .await
        .unwrap();
    webhook_deliveries::remove_endpoint(backend, endpoint)
        .await
        .unwrap();
    assert!(webhook_deliveries::heads(backend).await.unwrap().is_empty());
    assert!(webhook_deliveries::endpoints_of(backend, &o)
        .await
        .unwrap()
        .is_empty());
}

async fn an_identity_secret_is_replaced_and_removed(db: TestDb) {
    let store = opened(&db).await;
    let backend = store.backend();
    let queue = Uuid::new_v4();
    assert_eq!(identity_secrets::get(backend, queue).await.unwrap(), None);
    for text in ["first", "second"] {
        let secret = identity_secrets::Secret {
            secret: text.into(),
            created_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        };
        identity_secrets::set(backend, queue, &secret)
            .await
            .unwrap();
        assert_eq!(
            identity_secrets::get(backend, queue).await.unwrap(),
            Some(secret)
        );
    }
    assert!(identity_secrets::remove(backend, queue).await.unwrap());
    assert!(!identity_secrets::remove(backend, queue).await.unwrap());
}

async fn attachment_bytes_are_kept_read_and_deleted(db: TestDb) {
    let store = opened(&db).await;
    let backend: &Backend = store.backend();
    let id = Uuid::new_v4();
    let bytes: Vec<u8> = (0..=255).collect();
    blob_table::put(backend, id, &bytes).await.unwrap();
    assert_eq!(blob_table::get(backend, id).await.unwrap(), Some(bytes));
    blob_table::delete(backend, id).await.unwrap();
    blob_table::delete(backend, id).await.unwrap();
    assert_eq!(blob_table::get(backend, id).await.unwrap(), None);
}
