//! posthog: guMCP's 45 tools on one PostHog project. The project's own REST calls are declared
//! in `server.toml` (paths under the project) and run under `/api/projects/{id}` once the
//! project is known; code finds the project (the one the key sees, else `project_id`), sends
//! events and reads flags at the ingestion host with the project's public token, and lists
//! persons (a filter as PostHog's JSON parameter).

use std::sync::Arc;

use reqwest::Method;
use rmcp::model::{CallToolResult, JsonObject, Tool};
use serde_json::{json, Value};

use crate::protocol::error::McpError;
use crate::servers::http::{HttpServer, Upstream};
use crate::servers::kit::{answer, required_text, text, tool};
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, Features, McpServer, RequestContext, ServerFuture, ServerInit};

/// Where flags are decided, at the ingestion host.
const DECIDE: &str = "/decide/";

/// guMCP's tools in guMCP's order.
const ORDER: [&str; 45] = [
    "list_actions",
    "create_action",
    "get_action",
    "update_action",
    "capture_event",
    "identify_user",
    "check_feature_flag",
    "get_feature_flag_payload",
    "get_all_flags",
    "group_identify",
    "capture_group_event",
    "list_annotations",
    "create_annotation",
    "get_annotation",
    "update_annotation",
    "list_cohorts",
    "create_cohort",
    "get_cohort",
    "update_cohort",
    "delete_cohort",
    "list_dashboards",
    "create_dashboard",
    "get_dashboard",
    "update_dashboard",
    "delete_dashboard",
    "list_dashboard_collaborators",
    "add_dashboard_collaborator",
    "get_dashboard_sharing",
    "list_persons",
    "get_person",
    "list_experiments",
    "create_experiment",
    "get_experiment",
    "update_experiment",
    "check_experiments_requiring_flag",
    "list_insights",
    "create_insight",
    "get_insight_sharing",
    "get_insight",
    "update_insight",
    "get_insight_activity",
    "mark_insight_viewed",
    "get_insights_activity",
    "get_trend_insights",
    "create_trend_insight",
];

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    let declared = HttpServer::new(init.manifest.clone(), init.upstream.clone());
    let mut tools = declared.tools();
    tools.extend(code_tools());
    tools.sort_by_key(|tool| ORDER.iter().position(|name| *name == tool.name));
    Arc::new(PostHog {
        manifest: init.manifest,
        upstream: init.upstream,
        declared,
        tools,
    })
}

struct PostHog {
    manifest: Arc<Manifest>,
    upstream: Upstream,
    /// The project's REST calls, run by the `http` engine under the project's path.
    declared: HttpServer,
    tools: Vec<Tool>,
}

/// The project a call acts on.
struct Project {
    id: i64,
    /// Its public token (`phc_…`), which events and flags are sent with.
    token: Option<String>,
}

/// The ingestion host of a PostHog Cloud app host (`us.posthog.com` → `us.i.posthog.com`);
/// any other host (self-hosted, a proxy, a test) takes events itself.
fn ingestion_base(app_base: &str) -> String {
    let Ok(mut url) = reqwest::Url::parse(app_base) else {
        return app_base.to_owned();
    };
    let ingestion = match url.host_str() {
        Some("us.posthog.com" | "app.posthog.com") => "us.i.posthog.com",
        Some("eu.posthog.com") => "eu.i.posthog.com",
        _ => return app_base.to_owned(),
    };
    if url.set_host(Some(ingestion)).is_err() {
        return app_base.to_owned();
    }
    url.as_str().trim_end_matches('/').to_owned()
}

/// An argument as given, when it is there and not null.
fn given<'a>(arguments: &'a JsonObject, key: &str) -> Option<&'a Value> {
    arguments.get(key).filter(|value| !value.is_null())
}

/// An object argument, `{}` when absent.
fn object_or_empty(arguments: &JsonObject, key: &str) -> Value {
    given(arguments, key).cloned().unwrap_or_else(|| json!({}))
}

