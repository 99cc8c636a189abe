//! One upstream request of an `http` tool: the URL from the path template, the query and body
//! from the arguments, the credentials where the auth kind puts them, and the answer (or why
//! there is none).

use std::collections::BTreeMap;
use tracing::Instrument;

use percent_encoding::utf8_percent_encode;
use reqwest::{StatusCode, Url};
use rmcp::model::JsonObject;
use serde_json::Value;

use super::spec::{
    fill_template, header_value, query_value, BodyErrors, BodyKind, HttpTool, JobRequest, Method,
};
use super::Upstream;
use crate::servers::kit::SEGMENT;
use crate::servers::manifest::{AuthSpec, Inject};
use crate::upstream::{read_capped, ReadError};

/// Why an upstream call produced no answer.
#[derive(Debug)]
pub enum Failure {
    Unauthorized,
    Status {
        status: u16,
        message: String,
    },
    RateLimited {
        retry_after: Option<u64>,
    },
    Unavailable {
        status: u16,
    },
    TimedOut,
    Unreachable(String),
    NotJson,
    /// The answer is over `servers.max_response_bytes` (this many bytes).
    TooLarge {
        limit: usize,
    },
    BadArgument(String),
}

/// An upstream's base URL, parsed once per instance: each request then sets only its path
/// rather than having reqwest parse the whole URL again (host and IDNA checks on every call).
pub struct BaseUrl {
    /// Without a trailing `/`: a next-page link must start with this and a `/`.
    text: String,
    parsed: Option<Url>,
}

impl BaseUrl {
    pub fn new(text: &str) -> BaseUrl {
        let text = text.trim_end_matches('/').to_owned();
        let parsed = Url::parse(&text).ok().filter(|url| !url.cannot_be_a_base());
        BaseUrl { text, parsed }
    }

    /// This base with `prefix` (a path) after it.
    pub fn under(&self, prefix: &str) -> BaseUrl {
        BaseUrl::new(&format!("{}{prefix}", self.text))
    }

    /// The base joined with `path` (a filled template): the parsed base with its path extended,
    /// or — for a base that did not parse, or a template that writes its own query or fragment —
    /// the joined text, which reqwest parses (and refuses, if it must).
    fn join(&self, path: &str) -> Result<Url, Failure> {
        match &self.parsed {
            Some(base) if !path.contains(['?', '#']) => {
                let mut url = base.clone();
                let joined = format!("{}{path}", base.path().trim_end_matches('/'));
                url.set_path(&joined);
                Ok(url)
            }
            _ => Url::parse(&format!("{}{path}", self.text)).map_err(|err| {
                Failure::Unreachable(format!("the upstream's URL is not valid ({err})"))
            }),
        }
    }
}

/// Everything one request is built from.
pub struct Request<'a> {
    pub base_url: &'a BaseUrl,
    pub server_headers: &'a BTreeMap<String, String>,
    pub tool: &'a HttpTool,
    pub arguments: &'a JsonObject,
    pub auth: &'a AuthSpec,
    pub body_errors: &'a BodyErrors,
}

