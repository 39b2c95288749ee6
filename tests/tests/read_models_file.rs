//! On SQLite the read models live in a file of their own, `DATA_DIR/read-models.db` (issue 11,
//! item 3): SQLite has one write lock per file, and with the read models in the log's file a
//! projector's transaction held every append back. Here a transaction holding the read models'
//! write lock for longer than SQLite's busy timeout does not stop commands from being answered,
//! and read models a previous version kept in the log's file are moved out, not read.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use jono_tests::api;
use jono_tests::Storage;

const READ_MODELS: &str = "read-models.db";

/// Commands are answered while something else holds the read models' write lock (as a long
/// projector or rebuild transaction would); the reads catch up once it is let go.
#[tokio::test(flavor = "multi_thread")]
async fn commands_are_answered_while_the_read_models_are_locked() {
    let storage = Storage::embedded();
    let (server, api) = api::start(&storage);
    let owner = api::sign_up(&api, "Lukko Oy").await;
    let channel = api::create_channel(&api, &owner, "general").await;
    api::send_message(&api, owner.token(), channel, "before").await;
    assert_eq!(api::texts(&api, owner.token(), channel).await, ["before"]);

    let dir = storage.data_dir().unwrap();
    // Whichever file holds the read models (before this change: the log's).
    let holder = ["jono.db", READ_MODELS]
        .into_iter()
        .map(|file| dir.join(file))
        .find(|path| holds(path, "rm_messages"))
        .expect("a file holds the read models");
    let lock = rusqlite::Connection::open(&holder).unwrap();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    // Each of these would wait for SQLite's busy timeout (5 s) and fail with a 503 if the
    // appends needed the lock held above.
    for n in 0..3 {
        api::send_message(&api, owner.token(), channel, &format!("while locked {n}")).await;
    }
    let head: i64 = rusqlite::Connection::open(dir.join("jono.db"))
        .unwrap()
        .query_row("SELECT MAX(position) FROM events", [], |row| row.get(0))
        .unwrap();
    lock.execute_batch("ROLLBACK").unwrap();
    drop(lock);

    let texts = api::eventually(
        || api::texts(&api, owner.token(), channel),
        |texts: &Vec<String>| texts.len() == 4,
    )
    .await;
    assert_eq!(
        texts,
        [
            "before",
            "while locked 0",
            "while locked 1",
            "while locked 2"
        ]
    );
    let checkpoints: i64 = rusqlite::Connection::open(dir.join(READ_MODELS))
        .unwrap()
        .query_row(
            "SELECT MIN(position) FROM projection_checkpoints",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert!(checkpoints >= head, "every checkpoint in {READ_MODELS}");
    drop(server);
}

/// Whether the SQLite file at `path` exists and has `table`.
fn holds(path: &std::path::Path, table: &str) -> bool {
    let Ok(db) =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return false;
    };
    db.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE name = ?1",
        [table],
        |row| row.get::<_, i64>(0),
    )
    .map(|n| n > 0)
    .unwrap_or(false)
}

/// A data directory whose log file still holds read models (as before `read-models.db`): at
/// start they are dropped from the log's file, where they would hide the live ones from every
/// query, and the read models are built from the log.
#[tokio::test(flavor = "multi_thread")]
async fn read_models_in_the_log_file_are_moved_out() {
    let storage = Storage::embedded();
    let (server, api) = api::start(&storage);
    let owner = api::sign_up(&api, "Muutto Oy").await;
    let channel = api::create_channel(&api, &owner, "general").await;
    api::send_message(&api, owner.token(), channel, "kept").await;
    drop(server);

    // What an older version left in the log's file: a read model's table with stale rows, and
    // its checkpoint at the head, so nothing would ever replace them.
    let dir = storage.data_dir().unwrap();
    let log = rusqlite::Connection::open(dir.join("jono.db")).unwrap();
    log.execute_batch(
        "CREATE TABLE rm_messages (stale TEXT);
         CREATE TABLE projection_checkpoints (name TEXT PRIMARY KEY, position BIGINT NOT NULL,
                                              version BIGINT NOT NULL);
         INSERT INTO projection_checkpoints VALUES ('messages', 1000000, 1);",
    )
    .unwrap();
    drop(log);
    std::fs::remove_file(dir.join(READ_MODELS)).unwrap();
    let _ = std::fs::remove_file(dir.join(format!("{READ_MODELS}-wal")));
    let _ = std::fs::remove_file(dir.join(format!("{READ_MODELS}-shm")));

    let (server, api) = api::start(&storage);
    let token = api::login(&api, &owner.email, &owner.password).await;
    assert_eq!(api::texts(&api, Some(&token), channel).await, ["kept"]);
    let left: i64 = rusqlite::Connection::open(dir.join("jono.db"))
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name LIKE 'rm%' \
             OR name LIKE 'projection%'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(left, 0, "no read model is left in the log's file");
    drop(server);
}
