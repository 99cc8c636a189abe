//! `[shape]`: what a server exposes of its tools, whatever its kind — which tools (`allow` /
//! `deny`, names or globs), under which names (a `prefix`, or a `rename`), with which
//! descriptions. Applied to the tool list and enforced on calls: a hidden tool is unknown,
//! under its own name as under any other. (`[shape]` rather than `tools.allow`: `[[tools]]`
//! already declares an `http` server's tools.)

use std::collections::BTreeMap;
use std::sync::Arc;

use glob::Pattern;
use rmcp::model::{
    CallToolResult, CompleteRequestParams, CompleteResult, GetPromptResult, JsonObject, Prompt,
    ReadResourceResult, Resource, ResourceTemplate, Tool,
};
use serde::Deserialize;

use super::{
    CallError, CredentialSource, Features, McpServer, RequestContext, ServerFuture, TaskSupport,
};
use crate::protocol::error::McpError;
use crate::protocol::meta::LogLevel;

/// The `[shape]` section of a manifest.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShapeSpec {
    /// Only tools matching one of these are exposed (all when empty).
    #[serde(default)]
    pub allow: Vec<String>,
    /// Tools matching one of these are hidden, even when allowed.
    #[serde(default)]
    pub deny: Vec<String>,
    /// Put before every exposed name that is not renamed.
    #[serde(default)]
    pub prefix: String,
    /// The exposed name of a tool, by its own name (no prefix added).
    #[serde(default)]
    pub rename: BTreeMap<String, String>,
    /// The description of a tool, by its own name.
    #[serde(default)]
    pub descriptions: BTreeMap<String, String>,
}

impl ShapeSpec {
    /// Whether it changes anything (a server without one is not wrapped at all).
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty()
            && self.deny.is_empty()
            && self.prefix.is_empty()
            && self.rename.is_empty()
            && self.descriptions.is_empty()
    }

    /// Checks the patterns and that no two tools could be exposed under one name.
    pub fn check(&self) -> Result<(), String> {
        for pattern in self.allow.iter().chain(&self.deny) {
            Pattern::new(pattern)
                .map_err(|err| format!("shape: pattern {pattern:?} is invalid: {err}"))?;
        }
        let mut exposed = std::collections::HashSet::new();
        for name in self.rename.values() {
            if name.trim().is_empty() {
                return Err("shape.rename: a tool cannot be renamed to an empty name".to_owned());
            }
            if !exposed.insert(name) {
                return Err(format!("shape.rename: two tools are renamed to {name:?}"));
            }
        }
        Ok(())
    }
}

/// A checked `[shape]`, ready to apply.
#[derive(Debug)]
pub struct Shape {
    allow: Vec<Pattern>,
    deny: Vec<Pattern>,
    prefix: String,
    rename: BTreeMap<String, String>,
    /// Own names by exposed name, for the renamed tools.
    renamed_from: BTreeMap<String, String>,
    descriptions: BTreeMap<String, String>,
}

impl Shape {
    /// `None` when there is nothing to shape, or the spec does not hold (the manifest check
    /// has refused such a manifest already).
    pub fn new(spec: &ShapeSpec) -> Option<Shape> {
        if spec.is_empty() {
            return None;
        }
        let patterns = |list: &[String]| -> Option<Vec<Pattern>> {
            list.iter().map(|text| Pattern::new(text).ok()).collect()
        };
        Some(Shape {
            allow: patterns(&spec.allow)?,
            deny: patterns(&spec.deny)?,
            prefix: spec.prefix.clone(),
            renamed_from: spec
                .rename
                .iter()
                .map(|(own, exposed)| (exposed.clone(), own.clone()))
                .collect(),
            rename: spec.rename.clone(),
            descriptions: spec.descriptions.clone(),
        })
    }

    fn visible(&self, own: &str) -> bool {
        (self.allow.is_empty() || self.allow.iter().any(|p| p.matches(own)))
            && !self.deny.iter().any(|p| p.matches(own))
    }

    /// The name a tool is exposed under.
    pub fn exposed_name(&self, own: &str) -> String {
        match self.rename.get(own) {
            Some(name) => name.clone(),
            None => format!("{}{own}", self.prefix),
        }
    }

    /// The tool's own name for an exposed one, if a visible tool is exposed under it.
    pub fn own_name(&self, exposed: &str) -> Option<String> {
        let own = match self.renamed_from.get(exposed) {
            Some(own) => own.clone(),
            None => {
                let own = exposed.strip_prefix(self.prefix.as_str())?;
                if self.rename.contains_key(own) {
                    return None;
                }
                own.to_owned()
            }
        };
        self.visible(&own).then_some(own)
    }

