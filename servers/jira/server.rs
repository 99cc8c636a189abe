//! jira: Jira Cloud's REST API v3 with guMCP's seventeen tools, names and arguments, on the
//! Atlassian provider (OAuth 2.0 3LO, rotating refresh tokens).
//!
//! A Jira Cloud site is reached at `https://api.atlassian.com/ex/jira/{cloud id}/rest/api/3`,
//! and the cloud id is found with the user's token at `/oauth/token/accessible-resources`. The
//! sites found are cached in this instance — one per (server, principal), so the cache is the
//! principal's own — for as long as the access token they were read with: a refreshed or
//! reconnected account reads them again, and a `cloud_id` not among them reads them once more
//! before it is refused. Every tool takes guMCP's `cloud_id` or `site_name`; with one site
//! neither is needed, with several one must be named (the error lists them).
//!
//! Twelve tools are one request each, declared in `server.toml` under `/rest/api/3` and run by
//! the `http` engine under the site's prefix (`HttpServer::call_tool_under`). Five are code:
//! create_project (the caller as lead unless one is named), create_issue and update_issue
//! (fields only when given, the description in Atlassian Document Format), transition_my_issue
//! (the transition found by its target status) and get_my_issues (JQL on `currentUser()`).
//! guMCP's resources are the sites, as `jira://site/{cloud id}`. The runtime's `Api` does the
//! credentials, the refresh-and-retry on 401 and the wording of upstream failures.

use std::sync::Arc;

use futures::FutureExt;
use reqwest::Method;
use rmcp::model::{CallToolResult, JsonObject, ReadResourceResult, Resource, Tool};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::protocol::error::McpError;
use crate::servers::http::{Api, HttpServer, Upstream};
use crate::servers::kit::{answer, id_segment, json_resource, required_text, text, tool};
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, Features, McpServer, RequestContext, ServerFuture, ServerInit};

const SITE_URI: &str = "jira://site/";
/// Sites kept from one accessible-resources answer (an account reaches a handful).
const MAX_SITES: usize = 100;
/// Where the fields Jira's search answers with are named (the endpoint gives ids only
/// otherwise).
const SEARCH: &str = "/search/jql";

/// guMCP's order of the tools, declared and coded alike.
const ORDER: [&str; 17] = [
    "create_project",
    "get_project",
    "update_project",
    "delete_project",
    "list_projects",
    "get_issue_types_for_project",
    "create_issue",
    "get_issue",
    "update_issue",
    "delete_issue",
    "transition_my_issue",
    "list_issues",
    "comment_on_issue",
    "get_myself",
    "get_my_issues",
    "get_my_recent_activity",
    "get_my_permissions",
];

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    let declared = HttpServer::new(init.manifest.clone(), init.upstream.clone());
    let mut tools = coded_tools();
    tools.extend(declared.tools());
    tools.sort_by_key(|tool| ORDER.iter().position(|name| *name == tool.name));
    Arc::new(Jira {
        manifest: init.manifest,
        upstream: init.upstream,
        declared,
        tools,
        sites: tokio::sync::Mutex::new(None),
    })
}

/// The sites an access token reaches, and the digest of that token.
struct KnownSites {
    token: [u8; 32],
    sites: Vec<Value>,
}

struct Jira {
    manifest: Arc<Manifest>,
    upstream: Upstream,
    /// The tools `server.toml` declares, run by the `http` engine.
    declared: HttpServer,
    tools: Vec<Tool>,
    /// This principal's sites (one lookup at a time: concurrent first calls wait for it).
    sites: tokio::sync::Mutex<Option<KnownSites>>,
}

fn string(description: &str) -> Value {
    json!({ "type": "string", "description": description })
}

/// A tool's schema: `properties` with guMCP's site selection beside them.
fn schema(mut properties: Value, required: &[&str]) -> Value {
    properties["cloud_id"] =
        string("Specific Atlassian Cloud ID to use (required only if you have multiple sites)");
    properties["site_name"] =
        string("Atlassian site name to use (required only if you have multiple sites)");
    json!({ "type": "object", "properties": properties, "required": required })
}

fn priority() -> Value {
    json!({ "type": "string", "enum": ["Highest", "High", "Medium", "Low", "Lowest"], "description": "Issue priority" })
}

