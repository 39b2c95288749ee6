//! History and search (issue 15, item 2): the conversation list filters ended conversations by
//! queue, tag and dates as well as status and agent; `GET /v1/orgs/{org}/search?q=` finds
//! messages (and their files' names), notes and customer metadata, newest first and paged, for
//! the organization's members only (a member sees only its own direct chats); any string is a
//! valid query and finds itself. On both backends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use jono_tests::api::{self, Agent, Api};
use jono_tests::Storage;
use serde_json::{json, Value};
use uuid::Uuid;

async fn search(api: &Api, who: &Agent, org: &str, query: &str, extra: &str) -> Vec<Value> {
    let q: String = url_encode(query);
    let reply = api
        .get(&format!("/v1/orgs/{org}/search?q={q}{extra}"), who.token())
        .await
        .expect(200, &format!("searching {query:?}"));
    reply.body.as_array().unwrap().clone()
}

/// Waits until `query` finds something (the index follows the log), then returns the hits.
async fn found(api: &Api, who: &Agent, org: &str, query: &str) -> Vec<Value> {
    api::eventually(|| search(api, who, org, query, ""), |hits| !hits.is_empty()).await
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn conversations_of(hits: &[Value]) -> Vec<String> {
    hits.iter()
        .map(|hit| hit["conversation_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_text_finds_itself_and_only_for_members() {
    for storage in [Some(Storage::embedded()), Storage::postgres()]
        .into_iter()
        .flatten()
    {
        let (_server, api) = api::start_with(&storage, &[("JONO_RATE_LIMITS", "off")]);
        let owner = api::sign_up(&api, "Acme").await;
        let org = owner.organization_id.to_string();
        let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
        let customer = api::join(
            &api,
            queue,
            json!({"name": "Carla Customer", "email": "carla@example.com"}),
        )
        .await;
        let c = api::pick(&api, &owner, queue).await;
        assert_eq!(c, customer.conversation_id);
        let cid = c.to_string();
        api::send_message(
            &api,
            Some(&customer.token),
            c,
            "My ZX81-SPECTRUM will not boot",
        )
        .await;
        api::send_message(&api, owner.token(), c, "Type \"LOAD\" OR * and press enter").await;
        api::send_message(&api, Some(&customer.token), c, "what?!").await;
        api.post(
            &format!("/v1/conversations/{c}/notes"),
            owner.token(),
            json!({"text": "refund approved by Pekka"}),
        )
        .await
        .expect(201, "a note");

        // The words, whatever they hold, as one phrase.
        let hits = found(&api, &owner, &org, "ZX81-SPECTRUM").await;
        assert_eq!(conversations_of(&hits), vec![cid.clone()]);
        assert_eq!(hits[0]["source"], "message");
        assert_eq!(hits[0]["reference"], "1", "the message's seq: {hits:?}");
        assert!(hits[0]["snippet"]
            .as_str()
            .unwrap()
            .contains("ZX81-SPECTRUM"));
        assert_eq!(
            found(&api, &owner, &org, "zx81").await.len(),
            1,
            "a word of it"
        );
        for query in [
            "\"LOAD\" OR *",
            "LOAD\" OR",
            "OR",
            "what?!",
            "?!",
            "refund approved",
            "carla@example.com",
            "Carla Customer",
        ] {
            let hits = found(&api, &owner, &org, query).await;
            assert_eq!(
                conversations_of(&hits),
                vec![cid.clone()],
                "{query:?} finds its conversation: {hits:?}"
            );
        }
        assert_eq!(
            found(&api, &owner, &org, "refund").await[0]["source"],
            "note"
        );
        assert_eq!(
            found(&api, &owner, &org, "carla@example.com").await[0]["source"],
            "metadata"
        );
        // Nothing to find, and queries that are only syntax elsewhere: an empty page, never an error.
        for query in [
            "",
            "   ",
            "NEAR(",
            "zx81 spectrum boots",
            "nonexistent",
            "%",
            "_",
        ] {
            assert!(
                search(&api, &owner, &org, query, "").await.is_empty(),
                "{query:?}"
            );
        }

        // Newest first, paged by position.
        for n in 1..=3 {
            api::send_message(&api, owner.token(), c, &format!("paging test {n}")).await;
        }
        api::eventually(
            || search(&api, &owner, &org, "paging test", ""),
            |hits| hits.len() == 3,
        )
        .await;
        let first = search(&api, &owner, &org, "paging test", "&limit=2").await;
        let texts: Vec<&str> = first
            .iter()
            .map(|hit| hit["snippet"].as_str().unwrap())
            .collect();
        assert_eq!(texts, ["paging test 3", "paging test 2"]);
        let position = first[1]["position"].as_i64().unwrap();
        let rest = search(
            &api,
            &owner,
            &org,
            "paging test",
            &format!("&after={position}"),
        )
        .await;
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0]["snippet"], "paging test 1");

        // Outsiders: another organization's member, a customer, nobody.
        let stranger = api::sign_up(&api, "Globex").await;
        api.get(&format!("/v1/orgs/{org}/search?q=ZX81"), stranger.token())
            .await
            .expect_problem(404, "a stranger");
        let refused = api
            .get(
                &format!("/v1/orgs/{org}/search?q=ZX81"),
                Some(&customer.token),
            )
            .await;
        assert!(
            matches!(refused.status, 401 | 403),
            "a customer: {}",
            refused.text
        );
        api.get(&format!("/v1/orgs/{org}/search?q=ZX81"), None)
            .await
            .expect_problem(401, "no token");
        api.get(
            &format!("/v1/orgs/{org}/search?q={}", "x".repeat(501)),
            owner.token(),
        )
        .await
        .expect_problem(400, "a query over 500 characters");
        api.get(
            &format!("/v1/orgs/{org}/search?q=x&after=soon"),
            owner.token(),
        )
        .await
        .expect_problem(400, "a cursor that is not a position");

        // A direct chat of two other members is theirs alone.
        let second = api::invite_and_accept(&api, &owner, "agent", "Second").await;
        let third = api::invite_and_accept(&api, &owner, "agent", "Third").await;
        let direct = api
            .post(
                &format!("/v1/orgs/{org}/directs"),
                second.token(),
                json!({"agent_id": third.agent_id}),
            )
            .await
            .expect(201, "a direct chat");
        let direct: Uuid = direct.id("conversation_id");
        api::send_message(&api, second.token(), direct, "a private xylophone").await;
        assert_eq!(
            conversations_of(&found(&api, &third, &org, "xylophone").await),
            [direct.to_string()]
        );
        assert!(
            search(&api, &owner, &org, "xylophone", "").await.is_empty(),
            "not the owner's chat"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ended_conversations_filter_by_queue_tag_and_dates() {
    for storage in [Some(Storage::embedded()), Storage::postgres()]
        .into_iter()
        .flatten()
    {
        let (_server, api) = api::start_with(&storage, &[("JONO_RATE_LIMITS", "off")]);
        let owner = api::sign_up(&api, "Acme").await;
        let org = owner.organization_id;
        let support = api::open_queue_handled_by(&api, &owner, "Support").await;
        let sales = api::open_queue_handled_by(&api, &owner, "Sales").await;
        let mut ended = Vec::new();
        for queue in [support, sales, sales] {
            api::join(&api, queue, json!({})).await;
            let c = api::pick(&api, &owner, queue).await;
            api.post(
                &format!("/v1/conversations/{c}/end"),
                owner.token(),
                json!({}),
            )
            .await
            .expect(204, "ending");
            ended.push(c);
        }
        api.post(
            &format!("/v1/conversations/{}/tags", ended[2]),
            owner.token(),
            json!({"tag": "vip"}),
        )
        .await
        .expect(204, "a tag");
        let list = |filter: String| {
            let api = &api;
            let owner = &owner;
            async move {
                let reply = api
                    .get(
                        &format!("/v1/orgs/{org}/conversations?status=ended{filter}"),
                        owner.token(),
                    )
                    .await
                    .expect(200, &filter);
                reply
                    .body
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c["id"].as_str().unwrap().parse::<Uuid>().unwrap())
                    .collect::<Vec<_>>()
            }
        };
        let all = api::eventually(|| list(String::new()), |ids| ids.len() == 3).await;
        assert_eq!(all, ended);
        assert_eq!(list(format!("&queue={sales}")).await, ended[1..]);
        let vip = api::eventually(|| list("&tag=vip".into()), |ids| ids.len() == 1).await;
        assert_eq!(vip, [ended[2]]);
        assert_eq!(
            list(format!("&queue={support}&tag=vip")).await,
            Vec::<Uuid>::new()
        );
        assert_eq!(list("&from=2000-01-01&to=2999-01-01".into()).await, ended);
        assert_eq!(list("&from=2999-01-01".into()).await, Vec::<Uuid>::new());
        assert_eq!(
            list("&to=2000-01-01T00:00:00Z".into()).await,
            Vec::<Uuid>::new()
        );
        for bad in ["&queue=sales", "&from=yesterday", "&to=2026-13-01"] {
            api.get(
                &format!("/v1/orgs/{org}/conversations?status=ended{bad}"),
                owner.token(),
            )
            .await
            .expect_problem(400, bad);
        }
    }
}
