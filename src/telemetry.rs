//! Logs and traces. Logs go to stderr only (stdout belongs to the stdio transport). Spans —
//! an HTTP request or stdio frame, a session, a server call, an upstream request — carry the
//! server, method, tool, a user label, outcome and duration, so JSON logs tie to one request;
//! with `telemetry.otlp_endpoint` set they are also exported over OTLP/HTTP (protobuf), and a
//! caller's W3C `traceparent` (HTTP header or MCP `_meta`) becomes their parent and travels on
//! to upstream requests. Without an endpoint no OpenTelemetry layer is installed at all, so
//! tracing costs what `tracing` alone costs.

use std::collections::HashMap;
use std::sync::OnceLock;

use opentelemetry::propagation::{Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use sha2::{Digest, Sha256};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{LogFormat, Settings};

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot export traces to telemetry.otlp_endpoint: {0}")]
pub struct TelemetryError(String);

/// Keeps the trace exporter running; dropping it flushes the spans still queued.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            if let Err(err) = provider.shutdown() {
                tracing::warn!(%err, "could not flush the last traces");
            }
        }
    }
}

/// Whether user ids are shown as digests (`logging.hash_user_ids`), set once at start.
static HASH_USER_IDS: OnceLock<bool> = OnceLock::new();

/// Installs the subscriber: `RUST_LOG` if set, else `logging.level`; JSON or pretty logs on
/// stderr; and, with an OTLP endpoint, the span exporter.
pub fn init(settings: &Settings) -> Result<Telemetry, TelemetryError> {
    let logging = &settings.logging;
    let _ = HASH_USER_IDS.set(logging.hash_user_ids);
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&logging.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let fmt = match logging.format {
        LogFormat::Pretty => fmt.with_filter(filter).boxed(),
        LogFormat::Json => fmt
            .json()
            .with_current_span(true)
            .with_filter(filter)
            .boxed(),
    };
    let provider = match &settings.telemetry.otlp_endpoint {
        Some(endpoint) => Some(tracer_provider(endpoint, &settings.telemetry.service_name)?),
        None => None,
    };
    // The log level says what is printed, not what is traced: every span of this crate is
    // exported, whatever `RUST_LOG` hides.
    let otel = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("gumcp-actors"))
            .with_filter(Targets::new().with_target("gumcp_actors", LevelFilter::INFO))
    });
    // A second install (tests) is harmless; the first subscriber stays.
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(otel)
        .try_init();
    Ok(Telemetry { provider })
}

fn tracer_provider(endpoint: &str, service: &str) -> Result<SdkTracerProvider, TelemetryError> {
    let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
    crate::upstream::install_crypto_provider();
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(url)
        .build()
        .map_err(|err| TelemetryError(err.to_string()))?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder_empty()
                .with_service_name(service.to_owned())
                .build(),
        )
        .build())
}

/// How a user appears in spans and logs: the id, or — with `logging.hash_user_ids` — `u:` and
/// the first 12 hex digits of its SHA-256 (an operator looking for one user computes the
/// same digest of the id they have).
pub fn user_label(user: &str) -> String {
    if HASH_USER_IDS.get().copied().unwrap_or(false) {
        let digest = Sha256::digest(user.as_bytes());
        format!("u:{}", &hex::encode(digest)[..12])
    } else {
        user.to_owned()
    }
}

/// Makes `span` a child of the W3C trace context a caller sent (`traceparent`, `tracestate`),
/// read by `get`. Nothing happens when the caller sent none or no exporter is installed.
pub fn adopt_parent<'a>(span: &tracing::Span, get: impl Fn(&str) -> Option<&'a str>) {
    let Some(traceparent) = get("traceparent") else {
        return;
    };
    let mut carrier = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    if let Some(tracestate) = get("tracestate") {
        carrier.insert("tracestate".to_owned(), tracestate.to_owned());
    }
    let parent = TraceContextPropagator::new().extract(&carrier);
    let _ = span.set_parent(parent);
}

/// The W3C trace context of the current span, as `(header, value)` pairs to send upstream
/// (none when no exporter is installed, so nothing is sent that no trace backs).
pub fn current_trace_headers() -> Vec<(&'static str, String)> {
    struct Headers(Vec<(&'static str, String)>);
    impl Injector for Headers {
        fn set(&mut self, key: &str, value: String) {
            let name = match key {
                "traceparent" => "traceparent",
                "tracestate" => "tracestate",
                _ => return,
            };
            self.0.push((name, value));
        }
    }
    let context = tracing::Span::current().context();
    let mut headers = Headers(Vec::new());
    TraceContextPropagator::new().inject_context(&context, &mut headers);
    headers.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hashed_user_label_is_a_short_digest() {
        let digest = hex::encode(Sha256::digest(b"alice"));
        let _ = HASH_USER_IDS.set(true);
        if HASH_USER_IDS.get() == Some(&true) {
            assert_eq!(user_label("alice"), format!("u:{}", &digest[..12]));
        }
    }

    #[test]
    fn without_an_exporter_no_trace_headers_are_made_up() {
        assert!(current_trace_headers().is_empty());
    }
}
