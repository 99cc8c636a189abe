//! github: the GitHub REST API with guMCP's twenty-four tools, names and arguments.
//!
//! Twenty-one tools are single GitHub requests declared in `server.toml` and run by the `http`
//! engine (list tools follow GitHub's `Link` header up to `max_limit` items). What they cannot
//! say there is done here, before or after they are handed over:
//! - a `repo_name` given as the full name `owner/repo` is split into `owner` and `repo_name`
//!   (guMCP's `star_repository` and `fork_repository` take only the full name;
//!   `list_repository_languages` takes either);
//! - `create_issue`'s comma-separated `labels` and `assignees` become lists, `list_issues`'
//!   labels are trimmed and a milestone *title* is looked up for its number (GitHub filters by
//!   number, `*` or `none`), and a bare `head` branch of `list_pull_requests` becomes
//!   `owner:branch` (GitHub ignores the bare form);
//! - `star_repository` answers `{"success": true}` (GitHub answers 204), `create_repository`
//!   sets its `topics` with a second request (the create call takes none), and
//!   `list_pull_requests` filters by `draft` and `since`, which GitHub's list does not.
//!
//! Three tools are code: `get_contents` and `add_file_to_repository` take a file path whose
//! slashes must stay path separators (the engine encodes each argument as one segment), and
//! the file's content travels base64-encoded both ways; `get_contents` can also walk a
//! directory tree. `create_branch` reads the start point's sha, then creates the ref. Their
//! calls go through the runtime's `Api` (credentials, refresh-and-retry on 401, failures worded
//! as for declared tools).
//!
//! Resources are guMCP's: the account itself and each organization it belongs to are
//! `github://organization/{login}`, read as the organization's (or user's) profile; a
//! repository is `github://organization/{owner}/repository/{repo}`, read as GitHub's repository
//! object with its README, languages and first ten contributors.

use std::collections::VecDeque;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use futures::{FutureExt, StreamExt, TryStreamExt};
use percent_encoding::utf8_percent_encode;
use reqwest::Method;
use rmcp::model::{CallToolResult, JsonObject, ReadResourceResult, Resource, Tool};
use serde_json::{json, Value};

use crate::protocol::error::McpError;
use crate::servers::http::{Api, HttpServer, Upstream};
use crate::servers::kit::{
    id_segment, segment, success, text, text_resource, tool, tool_error, SEGMENT,
};
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, Features, McpServer, RequestContext, ServerFuture, ServerInit};

/// guMCP's order of the tools; the list keeps it, declared and coded tools mixed.
const ORDER: [&str; 24] = [
    "create_repository",
    "search_repositories",
    "list_public_user_repositories",
    "list_organization_repositories",
    "get_contents",
    "list_repository_languages",
    "add_file_to_repository",
    "list_commits",
    "get_commit",
    "star_repository",
    "list_stargazers",
    "get_stargazers_count",
    "list_starred_repos_by_user",
    "list_issues",
    "get_issue",
    "create_issue",
    "update_issue",
    "add_comment_to_issue",
    "list_branches",
    "create_branch",
    "list_pull_requests",
    "get_pull_request",
    "create_pull_request",
    "fork_repository",
];

/// Directory listings one recursive `get_contents` reads at most (the first included).
const MAX_LISTINGS: usize = 100;
/// Listings in flight at once for one recursive `get_contents`.
const LISTINGS_AT_ONCE: usize = 4;
/// Pages of milestones (100 each) searched for a milestone title.
const MAX_MILESTONE_PAGES: usize = 10;
const PAGE_SIZE: usize = 100;
/// What every resource's URI starts with: an account or organization login follows.
const ORGANIZATION_URI: &str = "github://organization/";
/// Pages of `/user/orgs` read for `resources/list` (300 organizations); the list is fetched on
/// every request, so it is bounded.
const MAX_ORG_PAGES: usize = 3;
/// Contributors a repository resource shows, as many as guMCP's.
const RESOURCE_CONTRIBUTORS: &str = "10";
/// The fields of an organization's and of a user's profile a resource shows, as guMCP's.
const ORGANIZATION_FIELDS: [&str; 7] = [
    "login",
    "name",
    "avatar_url",
    "html_url",
    "description",
    "email",
    "public_repos",
];
const USER_FIELDS: [&str; 10] = [
    "login",
    "name",
    "avatar_url",
    "html_url",
    "bio",
    "location",
    "email",
    "public_repos",
    "followers",
    "following",
];

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
    Arc::new(GitHub {
        declared,
        manifest: init.manifest,
        upstream: init.upstream,
        tools,
    })
}

