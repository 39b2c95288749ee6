//! `jono serve` from the outside: it starts on the embedded store with nothing to install,
//! answers health and readiness, exports metrics, stops cleanly on SIGTERM, and a bad
//! configuration ends it with one clear line.

use jono_tests::{jono, Server, Storage};

#[test]
fn a_fresh_data_directory_serves_health_and_readiness() {
    let storage = Storage::embedded();
    let server = Server::start(&storage, &[]);
    assert_eq!(server.get("/healthz").0, 200);
    let (status, body) = server.get("/readyz");
    assert_eq!(status, 200, "{body}");
    assert!(storage.data_dir().unwrap().join("jono.db").exists());
    let (status, metrics) = server.get("/metrics");
    assert_eq!(status, 200);
    assert!(metrics.contains("jono_store_commits_total"), "{metrics}");
    assert!(metrics.contains("jono_http_requests_total"), "{metrics}");
    let exit = server.terminate();
    assert!(exit.success(), "SIGTERM is a clean stop, got {exit:?}");
}

/// A SIGTERM as soon as the address is printed (the projectors still starting) stops it
/// cleanly too: the signal handlers exist before the address does.
#[test]
fn a_sigterm_right_after_the_address_is_printed_is_a_clean_stop() {
    for _ in 0..3 {
        let storage = Storage::embedded();
        let server = Server::start(&storage, &[]);
        let (status, stderr) = server.terminate_with_stderr();
        assert!(
            status.success(),
            "SIGTERM is a clean stop, got {status:?}: {stderr}"
        );
    }
}

/// On a fresh database too, where every projector creates its tables at once at the first
/// start: that logs no error (concurrent `CREATE TABLE IF NOT EXISTS` collide in Postgres's
/// catalog unless they take turns).
#[test]
fn serve_runs_on_postgres_too() {
    for _ in 0..4 {
        let Some(storage) = Storage::postgres() else {
            return;
        };
        let server = Server::start(&storage, &[]);
        assert_eq!(server.get("/readyz").0, 200);
        let stderr = server.stderr();
        assert!(
            !stderr.contains("ERROR"),
            "a first start logs no error: {stderr}"
        );
        let (status, stderr) = server.terminate_with_stderr();
        assert!(
            status.success(),
            "SIGTERM is a clean stop, got {status:?}: {stderr}"
        );
    }
}

fn assert_one_clear_line(output: &std::process::Output, expected: &str) {
    assert!(!output.status.success(), "must fail");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("jono: "),
        "one line that says what is wrong: {stderr}"
    );
    assert!(last.contains(expected), "{expected:?} in {last:?}");
    assert!(!stderr.contains("panicked"), "no panic trace: {stderr}");
    assert!(
        !stderr.contains("RUST_BACKTRACE"),
        "no panic trace: {stderr}"
    );
}

#[test]
fn a_port_in_use_ends_the_process_with_one_clear_line() {
    let storage = Storage::embedded();
    let server = Server::start(&storage, &[]);
    let other = Storage::embedded();
    let mut args = vec![
        "serve".to_owned(),
        "--listen".to_owned(),
        server.addr.to_string(),
    ];
    args.extend(other.args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = jono(&args, &[]);
    assert_one_clear_line(&output, "address is in use");
}

#[test]
fn an_unusable_data_directory_ends_the_process_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let path = file.display().to_string();
    let output = jono(&["serve", "--listen", "127.0.0.1:0", "--data", &path], &[]);
    assert_one_clear_line(&output, "cannot open the data directory");
}

#[test]
fn nats_with_the_embedded_store_is_refused_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let path = data.display().to_string();
    let output = jono(
        &["serve", "--listen", "127.0.0.1:0", "--data", &path],
        &[("JONO_NATS_URL", "nats://127.0.0.1:4222")],
    );
    assert_one_clear_line(&output, "needs Postgres");
    assert!(!data.exists(), "refused before creating a store");
    let output = jono(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data",
            &path,
            "--nats-url",
            "nats://127.0.0.1:4222",
        ],
        &[],
    );
    assert_one_clear_line(&output, "needs Postgres");
    let output = jono(
        &["project", "--data", &path],
        &[("JONO_NATS_URL", "nats://127.0.0.1:4222")],
    );
    assert_one_clear_line(&output, "needs Postgres");
    assert!(!data.exists(), "refused before creating a store");
}

