//! reddit: Reddit's OAuth API (`oauth.reddit.com`) with guMCP's nine tools, names and
//! arguments. Every tool is code: Reddit names things by prefixed ids ("fullnames": `t3_` a
//! post, `t1_` a comment), which the tools accept with or without their prefix; it takes writes
//! as forms with `api_type=json`, and reports a refused write inside a 200 answer
//! (`json.errors`), which becomes a tool error with Reddit's words. Listings are answered as
//! guMCP's: the fields of each post or comment a reader needs, comments with their replies.
//!
//! Every request carries the manifest's descriptive `User-Agent`, as Reddit's API rules ask; the
//! runtime's `Api` does the credentials, the refresh-and-retry on 401 and the wording of
//! upstream failures.

use std::sync::Arc;

use reqwest::Method;
use rmcp::model::{CallToolResult, JsonObject, Tool};
use serde_json::{json, Map, Value};

use crate::protocol::error::McpError;
use crate::servers::http::{Api, Upstream};
use crate::servers::kit::{answer, id_segment, required_text, text, tool};
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, McpServer, RequestContext, ServerFuture, ServerInit};

/// The fields of a post in a listing, as guMCP answers them.
const LISTED_POST: [&str; 10] = [
    "id",
    "title",
    "author",
    "selftext",
    "score",
    "url",
    "num_comments",
    "created_utc",
    "permalink",
    "is_self",
];

/// The fields of a comment, as guMCP answers them (its replies beside them).
const COMMENT: [&str; 9] = [
    "id",
    "author",
    "body",
    "score",
    "created_utc",
    "permalink",
    "edited",
    "is_submitter",
    "stickied",
];

/// How deep comment replies are followed (Reddit nests them; a thread can be deeper than any
/// reader wants, and the answer must stay bounded).
const REPLY_DEPTH: usize = 10;

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    Arc::new(Reddit {
        manifest: init.manifest,
        upstream: init.upstream,
    })
}

struct Reddit {
    manifest: Arc<Manifest>,
    upstream: Upstream,
}

fn string(description: &str) -> Value {
    json!({ "type": "string", "description": description })
}

fn tools() -> Vec<Tool> {
    let post_id = string("The post's id (with or without its t3_ prefix)");
    let comment_id = string("The comment's id (with or without its t1_ prefix)");
    vec![
        tool(
            "retrieve_reddit_post",
            "Fetch top posts in a subreddit with optional size limit.",
            json!({
                "type": "object",
                "properties": {
                    "sort": { "type": "string", "enum": ["hot", "new", "top", "controversial", "rising"], "description": "How the posts are ordered (default hot)" },
                    "subreddit": string("The subreddit's name, without r/"),
                    "limit": { "type": "integer", "description": "How many posts (default 10, at most 100)" }
                },
                "required": ["subreddit"]
            }),
        ),
        tool(
            "get_reddit_post_details",
            "Get detailed content about a specific Reddit post",
            json!({ "type": "object", "properties": { "post_id": post_id }, "required": ["post_id"] }),
        ),
        tool(
            "create_reddit_post",
            "Create a new Reddit post",
            json!({
                "type": "object",
                "properties": {
                    "subreddit": string("The subreddit to post in, without r/"),
                    "title": string("The post's title"),
                    "content": string("The post's text (Markdown)")
                },
                "required": ["subreddit", "title", "content"]
            }),
        ),
        tool(
            "fetch_post_comments",
            "Fetch comments for a specific Reddit post",
            json!({
                "type": "object",
                "properties": {
                    "post_id": post_id,
                    "limit": { "type": "integer", "description": "How many top-level comments (default 10)" },
                    "sort": { "type": "string", "enum": ["new", "old", "top"], "description": "How the comments are ordered (default new)" }
                },
                "required": ["post_id"]
            }),
        ),
        tool(
            "edit_reddit_post",
            "Edit a specific Reddit post",
            json!({
                "type": "object",
                "properties": { "post_id": post_id, "content": string("The post's new text (Markdown)") },
                "required": ["post_id", "content"]
            }),
        ),
        tool(
            "create_reddit_comment",
            "Create a new Reddit comment on a specific post",
            json!({
                "type": "object",
                "properties": {
                    "parent_id": string("The post (t3_… or a bare id) or the comment (t1_…) to reply to"),
                    "content": string("The comment's text (Markdown)")
                },
                "required": ["parent_id", "content"]
            }),
        ),
        tool(
            "edit_reddit_comment",
            "Edit a specific Reddit comment",
            json!({
                "type": "object",
                "properties": { "comment_id": comment_id, "content": string("The comment's new text (Markdown)") },
                "required": ["comment_id", "content"]
            }),
        ),
        tool(
            "delete_reddit_post",
            "Delete a specific Reddit post",
            json!({ "type": "object", "properties": { "post_id": post_id }, "required": ["post_id"] }),
        ),
        tool(
            "delete_reddit_comment",
            "Delete a specific Reddit comment",
            json!({ "type": "object", "properties": { "comment_id": comment_id }, "required": ["comment_id"] }),
        ),
    ]
}

