//! Abuse limits and the life of tokens. Joins (10 a minute per address), login attempts
//! (10 a minute) and a customer's messages (bursts of 20) are refused 429 with `Retry-After`,
//! and `JONO_RATE_LIMITS=off` lifts them; closed sign-up still lets an operator create an
//! organization whose owner accepts its invitation; a token ends at logout, at a password
//! change (the others), at removal from its last organization — and not at a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use jono_tests::api::{self, Api, Reply, PASSWORD};
use jono_tests::{jono, Storage};
use serde_json::json;

#[track_caller]
fn assert_rate_limited(reply: Reply, what: &str) {
    let reply = reply.expect_problem(429, what);
    let retry_after = reply
        .header("retry-after")
        .unwrap_or_else(|| panic!("{what}: a 429 says Retry-After"));
    let seconds: u64 = retry_after
        .parse()
        .unwrap_or_else(|_| panic!("{what}: Retry-After in seconds, got {retry_after:?}"));
    assert!(seconds >= 1, "{what}: Retry-After {seconds}");
}

async fn join_raw(api: &Api, queue: uuid::Uuid) -> Reply {
    api.post(&format!("/v1/queues/{queue}/join"), None, json!({}))
        .await
}

#[tokio::test]
async fn the_eleventh_join_from_one_address_within_a_minute_is_429() {
    let storage = Storage::embedded();
    let (server, api) = api::start_with(&storage, &[]);
    let owner = api::sign_up(&api, "Acme").await;
    let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
    for n in 1..=10 {
        join_raw(&api, queue)
            .await
            .expect(201, &format!("join {n}"));
    }
    assert_rate_limited(join_raw(&api, queue).await, "the 11th join");
    // The refused join appended no customer: ten wait.
    let public = api
        .get(&format!("/v1/queues/{queue}/public"), None)
        .await
        .expect(200, "public");
    assert_eq!(public.body["waiting"], 10, "{}", public.text);
    // And the operator sees the refusal, by the limit's name.
    let (status, metrics) = server.get("/metrics");
    assert_eq!(status, 200);
    assert!(
        metrics
            .lines()
            .any(|line| line == r#"jono_rate_limited_total{limit="join"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn rate_limits_off_lifts_the_join_limit() {
    let storage = Storage::embedded();
    let (_server, api) = api::start_with(&storage, &[("JONO_RATE_LIMITS", "off")]);
    let owner = api::sign_up(&api, "Acme").await;
    let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
    for n in 1..=25 {
        join_raw(&api, queue)
            .await
            .expect(201, &format!("join {n}"));
    }
}

#[tokio::test]
async fn the_eleventh_login_attempt_is_429_even_with_the_right_password() {
    let storage = Storage::embedded();
    let (_server, api) = api::start_with(&storage, &[]);
    let owner = api::sign_up(&api, "Acme").await;
    for n in 1..=10 {
        let wrong = api
            .post(
                "/v1/login",
                None,
                json!({"email": owner.email, "password": "a wrong password"}),
            )
            .await
            .expect_problem(401, &format!("wrong attempt {n}"));
        // It says what is wrong, not that a token is missing.
        assert_eq!(
            wrong.body["detail"], "the email or the password is not right",
            "{}",
            wrong.text
        );
    }
    let reply = api
        .post(
            "/v1/login",
            None,
            json!({"email": owner.email, "password": PASSWORD}),
        )
        .await;
    assert_rate_limited(reply, "the 11th attempt");
    // The session the owner already has is untouched.
    api.get("/v1/me", owner.token()).await.expect(200, "me");
}

#[tokio::test]
async fn rate_limits_off_lifts_the_login_limit() {
    let storage = Storage::embedded();
    let (_server, api) = api::start_with(&storage, &[("JONO_RATE_LIMITS", "off")]);
    let owner = api::sign_up(&api, "Acme").await;
    for n in 1..=12 {
        api.post(
            "/v1/login",
            None,
            json!({"email": owner.email, "password": "a wrong password"}),
        )
        .await
        .expect_problem(401, &format!("wrong attempt {n}"));
    }
    api::login(&api, &owner.email, PASSWORD).await;
}

/// Sends `count` messages at once as `token`; returns the replies.
async fn burst(api: &Api, token: &str, conversation: uuid::Uuid, count: usize) -> Vec<Reply> {
    let sends = (0..count).map(|n| {
        let api = api.clone();
        let token = token.to_owned();
        async move {
            api.post(
                &format!("/v1/conversations/{conversation}/messages"),
                Some(&token),
                json!({"text": format!("burst {n}")}),
            )
            .await
        }
    });
    futures::future::join_all(sends).await
}

#[tokio::test]
async fn a_customer_burst_beyond_twenty_messages_is_429() {
    let storage = Storage::embedded();
    let (_server, api) = api::start_with(&storage, &[]);
    let owner = api::sign_up(&api, "Acme").await;
    let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
    let customer = api::join(&api, queue, json!({})).await;
    let conversation = api::pick(&api, &owner, queue).await;

    // Forty at once: the burst of twenty goes through; beyond it (refilled at 5 a second, far
    // fewer than the twenty more that arrive together) some are refused.
    let replies = burst(&api, &customer.token, conversation, 40).await;
    let accepted = replies.iter().filter(|reply| reply.status == 201).count();
    let refused: Vec<Reply> = replies
        .iter()
        .filter(|reply| reply.status != 201)
        .cloned()
        .collect();
    assert!(accepted >= 20, "a burst of 20 is allowed, {accepted} were");
    assert!(!refused.is_empty(), "40 at once went through unlimited");
    for reply in refused {
        assert_rate_limited(reply, "a message beyond the burst");
    }
    let stored = api::messages(&api, owner.token(), conversation).await;
    assert_eq!(stored.len(), accepted, "a refused message is not stored");
}

#[tokio::test]
async fn an_agent_is_not_rate_limited_even_forty_messages_at_once() {
    let storage = Storage::embedded();
    let (_server, api) = api::start_with(&storage, &[]);
    let owner = api::sign_up(&api, "Acme").await;
    let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
    api::join(&api, queue, json!({})).await;
    let conversation = api::pick(&api, &owner, queue).await;
    // The message limit is per customer token; an agent's forty at once are all stored (and a
    // busy conversation is no reason for a 5xx: API.md keeps 503 for a store that is down).
    let replies = burst(&api, &owner.token, conversation, 40).await;
    for reply in replies {
        reply.expect(201, "an agent's message");
    }
    let stored = api::messages(&api, owner.token(), conversation).await;
    assert_eq!(stored.len(), 40);
}

#[tokio::test]
async fn closed_sign_up_is_403_but_an_admin_created_organization_can_be_joined_by_its_owner() {
    let storage = Storage::embedded();
    let email = api::fresh_email("boss");
    let mut args = vec![
        "admin",
        "create-org",
        "--name",
        "Initech",
        "--owner-email",
        &email,
    ];
    let flags = storage.args();
    args.extend(flags.iter().map(String::as_str));
    let output = jono(&args, &[("JONO_SIGNUP", "closed")]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let link = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let token = link
        .strip_prefix("/invite/")
        .unwrap_or_else(|| panic!("a link /invite/TOKEN, got {link:?}"))
        .to_owned();

    let (_server, api) = api::start_with(
        &storage,
        &[("JONO_SIGNUP", "closed"), ("JONO_RATE_LIMITS", "off")],
    );
    api.post(
        "/v1/signup",
        None,
        json!({"organization": "Acme", "name": "Sam", "email": api::fresh_email("sam"), "password": PASSWORD}),
    )
    .await
    .expect_problem(403, "sign-up while closed");

    let accepted = api
        .post(
            &format!("/v1/invitations/{token}/accept"),
            None,
            json!({"name": "Bill Boss", "password": PASSWORD}),
        )
        .await;
    let accepted = accepted.expect(201, "the owner accepts the admin's invitation");
    let session = accepted.body["token"].as_str().expect("a token").to_owned();
    let organization = accepted.id("organization_id");
    let me = api.get("/v1/me", Some(&session)).await.expect(200, "me");
    assert_eq!(me.body["email"], json!(email));
    assert_eq!(
        me.body["organizations"],
        json!([{"id": organization, "name": "Initech", "role": "owner"}])
    );
    // The owner runs the organization: it creates a queue.
    api.post(
        &format!("/v1/orgs/{organization}/queues"),
        Some(&session),
        json!({"name": "Support"}),
    )
    .await
    .expect(201, "the owner creates a queue");
    // An invitation is used once.
    api.post(
        &format!("/v1/invitations/{token}/accept"),
        None,
        json!({"name": "Someone Else", "password": PASSWORD}),
    )
    .await
    .expect_problem(404, "a used invitation");
    api::login(&api, &email, PASSWORD).await;
}

#[tokio::test]
async fn logout_ends_that_token_at_once_and_only_that_one() {
    let storage = Storage::embedded();
    let (_server, api) = api::start(&storage);
    let owner = api::sign_up(&api, "Acme").await;
    let other = api::login(&api, &owner.email, PASSWORD).await;
    api.call("POST", "/v1/logout", owner.token(), None)
        .await
        .expect(204, "logout");
    api.get("/v1/me", owner.token())
        .await
        .expect_problem(401, "the logged-out token");
    api.call("POST", "/v1/logout", owner.token(), None)
        .await
        .expect_problem(401, "logging out twice");
    api.get("/v1/me", Some(&other))
        .await
        .expect(200, "the other session");
}

#[tokio::test]
async fn a_password_change_ends_every_other_token() {
    let storage = Storage::embedded();
    let (_server, api) = api::start(&storage);
    let owner = api::sign_up(&api, "Acme").await;
    let laptop = api::login(&api, &owner.email, PASSWORD).await;
    let phone = api::login(&api, &owner.email, PASSWORD).await;
    let new_password = "a completely new passphrase";
    api.put(
        "/v1/me/password",
        Some(&laptop),
        json!({"current_password": PASSWORD, "new_password": new_password}),
    )
    .await
    .expect(204, "changing the password");
    api.get("/v1/me", Some(&laptop))
        .await
        .expect(200, "the token that changed it");
    for (name, token) in [
        ("sign-up's", owner.token.as_str()),
        ("phone's", phone.as_str()),
    ] {
        api.get("/v1/me", Some(token))
            .await
            .expect_problem(401, &format!("the {name} token after the change"));
    }
    api.post(
        "/v1/login",
        None,
        json!({"email": owner.email, "password": PASSWORD}),
    )
    .await
    .expect_problem(401, "the old password");
    api::login(&api, &owner.email, new_password).await;
}

#[tokio::test]
async fn removal_from_the_last_organization_ends_the_token() {
    let storage = Storage::embedded();
    let (_server, api) = api::start(&storage);
    let owner = api::sign_up(&api, "Acme").await;
    let member = api::invite_and_accept(&api, &owner, "agent", "Max Member").await;
    api.get("/v1/me", member.token())
        .await
        .expect(200, "a member");
    api.delete(
        &format!(
            "/v1/orgs/{}/members/{}",
            owner.organization_id, member.agent_id
        ),
        owner.token(),
    )
    .await
    .expect(204, "removing the member");
    api.get("/v1/me", member.token())
        .await
        .expect_problem(401, "a token with no organization left");
    api.get(
        &format!("/v1/orgs/{}/members", owner.organization_id),
        member.token(),
    )
    .await
    .expect_problem(401, "the removed member lists members");
    let members = api
        .get(
            &format!("/v1/orgs/{}/members", owner.organization_id),
            owner.token(),
        )
        .await
        .expect(200, "members");
    assert!(
        !members.text.contains(&member.agent_id.to_string()),
        "{}",
        members.text
    );
}

#[tokio::test]
async fn removal_from_one_of_two_organizations_ends_access_to_that_one_only() {
    let storage = Storage::embedded();
    let (_server, api) = api::start(&storage);
    let acme = api::sign_up(&api, "Acme").await;
    let globex = api::sign_up(&api, "Globex").await;
    // Globex's owner is also an agent of Acme, accepting with its own token.
    let invitation = api::invite(&api, &acme, &globex.email, "agent").await;
    api.post(
        &format!("/v1/invitations/{invitation}/accept"),
        globex.token(),
        json!({}),
    )
    .await
    .expect(201, "an existing account accepts");
    api.get(
        &format!("/v1/orgs/{}/members", acme.organization_id),
        globex.token(),
    )
    .await
    .expect(200, "a member of Acme now");
    api.delete(
        &format!(
            "/v1/orgs/{}/members/{}",
            acme.organization_id, globex.agent_id
        ),
        acme.token(),
    )
    .await
    .expect(204, "removed from Acme");
    api.get(
        &format!("/v1/orgs/{}/members", acme.organization_id),
        globex.token(),
    )
    .await
    .expect_problem(404, "Acme is another organization again");
    let me = api
        .get("/v1/me", globex.token())
        .await
        .expect(200, "still Globex's owner");
    assert_eq!(
        me.body["organizations"],
        json!([{"id": globex.organization_id, "name": "Globex", "role": "owner"}])
    );
}

#[tokio::test]
async fn the_last_owner_cannot_be_removed() {
    let storage = Storage::embedded();
    let (_server, api) = api::start(&storage);
    let owner = api::sign_up(&api, "Acme").await;
    api.delete(
        &format!(
            "/v1/orgs/{}/members/{}",
            owner.organization_id, owner.agent_id
        ),
        owner.token(),
    )
    .await
    .expect_problem(409, "removing the last owner");
    api.get("/v1/me", owner.token())
        .await
        .expect(200, "still the owner");
}

#[tokio::test]
async fn tokens_stay_valid_across_a_restart() {
    let storage = Storage::embedded();
    let (server, api) = api::start(&storage);
    let owner = api::sign_up(&api, "Acme").await;
    let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
    let customer = api::join(&api, queue, json!({})).await;
    server.kill();
    let (_server, api) = api::start_with(&storage, &[]);
    api.get("/v1/me", owner.token())
        .await
        .expect(200, "the agent's token after a restart");
    api.get(
        &format!("/v1/conversations/{}", customer.conversation_id),
        customer.token(),
    )
    .await
    .expect(200, "the customer's token after a restart");
    api.get("/v1/me", Some("not-a-token"))
        .await
        .expect_problem(401, "a made-up token");
}

#[tokio::test]
async fn the_eleventh_sign_up_from_one_address_within_an_hour_is_429() {
    let storage = Storage::embedded();
    let (_server, api) = api::start_with(&storage, &[]);
    for _ in 1..=10 {
        api::sign_up(&api, "Acme").await;
    }
    let email = api::fresh_email("eleventh");
    let reply = api
        .post(
            "/v1/signup",
            None,
            json!({"organization": "Acme", "name": "Ellen", "email": email, "password": PASSWORD}),
        )
        .await;
    assert_rate_limited(reply, "the 11th sign-up");
    // The refused sign-up made no account.
    api.post(
        "/v1/login",
        None,
        json!({"email": email, "password": PASSWORD}),
    )
    .await
    .expect_problem(401, "the refused sign-up's login");
}

#[tokio::test]
async fn the_eleventh_password_change_within_an_hour_is_429_even_with_the_right_password() {
    let storage = Storage::embedded();
    let (_server, api) = api::start_with(&storage, &[]);
    let owner = api::sign_up(&api, "Acme").await;
    let change = |current: &str| json!({"current_password": current, "new_password": "a new password entirely"});
    for n in 1..=10 {
        api.put("/v1/me/password", owner.token(), change("a wrong password"))
            .await
            .expect_problem(403, &format!("wrong attempt {n}"));
    }
    let reply = api
        .put("/v1/me/password", owner.token(), change(PASSWORD))
        .await;
    assert_rate_limited(reply, "the 11th change");
    // The password is unchanged.
    api::login(&api, &owner.email, PASSWORD).await;
}

#[tokio::test]
async fn a_customers_other_commands_beyond_a_burst_of_ten_are_429_and_an_agents_are_not() {
    let storage = Storage::embedded();
    let (_server, api) = api::start_with(&storage, &[]);
    let owner = api::sign_up(&api, "Acme").await;
    let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
    let customer = api::join(&api, queue, json!({})).await;
    let conversation = api::pick(&api, &owner, queue).await;
    let path = format!("/v1/conversations/{conversation}/metadata");
    let puts = |token: String, count: usize| {
        let sends = (0..count).map(|n| {
            let api = api.clone();
            let (path, token) = (path.clone(), token.clone());
            async move {
                api.put(
                    &path,
                    Some(&token),
                    json!({"note": "x".repeat(15_000), "n": n}),
                )
                .await
            }
        });
        futures::future::join_all(sends)
    };
    // Thirty at once: the burst of ten goes through, and (refilled at 2 a second) far fewer
    // than the twenty more that arrive together.
    let replies = puts(customer.token.clone(), 30).await;
    let accepted = replies.iter().filter(|reply| reply.status == 204).count();
    assert!(accepted >= 10, "a burst of 10 is allowed, {accepted} were");
    assert!(
        accepted < 30,
        "30 metadata writes at once went through unlimited"
    );
    for reply in replies.into_iter().filter(|reply| reply.status != 204) {
        assert_rate_limited(reply, "a metadata write beyond the burst");
    }
    // Its other commands share the limit. The bucket refills at 2 a second while the thirty
    // are answered (their appends wait for the disk), so a request or two may find a token:
    // of eight at once, some must be refused, and those let through are what a token allows.
    let at_once = |what: &'static str, body: serde_json::Value| {
        let sends = (0..8).map(|_| {
            let (api, token, body) = (api.clone(), customer.token.clone(), body.clone());
            let path = format!("/v1/conversations/{conversation}/{what}");
            async move { api.post(&path, Some(&token), body).await }
        });
        futures::future::join_all(sends)
    };
    let lives = at_once("live", json!({"page": "/checkout"})).await;
    assert!(
        lives.iter().any(|reply| reply.status == 429),
        "eight live metadata writes beyond the burst all went through"
    );
    for reply in lives {
        if reply.status != 204 {
            assert_rate_limited(reply, "live metadata beyond the burst");
        }
    }
    let calls = at_once("calls", json!({})).await;
    assert!(
        calls.iter().any(|reply| reply.status == 429),
        "eight calls beyond the burst all went through"
    );
    for reply in calls {
        if reply.status == 429 {
            assert_rate_limited(reply, "a call beyond the burst");
        } else {
            // One call at a time: a second one let through is refused for that.
            assert!(
                [201, 409].contains(&reply.status),
                "a call let through: {} {}",
                reply.status,
                reply.text
            );
        }
    }
    // An agent's are not limited.
    for reply in puts(owner.token.clone(), 30).await {
        reply.expect(204, "an agent's metadata write");
    }
}

#[tokio::test]
async fn an_ended_conversation_takes_no_customer_command_but_its_rating_and_transcript() {
    let storage = Storage::embedded();
    let (_server, api) = api::start(&storage);
    let owner = api::sign_up(&api, "Acme").await;
    let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
    let customer = api::join(&api, queue, json!({})).await;
    let conversation = api::pick(&api, &owner, queue).await;
    let path = format!("/v1/conversations/{conversation}");
    api.post(&format!("{path}/end"), owner.token(), json!({}))
        .await
        .expect(204, "the agent ends it");
    let ended = |what: &str| format!("{what} after the end");
    api.put(
        &format!("{path}/metadata"),
        customer.token(),
        json!({"name": "Eve"}),
    )
    .await
    .expect_problem(409, &ended("metadata"));
    api.post(
        &format!("{path}/live"),
        customer.token(),
        json!({"page": "/"}),
    )
    .await
    .expect_problem(409, &ended("live metadata"));
    api.post(&format!("{path}/calls"), customer.token(), json!({}))
        .await
        .expect_problem(409, &ended("a call"));
    api.post(
        &format!("{path}/messages"),
        customer.token(),
        json!({"text": "hi"}),
    )
    .await
    .expect_problem(409, &ended("a message"));
    let boundary = "jono-ended";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--{boundary}--\r\n"
    );
    let upload = api
        .http
        .post(format!("{}{path}/attachments", api.base))
        .bearer_auth(&customer.token)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status().as_u16(), 409, "an attachment after the end");
    // The agent may still correct what the customer told; the customer rates and reads.
    api.put(
        &format!("{path}/metadata"),
        owner.token(),
        json!({"name": "Eve"}),
    )
    .await
    .expect(204, "the agent's metadata after the end");
    api.post(
        &format!("{path}/rating"),
        customer.token(),
        json!({"score": 5}),
    )
    .await
    .expect(204, "the rating");
    api.get(&format!("{path}/transcript"), customer.token())
        .await
        .expect(200, "the transcript");
}
