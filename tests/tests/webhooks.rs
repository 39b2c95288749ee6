//! Webhooks against a real HTTP receiver on loopback (a small axum server in the test, the
//! server allowed to reach private networks): every delivery's Ed25519 signature is checked with
//! the key `GET /v1/webhooks/public-key` serves, over `<t>.<body>`, and its timestamp must be
//! fresh. The receiver fails on purpose (500s, then hanging past the time-out) and recovers:
//! every event arrives at least once, in position order, de-duplicable by position; a command
//! is answered while it hangs. A delivery past its horizon is parked, listed and redelivered by
//! an operator, and holds the later ones meanwhile. A restart (SIGKILL) loses nothing. Without
//! `JONO_WEBHOOK_PRIVATE_NETWORKS`, loopback is refused at registration, and a name that
//! resolves to loopback at connect time. On both backends; two nodes of one Postgres deployment
//! (with NATS) deliver each event once, under the lease.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use jono_tests::api::{self, Agent, Api};
use jono_tests::Storage;
use serde_json::{json, Value};
use uuid::Uuid;

fn storages() -> Vec<Storage> {
    let mut storages = vec![Storage::embedded()];
    storages.extend(Storage::postgres());
    storages
}

/// How the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Accept,
    Fail,
    Hang,
    /// 307 to `/elsewhere`, which records any visit.
    Redirect,
    /// 500 with a 1 MiB body.
    Verbose,
}

/// What the receiver saw.
#[derive(Default)]
struct Seen {
    /// Accepted deliveries, in arrival order: (position, event type, body).
    accepted: Vec<(i64, String, Value)>,
    /// Attempts answered with a failure (500 or a hang).
    refused: usize,
    /// Deliveries whose signature, timestamp or headers did not check out.
    forged: Vec<String>,
    /// Requests that followed a redirect to `/elsewhere`.
    followed: usize,
}

struct Receiver {
    mode: Mutex<Mode>,
    key: Mutex<Option<VerifyingKey>>,
    seen: Mutex<Seen>,
}

impl Receiver {
    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }
    fn accepted(&self) -> Vec<(i64, String, Value)> {
        self.seen.lock().unwrap().accepted.clone()
    }
    fn refused(&self) -> usize {
        self.seen.lock().unwrap().refused
    }
    fn forged(&self) -> Vec<String> {
        self.seen.lock().unwrap().forged.clone()
    }
}

/// Checks a delivery as a receiver should: the signature over `<t>.<body>` with the served
/// key, a timestamp within five minutes, and the headers agreeing with the body.
fn verify(key: &VerifyingKey, headers: &HeaderMap, body: &[u8]) -> Result<Value, String> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or(format!("no {name}"))
    };
    let signature = header("jono-signature")?;
    let (t, signed) = signature
        .strip_prefix("t=")
        .and_then(|rest| rest.split_once(",ed25519="))
        .ok_or(format!("a malformed signature header {signature}"))?;
    let t: i64 = t.parse().map_err(|_| "t is not a number".to_owned())?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    if (now - t).abs() > 300 {
        return Err(format!("a stale timestamp {t} (now {now})"));
    }
    let bytes = STANDARD.decode(signed).map_err(|e| e.to_string())?;
    let signature = Signature::from_slice(&bytes).map_err(|e| e.to_string())?;
    let mut message = format!("{t}.").into_bytes();
    message.extend_from_slice(body);
    key.verify(&message, &signature)
        .map_err(|_| "the signature does not verify".to_owned())?;
    let body: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    if header("jono-position")?.parse::<i64>().ok() != body["position"].as_i64()
        || header("jono-event")? != body["event_type"].as_str().unwrap_or_default()
    {
        return Err(format!("headers that disagree with {body}"));
    }
    Ok(body)
}

async fn elsewhere(State(receiver): State<Arc<Receiver>>) -> StatusCode {
    receiver.seen.lock().unwrap().followed += 1;
    StatusCode::NO_CONTENT
}

