//! Table-driven tests of the shipped servers against mocks of their APIs: one server process
//! per server, every fixture of `tests/fixtures/<server>.toml` through it.
//!
//! A fixture is an example tool call, the upstream requests it must make (method, encoded path,
//! the exact query, the JSON or form body, the `Authorization` header and any other headers named), the
//! canned answer of each in the real API's shape, and what the tool's result must contain.
//! The mock answers a request only if it is one the fixture expects (in any order, each once);
//! anything else is answered 418 and reported. Beside the calls, the server's `tools/list` is
//! compared with guMCP's (`tests/fixtures/gumcp/<server>.json`: tool names in order, argument
//! names, types, enums and which are required), and every tool must have a fixture.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use common::{modern_meta, StdioClient};
use serde::Deserialize;
use serde_json::{json, Value};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// `tests/fixtures/<server>.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FixtureFile {
    /// Saved for alice before the server starts.
    #[serde(default)]
    credentials: Option<Value>,
    /// The `Authorization` header every upstream request must carry; absent: none may.
    authorization: Option<String>,
    /// Environment of the server process (settings as `GUMCP__…`); `{root}` is the test's
    /// temporary folder.
    #[serde(default)]
    env: BTreeMap<String, String>,
    /// Files written under the temporary folder before the server starts: path → text.
    #[serde(default)]
    files: BTreeMap<String, String>,
    /// After the mock's address in the configured base URL: a server whose base URL is filled
    /// from the credential's fields (`/{custom_subdomain}`) shows them in every request's path.
    #[serde(default)]
    base_path: String,
    #[serde(rename = "fixture")]
    fixtures: Vec<Fixture>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Fixture {
    tool: String,
    #[serde(default = "empty_object")]
    arguments: Value,
    #[serde(default)]
    upstream: Vec<Expected>,
    #[serde(default)]
    expect: Outcome,
}

fn empty_object() -> Value {
    json!({})
}

/// One upstream request the call must make, and the mock's answer to it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    method: String,
    /// As it goes on the wire (percent-encoded).
    path: String,
    /// A request that must carry no credentials (a file fetched from a URL a user gave).
    #[serde(default)]
    unauthenticated: bool,
    /// The whole query: every parameter, none more (a list for a repeated one); `{date:-N}`
    /// in a value is the date N days before today.
    #[serde(default)]
    query: BTreeMap<String, Value>,
    /// The JSON body, exactly; absent (and no `body_contains`): the body must be empty.
    body: Option<Value>,
    /// JSON pointers into the body whose values are made up by the server (a request id):
    /// they must be there, and are left out of the comparison with `body`.
    #[serde(default)]
    ignore: Vec<String>,
    /// A form-encoded body, exactly: every field (a list for a repeated one), none more.
    #[serde(default)]
    form: Option<BTreeMap<String, Value>>,
    /// Parts a non-JSON body (an upload) must contain.
    #[serde(default)]
    body_contains: Vec<String>,
    /// Headers that must be present with these values (names in any case).
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default = "ok")]
    status: u16,
    /// The JSON answer; absent (and no `answer_text`): an empty body.
    answer: Option<Value>,
    /// A plain-text answer (a file's content).
    answer_text: Option<String>,
    /// A binary answer (a document), in standard base64.
    answer_base64: Option<String>,
}

fn ok() -> u16 {
    200
}

/// What the tool's result must hold.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Outcome {
    /// Whether it is a tool error.
    #[serde(default)]
    error: bool,
    /// How many content blocks (a list answers one per item).
    blocks: Option<usize>,
    /// Text each found in some content block.
    #[serde(default)]
    text: Vec<String>,
    /// JSON pointer into `structuredContent` → the value there.
    #[serde(default)]
    structured: BTreeMap<String, Value>,
    /// Files the call must have written under the temporary folder: path → text.
    #[serde(default)]
    files: BTreeMap<String, String>,
}

/// The requests the running fixture still expects, and what did not match.
#[derive(Default)]
struct Script {
    authorization: Option<String>,
    pending: Vec<Expected>,
    mismatches: Vec<String>,
}

#[derive(Clone, Default)]
struct ScriptedUpstream(Arc<Mutex<Script>>);

