//! Corners of API.md's general rules: every list is a page (`?after=&limit=`, a malformed
//! cursor is 400), a body is a JSON object, a wrong method is a 405 problem, and an invitation
//! for an email that has an account is accepted with that account's token only.

use jono_tests::api::{self, Api, Reply, PASSWORD};
use jono_tests::Storage;
use serde_json::{json, Value};

/// Reads `path` page by page, `limit` at a time, with `cursor` naming an item's cursor.
async fn pages(api: &Api, token: Option<&str>, path: &str, cursor: &str) -> Vec<Vec<Value>> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let separator = if path.contains('?') { '&' } else { '?' };
        let url = match &after {
            None => format!("{path}{separator}limit=2"),
            Some(after) => format!("{path}{separator}limit=2&after={after}"),
        };
        let page = api.get(&url, token).await.expect(200, &url).body;
        let page = page.as_array().expect("a list").clone();
        if page.is_empty() {
            return all;
        }
        assert!(page.len() <= 2, "{url}: a page holds at most limit items");
        after = Some(
            page.last().expect("an item")[cursor]
                .as_str()
                .expect("a string cursor")
                .to_owned(),
        );
        all.push(page);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_canned_responses_and_notes_are_pages() {
    let storage = Storage::embedded();
    let (_server, api) = api::start_with(&storage, &[("JONO_RATE_LIMITS", "off")]);
    let owner = api::sign_up(&api, "Acme").await;
    for name in ["Ann", "Bo", "Cy"] {
        api::invite_and_accept(&api, &owner, "agent", name).await;
    }
    for key in ["hello", "bye", "wait"] {
        api.post(
            "/v1/canned-responses",
            owner.token(),
            json!({"key": key, "text": format!("{key}!")}),
        )
        .await
        .expect(201, "a canned response");
    }
    let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
    let customer = api::join(&api, queue, json!({"name": "Dee"})).await;
    api::pick(&api, &owner, queue).await;
    let conversation = customer.conversation_id;
    for text in ["one", "two", "three"] {
        api.post(
            &format!("/v1/conversations/{conversation}/notes"),
            owner.token(),
            json!({ "text": text }),
        )
        .await
        .expect(201, "a note");
    }

    let members = format!("/v1/orgs/{}/members", owner.organization_id);
    let notes = format!("/v1/conversations/{conversation}/notes");
    for (path, cursor, count) in [
        (members.as_str(), "agent_id", 4),
        ("/v1/canned-responses", "id", 3),
        (notes.as_str(), "id", 3),
    ] {
        let whole = api.get(path, owner.token()).await.expect(200, path).body;
        let whole = whole.as_array().expect("a list").clone();
        assert_eq!(whole.len(), count, "{path}: {whole:?}");
        let paged = pages(&api, owner.token(), path, cursor).await;
        assert_eq!(paged.len(), count.div_ceil(2), "{path}: {paged:?}");
        assert_eq!(
            paged.concat(),
            whole,
            "{path}: the pages are the list, in order"
        );
        api.get(&format!("{path}?after=not-a-cursor"), owner.token())
            .await
            .expect_problem(400, "a malformed cursor");
        api.get(&format!("{path}?limit=0"), owner.token())
            .await
            .expect_problem(400, "a limit below 1");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_is_a_json_object_and_a_wrong_method_is_a_405_problem() {
    let storage = Storage::embedded();
    let (_server, api) = api::start_with(&storage, &[("JONO_RATE_LIMITS", "off")]);
    let owner = api::sign_up(&api, "Acme").await;
    // serde would read a struct from an array field by field: the contract says 400.
    let login = json!([owner.email, PASSWORD]).to_string().into_bytes();
    api.raw("POST", "/v1/login", None, Some(login), &[])
        .await
        .expect_problem(400, "an array for a body");
    let queue = api::create_queue(&api, &owner, "Support").await;
    for body in ["[]", "\"text\"", "42"] {
        api.raw(
            "PUT",
            &format!("/v1/queues/{queue}/settings"),
            owner.token(),
            Some(body.as_bytes().to_vec()),
            &[],
        )
        .await
        .expect_problem(400, body);
    }

    let reply: Reply = api.call("DELETE", "/v1/me", owner.token(), None).await;
    let reply = reply.expect_problem(405, "a method the route does not have");
    assert_eq!(reply.body["status"], 405, "{}", reply.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_account_accepts_an_invitation_with_its_own_token_only() {
    let storage = Storage::embedded();
    let (_server, api) = api::start_with(&storage, &[("JONO_RATE_LIMITS", "off")]);
    let owner = api::sign_up(&api, "Acme").await;
    let other = api::sign_up(&api, "Globex").await;
    let token = api::invite(&api, &owner, &other.email, "agent").await;
    let accept = format!("/v1/invitations/{token}/accept");
    let as_new = json!({"name": "Someone", "password": PASSWORD});
    // The account exists: a name and password do not stand in for its token.
    api.post(&accept, None, as_new.clone())
        .await
        .expect_problem(401, "no token, for an email with an account");
    api.post(&accept, owner.token(), as_new)
        .await
        .expect_problem(403, "another account's token");
    api.post(&accept, owner.token(), json!({}))
        .await
        .expect_problem(403, "another account's token, empty body");
    api.post(&accept, other.token(), json!({}))
        .await
        .expect(201, "its own token and an empty body");
}

/// `PUT /v1/me/status` is presence shown to teammates, also for a client that keeps no
/// WebSocket open; a member who neither connected nor declared anything is offline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_status_is_shown_to_teammates() {
    let storage = Storage::embedded();
    let (_server, api) = api::start_with(&storage, &[("JONO_RATE_LIMITS", "off")]);
    let owner = api::sign_up(&api, "Acme").await;
    let ann = api::invite_and_accept(&api, &owner, "agent", "Ann").await;
    let bo = api::invite_and_accept(&api, &owner, "agent", "Bo").await;
    let members = format!("/v1/orgs/{}/members", owner.organization_id);
    let status = |list: &Value, agent: uuid::Uuid| {
        let member = list
            .as_array()
            .expect("members")
            .iter()
            .find(|m| m["agent_id"] == json!(agent))
            .expect("the member")
            .clone();
        (member["online"].clone(), member["status"].clone())
    };

    api.put("/v1/me/status", ann.token(), json!({"status": "away"}))
        .await
        .expect(204, "away");
    let seen = api
        .get(&members, owner.token())
        .await
        .expect(200, "members")
        .body;
    assert_eq!(status(&seen, ann.agent_id), (json!(true), json!("away")));
    assert_eq!(status(&seen, bo.agent_id), (json!(false), json!("offline")));

    api.put("/v1/me/status", ann.token(), json!({"status": "online"}))
        .await
        .expect(204, "back");
    let seen = api
        .get(&members, bo.token())
        .await
        .expect(200, "members")
        .body;
    assert_eq!(status(&seen, ann.agent_id), (json!(true), json!("online")));
}

/// Ending what cannot end, or has ended, is a prompt 409 that says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ending_a_channel_or_an_ended_conversation_is_409() {
    let storage = Storage::embedded();
    let (_server, api) = api::start_with(&storage, &[("JONO_RATE_LIMITS", "off")]);
    let owner = api::sign_up(&api, "Acme").await;
    let channel = api::create_channel(&api, &owner, "Team").await;
    let reply = api
        .call(
            "POST",
            &format!("/v1/conversations/{channel}/end"),
            owner.token(),
            None,
        )
        .await
        .expect_problem(409, "ending a channel");
    assert!(reply.text.contains("customer"), "{}", reply.text);

    let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
    let customer = api::join(&api, queue, json!({})).await;
    let end = format!("/v1/conversations/{}/end", customer.conversation_id);
    api.call("POST", &end, customer.token(), None)
        .await
        .expect(204, "the customer gives up");
    let reply = api
        .call("POST", &end, owner.token(), None)
        .await
        .expect_problem(409, "ending it again");
    assert!(reply.text.contains("ended"), "{}", reply.text);
}
