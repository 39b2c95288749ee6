//! Single sign-on against a real OpenID Connect provider on loopback (`web/tests/oidc-provider.mjs`,
//! the certified `oidc-provider` package): an owner sets the provider (the client secret never in
//! the log); an invited email's first sign-in joins the organization and a member's next one signs
//! it in; refused are a replayed `state`, an unverified email, an ID token for another audience,
//! an expired one, and an email neither member nor invited; an organization that requires SSO
//! refuses its members' passwords, not its owners'. The browser's part (the provider's redirects,
//! its sign-in and consent) is plain HTTP, played by the provider script's `/test/drive`.
//! Needs `node` and `web/node_modules` (`cd web && npm ci`). On both backends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use jono_tests::api::{self, Agent, Api, Reply};
use jono_tests::Storage;
use serde_json::{json, Value};

const CLIENT_ID: &str = "jono-loopback";
const CLIENT_SECRET: &str = "loopback-client-secret-4f1d9c";

fn storages() -> Vec<Storage> {
    let mut storages = vec![Storage::embedded()];
    storages.extend(Storage::postgres());
    storages
}

/// The provider, for as long as the test holds it.
struct OpenIdProvider {
    child: Child,
    issuer: String,
}

impl Drop for OpenIdProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_provider(redirect_uri: &str) -> OpenIdProvider {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../web/tests/oidc-provider.mjs"
    );
    let mut child = Command::new("node")
        .arg(script)
        .env("OIDC_CLIENT_ID", CLIENT_ID)
        .env("OIDC_CLIENT_SECRET", CLIENT_SECRET)
        .env("OIDC_REDIRECT_URI", redirect_uri)
        .stdout(Stdio::piped())
        .spawn()
        .expect("node runs web/tests/oidc-provider.mjs (cd web && npm ci first)");
    let mut line = String::new();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    out.read_line(&mut line).unwrap();
    // Whatever it prints later is drained: a closed pipe would end it.
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let issuer = line
        .trim()
        .strip_prefix("issuer ")
        .unwrap_or_else(|| panic!("the provider did not start: {line:?}"))
        .to_owned();
    OpenIdProvider { child, issuer }
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn reply(response: reqwest::Response) -> Reply {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        text,
        body,
    }
}

/// Jono's start, the provider's sign-in as `email`: the callback URL the provider sends back.
async fn sign_in_at_provider(
    api: &Api,
    provider: &OpenIdProvider,
    org: uuid::Uuid,
    email: &str,
) -> String {
    let http = no_redirects();
    let started = reply(
        http.get(format!(
            "{}/v1/sso/{org}/start?login_hint={email}",
            api.base
        ))
        .send()
        .await
        .unwrap(),
    )
    .await
    .expect(303, "the start of a sign-in");
    let authorization = started.header("location").unwrap().to_owned();
    assert!(
        authorization.starts_with(&provider.issuer),
        "{authorization}"
    );
    for needed in [
        "state=",
        "nonce=",
        "code_challenge=",
        "code_challenge_method=S256",
    ] {
        assert!(
            authorization.contains(needed),
            "{needed} in {authorization}"
        );
    }
    let driven = http
        .get(format!("{}/test/drive", provider.issuer))
        .query(&[("url", authorization)])
        .send()
        .await
        .unwrap();
    assert_eq!(driven.status(), 200);
    driven.text().await.unwrap()
}

async fn callback(callback_url: &str) -> Reply {
    reply(no_redirects().get(callback_url).send().await.unwrap()).await
}

/// A good sign-in's token, from the callback's redirect to the console.
fn token_of(reply: Reply) -> String {
    let reply = reply.expect(303, "a good sign-in");
    let location = reply.header("location").unwrap();
    location
        .strip_prefix("/#sso_token=")
        .unwrap_or_else(|| panic!("{location}"))
        .to_owned()
}

async fn tamper(provider: &OpenIdProvider, mode: &str) {
    let done = no_redirects()
        .post(format!("{}/test/tamper?mode={mode}", provider.issuer))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
}

async fn set_sso(api: &Api, owner: &Agent, provider: &OpenIdProvider, required: bool) -> Reply {
    api.put(
        &format!("/v1/orgs/{}/sso", owner.organization_id),
        owner.token(),
        json!({"issuer": provider.issuer, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "required": required}),
    )
    .await
}

