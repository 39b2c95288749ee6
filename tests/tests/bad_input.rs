//! Bad input on every route that takes a body: a body that is not JSON, not UTF-8, holds a lone
//! surrogate escape or has the wrong types is 400; a well-formed value over a limit is 422.
//! Every refusal is an RFC 9457 problem, and none of them appends anything.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use jono_tests::api::{self, Agent, Api, Customer, Watch, PASSWORD};
use jono_tests::{contract, Storage};
use serde_json::{json, Value};

/// A world with something to break on every route: an owner and a member, an open queue with
/// an active conversation, an ended one, a canned response, and an open invitation.
struct World {
    owner: Agent,
    member: Agent,
    queue: uuid::Uuid,
    customer: Customer,
    ended: Customer,
    canned: uuid::Uuid,
    invitation: String,
}

async fn world(api: &Api) -> World {
    let owner = api::sign_up(api, "Acme").await;
    let member = api::invite_and_accept(api, &owner, "agent", "Max Member").await;
    let queue = api::open_queue_handled_by(api, &owner, "Support").await;
    let ended = api::join(api, queue, json!({})).await;
    api::pick(api, &owner, queue).await;
    api.call(
        "POST",
        &format!("/v1/conversations/{}/end", ended.conversation_id),
        ended.token(),
        None,
    )
    .await
    .expect(204, "ending");
    let customer = api::join(api, queue, json!({"name": "Cora"})).await;
    assert_eq!(
        api::pick(api, &owner, queue).await,
        customer.conversation_id
    );
    api::send_message(api, customer.token(), customer.conversation_id, "Hello").await;
    let canned = api
        .post(
            "/v1/canned-responses",
            owner.token(),
            json!({"key": "hi", "text": "Hi!"}),
        )
        .await
        .expect(201, "canned")
        .id("id");
    let invitee = api::fresh_email("invitee");
    let invitation = api::invite(api, &owner, &invitee, "agent").await;
    World {
        owner,
        member,
        queue,
        customer,
        ended,
        canned,
        invitation,
    }
}

/// One body-taking route: who calls it, a valid body, and a field to spoil with `wrong`
/// (a value of the wrong type) or with a lone surrogate.
struct Route {
    method: &'static str,
    path: String,
    token: Option<String>,
    valid: Value,
    field: &'static str,
    wrong: Value,
}

