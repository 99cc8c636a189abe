//! slack: the Slack Web API with guMCP's eighteen tools, names and arguments.
//!
//! Fifteen tools are single Slack methods declared in `server.toml` and run by the `http`
//! engine. What they cannot say there is done here before they are handed over: a channel may
//! be named (`#general`) and a user given by email or name, as guMCP allows, and Slack takes
//! only ids, so those are looked up (`conversations.list`, `users.lookupByEmail`, `users.list`;
//! remembered for a while per user). `send_message` to `@name` opens the direct message first,
//! `create_canvas` puts a header with the title above the blocks, `react_to_message` drops the
//! colons of `:emoji:`, and `remove_from_channel` takes guMCP's `channel_id`/`user_id` as well
//! as `channel`/`user`.
//!
//! Three tools are code because they take several calls: `read_messages` and
//! `get_message_thread` add each author's name and profile (`users.info`) to the messages, and
//! `list_users_in_channel` pages through the members and fetches each one's details and
//! presence. Their calls go through the runtime's `Api` (credentials, refresh-and-retry on
//! 401, failures worded as for declared tools); Slack's `ok: false` is checked here with the
//! manifest's `body_errors`.
//!
//! Resources are guMCP's: each channel the account can see is `slack://channel/{id}`, and
//! reading one answers its latest fifty messages, oldest first, with their authors, as
//! `read_messages` does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt, TryStreamExt};
use reqwest::Method;
use rmcp::model::{CallToolResult, JsonObject, ReadResourceResult, Resource, Tool};
use serde_json::{json, Map, Value};

use crate::protocol::error::McpError;
use crate::servers::http::{Api, HttpServer, Upstream};
use crate::servers::kit::{success, text, text_resource, tool, tool_error};
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, Features, McpServer, RequestContext, ServerFuture, ServerInit};

/// guMCP's order of the tools; the list keeps it, declared and coded tools mixed.
const ORDER: [&str; 18] = [
    "read_messages",
    "send_message",
    "create_canvas",
    "add_user_to_channel",
    "react_to_message",
    "delete_message",
    "get_message_thread",
    "pin_message",
    "unpin_message",
    "get_user_presence",
    "remove_from_channel",
    "list_pinned_items",
    "create_channel",
    "update_channel_topic",
    "update_channel_purpose",
    "archive_channel",
    "unarchive_channel",
    "list_users_in_channel",
];

/// Items per page of Slack's cursor-paginated lists (Slack advises at most 200).
const PAGE_SIZE: &str = "200";
/// Pages of `conversations.list` / `users.list` read to find one name (10,000 entries), so a
/// name that does not exist in a huge workspace ends the search instead of running on.
const MAX_LOOKUP_PAGES: usize = 50;
/// Pages of `conversations.members` read by `list_users_in_channel` (5,000 members).
const MAX_MEMBER_PAGES: usize = 25;
/// How long a looked-up name → id is trusted (a channel may be renamed or a name reused).
const NAME_TTL: Duration = Duration::from_secs(600);
/// `users.info` / `users.getPresence` calls in flight at once for one tool call; Slack's
/// per-method rate limits are per minute, so more would only meet 429s sooner.
const LOOKUPS_AT_ONCE: usize = 4;
/// guMCP's default number of messages.
const DEFAULT_MESSAGES: u64 = 20;
/// What every channel resource's URI starts with; the channel id follows.
const CHANNEL_URI: &str = "slack://channel/";
/// Pages of `conversations.list` read for `resources/list` (1,000 channels): the whole list is
/// fetched on every request, so it stops well before the name lookups do.
const MAX_RESOURCE_PAGES: usize = 5;
/// Messages a channel resource shows, as many as guMCP's.
const RESOURCE_MESSAGES: u64 = 50;

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    let declared = HttpServer::new(init.manifest.clone(), init.upstream.clone());
    let mut tools = declared.tools();
    tools.extend(coded_tools());
    tools.sort_by_key(|tool| {
        ORDER
            .iter()
            .position(|name| tool.name == *name)
            .unwrap_or(ORDER.len())
    });
    Arc::new(Slack {
        declared,
        manifest: init.manifest,
        upstream: init.upstream,
        tools,
        channels: NameCache::default(),
        users: NameCache::default(),
    })
}

struct Slack {
    /// The declared tools, run by the `http` engine.
    declared: HttpServer,
    manifest: Arc<Manifest>,
    upstream: Upstream,
    tools: Vec<Tool>,
    /// Channel name (without `#`) → id.
    channels: NameCache,
    /// User name, real name, display name or email → id.
    users: NameCache,
}

