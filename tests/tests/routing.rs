//! Auto routing (issue 16, item 1), on SQLite and Postgres: a queue with `routing: auto` offers
//! each waiting customer to one online handler with room (fewest open conversations, then idle
//! longest); the agent accepts or declines; an offer not accepted within
//! `offer_timeout_seconds` passes to the next agent; away and offline agents get none; a manual
//! pick works beside it. And the "one winner" invariant with offers: fifty agents accepting and
//! picking at once, every customer won once, no agent past its capacity.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use jono_tests::api::{self, Agent, Api};
use jono_tests::Storage;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

async fn set_status(api: &Api, agent: &Agent, status: &str) {
    api.put("/v1/me/status", agent.token(), json!({ "status": status }))
        .await
        .expect(204, "declaring a status");
}

async fn settings(api: &Api, owner: &Agent, queue: Uuid, body: Value) -> Value {
    api.put(&format!("/v1/queues/{queue}/settings"), owner.token(), body)
        .await
        .expect(200, "changing the settings")
        .body
}

/// The open offers of the queue: conversation → (agent, offer).
async fn offers(api: &Api, owner: &Agent, queue: Uuid) -> BTreeMap<Uuid, (Uuid, Uuid)> {
    let view = api
        .get(&format!("/v1/queues/{queue}"), owner.token())
        .await
        .expect(200, "the queue");
    view.body["offers"]
        .as_array()
        .expect("offers")
        .iter()
        .map(|offer| {
            let id = |field: &str| offer[field].as_str().unwrap().parse::<Uuid>().unwrap();
            (id("conversation_id"), (id("agent_id"), id("offer_id")))
        })
        .collect()
}

/// Waits (up to 15 s) until the customer's open offer satisfies `done`.
async fn offer_of(
    api: &Api,
    owner: &Agent,
    queue: Uuid,
    customer: Uuid,
    done: impl Fn(Option<&(Uuid, Uuid)>) -> bool,
) -> Option<(Uuid, Uuid)> {
    for _ in 0..150 {
        let open = offers(api, owner, queue).await;
        if done(open.get(&customer)) {
            return open.get(&customer).copied();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the offer of {customer} never became as expected; open: {:?}",
        offers(api, owner, queue).await
    );
}

async fn accept(api: &Api, agent: &Agent, customer: Uuid) -> api::Reply {
    api.call(
        "POST",
        &format!("/v1/conversations/{customer}/offer/accept"),
        agent.token(),
        None,
    )
    .await
}

async fn decline(api: &Api, agent: &Agent, customer: Uuid) -> api::Reply {
    api.call(
        "POST",
        &format!("/v1/conversations/{customer}/offer/decline"),
        agent.token(),
        None,
    )
    .await
}

async fn end(api: &Api, agent: &Agent, conversation: Uuid) {
    api.call(
        "POST",
        &format!("/v1/conversations/{conversation}/end"),
        agent.token(),
        None,
    )
    .await
    .expect(204, "ending");
}

/// The events of the queue's `queue:ID` topic, replayed from its beginning.
async fn queue_topic_events(base: &str, token: &str, queue: Uuid) -> Vec<Value> {
    let url = format!("{}/v1/ws?token={token}", base.replace("http://", "ws://"));
    let (mut socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("a WebSocket");
    let subscribe = json!({"type": "subscribe", "topic": format!("queue:{queue}"), "after": null});
    socket
        .send(Message::Text(subscribe.to_string().into()))
        .await
        .expect("subscribe");
    let mut events = Vec::new();
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(20), socket.next())
            .await
            .expect("a frame in time")
            .expect("the socket open")
            .expect("a frame");
        let Message::Text(text) = frame else { continue };
        let frame: Value = serde_json::from_str(text.as_str()).expect("JSON");
        match frame["type"].as_str() {
            Some("event") => events.push(frame["event"].clone()),
            Some("subscribed") => return events,
            other => panic!("unexpected frame {other:?}: {frame}"),
        }
    }
}