fn routes(w: &World) -> Vec<Route> {
    let owner = Some(w.owner.token.clone());
    let customer = Some(w.customer.token.clone());
    let c = w.customer.conversation_id;
    let org = w.owner.organization_id;
    let q = w.queue;
    let route = |method, path: String, token: &Option<String>, valid, field, wrong| Route {
        method,
        path,
        token: token.clone(),
        valid,
        field,
        wrong,
    };
    let number = json!(12345);
    vec![
        route(
            "POST",
            "/v1/signup".into(),
            &None,
            json!({"organization": "Other", "name": "Nina", "email": api::fresh_email("nina"), "password": PASSWORD}),
            "email",
            number.clone(),
        ),
        route(
            "POST",
            "/v1/login".into(),
            &None,
            json!({"email": w.owner.email, "password": PASSWORD}),
            "password",
            number.clone(),
        ),
        route(
            "PUT",
            "/v1/me/password".into(),
            &owner,
            json!({"current_password": PASSWORD, "new_password": PASSWORD}),
            "new_password",
            number.clone(),
        ),
        route(
            "PUT",
            "/v1/me/status".into(),
            &owner,
            json!({"status": "away"}),
            "status",
            number.clone(),
        ),
        route(
            "POST",
            format!("/v1/orgs/{org}/invitations"),
            &owner,
            json!({"email": api::fresh_email("x"), "role": "agent"}),
            "role",
            number.clone(),
        ),
        route(
            "POST",
            format!("/v1/invitations/{}/accept", w.invitation),
            &None,
            json!({"name": "Ivy", "password": PASSWORD}),
            "name",
            number.clone(),
        ),
        route(
            "PUT",
            format!("/v1/orgs/{org}/members/{}", w.member.agent_id),
            &owner,
            json!({"role": "agent"}),
            "role",
            number.clone(),
        ),
        route(
            "POST",
            format!("/v1/orgs/{org}/queues"),
            &owner,
            json!({"name": "Sales"}),
            "name",
            number.clone(),
        ),
        route(
            "PUT",
            format!("/v1/queues/{q}/settings"),
            &owner,
            json!({"name": "Support"}),
            "name",
            number.clone(),
        ),
        route(
            "POST",
            format!("/v1/queues/{q}/handlers"),
            &owner,
            json!({"agent_id": w.member.agent_id}),
            "agent_id",
            number.clone(),
        ),
        route(
            "POST",
            format!("/v1/queues/{q}/join"),
            &None,
            json!({"metadata": {"name": "Jo"}}),
            "metadata",
            number.clone(),
        ),
        route(
            "POST",
            format!("/v1/conversations/{c}/messages"),
            &customer,
            json!({"text": "hi"}),
            "text",
            number.clone(),
        ),
        route(
            "POST",
            format!("/v1/conversations/{c}/messages"),
            &owner,
            json!({"text": "hi"}),
            "text",
            json!(["hi"]),
        ),
        route(
            "POST",
            format!("/v1/conversations/{c}/tags"),
            &owner,
            json!({"tag": "vip"}),
            "tag",
            number.clone(),
        ),
        route(
            "POST",
            format!("/v1/conversations/{c}/notes"),
            &owner,
            json!({"text": "note"}),
            "text",
            json!(true),
        ),
        route(
            "PUT",
            format!("/v1/conversations/{c}/metadata"),
            &owner,
            json!({"name": "Cora"}),
            "",
            json!([1, 2, 3]),
        ),
        route(
            "POST",
            format!("/v1/conversations/{c}/live"),
            &customer,
            json!({"page": "https://example.com/cart"}),
            "",
            json!("a string"),
        ),
        route(
            "POST",
            format!("/v1/conversations/{}/rating", w.ended.conversation_id),
            &Some(w.ended.token.clone()),
            json!({"score": 5, "comment": "good"}),
            "score",
            json!("five"),
        ),
        route(
            "POST",
            format!("/v1/orgs/{org}/channels"),
            &owner,
            json!({"name": "team"}),
            "name",
            number.clone(),
        ),
        route(
            "POST",
            format!("/v1/orgs/{org}/directs"),
            &owner,
            json!({"agent_id": w.member.agent_id}),
            "agent_id",
            json!(42),
        ),
        route(
            "PUT",
            format!("/v1/orgs/{org}/retention"),
            &owner,
            json!({"retention_days": 30}),
            "retention_days",
            json!("thirty"),
        ),
        route(
            "POST",
            "/v1/canned-responses".into(),
            &owner,
            json!({"key": "bye", "text": "Bye!"}),
            "key",
            number.clone(),
        ),
        route(
            "PUT",
            format!("/v1/canned-responses/{}", w.canned),
            &owner,
            json!({"text": "Hi again!"}),
            "text",
            number.clone(),
        ),
        // Routes of the issues after API.md (each also has its own file).
        route(
            "POST",
            format!("/v1/conversations/{c}/block"),
            &owner,
            json!({"minutes": 60, "reason": "spam"}),
            "minutes",
            json!("an hour"),
        ),
        route(
            "POST",
            format!("/v1/conversations/{c}/handoff"),
            &owner,
            json!({"agent_id": w.member.agent_id}),
            "agent_id",
            number.clone(),
        ),
        route(
            "POST",
            format!("/v1/conversations/{c}/read"),
            &owner,
            json!({"seq": 1}),
            "seq",
            json!("one"),
        ),
        route(
            "POST",
            format!("/v1/conversations/{c}/transcript/email"),
            &customer,
            json!({"email": "cora@example.com"}),
            "email",
            number.clone(),
        ),
        route(
            "POST",
            format!("/v1/conversations/{c}/transfer"),
            &owner,
            json!({"queue_id": q}),
            "queue_id",
            number.clone(),
        ),
        route(
            "POST",
            "/v1/email-confirmation".into(),
            &None,
            json!({"token": "a-confirmation-token"}),
            "token",
            number.clone(),
        ),
        route(
            "POST",
            "/v1/login/two-factor".into(),
            &None,
            json!({"challenge": "a-challenge", "code": "123456"}),
            "challenge",
            number.clone(),
        ),
        route(
            "POST",
            "/v1/me/two-factor/confirm".into(),
            &owner,
            json!({"code": "123456"}),
            "code",
            number.clone(),
        ),
        route(
            "POST",
            "/v1/me/two-factor/disable".into(),
            &owner,
            json!({"code": "123456"}),
            "code",
            number.clone(),
        ),
        route(
            "POST",
            format!("/v1/orgs/{org}/erasures"),
            &owner,
            json!({"conversation_id": c}),
            "conversation_id",
            number.clone(),
        ),
        route(
            "PUT",
            format!("/v1/orgs/{org}/security"),
            &owner,
            json!({"require_two_factor": false}),
            "require_two_factor",
            json!("no"),
        ),
        route(
            "PUT",
            format!("/v1/orgs/{org}/sso"),
            &owner,
            json!({"issuer": "http://127.0.0.1:9", "client_id": "jono", "client_secret": "s3cret", "required": false}),
            "required",
            json!("no"),
        ),
        route(
            "POST",
            format!("/v1/orgs/{org}/webhooks"),
            &owner,
            json!({"url": "https://203.0.113.7/hook", "event_types": ["MessageSent"]}),
            "event_types",
            json!("MessageSent"),
        ),
        route(
            "POST",
            "/v1/password-reset".into(),
            &None,
            json!({"token": "a-reset-token", "new_password": PASSWORD}),
            "new_password",
            number.clone(),
        ),
        route(
            "POST",
            "/v1/password-reset/request".into(),
            &None,
            json!({"email": w.owner.email}),
            "email",
            number.clone(),
        ),
        route(
            "POST",
            format!("/v1/queues/{q}/messages"),
            &None,
            json!({"text": "Call me back", "email": "caller@example.com"}),
            "text",
            number,
        ),
    ]
}

