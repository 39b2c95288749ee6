//! Returning customers (issue 16, item 4): a site signs its user's id, name and an expiry with
//! HMAC-SHA256 under the queue's identity secret (made and shown to operators, kept outside the
//! log); a join with a valid signature records the verified customer, whose conversations are
//! linked for agents; an unsigned, expired or badly signed identity is ignored, and the join's
//! answer says which. The signatures here are made as README documents them, with the tests'
//! own HMAC, not the server's.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use hmac::{Hmac, Mac};
use jono_tests::api::{self, Api};
use jono_tests::Storage;
use serde_json::{json, Value};
use sha2::Sha256;
use uuid::Uuid;

/// README's format: lowercase hex of HMAC-SHA256(secret, "jono-identity-v1\n" + user id + "\n"
/// + name + "\n" + expires).
fn sign(secret: &str, user_id: &str, name: &str, expires: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("jono-identity-v1\n{user_id}\n{name}\n{expires}").as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn identity(secret: &str, user_id: &str, name: &str, expires: i64) -> Value {
    json!({
        "user_id": user_id, "name": name, "expires": expires,
        "signature": sign(secret, user_id, name, expires),
    })
}

fn in_an_hour() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + 3600
}

/// Joins with `identity`: the conversation, its customer token and the answer's `identity`.
async fn join(api: &Api, queue: Uuid, identity: Value) -> (Uuid, String, Value) {
    let reply = api
        .post(
            &format!("/v1/queues/{queue}/join"),
            None,
            json!({"metadata": {"name": "Form name"}, "identity": identity}),
        )
        .await
        .expect(201, "joining with an identity");
    (
        reply.id("conversation_id"),
        reply.body["customer_token"].as_str().unwrap().to_owned(),
        reply.body["identity"].clone(),
    )
}

