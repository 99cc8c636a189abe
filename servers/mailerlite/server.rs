//! mailerlite: MailerLite's API (`connect.mailerlite.com`) with guMCP's 33 tools. 27 are
//! declared in `server.toml`; the six lists that take a `filter` object are code, because the
//! object's keys travel as MailerLite's `filter[key]` query parameters, which a declared query
//! (one argument per parameter) cannot name. They keep guMCP's defaults (`limit` 10, `sort`
//! `name`, subscribers `active`) and answer the items, one block each.

use std::sync::Arc;

use reqwest::Method;
use rmcp::model::{CallToolResult, JsonObject, Tool};
use serde_json::{json, Value};

use crate::servers::http::{HttpServer, Upstream};
use crate::servers::kit::{answer, id_segment, tool};
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, Features, McpServer, RequestContext, ServerFuture, ServerInit};

/// One list tool: where it reads, its plain parameters (their defaults are its schema's, as
/// guMCP's), and the keys its `filter` object may hold (with guMCP's default, if any).
struct List {
    name: &'static str,
    description: &'static str,
    /// The path; `{}` is the id argument `id_arg` names.
    path: &'static str,
    id_arg: Option<&'static str>,
    params: &'static [&'static str],
    filters: &'static [(&'static str, Option<&'static str>)],
    schema: fn() -> Value,
}

/// The lists, with guMCP's position among the 33 tools.
fn lists() -> [(usize, List); 6] {
    [
        (
            0,
            List {
                name: "list_all_subscribers",
                description: "List subscribers (by default the active ones); one block per subscriber",
                path: "/subscribers",
                id_arg: None,
                params: &["limit"],
                filters: &[("status", Some("active"))],
                schema: || {
                    json!({ "type": "object", "properties": {
                        "limit": { "type": "integer", "default": 10, "description": "How many (default 10)" },
                        "filter": { "type": "object", "description": "Filters", "properties": {
                            "status": { "type": "string", "default": "active", "description": "active, unsubscribed, unconfirmed, bounced or junk (default active)" }
                        } }
                    } })
                },
            },
        ),
        (
            5,
            List {
                name: "list_groups",
                description: "List groups; one block per group",
                path: "/groups",
                id_arg: None,
                params: &["limit", "sort"],
                filters: &[("name", None)],
                schema: || {
                    json!({ "type": "object", "properties": {
                        "limit": { "type": "integer", "default": 10, "description": "How many (default 10)" },
                        "filter": { "type": "object", "description": "Filters", "properties": {
                            "name": { "type": "string", "description": "Only groups whose name contains this" }
                        } },
                        "sort": { "type": "string", "default": "name", "description": "name, total, open_rate, click_rate or created_at; - first for descending (default name)" }
                    } })
                },
            },
        ),
        (
            9,
            List {
                name: "get_group_subscribers",
                description: "List a group's subscribers (by default the active ones); one block per subscriber",
                path: "/groups/{}/subscribers",
                id_arg: Some("group_id"),
                params: &["limit"],
                filters: &[("status", Some("active"))],
                schema: || {
                    json!({ "type": "object", "properties": {
                        "group_id": { "type": "number", "description": "The group's id" },
                        "limit": { "type": "integer", "default": 10, "description": "How many (default 10)" },
                        "filter": { "type": "object", "description": "Filters", "properties": {
                            "status": { "type": "string", "default": "active", "description": "active, unsubscribed, unconfirmed, bounced or junk (default active)" }
                        } }
                    }, "required": ["group_id"] })
                },
            },
        ),
        (
            12,
            List {
                name: "list_fields",
                description: "List subscriber fields; one block per field",
                path: "/fields",
                id_arg: None,
                params: &["limit", "sort"],
                filters: &[("keyword", None), ("type", None)],
                schema: || {
                    json!({ "type": "object", "properties": {
                        "limit": { "type": "integer", "default": 10, "description": "How many (default 10)" },
                        "filter": { "type": "object", "description": "Filters", "properties": {
                            "keyword": { "type": "string", "description": "Only fields whose name contains this" },
                            "type": { "type": "string", "description": "Only fields of this type: default or custom" }
                        } },
                        "sort": { "type": "string", "default": "name", "description": "name or type; - first for descending (default name)" }
                    } })
                },
            },
        ),
        (
            16,
            List {
                name: "list_campaigns",
                description: "List campaigns; one block per campaign",
                path: "/campaigns",
                id_arg: None,
                params: &["limit"],
                filters: &[("status", None), ("type", None)],
                schema: || {
                    json!({ "type": "object", "properties": {
                        "limit": { "type": "integer", "default": 10, "description": "How many (default 10)" },
                        "filter": { "type": "object", "description": "Filters", "properties": {
                            "status": { "type": "string", "description": "sent, draft or ready" },
                            "type": { "type": "string", "description": "regular, ab, resend or rss" }
                        } }
                    } })
                },
            },
        ),
        (
            23,
            List {
                name: "list_forms",
                description: "List forms of a type; one block per form",
                path: "/forms/{}",
                id_arg: Some("type"),
                params: &["limit", "page", "sort"],
                filters: &[("name", None)],
                schema: || {
                    json!({ "type": "object", "properties": {
                        "type": { "type": "string", "default": "popup", "description": "popup, embedded or promotion" },
                        "limit": { "type": "number", "default": 10, "description": "How many (default 10)" },
                        "page": { "type": "number", "default": 1, "description": "The page (default 1)" },
                        "sort": { "type": "string", "default": "name", "description": "name, created_at, conversions_count, opens_count, visitors or conversion_rate; - first for descending (default name)" },
                        "filter": { "type": "object", "description": "Filters", "properties": {
                            "name": { "type": "string", "description": "Only forms whose name contains this" }
                        } }
                    }, "required": ["type"] })
                },
            },
        ),
    ]
}

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    let declared = HttpServer::new(init.manifest.clone(), init.upstream.clone());
    let mut tools = declared.tools();
    for (at, list) in lists() {
        let listed = tool(list.name, list.description, (list.schema)());
        tools.insert(at.min(tools.len()), listed);
    }
    Arc::new(Mailerlite {
        manifest: init.manifest,
        upstream: init.upstream,
        declared,
        tools,
    })
}

