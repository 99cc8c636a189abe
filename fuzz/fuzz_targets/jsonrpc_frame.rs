//! JSON-RPC framing and what the session does with a frame's members before dispatch: the
//! `_meta` of 2026-07-28, and the mirrored HTTP headers checked against the body.
//!
//! Asserts, for any bytes:
//! - `parse_frame` accepts exactly the messages an independent reading of JSON-RPC 2.0 as MCP
//!   narrows it accepts (a differential check), keeps every field, and keeps a readable id
//!   of a rejected member so its error reply can name it;
//! - every reply is one line of JSON (no raw CR/LF: stdio frames by lines) that parses back to
//!   the same id and content;
//! - `ModernMeta::parse`, `progress_token` and `LogLevel` agree with the `_meta` they read, and
//!   fail only with the codes the spec names;
//! - headers that faithfully mirror the body pass `MirroredHeaders::check` and
//!   `check_param_headers` (base64 sentinel or plain), and a different method is a -32020.
#![no_main]

use base64::Engine;
use gumcp_actors::protocol::error::{codes, McpError};
use gumcp_actors::protocol::headers::{check_param_headers, decode, MirroredHeaders};
use gumcp_actors::protocol::jsonrpc::{
    parse_frame, Frame, Message, Outgoing, Rejected, RequestId, Response,
};
use gumcp_actors::protocol::meta::{
    is_modern_request, progress_token, LogLevel, ModernMeta, CLIENT_CAPABILITIES, LOG_LEVEL,
    PROTOCOL_VERSION,
};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

type Member = Result<Message, Rejected>;

/// An independent statement of what a valid MCP JSON-RPC message is.
fn valid_message(raw: &Value) -> bool {
    let Some(object) = raw.as_object() else {
        return false;
    };
    let id_ok = match object.get("id") {
        None => true,
        Some(Value::String(_)) => true,
        Some(Value::Number(n)) => n.as_i64().is_some(),
        Some(_) => false,
    };
    let version_ok = object.get("jsonrpc") == Some(&Value::String("2.0".into()));
    let params_ok = object.get("params").is_none_or(Value::is_object);
    if !(id_ok && version_ok && params_ok) {
        return false;
    }
    match object.get("method") {
        Some(method) => method.is_string(),
        None => {
            object.contains_key("id")
                && object.contains_key("result") != object.contains_key("error")
        }
    }
}

/// Checks one member against the JSON it came from.
fn check_member(raw: &Value, member: &Member) {
    assert_eq!(valid_message(raw), member.is_ok(), "{raw} -> {member:?}");
    let raw_id = raw.get("id");
    let params = raw.get("params").and_then(Value::as_object);
    match member {
        Ok(Message::Request(request)) => {
            assert_eq!(Some(&request.id.to_json()), raw_id);
            assert_eq!(
                raw.get("method").and_then(Value::as_str),
                Some(request.method.as_str())
            );
            assert_eq!(request.params.as_ref(), params);
        }
        Ok(Message::Notification(notification)) => {
            assert!(raw_id.is_none());
            assert_eq!(
                raw.get("method").and_then(Value::as_str),
                Some(notification.method.as_str())
            );
            assert_eq!(notification.params.as_ref(), params);
        }
        Ok(Message::Response(response)) => {
            assert_eq!(Some(&response.id.to_json()), raw_id);
            match &response.outcome {
                Ok(result) => assert_eq!(Some(result), raw.get("result")),
                Err(error) => {
                    let sent = raw.get("error").expect("an error response has \"error\"");
                    assert_eq!(*error, McpError::from_json(sent));
                }
            }
        }
        Err(rejected) => {
            assert_eq!(rejected.error.code, codes::INVALID_REQUEST);
            if let Some(id) = &rejected.id {
                assert_eq!(Some(&id.to_json()), raw_id);
            }
        }
    }
}

/// The reply a session would send for a member, if any (requests echo their params, or fail
/// with a message built from client text; rejections get their error).
fn reply_for(member: &Member) -> Option<Outgoing> {
    match member {
        Ok(Message::Request(request)) => {
            let outcome = if request.method.len() % 2 == 0 {
                Ok(Value::Object(request.params.clone().unwrap_or_default()))
            } else {
                Err(McpError::method_not_found(&request.method))
            };
            Some(Outgoing::reply(request.id.clone(), outcome))
        }
        Ok(_) => None,
        Err(rejected) => Some(Outgoing::Error {
            id: rejected.id.clone(),
            error: rejected.error.clone(),
        }),
    }
}

/// One line of JSON, nothing a line-framed transport could split.
fn line_of(outgoing: &Outgoing) -> String {
    let line = outgoing.to_line();
    assert!(!line.is_empty());
    assert!(!line.contains(['\n', '\r']), "{line:?}");
    line
}

