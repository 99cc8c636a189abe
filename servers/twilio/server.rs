//! twilio: guMCP's 22 tools over Twilio's REST APIs — Programmable Messaging and Voice
//! (`api.twilio.com/2010-04-01`, under the account), Verify, Lookup, Conversations and Video,
//! each on its own host. Code rather than declarations because the account SID in the paths
//! comes from the stored credential and the tools span five hosts; each tool is one form
//! request (Twilio's bodies are form-encoded, parameters capitalised) built by [`request`].
//! The API key SID and secret go as HTTP Basic (`inject = "basic_fields:…"`).

use std::sync::Arc;

use reqwest::Method;
use rmcp::model::{CallToolResult, JsonObject, Tool};
use serde_json::{json, Map, Value};

use crate::auth::key_fields;
use crate::protocol::error::McpError;
use crate::servers::http::Upstream;
use crate::servers::kit::{answer, id_segment, required_text, segment, text, tool};
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, Features, McpServer, RequestContext, ServerFuture, ServerInit};

const API: &str = "https://api.twilio.com";
const VERIFY: &str = "https://verify.twilio.com";
const LOOKUPS: &str = "https://lookups.twilio.com";
const CONVERSATIONS: &str = "https://conversations.twilio.com";
const VIDEO: &str = "https://video.twilio.com";

/// guMCP's page size when none is given.
const PAGE_SIZE: i64 = 20;

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    Arc::new(Twilio {
        manifest: init.manifest,
        upstream: init.upstream,
        tools: tools(),
    })
}

struct Twilio {
    manifest: Arc<Manifest>,
    upstream: Upstream,
    tools: Vec<Tool>,
}