/// What is sent to the ingestion host for a tool, with the project's token; and the path.
fn ingestion_request(
    name: &str,
    arguments: &JsonObject,
    token: &str,
) -> Result<(&'static str, Value), String> {
    let properties = object_or_empty(arguments, "properties");
    let distinct_id = || required_text(arguments, "distinct_id");
    Ok(match name {
        "capture_event" => (
            "/capture/",
            json!({
                "api_key": token,
                "event": required_text(arguments, "event")?,
                "distinct_id": distinct_id()?,
                "properties": properties,
            }),
        ),
        "identify_user" => (
            "/i/v0/e/",
            json!({
                "api_key": token,
                "event": "$identify",
                "distinct_id": distinct_id()?,
                "properties": properties,
                "$set": properties,
            }),
        ),
        "check_feature_flag" | "get_feature_flag_payload" | "get_all_flags" => (
            DECIDE,
            json!({
                "api_key": token,
                "distinct_id": distinct_id()?,
                "person_properties": properties,
                "groups": {},
            }),
        ),
        "group_identify" => {
            let group_type = required_text(arguments, "group_type")?;
            let group_key = required_text(arguments, "group_key")?;
            (
                "/i/v0/e/",
                json!({
                    "api_key": token,
                    "event": "$groupidentify",
                    "distinct_id": format!("${group_type}_{group_key}"),
                    "properties": {
                        "$group_type": group_type,
                        "$group_key": group_key,
                        "$group_set": properties,
                    },
                }),
            )
        }
        "capture_group_event" => {
            let mut properties = properties;
            if let Some(object) = properties.as_object_mut() {
                object.insert(
                    "$groups".to_owned(),
                    json!({ required_text(arguments, "group_type")?:
                        required_text(arguments, "group_key")? }),
                );
            }
            (
                "/capture/",
                json!({
                    "api_key": token,
                    "event": required_text(arguments, "event")?,
                    "distinct_id": distinct_id()?,
                    "properties": properties,
                }),
            )
        }
        other => return Err(format!("Unknown tool: {other}")),
    })
}

/// The answer of an ingestion tool: for flags, the part of PostHog's decision asked about.
fn ingestion_answer(name: &str, arguments: &JsonObject, sent: &Value, answered: Value) -> Value {
    let distinct_id = text(arguments, "distinct_id").unwrap_or_default();
    let flag_key = text(arguments, "flag_key").unwrap_or_default();
    match name {
        "check_feature_flag" => {
            let value = answered.pointer(&format!("/featureFlags/{}", pointer_escape(flag_key)));
            json!({
                "flag_key": flag_key,
                "distinct_id": distinct_id,
                "is_enabled": value.is_some_and(|v| v.as_bool() != Some(false) && !v.is_null()),
                "value": value,
            })
        }
        "get_feature_flag_payload" => json!({
            "flag_key": flag_key,
            "distinct_id": distinct_id,
            "payload": answered
                .pointer(&format!("/featureFlagPayloads/{}", pointer_escape(flag_key)))
                .cloned()
                .unwrap_or(Value::Null),
        }),
        "get_all_flags" => json!({
            "distinct_id": distinct_id,
            "flags": answered.get("featureFlags").cloned().unwrap_or_else(|| json!({})),
        }),
        _ => json!({
            "status": "success",
            "event": sent.get("event"),
            "distinct_id": sent.get("distinct_id"),
            "properties": sent.get("properties"),
            "answer": answered,
        }),
    }
}

/// A key as one JSON pointer token.
fn pointer_escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

impl PostHog {
    /// The project of a call: `project_id` as given, else the one project the key sees.
    async fn project(&self, arguments: &JsonObject, ctx: &RequestContext) -> Result<i64, String> {
        match arguments.get("project_id").and_then(Value::as_i64) {
            Some(id) => Ok(id),
            None => Ok(self.listed_project(ctx, None).await?.id),
        }
    }

    /// The public token events and flags are sent with: `project_api_token` as given, else
    /// the token of the project (`project_id`, or the one the key sees).
    async fn token(&self, arguments: &JsonObject, ctx: &RequestContext) -> Result<String, String> {
        if let Some(token) = text(arguments, "project_api_token").filter(|t| !t.trim().is_empty()) {
            return Ok(token.to_owned());
        }
        let id = arguments.get("project_id").and_then(Value::as_i64);
        self.listed_project(ctx, id).await?.token.ok_or_else(|| {
            "PostHog gave no API token for the project; give project_api_token".to_owned()
        })
    }

