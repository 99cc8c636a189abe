//! gmail: Gmail (API v1) with guMCP's twelve tools, names and arguments.
//!
//! archive_email, trash_email, star_email and unstar_email are one call each and are declared
//! in `server.toml`; this code hands them to the runtime's `http` engine. The other eight need
//! code: read_emails fetches each message it found and decodes its text; send_email,
//! create_draft and forward_email build an RFC 5322 message (headers checked for line breaks,
//! non-ASCII words as RFC 2047 encoded-words, long headers folded) and send it base64url-encoded
//! as `raw`; update_email turns label names into ids; create_label sends only the colors given;
//! get_attachment_details walks the message's MIME parts; download_attachment returns the data
//! in standard base64. The runtime's `Api` does the credentials, the refresh-and-retry on 401
//! and the wording of upstream failures.
//!
//! Resources are guMCP's: each label but the system ones nobody browses (chat, sent, spam,
//! trash, drafts) is `gmail://label/{id}`, described with its unread and total counts; reading
//! one lists its ten most recent emails (id, subject, sender, date) as text.

use std::sync::Arc;

use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_PAD_INDIFFERENT};
use base64::Engine;
use futures::{FutureExt, StreamExt, TryStreamExt};
use reqwest::Method;
use rmcp::model::{CallToolResult, JsonObject, ReadResourceResult, Resource, Tool};
use serde_json::{json, Map, Value};

use crate::protocol::error::McpError;
use crate::servers::http::{Api, HttpServer, Upstream};
use crate::servers::kit::{answer, id_segment, required_text, text, text_resource, tool};
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, Features, McpServer, RequestContext, ServerFuture, ServerInit};

/// guMCP's order of the tools, declared and coded alike.
const ORDER: [&str; 12] = [
    "read_emails",
    "send_email",
    "update_email",
    "create_draft",
    "forward_email",
    "create_label",
    "archive_email",
    "trash_email",
    "star_email",
    "unstar_email",
    "get_attachment_details",
    "download_attachment",
];

/// How many messages read_emails fetches at once.
const FETCH_CONCURRENCY: usize = 8;

/// Gmail's own label ids; any other label that does not look like an id (`Label_…`) is taken
/// as a name and looked up.
const SYSTEM_LABELS: [&str; 14] = [
    "INBOX",
    "SPAM",
    "TRASH",
    "UNREAD",
    "STARRED",
    "IMPORTANT",
    "SENT",
    "DRAFT",
    "CHAT",
    "CATEGORY_PERSONAL",
    "CATEGORY_SOCIAL",
    "CATEGORY_PROMOTIONS",
    "CATEGORY_UPDATES",
    "CATEGORY_FORUMS",
];

/// What every label resource's URI starts with; the label id follows.
const LABEL_URI: &str = "gmail://label/";
/// System labels guMCP leaves out of the resources.
const UNLISTED_LABELS: [&str; 5] = ["CHAT", "SENT", "SPAM", "TRASH", "DRAFT"];
/// Emails a label resource shows, as many as guMCP's.
const LABEL_EMAILS: u64 = 10;

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    let declared = HttpServer::new(init.manifest.clone(), init.upstream.clone());
    let mut tools = coded_tools();
    tools.extend(declared.tools());
    tools.sort_by_key(|tool| ORDER.iter().position(|name| *name == tool.name));
    Arc::new(Gmail {
        manifest: init.manifest,
        upstream: init.upstream,
        declared,
        tools,
    })
}

struct Gmail {
    manifest: Arc<Manifest>,
    upstream: Upstream,
    /// The tools `server.toml` declares, run by the `http` engine.
    declared: HttpServer,
    tools: Vec<Tool>,
}

fn email_id_property(what: &str) -> Value {
    json!({ "type": "string", "description": what })
}

