//! Observability through the real binary: the span tree of one `tools/call` exported over
//! OTLP/HTTP to an in-test collector (decoded from protobuf), the caller's W3C trace context
//! carried on to the upstream, the audit log of calls (no arguments), and the metrics an
//! operator expects.

mod common;

use std::time::Duration;

use common::{http_client, modern_meta, stateless_call, Served, WAIT};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The trace a caller says it belongs to (W3C `traceparent`).
const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const CALLER_SPAN: &str = "b7ad6b7169203331";

/// Hacker News' API, answering one story.
async fn hackernews() -> MockServer {
    let upstream = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/item/8863.json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": 8863, "type": "story", "title": "My YC app", "by": "dhouston", "score": 111
        })))
        .mount(&upstream)
        .await;
    upstream
}

/// A collector that accepts every OTLP/HTTP export.
async fn collector() -> MockServer {
    let collector = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/traces"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&collector)
        .await;
    collector
}

async fn serve(config: &str, env: &[(&str, &str)]) -> (Served, tempfile::TempDir) {
    let root = tempfile::tempdir().unwrap();
    let file = root.path().join("gumcp.toml");
    std::fs::write(&file, config).unwrap();
    (common::serve(Some(&file), env).await, root)
}

/// A trace context a caller sends, as an HTTP header or in `_meta`.
enum Context<'a> {
    Header(&'a str),
    Meta(&'a str),
}

async fn story_call(client: &reqwest::Client, served: &Served, context: Context<'_>) -> Value {
    let url = format!("{}/hackernews/alice/mcp", served.url);
    let arguments = json!({"id": 8863});
    let request = match context {
        Context::Header(traceparent) => {
            stateless_call(client, &url, "get_story_details", arguments, modern_meta())
                .header("traceparent", traceparent)
        }
        Context::Meta(traceparent) => {
            let mut meta = modern_meta();
            meta["traceparent"] = json!(traceparent);
            stateless_call(client, &url, "get_story_details", arguments, meta)
        }
    };
    request.send().await.unwrap().json().await.unwrap()
}

/// Every span the collector received.
async fn exported_spans(collector: &MockServer) -> Vec<Span> {
    let mut spans = Vec::new();
    for request in collector.received_requests().await.unwrap_or_default() {
        let export = ExportTraceServiceRequest::decode(request.body.as_slice())
            .expect("the export is OTLP protobuf");
        for resource in export.resource_spans {
            for scope in resource.scope_spans {
                spans.extend(scope.spans);
            }
        }
    }
    spans
}

fn named<'s>(spans: &'s [Span], name: &str) -> &'s Span {
    spans
        .iter()
        .find(|span| span.name == name)
        .unwrap_or_else(|| panic!("a {name} span among {:?}", names(spans)))
}

fn names(spans: &[Span]) -> Vec<&str> {
    spans.iter().map(|span| span.name.as_str()).collect()
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
    span.attributes
        .iter()
        .find(|attribute| attribute.key == key)
        .and_then(|attribute| attribute.value.as_ref()?.value.as_ref())
        .map(|value| match value {
            Any::StringValue(text) => text.clone(),
            Any::IntValue(n) => n.to_string(),
            Any::DoubleValue(n) => n.to_string(),
            Any::BoolValue(b) => b.to_string(),
            other => format!("{other:?}"),
        })
}

#[tokio::test]
async fn one_call_is_exported_as_a_tree_of_spans_in_the_callers_trace() {
    let (upstream, collector) = (hackernews().await, collector().await);
    let config = format!(
        "[telemetry]\notlp_endpoint = \"{}\"\n[logging]\nhash_user_ids = true\n",
        collector.uri()
    );
    let (served, _root) = serve(
        &config,
        &[
            ("GUMCP__SERVERS__BASE_URLS__HACKERNEWS", &upstream.uri()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    )
    .await;
    let traceparent = format!("00-{TRACE_ID}-{CALLER_SPAN}-01");
    let client = http_client();
    let answer = story_call(&client, &served, Context::Header(&traceparent)).await;
    assert!(answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .contains("My YC app"));

    let forwarded = upstream.received_requests().await.unwrap();
    let sent = forwarded[0].headers["traceparent"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(sent.starts_with(&format!("00-{TRACE_ID}-")), "{sent}");

    let mut spans = Vec::new();
    for _ in 0..100 {
        spans = exported_spans(&collector).await;
        if spans.iter().any(|span| span.name == "upstream.request")
            && spans.iter().any(|span| span.name == "http.request")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let request = named(&spans, "http.request");
    let call = named(&spans, "mcp.call");
    let upstream_request = named(&spans, "upstream.request");
    let trace = hex::decode(TRACE_ID).unwrap();
    for span in [request, call, upstream_request] {
        assert_eq!(
            span.trace_id, trace,
            "{} is in the caller's trace",
            span.name
        );
    }
    assert_eq!(
        call.parent_span_id, request.span_id,
        "the call is the request's child"
    );
    assert_eq!(
        upstream_request.parent_span_id, call.span_id,
        "the upstream request is the call's"
    );
    assert_eq!(
        hex::encode(&upstream_request.span_id),
        sent[36..52],
        "traceparent names it"
    );
    assert_eq!(attribute(call, "server").as_deref(), Some("hackernews"));
    assert_eq!(
        attribute(call, "tool").as_deref(),
        Some("get_story_details")
    );
    assert_eq!(attribute(call, "outcome").as_deref(), Some("ok"));
    let user = attribute(call, "user").unwrap_or_default();
    assert!(user.starts_with("u:") && !user.contains("alice"), "{user}");
    assert_eq!(
        attribute(upstream_request, "http.status_code").as_deref(),
        Some("200")
    );
    assert_eq!(
        attribute(request, "http.route").as_deref(),
        Some("/{server}/{session_key}/mcp")
    );
    served.stop().await;
}

#[tokio::test]
async fn calls_are_audited_without_their_arguments_and_counted() {
    let upstream = hackernews().await;
    let root = tempfile::tempdir().unwrap();
    let audit = root.path().join("audit.jsonl");
    let config = format!("[audit]\npath = \"{}\"\n", audit.display());
    let (served, _config_root) = serve(
        &config,
        &[("GUMCP__SERVERS__BASE_URLS__HACKERNEWS", &upstream.uri())],
    )
    .await;
    let client = http_client();
    let answer = story_call(&client, &served, Context::Meta("not a traceparent")).await;
    assert_ne!(answer["result"]["isError"], json!(true), "{answer}");

    let mut records = String::new();
    for _ in 0..50 {
        records = std::fs::read_to_string(&audit).unwrap_or_default();
        if !records.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let record: Value = serde_json::from_str(records.lines().next().unwrap_or("{}")).unwrap();
    assert_eq!(record["user"], "alice");
    assert_eq!(record["access"], "open");
    assert_eq!(record["server"], "hackernews");
    assert_eq!(record["method"], "tools/call");
    assert_eq!(record["target"], "get_story_details");
    assert_eq!(record["outcome"], "ok");
    assert!(record["duration_ms"].as_f64().is_some() && record["at"].is_string());
    assert!(
        !records.contains("8863"),
        "no arguments in the audit log: {records}"
    );

    let metrics = client
        .get(&served.metrics_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for expected in [
        "gumcp_upstream_request_duration_seconds_count{server=\"hackernews\",status_class=\"2xx\"} 1",
        "process_open_fds",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
    ] {
        assert!(metrics.contains(expected), "{expected} in {metrics}");
    }
    let logs = tokio::time::timeout(WAIT, served.stop()).await.unwrap();
    assert!(!logs.contains("8863"), "{logs}");
}
