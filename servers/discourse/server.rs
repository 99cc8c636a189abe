//! discourse: guMCP's five tools and its resources (categories, latest topics) on the forum
//! the user connected. Code rather than declarations because the API's root is the user's own
//! forum URL and every request names the user the key acts as (`Api-Username`), both read from
//! the stored credential (`[[auth.key_fields]]`).

use std::sync::Arc;

use futures::FutureExt;
use reqwest::Method;
use rmcp::model::{CallToolResult, JsonObject, ReadResourceResult, Resource, Tool};
use serde_json::{json, Value};

use crate::auth::key_fields;
use crate::protocol::error::McpError;
use crate::servers::http::{Api, Upstream};
use crate::servers::kit::{answer, id_segment, json_resource, required_text, tool};
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, Features, McpServer, RequestContext, ServerFuture, ServerInit};

const CATEGORY_URI: &str = "discourse://category/";
const TOPIC_URI: &str = "discourse://topic/";

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    Arc::new(Discourse {
        manifest: init.manifest,
        upstream: init.upstream,
        tools: tools(),
    })
}

struct Discourse {
    manifest: Arc<Manifest>,
    upstream: Upstream,
    tools: Vec<Tool>,
}

fn tools() -> Vec<Tool> {
    vec![
        tool(
            "list_categories",
            "List the forum's categories, one block each",
            json!({ "type": "object", "properties": {} }),
        ),
        tool(
            "search_topics",
            "Search the forum: the matching posts, one block each (else the matching topics)",
            json!({
                "type": "object",
                "properties": {
                    "query": { "type": "string", "description": "What to search for" },
                    "category_id": { "type": "integer", "description": "Only this category's topics (optional)" }
                },
                "required": ["query"]
            }),
        ),
        tool(
            "create_topic",
            "Start a topic in a category; answers its first post",
            json!({
                "type": "object",
                "properties": {
                    "title": { "type": "string", "description": "The topic's title" },
                    "raw": { "type": "string", "description": "The first post, in Markdown" },
                    "category_id": { "type": "integer", "description": "The category to post in" },
                    "tags": { "type": "array", "items": { "type": "string" }, "description": "Tags for the topic (optional)" }
                },
                "required": ["title", "raw", "category_id"]
            }),
        ),
        tool(
            "create_post",
            "Reply in a topic; answers the new post",
            json!({
                "type": "object",
                "properties": {
                    "topic_id": { "type": "integer", "description": "The topic to reply in" },
                    "raw": { "type": "string", "description": "The reply, in Markdown" },
                    "reply_to_post_number": { "type": "integer", "description": "The post number this replies to (optional)" }
                },
                "required": ["topic_id", "raw"]
            }),
        ),
        tool(
            "get_user_info",
            "A user's profile: their badges, one block each, when they have any, else the user",
            json!({
                "type": "object",
                "properties": {
                    "username": { "type": "string", "description": "The user's username" }
                },
                "required": ["username"]
            }),
        ),
    ]
}

/// A list in the answer at `pointer`, when it has items.
fn items_at(answer: &Value, pointer: &str) -> Option<Value> {
    answer
        .pointer(pointer)
        .and_then(Value::as_array)
        .filter(|items| !items.is_empty())
        .map(|items| Value::Array(items.clone()))
}

/// An argument as given, when it is there and not null.
fn given<'a>(arguments: &'a JsonObject, key: &str) -> Option<&'a Value> {
    arguments.get(key).filter(|value| !value.is_null())
}

/// A whole-number argument the tool cannot do without.
fn required_number(arguments: &JsonObject, key: &str) -> Result<i64, String> {
    arguments
        .get(key)
        .and_then(Value::as_i64)
        .ok_or_else(|| format!("{key} is required (a number)"))
}

/// What `create_topic` posts: Discourse names the category `category`.
fn topic_body(arguments: &JsonObject) -> Result<Value, String> {
    let mut body = json!({
        "title": required_text(arguments, "title")?,
        "raw": required_text(arguments, "raw")?,
        "category": required_number(arguments, "category_id")?,
    });
    if let Some(tags) =
        given(arguments, "tags").filter(|tags| tags.as_array().is_some_and(|tags| !tags.is_empty()))
    {
        body["tags"] = tags.clone();
    }
    Ok(body)
}

fn post_body(arguments: &JsonObject) -> Result<Value, String> {
    let mut body = json!({
        "topic_id": required_number(arguments, "topic_id")?,
        "raw": required_text(arguments, "raw")?,
    });
    if let Some(number) = given(arguments, "reply_to_post_number") {
        body["reply_to_post_number"] = number.clone();
    }
    Ok(body)
}

