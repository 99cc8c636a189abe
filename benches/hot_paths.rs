//! Micro-benchmarks of what every request runs: JSON-RPC framing in and out, SSE framing,
//! tool-input validation against a compiled schema, and the http kind's path templating.
//! `cargo bench --bench hot_paths`; numbers and what they changed are in BENCHMARKS.md.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use gumcp_actors::protocol::jsonrpc::{parse_frame, Outgoing, RequestId};
use gumcp_actors::servers::http::call::fill;
use gumcp_actors::servers::schema::SchemaCache;
use gumcp_actors::transport::http::events::Event;
use serde_json::{json, Value};

const TOOLS_CALL: &str = r#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"store-data","arguments":{"key":"greeting","value":"hello world"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;

fn tool_result() -> Value {
    json!({
        "content": [{ "type": "text", "text": "Stored greeting = hello world" }],
        "isError": false,
        "resultType": "complete",
        "_meta": { "io.modelcontextprotocol/serverInfo": { "name": "simple-tools-server", "version": "1.0.0" } }
    })
}

fn jsonrpc(c: &mut Criterion) {
    c.bench_function("jsonrpc/parse tools/call", |b| {
        b.iter(|| parse_frame(black_box(TOOLS_CALL.as_bytes())))
    });
    let result = tool_result();
    c.bench_function("jsonrpc/serialise reply", |b| {
        b.iter(|| Outgoing::reply(RequestId::Number(42), Ok(black_box(result.clone()))).to_line())
    });
}

fn sse(c: &mut Criterion) {
    let reply = Outgoing::reply(RequestId::Number(42), Ok(tool_result()));
    c.bench_function("sse/frame message event", |b| {
        b.iter(|| Event::message(black_box(&reply), Some("7-12")))
    });
}

fn schema(c: &mut Criterion) {
    let schema = Arc::new(
        json!({
            "type": "object",
            "properties": { "key": { "type": "string" }, "value": { "type": "string" } },
            "required": ["key", "value"]
        })
        .as_object()
        .cloned()
        .unwrap_or_default(),
    );
    let arguments = json!({ "key": "greeting", "value": "hello world" })
        .as_object()
        .cloned()
        .unwrap_or_default();
    let cache = SchemaCache::default();
    c.bench_function("schema/validate arguments (compiled)", |b| {
        b.iter_batched(
            || arguments.clone(),
            |arguments| cache.validate("store-data", black_box(&schema), black_box(arguments)),
            BatchSize::SmallInput,
        )
    });
}

fn templating(c: &mut Criterion) {
    let value_of = |name: &str| match name {
        "owner" => Some("modelcontextprotocol".to_owned()),
        "repo" => Some("rust sdk".to_owned()),
        "number" => Some("1234".to_owned()),
        _ => None,
    };
    c.bench_function("http kind/fill path template", |b| {
        b.iter(|| fill(black_box("/repos/{owner}/{repo}/issues/{number}"), value_of))
    });
}

criterion_group!(hot_paths, jsonrpc, sse, schema, templating);
criterion_main!(hot_paths);
