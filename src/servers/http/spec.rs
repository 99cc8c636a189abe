//! The tools of an `http` server, as `servers/<name>/server.toml` declares them: each tool is
//! one call to the upstream API (method, path template, query, headers, body), optionally
//! followed by one call per id the first answered (`each`), and a projection of the answer.
//! Everything is checked when the manifest is loaded, so a broken tool never reaches a user.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// One declared tool.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpTool {
    pub name: String,
    pub description: String,
    #[serde(default)]
    pub method: Method,
    /// Path under the server's base URL; `{arg}` is replaced by that argument, URL-encoded.
    pub path: String,
    /// Query parameters: parameter name → argument name; left out when the argument is. A
    /// value with `{arg}` placeholders is a template instead (`"{date}T00:00:00Z"`), left out
    /// when an argument it uses is. Constant parameters are written in `path` (`?part=id`).
    /// A list argument goes comma-separated, or repeated when the parameter ends in `[]`; an
    /// object argument under a parameter ending in `[*]` becomes one parameter per key
    /// (`fields[*]` given `{"post": "title"}` sends `fields[post]=title`).
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// Headers sent with this tool's request (beside the server's own). A value with `{arg}`
    /// placeholders is a template (`From = "{email_from}"`), the header left out when an
    /// argument it uses is absent.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// How the remaining arguments travel. Default: `json` for POST/PUT/PATCH, none otherwise.
    pub body: Option<BodyKind>,
    /// The arguments that go in the body. Default: every argument not used by the path or
    /// the query.
    pub body_args: Option<Vec<String>>,
    /// Values used when the caller leaves an argument out.
    #[serde(default)]
    pub defaults: BTreeMap<String, Value>,
    /// The tool's JSON schema for its arguments (the same names guMCP's tool has).
    pub input_schema: Value,
    /// The answer is a list of ids: fetch each (at most `limit` of them) with this path.
    pub each: Option<Each>,
    /// What of the answer to return.
    #[serde(default)]
    pub result: Projection,
    /// For `body = "graphql"`: the query; the body arguments become its variables.
    pub graphql: Option<String>,
    /// A body shaped by the API rather than by the arguments (JSON, or form fields when
    /// `body = "form"`): `"{arg}"` stands for the argument's value (its JSON type kept), and
    /// drops out of its object or list when the argument is absent — the whole template may be
    /// one argument, an object that is the body; `{arg}` inside longer text is replaced by the
    /// argument as text. A member whose key ends in `?` is left out (the `?` is not sent) when
    /// it is an object none of whose arguments is given.
    pub body_template: Option<Value>,
    /// Following further pages of a list answer.
    pub pagination: Option<Pagination>,
    /// The request starts a job upstream (a crawl, a run, a parse): follow it to its end.
    pub poll: Option<Poll>,
    /// Whether the tool may run as a task the client polls (`forbidden`, `optional`,
    /// `required`): for calls that can take long enough to outlive a connection.
    #[serde(default)]
    pub task_support: crate::servers::TaskSupport,
}

/// How the job a tool's request started is followed (see [`super::poll`]): its status is
/// read at `path` — pauses growing from 250 ms to `interval_ms` — until it is one of `done`
/// (the answer is the start answer with the last status laid over it, then `result`) or of
/// `failed` (a tool error with the message at `message`), or until `max_wait_secs` have gone
/// by (the job is left running and the answer says so). Meanwhile each status is a progress
/// notification; a call cancelled while the job runs sends `cancel`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Poll {
    /// A JSON pointer to the job's id in the start answer (`/id`, `/data/id`).
    pub id: String,
    /// The status request's path; `{id}` is the job's id.
    pub path: String,
    /// A JSON pointer to the status text in a status answer.
    pub status: String,
    /// Statuses that mean the job is finished.
    pub done: Vec<String>,
    /// Statuses that mean the job failed or was stopped.
    #[serde(default)]
    pub failed: Vec<String>,
    /// A JSON pointer to the failure's reason in a status answer.
    pub message: Option<String>,
    /// JSON pointers to how much is done and of how much (pages crawled of pages found);
    /// without them, progress counts the polls.
    pub progress: Option<String>,
    pub total: Option<String>,
    /// The request that stops the job, sent when the call is cancelled before it ends.
    pub cancel: Option<JobRequest>,
    /// The longest pause between two status requests.
    #[serde(default = "default_poll_interval")]
    pub interval_ms: u64,
    /// How long the call follows the job before answering that it is still running.
    #[serde(default = "default_poll_wait")]
    pub max_wait_secs: u64,
}

