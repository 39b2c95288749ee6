//! A real `nats-server` with JetStream on a free loopback port, for the relay's tests: started,
//! stopped (as an outage) and started again on the same port and storage.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Nats {
    pub port: u16,
    pub url: String,
    store: tempfile::TempDir,
    child: Option<Child>,
}

/// Debian's `nats-server`, or `None` outside CI when it is not installed.
fn binary() -> Option<PathBuf> {
    for candidate in ["/usr/sbin/nats-server", "/usr/bin/nats-server"] {
        if std::path::Path::new(candidate).exists() {
            return Some(candidate.into());
        }
    }
    let found = Command::new("sh")
        .args(["-c", "command -v nats-server"])
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()));
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but nats-server is missing: scripts/test.sh installs it"
        );
        eprintln!("skipping the NATS run: apt-get install nats-server");
    }
    found
}

impl Nats {
    /// A fresh server with JetStream, once it accepts connections.
    pub fn start() -> Option<Nats> {
        binary()?;
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("a free port")
            .local_addr()
            .expect("its address")
            .port();
        let mut nats = Nats {
            port,
            url: format!("nats://127.0.0.1:{port}"),
            store: tempfile::tempdir().expect("a temp dir"),
            child: None,
        };
        nats.resume();
        Some(nats)
    }

    /// Kills the server: an outage.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port with the same storage (the stream survives).
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new(binary().expect("nats-server"))
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nats-server");
        self.child = Some(child);
        for _ in 0..200 {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("nats-server did not listen on {}", self.port);
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.stop();
    }
}
