//! JSON-RPC 2.0 framing: what a line (or an HTTP body) holds, and how replies are written.
//!
//! This layer is ours rather than rmcp's because the transports need answers rmcp's message
//! enums do not give: a parse error still gets a reply with `id: null`, a batch (protocol
//! 2025-03-26) is split into its members, and a malformed member of a batch is answered on its
//! own without failing the others.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::de::{self, Deserializer, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::McpError;

/// A request id: a string or an integer, never `null` (MCP narrows JSON-RPC here).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RequestId {
    Number(i64),
    String(Arc<str>),
}

impl RequestId {
    /// Reads an id as MCP allows it; fractional, out-of-range and `null` ids are refused.
    pub fn from_json(value: &Value) -> Option<Self> {
        match value {
            Value::Number(n) => n.as_i64().map(RequestId::Number),
            Value::String(s) => Some(RequestId::String(Arc::from(s.as_str()))),
            _ => None,
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            RequestId::Number(n) => Value::from(*n),
            RequestId::String(s) => Value::from(s.as_ref()),
        }
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestId::Number(n) => write!(f, "{n}"),
            RequestId::String(s) => write!(f, "{s:?}"),
        }
    }
}

impl Serialize for RequestId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            RequestId::Number(n) => serializer.serialize_i64(*n),
            RequestId::String(s) => serializer.serialize_str(s),
        }
    }
}

/// A request from the peer: it expects exactly one response with the same id.
#[derive(Debug, Clone)]
pub struct Request {
    pub id: RequestId,
    pub method: String,
    pub params: Option<Map<String, Value>>,
}

/// A notification from the peer: no response, ever.
#[derive(Debug, Clone)]
pub struct Notification {
    pub method: String,
    pub params: Option<Map<String, Value>>,
}

/// A response from the peer to a request this side sent (sampling, elicitation, roots).
#[derive(Debug, Clone)]
pub struct Response {
    pub id: RequestId,
    pub outcome: Result<Value, McpError>,
}

/// One well-formed JSON-RPC message.
#[derive(Debug, Clone)]
pub enum Message {
    Request(Request),
    Notification(Notification),
    Response(Response),
}

/// What one frame held: a message, a batch of them, or something that must be answered with an
/// error (and the id to answer with, when one could be read).
#[derive(Debug)]
pub enum Frame {
    Single(Result<Message, Rejected>),
    Batch(Vec<Result<Message, Rejected>>),
}

/// A frame or batch member that is not a valid message, with the reply it deserves.
#[derive(Debug, Clone)]
pub struct Rejected {
    pub id: Option<RequestId>,
    pub error: McpError,
}

impl Rejected {
    fn invalid(id: Option<RequestId>, why: impl Into<String>) -> Self {
        Rejected {
            id,
            error: McpError::invalid_request(why),
        }
    }
}

/// Parses one frame. Never fails: invalid input becomes a [`Rejected`] that carries its reply.
pub fn parse_frame(bytes: &[u8]) -> Frame {
    if let Ok(envelope) = serde_json::from_slice::<Envelope>(bytes) {
        if let Some(message) = envelope.into_message() {
            return Frame::Single(Ok(message));
        }
    }
    parse_frame_in_full(bytes)
}

/// A single well-formed request or notification, read straight into its parts: the common
/// frame skips building a `Value` tree for the envelope (its map, its keys, `"2.0"`) only to
/// take it apart. Whatever this does not take — a batch, a response, a key of the wrong type,
/// a `null` id or `params`, a duplicate key, a key it does not know — goes through
/// [`parse_frame_in_full`], which finds the precise error or reads it the same way. Unknown
/// keys are refused rather than skipped because serde skips a value without checking all of
/// it (a key or string that is not UTF-8, say): a frame that is not JSON must stay a parse
/// error.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope<'a> {
    #[serde(borrow)]
    jsonrpc: Cow<'a, str>,
    #[serde(default, deserialize_with = "present_id")]
    id: Option<RequestId>,
    method: String,
    #[serde(default, deserialize_with = "present_object")]
    params: Option<Map<String, Value>>,
}

impl Envelope<'_> {
    fn into_message(self) -> Option<Message> {
        if self.jsonrpc != "2.0" {
            return None;
        }
        let Envelope {
            id, method, params, ..
        } = self;
        Some(match id {
            Some(id) => Message::Request(Request { id, method, params }),
            None => Message::Notification(Notification { method, params }),
        })
    }
}

/// An `id` that is there: a string or an integer that fits in 64 bits (anything else, `null`
/// included, fails and leaves the frame to the full parse).
fn present_id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<RequestId>, D::Error> {
    struct IdVisitor;

    impl Visitor<'_> for IdVisitor {
        type Value = RequestId;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string or an integer")
        }

        fn visit_i64<E: de::Error>(self, n: i64) -> Result<RequestId, E> {
            Ok(RequestId::Number(n))
        }

        fn visit_u64<E: de::Error>(self, n: u64) -> Result<RequestId, E> {
            i64::try_from(n)
                .map(RequestId::Number)
                .map_err(|_| E::custom("id out of range"))
        }

        fn visit_str<E: de::Error>(self, s: &str) -> Result<RequestId, E> {
            Ok(RequestId::String(Arc::from(s)))
        }
    }

    deserializer.deserialize_any(IdVisitor).map(Some)
}

