//! Two-factor authentication from the outside: enrolment (a QR code of the `otpauth://` URI),
//! confirmation by a first code, a login's second step with a code or a one-time recovery
//! code, codes and challenges taken once, turning it off; the limits on code attempts; an
//! organization whose owner requires it refuses members without it, saying what to do. Codes
//! are computed by the tests' own TOTP (`jono_tests::totp`), on both backends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use jono_tests::api::{self, Agent, Api};
use jono_tests::totp;
use jono_tests::Storage;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

fn storages() -> Vec<Storage> {
    let mut storages = vec![Storage::embedded()];
    storages.extend(Storage::postgres());
    storages
}

/// Enrols `agent` and confirms with the current code: the secret and the recovery codes.
async fn turn_on(api: &Api, agent: &Agent) -> (String, Vec<String>) {
    let enrolment = api
        .post("/v1/me/two-factor", agent.token(), json!({}))
        .await
        .expect(201, "enrolment");
    let secret = enrolment.body["secret"].as_str().unwrap().to_owned();
    let codes = api
        .post(
            "/v1/me/two-factor/confirm",
            agent.token(),
            json!({"code": totp::code_now(&secret)}),
        )
        .await
        .expect(200, "confirmation");
    let recovery = codes.body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|code| code.as_str().unwrap().to_owned())
        .collect();
    (secret, recovery)
}

async fn first_step(api: &Api, agent: &Agent) -> String {
    let reply = api
        .post(
            "/v1/login",
            None,
            json!({"email": agent.email, "password": agent.password}),
        )
        .await
        .expect(200, "a login's first step");
    assert_eq!(reply.body["two_factor_required"], true, "{}", reply.text);
    assert!(
        reply.body.get("token").is_none(),
        "no token before the code"
    );
    reply.body["challenge"].as_str().unwrap().to_owned()
}

async fn second_step(api: &Api, challenge: &str, proof: Value) -> api::Reply {
    let mut body = proof;
    body["challenge"] = json!(challenge);
    api.post("/v1/login/two-factor", None, body).await
}