async fn offers_pass_from_agent_to_agent(storage: Storage) {
    let (server, api) = api::start(&storage);
    let owner = api::sign_up(&api, "Acme").await;
    let queue = api::create_queue(&api, &owner, "Support").await;
    let busy = api::invite_and_accept(&api, &owner, "agent", "Busy").await;
    let fresh = api::invite_and_accept(&api, &owner, "agent", "Fresh").await;
    let rested = api::invite_and_accept(&api, &owner, "agent", "Rested").await;
    let away = api::invite_and_accept(&api, &owner, "agent", "Away").await;
    let offline = api::invite_and_accept(&api, &owner, "agent", "Offline").await;
    for agent in [&busy, &fresh, &rested, &away, &offline] {
        api::add_handler(&api, &owner, queue, agent.agent_id).await;
    }
    api::open_queue(&api, &owner, queue).await;
    let view = api
        .get(&format!("/v1/queues/{queue}"), owner.token())
        .await
        .expect(200, "the queue");
    assert_eq!(view.body["routing"], "manual", "manual by default");
    assert_eq!(view.body["offer_timeout_seconds"], 30);

    // Manual routing, as the seed: "busy" keeps one conversation, "rested" had one and ended it.
    api::join(&api, queue, json!({"name": "Early"})).await;
    let kept = api::pick(&api, &busy, queue).await;
    api::join(&api, queue, json!({"name": "Done"})).await;
    let done = api::pick(&api, &rested, queue).await;
    end(&api, &rested, done).await;
    for agent in [&busy, &fresh, &rested] {
        set_status(&api, agent, "online").await;
    }
    set_status(&api, &away, "away").await;

    // A manual queue offers nobody.
    let first = api::join(&api, queue, json!({"name": "First"})).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(offers(&api, &owner, queue).await.is_empty());
    assert_eq!(
        accept(&api, &fresh, first.conversation_id).await.status,
        409,
        "no offer to accept"
    );

    let changed = settings(
        &api,
        &owner,
        queue,
        json!({"routing": "auto", "offer_timeout_seconds": 2, "capacity_per_agent": 2}),
    )
    .await;
    assert_eq!(changed["routing"], "auto");
    assert_eq!(changed["offer_timeout_seconds"], 2);
    for bad in [
        json!({"routing": "random"}),
        json!({"offer_timeout_seconds": 0}),
    ] {
        api.put(&format!("/v1/queues/{queue}/settings"), owner.token(), bad)
            .await
            .expect_problem(422, "a bad routing setting");
    }

    // Fewest open conversations first ("busy" has one), then idle longest: "fresh" never took
    // a conversation, "rested" did.
    let customer = first.conversation_id;
    let (to, first_offer) = offer_of(&api, &owner, queue, customer, |o| o.is_some())
        .await
        .unwrap();
    assert_eq!(to, fresh.agent_id, "the idlest of the least busy");
    let refused = accept(&api, &busy, customer).await;
    assert_eq!(
        refused.status, 409,
        "someone else's offer: {}",
        refused.text
    );
    assert!(refused.text.contains("another agent"), "{}", refused.text);

    // Declined: it passes to "rested" (no conversation open), never back to "fresh".
    decline(&api, &fresh, customer)
        .await
        .expect(204, "declining");
    assert_eq!(decline(&api, &fresh, customer).await.status, 409);
    let (to, second_offer) = offer_of(&api, &owner, queue, customer, |o| {
        o.is_some_and(|(_, offer)| *offer != first_offer)
    })
    .await
    .unwrap();
    assert_eq!(to, rested.agent_id, "a decline passes the customer on");

    // Not accepted within 2 s: it passes to "busy", the one left (never to the away or the
    // offline handler).
    let (to, _) = offer_of(&api, &owner, queue, customer, |o| {
        o.is_some_and(|(_, offer)| *offer != second_offer)
    })
    .await
    .unwrap();
    assert_eq!(to, busy.agent_id, "an expired offer passes on");
    let late = accept(&api, &rested, customer).await;
    assert_eq!(late.status, 409, "an expired offer: {}", late.text);

    let accepted = accept(&api, &busy, customer).await.expect(201, "accepting");
    assert_eq!(accepted.id("conversation_id"), customer);
    let view = api
        .get(&format!("/v1/conversations/{customer}"), busy.token())
        .await
        .expect(200, "the accepted conversation");
    assert_eq!(view.body["agent_id"], json!(busy.agent_id));
    assert_eq!(view.body["status"], "active");
    assert_eq!(accept(&api, &busy, customer).await.status, 409, "once");

    // "busy" is at its capacity of 2 now: its workload's stream refuses a third, by hand too,
    // and the next customer is offered to another agent ("fresh": no conversation, never took
    // one; declining the first customer says nothing of this one).
    let second = api::join(&api, queue, json!({"name": "Second"})).await;
    let full = api
        .call(
            "POST",
            &format!("/v1/queues/{queue}/pick"),
            busy.token(),
            None,
        )
        .await;
    assert_eq!(full.status, 409, "at capacity: {}", full.text);
    assert!(full.text.contains("open conversations"), "{}", full.text);
    let (to, _) = offer_of(&api, &owner, queue, second.conversation_id, |o| o.is_some())
        .await
        .unwrap();
    assert_eq!(to, fresh.agent_id);

    // A manual pick beside the offers takes the longest-waiting customer, offered or not; the
    // offer is over.
    let picked = api::pick(&api, &rested, queue).await;
    assert_eq!(picked, second.conversation_id);
    let lost = accept(&api, &fresh, picked).await;
    assert_eq!(lost.status, 409, "the pick won: {}", lost.text);

    // Nobody online with room: nobody is offered; an agent coming online is.
    end(&api, &busy, kept).await;
    for agent in [&busy, &fresh, &rested] {
        set_status(&api, agent, "away").await;
    }
    let third = api::join(&api, queue, json!({"name": "Third"})).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        offers(&api, &owner, queue)
            .await
            .get(&third.conversation_id),
        None,
        "away and offline agents get no offers"
    );
    set_status(&api, &busy, "online").await;
    let (to, _) = offer_of(&api, &owner, queue, third.conversation_id, |o| o.is_some())
        .await
        .unwrap();
    assert_eq!(to, busy.agent_id, "room again once a conversation ended");
    accept(&api, &busy, third.conversation_id)
        .await
        .expect(201, "accepting");

    // Every offer, decline, expiry and acceptance is an event of the queue's topic; none
    // was ever made to the away or the offline handler.
    let events = queue_topic_events(&server.base, owner.token().unwrap(), queue).await;
    let count = |kind: &str| events.iter().filter(|e| e["type"] == kind).count();
    assert_eq!(count("CustomerOffered"), 5, "{events:?}");
    assert_eq!(count("OfferDeclined"), 1);
    assert_eq!(count("OfferExpired"), 1);
    assert_eq!(count("OfferAccepted"), 2);
    for event in events.iter().filter(|e| e["type"] == "CustomerOffered") {
        for nobody in [&away, &offline] {
            assert_ne!(event["agent_id"], json!(nobody.agent_id), "{event}");
        }
    }
    // And the statistics count them.
    let stats = api
        .get(&format!("/v1/queues/{queue}/stats"), owner.token())
        .await
        .expect(200, "the statistics");
    assert_eq!(
        stats.body["offers"],
        json!({"offered": 5, "accepted": 2, "declined": 1, "expired": 1})
    );
}
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn offers_pass_from_agent_to_agent_on_sqlite() {
    offers_pass_from_agent_to_agent(Storage::embedded()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn offers_pass_from_agent_to_agent_on_postgres() {
    let Some(storage) = Storage::postgres() else {
        return;
    };
    offers_pass_from_agent_to_agent(storage).await;
}

/// Fifty online agents with room for one conversation each; thirty customers wait, each under
/// an offer to a different agent. Every agent at once accepts its offer (if it has one) and
/// presses "pick" twice. Each customer is won exactly once, no agent ends up with more than
/// one conversation, and nothing answers 5xx.
async fn fifty_agents_accept_and_pick_at_once(storage: Storage) {
    let (_server, api) = api::start(&storage);
    let owner = api::sign_up(&api, "Acme").await;
    let queue = api::create_queue(&api, &owner, "Support").await;
    let mut agents: Vec<Agent> = Vec::new();
    for n in 0..50 {
        let agent = api::invite_and_accept(&api, &owner, "agent", &format!("Agent {n}")).await;
        api::add_handler(&api, &owner, queue, agent.agent_id).await;
        set_status(&api, &agent, "online").await;
        agents.push(agent);
    }
    api::open_queue(&api, &owner, queue).await;
    let mut customers = BTreeSet::new();
    for n in 0..30 {
        let customer = api::join(&api, queue, json!({"name": format!("Customer {n}")})).await;
        customers.insert(customer.conversation_id);
    }
    settings(
        &api,
        &owner,
        queue,
        json!({"routing": "auto", "offer_timeout_seconds": 600, "capacity_per_agent": 1}),
    )
    .await;
    let mut open = BTreeMap::new();
    for _ in 0..300 {
        open = offers(&api, &owner, queue).await;
        if open.len() == customers.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(open.len(), 30, "every customer under an offer: {open:?}");
    let offered: BTreeMap<Uuid, Uuid> = open
        .iter()
        .map(|(customer, (agent, _))| (*agent, *customer))
        .collect();
    assert_eq!(offered.len(), 30, "one offer per agent at a time");

    let racers = agents.iter().map(|agent| {
        let api = api.clone();
        let agent = agent.clone();
        let mine = offered.get(&agent.agent_id).copied();
        async move {
            let path = format!("/v1/queues/{queue}/pick");
            let pick = || api.call("POST", &path, agent.token(), None);
            let accepting = async {
                match mine {
                    Some(customer) => Some(accept(&api, &agent, customer).await),
                    None => None,
                }
            };
            let (accepted, first, second) = tokio::join!(accepting, pick(), pick());
            let mut replies: Vec<api::Reply> = vec![first, second];
            replies.extend(accepted);
            (agent.agent_id, replies)
        }
    });
    let results = futures::future::join_all(racers).await;

    let mut won: BTreeMap<Uuid, Uuid> = BTreeMap::new();
    for (agent_id, replies) in &results {
        let mut wins = 0;
        for reply in replies {
            match reply.status {
                201 => {
                    wins += 1;
                    let customer = reply.id("conversation_id");
                    assert!(
                        won.insert(customer, *agent_id).is_none(),
                        "{customer} was won twice"
                    );
                }
                409 => {}
                other => panic!("a racer gets 201 or 409, got {other} {}", reply.text),
            }
        }
        assert!(wins <= 1, "agent {agent_id} won {wins} with room for one");
    }
    assert_eq!(
        won.keys().copied().collect::<BTreeSet<_>>(),
        customers,
        "every customer won exactly once"
    );

    // After the race, as the API reads it: each conversation with its winner, no agent with
    // more than one open conversation.
    let list = api
        .get(
            &format!(
                "/v1/orgs/{}/conversations?status=active&limit=1000",
                owner.organization_id
            ),
            owner.token(),
        )
        .await
        .expect(200, "the active conversations");
    let mut per_agent: BTreeMap<String, usize> = BTreeMap::new();
    let mut active = 0;
    for conversation in list.body.as_array().expect("a list") {
        if conversation["kind"] != "customer" {
            continue;
        }
        active += 1;
        let id: Uuid = conversation["id"].as_str().unwrap().parse().unwrap();
        assert_eq!(
            conversation["agent_id"],
            json!(won[&id]),
            "the winner has it"
        );
        *per_agent
            .entry(conversation["agent_id"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(active, 30);
    assert!(per_agent.values().all(|n| *n == 1), "{per_agent:?}");
    assert!(
        offers(&api, &owner, queue).await.is_empty(),
        "no offer left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_agents_accept_and_pick_at_once_on_sqlite() {
    fifty_agents_accept_and_pick_at_once(Storage::embedded()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_agents_accept_and_pick_at_once_on_postgres() {
    let Some(storage) = Storage::postgres() else {
        return;
    };
    fifty_agents_accept_and_pick_at_once(storage).await;
}

/// A pick also appends to the agent's workload stream, whose events name the conversation; a
/// live `conversation:` subscriber gets exactly what a replay of the conversation would (the
/// pick, not the workload's bookkeeping).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_conversations_topic_carries_no_workload_events_live_or_replayed() {
    let storage = Storage::embedded();
    let (server, api) = api::start(&storage);
    let owner = api::sign_up(&api, "Acme").await;
    let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
    let customer = api::join(&api, queue, json!({"name": "Ann"})).await;
    let url = format!(
        "{}/v1/ws?token={}",
        server.base.replace("http://", "ws://"),
        owner.token
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("a WebSocket");
    let topic = format!("conversation:{}", customer.conversation_id);
    let subscribe = json!({"type": "subscribe", "topic": topic, "after": null});
    socket
        .send(Message::Text(subscribe.to_string().into()))
        .await
        .expect("subscribe");
    api::pick(&api, &owner, queue).await;
    api::send_message(&api, owner.token(), customer.conversation_id, "Hello").await;
    let mut live = Vec::new();
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(20), socket.next())
            .await
            .expect("a frame in time")
            .expect("the socket open")
            .expect("a frame");
        let Message::Text(text) = frame else { continue };
        let frame: Value = serde_json::from_str(text.as_str()).expect("JSON");
        if frame["type"] == "event" {
            let kind = frame["event"]["type"].as_str().unwrap().to_owned();
            let done = kind == "MessageSent";
            live.push(kind);
            if done {
                break;
            }
        }
    }
    assert!(live.iter().any(|t| t == "CustomerPicked"), "{live:?}");
    assert!(!live.iter().any(|t| t == "ConversationTaken"), "{live:?}");
}
