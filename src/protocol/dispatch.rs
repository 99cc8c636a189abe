//! Server methods as the protocol sees them, with no call into the runtime: a request parsed
//! into a typed [`ServerMethod`] on the way in, and on the way out the server's answer paged,
//! shaped into a result or error (`InputRequiredResult` with a sealed state), and finished for
//! the era (`resultType`, `serverInfo`, cache hints). The host (`actors::host`) makes the call
//! in between; lifecycle methods (`initialize`, `ping`, `logging/setLevel`, subscriptions)
//! belong to the session that owns the connection state.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rmcp::model::{CompleteRequestParams, JsonObject, RequestStateCodec, SealOptions};
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::error::{codes, McpError};
use super::meta::SERVER_INFO;
use super::version::ProtocolVersion;
use crate::config::ProtocolSettings;
use crate::servers::{CallError, Features, InputRequired, ServerDescription};

/// Seals and opens `requestState` so a client cannot forge or replay it across servers, users,
/// methods or tools (SEP-2322 asks servers to protect its integrity). The key is one per
/// process (in a cluster, one shared by every node, from `cluster.shared_keys`) and every server
/// shares it, so the server name is part of what is bound: a state one server handed out must
/// not reach another server's tool of the same name.
pub struct StateSeal {
    codec: RequestStateCodec,
    ttl: std::time::Duration,
}

impl StateSeal {
    /// A seal with a random per-process key.
    pub fn random(ttl: std::time::Duration) -> Self {
        let key: Vec<u8> = [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()]
            .iter()
            .flat_map(|id| id.into_bytes())
            .collect();
        // Two v4 UUIDs give 32 bytes, the codec's minimum; `new_unchecked` skips a check
        // that cannot fail for this key.
        StateSeal {
            codec: RequestStateCodec::new_unchecked(key),
            ttl,
        }
    }

    /// A seal with `codec` (a cluster's shared keyring, see `cluster::keys`).
    pub fn with_codec(codec: RequestStateCodec, ttl: std::time::Duration) -> Self {
        StateSeal { codec, ttl }
    }

    /// Server names and user ids (checked by `ids`) and the server methods hold no NUL, so
    /// the parts cannot run into one another.
    fn binding(server: &str, user: &str, method: &str, target: &str) -> Vec<u8> {
        [server, user, method, target].join("\u{0}").into_bytes()
    }

    pub fn seal(&self, state: &str, to: &SealedFor, target: &str) -> String {
        let binding = Self::binding(to.server, to.user, to.method, target);
        let options = SealOptions::new().associated_data(&binding).ttl(self.ttl);
        self.codec.seal_with(state.as_bytes(), &options)
    }

    pub fn open(&self, sealed: &str, to: &SealedFor, target: &str) -> Result<String, McpError> {
        let binding = Self::binding(to.server, to.user, to.method, target);
        let bytes = self.codec.open_with(sealed, &binding).map_err(|_| {
            McpError::invalid_params(
                "requestState failed verification (altered, expired, or from another request); \
                 retry the original request without it",
            )
        })?;
        String::from_utf8(bytes).map_err(|_| McpError::invalid_params("requestState is not text"))
    }
}

/// The request a sealed state belongs to (with its target, see [`state_target`]).
pub struct SealedFor<'a> {
    pub server: &'a str,
    pub user: &'a str,
    pub method: &'a str,
}