/// `params` that are there: an object (`null` fails and leaves the frame to the full parse).
fn present_object<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Map<String, Value>>, D::Error> {
    Map::deserialize(deserializer).map(Some)
}

/// Parses one frame through a `Value` tree: batches, responses, and every frame the envelope
/// did not take (with the error it deserves).
fn parse_frame_in_full(bytes: &[u8]) -> Frame {
    let value: Value = match serde_json::from_slice(bytes) {
        Ok(value) => value,
        Err(err) => {
            return Frame::Single(Err(Rejected {
                id: None,
                error: McpError::parse_error(format!("the message is not valid JSON: {err}")),
            }))
        }
    };
    match value {
        Value::Array(items) if items.is_empty() => Frame::Single(Err(Rejected::invalid(
            None,
            "an empty batch is not a valid JSON-RPC message",
        ))),
        Value::Array(items) => Frame::Batch(items.into_iter().map(parse_message).collect()),
        other => Frame::Single(parse_message(other)),
    }
}

/// Classifies one JSON value as a request, notification or response.
pub fn parse_message(value: Value) -> Result<Message, Rejected> {
    let Value::Object(mut object) = value else {
        return Err(Rejected::invalid(
            None,
            "a JSON-RPC message must be a JSON object",
        ));
    };
    let raw_id = object.remove("id");
    let id = match &raw_id {
        None => None,
        Some(raw) => match RequestId::from_json(raw) {
            Some(id) => Some(id),
            None => {
                return Err(Rejected::invalid(
                    None,
                    match raw {
                        Value::Null => "\"id\" must not be null in MCP: use a string or an integer",
                        Value::Number(_) => {
                            "\"id\" must be a whole number that fits in 64 bits, or a string"
                        }
                        _ => "\"id\" must be a string or an integer",
                    },
                ))
            }
        },
    };
    match object.get("jsonrpc") {
        Some(Value::String(v)) if v == "2.0" => {}
        _ => return Err(Rejected::invalid(id, "\"jsonrpc\" must be exactly \"2.0\"")),
    }
    let params = match object.remove("params") {
        None => None,
        Some(Value::Object(params)) => Some(params),
        Some(_) => {
            return Err(Rejected::invalid(
                id,
                "\"params\" must be a JSON object in MCP",
            ))
        }
    };
    if let Some(method) = object.remove("method") {
        let Value::String(method) = method else {
            return Err(Rejected::invalid(id, "\"method\" must be a string"));
        };
        return Ok(match id {
            Some(id) => Message::Request(Request { id, method, params }),
            None => Message::Notification(Notification { method, params }),
        });
    }
    let Some(id) = id else {
        return Err(Rejected::invalid(
            None,
            "the message has neither \"method\" nor \"id\"",
        ));
    };
    match (object.remove("result"), object.remove("error")) {
        (Some(result), None) => Ok(Message::Response(Response {
            id,
            outcome: Ok(result),
        })),
        (None, Some(error)) => Ok(Message::Response(Response {
            id,
            outcome: Err(McpError::from_json(&error)),
        })),
        _ => Err(Rejected::invalid(
            Some(id),
            "a response must carry exactly one of \"result\" and \"error\"",
        )),
    }
}

/// A message this side writes: a reply, a notification, or a request to the client.
#[derive(Debug, Clone)]
pub enum Outgoing {
    Result {
        id: RequestId,
        result: Value,
    },
    Error {
        id: Option<RequestId>,
        error: McpError,
    },
    Notification {
        method: &'static str,
        params: Value,
    },
    Request {
        id: RequestId,
        method: &'static str,
        params: Value,
    },
    /// Replies to a batch (2025-03-26), written as one JSON array.
    Batch(Vec<Outgoing>),
}

impl Outgoing {
    pub fn reply(id: RequestId, outcome: Result<Value, McpError>) -> Self {
        match outcome {
            Ok(result) => Outgoing::Result { id, result },
            Err(error) => Outgoing::Error {
                id: Some(id),
                error,
            },
        }
    }

    pub fn notification(method: &'static str, params: Value) -> Self {
        Outgoing::Notification { method, params }
    }

    /// Whether this ends the exchange it belongs to (a reply), as opposed to a notification or
    /// request sent while a request is being worked on.
    pub fn is_reply(&self) -> bool {
        matches!(
            self,
            Outgoing::Result { .. } | Outgoing::Error { .. } | Outgoing::Batch(_)
        )
    }