struct GitHub {
    /// The declared tools, run by the `http` engine.
    declared: HttpServer,
    manifest: Arc<Manifest>,
    upstream: Upstream,
    tools: Vec<Tool>,
}

/// The tools answered by code, with guMCP's arguments.
fn coded_tools() -> Vec<Tool> {
    vec![
        tool(
            "get_contents",
            "Get the contents of a file or in a repository",
            json!({
                "type": "object",
                "properties": {
                    "owner": { "type": "string", "description": "Owner username of the repository" },
                    "repo_name": { "type": "string", "description": "Name of the repository" },
                    "path": { "type": "string", "description": "Path to the file or directory in the repository" },
                    "branch": { "type": "string", "description": "Branch name to get contents from (default: default branch)" },
                    "recursive": { "type": "boolean", "description": "Get directory contents recursively" }
                },
                "required": ["owner", "repo_name", "path"]
            }),
        ),
        tool(
            "add_file_to_repository",
            "Add a file to a repository",
            json!({
                "type": "object",
                "properties": {
                    "owner": { "type": "string", "description": "Owner username of the repository" },
                    "repo_name": { "type": "string", "description": "Name of the repository" },
                    "path": { "type": "string", "description": "Path where to create the file, including filename" },
                    "content": { "type": "string", "description": "Content of the file to create" },
                    "branch": { "type": "string", "description": "Branch name to create file on" },
                    "commit_message": { "type": "string", "description": "Commit message for the file creation" },
                    "sha": { "type": "string", "description": "The blob SHA of the file being replaced" },
                    "committer_name": { "type": "string", "description": "Name of the committer" },
                    "committer_email": { "type": "string", "description": "Email of the committer" }
                },
                "required": ["owner", "repo_name", "path", "content", "branch", "commit_message"]
            }),
        ),
        tool(
            "create_branch",
            "Create a new branch from existing branch for a repository",
            json!({
                "type": "object",
                "properties": {
                    "repo_name": { "type": "string", "description": "Name of the repository" },
                    "owner": { "type": "string", "description": "Owner username of the repository" },
                    "branch_name": { "type": "string", "description": "Name for the new branch" },
                    "start_point": { "type": "string", "description": "Name of the reference branch to start from (usually 'main' or 'master')" }
                },
                "required": ["repo_name", "owner", "branch_name", "start_point"]
            }),
        ),
    ]
}

/// A non-empty string argument, trimmed.
fn given<'a>(arguments: &'a JsonObject, key: &str) -> Option<&'a str> {
    text(arguments, key)
        .map(str::trim)
        .filter(|value| !value.is_empty())
}

/// `repo_name` given as the full name `owner/repo` becomes `owner` + `repo_name` (the full
/// name wins over a separate `owner`, as guMCP's `list_repository_languages` has it).
fn split_full_name(arguments: &mut JsonObject) -> Result<(), String> {
    let Some(full) = text(arguments, "repo_name").map(str::trim) else {
        return Ok(());
    };
    let Some((owner, repo)) = full.split_once('/') else {
        return Ok(());
    };
    if owner.is_empty() || repo.is_empty() || repo.contains('/') {
        return Err(format!(
            "repo_name {full:?} is not a repository name: give the name, or the full name 'owner/repository'"
        ));
    }
    let (owner, repo) = (owner.to_owned(), repo.to_owned());
    arguments.insert("owner".into(), owner.into());
    arguments.insert("repo_name".into(), repo.into());
    Ok(())
}