/// Names looked up recently, with when.
#[derive(Default)]
struct NameCache(Mutex<HashMap<String, (String, Instant)>>);

impl NameCache {
    fn get(&self, name: &str) -> Option<String> {
        let entries = self.0.lock().ok()?;
        entries
            .get(name)
            .filter(|(_, at)| at.elapsed() < NAME_TTL)
            .map(|(id, _)| id.clone())
    }

    /// Keeps `pairs` and forgets what is out of date; bounded by what the lookups can read.
    fn remember(&self, pairs: impl IntoIterator<Item = (String, String)>) {
        let Ok(mut entries) = self.0.lock() else {
            return;
        };
        entries.retain(|_, (_, at)| at.elapsed() < NAME_TTL);
        let now = Instant::now();
        for (name, id) in pairs {
            entries.insert(name, (id, now));
        }
    }
}

/// The tools answered by code, with guMCP's arguments.
fn coded_tools() -> Vec<Tool> {
    vec![
        tool(
            "read_messages",
            "Read messages from a Slack channel",
            json!({
                "type": "object",
                "properties": {
                    "channel": { "type": "string", "description": "Slack channel ID or name (with # for names)" },
                    "limit": { "type": "integer", "minimum": 1, "description": "Maximum number of messages to return (default: 20)" },
                    "start_timestamp": { "type": "string", "description": "Start of time range: timestamp in epoch seconds (e.g. 1234567890.123456)" },
                    "end_timestamp": { "type": "string", "description": "End of time range: timestamp in epoch seconds (e.g. 1234567890.123456)" }
                },
                "required": ["channel"]
            }),
        ),
        tool(
            "get_message_thread",
            "Retrieve a message and its replies",
            json!({
                "type": "object",
                "properties": {
                    "channel": { "type": "string", "description": "Channel ID or name where the thread is located" },
                    "thread_ts": { "type": "string", "description": "Timestamp of the parent message of the thread" },
                    "limit": { "type": "integer", "minimum": 1, "description": "Maximum number of replies to return" }
                },
                "required": ["channel", "thread_ts"]
            }),
        ),
        tool(
            "list_users_in_channel",
            "List all users in a Slack channel",
            json!({
                "type": "object",
                "properties": {
                    "channel": { "type": "string", "description": "Slack channel ID or name (with # for names)" }
                },
                "required": ["channel"]
            }),
        ),
    ]
}

fn limit(arguments: &JsonObject) -> String {
    arguments
        .get("limit")
        .and_then(Value::as_u64)
        .unwrap_or(DEFAULT_MESSAGES)
        .to_string()
}

