//! Seeded fuzzing of the edges (issue "The edges hold", fuzzing): every JSON body that the served
//! OpenAPI document lists, and every WebSocket frame kind, with generated values (the contract's
//! own field names among random ones, every JSON type, odd strings). Whatever comes in: no 5xx,
//! no panic, the socket stays usable, and nothing is appended by a refused request or by a frame.
//!
//! Bounded in the test command: `JONO_FUZZ_CASES` cases of each (default 48) from
//! `JONO_FUZZ_SEED` (default 1), so a run is the same every time. A longer run:
//!
//!     JONO_FUZZ_CASES=5000 JONO_FUZZ_SEED=7 cargo test -p jono-tests --test fuzz -- --nocapture
//!
//! A failure is shrunk by proptest and printed with its request; keep it as a test of its own.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use jono_tests::api::{self, Api};
use jono_tests::{Server, Storage};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use serde_json::{json, Map, Value};
use tokio_tungstenite::tungstenite::Message;

fn cases() -> u32 {
    std::env::var("JONO_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(48)
}

fn runner() -> TestRunner {
    let seed: u64 = std::env::var("JONO_FUZZ_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    TestRunner::new_with_rng(
        Config {
            cases: cases(),
            failure_persistence: None,
            max_shrink_iters: 200,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &bytes),
    )
}

/// Strings a parser may choke on.
fn odd_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,24}",
        Just(String::new()),
        Just(" ".repeat(3)),
        Just("\u{0}\u{1}\n\r\t".to_owned()),
        Just("\u{202e}evil\u{202c}".to_owned()),
        Just("x".repeat(10_001)),
        Just("00000000-0000-0000-0000-000000000000".to_owned()),
        Just("javascript:alert(1)".to_owned()),
        Just("online".to_owned()),
        Just("agent".to_owned()),
        Just("2030-01-01T00:00:00Z".to_owned()),
    ]
}

fn json_value(keys: Vec<String>) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        prop_oneof![Just(-1i64), Just(0), Just(1), Just(5), Just(6)].prop_map(|n| json!(n)),
        any::<f64>()
            .prop_map(|n| serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)),
        odd_string().prop_map(Value::String),
    ];
    let key = prop_oneof![proptest::sample::select(keys), "[a-z_]{1,10}"];
    leaf.prop_recursive(3, 32, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A body: mostly an object of the contract's fields, sometimes any JSON, sometimes not JSON.
fn body(keys: Vec<String>) -> impl Strategy<Value = Vec<u8>> {
    let key = prop_oneof![proptest::sample::select(keys.clone()), "[a-z_]{1,10}"];
    prop_oneof![
        6 => proptest::collection::btree_map(key, json_value(keys.clone()), 0..6)
            .prop_map(|map| Value::Object(map.into_iter().collect()).to_string().into_bytes()),
        2 => json_value(keys).prop_map(|value| value.to_string().into_bytes()),
        1 => proptest::collection::vec(any::<u8>(), 0..64),
        1 => Just(b"{\"text\": \"\\ud800\"}".to_vec()),
    ]
}

/// The log's head once the background work has caught up (so a change is the request's).
async fn quiet_head(api: &Api) -> i64 {
    for _ in 0..200 {
        let ready = api.get("/readyz", None).await;
        if ready.status == 200 && ready.body["process_manager"]["lag"] == 0 {
            return ready.body["head"].as_i64().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "the server never settled: {}",
        api.get("/readyz", None).await.text
    );
}

fn check_no_panic(server: &Server) -> Result<(), TestCaseError> {
    let stderr = server.stderr();
    prop_assert!(
        !stderr.contains("panicked"),
        "the server panicked:\n{stderr}"
    );
    Ok(())
}

#[test]
fn every_json_body_of_the_contract_is_answered_without_a_5xx_and_a_refusal_appends_nothing() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let storage = Storage::embedded();
    let (server, api) = api::start(&storage);
    let (owner, routes, keys) = runtime.block_on(async {
        let owner = api::sign_up(&api, "Acme").await;
        let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
        let customer = api::join(&api, queue, json!({"name": "Ville"})).await;
        let conversation = api::pick(&api, &owner, queue).await;
        assert_eq!(conversation, customer.conversation_id);
        let document = api
            .get("/v1/openapi.json", None)
            .await
            .expect(200, "the OpenAPI document");
        let mut routes = Vec::new();
        let mut keys = BTreeSet::new();
        collect_keys(&document.body, &mut keys);
        for (path, operations) in document.body["paths"].as_object().unwrap() {
            for (method, operation) in operations.as_object().unwrap() {
                let json_body = operation["requestBody"]["content"]["application/json"].is_object();
                // Logout and a password change end tokens the fuzzing goes on with.
                if !json_body || path == "/v1/logout" || path == "/v1/me/password" {
                    continue;
                }
                let filled = path
                    .replace("{org}", &owner.organization_id.to_string())
                    .replace("{queue}", &queue.to_string())
                    .replace("{c}", &conversation.to_string())
                    .replace("{agent}", &owner.agent_id.to_string())
                    .replace("{id}", &uuid::Uuid::new_v4().to_string())
                    .replace("{token}", "no-such-invitation");
                routes.push((method.to_uppercase(), filled));
            }
        }
        (owner, routes, keys.into_iter().collect::<Vec<_>>())
    });
    assert!(
        routes.len() >= 15,
        "the document lists the JSON bodies: {routes:?}"
    );
    let strategy = (0..routes.len(), body(keys), any::<bool>());
    runner()
        .run(&strategy, |(route, bytes, authenticated)| {
            let (method, path) = &routes[route];
            runtime.block_on(async {
                let before = quiet_head(&api).await;
                let token = authenticated.then_some(owner.token.as_str());
                let reply = api.raw(method, path, token, Some(bytes.clone()), &[]).await;
                prop_assert!(
                    reply.status < 500,
                    "{method} {path} with {:?}: {} {}",
                    String::from_utf8_lossy(&bytes),
                    reply.status,
                    reply.text
                );
                if reply.status >= 400 {
                    let after = quiet_head(&api).await;
                    prop_assert_eq!(
                        before,
                        after,
                        "{} {} refused ({}) but appended: {:?}",
                        method,
                        path,
                        reply.status,
                        String::from_utf8_lossy(&bytes)
                    );
                }
                check_no_panic(&server)
            })
        })
        .unwrap();
}

fn collect_keys(value: &Value, keys: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Object(properties)) = map.get("properties") {
                keys.extend(properties.keys().cloned());
            }
            for child in map.values() {
                collect_keys(child, keys);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_keys(item, keys)),
        _ => {}
    }
}

