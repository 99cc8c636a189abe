//! x: X's API v2 with guMCP's eight tools, names and arguments. Four are one request each,
//! declared in `server.toml` and handed to the runtime's `http` engine. The three timelines
//! (`get_user_posts`, `get_user_home_timeline`, `get_user_mentions`) are code: X names a user
//! by id, so the username is looked up first. `create_tweet` is code too: a reply and a poll
//! are objects of their own, sent only when asked for.
//!
//! Answers are X's own (`data`, `includes`, `meta`), not guMCP's prose summaries, which cut
//! each post to 150 characters. The runtime's `Api` does the credentials, the refresh-and-retry
//! on 401 and the wording of upstream failures.

use std::sync::Arc;

use reqwest::Method;
use rmcp::model::{CallToolResult, JsonObject, Tool};
use serde_json::{json, Map, Value};

use crate::protocol::error::McpError;
use crate::servers::http::{Api, HttpServer, Upstream};
use crate::servers::kit::{answer, id_segment, required_text, tool};
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, McpServer, RequestContext, ServerFuture, ServerInit};

/// guMCP's order of the tools, declared and coded alike.
const ORDER: [&str; 8] = [
    "search_recent_tweet",
    "get_user_profile",
    "get_user_posts",
    "get_user_home_timeline",
    "get_user_mentions",
    "get_tweet_by_id",
    "create_tweet",
    "delete_tweet",
];

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    let declared = HttpServer::new(init.manifest.clone(), init.upstream.clone());
    let mut tools = coded_tools();
    tools.extend(declared.tools());
    tools.sort_by_key(|tool| ORDER.iter().position(|name| *name == tool.name));
    Arc::new(X {
        manifest: init.manifest,
        upstream: init.upstream,
        declared,
        tools,
    })
}

struct X {
    manifest: Arc<Manifest>,
    upstream: Upstream,
    /// The tools `server.toml` declares, run by the `http` engine.
    declared: HttpServer,
    tools: Vec<Tool>,
}

fn timeline_schema() -> Value {
    let string = |description: &str| json!({ "type": "string", "description": description });
    let list = |description: &str| json!({ "type": "array", "items": { "type": "string" }, "description": description });
    json!({
        "type": "object",
        "properties": {
            "username": string("X username (without @)"),
            "max_results": { "type": "integer", "description": "Maximum number of tweets to return (5-100)", "default": 10, "minimum": 5, "maximum": 100 },
            "start_time": string("The oldest UTC timestamp from which to start fetching tweets (format: YYYY-MM-DDTHH:mm:ssZ)"),
            "end_time": string("The newest UTC timestamp to end fetching tweets (format: YYYY-MM-DDTHH:mm:ssZ)"),
            "since_id": string("Returns results with tweet ID greater than (more recent than) this ID"),
            "until_id": string("Returns results with tweet ID less than (older than) this ID"),
            "pagination_token": string("Token for pagination of results"),
            "tweet_fields": list("Tweet fields to include in response"),
            "expansions": list("Fields to expand in the response (e.g. attachments.media_keys)")
        },
        "required": ["username"]
    })
}

fn coded_tools() -> Vec<Tool> {
    vec![
        tool(
            "get_user_posts",
            "Get a user's posts (tweets created by the user)",
            timeline_schema(),
        ),
        tool(
            "get_user_home_timeline",
            "Get a user's home timeline (tweets from users they follow)",
            timeline_schema(),
        ),
        tool(
            "get_user_mentions",
            "Get tweets that mention a specific user",
            timeline_schema(),
        ),
        tool(
            "create_tweet",
            "Create a new tweet on behalf of the authenticated user",
            json!({
                "type": "object",
                "properties": {
                    "text": { "type": "string", "description": "The content of the tweet" },
                    "reply_to_tweet_id": { "type": "string", "description": "Tweet ID to reply to" },
                    "quote_tweet_id": { "type": "string", "description": "Tweet ID to quote" },
                    "poll_options": { "type": "array", "items": { "type": "string" }, "description": "Options for a poll (2-4 options required if included)" },
                    "poll_duration_minutes": { "type": "integer", "description": "Duration for the poll in minutes (between 5 and 10080; default 1440)" },
                    "reply_settings": { "type": "string", "description": "Who can reply to the tweet", "enum": ["following", "mentionedUsers", "subscribers"] },
                    "for_super_followers_only": { "type": "boolean", "description": "Whether the tweet is for super followers only" }
                },
                "required": ["text"]
            }),
        ),
    ]
}

/// A list argument as X takes it (comma-separated), or `default`.
fn fields(arguments: &JsonObject, key: &str, default: &str) -> String {
    match arguments.get(key).and_then(Value::as_array) {
        Some(items) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(","),
        None => default.to_owned(),
    }
}