/// The operations of the OpenAPI document with a JSON body that this file does not spoil, and
/// why; every other one must be a route of `routes` (`the_table_spoils_every_json_body_of_the_document`
/// fails otherwise, so a new body-taking route is spoiled here or named here). None, now.
const NOT_SPOILED_HERE: &[&str] = &[];

/// The table is the document's: every operation of `schemas/openapi.json` that takes a JSON body
/// is a route of `routes` or named in `NOT_SPOILED_HERE`, and every route is one of the document.
#[tokio::test]
async fn the_table_spoils_every_json_body_of_the_document() {
    let storage = Storage::embedded();
    let (_server, api) = api::start(&storage);
    let w = world(&api).await;
    let covered: Vec<(String, String)> = routes(&w)
        .into_iter()
        .map(|route| (route.method.to_owned(), route.path))
        .collect();
    let gaps = contract::coverage_gaps(|operation| operation.json_body, &covered, NOT_SPOILED_HERE);
    assert!(gaps.is_empty(), "{}", gaps.join("\n"));
}

/// The paths whose answers must not move while bad input is refused.
fn watched(w: &World) -> Vec<String> {
    let org = w.owner.organization_id;
    let c = w.customer.conversation_id;
    vec![
        format!("/v1/orgs/{org}/members"),
        format!("/v1/orgs/{org}/queues"),
        format!("/v1/queues/{}", w.queue),
        format!("/v1/orgs/{org}/conversations"),
        format!("/v1/conversations/{c}"),
        format!("/v1/conversations/{c}/messages"),
        format!("/v1/conversations/{c}/notes"),
        format!("/v1/conversations/{}", w.ended.conversation_id),
        "/v1/canned-responses".to_owned(),
        "/v1/activity".to_owned(),
        "/v1/me".to_owned(),
        format!("/v1/orgs/{org}/blocks"),
        format!("/v1/orgs/{org}/security"),
        format!("/v1/orgs/{org}/sso"),
        format!("/v1/orgs/{org}/webhooks"),
    ]
}

