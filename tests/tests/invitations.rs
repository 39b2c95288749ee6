//! Pending invitations (issue 15): operators list the invitations still open and withdraw one;
//! its token stops working at once. Agents may do neither, another organization sees nothing,
//! and only an owner withdraws an operator's invitation. On both backends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use jono_tests::api::{self, Agent, Api};
use jono_tests::Storage;
use serde_json::{json, Value};

async fn pending(api: &Api, by: &Agent) -> Vec<Value> {
    api.get(
        &format!("/v1/orgs/{}/invitations", by.organization_id),
        by.token(),
    )
    .await
    .expect(200, "the invitations still open")
    .body
    .as_array()
    .unwrap()
    .clone()
}

async fn the_story(storage: &Storage) {
    let (_server, api) = api::start_with(storage, &[]);
    let owner = api::sign_up(&api, "Acme").await;
    let operator = api::invite_and_accept(&api, &owner, "operator", "Olli").await;
    let agent = api::invite_and_accept(&api, &owner, "agent", "Aino").await;
    let invite = |role: &'static str, email: &'static str| {
        let api = &api;
        let owner = &owner;
        async move {
            api.post(
                &format!("/v1/orgs/{}/invitations", owner.organization_id),
                owner.token(),
                json!({"email": email, "role": role}),
            )
            .await
            .expect(201, "an invitation")
        }
    };
    let first = invite("agent", "first@example.com").await;
    let second = invite("operator", "second@example.com").await;
    let listed = pending(&api, &owner).await;
    let emails: Vec<&str> = listed
        .iter()
        .map(|i| i["email"].as_str().unwrap())
        .collect();
    assert_eq!(
        emails,
        ["first@example.com", "second@example.com"],
        "{listed:?}"
    );
    assert_eq!(listed[1]["role"], "operator");
    assert!(
        listed.iter().all(|i| i.get("token").is_none()),
        "no token in the list"
    );
    // Accepted invitations are not open any more.
    assert!(!emails
        .iter()
        .any(|email| email.contains("olli") || email.contains("aino")));

    let path = format!("/v1/orgs/{}/invitations", owner.organization_id);
    api.get(&path, agent.token())
        .await
        .expect_problem(403, "an agent lists invitations");
    let other = api::sign_up(&api, "Other").await;
    api.get(&path, other.token())
        .await
        .expect_problem(404, "another organization lists them");

    let revoke = |id: &Value| format!("{path}/{}", id.as_str().unwrap());
    api.delete(&revoke(&second.body["invitation_id"]), operator.token())
        .await
        .expect_problem(403, "an operator withdraws an operator's invitation");
    api.delete(&revoke(&first.body["invitation_id"]), agent.token())
        .await
        .expect_problem(403, "an agent withdraws one");
    api.delete(&revoke(&first.body["invitation_id"]), operator.token())
        .await
        .expect(204, "an operator withdraws an agent's invitation");
    api.delete(&revoke(&first.body["invitation_id"]), operator.token())
        .await
        .expect_problem(404, "a withdrawn invitation again");
    // Its token no longer works; the other's still does.
    let token = first.body["token"].as_str().unwrap();
    api.post(
        &format!("/v1/invitations/{token}/accept"),
        None,
        json!({"name": "First", "password": "a long enough password"}),
    )
    .await
    .expect_problem(404, "accepting a withdrawn invitation");
    let listed = pending(&api, &owner).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["email"], "second@example.com");
    let token = second.body["token"].as_str().unwrap();
    api.post(
        &format!("/v1/invitations/{token}/accept"),
        None,
        json!({"name": "Second", "password": "a long enough password"}),
    )
    .await
    .expect(201, "the other invitation");
    assert!(pending(&api, &owner).await.is_empty());
}

#[tokio::test]
async fn operators_list_open_invitations_and_withdraw_one() {
    the_story(&Storage::embedded()).await;
}

#[tokio::test]
async fn operators_list_open_invitations_and_withdraw_one_on_postgres() {
    if let Some(storage) = Storage::postgres() {
        the_story(&storage).await;
    }
}