#[test]
fn an_unreachable_postgres_ends_the_process_without_showing_the_password() {
    let output = jono(
        &["serve", "--listen", "127.0.0.1:0"],
        &[(
            "JONO_DATABASE_URL",
            "postgres://jono:hunter2-secret@127.0.0.1:1/jono",
        )],
    );
    assert_one_clear_line(&output, "cannot reach Postgres");
    let everything = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !everything.contains("hunter2"),
        "the password leaked: {everything}"
    );
}

#[test]
fn admin_create_org_prints_an_owner_invitation_link() {
    let storage = Storage::embedded();
    let mut args = vec![
        "admin",
        "create-org",
        "--name",
        "Acme",
        "--owner-email",
        "Boss@Acme.test",
    ];
    let flags = storage.args();
    args.extend(flags.iter().map(String::as_str));
    let output = jono(&args, &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let link = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let token = link
        .strip_prefix("/invite/")
        .expect("a console link /invite/TOKEN");
    assert!(token.len() >= 40, "a long random token: {token}");
    // A second organization gets another token.
    let again = jono(&args, &[]);
    assert_ne!(String::from_utf8_lossy(&again.stdout).trim(), link);
    // The token is a secret: it is not in the log.
    let db = std::fs::read(storage.data_dir().unwrap().join("jono.db")).unwrap_or_default();
    let wal = std::fs::read(storage.data_dir().unwrap().join("jono.db-wal")).unwrap_or_default();
    let haystack = [db, wal].concat();
    assert!(
        !haystack.windows(token.len()).any(|w| w == token.as_bytes()),
        "the token is stored in clear"
    );
}

#[test]
fn admin_create_org_refuses_a_bad_email_with_one_clear_line() {
    let storage = Storage::embedded();
    let mut args = vec![
        "admin",
        "create-org",
        "--name",
        "Acme",
        "--owner-email",
        "not-an-email",
    ];
    let flags = storage.args();
    args.extend(flags.iter().map(String::as_str));
    let output = jono(&args, &[]);
    assert_one_clear_line(&output, "email");
}

/// The console and the widget are embedded in the binary at build time: a `jono serve` started
/// where no `web/dist` lies (this test's working folder is `tests/`) and without `--web` serves
/// them, as an installed binary or a container does. A binary built before `web/` was built
/// embeds nothing and says so instead.
#[test]
fn the_console_is_served_from_the_binary_itself() {
    assert!(
        !std::path::Path::new("web/dist").exists(),
        "this test runs where no web/dist lies"
    );
    let built = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../web/dist/index.html")
        .exists();
    let storage = Storage::embedded();
    let server = Server::start(&storage, &[]);
    let expected = if built {
        "serving the console embedded in this binary"
    } else {
        "no console: this binary was built without web/dist"
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !server.stderr().contains(expected) {
        assert!(
            std::time::Instant::now() < deadline,
            "expected {expected:?} in the log: {}",
            server.stderr()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let (status, page) = server.get("/");
    if !built {
        assert_eq!(status, 404, "{page}");
        return;
    }
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("<html") || page.contains("<!doctype html"),
        "{page}"
    );
    let (status, loader) = server.get("/loader.js");
    assert_eq!(status, 200, "{loader}");
    // The page's own scripts come from the embedded assets too.
    let asset = page
        .split('"')
        .find(|part| part.starts_with("/assets/") && part.ends_with(".js"))
        .unwrap_or_else(|| panic!("no script asset in {page}"));
    assert_eq!(server.get(asset).0, 200, "{asset}");
    assert_eq!(server.get("/assets/../index.html").0, 404);
    assert_eq!(server.get("/assets/missing.js").0, 404);
    // A console path the browser routes is the console too.
    assert_eq!(server.get("/some/console/path").0, 200);
}