#[tokio::test]
async fn sign_in_through_the_organizations_openid_provider() {
    for storage in storages() {
        // The test's provider is on loopback: the deployment allows private networks.
        let (_server, api) = api::start_with(
            &storage,
            &[
                ("JONO_RATE_LIMITS", "off"),
                ("JONO_SSO_PRIVATE_NETWORKS", "true"),
            ],
        );
        let provider = start_provider(&format!("{}/v1/sso/callback", api.base));
        let owner = api::sign_up(&api, "Federated").await;
        let org = owner.organization_id;
        let none = api
            .get(&format!("/v1/orgs/{org}/sso"), owner.token())
            .await
            .expect(200, "no single sign-on yet");
        assert_eq!(none.body["issuer"], Value::Null);
        assert_eq!(none.body["has_client_secret"], false);
        let member = api::invite_and_accept(&api, &owner, "agent", "Pia Password").await;
        set_sso(&api, &member, &provider, false)
            .await
            .expect_problem(403, "an agent sets single sign-on");
        // An issuer whose discovery document cannot be read is refused at once.
        api.put(
            &format!("/v1/orgs/{org}/sso"),
            owner.token(),
            json!({"issuer": format!("{}/nowhere", provider.issuer), "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}),
        )
        .await
        .expect_problem(422, "an issuer without a discovery document");
        let set = set_sso(&api, &owner, &provider, false)
            .await
            .expect(200, "set");
        assert_eq!(set.body["has_client_secret"], true);
        assert_eq!(set.body["client_id"], CLIENT_ID);
        assert!(!set.text.contains(CLIENT_SECRET));

        // An invited email's first sign-in creates its account and joins.
        let email = api::fresh_email("ana");
        api::invite(&api, &owner, &email, "agent").await;
        let url = sign_in_at_provider(&api, &provider, org, &email).await;
        let token = token_of(callback(&url).await);
        let me = api
            .get("/v1/me", Some(&token))
            .await
            .expect(200, "signed in");
        assert_eq!(me.body["email"], email.as_str());
        assert_eq!(me.body["organizations"][0]["id"], org.to_string());
        // The session ends within hours, so that someone removed at the provider is out then.
        let sessions = api
            .get("/v1/me/sessions", Some(&token))
            .await
            .expect(200, "its sessions");
        assert!(sessions.body[0]["ends_at"].is_string(), "{}", sessions.text);
        // The same state again is refused.
        callback(&url).await.expect_problem(401, "a replayed state");
        // A member's next sign-in signs it in.
        let url = sign_in_at_provider(&api, &provider, org, &email).await;
        token_of(callback(&url).await);
        // Its account has no password.
        api.post(
            "/v1/login",
            None,
            json!({"email": email, "password": api::PASSWORD}),
        )
        .await
        .expect_problem(401, "an account of single sign-on has no password");

        // Refused: an unverified email, another audience, an expired token, a stranger.
        let unverified = api::fresh_email("unverified");
        api::invite(&api, &owner, &unverified, "agent").await;
        let url = sign_in_at_provider(&api, &provider, org, &unverified).await;
        let refused = callback(&url)
            .await
            .expect_problem(401, "an unverified email");
        assert!(refused.text.contains("verified"), "{}", refused.text);
        for (mode, says) in [("aud", "another client"), ("expired", "expired")] {
            let url = sign_in_at_provider(&api, &provider, org, &email).await;
            tamper(&provider, mode).await;
            let refused = callback(&url).await.expect_problem(401, mode);
            assert!(refused.text.contains(says), "{mode}: {}", refused.text);
        }
        // A malformed callback is a problem too.
        let twice = format!("{}/v1/sso/callback?state=a&state=b", api.base);
        callback(&twice)
            .await
            .expect_problem(400, "a callback with two states");
        let stranger = api::fresh_email("stranger");
        let url = sign_in_at_provider(&api, &provider, org, &stranger).await;
        callback(&url)
            .await
            .expect_problem(403, "neither member nor invited");

        // Required: members' passwords are refused, the owner's recovery path stays.
        set_sso(&api, &owner, &provider, true)
            .await
            .expect(200, "required");
        let refused = api
            .post(
                "/v1/login",
                None,
                json!({"email": member.email, "password": member.password}),
            )
            .await
            .expect_problem(403, "a member's password");
        assert!(refused.text.contains("/v1/sso/"), "{}", refused.text);
        api::login(&api, &owner.email, &owner.password).await;
        let read = api
            .get(&format!("/v1/orgs/{org}/sso"), member.token())
            .await
            .expect(200, "a member reads the settings");
        assert_eq!(read.body["required"], true);

        // The client secret is not in the log.
        if let Some(dir) = storage.data_dir() {
            let db = rusqlite::Connection::open(dir.join("jono.db")).unwrap();
            let leaked: i64 = db
                .query_row(
                    "SELECT COUNT(*) FROM events WHERE payload LIKE ?1",
                    [format!("%{CLIENT_SECRET}%")],
                    |row| row.get(0),
                )
                .unwrap();
            let configured: i64 = db
                .query_row(
                    "SELECT COUNT(*) FROM events WHERE event_type = 'SsoConfigured'",
                    [],
                    |row| row.get(0),
                )
                .unwrap();
            assert_eq!((leaked, configured), (0, 2));
        }
    }
}

/// Without `JONO_SSO_PRIVATE_NETWORKS`, a provider on loopback or a private network is refused
/// before anything is fetched from it: an owner (anyone who signs up is the owner of an
/// organization) cannot make the server fetch its own network (SSRF). A real provider on
/// loopback is running, so only the address keeps it out.
#[tokio::test]
async fn a_provider_on_a_private_network_is_refused_unless_the_deployment_allows_it() {
    for storage in storages() {
        let (_server, api) = api::start(&storage);
        let provider = start_provider(&format!("{}/v1/sso/callback", api.base));
        let owner = api::sign_up(&api, "Inward").await;
        let org = owner.organization_id;
        let port = provider
            .issuer
            .rsplit(':')
            .next()
            .and_then(|rest| rest.split('/').next())
            .unwrap()
            .to_owned();
        for issuer in [
            provider.issuer.clone(),
            format!("http://localhost:{port}"),
            format!("http://[::1]:{port}"),
            "http://10.0.0.1".to_owned(),
            "http://169.254.169.254/latest".to_owned(),
            "http://[::ffff:127.0.0.1]:1".to_owned(),
        ] {
            let refused = api
                .put(
                    &format!("/v1/orgs/{org}/sso"),
                    owner.token(),
                    json!({"issuer": issuer, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}),
                )
                .await
                .expect_problem(422, &issuer);
            assert!(
                refused.text.contains("private") || refused.text.contains("public"),
                "{issuer}: {}",
                refused.text
            );
        }
        let none = api
            .get(&format!("/v1/orgs/{org}/sso"), owner.token())
            .await
            .expect(200, "still no single sign-on");
        assert_eq!(none.body["issuer"], Value::Null);
    }
}
