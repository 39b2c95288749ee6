//! Erasure (GDPR; issue 17), black-box on both backends: an operator erases a customer; the
//! conversation, its messages, transcript, notes, files, the search, the left message and the
//! activity show nothing personal of it any more, while the queue's statistics (over HTTP and
//! from `jono stats`) are what they were. Erasing again answers the same; an agent may not
//! erase, a channel cannot be erased, nothing more is written to an erased conversation.
//! `jono gdpr erase` erases the same way, and an organization's `retention_days` has the
//! sweeper erase what ended longer ago than that.
//!
//! And no byte of the storage holds the customer's words any more: every file of the SQLite
//! data directory, or Postgres's table, TOAST and index files after a `VACUUM FULL` (the key of each
//! conversation is destroyed in the store, `store/tests/suite/sealing.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use jono_tests::api::{self, eventually, Agent, Api};
use jono_tests::Storage;
use serde_json::{json, Value};
use uuid::Uuid;

/// A tiny PNG: its signature and an IHDR chunk are all the sniffing looks at.
const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

const ERASED: &str = "[erased]";
const FAR: &str = "2100-01-01T00:00:00Z";

async fn erase(api: &Api, by: &Agent, body: Value) -> api::Reply {
    api.post(
        &format!("/v1/orgs/{}/erasures", by.organization_id),
        by.token(),
        body,
    )
    .await
}

async fn upload(api: &Api, token: Option<&str>, conversation: Uuid, name: &str) -> Uuid {
    let boundary = format!("jono-test-{}", Uuid::new_v4().simple());
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(PNG);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let mut request = api
        .http
        .post(format!(
            "{}/v1/conversations/{conversation}/attachments",
            api.base
        ))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status().as_u16(), 201, "an upload");
    let body: Value = response.json().await.unwrap();
    body["attachment_id"].as_str().unwrap().parse().unwrap()
}

