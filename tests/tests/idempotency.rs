//! `Idempotency-Key` (API.md, Conventions): a retry with the same key from the same caller gets
//! the first answer again and appends nothing; the same key with another body is 422; a key
//! belongs to its caller; sign-up, login, join and invitation acceptance take no key.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use jono_tests::api::{self, Agent, Api, Customer, PASSWORD};
use jono_tests::Storage;
use serde_json::{json, Value};
use uuid::Uuid;

/// An owner with an open queue and a picked customer.
async fn chat(api: &Api) -> (Agent, Uuid, Customer) {
    let owner = api::sign_up(api, "Acme").await;
    let queue = api::open_queue_handled_by(api, &owner, "Support").await;
    let customer = api::join(api, queue, json!({})).await;
    assert_eq!(
        api::pick(api, &owner, queue).await,
        customer.conversation_id
    );
    (owner, queue, customer)
}

async fn keyed(
    api: &Api,
    method: &str,
    path: &str,
    token: Option<&str>,
    key: &str,
    body: Option<Value>,
) -> api::Reply {
    let bytes = body.map(|body| body.to_string().into_bytes());
    api.raw(method, path, token, bytes, &[("Idempotency-Key", key)])
        .await
}

#[tokio::test]
async fn a_retried_message_returns_the_first_answer_and_is_stored_once() {
    let storage = Storage::embedded();
    let (_server, api) = api::start(&storage);
    let (owner, _, customer) = chat(&api).await;
    let path = format!("/v1/conversations/{}/messages", customer.conversation_id);
    let body = json!({"text": "Is anyone there?"});
    for (who, token) in [("customer", customer.token()), ("agent", owner.token())] {
        let key = format!("retry-{who}");
        let first = keyed(&api, "POST", &path, token, &key, Some(body.clone()))
            .await
            .expect(201, "the first try");
        let again = keyed(&api, "POST", &path, token, &key, Some(body.clone()))
            .await
            .expect(201, "the retry");
        assert_eq!(first.body["message_id"], again.body["message_id"], "{who}");
        assert_eq!(first.body["seq"], again.body["seq"], "{who}");
        assert!(first.body["message_id"].is_string(), "{}", first.text);
    }
    let texts = api::texts(&api, owner.token(), customer.conversation_id).await;
    assert_eq!(
        texts,
        ["Is anyone there?", "Is anyone there?"],
        "one per caller"
    );
}

#[tokio::test]
async fn the_same_key_with_another_body_is_422_and_appends_nothing() {
    let storage = Storage::embedded();
    let (_server, api) = api::start(&storage);
    let (owner, _, customer) = chat(&api).await;
    let path = format!("/v1/conversations/{}/messages", customer.conversation_id);
    keyed(
        &api,
        "POST",
        &path,
        owner.token(),
        "k1",
        Some(json!({"text": "first"})),
    )
    .await
    .expect(201, "first");
    keyed(
        &api,
        "POST",
        &path,
        owner.token(),
        "k1",
        Some(json!({"text": "second"})),
    )
    .await
    .expect_problem(422, "the same key with another body");
    api::send_message(&api, owner.token(), customer.conversation_id, "marker").await;
    let texts = api::texts(&api, owner.token(), customer.conversation_id).await;
    assert_eq!(texts, ["first", "marker"]);
}

#[tokio::test]
async fn a_key_belongs_to_its_caller() {
    let storage = Storage::embedded();
    let (_server, api) = api::start(&storage);
    let (owner, _, customer) = chat(&api).await;
    let colleague = api::invite_and_accept(&api, &owner, "agent", "Cole League").await;
    let path = format!("/v1/conversations/{}/messages", customer.conversation_id);
    let body = json!({"text": "On it"});
    let mine = keyed(
        &api,
        "POST",
        &path,
        owner.token(),
        "shared-key",
        Some(body.clone()),
    )
    .await
    .expect(201, "the owner's");
    let theirs = keyed(
        &api,
        "POST",
        &path,
        colleague.token(),
        "shared-key",
        Some(body.clone()),
    )
    .await
    .expect(201, "the colleague's, with the same key");
    assert_ne!(mine.body["message_id"], theirs.body["message_id"]);
    assert_ne!(mine.body["seq"], theirs.body["seq"]);
    let theirs_again = keyed(
        &api,
        "POST",
        &path,
        colleague.token(),
        "shared-key",
        Some(body),
    )
    .await
    .expect(201, "the colleague's retry");
    assert_eq!(theirs.body, theirs_again.body);
    let messages = api::messages(&api, owner.token(), customer.conversation_id).await;
    let authors: Vec<&Value> = messages.iter().map(|m| &m["author"]["id"]).collect();
    assert_eq!(
        authors,
        [&json!(owner.agent_id), &json!(colleague.agent_id)]
    );
}

