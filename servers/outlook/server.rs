//! outlook: Outlook mail through Microsoft Graph (v1.0) with guMCP's two tools, names and
//! arguments, on the Microsoft identity platform provider (the tenant is the OAuth app's, by
//! default `common`). Both tools need code: read_emails finds a folder named as Outlook shows
//! it (Graph's well-known names go straight through), asks for guMCP's fields and order, and
//! words the messages as guMCP does, with the messages as structured content; send_email turns
//! comma-separated addresses into Graph's recipients. The runtime's `Api` does the credentials,
//! the refresh-and-retry on 401 and the wording of upstream failures.
//!
//! Resources are guMCP's: each mail folder as `outlook://folder/{id}`, described with its count
//! of emails; reading one lists its 25 newest messages (id, subject, sender, date, read or not)
//! as text.

use std::sync::Arc;

use futures::FutureExt;
use reqwest::Method;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject, ReadResourceResult, Resource, Tool};
use serde_json::{json, Value};

use crate::protocol::error::McpError;
use crate::servers::http::{Api, Upstream};
use crate::servers::kit::{
    answer, id_segment, required_text, text, text_resource, tool, tool_error,
};
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, Features, McpServer, RequestContext, ServerFuture, ServerInit};

/// Graph's well-known folder names, used as they are rather than looked up.
const WELL_KNOWN_FOLDERS: [&str; 7] = [
    "inbox",
    "sentitems",
    "drafts",
    "deleteditems",
    "archive",
    "junkemail",
    "outbox",
];

/// What every folder resource's URI starts with; the folder id follows.
const FOLDER_URI: &str = "outlook://folder/";
/// Messages a folder resource shows, as many as guMCP's.
const FOLDER_MESSAGES: &str = "25";

/// The largest page Graph's message list gives.
const MAX_COUNT: i64 = 1000;

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    Arc::new(Outlook {
        manifest: init.manifest,
        upstream: init.upstream,
    })
}

struct Outlook {
    manifest: Arc<Manifest>,
    upstream: Upstream,
}

fn tools() -> Vec<Tool> {
    vec![
        tool(
            "read_emails",
            "Read emails from Outlook. Fetches emails based on specified filters.",
            json!({
                "type": "object",
                "properties": {
                    "folder": { "type": "string", "description": "Folder to search in. Default is 'inbox'" },
                    "count": { "type": "integer", "minimum": 1, "maximum": MAX_COUNT, "description": "Number of emails to retrieve. Default is 10" },
                    "filter": { "type": "string", "description": "Filter query. For example, 'isRead eq false' for unread emails" },
                    "search": { "type": "string", "description": "Search query for email content" }
                }
            }),
        ),
        tool(
            "send_email",
            "Send an email using Outlook",
            json!({
                "type": "object",
                "properties": {
                    "to": { "type": "string", "description": "Recipient email addresses (comma-separated)" },
                    "subject": { "type": "string", "description": "Email subject" },
                    "body": { "type": "string", "description": "Email body content" },
                    "cc": { "type": "string", "description": "CC email addresses (comma-separated)" },
                    "bcc": { "type": "string", "description": "BCC email addresses (comma-separated)" }
                },
                "required": ["to", "subject", "body"]
            }),
        ),
    ]
}

/// Comma-separated addresses, trimmed, the empty ones left out.
fn addresses(list: Option<&str>) -> Vec<&str> {
    list.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|address| !address.is_empty())
        .collect()
}

fn recipients(list: &[&str]) -> Value {
    list.iter()
        .map(|address| json!({ "emailAddress": { "address": address } }))
        .collect()
}

/// One message as guMCP words it.
fn message_text(message: &Value) -> String {
    let field = |pointer: &str, default: &str| {
        message
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or(default)
            .to_owned()
    };
    format!(
        "Subject: {}\nFrom: {} <{}>\nDate: {}\nPreview: {}\nID: {}\n",
        field("/subject", "No Subject"),
        field("/from/emailAddress/name", ""),
        field("/from/emailAddress/address", "Unknown"),
        field("/receivedDateTime", ""),
        field("/bodyPreview", ""),
        field("/id", "")
    )
}