impl Discourse {
    /// The user's forum, as the key's user: the URL and username from the stored credential
    /// (the URL checked again, as a store may hold one written elsewhere), unless the config
    /// points this server elsewhere (`servers.base_urls`).
    async fn forum<'a>(&'a self, ctx: &'a RequestContext) -> Result<Api<'a>, String> {
        let credentials = ctx.credentials.get().await.map_err(|err| err.to_string())?;
        let user = &ctx.user_id;
        let reconnect =
            format!("reconnect with `gumcp-actors auth --server discourse --user-id {user}`");
        let field = |name: &str| {
            let field = self
                .manifest
                .auth
                .key_fields
                .iter()
                .find(|field| field.name == name)?;
            key_fields::value_of(&credentials, field).map(|value| (field, value))
        };
        let missing =
            |label: &str| format!("the {label} of user {user} is not stored; {reconnect}");
        let Some((_, username)) = field("username") else {
            return Err(missing("Discourse username"));
        };
        let site = if self.upstream.base_urls.contains_key(&self.manifest.name) {
            String::new()
        } else {
            let Some((field, url)) = field("base_url") else {
                return Err(missing("Discourse URL"));
            };
            let site = key_fields::site_url(url).map_err(|reason| {
                format!(
                    "the {} stored for user {user} {reason}; {reconnect}",
                    field.label
                )
            })?;
            if self.upstream.refuses_site(&site) {
                return Err(format!(
                    "the {} stored for user {user} names a local or private address, which \
                     this server does not reach (servers.fetch_private_urls); {reconnect}",
                    field.label
                ));
            }
            site
        };
        Ok(self
            .upstream
            .api(&self.manifest, &site, ctx)
            .header("Api-Username", username.to_owned()))
    }

    async fn call(
        &self,
        name: &str,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let forum = self.forum(ctx).await?;
        match name {
            "list_categories" => {
                let answer = forum
                    .json(Method::GET, "/categories.json", &[], None)
                    .await?;
                Ok(items_at(&answer, "/category_list/categories").unwrap_or(answer))
            }
            "search_topics" => {
                let mut query = vec![("q", required_text(arguments, "query")?.to_owned())];
                if let Some(category) = arguments.get("category_id").and_then(Value::as_i64) {
                    query.push(("category_id", category.to_string()));
                }
                let answer = forum
                    .json(Method::GET, "/search.json", &query, None)
                    .await?;
                Ok(items_at(&answer, "/posts")
                    .or_else(|| items_at(&answer, "/topics"))
                    .unwrap_or(answer))
            }
            "create_topic" => {
                let body = topic_body(arguments)?;
                forum
                    .json(Method::POST, "/posts.json", &[], Some(&body))
                    .await
            }
            "create_post" => {
                let body = post_body(arguments)?;
                forum
                    .json(Method::POST, "/posts.json", &[], Some(&body))
                    .await
            }
            "get_user_info" => {
                let username = id_segment(required_text(arguments, "username")?)?;
                let path = format!("/users/{username}.json");
                let answer = forum.json(Method::GET, &path, &[], None).await?;
                Ok(items_at(&answer, "/user_badges")
                    .or_else(|| items_at(&answer, "/badges"))
                    .or_else(|| answer.get("user").cloned())
                    .unwrap_or(answer))
            }
            other => Err(format!("Unknown tool: {other}")),
        }
    }

    /// The categories and the latest topics.
    async fn resources(&self, ctx: &RequestContext) -> Result<Vec<Resource>, String> {
        let forum = self.forum(ctx).await?;
        let categories = forum
            .json(Method::GET, "/categories.json", &[], None)
            .await?;
        let latest = forum.json(Method::GET, "/latest.json", &[], None).await?;
        let listed = |answer: &Value, pointer: &str, uri: &str, label: &str, name: &str| {
            answer
                .pointer(pointer)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|item| {
                    let id = item.get("id")?.as_i64()?;
                    let title = item.get(name)?.as_str()?;
                    Some(
                        Resource::new(format!("{uri}{id}"), format!("{label}: {title}"))
                            .with_mime_type("application/json"),
                    )
                })
                .collect::<Vec<_>>()
        };
        let mut resources = listed(
            &categories,
            "/category_list/categories",
            CATEGORY_URI,
            "Category",
            "name",
        );
        resources.extend(listed(
            &latest,
            "/topic_list/topics",
            TOPIC_URI,
            "Topic",
            "title",
        ));
        Ok(resources)
    }

    /// A category (`/c/{id}/show.json`) or a topic (`/t/{id}.json`).
    async fn read(&self, uri: &str, ctx: &RequestContext) -> Result<Option<Value>, String> {
        let path = if let Some(id) = uri.strip_prefix(CATEGORY_URI) {
            format!("/c/{}/show.json", id_segment(id)?)
        } else if let Some(id) = uri.strip_prefix(TOPIC_URI) {
            format!("/t/{}.json", id_segment(id)?)
        } else {
            return Ok(None);
        };
        let forum = self.forum(ctx).await?;
        forum.json(Method::GET, &path, &[], None).await.map(Some)
    }
}

impl McpServer for Discourse {
    fn features(&self) -> Features {
        Features {
            resources: true,
            ..Features::default()
        }
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

    fn list_resources<'a>(
        &'a self,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<Vec<Resource>, McpError>> {
        async move { self.resources(ctx).await.map_err(McpError::internal) }.boxed()
    }

    fn read_resource<'a>(
        &'a self,
        uri: &'a str,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<ReadResourceResult, CallError>> {
        async move {
            let found = self.read(uri, ctx).await.map_err(McpError::internal)?;
            json_resource(uri, found)
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_topic_names_its_category_as_discourse_does() {
        let given = json!({ "title": "Hi", "raw": "Body", "category_id": 4, "tags": [] });
        assert_eq!(
            topic_body(given.as_object().unwrap()).unwrap(),
            json!({ "title": "Hi", "raw": "Body", "category": 4 })
        );
    }
}