struct Mailerlite {
    manifest: Arc<Manifest>,
    upstream: Upstream,
    /// The tools but the filtered lists, run by the `http` engine.
    declared: HttpServer,
    tools: Vec<Tool>,
}

/// An argument as a query or path value: strings as they are, numbers printed (an integral
/// float as an integer: ids and limits may come as `5.0`).
fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(match number.as_f64() {
            Some(float) if number.is_f64() && float.fract() == 0.0 && float.abs() < 1e15 => {
                format!("{}", float as i64)
            }
            _ => number.to_string(),
        }),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// The path and query of a list call: the path's id, the plain parameters (guMCP's default
/// where the schema has one), and each filter as `filter[key]`.
fn list_request(
    list: &List,
    arguments: &JsonObject,
) -> Result<(String, Vec<(String, String)>), String> {
    let schema = (list.schema)();
    let default_of = |name: &str| {
        schema
            .pointer(&format!("/properties/{name}/default"))
            .cloned()
    };
    let path = match list.id_arg {
        None => list.path.to_owned(),
        Some(arg) => {
            let id = arguments
                .get(arg)
                .cloned()
                .or_else(|| default_of(arg))
                .and_then(|value| as_text(&value))
                .ok_or_else(|| format!("{arg} is required"))?;
            list.path.replace("{}", &id_segment(&id)?)
        }
    };
    let mut query = Vec::new();
    for name in list.params {
        let value = arguments.get(*name).cloned().or_else(|| default_of(name));
        if let Some(value) = value.as_ref().and_then(as_text) {
            query.push(((*name).to_owned(), value));
        }
    }
    let filter = arguments.get("filter").and_then(Value::as_object);
    for (key, default) in list.filters {
        let given = filter.and_then(|filter| filter.get(*key)).and_then(as_text);
        if let Some(value) = given.or_else(|| default.map(str::to_owned)) {
            query.push((format!("filter[{key}]"), value));
        }
    }
    Ok((path, query))
}

impl Mailerlite {
    async fn list(
        &self,
        list: &List,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let (path, query) = list_request(list, arguments)?;
        let query: Vec<(&str, String)> = query
            .iter()
            .map(|(name, value)| (name.as_str(), value.clone()))
            .collect();
        let answer = self
            .upstream
            .manifest_api(&self.manifest, ctx)
            .json(Method::GET, &path, &query, None)
            .await?;
        Ok(answer.get("data").cloned().unwrap_or(answer))
    }
}

impl McpServer for Mailerlite {
    fn features(&self) -> Features {
        self.declared.features()
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
        let Some((_, list)) = lists().into_iter().find(|(_, list)| list.name == name) else {
            return self.declared.call_tool(name, arguments, ctx);
        };
        Box::pin(async move { Ok(answer(self.list(&list, &arguments, ctx).await)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_bracketed_parameters_with_gumcps_defaults() {
        let [(_, subscribers), _, _, _, _, (_, forms)] = lists();
        let none = JsonObject::new();
        let (path, query) = list_request(&subscribers, &none).unwrap();
        assert_eq!(path, "/subscribers");
        assert_eq!(
            query,
            [
                ("limit".into(), "10".into()),
                ("filter[status]".into(), "active".into())
            ]
        );
        let given = json!({ "type": "embedded", "page": 2.0, "filter": { "name": "Sign" } });
        let (path, query) = list_request(&forms, given.as_object().unwrap()).unwrap();
        assert_eq!(path, "/forms/embedded");
        assert!(query.contains(&("page".into(), "2".into())));
        assert!(query.contains(&("filter[name]".into(), "Sign".into())));
    }
}
