//! Helpers for the black-box tests: start the real `jono` binary on port 0 with a fresh data
//! directory (or a fresh Postgres schema), wait until it listens, talk to it, stop it.
//!
//! The binary is `target/<profile>/jono`, next to the test executables' `deps/` folder; the
//! test command builds it first (`cargo build --bin jono`). `JONO_BIN` overrides the path.
//! [`api`] is the HTTP client of API.md the feature tests speak through; [`nats`] starts a real
//! `nats-server` with JetStream; [`prometheus`] a real Prometheus and promtool; [`totp`] computes
//! an authenticator app's codes on its own; [`smtp`] a real SMTP server (aiosmtpd) that keeps
//! what it receives. The load tool (`src/bin/jono-load/`, BENCHMARKS.md) starts its server and
//! sends its calls through the same.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod api;
pub mod contract;
pub mod nats;
pub mod nginx;
pub mod prometheus;
pub mod smtp;
pub mod totp;

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// The `jono` binary under test.
pub fn jono_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("JONO_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let path = profile_dir.join("jono");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --bin jono` first",
        path.display()
    );
    path
}

/// Runs `jono ARGS` to completion.
pub fn jono(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(jono_bin());
    command
        .args(args)
        .env_remove("JONO_DATABASE_URL")
        .env_remove("JONO_DATA_DIR");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("run jono")
}

/// The Python of the test command's virtualenv (`JONO_PYTHON_VENV`, made by
/// `scripts/python/venv.sh` from the pinned lock), or `None` outside CI when there is none (the
/// test skips `what`, and says so); in CI a missing one fails the test.
pub fn venv_python(what: &str) -> Option<std::path::PathBuf> {
    let found = std::env::var_os("JONO_PYTHON_VENV")
        .map(|venv| std::path::PathBuf::from(venv).join("bin/python"))
        .filter(|python| python.exists());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but JONO_PYTHON_VENV is not a virtualenv: scripts/test.sh makes it \
             (scripts/python/venv.sh) with the pinned Python tools"
        );
        eprintln!(
            "skipping {what}: set JONO_PYTHON_VENV to a virtualenv of \
             scripts/python/requirements.lock (scripts/python/venv.sh DIR)"
        );
    }
    found
}

/// Whether any event of the log of `storage` holds `text` (the embedded store's file; on Postgres
/// the events are read back through psql in the test's schema): for secrets that must never
/// enter the log, and personal data that must.
pub fn in_the_log(storage: &Storage, text: &str) -> bool {
    match storage {
        Storage::Embedded(dir) => {
            let db = rusqlite::Connection::open(dir.path().join("jono.db")).expect("the log");
            let found: i64 = db
                .query_row(
                    "SELECT COUNT(*) FROM events WHERE payload LIKE ?1",
                    [format!("%{text}%")],
                    |row| row.get(0),
                )
                .expect("a count");
            found > 0
        }
        Storage::Postgres(url) => {
            let output = Command::new("psql")
                .arg(url)
                .args(["-At", "-c"])
                .arg(format!(
                    "SELECT COUNT(*) FROM events WHERE payload::text LIKE '%{text}%'"
                ))
                .output()
                .expect("psql");
            assert!(output.status.success(), "{output:?}");
            String::from_utf8_lossy(&output.stdout).trim() != "0"
        }
    }
}

/// Runs one SQL statement with `psql` on the Postgres server at `url`; it must succeed.
pub fn psql(url: &str, sql: &str) {
    let output = Command::new("psql")
        .arg(url)
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .output()
        .expect("psql");
    assert!(
        output.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Where a server keeps its log.
pub enum Storage {
    Embedded(tempfile::TempDir),
    Postgres(String),
}

impl Storage {
    pub fn embedded() -> Self {
        Storage::Embedded(tempfile::tempdir().expect("a temp dir"))
    }

    /// A fresh schema in `JONO_TEST_DATABASE_URL`, or `None` outside CI when it is not set.
    pub fn postgres() -> Option<Self> {
        let Ok(base) = std::env::var("JONO_TEST_DATABASE_URL") else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but JONO_TEST_DATABASE_URL is not: the Postgres tests must run in CI"
            );
            eprintln!("skipping the Postgres run: set JONO_TEST_DATABASE_URL (see scripts/pg.sh)");
            return None;
        };
        let schema = format!("jono_bb_{}", uuid::Uuid::new_v4().simple());
        psql(&base, &format!("CREATE SCHEMA {schema}"));
        let separator = if base.contains('?') { '&' } else { '?' };
        Some(Storage::Postgres(format!(
            "{base}{separator}options=-csearch_path%3D{schema}"
        )))
    }

    /// The flags that point `jono` at this storage.
    pub fn args(&self) -> Vec<String> {
        match self {
            Storage::Embedded(dir) => vec!["--data".into(), dir.path().display().to_string()],
            Storage::Postgres(url) => vec!["--database-url".into(), url.clone()],
        }
    }

    pub fn data_dir(&self) -> Option<&Path> {
        match self {
            Storage::Embedded(dir) => Some(dir.path()),
            Storage::Postgres(_) => None,
        }
    }
}

/// A running `jono serve`.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub base: String,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Server {
    /// Starts `jono serve` on a free port of 127.0.0.1 and waits until it listens.
    pub fn start(storage: &Storage, env: &[(&str, &str)]) -> Server {
        let args = storage.args();
        Self::start_with_args(&args.iter().map(String::as_str).collect::<Vec<_>>(), env)
    }

    /// As [`Server::start`], with the store given by `args` (`--data DIR`, `--database-url URL`).
    pub fn start_with_args(args: &[&str], env: &[(&str, &str)]) -> Server {
        Self::start_bin(&jono_bin(), args, env)
    }

    /// As [`Server::start_with_args`], with the binary at `bin` (the load tool's `--jono`).
    pub fn start_bin(bin: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut command = Command::new(bin);
        command
            .arg("serve")
            .args(args)
            .args(["--listen", "127.0.0.1:0"])
            .env_remove("JONO_DATABASE_URL")
            .env_remove("JONO_DATA_DIR")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("spawn jono serve");
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut err = child.stderr.take().expect("stderr");
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = err.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .expect("the stderr buffer")
                    .push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
        });
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(rest) = line.strip_prefix("jono listening on http://") {
                        break rest.trim().parse::<SocketAddr>().expect("an address");
                    }
                }
                _ => panic!(
                    "jono serve exited before listening: {}",
                    stderr.lock().expect("the stderr buffer")
                ),
            }
        };
        std::thread::spawn(move || for _ in lines.by_ref() {});
        Server {
            child,
            addr,
            base: format!("http://{addr}"),
            stderr,
        }
    }

    /// What the server wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("the stderr buffer").clone()
    }

    /// SIGTERM, then waits for the exit: the exit status and everything the server wrote on
    /// stderr, its last words included.
    pub fn terminate_with_stderr(self) -> (ExitStatus, String) {
        let stderr = std::sync::Arc::clone(&self.stderr);
        let status = self.terminate();
        // The reader thread may still be copying the last lines.
        std::thread::sleep(Duration::from_millis(100));
        let text = stderr.lock().expect("the stderr buffer").clone();
        (status, text)
    }

    /// SIGTERM, then waits for the exit.
    pub fn terminate(mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "jono serve did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no shutdown, no flush.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// A plain HTTP/1.1 GET; returns the status and the body.
    pub fn get(&self, path: &str) -> (u16, String) {
        http(self.addr, "GET", path, None)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 client over a fresh connection (Connection: close), enough for tests
/// that must not depend on the server's own code.
pub fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    use std::io::Write;
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}