/// One request about a job: `{id}` in its path is the job's id.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobRequest {
    #[serde(default)]
    pub method: Method,
    pub path: String,
}

fn default_poll_interval() -> u64 {
    5_000
}

fn default_poll_wait() -> u64 {
    300
}

impl Poll {
    fn check(&self) -> Result<(), String> {
        let pointers = [Some(&self.id), Some(&self.status)]
            .into_iter()
            .chain([&self.message, &self.progress, &self.total].map(Option::as_ref))
            .flatten();
        if let Some(bad) = pointers.into_iter().find(|p| !p.starts_with('/')) {
            return Err(format!("poll: {bad:?} must be a JSON pointer"));
        }
        let paths = std::iter::once(&self.path).chain(self.cancel.as_ref().map(|c| &c.path));
        for path in paths {
            if !path.starts_with('/') || placeholders(path) != ["id"] {
                return Err(format!(
                    "poll: path {path:?} must start with '/' and use {{id}} (and nothing else)"
                ));
            }
        }
        if self.done.is_empty() {
            return Err("poll.done must name at least one status".into());
        }
        if !(100..=60_000).contains(&self.interval_ms) || !(1..=3_600).contains(&self.max_wait_secs)
        {
            return Err(
                "poll.interval_ms must be within 100..=60000 and poll.max_wait_secs within 1..=3600"
                    .into(),
            );
        }
        Ok(())
    }
}

/// How a list answer continues on further pages. Pages are followed while the answer says
/// there are more, up to `max_pages` (or the `max_pages_arg` argument) and, with a
/// `limit_arg`, until that many items are in; their items (at `result.pick`) are concatenated.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "lowercase")]
pub enum Pagination {
    /// The answer holds the next cursor at `next` (a JSON pointer); it is sent back as the
    /// query parameter `param` (Slack, Notion-style).
    Cursor {
        param: String,
        next: String,
        #[serde(default = "default_max_pages")]
        max_pages: usize,
        max_pages_arg: Option<String>,
        limit_arg: Option<String>,
        page_size_param: Option<String>,
        #[serde(default = "default_page_size")]
        page_size: usize,
    },
    /// The `Link: <…>; rel="next"` header names the next page (GitHub).
    Link {
        #[serde(default = "default_max_pages")]
        max_pages: usize,
        max_pages_arg: Option<String>,
        limit_arg: Option<String>,
        page_size_param: Option<String>,
        #[serde(default = "default_page_size")]
        page_size: usize,
    },
}

/// The bounds of a [`Pagination`], whatever its kind.
#[derive(Debug, Clone, Copy)]
pub struct PageBounds<'a> {
    /// Pages followed at most (the first included).
    pub max_pages: usize,
    /// The argument that overrides `max_pages`.
    pub max_pages_arg: Option<&'a str>,
    /// The argument capping how many items are returned in all (guMCP's `max_limit`): no
    /// further page is asked for once that many are in, and the last page is cut there.
    pub limit_arg: Option<&'a str>,
    /// The query parameter that sets the page size (GitHub's `per_page`), sent with the tool's
    /// own request: `page_size`, or the limit when that is smaller.
    pub page_size_param: Option<&'a str>,
    pub page_size: usize,
}

impl Pagination {
    pub fn bounds(&self) -> PageBounds<'_> {
        match self {
            Pagination::Cursor {
                max_pages,
                max_pages_arg,
                limit_arg,
                page_size_param,
                page_size,
                ..
            }
            | Pagination::Link {
                max_pages,
                max_pages_arg,
                limit_arg,
                page_size_param,
                page_size,
            } => PageBounds {
                max_pages: *max_pages,
                max_pages_arg: max_pages_arg.as_deref(),
                limit_arg: limit_arg.as_deref(),
                page_size_param: page_size_param.as_deref(),
                page_size: *page_size,
            },
        }
    }
}

impl PageBounds<'_> {
    /// The item limit the arguments set, if the pagination has one.
    pub fn limit(&self, arguments: &serde_json::Map<String, Value>) -> Option<usize> {
        let arg = self.limit_arg?;
        arguments
            .get(arg)
            .and_then(Value::as_u64)
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// The page size to ask for: `page_size`, or the limit when smaller (at least 1).
    pub fn page_size_for(&self, arguments: &serde_json::Map<String, Value>) -> usize {
        self.limit(arguments)
            .map_or(self.page_size, |limit| limit.min(self.page_size))
            .max(1)
    }
}

