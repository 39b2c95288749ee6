//! A real nginx (Debian's) on a free loopback port in front of `jono serve` nodes, configured by
//! `deploy/nginx/jono.conf` itself — only its listen line changed and the nodes named — so the
//! two-node tests exercise the shipped proxy configuration.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Nginx {
    pub port: u16,
    pub base: String,
    dir: tempfile::TempDir,
    child: Child,
}

/// Debian's `nginx`, or `None` outside CI when it is not installed.
fn binary() -> Option<PathBuf> {
    let found = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .map(PathBuf::from)
        .find(|candidate| candidate.exists());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but nginx is missing: scripts/test.sh installs nginx-light"
        );
        eprintln!("skipping the run behind nginx: apt-get install nginx-light");
    }
    found
}

/// The deployment's server block, listening on `port`.
fn deploy_config(port: u16) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/nginx/jono.conf");
    let text = std::fs::read_to_string(&path).expect("deploy/nginx/jono.conf");
    assert!(text.contains("listen 80;"), "jono.conf listens on 80");
    text.replace("listen 80;", &format!("listen 127.0.0.1:{port};"))
}

impl Nginx {
    /// nginx in front of `nodes` (as the upstream `jono`), once it accepts connections. Answers
    /// carry `X-Jono-Upstream` (the node that served them), for tests that kill that node.
    pub fn start(nodes: &[SocketAddr]) -> Option<Nginx> {
        let bin = binary()?;
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("a free port")
            .local_addr()
            .expect("its address")
            .port();
        let dir = tempfile::tempdir().expect("a temp dir");
        let d = dir.path().display();
        let servers: String = nodes
            .iter()
            .map(|node| format!("        server {node} max_fails=1 fail_timeout=5s;\n"))
            .collect();
        // As root, workers would drop to `nobody` and lose the temp folder; keep them as we are.
        let root = std::os::unix::fs::MetadataExt::uid(
            &std::fs::metadata("/proc/self").expect("/proc/self"),
        ) == 0;
        let user = if root { "user root;\n" } else { "" };
        let config = format!(
            "{user}daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n    access_log off;\n    client_body_temp_path {d}/body;\n    proxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fastcgi;\n    uwsgi_temp_path {d}/uwsgi;\n    scgi_temp_path {d}/scgi;\n\
             add_header X-Jono-Upstream $upstream_addr always;\n\
             upstream jono {{\n{servers}        keepalive 16;\n    }}\n{}\n}}\n",
            deploy_config(port)
        );
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, config).expect("nginx.conf");
        let child = Command::new(bin)
            .args(["-p", &d.to_string(), "-c"])
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nginx");
        let nginx = Nginx {
            port,
            base: format!("http://127.0.0.1:{port}"),
            dir,
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not start: {}",
                nginx.error_log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(nginx)
    }

    /// What nginx logged.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
