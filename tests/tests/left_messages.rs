//! Messages left when nobody can answer, and conversations that continue after their end
//! (issue 16, items 2 and 5): the widget's public face says when to offer the form (closed,
//! full, or — with `leave_message_when_offline` — no handler online); a left message is a
//! `left_message` conversation of its queue, shown to its agents and never in the line; an
//! agent's answer reaches the customer by email (a real SMTP server on loopback); a customer
//! who writes again within the queue's reopening window continues with its agent, and an agent
//! may reopen any ended conversation. On both backends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use jono_tests::api::{self, Agent, Api};
use jono_tests::smtp::Smtp;
use jono_tests::{Server, Storage};
use serde_json::{json, Value};
use uuid::Uuid;

fn start(storage: &Storage, smtp: Option<&Smtp>) -> (Server, Api) {
    let mut env = vec![("JONO_RATE_LIMITS", "off")];
    if let Some(smtp) = smtp {
        env.extend([
            ("JONO_SMTP_URL", smtp.url.as_str()),
            ("JONO_MAIL_FROM", "Jono <jono@example.test>"),
            ("JONO_PUBLIC_URL", "https://chat.example.test"),
        ]);
    }
    api::start_with(storage, &env)
}

async fn public(api: &Api, queue: Uuid) -> Value {
    api.get(&format!("/v1/queues/{queue}/public"), None)
        .await
        .expect(200, "the public face")
        .body
}

/// Whether the public face comes to say `leave_message: want` (it reads the read models).
async fn offers_the_form(api: &Api, queue: Uuid, want: bool) {
    let seen = api::eventually(|| public(api, queue), |p| p["leave_message"] == want).await;
    assert_eq!(seen["leave_message"], want, "{seen}");
}

/// The conversation as the organization's list shows it, once `done` holds.
async fn listed(api: &Api, who: &Agent, id: Uuid, done: impl Fn(&Value) -> bool) -> Value {
    let path = format!("/v1/orgs/{}/conversations", who.organization_id);
    api::eventually(
        || async {
            api.get(&path, who.token())
                .await
                .expect(200, "the list")
                .body
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["id"] == json!(id))
                .cloned()
                .unwrap_or(Value::Null)
        },
        |c| done(c),
    )
    .await
}

async fn settings(api: &Api, owner: &Agent, queue: Uuid, body: Value) {
    api.put(
        &format!("/v1/queues/{queue}/settings"),
        owner.token(),
        body.clone(),
    )
    .await
    .expect(200, &format!("settings {body}"));
}