fn default_max_pages() -> usize {
    5
}

fn default_page_size() -> usize {
    100
}

/// Upstreams that answer HTTP 200 for a failure and say so in the body (Slack's `ok: false`,
/// GraphQL's `errors`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BodyErrors {
    /// A JSON pointer to a boolean that is `false` on failure (Slack: `/ok`).
    pub success_flag: Option<String>,
    /// A JSON pointer to the failure's message (Slack: `/error`).
    pub message: Option<String>,
    /// A JSON pointer to a status text; any value but those of `ok_statuses` is a failure
    /// (Google Maps: `/status`, `OK` and `ZERO_RESULTS`).
    pub status: Option<String>,
    #[serde(default)]
    pub ok_statuses: Vec<String>,
}

impl BodyErrors {
    /// The failure a 200 answer reports, by its success flag or its status; native code checks
    /// its answers with it too.
    pub fn failure(&self, body: &Value) -> Option<String> {
        let message = || {
            self.message
                .as_deref()
                .and_then(|pointer| body.pointer(pointer))
                .and_then(Value::as_str)
        };
        if let Some(flag) = &self.success_flag {
            if body.pointer(flag) == Some(&Value::Bool(false)) {
                return Some(message().unwrap_or("the request failed").to_owned());
            }
        }
        let status = self
            .status
            .as_deref()
            .and_then(|pointer| body.pointer(pointer))
            .and_then(Value::as_str)?;
        if self.ok_statuses.iter().any(|ok| ok == status) {
            return None;
        }
        Some(match message() {
            Some(message) => format!("{status}: {message}"),
            None => status.to_owned(),
        })
    }
}

/// A prompt declared in the manifest: its messages are templates over its arguments.
/// `{name}` is replaced by the argument; a `[[ … ]]` part is left out when an argument it
/// uses is missing or empty.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptSpec {
    pub name: String,
    pub description: String,
    #[serde(default)]
    pub arguments: Vec<PromptArgumentSpec>,
    pub messages: Vec<PromptMessageSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptArgumentSpec {
    pub name: String,
    pub description: Option<String>,
    #[serde(default)]
    pub required: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptMessageSpec {
    /// `user` or `assistant` (MCP has no system role).
    pub role: String,
    pub text: String,
}

/// Fills a prompt template: `{name}` from `args`; `[[ … ]]` parts only when every argument
/// they use is present and non-empty.
pub fn render_prompt(template: &str, args: &BTreeMap<String, String>) -> String {
    let fill = |part: &str| -> String {
        substitute(part, |name| {
            args.get(name).filter(|value| !value.is_empty()).cloned()
        })
        .unwrap_or_default()
    };
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find("[[") {
        out.push_str(&fill(&rest[..open]));
        let Some(close) = rest[open..].find("]]") else {
            // An unclosed `[[` is text like any other.
            out.push_str(&fill(&rest[open..]));
            return out;
        };
        out.push_str(&fill(&rest[open + 2..open + close]));
        rest = &rest[open + close + 2..];
    }
    out.push_str(&fill(rest));
    out
}

/// Replaces every `{name}` of `template` in one pass, so a value is never searched for
/// placeholders itself; `None` when `value_of` has nothing for one of them. A `{` without a
/// closing `}` is kept as it is (as [`placeholders`] reads it).
fn substitute(template: &str, value_of: impl Fn(&str) -> Option<String>) -> Option<String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        out.push_str(&rest[..open]);
        out.push_str(&value_of(&rest[open + 1..open + close])?);
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    Some(out)
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    #[default]
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyKind {
    None,
    Json,
    /// `application/x-www-form-urlencoded`, nested values in brackets (`metadata[plan]=pro`).
    Form,
    /// `{"query": <graphql>, "variables": {…the body arguments…}}`.
    Graphql,
}

/// Follow-up calls, one per id in the first answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Each {
    /// Path of one item; `{item}` is the id.
    pub path: String,
    /// The argument that caps how many ids are followed.
    pub limit_arg: Option<String>,
    #[serde(default = "default_each_limit")]
    pub default_limit: usize,
    #[serde(default = "default_each_max")]
    pub max_limit: usize,
}

