//! Service-level targets per queue (issue 16, item 6): a queue's `target_wait_seconds` and
//! `target_first_response_seconds` are settings; the statistics count, from the log, the waits
//! and first answers that met them and those that breached them, the same over HTTP (the
//! `stats` read model) and in `jono stats` (the log folded); a conversation shows when an agent
//! first answered it, so the console can mark one still awaiting its answer past the target.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use jono_tests::api;
use jono_tests::Storage;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statistics_count_the_targets_met_and_breached_equal_to_the_log() {
    for storage in [Some(Storage::embedded()), Storage::postgres()]
        .into_iter()
        .flatten()
    {
        let (_server, api) = api::start(&storage);
        let owner = api::sign_up(&api, "Acme").await;
        let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
        let settings = format!("/v1/queues/{queue}/settings");

        // Settings: whole seconds from 1; 0 is refused and changes nothing; null clears.
        api.put(&settings, owner.token(), json!({"target_wait_seconds": 0}))
            .await
            .expect_problem(422, "a target of 0 seconds");
        api.put(
            &settings,
            owner.token(),
            json!({"target_wait_seconds": 5, "target_first_response_seconds": 9}),
        )
        .await
        .expect(200, "setting the targets");
        api.put(
            &settings,
            owner.token(),
            json!({"target_wait_seconds": null}),
        )
        .await
        .expect(200, "clearing a target");
        let shown = api
            .get(&format!("/v1/queues/{queue}"), owner.token())
            .await
            .expect(200, "the queue")
            .body;
        assert_eq!(shown["target_wait_seconds"], Value::Null, "{shown}");
        assert_eq!(shown["target_first_response_seconds"], json!(9), "{shown}");
        api.put(
            &settings,
            owner.token(),
            json!({"target_wait_seconds": 1, "target_first_response_seconds": 2}),
        )
        .await
        .expect(200, "the targets of the story");

        // c1 is picked and answered at once: both targets met.
        let c1 = api::join(&api, queue, json!({})).await;
        assert_eq!(api::pick(&api, &owner, queue).await, c1.conversation_id);
        api::send_message(&api, owner.token(), c1.conversation_id, "Hello!").await;
        // c2 waits past 1 s (breached), is answered past 2 s from its join (breached).
        let c2 = api::join(&api, queue, json!({})).await;
        tokio::time::sleep(Duration::from_millis(1300)).await;
        assert_eq!(api::pick(&api, &owner, queue).await, c2.conversation_id);
        tokio::time::sleep(Duration::from_millis(1000)).await;
        api::send_message(&api, owner.token(), c2.conversation_id, "Sorry!").await;
        // c3 still waits, unanswered: breaches both once the targets pass.
        let c3 = api::join(&api, queue, json!({})).await;

        // The conversations say when an agent first answered.
        let answered = |conversation: uuid::Uuid| {
            let api = &api;
            let owner = &owner;
            async move {
                api.get(&format!("/v1/conversations/{conversation}"), owner.token())
                    .await
                    .expect(200, "a conversation")
                    .body["answered_at"]
                    .clone()
            }
        };
        let first = api::eventually(|| answered(c1.conversation_id), Value::is_string).await;
        assert!(first.is_string(), "c1 answered: {first}");
        assert_eq!(answered(c3.conversation_id).await, Value::Null);

        let to = "2100-01-01T00:00:00Z";
        let over_http = api::eventually(
            || async {
                api.get(&format!("/v1/queues/{queue}/stats?to={to}"), owner.token())
                    .await
                    .expect(200, "statistics")
                    .body
            },
            |stats| {
                stats["joined"] == json!(3) && stats["first_response_target"]["met"] == json!(1)
            },
        )
        .await;
        let target = |met: u64, breached: u64| json!({"met": met, "breached": breached, "met_share": met as f64 / (met + breached) as f64});
        assert_eq!(over_http["wait_target"], target(1, 2), "{over_http}");
        assert_eq!(
            over_http["first_response_target"],
            target(1, 2),
            "{over_http}"
        );

        // `jono stats`, folding the log, says the same.
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

        // Before any target passed for c3, only c1 and c2 are decided.
        let early = api
            .get(&format!("/v1/queues/{queue}/stats"), owner.token())
            .await
            .expect(200, "statistics now")
            .body;
        let decided = early["wait_target"]["met"].as_u64().unwrap()
            + early["wait_target"]["breached"].as_u64().unwrap();
        assert!((2..=3).contains(&decided), "{early}");
    }
}