async fn send(api: &Api, route: &Route, body: Vec<u8>) -> api::Reply {
    api.raw(
        route.method,
        &route.path,
        route.token.as_deref(),
        Some(body),
        &[],
    )
    .await
}

#[tokio::test]
async fn malformed_bodies_on_every_route_are_400_problems_and_append_nothing() {
    malformed_bodies(&Storage::embedded()).await;
}

#[tokio::test]
async fn malformed_bodies_on_every_route_are_400_problems_and_append_nothing_on_postgres() {
    if let Some(storage) = Storage::postgres() {
        malformed_bodies(&storage).await;
    }
}

/// Every route of the table, with each of its spoiled bodies, on `storage`.
async fn malformed_bodies(storage: &Storage) {
    let (_server, api) = api::start(storage);
    let w = world(&api).await;
    let mut watch = Watch::new(&w.owner, watched(&w));
    let before = watch.look(&api).await;

    // Every route is tried before anything is asserted, so one report lists every miss.
    let mut misses = Vec::new();
    let mut check = |reply: api::Reply, what: String| {
        if let Some(wrong) = reply.problem_mismatch(400) {
            misses.push(format!("{what}: {wrong}"));
        }
    };
    for route in routes(&w) {
        let what = |how: &str| format!("{} {} with {how}", route.method, route.path);
        let cut = br#"{"text": "unfinished"#.to_vec();
        check(send(&api, &route, cut).await, what("malformed JSON"));
        // A lone surrogate escape, and a byte that is not UTF-8, in the spoiled field (or, for
        // free-form objects, in a new one).
        let mut spoiled = route.valid.clone();
        let target = if route.field.is_empty() {
            "name"
        } else {
            route.field
        };
        spoiled[target] = json!("SURROGATE");
        let text = spoiled.to_string();
        let surrogate = text.replace("\"SURROGATE\"", "\"\\ud800\"");
        check(
            send(&api, &route, surrogate.into_bytes()).await,
            what("a lone surrogate"),
        );
        let (head, tail) = text.split_once("SURROGATE").expect("the placeholder");
        let latin1 = [head.as_bytes(), b"caf\xe9", tail.as_bytes()].concat();
        check(
            send(&api, &route, latin1).await,
            what("a byte that is not UTF-8"),
        );

        let wrong = if route.field.is_empty() {
            route.wrong.clone()
        } else {
            let mut wrong = route.valid.clone();
            wrong[route.field] = route.wrong.clone();
            wrong
        };
        let reply = send(&api, &route, wrong.to_string().into_bytes()).await;
        check(reply, what(&format!("a wrong type: {wrong}")));
    }
    assert!(
        misses.is_empty(),
        "{} misses:\n{}",
        misses.len(),
        misses.join("\n")
    );

    let after = watch.look(&api).await;
    api::assert_unchanged(&before, &after, "after 400s");
    // The invitation is still there to accept, and the owner's password did not change.
    api.post(
        &format!("/v1/invitations/{}/accept", w.invitation),
        None,
        json!({"name": "Ivy Invitee", "password": PASSWORD}),
    )
    .await
    .expect(201, "the invitee accepts after the bad attempts");
    api::login(&api, &w.owner.email, PASSWORD).await;
}