/// Which request of a tool: its own, one of its further pages, or an `each` follow-up.
#[derive(Debug, Clone, Copy)]
pub enum Page<'a> {
    First,
    /// The tool's request again with `param=cursor` added.
    Cursor(&'a str, &'a str),
    /// A next-page URL the upstream named (under the base URL only).
    Url(&'a str),
    Item(&'a Value),
    /// A request about the job the tool started (its status, its cancellation): `{id}` in
    /// the path is the job's id.
    Job(&'a JobRequest, &'a str),
}

/// A successful answer and, if the upstream named one, the URL of its next page.
pub struct Answer {
    pub body: Value,
    pub next_link: Option<String>,
}

/// An argument as text for a URL or header: strings as they are, numbers and booleans printed.
fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// An argument as a query value: as [`as_text`], and a list of such values joined with commas
/// (`fields=a,b`: Typeform's and most APIs' way of taking several values in one parameter).
fn query_text(value: &Value) -> Option<String> {
    match value {
        Value::Array(items) => items
            .iter()
            .map(as_text)
            .collect::<Option<Vec<String>>>()
            .map(|texts| texts.join(",")),
        other => as_text(other),
    }
}

/// Fills `{name}` placeholders, each value encoded as one path segment (so an argument can
/// never add segments or a query of its own). `.` and `..` are refused: URL parsers resolve
/// them (even percent-encoded), which would move the request to another path. A `%` of the
/// template that starts no escape is written as `%25`, so an argument can never complete an
/// escape (`/%{a}` given `2F` is not a `/`, given `2e` not a dot segment).
///
/// Public (hidden from the docs) only so the `http_template` fuzz target in `fuzz/` can check
/// these promises.
#[doc(hidden)]
pub fn fill(template: &str, value_of: impl Fn(&str) -> Option<String>) -> Result<String, Failure> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        push_literal(&mut out, &rest[..open]);
        match rest[open..].find('}') {
            Some(close) => {
                let name = &rest[open + 1..open + close];
                let value = value_of(name).unwrap_or_default();
                if value == "." || value == ".." {
                    return Err(Failure::BadArgument(format!("{name} cannot be {value:?}")));
                }
                out.extend(utf8_percent_encode(&value, SEGMENT));
                rest = &rest[open + close + 1..];
            }
            None => {
                push_literal(&mut out, &rest[open..]);
                rest = "";
            }
        }
    }
    push_literal(&mut out, rest);
    Ok(out)
}

/// Template text as it is, but a `%` not followed by two hex digits becomes `%25`.
fn push_literal(out: &mut String, text: &str) {
    let mut rest = text;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let escape = rest.as_bytes().get(at + 1..at + 3);
        if escape.is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)) {
            out.push('%');
        } else {
            out.push_str("%25");
        }
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
}

fn transport_failure(err: reqwest::Error) -> Failure {
    if err.is_timeout() {
        Failure::TimedOut
    } else {
        Failure::Unreachable(err.without_url().to_string())
    }
}

fn read_failure(err: ReadError) -> Failure {
    match err {
        ReadError::TooLarge { limit } => Failure::TooLarge { limit },
        ReadError::Cut(err) => transport_failure(err),
    }
}

/// Sends one request of the tool (see [`Page`]).
pub async fn send(
    upstream: &Upstream,
    request: &Request<'_>,
    page: Page<'_>,
    secret: Option<&str>,
) -> Result<Answer, Failure> {
    exchange(
        upstream,
        || build(upstream, request, page, secret),
        |body| failure_in_body(body, request),
    )
    .await
}

/// Puts `secret` where the auth spec says it goes.
pub fn authorize(
    builder: reqwest::RequestBuilder,
    query: &mut Vec<(String, String)>,
    auth: &AuthSpec,
    secret: &str,
) -> reqwest::RequestBuilder {
    match auth.inject.clone().unwrap_or(Inject::Bearer) {
        Inject::Bearer => builder.bearer_auth(secret),
        Inject::Header(name) => builder.header(name, secret),
        Inject::Query(name) => {
            query.push((name, secret.to_owned()));
            builder
        }
        Inject::Basic => builder.basic_auth(secret, Option::<&str>::None),
        Inject::BasicPassword => builder.basic_auth("", Some(secret)),
        // `secret_of` joined the two fields with the first `:`; a user name holds none.
        Inject::BasicFields { .. } => match secret.split_once(':') {
            Some((user, password)) => builder.basic_auth(user, Some(password)),
            None => builder.basic_auth(secret, Option::<&str>::None),
        },
    }
}

/// Sends one request upstream in a span of its own (`upstream.request`: server, method, status,
/// duration), with the current W3C trace context, and counts it by status class.
async fn traced_send(
    upstream: &Upstream,
    builder: reqwest::RequestBuilder,
) -> Result<reqwest::Response, Failure> {
    let span = tracing::info_span!(
        "upstream.request",
        server = %upstream.server,
        http.method = tracing::field::Empty,
        http.status_code = tracing::field::Empty,
        duration_ms = tracing::field::Empty,
    );
    let started = std::time::Instant::now();
    let sent = async {
        let mut builder = builder;
        for (name, value) in crate::telemetry::current_trace_headers() {
            builder = builder.header(name, value);
        }
        let request = builder.build().map_err(transport_failure)?;
        tracing::Span::current().record("http.method", request.method().as_str());
        upstream
            .client
            .execute(request)
            .await
            .map_err(transport_failure)
    }
    .instrument(span.clone())
    .await;
    let status = sent
        .as_ref()
        .ok()
        .map(|response| response.status().as_u16());
    let elapsed = started.elapsed();
    if let Some(status) = status {
        span.record("http.status_code", status);
    }
    span.record("duration_ms", elapsed.as_secs_f64() * 1000.0);
    upstream
        .metrics
        .upstream_request(&upstream.server, status, elapsed);
    sent
}

