//! Email (issue 16, item 3), against a real SMTP server on loopback (aiosmtpd, `tests/smtp/`):
//! invitations arrive with a link that works; with email set up an account must confirm its
//! address before it joins an organization by invitation; a forgotten password is reset by an
//! emailed link that works once and expires, and asking for one answers alike whether the
//! email has an account or not; a customer gets its transcript by email, without notes; a mail
//! server that is away at first gets the message once it is back. On both backends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use jono_tests::api::{self, Agent, Api, PASSWORD};
use jono_tests::smtp::{Received, Smtp};
use jono_tests::{Server, Storage};
use serde_json::json;

/// Where the links in the messages point (`JONO_PUBLIC_URL`): not the test server's own
/// address, which is only known once it listens. The tests follow a link's path there.
const PUBLIC_URL: &str = "https://chat.example.test";
const WAIT: Duration = Duration::from_secs(20);

/// A server that sends email to `smtp`, its rate limits `on` or off.
fn start(storage: &Storage, smtp: &Smtp, limits: bool) -> (Server, Api) {
    let mut env = vec![
        ("JONO_SMTP_URL", smtp.url.as_str()),
        ("JONO_MAIL_FROM", "Jono <jono@example.test>"),
        ("JONO_PUBLIC_URL", PUBLIC_URL),
    ];
    if !limits {
        env.push(("JONO_RATE_LIMITS", "off"));
    }
    api::start_with(storage, &env)
}

/// The one message to `to` (waiting for it), and that it is plain text from the sender.
async fn the_message(smtp: &Smtp, to: &str, count: usize) -> Received {
    let messages = smtp.wait_for(to, count, WAIT).await;
    assert_eq!(messages.len(), count, "messages to {to}: {messages:?}");
    let message = messages.last().unwrap().clone();
    assert_eq!(message.content_type, "text/plain");
    assert!(message.from.contains("jono@example.test"), "{message:?}");
    message
}

/// The token at the end of the message's link to `PUBLIC_URL/{page}/`.
fn token_of(message: &Received, page: &str) -> String {
    let prefix = format!("{PUBLIC_URL}/{page}/");
    let link = message
        .link(&prefix)
        .unwrap_or_else(|| panic!("a link to {prefix} in {}", message.body));
    link[prefix.len()..].to_owned()
}

/// Makes every emailed link of the store expire now, as if its time had passed.
fn expire_links(storage: &Storage) {
    let sql = "UPDATE email_links SET expires_at = 0";
    match storage {
        Storage::Embedded(dir) => {
            let db = rusqlite::Connection::open(dir.path().join("jono.db")).unwrap();
            db.execute(sql, []).unwrap();
        }
        Storage::Postgres(url) => jono_tests::psql(url, sql),
    }
}

async fn sign_up_as(api: &Api, organization: &str) -> Agent {
    api::sign_up(api, organization).await
}