fn default_each_limit() -> usize {
    10
}

fn default_each_max() -> usize {
    30
}

/// Which part of the answer the tool returns.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Projection {
    /// A JSON pointer to the interesting part (e.g. `/items`); the whole answer when absent.
    pub pick: Option<String>,
    /// Keep only these fields of the (each) object; all fields when empty.
    #[serde(default)]
    pub fields: Vec<String>,
    /// What to answer when the upstream answers with no body (a DELETE's 204): a template over
    /// the arguments (`"File with ID {file_id} deleted successfully."`).
    pub empty: Option<String>,
}

impl HttpTool {
    /// The body kind in force.
    pub fn body_kind(&self) -> BodyKind {
        self.body.unwrap_or(match self.method {
            Method::Post | Method::Put | Method::Patch => BodyKind::Json,
            Method::Get | Method::Delete => BodyKind::None,
        })
    }

    /// The argument names the path template uses.
    pub fn path_args(&self) -> Vec<String> {
        placeholders(&self.path)
    }

    /// The argument names the query uses: the plain arguments and those of query templates.
    pub fn query_args(&self) -> Vec<String> {
        self.query
            .values()
            .flat_map(|value| match placeholders(value) {
                used if used.is_empty() => vec![value.clone()],
                used => used,
            })
            .collect()
    }

    /// The argument names the header templates use.
    pub fn header_args(&self) -> Vec<String> {
        self.headers
            .values()
            .flat_map(|value| placeholders(value))
            .collect()
    }

    /// Checks the declaration; the error is the reason, ready to print.
    pub fn check(&self) -> Result<(), String> {
        let at = |what: String| format!("tool {:?}: {what}", self.name);
        if self.name.is_empty() || self.description.trim().is_empty() {
            return Err(at("needs a name and a description".into()));
        }
        if !self.path.starts_with('/') {
            return Err(at(format!("path {:?} must start with '/'", self.path)));
        }
        let properties = self
            .input_schema
            .get("properties")
            .and_then(Value::as_object);
        if self.input_schema.get("type").and_then(Value::as_str) != Some("object") {
            return Err(at(
                "input_schema must be an object schema (type = \"object\")".into(),
            ));
        }
        let known = |arg: &str| properties.is_some_and(|props| props.contains_key(arg));
        for arg in self.path_args() {
            if !known(&arg) {
                return Err(at(format!(
                    "path uses {{{arg}}}, which input_schema does not define"
                )));
            }
        }
        for (param, value) in &self.query {
            let used = match placeholders(value) {
                used if used.is_empty() => vec![value.clone()],
                used => used,
            };
            if let Some(arg) = used.iter().find(|arg| !known(arg)) {
                return Err(at(format!(
                    "query {param:?} uses argument {arg:?}, which input_schema does not define"
                )));
            }
        }
        if let Some(arg) = self.header_args().into_iter().find(|arg| !known(arg)) {
            return Err(at(format!(
                "a header uses {{{arg}}}, which input_schema does not define"
            )));
        }
        if let Some(empty) = &self.result.empty {
            if let Some(arg) = placeholders(empty).into_iter().find(|arg| !known(arg)) {
                return Err(at(format!(
                    "result.empty uses {{{arg}}}, which input_schema does not define"
                )));
            }
        }
        for arg in self.body_args.iter().flatten() {
            if !known(arg) {
                return Err(at(format!(
                    "body_args names {arg:?}, which input_schema does not define"
                )));
            }
        }
        if let Some(each) = &self.each {
            if placeholders(&each.path) != ["item"] {
                return Err(at("each.path must use {item} (and nothing else)".into()));
            }
            if let Some(arg) = &each.limit_arg {
                if !known(arg) {
                    return Err(at(format!("each.limit_arg {arg:?} is not in input_schema")));
                }
            }
        }
        if let Some(template) = &self.body_template {
            let mut used = Vec::new();
            template_placeholders(template, &mut used);
            if let Some(unknown) = used.iter().find(|arg| !known(arg)) {
                return Err(at(format!(
                    "body_template uses {{{unknown}}}, which input_schema does not define"
                )));
            }
        }
        if (self.body_kind() == BodyKind::Graphql) != self.graphql.is_some() {
            return Err(at(
                "body = \"graphql\" and a graphql query go together".into()
            ));
        }
        if let Some(Pagination::Cursor { next, .. }) = &self.pagination {
            if !next.starts_with('/') {
                return Err(at(format!(
                    "pagination.next {next:?} must be a JSON pointer"
                )));
            }
        }
        if let Some(bounds) = self.pagination.as_ref().map(Pagination::bounds) {
            for (key, arg) in [
                ("max_pages_arg", bounds.max_pages_arg),
                ("limit_arg", bounds.limit_arg),
            ] {
                if let Some(arg) = arg.filter(|arg| !known(arg)) {
                    return Err(at(format!(
                        "pagination.{key} {arg:?} is not in input_schema"
                    )));
                }
            }
            if bounds.max_pages == 0 || bounds.page_size == 0 {
                return Err(at(
                    "pagination.max_pages and pagination.page_size must be at least 1".into(),
                ));
            }
        }
        if let Some(poll) = &self.poll {
            poll.check().map_err(at)?;
            if self.pagination.is_some() || self.each.is_some() {
                return Err(at("poll goes with neither pagination nor each".into()));
            }
        }
        if let Some(pick) = &self.result.pick {
            if !pick.is_empty() && !pick.starts_with('/') {
                return Err(at(format!(
                    "result.pick {pick:?} must be a JSON pointer (\"/items\")"
                )));
            }
        }
        Ok(())
    }
}