fn coded_tools() -> Vec<Tool> {
    let story_points =
        json!({ "type": "number", "description": "Story points (Jira's customfield_10016)" });
    let labels = json!({ "type": "array", "items": { "type": "string" }, "description": "Labels for the issue" });
    vec![
        tool(
            "create_project",
            "Set up a new JIRA project for a team, client, or initiative.",
            schema(
                json!({
                    "key": string("Project key (e.g., PRJ)"),
                    "name": string("Project name"),
                    "description": string("Project description"),
                    "project_type_key": { "type": "string", "enum": ["software", "service_desk", "business"], "description": "Type of project (required)" },
                    "lead_account_id": string("Account ID of the project lead (default: you)"),
                    "template_key": string("Project template key (e.g. com.pyxis.greenhopper.jira:gh-simplified-kanban-classic)")
                }),
                &["key", "name", "project_type_key"],
            ),
        ),
        tool(
            "create_issue",
            "Create a new issue, bug, task, or story in a project.",
            schema(
                json!({
                    "project_key": string("Project key (e.g., PRJ)"),
                    "summary": string("Issue summary/title"),
                    "description": string("Issue description"),
                    "issue_type": { "type": "string", "enum": ["Task", "Bug", "Story", "Epic"], "description": "Issue type" },
                    "assignee_account_id": string("Account ID of the assignee"),
                    "priority": priority(),
                    "parent_key": string("Key of the parent issue (for subtasks or issues under an epic)"),
                    "story_points": story_points,
                    "labels": labels
                }),
                &["project_key", "summary", "issue_type"],
            ),
        ),
        tool(
            "update_issue",
            "Modify issue fields such as assignee, priority, or status.",
            schema(
                json!({
                    "issue_key": string("Issue key (e.g., PRJ-123)"),
                    "summary": string("New summary"),
                    "description": string("New description"),
                    "assignee_account_id": string("Account ID of the new assignee"),
                    "priority": priority(),
                    "story_points": story_points,
                    "labels": { "type": "array", "items": { "type": "string" }, "description": "The issue's labels (replacing the ones it has)" }
                }),
                &["issue_key"],
            ),
        ),
        tool(
            "transition_my_issue",
            "Move an assigned issue to a new status (e.g., 'In Progress', 'Done').",
            schema(
                json!({
                    "issue_key": string("Issue key (e.g., PRJ-123)"),
                    "transition_to": string("Name of the status to move the issue to"),
                    "comment": string("Comment to add with the transition")
                }),
                &["issue_key", "transition_to"],
            ),
        ),
        tool(
            "get_my_issues",
            "Fetch all open issues assigned to the current user.",
            schema(
                json!({
                    "status": string("Only issues in this status (e.g. 'In Progress')"),
                    "max_results": { "type": "integer", "description": "Maximum number of results to return (default 50)" }
                }),
                &[],
            ),
        ),
    ]
}

fn field<'a>(item: &'a Value, key: &str) -> &'a str {
    item.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// Plain text as an Atlassian Document Format document of one paragraph.
fn document(text: &str) -> Value {
    json!({
        "type": "doc",
        "version": 1,
        "content": [{ "type": "paragraph", "content": [{ "type": "text", "text": text }] }]
    })
}

/// Text as a JQL string literal.
fn jql_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The issue fields the arguments set (`fields` of a create or an edit).
fn issue_fields(arguments: &JsonObject) -> serde_json::Map<String, Value> {
    let mut fields = serde_json::Map::new();
    if let Some(summary) = text(arguments, "summary") {
        fields.insert("summary".into(), json!(summary));
    }
    if let Some(description) = text(arguments, "description").filter(|d| !d.is_empty()) {
        fields.insert("description".into(), document(description));
    }
    if let Some(assignee) = text(arguments, "assignee_account_id") {
        fields.insert("assignee".into(), json!({ "accountId": assignee }));
    }
    if let Some(priority) = text(arguments, "priority") {
        fields.insert("priority".into(), json!({ "name": priority }));
    }
    if let Some(points) = arguments.get("story_points").filter(|p| p.is_number()) {
        fields.insert("customfield_10016".into(), points.clone());
    }
    if let Some(labels) = arguments.get("labels").filter(|l| l.is_array()) {
        fields.insert("labels".into(), labels.clone());
    }
    fields
}

