//! The audit view (issue 17, item 3): an organization's changes read from the log — who did
//! them, to what, when — filtered by type, actor, subject and time, paged, exported as CSV, for
//! operators only. Customers' conversations never appear. On both backends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use jono_tests::api::{self, Agent, Api};
use jono_tests::Storage;
use serde_json::{json, Value};

async fn audit(api: &Api, who: &Agent, query: &str) -> Vec<Value> {
    let path = format!("/v1/orgs/{}/audit{query}", who.organization_id);
    api.get(&path, who.token())
        .await
        .expect(200, &path)
        .body
        .as_array()
        .unwrap()
        .clone()
}

fn types(items: &[Value]) -> Vec<&str> {
    items.iter().map(|i| i["type"].as_str().unwrap()).collect()
}

async fn who_did_what(storage: &Storage) {
    let (_server, api) = api::start_with(storage, &[("JONO_RATE_LIMITS", "off")]);
    let owner = api::sign_up(&api, "Acme").await;
    let colleague = api::invite_and_accept(&api, &owner, "agent", "Colleague").await;
    let members = format!("/v1/orgs/{}/members", owner.organization_id);
    api.put(
        &format!("{members}/{}", colleague.agent_id),
        owner.token(),
        json!({"role": "operator"}),
    )
    .await
    .expect(200, "making the colleague an operator");
    let queue = api::create_queue(&api, &owner, "Support").await;
    // The colleague, an operator now, changes the queue's settings.
    api.put(
        &format!("/v1/queues/{queue}/settings"),
        colleague.token(),
        json!({"max_waiting": 5}),
    )
    .await
    .expect(200, "settings");
    api::add_handler(&api, &owner, queue, owner.agent_id).await;
    api::open_queue(&api, &owner, queue).await;
    // A customer's conversation is not the audit's.
    let customer = api::join(&api, queue, json!({"name": "Carla"})).await;
    api::send_message(&api, customer.token(), customer.conversation_id, "hello").await;

    let all = api::eventually(
        || audit(&api, &owner, ""),
        |items| items.iter().any(|i| i["type"] == "QueueOpened"),
    )
    .await;
    let seen = types(&all);
    for expected in [
        "OrganizationCreated",
        "InvitationCreated",
        "InvitationAccepted",
        "MemberAdded",
        "MemberRoleChanged",
        "QueueCreated",
        "QueueSettingsChanged",
        "QueueHandlerAdded",
        "QueueOpened",
    ] {
        assert!(seen.contains(&expected), "{expected} in {seen:?}");
    }
    for never in ["CustomerJoinedQueue", "MessageSent", "ConversationStarted"] {
        assert!(!seen.contains(&never), "{never} in {seen:?}");
    }
    let positions: Vec<i64> = all
        .iter()
        .map(|i| i["position"].as_i64().unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "oldest first");

    // Who, to whom, what: the role change.
    let role = audit(&api, &owner, "?type=MemberRoleChanged").await;
    assert_eq!(role.len(), 1, "{role:?}");
    assert_eq!(role[0]["actor_kind"], "agent");
    assert_eq!(role[0]["actor_id"], json!(owner.agent_id));
    assert!(role[0]["actor_name"].as_str().is_some(), "{}", role[0]);
    assert_eq!(role[0]["subject"], json!(colleague.agent_id));
    assert_eq!(role[0]["details"]["role"], "operator");
    assert_eq!(role[0]["details"]["previous"], "agent");

    // By actor, by subject, by several types, by time.
    let by_colleague = audit(&api, &owner, &format!("?actor={}", colleague.agent_id)).await;
    assert!(types(&by_colleague).contains(&"QueueSettingsChanged"));
    assert!(by_colleague
        .iter()
        .all(|i| i["actor_id"] == json!(colleague.agent_id)));
    let on_queue = audit(&api, &owner, &format!("?subject={queue}")).await;
    assert_eq!(
        types(&on_queue),
        vec![
            "QueueCreated",
            "QueueSettingsChanged",
            "QueueHandlerAdded",
            "QueueOpened"
        ],
        "{on_queue:?}"
    );
    let queue_changes = audit(&api, &owner, "?type=QueueCreated,QueueOpened").await;
    assert_eq!(types(&queue_changes), vec!["QueueCreated", "QueueOpened"]);
    assert!(audit(&api, &owner, "?to=2001-01-01").await.is_empty());
    assert_eq!(
        audit(&api, &owner, "?from=2001-01-01").await.len(),
        all.len()
    );

    // Pages by position.
    let first = audit(&api, &owner, "?limit=2").await;
    assert_eq!(first.len(), 2);
    let rest = audit(&api, &owner, &format!("?after={}", first[1]["position"])).await;
    assert_eq!(first.len() + rest.len(), all.len());

    // Newest first, paged backwards.
    let newest = audit(&api, &owner, "?order=desc&limit=3").await;
    assert_eq!(newest[0]["position"], all.last().unwrap()["position"]);
    let older = audit(
        &api,
        &owner,
        &format!("?order=desc&after={}", newest[2]["position"]),
    )
    .await;
    assert_eq!(newest.len() + older.len(), all.len());
    assert!(older[0]["position"].as_i64() < newest[2]["position"].as_i64());

    // The same rows as CSV.
    let csv = api
        .get(
            &format!("/v1/orgs/{}/audit?format=csv", owner.organization_id),
            owner.token(),
        )
        .await
        .expect(200, "the CSV export");
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    assert!(csv
        .header("content-disposition")
        .unwrap()
        .contains("attachment"));
    let lines: Vec<&str> = csv.text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(
        lines[0],
        "position,at,type,actor_kind,actor_id,actor_name,subject,details"
    );
    assert_eq!(lines.len(), all.len() + 1, "{}", csv.text);
    assert!(csv.text.contains("\"MemberRoleChanged\""));

    // Operators only; the caller's own organization only; bad filters change nothing.
    let agent = api::invite_and_accept(&api, &owner, "agent", "Plain agent").await;
    let path = format!("/v1/orgs/{}/audit", owner.organization_id);
    api.get(&path, agent.token())
        .await
        .expect_problem(403, "an agent reading the audit");
    let stranger = api::sign_up(&api, "Elsewhere").await;
    api.get(&path, stranger.token())
        .await
        .expect_problem(404, "another organization's audit");
    api.get(&format!("{path}?type=MessageSent"), owner.token())
        .await
        .expect_problem(422, "a type that is not audited");
    api.get(&format!("{path}?format=xml"), owner.token())
        .await
        .expect_problem(422, "an unknown format");
    api.get(&format!("{path}?order=sideways"), owner.token())
        .await
        .expect_problem(422, "an unknown order");
    api.get(&format!("{path}?actor=nobody"), owner.token())
        .await
        .expect_problem(400, "an actor that is not an id");
    api.get(&format!("{path}?after=x"), owner.token())
        .await
        .expect_problem(400, "a cursor that is not a position");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_read_who_changed_what() {
    who_did_what(&Storage::embedded()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_read_who_changed_what_on_postgres() {
    if let Some(storage) = Storage::postgres() {
        who_did_what(&storage).await;
    }
}