#[test]
fn every_websocket_frame_kind_leaves_the_socket_usable_and_appends_nothing() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let storage = Storage::embedded();
    let (server, api) = api::start(&storage);
    let (owner, conversation, queue) = runtime.block_on(async {
        let owner = api::sign_up(&api, "Acme").await;
        let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
        api::join(&api, queue, json!({})).await;
        let conversation = api::pick(&api, &owner, queue).await;
        (owner, conversation, queue)
    });
    let url = format!(
        "{}/v1/ws?token={}",
        api.base.replace("http://", "ws://"),
        owner.token
    );
    let keys: Vec<String> = ["type", "topic", "after", "conversation", "data"]
        .map(str::to_owned)
        .to_vec();
    let kinds = prop_oneof![
        Just("subscribe".to_owned()),
        Just("unsubscribe".to_owned()),
        Just("typing".to_owned()),
        Just("signal".to_owned()),
        "[a-z]{0,8}",
    ];
    let topic = prop_oneof![
        Just("activity".to_owned()),
        Just(format!("queue:{queue}")),
        Just(format!("conversation:{conversation}")),
        Just(format!("conversation:{}", uuid::Uuid::new_v4())),
        odd_string(),
    ];
    let field = prop_oneof![
        3 => topic.clone().prop_map(Value::String),
        1 => Just(json!(conversation)),
        2 => json_value(keys.clone()),
    ];
    let frame = prop_oneof![
        8 => (kinds, proptest::collection::btree_map(proptest::sample::select(keys), field, 0..4))
            .prop_map(|(kind, mut fields)| {
                fields.insert("type".to_owned(), Value::String(kind));
                Value::Object(fields.into_iter().collect()).to_string()
            }),
        1 => json_value(vec!["type".to_owned()]).prop_map(|value| value.to_string()),
        1 => "\\PC{0,40}",
    ];
    let strategy = proptest::collection::vec(frame, 1..12);
    runner()
        .run(&strategy, |frames| {
            runtime.block_on(async {
                let before = quiet_head(&api).await;
                let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str())
                    .await
                    .unwrap();
                for frame in &frames {
                    socket
                        .send(Message::Text(frame.clone().into()))
                        .await
                        .unwrap();
                }
                // Still usable: a subscription after the noise is answered.
                let probe = json!({"type": "subscribe", "topic": "activity", "after": before});
                socket
                    .send(Message::Text(probe.to_string().into()))
                    .await
                    .unwrap();
                let mut answered = false;
                while let Ok(Some(Ok(message))) =
                    tokio::time::timeout(Duration::from_secs(20), socket.next()).await
                {
                    match message {
                        Message::Text(text) => {
                            let value: Value = serde_json::from_str(text.as_str()).unwrap();
                            if value["type"] == "subscribed" && value["topic"] == "activity" {
                                answered = true;
                                break;
                            }
                        }
                        Message::Close(close) => {
                            prop_assert!(false, "the socket closed ({close:?}) after {frames:?}");
                        }
                        _ => {}
                    }
                }
                prop_assert!(answered, "no answer to a subscription after {:?}", frames);
                let _ = socket.close(None).await;
                let after = quiet_head(&api).await;
                prop_assert_eq!(before, after, "frames appended to the log: {:?}", frames);
                check_no_panic(&server)
            })
        })
        .unwrap();
}