/// `response_metadata.next_cursor`, empty when there are no more pages.
fn next_cursor(page: &Value) -> String {
    page.pointer("/response_metadata/next_cursor")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn list(value: &Value, key: &str) -> Vec<Value> {
    value
        .get(key)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// One channel of `conversations.list` as guMCP's resource; `None` without an id or name.
fn channel_resource(channel: &Value) -> Option<Resource> {
    let id = channel.get("id")?.as_str()?;
    let name = channel.get("name")?.as_str()?;
    let kind = if channel.get("is_private") == Some(&Value::Bool(true)) {
        "Private"
    } else {
        "Public"
    };
    Some(
        Resource::new(format!("{CHANNEL_URI}{id}"), format!("#{name}"))
            .with_description(format!("{kind} Slack channel: #{name}"))
            .with_mime_type("text/plain"),
    )
}

/// The channel id of a `slack://channel/{id}` URI; one non-empty segment that is not a
/// `#name` (the URI names a channel by id only).
fn channel_of(uri: &str) -> Option<&str> {
    uri.strip_prefix(CHANNEL_URI)
        .filter(|id| !id.is_empty() && !id.contains(['/', '#']))
}

/// Whether `given` is a user id already (`U…`, or `W…` in Enterprise Grid): capitals and digits.
fn looks_like_user_id(given: &str) -> bool {
    given.len() >= 3
        && given.starts_with(['U', 'W'])
        && given
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// `blocks` with a header block carrying `title` first, unless one of them is a header.
fn with_header(blocks: Vec<Value>, title: &str) -> Vec<Value> {
    if blocks.is_empty() || blocks.iter().any(|block| block["type"] == "header") {
        return blocks;
    }
    let header = json!({ "type": "header", "text": { "type": "plain_text", "text": title } });
    std::iter::once(header).chain(blocks).collect()
}

/// `remove_from_channel`'s arguments under Slack's names: `channel_id` → `channel` and
/// `user_id` → `user` (the short names win when both are given); one of each is required.
fn kick_arguments(mut arguments: JsonObject) -> Result<JsonObject, String> {
    for (alias, name) in [("channel_id", "channel"), ("user_id", "user")] {
        let aliased = arguments.remove(alias);
        if !arguments.contains_key(name) {
            match aliased {
                Some(value) => {
                    arguments.insert(name.to_owned(), value);
                }
                None => {
                    return Err(format!(
                        "Invalid arguments for tool remove_from_channel: {alias:?} (or {name:?}) is required"
                    ))
                }
            }
        }
    }
    Ok(arguments)
}

impl Slack {
    fn api<'a>(&'a self, ctx: &'a RequestContext) -> Api<'a> {
        self.upstream.manifest_api(&self.manifest, ctx)
    }

    /// Calls a Slack method (GET with a query, or POST with a JSON body); Slack's `ok: false`
    /// becomes the error, with Slack's own error code.
    async fn call(
        &self,
        ctx: &RequestContext,
        method: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, String> {
        let verb = if body.is_some() {
            Method::POST
        } else {
            Method::GET
        };
        let answer = self
            .api(ctx)
            .json(verb, &format!("/{method}"), query, body)
            .await?;
        let errors = &self.manifest.body_errors;
        let failed = errors
            .success_flag
            .as_deref()
            .is_some_and(|flag| answer.pointer(flag) == Some(&Value::Bool(false)));
        if failed {
            let reason = errors
                .message
                .as_deref()
                .and_then(|pointer| answer.pointer(pointer))
                .and_then(Value::as_str)
                .unwrap_or("the request failed");
            return Err(format!("Slack refused {method}: {reason}"));
        }
        Ok(answer)
    }

    /// The id of a channel given as an id or as `#name`.
    async fn channel_id(&self, ctx: &RequestContext, given: &str) -> Result<String, String> {
        let Some(name) = given.strip_prefix('#') else {
            return Ok(given.to_owned());
        };
        if let Some(id) = self.channels.get(name) {
            return Ok(id);
        }
        let mut cursor = String::new();
        for _ in 0..MAX_LOOKUP_PAGES {
            let mut query = vec![
                ("types", "public_channel,private_channel".to_owned()),
                ("limit", PAGE_SIZE.to_owned()),
            ];
            if !cursor.is_empty() {
                query.push(("cursor", cursor));
            }
            let page = self.call(ctx, "conversations.list", &query, None).await?;
            let pairs: Vec<(String, String)> = list(&page, "channels")
                .iter()
                .filter_map(|channel| {
                    Some((
                        channel.get("name")?.as_str()?.to_owned(),
                        channel.get("id")?.as_str()?.to_owned(),
                    ))
                })
                .collect();
            let found = pairs
                .iter()
                .find(|(seen, _)| seen == name)
                .map(|(_, id)| id.clone());
            self.channels.remember(pairs);
            if let Some(id) = found {
                return Ok(id);
            }
            cursor = next_cursor(&page);
            if cursor.is_empty() {
                break;
            }
        }
        Err(format!(
            "no channel named #{name} was found among the channels this account can see"
        ))
    }

    /// The id of a user given as an id, an email address, or a user, real or display name
    /// (with or without a leading `@`).
    async fn user_id(&self, ctx: &RequestContext, given: &str) -> Result<String, String> {
        let given = given.trim();
        if looks_like_user_id(given) {
            return Ok(given.to_owned());
        }
        if let Some(id) = self.users.get(given) {
            return Ok(id);
        }
        if given.find('@').is_some_and(|at| at > 0) {
            let query = [("email", given.to_owned())];
            let answer = self.call(ctx, "users.lookupByEmail", &query, None).await?;
            let id = answer
                .pointer("/user/id")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("Slack named no user for {given}"))?
                .to_owned();
            self.users.remember([(given.to_owned(), id.clone())]);
            return Ok(id);
        }
        let name = given.trim_start_matches('@');
        let mut cursor = String::new();
        for _ in 0..MAX_LOOKUP_PAGES {
            let mut query = vec![("limit", PAGE_SIZE.to_owned())];
            if !cursor.is_empty() {
                query.push(("cursor", cursor));
            }
            let page = self.call(ctx, "users.list", &query, None).await?;
            let mut pairs = Vec::new();
            for member in list(&page, "members") {
                let Some(id) = member.get("id").and_then(Value::as_str) else {
                    continue;
                };
                for pointer in ["/name", "/real_name", "/profile/display_name"] {
                    if let Some(known) = member.pointer(pointer).and_then(Value::as_str) {
                        if !known.is_empty() {
                            pairs.push((known.to_owned(), id.to_owned()));
                        }
                    }
                }
            }
            let found = pairs
                .iter()
                .find(|(known, _)| known == name)
                .map(|(_, id)| id.clone());
            self.users.remember(pairs);
            if let Some(id) = found {
                return Ok(id);
            }
            cursor = next_cursor(&page);
            if cursor.is_empty() {
                break;
            }
        }
        Err(format!("no user named {name} was found in the workspace"))
    }

    /// The direct-message channel with the user named by `@name` (opened if need be).
    async fn direct_channel(&self, ctx: &RequestContext, given: &str) -> Result<String, String> {
        let user = self.user_id(ctx, given).await?;
        let body = json!({ "users": user });
        let answer = self
            .call(ctx, "conversations.open", &[], Some(&body))
            .await?;
        answer
            .pointer("/channel/id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("Slack opened no direct message with {given}"))
    }

    /// A declared tool's arguments as its Slack method takes them (see the module docs).
    async fn prepare(
        &self,
        tool: &str,
        arguments: JsonObject,
        ctx: &RequestContext,
    ) -> Result<JsonObject, String> {
        let mut arguments = if tool == "remove_from_channel" {
            kick_arguments(arguments)?
        } else {
            arguments
        };
        if let Some(channel) = text(&arguments, "channel") {
            let id = if tool == "send_message" && channel.starts_with('@') {
                self.direct_channel(ctx, channel).await?
            } else {
                self.channel_id(ctx, channel).await?
            };
            arguments.insert("channel".into(), id.into());
        }
        if let Some(user) = text(&arguments, "user") {
            let id = self.user_id(ctx, user).await?;
            arguments.insert("user".into(), id.into());
        }
        if let Some(reaction) = text(&arguments, "reaction") {
            let bare = reaction.trim().trim_matches(':').to_owned();
            arguments.insert("reaction".into(), bare.into());
        }
        if tool == "create_canvas" {
            let title = text(&arguments, "title").unwrap_or_default().to_owned();
            let blocks = arguments
                .get("blocks")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            arguments.insert("blocks".into(), with_header(blocks, &title).into());
        }
        Ok(arguments)
    }

    /// Adds `user_name` and `user_profile` to each message with an author, one `users.info`
    /// per distinct author; an author who cannot be looked up is named "Unknown", as in guMCP.
    async fn with_authors(&self, ctx: &RequestContext, mut messages: Vec<Value>) -> Vec<Value> {
        let mut authors: Vec<String> = messages
            .iter()
            .filter_map(|message| message.get("user")?.as_str().map(str::to_owned))
            .collect();
        authors.sort();
        authors.dedup();
        let found: HashMap<String, Option<Value>> = futures::stream::iter(authors)
            .map(|id| async move {
                let query = [("user", id.clone())];
                let user = self.call(ctx, "users.info", &query, None).await.ok();
                (id, user.and_then(|answer| answer.get("user").cloned()))
            })
            .buffer_unordered(LOOKUPS_AT_ONCE)
            .collect()
            .await;
        for message in &mut messages {
            let Some(object) = message.as_object_mut() else {
                continue;
            };
            let Some(author) = object.get("user").and_then(Value::as_str) else {
                continue;
            };
            match found.get(author).cloned().flatten() {
                Some(user) => {
                    let name = [user.get("real_name"), user.get("name")]
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .find(|name| !name.is_empty())
                        .unwrap_or("Unknown")
                        .to_owned();
                    let profile = user.get("profile").cloned().unwrap_or_else(|| json!({}));
                    object.insert("user_name".into(), name.into());
                    object.insert("user_profile".into(), profile);
                }
                None => {
                    object.insert("user_name".into(), "Unknown".into());
                }
            }
        }
        messages
    }

    /// `conversations.history` in chronological order (Slack answers newest first), with the
    /// authors' names; `start_timestamp`/`end_timestamp` are Slack's `oldest`/`latest`.
    async fn read_messages(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let channel = self
            .channel_id(ctx, text(arguments, "channel").unwrap_or_default())
            .await?;
        let mut query = vec![("channel", channel), ("limit", limit(arguments))];
        for (argument, param) in [("start_timestamp", "oldest"), ("end_timestamp", "latest")] {
            if let Some(value) = text(arguments, argument).filter(|v| !v.trim().is_empty()) {
                query.push((param, value.trim().to_owned()));
            }
        }
        let answer = self
            .call(ctx, "conversations.history", &query, None)
            .await?;
        let mut messages = list(&answer, "messages");
        messages.reverse();
        Ok(Value::Array(self.with_authors(ctx, messages).await))
    }

    /// `conversations.replies`: the parent message first, then its replies, with the authors'
    /// names.
    async fn get_message_thread(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let channel = self
            .channel_id(ctx, text(arguments, "channel").unwrap_or_default())
            .await?;
        let query = [
            ("channel", channel),
            (
                "ts",
                text(arguments, "thread_ts").unwrap_or_default().to_owned(),
            ),
            ("limit", limit(arguments)),
        ];
        let answer = self
            .call(ctx, "conversations.replies", &query, None)
            .await?;
        let messages = list(&answer, "messages");
        Ok(Value::Array(self.with_authors(ctx, messages).await))
    }

    /// Every member of the channel (`conversations.members`, all pages) with their details
    /// (`users.info`) and presence (`users.getPresence`, left `null` when it cannot be had).
    async fn list_users_in_channel(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let channel = self
            .channel_id(ctx, text(arguments, "channel").unwrap_or_default())
            .await?;
        let mut members: Vec<String> = Vec::new();
        let mut cursor = String::new();
        for _ in 0..MAX_MEMBER_PAGES {
            let mut query = vec![
                ("channel", channel.clone()),
                ("limit", PAGE_SIZE.to_owned()),
            ];
            if !cursor.is_empty() {
                query.push(("cursor", cursor));
            }
            let page = self
                .call(ctx, "conversations.members", &query, None)
                .await?;
            members.extend(
                list(&page, "members")
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned),
            );
            cursor = next_cursor(&page);
            if cursor.is_empty() {
                break;
            }
        }
        let users: Vec<Value> = futures::stream::iter(members)
            .map(|id| self.member(ctx, id))
            .buffered(LOOKUPS_AT_ONCE)
            .try_collect()
            .await?;
        Ok(Value::Array(users))
    }

    /// One member as guMCP lists them.
    async fn member(&self, ctx: &RequestContext, id: String) -> Result<Value, String> {
        let query = [("user", id)];
        let info = self.call(ctx, "users.info", &query, None).await?;
        let presence = self
            .call(ctx, "users.getPresence", &query, None)
            .await
            .ok()
            .and_then(|answer| answer.get("presence").cloned())
            .unwrap_or(Value::Null);
        let user = info.get("user").cloned().unwrap_or_else(|| json!({}));
        let field = |pointer: &str| user.pointer(pointer).cloned().unwrap_or(Value::Null);
        let flag = |key: &str| user.get(key).cloned().unwrap_or(Value::Bool(false));
        let mut member = Map::new();
        member.insert("id".into(), field("/id"));
        member.insert("name".into(), field("/name"));
        member.insert("real_name".into(), field("/real_name"));
        member.insert("display_name".into(), field("/profile/display_name"));
        member.insert("email".into(), field("/profile/email"));
        member.insert("is_admin".into(), flag("is_admin"));
        member.insert("is_owner".into(), flag("is_owner"));
        member.insert("is_bot".into(), flag("is_bot"));
        member.insert("updated".into(), field("/updated"));
        member.insert("presence".into(), presence);
        Ok(Value::Object(member))
    }
}

impl McpServer for Slack {
    fn features(&self) -> Features {
        Features {
            resources: true,
            ..Features::default()
        }
    }

    fn tools(&self) -> Vec<Tool> {
        self.tools.clone()
    }

    /// The public and private channels the account can see, up to `MAX_RESOURCE_PAGES` pages.
    fn list_resources<'a>(
        &'a self,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<Vec<Resource>, McpError>> {
        async move {
            let mut resources = Vec::new();
            let mut cursor = String::new();
            for _ in 0..MAX_RESOURCE_PAGES {
                let mut query = vec![
                    ("types", "public_channel,private_channel".to_owned()),
                    ("limit", PAGE_SIZE.to_owned()),
                ];
                if !cursor.is_empty() {
                    query.push(("cursor", cursor));
                }
                let page = self
                    .call(ctx, "conversations.list", &query, None)
                    .await
                    .map_err(McpError::internal)?;
                resources.extend(list(&page, "channels").iter().filter_map(channel_resource));
                cursor = next_cursor(&page);
                if cursor.is_empty() {
                    break;
                }
            }
            Ok(resources)
        }
        .boxed()
    }

    /// The channel's latest messages, oldest first, with their authors (JSON).
    fn read_resource<'a>(
        &'a self,
        uri: &'a str,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<ReadResourceResult, CallError>> {
        async move {
            let channel = channel_of(uri).ok_or_else(|| CallError::ResourceNotFound(uri.into()))?;
            let mut arguments = JsonObject::new();
            arguments.insert("channel".into(), channel.into());
            arguments.insert("limit".into(), RESOURCE_MESSAGES.into());
            let messages = self
                .read_messages(&arguments, ctx)
                .await
                .map_err(McpError::internal)?;
            let text = serde_json::to_string_pretty(&messages).unwrap_or_default();
            Ok(text_resource(uri, text, "application/json"))
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
                return match self.prepare(name, arguments, ctx).await {
                    Ok(arguments) => self.declared.call_tool(name, arguments, ctx).await,
                    Err(message) => Ok(tool_error(message)),
                };
            }
            let outcome = match name {
                "read_messages" => self.read_messages(&arguments, ctx).await,
                "get_message_thread" => self.get_message_thread(&arguments, ctx).await,
                "list_users_in_channel" => self.list_users_in_channel(&arguments, ctx).await,
                _ => return Err(McpError::invalid_params(format!("Unknown tool: {name}")).into()),
            };
            Ok(match outcome {
                Ok(answer) => success(answer),
                Err(message) => tool_error(message),
            })
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_are_told_from_names() {
        for id in ["U012AB3CD", "W0123ABC"] {
            assert!(looks_like_user_id(id), "{id}");
        }
        for name in ["Uma", "alice", "ada@example.com", "U", "@U0123"] {
            assert!(!looks_like_user_id(name), "{name}");
        }
    }

    #[test]
    fn a_header_with_the_title_goes_first_unless_there_is_one() {
        let section = json!({ "type": "section", "text": { "type": "mrkdwn", "text": "hi" } });
        let blocks = with_header(vec![section.clone()], "Notes");
        assert_eq!(blocks[0]["type"], "header");
        assert_eq!(blocks[0]["text"]["text"], "Notes");
        assert_eq!(blocks[1], section);
        let header = json!({ "type": "header", "text": { "type": "plain_text", "text": "Own" } });
        let kept = with_header(vec![section.clone(), header.clone()], "Notes");
        assert_eq!(kept, vec![section, header]);
    }

    #[test]
    fn remove_from_channel_takes_both_spellings() {
        let object = |value: Value| value.as_object().cloned().unwrap();
        let aliased = kick_arguments(object(json!({ "channel_id": "C1", "user_id": "U1" })));
        assert_eq!(
            Value::Object(aliased.unwrap()),
            json!({ "channel": "C1", "user": "U1" })
        );
        let both = kick_arguments(object(
            json!({ "channel": "C2", "channel_id": "C1", "user": "U2" }),
        ));
        assert_eq!(
            Value::Object(both.unwrap()),
            json!({ "channel": "C2", "user": "U2" })
        );
        let missing = kick_arguments(object(json!({ "channel": "C1" }))).unwrap_err();
        assert!(missing.contains("user_id"), "{missing}");
    }

    #[test]
    fn channel_uris_name_one_channel_by_id() {
        assert_eq!(channel_of("slack://channel/C012AB"), Some("C012AB"));
        for bad in [
            "slack://channel/",
            "slack://channel/C1/x",
            "slack://channel/#general",
            "slack://user/U1",
        ] {
            assert_eq!(channel_of(bad), None, "{bad}");
        }
        let private = json!({ "id": "G1", "name": "ops", "is_private": true });
        let resource = channel_resource(&private).unwrap();
        assert_eq!(resource.uri, "slack://channel/G1");
        assert_eq!(resource.name, "#ops");
        assert_eq!(
            resource.description.as_deref(),
            Some("Private Slack channel: #ops")
        );
    }

    #[test]
    fn declared_and_coded_tools_are_the_eighteen_of_gumcp() {
        let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("servers/slack");
        let manifest = crate::servers::manifest::load(&folder).unwrap();
        let mut names: Vec<String> = manifest.tools.iter().map(|t| t.name.clone()).collect();
        names.extend(coded_tools().iter().map(|t| t.name.to_string()));
        names.sort();
        let mut expected: Vec<String> = ORDER.iter().map(|name| name.to_string()).collect();
        expected.sort();
        assert_eq!(names, expected);
    }
}
