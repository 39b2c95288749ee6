//! Unread counts kept by the server (issue 15, item 1): each agent's read marker is an event of
//! the conversation (`POST /v1/conversations/{c}/read {seq}` → `ConversationRead`), so the count
//! in the conversation list is the same on every device and survives a reload; an agent has read
//! what it wrote; an older marker changes nothing and one past the newest message is 422. On both
//! backends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use jono_tests::api::{self, Agent, Api};
use jono_tests::Storage;
use serde_json::{json, Value};
use uuid::Uuid;

/// `who`'s view of `conversation` in the organization's list, once `done` holds of it.
async fn listed(
    api: &Api,
    who: &Agent,
    conversation: Uuid,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let org = who.organization_id;
    api::eventually(
        || async {
            let reply = api
                .get(&format!("/v1/orgs/{org}/conversations"), who.token())
                .await
                .expect(200, "the list");
            reply
                .body
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["id"] == json!(conversation))
                .cloned()
                .unwrap_or(Value::Null)
        },
        |c| done(c),
    )
    .await
}

async fn unread_is(api: &Api, who: &Agent, conversation: Uuid, n: i64) {
    let seen = listed(api, who, conversation, |c| c["unread"] == json!(n)).await;
    assert_eq!(seen["unread"], json!(n), "{}'s view: {seen}", who.email);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_agent_has_its_own_unread_count_on_every_device() {
    for storage in [Some(Storage::embedded()), Storage::postgres()]
        .into_iter()
        .flatten()
    {
        let (_server, api) = api::start_with(&storage, &[("JONO_RATE_LIMITS", "off")]);
        let owner = api::sign_up(&api, "Acme").await;
        let colleague = api::invite_and_accept(&api, &owner, "agent", "Colleague").await;
        let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
        let customer = api::join(&api, queue, json!({"name": "Carla"})).await;
        let c = api::pick(&api, &owner, queue).await;
        for text in ["one", "two", "three"] {
            api::send_message(&api, Some(&customer.token), c, text).await;
        }
        unread_is(&api, &owner, c, 3).await;
        unread_is(&api, &colleague, c, 3).await;
        assert_eq!(listed(&api, &owner, c, |_| true).await["last_seq"], 3);

        // Writing is reading: the owner's reply leaves it nothing unread; the colleague one more.
        api::send_message(&api, owner.token(), c, "hello Carla").await;
        unread_is(&api, &owner, c, 0).await;
        unread_is(&api, &colleague, c, 4).await;

        let read = format!("/v1/conversations/{c}/read");
        api.post(&read, colleague.token(), json!({"seq": 2}))
            .await
            .expect(204, "read up to message 2");
        unread_is(&api, &colleague, c, 2).await;
        // Another device of the same agent sees the same count.
        let again = api::login(&api, &colleague.email, &colleague.password).await;
        let device = Agent {
            token: again,
            ..colleague.clone()
        };
        unread_is(&api, &device, c, 2).await;
        // An older marker changes nothing; a marker past the newest message is refused.
        api.post(&read, colleague.token(), json!({"seq": 1}))
            .await
            .expect(204, "an older marker");
        unread_is(&api, &colleague, c, 2).await;
        api.post(&read, colleague.token(), json!({"seq": 99}))
            .await
            .expect_problem(422, "a message that does not exist yet");
        api.post(&read, colleague.token(), json!({"seq": "two"}))
            .await
            .expect_problem(400, "not a number");
        // Customers keep no server-side marker; strangers see nothing.
        let refused = api
            .post(&read, Some(&customer.token), json!({"seq": 1}))
            .await;
        assert!(
            matches!(refused.status, 403 | 404),
            "a customer: {}",
            refused.text
        );
        let stranger = api::sign_up(&api, "Globex").await;
        api.post(&read, stranger.token(), json!({"seq": 1}))
            .await
            .expect_problem(404, "a stranger");
        unread_is(&api, &colleague, c, 2).await;
        api.post(&read, colleague.token(), json!({"seq": 4}))
            .await
            .expect(204, "all read");
        unread_is(&api, &colleague, c, 0).await;
    }
}