#[tokio::test]
async fn retried_commands_of_other_kinds_append_once() {
    let storage = Storage::embedded();
    let (_server, api) = api::start(&storage);
    let (owner, queue, customer) = chat(&api).await;
    let conversation = format!("/v1/conversations/{}", customer.conversation_id);

    // A note retried is one note, with one id.
    let body = json!({"text": "call back tomorrow"});
    let first = keyed(
        &api,
        "POST",
        &format!("{conversation}/notes"),
        owner.token(),
        "note-1",
        Some(body.clone()),
    )
    .await
    .expect(201, "note");
    let again = keyed(
        &api,
        "POST",
        &format!("{conversation}/notes"),
        owner.token(),
        "note-1",
        Some(body),
    )
    .await
    .expect(201, "note retried");
    assert_eq!(first.body["note_id"], again.body["note_id"]);
    let notes = api
        .get(&format!("{conversation}/notes"), owner.token())
        .await
        .expect(200, "notes");
    assert_eq!(
        notes.body.as_array().map(Vec::len),
        Some(1),
        "{}",
        notes.text
    );

    // A pick retried is the same customer; the next one still waits.
    let second = api::join(&api, queue, json!({})).await;
    let third = api::join(&api, queue, json!({})).await;
    let pick = format!("/v1/queues/{queue}/pick");
    let first = keyed(&api, "POST", &pick, owner.token(), "pick-1", None)
        .await
        .expect(201, "pick");
    let again = keyed(&api, "POST", &pick, owner.token(), "pick-1", None)
        .await
        .expect(201, "pick retried");
    assert_eq!(first.id("conversation_id"), second.conversation_id);
    assert_eq!(again.id("conversation_id"), second.conversation_id);
    let view = api
        .get(
            &format!("/v1/conversations/{}", third.conversation_id),
            third.token(),
        )
        .await
        .expect(200, "the third customer");
    assert_eq!(view.body["status"], "waiting", "{}", view.text);
    assert_eq!(view.body["queue_position"], 1, "{}", view.text);

    // A canned response retried is one response, not a 409 for its own key.
    let body = json!({"key": "thanks", "text": "Thank you!"});
    let first = keyed(
        &api,
        "POST",
        "/v1/canned-responses",
        owner.token(),
        "canned-1",
        Some(body.clone()),
    )
    .await
    .expect(201, "canned");
    let again = keyed(
        &api,
        "POST",
        "/v1/canned-responses",
        owner.token(),
        "canned-1",
        Some(body),
    )
    .await
    .expect(201, "canned retried");
    assert_eq!(first.body["id"], again.body["id"]);

    // A 204 retried is a 204 again, headers and all: no body, no content type.
    let status = json!({"status": "away"});
    let first = keyed(
        &api,
        "PUT",
        "/v1/me/status",
        owner.token(),
        "away-1",
        Some(status.clone()),
    )
    .await
    .expect(204, "away");
    let again = keyed(
        &api,
        "PUT",
        "/v1/me/status",
        owner.token(),
        "away-1",
        Some(status),
    )
    .await
    .expect(204, "away retried");
    assert_eq!(again.header("idempotent-replay"), Some("true"));
    assert_eq!(again.header("content-type"), first.header("content-type"));
    assert_eq!(again.text, "");
}

#[tokio::test]
async fn sign_up_login_and_join_ignore_the_key() {
    let storage = Storage::embedded();
    let (_server, api) = api::start(&storage);
    // Sign-up: the same key and body a second time is a second sign-up, refused 409.
    let email = api::fresh_email("signup");
    let body = json!({"organization": "Acme", "name": "Sue", "email": email, "password": PASSWORD});
    let first = keyed(&api, "POST", "/v1/signup", None, "same", Some(body.clone()))
        .await
        .expect(201, "sign-up");
    keyed(&api, "POST", "/v1/signup", None, "same", Some(body))
        .await
        .expect_problem(409, "the same sign-up again, key or not");
    // And another body with the same key is a sign-up of its own, not a 422.
    let other = json!({"organization": "Globex", "name": "Gus", "email": api::fresh_email("gus"), "password": PASSWORD});
    let second = keyed(&api, "POST", "/v1/signup", None, "same", Some(other))
        .await
        .expect(201, "another sign-up with the same key");
    assert_ne!(first.body["agent_id"], second.body["agent_id"]);

    // Login: each call is a new session.
    let body = json!({"email": email, "password": PASSWORD});
    let one = keyed(&api, "POST", "/v1/login", None, "same", Some(body.clone()))
        .await
        .expect(200, "login");
    let two = keyed(&api, "POST", "/v1/login", None, "same", Some(body))
        .await
        .expect(200, "login again");
    assert_ne!(
        one.body["token"], two.body["token"],
        "a new token each time"
    );

    // Join: the same key twice is two customers.
    let owner = Agent {
        agent_id: first.id("agent_id"),
        organization_id: first.id("organization_id"),
        email,
        password: PASSWORD.to_owned(),
        token: first.body["token"].as_str().unwrap().to_owned(),
    };
    let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
    let join = format!("/v1/queues/{queue}/join");
    let a = keyed(
        &api,
        "POST",
        &join,
        None,
        "same",
        Some(json!({"metadata": {}})),
    )
    .await
    .expect(201, "join");
    let b = keyed(
        &api,
        "POST",
        &join,
        None,
        "same",
        Some(json!({"metadata": {}})),
    )
    .await
    .expect(201, "join again");
    assert_ne!(a.body["conversation_id"], b.body["conversation_id"]);
    assert_eq!(b.body["queue_position"], 2);
}

