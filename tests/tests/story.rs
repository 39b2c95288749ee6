//! The seed's whole story over HTTP: an owner signs up and opens a queue, a customer joins, the
//! agent sees it in its activity, picks, both chat, the agent uses a canned response, tags,
//! writes a note the customer never sees, updates the metadata; the customer ends and rates;
//! transcripts and statistics tell the same story.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use jono_tests::api::{self, eventually};
use jono_tests::Storage;
use serde_json::{json, Value};

/// The fields a customer may see of its conversation (API.md's allow-list).
const CUSTOMER_VIEW: [&str; 7] = [
    "id",
    "kind",
    "status",
    "queue_position",
    "agent",
    "created_at",
    "ended_at",
];

fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .map(|object| object.keys().cloned().collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_customer_is_served_from_join_to_rating() {
    serve_a_customer_from_join_to_rating(Storage::embedded()).await;
}

#[tokio::test]
async fn a_customer_is_served_from_join_to_rating_on_postgres() {
    let Some(storage) = Storage::postgres() else {
        return;
    };
    serve_a_customer_from_join_to_rating(storage).await;
}

async fn serve_a_customer_from_join_to_rating(storage: Storage) {
    let (_server, api) = api::start(&storage);
    let owner = api::sign_up(&api, "Acme").await;
    let queue = api::open_queue_handled_by(&api, &owner, "Support").await;

    // A customer joins with the pre-chat form's answers and is next in line.
    let customer = api::join(
        &api,
        queue,
        json!({"name": "Cora Customer", "email": "cora@example.com"}),
    )
    .await;
    assert_eq!(customer.queue_position, 1);

    // The agent's activity shows the customer waiting.
    let joined = eventually(
        || api::activity(&api, owner.token()),
        |items| {
            items.iter().any(|item| {
                item["type"] == "CustomerJoinedQueue"
                    && item["conversation_id"] == json!(customer.conversation_id)
            })
        },
    )
    .await;
    let item = joined
        .iter()
        .find(|item| item["type"] == "CustomerJoinedQueue")
        .unwrap_or_else(|| panic!("CustomerJoinedQueue in the activity: {joined:?}"));
    assert_eq!(item["queue_id"], json!(queue));
    assert_eq!(item["organization_id"], json!(owner.organization_id));
    let positions: Vec<i64> = joined
        .iter()
        .map(|item| item["position"].as_i64().unwrap())
        .collect();
    assert!(
        positions.windows(2).all(|pair| pair[0] < pair[1]),
        "oldest first: {positions:?}"
    );

    // The agent picks the customer who waits.
    let picked = api::pick(&api, &owner, queue).await;
    assert_eq!(picked, customer.conversation_id);
    let conversation = customer.conversation_id;
    let path = format!("/v1/conversations/{conversation}");

    // Both chat; without a welcome message the first message is seq 1.
    let (_, seq) = api::send_message(
        &api,
        customer.token(),
        conversation,
        "Hello, my order is late",
    )
    .await;
    assert_eq!(seq, 1);
    let (_, seq) = api::send_message(&api, owner.token(), conversation, "Let me look.").await;
    assert_eq!(seq, 2);

    // A canned response, then its text as a message.
    let canned_text = "Your parcel left our warehouse today.";
    let canned = api
        .post(
            "/v1/canned-responses",
            owner.token(),
            json!({"key": "shipped", "text": canned_text}),
        )
        .await
        .expect(201, "creating a canned response")
        .id("id");
    let list = api
        .get("/v1/canned-responses", owner.token())
        .await
        .expect(200, "listing canned responses");
    let mine = list
        .body
        .as_array()
        .expect("a list")
        .iter()
        .find(|item| item["id"] == json!(canned))
        .unwrap_or_else(|| panic!("the new canned response is listed: {}", list.text))
        .clone();
    assert_eq!(mine["key"], "shipped");
    assert_eq!(mine["organization_id"], Value::Null, "a personal one");
    let text = mine["text"].as_str().unwrap();
    let (_, seq) = api::send_message(&api, owner.token(), conversation, text).await;
    assert_eq!(seq, 3);

    // A tag and a note.
    api.post(
        &format!("{path}/tags"),
        owner.token(),
        json!({"tag": "shipping"}),
    )
    .await
    .expect(204, "tagging");
    let note_text = "Customer sounds upset: offer a voucher";
    let note = api
        .post(
            &format!("{path}/notes"),
            owner.token(),
            json!({"text": note_text}),
        )
        .await
        .expect(201, "adding a note")
        .id("note_id");
    let notes = api
        .get(&format!("{path}/notes"), owner.token())
        .await
        .expect(200, "reading notes");
    let notes = notes.body.as_array().expect("a list of notes");
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0]["id"], json!(note));
    assert_eq!(notes[0]["text"], note_text);
    assert_eq!(notes[0]["author"]["id"], json!(owner.agent_id));

    // The agent's view has everything; the customer's only its allow-list.
    let agent_view = api
        .get(&path, owner.token())
        .await
        .expect(200, "the agent's view");
    let agent_view = agent_view.body;
    assert_eq!(agent_view["id"], json!(conversation));
    assert_eq!(agent_view["kind"], "customer");
    assert_eq!(agent_view["status"], "active");
    assert_eq!(agent_view["agent_id"], json!(owner.agent_id));
    assert_eq!(agent_view["queue_id"], json!(queue));
    assert_eq!(agent_view["organization_id"], json!(owner.organization_id));
    assert_eq!(agent_view["tags"], json!(["shipping"]));
    assert_eq!(
        agent_view["customer"]["metadata"]["email"],
        "cora@example.com"
    );
    let customer_view = api
        .get(&path, customer.token())
        .await
        .expect(200, "the customer's view");
    let allowed: BTreeSet<String> = CUSTOMER_VIEW.iter().map(|key| key.to_string()).collect();
    let shown = keys(&customer_view.body);
    assert!(
        shown.is_subset(&allowed),
        "the customer sees only {allowed:?}, got {shown:?}"
    );
    for hidden in ["tags", "customer", "metadata", "notes", "agent_id"] {
        assert!(
            customer_view.body.get(hidden).is_none(),
            "{hidden} is not for the customer: {}",
            customer_view.text
        );
    }
    assert_eq!(customer_view.body["status"], "active");
    assert_eq!(customer_view.body["agent"]["name"], "Olivia Owner");

    // The customer reads every message and never the note.
    let seen = api::messages(&api, customer.token(), conversation).await;
    let seqs: Vec<i64> = seen.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert_eq!(seen[0]["author"]["kind"], "customer");
    assert_eq!(seen[1]["author"]["kind"], "agent");
    assert_eq!(seen[1]["author"]["id"], json!(owner.agent_id));
    assert_eq!(seen[2]["text"], canned_text);
    let everything = serde_json::to_string(&seen).unwrap();
    assert!(
        !everything.contains(note_text),
        "a note reached the customer"
    );
    api.get(&format!("{path}/notes"), customer.token())
        .await
        .expect(
            403,
            "notes are for agents; the customer knows its conversation",
        );

    // Metadata: the agent corrects it, the customer adds to it.
    api.put(
        &format!("{path}/metadata"),
        owner.token(),
        json!({"name": "Cora Customer", "email": "cora@example.org", "plan": "gold"}),
    )
    .await
    .expect(204, "the agent sets metadata");
    let view = api
        .get(&path, owner.token())
        .await
        .expect(200, "agent view");
    assert_eq!(view.body["customer"]["metadata"]["plan"], "gold");
    assert_eq!(
        view.body["customer"]["metadata"]["email"],
        "cora@example.org"
    );
    api.put(
        &format!("{path}/metadata"),
        customer.token(),
        json!({"name": "Cora C.", "email": "cora@example.org", "order": "A-17"}),
    )
    .await
    .expect(204, "the customer sets metadata");
    let view = api
        .get(&path, owner.token())
        .await
        .expect(200, "agent view");
    assert_eq!(view.body["customer"]["metadata"]["order"], "A-17");

    // The customer ends the conversation and rates it once.
    api.call("POST", &format!("{path}/end"), customer.token(), None)
        .await
        .expect(204, "the customer ends");
    let view = api.get(&path, customer.token()).await.expect(200, "view");
    assert_eq!(view.body["status"], "ended");
    assert!(view.body["ended_at"].is_string(), "{}", view.text);
    api.post(
        &format!("{path}/messages"),
        customer.token(),
        json!({"text": "one more thing"}),
    )
    .await
    .expect_problem(409, "an ended conversation takes no message");
    api.post(
        &format!("{path}/rating"),
        customer.token(),
        json!({"score": 5, "comment": "Quick and kind"}),
    )
    .await
    .expect(204, "rating");
    api.post(
        &format!("{path}/rating"),
        customer.token(),
        json!({"score": 4}),
    )
    .await
    .expect_problem(409, "a second rating");

    // Transcripts: the agent's has the note, the customer's never.
    let agent_json = api
        .get(&format!("{path}/transcript?format=json"), owner.token())
        .await
        .expect(200, "the agent's JSON transcript");
    assert!(agent_json.text.contains("Hello, my order is late"));
    assert!(agent_json.text.contains(canned_text));
    assert!(agent_json.text.contains(note_text), "{}", agent_json.text);
    let agent_txt = api
        .get(&format!("{path}/transcript?format=txt"), owner.token())
        .await
        .expect(200, "the agent's text transcript");
    assert_eq!(
        agent_txt.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert!(agent_txt.text.contains("Hello, my order is late"));
    assert!(agent_txt.text.contains(note_text), "{}", agent_txt.text);
    for format in ["json", "txt"] {
        let transcript = api
            .get(
                &format!("{path}/transcript?format={format}"),
                customer.token(),
            )
            .await
            .expect(200, "the customer's transcript");
        assert!(
            transcript.text.contains("Let me look."),
            "{}",
            transcript.text
        );
        assert!(
            !transcript.text.contains(note_text),
            "a note in the customer's {format} transcript"
        );
    }

    // The queue's statistics.
    let stats = api::stats_once(&api, &owner, queue, |stats| {
        stats["rating"]["count"] == json!(1)
    })
    .await;
    assert_eq!(stats["joined"], json!(1), "{stats}");
    assert_eq!(stats["picked"], json!(1), "{stats}");
    assert_eq!(stats["abandoned"], json!(0), "{stats}");
    assert_eq!(stats["rating"]["count"], json!(1), "{stats}");
    assert_eq!(stats["rating"]["mean"].as_f64(), Some(5.0), "{stats}");
    assert_eq!(stats["from"], Value::Null, "an omitted from is null");
    let per_agent = stats["per_agent"].as_array().expect("per_agent");
    assert_eq!(per_agent.len(), 1, "{stats}");
    assert_eq!(per_agent[0]["agent_id"], json!(owner.agent_id));

    // Over HTTP the figures come from the `stats` read model, in `jono stats` from the log:
    // for the same window they are the same, to the microsecond.
    let to = "2100-01-01T00:00:00Z";
    let over_http = api
        .get(&format!("/v1/queues/{queue}/stats?to={to}"), owner.token())
        .await
        .expect(200, "statistics up to a time")
        .body;
    let queue_arg = queue.to_string();
    let mut args = storage.args();
    args.extend(
        [
            "stats", "--queue", &queue_arg, "--to", to, "--format", "json",
        ]
        .map(String::from),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let printed = jono_tests::jono(&args, &[]);
    assert!(
        printed.status.success(),
        "jono stats: {}",
        String::from_utf8_lossy(&printed.stderr)
    );
    let from_log: Value = serde_json::from_slice(&printed.stdout).expect("jono stats' JSON");
    assert_eq!(
        from_log["total"], over_http,
        "the read model's figures are the log's"
    );

    // The activity tells the rest: picked and ended.
    let items = eventually(
        || api::activity(&api, owner.token()),
        |items| items.iter().any(|item| item["type"] == "ConversationEnded"),
    )
    .await;
    let types: Vec<&str> = items
        .iter()
        .filter(|item| item["conversation_id"] == json!(conversation))
        .map(|item| item["type"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        types,
        ["CustomerJoinedQueue", "CustomerPicked", "ConversationEnded"],
        "{items:?}"
    );
}

#[tokio::test]
async fn a_welcome_message_is_message_one_and_the_chat_starts_at_two() {
    let storage = Storage::embedded();
    let (_server, api) = api::start(&storage);
    let owner = api::sign_up(&api, "Acme").await;
    let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
    let welcome = "Welcome to Acme! An agent will be with you shortly.";
    let settings = api
        .put(
            &format!("/v1/queues/{queue}/settings"),
            owner.token(),
            json!({"welcome_message": welcome}),
        )
        .await
        .expect(200, "setting a welcome message");
    assert_eq!(settings.body["id"], json!(queue), "{}", settings.text);
    let public = api
        .get(&format!("/v1/queues/{queue}/public"), None)
        .await
        .expect(200, "the widget's view");
    assert_eq!(public.body["welcome_message"], welcome);
    assert_eq!(public.body["open"], true);

    let customer = api::join(&api, queue, json!({})).await;
    let conversation = customer.conversation_id;
    assert_eq!(api::pick(&api, &owner, queue).await, conversation);
    let (_, seq) = api::send_message(&api, customer.token(), conversation, "Hi").await;
    assert_eq!(seq, 2, "the welcome message is 1");
    let (_, seq) = api::send_message(&api, owner.token(), conversation, "Hello!").await;
    assert_eq!(seq, 3);

    let seen = api::messages(&api, customer.token(), conversation).await;
    let seqs: Vec<i64> = seen.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert_eq!(seen[0]["author"]["kind"], "system");
    assert_eq!(seen[0]["text"], welcome);
    // Paging by seq: after the welcome message comes the chat.
    let page = api
        .get(
            &format!("/v1/conversations/{conversation}/messages?after=1&limit=1"),
            customer.token(),
        )
        .await
        .expect(200, "a page");
    let page = page.body.as_array().expect("a list").clone();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0]["seq"], 2);
    assert_eq!(page[0]["text"], "Hi");
}