/// The items of a comma-separated list, trimmed, empty ones left out.
fn comma_list(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A path inside a repository as URL path segments: each segment percent-encoded, the slashes
/// kept as separators, empty segments dropped; `.` and `..` are refused (URL parsers resolve
/// them, which would move the request to another path).
fn repo_path(path: &str) -> Result<String, String> {
    let mut segments = Vec::new();
    for segment in path.split('/').filter(|segment| !segment.is_empty()) {
        if segment == "." || segment == ".." {
            return Err(format!(
                "path {path:?} cannot contain '.' or '..' segments; give the path from the repository's root"
            ));
        }
        segments.push(utf8_percent_encode(segment, SEGMENT).to_string());
    }
    Ok(segments.join("/"))
}

/// `/repos/{owner}/{repo}` for the (already split) arguments.
fn repo_url(arguments: &JsonObject) -> Result<String, String> {
    let owner = given(arguments, "owner").ok_or_else(owner_missing)?;
    let repo = given(arguments, "repo_name").ok_or("repo_name is required")?;
    for name in [owner, repo] {
        if name == "." || name == ".." {
            return Err(format!("{name:?} is not a repository or owner name"));
        }
    }
    Ok(format!("/repos/{}/{}", segment(owner), segment(repo)))
}

fn owner_missing() -> String {
    "name the repository's owner: give owner, or repo_name as the full name 'owner/repository'"
        .to_owned()
}

/// A branch name as given, without a `refs/heads/` or `heads/` prefix.
fn bare_branch(name: &str) -> &str {
    let name = name.trim();
    name.strip_prefix("refs/heads/")
        .or_else(|| name.strip_prefix("heads/"))
        .unwrap_or(name)
}

/// Whether `text` is a full commit sha (40 hex digits).
fn is_full_sha(text: &str) -> bool {
    text.len() == 40 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// An ISO 8601 time (RFC 3339, a date, or a date and time without a zone, taken as UTC).
fn parse_time(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    use chrono::{NaiveDate, NaiveDateTime, TimeZone, Utc};
    let text = text.trim();
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(time.with_timezone(&Utc));
    }
    if let Ok(time) = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S") {
        return Some(Utc.from_utc_datetime(&time));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|time| Utc.from_utc_datetime(&time))
}

/// A file's base64 `content` as text, when it is UTF-8 (GitHub wraps the base64 in lines).
fn decoded(entry: &Value) -> Option<String> {
    if entry.get("encoding").and_then(Value::as_str) != Some("base64") {
        return None;
    }
    let wrapped = entry.get("content")?.as_str()?;
    let joined: String = wrapped.chars().filter(|c| !c.is_whitespace()).collect();
    String::from_utf8(STANDARD.decode(joined).ok()?).ok()
}

/// What a resource URI names.
#[derive(Debug, PartialEq)]
enum Named<'a> {
    Organization(&'a str),
    Repository(&'a str, &'a str),
}

/// `github://organization/{login}` or `github://organization/{owner}/repository/{repo}`, each
/// name one segment that can go into a path.
fn named(uri: &str) -> Option<Named<'_>> {
    let rest = uri.strip_prefix(ORGANIZATION_URI)?;
    let usable = |name: &str| id_segment(name).is_ok();
    match rest.split('/').collect::<Vec<_>>()[..] {
        [login] if usable(login) => Some(Named::Organization(login)),
        [owner, "repository", repo] if usable(owner) && usable(repo) => {
            Some(Named::Repository(owner, repo))
        }
        _ => None,
    }
}

/// An account or organization as guMCP's resource.
fn organization_resource(login: &str, description: &str) -> Resource {
    Resource::new(format!("{ORGANIZATION_URI}{login}"), login)
        .with_description(description)
        .with_mime_type("application/json")
}

/// `fields` of `profile` (missing ones `null`) after `"type": kind`.
fn profile(kind: &str, profile: &Value, fields: &[&str]) -> Value {
    let mut shown = serde_json::Map::new();
    shown.insert("type".into(), kind.into());
    for field in fields {
        let value = profile.get(*field).cloned().unwrap_or(Value::Null);
        shown.insert((*field).into(), value);
    }
    Value::Object(shown)
}

/// A contributor as guMCP shows one.
fn contributor(entry: &Value) -> Value {
    let field = |key: &str| entry.get(key).cloned().unwrap_or(Value::Null);
    json!({
        "login": field("login"),
        "contributions": field("contributions"),
        "avatar_url": field("avatar_url"),
        "html_url": field("html_url"),
    })
}

/// The structured answer of a successful declared call (`None` for a tool error).
fn answer_of(result: &CallToolResult) -> Option<&Value> {
    if result.is_error == Some(true) {
        return None;
    }
    result.structured_content.as_ref()
}

impl GitHub {
    fn api<'a>(&'a self, ctx: &'a RequestContext) -> Api<'a> {
        self.upstream.manifest_api(&self.manifest, ctx)
    }