fn coded_tools() -> Vec<Tool> {
    vec![
        tool(
            "read_emails",
            "Search and read emails in Gmail",
            json!({
                "type": "object",
                "properties": {
                    "query": {
                        "type": "string",
                        "description": "Search query (e.g., 'from:someone@example.com' or 'subject:important')"
                    },
                    "max_results": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": 500,
                        "description": "Maximum number of emails to return (default: 10)"
                    }
                },
                "required": ["query"]
            }),
        ),
        tool(
            "send_email",
            "Send a new email or reply to an existing thread",
            json!({
                "type": "object",
                "properties": {
                    "to": { "type": "string", "description": "Recipient email address(es), comma separated" },
                    "subject": { "type": "string", "description": "Email subject" },
                    "body": { "type": "string", "description": "Email body (plain text)" },
                    "cc": { "type": "string", "description": "CC recipients (comma separated)" },
                    "bcc": { "type": "string", "description": "BCC recipients (comma separated)" },
                    "thread_id": { "type": "string", "description": "Optional: Thread ID to reply to (creates reply in thread)" },
                    "in_reply_to": { "type": "string", "description": "Optional: Message ID to reply to (for threaded conversations): the Gmail id of the message, or its Message-ID header (<…@…>)" }
                },
                "required": ["to", "subject", "body"]
            }),
        ),
        tool(
            "update_email",
            "Update email labels (mark as read/unread, move to folders)",
            json!({
                "type": "object",
                "properties": {
                    "email_id": email_id_property("Email ID to modify"),
                    "add_labels": {
                        "type": "array",
                        "items": { "type": "string" },
                        "description": "Labels to add (e.g., 'INBOX', 'STARRED', 'IMPORTANT'), by id or name"
                    },
                    "remove_labels": {
                        "type": "array",
                        "items": { "type": "string" },
                        "description": "Labels to remove (e.g., 'UNREAD'), by id or name"
                    }
                },
                "required": ["email_id"]
            }),
        ),
        tool(
            "create_draft",
            "Prepare emails without sending them",
            json!({
                "type": "object",
                "properties": {
                    "to": { "type": "string", "description": "Recipient email address" },
                    "subject": { "type": "string", "description": "Email subject" },
                    "body": { "type": "string", "description": "Email body (plain text)" },
                    "cc": { "type": "string", "description": "CC recipients (comma separated)" },
                    "bcc": { "type": "string", "description": "BCC recipients (comma separated)" },
                    "thread_id": { "type": "string", "description": "Optional thread ID to create a draft reply in an existing thread" }
                },
                "required": ["to", "subject", "body"]
            }),
        ),
        tool(
            "forward_email",
            "Forward an email to other recipients",
            json!({
                "type": "object",
                "properties": {
                    "email_id": email_id_property("Email ID to forward"),
                    "to": { "type": "string", "description": "Recipient email address(es), comma separated" },
                    "additional_text": { "type": "string", "description": "Additional text to include with the forwarded email" }
                },
                "required": ["email_id", "to"]
            }),
        ),
        tool(
            "create_label",
            "Create a new Gmail label for organization",
            json!({
                "type": "object",
                "properties": {
                    "name": { "type": "string", "description": "Name for the new label" },
                    "background_color": { "type": "string", "description": "Optional background color (hex code from Gmail's label palette, e.g. #16a765)" },
                    "text_color": { "type": "string", "description": "Optional text color (hex code from Gmail's label palette, e.g. #ffffff)" }
                },
                "required": ["name"]
            }),
        ),
        tool(
            "get_attachment_details",
            "Get details about attachments in an email",
            json!({
                "type": "object",
                "properties": {
                    "email_id": email_id_property("Email ID to get attachment details from")
                },
                "required": ["email_id"]
            }),
        ),
        tool(
            "download_attachment",
            "Download an email attachment: its content, base64-encoded",
            json!({
                "type": "object",
                "properties": {
                    "email_id": email_id_property("Email ID that contains the attachment"),
                    "attachment_id": { "type": "string", "description": "ID of the attachment to download (attachmentId from get_attachment_details)" },
                    "filename": { "type": "string", "description": "Filename to save the attachment as (returned with the data)" }
                },
                "required": ["email_id", "attachment_id"]
            }),
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// Arguments

/// A value that goes into an email header: one line, no control characters, so an argument
/// can never add headers of its own (or end the headers and start the body).
fn header_value<'a>(arguments: &'a JsonObject, key: &str) -> Result<Option<&'a str>, String> {
    let Some(value) = text(arguments, key) else {
        return Ok(None);
    };
    if value.contains(['\r', '\n']) {
        return Err(format!(
            "{key} must be a single line: line breaks (CR or LF) are not allowed in email headers"
        ));
    }
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(format!(
            "{key} must not contain control characters: they are not allowed in email headers"
        ));
    }
    Ok(Some(value))
}

/// A header value the caller may leave out or empty.
fn optional_header<'a>(arguments: &'a JsonObject, key: &str) -> Result<Option<&'a str>, String> {
    Ok(header_value(arguments, key)?.filter(|value| !value.trim().is_empty()))
}

fn message_path(arguments: &JsonObject) -> Result<String, String> {
    Ok(format!(
        "/users/me/messages/{}",
        id_segment(required_text(arguments, "email_id")?)?
    ))
}