impl Respond for ScriptedUpstream {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut script = self.0.lock().expect("the script lock");
        let authorization = script.authorization.clone();
        let mut why_not = Vec::new();
        let found = script.pending.iter().position(|expected| {
            let authorization = authorization
                .as_deref()
                .filter(|_| !expected.unauthenticated);
            match differences(expected, authorization, request) {
                None => true,
                Some(why) => {
                    why_not.push(why);
                    false
                }
            }
        });
        match found {
            Some(at) => {
                let expected = script.pending.remove(at);
                let answer = ResponseTemplate::new(expected.status);
                match (
                    expected.answer,
                    expected.answer_text,
                    expected.answer_base64,
                ) {
                    (Some(body), _, _) => answer.set_body_json(body),
                    (None, Some(text), _) => answer.set_body_raw(text, "text/plain"),
                    (None, None, Some(encoded)) => {
                        use base64::Engine;
                        let bytes = base64::engine::general_purpose::STANDARD
                            .decode(encoded)
                            .expect("answer_base64 is base64");
                        answer.set_body_raw(bytes, "application/octet-stream")
                    }
                    (None, None, None) => answer,
                }
            }
            None => {
                let query = request.url.query().unwrap_or_default();
                script.mismatches.push(format!(
                    "unexpected {} {}?{query}: {}",
                    request.method,
                    request.url.path(),
                    if why_not.is_empty() {
                        "no request was left to expect".to_owned()
                    } else {
                        why_not.join(" | ")
                    }
                ));
                ResponseTemplate::new(418).set_body_json(json!({ "message": "not expected" }))
            }
        }
    }
}

/// Why `request` is not `expected`, or `None` when it is.
fn differences(
    expected: &Expected,
    authorization: Option<&str>,
    request: &Request,
) -> Option<String> {
    let mut why = Vec::new();
    if !request
        .method
        .as_str()
        .eq_ignore_ascii_case(&expected.method)
    {
        why.push(format!(
            "method {} is not {}",
            request.method, expected.method
        ));
    }
    if request.url.path() != expected.path {
        why.push(format!(
            "path {} is not {}",
            request.url.path(),
            expected.path
        ));
    }
    let query = pairs(request.url.query_pairs());
    let wanted = listed(&expected.query);
    if query != wanted {
        why.push(format!("query {query:?} is not {wanted:?}"));
    }
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    if header("authorization").as_deref() != authorization {
        why.push(format!(
            "authorization {:?} is not {authorization:?}",
            header("authorization").map(|_| "(another value)")
        ));
    }
    for (name, value) in &expected.headers {
        if header(name).as_deref() != Some(value) {
            why.push(format!(
                "header {name} is {:?}, not {value:?}",
                header(name)
            ));
        }
    }
    let body = String::from_utf8_lossy(&request.body);
    if let Some(form) = &expected.form {
        let sent = pairs(oauth2::url::form_urlencoded::parse(&request.body));
        if sent != listed(form) || header("content-type").as_deref() != Some(FORM) {
            why.push(format!("form body {body} is not {form:?}"));
        }
    }
    match &expected.body {
        None if expected.form.is_some() => {}
        Some(json) => {
            let sent = serde_json::from_slice::<Value>(&request.body)
                .ok()
                .and_then(|mut sent| without(&mut sent, &expected.ignore).then_some(sent));
            if sent.as_ref() != Some(json) {
                why.push(format!("body {body} is not {json}"));
            }
        }
        None if expected.body_contains.is_empty() && !request.body.is_empty() => {
            why.push(format!("a body ({body}) where none is expected"))
        }
        None => {}
    }
    for part in &expected.body_contains {
        if !body.contains(part.as_str()) {
            why.push(format!("body lacks {part:?}"));
        }
    }
    (!why.is_empty()).then(|| why.join("; "))
}

const FORM: &str = "application/x-www-form-urlencoded";

/// Name-value pairs (a query, a form) as each name's values in order.
fn pairs<'a>(
    found: impl Iterator<Item = (std::borrow::Cow<'a, str>, std::borrow::Cow<'a, str>)>,
) -> BTreeMap<String, Vec<String>> {
    let mut pairs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in found {
        pairs
            .entry(name.into_owned())
            .or_default()
            .push(value.into_owned());
    }
    pairs
}

