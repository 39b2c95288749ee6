//! A client of API.md for the black-box tests: raw calls that return whatever the server said
//! ([`Api::call`], [`Api::raw`]), and the story's steps (`sign_up`, `create_queue`, `join`,
//! `pick`, `send_message`…) that assert the documented success status and return the parsed
//! body, so a test reads as the story it tells.

use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::{Server, Storage};

/// A password long enough for API.md (at least 10 characters).
pub const PASSWORD: &str = "correct horse battery staple";

/// A fresh server whose rate limits are off, so that a story's many calls from 127.0.0.1 are
/// not throttled; the limits have their own tests.
pub fn start(storage: &Storage) -> (Server, Api) {
    start_with(storage, &[("JONO_RATE_LIMITS", "off")])
}

/// A fresh server with `env`, once it is ready (`GET /readyz` is 200: the store is reachable
/// and the projectors have caught up), as a load balancer would wait for it.
/// Sign-up is open unless `env` says otherwise (on Postgres it is closed by default).
pub fn start_with(storage: &Storage, env: &[(&str, &str)]) -> (Server, Api) {
    let mut env = env.to_vec();
    if !env.iter().any(|(key, _)| *key == "JONO_SIGNUP") {
        env.push(("JONO_SIGNUP", "open"));
    }
    let server = Server::start(storage, &env);
    let mut ready = server.get("/readyz");
    for _ in 0..100 {
        if ready.0 == 200 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        ready = server.get("/readyz");
    }
    assert_eq!(ready.0, 200, "jono serve never became ready: {}", ready.1);
    let api = Api::new(&server.base);
    (server, api)
}

/// What the server answered.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    /// The body as JSON, `Value::Null` when it is empty or not JSON.
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// Asserts the status, showing the body when it differs.
    #[track_caller]
    pub fn expect(self, status: u16, what: &str) -> Self {
        assert_eq!(
            self.status, status,
            "{what}: expected {status}, got {} {}",
            self.status, self.text
        );
        self
    }

    /// Asserts an RFC 9457 problem with this status.
    #[track_caller]
    pub fn expect_problem(self, status: u16, what: &str) -> Self {
        if let Some(wrong) = self.problem_mismatch(status) {
            panic!("{what}: {wrong}");
        }
        self
    }

    /// What is wrong, if anything, with this reply as an RFC 9457 problem of `status`.
    pub fn problem_mismatch(&self, status: u16) -> Option<String> {
        if self.status != status {
            return Some(format!(
                "expected {status}, got {} {}",
                self.status, self.text
            ));
        }
        let content_type = self.header("content-type").unwrap_or_default();
        if !content_type.starts_with("application/problem+json") {
            return Some(format!(
                "a problem is application/problem+json, got {content_type:?}"
            ));
        }
        for field in ["type", "title", "status", "detail"] {
            if self.body.get(field).is_none() {
                return Some(format!("a problem has {field}: {}", self.text));
            }
        }
        if self.body["status"] != json!(status) {
            return Some(format!(
                "the problem's status is not {status}: {}",
                self.text
            ));
        }
        None
    }

    /// A UUID field of the body.
    #[track_caller]
    pub fn id(&self, field: &str) -> Uuid {
        self.body[field]
            .as_str()
            .and_then(|raw| raw.parse().ok())
            .unwrap_or_else(|| panic!("{field} is a UUID in {}", self.text))
    }
}

/// The HTTP client of one server.
#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
}

impl Api {
    pub fn new(base: &str) -> Self {
        Api {
            http: reqwest::Client::new(),
            base: base.to_owned(),
        }
    }

