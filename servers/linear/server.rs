//! linear: Linear's GraphQL API with guMCP's three tools, all declared in `server.toml` and run
//! by the `http` engine, and guMCP's resources, which need code: the list follows Linear's
//! cursor pages and a read picks the query by the URI.
//!
//! Each team is `linear://team/{id}`, read as the team with its workflow states and labels; an
//! issue is `linear://issue/{id}` (an id or an identifier such as `ENG-12`), read as the issue
//! with its state, team, assignee, labels, project and comments. Ids travel as GraphQL
//! variables, never inside the query text. The runtime's `Api` does the credentials, the
//! refresh-and-retry on 401 and the wording of upstream failures.

use std::sync::Arc;

use futures::FutureExt;
use reqwest::Method;
use rmcp::model::{CallToolResult, JsonObject, ReadResourceResult, Resource, Tool};
use serde_json::{json, Value};

use crate::protocol::error::McpError;
use crate::servers::http::{Api, HttpServer, Upstream};
use crate::servers::kit::text_resource;
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, Features, McpServer, RequestContext, ServerFuture, ServerInit};

const TEAM_URI: &str = "linear://team/";
const ISSUE_URI: &str = "linear://issue/";
/// Pages of teams read for `resources/list` (500 teams); the list is fetched on every
/// request, so it is bounded.
const MAX_TEAM_PAGES: usize = 5;

const TEAMS: &str = "query($after: String) {
  teams(first: 100, after: $after) {
    nodes { id name key }
    pageInfo { hasNextPage endCursor }
  }
}";

const TEAM: &str = "query($id: String!) {
  team(id: $id) {
    id name key description
    states { nodes { id name color type } }
    labels { nodes { id name color } }
  }
}";

const ISSUE: &str = "query($id: String!) {
  issue(id: $id) {
    id title identifier description
    state { id name color type }
    team { id name key }
    assignee { id name email }
    labels { nodes { id name color } }
    priority
    project { name }
    createdAt updatedAt
    comments { nodes { id body user { name } createdAt } }
  }
}";

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    Arc::new(Linear {
        declared: HttpServer::new(init.manifest.clone(), init.upstream.clone()),
        manifest: init.manifest,
        upstream: init.upstream,
    })
}

struct Linear {
    /// The declared tools, run by the `http` engine.
    declared: HttpServer,
    manifest: Arc<Manifest>,
    upstream: Upstream,
}

/// What a resource URI names: the GraphQL query that reads it, the field it answers under,
/// and the id (one non-empty segment).
fn named(uri: &str) -> Option<(&'static str, &'static str, &str)> {
    let (query, field, id) = if let Some(id) = uri.strip_prefix(TEAM_URI) {
        (TEAM, "team", id)
    } else {
        (ISSUE, "issue", uri.strip_prefix(ISSUE_URI)?)
    };
    (!id.trim().is_empty() && !id.contains('/')).then_some((query, field, id))
}

/// A team of the list as guMCP's resource; `None` without an id.
fn team_resource(team: &Value) -> Option<Resource> {
    let id = team.get("id")?.as_str()?;
    let field = |key: &str| team.get(key).and_then(Value::as_str).unwrap_or_default();
    Some(
        Resource::new(
            format!("{TEAM_URI}{id}"),
            format!("Team: {} ({})", field("name"), field("key")),
        )
        .with_mime_type("application/json"),
    )
}

/// The messages of a GraphQL answer's `errors`, if it has any.
fn graphql_errors(answer: &Value) -> Option<String> {
    let errors = answer.get("errors")?.as_array()?;
    let messages: Vec<&str> = errors
        .iter()
        .filter_map(|error| error.get("message").and_then(Value::as_str))
        .collect();
    (!errors.is_empty()).then(|| format!("Linear refused the query: {}", messages.join("; ")))
}

/// Whether every error is the caller's (Linear flags those `userError`, e.g. "Entity not
/// found"), so a missing object means the URI names nothing rather than a failure upstream.
fn only_user_errors(answer: &Value) -> bool {
    answer
        .get("errors")
        .and_then(Value::as_array)
        .is_none_or(|errors| {
            errors
                .iter()
                .all(|error| error.pointer("/extensions/userError") == Some(&Value::Bool(true)))
        })
}

