//! Accounts at their edges: one email has one account however many sign-ups and acceptances
//! race for it; the memory that password hashing takes is bounded whatever the number of
//! sign-ups, logins and password changes that arrive at once; an account's id cannot be computed
//! from its email without the deployment's secret, and a store written before keeps its
//! accounts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use domain::account::{Account, AccountCommand};
use domain::organization::{Organization, OrganizationCommand};
use domain::values::{DisplayName, Email, Name};
use jono_tests::api::{self, Api, Reply, PASSWORD};
use jono_tests::Storage;
use serde_json::json;
use store::command::{CommandContext, Commands};
use uuid::Uuid;

fn storages() -> Vec<Storage> {
    let mut storages = vec![Storage::embedded()];
    storages.extend(Storage::postgres());
    storages
}

/// The one reply that won, after checking that every other one is a 409 problem.
#[track_caller]
fn one_winner(replies: &[Reply], what: &str) -> usize {
    let winners: Vec<usize> = (0..replies.len())
        .filter(|&n| replies[n].status == 201)
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "{what}: one creation wins, got {:?}",
        replies.iter().map(|reply| reply.status).collect::<Vec<_>>()
    );
    for (n, reply) in replies.iter().enumerate() {
        if n != winners[0] {
            let reply = reply.clone();
            let status = reply.status;
            assert!(
                status == 409 || status == 401,
                "{what}: a loser gets 409 (or 401 to accept with a token): {status} {}",
                reply.text
            );
            reply.expect_problem(status, what);
        }
    }
    winners[0]
}

/// Only the winner's password opens the account; the losers' do not.
async fn only_the_winner_signs_in(api: &Api, email: &str, passwords: &[String], winner: usize) {
    for (n, password) in passwords.iter().enumerate() {
        let reply = api
            .post(
                "/v1/login",
                None,
                json!({"email": email, "password": password}),
            )
            .await;
        if n == winner {
            reply.expect(200, "the winner's password");
        } else {
            reply.expect_problem(401, "a loser's password");
        }
    }
}

#[tokio::test]
async fn eight_sign_ups_with_one_email_make_one_account_whose_password_is_the_winners() {
    for storage in storages() {
        let (_server, api) = api::start(&storage);
        for trial in 0..6 {
            let email = api::fresh_email("racer");
            let passwords: Vec<String> = (0..8).map(|n| format!("{PASSWORD} {n}")).collect();
            let sign_ups = passwords.iter().map(|password| {
                let api = api.clone();
                let body = json!({"organization": "Race", "name": "Rae Racer", "email": email, "password": password});
                async move { api.post("/v1/signup", None, body).await }
            });
            let replies = futures::future::join_all(sign_ups).await;
            let winner = one_winner(&replies, &format!("trial {trial}"));
            let token = replies[winner].body["token"].as_str().unwrap().to_owned();
            let me = api.get("/v1/me", Some(&token)).await.expect(200, "me");
            assert_eq!(me.body["agent_id"], replies[winner].body["agent_id"]);
            only_the_winner_signs_in(&api, &email, &passwords, winner).await;
        }
    }
}

#[tokio::test]
async fn a_sign_up_racing_an_invitations_acceptance_never_reaches_the_organization() {
    for storage in storages() {
        let (_server, api) = api::start(&storage);
        let owner = api::sign_up(&api, "Acme").await;
        for trial in 0..4 {
            let email = api::fresh_email("invitee");
            let invitation = api::invite(&api, &owner, &email, "agent").await;
            let passwords: Vec<String> = (0..8).map(|n| format!("{PASSWORD} {n}")).collect();
            let attempts = passwords.iter().enumerate().map(|(n, password)| {
                let api = api.clone();
                let (path, body) = if n.is_multiple_of(2) {
                    (
                        format!("/v1/invitations/{invitation}/accept"),
                        json!({"name": "Ivy Invitee", "password": password}),
                    )
                } else {
                    (
                        "/v1/signup".to_owned(),
                        json!({"organization": "Mallory Ltd", "name": "Mallory", "email": email, "password": password}),
                    )
                };
                async move { api.post(&path, None, body).await }
            });
            let replies = futures::future::join_all(attempts).await;
            let winner = one_winner(&replies, &format!("trial {trial}"));
            only_the_winner_signs_in(&api, &email, &passwords, winner).await;
            // Only an acceptance that won makes its account a member of the organization.
            let members = api
                .get(
                    &format!("/v1/orgs/{}/members", owner.organization_id),
                    owner.token(),
                )
                .await
                .expect(200, "members");
            let agent_id = replies[winner].body["agent_id"].clone();
            let listed = members.text.contains(agent_id.as_str().unwrap());
            assert_eq!(
                listed,
                winner.is_multiple_of(2),
                "trial {trial}: the account is a member only if its acceptance won: {}",
                members.text
            );
        }
    }
}

/// The peak resident memory of a process, in KiB (`VmHWM`).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