async fn invitations_by_email_and_confirmed_addresses(storage: &Storage) {
    let Some(smtp) = Smtp::start() else { return };
    let (_server, api) = start(storage, &smtp, false);
    let owner = sign_up_as(&api, "Acme").await;
    // A sign-up is asked to confirm its address.
    let welcome = the_message(&smtp, &owner.email, 1).await;
    assert!(welcome.subject.contains("Confirm"), "{welcome:?}");
    let me = api.get("/v1/me", owner.token()).await.expect(200, "me");
    assert_eq!(me.body["email_confirmed"], false);
    assert_eq!(me.body["email_confirmation_required"], true);

    // An invitation arrives by email, its link opens it; the new person's account joins.
    let newcomer = api::fresh_email("newcomer");
    let invited = api
        .post(
            &format!("/v1/orgs/{}/invitations", owner.organization_id),
            owner.token(),
            json!({"email": newcomer, "role": "agent"}),
        )
        .await
        .expect(201, "an invitation");
    assert_eq!(invited.body["emailed"], true);
    let mail = the_message(&smtp, &newcomer, 1).await;
    assert!(mail.subject.contains("Acme"), "{mail:?}");
    let token = token_of(&mail, "invite");
    assert_eq!(token, invited.body["token"].as_str().unwrap());
    assert!(
        !jono_tests::in_the_log(storage, &token),
        "the invitation's token is not in the log"
    );
    let page = reqwest::get(format!("{}/invite/{token}", api.base))
        .await
        .unwrap();
    assert_eq!(page.status(), 200, "the link opens the console");
    let joined = api
        .post(
            &format!("/v1/invitations/{token}/accept"),
            None,
            json!({"name": "Nea Newcomer", "password": PASSWORD}),
        )
        .await
        .expect(201, "accepting by the emailed link");
    assert_eq!(joined.id("organization_id"), owner.organization_id);
    // The account the acceptance made confirms its address like any other.
    let confirm_new = the_message(&smtp, &newcomer, 2).await;
    assert!(confirm_new.subject.contains("Confirm"), "{confirm_new:?}");

    // Someone who signed up with an address and never confirmed it cannot take that
    // address's invitation: the account may not be its person's.
    let early = sign_up_as(&api, "Early bird").await;
    let confirmation = the_message(&smtp, &early.email, 1).await;
    let invite_early = api::invite(&api, &owner, &early.email, "operator").await;
    let members = format!("/v1/orgs/{}/members", owner.organization_id);
    let before = api
        .get(&members, owner.token())
        .await
        .expect(200, "members");
    let refused = api
        .call(
            "POST",
            &format!("/v1/invitations/{invite_early}/accept"),
            early.token(),
            None,
        )
        .await
        .expect_problem(403, "an unconfirmed account accepting");
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("confirm your email address"),
        "{}",
        refused.text
    );
    let after = api
        .get(&members, owner.token())
        .await
        .expect(200, "members");
    assert_eq!(before.body, after.body, "the refusal changed nothing");

    // A wrong link confirms nothing; the emailed one confirms once.
    api.post(
        "/v1/email-confirmation",
        None,
        json!({"token": "not-a-token"}),
    )
    .await
    .expect_problem(404, "a wrong confirmation link");
    let confirm = token_of(&confirmation, "confirm");
    assert!(!jono_tests::in_the_log(storage, &confirm));
    api.post("/v1/email-confirmation", None, json!({"token": confirm}))
        .await
        .expect(204, "confirming the address");
    api.post("/v1/email-confirmation", None, json!({"token": confirm}))
        .await
        .expect_problem(404, "a used confirmation link");
    let me = api.get("/v1/me", early.token()).await.expect(200, "me");
    assert_eq!(me.body["email_confirmed"], true);
    assert_eq!(me.body["email_confirmation_required"], false);
    api.call(
        "POST",
        &format!("/v1/invitations/{invite_early}/accept"),
        early.token(),
        None,
    )
    .await
    .expect(201, "a confirmed account accepting");

    // Asking again sends a new link; the one before stops working.
    let late = sign_up_as(&api, "Late").await;
    let first = the_message(&smtp, &late.email, 1).await;
    api.call("POST", "/v1/me/email-confirmation", late.token(), None)
        .await
        .expect(202, "another confirmation link");
    let second = the_message(&smtp, &late.email, 2).await;
    api.post(
        "/v1/email-confirmation",
        None,
        json!({"token": token_of(&first, "confirm")}),
    )
    .await
    .expect_problem(404, "the replaced link");
    api.post(
        "/v1/email-confirmation",
        None,
        json!({"token": token_of(&second, "confirm")}),
    )
    .await
    .expect(204, "the new link");
    api.call("POST", "/v1/me/email-confirmation", late.token(), None)
        .await
        .expect_problem(409, "asking once confirmed");
}

#[tokio::test]
async fn invitations_arrive_by_email_and_only_confirmed_addresses_accept_them() {
    invitations_by_email_and_confirmed_addresses(&Storage::embedded()).await;
}

#[tokio::test]
async fn invitations_arrive_by_email_and_only_confirmed_addresses_accept_them_on_postgres() {
    if let Some(storage) = Storage::postgres() {
        invitations_by_email_and_confirmed_addresses(&storage).await;
    }
}