fn strings(arguments: &JsonObject, key: &str) -> Vec<String> {
    arguments
        .get(key)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .filter(|label| !label.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// A value read from Gmail for a header we write: control characters (a folded header
/// Gmail left unfolded, say) become spaces.
fn one_line(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Building messages (RFC 5322, RFC 2045, RFC 2047)

/// The longest line a header is folded to when it can be (RFC 5322 §2.1.1).
const FOLD_AT: usize = 78;
/// The longest line allowed at all.
const MAX_LINE: usize = 998;
/// UTF-8 bytes per encoded-word: `=?UTF-8?B?` + 60 base64 characters + `?=` is 72 ≤ 75.
const WORD_BYTES: usize = 45;

/// `text` as RFC 2047 encoded-words (`=?UTF-8?B?…?=`), split between characters.
fn encoded_words(text: &str) -> Vec<String> {
    let word = |part: &str| format!("=?UTF-8?B?{}?=", STANDARD.encode(part.as_bytes()));
    let mut words = Vec::new();
    let mut start = 0;
    for (index, ch) in text.char_indices() {
        if index + ch.len_utf8() - start > WORD_BYTES {
            words.push(word(&text[start..index]));
            start = index;
        }
    }
    if start < text.len() || words.is_empty() {
        words.push(word(&text[start..]));
    }
    words
}

/// `name: pieces…` joined by `glue` and a space, folded before a piece where the line would
/// grow past [`FOLD_AT`]; unfolding (dropping the CRLFs) gives the unfolded header back.
fn fold(name: &str, pieces: &[String], glue: &str) -> String {
    let mut out = format!("{name}:");
    let mut line = out.len();
    for (index, piece) in pieces.iter().enumerate() {
        if index > 0 {
            out.push_str(glue);
            line += glue.len();
        }
        if index > 0 && !piece.is_empty() && line + 1 + piece.len() > FOLD_AT {
            out.push_str("\r\n ");
            line = 1;
        } else {
            out.push(' ');
            line += 1;
        }
        out.push_str(piece);
        line += piece.len();
    }
    out
}

/// An unstructured header (Subject): as it is when it is ASCII, else as encoded-words.
fn unstructured(name: &str, value: &str) -> String {
    let too_long = value
        .split(' ')
        .any(|word| name.len() + 2 + word.len() > MAX_LINE);
    if value.is_ascii() && !too_long {
        let words: Vec<String> = value.split(' ').map(str::to_owned).collect();
        fold(name, &words, "")
    } else {
        fold(name, &encoded_words(value), "")
    }
}

/// The addresses of a comma-separated list, split at the commas outside quotes and `<…>`.
fn split_addresses(list: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut quoted, mut angle, mut escaped) = (false, false, false);
    let mut start = 0;
    for (index, ch) in list.char_indices() {
        match ch {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                out.push(list[start..index].trim());
                start = index + 1;
            }
            _ => {}
        }
    }
    out.push(list[start..].trim());
    out.retain(|address| !address.is_empty());
    out
}

/// One address as a header carries it: a non-ASCII display name becomes encoded-words (an
/// address itself may stay UTF-8, RFC 6532).
fn address(one: &str) -> String {
    if one.is_ascii() {
        return one.to_owned();
    }
    let Some(open) = one.rfind('<').filter(|_| one.ends_with('>')) else {
        return one.to_owned();
    };
    let display = one[..open].trim();
    let display = match display.strip_prefix('"').and_then(|d| d.strip_suffix('"')) {
        Some(inner) => inner.replace("\\\"", "\"").replace("\\\\", "\\"),
        None => display.to_owned(),
    };
    if display.is_ascii() {
        return one.to_owned();
    }
    format!("{} {}", encoded_words(&display).join(" "), &one[open..])
}

fn address_header(name: &str, list: &str) -> Result<String, String> {
    let addresses: Vec<String> = split_addresses(list).into_iter().map(address).collect();
    if addresses.is_empty() {
        return Err(format!("{} names no address", name.to_ascii_lowercase()));
    }
    Ok(fold(name, &addresses, ","))
}

/// A Message-ID as `<…>`.
fn message_id(id: &str) -> String {
    let id = id.trim();
    if id.starts_with('<') && id.ends_with('>') {
        id.to_owned()
    } else {
        format!("<{id}>")
    }
}

/// Line breaks as CRLF, whatever the text used.
fn crlf(text: &str) -> String {
    text.replace("\r\n", "\n")
        .replace('\r', "\n")
        .replace('\n', "\r\n")
}

/// The body and its Content-Transfer-Encoding: ASCII with short lines as it is (7bit),
/// anything else base64 in lines of 76.
fn body_part(body: &str) -> (&'static str, String) {
    let text = crlf(body);
    let seven_bit = text.is_ascii()
        && !text.contains('\0')
        && text.split("\r\n").all(|line| line.len() <= MAX_LINE);
    if seven_bit {
        return ("7bit", text);
    }
    let encoded = STANDARD.encode(text.as_bytes());
    let lines: Vec<&str> = encoded
        .as_bytes()
        .chunks(76)
        .map(|chunk| std::str::from_utf8(chunk).unwrap_or_default())
        .collect();
    ("base64", lines.join("\r\n"))
}

/// A plain-text email as RFC 5322 text. `From`, `Date` and `Message-ID` are left to Gmail,
/// which sets them for the account sending it.
#[derive(Debug, Default)]
struct Email {
    to: String,
    cc: Option<String>,
    bcc: Option<String>,
    subject: String,
    body: String,
    in_reply_to: Option<String>,
    references: Option<String>,
}

impl Email {
    /// The headers and body given as arguments, checked: no header value may break a line.
    fn from_arguments(arguments: &JsonObject) -> Result<Email, String> {
        Ok(Email {
            to: header_value(arguments, "to")?
                .ok_or("to is required")?
                .to_owned(),
            cc: optional_header(arguments, "cc")?.map(str::to_owned),
            bcc: optional_header(arguments, "bcc")?.map(str::to_owned),
            subject: header_value(arguments, "subject")?
                .ok_or("subject is required")?
                .to_owned(),
            body: required_text(arguments, "body")?.to_owned(),
            ..Email::default()
        })
    }

    fn rfc5322(&self) -> Result<String, String> {
        let mut headers = vec![address_header("To", &self.to)?];
        if let Some(cc) = &self.cc {
            headers.push(address_header("Cc", cc)?);
        }
        if let Some(bcc) = &self.bcc {
            headers.push(address_header("Bcc", bcc)?);
        }
        headers.push(unstructured("Subject", &self.subject));
        if let Some(id) = &self.in_reply_to {
            headers.push(format!("In-Reply-To: {id}"));
        }
        if let Some(references) = &self.references {
            let ids: Vec<String> = references.split_whitespace().map(str::to_owned).collect();
            headers.push(fold("References", &ids, ""));
        }
        let (encoding, body) = body_part(&self.body);
        headers.push("MIME-Version: 1.0".to_owned());
        headers.push("Content-Type: text/plain; charset=\"utf-8\"".to_owned());
        headers.push(format!("Content-Transfer-Encoding: {encoding}"));
        Ok(format!("{}\r\n\r\n{body}", headers.join("\r\n")))
    }

    /// The message as Gmail's `raw`: base64url of the RFC 5322 text.
    fn raw(&self) -> Result<String, String> {
        Ok(URL_SAFE.encode(self.rfc5322()?.as_bytes()))
    }
}

// ---------------------------------------------------------------------------------------------
// Reading messages

/// A header of a message part, by name in any case.
fn header<'a>(part: &'a Value, name: &str) -> Option<&'a str> {
    part.get("headers")?
        .as_array()?
        .iter()
        .find(|header| {
            header
                .get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })?
        .get("value")?
        .as_str()
}

