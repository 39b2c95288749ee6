//! Debian's `prometheus` and `promtool` for the observability tests (tests/observability.rs):
//! a Prometheus on a free loopback port scraping one `jono serve` every second, asked through
//! its HTTP API, and promtool's checks of the alert rules and of an exposition.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

/// `name` from Debian's package, or `None` outside CI when it is not installed.
pub fn tool(name: &str) -> Option<PathBuf> {
    for dir in ["/usr/bin", "/usr/sbin", "/usr/local/bin"] {
        let candidate = Path::new(dir).join(name);
        if candidate.exists() {
            return Some(candidate);
        }
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set but {name} is missing: scripts/test.sh installs Debian's prometheus"
    );
    eprintln!("skipping the Prometheus run: apt-get install prometheus (it ships {name})");
    None
}

/// The repository's `deploy/prometheus/alerts.yml`.
pub fn alert_rules() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("deploy/prometheus/alerts.yml")
}

/// Runs `promtool` with `args` and `stdin`; panics with its output unless it succeeds.
pub fn promtool(promtool: &Path, args: &[&str], stdin: &str) {
    let mut child = Command::new(promtool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn promtool");
    child
        .stdin
        .take()
        .expect("promtool's stdin")
        .write_all(stdin.as_bytes())
        .expect("write to promtool");
    let output = child.wait_with_output().expect("promtool's output");
    assert!(
        output.status.success(),
        "promtool {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A running Prometheus scraping `target` (`host:port`) every second, with the alert rules.
pub struct Prometheus {
    pub base: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    pub fn start(binary: &Path, target: &str) -> Prometheus {
        let dir = tempfile::tempdir().expect("a temp dir");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 rule_files:\n  - {rules}\n\
                 scrape_configs:\n  - job_name: jono\n    static_configs:\n      - targets: ['{target}']\n",
                rules = alert_rules().display()
            ),
        )
        .expect("write prometheus.yml");
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("a free port")
            .local_addr()
            .expect("its address")
            .port();
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn prometheus");
        Prometheus {
            base: format!("http://127.0.0.1:{port}"),
            child,
            _dir: dir,
        }
    }

    /// `GET /api/v1/{path}`: the `data` of a successful answer, or `None` while Prometheus is
    /// not answering yet.
    pub async fn api(&self, path: &str) -> Option<Value> {
        let client = reqwest::Client::new();
        let reply = client
            .get(format!("{}/api/v1/{path}", self.base))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .ok()?;
        let body: Value = reply.json().await.ok()?;
        assert_eq!(body["status"], "success", "{path}: {body}");
        Some(body["data"].clone())
    }

    /// An instant query: each series' labels and value.
    pub async fn query(&self, promql: &str) -> Vec<(Value, f64)> {
        let mut url = String::from("query?query=");
        for byte in promql.bytes() {
            if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
                url.push(char::from(byte));
            } else {
                url.push_str(&format!("%{byte:02X}"));
            }
        }
        let Some(data) = self.api(&url).await else {
            return Vec::new();
        };
        data["result"]
            .as_array()
            .expect("a vector")
            .iter()
            .map(|series| {
                let value = series["value"][1]
                    .as_str()
                    .expect("a value")
                    .parse::<f64>()
                    .expect("a number");
                (series["metric"].clone(), value)
            })
            .collect()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
