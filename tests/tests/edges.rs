//! The network edge (API.md, Limits; invariant 13), black-box: a client trickling its headers is
//! cut off at the header deadline and one trickling its body gets 408 at the body deadline;
//! connections past the cap per address or in all are answered 503 with `Retry-After` (with
//! rate limits off, too); behind `JONO_TRUSTED_PROXIES` each forwarded client has its own
//! per-address limits, and without it a forged `X-Forwarded-For` escapes nothing; `/metrics`
//! is not public.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use jono_tests::api::{self, join_from, Api};
use jono_tests::{Server, Storage};

/// Whether the server has closed (or answered and closed) `stream`, waiting up to `wait`.
fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut buffer = [0u8; 1024];
    match stream.read(&mut buffer) {
        Ok(0) => true, // EOF
        Ok(_) => true, // an answer (a 408) before the close
        Err(error) => !matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
    }
}

#[test]
fn a_client_trickling_its_headers_is_cut_off_at_the_header_deadline() {
    let storage = Storage::embedded();
    let server = Server::start(
        &storage,
        &[
            ("JONO_HEADER_TIMEOUT_SECONDS", "1"),
            ("JONO_RATE_LIMITS", "off"),
        ],
    );
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: jono\r\n")
        .unwrap();
    // One header line every 200 ms, for up to 15 s: the server must end it long before.
    let started = Instant::now();
    let mut cut = false;
    while started.elapsed() < Duration::from_secs(15) {
        if stream.write_all(b"X-Slow: a\r\n").is_err()
            || closed_within(&mut stream, Duration::from_millis(200))
        {
            cut = true;
            break;
        }
    }
    assert!(
        cut,
        "a client trickling its headers kept its connection for 15 s (deadline 1 s)"
    );
    // A prompt client is served as before.
    assert_eq!(server.get("/healthz").0, 200);
}

#[test]
fn a_body_that_does_not_arrive_by_the_body_deadline_is_408() {
    let storage = Storage::embedded();
    let server = Server::start(
        &storage,
        &[
            ("JONO_BODY_TIMEOUT_SECONDS", "1"),
            ("JONO_RATE_LIMITS", "off"),
        ],
    );
    for (path, extra) in [
        ("/v1/login", ""),
        // A command with a key and no token: its body is not waited for beyond the deadline either.
        ("/v1/canned-responses", "Idempotency-Key: k1\r\n"),
    ] {
        let mut stream = TcpStream::connect(server.addr).unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: jono\r\nContent-Type: application/json\r\n{extra}Content-Length: 1000\r\n\r\n{{\"email\":"
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        let mut answer = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
                Err(error) => {
                    panic!("{path}: no answer 15 s after a stalled body (deadline 1 s): {error}")
                }
            }
            if answer.windows(4).any(|window| window == b"\r\n\r\n") {
                break;
            }
        }
        let answer = String::from_utf8_lossy(&answer);
        let status = answer.split_whitespace().nth(1).unwrap_or("");
        assert!(
            status == "408" || status == "401",
            "{path}: a stalled body is answered 408 (or 401 before reading it), got {answer:?}"
        );
    }
}

/// Opens `n` idle connections that the server has accepted.
fn hold(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n).map(|_| TcpStream::connect(addr).unwrap()).collect()
}

/// A GET on a fresh connection, as raw text; the status.
fn status_of_fresh_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = stream.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: jono\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