fn parts(part: &Value) -> &[Value] {
    part.get("parts")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// Body data as Gmail sends it (base64url) decoded to text: UTF-8, else read as Latin-1.
fn decoded_text(data: &str) -> Option<String> {
    let bytes = URL_SAFE_PAD_INDIFFERENT.decode(data.trim()).ok()?;
    Some(match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(err) => err.into_bytes().iter().map(|&b| char::from(b)).collect(),
    })
}

/// The plain text of a message (guMCP's walk): a text/plain body, else the text/plain parts
/// of its multipart parts, attachments left out.
fn plain_text(part: &Value) -> String {
    let mime = part.get("mimeType").and_then(Value::as_str).unwrap_or("");
    if mime.eq_ignore_ascii_case("text/plain") {
        if let Some(data) = part.pointer("/body/data").and_then(Value::as_str) {
            return decoded_text(data).unwrap_or_default();
        }
    }
    let texts: Vec<String> = parts(part)
        .iter()
        .filter(|part| filename(part).is_none())
        .filter(|part| {
            let mime = part.get("mimeType").and_then(Value::as_str).unwrap_or("");
            mime.starts_with("text/") || mime.starts_with("multipart/")
        })
        .map(plain_text)
        .filter(|text| !text.is_empty())
        .collect();
    texts.join("\n")
}

fn filename(part: &Value) -> Option<&str> {
    part.get("filename")
        .and_then(Value::as_str)
        .filter(|name| !name.is_empty())
}

/// Every part with a file name, however deeply nested.
fn attachments(part: &Value, found: &mut Vec<Value>) {
    if let Some(name) = filename(part) {
        let inline = header(part, "Content-Disposition")
            .is_some_and(|d| d.trim_start().to_ascii_lowercase().starts_with("inline"));
        found.push(json!({
            "filename": name,
            "mimeType": part.get("mimeType").cloned().unwrap_or(Value::Null),
            "partId": part.get("partId").cloned().unwrap_or(Value::Null),
            "attachmentId": part.pointer("/body/attachmentId").cloned().unwrap_or(Value::Null),
            "size": part.pointer("/body/size").cloned().unwrap_or(json!(0)),
            "inline": inline,
        }));
    }
    for child in parts(part) {
        attachments(child, found);
    }
}

fn attachments_of(message: &Value) -> Vec<Value> {
    let mut found = Vec::new();
    if let Some(payload) = message.get("payload") {
        attachments(payload, &mut found);
    }
    found
}