async fn password_reset(storage: &Storage) {
    let Some(smtp) = Smtp::start() else { return };
    let (_server, api) = start(storage, &smtp, false);
    let person = sign_up_as(&api, "Forgetful").await;
    the_message(&smtp, &person.email, 1).await; // the address's confirmation
    let other_session = api::login(&api, &person.email, &person.password).await;

    // Known or not, the same answer.
    let unknown = api::fresh_email("nobody");
    let for_unknown = api
        .post(
            "/v1/password-reset/request",
            None,
            json!({"email": unknown}),
        )
        .await
        .expect(202, "a reset for an unknown email");
    let for_known = api
        .post(
            "/v1/password-reset/request",
            None,
            json!({"email": person.email.to_uppercase()}),
        )
        .await
        .expect(202, "a reset for an account");
    assert_eq!(for_unknown.text, for_known.text);
    let mail = the_message(&smtp, &person.email, 2).await;
    assert!(mail.subject.contains("Reset"), "{mail:?}");
    assert!(
        smtp.messages()
            .iter()
            .all(|message| !message.rcpt_tos.contains(&unknown)),
        "nothing goes to an address without an account"
    );
    let token = token_of(&mail, "reset");
    assert!(!jono_tests::in_the_log(storage, &token));

    // A wrong token, and a password the rules refuse, change nothing.
    let new_password = "a brand new password";
    api.post(
        "/v1/password-reset",
        None,
        json!({"token": "wrong", "new_password": new_password}),
    )
    .await
    .expect_problem(404, "a wrong reset link");
    api.post(
        "/v1/password-reset",
        None,
        json!({"token": token, "new_password": "short"}),
    )
    .await
    .expect_problem(422, "a short password");
    api::login(&api, &person.email, &person.password).await;

    // The link sets the password once, and every session ends.
    api.post(
        "/v1/password-reset",
        None,
        json!({"token": token, "new_password": new_password}),
    )
    .await
    .expect(204, "the reset");
    for session in [person.token(), Some(other_session.as_str())] {
        api.get("/v1/me", session)
            .await
            .expect_problem(401, "a session from before the reset");
    }
    api.post(
        "/v1/login",
        None,
        json!({"email": person.email, "password": person.password}),
    )
    .await
    .expect_problem(401, "the old password");
    let token_now = api::login(&api, &person.email, new_password).await;
    api.post(
        "/v1/password-reset",
        None,
        json!({"token": token, "new_password": "yet another password"}),
    )
    .await
    .expect_problem(404, "a used reset link");
    api::login(&api, &person.email, new_password).await;
    // The link came to the address: it is confirmed.
    let me = api.get("/v1/me", Some(&token_now)).await.expect(200, "me");
    assert_eq!(me.body["email_confirmed"], true);

    // An expired link does nothing.
    api.post(
        "/v1/password-reset/request",
        None,
        json!({"email": person.email}),
    )
    .await
    .expect(202, "another reset");
    let mail = the_message(&smtp, &person.email, 3).await;
    expire_links(storage);
    api.post(
        "/v1/password-reset",
        None,
        json!({"token": token_of(&mail, "reset"), "new_password": "an expired attempt"}),
    )
    .await
    .expect_problem(404, "an expired reset link");
    api::login(&api, &person.email, new_password).await;
}

#[tokio::test]
async fn a_password_is_reset_once_by_an_emailed_link() {
    password_reset(&Storage::embedded()).await;
}

#[tokio::test]
async fn a_password_is_reset_once_by_an_emailed_link_on_postgres() {
    if let Some(storage) = Storage::postgres() {
        password_reset(&storage).await;
    }
}

async fn transcript(storage: &Storage) {
    let Some(smtp) = Smtp::start() else { return };
    // Rate limits on: the transcript's own is part of the story.
    let (_server, api) = start(storage, &smtp, true);
    let owner = sign_up_as(&api, "Shop").await;
    let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
    let public = api
        .get(&format!("/v1/queues/{queue}/public"), None)
        .await
        .expect(200, "the widget's view");
    assert_eq!(public.body["transcript_by_email"], true);
    let customer = api::join(
        &api,
        queue,
        json!({"name": "Ville", "vip": "metadata-only"}),
    )
    .await;
    let conversation = api::pick(&api, &owner, queue).await;
    assert_eq!(conversation, customer.conversation_id);
    api::send_message(&api, customer.token(), conversation, "Where is my order?").await;
    api::send_message(&api, owner.token(), conversation, "On its way, tomorrow.").await;
    api.post(
        &format!("/v1/conversations/{conversation}/notes"),
        owner.token(),
        json!({"text": "private: grumpy customer"}),
    )
    .await
    .expect(201, "a note");
    api.post(
        &format!("/v1/conversations/{conversation}/tags"),
        owner.token(),
        json!({"tag": "secret-tag"}),
    )
    .await
    .expect(204, "a tag");
    let path = format!("/v1/conversations/{conversation}/transcript/email");
    let to = api::fresh_email("customer");
    api.post(&path, owner.token(), json!({"email": to}))
        .await
        .expect_problem(403, "an agent");
    let other = api::join(&api, queue, json!({})).await;
    api.post(&path, other.token(), json!({"email": to}))
        .await
        .expect_problem(404, "another customer");
    api.post(&path, customer.token(), json!({"email": "not an address"}))
        .await
        .expect_problem(422, "a malformed address");
    api.post(&path, customer.token(), json!({"email": to}))
        .await
        .expect(202, "the transcript by email");
    let mail = the_message(&smtp, &to, 1).await;
    assert!(mail.subject.contains("Shop"), "{mail:?}");
    for said in ["Where is my order?", "On its way, tomorrow."] {
        assert!(mail.body.contains(said), "{said} in {}", mail.body);
    }
    for private in ["grumpy", "secret-tag", "metadata-only"] {
        assert!(!mail.body.contains(private), "{private} in {}", mail.body);
    }
    // Three an hour per conversation.
    for _ in 0..2 {
        api.post(&path, customer.token(), json!({"email": to}))
            .await
            .expect(202, "again");
    }
    let limited = api
        .post(&path, customer.token(), json!({"email": to}))
        .await
        .expect_problem(429, "a fourth within the hour");
    assert!(limited.header("retry-after").is_some());
}