    /// The exposed tools, in the server's order.
    pub fn tools(&self, tools: Vec<Tool>) -> Vec<Tool> {
        tools
            .into_iter()
            .filter(|tool| self.visible(&tool.name))
            .map(|mut tool| {
                if let Some(description) = self.descriptions.get(tool.name.as_ref()) {
                    tool.description = Some(description.clone().into());
                }
                tool.name = self.exposed_name(&tool.name).into();
                tool
            })
            .collect()
    }
}

/// A server instance as its `[shape]` exposes it.
pub struct Shaped {
    pub inner: Arc<dyn McpServer>,
    pub shape: Arc<Shape>,
}

impl McpServer for Shaped {
    fn features(&self) -> Features {
        self.inner.features()
    }

    fn prepare<'a>(
        &'a self,
        credentials: &'a Arc<dyn CredentialSource>,
    ) -> ServerFuture<'a, Result<(), CallError>> {
        self.inner.prepare(credentials)
    }

    fn shutdown(&self) {
        self.inner.shutdown();
    }

    fn subscribe<'a>(
        &'a self,
        holder: u64,
        uri: &'a str,
        subscribed: bool,
    ) -> ServerFuture<'a, Result<(), McpError>> {
        self.inner.subscribe(holder, uri, subscribed)
    }

    fn set_log_level(
        &self,
        holder: u64,
        level: LogLevel,
    ) -> ServerFuture<'_, Result<(), McpError>> {
        self.inner.set_log_level(holder, level)
    }

    fn release(&self, holder: u64) {
        self.inner.release(holder);
    }

    fn holds_subscriptions(&self) -> bool {
        self.inner.holds_subscriptions()
    }

    fn tools(&self) -> Vec<Tool> {
        self.shape.tools(self.inner.tools())
    }

    fn task_support(&self, tool: &str) -> TaskSupport {
        match self.shape.own_name(tool) {
            Some(own) => self.inner.task_support(&own),
            None => TaskSupport::Forbidden,
        }
    }

    fn call_tool<'a>(
        &'a self,
        name: &'a str,
        arguments: JsonObject,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<CallToolResult, CallError>> {
        Box::pin(async move {
            let Some(own) = self.shape.own_name(name) else {
                return Err(McpError::invalid_params(format!("Unknown tool: {name}")).into());
            };
            self.inner.call_tool(&own, arguments, ctx).await
        })
    }

    fn resources(&self) -> Vec<Resource> {
        self.inner.resources()
    }

    fn list_resources<'a>(
        &'a self,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<Vec<Resource>, McpError>> {
        self.inner.list_resources(ctx)
    }

    fn resource_templates(&self) -> Vec<ResourceTemplate> {
        self.inner.resource_templates()
    }

    fn read_resource<'a>(
        &'a self,
        uri: &'a str,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<ReadResourceResult, CallError>> {
        self.inner.read_resource(uri, ctx)
    }

    fn prompts(&self) -> Vec<Prompt> {
        self.inner.prompts()
    }

    fn get_prompt<'a>(
        &'a self,
        name: &'a str,
        arguments: JsonObject,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<GetPromptResult, CallError>> {
        self.inner.get_prompt(name, arguments, ctx)
    }

    fn complete<'a>(
        &'a self,
        params: CompleteRequestParams,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<CompleteResult, McpError>> {
        self.inner.complete(params, ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(name: &str) -> Tool {
        Tool::new(name.to_owned(), "own description", Arc::default())
    }

    fn spec(text: &str) -> ShapeSpec {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn allowed_and_not_denied_tools_are_exposed_renamed_prefixed_and_described() {
        let shape = Shape::new(&spec(
            "allow = [\"repo_*\", \"search\"]\ndeny = [\"*_delete\"]\nprefix = \"gh_\"\n\
             [rename]\nsearch = \"find\"\n[descriptions]\nrepo_get = \"Read a repository\"\n",
        ))
        .unwrap();
        let tools = shape.tools(vec![
            tool("repo_get"),
            tool("repo_delete"),
            tool("search"),
            tool("issue_list"),
        ]);
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
        assert_eq!(names, ["gh_repo_get", "find"]);
        assert_eq!(tools[0].description.as_deref(), Some("Read a repository"));
        assert_eq!(tools[1].description.as_deref(), Some("own description"));

        assert_eq!(shape.own_name("gh_repo_get").as_deref(), Some("repo_get"));
        assert_eq!(shape.own_name("find").as_deref(), Some("search"));
        for hidden in [
            "repo_get",
            "gh_repo_delete",
            "gh_issue_list",
            "gh_search",
            "search",
        ] {
            assert_eq!(shape.own_name(hidden), None, "{hidden}");
        }
    }

    #[test]
    fn bad_patterns_and_clashing_renames_are_refused() {
        assert!(spec("allow = [\"[\"]").check().is_err());
        assert!(spec("[rename]\na = \"x\"\nb = \"x\"\n").check().is_err());
        assert!(spec("").is_empty());
        assert!(Shape::new(&spec("")).is_none());
    }
}