/// A message as read_emails shows it (guMCP's fields).
fn readable(message: &Value) -> Value {
    let payload = message.get("payload").unwrap_or(&Value::Null);
    let header_or =
        |name: &str, fallback: &str| header(payload, name).unwrap_or(fallback).to_owned();
    let mut body = plain_text(payload);
    if body.is_empty() {
        body = message
            .get("snippet")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
    }
    let attachments = attachments_of(message);
    let mut out = json!({
        "id": message.get("id").cloned().unwrap_or(json!("")),
        "threadId": message.get("threadId").cloned().unwrap_or(json!("")),
        "labelIds": message.get("labelIds").cloned().unwrap_or(json!([])),
        "subject": header_or("Subject", "No Subject"),
        "from": header_or("From", "Unknown"),
        "to": header_or("To", "Unknown"),
        "date": header_or("Date", "Unknown"),
        "body": body,
        "hasAttachments": !attachments.is_empty(),
        "attachments": attachments,
    });
    if let Some(cc) = header(payload, "Cc") {
        out["cc"] = json!(cc);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The tools

impl Gmail {
    fn api<'a>(&'a self, ctx: &'a RequestContext) -> Api<'a> {
        self.upstream.manifest_api(&self.manifest, ctx)
    }

    async fn run(
        &self,
        name: &str,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let api = self.api(ctx);
        match name {
            "read_emails" => read_emails(&api, arguments).await,
            "send_email" => send_email(&api, arguments).await,
            "create_draft" => {
                let email = Email::from_arguments(arguments)?;
                let mut message = json!({ "raw": email.raw()? });
                if let Some(thread) = text(arguments, "thread_id").filter(|t| !t.is_empty()) {
                    message["threadId"] = json!(thread);
                }
                let body = json!({ "message": message });
                api.json(Method::POST, "/users/me/drafts", &[], Some(&body))
                    .await
            }
            "forward_email" => forward_email(&api, arguments).await,
            "update_email" => update_email(&api, arguments).await,
            "create_label" => {
                let mut label = json!({
                    "name": required_text(arguments, "name")?,
                    "messageListVisibility": "show",
                    "labelListVisibility": "labelShow",
                });
                let mut color = Map::new();
                for (field, key) in [
                    ("backgroundColor", "background_color"),
                    ("textColor", "text_color"),
                ] {
                    if let Some(value) = text(arguments, key).filter(|v| !v.is_empty()) {
                        color.insert(field.into(), json!(value));
                    }
                }
                if !color.is_empty() {
                    label["color"] = Value::Object(color);
                }
                api.json(Method::POST, "/users/me/labels", &[], Some(&label))
                    .await
            }
            "get_attachment_details" => {
                let path = message_path(arguments)?;
                let query = [("format", "full".to_owned())];
                let message = api.json(Method::GET, &path, &query, None).await?;
                let payload = message.get("payload").unwrap_or(&Value::Null);
                let attachments = attachments_of(&message);
                Ok(json!({
                    "email_id": required_text(arguments, "email_id")?,
                    "threadId": message.get("threadId").cloned().unwrap_or(Value::Null),
                    "subject": header(payload, "Subject"),
                    "from": header(payload, "From"),
                    "date": header(payload, "Date"),
                    "count": attachments.len(),
                    "attachments": attachments,
                }))
            }
            "download_attachment" => {
                let path = format!(
                    "{}/attachments/{}",
                    message_path(arguments)?,
                    id_segment(required_text(arguments, "attachment_id")?)?
                );
                let answer = api.json(Method::GET, &path, &[], None).await?;
                let data = answer.get("data").and_then(Value::as_str).unwrap_or("");
                let bytes = URL_SAFE_PAD_INDIFFERENT.decode(data.trim()).map_err(|_| {
                    "Gmail answered attachment data that is not base64url".to_owned()
                })?;
                Ok(json!({
                    "email_id": required_text(arguments, "email_id")?,
                    "attachment_id": required_text(arguments, "attachment_id")?,
                    "filename": text(arguments, "filename"),
                    "size": bytes.len(),
                    "encoding": "base64",
                    "data": STANDARD.encode(&bytes),
                }))
            }
            other => Err(format!("Unknown tool: {other}")),
        }
    }
}

/// The labels as guMCP's resources. Each label's counts take one more request (the list has
/// none); a label whose counts cannot be read is listed without them rather than failing the
/// whole list.
async fn label_resources(api: &Api<'_>) -> Result<Vec<Resource>, String> {
    let listed = api.json(Method::GET, "/users/me/labels", &[], None).await?;
    let labels: Vec<Value> = listed
        .get("labels")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|label| {
            let system = label.get("type").and_then(Value::as_str) == Some("system");
            let id = label.get("id").and_then(Value::as_str).unwrap_or_default();
            !(system && UNLISTED_LABELS.contains(&id))
        })
        .cloned()
        .collect();
    let resources = futures::stream::iter(labels.into_iter().map(|label| async move {
        let id = label.get("id").and_then(Value::as_str)?;
        let name = label
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("Unknown Label");
        let path = format!("/users/me/labels/{}", id_segment(id).ok()?);
        let description = match api.json(Method::GET, &path, &[], None).await {
            Ok(details) => {
                let count = |key: &str| details.get(key).and_then(Value::as_u64).unwrap_or(0);
                format!(
                    "{name} ({} unread of {} total)",
                    count("messagesUnread"),
                    count("messagesTotal")
                )
            }
            Err(_) => name.to_owned(),
        };
        Some(
            Resource::new(format!("{LABEL_URI}{id}"), name)
                .with_description(description)
                .with_mime_type("application/gmail.label"),
        )
    }))
    .buffered(FETCH_CONCURRENCY)
    .filter_map(|resource| async move { resource })
    .collect()
    .await;
    Ok(resources)
}

/// The label's most recent emails as guMCP's text: id (as a `gmail://message/` URI), subject,
/// sender and date of each, or a sentence when there are none.
async fn label_emails(api: &Api<'_>, label: &str) -> Result<String, String> {
    let listed = api
        .json(
            Method::GET,
            "/users/me/messages",
            &[
                ("labelIds", label.to_owned()),
                ("maxResults", LABEL_EMAILS.to_string()),
            ],
            None,
        )
        .await?;
    let ids: Vec<String> = listed
        .get("messages")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|m| m.get("id").and_then(Value::as_str))
        .map(str::to_owned)
        .collect();
    if ids.is_empty() {
        return Ok("No messages in this label".to_owned());
    }
    let summaries: Vec<String> = futures::stream::iter(ids)
        .map(|id| email_summary(api, id))
        .buffered(FETCH_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(summaries.join("\n"))
}

/// One email of a label resource: its headers only (`format=metadata`), as guMCP shows them.
async fn email_summary(api: &Api<'_>, id: String) -> Result<String, String> {
    let query = [
        ("format", "metadata".to_owned()),
        ("metadataHeaders", "Subject".to_owned()),
        ("metadataHeaders", "From".to_owned()),
        ("metadataHeaders", "Date".to_owned()),
    ];
    let path = format!("/users/me/messages/{}", id_segment(&id)?);
    let message = api.json(Method::GET, &path, &query, None).await?;
    let payload = message.get("payload").unwrap_or(&Value::Null);
    Ok(format!(
        "ID: gmail://message/{id}\nSubject: {}\nFrom: {}\nDate: {}\n---\n",
        header(payload, "Subject").unwrap_or("No Subject"),
        header(payload, "From").unwrap_or("Unknown"),
        header(payload, "Date").unwrap_or("Unknown date"),
    ))
}

/// The label id of a `gmail://label/{id}` URI (one non-empty segment).
fn label_of(uri: &str) -> Option<&str> {
    uri.strip_prefix(LABEL_URI)
        .filter(|id| !id.is_empty() && !id.contains('/'))
}

async fn read_emails(api: &Api<'_>, arguments: &JsonObject) -> Result<Value, String> {
    let query = required_text(arguments, "query")?;
    let max_results = arguments
        .get("max_results")
        .and_then(Value::as_i64)
        .unwrap_or(10);
    let listed = api
        .json(
            Method::GET,
            "/users/me/messages",
            &[
                ("q", query.to_owned()),
                ("maxResults", max_results.to_string()),
            ],
            None,
        )
        .await?;
    let ids: Vec<String> = listed
        .get("messages")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|m| m.get("id").and_then(Value::as_str))
        .map(str::to_owned)
        .collect();
    if ids.is_empty() {
        return Ok(json!({
            "count": 0,
            "emails": [],
            "message": "No emails found matching your query.",
        }));
    }
    // One message that cannot be read (deleted since the search, say) is reported in its place
    // rather than failing the others.
    let emails: Vec<Value> = futures::stream::iter(ids.into_iter().map(|id| async move {
        let path = format!("/users/me/messages/{}", id_segment(&id)?);
        let message = api
            .json(Method::GET, &path, &[("format", "full".to_owned())], None)
            .await;
        Ok::<Value, String>(match message {
            Ok(message) => readable(&message),
            Err(error) => json!({ "id": id, "error": error }),
        })
    }))
    .buffered(FETCH_CONCURRENCY)
    .collect::<Vec<_>>()
    .await
    .into_iter()
    .collect::<Result<_, _>>()?;
    Ok(json!({ "count": emails.len(), "emails": emails }))
}

