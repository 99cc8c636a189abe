//! bluesky: guMCP's 14 tools as XRPC calls (`https://bsky.social/xrpc/<method>`) with the
//! session's access JWT as Bearer — the session made from the handle and an app password when
//! connecting and refreshed by the auth actor (`[auth.session]`, `auth::session`). Code
//! because the account's own DID (from the stored session) is in most requests and because
//! unfollowing, unblocking and the like first look the account up.

use std::sync::Arc;

use reqwest::Method;
use rmcp::model::{CallToolResult, JsonObject, Tool};
use serde_json::{json, Value};

use crate::protocol::error::McpError;
use crate::servers::http::{Api, Upstream};
use crate::servers::kit::{answer, required_text, text, tool};
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, Features, McpServer, RequestContext, ServerFuture, ServerInit};

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    Arc::new(Bluesky {
        manifest: init.manifest,
        upstream: init.upstream,
        tools: tools(),
    })
}

struct Bluesky {
    manifest: Arc<Manifest>,
    upstream: Upstream,
    tools: Vec<Tool>,
}

fn tools() -> Vec<Tool> {
    vec![
        tool(
            "get_my_profile",
            "The connected account's profile",
            json!({"type": "object", "properties": {}}),
        ),
        tool(
            "search_posts",
            "Search posts; a page of them, one block each",
            json!({"type": "object", "properties": {"query": {"type": "string", "description": "What to search for"}, "limit": {"type": "integer", "default": 25, "description": "How many (1–100, default 25)"}, "cursor": {"type": "string", "description": "The cursor of a previous page"}}, "required": ["query"]}),
        ),
        tool(
            "search_profiles",
            "Search accounts; a page of them, one block each",
            json!({"type": "object", "properties": {"query": {"type": "string", "description": "What to search for"}, "limit": {"type": "integer", "default": 25, "description": "How many (1–100, default 25)"}, "cursor": {"type": "string", "description": "The cursor of a previous page"}}, "required": ["query"]}),
        ),
        tool(
            "get_liked_posts",
            "Posts the account liked, one block each",
            json!({"type": "object", "properties": {"limit": {"type": "integer", "default": 50, "description": "How many (1–100, default 25)"}, "cursor": {"type": "string", "description": "The cursor of a previous page"}}}),
        ),
        tool(
            "get_follows",
            "Accounts the account follows, one block each",
            json!({"type": "object", "properties": {"limit": {"type": "integer", "default": 50, "description": "How many (1–100, default 25)"}, "cursor": {"type": "string", "description": "The cursor of a previous page"}}}),
        ),
        tool(
            "get_posts",
            "The account's own posts and reposts, one block each",
            json!({"type": "object", "properties": {"limit": {"type": "integer", "default": 50, "description": "How many (1–100, default 25)"}, "cursor": {"type": "string", "description": "The cursor of a previous page"}}}),
        ),
        tool(
            "create_post",
            "Post text (with facets for links, mentions and tags)",
            json!({"type": "object", "properties": {"text": {"type": "string", "description": "The post's text (300 characters at most)"}, "facets": {"type": "array", "items": {"type": "object", "properties": {"index": {"type": "object", "properties": {"byteStart": {"type": "number"}, "byteEnd": {"type": "number"}}, "required": ["byteStart", "byteEnd"]}, "features": {"type": "array", "items": {"type": "object"}}}, "required": ["index", "features"]}, "description": "Rich-text facets (links, mentions, tags) as Bluesky takes them"}}, "required": ["text"]}),
        ),
        tool(
            "delete_post",
            "Delete one of the account's posts by its at:// URI",
            json!({"type": "object", "properties": {"post_uri": {"type": "string", "description": "The post's at:// URI"}}, "required": ["post_uri"]}),
        ),
        tool(
            "follow_user",
            "Follow an account",
            json!({"type": "object", "properties": {"did_uri": {"type": "string", "description": "The account's DID (did:plc:…), instead of looking the handle up"}, "handle": {"type": "string", "description": "The account's handle (alice.bsky.social)"}}, "required": ["handle"]}),
        ),
        tool(
            "unfollow_user",
            "Stop following an account",
            json!({"type": "object", "properties": {"handle": {"type": "string", "description": "The account's handle (alice.bsky.social)"}}, "required": ["handle"]}),
        ),
        tool(
            "mute_user",
            "Mute an account",
            json!({"type": "object", "properties": {"did_uri": {"type": "string", "description": "The account's DID (did:plc:…), instead of looking the handle up"}, "handle": {"type": "string", "description": "The account's handle (alice.bsky.social)"}}, "required": ["handle"]}),
        ),
        tool(
            "unmute_user",
            "Unmute an account",
            json!({"type": "object", "properties": {"did_uri": {"type": "string", "description": "The account's DID (did:plc:…), instead of looking the handle up"}, "handle": {"type": "string", "description": "The account's handle (alice.bsky.social)"}}, "required": ["handle"]}),
        ),
        tool(
            "block_user",
            "Block an account",
            json!({"type": "object", "properties": {"did_uri": {"type": "string", "description": "The account's DID (did:plc:…), instead of looking the handle up"}, "reason": {"type": "string", "enum": ["spam", "harassment", "other"], "description": "Why (stored with the block record, as guMCP stores it)"}, "handle": {"type": "string", "description": "The account's handle (alice.bsky.social)"}}, "required": ["handle", "reason"]}),
        ),
        tool(
            "unblock_user",
            "Unblock an account",
            json!({"type": "object", "properties": {"handle": {"type": "string", "description": "The account's handle (alice.bsky.social)"}}, "required": ["handle"]}),
        ),
    ]
}