impl Outlook {
    fn api<'a>(&'a self, ctx: &'a RequestContext) -> Api<'a> {
        self.upstream.manifest_api(&self.manifest, ctx)
    }

    /// The id to put in the path for the folder `name`: a well-known name as it is, else the
    /// id of the folder with that display name.
    async fn folder_id(&self, api: &Api<'_>, name: &str) -> Result<String, String> {
        let lowered = name.to_lowercase();
        if WELL_KNOWN_FOLDERS.contains(&lowered.as_str()) {
            return Ok(lowered);
        }
        let folders = api
            .json(
                Method::GET,
                "/me/mailFolders",
                &[("$top", "250".to_owned())],
                None,
            )
            .await?;
        folders
            .get("value")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|folder| {
                folder
                    .get("displayName")
                    .and_then(Value::as_str)
                    .is_some_and(|shown| shown.to_lowercase() == lowered)
            })
            .and_then(|folder| folder.get("id").and_then(Value::as_str))
            .map(str::to_owned)
            .ok_or_else(|| format!("no mail folder is named {name:?}"))
    }

    async fn read_emails(&self, arguments: &JsonObject, ctx: &RequestContext) -> CallToolResult {
        let api = self.api(ctx);
        let folder = match self
            .folder_id(&api, text(arguments, "folder").unwrap_or("inbox"))
            .await
            .and_then(|id| id_segment(&id))
        {
            Ok(folder) => folder,
            Err(why) => return tool_error(why),
        };
        let count = arguments
            .get("count")
            .and_then(Value::as_i64)
            .unwrap_or(10)
            .clamp(1, MAX_COUNT);
        let mut query = vec![
            (
                "$select",
                "id,subject,from,toRecipients,receivedDateTime,bodyPreview".to_owned(),
            ),
            ("$top", count.to_string()),
        ];
        if let Some(filter) = text(arguments, "filter").filter(|f| !f.is_empty()) {
            query.push(("$filter", filter.to_owned()));
        }
        match text(arguments, "search").filter(|s| !s.is_empty()) {
            // Graph refuses $orderby beside $search; its results come newest first anyway.
            Some(search) => query.push(("$search", format!("\"{}\"", search.replace('"', "")))),
            None => query.push(("$orderby", "receivedDateTime desc".to_owned())),
        }
        let path = format!("/me/mailFolders/{folder}/messages");
        let listed = match api.json(Method::GET, &path, &query, None).await {
            Ok(listed) => listed,
            Err(why) => return tool_error(why),
        };
        let messages = listed
            .get("value")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let text = if messages.is_empty() {
            "No emails found matching your criteria.".to_owned()
        } else {
            let listed: Vec<String> = messages.iter().map(message_text).collect();
            format!(
                "Found {} emails:\n\n{}",
                messages.len(),
                listed.join("\n---\n")
            )
        };
        let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
        result.structured_content = Some(json!({ "emails": messages }));
        result
    }

    async fn send_email(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let to = addresses(Some(required_text(arguments, "to")?));
        if to.is_empty() {
            return Err("to names no address".to_owned());
        }
        let message = json!({
            "message": {
                "subject": required_text(arguments, "subject")?,
                "body": { "contentType": "Text", "content": required_text(arguments, "body")? },
                "toRecipients": recipients(&to),
                "ccRecipients": recipients(&addresses(text(arguments, "cc"))),
                "bccRecipients": recipients(&addresses(text(arguments, "bcc")))
            },
            "saveToSentItems": true
        });
        self.api(ctx)
            .json(Method::POST, "/me/sendMail", &[], Some(&message))
            .await?;
        Ok(Value::String(format!(
            "Email sent successfully to {}",
            to.join(", ")
        )))
    }
}

