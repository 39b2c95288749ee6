//! The few calls of API.md a load run makes, over keep-alive HTTP/1.1 connections. The requests
//! go through the black-box tests' client ([`jono_tests::api::Api::try_raw`]); unlike the tests'
//! story steps, which assert, these return an error saying which call failed and what the server
//! said, so that one failure among thousands of tasks ends the run with a report, not a panic.

use jono_tests::api::Api;
use serde_json::{json, Value};

use crate::Fallible;

/// One HTTP client: its own pool, so one client is one keep-alive connection when it is used
/// from one task at a time.
#[derive(Clone)]
pub struct Client {
    api: Api,
}

/// A customer who joined: its conversation and its token.
#[derive(Debug, Clone)]
pub struct Customer {
    pub conversation: String,
    pub token: String,
}

impl Client {
    pub fn new(base: &str) -> Fallible<Self> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .tcp_nodelay(true)
            .build()?;
        Ok(Client {
            api: Api {
                http,
                base: base.to_owned(),
            },
        })
    }

    /// `POST path` with a JSON body; the answer's body when the status is `expect`.
    pub async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: Value,
        expect: u16,
    ) -> Fallible<Value> {
        let body = Some(body.to_string().into_bytes());
        let reply = self.api.try_raw("POST", path, token, body, &[]).await?;
        if reply.status != expect {
            return Err(format!(
                "POST {path}: expected {expect}, got {} {}",
                reply.status, reply.text
            )
            .into());
        }
        Ok(reply.body)
    }

    /// `GET path`'s status.
    pub async fn status(&self, path: &str) -> Fallible<u16> {
        Ok(self.api.try_raw("GET", path, None, None, &[]).await?.status)
    }

    /// Signs up a fresh organization; its id, the owner's agent id and token.
    pub async fn sign_up(&self) -> Fallible<(String, String, String)> {
        let email = format!("load-{}@example.com", uuid::Uuid::new_v4().simple());
        let body = self
            .post(
                "/v1/signup",
                None,
                json!({"organization": "Load", "name": "Load agent", "email": email,
                       "password": "a load test password"}),
                201,
            )
            .await?;
        Ok((
            field(&body, "organization_id")?,
            field(&body, "agent_id")?,
            field(&body, "token")?,
        ))
    }

    /// An open queue with `agent` as its only handler (no capacity limit: the default).
    pub async fn open_queue(
        &self,
        token: &str,
        organization: &str,
        agent: &str,
        name: &str,
    ) -> Fallible<String> {
        let body = self
            .post(
                &format!("/v1/orgs/{organization}/queues"),
                Some(token),
                json!({ "name": name }),
                201,
            )
            .await?;
        let queue = field(&body, "queue_id")?;
        self.post(
            &format!("/v1/queues/{queue}/handlers"),
            Some(token),
            json!({ "agent_id": agent }),
            204,
        )
        .await?;
        self.post(
            &format!("/v1/queues/{queue}/open"),
            Some(token),
            json!({}),
            204,
        )
        .await?;
        Ok(queue)
    }

    pub async fn join(&self, queue: &str, number: usize) -> Fallible<Customer> {
        let body = self
            .post(
                &format!("/v1/queues/{queue}/join"),
                None,
                json!({"metadata": {"name": format!("Customer {number}")}}),
                201,
            )
            .await?;
        Ok(Customer {
            conversation: field(&body, "conversation_id")?,
            token: field(&body, "customer_token")?,
        })
    }

    /// Picks the customer who waited longest; the conversation.
    pub async fn pick(&self, token: &str, queue: &str) -> Fallible<String> {
        let body = self
            .post(
                &format!("/v1/queues/{queue}/pick"),
                Some(token),
                json!({}),
                201,
            )
            .await?;
        field(&body, "conversation_id")
    }

    pub async fn send(&self, token: &str, conversation: &str, text: &str) -> Fallible<()> {
        self.post(
            &format!("/v1/conversations/{conversation}/messages"),
            Some(token),
            json!({ "text": text }),
            201,
        )
        .await?;
        Ok(())
    }
}

fn field(body: &Value, name: &str) -> Fallible<String> {
    body[name]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no {name} in {body}").into())
}