/// A reply, written and read back, says what was meant.
fn check_reply(outgoing: &Outgoing, parsed: &Value) {
    assert_eq!(parsed["jsonrpc"], "2.0");
    match outgoing {
        Outgoing::Result { id, result } => {
            assert_eq!(parsed["id"], id.to_json());
            assert_eq!(&parsed["result"], result);
        }
        Outgoing::Error { id, error } => {
            assert_eq!(
                parsed["id"],
                id.as_ref().map_or(Value::Null, RequestId::to_json)
            );
            assert_eq!(McpError::from_json(&parsed["error"]), *error);
        }
        other => panic!("not a reply: {other:?}"),
    }
    // A reply with an id is a valid JSON-RPC response to our own parser too.
    if let Some(id) = parsed.get("id").and_then(RequestId::from_json) {
        match parse_frame(parsed.to_string().as_bytes()) {
            Frame::Single(Ok(Message::Response(Response { id: back, .. }))) => assert_eq!(back, id),
            other => panic!("reply {parsed} reads back as {other:?}"),
        }
    }
}

/// What a request or notification's `_meta` says, read three ways that must agree.
fn check_meta(method: &str, params: Option<&Map<String, Value>>) {
    let meta = params
        .and_then(|p| p.get("_meta"))
        .and_then(Value::as_object);
    match ModernMeta::parse(params) {
        Ok(modern) => {
            assert!(modern.version.is_modern());
            assert!(is_modern_request(method, params));
            let meta = meta.expect("parsed meta exists");
            assert_eq!(
                meta.get(PROTOCOL_VERSION).and_then(Value::as_str),
                Some(modern.version.as_str())
            );
            assert_eq!(
                meta.get(CLIENT_CAPABILITIES),
                Some(&Value::Object(modern.client_capabilities))
            );
            assert_eq!(modern.log_level.is_some(), meta.contains_key(LOG_LEVEL));
        }
        Err(error) => {
            assert!(
                [codes::INVALID_PARAMS, codes::UNSUPPORTED_PROTOCOL_VERSION].contains(&error.code),
                "{error:?}"
            );
            if error.code == codes::UNSUPPORTED_PROTOCOL_VERSION {
                let data = error.data.expect("-32022 lists the versions");
                assert_eq!(
                    meta.and_then(|m| m.get(PROTOCOL_VERSION)),
                    Some(&data["requested"])
                );
            }
        }
    }
    if let Some(token) = progress_token(params) {
        assert!(token.is_string() || token.is_i64() || token.is_u64());
        assert_eq!(meta.and_then(|m| m.get("progressToken")), Some(&token));
    }
    if let Some(level) = meta.and_then(|m| m.get(LOG_LEVEL)) {
        if let Ok(parsed) = LogLevel::parse(level) {
            assert_eq!(serde_json::to_value(parsed).ok().as_ref(), Some(level));
        }
    }
}

/// `=?base64?…?=` of a text, as a client must send any value a header cannot carry as is.
fn sentinel(text: &str) -> String {
    format!(
        "=?base64?{}?=",
        base64::engine::general_purpose::STANDARD.encode(text)
    )
}