/// A folder of Graph's list as guMCP's resource; `None` without an id.
fn folder_resource(folder: &Value) -> Option<Resource> {
    let id = folder.get("id")?.as_str()?;
    let name = folder
        .get("displayName")
        .and_then(Value::as_str)
        .unwrap_or("Unknown Folder");
    let count = folder
        .get("totalItemCount")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    Some(
        Resource::new(format!("{FOLDER_URI}{id}"), name)
            .with_description(format!("{name} folder with {count} emails"))
            .with_mime_type("application/outlook.folder"),
    )
}

/// A folder's messages as guMCP's resource text.
fn folder_text(messages: &[Value]) -> String {
    if messages.is_empty() {
        return "No emails found in this folder".to_owned();
    }
    let entries: Vec<String> = messages
        .iter()
        .map(|message| {
            let field = |pointer: &str, default: &str| {
                message
                    .pointer(pointer)
                    .and_then(Value::as_str)
                    .unwrap_or(default)
                    .to_owned()
            };
            let read = message
                .get("isRead")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            format!(
                "ID: outlook://email/{}\nSubject: {}\nFrom: {} <{}>\nDate: {}\nStatus: {}\n",
                field("/id", ""),
                field("/subject", "No Subject"),
                field("/from/emailAddress/name", ""),
                field("/from/emailAddress/address", "Unknown"),
                field("/receivedDateTime", ""),
                if read { "Read" } else { "Unread" }
            )
        })
        .collect();
    entries.join("\n---\n")
}

impl McpServer for Outlook {
    fn features(&self) -> Features {
        Features {
            resources: true,
            ..Features::default()
        }
    }

    fn tools(&self) -> Vec<Tool> {
        tools()
    }

    fn list_resources<'a>(
        &'a self,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<Vec<Resource>, McpError>> {
        async move {
            let folders = self
                .api(ctx)
                .json(
                    Method::GET,
                    "/me/mailFolders",
                    &[("$top", "250".to_owned())],
                    None,
                )
                .await
                .map_err(McpError::internal)?;
            let listed = folders.get("value").and_then(Value::as_array);
            Ok(listed
                .into_iter()
                .flatten()
                .filter_map(folder_resource)
                .collect())
        }
        .boxed()
    }

    fn read_resource<'a>(
        &'a self,
        uri: &'a str,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<ReadResourceResult, CallError>> {
        async move {
            let id = uri
                .strip_prefix(FOLDER_URI)
                .and_then(|id| id_segment(id).ok())
                .filter(|id| !id.contains("%2F"))
                .ok_or_else(|| CallError::ResourceNotFound(uri.into()))?;
            let query = [
                (
                    "$select",
                    "id,subject,from,receivedDateTime,isRead".to_owned(),
                ),
                ("$top", FOLDER_MESSAGES.to_owned()),
                ("$orderby", "receivedDateTime desc".to_owned()),
            ];
            let listed = self
                .api(ctx)
                .json(
                    Method::GET,
                    &format!("/me/mailFolders/{id}/messages"),
                    &query,
                    None,
                )
                .await
                .map_err(McpError::internal)?;
            let messages = listed
                .get("value")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            Ok(text_resource(uri, folder_text(&messages), "text/plain"))
        }
        .boxed()
    }

    fn call_tool<'a>(
        &'a self,
        name: &'a str,
        arguments: JsonObject,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<CallToolResult, CallError>> {
        Box::pin(async move {
            Ok(match name {
                "read_emails" => self.read_emails(&arguments, ctx).await,
                "send_email" => answer(self.send_email(&arguments, ctx).await),
                _ => return Err(McpError::invalid_params(format!("Unknown tool: {name}")).into()),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_split_trimmed_and_empty_ones_dropped() {
        assert_eq!(
            addresses(Some(" a@x.com, ,b@y.org ")),
            vec!["a@x.com", "b@y.org"]
        );
        assert!(addresses(None).is_empty());
    }
}