/// A successful answer as it came: its bytes and their type (a file, an export).
pub struct RawAnswer {
    pub status: u16,
    pub bytes: Vec<u8>,
    pub content_type: Option<String>,
    pub next_link: Option<String>,
}

/// Sends the request `make` builds (again, after waiting out a short `Retry-After` once) and
/// reads its JSON answer, or says why there is none; `body_failure` finds failures an
/// upstream reports inside a 200 answer.
pub async fn exchange(
    upstream: &Upstream,
    make: impl Fn() -> Result<reqwest::RequestBuilder, Failure>,
    body_failure: impl Fn(&Value) -> Option<String>,
) -> Result<Answer, Failure> {
    let raw = exchange_raw(upstream, make).await?;
    json_answer(raw, body_failure)
}

/// A raw answer's JSON (`null` for an empty body), or the failure it reports.
pub fn json_answer(
    raw: RawAnswer,
    body_failure: impl Fn(&Value) -> Option<String>,
) -> Result<Answer, Failure> {
    if raw.bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Answer {
            body: Value::Null,
            next_link: None,
        });
    }
    let body: Value = serde_json::from_slice(&raw.bytes).map_err(|_| Failure::NotJson)?;
    if let Some(message) = body_failure(&body) {
        return Err(Failure::Status {
            status: raw.status,
            message,
        });
    }
    Ok(Answer {
        body,
        next_link: raw.next_link,
    })
}

/// [`exchange`] without reading the answer as JSON: the bytes of a successful answer.
pub async fn exchange_raw(
    upstream: &Upstream,
    make: impl Fn() -> Result<reqwest::RequestBuilder, Failure>,
) -> Result<RawAnswer, Failure> {
    let mut retried_after_wait = false;
    loop {
        let response = traced_send(upstream, make()?).await?;
        let status = response.status();
        let next_link = next_link(response.headers());
        if status == StatusCode::TOO_MANY_REQUESTS {
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            let short = retry_after.is_some_and(|secs| secs <= upstream.max_retry_wait.as_secs());
            if short && !retried_after_wait {
                retried_after_wait = true;
                tokio::time::sleep(std::time::Duration::from_secs(retry_after.unwrap_or(0))).await;
                continue;
            }
            return Err(Failure::RateLimited { retry_after });
        }
        if status == StatusCode::UNAUTHORIZED {
            return Err(Failure::Unauthorized);
        }
        if status.is_server_error() {
            return Err(Failure::Unavailable {
                status: status.as_u16(),
            });
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let bytes = read_capped(response, upstream.max_response_bytes)
            .await
            .map_err(read_failure)?;
        if !status.is_success() {
            return Err(Failure::Status {
                status: status.as_u16(),
                message: upstream_message(&bytes),
            });
        }
        return Ok(RawAnswer {
            status: status.as_u16(),
            bytes,
            content_type,
            next_link,
        });
    }
}

/// A failure an upstream reported inside a 200 answer: the configured success flag being
/// `false` or status not being one of the good ones, or GraphQL `errors`.
fn failure_in_body(body: &Value, request: &Request<'_>) -> Option<String> {
    if let Some(failure) = request.body_errors.failure(body) {
        return Some(failure);
    }
    if request.tool.body_kind() == BodyKind::Graphql {
        let first = body.pointer("/errors/0")?;
        return Some(
            first
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("the query failed")
                .to_owned(),
        );
    }
    None
}

/// The `rel="next"` URL of a `Link` header.
fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    let link = headers.get(reqwest::header::LINK)?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|param| param.trim() == "rel=\"next\"")
            .then(|| {
                url.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_owned()
            })
    })
}

/// Whether the declared headers set `Accept` themselves (GitHub's
/// `application/vnd.github+json`); the default `application/json` is then left out rather than
/// sent beside it.
pub fn names_accept<'a>(mut names: impl Iterator<Item = &'a String>) -> bool {
    names.any(|name| name.eq_ignore_ascii_case("accept"))
}

