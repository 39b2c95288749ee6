//! Invariant 5, durable before acknowledged, seen from outside the process: a writer that is
//! killed with SIGKILL has lost nothing it acknowledged, and every acknowledgement follows an
//! fsync of the log.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use store::EventStore;

/// The example binary, built by `cargo test` next to this test's own binary.
fn ack_writer() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let debug = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let path = debug.join("examples").join("ack_writer");
    assert!(
        path.exists(),
        "{} is missing: run `cargo test -p store` (it builds examples)",
        path.display()
    );
    path
}

fn parse_ack(line: &str) -> Option<(String, i64)> {
    let mut words = line.split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some("ack"), Some(stream), Some(sequence)) => {
            Some((stream.to_owned(), sequence.parse().ok()?))
        }
        _ => None,
    }
}

#[tokio::test]
async fn a_killed_writer_has_lost_nothing_it_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(ack_writer())
        .arg(dir.path())
        .args(["concurrent", "8"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut acked = BTreeSet::new();
    while acked.len() < 300 {
        let line = lines.next().expect("the writer stopped early").unwrap();
        acked.extend(parse_ack(&line));
    }
    child.kill().unwrap(); // SIGKILL: no destructor, no flush, no goodbye.
    child.wait().unwrap();
    // Whatever it printed before dying was acknowledged too.
    for line in lines.map_while(Result::ok) {
        acked.extend(parse_ack(&line));
    }

    let store = EventStore::open_sqlite(dir.path()).await.unwrap();
    let mut stored = BTreeSet::new();
    let mut after = 0;
    loop {
        let batch = store.read_after(after, 1000).await.unwrap();
        let Some(last) = batch.last() else { break };
        after = last.position;
        stored.extend(batch.into_iter().map(|e| (e.aggregate_id, e.sequence)));
    }
    let lost: Vec<_> = acked.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "acknowledged but lost after kill -9: {lost:?}"
    );
}

/// Runs the sequential writer under strace and checks that, between two acknowledgements, the
/// log was fsynced: an acknowledgement never comes before its commit reached the disk.
#[test]
fn every_acknowledgement_follows_an_fsync_of_the_log() {
    if Command::new("strace").arg("-V").output().is_err() {
        if std::env::var_os("CI").is_some() {
            panic!("CI is set but strace is missing: scripts/test.sh installs it");
        }
        eprintln!("skipping: strace is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace");
    let data = dir.path().join("data");
    let status = Command::new("strace")
        .args(["-f", "-y", "-qq", "-e", "trace=fsync,fdatasync,write", "-o"])
        .arg(&trace)
        .arg(ack_writer())
        .arg(&data)
        .args(["sequential", "20"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let trace = std::fs::read_to_string(&trace).unwrap();
    let mut syncs_since_ack = 0;
    let mut acks = 0;
    for line in trace.lines() {
        let is_sync = line.contains("sync(") && line.contains("jono.db");
        let is_ack = line.contains("write(1") && line.contains("\"ack ");
        if is_sync {
            syncs_since_ack += 1;
        } else if is_ack {
            assert!(
                syncs_since_ack > 0,
                "acknowledgement {} came without an fsync before it:\n{line}",
                acks + 1
            );
            syncs_since_ack = 0;
            acks += 1;
        }
    }
    assert_eq!(acks, 20, "every append is acknowledged");
}