#[tokio::test]
async fn a_customer_gets_its_transcript_by_email_without_notes() {
    transcript(&Storage::embedded()).await;
}

#[tokio::test]
async fn a_customer_gets_its_transcript_by_email_without_notes_on_postgres() {
    if let Some(storage) = Storage::postgres() {
        transcript(&storage).await;
    }
}

/// Asking for resets is limited per email (and per address), known or not: the sixth within the
/// hour is 429 with `Retry-After`, and nothing more is sent.
#[tokio::test]
async fn asking_for_password_resets_is_limited() {
    let Some(smtp) = Smtp::start() else { return };
    let storage = Storage::embedded();
    let (_server, api) = start(&storage, &smtp, true);
    let person = sign_up_as(&api, "Limited").await;
    for _ in 0..5 {
        api.post(
            "/v1/password-reset/request",
            None,
            json!({"email": person.email}),
        )
        .await
        .expect(202, "a reset");
    }
    let refused = api
        .post(
            "/v1/password-reset/request",
            None,
            json!({"email": person.email}),
        )
        .await
        .expect_problem(429, "the sixth reset within the hour");
    assert!(refused.header("retry-after").is_some());
    // The sign-up's confirmation and five links, no more.
    let all = the_message(&smtp, &person.email, 6).await;
    assert!(all.subject.contains("Reset"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        smtp.wait_for(&person.email, 7, Duration::ZERO).await.len(),
        6
    );
}

/// A reset gives a new password, not a way around the second factor: with two-factor
/// authentication on, the login after a reset still asks for a code.
#[tokio::test]
async fn a_reset_leaves_two_factor_authentication_on() {
    let Some(smtp) = Smtp::start() else { return };
    let storage = Storage::embedded();
    let (_server, api) = start(&storage, &smtp, false);
    let person = sign_up_as(&api, "Careful").await;
    let enrolment = api
        .post("/v1/me/two-factor", person.token(), json!({}))
        .await
        .expect(201, "enrolment");
    let secret = enrolment.body["secret"].as_str().unwrap().to_owned();
    api.post(
        "/v1/me/two-factor/confirm",
        person.token(),
        json!({"code": jono_tests::totp::code_now(&secret)}),
    )
    .await
    .expect(200, "two-factor on");
    api.post(
        "/v1/password-reset/request",
        None,
        json!({"email": person.email}),
    )
    .await
    .expect(202, "a reset");
    let mail = the_message(&smtp, &person.email, 2).await;
    api.post(
        "/v1/password-reset",
        None,
        json!({"token": token_of(&mail, "reset"), "new_password": "the password after"}),
    )
    .await
    .expect(204, "the reset");
    let login = api
        .post(
            "/v1/login",
            None,
            json!({"email": person.email, "password": "the password after"}),
        )
        .await
        .expect(200, "the new password");
    assert_eq!(login.body["two_factor_required"], true, "{}", login.text);
    assert!(login.body.get("token").is_none());
}

/// The mail server hangs, then is away, when the invitation is made: the command is answered at
/// once all the same, and the message is delivered once the server is back (retried with
/// back-off, counted).
#[tokio::test]
async fn a_message_waits_for_a_mail_server_that_is_away() {
    let Some(mut smtp) = Smtp::reserve() else {
        return;
    };
    // A server that takes connections and never says a word: a send that held up its command
    // would hold it for the SMTP time-out (30 s).
    let hole = std::net::TcpListener::bind(("127.0.0.1", smtp.port)).unwrap();
    let storage = Storage::embedded();
    let (server, api) = start(&storage, &smtp, false);
    let owner = sign_up_as(&api, "Patient").await;
    let invitee = api::fresh_email("invitee");
    let started = std::time::Instant::now();
    api::invite(&api, &owner, &invitee, "agent").await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the invitation waited on the mail server"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Away: the connections it held are reset, and for a moment nobody listens.
    drop(hole);
    tokio::time::sleep(Duration::from_secs(1)).await;
    smtp.listen();
    let mail = the_message(&smtp, &invitee, 1).await;
    assert!(mail.body.contains(&format!("{PUBLIC_URL}/invite/")));
    let metrics = server.get("/metrics").1;
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{name} ")))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in /metrics"))
    };
    assert!(value("jono_mail_failures_total") >= 1.0, "{metrics}");
    assert!(value("jono_mail_sent_total") >= 1.0, "{metrics}");
    assert_eq!(value("jono_mail_configured"), 1.0);
    assert_eq!(value("jono_mail_dropped_total"), 0.0);

    // A mailbox the server refuses for good (550) is not tried again: the message is dropped.
    api::invite(&api, &owner, &api::fresh_email("refused-mailbox"), "agent").await;
    let dropped = api::eventually(
        || async { server.get("/metrics").1 },
        |metrics| {
            metrics
                .lines()
                .any(|line| line == "jono_mail_dropped_total 1")
        },
    )
    .await;
    assert!(
        dropped
            .lines()
            .any(|line| line == "jono_mail_dropped_total 1"),
        "{dropped}"
    );
}