    /// The message as one line of JSON (serialising a `Value` tree cannot fail).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl Serialize for Outgoing {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if let Outgoing::Batch(replies) = self {
            return serializer.collect_seq(replies);
        }
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry("jsonrpc", "2.0")?;
        match self {
            Outgoing::Result { id, result } => {
                map.serialize_entry("id", id)?;
                map.serialize_entry("result", result)?;
            }
            Outgoing::Error { id, error } => {
                map.serialize_entry("id", id)?;
                map.serialize_entry("error", error)?;
            }
            Outgoing::Notification { method, params } => {
                map.serialize_entry("method", method)?;
                if !params.is_null() {
                    map.serialize_entry("params", params)?;
                }
            }
            Outgoing::Request { id, method, params } => {
                map.serialize_entry("id", id)?;
                map.serialize_entry("method", method)?;
                map.serialize_entry("params", params)?;
            }
            Outgoing::Batch(_) => {}
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::error::codes;
    use serde_json::json;

    fn single(text: &str) -> Result<Message, Rejected> {
        match parse_frame(text.as_bytes()) {
            Frame::Single(message) => message,
            Frame::Batch(_) => panic!("expected a single message"),
        }
    }

    /// The envelope is only a shortcut: every frame reads the same with it as without it.
    #[test]
    fn the_envelope_reads_frames_as_the_full_parse_does() {
        let frames = [
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"a","arguments":{"k":[1,{"x":null}]}}}"#,
            r#"{"jsonrpc":"2.0","id":"s\u00e9","method":"ping"}"#,
            r#"{"method":"ping","id":-3,"jsonrpc":"2.0","extra":true}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized","params":{}}"#,
            r#"{"jsonrpc":"2\u002e0","id":1,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":18446744073709551615,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":9223372036854775807,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":1.0,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":null}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":[1]}"#,
            r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#,
            r#"{"id":1,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":7}"#,
            r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
            r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"ping"} trailing"#,
        ];
        for frame in frames {
            assert_eq!(
                format!("{:?}", parse_frame(frame.as_bytes())),
                format!("{:?}", parse_frame_in_full(frame.as_bytes())),
                "{frame}"
            );
        }
        // Found by the fuzzer: an unknown key whose value holds a byte that is not UTF-8.
        let not_json = b"{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\",\"x\":{\"a\x9b\":1}}";
        let rejected = match parse_frame(not_json) {
            Frame::Single(Err(rejected)) => rejected,
            other => panic!("expected a parse error, got {other:?}"),
        };
        assert_eq!(rejected.error.code, codes::PARSE_ERROR);
    }

    #[test]
    fn invalid_json_is_a_parse_error_without_id() {
        let rejected = single("{\"jsonrpc\":").unwrap_err();
        assert_eq!(rejected.error.code, codes::PARSE_ERROR);
        assert_eq!(rejected.id, None);
    }

    #[test]
    fn requests_notifications_and_responses_are_told_apart() {
        assert!(matches!(
            single(r#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#),
            Ok(Message::Request(Request {
                id: RequestId::Number(7),
                ..
            }))
        ));
        assert!(matches!(
            single(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
            Ok(Message::Notification(_))
        ));
        assert!(matches!(
            single(r#"{"jsonrpc":"2.0","id":"s1","result":{}}"#),
            Ok(Message::Response(Response { outcome: Ok(_), .. }))
        ));
        let error = single(r#"{"jsonrpc":"2.0","id":"s1","error":{"code":-1,"message":"no"}}"#);
        assert!(matches!(
            error,
            Ok(Message::Response(Response {
                outcome: Err(McpError { code: -1, .. }),
                ..
            }))
        ));
    }

    #[test]
    fn wrong_version_null_id_and_bad_params_are_invalid_requests() {
        for text in [
            r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#,
            r#"{"id":1,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":[1]}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":3}"#,
            r#"{"jsonrpc":"2.0"}"#,
            r#"[]"#,
            r#"42"#,
        ] {
            let rejected = single(text).unwrap_err();
            assert_eq!(rejected.error.code, codes::INVALID_REQUEST, "{text}");
        }
    }

    #[test]
    fn the_id_of_an_invalid_request_is_kept_when_readable() {
        let rejected = single(r#"{"jsonrpc":"1.0","id":"abc","method":"ping"}"#).unwrap_err();
        assert_eq!(rejected.id, Some(RequestId::String("abc".into())));
    }

    #[test]
    fn batches_are_split_and_each_member_judged_alone() {
        let Frame::Batch(items) =
            parse_frame(br#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"bad":true}]"#)
        else {
            panic!("expected a batch");
        };
        assert!(items[0].is_ok());
        assert!(items[1].is_err());
    }

    #[test]
    fn outgoing_messages_serialise_as_json_rpc() {
        let reply = Outgoing::reply(RequestId::Number(1), Ok(json!({})));
        assert_eq!(reply.to_line(), r#"{"jsonrpc":"2.0","id":1,"result":{}}"#);
        let error = Outgoing::Error {
            id: None,
            error: McpError::parse_error("bad"),
        };
        assert_eq!(
            serde_json::from_str::<Value>(&error.to_line()).unwrap(),
            json!({"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"bad"}})
        );
    }
}