/// The fullname of a thing of `kind` (`t3` a post, `t1` a comment) given with or without its
/// prefix; an empty id is refused.
fn fullname(kind: &str, id: &str) -> Result<String, String> {
    let prefix = format!("{kind}_");
    let bare = id.trim().strip_prefix(&prefix).unwrap_or(id.trim());
    if bare.is_empty() {
        return Err(format!("{id:?} is not an id"));
    }
    Ok(format!("{prefix}{bare}"))
}

/// The thing a comment replies to: a comment's fullname as it is, anything else a post's.
fn reply_target(parent: &str) -> Result<String, String> {
    if parent.trim().starts_with("t1_") {
        return fullname("t1", parent);
    }
    fullname("t3", parent)
}

/// Only `fields` of `object`, those it has.
fn only(object: &Value, fields: &[&str]) -> Value {
    Value::Object(
        fields
            .iter()
            .filter_map(|field| Some(((*field).to_owned(), object.get(*field)?.clone())))
            .collect::<Map<String, Value>>(),
    )
}

/// The things of a listing (`data.children[].data`) of `kind`.
fn things<'a>(listing: &'a Value, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    listing
        .pointer("/data/children")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(move |child| child.get("kind").and_then(Value::as_str) == Some(kind))
        .filter_map(|child| child.get("data"))
}

/// A listing's comments as guMCP answers them, each with its replies (to `depth` levels).
fn comments(listing: &Value, depth: usize) -> Vec<Value> {
    things(listing, "t1")
        .map(|comment| {
            let mut shown = only(comment, &COMMENT);
            let replies = match comment.get("replies") {
                Some(replies) if replies.is_object() && depth > 1 => comments(replies, depth - 1),
                _ => Vec::new(),
            };
            shown["replies"] = Value::Array(replies);
            shown
        })
        .collect()
}

/// A write's answer: Reddit's `json.data`, or its `json.errors` as the failure
/// (`[["SUBREDDIT_NOEXIST", "that subreddit doesn't exist", "sr"]]`).
fn written(answer: Value) -> Result<Value, String> {
    let errors: Vec<String> = answer
        .pointer("/json/errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|error| match error {
            Value::Array(parts) => parts
                .iter()
                .take(2)
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(": "),
            other => other.to_string(),
        })
        .collect();
    if !errors.is_empty() {
        return Err(format!("Reddit refused: {}", errors.join("; ")));
    }
    Ok(answer
        .pointer("/json/data")
        .cloned()
        .unwrap_or_else(|| json!({})))
}

impl Reddit {
    fn api<'a>(&'a self, ctx: &'a RequestContext) -> Api<'a> {
        self.upstream.manifest_api(&self.manifest, ctx)
    }

    /// A form POST with `api_type=json`, as Reddit's writes take it.
    async fn form(
        &self,
        ctx: &RequestContext,
        path: &str,
        fields: &[(&str, &str)],
    ) -> Result<Value, String> {
        let body = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("api_type", "json");
            for (name, value) in fields {
                form.append_pair(name, value);
            }
            form.finish()
        };
        let answer = self
            .api(ctx)
            .upload(
                Method::POST,
                path,
                &[],
                "application/x-www-form-urlencoded",
                body.as_bytes(),
            )
            .await?;
        written(answer)
    }

    async fn retrieve_posts(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let subreddit =
            id_segment(required_text(arguments, "subreddit")?.trim_start_matches("r/"))?;
        let sort = id_segment(text(arguments, "sort").unwrap_or("hot"))?;
        let limit = arguments.get("limit").and_then(Value::as_u64).unwrap_or(10);
        let listing = self
            .api(ctx)
            .json(
                Method::GET,
                &format!("/r/{subreddit}/{sort}"),
                &[("limit", limit.to_string())],
                None,
            )
            .await?;
        Ok(Value::Array(
            things(&listing, "t3")
                .map(|post| only(post, &LISTED_POST))
                .collect(),
        ))
    }

    async fn post_details(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let id = fullname("t3", required_text(arguments, "post_id")?)?;
        let listing = self
            .api(ctx)
            .json(Method::GET, "/api/info", &[("id", id.clone())], None)
            .await?;
        let post = things(&listing, "t3").next().cloned();
        post.ok_or_else(|| format!("Reddit has no post {id}"))
    }

    async fn post_comments(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let id = fullname("t3", required_text(arguments, "post_id")?)?;
        let bare = id_segment(id.trim_start_matches("t3_"))?;
        let query = [
            ("sort", text(arguments, "sort").unwrap_or("new").to_owned()),
            (
                "limit",
                arguments
                    .get("limit")
                    .and_then(Value::as_u64)
                    .unwrap_or(10)
                    .to_string(),
            ),
        ];
        // The post's listing, then its comments' listing.
        let answer = self
            .api(ctx)
            .json(Method::GET, &format!("/comments/{bare}"), &query, None)
            .await?;
        let listing = answer.get(1).cloned().unwrap_or(Value::Null);
        Ok(Value::Array(comments(&listing, REPLY_DEPTH)))
    }

    async fn create_post(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let subreddit = required_text(arguments, "subreddit")?.trim_start_matches("r/");
        let fields = [
            ("sr", subreddit),
            ("title", required_text(arguments, "title")?),
            ("text", required_text(arguments, "content")?),
            ("kind", "self"),
        ];
        self.form(ctx, "/api/submit", &fields).await
    }

    async fn comment(&self, arguments: &JsonObject, ctx: &RequestContext) -> Result<Value, String> {
        let parent = reply_target(required_text(arguments, "parent_id")?)?;
        let fields = [
            ("thing_id", parent.as_str()),
            ("text", required_text(arguments, "content")?),
        ];
        self.form(ctx, "/api/comment", &fields).await
    }

    async fn edit(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
        kind: &str,
        id_arg: &str,
    ) -> Result<Value, String> {
        let thing = fullname(kind, required_text(arguments, id_arg)?)?;
        let fields = [
            ("thing_id", thing.as_str()),
            ("text", required_text(arguments, "content")?),
        ];
        self.form(ctx, "/api/editusertext", &fields).await
    }

    async fn delete(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
        kind: &str,
        id_arg: &str,
    ) -> Result<Value, String> {
        let thing = fullname(kind, required_text(arguments, id_arg)?)?;
        self.form(ctx, "/api/del", &[("id", thing.as_str())])
            .await?;
        let what = if kind == "t3" { "Post" } else { "Comment" };
        Ok(Value::String(format!("{what} {thing} deleted.")))
    }
}