async fn leave_a_message_and_get_the_answer_by_email(storage: &Storage) {
    let smtp = Smtp::start();
    let (_server, api) = start(storage, smtp.as_ref());
    let owner = api::sign_up(&api, "Acme").await;
    let queue = api::create_queue(&api, &owner, "Support").await;
    api::add_handler(&api, &owner, queue, owner.agent_id).await;

    // Closed: the widget offers the form, and a join is refused.
    offers_the_form(&api, queue, true).await;
    api.post(&format!("/v1/queues/{queue}/join"), None, json!({}))
        .await
        .expect_problem(409, "joining a closed queue");

    // Bad input is 422 and leaves nothing behind.
    let leave = format!("/v1/queues/{queue}/messages");
    for (bad, why) in [
        (
            json!({"email": "not an address", "text": "Hi"}),
            "a bad email",
        ),
        (
            json!({"email": "lea@example.test", "text": "  "}),
            "blank text",
        ),
        (
            json!({"email": "lea@example.test", "text": "x".repeat(10_001)}),
            "too long a text",
        ),
        (
            json!({"name": "n".repeat(201), "email": "lea@example.test", "text": "Hi"}),
            "too long a name",
        ),
    ] {
        api.post(&leave, None, bad).await.expect_problem(422, why);
    }
    api.post(&leave, None, json!({"text": "no email"}))
        .await
        .expect_problem(400, "no email at all");
    api.post(
        &format!("/v1/queues/{}/messages", Uuid::new_v4()),
        None,
        json!({"email": "lea@example.test", "text": "Hi"}),
    )
    .await
    .expect_problem(404, "an unknown queue");

    let left = api
        .post(
            &leave,
            None,
            json!({"name": "Lea", "email": "Lea@Example.test", "text": "Please call me back.\nAbout my order.", "metadata": {"order": "A-17"}}),
        )
        .await
        .expect(201, "leaving a message");
    let c = left.id("conversation_id");
    // The widget's client sends an Idempotency-Key with every command; a customer's door takes
    // it without a token (each message is a new conversation, like a join).
    let keyed = api
        .raw(
            "POST",
            &leave,
            None,
            Some(br#"{"email": "kim@example.test", "text": "Keyed"}"#.to_vec()),
            &[
                ("idempotency-key", "widget-1"),
                ("content-type", "application/json"),
            ],
        )
        .await
        .expect(201, "a left message with an Idempotency-Key");
    let kim = keyed.id("conversation_id");
    assert_eq!(left.body["answer_by_email"], smtp.is_some());
    assert!(left.body.get("customer_token").is_none(), "{}", left.text);

    // The queue's agents see it: in the list (kind, waiting, the form's fields), in the
    // activity, and it waits in no line.
    let shown = listed(&api, &owner, c, |c| !c.is_null()).await;
    assert_eq!(shown["kind"], "left_message", "{shown}");
    assert_eq!(shown["status"], "waiting");
    assert_eq!(shown["queue_id"], json!(queue));
    let view = api
        .get(&format!("/v1/conversations/{c}"), owner.token())
        .await
        .expect(200, "the left message");
    assert_eq!(
        view.body["customer"]["metadata"]["email"],
        "lea@example.test"
    );
    assert_eq!(view.body["customer"]["metadata"]["name"], "Lea");
    assert_eq!(view.body["customer"]["metadata"]["order"], "A-17");
    let texts = api::texts(&api, owner.token(), c).await;
    assert_eq!(texts, vec!["Please call me back.\nAbout my order."]);
    let activity = api::activity(&api, owner.token()).await;
    assert!(
        activity
            .iter()
            .any(|item| item["type"] == "MessageLeft" && item["conversation_id"] == json!(c)),
        "{activity:?}"
    );
    let kinds = api
        .get(
            &format!(
                "/v1/orgs/{}/conversations?kind=left_message",
                owner.organization_id
            ),
            owner.token(),
        )
        .await
        .expect(200, "left messages only");
    assert_eq!(kinds.body.as_array().unwrap().len(), 2, "{}", kinds.text);
    assert!(kinds.text.contains(&kim.to_string()));
    let q = api
        .get(&format!("/v1/queues/{queue}"), owner.token())
        .await
        .expect(200, "the queue");
    assert_eq!(q.body["waiting"], 0, "a left message is not in the line");
    api::open_queue(&api, &owner, queue).await;
    assert_eq!(api::try_pick(&api, &owner, queue).await, None);

    // The agent answers: it becomes the conversation's agent, and the answer is emailed.
    api::send_message(&api, owner.token(), c, "We will call you at noon.").await;
    let answered = listed(&api, &owner, c, |c| c["status"] == "active").await;
    assert_eq!(answered["agent_id"], json!(owner.agent_id), "{answered}");
    if let Some(smtp) = &smtp {
        let mail = smtp
            .wait_for("lea@example.test", 1, Duration::from_secs(20))
            .await;
        assert_eq!(mail.len(), 1, "{mail:?}");
        assert_eq!(mail[0].subject, "Re: your message to Acme");
        assert!(
            mail[0].body.contains("We will call you at noon."),
            "{mail:?}"
        );
        assert!(mail[0].body.contains("> Please call me back."), "{mail:?}");
        assert!(mail[0].body.contains("> About my order."), "{mail:?}");
    }
    // A private note is never emailed, and the conversation ends like any other.
    api.post(
        &format!("/v1/conversations/{c}/notes"),
        owner.token(),
        json!({"text": "called, no answer"}),
    )
    .await
    .expect(201, "a note");
    api.call(
        "POST",
        &format!("/v1/conversations/{c}/end"),
        owner.token(),
        None,
    )
    .await
    .expect(204, "ending the left message");
    listed(&api, &owner, c, |c| c["status"] == "ended").await;
    if let Some(smtp) = &smtp {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mail = smtp.wait_for("lea@example.test", 1, Duration::ZERO).await;
        assert_eq!(mail.len(), 1, "only the answer was emailed: {mail:?}");
    }

    // Statistics count the messages left (two here), equal over HTTP and from the log.
    let stats = api::eventually(
        || async {
            api.get(&format!("/v1/queues/{queue}/stats"), owner.token())
                .await
                .expect(200, "the statistics")
                .body
        },
        |stats| stats["messages_left"] == 2,
    )
    .await;
    assert_eq!(stats["messages_left"], 2, "{stats}");
    let mut args = vec!["stats".to_owned(), "--queue".into(), queue.to_string()];
    args.extend(["--format".into(), "json".into()]);
    args.extend(storage.args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = jono_tests::jono(&args, &[]);
    assert!(output.status.success(), "{output:?}");
    let from_log: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(from_log["total"]["messages_left"], 2, "{from_log}");

    // Open with a handler offline: the form only with `leave_message_when_offline`.
    offers_the_form(&api, queue, false).await;
    settings(
        &api,
        &owner,
        queue,
        json!({"leave_message_when_offline": true}),
    )
    .await;
    offers_the_form(&api, queue, true).await;
    api.put("/v1/me/status", owner.token(), json!({"status": "online"}))
        .await
        .expect(204, "online");
    offers_the_form(&api, queue, false).await;
    // Full: the form again.
    settings(&api, &owner, queue, json!({"max_waiting": 1})).await;
    api::join(&api, queue, json!({})).await;
    offers_the_form(&api, queue, true).await;
    let shown = api
        .get(&format!("/v1/queues/{queue}"), owner.token())
        .await
        .expect(200, "the queue");
    assert_eq!(shown.body["leave_message_when_offline"], true);
    settings(
        &api,
        &owner,
        queue,
        json!({"leave_message_when_offline": null}),
    )
    .await;
    let shown = api
        .get(&format!("/v1/queues/{queue}"), owner.token())
        .await
        .expect(200, "the queue");
    assert_eq!(shown.body["leave_message_when_offline"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_left_when_nobody_answers_is_answered_by_email() {
    leave_a_message_and_get_the_answer_by_email(&Storage::embedded()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_left_when_nobody_answers_is_answered_by_email_on_postgres() {
    if let Some(storage) = Storage::postgres() {
        leave_a_message_and_get_the_answer_by_email(&storage).await;
    }
}

async fn conversations_continue_after_their_end(storage: &Storage) {
    let (_server, api) = start(storage, None);
    let owner = api::sign_up(&api, "Acme").await;
    let colleague = api::invite_and_accept(&api, &owner, "agent", "Colleague").await;
    let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
    let put = format!("/v1/queues/{queue}/settings");
    for bad in [
        json!({"reopen_window_seconds": 0}),
        json!({"reopen_window_seconds": 86_401}),
    ] {
        api.put(&put, owner.token(), bad.clone())
            .await
            .expect_problem(422, &format!("{bad}"));
    }
    settings(&api, &owner, queue, json!({"reopen_window_seconds": 3600})).await;

    let customer = api::join(&api, queue, json!({"name": "Carla"})).await;
    let c = api::pick(&api, &owner, queue).await;
    assert_eq!(c, customer.conversation_id);
    api::send_message(&api, customer.token(), c, "hello").await;
    let end = format!("/v1/conversations/{c}/end");
    api.call("POST", &end, owner.token(), None)
        .await
        .expect(204, "the agent ends");
    listed(&api, &owner, c, |c| c["status"] == "ended").await;

    // The customer writes again within the window: the same conversation, its agent back,
    // nobody in the line.
    // As the widget sends it: with an Idempotency-Key (the message's, not the reopening's).
    let keyed = |key: &'static str| {
        let api = &api;
        let path = format!("/v1/conversations/{c}/messages");
        let token = customer.token.clone();
        async move {
            api.raw(
                "POST",
                &path,
                Some(&token),
                Some(br#"{"text": "one more thing"}"#.to_vec()),
                &[
                    ("idempotency-key", key),
                    ("content-type", "application/json"),
                ],
            )
            .await
        }
    };
    // Two messages at once (two tabs, a double send): one reopens the conversation, the other
    // finds it reopened (the conversation refuses a second reopening) and is sent all the same.
    let (first, other) = tokio::join!(keyed("again-1"), keyed("again-2"));
    let first = first.expect(201, "writing again within the window");
    other.expect(201, "another message at the same time");
    let repeat = keyed("again-1").await.expect(201, "the same message again");
    assert_eq!(first.body, repeat.body, "a repeat is answered as the first");
    let again = listed(&api, &owner, c, |c| c["status"] == "active").await;
    assert_eq!(again["agent_id"], json!(owner.agent_id), "{again}");
    assert_eq!(
        api::texts(&api, customer.token(), c).await,
        vec!["hello", "one more thing", "one more thing"]
    );
    let q = api
        .get(&format!("/v1/queues/{queue}"), owner.token())
        .await
        .expect(200, "the queue");
    assert_eq!(q.body["waiting"], 0);
    let seen = api
        .get(&format!("/v1/conversations/{c}"), customer.token())
        .await
        .expect(200, "the customer's view");
    assert_eq!(seen.body["status"], "active");
    assert_eq!(seen.body["ended_at"], Value::Null);

    // The reopened conversation is its agent's again in the workload that decides capacity:
    // at a capacity of one, the owner cannot pick another customer while it is open.
    settings(&api, &owner, queue, json!({"capacity_per_agent": 1})).await;
    let next = api::join(&api, queue, json!({"name": "Next"})).await;
    api.call(
        "POST",
        &format!("/v1/queues/{queue}/pick"),
        owner.token(),
        None,
    )
    .await
    .expect_problem(
        409,
        "a pick past capacity, the reopened conversation counted",
    );
    api.call(
        "POST",
        &format!("/v1/conversations/{}/end", next.conversation_id),
        Some(&next.token),
        None,
    )
    .await
    .expect(204, "the next customer leaves");
    settings(&api, &owner, queue, json!({"capacity_per_agent": null})).await;

    // Without a window, writing after the end is refused (the widget starts anew), and
    // nothing changes.
    api.call("POST", &end, customer.token(), None)
        .await
        .expect(204, "the customer ends");
    listed(&api, &owner, c, |c| c["status"] == "ended").await;
    settings(&api, &owner, queue, json!({"reopen_window_seconds": null})).await;
    api.post(
        &format!("/v1/conversations/{c}/messages"),
        customer.token(),
        json!({"text": "are you there?"}),
    )
    .await
    .expect_problem(409, "writing after the end without a window");
    assert_eq!(api::texts(&api, owner.token(), c).await.len(), 3);

    // An agent reopens any ended conversation and becomes its agent.
    let reopen = format!("/v1/conversations/{c}/reopen");
    api.call("POST", &reopen, customer.token(), None)
        .await
        .expect_problem(403, "a customer reopening by the agents' route");
    api.call("POST", &reopen, colleague.token(), None)
        .await
        .expect(204, "the colleague reopens");
    let reopened = listed(&api, &owner, c, |c| c["status"] == "active").await;
    assert_eq!(
        reopened["agent_id"],
        json!(colleague.agent_id),
        "{reopened}"
    );
    api.call("POST", &reopen, colleague.token(), None)
        .await
        .expect_problem(409, "reopening an active conversation");
    let channel = api::create_channel(&api, &owner, "team").await;
    api.call(
        "POST",
        &format!("/v1/conversations/{channel}/reopen"),
        owner.token(),
        None,
    )
    .await
    .expect_problem(409, "reopening a channel");
    api::send_message(&api, customer.token(), c, "thanks").await;
    let activity = api::activity(&api, owner.token()).await;
    assert!(
        activity
            .iter()
            .any(|item| item["type"] == "ConversationReopened"
                && item["conversation_id"] == json!(c)),
        "{activity:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_continues_within_the_window_and_agents_reopen() {
    conversations_continue_after_their_end(&Storage::embedded()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_continues_within_the_window_and_agents_reopen_on_postgres() {
    if let Some(storage) = Storage::postgres() {
        conversations_continue_after_their_end(&storage).await;
    }
}