#[tokio::test]
async fn values_over_the_limits_are_422_problems_and_append_nothing() {
    let storage = Storage::embedded();
    let (_server, api) = api::start(&storage);
    let w = world(&api).await;
    let owner = w.owner.token();
    let c = w.customer.conversation_id;
    let org = w.owner.organization_id;
    let mut watch = Watch::new(&w.owner, watched(&w));
    let before = watch.look(&api).await;

    let too_long = "x".repeat(10_001);
    let big_metadata = json!({"notes": "m".repeat(17 * 1024)});
    let cases: Vec<(&str, String, Option<&str>, Value)> = vec![
        (
            "message text of 10,001 characters",
            format!("/v1/conversations/{c}/messages"),
            owner,
            json!({"text": too_long}),
        ),
        (
            "a customer's message of 10,001 characters",
            format!("/v1/conversations/{c}/messages"),
            w.customer.token(),
            json!({"text": too_long}),
        ),
        (
            "empty message text",
            format!("/v1/conversations/{c}/messages"),
            owner,
            json!({"text": ""}),
        ),
        (
            "empty note",
            format!("/v1/conversations/{c}/notes"),
            owner,
            json!({"text": ""}),
        ),
        (
            "a note of 10,001 characters",
            format!("/v1/conversations/{c}/notes"),
            owner,
            json!({"text": too_long}),
        ),
        (
            "a tag of 65 characters",
            format!("/v1/conversations/{c}/tags"),
            owner,
            json!({"tag": "t".repeat(65)}),
        ),
        (
            "a canned key of 33 characters",
            "/v1/canned-responses".to_owned(),
            owner,
            json!({"key": "k".repeat(33), "text": "fine"}),
        ),
        (
            "a canned text of 10,001 characters",
            "/v1/canned-responses".to_owned(),
            owner,
            json!({"key": "long", "text": too_long}),
        ),
        (
            "a canned key changed to 33 characters",
            format!("/v1/canned-responses/{}", w.canned),
            owner,
            json!({"key": "k".repeat(33)}),
        ),
        (
            "a live value with a javascript: scheme",
            format!("/v1/conversations/{c}/live"),
            w.customer.token(),
            json!({"page": "javascript:alert(1)"}),
        ),
        (
            "an invitation with an unknown role",
            format!("/v1/orgs/{org}/invitations"),
            owner,
            json!({"email": api::fresh_email("x"), "role": "overlord"}),
        ),
        (
            "a retention of no days",
            format!("/v1/orgs/{org}/retention"),
            owner,
            json!({"retention_days": 0}),
        ),
        (
            "a retention over ten years",
            format!("/v1/orgs/{org}/retention"),
            owner,
            json!({"retention_days": 3651}),
        ),
        (
            "an erasure naming both a conversation and a customer",
            format!("/v1/orgs/{org}/erasures"),
            owner,
            json!({"conversation_id": "00000000-0000-4000-8000-000000000001", "customer_ref": "00000000-0000-4000-8000-000000000002"}),
        ),
        (
            "an erasure naming nothing",
            format!("/v1/orgs/{org}/erasures"),
            owner,
            json!({}),
        ),
        (
            "an erasure of a conversation id that is not an id",
            format!("/v1/orgs/{org}/erasures"),
            owner,
            json!({"conversation_id": "banana"}),
        ),
        (
            "a member given an unknown role",
            format!("/v1/orgs/{org}/members/{}", w.member.agent_id),
            owner,
            json!({"role": "overlord"}),
        ),
        (
            "a new password under 10 characters",
            "/v1/me/password".to_owned(),
            owner,
            json!({"current_password": PASSWORD, "new_password": "short"}),
        ),
        (
            "an invitation accepted with a password under 10 characters",
            format!("/v1/invitations/{}/accept", w.invitation),
            None,
            json!({"name": "Ivy", "password": "123456789"}),
        ),
        (
            "a score of 6",
            format!("/v1/conversations/{}/rating", w.ended.conversation_id),
            w.ended.token(),
            json!({"score": 6}),
        ),
        (
            "a score of 0",
            format!("/v1/conversations/{}/rating", w.ended.conversation_id),
            w.ended.token(),
            json!({"score": 0}),
        ),
        (
            "a block of no minutes",
            format!("/v1/conversations/{c}/block"),
            owner,
            json!({"minutes": 0}),
        ),
        (
            "a block longer than 365 days",
            format!("/v1/conversations/{c}/block"),
            owner,
            json!({"minutes": 525_601}),
        ),
        (
            "a block's reason of 501 characters",
            format!("/v1/conversations/{c}/block"),
            owner,
            json!({"reason": "r".repeat(501)}),
        ),
        (
            "read up to a message the conversation does not have",
            format!("/v1/conversations/{c}/read"),
            owner,
            json!({"seq": 1000}),
        ),
        (
            "a webhook URL that is not http(s)",
            format!("/v1/orgs/{org}/webhooks"),
            owner,
            json!({"url": "ftp://203.0.113.7/hook", "event_types": ["MessageSent"]}),
        ),
        (
            "a webhook of no event types",
            format!("/v1/orgs/{org}/webhooks"),
            owner,
            json!({"url": "https://203.0.113.7/hook", "event_types": []}),
        ),
        (
            "a webhook of an unknown event type",
            format!("/v1/orgs/{org}/webhooks"),
            owner,
            json!({"url": "https://203.0.113.7/hook", "event_types": ["NoteAdded"]}),
        ),
        (
            "a single sign-on whose issuer's discovery document cannot be read",
            format!("/v1/orgs/{org}/sso"),
            owner,
            json!({"issuer": "http://127.0.0.1:9", "client_id": "jono", "client_secret": "s3cret", "required": false}),
        ),
        (
            "an empty left message",
            format!("/v1/queues/{}/messages", w.queue),
            None,
            json!({"text": "", "email": "caller@example.com"}),
        ),
        (
            "a left message with a malformed email",
            format!("/v1/queues/{}/messages", w.queue),
            None,
            json!({"text": "Call me back", "email": "not an address"}),
        ),
    ];
    let mut misses = Vec::new();
    for (what, path, token, body) in cases {
        let method = if path.ends_with("/metadata")
            || path.ends_with("/password")
            || path.contains("/members/")
            || path.contains("/canned-responses/")
            || path.ends_with("/retention")
            || path.ends_with("/sso")
        {
            "PUT"
        } else {
            "POST"
        };
        let reply = api.call(method, &path, token, Some(body)).await;
        if let Some(wrong) = reply.problem_mismatch(422) {
            misses.push(format!("{what}: {wrong}"));
        }
    }
    // Metadata over its 16 KiB is too large (413), wherever it is sent; joining with it
    // appends no customer.
    for (what, method, path, token) in [
        (
            "metadata over 16 KiB",
            "PUT",
            format!("/v1/conversations/{c}/metadata"),
            owner,
        ),
        (
            "live metadata over 16 KiB",
            "POST",
            format!("/v1/conversations/{c}/live"),
            w.customer.token(),
        ),
    ] {
        let reply = api
            .call(method, &path, token, Some(big_metadata.clone()))
            .await;
        if let Some(wrong) = reply.problem_mismatch(413) {
            misses.push(format!("{what}: {wrong}"));
        }
    }
    api.post(
        &format!("/v1/queues/{}/join", w.queue),
        None,
        json!({"metadata": big_metadata}),
    )
    .await
    .expect_problem(413, "joining with metadata over 16 KiB");
    assert!(
        misses.is_empty(),
        "{} misses:\n{}",
        misses.len(),
        misses.join("\n")
    );

    let after = watch.look(&api).await;
    api::assert_unchanged(&before, &after, "after 422s");

    // The refused values were refused, not lost: the rating and the invitation are still open,
    // and the owner's password is still the old one.
    api.post(
        &format!("/v1/conversations/{}/rating", w.ended.conversation_id),
        w.ended.token(),
        json!({"score": 5}),
    )
    .await
    .expect(204, "a valid rating after the refused ones");
    api.post(
        &format!("/v1/invitations/{}/accept", w.invitation),
        None,
        json!({"name": "Ivy Invitee", "password": PASSWORD}),
    )
    .await
    .expect(201, "accepting after the refused attempt");
    api::login(&api, &w.owner.email, PASSWORD).await;
}