#[tokio::test]
async fn a_key_is_kept_across_a_restart() {
    let storage = Storage::embedded();
    let (server, api) = api::start(&storage);
    let (owner, _, customer) = chat(&api).await;
    let path = format!("/v1/conversations/{}/messages", customer.conversation_id);
    let body = json!({"text": "before the restart"});
    let first = keyed(
        &api,
        "POST",
        &path,
        owner.token(),
        "durable",
        Some(body.clone()),
    )
    .await
    .expect(201, "first");
    server.kill();
    let (_server, api) = api::start(&storage);
    let again = keyed(&api, "POST", &path, owner.token(), "durable", Some(body))
        .await
        .expect(201, "the retry after the restart");
    assert_eq!(first.body["message_id"], again.body["message_id"]);
    assert_eq!(
        api::texts(&api, owner.token(), customer.conversation_id).await,
        ["before the restart"]
    );
}

/// `POST /v1/orgs/ORG/invitations` with a key, as whoever `token` says (`None`: nobody).
async fn invite_keyed(api: &Api, owner: &Agent, token: Option<&str>, key: &str) -> api::Reply {
    keyed(
        api,
        "POST",
        &format!("/v1/orgs/{}/invitations", owner.organization_id),
        token,
        key,
        Some(json!({"email": "ivy@example.com", "role": "agent"})),
    )
    .await
}

#[tokio::test]
async fn a_kept_answer_never_reaches_a_caller_without_a_valid_token_however_the_first_came() {
    let mut storages = vec![Storage::embedded()];
    storages.extend(Storage::postgres());
    for storage in storages {
        kept_answers_reach_their_caller_only(&storage).await;
    }
}

async fn kept_answers_reach_their_caller_only(storage: &Storage) {
    let (_server, api) = api::start(storage);
    let owner = api::sign_up(&api, "Acme").await;
    let path = format!(
        "/v1/orgs/{}/invitations?token={}",
        owner.organization_id, owner.token
    );
    let body = json!({"email": "ivy@example.com", "role": "agent"});
    let bytes = Some(body.to_string().into_bytes());
    let headers = [("Idempotency-Key", "query-key")];
    // A token in the query string is for reads (the WebSocket, downloads), not for commands.
    let first = api.raw("POST", &path, None, bytes, &headers).await;
    first.expect_problem(401, "a command with its token in the query string");
    // And whatever became of it, the same key with no token, or a made-up one, is 401.
    for token in [None, Some("not-a-token")] {
        let replay = invite_keyed(&api, &owner, token, "query-key").await;
        replay.expect_problem(401, "the key without a valid token");
    }

    // A key used with a valid token belongs to its agent: no one else gets its answer...
    let kept = invite_keyed(&api, &owner, owner.token(), "header-key")
        .await
        .expect(201, "an invitation");
    let secret = kept.body["token"].as_str().unwrap().to_owned();
    for token in [None, Some("not-a-token")] {
        let reply = invite_keyed(&api, &owner, token, "header-key").await;
        assert!(!reply.text.contains(&secret), "{}", reply.text);
        reply.expect_problem(401, "another caller with the key");
    }
    // ...but the agent does, with any of its sessions.
    let second_session = api::login(&api, &owner.email, PASSWORD).await;
    let again = invite_keyed(&api, &owner, Some(&second_session), "header-key")
        .await
        .expect(201, "the agent's retry from another session");
    assert_eq!(again.header("idempotent-replay"), Some("true"));
    assert_eq!(again.body, kept.body);
}

/// Every file under `dir`, with its bytes.
fn files_under(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            found.push((path, bytes));
        }
    }
    found
}

#[tokio::test]
async fn a_kept_answer_holds_no_secret_readable_at_rest() {
    let storage = Storage::embedded();
    let (_server, api) = api::start(&storage);
    let owner = api::sign_up(&api, "Acme").await;
    let kept = invite_keyed(&api, &owner, owner.token(), "at-rest")
        .await
        .expect(201, "an invitation");
    let secret = kept.body["token"].as_str().unwrap().to_owned();
    let again = invite_keyed(&api, &owner, owner.token(), "at-rest")
        .await
        .expect(201, "the retry");
    assert_eq!(again.body["token"], kept.body["token"], "the retry has it");
    let dir = storage.data_dir().expect("an embedded store");
    for (path, bytes) in files_under(dir) {
        assert!(
            !bytes
                .windows(secret.len())
                .any(|window| window == secret.as_bytes()),
            "the invitation's token is readable in {}",
            path.display()
        );
    }
}