    /// Whether the declared tool's path names the repository's owner.
    fn needs_owner(&self, name: &str) -> bool {
        self.manifest
            .tools
            .iter()
            .any(|tool| tool.name == name && tool.path.contains("{owner}"))
    }

    /// A declared tool's arguments as its GitHub request takes them (see the module docs).
    async fn prepare(
        &self,
        name: &str,
        mut arguments: JsonObject,
        ctx: &RequestContext,
    ) -> Result<JsonObject, String> {
        split_full_name(&mut arguments)?;
        if self.needs_owner(name) && given(&arguments, "owner").is_none() {
            return Err(owner_missing());
        }
        match name {
            "create_issue" => {
                for key in ["labels", "assignees"] {
                    if let Some(list) = text(&arguments, key) {
                        let items = comma_list(list);
                        arguments.insert(key.into(), json!(items));
                    }
                }
            }
            "list_issues" => {
                if let Some(labels) = text(&arguments, "labels") {
                    let labels = comma_list(labels).join(",");
                    arguments.insert("labels".into(), labels.into());
                }
                match given(&arguments, "milestone") {
                    Some(milestone) => {
                        let number = self.milestone(ctx, &arguments, milestone).await?;
                        arguments.insert("milestone".into(), number.into());
                    }
                    None => {
                        arguments.remove("milestone");
                    }
                }
            }
            "list_pull_requests" => {
                if let Some(head) = given(&arguments, "head").filter(|head| !head.contains(':')) {
                    let owner = given(&arguments, "owner").unwrap_or_default();
                    let qualified = format!("{owner}:{head}");
                    arguments.insert("head".into(), qualified.into());
                }
            }
            _ => {}
        }
        Ok(arguments)
    }