/// The value of one `query` entry (see [`HttpTool::query`]): the argument it names, or its
/// template filled; `None` when an argument it needs is absent. `as_text` prints a value.
pub fn query_value(
    entry: &str,
    arguments: &serde_json::Map<String, Value>,
    as_text: impl Fn(&Value) -> Option<String>,
) -> Option<String> {
    if placeholders(entry).is_empty() {
        return arguments.get(entry).and_then(&as_text);
    }
    substitute(entry, |name| arguments.get(name).and_then(&as_text))
}

/// The value of one tool header (see [`HttpTool::headers`]): the text itself, or its template
/// filled; `None` when an argument the template needs is absent.
pub fn header_value(
    entry: &str,
    arguments: &serde_json::Map<String, Value>,
    as_text: impl Fn(&Value) -> Option<String>,
) -> Option<String> {
    if placeholders(entry).is_empty() {
        return Some(entry.to_owned());
    }
    substitute(entry, |name| arguments.get(name).and_then(&as_text))
}

/// Fills a text template with `arguments` as text (absent ones empty): `result.empty`.
pub fn fill_text(template: &str, arguments: &serde_json::Map<String, Value>) -> String {
    match fill_template(&Value::String(template.to_owned()), arguments) {
        Some(Value::String(text)) => text,
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

/// Fills a body template with `arguments` (see [`HttpTool::body_template`]); `None` when the
/// whole template was one absent argument, or a list all of whose items were (so `"parents":
/// ["{folder_id}"]` is left out, not sent empty, when there is no folder).
pub fn fill_template(
    template: &Value,
    arguments: &serde_json::Map<String, Value>,
) -> Option<Value> {
    match template {
        Value::String(text) => {
            if let Some(name) = text.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                if placeholders(text) == [name] {
                    return arguments.get(name).filter(|v| !v.is_null()).cloned();
                }
            }
            let filled = substitute(text, |name| {
                Some(match arguments.get(name) {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Null) | None => String::new(),
                    Some(other) => other.to_string(),
                })
            });
            filled.map(Value::String)
        }
        Value::Array(items) => {
            let filled: Vec<Value> = items
                .iter()
                .filter_map(|item| fill_template(item, arguments))
                .collect();
            (!filled.is_empty() || items.is_empty()).then_some(Value::Array(filled))
        }
        Value::Object(object) => Some(Value::Object(
            object
                .iter()
                .filter_map(|(key, value)| {
                    let filled = fill_template(value, arguments)?;
                    // A member whose key ends in `?` drops out when it is an object all of
                    // whose arguments are absent (`"comment?" = { body = "{comment}" }` with
                    // no comment); other objects are sent, empty or not.
                    let Some(key) = key.strip_suffix('?') else {
                        return Some((key.clone(), filled));
                    };
                    let emptied = matches!(&filled, Value::Object(has) if has.is_empty());
                    (!emptied).then(|| (key.to_owned(), filled))
                })
                .collect(),
        )),
        other => Some(other.clone()),
    }
}