#[tokio::test]
async fn two_hundred_password_requests_at_once_stay_under_512_mib_without_rate_limits() {
    let storage = Storage::embedded();
    // Rate limits off: the bound on hashing is what is tested, not the limits.
    let (server, api) = api::start(&storage);
    let owner = api::sign_up(&api, "Acme").await;
    let count = 200;
    let sign_ups = (0..count).map(|n| {
        let api = api.clone();
        let body = json!({"organization": "Greedy", "name": "Greg", "email": owner.email, "password": format!("{PASSWORD} {n}")});
        async move { ("sign-up", api.post("/v1/signup", None, body).await) }
    });
    let logins = (0..count).map(|n| {
        let api = api.clone();
        let body = json!({"email": owner.email, "password": format!("wrong password {n}")});
        async move { ("login", api.post("/v1/login", None, body).await) }
    });
    let changes = (0..count).map(|n| {
        let api = api.clone();
        let token = owner.token.clone();
        let body = json!({"current_password": format!("wrong password {n}"), "new_password": "a new password entirely"});
        async move {
            let reply = api.put("/v1/me/password", Some(&token), body).await;
            ("password change", reply)
        }
    });
    let (sign_ups, logins, changes) = futures::future::join3(
        futures::future::join_all(sign_ups),
        futures::future::join_all(logins),
        futures::future::join_all(changes),
    )
    .await;
    for (what, reply) in sign_ups {
        // A taken email is refused before any hashing, so at once and never for lack of room.
        reply.expect_problem(409, what);
    }
    for (what, reply) in logins.into_iter().chain(changes) {
        let expected = if what == "login" { 401 } else { 403 };
        if reply.status == 503 {
            assert!(
                reply.header("retry-after").is_some(),
                "{what}: a 503 says Retry-After"
            );
            reply.expect_problem(503, what);
        } else {
            reply.expect_problem(expected, what);
        }
    }
    let peak_mib = peak_rss_kib(server.child.id()) / 1024;
    assert!(
        peak_mib <= 512,
        "the server peaked at {peak_mib} MiB under {count} sign-ups, logins and password changes"
    );
    // The owner's account is untouched and still signs in once the crowd has gone.
    api::login(&api, &owner.email, PASSWORD).await;
}

/// The id accounts had before ids were derived under a deployment's secret, which anyone could
/// compute from an email: a UUIDv5 under a namespace published in the source.
fn public_uuid_v5(email: &str) -> Uuid {
    let namespace = Uuid::from_u128(0x6a6f_6e6f_2d6a_6f6e_6f2d_0000_0000_0001);
    Uuid::new_v5(
        &namespace,
        format!("account:{}", email.to_lowercase()).as_bytes(),
    )
}

async fn my_id(api: &Api, token: &str) -> Uuid {
    api.get("/v1/me", Some(token))
        .await
        .expect(200, "me")
        .id("agent_id")
}

#[tokio::test]
async fn an_agent_id_cannot_be_computed_from_its_email_and_each_deployment_has_its_own() {
    let email = api::fresh_email("private");
    let mut ids = Vec::new();
    for _ in 0..2 {
        let storage = Storage::embedded();
        let (server, api) = api::start(&storage);
        let reply = api
            .post(
                "/v1/signup",
                None,
                json!({"organization": "Acme", "name": "Pia", "email": email, "password": PASSWORD}),
            )
            .await
            .expect(201, "sign-up");
        let agent_id = reply.id("agent_id");
        assert_ne!(
            agent_id,
            public_uuid_v5(&email),
            "computable from the email"
        );
        // The deployment keeps its secret: after a restart the email finds the same account.
        server.kill();
        let (_server, api) = api::start(&storage);
        let token = api::login(&api, &email.to_uppercase(), PASSWORD).await;
        assert_eq!(my_id(&api, &token).await, agent_id);
        ids.push(agent_id);
    }
    assert_ne!(
        ids[0], ids[1],
        "each deployment derives ids under its own secret"
    );
}

#[tokio::test]
async fn an_account_of_a_store_written_before_is_still_found_by_its_email() {
    let storage = Storage::embedded();
    let email = api::fresh_email("veteran");
    let legacy_id = public_uuid_v5(&email);
    {
        // The store as a server wrote it before: the account under the public id, its
        // password beside the log, and an organization it owns.
        let dir = storage.data_dir().expect("an embedded store");
        let store = store::log::EventStore::open_sqlite(dir).await.unwrap();
        gateway::secrets::migrate(store.backend()).await.unwrap();
        let commands = Commands::new(store.clone());
        let ctx = CommandContext::default();
        let create = AccountCommand::CreateAccount {
            agent_id: legacy_id,
            email: Email::parse(&email).unwrap(),
            name: DisplayName::parse("Vera Veteran").unwrap(),
            email_confirmed: false,
        };
        commands
            .execute::<Account>(&legacy_id.to_string(), create, &(), &ctx)
            .await
            .unwrap();
        let organization_id = Uuid::new_v4();
        let organization = OrganizationCommand::CreateOrganization {
            organization_id,
            name: Name::parse("Old Co").unwrap(),
            owner_id: Some(legacy_id),
        };
        commands
            .execute::<Organization>(&organization_id.to_string(), organization, &(), &ctx)
            .await
            .unwrap();
        let hash = gateway::auth::hash_password(PASSWORD.to_owned())
            .await
            .unwrap();
        gateway::secrets::set_password_hash(store.backend(), legacy_id, &hash)
            .await
            .unwrap();
    }
    let (_server, api) = api::start(&storage);
    let token = api::login(&api, &email, PASSWORD).await;
    assert_eq!(my_id(&api, &token).await, legacy_id);
    // Its email is taken, for a sign-up as for a new person accepting an invitation.
    api.post(
        "/v1/signup",
        None,
        json!({"organization": "Acme", "name": "Mallory", "email": email.to_uppercase(), "password": PASSWORD}),
    )
    .await
    .expect_problem(409, "a sign-up with the email of an old account");
    let owner = api::sign_up(&api, "Acme").await;
    let invitation = api::invite(&api, &owner, &email, "agent").await;
    let accept = format!("/v1/invitations/{invitation}/accept");
    api.post(
        &accept,
        None,
        json!({"name": "Mallory", "password": PASSWORD}),
    )
    .await
    .expect_problem(401, "accepting as a new person with an old account's email");
    // The old account accepts with its own token, and stays itself.
    let accepted = api
        .post(&accept, Some(&token), json!({}))
        .await
        .expect(201, "the old account accepts");
    assert_eq!(accepted.id("agent_id"), legacy_id);
}