async fn send_email(api: &Api<'_>, arguments: &JsonObject) -> Result<Value, String> {
    let mut email = Email::from_arguments(arguments)?;
    let mut thread = text(arguments, "thread_id")
        .filter(|t| !t.trim().is_empty())
        .map(str::to_owned);
    let in_reply_to = optional_header(arguments, "in_reply_to")?;
    if let Some(reply_to) = in_reply_to {
        if reply_to.contains('@') {
            // A Message-ID header.
            email.in_reply_to = Some(message_id(reply_to));
            email.references = email.in_reply_to.clone();
        } else {
            // A Gmail message id: its Message-ID and References make the reply's headers, and
            // its thread the reply's thread unless one is given.
            let path = format!("/users/me/messages/{}", id_segment(reply_to)?);
            let query = [
                ("format", "metadata".to_owned()),
                ("metadataHeaders", "Message-ID".to_owned()),
                ("metadataHeaders", "References".to_owned()),
            ];
            let original = api.json(Method::GET, &path, &query, None).await?;
            let payload = original.get("payload").unwrap_or(&Value::Null);
            if let Some(id) = header(payload, "Message-ID").map(one_line) {
                let earlier = header(payload, "References").map(one_line);
                email.references = Some(
                    earlier
                        .into_iter()
                        .chain([id.trim().to_owned()])
                        .collect::<Vec<_>>()
                        .join(" ")
                        .trim()
                        .to_owned(),
                );
                email.in_reply_to = Some(id.trim().to_owned());
            }
            if thread.is_none() {
                thread = original
                    .get("threadId")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
            }
        }
    }
    let replying = thread.is_some() || in_reply_to.is_some();
    if replying && !email.subject.to_lowercase().starts_with("re:") {
        email.subject = format!("Re: {}", email.subject);
    }
    let mut body = json!({ "raw": email.raw()? });
    if let Some(thread) = thread {
        body["threadId"] = json!(thread);
    }
    api.json(Method::POST, "/users/me/messages/send", &[], Some(&body))
        .await
}

async fn forward_email(api: &Api<'_>, arguments: &JsonObject) -> Result<Value, String> {
    let to = header_value(arguments, "to")?.ok_or("to is required")?;
    let additional = text(arguments, "additional_text").unwrap_or("");
    let path = message_path(arguments)?;
    let original = api
        .json(Method::GET, &path, &[("format", "full".to_owned())], None)
        .await?;
    let payload = original.get("payload").unwrap_or(&Value::Null);
    let field = |name: &str| header(payload, name).map(one_line);
    let subject = field("Subject").unwrap_or_default();
    let mut text = plain_text(payload);
    if text.is_empty() {
        text = original
            .get("snippet")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
    }
    let mut body = String::new();
    if !additional.is_empty() {
        body.push_str(additional);
        body.push_str("\n\n");
    }
    body.push_str("---------- Forwarded message ---------\n");
    body.push_str(&format!(
        "From: {}\n",
        field("From").unwrap_or_else(|| "Unknown".into())
    ));
    body.push_str(&format!(
        "Date: {}\n",
        field("Date").unwrap_or_else(|| "Unknown".into())
    ));
    body.push_str(&format!("Subject: {subject}\n"));
    body.push_str(&format!(
        "To: {}\n",
        field("To").unwrap_or_else(|| "Unknown".into())
    ));
    if let Some(cc) = field("Cc") {
        body.push_str(&format!("Cc: {cc}\n"));
    }
    body.push('\n');
    body.push_str(&text);
    body.push('\n');
    let email = Email {
        to: to.to_owned(),
        subject: if subject.to_lowercase().starts_with("fwd:") {
            subject
        } else {
            format!("Fwd: {subject}")
        },
        body,
        ..Email::default()
    };
    let message = json!({ "raw": email.raw()? });
    api.json(Method::POST, "/users/me/messages/send", &[], Some(&message))
        .await
}