    /// `list_issues`' milestone filter as GitHub takes it: `*`, `none` and numbers as they
    /// are, a title looked up among the repository's milestones for its number.
    async fn milestone(
        &self,
        ctx: &RequestContext,
        arguments: &JsonObject,
        given: &str,
    ) -> Result<String, String> {
        if given == "*" || given.eq_ignore_ascii_case("none") {
            return Ok(given.to_ascii_lowercase());
        }
        if !given.is_empty() && given.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(given.to_owned());
        }
        let url = format!("{}/milestones", repo_url(arguments)?);
        for page in 1..=MAX_MILESTONE_PAGES {
            let query = [
                ("state", "all".to_owned()),
                ("per_page", PAGE_SIZE.to_string()),
                ("page", page.to_string()),
            ];
            let answer = self.api(ctx).json(Method::GET, &url, &query, None).await?;
            let milestones = answer.as_array().cloned().unwrap_or_default();
            let found = milestones
                .iter()
                .find(|milestone| milestone["title"].as_str() == Some(given))
                .and_then(|milestone| milestone["number"].as_u64());
            if let Some(number) = found {
                return Ok(number.to_string());
            }
            if milestones.len() < PAGE_SIZE {
                break;
            }
        }
        Err(format!(
            "no milestone titled {given:?} in {}/{}; give its number, \"*\" (any) or \"none\"",
            text(arguments, "owner").unwrap_or_default(),
            text(arguments, "repo_name").unwrap_or_default()
        ))
    }

    /// Runs a declared tool: its arguments prepared, its answer finished where the tool needs.
    async fn run_declared(
        &self,
        name: &str,
        arguments: JsonObject,
        ctx: &RequestContext,
    ) -> Result<CallToolResult, CallError> {
        let arguments = match self.prepare(name, arguments, ctx).await {
            Ok(arguments) => arguments,
            Err(message) => return Ok(tool_error(message)),
        };
        match name {
            "star_repository" => {
                let result = self.declared.call_tool(name, arguments, ctx).await?;
                Ok(match answer_of(&result) {
                    Some(_) => success(json!({ "success": true })),
                    None => result,
                })
            }
            "create_repository" => self.create_repository(arguments, ctx).await,
            "list_pull_requests" => self.list_pull_requests(arguments, ctx).await,
            _ => self.declared.call_tool(name, arguments, ctx).await,
        }
    }

    /// Creates the repository, then sets its topics (`PUT /repos/{owner}/{repo}/topics`),
    /// which the create request does not take.
    async fn create_repository(
        &self,
        arguments: JsonObject,
        ctx: &RequestContext,
    ) -> Result<CallToolResult, CallError> {
        let topics: Vec<String> = text(&arguments, "topics")
            .map(comma_list)
            .unwrap_or_default()
            .into_iter()
            .map(|topic| topic.to_lowercase())
            .collect();
        let result = self
            .declared
            .call_tool("create_repository", arguments, ctx)
            .await?;
        if topics.is_empty() {
            return Ok(result);
        }
        let Some(Value::Object(repository)) = answer_of(&result).cloned() else {
            return Ok(result);
        };
        let full_name = repository
            .get("full_name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let url = match (
            repository
                .get("owner")
                .and_then(|owner| owner.get("login"))
                .and_then(Value::as_str),
            repository.get("name").and_then(Value::as_str),
        ) {
            (Some(owner), Some(name)) => {
                format!("/repos/{}/{}/topics", segment(owner), segment(name))
            }
            _ => return Ok(result),
        };
        let body = json!({ "names": topics });
        match self
            .api(ctx)
            .json(Method::PUT, &url, &[], Some(&body))
            .await
        {
            Ok(answer) => {
                let mut repository = repository;
                let names = answer
                    .get("names")
                    .cloned()
                    .unwrap_or_else(|| body["names"].clone());
                repository.insert("topics".into(), names);
                Ok(success(Value::Object(repository)))
            }
            Err(message) => Ok(tool_error(format!(
                "created the repository {full_name}, but setting its topics failed: {message}"
            ))),
        }
    }

    /// The declared list, filtered by `draft` and `since` (GitHub's list takes neither), and
    /// cut to `max_limit` after filtering.
    async fn list_pull_requests(
        &self,
        mut arguments: JsonObject,
        ctx: &RequestContext,
    ) -> Result<CallToolResult, CallError> {
        let draft = arguments.get("draft").and_then(Value::as_bool);
        let since = match given(&arguments, "since") {
            None => None,
            Some(since) => match parse_time(since) {
                Some(time) => Some(time),
                None => {
                    return Ok(tool_error(format!(
                        "since {since:?} is not an ISO 8601 time (e.g. 2024-05-01T00:00:00Z)"
                    )))
                }
            },
        };
        if draft.is_none() && since.is_none() {
            return self
                .declared
                .call_tool("list_pull_requests", arguments, ctx)
                .await;
        }
        let limit = arguments
            .remove("max_limit")
            .and_then(|limit| limit.as_u64())
            .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX));
        let result = self
            .declared
            .call_tool("list_pull_requests", arguments, ctx)
            .await?;
        let Some(items) = answer_of(&result)
            .and_then(|answer| answer.get("items"))
            .and_then(Value::as_array)
        else {
            return Ok(result);
        };
        let kept: Vec<Value> = items
            .iter()
            .filter(|pull| draft.is_none_or(|draft| pull["draft"].as_bool() == Some(draft)))
            .filter(|pull| {
                since.is_none_or(|since| {
                    pull["updated_at"]
                        .as_str()
                        .and_then(parse_time)
                        .is_some_and(|updated| updated >= since)
                })
            })
            .take(limit)
            .cloned()
            .collect();
        Ok(success(Value::Array(kept)))
    }

    /// `GET /repos/{owner}/{repo}/contents/{path}`: a file (with its text decoded beside the
    /// base64 `content`), or a directory's entries; with `recursive`, the entries of every
    /// directory below too.
    async fn get_contents(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let base = format!("{}/contents", repo_url(arguments)?);
        let path = repo_path(text(arguments, "path").unwrap_or_default())?;
        let query: Vec<(&str, String)> = given(arguments, "branch")
            .map(|branch| vec![("ref", branch.to_owned())])
            .unwrap_or_default();
        let answer = self
            .api(ctx)
            .json(Method::GET, &format!("{base}/{path}"), &query, None)
            .await?;
        match answer {
            Value::Object(mut file) => {
                if let Some(text) = decoded(&Value::Object(file.clone())) {
                    file.insert("decoded_content".into(), text.into());
                }
                Ok(Value::Object(file))
            }
            Value::Array(entries) if arguments.get("recursive") == Some(&Value::Bool(true)) => {
                self.walk(ctx, &base, &query, entries).await
            }
            other => Ok(other),
        }
    }

    /// The entries below a directory, its subdirectories listed `LISTINGS_AT_ONCE` at a time,
    /// sorted by path. Past `MAX_LISTINGS` listings the walk stops and says so.
    async fn walk(
        &self,
        ctx: &RequestContext,
        base: &str,
        query: &[(&str, String)],
        first: Vec<Value>,
    ) -> Result<Value, String> {
        let directories = |entries: &[Value]| -> Vec<String> {
            entries
                .iter()
                .filter(|entry| entry["type"] == "dir")
                .filter_map(|entry| entry["path"].as_str().map(str::to_owned))
                .collect()
        };
        let mut pending: VecDeque<String> = directories(&first).into();
        let mut entries = first;
        let mut listings = 1;
        while !pending.is_empty() && listings < MAX_LISTINGS {
            let take = pending.len().min(MAX_LISTINGS - listings);
            let batch: Vec<String> = pending.drain(..take).collect();
            listings += batch.len();
            let listed: Vec<Value> = futures::stream::iter(batch)
                .map(|directory| async move {
                    let url = format!("{base}/{}", repo_path(&directory)?);
                    self.api(ctx).json(Method::GET, &url, query, None).await
                })
                .buffered(LISTINGS_AT_ONCE)
                .try_collect()
                .await?;
            for listing in listed {
                let more = listing.as_array().cloned().unwrap_or_default();
                pending.extend(directories(&more));
                entries.extend(more);
            }
        }
        entries.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
        if pending.is_empty() {
            return Ok(Value::Array(entries));
        }
        Ok(json!({
            "items": entries,
            "truncated": true,
            "note": format!(
                "stopped after {MAX_LISTINGS} directory listings; {} directories were not listed (ask for one of them as path)",
                pending.len()
            ),
            "unlisted_directories": Vec::from(pending),
        }))
    }

    /// `PUT /repos/{owner}/{repo}/contents/{path}` with the content base64-encoded; a
    /// committer only when both its name and email are given (as guMCP does).
    async fn add_file_to_repository(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let path = repo_path(text(arguments, "path").unwrap_or_default())?;
        if path.is_empty() {
            return Err("path must name the file to create, e.g. 'docs/notes.md'".into());
        }
        let url = format!("{}/contents/{path}", repo_url(arguments)?);
        let content = text(arguments, "content").unwrap_or_default();
        let mut body = json!({
            "message": text(arguments, "commit_message").unwrap_or_default(),
            "content": STANDARD.encode(content.as_bytes()),
        });
        if let Some(branch) = given(arguments, "branch") {
            body["branch"] = bare_branch(branch).into();
        }
        if let Some(sha) = given(arguments, "sha") {
            body["sha"] = sha.into();
        }
        if let (Some(name), Some(email)) = (
            given(arguments, "committer_name"),
            given(arguments, "committer_email"),
        ) {
            body["committer"] = json!({ "name": name, "email": email });
        }
        self.api(ctx)
            .json(Method::PUT, &url, &[], Some(&body))
            .await
    }

    /// The start point's sha (`GET …/git/ref/heads/{start_point}`, or the sha itself when a
    /// full one is given), then `POST …/git/refs` with `refs/heads/{branch_name}`.
    async fn create_branch(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let repo = repo_url(arguments)?;
        let start = bare_branch(text(arguments, "start_point").unwrap_or_default());
        let branch = bare_branch(text(arguments, "branch_name").unwrap_or_default());
        if start.is_empty() || branch.is_empty() {
            return Err("branch_name and start_point must name branches".into());
        }
        let sha = if is_full_sha(start) {
            start.to_owned()
        } else {
            let url = format!("{repo}/git/ref/heads/{}", repo_path(start)?);
            let reference = self
                .api(ctx)
                .json(Method::GET, &url, &[], None)
                .await
                .map_err(|message| format!("cannot read the start point {start:?}: {message}"))?;
            reference
                .pointer("/object/sha")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("GitHub named no commit for the branch {start:?}"))?
        };
        let body = json!({ "ref": format!("refs/heads/{branch}"), "sha": sha });
        self.api(ctx)
            .json(Method::POST, &format!("{repo}/git/refs"), &[], Some(&body))
            .await
    }

    /// A coded tool, its arguments split as for declared ones.
    /// The account and its organizations (up to `MAX_ORG_PAGES` pages), as guMCP lists them.
    /// `/user/orgs` carries no display names, so organizations are named by login.
    async fn account_resources(&self, ctx: &RequestContext) -> Result<Vec<Resource>, String> {
        let api = self.api(ctx);
        let user = api.json(Method::GET, "/user", &[], None).await?;
        let login = user
            .get("login")
            .and_then(Value::as_str)
            .ok_or("GitHub named no login for this account")?;
        let mut resources = vec![organization_resource(login, "Personal GitHub account")];
        for page in 1..=MAX_ORG_PAGES {
            let query = [
                ("per_page", PAGE_SIZE.to_string()),
                ("page", page.to_string()),
            ];
            let answer = api.json(Method::GET, "/user/orgs", &query, None).await?;
            let orgs = answer.as_array().map(Vec::as_slice).unwrap_or_default();
            resources.extend(
                orgs.iter()
                    .filter_map(|org| org.get("login").and_then(Value::as_str))
                    .map(|login| organization_resource(login, "GitHub organization")),
            );
            if orgs.len() < PAGE_SIZE {
                break;
            }
        }
        Ok(resources)
    }

    /// An organization's profile, or a user's when the login is not an organization's (the
    /// personal account is listed under the same URI shape).
    async fn organization(&self, ctx: &RequestContext, login: &str) -> Result<Value, String> {
        let api = self.api(ctx);
        let name = segment(login);
        match api
            .json(Method::GET, &format!("/orgs/{name}"), &[], None)
            .await
        {
            Ok(org) => Ok(profile("organization", &org, &ORGANIZATION_FIELDS)),
            Err(_) => {
                let user = api
                    .json(Method::GET, &format!("/users/{name}"), &[], None)
                    .await?;
                Ok(profile("user", &user, &USER_FIELDS))
            }
        }
    }

    /// The repository object with its README text, languages and first contributors. Only
    /// the repository itself must be readable: a missing README is `null` (as in guMCP), and
    /// languages or contributors GitHub will not list (an empty repository, one too large to
    /// count) are left empty rather than hiding the rest.
    async fn repository(
        &self,
        ctx: &RequestContext,
        owner: &str,
        repo: &str,
    ) -> Result<Value, String> {
        let api = self.api(ctx);
        let base = format!("/repos/{}/{}", segment(owner), segment(repo));
        let contributors_query = [("per_page", RESOURCE_CONTRIBUTORS.to_owned())];
        let [readme_path, languages_path, contributors_path] =
            ["readme", "languages", "contributors"].map(|part| format!("{base}/{part}"));
        let (details, readme, languages, contributors) = futures::join!(
            api.json(Method::GET, &base, &[], None),
            api.json(Method::GET, &readme_path, &[], None),
            api.json(Method::GET, &languages_path, &[], None),
            api.json(Method::GET, &contributors_path, &contributors_query, None),
        );
        let Value::Object(mut details) = details? else {
            return Err(format!("GitHub answered no repository for {owner}/{repo}"));
        };
        let readme = readme.ok().and_then(|readme| decoded(&readme));
        details.insert("readme".into(), readme.map_or(Value::Null, Value::String));
        let languages = languages
            .ok()
            .filter(Value::is_object)
            .unwrap_or_else(|| json!({}));
        details.insert("languages".into(), languages);
        if !details.get("topics").is_some_and(Value::is_array) {
            details.insert("topics".into(), json!([]));
        }
        let contributors: Vec<Value> = contributors
            .ok()
            .as_ref()
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(contributor)
            .collect();
        details.insert("contributors".into(), contributors.into());
        Ok(Value::Object(details))
    }

    async fn run_coded(
        &self,
        name: &str,
        mut arguments: JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        split_full_name(&mut arguments)?;
        match name {
            "get_contents" => self.get_contents(&arguments, ctx).await,
            "add_file_to_repository" => self.add_file_to_repository(&arguments, ctx).await,
            _ => self.create_branch(&arguments, ctx).await,
        }
    }
}