impl McpServer for Reddit {
    fn tools(&self) -> Vec<Tool> {
        tools()
    }

    fn call_tool<'a>(
        &'a self,
        name: &'a str,
        arguments: JsonObject,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<CallToolResult, CallError>> {
        Box::pin(async move {
            let args = &arguments;
            let outcome = match name {
                "retrieve_reddit_post" => self.retrieve_posts(args, ctx).await,
                "get_reddit_post_details" => self.post_details(args, ctx).await,
                "create_reddit_post" => self.create_post(args, ctx).await,
                "fetch_post_comments" => self.post_comments(args, ctx).await,
                "edit_reddit_post" => self.edit(args, ctx, "t3", "post_id").await,
                "create_reddit_comment" => self.comment(args, ctx).await,
                "edit_reddit_comment" => self.edit(args, ctx, "t1", "comment_id").await,
                "delete_reddit_post" => self.delete(args, ctx, "t3", "post_id").await,
                "delete_reddit_comment" => self.delete(args, ctx, "t1", "comment_id").await,
                _ => return Err(McpError::invalid_params(format!("Unknown tool: {name}")).into()),
            };
            Ok(answer(outcome))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_take_their_prefix_once_and_replies_go_to_posts_or_comments() {
        assert_eq!(fullname("t3", "1abc2d").unwrap(), "t3_1abc2d");
        assert_eq!(fullname("t3", "t3_1abc2d").unwrap(), "t3_1abc2d");
        assert_eq!(fullname("t1", " t1_xyz ").unwrap(), "t1_xyz");
        assert!(fullname("t3", "t3_").is_err());
        assert!(fullname("t1", "").is_err());
        assert_eq!(reply_target("1abc2d").unwrap(), "t3_1abc2d");
        assert_eq!(reply_target("t1_xyz").unwrap(), "t1_xyz");
    }

    #[test]
    fn a_refused_write_is_reddits_own_words() {
        let refused = json!({ "json": { "errors": [["SUBREDDIT_NOEXIST", "that subreddit doesn't exist", "sr"]] } });
        assert_eq!(
            written(refused).unwrap_err(),
            "Reddit refused: SUBREDDIT_NOEXIST: that subreddit doesn't exist"
        );
        let made =
            json!({ "json": { "errors": [], "data": { "id": "1abc2d", "name": "t3_1abc2d" } } });
        assert_eq!(written(made).unwrap()["name"], "t3_1abc2d");
    }

    #[test]
    fn replies_are_followed_to_a_bounded_depth() {
        let mut listing = json!({ "data": { "children": [] } });
        for level in 0..15 {
            listing = json!({ "data": { "children": [
                { "kind": "t1", "data": { "id": format!("c{level}"), "body": "x", "replies": listing } },
                { "kind": "more", "data": { "count": 3 } }
            ] } });
        }
        let shown = comments(&listing, REPLY_DEPTH);
        let mut depth = 0;
        let mut level = &shown;
        while let Some(first) = level.first() {
            depth += 1;
            level = first["replies"].as_array().unwrap();
        }
        assert_eq!(depth, REPLY_DEPTH);
        assert_eq!(shown.len(), 1, "\"more\" stubs are no comments");
    }
}