/// Expected pairs as [`pairs`] gives them: a list for a repeated name.
fn listed(expected: &BTreeMap<String, Value>) -> BTreeMap<String, Vec<String>> {
    expected
        .iter()
        .map(|(name, value)| {
            let values = match value {
                Value::Array(items) => items.iter().map(plain).collect(),
                other => vec![plain(other)],
            };
            (name.clone(), values)
        })
        .collect()
}

/// Removes the values at `pointers` from `body`; whether every one was there.
fn without(body: &mut Value, pointers: &[String]) -> bool {
    pointers.iter().all(|pointer| {
        let (parent, key) = pointer.rsplit_once('/').unwrap_or(("", pointer));
        body.pointer_mut(parent)
            .and_then(Value::as_object_mut)
            .and_then(|object| object.remove(key))
            .is_some()
    })
}

/// A query value as text (TOML numbers and booleans as they print).
fn plain(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn read_fixtures(server: &str) -> FixtureFile {
    let path = format!(
        "{}/tests/fixtures/{server}.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}"));
    toml::from_str(&text).unwrap_or_else(|err| panic!("{path}: {err}"))
}

fn gumcp_tools(server: &str) -> Vec<Value> {
    let path = format!(
        "{}/tests/fixtures/gumcp/{server}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}"));
    let file: Value = serde_json::from_str(&text).unwrap_or_else(|err| panic!("{path}: {err}"));
    file["tools"].as_array().cloned().unwrap_or_default()
}

async fn listed_tools(client: &mut StdioClient) -> Vec<Value> {
    let mut tools = Vec::new();
    let mut cursor: Option<Value> = None;
    for id in 1..=20 {
        let mut params = json!({ "_meta": modern_meta() });
        if let Some(cursor) = cursor.take() {
            params["cursor"] = cursor;
        }
        let reply = client.request(id, "tools/list", params).await;
        let result = &reply["result"];
        tools.extend(result["tools"].as_array().cloned().unwrap_or_default());
        match result.get("nextCursor") {
            Some(next) if !next.is_null() => cursor = Some(next.clone()),
            _ => return tools,
        }
    }
    panic!("tools/list did not end within 20 pages")
}

/// What of an argument's schema guMCP's clients rely on: its type, the item type of a list,
/// and the allowed values.
fn argument_shape(schema: &Value) -> Value {
    json!({
        "type": schema.get("type"),
        "items": schema.pointer("/items/type"),
        "enum": schema.get("enum"),
    })
}