/// A timeline's query: guMCP's defaults, and the arguments given.
fn timeline_query(arguments: &JsonObject) -> Vec<(&'static str, String)> {
    let max_results = arguments
        .get("max_results")
        .and_then(Value::as_u64)
        .unwrap_or(10)
        .min(100);
    let mut query = vec![
        ("max_results", max_results.to_string()),
        ("expansions", fields(arguments, "expansions", "author_id")),
        (
            "tweet.fields",
            fields(arguments, "tweet_fields", "created_at,text,author_id"),
        ),
        ("user.fields", "name,username".to_owned()),
    ];
    for key in [
        "start_time",
        "end_time",
        "since_id",
        "until_id",
        "pagination_token",
    ] {
        if let Some(value) = arguments.get(key).and_then(Value::as_str) {
            query.push((key, value.to_owned()));
        }
    }
    query
}

/// The body of a new post: the text, and each part only when its arguments are given.
fn post_body(arguments: &JsonObject) -> Result<Value, String> {
    let mut body = Map::new();
    body.insert(
        "text".into(),
        Value::String(required_text(arguments, "text")?.to_owned()),
    );
    if let Some(reply) = arguments.get("reply_to_tweet_id").and_then(Value::as_str) {
        body.insert("reply".into(), json!({ "in_reply_to_tweet_id": reply }));
    }
    if let Some(options) = arguments.get("poll_options").and_then(Value::as_array) {
        let duration = arguments
            .get("poll_duration_minutes")
            .and_then(Value::as_u64)
            .unwrap_or(1440);
        body.insert(
            "poll".into(),
            json!({ "options": options, "duration_minutes": duration }),
        );
    }
    for key in [
        "quote_tweet_id",
        "reply_settings",
        "for_super_followers_only",
    ] {
        if let Some(value) = arguments.get(key) {
            body.insert(key.into(), value.clone());
        }
    }
    Ok(Value::Object(body))
}

impl X {
    fn api<'a>(&'a self, ctx: &'a RequestContext) -> Api<'a> {
        self.upstream.manifest_api(&self.manifest, ctx)
    }

    /// A user's timeline (`kind`: `tweets`, `timelines/reverse_chronological`, `mentions`),
    /// the user found by username first.
    async fn timeline(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
        kind: &str,
    ) -> Result<Value, String> {
        let username = required_text(arguments, "username")?.trim_start_matches('@');
        let api = self.api(ctx);
        let user = api
            .json(
                Method::GET,
                &format!("/users/by/username/{}", id_segment(username)?),
                &[],
                None,
            )
            .await?;
        let Some(id) = user.pointer("/data/id").and_then(Value::as_str) else {
            return Err(format!("X has no user @{username}"));
        };
        let path = format!("/users/{}/{kind}", id_segment(id)?);
        api.json(Method::GET, &path, &timeline_query(arguments), None)
            .await
    }

    async fn create_tweet(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let body = post_body(arguments)?;
        let made = self
            .api(ctx)
            .json(Method::POST, "/tweets", &[], Some(&body))
            .await?;
        Ok(made.get("data").cloned().unwrap_or(made))
    }
}

impl McpServer for X {
    fn tools(&self) -> Vec<Tool> {
        self.tools.clone()
    }

    fn call_tool<'a>(
        &'a self,
        name: &'a str,
        arguments: JsonObject,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<CallToolResult, CallError>> {
        if self.declared.declares(name) {
            return self.declared.call_tool(name, arguments, ctx);
        }
        Box::pin(async move {
            let args = &arguments;
            let outcome = match name {
                "get_user_posts" => self.timeline(args, ctx, "tweets").await,
                "get_user_home_timeline" => {
                    self.timeline(args, ctx, "timelines/reverse_chronological")
                        .await
                }
                "get_user_mentions" => self.timeline(args, ctx, "mentions").await,
                "create_tweet" => self.create_tweet(args, ctx).await,
                _ => return Err(McpError::invalid_params(format!("Unknown tool: {name}")).into()),
            };
            Ok(answer(outcome))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(value: Value) -> JsonObject {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn a_post_has_a_reply_or_a_poll_only_when_asked_for() {
        assert_eq!(
            post_body(&args(json!({ "text": "hi" }))).unwrap(),
            json!({ "text": "hi" })
        );
        let full = post_body(&args(json!({
            "text": "Which?", "reply_to_tweet_id": "17", "poll_options": ["a", "b"],
            "reply_settings": "following"
        })))
        .unwrap();
        assert_eq!(
            full,
            json!({
                "text": "Which?", "reply": { "in_reply_to_tweet_id": "17" },
                "poll": { "options": ["a", "b"], "duration_minutes": 1440 },
                "reply_settings": "following"
            })
        );
    }

    #[test]
    fn timelines_ask_for_the_default_fields_unless_told_otherwise() {
        let query = timeline_query(&args(
            json!({ "max_results": 500, "tweet_fields": ["text"] }),
        ));
        assert!(query.contains(&("max_results", "100".to_owned())));
        assert!(query.contains(&("tweet.fields", "text".to_owned())));
        assert!(query.contains(&("expansions", "author_id".to_owned())));
    }
}
