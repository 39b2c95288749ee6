//! A real SMTP server on a free loopback port, for the email tests: Python's aiosmtpd running
//! `tests/smtp/sink.py` from the virtualenv the test command makes (`JONO_PYTHON_VENV`, from
//! `scripts/python/requirements.lock`). Every message it accepts is a JSON file the test reads
//! back ([`Smtp::messages`]), its body decoded as a mail reader would.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// One message the server accepted.
#[derive(Debug, Clone)]
pub struct Received {
    /// The envelope's recipients.
    pub rcpt_tos: Vec<String>,
    pub from: String,
    pub subject: String,
    pub content_type: String,
    /// The plain-text body, decoded.
    pub body: String,
}

impl Received {
    /// The first link in the body that starts with `prefix`.
    pub fn link(&self, prefix: &str) -> Option<String> {
        let start = self.body.find(prefix)?;
        let link: String = self.body[start..]
            .chars()
            .take_while(|c| !c.is_whitespace())
            .collect();
        Some(link)
    }
}

pub struct Smtp {
    pub port: u16,
    /// `smtp://127.0.0.1:PORT`, for `JONO_SMTP_URL`.
    pub url: String,
    folder: tempfile::TempDir,
    python: PathBuf,
    child: Option<Child>,
}

fn python() -> Option<PathBuf> {
    crate::venv_python("the email run")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("its address")
        .port()
}

impl Smtp {
    /// A server listening on a free port.
    pub fn start() -> Option<Smtp> {
        let mut smtp = Self::reserve()?;
        smtp.listen();
        Some(smtp)
    }

    /// A port for a server that is not listening yet (a mail server that is away): `listen`
    /// starts it there.
    pub fn reserve() -> Option<Smtp> {
        let python = python()?;
        let port = free_port();
        Some(Smtp {
            port,
            url: format!("smtp://127.0.0.1:{port}"),
            folder: tempfile::tempdir().expect("a temp dir"),
            python,
            child: None,
        })
    }

    /// Starts the server on its port and waits until it says it listens.
    pub fn listen(&mut self) {
        assert!(self.child.is_none(), "already listening");
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("smtp/sink.py");
        let mut child = Command::new(&self.python)
            .arg(script)
            .arg(self.port.to_string())
            .arg(self.folder.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the SMTP sink");
        let stdout = child.stdout.take().expect("its stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the SMTP sink's first line");
        assert_eq!(
            line.trim(),
            "ready",
            "the SMTP sink did not start (is aiosmtpd in the virtualenv?)"
        );
        self.child = Some(child);
    }

    /// Every message received so far, in order.
    pub fn messages(&self) -> Vec<Received> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.folder.path())
            .expect("the sink's folder")
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|path| {
                let text = std::fs::read_to_string(&path).expect("a kept message");
                let record: Value = serde_json::from_str(&text).expect("JSON");
                let strings = |field: &str| record[field].as_str().unwrap_or_default().to_owned();
                Received {
                    rcpt_tos: record["rcpt_tos"]
                        .as_array()
                        .map(|all| {
                            all.iter()
                                .filter_map(|to| to.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default(),
                    from: strings("from"),
                    subject: strings("subject"),
                    content_type: strings("content_type"),
                    body: strings("body").replace("\r\n", "\n"),
                }
            })
            .collect()
    }

    /// The messages to `to`, waiting up to `within` until there are at least `count`.
    pub async fn wait_for(&self, to: &str, count: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let found: Vec<Received> = self
                .messages()
                .into_iter()
                .filter(|message| message.rcpt_tos.iter().any(|rcpt| rcpt == to))
                .collect();
            if found.len() >= count || Instant::now() >= deadline {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
