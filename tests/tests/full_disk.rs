//! A full disk (issue "The edges hold", faults): the data directory on a small filesystem (a
//! tmpfs of 64 MiB, mounted by the test as root). Filled up, commands answer 503 with
//! `Retry-After` and append nothing, reads go on; once space is freed, Jono serves again without
//! a restart, its read models catch up, and after a restart the log holds exactly the
//! acknowledged messages.
//!
//! Before the fix, the read models could stop for good: SQLite rolls a transaction back by itself
//! on `SQLITE_FULL`, and the pool handed the connection out again still counted as in a
//! transaction, so every later projector transaction failed (store/src/sqlite/mod.rs).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use jono_tests::api::{self, Api};
use jono_tests::{psql, Server};
use serde_json::json;

/// A tmpfs of `size` at a fresh folder, unmounted when dropped.
struct SmallDisk {
    _dir: tempfile::TempDir,
    mount: PathBuf,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let mount = dir.path().join("disk");
        std::fs::create_dir(&mount).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&mount)
            .output()
            .expect("mount");
        if !mounted.status.success() {
            // CI runs as root, where this works: there the test must run.
            assert!(
                std::env::var_os("CI").is_none(),
                "cannot mount a tmpfs in CI: {}",
                String::from_utf8_lossy(&mounted.stderr)
            );
            eprintln!("skipping: mounting a tmpfs needs root");
            return None;
        }
        Some(SmallDisk { _dir: dir, mount })
    }

    fn path(&self) -> &Path {
        &self.mount
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mount).output();
    }
}

async fn send(api: &Api, token: &str, channel: uuid::Uuid, text: &str) -> jono_tests::api::Reply {
    api.post(
        &format!("/v1/conversations/{channel}/messages"),
        Some(token),
        json!({ "text": text }),
    )
    .await
}

#[tokio::test]
async fn a_full_disk_means_503s_then_recovery_once_space_is_freed() {
    // Room for what Jono keeps in steady use — each of its two write-ahead logs up to
    // `store::WAL_SIZE_LIMIT` (about 16 MB) — and some data: on a 16 MiB disk the logs alone
    // could take all of it, and a restart found none.
    const DISK: u64 = 64 * 1024 * 1024;
    let Some(disk) = SmallDisk::mount(&format!("{}m", DISK / (1024 * 1024))) else {
        return;
    };
    let data = disk.path().join("data");
    let env = [("JONO_RATE_LIMITS", "off"), ("JONO_SIGNUP", "open")];
    let server = Server::start_with_args(&["--data", data.to_str().unwrap()], &env);
    let api = Api::new(&server.base);
    let owner = api::sign_up(&api, "Acme").await;
    let channel = api::create_channel(&api, &owner, "Team").await;

    // Three times: fill the disk (leaving about 3 MiB, then messages until a refusal), then free
    // it. Which write meets the full disk — the log's or a read model's — is up to timing; over
    // three rounds both happen (the pool's part is proven exactly by store's
    // `a_connection_left_in_a_transaction_is_not_reused`).
    let text = "x".repeat(9_000);
    let mut acknowledged = 0usize;
    for _round in 0..3 {
        // Leave about 3 MiB, then write until the disk is full.
        let filler = disk.path().join("filler");
        let free = DISK - dir_size(disk.path());
        std::fs::write(
            &filler,
            vec![0u8; free.saturating_sub(3 * 1024 * 1024) as usize],
        )
        .unwrap();
        let refused = loop {
            let reply = send(
                &api,
                &owner.token,
                channel,
                &format!("{acknowledged} {text}"),
            )
            .await;
            if reply.status != 201 {
                break reply;
            }
            acknowledged += 1;
            assert!(acknowledged < 2_000, "the disk never filled up");
        };
        assert_eq!(
            refused.status, 503,
            "a full disk is 503, not another 5xx: {}",
            refused.text
        );
        assert!(refused.header("retry-after").is_some(), "with Retry-After");
        assert!(
            acknowledged > 0,
            "some messages fit before the disk was full"
        );
        // Reads go on.
        api.get(&format!("/v1/conversations/{channel}"), owner.token())
            .await
            .expect(200, "a read while the disk is full");

        // Space freed: served again, without a restart.
        std::fs::remove_file(&filler).unwrap();
        let path = format!("/v1/conversations/{channel}/messages");
        let body = json!({ "text": format!("{acknowledged} after") });
        assert!(
            api::served_again(&api, owner.token(), &path, body).await,
            "commands are served again once space is freed"
        );
        acknowledged += 1;
    }
    // The read models caught up: /readyz, and the messages read back.
    let mut ready = false;
    for _ in 0..120 {
        if api.get("/readyz", None).await.status == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        ready,
        "the read models recover once space is freed: {}",
        api.get("/readyz", None).await.text
    );
    let read = api::texts(&api, owner.token(), channel).await;
    assert_eq!(
        read.len(),
        acknowledged,
        "exactly the acknowledged messages"
    );
    for (n, text) in read.iter().enumerate() {
        assert!(
            text.starts_with(&format!("{n} ")),
            "message {n} in order: {}",
            &text[..20.min(text.len())]
        );
    }

    // Nothing corrupted: a restart reads the same.
    server.terminate();
    let server = Server::start_with_args(&["--data", data.to_str().unwrap()], &env);
    let api = Api::new(&server.base);
    let again = api::texts(&api, owner.token(), channel).await;
    assert_eq!(again, read, "the same log after a restart");
}