fn tools() -> Vec<Tool> {
    vec![
        tool(
            "send_message",
            "Send an SMS (or WhatsApp message, channel \"whatsapp\") with optional media",
            json!({"type": "object", "properties": {"to": {"type": "string", "description": "The recipient (E.164, e.g. +15551234567; an address for email verification)"}, "from": {"type": "string", "description": "A Twilio number or sender of the account (E.164)"}, "body": {"type": "string", "description": "The text"}, "media_url": {"type": "string", "description": "A public URL of media to attach"}, "channel": {"type": "string", "enum": ["sms", "whatsapp"], "description": "The channel"}}, "required": ["to", "from"]}),
        ),
        tool(
            "list_messages",
            "The account's messages, newest first, one block each",
            json!({"type": "object", "properties": {"page_size": {"type": "integer", "description": "How many per page (default 20)"}, "page_token": {"type": "string", "description": "The page token of a previous answer"}}, "required": []}),
        ),
        tool(
            "fetch_message",
            "A message",
            json!({"type": "object", "properties": {"message_sid": {"type": "string", "description": "The message SID (SM… or MM…)"}}, "required": ["message_sid"]}),
        ),
        tool(
            "delete_message",
            "Delete a message from the account",
            json!({"type": "object", "properties": {"message_sid": {"type": "string", "description": "The message SID (SM… or MM…)"}}, "required": ["message_sid"]}),
        ),
        tool(
            "make_call",
            "Place a call that runs the TwiML at url, or says text",
            json!({"type": "object", "properties": {"to": {"type": "string", "description": "The recipient (E.164, e.g. +15551234567; an address for email verification)"}, "from": {"type": "string", "description": "A Twilio number or sender of the account (E.164)"}, "url": {"type": "string", "description": "A URL answering TwiML for the call"}, "text": {"type": "string", "description": "Words to say when the call is answered"}}, "required": ["to", "from"]}),
        ),
        tool(
            "list_calls",
            "The account's calls, newest first, one block each",
            json!({"type": "object", "properties": {"page_size": {"type": "integer", "description": "How many per page (default 20)"}, "page_token": {"type": "string", "description": "The page token of a previous answer"}}, "required": []}),
        ),
        tool(
            "fetch_call",
            "A call",
            json!({"type": "object", "properties": {"call_sid": {"type": "string", "description": "The call SID (CA…)"}}, "required": ["call_sid"]}),
        ),
        tool(
            "list_verify_services",
            "Verify services, one block each",
            json!({"type": "object", "properties": {"page_size": {"type": "integer", "description": "How many per page (default 20)"}}, "required": []}),
        ),
        tool(
            "create_verify_service",
            "Create a Verify service",
            json!({"type": "object", "properties": {"friendly_name": {"type": "string", "description": "A name for it"}, "code_length": {"type": "integer", "description": "Digits in a code (4–10)"}, "lookup_enabled": {"type": "boolean", "description": "Whether to look numbers up before sending"}, "skip_sms_to_landlines": {"type": "boolean", "description": "Whether to skip SMS to landlines"}, "dtmf_input_required": {"type": "boolean", "description": "Whether calls need a key press"}}, "required": ["friendly_name"]}),
        ),
        tool(
            "start_verification",
            "Send a verification code to a number or address",
            json!({"type": "object", "properties": {"service_sid": {"type": "string", "description": "The service SID"}, "to": {"type": "string", "description": "The recipient (E.164, e.g. +15551234567; an address for email verification)"}, "channel": {"type": "string", "description": "sms, call, email or whatsapp"}}, "required": ["service_sid", "to", "channel"]}),
        ),
        tool(
            "check_verification",
            "Check a verification code",
            json!({"type": "object", "properties": {"service_sid": {"type": "string", "description": "The service SID"}, "to": {"type": "string", "description": "The recipient (E.164, e.g. +15551234567; an address for email verification)"}, "code": {"type": "string", "description": "The code the person received"}}, "required": ["service_sid", "to", "code"]}),
        ),
        tool(
            "lookup_phone_number",
            "Look a phone number up (format, country; data packages on request)",
            json!({"type": "object", "properties": {"phone_number": {"type": "string", "description": "The number (E.164, or national with country_code)"}, "country_code": {"type": "string", "description": "The ISO country of a national number"}, "add_ons": {"type": "array", "items": {"type": "string"}, "description": "Lookup data packages to add (line_type_intelligence, caller_name …)"}}, "required": ["phone_number"]}),
        ),
        tool(
            "list_conversation_services",
            "Conversations services, one block each",
            json!({"type": "object", "properties": {"page_size": {"type": "integer", "description": "How many per page (default 20)"}}, "required": []}),
        ),
        tool(
            "create_conversation_service",
            "Create a Conversations service",
            json!({"type": "object", "properties": {"friendly_name": {"type": "string", "description": "A name for it"}}, "required": ["friendly_name"]}),
        ),
        tool(
            "list_conversations",
            "A Conversations service's conversations, one block each",
            json!({"type": "object", "properties": {"service_sid": {"type": "string", "description": "The service SID"}, "page_size": {"type": "integer", "description": "How many per page (default 20)"}}, "required": ["service_sid"]}),
        ),
        tool(
            "create_conversation",
            "Create a conversation in a Conversations service",
            json!({"type": "object", "properties": {"service_sid": {"type": "string", "description": "The service SID"}, "friendly_name": {"type": "string", "description": "A name for it"}}, "required": ["service_sid"]}),
        ),
        tool(
            "add_conversation_participant",
            "Add a chat participant (by identity) to a conversation",
            json!({"type": "object", "properties": {"service_sid": {"type": "string", "description": "The service SID"}, "conversation_sid": {"type": "string", "description": "The conversation SID (CH…)"}, "identity": {"type": "string", "description": "The chat participant's identity"}}, "required": ["conversation_sid", "identity"]}),
        ),
        tool(
            "send_conversation_message",
            "Post a message in a conversation",
            json!({"type": "object", "properties": {"service_sid": {"type": "string", "description": "The service SID"}, "conversation_sid": {"type": "string", "description": "The conversation SID (CH…)"}, "body": {"type": "string", "description": "The message's text"}}, "required": ["conversation_sid", "body"]}),
        ),
        tool(
            "list_video_rooms",
            "Video rooms, one block each",
            json!({"type": "object", "properties": {"page_size": {"type": "integer", "description": "How many per page (default 20)"}}, "required": []}),
        ),
        tool(
            "create_video_room",
            "Create a Video room",
            json!({"type": "object", "properties": {"unique_name": {"type": "string", "description": "The room's unique name"}, "type": {"type": "string", "description": "The room type (group, go, peer-to-peer)"}, "status_callback": {"type": "string", "description": "A URL told of room events"}}, "required": ["unique_name"]}),
        ),
        tool(
            "fetch_video_room",
            "A Video room",
            json!({"type": "object", "properties": {"room_sid": {"type": "string", "description": "The room SID (RM…)"}}, "required": ["room_sid"]}),
        ),
        tool(
            "complete_video_room",
            "End a Video room (status completed)",
            json!({"type": "object", "properties": {"room_sid": {"type": "string", "description": "The room SID (RM…)"}}, "required": ["room_sid"]}),
        ),
    ]
}