fn ids(list: &Value) -> Vec<Uuid> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().parse().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_identity_links_a_customers_conversations_and_anything_else_is_ignored() {
    for storage in [Some(Storage::embedded()), Storage::postgres()]
        .into_iter()
        .flatten()
    {
        let (_server, api) = api::start(&storage);
        let owner = api::sign_up(&api, "Acme").await;
        let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
        let secret_path = format!("/v1/queues/{queue}/identity-secret");
        let expires = in_an_hour();

        // No secret yet: nothing can be verified, and the customer joins as a guest.
        let none = api
            .get(&secret_path, owner.token())
            .await
            .expect(200, "no secret");
        assert_eq!(none.body["secret"], Value::Null, "{}", none.text);
        let (early, early_token, answer) =
            join(&api, queue, identity("guess", "u-42", "Ann Lee", expires)).await;
        assert_eq!(answer, json!("not_enabled"));
        // It leaves, so that the next pick is the verified customer's.
        api.call(
            "POST",
            &format!("/v1/conversations/{early}/end"),
            Some(&early_token),
            None,
        )
        .await
        .expect(204, "the guest ends");

        // Operators make the secret and see it; an agent may not.
        let agent = api::invite_and_accept(&api, &owner, "agent", "Aki Agent").await;
        api.post(&secret_path, agent.token(), json!({}))
            .await
            .expect_problem(403, "an agent making the secret");
        let made = api
            .post(&secret_path, owner.token(), json!({}))
            .await
            .expect(201, "making the secret");
        let secret = made.body["secret"].as_str().unwrap().to_owned();
        assert!(secret.len() >= 40, "{secret}");
        let shown = api
            .get(&secret_path, owner.token())
            .await
            .expect(200, "the secret");
        assert_eq!(shown.body["secret"], json!(secret));
        api.get(&secret_path, agent.token())
            .await
            .expect_problem(403, "an agent reading the secret");

        // A verified customer: its first conversation, picked and ended.
        let (first, _, answer) =
            join(&api, queue, identity(&secret, "u-42", "Ann Lee", expires)).await;
        assert_eq!(answer, json!("verified"));
        assert_eq!(api::pick(&api, &owner, queue).await, first);
        api.call(
            "POST",
            &format!("/v1/conversations/{first}/end"),
            owner.token(),
            None,
        )
        .await
        .expect(204, "ending the first conversation");

        // Ignored, each for its reason; the customer joins as a guest.
        let mut unsigned = identity(&secret, "u-42", "Ann Lee", expires);
        unsigned.as_object_mut().unwrap().remove("signature");
        let (guest, _, answer) = join(&api, queue, unsigned).await;
        assert_eq!(answer, json!("unsigned"));
        let past = expires - 7200;
        let (_, _, answer) = join(&api, queue, identity(&secret, "u-42", "Ann Lee", past)).await;
        assert_eq!(answer, json!("expired"));
        let mut forged = identity(&secret, "u-42", "Ann Lee", expires);
        forged["user_id"] = json!("u-1");
        let (_, _, answer) = join(&api, queue, forged).await;
        assert_eq!(answer, json!("bad_signature"));

        // The same user returns: its earlier conversation is listed for agents, not the others.
        let (second, customer_token, answer) =
            join(&api, queue, identity(&secret, "u-42", "Ann Lee", expires)).await;
        assert_eq!(answer, json!("verified"));
        let (stranger, _, _) = join(&api, queue, identity(&secret, "u-43", "Bo", expires)).await;
        let same = |conversation: Uuid, token: Option<String>| {
            let api = &api;
            async move {
                api.get(
                    &format!("/v1/conversations/{conversation}/same-customer"),
                    token.as_deref(),
                )
                .await
            }
        };
        let owner_token = || owner.token().map(str::to_owned);
        let listed = api::eventually(
            || async {
                same(second, owner_token())
                    .await
                    .expect(200, "the same customer's")
                    .body
            },
            |list| ids(list) == vec![first],
        )
        .await;
        assert_eq!(ids(&listed), vec![first], "{listed}");
        assert_eq!(listed[0]["status"], json!("ended"), "{listed}");
        let back = same(first, owner_token())
            .await
            .expect(200, "from the first")
            .body;
        assert_eq!(ids(&back), vec![second], "{back}");
        for other in [guest, stranger] {
            let list = same(other, owner_token())
                .await
                .expect(200, "another's")
                .body;
            assert_eq!(list, json!([]), "{other}");
        }
        let view = api
            .get(&format!("/v1/conversations/{second}"), owner.token())
            .await
            .expect(200, "the agent's view")
            .body;
        assert_eq!(
            view["customer"]["verified"]["user_id"],
            json!("u-42"),
            "{view}"
        );
        assert_eq!(
            view["customer"]["verified"]["name"],
            json!("Ann Lee"),
            "{view}"
        );
        let guest_view = api
            .get(&format!("/v1/conversations/{guest}"), owner.token())
            .await
            .expect(200, "a guest's view")
            .body;
        assert_eq!(
            guest_view["customer"]["verified"],
            Value::Null,
            "{guest_view}"
        );

        // The customer sees none of it.
        same(second, Some(customer_token.clone()))
            .await
            .expect_problem(403, "the customer asking for its other conversations");
        let own = api
            .get(
                &format!("/v1/conversations/{second}"),
                Some(&customer_token),
            )
            .await
            .expect(200, "the customer's view");
        assert!(!own.text.contains("u-42"), "{}", own.text);

        // A new secret: what was signed with the old one is no longer verified.
        let rotated = api
            .post(&secret_path, owner.token(), json!({}))
            .await
            .expect(201, "a new secret");
        let new_secret = rotated.body["secret"].as_str().unwrap().to_owned();
        assert_ne!(new_secret, secret);
        let (_, _, answer) = join(&api, queue, identity(&secret, "u-42", "Ann Lee", expires)).await;
        assert_eq!(answer, json!("bad_signature"));

        // The user id is personal data: the log holds it sealed under the customer's key, never
        // in the clear; the secrets are never in it at all.
        assert!(!jono_tests::in_the_log(&storage, "u-42"));
        assert!(!jono_tests::in_the_log(&storage, &secret));
        assert!(!jono_tests::in_the_log(&storage, &new_secret));
        api.delete(&secret_path, owner.token())
            .await
            .expect(204, "removing the secret");
        let gone = api
            .get(&secret_path, owner.token())
            .await
            .expect(200, "no secret");
        assert_eq!(gone.body["secret"], Value::Null);
    }
}