/// Polls until a fresh connection is served (a closed one frees its place as soon as the
/// server sees it go).
fn served_again(addr: SocketAddr) -> bool {
    for _ in 0..100 {
        if status_of_fresh_get(addr, "/healthz").0 == 200 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn connections_past_the_cap_per_address_are_answered_503_even_with_rate_limits_off() {
    let storage = Storage::embedded();
    let server = Server::start(
        &storage,
        &[
            ("JONO_MAX_CONNECTIONS_PER_ADDRESS", "4"),
            ("JONO_RATE_LIMITS", "off"),
        ],
    );
    let mut held = hold(server.addr, 4);
    let (status, answer) = status_of_fresh_get(server.addr, "/healthz");
    assert_eq!(status, 503, "the 5th connection from one address: {answer}");
    assert!(
        answer.to_ascii_lowercase().contains("retry-after: "),
        "{answer}"
    );
    assert!(answer.contains("application/problem+json"), "{answer}");
    held.pop();
    assert!(
        served_again(server.addr),
        "a place freed by a closed connection is taken again"
    );
}

#[test]
fn connections_past_the_cap_in_all_are_answered_503_even_from_a_trusted_proxy() {
    let storage = Storage::embedded();
    // A trusted proxy carries many clients, so the per-address cap does not apply to it; the
    // cap in all does.
    let server = Server::start(
        &storage,
        &[
            ("JONO_MAX_CONNECTIONS_PER_ADDRESS", "2"),
            ("JONO_MAX_CONNECTIONS", "3"),
            ("JONO_TRUSTED_PROXIES", "127.0.0.0/8"),
            ("JONO_RATE_LIMITS", "off"),
        ],
    );
    let mut held = hold(server.addr, 3);
    assert_eq!(
        status_of_fresh_get(server.addr, "/healthz").0,
        503,
        "the 4th connection in all"
    );
    held.truncate(1);
    assert!(served_again(server.addr));
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_join_limit() {
    let storage = Storage::embedded();
    let (_server, api) =
        api::start_with(&storage, &[("JONO_TRUSTED_PROXIES", "127.0.0.1/32, ::1")]);
    let owner = api::sign_up(&api, "Acme").await;
    let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
    for n in 1..=10 {
        // What the client wrote itself stands left of what the proxy appended.
        join_from(&api, queue, "6.6.6.6, 203.0.113.5")
            .await
            .expect(201, &format!("join {n}"));
    }
    join_from(&api, queue, "6.6.6.6, 203.0.113.5")
        .await
        .expect_problem(429, "the 11th join of one client");
    join_from(&api, queue, "6.6.6.6, 203.0.113.6")
        .await
        .expect(201, "another client behind the proxy");
}

#[tokio::test]
async fn without_trusted_proxies_a_forged_x_forwarded_for_escapes_no_limit() {
    let storage = Storage::embedded();
    let (_server, api) = api::start_with(&storage, &[]);
    let owner = api::sign_up(&api, "Acme").await;
    let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
    for n in 1..=10 {
        join_from(&api, queue, &format!("203.0.113.{n}"))
            .await
            .expect(201, &format!("join {n}"));
    }
    join_from(&api, queue, "203.0.113.99")
        .await
        .expect_problem(429, "a forged address");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn metrics_are_only_for_a_local_scraper_a_token_or_their_own_listener() {
    let storage = Storage::embedded();
    let (_server, api) = api::start_with(&storage, &[]);
    let local = api
        .get("/metrics", None)
        .await
        .expect(200, "a scraper on this host");
    assert!(local.text.contains("# TYPE"), "{}", local.text);
    // Through a proxy on this host, it is somebody else's request.
    api.raw(
        "GET",
        "/metrics",
        None,
        None,
        &[("x-forwarded-for", "203.0.113.5")],
    )
    .await
    .expect_problem(404, "through a proxy");

    let storage = Storage::embedded();
    let (_server, api) = api::start_with(&storage, &[("JONO_METRICS_TOKEN", "metrics-secret-1")]);
    api.get("/metrics", None)
        .await
        .expect_problem(401, "no token");
    api.get("/metrics", Some("wrong"))
        .await
        .expect_problem(401, "a wrong token");
    api.raw(
        "GET",
        "/metrics",
        Some("metrics-secret-1"),
        None,
        &[("x-forwarded-for", "203.0.113.5")],
    )
    .await
    .expect(200, "the token, from anywhere");

    let storage = Storage::embedded();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let (_server, api) = api::start_with(&storage, &[("JONO_METRICS_LISTEN", &listen)]);
    let metrics = Api::new(&format!("http://{listen}"));
    let scraped = metrics
        .raw(
            "GET",
            "/metrics",
            None,
            None,
            &[("x-forwarded-for", "203.0.113.5")],
        )
        .await
        .expect(200, "the metrics listener");
    assert!(scraped.text.contains("# TYPE"), "{}", scraped.text);
    metrics
        .get("/v1/me", None)
        .await
        .expect(404, "only /metrics on the metrics listener");
    api.raw(
        "GET",
        "/metrics",
        None,
        None,
        &[("x-forwarded-for", "203.0.113.5")],
    )
    .await
    .expect_problem(404, "the main listener, through a proxy");
}