    /// A project of the key's organization: the one `id` names, or the only one there is.
    async fn listed_project(
        &self,
        ctx: &RequestContext,
        id: Option<i64>,
    ) -> Result<Project, String> {
        let organization = self
            .upstream
            .manifest_api(&self.manifest, ctx)
            .json(Method::GET, "/api/organizations/@current/", &[], None)
            .await?;
        let projects: Vec<&Value> = organization
            .get("teams")
            .and_then(Value::as_array)
            .map(|teams| teams.iter().collect())
            .unwrap_or_default();
        let chosen = match id {
            Some(id) => projects
                .iter()
                .find(|project| project.get("id").and_then(Value::as_i64) == Some(id))
                .ok_or_else(|| {
                    format!("project {id} is not one of this key's projects; give project_api_token too")
                })?,
            None => match projects.as_slice() {
                [only] => only,
                [] => return Err("the PostHog key sees no project".to_owned()),
                several => {
                    let listed: Vec<String> = several
                        .iter()
                        .map(|project| {
                            format!(
                                "{} ({})",
                                project.get("id").unwrap_or(&Value::Null),
                                project.get("name").and_then(Value::as_str).unwrap_or("unnamed")
                            )
                        })
                        .collect();
                    return Err(format!(
                        "the PostHog key sees several projects: {}; give project_id",
                        listed.join(", ")
                    ));
                }
            },
        };
        Ok(Project {
            id: chosen
                .get("id")
                .and_then(Value::as_i64)
                .ok_or("PostHog's project has no id")?,
            token: chosen
                .get("api_token")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }

    /// Events and flags: sent to the ingestion host with the project's token, not the key.
    async fn ingest(
        &self,
        name: &str,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let token = self.token(arguments, ctx).await?;
        let (path, body) = ingestion_request(name, arguments, &token)?;
        let api = self.upstream.manifest_api(&self.manifest, ctx);
        let app_base = self
            .upstream
            .base_urls
            .get(&self.manifest.name)
            .or(self.manifest.base_url.as_ref())
            .map_or("", String::as_str);
        // Version 3 of the decision answers flags as a map, with their payloads.
        let query = if path == DECIDE {
            vec![("v", "3".to_owned())]
        } else {
            Vec::new()
        };
        let answered = api
            .at(&ingestion_base(app_base))
            .anonymous()
            .json(Method::POST, path, &query, Some(&body))
            .await?;
        Ok(ingestion_answer(name, arguments, &body, answered))
    }

    async fn list_persons(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let project = self.project(arguments, ctx).await?;
        let mut query = Vec::new();
        if let Some(search) = text(arguments, "search").filter(|s| !s.is_empty()) {
            query.push(("search", search.to_owned()));
        }
        if let Some(properties) = given(arguments, "properties")
            .and_then(Value::as_array)
            .filter(|list| !list.is_empty())
        {
            query.push(("properties", Value::Array(properties.clone()).to_string()));
        }
        let path = format!("/api/projects/{project}/persons/");
        let answer = self
            .upstream
            .manifest_api(&self.manifest, ctx)
            .json(Method::GET, &path, &query, None)
            .await?;
        Ok(answer.get("results").cloned().unwrap_or(answer))
    }
}

impl McpServer for PostHog {
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
        Box::pin(async move {
            if self.declared.declares(name) {
                return match self.project(&arguments, ctx).await {
                    Ok(project) => {
                        let prefix = format!("/api/projects/{project}");
                        self.declared
                            .call_tool_under(name, arguments, ctx, &prefix)
                            .await
                    }
                    Err(message) => Ok(answer(Err(message))),
                };
            }
            match name {
                "list_persons" => Ok(answer(self.list_persons(&arguments, ctx).await)),
                _ if ORDER.contains(&name) => Ok(answer(self.ingest(name, &arguments, ctx).await)),
                _ => Err(McpError::invalid_params(format!("Unknown tool: {name}")).into()),
            }
        })
    }
}

fn code_tools() -> Vec<Tool> {
    vec![
        tool(
            "capture_event",
            "Send an event for a person (to the project's ingestion endpoint)",
            json!({"type": "object", "properties": {"distinct_id": {"type": "string", "description": "The person's distinct id"}, "event": {"type": "string", "description": "The event name"}, "properties": {"type": "object", "description": "Properties, as PostHog takes them"}, "project_id": {"type": "integer", "description": "The project; optional when the key sees a single project"}, "project_api_token": {"type": "string", "description": "The project's API token (phc_…) for events and flags; optional, looked up from project_id"}}, "required": ["distinct_id", "event"]}),
        ),
        tool(
            "identify_user",
            "Set properties on a person ($identify)",
            json!({"type": "object", "properties": {"distinct_id": {"type": "string", "description": "The person's distinct id"}, "properties": {"type": "object", "description": "Properties, as PostHog takes them"}, "project_id": {"type": "integer", "description": "The project; optional when the key sees a single project"}, "project_api_token": {"type": "string", "description": "The project's API token (phc_…) for events and flags; optional, looked up from project_id"}}, "required": ["distinct_id", "properties"]}),
        ),
        tool(
            "check_feature_flag",
            "Whether a feature flag is on for a person",
            json!({"type": "object", "properties": {"distinct_id": {"type": "string", "description": "The person's distinct id"}, "flag_key": {"type": "string", "description": "The feature flag's key"}, "properties": {"type": "object", "description": "Properties, as PostHog takes them"}, "project_id": {"type": "integer", "description": "The project; optional when the key sees a single project"}, "project_api_token": {"type": "string", "description": "The project's API token (phc_…) for events and flags; optional, looked up from project_id"}}, "required": ["distinct_id", "flag_key"]}),
        ),
        tool(
            "get_feature_flag_payload",
            "A feature flag's payload for a person",
            json!({"type": "object", "properties": {"distinct_id": {"type": "string", "description": "The person's distinct id"}, "flag_key": {"type": "string", "description": "The feature flag's key"}, "properties": {"type": "object", "description": "Properties, as PostHog takes them"}, "project_id": {"type": "integer", "description": "The project; optional when the key sees a single project"}, "project_api_token": {"type": "string", "description": "The project's API token (phc_…) for events and flags; optional, looked up from project_id"}}, "required": ["distinct_id", "flag_key"]}),
        ),
        tool(
            "get_all_flags",
            "Every feature flag's value for a person",
            json!({"type": "object", "properties": {"distinct_id": {"type": "string", "description": "The person's distinct id"}, "properties": {"type": "object", "description": "Properties, as PostHog takes them"}, "project_id": {"type": "integer", "description": "The project; optional when the key sees a single project"}, "project_api_token": {"type": "string", "description": "The project's API token (phc_…) for events and flags; optional, looked up from project_id"}}, "required": ["distinct_id"]}),
        ),
        tool(
            "group_identify",
            "Set properties on a group ($groupidentify)",
            json!({"type": "object", "properties": {"group_type": {"type": "string", "description": "The group type (company, team …)"}, "group_key": {"type": "string", "description": "The group's key"}, "properties": {"type": "object", "description": "Properties, as PostHog takes them"}, "project_id": {"type": "integer", "description": "The project; optional when the key sees a single project"}, "project_api_token": {"type": "string", "description": "The project's API token (phc_…) for events and flags; optional, looked up from project_id"}}, "required": ["group_type", "group_key", "properties"]}),
        ),
        tool(
            "capture_group_event",
            "Send an event for a person within a group",
            json!({"type": "object", "properties": {"distinct_id": {"type": "string", "description": "The person's distinct id"}, "event": {"type": "string", "description": "The event name"}, "group_type": {"type": "string", "description": "The group type (company, team …)"}, "group_key": {"type": "string", "description": "The group's key"}, "properties": {"type": "object", "description": "Properties, as PostHog takes them"}, "project_id": {"type": "integer", "description": "The project; optional when the key sees a single project"}, "project_api_token": {"type": "string", "description": "The project's API token (phc_…) for events and flags; optional, looked up from project_id"}}, "required": ["distinct_id", "event", "group_type", "group_key"]}),
        ),
        tool(
            "list_persons",
            "List persons, one block each, optionally searched or filtered by properties",
            json!({"type": "object", "properties": {"search": {"type": "string", "description": "Text to look for in persons (email, name, distinct id)"}, "properties": {"type": "array", "items": {"type": "string"}, "description": "Properties, as PostHog takes them"}, "project_id": {"type": "integer", "description": "The project; optional when the key sees a single project"}, "project_api_token": {"type": "string", "description": "The project's API token (phc_…) for events and flags; optional, looked up from project_id"}}}),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloud_app_hosts_send_events_to_their_ingestion_host() {
        assert_eq!(
            ingestion_base("https://us.posthog.com"),
            "https://us.i.posthog.com"
        );
        assert_eq!(
            ingestion_base("https://eu.posthog.com/"),
            "https://eu.i.posthog.com"
        );
        assert_eq!(
            ingestion_base("https://posthog.example.com"),
            "https://posthog.example.com"
        );
    }

    #[test]
    fn a_group_event_carries_its_group() {
        let arguments = json!({ "distinct_id": "u1", "event": "paid", "group_type": "company",
                                "group_key": "acme", "properties": { "plan": "pro" } });
        let (path, body) = ingestion_request(
            "capture_group_event",
            arguments.as_object().unwrap(),
            "phc_1",
        )
        .unwrap();
        assert_eq!(path, "/capture/");
        assert_eq!(
            body["properties"],
            json!({ "plan": "pro", "$groups": { "company": "acme" } })
        );
    }
}