impl McpServer for GitHub {
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
            self.account_resources(ctx)
                .await
                .map_err(McpError::internal)
        }
        .boxed()
    }

    fn read_resource<'a>(
        &'a self,
        uri: &'a str,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<ReadResourceResult, CallError>> {
        async move {
            let read = match named(uri) {
                Some(Named::Organization(login)) => self.organization(ctx, login).await,
                Some(Named::Repository(owner, repo)) => self.repository(ctx, owner, repo).await,
                None => return Err(CallError::ResourceNotFound(uri.into())),
            };
            let value = read.map_err(McpError::internal)?;
            let text = serde_json::to_string_pretty(&value).unwrap_or_default();
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
                return self.run_declared(name, arguments, ctx).await;
            }
            Ok(match self.run_coded(name, arguments, ctx).await {
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
    fn resource_uris_name_an_account_or_a_repository() {
        assert_eq!(
            named("github://organization/octo"),
            Some(Named::Organization("octo"))
        );
        assert_eq!(
            named("github://organization/octo/repository/hello"),
            Some(Named::Repository("octo", "hello"))
        );
        for bad in [
            "github://organization/",
            "github://organization/..",
            "github://organization/octo/repository/",
            "github://organization/octo/issues/1",
            "github://user/octo",
        ] {
            assert_eq!(named(bad), None, "{bad}");
        }
    }

    fn object(value: Value) -> JsonObject {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn full_names_are_split_and_bad_ones_refused() {
        let mut arguments = object(json!({ "repo_name": "octo/hello", "owner": "someone" }));
        split_full_name(&mut arguments).unwrap();
        assert_eq!(
            Value::Object(arguments),
            json!({ "owner": "octo", "repo_name": "hello" })
        );
        let mut plain = object(json!({ "repo_name": "hello", "owner": "octo" }));
        split_full_name(&mut plain).unwrap();
        assert_eq!(plain["owner"], "octo");
        for bad in ["/hello", "octo/", "a/b/c"] {
            let mut arguments = object(json!({ "repo_name": bad }));
            assert!(split_full_name(&mut arguments).is_err(), "{bad}");
        }
    }

    #[test]
    fn file_paths_keep_their_slashes_and_encode_each_segment() {
        assert_eq!(repo_path("src/lib.rs").unwrap(), "src/lib.rs");
        assert_eq!(
            repo_path("/docs/My Notes/a#b?.md/").unwrap(),
            "docs/My%20Notes/a%23b%3F.md"
        );
        assert_eq!(repo_path("").unwrap(), "");
        for bad in ["../secret", "a/./b", "a/.."] {
            assert!(repo_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn comma_lists_are_trimmed() {
        assert_eq!(comma_list(" bug, ui ,,docs"), ["bug", "ui", "docs"]);
        assert!(comma_list(" , ").is_empty());
    }

    #[test]
    fn branch_names_lose_their_ref_prefix() {
        assert_eq!(bare_branch("refs/heads/release/1.0"), "release/1.0");
        assert_eq!(bare_branch("heads/main"), "main");
        assert_eq!(bare_branch(" feature/x "), "feature/x");
        assert!(is_full_sha("0123456789abcdef0123456789abcdef01234567"));
        assert!(!is_full_sha("main"));
    }

    #[test]
    fn times_are_read_in_the_usual_iso_forms() {
        let utc = parse_time("2024-05-01T10:00:00Z").unwrap();
        assert_eq!(parse_time("2024-05-01T12:00:00+02:00"), Some(utc));
        assert_eq!(parse_time("2024-05-01T10:00:00"), Some(utc));
        assert!(parse_time("2024-05-01").unwrap() < utc);
        assert!(parse_time("yesterday").is_none());
    }

    #[test]
    fn base64_content_is_decoded_across_github_line_breaks() {
        let file = json!({ "encoding": "base64", "content": "aGVsbG8g\nd29ybGQ=\n" });
        assert_eq!(decoded(&file).as_deref(), Some("hello world"));
        let binary = json!({ "encoding": "base64", "content": STANDARD.encode([0xff, 0xfe]) });
        assert_eq!(decoded(&binary), None);
    }

    #[test]
    fn declared_and_coded_tools_are_the_twenty_four_of_gumcp() {
        let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("servers/github");
        let manifest = crate::servers::manifest::load(&folder).unwrap();
        let mut names: Vec<String> = manifest.tools.iter().map(|t| t.name.clone()).collect();
        names.extend(coded_tools().iter().map(|t| t.name.to_string()));
        names.sort();
        let mut expected: Vec<String> = ORDER.iter().map(|name| name.to_string()).collect();
        expected.sort();
        assert_eq!(names, expected);
    }
}