/// The target a sealed state is bound to: the tool or prompt name, or the resource URI.
pub fn state_target(method: &str, params: &JsonObject) -> String {
    let key = if method == "resources/read" {
        "uri"
    } else {
        "name"
    };
    params
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The server capabilities object for `initialize` and `server/discover`.
pub fn capabilities(features: &Features) -> Value {
    let mut caps = Map::new();
    caps.insert(
        "tools".into(),
        json!({ "listChanged": features.tools_list_changed }),
    );
    if features.resources {
        caps.insert(
            "resources".into(),
            json!({
                "subscribe": features.resources_subscribe,
                "listChanged": features.resources_list_changed,
            }),
        );
    }
    if features.prompts {
        caps.insert(
            "prompts".into(),
            json!({ "listChanged": features.prompts_list_changed }),
        );
    }
    if features.completions {
        caps.insert("completions".into(), json!({}));
    }
    if features.logging {
        caps.insert("logging".into(), json!({}));
    }
    Value::Object(caps)
}

/// The `Implementation` object naming the server (`serverInfo`).
pub fn implementation(desc: &ServerDescription) -> Value {
    let mut info = json!({ "name": desc.name, "version": desc.version });
    if let Some(title) = &desc.title {
        info["title"] = json!(title);
    }
    info
}

/// The `initialize` result for a negotiated legacy version.
pub fn initialize_result(desc: &ServerDescription, version: ProtocolVersion) -> Value {
    let mut result = json!({
        "protocolVersion": version.as_str(),
        "capabilities": capabilities(&desc.features),
        "serverInfo": implementation(desc),
    });
    if version.has_legacy_tasks() {
        result["capabilities"]["tasks"] = super::tasks::legacy_capability();
    }
    if let Some(instructions) = &desc.instructions {
        result["instructions"] = json!(instructions);
    }
    result
}

/// The `server/discover` result (shaped further by [`finish_modern`]).
pub fn discover_result(desc: &ServerDescription) -> Value {
    let mut result = json!({
        "supportedVersions": ProtocolVersion::all_names(),
        "capabilities": capabilities(&desc.features),
    });
    result["capabilities"]["extensions"] = super::tasks::extension_capability();
    if let Some(instructions) = &desc.instructions {
        result["instructions"] = json!(instructions);
    }
    result
}

/// Removes the 2026-07-28 `resultType` that rmcp's constructors add, for legacy peers.
pub fn finish_legacy(mut result: Value) -> Value {
    if let Value::Object(fields) = &mut result {
        fields.remove("resultType");
    }
    result
}

/// Adds what every 2026-07-28 result carries: `resultType`, the server's identity, and cache
/// hints on cacheable results.
pub fn finish_modern(
    mut result: Value,
    method: &str,
    server_info: &Value,
    settings: &ProtocolSettings,
) -> Value {
    let Value::Object(fields) = &mut result else {
        return result;
    };
    let complete = !matches!(fields.get("resultType"), Some(Value::String(t)) if t == "input_required" || t == "task");
    if complete {
        fields.insert("resultType".into(), json!("complete"));
        if let Some(scope) = cache_scope(method) {
            fields.insert("ttlMs".into(), json!(settings.cache_ttl_ms));
            fields.insert("cacheScope".into(), json!(scope));
        }
    }
    let meta = fields
        .entry("_meta")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(meta) = meta {
        meta.insert(SERVER_INFO.into(), server_info.clone());
    }
    result
}

/// Which results may be cached, and by whom. Server instances are per user, so everything
/// that could vary by user is private; only the server's self-description is public.
fn cache_scope(method: &str) -> Option<&'static str> {
    match method {
        "server/discover" => Some("public"),
        "tools/list"
        | "prompts/list"
        | "resources/list"
        | "resources/templates/list"
        | "resources/read" => Some("private"),
        _ => None,
    }
}

/// Which list a listing method asks for, and the field its page goes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    Tools,
    Resources,
    ResourceTemplates,
    Prompts,
}

impl Listing {
    pub fn field(self) -> &'static str {
        match self {
            Listing::Tools => "tools",
            Listing::Resources => "resources",
            Listing::ResourceTemplates => "resourceTemplates",
            Listing::Prompts => "prompts",
        }
    }
}

/// A server method, parsed and checked: what the host asks the user's server for. Parsing is
/// all the protocol layer does on the way in; the host makes the call, and [`page`] or
/// [`shape`] turn its answer into the result on the way out.
#[derive(Debug)]
pub enum ServerMethod {
    /// A listing, from `start` on (the decoded cursor).
    List {
        listing: Listing,
        start: usize,
    },
    CallTool {
        name: String,
        arguments: JsonObject,
    },
    ReadResource {
        uri: String,
    },
    GetPrompt {
        name: String,
        arguments: JsonObject,
    },
    Complete(Box<CompleteRequestParams>),
}