#[tokio::test]
async fn enrolment_then_every_login_asks_for_a_code_taken_once() {
    for storage in storages() {
        let (_server, api) = api::start(&storage);
        let owner = api::sign_up(&api, "Second Factor").await;
        let enrolment = api
            .post("/v1/me/two-factor", owner.token(), json!({}))
            .await
            .expect(201, "enrolment");
        let secret = enrolment.body["secret"].as_str().unwrap().to_owned();
        let uri = enrolment.body["otpauth_uri"].as_str().unwrap();
        assert!(uri.starts_with("otpauth://totp/Jono:"), "{uri}");
        assert!(uri.contains(&format!("secret={secret}")), "{uri}");
        assert!(enrolment.body["qr_svg"].as_str().unwrap().contains("<svg"));
        // Not on until confirmed: a login still gives a token at once.
        api::login(&api, &owner.email, &owner.password).await;
        let me = api.get("/v1/me", owner.token()).await.expect(200, "me");
        assert_eq!(me.body["two_factor"], false);
        // A wrong code does not confirm.
        let wrong = format!(
            "{:06}",
            (totp::code_now(&secret).parse::<u32>().unwrap() + 1) % 1_000_000
        );
        api.post(
            "/v1/me/two-factor/confirm",
            owner.token(),
            json!({"code": wrong}),
        )
        .await
        .expect_problem(403, "a wrong code");
        let step = totp::step_now();
        let code = totp::code_at_step(&totp::decode_base32(&secret), step);
        let confirmed = api
            .post(
                "/v1/me/two-factor/confirm",
                owner.token(),
                json!({"code": code}),
            )
            .await
            .expect(200, "confirmation");
        let recovery: Vec<String> = confirmed.body["recovery_codes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|code| code.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(recovery.len(), 10);
        let me = api.get("/v1/me", owner.token()).await.expect(200, "me");
        assert_eq!(me.body["two_factor"], true);
        api.post("/v1/me/two-factor", owner.token(), json!({}))
            .await
            .expect_problem(409, "enrolling again while on");

        // The password alone gives a challenge; the code taken at confirmation is refused.
        let challenge = first_step(&api, &owner).await;
        second_step(&api, &challenge, json!({"code": code}))
            .await
            .expect_problem(401, "a code already taken");
        // The next step's code (the server takes one step either side) opens a session.
        let next = totp::code_at_step(&totp::decode_base32(&secret), step + 1);
        let signed_in = second_step(&api, &challenge, json!({"code": next}))
            .await
            .expect(200, "the second step");
        let token = signed_in.body["token"].as_str().unwrap().to_owned();
        assert_eq!(signed_in.body["recovery_codes_left"], 10);
        api.get("/v1/me", Some(&token))
            .await
            .expect(200, "the new session");
        // The challenge is spent, and the code too.
        second_step(&api, &challenge, json!({"code": next}))
            .await
            .expect_problem(401, "a challenge answered twice");
        let challenge = first_step(&api, &owner).await;
        second_step(&api, &challenge, json!({"code": next}))
            .await
            .expect_problem(401, "a code used twice");

        // A recovery code, typed any which way, works once. The step takes no Idempotency-Key
        // (it has no token to scope one to): one sent is not a reason to refuse it.
        let typed = recovery[0].to_uppercase();
        let body = json!({"challenge": challenge, "recovery_code": typed}).to_string();
        let signed_in = api
            .raw(
                "POST",
                "/v1/login/two-factor",
                None,
                Some(body.into_bytes()),
                &[
                    ("content-type", "application/json"),
                    ("idempotency-key", "k-1"),
                ],
            )
            .await
            .expect(200, "a recovery code");
        assert_eq!(signed_in.body["recovery_codes_left"], 9);
        let challenge = first_step(&api, &owner).await;
        second_step(&api, &challenge, json!({"recovery_code": recovery[0]}))
            .await
            .expect_problem(401, "a recovery code used twice");
        second_step(&api, "not-a-challenge", json!({"code": "123456"}))
            .await
            .expect_problem(401, "an unknown challenge");

        // Off with a recovery code: a login gives a token at once again.
        api.post(
            "/v1/me/two-factor/disable",
            owner.token(),
            json!({"recovery_code": "wrong-codes"}),
        )
        .await
        .expect_problem(403, "a wrong recovery code");
        api.post(
            "/v1/me/two-factor/disable",
            owner.token(),
            json!({"recovery_code": recovery[1]}),
        )
        .await
        .expect(204, "turned off");
        api::login(&api, &owner.email, &owner.password).await;
    }
}

#[tokio::test]
async fn a_challenge_takes_five_wrong_codes_and_attempts_are_rate_limited() {
    let storage = Storage::embedded();
    {
        let (_server, api) = api::start(&storage);
        let owner = api::sign_up(&api, "Wrong Codes").await;
        let (secret, _) = turn_on(&api, &owner).await;
        let challenge = first_step(&api, &owner).await;
        for _ in 0..5 {
            second_step(&api, &challenge, json!({"code": "000000x"}))
                .await
                .expect_problem(401, "a wrong code");
        }
        let next = totp::code_at_step(&totp::decode_base32(&secret), totp::step_now() + 1);
        let refused = second_step(&api, &challenge, json!({"code": next}))
            .await
            .expect_problem(401, "a challenge out of tries");
        assert!(
            refused.body["detail"]
                .as_str()
                .unwrap()
                .contains("sign in again"),
            "{}",
            refused.text
        );
    }
    // With the deployment's limits on: 5 attempts a minute per account.
    let (_server, api) = api::start_with(&storage, &[]);
    let owner = api::sign_up(&api, "Limited Codes").await;
    api.post("/v1/me/two-factor", owner.token(), json!({}))
        .await
        .expect(201, "enrolment");
    for _ in 0..5 {
        api.post(
            "/v1/me/two-factor/confirm",
            owner.token(),
            json!({"code": "abcdef"}),
        )
        .await
        .expect_problem(403, "a wrong code");
    }
    let limited = api
        .post(
            "/v1/me/two-factor/confirm",
            owner.token(),
            json!({"code": "abcdef"}),
        )
        .await
        .expect_problem(429, "the sixth attempt");
    assert!(limited.header("retry-after").is_some());
}

#[tokio::test]
async fn an_organization_that_requires_a_second_factor_refuses_members_without_one() {
    for storage in storages() {
        let (_server, api) = api::start(&storage);
        let owner = api::sign_up(&api, "Strict").await;
        let member = api::invite_and_accept(&api, &owner, "agent", "Mia Member").await;
        let security = format!("/v1/orgs/{}/security", owner.organization_id);
        let queues = format!("/v1/orgs/{}/queues", owner.organization_id);
        let on = json!({"require_two_factor": true});
        // An owner without one would lock itself out.
        api.put(&security, owner.token(), on.clone())
            .await
            .expect_problem(409, "an owner without a second factor");
        turn_on(&api, &owner).await;
        api.put(&security, member.token(), on.clone())
            .await
            .expect_problem(403, "an agent sets the rule");
        let set = api
            .put(&security, owner.token(), on.clone())
            .await
            .expect(200, "required");
        assert_eq!(set.body["require_two_factor"], true);
        let read = api
            .get(&security, owner.token())
            .await
            .expect(200, "the rule");
        assert_eq!(read.body["require_two_factor"], true);

        let refused = api
            .get(&queues, member.token())
            .await
            .expect_problem(403, "a member without a second factor");
        let detail = refused.body["detail"].as_str().unwrap();
        assert!(
            detail.contains("two-factor") && detail.contains("/v1/me/two-factor"),
            "{detail}"
        );
        // The account itself stays open, so that it can enrol.
        api.get("/v1/me", member.token()).await.expect(200, "me");
        api.get(&queues, owner.token())
            .await
            .expect(200, "the owner has one");
        turn_on(&api, &member).await;
        api.get(&queues, member.token())
            .await
            .expect(200, "enrolled");

        // Lifted: a member who turns it off acts again.
        api.put(
            &security,
            owner.token(),
            json!({"require_two_factor": false}),
        )
        .await
        .expect(200, "no longer required");
        let other = api::invite_and_accept(&api, &owner, "agent", "Otto Other").await;
        api.get(&queues, other.token())
            .await
            .expect(200, "not required");
    }
}

/// The next JSON frame of a socket (a hang guard of 20 seconds, not a timing assertion).
async fn next_frame<S>(socket: &mut S) -> Value
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(20), socket.next())
            .await
            .expect("a frame in time")
            .expect("the socket is open")
            .expect("a frame");
        if let Message::Text(text) = frame {
            return serde_json::from_str(text.as_str()).unwrap();
        }
    }
}

