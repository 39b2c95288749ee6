//! Two guarantees a person would only notice by their absence: a waiting customer who goes
//! silent leaves the queue (`CustomerLeftQueue` with reason `timeout`) instead of blocking it
//! for ever, while one with an open WebSocket stays; and every answer carries headers fit for a
//! console on the same origin.

use std::time::Duration;

use jono_tests::api::{self, eventually};
use jono_tests::Storage;
use serde_json::json;

/// A WebSocket of `token`'s caller: while it is open, a waiting customer shows signs of life.
async fn open_socket(
    server: &jono_tests::Server,
    token: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let url = format!(
        "{}/v1/ws?token={token}",
        server.base.replace("http://", "ws://")
    );
    let (socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("a socket");
    socket
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_silent_waiting_customer_times_out_but_one_with_an_open_socket_stays() {
    let storage = Storage::embedded();
    let (server, api) = api::start_with(
        &storage,
        &[
            ("JONO_RATE_LIMITS", "off"),
            ("JONO_CUSTOMER_TIMEOUT_SECONDS", "3"),
        ],
    );
    let owner = api::sign_up(&api, "Acme").await;
    let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
    let silent = api::join(&api, queue, json!({"name": "Silent"})).await;
    let present = api::join(&api, queue, json!({"name": "Present"})).await;

    let socket = open_socket(&server, &present.token).await;

    let path = format!("/v1/conversations/{}", silent.conversation_id);
    let ended = eventually(
        || async { api.get(&path, owner.token()).await.body },
        |view| view["status"] == "ended",
    )
    .await;
    assert_eq!(
        ended["status"], "ended",
        "the silent customer left the queue: {ended}"
    );

    // Each read model follows the log on its own: the conversation view may show the end a
    // moment before the activity feed does, so the feed is read until it has caught up.
    let is_the_time_out = |item: &serde_json::Value| {
        item["type"] == "CustomerLeftQueue"
            && item["conversation_id"] == silent.conversation_id.to_string()
    };
    let activity = eventually(
        || api::activity(&api, owner.token()),
        |items: &Vec<serde_json::Value>| items.iter().any(is_the_time_out),
    )
    .await;
    assert!(
        activity.iter().any(is_the_time_out),
        "the time-out is in the activity: {activity:?}"
    );

    // Well past the time-out, the customer with a socket still waits, now first in line.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let view = api
        .get(
            &format!("/v1/conversations/{}", present.conversation_id),
            owner.token(),
        )
        .await;
    assert_eq!(view.body["status"], "waiting", "{}", view.text);
    assert_eq!(view.body["queue_position"], 1, "{}", view.text);
    let stats = api
        .get(&format!("/v1/queues/{queue}/stats"), owner.token())
        .await
        .expect(200, "stats");
    assert_eq!(stats.body["timed_out"], 1, "{}", stats.text);
    drop(socket);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_carry_headers_fit_for_a_same_origin_console() {
    let storage = Storage::embedded();
    let (_server, api) = api::start(&storage);
    let owner = api::sign_up(&api, "Acme").await;
    for reply in [
        api.get("/v1/me", owner.token()).await,
        api.get("/v1/me", None).await,
        api.get("/v1/no-such-route", None).await,
    ] {
        assert_eq!(
            reply.header("x-content-type-options"),
            Some("nosniff"),
            "{}",
            reply.text
        );
        let csp = reply.header("content-security-policy").unwrap_or_default();
        assert!(
            csp.contains("frame-ancestors 'self'"),
            "framing limited: {csp:?}"
        );
        assert!(csp.contains("default-src 'self'"), "{csp:?}");
        assert!(
            reply.header("access-control-allow-origin").is_none(),
            "no CORS where the contract needs none"
        );
    }
}

/// Where the sweeper last kept its fold of the log (`store::kept_fold`), if it kept one.
fn sweepers_kept_position(storage: &Storage) -> Option<i64> {
    let dir = storage.data_dir().expect("an embedded store");
    let db = rusqlite::Connection::open(dir.join("jono.db")).expect("the log's file");
    db.query_row(
        "SELECT version FROM snapshots WHERE aggregate_type = 'fold' AND aggregate_id = 'sweeper'",
        [],
        |row| row.get(0),
    )
    .ok()
}

/// A start resumes the sweeper's fold of the log where the last process kept it (at its stop)
/// instead of reading the whole log again — on a 1,000,000-event log that read kept both cores
/// busy for seconds — and a customer who began waiting before the restart is still known to
/// it: silent after the restart, it times out.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sweeper_resumes_its_kept_fold_after_a_restart_and_still_times_out_who_waited() {
    let storage = Storage::embedded();
    let env = [
        ("JONO_RATE_LIMITS", "off"),
        ("JONO_CUSTOMER_TIMEOUT_SECONDS", "3"),
    ];
    let (server, api) = api::start_with(&storage, &env);
    let owner = api::sign_up(&api, "Acme").await;
    let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
    let customer = api::join(&api, queue, json!({"name": "Patient"})).await;
    // Present until the restart: its open socket keeps it from timing out here.
    let socket = open_socket(&server, &customer.token).await;
    // A few of the sweeper's ticks (one a second with this time-out) fold the join.
    tokio::time::sleep(Duration::from_secs(3)).await;
    drop(socket);
    assert!(server.terminate().success());
    let kept = sweepers_kept_position(&storage);
    assert!(
        kept.is_some_and(|position| position > 0),
        "the sweeper kept its fold at its stop: {kept:?}"
    );

    let (_server, api) = api::start_with(&storage, &env);
    let path = format!("/v1/conversations/{}", customer.conversation_id);
    let ended = eventually(
        || async { api.get(&path, owner.token()).await.body },
        |view| view["status"] == "ended",
    )
    .await;
    assert_eq!(
        ended["status"], "ended",
        "the customer who waited before the restart timed out after it: {ended}"
    );
    let stats = api
        .get(&format!("/v1/queues/{queue}/stats"), owner.token())
        .await
        .expect(200, "stats");
    assert_eq!(stats.body["timed_out"], 1, "{}", stats.text);
}