fn dir_size(path: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(path).unwrap().flatten() {
        let meta = entry.metadata().unwrap();
        total += if meta.is_dir() {
            dir_size(&entry.path())
        } else {
            meta.len()
        };
    }
    total
}

/// The same on Postgres: Jono's database in a tablespace on a small tmpfs (the write-ahead log
/// stays on the server's own disk). Full, commands answer 503 and append nothing; the
/// filesystem grown again, Jono serves again without a restart and its read models catch up.
#[tokio::test]
async fn a_full_tablespace_on_postgres_means_503s_then_recovery_once_space_is_freed() {
    let Ok(base) = std::env::var("JONO_TEST_DATABASE_URL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs the Postgres tests"
        );
        eprintln!("skipping: set JONO_TEST_DATABASE_URL (see scripts/pg.sh)");
        return;
    };
    let Some(disk) = SmallDisk::mount("8m") else {
        return;
    };
    // The server runs as the postgres user: the tablespace's folder must be its own.
    let chown = Command::new("chown")
        .arg("postgres:")
        .arg(disk.path())
        .output()
        .expect("chown");
    assert!(
        chown.status.success(),
        "{}",
        String::from_utf8_lossy(&chown.stderr)
    );
    let name = format!("jono_full_{}", uuid::Uuid::new_v4().simple());
    psql(
        &base,
        &format!(
            "CREATE TABLESPACE {name} LOCATION '{}'",
            disk.path().display()
        ),
    );
    psql(&base, &format!("CREATE DATABASE {name} TABLESPACE {name}"));
    let (address, _) = base.split_once('?').unwrap_or((&base, ""));
    let (server_url, _) = address.rsplit_once('/').expect("a database in the URL");
    let url = format!("{server_url}/{name}");

    let env = [("JONO_RATE_LIMITS", "off"), ("JONO_SIGNUP", "open")];
    let server = Server::start_with_args(&["--database-url", &url], &env);
    let api = Api::new(&server.base);
    let owner = api::sign_up(&api, "Acme").await;
    let channel = api::create_channel(&api, &owner, "Team").await;
    // Text that does not compress, so that the tablespace fills in a few hundred messages.
    let mut acknowledged = 0usize;
    let refused = loop {
        let noise: String = (0..4_000)
            .map(|_| char::from(b'a' + rand_letter()))
            .collect();
        let reply = send(
            &api,
            &owner.token,
            channel,
            &format!("{acknowledged} {noise}"),
        )
        .await;
        if reply.status != 201 {
            break reply;
        }
        acknowledged += 1;
        assert!(acknowledged < 20_000, "the tablespace never filled up");
    };
    eprintln!("{acknowledged} messages fitted in the tablespace");
    assert_eq!(
        refused.status, 503,
        "a full disk is 503, not another 5xx: {}",
        refused.text
    );
    assert!(refused.header("retry-after").is_some(), "with Retry-After");

    let grown = Command::new("mount")
        .args(["-o", "remount,size=64m"])
        .arg(disk.path())
        .output()
        .expect("mount");
    assert!(
        grown.status.success(),
        "{}",
        String::from_utf8_lossy(&grown.stderr)
    );
    let path = format!("/v1/conversations/{channel}/messages");
    let body = json!({ "text": format!("{acknowledged} after") });
    assert!(
        api::served_again(&api, owner.token(), &path, body).await,
        "commands are served again once there is space"
    );
    acknowledged += 1;
    let read = api::texts(&api, owner.token(), channel).await;
    assert_eq!(
        read.len(),
        acknowledged,
        "exactly the acknowledged messages"
    );
    for (n, text) in read.iter().enumerate() {
        assert!(text.starts_with(&format!("{n} ")), "message {n} in order");
    }
    server.terminate();
    psql(&base, &format!("DROP DATABASE {name}"));
    psql(&base, &format!("DROP TABLESPACE {name}"));
}

/// A letter from a small xorshift, so that the text does not compress (no dependency for it).
fn rand_letter() -> u8 {
    use std::cell::Cell;
    thread_local!(static STATE: Cell<u64> = const { Cell::new(0x9e37_79b9_7f4a_7c15) });
    STATE.with(|state| {
        let mut x = state.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        state.set(x);
        (x % 26) as u8
    })
}