#[tokio::test]
async fn requiring_a_second_factor_ends_the_live_topics_of_members_without_one() {
    let storage = Storage::embedded();
    let (_server, api) = api::start(&storage);
    let owner = api::sign_up(&api, "Strict Live").await;
    let queue = api::create_queue(&api, &owner, "Support").await;
    let member = api::invite_and_accept(&api, &owner, "agent", "Lia Live").await;
    let url = format!(
        "{}/v1/ws?token={}",
        api.base.replace("http://", "ws://"),
        member.token
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let topic = format!("queue:{queue}");
    let subscribe = json!({"type": "subscribe", "topic": topic, "after": null});
    socket
        .send(Message::Text(subscribe.to_string().into()))
        .await
        .unwrap();
    loop {
        if next_frame(&mut socket).await["type"] == "subscribed" {
            break;
        }
    }
    turn_on(&api, &owner).await;
    api.put(
        &format!("/v1/orgs/{}/security", owner.organization_id),
        owner.token(),
        json!({"require_two_factor": true}),
    )
    .await
    .expect(200, "required");
    let ended = loop {
        let frame = next_frame(&mut socket).await;
        if frame["type"] == "error" {
            break frame;
        }
    };
    // A topic the caller may not follow is answered as unknown (404), as every other.
    assert_eq!(ended["topic"], topic.as_str(), "{ended}");
    assert_eq!(ended["status"], 404, "{ended}");
    // Nor the organization's canned responses, nor what happens there (the activity feed),
    // until the member has a second factor.
    api.post(
        "/v1/canned-responses",
        owner.token(),
        json!({"key": "hello", "text": "Hello!", "organization_id": owner.organization_id}),
    )
    .await
    .expect(201, "an organization's canned response");
    let canned = api
        .get("/v1/canned-responses", member.token())
        .await
        .expect(200, "canned responses");
    assert_eq!(canned.body, json!([]), "{}", canned.text);
    api::open_queue(&api, &owner, queue).await;
    api::join(&api, queue, json!({})).await;
    let seen = api::activity(&api, owner.token()).await;
    assert!(seen
        .iter()
        .any(|item| item["organization_id"] == owner.organization_id.to_string()));
    assert!(api::activity(&api, member.token()).await.is_empty());
    turn_on(&api, &member).await;
    assert!(!api::activity(&api, member.token()).await.is_empty());
    let canned = api
        .get("/v1/canned-responses", member.token())
        .await
        .expect(200, "canned responses");
    assert_eq!(canned.body.as_array().unwrap().len(), 1, "{}", canned.text);
}