async fn update_email(api: &Api<'_>, arguments: &JsonObject) -> Result<Value, String> {
    let path = format!("{}/modify", message_path(arguments)?);
    let (add, remove) = (
        strings(arguments, "add_labels"),
        strings(arguments, "remove_labels"),
    );
    if add.is_empty() && remove.is_empty() {
        return Err(
            "No label changes specified. Please provide labels to add or remove.".to_owned(),
        );
    }
    let is_id =
        |label: &String| SYSTEM_LABELS.contains(&label.as_str()) || label.starts_with("Label_");
    let (add, remove) = if add.iter().chain(&remove).all(is_id) {
        (add, remove)
    } else {
        let listed = api.json(Method::GET, "/users/me/labels", &[], None).await?;
        let labels = listed
            .get("labels")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let resolve = |given: Vec<String>| -> Vec<String> {
            given
                .into_iter()
                .map(|label| label_id(&labels, &label).unwrap_or(label))
                .collect()
        };
        (resolve(add), resolve(remove))
    };
    let body = json!({ "addLabelIds": add, "removeLabelIds": remove });
    api.json(Method::POST, &path, &[], Some(&body)).await
}

/// The id of the label `given` names: an id as it is, else the label of that name (in any
/// case). `None` leaves it to Gmail to say it knows no such label.
fn label_id(labels: &[Value], given: &str) -> Option<String> {
    let field =
        |label: &Value, key: &str| label.get(key).and_then(Value::as_str).map(str::to_owned);
    labels
        .iter()
        .find(|label| field(label, "id").as_deref() == Some(given))
        .or_else(|| {
            labels.iter().find(|label| {
                field(label, "name").is_some_and(|name| name.eq_ignore_ascii_case(given))
            })
        })
        .and_then(|label| field(label, "id"))
}

impl McpServer for Gmail {
    fn features(&self) -> Features {
        Features {
            resources: true,
            ..Features::default()
        }
    }

    fn tools(&self) -> Vec<Tool> {
        self.tools.clone()
    }