/// A page's `limit` (guMCP's default when absent) and `cursor`, as query parameters.
fn page(arguments: &JsonObject, default_limit: i64) -> Vec<(&'static str, String)> {
    let limit = arguments
        .get("limit")
        .and_then(Value::as_i64)
        .unwrap_or(default_limit);
    let mut query = vec![("limit", limit.to_string())];
    if let Some(cursor) = text(arguments, "cursor").filter(|c| !c.is_empty()) {
        query.push(("cursor", cursor.to_owned()));
    }
    query
}

/// A list answer's list (`posts`, `feed` …) when it is there, with the next page's cursor
/// as a last block.
fn listed(answer: Value, list: &str) -> Value {
    let Some(items) = answer.get(list).and_then(Value::as_array) else {
        return answer;
    };
    let mut items = items.clone();
    if let Some(cursor) = answer.get("cursor").and_then(Value::as_str) {
        items.push(json!({ "cursor": cursor }));
    }
    Value::Array(items)
}

/// The record key of an `at://did/collection/rkey` URI.
fn record_key(uri: &str) -> Result<&str, String> {
    uri.strip_prefix("at://")
        .and_then(|rest| rest.rsplit('/').next())
        .filter(|key| !key.is_empty())
        .ok_or_else(|| format!("{uri:?} is not an at:// record URI"))
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Bluesky {
    /// The API, and the account's DID (else its handle) from the stored session.
    async fn account<'a>(&'a self, ctx: &'a RequestContext) -> Result<(Api<'a>, String), String> {
        let credentials = ctx.credentials.get().await.map_err(|err| err.to_string())?;
        let me = ["did", "handle"]
            .iter()
            .find_map(|key| credentials.extra.get(*key).and_then(Value::as_str))
            .map(str::to_owned)
            .ok_or_else(|| {
                format!(
                    "the Bluesky session of user {} names no account; reconnect with \
                     `gumcp-actors auth --server bluesky --user-id {}`",
                    ctx.user_id, ctx.user_id
                )
            })?;
        Ok((self.upstream.manifest_api(&self.manifest, ctx), me))
    }

    /// An account's profile as the caller sees it (with `viewer.following` / `blocking`).
    async fn profile(api: &Api<'_>, actor: &str) -> Result<Value, String> {
        api.json(
            Method::GET,
            "/app.bsky.actor.getProfile",
            &[("actor", actor.to_owned())],
            None,
        )
        .await
    }

    /// The DID of the account a tool names: `did_uri` when it is a DID, else the handle's.
    async fn subject(api: &Api<'_>, arguments: &JsonObject) -> Result<String, String> {
        if let Some(did) = text(arguments, "did_uri").filter(|d| d.starts_with("did:")) {
            return Ok(did.to_owned());
        }
        let profile = Self::profile(api, required_text(arguments, "handle")?).await?;
        profile
            .get("did")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| "Bluesky's profile answer has no DID".to_owned())
    }

    async fn create_record(
        api: &Api<'_>,
        me: &str,
        collection: &str,
        record: Value,
    ) -> Result<Value, String> {
        let body = json!({ "repo": me, "collection": collection, "record": record });
        api.json(
            Method::POST,
            "/com.atproto.repo.createRecord",
            &[],
            Some(&body),
        )
        .await
    }

    async fn delete_record(
        api: &Api<'_>,
        me: &str,
        collection: &str,
        uri: &str,
    ) -> Result<Value, String> {
        let body = json!({ "repo": me, "collection": collection, "rkey": record_key(uri)? });
        api.json(
            Method::POST,
            "/com.atproto.repo.deleteRecord",
            &[],
            Some(&body),
        )
        .await?;
        Ok(json!({ "deleted": uri }))
    }

    /// Removes the caller's record about an account (a follow or a block), found on the
    /// account's profile as `viewer.<relation>`.
    async fn undo(
        api: &Api<'_>,
        me: &str,
        handle: &str,
        relation: &str,
        collection: &str,
    ) -> Result<Value, String> {
        let profile = Self::profile(api, handle).await?;
        let Some(uri) = profile
            .pointer(&format!("/viewer/{relation}"))
            .and_then(Value::as_str)
        else {
            return Err(format!("{handle}: there is no {relation} record to undo"));
        };
        Self::delete_record(api, me, collection, uri).await
    }

    async fn call(
        &self,
        name: &str,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let (api, me) = self.account(ctx).await?;
        let get = |method: &str, mut query: Vec<(&'static str, String)>, actor: bool| {
            if actor {
                query.insert(0, ("actor", me.clone()));
            }
            let path = format!("/{method}");
            let api = &api;
            async move { api.json(Method::GET, &path, &query, None).await }
        };
        match name {
            "get_my_profile" => get("app.bsky.actor.getProfile", Vec::new(), true).await,
            "search_posts" => {
                let mut query = vec![("q", required_text(arguments, "query")?.to_owned())];
                query.extend(page(arguments, 25));
                Ok(listed(
                    get("app.bsky.feed.searchPosts", query, false).await?,
                    "posts",
                ))
            }
            "search_profiles" => {
                let mut query = vec![("term", required_text(arguments, "query")?.to_owned())];
                query.extend(page(arguments, 25));
                let found = get("app.bsky.actor.searchActors", query, false).await?;
                Ok(listed(found, "actors"))
            }
            "get_liked_posts" => {
                let liked = get("app.bsky.feed.getActorLikes", page(arguments, 50), true).await?;
                Ok(listed(liked, "feed"))
            }
            "get_follows" => {
                let follows = get("app.bsky.graph.getFollows", page(arguments, 50), true).await?;
                Ok(listed(follows, "follows"))
            }
            "get_posts" => {
                let feed = get("app.bsky.feed.getAuthorFeed", page(arguments, 50), true).await?;
                Ok(listed(feed, "feed"))
            }
            "create_post" => {
                let mut record = json!({
                    "$type": "app.bsky.feed.post",
                    "text": required_text(arguments, "text")?,
                    "createdAt": now(),
                });
                if let Some(facets) = arguments
                    .get("facets")
                    .filter(|f| f.as_array().is_some_and(|f| !f.is_empty()))
                {
                    record["facets"] = facets.clone();
                }
                Self::create_record(&api, &me, "app.bsky.feed.post", record).await
            }
            "delete_post" => {
                let uri = required_text(arguments, "post_uri")?;
                Self::delete_record(&api, &me, "app.bsky.feed.post", uri).await
            }
            "follow_user" => {
                let subject = Self::subject(&api, arguments).await?;
                let record = json!({ "$type": "app.bsky.graph.follow", "subject": subject, "createdAt": now() });
                Self::create_record(&api, &me, "app.bsky.graph.follow", record).await
            }
            "unfollow_user" => {
                let handle = required_text(arguments, "handle")?;
                Self::undo(&api, &me, handle, "following", "app.bsky.graph.follow").await
            }
            "mute_user" | "unmute_user" => {
                let subject = Self::subject(&api, arguments).await?;
                let method = if name == "mute_user" {
                    "/app.bsky.graph.muteActor"
                } else {
                    "/app.bsky.graph.unmuteActor"
                };
                api.json(
                    Method::POST,
                    method,
                    &[],
                    Some(&json!({ "actor": subject })),
                )
                .await?;
                let done = if name == "mute_user" {
                    "muted"
                } else {
                    "unmuted"
                };
                Ok(json!({ done: subject }))
            }
            "block_user" => {
                let subject = Self::subject(&api, arguments).await?;
                let record = json!({
                    "$type": "app.bsky.graph.block",
                    "subject": subject,
                    "createdAt": now(),
                    "reason": text(arguments, "reason").unwrap_or("other"),
                });
                Self::create_record(&api, &me, "app.bsky.graph.block", record).await
            }
            "unblock_user" => {
                let handle = required_text(arguments, "handle")?;
                Self::undo(&api, &me, handle, "blocking", "app.bsky.graph.block").await
            }
            other => Err(format!("Unknown tool: {other}")),
        }
    }
}

impl McpServer for Bluesky {
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
    fn a_record_key_is_the_last_segment_of_an_at_uri() {
        assert_eq!(
            record_key("at://did:plc:ada/app.bsky.feed.post/3k2a").unwrap(),
            "3k2a"
        );
        assert!(record_key("https://bsky.app/profile/x").is_err());
    }
}