/// Headers that mirror the body exactly pass; a different method does not.
fn check_headers(method: &str, params: Option<&Map<String, Value>>) {
    assert_eq!(decode(&sentinel(method)).as_deref(), Some(method));
    // A value shaped like a sentinel is read as one (and refused if its base64 is bad); any
    // other value is itself, trimmed.
    let trimmed = method.trim();
    if !(trimmed.starts_with("=?base64?") && trimmed.ends_with("?=")) {
        assert_eq!(decode(method).as_deref(), Some(trimmed));
    }

    let meta = params
        .and_then(|p| p.get("_meta"))
        .and_then(Value::as_object);
    let version = meta
        .and_then(|m| m.get(PROTOCOL_VERSION))
        .and_then(Value::as_str);
    let named_field = match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    };
    let name = named_field.and_then(|field| params?.get(field)?.as_str());
    let mirrored = MirroredHeaders {
        protocol_version: Some(version.unwrap_or("2026-07-28").to_owned()),
        method: Some(method.to_owned()),
        name: name.map(sentinel),
        params: Vec::new(),
    };
    let complete = meta.is_some_and(|m| m.contains_key(CLIENT_CAPABILITIES))
        && version.is_some()
        && (named_field.is_none() || name.is_some());
    assert_eq!(
        mirrored.check(method, params).is_ok(),
        complete,
        "{method} {params:?}"
    );
    if complete {
        let wrong = MirroredHeaders {
            method: Some(format!("{method}x")),
            ..mirrored.clone()
        };
        assert_eq!(
            wrong.check(method, params).map_err(|e| e.code),
            Err(codes::HEADER_MISMATCH)
        );
    }

    // `x-mcp-header` parameters: mirror every annotated argument the way a client would.
    let (Some(schema), Some(arguments)) = (
        params
            .and_then(|p| p.get("inputSchema"))
            .and_then(Value::as_object),
        params
            .and_then(|p| p.get("arguments"))
            .and_then(Value::as_object),
    ) else {
        return;
    };
    let mut annotated = Vec::new();
    collect_annotated(schema, &mut Vec::new(), &mut annotated);
    let mut headers: Vec<(String, Option<String>)> = Vec::new();
    let mut mirrorable = true;
    for (path, header) in &annotated {
        let value = path
            .iter()
            .try_fold(None::<&Value>, |at, key| match at {
                None => Some(arguments.get(key.as_str())),
                Some(Value::Object(object)) => Some(object.get(key.as_str())),
                Some(_) => None,
            })
            .flatten()
            .filter(|value| !value.is_null());
        let Some(value) = value else { continue };
        let text = match value {
            Value::String(text) => sentinel(text),
            Value::Bool(_) | Value::Number(_) => value.to_string(),
            _ => {
                mirrorable = false;
                continue;
            }
        };
        let lower = header.to_ascii_lowercase();
        match headers.iter().find(|(name, _)| *name == lower) {
            // Two arguments mirrored in one header can only agree by chance.
            Some((_, existing)) if existing.as_deref() != Some(text.as_str()) => mirrorable = false,
            Some(_) => {}
            None => headers.push((lower, Some(text))),
        }
    }
    let checked = check_param_headers(schema, arguments, &headers);
    if mirrorable {
        assert!(checked.is_ok(), "{checked:?} for {headers:?}");
    } else if let Err(error) = checked {
        assert_eq!(error.code, codes::HEADER_MISMATCH);
    }
}

/// The same walk `check_param_headers` documents: every `properties` path with `x-mcp-header`.
fn collect_annotated(
    schema: &Map<String, Value>,
    path: &mut Vec<String>,
    found: &mut Vec<(Vec<String>, String)>,
) {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (key, property) in properties {
        let Some(property) = property.as_object() else {
            continue;
        };
        path.push(key.clone());
        if let Some(name) = property.get("x-mcp-header").and_then(Value::as_str) {
            found.push((path.clone(), name.to_owned()));
        }
        collect_annotated(property, path, found);
        path.pop();
    }
}

/// Everything the session reads of one member before it dispatches.
fn check_dispatch_inputs(member: &Member) {
    let (method, params) = match member {
        Ok(Message::Request(request)) => (&request.method, request.params.as_ref()),
        Ok(Message::Notification(notification)) => {
            (&notification.method, notification.params.as_ref())
        }
        _ => return,
    };
    check_meta(method, params);
    check_headers(method, params);
}

fn check_replies(replies: Vec<Outgoing>, batch: bool) {
    if replies.is_empty() {
        return;
    }
    if !batch {
        for reply in &replies {
            let parsed: Value = serde_json::from_str(&line_of(reply)).expect("a reply is JSON");
            check_reply(reply, &parsed);
        }
        return;
    }
    let outgoing = Outgoing::Batch(replies);
    let parsed: Value = serde_json::from_str(&line_of(&outgoing)).expect("a batch reply is JSON");
    let Outgoing::Batch(replies) = &outgoing else {
        unreachable!()
    };
    let items = parsed.as_array().expect("a batch reply is an array");
    assert_eq!(items.len(), replies.len());
    for (reply, item) in replies.iter().zip(items) {
        check_reply(reply, item);
    }
}

fuzz_target!(|data: &[u8]| {
    let raw: Option<Value> = serde_json::from_slice(data).ok();
    match parse_frame(data) {
        Frame::Single(member) => {
            match &raw {
                None => {
                    let rejected = member.as_ref().expect_err("not JSON, not a message");
                    assert_eq!(rejected.error.code, codes::PARSE_ERROR);
                    assert_eq!(rejected.id, None);
                }
                Some(Value::Array(items)) => {
                    assert!(items.is_empty());
                    assert_eq!(
                        member.as_ref().map_err(|r| r.error.code).err(),
                        Some(codes::INVALID_REQUEST)
                    );
                }
                Some(value) => check_member(value, &member),
            }
            check_dispatch_inputs(&member);
            check_replies(reply_for(&member).into_iter().collect(), false);
        }
        Frame::Batch(members) => {
            let Some(Value::Array(items)) = &raw else {
                panic!("a batch from something that is not an array");
            };
            assert_eq!(items.len(), members.len());
            assert!(!members.is_empty());
            for (item, member) in items.iter().zip(&members) {
                check_member(item, member);
                check_dispatch_inputs(member);
            }
            check_replies(members.iter().filter_map(reply_for).collect(), true);
        }
    }
});
