//! Sessions from the outside: an agent lists its own (the User-Agent and address each was
//! opened from) and ends any of them, its WebSocket closing at once; an owner ends every
//! session of a member, nobody else does. On both backends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures::StreamExt;
use jono_tests::api::{self, Api};
use jono_tests::Storage;
use serde_json::{json, Value};

fn storages() -> Vec<Storage> {
    let mut storages = vec![Storage::embedded()];
    storages.extend(Storage::postgres());
    storages
}

async fn login_as(api: &Api, email: &str, password: &str, user_agent: &str) -> String {
    let body = json!({"email": email, "password": password}).to_string();
    let reply = api
        .raw(
            "POST",
            "/v1/login",
            None,
            Some(body.into_bytes()),
            &[
                ("content-type", "application/json"),
                ("user-agent", user_agent),
            ],
        )
        .await
        .expect(200, "login");
    reply.body["token"].as_str().unwrap().to_owned()
}

async fn sessions(api: &Api, token: &str) -> Vec<Value> {
    let reply = api
        .get("/v1/me/sessions", Some(token))
        .await
        .expect(200, "sessions");
    reply.body.as_array().unwrap().clone()
}

#[tokio::test]
async fn an_agent_sees_its_sessions_and_ends_one_whose_socket_closes() {
    for storage in storages() {
        let (_server, api) = api::start(&storage);
        let owner = api::sign_up(&api, "Sessions").await;
        let laptop = login_as(&api, &owner.email, &owner.password, "Laptop Browser/1.0").await;
        let phone = login_as(&api, &owner.email, &owner.password, "Phone Browser/2.0").await;
        let listed = sessions(&api, &laptop).await;
        assert_eq!(listed.len(), 3, "sign-up, laptop, phone: {listed:?}");
        let current: Vec<&Value> = listed.iter().filter(|s| s["current"] == true).collect();
        assert_eq!(current.len(), 1);
        assert_eq!(current[0]["user_agent"], "Laptop Browser/1.0");
        let phone_session = listed
            .iter()
            .find(|s| s["user_agent"] == "Phone Browser/2.0")
            .expect("the phone's session");
        assert_eq!(phone_session["address"], "127.0.0.1");
        assert!(phone_session["created_at"].is_string());
        assert!(phone_session["last_used_at"].is_string());

        // The phone's socket closes when the laptop ends its session.
        let url = format!(
            "{}/v1/ws?token={phone}",
            api.base.replace("http://", "ws://")
        );
        let (mut socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("a socket");
        let id = phone_session["session_id"].as_str().unwrap();
        api.delete(&format!("/v1/me/sessions/{id}"), Some(&laptop))
            .await
            .expect(204, "ending the phone's session");
        api.get("/v1/me", Some(&phone))
            .await
            .expect_problem(401, "the ended session");
        let closed = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(Ok(frame)) = socket.next().await {
                if frame.is_close() {
                    return;
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "the ended session's socket closes");
        assert_eq!(sessions(&api, &laptop).await.len(), 2);
        api.delete(&format!("/v1/me/sessions/{id}"), Some(&laptop))
            .await
            .expect_problem(404, "an ended session");

        // Another agent's session is not found from here.
        let member = api::invite_and_accept(&api, &owner, "agent", "Sam Session").await;
        let theirs = sessions(&api, &member.token).await;
        let theirs = theirs[0]["session_id"].as_str().unwrap();
        api.delete(&format!("/v1/me/sessions/{theirs}"), Some(&laptop))
            .await
            .expect_problem(404, "another agent's session");
        api.get("/v1/me", member.token())
            .await
            .expect(200, "untouched");
    }
}

#[tokio::test]
async fn an_owner_ends_a_members_sessions_and_nobody_else_does() {
    for storage in storages() {
        let (_server, api) = api::start(&storage);
        let owner = api::sign_up(&api, "Session Owners").await;
        let operator = api::invite_and_accept(&api, &owner, "operator", "Opal Operator").await;
        let member = api::invite_and_accept(&api, &owner, "agent", "Max Member").await;
        let second = api::login(&api, &member.email, &member.password).await;
        let path = format!(
            "/v1/orgs/{}/members/{}/sessions",
            owner.organization_id, member.agent_id
        );
        api.delete(&path, operator.token())
            .await
            .expect_problem(403, "an operator");
        api.get("/v1/me", member.token())
            .await
            .expect(200, "still in");
        let stranger = api::sign_up(&api, "Elsewhere").await;
        api.delete(&path, stranger.token())
            .await
            .expect_problem(404, "an owner of another organization");
        api.delete(&path, owner.token()).await.expect(204, "ended");
        for token in [member.token.as_str(), second.as_str()] {
            api.get("/v1/me", Some(token))
                .await
                .expect_problem(401, "every session of the member");
        }
        // The member signs in again; the log keeps that its sessions were ended.
        api::login(&api, &member.email, &member.password).await;
        api.get("/v1/me", owner.token())
            .await
            .expect(200, "the owner's own session");
        let unknown = format!(
            "/v1/orgs/{}/members/{}/sessions",
            owner.organization_id, stranger.agent_id
        );
        api.delete(&unknown, owner.token())
            .await
            .expect_problem(404, "not a member");
    }
}

/// A session's use is noted at most once a minute, for its idle expiry. When the store cannot
/// take that write now — a full disk, another process holding the write lock — the session is
/// served all the same (reads go on), and its use is noted at a later request. Before the fix,
/// a read answered 503 once its token had gone a minute unused and the disk was full
/// (`full_disk.rs` failed so in CI). Here another connection holds SQLite's write lock.
#[tokio::test]
async fn a_session_is_served_while_the_store_cannot_note_its_use() {
    let storage = Storage::embedded();
    let (_server, api) = api::start(&storage);
    let owner = api::sign_up(&api, "Bookkeeping").await;
    let file = storage.data_dir().unwrap().join("jono.db");
    let db = rusqlite::Connection::open(file).unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    db.execute(
        "UPDATE agent_tokens SET last_used_at = last_used_at - 600",
        [],
    )
    .unwrap();
    db.execute_batch("BEGIN IMMEDIATE").unwrap();
    let read = api.get("/v1/me", owner.token()).await;
    db.execute_batch("ROLLBACK").unwrap();
    read.expect(200, "a read while the store takes no writes");

    api.get("/v1/me", owner.token())
        .await
        .expect(200, "a read once it takes them again");
    let noted: i64 = db
        .query_row("SELECT MAX(last_used_at) FROM agent_tokens", [], |row| {
            row.get(0)
        })
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        now - noted < 60,
        "the use is noted at the later request ({noted}, now {now})"
    );
}