impl Linear {
    fn api<'a>(&'a self, ctx: &'a RequestContext) -> Api<'a> {
        self.upstream.manifest_api(&self.manifest, ctx)
    }

    async fn graphql(
        &self,
        ctx: &RequestContext,
        query: &str,
        variables: Value,
    ) -> Result<Value, String> {
        let body = json!({ "query": query, "variables": variables });
        self.api(ctx)
            .json(Method::POST, "/graphql", &[], Some(&body))
            .await
    }

    /// The account's teams, up to `MAX_TEAM_PAGES` pages.
    async fn teams(&self, ctx: &RequestContext) -> Result<Vec<Resource>, String> {
        let mut resources = Vec::new();
        let mut after = Value::Null;
        for _ in 0..MAX_TEAM_PAGES {
            let answer = self.graphql(ctx, TEAMS, json!({ "after": after })).await?;
            if let Some(failure) = graphql_errors(&answer) {
                return Err(failure);
            }
            let nodes = answer
                .pointer("/data/teams/nodes")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            resources.extend(nodes.iter().filter_map(team_resource));
            let more =
                answer.pointer("/data/teams/pageInfo/hasNextPage") == Some(&Value::Bool(true));
            match answer.pointer("/data/teams/pageInfo/endCursor") {
                Some(Value::String(cursor)) if more => after = cursor.as_str().into(),
                _ => break,
            }
        }
        Ok(resources)
    }
}

impl McpServer for Linear {
    fn features(&self) -> Features {
        Features {
            resources: true,
            ..Features::default()
        }
    }

    fn tools(&self) -> Vec<Tool> {
        self.declared.tools()
    }

    fn call_tool<'a>(
        &'a self,
        name: &'a str,
        arguments: JsonObject,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<CallToolResult, CallError>> {
        self.declared.call_tool(name, arguments, ctx)
    }

    fn list_resources<'a>(
        &'a self,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<Vec<Resource>, McpError>> {
        async move { self.teams(ctx).await.map_err(McpError::internal) }.boxed()
    }

    fn read_resource<'a>(
        &'a self,
        uri: &'a str,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<ReadResourceResult, CallError>> {
        async move {
            let not_found = || CallError::ResourceNotFound(uri.into());
            let (query, field, id) = named(uri).ok_or_else(not_found)?;
            let answer = self
                .graphql(ctx, query, json!({ "id": id }))
                .await
                .map_err(McpError::internal)?;
            let found = answer
                .pointer(&format!("/data/{field}"))
                .filter(|found| found.is_object());
            let Some(found) = found else {
                return Err(match graphql_errors(&answer) {
                    Some(failure) if !only_user_errors(&answer) => {
                        McpError::internal(failure).into()
                    }
                    _ => not_found(),
                });
            };
            let text = serde_json::to_string_pretty(found).unwrap_or_default();
            Ok(text_resource(uri, text, "application/json"))
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_name_a_team_or_an_issue_by_one_segment() {
        assert_eq!(
            named("linear://team/t1").map(|n| (n.1, n.2)),
            Some(("team", "t1"))
        );
        assert_eq!(
            named("linear://issue/ENG-12").map(|n| (n.1, n.2)),
            Some(("issue", "ENG-12"))
        );
        for bad in [
            "linear://team/",
            "linear://issue/a/b",
            "linear://project/p1",
            "x",
        ] {
            assert!(named(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn only_errors_flagged_as_the_callers_mean_not_found() {
        let missing = json!({ "errors": [{ "message": "Entity not found: Issue", "extensions": { "userError": true } }], "data": null });
        assert!(only_user_errors(&missing));
        let limited = json!({ "errors": [{ "message": "Rate limit exceeded", "extensions": { "code": "RATELIMITED" } }] });
        assert!(!only_user_errors(&limited));
        assert_eq!(
            graphql_errors(&limited).as_deref(),
            Some("Linear refused the query: Rate limit exceeded")
        );
        assert!(only_user_errors(&json!({ "data": { "issue": null } })));
    }
}