/// Differences between the tools listed and guMCP's.
fn compare_with_gumcp(listed: &[Value], gumcp: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    let names = |tools: &[Value]| -> Vec<String> {
        tools
            .iter()
            .filter_map(|tool| tool["name"].as_str().map(str::to_owned))
            .collect()
    };
    if names(listed) != names(gumcp) {
        problems.push(format!(
            "tools {:?} are not guMCP's {:?}",
            names(listed),
            names(gumcp)
        ));
    }
    for theirs in gumcp {
        let name = theirs["name"].as_str().unwrap_or_default();
        let Some(ours) = listed.iter().find(|tool| tool["name"] == name) else {
            continue;
        };
        let (ours, theirs) = (&ours["inputSchema"], &theirs["inputSchema"]);
        let properties = |schema: &Value| -> BTreeMap<String, Value> {
            schema["properties"]
                .as_object()
                .map(|props| {
                    props
                        .iter()
                        .map(|(key, value)| (key.clone(), argument_shape(value)))
                        .collect()
                })
                .unwrap_or_default()
        };
        if properties(ours) != properties(theirs) {
            problems.push(format!(
                "{name}: arguments {:?} are not guMCP's {:?}",
                properties(ours),
                properties(theirs)
            ));
        }
        let required = |schema: &Value| -> Vec<String> {
            let mut names: Vec<String> = schema["required"]
                .as_array()
                .map(|list| {
                    list.iter()
                        .filter_map(|n| n.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            names.sort();
            names
        };
        if required(ours) != required(theirs) {
            problems.push(format!(
                "{name}: required {:?} is not guMCP's {:?}",
                required(ours),
                required(theirs)
            ));
        }
    }
    problems
}

/// What of the result does not hold.
fn check_outcome(result: &Value, outcome: &Outcome) -> Vec<String> {
    let mut problems = Vec::new();
    if result["isError"].as_bool().unwrap_or(false) != outcome.error {
        problems.push(format!("isError is not {}", outcome.error));
    }
    let texts: Vec<&str> = result["content"]
        .as_array()
        .map(|blocks| blocks.iter().filter_map(|b| b["text"].as_str()).collect())
        .unwrap_or_default();
    if let Some(blocks) = outcome.blocks {
        if texts.len() != blocks {
            problems.push(format!("{} content blocks, not {blocks}", texts.len()));
        }
    }
    for wanted in &outcome.text {
        if !texts.iter().any(|text| text.contains(wanted.as_str())) {
            problems.push(format!("no content block contains {wanted:?}"));
        }
    }
    for (pointer, value) in &outcome.structured {
        let found = result["structuredContent"].pointer(pointer);
        if found != Some(value) {
            problems.push(format!(
                "structuredContent{pointer} is {found:?}, not {value}"
            ));
        }
    }
    problems
}

/// `server` over stdio for alice, as `common::shipped_server` starts it, with `env` besides.
fn start_server(
    root: &std::path::Path,
    server: &str,
    credentials: &Value,
    upstream_url: &str,
    env: &BTreeMap<String, String>,
) -> StdioClient {
    let saved = root.join("local_auth/credentials").join(server);
    std::fs::create_dir_all(&saved).expect("a temp folder");
    std::fs::write(
        saved.join("alice_credentials.json"),
        credentials.to_string(),
    )
    .expect("a temp file");
    let config = root.join("gumcp.toml");
    std::fs::write(
        &config,
        format!(
            "[servers]\ndir = \"{}\"\n[servers.base_urls]\n{server} = \"{upstream_url}\"\n\
             [auth]\nlocal_dir = \"local_auth\"\n",
            concat!(env!("CARGO_MANIFEST_DIR"), "/servers"),
        ),
    )
    .expect("a temp file");
    let config = config.to_string_lossy().into_owned();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    StdioClient::start_with_env(
        &[
            "--config",
            &config,
            "stdio",
            "--server",
            server,
            "--user-id",
            "alice",
        ],
        &env,
    )
}

/// The arguments with `{upstream}` in their texts replaced by the mock's URL (a file to fetch).
fn with_upstream(arguments: &Value, upstream: &str) -> Value {
    match arguments {
        Value::String(text) => Value::String(text.replace("{upstream}", upstream)),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| with_upstream(v, upstream)).collect())
        }
        Value::Object(object) => Value::Object(
            object
                .iter()
                .map(|(key, value)| (key.clone(), with_upstream(value, upstream)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A query value with `{date:-N}` in it: the date N days before today (UTC), as a server
/// that reads windows back from today writes it (`TxnDate >= '{date:-180}'`).
fn with_dates(value: &Value) -> Value {
    let Value::String(text) = value else {
        return value.clone();
    };
    let mut filled = text.clone();
    while let Some(start) = filled.find("{date:-") {
        let Some(length) = filled[start..].find('}') else {
            break;
        };
        let days: i64 = filled[start + 7..start + length]
            .parse()
            .expect("{date:-N} with N days");
        let day = chrono::Utc::now().date_naive() - chrono::Duration::days(days);
        filled.replace_range(start..start + length + 1, &day.to_string());
    }
    Value::String(filled)
}

async fn run_fixtures(server: &str) {
    let file = read_fixtures(server);
    let upstream = MockServer::start().await;
    let script = ScriptedUpstream::default();
    Mock::given(wiremock::matchers::any())
        .respond_with(script.clone())
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().expect("a temp folder");
    for (path, text) in &file.files {
        let path = root.path().join(path);
        std::fs::create_dir_all(path.parent().expect("a file in a folder")).expect("a folder");
        std::fs::write(path, text).expect("a temp file");
    }
    let root_text = root.path().to_string_lossy().into_owned();
    let env: BTreeMap<String, String> = file
        .env
        .iter()
        .map(|(key, value)| (key.clone(), value.replace("{root}", &root_text)))
        .collect();
    let credentials = file.credentials.clone().unwrap_or_else(|| json!({}));
    let base_url = format!("{}{}", upstream.uri(), file.base_path);
    let mut client = start_server(root.path(), server, &credentials, &base_url, &env);

    let listed = listed_tools(&mut client).await;
    let mut problems = compare_with_gumcp(&listed, &gumcp_tools(server));
    for tool in &listed {
        let name = tool["name"].as_str().unwrap_or_default();
        if !file.fixtures.iter().any(|fixture| fixture.tool == name) {
            problems.push(format!("{name} has no fixture"));
        }
    }
    for (number, fixture) in file.fixtures.iter().enumerate() {
        {
            let mut script = script.0.lock().expect("the script lock");
            script.authorization = file.authorization.clone();
            // An answer may name the mock itself (a download URL): `{upstream}`.
            script.pending = fixture
                .upstream
                .iter()
                .cloned()
                .map(|mut expected| {
                    expected.answer = expected
                        .answer
                        .map(|answer| with_upstream(&answer, &upstream.uri()));
                    for value in expected.query.values_mut() {
                        *value = with_dates(value);
                    }
                    expected
                })
                .collect();
            script.mismatches.clear();
        }
        let id = 100 + i64::try_from(number).unwrap_or(0);
        let arguments = with_upstream(&fixture.arguments, &upstream.uri());
        let reply = client
            .request(
                id,
                "tools/call",
                json!({ "name": fixture.tool, "arguments": arguments, "_meta": modern_meta() }),
            )
            .await;
        let at = format!("{server} fixture #{} ({})", number + 1, fixture.tool);
        let Some(result) = reply.get("result") else {
            problems.push(format!("{at}: no result: {reply}"));
            continue;
        };
        let script = script.0.lock().expect("the script lock");
        for mismatch in &script.mismatches {
            problems.push(format!("{at}: {mismatch}"));
        }
        for left in &script.pending {
            problems.push(format!(
                "{at}: {} {} was never requested",
                left.method, left.path
            ));
        }
        for problem in check_outcome(result, &fixture.expect) {
            problems.push(format!("{at}: {problem}; the result: {result}"));
        }
        for (path, text) in &fixture.expect.files {
            let written = std::fs::read_to_string(root.path().join(path)).ok();
            if written.as_deref() != Some(text.as_str()) {
                problems.push(format!("{at}: file {path} holds {written:?}, not {text:?}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

macro_rules! fixtures {
    ($($server:ident),* $(,)?) => {
        /// Every server with fixtures.
        const SERVERS: &[&str] = &[$(stringify!($server)),*];

        $(
            #[tokio::test]
            async fn $server() {
                run_fixtures(stringify!($server)).await;
            }
        )*
    };
}

/// `gumcp-actors servers` names every server with fixtures, with no manifest problems: they
/// are built in (no servers folder is configured).
#[test]
fn the_servers_command_lists_them() {
    let home = tempfile::tempdir().expect("a temp folder");
    let output = std::process::Command::new(common::binary())
        .arg("servers")
        .current_dir(home.path())
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path())
        .env("XDG_DATA_HOME", home.path())
        .env_remove("GUMCP_CONFIG")
        .output()
        .expect("the binary runs");
    let listed = String::from_utf8_lossy(&output.stdout);
    for server in SERVERS {
        let line = listed
            .lines()
            .find(|line| line.split_whitespace().next() == Some(server));
        assert!(line.is_some(), "{server} is not listed:\n{listed}");
    }
    assert!(!listed.contains("skipped"), "{listed}");
}

fixtures!(
    hackernews,
    perplexity,
    youtube,
    gmeet,
    gdocs,
    gdrive,
    outlook,
    onedrive,
    word,
    sendgrid,
    serpapi,
    browserbase,
    hunter_io,
    loops,
    cal,
    apollo,
    mailerlite,
    typeform,
    calendly,
    pagerduty,
    zoom,
    dropbox,
    clickup,
    airtable,
    monday,
    figma,
    reddit,
    x,
    patreon,
    canva,
    webflow,
    excel,
    teams,
    sharepoint,
    jira,
    hubspot,
    stripe,
    intercom,
    attio,
    klaviyo,
    zendesk,
    salesforce,
    mailchimp,
    paypal,
    shopify,
    docusign,
    quickbooks,
    firecrawl,
    apify,
    reducto,
    gmaps,
    instacart,
    lemlist,
    ahrefs,
    discourse,
    posthog,
    twilio,
    snowflake,
    bluesky,
);
