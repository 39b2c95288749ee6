//! Several `jono serve` nodes on one Postgres with NATS act as one (issue 14; invariant 12):
//! typing and signals cross between a customer on one node and an agent on another; presence
//! shows an agent connected to another node; a waiting customer connected to one node is not
//! timed out by the other, while one whose socket closed still is, and when the sweeping node
//! dies the other sweeps and times its customers out; a logout, a password change or a removal
//! on one node closes the sockets concerned on the other; two nodes together allow a limit once; frames cross again
//! after nats-server was killed and restarted. Without NATS, a second node refuses to start.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use jono_tests::api::{self, Agent, Api};
use jono_tests::nats::Nats;
use jono_tests::{Server, Storage};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A node of the deployment: Postgres `storage`, NATS, and `env`.
fn node(storage: &Storage, nats: &Nats, env: &[(&str, &str)]) -> (Server, Api) {
    let mut env = env.to_vec();
    env.push(("JONO_NATS_URL", &nats.url));
    if !env.iter().any(|(key, _)| *key == "JONO_RATE_LIMITS") {
        env.push(("JONO_RATE_LIMITS", "off"));
    }
    api::start_with(storage, &env)
}

async fn connect(base: &str, token: &str) -> Socket {
    let url = format!("{}/v1/ws?token={token}", base.replace("http://", "ws://"));
    let (socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("a WebSocket");
    socket
}

async fn send(socket: &mut Socket, frame: &Value) {
    socket
        .send(Message::Text(frame.to_string().into()))
        .await
        .expect("send a frame");
}

/// The next JSON frame within `wait`: `Ok(None)` when nothing came, `Err(())` when the socket
/// closed.
async fn next_within(socket: &mut Socket, wait: Duration) -> Result<Option<Value>, ()> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let Ok(frame) = tokio::time::timeout_at(deadline, socket.next()).await else {
            return Ok(None);
        };
        match frame {
            Some(Ok(Message::Text(text))) => {
                return Ok(Some(serde_json::from_str(text.as_str()).expect("JSON")))
            }
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return Err(()),
            Some(Ok(_)) => continue,
        }
    }
}

/// Subscribes to `topic` and reads until it is `subscribed`.
async fn subscribe(socket: &mut Socket, topic: &str) {
    send(
        socket,
        &json!({ "type": "subscribe", "topic": topic, "after": null }),
    )
    .await;
    loop {
        let frame = next_within(socket, Duration::from_secs(20))
            .await
            .expect("an open socket")
            .expect("a frame");
        match frame["type"].as_str() {
            Some("subscribed") => return,
            Some("error") => panic!("{frame}"),
            _ => {}
        }
    }
}

/// Sends `frame` from `from` again and again until `to` receives a frame of its type, for up
/// to `patience`; that frame, or `None`. (A node's NATS subscription may still be on its way
/// when the node starts, or NATS away: frames sent meanwhile are lost, as ephemeral frames may
/// be.)
async fn crossed(
    from: &mut Socket,
    to: &mut Socket,
    frame: &Value,
    patience: Duration,
) -> Option<Value> {
    let deadline = Instant::now() + patience;
    while Instant::now() < deadline {
        send(from, frame).await;
        // Frames of other kinds (events, queue places) are skipped.
        let until = tokio::time::Instant::now() + Duration::from_millis(500);
        loop {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            match next_within(to, left).await.expect("an open socket") {
                Some(got) if got["type"] == frame["type"] => return Some(got),
                Some(_) => continue,
                None => break,
            }
        }
    }
    None
}

fn typing(conversation: Uuid) -> Value {
    json!({ "type": "typing", "conversation": conversation })
}

