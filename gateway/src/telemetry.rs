//! Logs and traces. Log lines go to stderr (text or JSON); with the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) set, the spans of
//! requests, commands and appends are also exported over OTLP/HTTP (protobuf). Export is off by
//! default and never holds up a request: spans queue for a batch exporter on a thread of its
//! own, which drops them when the queue is full (the collector is away or slow). A request with
//! a W3C `traceparent` header continues the caller's trace. Every request's span carries a
//! `trace_id` field, so each log line written inside it names its trace: the exported trace's
//! id with OTLP, the caller's or a fresh random one without.

use std::time::Duration;

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TraceId, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::LogFormat;

/// How long the exit waits for the last spans to reach the collector.
const FLUSH_AT_EXIT: Duration = Duration::from_secs(3);

/// The exporter, if any, to flush when the process ends.
#[must_use = "dropping it flushes the traces; keep it until the end of main"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            // A collector that is away costs at most this wait at exit.
            let _ = provider.shutdown_with_timeout(FLUSH_AT_EXIT);
        }
    }
}

/// Whether the environment asks for OTLP export of traces.
fn otlp_wanted() -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|value| !value.trim().is_empty());
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|value| value.trim() == "true");
    !disabled && (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

/// The OTLP/HTTP exporter behind a batch processor, named `jono` unless `OTEL_SERVICE_NAME`
/// says otherwise. Called before the async runtime starts (its HTTP client blocks).
fn otlp_provider() -> Result<SdkTracerProvider, String> {
    use opentelemetry_otlp::WithExportConfig;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .build()
        .map_err(|error| error.to_string())?;
    let mut resource = opentelemetry_sdk::Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("jono");
    }
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build())
}

/// Sets up logging to stderr (`JONO_LOG` filters, `info` by default) and, when asked, the OTLP
/// export of traces.
pub fn init(format: LogFormat) -> Telemetry {
    let filter = EnvFilter::try_from_env("JONO_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let (provider, failure) = if otlp_wanted() {
        match otlp_provider() {
            Ok(provider) => (Some(provider), None),
            Err(error) => (None, Some(error)),
        }
    } else {
        (None, None)
    };
    let traces = provider
        .as_ref()
        .map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer("jono")));
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(logs)
        .with(traces)
        .try_init();
    if let Some(error) = failure {
        tracing::warn!(%error, "traces are not exported: the OTLP exporter cannot start");
    } else if provider.is_some() {
        tracing::info!("exporting traces over OTLP/HTTP");
    }
    Telemetry { provider }
}

/// A request's headers, as the W3C trace-context propagator reads them.
struct Headers<'a>(&'a axum::http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|key| key.as_str()).collect()
    }
}

/// Starts a request's trace on `span` (which declares a `trace_id` field): under the caller's
/// trace when the request carries a valid W3C `traceparent` (a proxy or client that traces),
/// and records the trace's id — the exported trace's when OTLP is on, else the caller's, else a
/// random one — so log lines can be grouped by request.
pub fn start_request(span: &tracing::Span, headers: &axum::http::HeaderMap) {
    let caller = TraceContextPropagator::new().extract(&Headers(headers));
    let incoming = caller.span().span_context().trace_id();
    if incoming != TraceId::INVALID {
        // Without the OTLP layer there is nothing to attach it to; the id is still logged.
        let _ = span.set_parent(caller);
    }
    let exported = span.context().span().span_context().trace_id();
    if exported != TraceId::INVALID {
        span.record("trace_id", tracing::field::display(exported));
    } else if incoming != TraceId::INVALID {
        span.record("trace_id", tracing::field::display(incoming));
    } else {
        span.record(
            "trace_id",
            tracing::field::display(uuid::Uuid::new_v4().simple()),
        );
    }
}
