//! What an operator runs on (README, Operations; issue 19): a real Prometheus scrapes a
//! `jono serve` under a short load and finds plausible latency histograms, lag gauges, sockets
//! and waiting customers, with the alert rules of `deploy/` loaded and evaluating; promtool
//! accepts the rules, their unit tests (`alerts_test.yml`) and the exposition; the dashboard and the rules name only metrics that
//! exist; and with `OTEL_EXPORTER_OTLP_ENDPOINT` a request's spans (request, command, append)
//! reach an OTLP receiver under one trace id, which the request's log lines name too, and a
//! request with a `traceparent` continues its caller's trace.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::SinkExt;
use jono_tests::api::{self, Api};
use jono_tests::prometheus::{alert_rules, promtool, tool, Prometheus};
use jono_tests::Storage;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

/// Asks `promql` every half second until `done` holds of a non-empty answer; panics with the
/// last answer after a minute (Prometheus scrapes every second).
async fn until(
    prometheus: &Prometheus,
    promql: &str,
    done: impl Fn(&[(Value, f64)]) -> bool,
) -> Vec<(Value, f64)> {
    let mut last = Vec::new();
    for _ in 0..120 {
        last = prometheus.query(promql).await;
        if !last.is_empty() && done(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("{promql} never held: {last:?}");
}

/// Every `jono_…` name in `text` (an expression, a rules file, a dashboard).
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("jono_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        names.insert(name);
    }
    names
}

async fn scraped_under_load(storage: Storage) {
    let (Some(prometheus_bin), Some(promtool_bin)) = (tool("prometheus"), tool("promtool")) else {
        return;
    };
    let rules = alert_rules();
    promtool(
        &promtool_bin,
        &["check", "rules", rules.to_str().unwrap()],
        "",
    );
    // The rules' unit tests: each alert quiet on healthy series, firing after its `for`.
    let rules_test = rules.with_file_name("alerts_test.yml");
    promtool(
        &promtool_bin,
        &["test", "rules", rules_test.to_str().unwrap()],
        "",
    );

    let (server, api) = api::start(&storage);
    let owner = api::sign_up(&api, "Observed").await;
    let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
    // An agent's socket stays open while Prometheus scrapes, and says something.
    let url = format!(
        "{}/v1/ws?token={}",
        server.base.replace("http://", "ws://"),
        owner.token
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    socket
        .send(Message::Text(
            json!({"type": "subscribe", "topic": format!("queue:{queue}")})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
    // Four customers join; one is picked and talked to, three wait.
    for _ in 0..4 {
        api::join(&api, queue, json!({})).await;
    }
    let picked = api::pick(&api, &owner, queue).await;

    let prometheus = Prometheus::start(&prometheus_bin, &server.addr.to_string());
    // The short load: messages and reads, until Prometheus has seen what it needs.
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn({
        let stop = stop.clone();
        let api = Api::new(&server.base);
        let token = owner.token.clone();
        async move {
            let mut sent = 0;
            while !stop.load(Ordering::Relaxed) {
                api::send_message(&api, Some(&token), picked, &format!("answer {sent}")).await;
                api.get(&format!("/v1/queues/{queue}"), Some(&token))
                    .await
                    .expect(200, "the queue");
                sent += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            sent
        }
    });

    until(&prometheus, r#"up{job="jono"}"#, |up| up[0].1 == 1.0).await;
    // Answer times from the histogram, as a dashboard computes them.
    let p99 = until(
        &prometheus,
        "histogram_quantile(0.99, sum by (le) (rate(jono_http_request_duration_seconds_bucket[30s])))",
        |p99| p99[0].1.is_finite(),
    )
    .await[0]
        .1;
    assert!(p99 > 0.0 && p99 <= 10.0, "p99 of answers: {p99} s");
    let messages = until(
        &prometheus,
        r#"sum(jono_http_request_duration_seconds_count{route="/v1/conversations/{c}/messages",status="2xx"})"#,
        |count| count[0].1 >= 3.0,
    )
    .await;
    assert!(messages[0].1 >= 3.0, "{messages:?}");
    // The store: append latency, commit (fsync) time, batch sizes.
    let append = until(
        &prometheus,
        "sum(jono_store_append_seconds_sum) / sum(jono_store_append_seconds_count)",
        |mean| mean[0].1.is_finite(),
    )
    .await[0]
        .1;
    assert!(append > 0.0 && append < 10.0, "mean append: {append} s");
    let commits = until(&prometheus, "sum(jono_store_commit_seconds_count)", |n| {
        n[0].1 > 0.0
    })
    .await;
    let batches = until(&prometheus, "sum(jono_store_batch_size_count)", |n| {
        n[0].1 > 0.0
    })
    .await;
    assert!(
        batches[0].1 <= commits[0].1 + 1.0,
        "{batches:?} {commits:?}"
    );
    until(&prometheus, "sum(jono_aggregate_loads_total)", |n| {
        n[0].1 > 0.0
    })
    .await;
    // Lag: every projector, the process manager; at most the head in events, and recent.
    let head = until(&prometheus, "jono_log_head", |head| head[0].1 > 0.0).await[0].1;
    let lag = until(&prometheus, "jono_projector_lag_events", |lag| {
        lag.len() >= 5
    })
    .await;
    for (labels, events) in &lag {
        assert!(labels["projector"].is_string(), "{labels}");
        assert!(
            (0.0..=head).contains(events),
            "{labels}: {events} of {head}"
        );
    }
    for (labels, seconds) in until(&prometheus, "jono_projector_lag_seconds", |lag| {
        lag.len() >= 5
    })
    .await
    {
        assert!((0.0..600.0).contains(&seconds), "{labels}: {seconds} s");
    }
    let pm = until(&prometheus, "jono_process_manager_lag_events", |_| true).await;
    assert!((0.0..=head).contains(&pm[0].1), "{pm:?}");
    let pm = until(&prometheus, "jono_process_manager_lag_seconds", |_| true).await;
    assert!((0.0..600.0).contains(&pm[0].1), "{pm:?}");
    // Queues, sockets, build.
    until(&prometheus, "jono_waiting_customers", |n| n[0].1 == 3.0).await;
    let oldest = until(&prometheus, "jono_oldest_wait_seconds", |s| s[0].1 > 0.0).await;
    assert!(oldest[0].1 < 600.0, "{oldest:?}");
    until(&prometheus, r#"jono_websockets_open{kind="agent"}"#, |n| {
        n[0].1 == 1.0
    })
    .await;
    until(
        &prometheus,
        r#"jono_websocket_frames_total{kind="agent",direction="in"}"#,
        |n| n[0].1 >= 1.0,
    )
    .await;
    until(&prometheus, "jono_build_info", |n| n[0].1 == 1.0).await;
    // The alert rules are loaded and evaluate without error, and none fires (a healthy node).
    let mut healthy = false;
    for _ in 0..60 {
        let groups = prometheus.api("rules").await.unwrap_or(Value::Null)["groups"].clone();
        let rules: Vec<Value> = groups
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|group| group["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        for rule in &rules {
            assert_ne!(rule["health"], "err", "{rule}");
        }
        if rules.len() >= 9 && rules.iter().all(|rule| rule["health"] == "ok") {
            // The disk's depends on the machine running the tests.
            for rule in rules
                .iter()
                .filter(|rule| rule["name"] != "JonoDiskNearlyFull")
            {
                assert_eq!(rule["state"], "inactive", "{rule}");
            }
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(healthy, "the alert rules never all evaluated");
    stop.store(true, Ordering::Relaxed);
    assert!(load.await.unwrap() > 0);

    // promtool's lint of the exposition, and every metric the rules and the dashboard name is
    // one the server exports.
    let (status, exposition) = server.get("/metrics");
    assert_eq!(status, 200);
    promtool(&promtool_bin, &["check", "metrics"], &exposition);
    let exported = metric_names(
        &exposition
            .lines()
            .filter_map(|line| line.strip_prefix("# TYPE "))
            .collect::<Vec<_>>()
            .join("\n"),
    );
    let dashboard =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/grafana/jono.json");
    for file in [rules, dashboard] {
        let text = std::fs::read_to_string(&file).unwrap();
        for name in metric_names(&text) {
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .filter(|base| exported.contains(*base))
                .unwrap_or(&name);
            assert!(
                exported.contains(base),
                "{} names {name}, which /metrics does not export",
                file.display()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_scrapes_plausible_histograms_and_lag_on_sqlite() {
    scraped_under_load(Storage::embedded()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_scrapes_plausible_histograms_and_lag_on_postgres() {
    if let Some(storage) = Storage::postgres() {
        scraped_under_load(storage).await;
    }
}

/// A loopback OTLP/HTTP receiver: every span of every `POST /v1/traces` it is sent.
async fn otlp_receiver() -> (String, Arc<Mutex<Vec<Span>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let spans: Arc<Mutex<Vec<Span>>> = Arc::default();
    let received = spans.clone();
    tokio::spawn(async move {
        while let Ok((mut connection, _)) = listener.accept().await {
            let received = received.clone();
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                loop {
                    // One request: its head, then Content-Length bytes of protobuf.
                    let head_end = loop {
                        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                            break at + 4;
                        }
                        let mut chunk = [0u8; 8192];
                        match connection.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buffer[..head_end]).to_lowercase();
                    assert!(head.starts_with("post /v1/traces "), "{head}");
                    assert!(head.contains("application/x-protobuf"), "{head}");
                    let length: usize = head
                        .lines()
                        .find_map(|line| line.strip_prefix("content-length:"))
                        .map_or(0, |value| value.trim().parse().unwrap());
                    while buffer.len() < head_end + length {
                        let mut chunk = [0u8; 8192];
                        match connection.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body: Vec<u8> = buffer.drain(..head_end + length).skip(head_end).collect();
                    let request = ExportTraceServiceRequest::decode(body.as_slice()).unwrap();
                    received.lock().unwrap().extend(
                        request
                            .resource_spans
                            .into_iter()
                            .flat_map(|resource| resource.scope_spans)
                            .flat_map(|scope| scope.spans),
                    );
                    let answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
                    if connection.write_all(answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (endpoint, spans)
}

fn attribute<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    span.attributes
        .iter()
        .find(|attribute| attribute.key == key)
        .and_then(|attribute| attribute.value.as_ref())
        .and_then(|value| match &value.value {
            Some(any_value::Value::StringValue(text)) => Some(text.as_str()),
            _ => None,
        })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_requests_spans_reach_an_otlp_receiver_under_one_trace_id() {
    let (endpoint, spans) = otlp_receiver().await;
    let storage = Storage::embedded();
    let (server, api) = api::start_with(
        &storage,
        &[
            ("JONO_RATE_LIMITS", "off"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("JONO_LOG_FORMAT", "json"),
            // The read queries a request makes log inside its span.
            ("JONO_LOG", "info,sqlx::query=debug"),
        ],
    );
    api::sign_up(&api, "Traced").await;
    // A caller that traces: its request continues the caller's trace.
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    api.raw(
        "GET",
        "/healthz",
        None,
        None,
        &[(
            "traceparent",
            &format!("00-{caller_trace}-{caller_span}-01"),
        )],
    )
    .await
    .expect(200, "health");

    // The sign-up's request span, and the spans of its trace, once exported.
    let mut found = None;
    for _ in 0..100 {
        {
            let spans = spans.lock().unwrap();
            let request = spans.iter().find(|span| {
                span.name == "request" && attribute(span, "route") == Some("/v1/signup")
            });
            if let Some(request) = request {
                let trace: Vec<Span> = spans
                    .iter()
                    .filter(|span| span.trace_id == request.trace_id)
                    .cloned()
                    .collect();
                if trace.iter().any(|span| span.name == "append") {
                    found = Some((request.clone(), trace));
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (request, trace) = found.unwrap_or_else(|| {
        panic!(
            "no request span with its append arrived: {:?}",
            spans
                .lock()
                .unwrap()
                .iter()
                .map(|span| &span.name)
                .collect::<Vec<_>>()
        )
    });
    assert_eq!(request.trace_id.len(), 16);
    assert!(
        request.parent_span_id.is_empty(),
        "a request starts its trace"
    );
    assert_eq!(attribute(&request, "method"), Some("POST"));
    // request → command → append, one trace.
    let commands: Vec<&Span> = trace
        .iter()
        .filter(|span| span.name == "command" && span.parent_span_id == request.span_id)
        .collect();
    assert!(
        !commands.is_empty(),
        "no command under the request: {trace:?}"
    );
    assert!(
        trace.iter().any(|span| span.name == "append"
            && commands
                .iter()
                .any(|command| span.parent_span_id == command.span_id)),
        "no append under a command: {trace:?}"
    );
    // The caller's trace was continued.
    let mut continued = None;
    for _ in 0..100 {
        continued = spans
            .lock()
            .unwrap()
            .iter()
            .find(|span| span.name == "request" && attribute(span, "route") == Some("/healthz"))
            .cloned();
        if continued.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let continued = continued.expect("the /healthz request's span");
    assert_eq!(hex(&continued.trace_id), caller_trace);
    assert_eq!(hex(&continued.parent_span_id), caller_span);
    // The request's log lines name the same trace.
    let trace_id = hex(&request.trace_id);
    let stderr = server.stderr();
    let logged = stderr
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|line| line["span"]["trace_id"] == trace_id.as_str());
    assert!(
        logged.is_some(),
        "no log line names trace {trace_id}:\n{stderr}"
    );
}

/// With the collector away, requests are answered all the same (the exporter drops, retries
/// nothing on the request's path).
#[tokio::test(flavor = "multi_thread")]
async fn an_absent_collector_holds_up_no_request() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let storage = Storage::embedded();
    let (server, api) = api::start_with(
        &storage,
        &[
            ("JONO_RATE_LIMITS", "off"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "50"),
        ],
    );
    let owner = api::sign_up(&api, "Untraced").await;
    let queue = api::open_queue_handled_by(&api, &owner, "Support").await;
    for _ in 0..3 {
        api::join(&api, queue, json!({})).await;
    }
    assert_eq!(server.get("/readyz").0, 200);
    let (status, stderr) = server.terminate_with_stderr();
    assert!(status.success(), "a clean stop: {stderr}");
}