#[tokio::test]
async fn a_second_customer_waits_behind_the_first_and_is_picked_second() {
    let storage = Storage::embedded();
    let (_server, api) = api::start(&storage);
    let owner = api::sign_up(&api, "Acme").await;
    let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
    let first = api::join(&api, queue, json!({})).await;
    let second = api::join(&api, queue, json!({})).await;
    assert_eq!((first.queue_position, second.queue_position), (1, 2));
    assert_eq!(api::pick(&api, &owner, queue).await, first.conversation_id);
    assert_eq!(api::pick(&api, &owner, queue).await, second.conversation_id);
    api.call(
        "POST",
        &format!("/v1/queues/{queue}/pick"),
        owner.token(),
        None,
    )
    .await
    .expect_problem(409, "nobody waits");
}

#[tokio::test]
async fn a_closed_queue_refuses_joins() {
    let storage = Storage::embedded();
    let (_server, api) = api::start(&storage);
    let owner = api::sign_up(&api, "Acme").await;
    let queue = api::create_queue(&api, &owner, "Support").await;
    let public = api
        .get(&format!("/v1/queues/{queue}/public"), None)
        .await
        .expect(200, "public view");
    assert_eq!(public.body["open"], false, "a new queue is closed");
    api.post(&format!("/v1/queues/{queue}/join"), None, json!({}))
        .await
        .expect_problem(409, "joining a closed queue");
}
