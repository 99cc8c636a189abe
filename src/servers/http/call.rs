//! One upstream request of an `http` tool: the URL from the path template, the query and body
//! from the arguments, the credentials where the auth kind puts them, and the answer (or why
//! there is none).

use std::collections::BTreeMap;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::StatusCode;
use rmcp::model::JsonObject;
use serde_json::Value;

use super::spec::{BodyKind, HttpTool, Method};
use super::Upstream;
use crate::servers::manifest::{AuthKind, AuthSpec, Inject};

/// Why an upstream call produced no answer.
#[derive(Debug)]
pub enum Failure {
    Unauthorized,
    Status { status: u16, message: String },
    RateLimited { retry_after: Option<u64> },
    Unavailable { status: u16 },
    TimedOut,
    Unreachable(String),
    NotJson,
    BadArgument(String),
}

/// Everything one request is built from.
pub struct Request<'a> {
    pub base_url: &'a str,
    pub server_headers: &'a BTreeMap<String, String>,
    pub tool: &'a HttpTool,
    pub arguments: &'a JsonObject,
    pub auth: &'a AuthSpec,
}

/// Characters left alone in a path segment (RFC 3986 unreserved).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// An argument as text for a URL or header: strings as they are, numbers and booleans printed.
fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// Fills `{name}` placeholders, each value encoded as one path segment (so an argument can
/// never add segments or a query of its own). `.` and `..` are refused: URL parsers resolve
/// them (even percent-encoded), which would move the request to another path.
fn fill(template: &str, value_of: impl Fn(&str) -> Option<String>) -> Result<String, Failure> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
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
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Sends the tool's request — or, with `item`, its `each` follow-up for that id.
pub async fn send(
    upstream: &Upstream,
    request: &Request<'_>,
    item: Option<&Value>,
    secret: Option<&str>,
) -> Result<Value, Failure> {
    let mut retried_after_wait = false;
    loop {
        let response = build(upstream, request, item, secret)?
            .send()
            .await
            .map_err(|err| {
                if err.is_timeout() {
                    Failure::TimedOut
                } else {
                    Failure::Unreachable(err.without_url().to_string())
                }
            })?;
        let status = response.status();
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
        let bytes = response.bytes().await.map_err(|err| {
            if err.is_timeout() {
                Failure::TimedOut
            } else {
                Failure::Unreachable(err.without_url().to_string())
            }
        })?;
        if !status.is_success() {
            return Err(Failure::Status {
                status: status.as_u16(),
                message: upstream_message(&bytes),
            });
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        return serde_json::from_slice(&bytes).map_err(|_| Failure::NotJson);
    }
}

fn build(
    upstream: &Upstream,
    request: &Request<'_>,
    item: Option<&Value>,
    secret: Option<&str>,
) -> Result<reqwest::RequestBuilder, Failure> {
    let tool = request.tool;
    let arguments = request.arguments;
    let (method, path) = match (item, &tool.each) {
        (Some(id), Some(each)) => (reqwest::Method::GET, fill(&each.path, |_| as_text(id))?),
        _ => (
            match tool.method {
                Method::Get => reqwest::Method::GET,
                Method::Post => reqwest::Method::POST,
                Method::Put => reqwest::Method::PUT,
                Method::Patch => reqwest::Method::PATCH,
                Method::Delete => reqwest::Method::DELETE,
            },
            fill(&tool.path, |name| arguments.get(name).and_then(as_text))?,
        ),
    };
    let mut builder = upstream
        .client
        .request(method, format!("{}{path}", request.base_url))
        .header(reqwest::header::ACCEPT, "application/json");
    for (name, value) in request.server_headers.iter().chain(&tool.headers) {
        builder = builder.header(name, value);
    }
    let mut query: Vec<(String, String)> = Vec::new();
    if item.is_none() {
        for (param, arg) in &tool.query {
            if let Some(value) = arguments.get(arg).and_then(as_text) {
                query.push((param.clone(), value));
            }
        }
    }
    if let Some(secret) = secret {
        let kind_default = match request.auth.kind {
            AuthKind::ApiKey | AuthKind::Oauth2 | AuthKind::None => Inject::Bearer,
        };
        match request.auth.inject.clone().unwrap_or(kind_default) {
            Inject::Bearer => builder = builder.bearer_auth(secret),
            Inject::Header(name) => builder = builder.header(name, secret),
            Inject::Query(name) => query.push((name, secret.to_owned())),
            Inject::Basic => builder = builder.basic_auth(secret, Option::<&str>::None),
        }
    }
    if !query.is_empty() {
        builder = builder.query(&query);
    }
    if item.is_none() {
        let used: Vec<String> = tool
            .path_args()
            .into_iter()
            .chain(tool.query.values().cloned())
            .collect();
        let body_args: JsonObject = arguments
            .iter()
            .filter(|(name, _)| match &tool.body_args {
                Some(listed) => listed.contains(name),
                None => !used.contains(name),
            })
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        builder = match tool.body_kind() {
            BodyKind::None => builder,
            BodyKind::Json => builder.json(&body_args),
            BodyKind::Form => {
                let form: Vec<(String, String)> = body_args
                    .iter()
                    .filter_map(|(name, value)| Some((name.clone(), as_text(value)?)))
                    .collect();
                builder.form(&form)
            }
        };
    }
    Ok(builder.timeout(upstream.timeout))
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

    #[test]
    fn upstream_messages_are_found_in_common_shapes() {
        assert_eq!(upstream_message(br#"{"message":"Not Found"}"#), "Not Found");
        assert_eq!(
            upstream_message(br#"{"ok":false,"error":"channel_not_found"}"#),
            "channel_not_found"
        );
        assert_eq!(
            upstream_message(b"<html>gateway</html>"),
            "<html>gateway</html>"
        );
    }
}