impl ServerMethod {
    /// The method `method` asks for with `params`; bad parameters are -32602, a method no
    /// server answers -32601.
    pub fn parse(method: &str, mut params: JsonObject) -> Result<ServerMethod, McpError> {
        let listing = |listing| {
            Ok(ServerMethod::List {
                listing,
                start: cursor_start(&params)?,
            })
        };
        match method {
            "tools/list" => listing(Listing::Tools),
            "resources/list" => listing(Listing::Resources),
            "resources/templates/list" => listing(Listing::ResourceTemplates),
            "prompts/list" => listing(Listing::Prompts),
            "tools/call" => Ok(ServerMethod::CallTool {
                name: required_str(&mut params, "name")?,
                arguments: optional_object(&mut params, "arguments")?,
            }),
            "resources/read" => Ok(ServerMethod::ReadResource {
                uri: required_str(&mut params, "uri")?,
            }),
            "prompts/get" => Ok(ServerMethod::GetPrompt {
                name: required_str(&mut params, "name")?,
                arguments: optional_object(&mut params, "arguments")?,
            }),
            "completion/complete" => serde_json::from_value(Value::Object(params))
                .map(|request| ServerMethod::Complete(Box::new(request)))
                .map_err(|err| {
                    McpError::invalid_params(format!("invalid completion request: {err}"))
                }),
            other => Err(McpError::method_not_found(other)),
        }
    }

    /// What a sealed `requestState` of this call is bound to besides the method.
    pub fn target(&self) -> &str {
        match self {
            ServerMethod::CallTool { name, .. } | ServerMethod::GetPrompt { name, .. } => name,
            ServerMethod::ReadResource { uri } => uri,
            ServerMethod::List { .. } | ServerMethod::Complete(_) => "",
        }
    }
}

/// Turns a server's answer to a call into a result or error as the era wants it: an input
/// request becomes an `InputRequiredResult` with a sealed state in 2026-07-28.
pub fn shape<T: Serialize>(
    outcome: Result<T, CallError>,
    to: &SealedFor,
    target: &str,
    modern: bool,
    seal: &StateSeal,
) -> Result<Value, McpError> {
    match outcome {
        Ok(result) => serde_json::to_value(result)
            .map_err(|err| McpError::internal(format!("could not encode the result: {err}"))),
        Err(CallError::Protocol(error)) => Err(error),
        Err(CallError::ResourceNotFound(uri)) => {
            let code = if modern {
                codes::INVALID_PARAMS
            } else {
                codes::RESOURCE_NOT_FOUND
            };
            Err(McpError::new(code, format!("Resource not found: {uri}"))
                .with_data(json!({ "uri": uri })))
        }
        Err(CallError::InputRequired(input)) if modern => {
            Ok(input_required(input, to, target, seal))
        }
        Err(CallError::InputRequired(_)) => Err(McpError::internal(
            "the server asked for client input in a way this protocol version cannot carry",
        )),
        Err(CallError::Account(error)) => Err(McpError::internal(error.to_string())),
    }
}

fn input_required(input: InputRequired, to: &SealedFor, target: &str, seal: &StateSeal) -> Value {
    let mut result = json!({ "resultType": "input_required" });
    if !input.requests.is_empty() {
        result["inputRequests"] = json!(input.requests);
    }
    // The spec requires at least one of the two fields; an empty state keeps that promise.
    let state = input.state.unwrap_or_default();
    if !state.is_empty() || input.requests.is_empty() {
        result["requestState"] = json!(seal.seal(&state, to, target));
    }
    result
}

/// One page of a listing, from `start` on, with the cursor of the next page if there is one.
pub fn page<T: Serialize>(
    items: &[T],
    listing: Listing,
    start: usize,
    settings: &ProtocolSettings,
) -> Result<Value, McpError> {
    if start > items.len() {
        return Err(invalid_cursor());
    }
    let end = (start + settings.page_size).min(items.len());
    let page: Vec<&T> = items[start..end].iter().collect();
    let mut result = json!({ listing.field(): page });
    if end < items.len() {
        result["nextCursor"] = json!(encode_cursor(end));
    }
    Ok(result)
}

