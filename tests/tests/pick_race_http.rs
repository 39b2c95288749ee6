//! Invariant 2 over HTTP: twenty agents, each invited and accepted, press "pick" at once for
//! ten waiting customers. Exactly ten win, each a different customer; ten are told 409; no
//! answer is a 5xx.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use jono_tests::api::{self, Agent, Api};
use jono_tests::Storage;
use serde_json::json;

async fn twenty_agents_race_for_ten_customers(storage: Storage) {
    let (_server, api) = api::start(&storage);
    let owner = api::sign_up(&api, "Acme").await;
    let queue = api::create_queue(&api, &owner, "Support").await;
    let mut agents: Vec<Agent> = Vec::new();
    for n in 0..20 {
        let agent = api::invite_and_accept(&api, &owner, "agent", &format!("Agent {n}")).await;
        api::add_handler(&api, &owner, queue, agent.agent_id).await;
        agents.push(agent);
    }
    api::open_queue(&api, &owner, queue).await;
    let mut customers = BTreeSet::new();
    for n in 0..10 {
        let customer = api::join(&api, queue, json!({"name": format!("Customer {n}")})).await;
        assert_eq!(customer.queue_position, n + 1);
        customers.insert(customer.conversation_id);
    }

    let picks = agents.iter().map(|agent| {
        let api: Api = api.clone();
        let token = agent.token.clone();
        async move {
            api.call(
                "POST",
                &format!("/v1/queues/{queue}/pick"),
                Some(&token),
                None,
            )
            .await
        }
    });
    let replies = futures::future::join_all(picks).await;

    let mut won = BTreeSet::new();
    let mut refused = 0;
    for reply in &replies {
        match reply.status {
            201 => {
                let conversation = reply.id("conversation_id");
                assert!(won.insert(conversation), "{conversation} was picked twice");
            }
            409 => refused += 1,
            other => panic!("a racer gets 201 or 409, got {other} {}", reply.text),
        }
    }
    assert_eq!(won.len(), 10, "ten winners");
    assert_eq!(refused, 10, "ten clean refusals");
    assert_eq!(won, customers, "every waiting customer was picked once");

    // Each winner is the agent of the conversation it got.
    for (agent, reply) in agents.iter().zip(&replies) {
        if reply.status == 201 {
            let conversation = reply.id("conversation_id");
            let view = api
                .get(&format!("/v1/conversations/{conversation}"), agent.token())
                .await
                .expect(200, "the winner's view");
            assert_eq!(view.body["agent_id"], json!(agent.agent_id));
            assert_eq!(view.body["status"], "active");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_agents_get_ten_distinct_customers_and_ten_refusals_on_sqlite() {
    twenty_agents_race_for_ten_customers(Storage::embedded()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_agents_get_ten_distinct_customers_and_ten_refusals_on_postgres() {
    let Some(storage) = Storage::postgres() else {
        return;
    };
    twenty_agents_race_for_ten_customers(storage).await;
}