/// Without `JONO_SMTP_URL` nothing changes: no confirmation is needed, and what needs email
/// says there is none.
#[tokio::test]
async fn without_email_nothing_needs_confirming() {
    let storage = Storage::embedded();
    let (_server, api) = api::start(&storage);
    let owner = api::sign_up(&api, "Plain").await;
    let other = api::sign_up(&api, "Other").await;
    let queue = api::create_queue(&api, &owner, "Support").await;
    let public = api
        .get(&format!("/v1/queues/{queue}/public"), None)
        .await
        .expect(200, "the widget's view");
    assert_eq!(public.body["transcript_by_email"], false);
    let me = api.get("/v1/me", other.token()).await.expect(200, "me");
    assert_eq!(me.body["email_confirmed"], false);
    assert_eq!(me.body["email_confirmation_required"], false);
    let reply = api
        .post(
            &format!("/v1/orgs/{}/invitations", owner.organization_id),
            owner.token(),
            json!({"email": other.email, "role": "agent"}),
        )
        .await
        .expect(201, "an invitation");
    assert_eq!(reply.body["emailed"], false);
    let token = reply.body["token"].as_str().unwrap();
    api.call(
        "POST",
        &format!("/v1/invitations/{token}/accept"),
        other.token(),
        None,
    )
    .await
    .expect(201, "an unconfirmed account accepts, as before email");
    api.post(
        "/v1/password-reset/request",
        None,
        json!({"email": owner.email}),
    )
    .await
    .expect_problem(409, "a reset without email");
    api.call("POST", "/v1/me/email-confirmation", owner.token(), None)
        .await
        .expect_problem(409, "a confirmation without email");
}

/// A deployment that sets `JONO_SMTP_URL` without the sender or the public URL does not start.
#[test]
fn email_without_its_sender_or_public_url_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().display().to_string();
    for (env, says) in [
        (
            vec![
                ("JONO_SMTP_URL", "smtp://127.0.0.1:25"),
                ("JONO_PUBLIC_URL", PUBLIC_URL),
            ],
            "JONO_MAIL_FROM",
        ),
        (
            vec![
                ("JONO_SMTP_URL", "smtp://127.0.0.1:25"),
                ("JONO_MAIL_FROM", "jono@example.test"),
            ],
            "JONO_PUBLIC_URL",
        ),
        (
            vec![
                ("JONO_SMTP_URL", "gopher://nowhere"),
                ("JONO_MAIL_FROM", "jono@example.test"),
                ("JONO_PUBLIC_URL", PUBLIC_URL),
            ],
            "JONO_SMTP_URL",
        ),
    ] {
        let output = jono_tests::jono(&["serve", "--data", &data, "--listen", "127.0.0.1:0"], &env);
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says), "{says}: {stderr}");
    }
}