#[tokio::test]
async fn a_sign_up_with_a_short_password_creates_no_account() {
    let storage = Storage::embedded();
    let (_server, api) = api::start(&storage);
    let email = api::fresh_email("short");
    api.post(
        "/v1/signup",
        None,
        json!({"organization": "Acme", "name": "Sid", "email": email, "password": "123456789"}),
    )
    .await
    .expect_problem(422, "a password of 9 characters");
    api.post(
        "/v1/login",
        None,
        json!({"email": email, "password": "123456789"}),
    )
    .await
    .expect_problem(401, "no account was made");
    api.post(
        "/v1/signup",
        None,
        json!({"organization": "Acme", "name": "Sid", "email": email, "password": "1234567890"}),
    )
    .await
    .expect(
        201,
        "ten characters are enough, and the email is still free",
    );
}

#[tokio::test]
async fn the_limits_are_counted_in_characters_and_their_edges_are_allowed() {
    let storage = Storage::embedded();
    let (_server, api) = api::start(&storage);
    let w = world(&api).await;
    let c = w.customer.conversation_id;
    // 10,000 two-byte characters are 20,000 bytes but exactly the limit.
    let wide = "é".repeat(10_000);
    let (_, seq) = api::send_message(&api, w.owner.token(), c, &wide).await;
    let messages = api::messages(&api, w.owner.token(), c).await;
    let last = messages.last().expect("a message");
    assert_eq!(last["seq"].as_i64(), Some(seq));
    assert_eq!(
        last["text"].as_str().map(|t| t.chars().count()),
        Some(10_000)
    );
    api.post(
        &format!("/v1/conversations/{c}/tags"),
        w.owner.token(),
        json!({"tag": "t".repeat(64)}),
    )
    .await
    .expect(204, "a tag of 64 characters");
    api.post(
        "/v1/canned-responses",
        w.owner.token(),
        json!({"key": "k".repeat(32), "text": "x".repeat(10_000)}),
    )
    .await
    .expect(201, "a canned key of 32 characters, text of 10,000");
    api.put(
        &format!("/v1/conversations/{c}/metadata"),
        w.owner.token(),
        json!({"notes": "m".repeat(15 * 1024)}),
    )
    .await
    .expect(204, "metadata under 16 KiB");
    for score in 1..=5 {
        let customer = api::join(&api, w.queue, json!({})).await;
        api::pick(&api, &w.owner, w.queue).await;
        let path = format!("/v1/conversations/{}", customer.conversation_id);
        api.call("POST", &format!("{path}/end"), customer.token(), None)
            .await
            .expect(204, "end");
        api.post(
            &format!("{path}/rating"),
            customer.token(),
            json!({"score": score}),
        )
        .await
        .expect(204, &format!("a score of {score}"));
    }
}

#[tokio::test]
async fn a_malformed_cursor_is_400() {
    let storage = Storage::embedded();
    let (_server, api) = api::start(&storage);
    let w = world(&api).await;
    let c = w.customer.conversation_id;
    api.get(
        &format!("/v1/conversations/{c}/messages?after=banana"),
        w.owner.token(),
    )
    .await
    .expect_problem(400, "a message cursor that is not a seq");
    api.get("/v1/activity?after=banana", w.owner.token())
        .await
        .expect_problem(400, "an activity cursor that is not a position");
    api.get("/v1/activity?after=-1", w.owner.token())
        .await
        .expect_problem(400, "a negative position");
    api.get(
        &format!("/v1/conversations/{c}/messages?after=-5"),
        w.owner.token(),
    )
    .await
    .expect_problem(400, "a negative seq");
    api.get(
        &format!(
            "/v1/orgs/{}/conversations?after=banana",
            w.owner.organization_id
        ),
        w.owner.token(),
    )
    .await
    .expect_problem(400, "a list cursor that is not an id");
}