fn template_placeholders(template: &Value, found: &mut Vec<String>) {
    match template {
        Value::String(text) => found.extend(placeholders(text)),
        Value::Array(items) => items
            .iter()
            .for_each(|item| template_placeholders(item, found)),
        Value::Object(object) => object
            .values()
            .for_each(|value| template_placeholders(value, found)),
        _ => {}
    }
}

/// The `{name}` placeholders of a template, in order.
pub fn placeholders(template: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        found.push(rest[open + 1..open + close].to_owned());
        rest = &rest[open + close + 1..];
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_nested_object_of_absent_arguments_drops_out_when_its_key_says_so() {
        let template = json!({ "ticket": {
            "subject": "{subject}", "comment?": { "body": "{comment}" }, "via": {}
        } });
        let given = json!({ "subject": "S" });
        assert_eq!(
            fill_template(&template, given.as_object().unwrap()),
            Some(json!({ "ticket": { "subject": "S", "via": {} } }))
        );
        let commented = json!({ "comment": "C" });
        assert_eq!(
            fill_template(&template, commented.as_object().unwrap()),
            Some(json!({ "ticket": { "comment": { "body": "C" }, "via": {} } }))
        );
        let none = json!({});
        assert_eq!(
            fill_template(&template, none.as_object().unwrap()),
            Some(json!({ "ticket": { "via": {} } }))
        );
    }

    #[test]
    fn templates_are_filled_in_one_pass_and_an_unclosed_part_is_text() {
        let args: BTreeMap<String, String> = [("a", "{b}"), ("b", "B")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into();
        assert_eq!(render_prompt("x {a} y", &args), "x {b} y");
        assert_eq!(render_prompt("Hello [[ world", &args), "Hello [[ world");
        assert_eq!(render_prompt("Hi[[ {b}]][[ {c}]]!", &args), "Hi B!");
        let arguments = json!({ "a": "{b}", "b": "B" });
        let filled = fill_template(&json!("<{a}|{b}>"), arguments.as_object().unwrap());
        assert_eq!(filled, Some(json!("<{b}|B>")));
    }

    fn tool(path: &str) -> HttpTool {
        HttpTool {
            name: "t".into(),
            description: "d".into(),
            method: Method::Get,
            path: path.into(),
            query: BTreeMap::new(),
            headers: BTreeMap::new(),
            body: None,
            body_args: None,
            defaults: BTreeMap::new(),
            input_schema: json!({"type": "object", "properties": {"owner": {"type": "string"}}}),
            each: None,
            result: Projection::default(),
            graphql: None,
            pagination: None,
            poll: None,
            body_template: None,
            task_support: crate::servers::TaskSupport::Forbidden,
        }
    }

    #[test]
    fn body_templates_keep_types_and_drop_absent_arguments() {
        let template = json!({
            "model": "{model}",
            "messages": [{ "role": "system", "content": "{system}" }, { "role": "user", "content": "Q: {query}" }],
            "temperature": "{temperature}",
            "filter": "{recency}"
        });
        let args = json!({ "model": "sonar", "query": "rust", "temperature": 0.5 });
        let filled = fill_template(&template, args.as_object().unwrap()).unwrap();
        assert_eq!(
            filled,
            json!({
                "model": "sonar",
                "messages": [{ "role": "system" }, { "role": "user", "content": "Q: rust" }],
                "temperature": 0.5
            })
        );
    }

    #[test]
    fn a_list_of_absent_arguments_drops_out_and_query_templates_need_their_arguments() {
        let template = json!({ "name": "{name}", "parents": ["{folder_id}"], "keep": [] });
        let without = json!({ "name": "a" });
        assert_eq!(
            fill_template(&template, without.as_object().unwrap()),
            Some(json!({ "name": "a", "keep": [] }))
        );
        let with = json!({ "name": "a", "folder_id": "f1" });
        assert_eq!(
            fill_template(&template, with.as_object().unwrap()),
            Some(json!({ "name": "a", "parents": ["f1"], "keep": [] }))
        );
        let text = |value: &Value| value.as_str().map(str::to_owned);
        let args = json!({ "date": "2025-05-14", "q": "x" });
        let args = args.as_object().unwrap();
        assert_eq!(query_value("q", args, text), Some("x".into()));
        assert_eq!(
            query_value("{date}T00:00:00Z", args, text),
            Some("2025-05-14T00:00:00Z".into())
        );
        assert_eq!(query_value("{day}T00:00:00Z", args, text), None);
        assert_eq!(fill_text("Deleted {q}.", args), "Deleted x.");
    }

    #[test]
    fn header_templates_take_arguments_and_constants_stay() {
        let text = |value: &Value| value.as_str().map(str::to_owned);
        let args = json!({ "email_from": "ada@example.com" });
        let args = args.as_object().unwrap();
        assert_eq!(
            header_value("{email_from}", args, text),
            Some("ada@example.com".into())
        );
        assert_eq!(header_value("{missing}", args, text), None);
        assert_eq!(
            header_value("2022-06-28", args, text),
            Some("2022-06-28".into())
        );
        let mut from = tool("/users/{owner}");
        from.headers.insert("From".into(), "{email}".into());
        let err = from.check().unwrap_err();
        assert!(err.contains("{email}"), "{err}");
    }

    #[test]
    fn optional_prompt_parts_drop_out_with_their_argument() {
        let template = "Search for: {query}[[ (from the past {recency})]]";
        let mut args = BTreeMap::from([("query".to_owned(), "rust".to_owned())]);
        assert_eq!(render_prompt(template, &args), "Search for: rust");
        args.insert("recency".into(), "week".into());
        assert_eq!(
            render_prompt(template, &args),
            "Search for: rust (from the past week)"
        );
    }

    #[test]
    fn placeholders_are_found_in_order() {
        assert_eq!(
            placeholders("/repos/{owner}/{repo}/issues"),
            ["owner", "repo"]
        );
        assert!(placeholders("/plain").is_empty());
    }

    #[test]
    fn page_sizes_follow_the_limit_and_limits_must_be_arguments() {
        let mut listed = tool("/users/{owner}/repos");
        listed.input_schema = json!({"type": "object", "properties": {
            "owner": {"type": "string"}, "max_limit": {"type": "integer"}
        }});
        listed.pagination = Some(Pagination::Link {
            max_pages: 10,
            max_pages_arg: None,
            limit_arg: Some("max_limit".into()),
            page_size_param: Some("per_page".into()),
            page_size: 100,
        });
        assert!(listed.check().is_ok());
        let bounds = listed.pagination.as_ref().unwrap().bounds();
        let args = |value: Value| value.as_object().cloned().unwrap();
        assert_eq!(bounds.page_size_for(&args(json!({}))), 100);
        assert_eq!(bounds.page_size_for(&args(json!({"max_limit": 7}))), 7);
        assert_eq!(bounds.page_size_for(&args(json!({"max_limit": 250}))), 100);
        assert_eq!(bounds.page_size_for(&args(json!({"max_limit": 0}))), 1);
        assert_eq!(bounds.limit(&args(json!({"max_limit": 0}))), Some(0));
        listed.pagination = Some(Pagination::Link {
            max_pages: 10,
            max_pages_arg: None,
            limit_arg: Some("count".into()),
            page_size_param: None,
            page_size: 100,
        });
        let err = listed.check().unwrap_err();
        assert!(err.contains("limit_arg \"count\""), "{err}");
    }

    #[test]
    fn a_poll_is_checked_at_load() {
        let poll = |extra: &str| -> Poll {
            toml::from_str(&format!(
                "id = \"/id\"\npath = \"/jobs/{{id}}\"\nstatus = \"/status\"\ndone = [\"done\"]\n{extra}"
            ))
            .unwrap()
        };
        let mut job = tool("/jobs");
        job.poll = Some(poll(""));
        assert!(job.check().is_ok());
        for (extra, why) in [
            ("cancel = { method = \"DELETE\", path = \"/jobs\" }", "{id}"),
            ("interval_ms = 10", "interval_ms"),
            ("max_wait_secs = 0", "max_wait_secs"),
            ("progress = \"completed\"", "JSON pointer"),
        ] {
            job.poll = Some(poll(extra));
            let err = job.check().unwrap_err();
            assert!(err.contains(why), "{extra}: {err}");
        }
        job.poll = Some(poll(""));
        job.each = Some(Each {
            path: "/x/{item}".into(),
            limit_arg: None,
            default_limit: 1,
            max_limit: 1,
        });
        assert!(job.check().unwrap_err().contains("neither"));
    }

    #[test]
    fn a_path_argument_the_schema_lacks_is_refused() {
        assert!(tool("/users/{owner}").check().is_ok());
        let err = tool("/repos/{owner}/{repo}").check().unwrap_err();
        assert!(err.contains("{repo}"), "{err}");
    }
}
