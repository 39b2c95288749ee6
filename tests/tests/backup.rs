//! Backup and restore (issue "The edges hold", faults): `jono backup` takes a consistent copy
//! while Jono serves under load, `jono restore` brings it back into a fresh data directory or
//! database, and there every acknowledged event before the backup began is found, the
//! attachments open, and the read models equal a rebuild's. A restore never overwrites a store.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use jono_tests::api::{self, Api};
use jono_tests::{jono, psql, Storage};
use serde_json::{json, Value};
use uuid::Uuid;

/// A database of its own on the test server, with the same schema name as `like`'s URL names,
/// for a restore (the dump recreates its schema).
fn fresh_database(like: &str) -> Storage {
    let base = std::env::var("JONO_TEST_DATABASE_URL").expect("JONO_TEST_DATABASE_URL");
    let name = format!("jono_restore_{}", Uuid::new_v4().simple());
    psql(&base, &format!("CREATE DATABASE {name}"));
    let (address, _) = base.split_once('?').unwrap_or((&base, ""));
    let (server, _database) = address.rsplit_once('/').expect("a database in the URL");
    let options = like.split_once('?').map(|(_, query)| query).unwrap_or("");
    Storage::Postgres(format!("{server}/{name}?{options}"))
}

fn args<'a>(storage: &'a [String], rest: &[&'a str]) -> Vec<&'a str> {
    let mut all: Vec<&str> = rest.to_vec();
    all.extend(storage.iter().map(String::as_str));
    all
}

async fn upload(api: &Api, token: &str, conversation: Uuid, bytes: &[u8]) -> Value {
    let boundary = "jono-backup-test-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"note.txt\"\r\nContent-Type: text/plain\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let response = api
        .http
        .post(format!(
            "{}/v1/conversations/{conversation}/attachments",
            api.base
        ))
        .bearer_auth(token)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    response.json().await.unwrap()
}

/// What the read models say of the conversation and its queue.
async fn look(api: &Api, token: &str, conversation: Uuid, queue: Uuid, org: Uuid) -> Value {
    let mut everything = Vec::new();
    let mut after = 0;
    loop {
        let page = api
            .get(
                &format!("/v1/conversations/{conversation}/messages?after={after}&limit=1000"),
                Some(token),
            )
            .await
            .expect(200, "messages");
        let items = page.body.as_array().unwrap().clone();
        if items.is_empty() {
            break;
        }
        after = items.last().unwrap()["seq"].as_i64().unwrap();
        // Signed URLs differ by the signing time; the rest must be equal.
        for mut item in items {
            if let Some(attachments) = item["attachments"].as_array_mut() {
                for attachment in attachments {
                    attachment["url"] = Value::Null;
                }
            }
            everything.push(item);
        }
    }
    let conversation = api
        .get(&format!("/v1/conversations/{conversation}"), Some(token))
        .await
        .expect(200, "conversation");
    let queues = api
        .get(&format!("/v1/orgs/{org}/queues"), Some(token))
        .await
        .expect(200, "queues");
    json!({ "messages": everything, "conversation": conversation.body, "queues": queues.body, "queue": queue })
}

async fn backup_under_load_then_restore(source: Storage, target: Storage) {
    let (server, api) = api::start(&source);
    let owner = api::sign_up(&api, "Acme").await;
    let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
    let customer = api::join(&api, queue, json!({"name": "Ville"})).await;
    let conversation = api::pick(&api, &owner, queue).await;
    assert_eq!(conversation, customer.conversation_id);
    let attachment = upload(&api, &owner.token, conversation, b"kept in the backup").await;
    let attachment_id = attachment["attachment_id"].as_str().unwrap().to_owned();

    // Writers keep sending while the backup runs; each acknowledged text is noted.
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for writer in 0..4 {
        let (api, token, acknowledged, stop) = (
            api.clone(),
            owner.token.clone(),
            acknowledged.clone(),
            stop.clone(),
        );
        writers.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let text = format!("writer {writer} message {n}");
                let reply = api
                    .post(
                        &format!("/v1/conversations/{conversation}/messages"),
                        Some(&token),
                        json!({ "text": text }),
                    )
                    .await;
                assert_eq!(reply.status, 201, "{}", reply.text);
                acknowledged.lock().unwrap().push(text);
                n += 1;
            }
        }));
    }
    while acknowledged.lock().unwrap().len() < 40 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let before_backup: Vec<String> = acknowledged.lock().unwrap().clone();
    let folder = tempfile::tempdir().unwrap();
    let to = folder.path().join("backup");
    let to_text = to.display().to_string();
    let source_args = source.args();
    let taken = tokio::task::spawn_blocking({
        let args: Vec<String> = args(&source_args, &["backup", &to_text])
            .into_iter()
            .map(str::to_owned)
            .collect();
        move || jono(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[])
    })
    .await
    .unwrap();
    assert!(
        taken.status.success(),
        "jono backup: {}",
        String::from_utf8_lossy(&taken.stderr)
    );
    // A little more traffic after the copy, then stop.
    let after_backup = acknowledged.lock().unwrap().len();
    while acknowledged.lock().unwrap().len() < after_backup + 10 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }
    drop(server);

    // Into a fresh store.
    let target_args = target.args();
    let restored = jono(&args(&target_args, &["restore", &to_text]), &[]);
    assert!(
        restored.status.success(),
        "jono restore: {}",
        String::from_utf8_lossy(&restored.stderr)
    );
    let again = jono(&args(&target_args, &["restore", &to_text]), &[]);
    assert!(!again.status.success(), "a restore over a store is refused");
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("restore into an empty"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    let (server, api) = api::start(&target);
    // The same token works: secrets came along.
    let seen = look(
        &api,
        &owner.token,
        conversation,
        queue,
        owner.organization_id,
    )
    .await;
    let texts: Vec<&str> = seen["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["text"].as_str())
        .collect();
    for text in &before_backup {
        assert!(
            texts.contains(&text.as_str()),
            "{text:?}, acknowledged before the backup, is in the restored log"
        );
    }
    // The attachment opens from the restored store, by the URL signed before the backup.
    let url = attachment["url"].as_str().unwrap();
    let response = api
        .http
        .get(format!("{}{url}", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        200,
        "the attachment {attachment_id}"
    );
    assert_eq!(
        response.bytes().await.unwrap().as_ref(),
        b"kept in the backup"
    );
    drop(server);

    // The read models that came along equal a rebuild of them from the restored log.
    let rebuilt = jono(&args(&target_args, &["projections", "rebuild"]), &[]);
    assert!(
        rebuilt.status.success(),
        "rebuild: {}",
        String::from_utf8_lossy(&rebuilt.stderr)
    );
    let (_server, api) = api::start(&target);
    let after_rebuild = look(
        &api,
        &owner.token,
        conversation,
        queue,
        owner.organization_id,
    )
    .await;
    assert_eq!(
        seen, after_rebuild,
        "the restored read models equal a rebuild"
    );
}

#[tokio::test]
async fn a_backup_under_load_restores_into_a_fresh_data_directory() {
    backup_under_load_then_restore(Storage::embedded(), Storage::embedded()).await;
}

#[tokio::test]
async fn a_backup_under_load_restores_into_a_fresh_postgres_database() {
    let Some(source) = Storage::postgres() else {
        return;
    };
    let Storage::Postgres(url) = &source else {
        unreachable!()
    };
    let target = fresh_database(url);
    backup_under_load_then_restore(source, target).await;
}