    /// `METHOD path` with an optional bearer token and an optional JSON body.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let bytes = body.map(|body| body.to_string().into_bytes());
        self.raw(method, path, token, bytes, &[]).await
    }

    /// As `call`, with the body's bytes as they are and extra headers.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Reply {
        self.try_raw(method, path, token, body, headers)
            .await
            .expect("the server answers")
    }

    /// As `raw`, for a server that may be gone: the transport's error instead of a panic.
    pub async fn try_raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Result<Reply, reqwest::Error> {
        let method = Method::from_bytes(method.as_bytes()).expect("a method");
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Reply {
            status,
            headers,
            text,
            body,
        })
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.call("GET", path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.call("POST", path, token, Some(body)).await
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.call("PUT", path, token, Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Reply {
        self.call("DELETE", path, token, None).await
    }
}

/// Someone with an agent token.
#[derive(Debug, Clone)]
pub struct Agent {
    pub agent_id: Uuid,
    pub organization_id: Uuid,
    pub email: String,
    pub password: String,
    pub token: String,
}

impl Agent {
    pub fn token(&self) -> Option<&str> {
        Some(&self.token)
    }
}

/// A customer who joined a queue.
#[derive(Debug, Clone)]
pub struct Customer {
    pub conversation_id: Uuid,
    pub token: String,
    pub queue_position: i64,
}

impl Customer {
    pub fn token(&self) -> Option<&str> {
        Some(&self.token)
    }
}

/// An address no other test uses.
pub fn fresh_email(who: &str) -> String {
    format!("{who}-{}@example.com", Uuid::new_v4().simple())
}

/// `POST /v1/signup`: a new organization with its owner.
pub async fn sign_up(api: &Api, organization: &str) -> Agent {
    let email = fresh_email("owner");
    let reply = api
        .post(
            "/v1/signup",
            None,
            json!({"organization": organization, "name": "Olivia Owner", "email": email, "password": PASSWORD}),
        )
        .await
        .expect(201, "sign-up");
    Agent {
        agent_id: reply.id("agent_id"),
        organization_id: reply.id("organization_id"),
        email,
        password: PASSWORD.to_owned(),
        token: reply.body["token"].as_str().expect("a token").to_owned(),
    }
}

/// `POST /v1/login`: a new token.
pub async fn login(api: &Api, email: &str, password: &str) -> String {
    let reply = api
        .post(
            "/v1/login",
            None,
            json!({"email": email, "password": password}),
        )
        .await
        .expect(200, "login");
    reply.body["token"].as_str().expect("a token").to_owned()
}

/// An invitation from `by` for a new person, accepted with `{name, password}`.
pub async fn invite_and_accept(api: &Api, by: &Agent, role: &str, name: &str) -> Agent {
    let email = fresh_email(role);
    let token = invite(api, by, &email, role).await;
    let reply = api
        .post(
            &format!("/v1/invitations/{token}/accept"),
            None,
            json!({"name": name, "password": PASSWORD}),
        )
        .await
        .expect(201, "accepting an invitation");
    assert_eq!(reply.id("organization_id"), by.organization_id);
    Agent {
        agent_id: reply.id("agent_id"),
        organization_id: by.organization_id,
        email,
        password: PASSWORD.to_owned(),
        token: reply.body["token"].as_str().expect("a token").to_owned(),
    }
}

/// `POST /v1/orgs/{org}/invitations`: the invitation's token.
pub async fn invite(api: &Api, by: &Agent, email: &str, role: &str) -> String {
    let reply = api
        .post(
            &format!("/v1/orgs/{}/invitations", by.organization_id),
            by.token(),
            json!({"email": email, "role": role}),
        )
        .await
        .expect(201, "an invitation");
    reply.body["token"].as_str().expect("a token").to_owned()
}

/// `POST /v1/orgs/{org}/queues`.
pub async fn create_queue(api: &Api, by: &Agent, name: &str) -> Uuid {
    api.post(
        &format!("/v1/orgs/{}/queues", by.organization_id),
        by.token(),
        json!({"name": name}),
    )
    .await
    .expect(201, "creating a queue")
    .id("queue_id")
}

/// `POST /v1/queues/{q}/handlers`.
pub async fn add_handler(api: &Api, by: &Agent, queue: Uuid, agent_id: Uuid) {
    api.post(
        &format!("/v1/queues/{queue}/handlers"),
        by.token(),
        json!({"agent_id": agent_id}),
    )
    .await
    .expect(204, "adding a handler");
}

/// `POST /v1/queues/{q}/open`.
pub async fn open_queue(api: &Api, by: &Agent, queue: Uuid) {
    api.call(
        "POST",
        &format!("/v1/queues/{queue}/open"),
        by.token(),
        None,
    )
    .await
    .expect(204, "opening a queue");
}

/// A queue created by `owner`, with `owner` as its handler, open.
pub async fn open_queue_handled_by(api: &Api, owner: &Agent, name: &str) -> Uuid {
    let queue = create_queue(api, owner, name).await;
    add_handler(api, owner, queue, owner.agent_id).await;
    open_queue(api, owner, queue).await;
    queue
}

/// `POST /v1/queues/{q}/join`.
pub async fn join(api: &Api, queue: Uuid, metadata: Value) -> Customer {
    let reply = api
        .post(
            &format!("/v1/queues/{queue}/join"),
            None,
            json!({"metadata": metadata}),
        )
        .await
        .expect(201, "joining a queue");
    Customer {
        conversation_id: reply.id("conversation_id"),
        token: reply.body["customer_token"]
            .as_str()
            .expect("a customer_token")
            .to_owned(),
        queue_position: reply.body["queue_position"]
            .as_i64()
            .expect("a queue_position"),
    }
}

/// `POST /v1/queues/{queue}/join {}` as the client `forwarded_for` names, for a server that
/// trusts this host as its proxy (`JONO_TRUSTED_PROXIES`).
pub async fn join_from(api: &Api, queue: Uuid, forwarded_for: &str) -> Reply {
    api.raw(
        "POST",
        &format!("/v1/queues/{queue}/join"),
        None,
        Some(b"{}".to_vec()),
        &[("x-forwarded-for", forwarded_for)],
    )
    .await
}

/// `POST /v1/queues/{q}/pick`: the picked conversation.
pub async fn pick(api: &Api, by: &Agent, queue: Uuid) -> Uuid {
    api.call(
        "POST",
        &format!("/v1/queues/{queue}/pick"),
        by.token(),
        None,
    )
    .await
    .expect(201, "picking")
    .id("conversation_id")
}

/// `POST /v1/queues/{queue}/pick` where nobody may be waiting: the conversation picked (201),
/// or `None` for 409; any other answer fails the test.
pub async fn try_pick(api: &Api, by: &Agent, queue: Uuid) -> Option<Uuid> {
    let reply = api
        .call(
            "POST",
            &format!("/v1/queues/{queue}/pick"),
            by.token(),
            None,
        )
        .await;
    match reply.status {
        201 => Some(reply.id("conversation_id")),
        409 => None,
        other => panic!("a pick answered {other}: {}", reply.text),
    }
}

/// `POST /v1/orgs/{org}/channels` in `by`'s organization: the channel's conversation id.
pub async fn create_channel(api: &Api, by: &Agent, name: &str) -> Uuid {
    api.post(
        &format!("/v1/orgs/{}/channels", by.organization_id),
        by.token(),
        json!({ "name": name }),
    )
    .await
    .expect(201, "a channel")
    .id("conversation_id")
}

/// `GET /v1/queues/{queue}/stats` read until `done` holds (the statistics' read model
/// follows the log), or the last answer.
pub async fn stats_once(
    api: &Api,
    by: &Agent,
    queue: Uuid,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let path = format!("/v1/queues/{queue}/stats");
    eventually(
        || async {
            api.get(&path, by.token())
                .await
                .expect(200, "statistics")
                .body
        },
        done,
    )
    .await
}

/// `POST /v1/conversations/{c}/messages`: `(message_id, seq)`.
pub async fn send_message(
    api: &Api,
    token: Option<&str>,
    conversation: Uuid,
    text: &str,
) -> (Uuid, i64) {
    let reply = api
        .post(
            &format!("/v1/conversations/{conversation}/messages"),
            token,
            json!({"text": text}),
        )
        .await
        .expect(201, "sending a message");
    (
        reply.id("message_id"),
        reply.body["seq"].as_i64().expect("a seq"),
    )
}

/// `GET /v1/conversations/{c}/messages`, every page.
pub async fn messages(api: &Api, token: Option<&str>, conversation: Uuid) -> Vec<Value> {
    let mut all = Vec::new();
    let mut after: Option<i64> = None;
    loop {
        let path = match after {
            Some(seq) => format!("/v1/conversations/{conversation}/messages?after={seq}"),
            None => format!("/v1/conversations/{conversation}/messages"),
        };
        let reply = api.get(&path, token).await.expect(200, "reading messages");
        let page = reply.body.as_array().expect("a list of messages").clone();
        let Some(last) = page.last() else {
            return all;
        };
        after = Some(last["seq"].as_i64().expect("a seq"));
        all.extend(page);
    }
}

/// The texts of the conversation's messages, in order.
pub async fn texts(api: &Api, token: Option<&str>, conversation: Uuid) -> Vec<String> {
    messages(api, token, conversation)
        .await
        .iter()
        .map(|message| message["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// `GET /v1/activity`, every page.
pub async fn activity(api: &Api, token: Option<&str>) -> Vec<Value> {
    let mut all = Vec::new();
    let mut after: Option<i64> = None;
    loop {
        let path = match after {
            Some(position) => format!("/v1/activity?after={position}"),
            None => "/v1/activity".to_owned(),
        };
        let reply = api.get(&path, token).await.expect(200, "reading activity");
        let page = reply.body.as_array().expect("a list of activity").clone();
        let Some(last) = page.last() else {
            return all;
        };
        after = Some(last["position"].as_i64().expect("a position"));
        all.extend(page);
    }
}

/// Calls `read` until `done` holds of its answer (read models catch up shortly after a
/// command is acknowledged), at most about ten seconds; returns the last answer either way so
/// the caller's assertion shows it.
pub async fn eventually<T, F, Fut>(mut read: F, done: impl Fn(&T) -> bool) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut value = read().await;
    for _ in 0..100 {
        if done(&value) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        value = read().await;
    }
    value
}

/// After an outage (the store away, a full disk): `POST path` with `body` until it is answered
/// 201, for up to 30 seconds, each refusal meanwhile a 503. Whether it was served.
pub async fn served_again(api: &Api, token: Option<&str>, path: &str, body: Value) -> bool {
    for _ in 0..120 {
        let reply = api.post(path, token, body.clone()).await;
        if reply.status == 201 {
            return true;
        }
        assert_eq!(
            reply.status, 503,
            "only 503 until it is served: {}",
            reply.text
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    false
}

/// What `token` reads at each of `paths` (each must answer 200), keyed by path, without the
/// figures that move with the clock (how long the oldest customer has waited). Two snapshots
/// compare equal when nothing was appended in between.
pub async fn snapshot(api: &Api, token: Option<&str>, paths: &[String]) -> Value {
    let mut snapshot = serde_json::Map::new();
    for path in paths {
        let mut body = api.get(path, token).await.expect(200, path).body;
        forget_the_clock(&mut body);
        snapshot.insert(path.clone(), body);
    }
    Value::Object(snapshot)
}

fn forget_the_clock(value: &mut Value) {
    match value {
        Value::Object(object) => {
            object.remove("oldest_wait_seconds");
            object.values_mut().for_each(forget_the_clock);
        }
        Value::Array(items) => items.iter_mut().for_each(forget_the_clock),
        _ => {}
    }
}

/// Appends a marker (a new queue of `owner`'s organization, opened) and waits until the
/// owner's activity shows it: by then the read models have taken in everything appended
/// before it, so a snapshot taken next shows any earlier append. Returns the marker queue.
pub async fn read_models_caught_up(api: &Api, owner: &Agent) -> Uuid {
    let marker = create_queue(api, owner, "Marker").await;
    open_queue(api, owner, marker).await;
    let items = eventually(
        || activity(api, owner.token()),
        |items| items.iter().any(|item| item["queue_id"] == json!(marker)),
    )
    .await;
    assert!(
        items.iter().any(|item| item["queue_id"] == json!(marker)),
        "the marker's QueueOpened never reached the activity"
    );
    marker
}

/// Watches what an owner sees at some paths, to tell whether anything was appended between
/// two looks: each look first waits for the read models ([`read_models_caught_up`]), then
/// snapshots without the marker queues.
pub struct Watch {
    owner: Agent,
    paths: Vec<String>,
    markers: Vec<Uuid>,
}

impl Watch {
    pub fn new(owner: &Agent, paths: Vec<String>) -> Self {
        Watch {
            owner: owner.clone(),
            paths,
            markers: Vec::new(),
        }
    }

    pub async fn look(&mut self, api: &Api) -> Value {
        self.markers
            .push(read_models_caught_up(api, &self.owner).await);
        let mut view = snapshot(api, self.owner.token(), &self.paths).await;
        let markers: Vec<Value> = self.markers.iter().map(|marker| json!(marker)).collect();
        if let Value::Object(views) = &mut view {
            for body in views.values_mut() {
                if let Value::Array(items) = body {
                    items.retain(|item| {
                        !markers.contains(&item["queue_id"]) && !markers.contains(&item["id"])
                    });
                }
            }
        }
        view
    }
}

/// Asserts that two snapshots agree path by path.
#[track_caller]
pub fn assert_unchanged(before: &Value, after: &Value, why: &str) {
    for (path, was) in before.as_object().expect("a snapshot") {
        assert_eq!(after[path], *was, "{path} changed: {why}");
    }
}