fn method_of(method: Method) -> reqwest::Method {
    match method {
        Method::Get => reqwest::Method::GET,
        Method::Post => reqwest::Method::POST,
        Method::Put => reqwest::Method::PUT,
        Method::Patch => reqwest::Method::PATCH,
        Method::Delete => reqwest::Method::DELETE,
    }
}

pub(super) fn build(
    upstream: &Upstream,
    request: &Request<'_>,
    page: Page<'_>,
    secret: Option<&str>,
) -> Result<reqwest::RequestBuilder, Failure> {
    let tool = request.tool;
    let arguments = request.arguments;
    let base = request.base_url;
    let (method, url) = match (page, &tool.each) {
        (Page::Item(id), Some(each)) => (
            reqwest::Method::GET,
            base.join(&fill(&each.path, |_| as_text(id))?)?,
        ),
        (Page::Job(job, id), _) => (
            method_of(job.method),
            base.join(&fill(&job.path, |_| Some(id.to_owned()))?)?,
        ),
        (Page::Url(url), _) => {
            // A next-page link goes only where the credentials are meant to go.
            let under_base = url
                .strip_prefix(base.text.as_str())
                .is_some_and(|rest| rest.starts_with('/'));
            if !under_base {
                return Err(Failure::Unreachable(
                    "the next page is on another host; not following it".to_owned(),
                ));
            }
            let url = Url::parse(url).map_err(|_| {
                Failure::Unreachable("the upstream named a next page that is no URL".to_owned())
            })?;
            (reqwest::Method::GET, url)
        }
        _ => (
            method_of(tool.method),
            base.join(&fill(&tool.path, |name| {
                arguments.get(name).and_then(as_text)
            })?)?,
        ),
    };
    let own_request = matches!(page, Page::First | Page::Cursor(..));
    let mut builder = upstream.client.request(method, url);
    if !names_accept(request.server_headers.keys().chain(tool.headers.keys())) {
        builder = builder.header(reqwest::header::ACCEPT, "application/json");
    }
    for (name, value) in request.server_headers {
        builder = builder.header(name, value);
    }
    for (name, value) in &tool.headers {
        if let Some(value) = header_value(value, arguments, as_text) {
            builder = builder.header(name, value);
        }
    }
    let mut query: Vec<(String, String)> = Vec::new();
    if own_request {
        for (param, entry) in &tool.query {
            // A further page carries the upstream's cursor, not the one the caller started at.
            if matches!(page, Page::Cursor(cursor_param, _) if cursor_param == param) {
                continue;
            }
            match arguments.get(entry) {
                // `name[]`: a list as the parameter repeated, one value each (PagerDuty).
                Some(Value::Array(items)) if param.ends_with("[]") => query.extend(
                    items
                        .iter()
                        .filter_map(as_text)
                        .map(|item| (param.clone(), item)),
                ),
                // `name[*]`: an object as one parameter per key, `name[key]=value` (JSON:API's
                // sparse fieldsets: Patreon's `fields[post]=title,url`).
                Some(Value::Object(entries)) if param.ends_with("[*]") => {
                    let stem = &param[..param.len() - "[*]".len()];
                    query.extend(entries.iter().filter_map(|(key, value)| {
                        Some((format!("{stem}[{key}]"), query_text(value)?))
                    }))
                }
                _ => query.extend(
                    query_value(entry, arguments, query_text).map(|value| (param.clone(), value)),
                ),
            }
        }
        if let Some(bounds) = tool.pagination.as_ref().map(|p| p.bounds()) {
            if let Some(param) = bounds.page_size_param {
                if !query.iter().any(|(name, _)| name == param) {
                    query.push((
                        param.to_owned(),
                        bounds.page_size_for(arguments).to_string(),
                    ));
                }
            }
        }
    }
    if let Page::Cursor(param, cursor) = page {
        query.push((param.to_owned(), cursor.to_owned()));
    }
    if let Some(secret) = secret {
        builder = authorize(builder, &mut query, request.auth, secret);
    }
    if !query.is_empty() {
        builder = builder.query(&query);
    }
    if own_request {
        builder = with_body(builder, tool, arguments);
    } else if let Page::Job(job, _) = page {
        if matches!(job.method, Method::Post | Method::Put | Method::Patch) {
            builder = builder.header(reqwest::header::CONTENT_LENGTH, "0");
        }
    }
    Ok(builder.timeout(upstream.timeout))
}

