//! What native servers' code shares, so a server's file holds only its own logic: declaring a
//! tool, reading arguments, putting ids into paths, and answering the way declared tools do
//! (the `http` engine answers through the same functions).

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use rmcp::model::{
    CallToolResult, ContentBlock, JsonObject, ReadResourceResult, ResourceContents, Tool,
};
use serde_json::{json, Value};

use super::{json_object, CallError};

/// Everything but RFC 3986's unreserved characters is encoded, so a value stays one path
/// segment: it can add neither segments nor a query of its own.
pub const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub fn tool(name: &'static str, description: &'static str, schema: Value) -> Tool {
    Tool::new(name, description, json_object(schema))
}

/// A string argument, if given.
pub fn text<'a>(arguments: &'a JsonObject, key: &str) -> Option<&'a str> {
    arguments.get(key).and_then(Value::as_str)
}

/// A string argument the tool cannot do without.
pub fn required_text<'a>(arguments: &'a JsonObject, key: &str) -> Result<&'a str, String> {
    text(arguments, key).ok_or_else(|| format!("{key} is required"))
}

/// A value as one path segment.
pub fn segment(value: &str) -> String {
    utf8_percent_encode(value, SEGMENT).to_string()
}

/// An id as one path segment; an empty id, `.` and `..` are refused (URL parsers resolve the
/// latter two, even encoded, which would move the request to another path).
pub fn id_segment(value: &str) -> Result<String, String> {
    if value.trim().is_empty() || value == "." || value == ".." {
        return Err(format!("{value:?} is not an id"));
    }
    Ok(segment(value))
}

/// The answer as guMCP gives it — a list as one text block per item (clients and saved Gumloop
/// flows loop over `content[]`), anything else as one block; each block the text itself for a
/// string, pretty JSON otherwise — and beside it as structured content, which must be an
/// object: lists become `{"items": […]}`, other values `{"result": …}`.
pub fn success(value: Value) -> CallToolResult {
    let blocks = match &value {
        Value::Array(items) => items.iter().map(text_block).collect(),
        other => vec![text_block(other)],
    };
    let structured = match value {
        Value::Object(object) => Value::Object(object),
        Value::Array(items) => json!({ "items": items }),
        other => json!({ "result": other }),
    };
    let mut result = CallToolResult::success(blocks);
    result.structured_content = Some(structured);
    result
}

/// One value as a text block: a string as it is, anything else as pretty JSON.
fn text_block(value: &Value) -> ContentBlock {
    ContentBlock::text(match value {
        Value::String(text) => text.clone(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    })
}

/// A tool's outcome as its answer: the value as [`success`] shapes it, or the failure's
/// sentence as a tool error.
pub fn answer(outcome: Result<Value, String>) -> CallToolResult {
    match outcome {
        Ok(value) => success(value),
        Err(message) => tool_error(message),
    }
}

/// A resource read answered with one text content of `mime_type`.
pub fn text_resource(uri: &str, text: String, mime_type: &str) -> ReadResourceResult {
    ReadResourceResult::new(vec![
        ResourceContents::text(text, uri).with_mime_type(mime_type)
    ])
}

/// A resource read answered with what an API gave for it, as pretty JSON; `None` (nothing
/// found under `uri`) is the protocol's resource-not-found.
pub fn json_resource(uri: &str, found: Option<Value>) -> Result<ReadResourceResult, CallError> {
    match found {
        Some(found) => {
            let text = serde_json::to_string_pretty(&found).unwrap_or_default();
            Ok(text_resource(uri, text, "application/json"))
        }
        None => Err(CallError::ResourceNotFound(uri.into())),
    }
}

/// A failure the model should read (`isError: true`).
pub fn tool_error(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.into())])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_stay_one_segment_and_dot_segments_are_refused() {
        assert_eq!(id_segment("a/b?c#d").unwrap(), "a%2Fb%3Fc%23d");
        assert_eq!(id_segment("ev_1-2.x~").unwrap(), "ev_1-2.x~");
        for bad in ["", " ", ".", ".."] {
            assert!(id_segment(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn answers_are_text_and_an_object() {
        let list = success(json!([{ "id": 1 }, "two"]));
        assert_eq!(
            list.structured_content,
            Some(json!({ "items": [{ "id": 1 }, "two"] }))
        );
        let texts: Vec<_> = list
            .content
            .iter()
            .filter_map(|block| block.as_text().map(|text| text.text.clone()))
            .collect();
        assert_eq!(texts, ["{\n  \"id\": 1\n}", "two"]);
        assert!(success(json!([])).content.is_empty());
        let text = success(json!("done"));
        assert_eq!(text.structured_content, Some(json!({ "result": "done" })));
        assert_eq!(tool_error("no").is_error, Some(true));
    }
}