/// Waits until frames cross both ways between the two nodes (each one's NATS subscription is
/// up), over a channel of `owner`'s organization.
async fn crossing_both_ways(a: &Server, api_a: &Api, b: &Server, owner: &Agent) {
    let channel = api::create_channel(api_a, owner, "Team").await;
    let topic = format!("conversation:{channel}");
    let mut on_a = connect(&a.base, &owner.token).await;
    let mut on_b = connect(&b.base, &owner.token).await;
    subscribe(&mut on_a, &topic).await;
    subscribe(&mut on_b, &topic).await;
    let patience = Duration::from_secs(30);
    assert!(
        crossed(&mut on_a, &mut on_b, &typing(channel), patience)
            .await
            .is_some(),
        "typing never crossed from A to B"
    );
    assert!(
        crossed(&mut on_b, &mut on_a, &typing(channel), patience)
            .await
            .is_some(),
        "typing never crossed from B to A"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_and_signals_cross_between_a_customer_on_one_node_and_an_agent_on_another() {
    let (Some(storage), Some(nats)) = (Storage::postgres(), Nats::start()) else {
        return;
    };
    let (a, api_a) = node(&storage, &nats, &[]);
    let (b, api_b) = node(&storage, &nats, &[]);
    let owner = api::sign_up(&api_a, "Acme").await;
    let queue = api::open_queue_handled_by(&api_a, &owner, "Support").await;
    let customer = api::join(&api_a, queue, json!({"name": "Carla"})).await;
    let conversation = api::pick(&api_b, &owner, queue).await;
    let topic = format!("conversation:{conversation}");
    let mut customer_on_a = connect(&a.base, &customer.token).await;
    let mut agent_on_b = connect(&b.base, &owner.token).await;
    subscribe(&mut customer_on_a, &topic).await;
    subscribe(&mut agent_on_b, &topic).await;

    let patience = Duration::from_secs(30);
    let got = crossed(
        &mut customer_on_a,
        &mut agent_on_b,
        &typing(conversation),
        patience,
    )
    .await
    .expect("the customer's typing reaches the agent on the other node");
    assert_eq!(got["conversation"], json!(conversation));
    assert_eq!(got["author"]["kind"], "customer");
    assert_eq!(got["author"]["name"], "Carla");

    let offer = json!({ "type": "signal", "conversation": conversation, "data": {"sdp": "offer"} });
    let got = crossed(&mut agent_on_b, &mut customer_on_a, &offer, patience)
        .await
        .expect("the agent's signal reaches the customer on the other node");
    assert_eq!(got["from"], json!({"kind": "agent", "id": owner.agent_id}));
    assert_eq!(got["data"], json!({"sdp": "offer"}));
    let answer =
        json!({ "type": "signal", "conversation": conversation, "data": {"sdp": "answer"} });
    let got = crossed(&mut customer_on_a, &mut agent_on_b, &answer, patience)
        .await
        .expect("the customer's answer reaches the agent");
    assert_eq!(got["from"]["kind"], "customer");
    assert_eq!(got["data"], json!({"sdp": "answer"}));

    // Messages cross too (through the log).
    api::send_message(&api_a, Some(&customer.token), conversation, "hello from A").await;
    loop {
        let frame = next_within(&mut agent_on_b, Duration::from_secs(20))
            .await
            .expect("an open socket")
            .expect("the message");
        if frame["type"] == "event" && frame["event"]["type"] == "MessageSent" {
            assert_eq!(frame["event"]["text"], "hello from A");
            break;
        }
    }
    drop(api_b);
}

/// The `status` of `agent` in `GET /v1/orgs/{org}/members`, read through `api`.
async fn status_of(api: &Api, owner: &Agent, agent: Uuid) -> String {
    let reply = api
        .get(
            &format!("/v1/orgs/{}/members", owner.organization_id),
            owner.token(),
        )
        .await
        .expect(200, "members");
    let member = reply
        .body
        .as_array()
        .expect("a list")
        .iter()
        .find(|member| member["agent_id"] == json!(agent))
        .cloned()
        .expect("the member");
    member["status"].as_str().expect("a status").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_connected_to_one_node_is_present_to_callers_of_another() {
    let (Some(storage), Some(nats)) = (Storage::postgres(), Nats::start()) else {
        return;
    };
    let (_a, api_a) = node(&storage, &nats, &[]);
    let (b, api_b) = node(&storage, &nats, &[]);
    let owner = api::sign_up(&api_a, "Acme").await;
    let teammate = api::invite_and_accept(&api_a, &owner, "agent", "Tom").await;
    assert_eq!(
        status_of(&api_a, &owner, teammate.agent_id).await,
        "offline"
    );

    let socket = connect(&b.base, &teammate.token).await;
    let seen = api::eventually(
        || status_of(&api_a, &owner, teammate.agent_id),
        |status| status == "online",
    )
    .await;
    assert_eq!(seen, "online", "connected to B, online to callers of A");

    // A status declared on B shows on A.
    api_b
        .put("/v1/me/status", teammate.token(), json!({"status": "away"}))
        .await
        .expect(204, "away");
    assert_eq!(status_of(&api_a, &owner, teammate.agent_id).await, "away");
    api_b
        .put(
            "/v1/me/status",
            teammate.token(),
            json!({"status": "online"}),
        )
        .await
        .expect(204, "back");
    assert_eq!(status_of(&api_a, &owner, teammate.agent_id).await, "online");
    drop(socket);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_whose_node_is_killed_goes_offline_everywhere() {
    let (Some(storage), Some(nats)) = (Storage::postgres(), Nats::start()) else {
        return;
    };
    let (_a, api_a) = node(&storage, &nats, &[]);
    let (b, _api_b) = node(&storage, &nats, &[]);
    let owner = api::sign_up(&api_a, "Acme").await;
    let teammate = api::invite_and_accept(&api_a, &owner, "agent", "Tom").await;
    let _socket = connect(&b.base, &teammate.token).await;
    let seen = api::eventually(
        || status_of(&api_a, &owner, teammate.agent_id),
        |status| status == "online",
    )
    .await;
    assert_eq!(seen, "online");
    // B dies without a word: its sockets expire with its heartbeat.
    b.kill();
    let mut status = status_of(&api_a, &owner, teammate.agent_id).await;
    for _ in 0..300 {
        if status == "offline" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        status = status_of(&api_a, &owner, teammate.agent_id).await;
    }
    assert_eq!(status, "offline", "the dead node's socket no longer counts");
}

/// The conversation's status as its agents see it.
async fn conversation_status(api: &Api, owner: &Agent, conversation: Uuid) -> String {
    let reply = api
        .get(&format!("/v1/conversations/{conversation}"), owner.token())
        .await
        .expect(200, "the conversation");
    reply.body["status"].as_str().expect("a status").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_customer_connected_to_either_node_is_not_timed_out_by_the_other() {
    let (Some(storage), Some(nats)) = (Storage::postgres(), Nats::start()) else {
        return;
    };
    // A time-out of 3 seconds, looked at every second.
    let short = [("JONO_CUSTOMER_TIMEOUT_SECONDS", "3")];
    let (a, api_a) = node(&storage, &nats, &short);
    let (b, api_b) = node(&storage, &nats, &short);
    let owner = api::sign_up(&api_a, "Acme").await;
    let queue = api::open_queue_handled_by(&api_a, &owner, "Support").await;
    // One customer connected to each node (whichever node sweeps, one of them is on the
    // other), and one whose socket closed.
    let on_a = api::join(&api_a, queue, json!({})).await;
    let on_b = api::join(&api_b, queue, json!({})).await;
    let gone = api::join(&api_a, queue, json!({})).await;
    let _socket_a = connect(&a.base, &on_a.token).await;
    let _socket_b = connect(&b.base, &on_b.token).await;
    let mut closing = connect(&b.base, &gone.token).await;
    closing.close(None).await.expect("a clean close");
    drop(closing);

    // The customer without a socket leaves the queue…
    let status = api::eventually(
        || conversation_status(&api_a, &owner, gone.conversation_id),
        |status| status != "waiting",
    )
    .await;
    assert_eq!(
        status, "ended",
        "the customer whose socket closed timed out"
    );
    // …and well past the time-out, both connected ones still wait.
    tokio::time::sleep(Duration::from_secs(8)).await;
    for customer in [&on_a, &on_b] {
        assert_eq!(
            conversation_status(&api_b, &owner, customer.conversation_id).await,
            "waiting",
            "a customer with an open socket on one node was timed out"
        );
    }
}

/// Whether `server` runs the sweeper, from its `/metrics`.
fn sweeps(server: &Server) -> bool {
    let (status, text) = server.get("/metrics");
    assert_eq!(status, 200);
    text.lines().any(|line| line == "jono_sweeper_holder 1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_sweeping_node_dies_the_other_takes_over_and_its_customers_time_out_from_its_last_beat(
) {
    let (Some(storage), Some(nats)) = (Storage::postgres(), Nats::start()) else {
        return;
    };
    let short = [("JONO_CUSTOMER_TIMEOUT_SECONDS", "3")];
    let (a, api_a) = node(&storage, &nats, &short);
    let (b, api_b) = node(&storage, &nats, &short);
    let mut sweeping = (sweeps(&a), sweeps(&b));
    for _ in 0..100 {
        if sweeping.0 || sweeping.1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        sweeping = (sweeps(&a), sweeps(&b));
    }
    let (holder, other, api_other, api_holder) = match sweeping {
        (true, false) => (a, b, api_b, api_a),
        (false, true) => (b, a, api_a, api_b),
        both => panic!("exactly one node sweeps: {both:?}"),
    };
    let owner = api::sign_up(&api_other, "Acme").await;
    let queue = api::open_queue_handled_by(&api_other, &owner, "Support").await;
    // One customer connected to the node about to die, one to the survivor.
    let stranded = api::join(&api_holder, queue, json!({})).await;
    let staying = api::join(&api_other, queue, json!({})).await;
    let _stranded_socket = connect(&holder.base, &stranded.token).await;
    let _staying_socket = connect(&other.base, &staying.token).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        conversation_status(&api_other, &owner, stranded.conversation_id).await,
        "waiting"
    );

    holder.kill();
    // The dead node's socket expires with its heartbeat; the survivor, sweeping now, times its
    // customer out from then.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut status = String::new();
    while Instant::now() < deadline {
        status = conversation_status(&api_other, &owner, stranded.conversation_id).await;
        if status != "waiting" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(status, "ended", "the dead node's customer timed out");
    assert!(sweeps(&other), "the survivor took the sweeper over");
    assert_eq!(
        conversation_status(&api_other, &owner, staying.conversation_id).await,
        "waiting",
        "the survivor's own connected customer waits on"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_on_one_node_closes_the_tokens_socket_on_the_other() {
    let (Some(storage), Some(nats)) = (Storage::postgres(), Nats::start()) else {
        return;
    };
    let (a, api_a) = node(&storage, &nats, &[]);
    let (b, _api_b) = node(&storage, &nats, &[]);
    let owner = api::sign_up(&api_a, "Acme").await;
    crossing_both_ways(&a, &api_a, &b, &owner).await;

    let token = api::login(&api_a, &owner.email, &owner.password).await;
    let mut socket = connect(&b.base, &token).await;
    subscribe(&mut socket, "activity").await;
    api_a
        .post("/v1/logout", Some(&token), json!({}))
        .await
        .expect(204, "logout");
    // Well before the socket's own check of its token (every 20 seconds).
    assert!(
        closes_within(&mut socket, Duration::from_secs(5)).await,
        "the logged-out token's socket on the other node is still open"
    );
}

/// Reads `socket` until it closes, for at most `wait`: whether it did.
async fn closes_within(socket: &mut Socket, wait: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match next_within(socket, left).await {
            Err(()) => return true,
            Ok(Some(_)) => continue,
            Ok(None) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_or_a_removal_on_one_node_ends_sockets_on_the_other() {
    let (Some(storage), Some(nats)) = (Storage::postgres(), Nats::start()) else {
        return;
    };
    let (a, api_a) = node(&storage, &nats, &[]);
    let (b, _api_b) = node(&storage, &nats, &[]);
    let owner = api::sign_up(&api_a, "Acme").await;
    crossing_both_ways(&a, &api_a, &b, &owner).await;
    // Well before each socket's own check of its token (every 20 seconds).
    let wait = Duration::from_secs(5);

    // A password change on A ends the account's other tokens, and their sockets on B.
    let other_token = api::login(&api_a, &owner.email, &owner.password).await;
    let mut other_socket = connect(&b.base, &other_token).await;
    subscribe(&mut other_socket, "activity").await;
    api_a
        .put(
            "/v1/me/password",
            owner.token(),
            json!({"current_password": owner.password, "new_password": "another long password"}),
        )
        .await
        .expect(204, "a password change");
    assert!(
        closes_within(&mut other_socket, wait).await,
        "the other token's socket on the other node is still open"
    );

    // A member removed on A loses its socket on B.
    let teammate = api::invite_and_accept(&api_a, &owner, "agent", "Tom").await;
    let mut teammate_socket = connect(&b.base, &teammate.token).await;
    subscribe(&mut teammate_socket, "activity").await;
    api_a
        .delete(
            &format!(
                "/v1/orgs/{}/members/{}",
                owner.organization_id, teammate.agent_id
            ),
            owner.token(),
        )
        .await
        .expect(204, "the removal");
    assert!(
        closes_within(&mut teammate_socket, wait).await,
        "the removed member's socket on the other node is still open"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_together_allow_a_limit_once() {
    let (Some(storage), Some(nats)) = (Storage::postgres(), Nats::start()) else {
        return;
    };
    // Sign-ups: 10 an hour per address, rate limits on.
    let on = [("JONO_RATE_LIMITS", "on")];
    let (_a, api_a) = node(&storage, &nats, &on);
    let (_b, api_b) = node(&storage, &nats, &on);
    let sign_up = |api: &Api| {
        let api = api.clone();
        async move {
            api.post(
                "/v1/signup",
                None,
                json!({"organization": "Acme", "name": "Olivia", "email": api::fresh_email("o"), "password": api::PASSWORD}),
            )
            .await
        }
    };
    for n in 0..10 {
        let api = if n % 2 == 0 { &api_a } else { &api_b };
        sign_up(api)
            .await
            .expect(201, &format!("sign-up {}", n + 1));
    }
    for api in [&api_a, &api_b] {
        let refused = sign_up(api)
            .await
            .expect_problem(429, "an 11th sign-up, on either node");
        assert!(refused.header("retry-after").is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_crosses_again_after_nats_was_killed_and_restarted() {
    let (Some(storage), Some(mut nats)) = (Storage::postgres(), Nats::start()) else {
        return;
    };
    let (a, api_a) = node(&storage, &nats, &[]);
    let (b, _api_b) = node(&storage, &nats, &[]);
    let owner = api::sign_up(&api_a, "Acme").await;
    let queue = api::open_queue_handled_by(&api_a, &owner, "Support").await;
    let customer = api::join(&api_a, queue, json!({})).await;
    let conversation = api::pick(&api_a, &owner, queue).await;
    let topic = format!("conversation:{conversation}");
    let mut customer_on_a = connect(&a.base, &customer.token).await;
    let mut agent_on_b = connect(&b.base, &owner.token).await;
    subscribe(&mut customer_on_a, &topic).await;
    subscribe(&mut agent_on_b, &topic).await;
    let patience = Duration::from_secs(30);
    assert!(crossed(
        &mut customer_on_a,
        &mut agent_on_b,
        &typing(conversation),
        patience
    )
    .await
    .is_some());

    nats.stop();
    // Commands go on, and their events reach the other node's socket through the log.
    for n in 0..3 {
        api::send_message(
            &api_a,
            Some(&customer.token),
            conversation,
            &format!("m{n}"),
        )
        .await;
        send(&mut customer_on_a, &typing(conversation)).await;
    }
    let mut texts = Vec::new();
    while texts.len() < 3 {
        let frame = next_within(&mut agent_on_b, Duration::from_secs(20))
            .await
            .expect("an open socket")
            .expect("a message while NATS is away");
        if frame["type"] == "event" && frame["event"]["type"] == "MessageSent" {
            texts.push(frame["event"]["text"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(texts, ["m0", "m1", "m2"]);
    // A logout, whose close order would cross over NATS, is answered as usual too.
    let token = api::login(&api_a, &owner.email, &owner.password).await;
    api_a
        .post("/v1/logout", Some(&token), json!({}))
        .await
        .expect(204, "a logout while NATS is away");

    nats.resume();
    assert!(
        crossed(
            &mut customer_on_a,
            &mut agent_on_b,
            &typing(conversation),
            patience
        )
        .await
        .is_some(),
        "typing crosses again once NATS is back"
    );
}

/// Runs `jono serve` on `storage` with `env` until it exits (at most 30 seconds): its status
/// and stderr, or `None` if it kept serving.
fn serve_until_exit(storage: &Storage, env: &[(&str, &str)]) -> Option<(bool, String)> {
    use std::io::Read;
    let mut command = std::process::Command::new(jono_tests::jono_bin());
    command
        .arg("serve")
        .args(storage.args())
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("JONO_DATABASE_URL")
        .env_remove("JONO_DATA_DIR")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("spawn jono serve");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut stderr = String::new();
            child
                .stderr
                .take()
                .expect("stderr")
                .read_to_string(&mut stderr)
                .expect("read stderr");
            return Some((status.success(), stderr));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_nats_a_second_node_refuses_to_start_and_says_why() {
    let (Some(storage), Some(nats)) = (Storage::postgres(), Nats::start()) else {
        return;
    };
    let alone = Server::start(&storage, &[]);
    let (ok, stderr) = serve_until_exit(&storage, &[]).expect("a second node without NATS exits");
    assert!(!ok);
    assert!(
        stderr.contains("another jono serve already runs on this database")
            && stderr.contains("--nats-url"),
        "{stderr}"
    );
    let (ok, stderr) = serve_until_exit(&storage, &[("JONO_NATS_URL", &nats.url)])
        .expect("a node with NATS beside one without exits");
    assert!(!ok);
    assert!(stderr.contains("without NATS"), "{stderr}");
    // Once the lone node is gone, nodes with NATS run together.
    assert!(alone.terminate().success());
    let (_a, _) = node(&storage, &nats, &[]);
    let (_b, _) = node(&storage, &nats, &[]);
}

/// The backend holding this schema's lease `name`, if any.
async fn lease_holder(pool: &sqlx::PgPool, name: &str) -> Option<i32> {
    sqlx::query_scalar(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 \
         AND ((classid::bigint << 32) | objid::bigint) \
             = hashtextextended(current_schema() || '/' || $1, 0)",
    )
    .bind(name)
    .fetch_optional(pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_node_that_lost_its_connection_takes_its_place_again() {
    let Some(storage) = Storage::postgres() else {
        return;
    };
    let Storage::Postgres(url) = &storage else {
        unreachable!()
    };
    let _alone = Server::start(&storage, &[]);
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let holder = lease_holder(&pool, "jono-serve-nodes")
        .await
        .expect("the lone node holds its place");
    // Its connection is cut (as by a Postgres restart): it takes its place again…
    sqlx::query("SELECT pg_terminate_backend($1)")
        .bind(holder)
        .execute(&pool)
        .await
        .unwrap();
    let mut again = None;
    for _ in 0..300 {
        again = lease_holder(&pool, "jono-serve-nodes").await;
        if again.is_some_and(|pid| pid != holder) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        again.is_some_and(|pid| pid != holder),
        "the place was taken again"
    );
    // …so a second node still refuses to start.
    let (ok, stderr) = serve_until_exit(&storage, &[]).expect("the second node exits");
    assert!(!ok && stderr.contains("another jono serve"), "{stderr}");
}