async fn status_of(api: &Api, url: &str) -> u16 {
    api.http
        .get(format!("{}{url}", api.base))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn stats_from_log(storage: &Storage, queue: Uuid) -> Value {
    let queue = queue.to_string();
    let mut args = storage.args();
    args.extend(["stats", "--queue", &queue, "--to", FAR, "--format", "json"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let printed = jono_tests::jono(&args, &[]);
    assert!(
        printed.status.success(),
        "jono stats: {}",
        String::from_utf8_lossy(&printed.stderr)
    );
    let report: Value = serde_json::from_slice(&printed.stdout).unwrap();
    report["total"].clone()
}

async fn stats_over_http(api: &Api, by: &Agent, queue: Uuid) -> Value {
    api.get(&format!("/v1/queues/{queue}/stats?to={FAR}"), by.token())
        .await
        .expect(200, "statistics")
        .body
}

async fn search(api: &Api, by: &Agent, words: &str) -> Vec<Value> {
    let path = format!("/v1/orgs/{}/search?q={words}", by.organization_id);
    api.get(&path, by.token())
        .await
        .expect(200, "a search")
        .body
        .as_array()
        .unwrap()
        .clone()
}

async fn the_story(storage: &Storage) {
    let (_server, api) = api::start(storage);
    let owner = api::sign_up(&api, "Acme").await;
    let agent = api::invite_and_accept(&api, &owner, "agent", "Aino").await;
    let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
    api::add_handler(&api, &owner, queue, agent.agent_id).await;
    // Words found nowhere else, so that finding them anywhere is a leak.
    let secret = format!("plumbus{}", Uuid::new_v4().simple());
    let note_word = format!("grumbo{}", Uuid::new_v4().simple());
    let file_word = format!("passport{}", Uuid::new_v4().simple());
    let name = format!("Zelda{}", &Uuid::new_v4().simple().to_string()[..8]);
    let email = format!("{}@quokka.example", name.to_lowercase());

    let customer = api::join(
        &api,
        queue,
        json!({"name": name, "email": email, "order": secret}),
    )
    .await;
    let c = customer.conversation_id;
    assert_eq!(api::pick(&api, &agent, queue).await, c);
    api::send_message(&api, customer.token(), c, &format!("my secret is {secret}")).await;
    api::send_message(&api, agent.token(), c, "noted, thank you").await;
    api.post(
        &format!("/v1/conversations/{c}/live"),
        customer.token(),
        json!({"page": format!("/orders/{secret}")}),
    )
    .await
    .expect(204, "live metadata");
    api.post(
        &format!("/v1/conversations/{c}/notes"),
        agent.token(),
        json!({"text": format!("remember {note_word}")}),
    )
    .await
    .expect(201, "a note");
    let file = upload(&api, agent.token(), c, &format!("{file_word}.png")).await;
    api.post(
        &format!("/v1/conversations/{c}/messages"),
        agent.token(),
        json!({"text": "", "attachments": [file.to_string()]}),
    )
    .await
    .expect(201, "a message with the file");
    let left = api
        .post(
            &format!("/v1/queues/{queue}/messages"),
            None,
            json!({"name": name, "email": email, "text": format!("call me about {secret}")}),
        )
        .await
        .expect(201, "a left message")
        .id("conversation_id");
    // Both end before the statistics are taken: an erasure ends a conversation that has not,
    // and an end is counted.
    for ended in [c, left] {
        api.post(
            &format!("/v1/conversations/{ended}/end"),
            agent.token(),
            json!({}),
        )
        .await
        .expect(204, "the end");
    }
    let messages = api::messages(&api, owner.token(), c).await;
    let url = messages.last().unwrap()["attachments"][0]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(status_of(&api, &url).await, 200, "the file before");
    eventually(|| search(&api, &owner, &secret), |hits| hits.len() >= 2).await;
    let stats_before = stats_over_http(&api, &owner, queue).await;
    let log_before = stats_from_log(storage, queue);
    assert_eq!(
        log_before, stats_before,
        "the read model's figures are the log's"
    );

    // A keyed request about the conversation: its answer is kept (a retry is replayed).
    let key = format!("erasure-{}", Uuid::new_v4());
    let keyed_note = || async {
        api.raw(
            "POST",
            &format!("/v1/conversations/{c}/notes"),
            agent.token(),
            Some(
                json!({"text": format!("keyed {note_word}")})
                    .to_string()
                    .into_bytes(),
            ),
            &[("idempotency-key", key.as_str())],
        )
        .await
    };
    keyed_note().await.expect(201, "a keyed note");
    let replayed = keyed_note().await.expect(201, "the keyed note again");
    assert_eq!(replayed.header("idempotent-replay"), Some("true"));
    // An agent may not erase; the customer's token neither.
    erase(&api, &agent, json!({"conversation_id": c}))
        .await
        .expect_problem(403, "an agent erases");
    erase(&api, &owner, json!({"conversation_id": Uuid::new_v4()}))
        .await
        .expect_problem(404, "an unknown conversation");
    let channel = api::create_channel(&api, &owner, "team").await;
    erase(&api, &owner, json!({"conversation_id": channel}))
        .await
        .expect_problem(409, "a channel has no customer");

    let erased = erase(&api, &owner, json!({"conversation_id": c}))
        .await
        .expect(200, "the owner erases the customer");
    assert_eq!(erased.body["erased"], json!([c]), "{}", erased.text);
    assert!(erased.body["at"].is_string(), "{}", erased.text);
    erase(&api, &owner, json!({"conversation_id": left}))
        .await
        .expect(200, "the left message erased");

    // The kept answer about it is forgotten: the keyed request is no longer replayed from it.
    let retried = keyed_note().await;
    assert_ne!(
        retried.header("idempotent-replay"),
        Some("true"),
        "{} {}",
        retried.status,
        retried.text
    );
    assert!(
        !retried.text.contains(note_word.as_str()),
        "{}",
        retried.text
    );
    // The conversation: no metadata, erased.
    let view = api
        .get(&format!("/v1/conversations/{c}"), owner.token())
        .await
        .expect(200, "the conversation");
    assert_eq!(
        view.body["customer"]["metadata"],
        json!({}),
        "{}",
        view.text
    );
    assert_eq!(view.body["customer"]["live"], json!({}), "{}", view.text);
    assert!(view.body["erased_at"].is_string(), "{}", view.text);
    assert_eq!(view.body["status"], "ended");
    // Messages: every text, the customer's name and the file's name read as erased.
    let messages = api::messages(&api, owner.token(), c).await;
    assert!(messages.len() >= 3);
    for message in &messages {
        assert_eq!(message["text"], ERASED, "{message}");
        if message["author"]["kind"] == "customer" {
            assert_eq!(message["author"]["name"], ERASED, "{message}");
        }
        for attachment in message["attachments"].as_array().unwrap() {
            assert_eq!(attachment["name"], ERASED, "{message}");
        }
    }
    // The file's bytes are gone.
    assert_eq!(status_of(&api, &url).await, 404, "the file after");
    // Notes.
    let notes = api
        .get(&format!("/v1/conversations/{c}/notes"), owner.token())
        .await
        .expect(200, "notes");
    for note in notes.body.as_array().unwrap() {
        assert_eq!(note["text"], ERASED, "{note}");
    }
    // The transcript, in both formats.
    for format in ["txt", "json"] {
        let transcript = api
            .get(
                &format!("/v1/conversations/{c}/transcript?format={format}"),
                owner.token(),
            )
            .await
            .expect(200, "the transcript");
        for word in [&secret, &note_word, &file_word, &name, &email] {
            assert!(
                !transcript.text.contains(word.as_str()),
                "{}",
                transcript.text
            );
        }
    }
    // The left message.
    for message in api::messages(&api, owner.token(), left).await {
        assert_eq!(message["text"], ERASED, "{message}");
    }
    let left_view = api
        .get(&format!("/v1/conversations/{left}"), owner.token())
        .await
        .expect(200, "the left message");
    assert_eq!(left_view.body["customer"]["metadata"], json!({}));
    // The search finds nothing of it, nor the lists.
    for word in [&secret, &note_word, &file_word, &name] {
        assert!(search(&api, &owner, word).await.is_empty(), "{word} found");
    }
    let listed = api
        .get(
            &format!("/v1/orgs/{}/conversations", owner.organization_id),
            owner.token(),
        )
        .await
        .expect(200, "the list");
    let activity = api
        .get("/v1/activity", owner.token())
        .await
        .expect(200, "activity");
    for word in [&secret, &note_word, &file_word, &name, &email] {
        assert!(!listed.text.contains(word.as_str()), "{}", listed.text);
        assert!(!activity.text.contains(word.as_str()), "{}", activity.text);
    }

    // The statistics did not change.
    assert_eq!(stats_over_http(&api, &owner, queue).await, stats_before);
    assert_eq!(stats_from_log(storage, queue), log_before);

    // Again: the same answer, nothing new.
    let again = erase(&api, &owner, json!({"conversation_id": c}))
        .await
        .expect(200, "erasing again");
    assert_eq!(again.body["erased"], json!([c]));
    // Nothing is written to it any more; its customer's token is over.
    let refused = api
        .post(
            &format!("/v1/conversations/{c}/messages"),
            agent.token(),
            json!({"text": "are you there?"}),
        )
        .await
        .expect_problem(409, "a message to an erased conversation");
    assert!(
        refused.text.contains("conversation erased"),
        "{}",
        refused.text
    );
    api.post(
        &format!("/v1/conversations/{c}/notes"),
        agent.token(),
        json!({"text": "more"}),
    )
    .await
    .expect_problem(409, "a note on an erased conversation");
    api.post(
        &format!("/v1/conversations/{c}/reopen"),
        agent.token(),
        json!({}),
    )
    .await
    .expect_problem(409, "reopening an erased conversation");
    let gone = api
        .get(&format!("/v1/conversations/{c}"), customer.token())
        .await;
    assert_eq!(gone.status, 401, "the customer's token: {}", gone.text);

    // The audit shows who erased what.
    let audit = api
        .get(
            &format!(
                "/v1/orgs/{}/audit?type=CustomerErased",
                owner.organization_id
            ),
            owner.token(),
        )
        .await
        .expect(200, "the audit");
    let rows = audit.body.as_array().unwrap();
    assert!(
        rows.iter()
            .any(|row| row["subject"] == json!(c) && row["actor_id"] == json!(owner.agent_id)),
        "{}",
        audit.text
    );

    // And the storage itself: no byte of it holds any of the customer's words.
    let words = [&secret, &note_word, &file_word, &name, &email];
    let holding = files_holding(storage, &words).await;
    assert!(holding.is_empty(), "erased words found in {holding:?}");

    // Read models rebuilt from the log (whose keys are gone) are as erased, and the
    // statistics the same.
    drop(_server);
    let mut rebuild = vec!["projections".to_owned(), "rebuild".to_owned()];
    rebuild.extend(storage.args());
    let rebuild: Vec<&str> = rebuild.iter().map(String::as_str).collect();
    let rebuilt = jono_tests::jono(&rebuild, &[]);
    assert!(
        rebuilt.status.success(),
        "rebuild: {}",
        String::from_utf8_lossy(&rebuilt.stderr)
    );
    let (_server, api) = api::start(storage);
    let messages = api::messages(&api, owner.token(), c).await;
    assert!(messages.len() >= 3);
    for message in &messages {
        assert_eq!(message["text"], ERASED, "{message}");
        if message["author"]["kind"] == "customer" {
            assert_eq!(message["author"]["name"], ERASED, "{message}");
        }
        for attachment in message["attachments"].as_array().unwrap() {
            assert_eq!(attachment["name"], ERASED, "{message}");
        }
    }
    for word in [&secret, &note_word, &file_word, &name] {
        assert!(search(&api, &owner, word).await.is_empty(), "{word} found");
    }
    assert_eq!(stats_over_http(&api, &owner, queue).await, stats_before);
    let holding = files_holding(storage, &words).await;
    assert!(
        holding.is_empty(),
        "after the rebuild, erased words found in {holding:?}"
    );
}

/// The files of `storage` that hold any of `words`: on SQLite every file of the data directory
/// (the log, the read models, their write-ahead logs, the attachments); on Postgres, after a
/// `VACUUM FULL` of the schema's tables and a `CHECKPOINT`, the files of its tables, their TOAST
/// tables and every index. Postgres's own write-ahead log is a documented limit (README,
/// "Erasure (GDPR)").
async fn files_holding(storage: &Storage, words: &[&String]) -> Vec<std::path::PathBuf> {
    let files: Vec<std::path::PathBuf> = match storage {
        Storage::Embedded(dir) => walk(dir.path()),
        Storage::Postgres(url) => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            let schema: String = sqlx::query_scalar("SELECT current_schema()::text")
                .fetch_one(&pool)
                .await
                .unwrap();
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT quote_ident(relname::text) FROM pg_class \
                 WHERE relnamespace = $1::regnamespace AND relkind = 'r'",
            )
            .bind(&schema)
            .fetch_all(&pool)
            .await
            .unwrap();
            for table in &tables {
                // A plain VACUUM only marks a dead row's space free for reuse; its bytes stay
                // until the page is rewritten (the README says so).
                sqlx::raw_sql(&format!("VACUUM FULL {table}"))
                    .execute(&pool)
                    .await
                    .unwrap();
            }
            sqlx::raw_sql("CHECKPOINT").execute(&pool).await.unwrap();
            let data: String = sqlx::query_scalar("SELECT current_setting('data_directory')")
                .fetch_one(&pool)
                .await
                .unwrap();
            let relations: Vec<String> = sqlx::query_scalar(
                "SELECT pg_relation_filepath(c.oid)::text FROM pg_class c \
                 WHERE c.relnamespace = $1::regnamespace AND c.relkind IN ('r', 'i', 'm') \
                 UNION ALL \
                 SELECT pg_relation_filepath(t.oid)::text FROM pg_class c \
                 JOIN pg_class t ON t.oid = c.reltoastrelid \
                 WHERE c.relnamespace = $1::regnamespace \
                 UNION ALL \
                 SELECT pg_relation_filepath(i.indexrelid)::text FROM pg_class c \
                 JOIN pg_index i ON i.indrelid = c.reltoastrelid \
                 WHERE c.relnamespace = $1::regnamespace",
            )
            .bind(&schema)
            .fetch_all(&pool)
            .await
            .unwrap();
            pool.close().await;
            let data = std::path::PathBuf::from(data);
            relations
                .iter()
                .flat_map(|relation| {
                    // A relation's main file and its further 1 GiB segments.
                    let base = data.join(relation);
                    let mut segments = vec![base.clone()];
                    segments.extend(
                        (1..)
                            .map(|n| std::path::PathBuf::from(format!("{}.{n}", base.display())))
                            .take_while(|path| path.exists()),
                    );
                    segments
                })
                .filter(|path| path.exists())
                .collect()
        }
    };
    assert!(!files.is_empty());
    files
        .into_iter()
        .filter(|path| {
            let bytes = std::fs::read(path).unwrap_or_default();
            words.iter().any(|word| {
                bytes
                    .windows(word.len())
                    .any(|window| window == word.as_bytes())
            })
        })
        .collect()
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_customer_is_gone_everywhere_and_the_statistics_stay() {
    for storage in [Some(Storage::embedded()), Storage::postgres()]
        .into_iter()
        .flatten()
    {
        the_story(&storage).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verified_customer_is_erased_by_its_reference_and_from_the_command_line() {
    for storage in [Some(Storage::embedded()), Storage::postgres()]
        .into_iter()
        .flatten()
    {
        let (_server, api) = api::start(&storage);
        let owner = api::sign_up(&api, "Acme").await;
        let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
        let secret = format!("wubba{}", Uuid::new_v4().simple());
        // A guest, erased from the command line by its conversation.
        let guest = api::join(&api, queue, json!({"name": "Guest", "topic": secret})).await;
        api::pick(&api, &owner, queue).await;
        api::send_message(&api, guest.token(), guest.conversation_id, &secret).await;
        let mut args = storage.args();
        args.extend(
            [
                "gdpr",
                "erase",
                "--customer",
                &guest.conversation_id.to_string(),
                "--org",
                &owner.organization_id.to_string(),
            ]
            .map(String::from),
        );
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let printed = jono_tests::jono(&args, &[]);
        assert!(
            printed.status.success(),
            "jono gdpr erase: {}",
            String::from_utf8_lossy(&printed.stderr)
        );
        let out = String::from_utf8_lossy(&printed.stdout);
        assert!(
            out.contains(&format!("erased: conversation {}", guest.conversation_id)),
            "{out}"
        );
        // The server follows the log the command line wrote to.
        let view = eventually(
            || async {
                api.get(
                    &format!("/v1/conversations/{}", guest.conversation_id),
                    owner.token(),
                )
                .await
                .expect(200, "the conversation")
                .body
            },
            |view| view["erased_at"].is_string(),
        )
        .await;
        assert_eq!(view["customer"]["metadata"], json!({}));
        let texts = api::texts(&api, owner.token(), guest.conversation_id).await;
        assert!(texts.iter().all(|text| text == ERASED), "{texts:?}");
        // Again: said so.
        let again = jono_tests::jono(&args, &[]);
        assert!(again.status.success());
        assert!(String::from_utf8_lossy(&again.stdout).contains("erased already"));
        // Another organization's conversation is refused.
        let other = api::sign_up(&api, "Other").await;
        let mut wrong = storage.args();
        wrong.extend(
            [
                "gdpr",
                "erase",
                "--customer",
                &guest.conversation_id.to_string(),
                "--org",
                &other.organization_id.to_string(),
            ]
            .map(String::from),
        );
        let wrong: Vec<&str> = wrong.iter().map(String::as_str).collect();
        assert!(!jono_tests::jono(&wrong, &[]).status.success());

        // A verified returning customer: both of its conversations, by its reference.
        let secret_path = format!("/v1/queues/{queue}/identity-secret");
        let key = api
            .post(&secret_path, owner.token(), json!({}))
            .await
            .expect(201, "an identity secret");
        let key = key.body["secret"].as_str().unwrap().to_owned();
        let mut verified = Vec::new();
        for _ in 0..2 {
            let expires = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64
                + 3600;
            let joined = api
                .post(
                    &format!("/v1/queues/{queue}/join"),
                    None,
                    json!({"metadata": {"name": "Ann"}, "identity": identity(&key, "u-42", "Ann Lee", expires)}),
                )
                .await
                .expect(201, "a verified join");
            assert_eq!(joined.body["identity"], "verified", "{}", joined.text);
            verified.push(joined.id("conversation_id"));
        }
        let view = api
            .get(&format!("/v1/conversations/{}", verified[0]), owner.token())
            .await
            .expect(200, "the first");
        let customer_ref = view.body["customer"]["verified"]["customer_ref"]
            .as_str()
            .unwrap()
            .to_owned();
        let erased = erase(&api, &owner, json!({"customer_ref": customer_ref}))
            .await
            .expect(200, "erased by reference");
        let mut got: Vec<Uuid> = erased.body["erased"]
            .as_array()
            .unwrap()
            .iter()
            .map(|id| id.as_str().unwrap().parse().unwrap())
            .collect();
        got.sort();
        verified.sort();
        assert_eq!(got, verified);
        for conversation in &verified {
            let view = api
                .get(&format!("/v1/conversations/{conversation}"), owner.token())
                .await
                .expect(200, "a verified one");
            assert!(view.body["erased_at"].is_string(), "{}", view.text);
            assert_eq!(view.body["status"], "ended", "{}", view.text);
            assert!(view.body["customer"]["verified"].is_null(), "{}", view.text);
        }
        // Nothing links to the person any more.
        let again = erase(&api, &owner, json!({"customer_ref": customer_ref}))
            .await
            .expect(200, "erased by reference again");
        assert_eq!(again.body["erased"], json!([]));
    }
}

fn identity(secret: &str, user_id: &str, name: &str, expires: i64) -> Value {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("jono-identity-v1\n{user_id}\n{name}\n{expires}").as_bytes());
    let signature: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    json!({"user_id": user_id, "name": name, "expires": expires, "signature": signature})
}

/// Ages an ended conversation in the read model the retention duty asks: as if it had ended
/// `days` days ago. (The duty's clock is the real one; the log's times cannot be moved.)
fn age(storage: &Storage, conversation: Uuid, days: i64) {
    let micros = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64)
        - days * 86_400_000_000;
    let sql = format!(
        "UPDATE rm_conversations SET ended_at = {micros} WHERE conversation_id = '{conversation}'"
    );
    match storage {
        Storage::Embedded(dir) => {
            let db = rusqlite::Connection::open(dir.path().join("read-models.db")).unwrap();
            db.busy_timeout(Duration::from_secs(10)).unwrap();
            assert_eq!(db.execute(&sql, []).unwrap(), 1);
        }
        Storage::Postgres(url) => jono_tests::psql(url, &sql),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retention_erases_what_ended_longer_ago_and_nothing_else() {
    for storage in [Some(Storage::embedded()), Storage::postgres()]
        .into_iter()
        .flatten()
    {
        let (_server, api) = api::start_with(
            &storage,
            &[("JONO_RATE_LIMITS", "off"), ("JONO_SWEEP_SECONDS", "1")],
        );
        let owner = api::sign_up(&api, "Acme").await;
        let agent = api::invite_and_accept(&api, &owner, "agent", "Aino").await;
        let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
        let retention = format!("/v1/orgs/{}/retention", owner.organization_id);
        let none = api
            .get(&retention, agent.token())
            .await
            .expect(200, "no retention yet");
        assert_eq!(none.body, json!({"retention_days": null}));
        api.put(&retention, agent.token(), json!({"retention_days": 30}))
            .await
            .expect_problem(403, "an agent sets the retention");

        // Three ended conversations and one still going; one of the ended is made old.
        let mut ended = Vec::new();
        for n in 0..3 {
            let customer = api::join(&api, queue, json!({"name": format!("C{n}")})).await;
            api::pick(&api, &owner, queue).await;
            api::send_message(&api, customer.token(), customer.conversation_id, "hello").await;
            api.post(
                &format!("/v1/conversations/{}/end", customer.conversation_id),
                owner.token(),
                json!({}),
            )
            .await
            .expect(204, "an end");
            ended.push(customer.conversation_id);
        }
        let ongoing = api::join(&api, queue, json!({"name": "Now"})).await;
        api::pick(&api, &owner, queue).await;
        let stats_before = stats_over_http(&api, &owner, queue).await;
        // Wait for the read model to show the ends before aging one.
        eventually(
            || async {
                api.get(&format!("/v1/conversations/{}", ended[2]), owner.token())
                    .await
                    .body
            },
            |view| view["status"] == "ended",
        )
        .await;
        age(&storage, ended[0], 40);
        age(&storage, ended[1], 29);

        let set = api
            .put(&retention, owner.token(), json!({"retention_days": 30}))
            .await
            .expect(200, "the owner sets 30 days");
        assert_eq!(set.body, json!({"retention_days": 30}));
        let view = eventually(
            || async {
                api.get(&format!("/v1/conversations/{}", ended[0]), owner.token())
                    .await
                    .body
            },
            |view| view["erased_at"].is_string(),
        )
        .await;
        assert_eq!(view["customer"]["metadata"], json!({}));
        let texts = api::texts(&api, owner.token(), ended[0]).await;
        assert!(texts.iter().all(|text| text == ERASED), "{texts:?}");
        // A few more sweeps: the younger ones and the ongoing one stay.
        tokio::time::sleep(Duration::from_secs(3)).await;
        for keep in [ended[1], ended[2], ongoing.conversation_id] {
            let view = api
                .get(&format!("/v1/conversations/{keep}"), owner.token())
                .await
                .expect(200, "kept");
            assert!(view.body["erased_at"].is_null(), "{}", view.text);
            assert_ne!(
                view.body["customer"]["metadata"],
                json!({}),
                "{}",
                view.text
            );
        }
        assert_eq!(stats_over_http(&api, &owner, queue).await, stats_before);
        // The erasure and the setting are audited, the erasure as the system's.
        let audit = api
            .get(
                &format!(
                    "/v1/orgs/{}/audit?type=CustomerErased,RetentionSet",
                    owner.organization_id
                ),
                owner.token(),
            )
            .await
            .expect(200, "the audit");
        let rows = audit.body.as_array().unwrap();
        assert!(
            rows.iter().any(
                |row| row["type"] == "RetentionSet" && row["actor_id"] == json!(owner.agent_id)
            ),
            "{}",
            audit.text
        );
        assert!(
            rows.iter().any(|row| row["type"] == "CustomerErased"
                && row["subject"] == json!(ended[0])
                && row["details"]["reason"] == "retention"),
            "{}",
            audit.text
        );
        // Back to keeping everything.
        api.put(&retention, owner.token(), json!({"retention_days": null}))
            .await
            .expect(200, "no retention");
    }
}

/// A customer erased while it waits leaves its line first (the queue decides, as on an end):
/// the next customer moves up, and a pick finds that one, never the erased conversation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_customer_erased_leaves_the_line_first() {
    for storage in [Some(Storage::embedded()), Storage::postgres()]
        .into_iter()
        .flatten()
    {
        let (_server, api) = api::start(&storage);
        let owner = api::sign_up(&api, "Acme").await;
        let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
        let first = api::join(&api, queue, json!({"name": "First"})).await;
        let second = api::join(&api, queue, json!({"name": "Second"})).await;
        assert_eq!(second.queue_position, 2);

        let erased = erase(
            &api,
            &owner,
            json!({"conversation_id": first.conversation_id}),
        )
        .await
        .expect(200, "the owner erases a waiting customer");
        assert_eq!(erased.body["erased"], json!([first.conversation_id]));
        let view = api
            .get(
                &format!("/v1/conversations/{}", first.conversation_id),
                owner.token(),
            )
            .await
            .expect(200, "the erased conversation");
        assert_eq!(view.body["status"], "ended", "{}", view.text);
        let moved = eventually(
            || async {
                api.get(
                    &format!("/v1/conversations/{}", second.conversation_id),
                    second.token(),
                )
                .await
                .expect(200, "the next customer's view")
                .body
            },
            |body: &Value| body["queue_position"] == 1,
        )
        .await;
        assert_eq!(moved["queue_position"], 1, "{moved}");
        assert_eq!(
            api::pick(&api, &owner, queue).await,
            second.conversation_id,
            "the pick finds the customer still waiting"
        );
        assert_eq!(api::try_pick(&api, &owner, queue).await, None);
    }
}