/// One request to Twilio, and what of its answer a tool returns.
#[derive(Debug, PartialEq)]
struct Call {
    host: &'static str,
    method: Method,
    path: String,
    query: Vec<(&'static str, String)>,
    /// Form fields (POST); `None` for a GET or a DELETE.
    form: Option<Value>,
    /// A list answer's list (`messages`, `calls` …), returned one block per item.
    list: Option<&'static str>,
}

impl Call {
    fn get(host: &'static str, path: String) -> Call {
        Call {
            host,
            method: Method::GET,
            path,
            query: Vec::new(),
            form: None,
            list: None,
        }
    }

    fn post(host: &'static str, path: String, form: Value) -> Call {
        Call {
            method: Method::POST,
            form: Some(form),
            ..Call::get(host, path)
        }
    }

    /// A page of a list (`PageSize`, guMCP's default 20, and the page token when given).
    fn page(host: &'static str, path: String, list: &'static str, arguments: &JsonObject) -> Call {
        let size = arguments
            .get("page_size")
            .and_then(Value::as_i64)
            .unwrap_or(PAGE_SIZE);
        let mut query = vec![("PageSize", size.to_string())];
        if let Some(token) = text(arguments, "page_token").filter(|t| !t.is_empty()) {
            query.push(("PageToken", token.to_owned()));
        }
        Call {
            query,
            list: Some(list),
            ..Call::get(host, path)
        }
    }
}

/// Form fields from `(Twilio's parameter, argument)` pairs, each left out when absent.
fn fields(arguments: &JsonObject, pairs: &[(&str, &str)]) -> Value {
    let mut form = Map::new();
    for (param, argument) in pairs {
        if let Some(value) = arguments.get(*argument).filter(|value| !value.is_null()) {
            form.insert((*param).to_owned(), value.clone());
        }
    }
    Value::Object(form)
}

/// A phone number as the channel wants it: `whatsapp:+1…` on WhatsApp.
fn on_channel(number: &str, channel: Option<&str>) -> String {
    match channel {
        Some("whatsapp") if !number.starts_with("whatsapp:") => format!("whatsapp:{number}"),
        _ => number.to_owned(),
    }
}

/// TwiML that says `text`, escaped as XML.
fn say(text: &str) -> String {
    let escaped = text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;");
    format!("<Response><Say>{escaped}</Say></Response>")
}

/// The conversation's path: under its Conversations service when one is named, else in the
/// account's default service.
fn conversation_path(arguments: &JsonObject) -> Result<String, String> {
    let conversation = id_segment(required_text(arguments, "conversation_sid")?)?;
    Ok(
        match text(arguments, "service_sid").filter(|s| !s.is_empty()) {
            Some(service) => format!(
                "/v1/Services/{}/Conversations/{conversation}",
                id_segment(service)?
            ),
            None => format!("/v1/Conversations/{conversation}"),
        },
    )
}

/// The request a tool makes for the account `account`.
fn request(name: &str, arguments: &JsonObject, account: &str) -> Result<Call, String> {
    let account = format!("/2010-04-01/Accounts/{}", id_segment(account)?);
    let sid = |key: &str| required_text(arguments, key).and_then(id_segment);
    Ok(match name {
        "send_message" => {
            let channel = text(arguments, "channel");
            let mut form = json!({
                "To": on_channel(required_text(arguments, "to")?, channel),
                "From": on_channel(required_text(arguments, "from")?, channel),
            });
            for (param, argument) in [("Body", "body"), ("MediaUrl", "media_url")] {
                if let Some(value) = text(arguments, argument).filter(|v| !v.is_empty()) {
                    form[param] = json!(value);
                }
            }
            Call::post(API, format!("{account}/Messages.json"), form)
        }
        "list_messages" => Call::page(
            API,
            format!("{account}/Messages.json"),
            "messages",
            arguments,
        ),
        "fetch_message" => Call::get(
            API,
            format!("{account}/Messages/{}.json", sid("message_sid")?),
        ),
        "delete_message" => Call {
            method: Method::DELETE,
            ..Call::get(
                API,
                format!("{account}/Messages/{}.json", sid("message_sid")?),
            )
        },
        "make_call" => {
            let mut form = json!({
                "To": required_text(arguments, "to")?,
                "From": required_text(arguments, "from")?,
            });
            match (
                text(arguments, "url").filter(|v| !v.is_empty()),
                text(arguments, "text").filter(|v| !v.is_empty()),
            ) {
                (Some(url), _) => form["Url"] = json!(url),
                (None, Some(words)) => form["Twiml"] = json!(say(words)),
                (None, None) => return Err("give url (TwiML to run) or text (words to say)".into()),
            }
            Call::post(API, format!("{account}/Calls.json"), form)
        }
        "list_calls" => Call::page(API, format!("{account}/Calls.json"), "calls", arguments),
        "fetch_call" => Call::get(API, format!("{account}/Calls/{}.json", sid("call_sid")?)),
        "list_verify_services" => Call::page(VERIFY, "/v2/Services".into(), "services", arguments),
        "create_verify_service" => Call::post(
            VERIFY,
            "/v2/Services".into(),
            fields(
                arguments,
                &[
                    ("FriendlyName", "friendly_name"),
                    ("CodeLength", "code_length"),
                    ("LookupEnabled", "lookup_enabled"),
                    ("SkipSmsToLandlines", "skip_sms_to_landlines"),
                    ("DtmfInputRequired", "dtmf_input_required"),
                ],
            ),
        ),
        "start_verification" => Call::post(
            VERIFY,
            format!("/v2/Services/{}/Verifications", sid("service_sid")?),
            fields(arguments, &[("To", "to"), ("Channel", "channel")]),
        ),
        "check_verification" => Call::post(
            VERIFY,
            format!("/v2/Services/{}/VerificationCheck", sid("service_sid")?),
            fields(arguments, &[("To", "to"), ("Code", "code")]),
        ),
        "lookup_phone_number" => {
            let number = required_text(arguments, "phone_number")?;
            let mut call = Call::get(LOOKUPS, format!("/v2/PhoneNumbers/{}", segment(number)));
            if let Some(country) = text(arguments, "country_code").filter(|c| !c.is_empty()) {
                call.query.push(("CountryCode", country.to_owned()));
            }
            let packages: Vec<&str> = arguments
                .get("add_ons")
                .and_then(Value::as_array)
                .map(|list| list.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if !packages.is_empty() {
                call.query.push(("Fields", packages.join(",")));
            }
            call
        }
        "list_conversation_services" => {
            Call::page(CONVERSATIONS, "/v1/Services".into(), "services", arguments)
        }
        "create_conversation_service" => Call::post(
            CONVERSATIONS,
            "/v1/Services".into(),
            fields(arguments, &[("FriendlyName", "friendly_name")]),
        ),
        "list_conversations" => Call::page(
            CONVERSATIONS,
            format!("/v1/Services/{}/Conversations", sid("service_sid")?),
            "conversations",
            arguments,
        ),
        "create_conversation" => Call::post(
            CONVERSATIONS,
            format!("/v1/Services/{}/Conversations", sid("service_sid")?),
            fields(arguments, &[("FriendlyName", "friendly_name")]),
        ),
        "add_conversation_participant" => Call::post(
            CONVERSATIONS,
            format!("{}/Participants", conversation_path(arguments)?),
            fields(arguments, &[("Identity", "identity")]),
        ),
        "send_conversation_message" => Call::post(
            CONVERSATIONS,
            format!("{}/Messages", conversation_path(arguments)?),
            fields(arguments, &[("Body", "body")]),
        ),
        "list_video_rooms" => Call::page(VIDEO, "/v1/Rooms".into(), "rooms", arguments),
        "create_video_room" => Call::post(
            VIDEO,
            "/v1/Rooms".into(),
            fields(
                arguments,
                &[
                    ("UniqueName", "unique_name"),
                    ("Type", "type"),
                    ("StatusCallback", "status_callback"),
                ],
            ),
        ),
        "fetch_video_room" => Call::get(VIDEO, format!("/v1/Rooms/{}", sid("room_sid")?)),
        "complete_video_room" => Call::post(
            VIDEO,
            format!("/v1/Rooms/{}", sid("room_sid")?),
            json!({ "Status": "completed" }),
        ),
        other => return Err(format!("Unknown tool: {other}")),
    })
}

impl Twilio {
    /// The account SID from the stored credential.
    async fn account(&self, ctx: &RequestContext) -> Result<String, String> {
        let credentials = ctx.credentials.get().await.map_err(|err| err.to_string())?;
        self.manifest
            .auth
            .key_fields
            .iter()
            .find(|field| field.name == "account_sid")
            .and_then(|field| key_fields::value_of(&credentials, field))
            .map(str::to_owned)
            .ok_or_else(|| {
                format!(
                    "the Twilio Account SID of user {} is not stored; reconnect with \
                     `gumcp-actors auth --server twilio --user-id {}`",
                    ctx.user_id, ctx.user_id
                )
            })
    }

    async fn call(
        &self,
        name: &str,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let account = self.account(ctx).await?;
        let call = request(name, arguments, &account)?;
        let api = self.upstream.api(&self.manifest, call.host, ctx);
        let answer = match &call.form {
            Some(form) => api.form(call.method, &call.path, &call.query, form).await?,
            None => api.json(call.method, &call.path, &call.query, None).await?,
        };
        Ok(match (answer, call.list) {
            // Only a deletion answers nothing (204).
            (Value::Null, _) => json!(format!(
                "Message {} was deleted",
                text(arguments, "message_sid").unwrap_or_default()
            )),
            (answer, Some(list)) => answer.get(list).cloned().unwrap_or(answer),
            (answer, None) => answer,
        })
    }
}

impl McpServer for Twilio {
    fn features(&self) -> Features {
        Features::default()
    }

    fn tools(&self) -> Vec<Tool> {
        self.tools.clone()
    }

    fn call_tool<'a>(
        &'a self,
        name: &'a str,
        arguments: JsonObject,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<CallToolResult, CallError>> {
        Box::pin(async move {
            if !self.tools.iter().any(|tool| tool.name == name) {
                return Err(McpError::invalid_params(format!("Unknown tool: {name}")).into());
            }
            Ok(answer(self.call(name, &arguments, ctx).await))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spoken_text_is_escaped_twiml() {
        assert_eq!(
            say("Tom & Jerry <3"),
            "<Response><Say>Tom &amp; Jerry &lt;3</Say></Response>"
        );
    }

    #[test]
    fn whatsapp_numbers_carry_their_prefix_once() {
        let arguments = json!({ "to": "+15551234567", "from": "whatsapp:+15557654321",
                                "body": "hi", "channel": "whatsapp" });
        let call = request("send_message", arguments.as_object().unwrap(), "AC1").unwrap();
        assert_eq!(
            call.form,
            Some(
                json!({ "To": "whatsapp:+15551234567", "From": "whatsapp:+15557654321", "Body": "hi" })
            )
        );
    }
}