    fn list_resources<'a>(
        &'a self,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<Vec<Resource>, McpError>> {
        async move {
            label_resources(&self.api(ctx))
                .await
                .map_err(McpError::internal)
        }
        .boxed()
    }

    fn read_resource<'a>(
        &'a self,
        uri: &'a str,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<ReadResourceResult, CallError>> {
        async move {
            let label = label_of(uri).ok_or_else(|| CallError::ResourceNotFound(uri.into()))?;
            let text = label_emails(&self.api(ctx), label)
                .await
                .map_err(McpError::internal)?;
            Ok(text_resource(uri, text, "text/plain"))
        }
        .boxed()
    }

    fn call_tool<'a>(
        &'a self,
        name: &'a str,
        arguments: JsonObject,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<CallToolResult, CallError>> {
        async move {
            if self.declared.declares(name) {
                return self.declared.call_tool(name, arguments, ctx).await;
            }
            Ok(answer(self.run(name, &arguments, ctx).await))
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_word(word: &str) -> String {
        let inner = word
            .strip_prefix("=?UTF-8?B?")
            .and_then(|w| w.strip_suffix("?="))
            .expect("an encoded-word");
        String::from_utf8(STANDARD.decode(inner).unwrap()).unwrap()
    }

    fn arguments(value: Value) -> JsonObject {
        match value {
            Value::Object(object) => object,
            _ => JsonObject::new(),
        }
    }

    #[test]
    fn non_ascii_text_becomes_encoded_words_split_between_characters() {
        let subject = "Réunion d'équipe — 予定の確認とお知らせ 🎉 ".repeat(3);
        let words = encoded_words(&subject);
        assert!(words.len() > 1);
        for word in &words {
            assert!(word.len() <= 75, "{word}");
        }
        let decoded: String = words.iter().map(|w| decode_word(w)).collect();
        assert_eq!(decoded, subject);
        assert_eq!(encoded_words(""), ["=?UTF-8?B??="]);
    }

    #[test]
    fn long_headers_fold_and_unfold_to_what_was_given() {
        let subject = "word ".repeat(40) + "end";
        let header = unstructured("Subject", &subject);
        assert!(
            header.split("\r\n").all(|line| line.len() <= FOLD_AT),
            "{header}"
        );
        assert!(header.contains("\r\n "));
        assert_eq!(header.replace("\r\n", ""), format!("Subject: {subject}"));
        assert_eq!(unstructured("Subject", "Hi"), "Subject: Hi");
        let utf8 = unstructured("Subject", "Grüße aus Köln");
        assert!(utf8.is_ascii());
        let value = utf8.strip_prefix("Subject: ").unwrap();
        let decoded: String = value.split("\r\n ").map(decode_word).collect();
        assert_eq!(decoded, "Grüße aus Köln");
        // A word too long for any line is encoded rather than left over the limit.
        let huge = unstructured("Subject", &"x".repeat(1200));
        assert!(huge.split("\r\n").all(|line| line.len() <= MAX_LINE));
    }

    #[test]
    fn address_lists_split_outside_quotes_and_encode_display_names() {
        assert_eq!(
            split_addresses(r#"a@x.com, "Doe, Jane" <jane@x.com>,<b@x.com> , "#),
            ["a@x.com", r#""Doe, Jane" <jane@x.com>"#, "<b@x.com>"]
        );
        assert_eq!(address("José <jose@x.com>").split(' ').count(), 2);
        let encoded = address("\"Zoë \\\"Z\\\" Ü\" <zoe@x.com>");
        let (word, rest) = encoded.split_once(' ').unwrap();
        assert_eq!(decode_word(word), "Zoë \"Z\" Ü");
        assert_eq!(rest, "<zoe@x.com>");
        assert_eq!(address("ünïcode@x.com"), "ünïcode@x.com");
        let many: Vec<String> = (0..12).map(|n| format!("person{n}@example.com")).collect();
        let header = address_header("To", &many.join(",")).unwrap();
        assert!(
            header.split("\r\n").all(|line| line.len() <= FOLD_AT),
            "{header}"
        );
        assert_eq!(
            header.replace("\r\n", ""),
            format!("To: {}", many.join(", "))
        );
        assert!(address_header("To", " , ").is_err());
    }

    #[test]
    fn header_values_with_line_breaks_are_refused() {
        for bad in [
            "a@x.com\r\nBcc: evil@x.com",
            "Hi\nthere",
            "Hi\rthere",
            "Hi\u{0}",
        ] {
            let args = arguments(json!({ "to": "a@x.com", "subject": bad, "body": "b" }));
            let err = Email::from_arguments(&args).unwrap_err();
            assert!(err.starts_with("subject must"), "{err}");
        }
        let args =
            arguments(json!({ "to": "a@x.com", "subject": "s", "body": "line 1\nline 2\r\n" }));
        assert!(Email::from_arguments(&args).is_ok());
    }

    #[test]
    fn bodies_are_7bit_when_they_can_be_and_base64_otherwise() {
        assert_eq!(
            body_part("a\nb\r\nc\rd"),
            ("7bit", "a\r\nb\r\nc\r\nd".to_owned())
        );
        let (encoding, body) = body_part(&"héllo ".repeat(40));
        assert_eq!(encoding, "base64");
        assert!(body.split("\r\n").all(|line| line.len() <= 76));
        let decoded = STANDARD.decode(body.replace("\r\n", "")).unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), "héllo ".repeat(40));
        assert_eq!(body_part(&"y".repeat(1000)).0, "base64");
    }

    #[test]
    fn text_and_attachments_are_found_in_nested_parts() {
        let data = |text: &str| URL_SAFE.encode(text);
        let message = json!({
            "id": "m1", "snippet": "snip",
            "payload": {
                "mimeType": "multipart/mixed",
                "headers": [{ "name": "subject", "value": "Hello" }],
                "parts": [
                    { "mimeType": "multipart/alternative", "parts": [
                        { "partId": "0.0", "mimeType": "text/plain", "body": { "data": data("plain text") } },
                        { "partId": "0.1", "mimeType": "text/html", "body": { "data": data("<p>html</p>") } }
                    ]},
                    { "partId": "1", "mimeType": "text/plain", "filename": "notes.txt",
                      "headers": [{ "name": "Content-Disposition", "value": "attachment; filename=notes.txt" }],
                      "body": { "attachmentId": "att1", "size": 12 } },
                    { "partId": "2", "mimeType": "multipart/related", "parts": [
                        { "partId": "2.0", "mimeType": "image/png", "filename": "logo.png",
                          "headers": [{ "name": "Content-Disposition", "value": "inline" }],
                          "body": { "attachmentId": "att2", "size": 300 } }
                    ]}
                ]
            }
        });
        let shown = readable(&message);
        assert_eq!(shown["body"], "plain text");
        assert_eq!(shown["subject"], "Hello");
        assert_eq!(shown["from"], "Unknown");
        assert_eq!(shown["hasAttachments"], true);
        let found = attachments_of(&message);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0]["attachmentId"], "att1");
        assert_eq!(found[0]["inline"], false);
        assert_eq!(found[1]["filename"], "logo.png");
        assert_eq!(found[1]["inline"], true);
        let html_only = json!({ "snippet": "snip", "payload": { "mimeType": "text/html", "body": { "data": data("<b>x</b>") } } });
        assert_eq!(readable(&html_only)["body"], "snip");
        // Latin-1 bodies are read as such rather than as replacement characters.
        let latin1 = json!({ "mimeType": "text/plain", "body": { "data": URL_SAFE.encode([b'c', b'a', b'f', 0xe9]) } });
        assert_eq!(plain_text(&latin1), "café");
    }

    #[test]
    fn label_names_resolve_to_ids() {
        let labels = vec![
            json!({ "id": "INBOX", "name": "INBOX" }),
            json!({ "id": "Label_7", "name": "Work/Projects" }),
        ];
        assert_eq!(
            label_id(&labels, "work/projects").as_deref(),
            Some("Label_7")
        );
        assert_eq!(label_id(&labels, "inbox").as_deref(), Some("INBOX"));
        assert_eq!(label_id(&labels, "Label_7").as_deref(), Some("Label_7"));
        assert_eq!(label_id(&labels, "nope"), None);
    }
}