/// The site the arguments name among `sites`: by cloud id, by name (case aside), or the only
/// one; the error says what to name.
fn choose(sites: &[Value], arguments: &JsonObject) -> Result<String, String> {
    let names = || {
        sites
            .iter()
            .map(|site| field(site, "name"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(id) = text(arguments, "cloud_id").filter(|id| !id.is_empty()) {
        return sites
            .iter()
            .find(|site| field(site, "id") == id)
            .map(|site| field(site, "id").to_owned())
            .ok_or_else(|| format!("Specified cloud ID '{id}' not found in accessible sites"));
    }
    if let Some(name) = text(arguments, "site_name").filter(|name| !name.is_empty()) {
        return sites
            .iter()
            .find(|site| field(site, "name").eq_ignore_ascii_case(name))
            .map(|site| field(site, "id").to_owned())
            .ok_or_else(|| {
                format!(
                    "Specified site name '{name}' not found in accessible sites. Available: {}",
                    names()
                )
            });
    }
    match sites {
        [] => Err("No accessible Atlassian sites found: the connected account reaches no Jira site".into()),
        [only] => Ok(field(only, "id").to_owned()),
        _ => Err(format!(
            "Multiple Jira sites available. You must specify either 'cloud_id' or 'site_name' for this operation. Available: {}",
            names()
        )),
    }
}

impl Jira {
    /// The API at the site root (`https://api.atlassian.com`, or the configured override).
    fn api<'a>(&'a self, ctx: &'a RequestContext) -> Api<'a> {
        self.upstream.manifest_api(&self.manifest, ctx)
    }

    /// The sites the user's token reaches: cached while the token is the same, read again
    /// when `again` (a cloud id the cache does not know).
    async fn sites(&self, ctx: &RequestContext, again: bool) -> Result<Vec<Value>, String> {
        let credentials = ctx.credentials.get().await.map_err(|err| err.to_string())?;
        let token: [u8; 32] = Sha256::digest(credentials.access_token.unwrap_or_default()).into();
        let mut known = self.sites.lock().await;
        if let Some(known) = known
            .as_ref()
            .filter(|known| known.token == token && !again)
        {
            return Ok(known.sites.clone());
        }
        let found = self
            .api(ctx)
            .json(Method::GET, "/oauth/token/accessible-resources", &[], None)
            .await?;
        let sites: Vec<Value> = found
            .as_array()
            .into_iter()
            .flatten()
            .take(MAX_SITES)
            .cloned()
            .collect();
        *known = Some(KnownSites {
            token,
            sites: sites.clone(),
        });
        Ok(sites)
    }

    /// The path prefix of the site the arguments name (`/ex/jira/{cloud id}/rest/api/3`).
    async fn site(&self, arguments: &JsonObject, ctx: &RequestContext) -> Result<String, String> {
        let sites = self.sites(ctx, false).await?;
        let chosen = match choose(&sites, arguments) {
            Err(_) if text(arguments, "cloud_id").is_some() => {
                choose(&self.sites(ctx, true).await?, arguments)?
            }
            other => other?,
        };
        Ok(format!("/ex/jira/{}/rest/api/3", id_segment(&chosen)?))
    }

    async fn create_project(&self, api: &Api<'_>, arguments: &JsonObject) -> Result<Value, String> {
        let lead = match text(arguments, "lead_account_id") {
            Some(lead) => lead.to_owned(),
            None => {
                let me = api.json(Method::GET, "/myself", &[], None).await?;
                field(&me, "accountId").to_owned()
            }
        };
        let mut project = json!({
            "key": required_text(arguments, "key")?,
            "name": required_text(arguments, "name")?,
            "projectTypeKey": required_text(arguments, "project_type_key")?,
            "leadAccountId": lead,
        });
        if let Some(description) = text(arguments, "description") {
            project["description"] = json!(description);
        }
        if let Some(template) = text(arguments, "template_key") {
            project["projectTemplateKey"] = json!(template);
        }
        api.json(Method::POST, "/project", &[], Some(&project))
            .await
    }

    async fn create_issue(&self, api: &Api<'_>, arguments: &JsonObject) -> Result<Value, String> {
        let mut fields = issue_fields(arguments);
        fields.insert(
            "project".into(),
            json!({ "key": required_text(arguments, "project_key")? }),
        );
        fields.insert(
            "issuetype".into(),
            json!({ "name": required_text(arguments, "issue_type")? }),
        );
        if let Some(parent) = text(arguments, "parent_key") {
            fields.insert("parent".into(), json!({ "key": parent }));
        }
        api.json(
            Method::POST,
            "/issue",
            &[],
            Some(&json!({ "fields": fields })),
        )
        .await
    }

    async fn update_issue(&self, api: &Api<'_>, arguments: &JsonObject) -> Result<Value, String> {
        let key = required_text(arguments, "issue_key")?;
        let fields = issue_fields(arguments);
        if fields.is_empty() {
            return Err("Nothing to update: give at least one field".to_owned());
        }
        let path = format!("/issue/{}", id_segment(key)?);
        api.json(Method::PUT, &path, &[], Some(&json!({ "fields": fields })))
            .await?;
        Ok(json!({ "success": true, "message": format!("Issue {key} successfully updated") }))
    }

    async fn transition_my_issue(
        &self,
        api: &Api<'_>,
        arguments: &JsonObject,
    ) -> Result<Value, String> {
        let key = required_text(arguments, "issue_key")?;
        let target = required_text(arguments, "transition_to")?;
        let path = format!("/issue/{}/transitions", id_segment(key)?);
        let offered = api.json(Method::GET, &path, &[], None).await?;
        let transitions: Vec<Value> = offered
            .get("transitions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let status = |transition: &Value| {
            transition
                .pointer("/to/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let Some(chosen) = transitions.iter().find(|transition| {
            status(transition).eq_ignore_ascii_case(target)
                || field(transition, "name").eq_ignore_ascii_case(target)
        }) else {
            let available: Vec<String> = transitions.iter().map(status).collect();
            return Err(format!(
                "Could not find transition to '{target}'. Available: {}",
                available.join(", ")
            ));
        };
        let mut body = json!({ "transition": { "id": field(chosen, "id") } });
        if let Some(comment) = text(arguments, "comment").filter(|c| !c.is_empty()) {
            body["update"] = json!({ "comment": [{ "add": { "body": document(comment) } }] });
        }
        api.json(Method::POST, &path, &[], Some(&body)).await?;
        Ok(json!({
            "success": true,
            "message": format!("Issue {key} successfully transitioned to {}", status(chosen)),
        }))
    }

    async fn get_my_issues(&self, api: &Api<'_>, arguments: &JsonObject) -> Result<Value, String> {
        let status = text(arguments, "status")
            .map(|status| format!(" AND status = {}", jql_string(status)))
            .unwrap_or_default();
        let jql = format!("assignee = currentUser(){status} ORDER BY updated DESC");
        let max = arguments
            .get("max_results")
            .and_then(Value::as_u64)
            .unwrap_or(50);
        let query = [
            ("jql", jql),
            ("maxResults", max.to_string()),
            ("fields", "*navigable".to_owned()),
        ];
        let found = api.json(Method::GET, SEARCH, &query, None).await?;
        Ok(found.get("issues").cloned().unwrap_or(json!([])))
    }

    async fn call(
        &self,
        name: &str,
        arguments: JsonObject,
        ctx: &RequestContext,
    ) -> Result<CallToolResult, CallError> {
        let prefix = match self.site(&arguments, ctx).await {
            Ok(prefix) => prefix,
            Err(message) => return Ok(answer(Err(message))),
        };
        if self.declared.declares(name) {
            return self
                .declared
                .call_tool_under(name, arguments, ctx, &prefix)
                .await;
        }
        let api = self.api(ctx).under(&prefix);
        let outcome = match name {
            "create_project" => self.create_project(&api, &arguments).await,
            "create_issue" => self.create_issue(&api, &arguments).await,
            "update_issue" => self.update_issue(&api, &arguments).await,
            "transition_my_issue" => self.transition_my_issue(&api, &arguments).await,
            "get_my_issues" => self.get_my_issues(&api, &arguments).await,
            _ => return Err(McpError::invalid_params(format!("Unknown tool: {name}")).into()),
        };
        Ok(answer(outcome))
    }
}

impl McpServer for Jira {
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
            let sites = self.sites(ctx, false).await.map_err(McpError::internal)?;
            let only = sites.len() == 1;
            Ok(sites
                .iter()
                .map(|site| {
                    let name = field(site, "name");
                    let current = if only { " (current)" } else { "" };
                    Resource::new(
                        format!("{SITE_URI}{}", field(site, "id")),
                        format!("{name}{current}"),
                    )
                    .with_description(format!("Jira site: {name} - {}", field(site, "url")))
                    .with_mime_type("application/json")
                })
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
            let Some(id) = uri.strip_prefix(SITE_URI) else {
                return Err(CallError::ResourceNotFound(uri.into()));
            };
            let sites = self.sites(ctx, false).await.map_err(McpError::internal)?;
            json_resource(uri, sites.into_iter().find(|site| field(site, "id") == id))
        }
        .boxed()
    }

    fn call_tool<'a>(
        &'a self,
        name: &'a str,
        arguments: JsonObject,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<CallToolResult, CallError>> {
        self.call(name, arguments, ctx).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arguments(value: Value) -> JsonObject {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn a_site_is_chosen_by_id_by_name_or_as_the_only_one() {
        let sites = vec![
            json!({ "id": "c1", "name": "acme" }),
            json!({ "id": "c2", "name": "Beta" }),
        ];
        assert_eq!(
            choose(&sites, &arguments(json!({ "cloud_id": "c2" }))).unwrap(),
            "c2"
        );
        assert_eq!(
            choose(&sites, &arguments(json!({ "site_name": "beta" }))).unwrap(),
            "c2"
        );
        let many = choose(&sites, &arguments(json!({}))).unwrap_err();
        assert!(many.contains("Available: acme, Beta"), "{many}");
        assert!(choose(&sites, &arguments(json!({ "cloud_id": "c9" }))).is_err());
        assert_eq!(choose(&sites[..1], &arguments(json!({}))).unwrap(), "c1");
        assert!(choose(&[], &arguments(json!({}))).is_err());
    }

    #[test]
    fn jql_strings_are_quoted() {
        assert_eq!(jql_string(r#"In "QA""#), r#""In \"QA\"""#);
    }
}