fn invalid_cursor() -> McpError {
    McpError::invalid_params("Invalid cursor: list again without a cursor to start over")
}

/// Where a listing starts: 0, or the offset its opaque cursor carries.
fn cursor_start(params: &JsonObject) -> Result<usize, McpError> {
    match params.get("cursor") {
        None | Some(Value::Null) => Ok(0),
        Some(Value::String(cursor)) => decode_cursor(cursor).ok_or_else(invalid_cursor),
        Some(_) => Err(McpError::invalid_params(
            "Invalid cursor: it must be a string",
        )),
    }
}

fn encode_cursor(offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("offset:{offset}"))
}

fn decode_cursor(cursor: &str) -> Option<usize> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    text.strip_prefix("offset:")?.parse().ok()
}

/// Takes `key` out of `params` (parsing owns them: nothing is copied).
fn required_str(params: &mut JsonObject, key: &str) -> Result<String, McpError> {
    match params.remove(key) {
        Some(Value::String(value)) => Ok(value),
        Some(_) => Err(McpError::invalid_params(format!(
            "`{key}` must be a string"
        ))),
        None => Err(McpError::invalid_params(format!(
            "missing required parameter `{key}`"
        ))),
    }
}

fn optional_object(params: &mut JsonObject, key: &str) -> Result<JsonObject, McpError> {
    match params.remove(key) {
        None | Some(Value::Null) => Ok(JsonObject::new()),
        Some(Value::Object(value)) => Ok(value),
        Some(_) => Err(McpError::invalid_params(format!(
            "`{key}` must be an object"
        ))),
    }
}

/// The era part of a 2026-07-28 request's context: the answers and verified state of a retry.
pub fn modern_era(
    params: &JsonObject,
    to: &SealedFor,
    seal: &StateSeal,
) -> Result<crate::servers::context::Era, McpError> {
    let input_responses = match params.get("inputResponses") {
        None | Some(Value::Null) => JsonObject::new(),
        Some(Value::Object(responses)) => responses.clone(),
        Some(_) => {
            return Err(McpError::invalid_params(
                "`inputResponses` must be an object",
            ))
        }
    };
    let request_state = match params.get("requestState") {
        None | Some(Value::Null) => None,
        Some(Value::String(sealed)) => {
            let state = seal.open(sealed, to, &state_target(to.method, params))?;
            Some(state).filter(|state| !state.is_empty())
        }
        Some(_) => return Err(McpError::invalid_params("`requestState` must be a string")),
    };
    Ok(crate::servers::context::Era::Modern {
        input_responses: Arc::new(input_responses),
        request_state,
    })
}