/// The arguments not used by the path or the query (or those `body_args` lists), as the
/// tool's body kind says.
fn with_body(
    builder: reqwest::RequestBuilder,
    tool: &HttpTool,
    arguments: &JsonObject,
) -> reqwest::RequestBuilder {
    let used: Vec<String> = tool
        .path_args()
        .into_iter()
        .chain(tool.query_args())
        .chain(tool.header_args())
        .collect();
    let body_args: JsonObject = arguments
        .iter()
        .filter(|(name, _)| match &tool.body_args {
            Some(listed) => listed.contains(name),
            None => !used.contains(name),
        })
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    if let Some(template) = &tool.body_template {
        let body = fill_template(template, arguments).unwrap_or(Value::Null);
        return match tool.body_kind() {
            BodyKind::Form => builder.form(&form_fields(&body)),
            _ => builder.json(&body),
        };
    }
    match tool.body_kind() {
        // A method that defines a body says it sends none: `Content-Length: 0` (RFC 9110
        // §8.6; GitHub asks for it on bodiless PUTs such as starring). hyper writes no length
        // for an empty body by itself.
        BodyKind::None if matches!(tool.method, Method::Post | Method::Put | Method::Patch) => {
            builder.header(reqwest::header::CONTENT_LENGTH, "0")
        }
        BodyKind::None => builder,
        BodyKind::Json => builder.json(&body_args),
        BodyKind::Graphql => builder.json(&serde_json::json!({
            "query": tool.graphql.as_deref().unwrap_or_default(),
            "variables": body_args,
        })),
        BodyKind::Form => builder.form(&form_fields(&Value::Object(body_args))),
    }
}

/// An object as form fields, nested values in brackets as Stripe and Rails-style APIs take
/// them (`metadata[plan]=pro`, `items[0][price]=price_1`); null values, empty objects and
/// empty lists send nothing.
pub fn form_fields(body: &Value) -> Vec<(String, String)> {
    fn flatten(name: String, value: &Value, fields: &mut Vec<(String, String)>) {
        match value {
            Value::Object(object) => object
                .iter()
                .for_each(|(key, item)| flatten(format!("{name}[{key}]"), item, fields)),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .for_each(|(at, item)| flatten(format!("{name}[{at}]"), item, fields)),
            other => fields.extend(as_text(other).map(|text| (name, text))),
        }
    }
    let mut fields = Vec::new();
    if let Value::Object(object) = body {
        for (key, value) in object {
            flatten(key.clone(), value, &mut fields);
        }
    }
    fields
}