async fn hook(State(receiver): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> Response {
    let mode = *receiver.mode.lock().unwrap();
    match mode {
        Mode::Fail => {
            receiver.seen.lock().unwrap().refused += 1;
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        Mode::Redirect => {
            receiver.seen.lock().unwrap().refused += 1;
            let to = [("location", "/elsewhere")];
            return (StatusCode::TEMPORARY_REDIRECT, to).into_response();
        }
        Mode::Verbose => {
            receiver.seen.lock().unwrap().refused += 1;
            let said = "x".repeat(1 << 20);
            return (StatusCode::INTERNAL_SERVER_ERROR, said).into_response();
        }
        Mode::Hang => {
            receiver.seen.lock().unwrap().refused += 1;
            tokio::time::sleep(Duration::from_secs(30)).await;
            return StatusCode::OK.into_response();
        }
        Mode::Accept => {}
    }
    let key = receiver.key.lock().unwrap().expect("the key is known");
    match verify(&key, &headers, &body) {
        Ok(body) => {
            let position = body["position"].as_i64().unwrap();
            let event_type = body["event_type"].as_str().unwrap().to_owned();
            receiver
                .seen
                .lock()
                .unwrap()
                .accepted
                .push((position, event_type, body));
            StatusCode::NO_CONTENT.into_response()
        }
        Err(why) => {
            receiver.seen.lock().unwrap().forged.push(why);
            StatusCode::UNAUTHORIZED.into_response()
        }
    }
}

/// A receiver on a free port of 127.0.0.1: its state and its URL.
async fn receiver(mode: Mode) -> (Arc<Receiver>, String) {
    let receiver = Arc::new(Receiver {
        mode: Mutex::new(mode),
        key: Mutex::new(None),
        seen: Mutex::new(Seen::default()),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = Router::new()
        .route("/hook", post(hook))
        .route("/elsewhere", axum::routing::any(elsewhere))
        .with_state(receiver.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (receiver, format!("http://127.0.0.1:{port}/hook"))
}

/// The served public key, given to the receiver.
async fn learn_key(api: &Api, receiver: &Receiver) {
    let reply = api
        .get("/v1/webhooks/public-key", None)
        .await
        .expect(200, "the public key");
    assert_eq!(reply.body["algorithm"], "ed25519");
    let raw = STANDARD
        .decode(reply.body["public_key"].as_str().unwrap())
        .unwrap();
    let pem = reply.body["pem"].as_str().unwrap();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");
    let key = VerifyingKey::from_bytes(&raw.try_into().unwrap()).unwrap();
    *receiver.key.lock().unwrap() = Some(key);
}

async fn add_endpoint(api: &Api, by: &Agent, url: &str, types: &[&str]) -> api::Reply {
    api.post(
        &format!("/v1/orgs/{}/webhooks", by.organization_id),
        by.token(),
        json!({"url": url, "event_types": types}),
    )
    .await
}

/// Waits (up to `limit`) until `done` holds.
async fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The positions of the accepted deliveries, first arrivals only.
fn first_arrivals(accepted: &[(i64, String, Value)]) -> Vec<i64> {
    let mut seen = std::collections::BTreeSet::new();
    accepted
        .iter()
        .filter(|(position, ..)| seen.insert(*position))
        .map(|(position, ..)| *position)
        .collect()
}

fn assert_in_order(accepted: &[(i64, String, Value)]) {
    let first = first_arrivals(accepted);
    let mut sorted = first.clone();
    sorted.sort_unstable();
    assert_eq!(first, sorted, "deliveries in position order");
}

fn count(accepted: &[(i64, String, Value)], event_type: &str) -> usize {
    let mut positions: Vec<i64> = accepted
        .iter()
        .filter(|(_, t, _)| t == event_type)
        .map(|(p, ..)| *p)
        .collect();
    positions.dedup();
    positions.sort_unstable();
    positions.dedup();
    positions.len()
}

const TYPES: [&str; 5] = [
    "CustomerJoinedQueue",
    "CustomerPicked",
    "MessageSent",
    "ConversationRated",
    "ConversationEnded",
];

#[tokio::test(flavor = "multi_thread")]
async fn deliveries_are_signed_retried_through_failures_and_arrive_in_order() {
    for storage in storages() {
        let (receiver, url) = receiver(Mode::Fail).await;
        let (_server, api) = api::start_with(
            &storage,
            &[
                ("JONO_RATE_LIMITS", "off"),
                ("JONO_WEBHOOK_PRIVATE_NETWORKS", "true"),
                // A hanging endpoint holds an attempt this long: a command that waited on it
                // would take as long.
                ("JONO_WEBHOOK_TIMEOUT_SECONDS", "4"),
            ],
        );
        learn_key(&api, &receiver).await;
        let owner = api::sign_up(&api, "Hooked").await;
        let endpoint = add_endpoint(&api, &owner, &url, &TYPES)
            .await
            .expect(201, "an endpoint");
        assert_eq!(endpoint.body["url"], url.as_str());
        assert_eq!(endpoint.body["event_types"], json!(TYPES));
        let listed = api
            .get(
                &format!("/v1/orgs/{}/webhooks", owner.organization_id),
                owner.token(),
            )
            .await
            .expect(200, "the endpoints");
        assert_eq!(listed.body.as_array().unwrap().len(), 1);

        let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
        let customer = api::join(&api, queue, json!({})).await;
        let conversation = api::pick(&api, &owner, queue).await;
        assert_eq!(conversation, customer.conversation_id);
        api::send_message(&api, owner.token(), conversation, "hello").await;
        // The agents' own channel: its messages never leave.
        let channel = api::create_channel(&api, &owner, "backstage").await;
        api::send_message(&api, owner.token(), channel, "between us").await;
        wait_until(Duration::from_secs(20), "failed attempts", || {
            receiver.refused() >= 2
        })
        .await;

        // It hangs past the time-out now; commands are answered meanwhile.
        receiver.set(Mode::Hang);
        let refused = receiver.refused();
        wait_until(Duration::from_secs(30), "a hanging attempt", || {
            receiver.refused() > refused
        })
        .await;
        let started = Instant::now();
        api::send_message(&api, customer.token(), conversation, "are you there?").await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "a command waited on a hanging endpoint: {:?}",
            started.elapsed()
        );

        receiver.set(Mode::Accept);
        api.post(
            &format!("/v1/conversations/{conversation}/rating"),
            customer.token(),
            json!({"score": 5}),
        )
        .await
        .expect(204, "a rating");
        api.post(
            &format!("/v1/conversations/{conversation}/end"),
            owner.token(),
            json!({}),
        )
        .await
        .expect(204, "the end");
        wait_until(Duration::from_secs(60), "every event delivered", || {
            count(&receiver.accepted(), "ConversationEnded") == 1
        })
        .await;
        let accepted = receiver.accepted();
        assert!(receiver.forged().is_empty(), "{:?}", receiver.forged());
        assert_in_order(&accepted);
        assert_eq!(count(&accepted, "CustomerJoinedQueue"), 1);
        assert_eq!(count(&accepted, "CustomerPicked"), 1);
        assert_eq!(count(&accepted, "MessageSent"), 2, "{accepted:?}");
        assert_eq!(count(&accepted, "ConversationRated"), 1);
        for (_, event_type, body) in &accepted {
            assert_eq!(body["organization_id"], owner.organization_id.to_string());
            assert_eq!(
                body["data"]["conversation_id"],
                conversation.to_string(),
                "{event_type}"
            );
            assert!(body["occurred_at"].is_string());
        }
        let texts: Vec<&str> = accepted
            .iter()
            .filter(|(_, t, _)| t == "MessageSent")
            .filter_map(|(_, _, body)| body["data"]["text"].as_str())
            .collect();
        assert!(
            texts.contains(&"hello") && texts.contains(&"are you there?"),
            "{texts:?}"
        );
        assert!(!texts.contains(&"between us"));
        // Nothing parked: every failure was retried within the horizon.
        let parked = api
            .get(
                &format!("/v1/orgs/{}/webhooks/parked", owner.organization_id),
                owner.token(),
            )
            .await
            .expect(200, "parked deliveries");
        assert_eq!(parked.body, json!([]));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delivery_past_its_horizon_is_parked_holds_the_rest_and_is_redelivered() {
    for storage in storages() {
        let (receiver, url) = receiver(Mode::Fail).await;
        let (server, api) = api::start_with(
            &storage,
            &[
                ("JONO_RATE_LIMITS", "off"),
                ("JONO_WEBHOOK_PRIVATE_NETWORKS", "true"),
                // 3.6 seconds: tries at about 0, 1 and 3 s, then parked.
                ("JONO_WEBHOOK_RETRY_HOURS", "0.001"),
            ],
        );
        learn_key(&api, &receiver).await;
        let owner = api::sign_up(&api, "Parking").await;
        let agent = api::invite_and_accept(&api, &owner, "agent", "Agnes").await;
        let endpoint = add_endpoint(&api, &owner, &url, &["CustomerJoinedQueue"])
            .await
            .expect(201, "an endpoint")
            .id("id");
        let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
        let first = api::join(&api, queue, json!({})).await;
        let parked_path = format!("/v1/orgs/{}/webhooks/parked", owner.organization_id);
        let parked = api::eventually(
            || async {
                api.get(&parked_path, owner.token())
                    .await
                    .expect(200, "parked")
                    .body
            },
            |body| body.as_array().is_some_and(|list| !list.is_empty()),
        )
        .await;
        let parked = parked.as_array().unwrap();
        assert_eq!(parked.len(), 1, "{parked:?}");
        assert_eq!(parked[0]["endpoint_id"], endpoint.to_string());
        assert_eq!(parked[0]["event_type"], "CustomerJoinedQueue");
        assert!(parked[0]["attempts"].as_i64().unwrap() >= 2, "{parked:?}");
        assert!(
            parked[0]["last_error"].as_str().unwrap().contains("500"),
            "{parked:?}"
        );
        let position = parked[0]["position"].as_i64().unwrap();
        // Agents may not see or redeliver.
        api.get(&parked_path, agent.token())
            .await
            .expect_problem(403, "an agent reading parked deliveries");
        let redeliver = format!(
            "/v1/orgs/{}/webhooks/{endpoint}/deliveries/{position}/redeliver",
            owner.organization_id
        );
        api.post(&redeliver, agent.token(), json!({}))
            .await
            .expect_problem(403, "an agent redelivering");

        // A later event waits behind the parked one.
        let refused = receiver.refused();
        let second = api::join(&api, queue, json!({})).await;
        receiver.set(Mode::Accept);
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(receiver.accepted().is_empty(), "{:?}", receiver.accepted());
        assert_eq!(receiver.refused(), refused, "nothing tried while parked");

        api.post(&redeliver, owner.token(), json!({}))
            .await
            .expect(202, "a redelivery");
        wait_until(Duration::from_secs(20), "both delivered", || {
            first_arrivals(&receiver.accepted()).len() == 2
        })
        .await;
        let accepted = receiver.accepted();
        assert!(receiver.forged().is_empty(), "{:?}", receiver.forged());
        assert_eq!(first_arrivals(&accepted)[0], position);
        assert_in_order(&accepted);
        let conversations: Vec<&Value> = accepted
            .iter()
            .map(|(_, _, b)| &b["data"]["conversation_id"])
            .collect();
        assert_eq!(
            conversations,
            vec![
                &json!(first.conversation_id),
                &json!(second.conversation_id)
            ]
        );
        api.get(&parked_path, owner.token())
            .await
            .expect(200, "parked");
        assert_eq!(api.get(&parked_path, owner.token()).await.body, json!([]));
        api.post(&redeliver, owner.token(), json!({}))
            .await
            .expect_problem(404, "a delivery that is not parked");
        // What the operators' dashboards see.
        let (status, metrics) = server.get("/metrics");
        assert_eq!(status, 200);
        for line in [
            "jono_webhooks_holder 1",
            "jono_webhook_attempts_total{outcome=\"parked\"} 1",
            "jono_webhook_attempts_total{outcome=\"delivered\"} 2",
        ] {
            assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_resumes_from_the_checkpoint_without_loss() {
    for storage in storages() {
        let (receiver, url) = receiver(Mode::Fail).await;
        let env = [
            ("JONO_RATE_LIMITS", "off"),
            ("JONO_WEBHOOK_PRIVATE_NETWORKS", "true"),
        ];
        let (server, api) = api::start_with(&storage, &env);
        learn_key(&api, &receiver).await;
        let owner = api::sign_up(&api, "Restarted").await;
        add_endpoint(&api, &owner, &url, &["CustomerJoinedQueue"])
            .await
            .expect(201, "an endpoint");
        let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
        let mut joined = Vec::new();
        for _ in 0..5 {
            joined.push(api::join(&api, queue, json!({})).await.conversation_id);
        }
        wait_until(Duration::from_secs(20), "a failed attempt", || {
            receiver.refused() >= 1
        })
        .await;
        server.kill();

        receiver.set(Mode::Accept);
        let (_server, api) = api::start_with(&storage, &env);
        learn_key(&api, &receiver).await;
        for _ in 0..2 {
            joined.push(api::join(&api, queue, json!({})).await.conversation_id);
        }
        wait_until(Duration::from_secs(30), "every join delivered", || {
            first_arrivals(&receiver.accepted()).len() == joined.len()
        })
        .await;
        let accepted = receiver.accepted();
        assert!(receiver.forged().is_empty(), "{:?}", receiver.forged());
        assert_in_order(&accepted);
        let mut delivered = Vec::new();
        for (_, _, body) in &accepted {
            let id: Uuid = body["data"]["conversation_id"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            if !delivered.contains(&id) {
                delivered.push(id);
            }
        }
        assert_eq!(delivered, joined);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_setting_private_endpoints_are_refused_at_registration_and_connection() {
    for storage in storages() {
        let (receiver, url) = receiver(Mode::Accept).await;
        let (_server, api) = api::start_with(
            &storage,
            &[
                ("JONO_RATE_LIMITS", "off"),
                ("JONO_WEBHOOK_RETRY_HOURS", "0.0005"),
            ],
        );
        learn_key(&api, &receiver).await;
        let owner = api::sign_up(&api, "Guarded").await;
        for private in [
            url.as_str(),
            "http://[::1]:9/hook",
            "http://10.0.0.1/hook",
            "http://169.254.169.254/latest/meta-data",
        ] {
            let refused = add_endpoint(&api, &owner, private, &["CustomerJoinedQueue"])
                .await
                .expect_problem(422, "a private endpoint");
            assert!(
                refused.body["detail"]
                    .as_str()
                    .unwrap()
                    .contains("JONO_WEBHOOK_PRIVATE_NETWORKS"),
                "{}",
                refused.text
            );
        }
        // A name is resolved when connecting: localhost is refused then.
        let port = url.split(':').nth(2).unwrap().split('/').next().unwrap();
        let by_name = format!("http://localhost:{port}/hook");
        add_endpoint(&api, &owner, &by_name, &["CustomerJoinedQueue"])
            .await
            .expect(201, "an endpoint by name");
        let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
        api::join(&api, queue, json!({})).await;
        let parked_path = format!("/v1/orgs/{}/webhooks/parked", owner.organization_id);
        let parked = api::eventually(
            || async {
                api.get(&parked_path, owner.token())
                    .await
                    .expect(200, "parked")
                    .body
            },
            |body| body.as_array().is_some_and(|list| !list.is_empty()),
        )
        .await;
        let error = parked[0]["last_error"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(error.contains("no public address"), "{parked}");
        assert!(receiver.accepted().is_empty() && receiver.refused() == 0);
        // Removing the endpoint drops what it was owed.
        let endpoint = parked[0]["endpoint_id"].as_str().unwrap().to_owned();
        api.delete(
            &format!("/v1/orgs/{}/webhooks/{endpoint}", owner.organization_id),
            owner.token(),
        )
        .await
        .expect(204, "removed");
        let left = api::eventually(
            || async {
                api.get(&parked_path, owner.token())
                    .await
                    .expect(200, "parked")
                    .body
            },
            |body| body == &json!([]),
        )
        .await;
        assert_eq!(left, json!([]));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn operators_manage_endpoints_within_the_limits() {
    for storage in storages() {
        let (_server, api) = api::start(&storage);
        let owner = api::sign_up(&api, "Managed").await;
        let agent = api::invite_and_accept(&api, &owner, "agent", "Agnes").await;
        let operator = api::invite_and_accept(&api, &owner, "operator", "Otto").await;
        let path = format!("/v1/orgs/{}/webhooks", owner.organization_id);
        let url = "https://hooks.example.com/jono";
        add_endpoint(&api, &agent, url, &["MessageSent"])
            .await
            .expect_problem(403, "an agent registering");
        api.get(&path, agent.token())
            .await
            .expect_problem(403, "an agent listing");
        let stranger = api::sign_up(&api, "Elsewhere").await;
        api.get(&path, stranger.token())
            .await
            .expect_problem(404, "another organization's endpoints");
        let id = add_endpoint(&api, &operator, url, &["MessageSent"])
            .await
            .expect(201, "an operator registering")
            .id("id");
        add_endpoint(&api, &operator, url, &["ConversationEnded"])
            .await
            .expect_problem(409, "the same URL twice");
        add_endpoint(
            &api,
            &operator,
            "https://hooks.example.com/x",
            &["NoSuchEvent"],
        )
        .await
        .expect_problem(422, "an unknown event type");
        add_endpoint(
            &api,
            &operator,
            "ftp://hooks.example.com/x",
            &["MessageSent"],
        )
        .await
        .expect_problem(422, "not http");
        let long = format!("https://hooks.example.com/{}", "a".repeat(2000));
        add_endpoint(&api, &operator, &long, &["MessageSent"])
            .await
            .expect_problem(422, "a URL over 2,000 characters");
        for i in 1..10 {
            add_endpoint(
                &api,
                &operator,
                &format!("https://hooks.example.com/{i}"),
                &["MessageSent"],
            )
            .await
            .expect(201, "up to ten endpoints");
        }
        add_endpoint(
            &api,
            &operator,
            "https://hooks.example.com/11",
            &["MessageSent"],
        )
        .await
        .expect_problem(409, "an eleventh endpoint");
        api.delete(&format!("{path}/{id}"), agent.token())
            .await
            .expect_problem(403, "an agent removing");
        api.delete(&format!("{path}/{id}"), operator.token())
            .await
            .expect(204, "removed");
        api.delete(&format!("{path}/{id}"), operator.token())
            .await
            .expect_problem(404, "removed already");
        let listed = api.get(&path, owner.token()).await.expect(200, "listed");
        let whole = listed.body.as_array().unwrap().clone();
        assert_eq!(whole.len(), 9);
        assert_eq!(
            whole[0]["url"], "https://hooks.example.com/1",
            "oldest first"
        );
        // A list is pages, by the last item's id.
        let mut paged = Vec::new();
        let mut after = String::new();
        loop {
            let page = api
                .get(&format!("{path}?limit=2&after={after}"), owner.token())
                .await
                .expect(200, "a page")
                .body;
            let page = page.as_array().unwrap().clone();
            let Some(last) = page.last() else { break };
            assert!(page.len() <= 2);
            after = last["id"].as_str().unwrap().to_owned();
            paged.extend(page);
        }
        assert_eq!(paged, whole);
        api.get(&format!("{path}?after=not-a-cursor"), owner.token())
            .await
            .expect_problem(400, "a malformed cursor");
    }
}

/// Two nodes of one Postgres deployment (with NATS, as several nodes need): one worker holds the
/// lease, so each event is delivered once, not once per node; when a node is killed, deliveries
/// go on from the other.
#[tokio::test(flavor = "multi_thread")]
async fn two_nodes_deliver_each_event_once_and_either_carries_on_alone() {
    let (Some(storage), Some(nats)) = (Storage::postgres(), jono_tests::nats::Nats::start()) else {
        eprintln!("skipping: needs JONO_TEST_DATABASE_URL and nats-server");
        return;
    };
    let (receiver, url) = receiver(Mode::Accept).await;
    let env = [
        ("JONO_RATE_LIMITS", "off"),
        ("JONO_WEBHOOK_PRIVATE_NETWORKS", "true"),
        ("JONO_NATS_URL", nats.url.as_str()),
    ];
    let (a, api_a) = api::start_with(&storage, &env);
    let (_b, api_b) = api::start_with(&storage, &env);
    learn_key(&api_a, &receiver).await;
    let owner = api::sign_up(&api_a, "Two nodes").await;
    add_endpoint(&api_a, &owner, &url, &["CustomerJoinedQueue"])
        .await
        .expect(201, "an endpoint");
    let queue = api::open_queue_handled_by(&api_a, &owner, "Support").await;
    for i in 0..6 {
        let api = if i % 2 == 0 { &api_a } else { &api_b };
        api::join(api, queue, json!({})).await;
    }
    wait_until(Duration::from_secs(30), "six joins delivered", || {
        first_arrivals(&receiver.accepted()).len() == 6
    })
    .await;
    // Time for a second worker, were there one, to deliver them again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let accepted = receiver.accepted();
    let positions: Vec<i64> = accepted.iter().map(|(position, ..)| *position).collect();
    assert_eq!(positions.len(), 6, "each once: {positions:?}");
    assert_in_order(&accepted);

    a.kill();
    for _ in 0..2 {
        api::join(&api_b, queue, json!({})).await;
    }
    wait_until(
        Duration::from_secs(30),
        "delivered by the node left",
        || first_arrivals(&receiver.accepted()).len() == 8,
    )
    .await;
    assert!(receiver.forged().is_empty(), "{:?}", receiver.forged());
    assert_in_order(&receiver.accepted());
}

/// A redirect is a failure, never followed (it could point anywhere, inward too), and of a
/// refusing endpoint's answer only the first 512 bytes are read, for the operators to see.
#[tokio::test(flavor = "multi_thread")]
async fn redirects_are_not_followed_and_an_answer_is_read_only_up_to_its_cap() {
    for storage in storages() {
        let (receiver, url) = receiver(Mode::Redirect).await;
        let (_server, api) = api::start_with(
            &storage,
            &[
                ("JONO_RATE_LIMITS", "off"),
                ("JONO_WEBHOOK_PRIVATE_NETWORKS", "true"),
                ("JONO_WEBHOOK_RETRY_HOURS", "0.001"),
            ],
        );
        learn_key(&api, &receiver).await;
        let owner = api::sign_up(&api, "Redirected").await;
        add_endpoint(&api, &owner, &url, &["CustomerJoinedQueue"])
            .await
            .expect(201, "an endpoint");
        let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
        api::join(&api, queue, json!({})).await;
        wait_until(Duration::from_secs(20), "a redirected attempt", || {
            receiver.refused() >= 1
        })
        .await;
        receiver.set(Mode::Verbose);
        let parked_path = format!("/v1/orgs/{}/webhooks/parked", owner.organization_id);
        let parked = api::eventually(
            || async {
                api.get(&parked_path, owner.token())
                    .await
                    .expect(200, "parked")
                    .body
            },
            |body| body.as_array().is_some_and(|list| !list.is_empty()),
        )
        .await;
        assert_eq!(
            receiver.seen.lock().unwrap().followed,
            0,
            "a redirect was followed"
        );
        let error = parked[0]["last_error"].as_str().unwrap();
        assert!(error.contains("500"), "{error}");
        assert!(error.contains("xxxx"), "{error}");
        assert!(
            error.len() < 512 + 200,
            "{} bytes of error kept",
            error.len()
        );
    }
}