/// Whether a request's method is one the server (rather than the session) answers.
pub fn is_server_method(method: &str) -> bool {
    matches!(
        method,
        "tools/list"
            | "tools/call"
            | "resources/list"
            | "resources/templates/list"
            | "resources/read"
            | "prompts/list"
            | "prompts/get"
            | "completion/complete"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        assert_eq!(decode_cursor(&encode_cursor(200)), Some(200));
        assert_eq!(decode_cursor("not-a-cursor"), None);
    }

    #[test]
    fn lists_are_paged() {
        let settings = ProtocolSettings {
            page_size: 2,
            ..ProtocolSettings::default()
        };
        let start = |params| match ServerMethod::parse("tools/list", params) {
            Ok(ServerMethod::List { start, .. }) => Ok(start),
            Ok(other) => panic!("{other:?}"),
            Err(err) => Err(err),
        };
        let first = page(
            &[1, 2, 3],
            Listing::Tools,
            start(JsonObject::new()).unwrap(),
            &settings,
        )
        .unwrap();
        assert_eq!(first["tools"], json!([1, 2]));
        let mut params = JsonObject::new();
        params.insert("cursor".into(), first["nextCursor"].clone());
        let second = page(
            &[1, 2, 3],
            Listing::Tools,
            start(params.clone()).unwrap(),
            &settings,
        )
        .unwrap();
        assert_eq!(second["tools"], json!([3]));
        assert!(second.get("nextCursor").is_none());
        let beyond = page(&[1], Listing::Tools, 5, &settings).unwrap_err();
        assert_eq!(beyond.code, codes::INVALID_PARAMS);
        params.insert("cursor".into(), json!("bogus"));
        assert_eq!(start(params).unwrap_err().code, codes::INVALID_PARAMS);
    }

    #[test]
    fn methods_are_parsed_with_their_parameters_checked() {
        let params = |value: Value| value.as_object().cloned().unwrap();
        let call = ServerMethod::parse(
            "tools/call",
            params(json!({"name": "t", "arguments": {"a": 1}})),
        )
        .unwrap();
        assert_eq!(call.target(), "t");
        let read = ServerMethod::parse("resources/read", params(json!({"uri": "x://y"}))).unwrap();
        assert_eq!(read.target(), "x://y");
        for (method, bad) in [
            ("tools/call", json!({})),
            ("tools/call", json!({"name": 1})),
            ("tools/call", json!({"name": "t", "arguments": []})),
            ("resources/read", json!({})),
            ("completion/complete", json!({"ref": 1})),
        ] {
            let err = ServerMethod::parse(method, params(bad)).unwrap_err();
            assert_eq!(err.code, codes::INVALID_PARAMS, "{method}");
        }
        let unknown = ServerMethod::parse("tools/frobnicate", JsonObject::new()).unwrap_err();
        assert_eq!(unknown.code, codes::METHOD_NOT_FOUND);
    }

    #[test]
    fn sealed_state_opens_only_for_the_same_server_user_method_and_target() {
        let seal = StateSeal::random(std::time::Duration::from_secs(60));
        let to = |server, user, method| SealedFor {
            server,
            user,
            method,
        };
        let alice_on_a = to("server-a", "alice", "tools/call");
        let sealed = seal.seal("step-2", &alice_on_a, "book");
        assert_eq!(seal.open(&sealed, &alice_on_a, "book").unwrap(), "step-2");
        for other in [
            to("server-b", "alice", "tools/call"),
            to("server-a", "bob", "tools/call"),
            to("server-a", "alice", "prompts/get"),
        ] {
            assert!(seal.open(&sealed, &other, "book").is_err());
        }
        assert!(seal.open(&sealed, &alice_on_a, "other").is_err());
        assert!(seal.open("forged", &alice_on_a, "book").is_err());
    }

    #[test]
    fn a_state_from_one_server_is_refused_by_another_for_the_same_user() {
        let seal = StateSeal::random(std::time::Duration::from_secs(60));
        let on = |server| SealedFor {
            server,
            user: "alice",
            method: "tools/call",
        };
        let sealed = seal.seal("step-2", &on("server-a"), "book");
        let mut params = JsonObject::new();
        params.insert("name".into(), json!("book"));
        params.insert("requestState".into(), json!(sealed));
        let replayed = modern_era(&params, &on("server-b"), &seal).map(|_| ());
        assert_eq!(replayed.unwrap_err().code, codes::INVALID_PARAMS);
        assert!(modern_era(&params, &on("server-a"), &seal).is_ok());
    }

    #[test]
    fn modern_results_carry_result_type_server_info_and_cache_hints() {
        let desc = ServerDescription {
            name: "s".into(),
            title: None,
            version: "1".into(),
            instructions: None,
            features: Features::default(),
        };
        let settings = ProtocolSettings::default();
        let desc = &implementation(&desc);
        let listed = finish_modern(json!({"tools": []}), "tools/list", desc, &settings);
        assert_eq!(listed["resultType"], "complete");
        assert_eq!(listed["cacheScope"], "private");
        assert_eq!(listed["ttlMs"], settings.cache_ttl_ms);
        assert_eq!(listed["_meta"][SERVER_INFO]["name"], "s");
        let called = finish_modern(json!({"content": []}), "tools/call", desc, &settings);
        assert!(called.get("ttlMs").is_none());
        let pending = finish_modern(
            json!({"resultType": "input_required", "requestState": "x"}),
            "tools/call",
            desc,
            &settings,
        );
        assert_eq!(pending["resultType"], "input_required");
        assert!(pending.get("ttlMs").is_none());
        assert!(finish_legacy(json!({"resultType": "complete"}))
            .get("resultType")
            .is_none());
    }
}