/// The upstream's own explanation, from the common error shapes, else the start of the body.
fn upstream_message(bytes: &[u8]) -> String {
    let parsed: Option<Value> = serde_json::from_slice(bytes).ok();
    let found = parsed.as_ref().and_then(|body| {
        [
            "/message",
            "/error/message",
            "/error_description",
            "/error",
            "/errors/0/message",
            "/errors/0/detail",
            // Discourse's `{"errors": ["Title is too short"], "error_type": …}`.
            "/errors/0",
            "/detail",
            // Jira's `{"errorMessages": [...], "errors": {...}}`.
            "/errorMessages/0",
        ]
        .iter()
        .find_map(|pointer| body.pointer(pointer).and_then(Value::as_str))
        .map(str::to_owned)
    });
    found.unwrap_or_else(|| {
        let text = String::from_utf8_lossy(bytes);
        let trimmed: String = text.trim().chars().take(200).collect();
        if trimmed.is_empty() {
            "no details given".to_owned()
        } else {
            trimmed
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn arguments_cannot_break_out_of_their_path_segment() {
        let args = json!({ "owner": "../../admin", "repo": "a/b?x=1#f" });
        let filled = fill("/repos/{owner}/{repo}/issues", |name| {
            args.get(name).and_then(as_text)
        });
        assert_eq!(
            filled.unwrap(),
            "/repos/..%2F..%2Fadmin/a%2Fb%3Fx%3D1%23f/issues"
        );
        for dots in [".", ".."] {
            assert!(fill("/users/{u}", |_| Some(dots.to_owned())).is_err());
        }
    }

    /// Found by the `http_template` fuzz target: a `%` of the template followed by an
    /// argument made an escape of the argument's text (`%` + `2e` read as a dot).
    #[test]
    fn an_argument_cannot_complete_an_escape_of_the_template() {
        let value = |text: &'static str| move |_: &str| Some(text.to_owned());
        assert_eq!(fill("/x/%{a}", value("2e")).unwrap(), "/x/%252e");
        assert_eq!(fill("/x/%2{a}", value("F")).unwrap(), "/x/%252F");
        assert_eq!(fill("/x/%2F/{a}%", value("b")).unwrap(), "/x/%2F/b%25");
        // The input the fuzzer found (fuzz/corpus/http_template/crash-percent-escape).
        let found = fill("/}/%{@%2E%%2E\u{3}%2E{%\u{3}?}", value("2e")).unwrap();
        assert_eq!(found, "/}/%252e");
    }

    /// Setting the path on the parsed base gives the URL that parsing `base + path` gave.
    #[test]
    fn a_joined_url_is_the_parsed_concatenation() {
        let filled = fill("/repos/{owner}/{name}", |name| match name {
            "owner" => Some("a b".to_owned()),
            _ => Some("ü/%2e?#".to_owned()),
        })
        .unwrap();
        for base in [
            "https://api.example",
            "https://api.example/",
            "https://hacker-news.firebaseio.com/v0",
            "http://127.0.0.1:8080/v1/",
            "https://Api.EXAMPLE:443/base%20path",
        ] {
            let joined = BaseUrl::new(base).join(&filled).unwrap();
            let parsed = Url::parse(&format!("{}{filled}", base.trim_end_matches('/'))).unwrap();
            assert_eq!(joined, parsed, "{base}");
        }
        let with_query = BaseUrl::new("https://api.example/v2")
            .join("/search?q=x")
            .unwrap();
        assert_eq!(with_query.as_str(), "https://api.example/v2/search?q=x");
        assert!(BaseUrl::new("not a url").join("/x").is_err());
    }

    #[test]
    fn a_list_argument_is_one_comma_separated_query_value() {
        assert_eq!(query_text(&json!(["a", "b", 3])), Some("a,b,3".to_owned()));
        assert_eq!(query_text(&json!("a,b")), Some("a,b".to_owned()));
        assert_eq!(query_text(&json!([{ "nested": 1 }])), None);
    }

    #[test]
    fn nested_values_become_bracketed_form_fields() {
        let body = json!({
            "customer": "cus_1",
            "items": [{ "price": "price_1", "quantity": 2 }],
            "metadata": { "plan": "pro", "gone": null },
            "off_session": true,
            "tags": [],
            "none": null,
        });
        let sent = form_fields(&body);
        let sent: Vec<(&str, &str)> = sent.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            sent,
            [
                ("customer", "cus_1"),
                ("items[0][price]", "price_1"),
                ("items[0][quantity]", "2"),
                ("metadata[plan]", "pro"),
                ("off_session", "true"),
            ]
        );
        assert!(form_fields(&json!("not an object")).is_empty());
    }

    #[test]
    fn upstream_messages_are_found_in_common_shapes() {
        assert_eq!(upstream_message(br#"{"message":"Not Found"}"#), "Not Found");
        assert_eq!(
            upstream_message(br#"{"ok":false,"error":"channel_not_found"}"#),
            "channel_not_found"
        );
        // JSON:API (Patreon) and RFC 7807 problems (X).
        assert_eq!(
            upstream_message(
                br#"{"errors":[{"code":1,"detail":"Campaign not found","title":"x"}]}"#
            ),
            "Campaign not found"
        );
        assert_eq!(
            upstream_message(
                br#"{"title":"Unauthorized","detail":"Unauthorized","type":"about:blank"}"#
            ),
            "Unauthorized"
        );
        assert_eq!(
            upstream_message(br#"{"errors":["Title is too short"],"error_type":"x"}"#),
            "Title is too short"
        );
        assert_eq!(
            upstream_message(b"<html>gateway</html>"),
            "<html>gateway</html>"
        );
    }
}
