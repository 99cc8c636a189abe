//! sharepoint: SharePoint sites, lists and pages, Microsoft 365 users and the user's OneDrive
//! files through Microsoft Graph (v1.0), with guMCP's seventeen tools, names and arguments, on
//! the Microsoft identity platform provider.
//!
//! Thirteen tools are one request each, declared in `server.toml`. Most name a site by its id
//! or its URL: the code here first turns a `site_url` into the site's id (`GET
//! /sites/{host}:/{path}`), `get_list`'s `list_title` into the list's name in the path and
//! `get_site_page`'s `page_name` into the page's id, then hands the call to the `http` engine.
//! Four tools are code: create_site_page (text web parts in a one-column canvas),
//! create_folder (in a folder or the root), download_file and upload_file. The last two move
//! files between OneDrive and this machine only inside `servers.local_files_dir`
//! (`Upstream::local_file`; unset: refused); a download follows Graph's pre-authenticated URL
//! (`Upstream::fetch_file`). The runtime's `Api` does the credentials, the refresh-and-retry
//! on 401 and the wording of upstream failures.

use std::sync::Arc;

use base64::Engine;
use reqwest::Method;
use rmcp::model::{CallToolResult, JsonObject, Tool};
use serde_json::{json, Value};

use crate::protocol::error::McpError;
use crate::servers::http::{Api, HttpServer, Upstream};
use crate::servers::kit::{answer, id_segment, required_text, text, tool, tool_error};
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, McpServer, RequestContext, ServerFuture, ServerInit};

/// How much of a file `download_file` shows when it keeps no copy (guMCP's cut).
const SHOWN_BASE64: usize = 1000;

/// The declared tools that name a site (by `site_id` or `site_url`).
const NAMES_A_SITE: [&str; 11] = [
    "list_site_lists",
    "create_list",
    "get_list",
    "create_list_item",
    "get_list_item",
    "get_list_items",
    "delete_list_item",
    "update_list_item",
    "get_site_page",
    "list_site_pages",
    "get_site_info",
];

/// guMCP's order of the tools, declared and coded alike.
const ORDER: [&str; 17] = [
    "get_users",
    "list_site_lists",
    "create_list",
    "get_list",
    "create_list_item",
    "get_list_item",
    "get_list_items",
    "delete_list_item",
    "update_list_item",
    "download_file",
    "create_folder",
    "upload_file",
    "create_site_page",
    "get_site_page",
    "list_site_pages",
    "get_site_info",
    "search_sites",
];

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    let declared = HttpServer::new(init.manifest.clone(), init.upstream.clone());
    let mut tools = coded_tools();
    tools.extend(declared.tools());
    tools.sort_by_key(|tool| ORDER.iter().position(|name| *name == tool.name));
    Arc::new(Sharepoint {
        manifest: init.manifest,
        upstream: init.upstream,
        declared,
        tools,
    })
}

struct Sharepoint {
    manifest: Arc<Manifest>,
    upstream: Upstream,
    /// The tools `server.toml` declares, run by the `http` engine.
    declared: HttpServer,
    tools: Vec<Tool>,
}

fn string(description: &str) -> Value {
    json!({ "type": "string", "description": description })
}

fn conflict() -> Value {
    json!({
        "type": "string",
        "enum": ["rename", "replace", "fail"],
        "description": "What to do when the name is taken"
    })
}

fn coded_tools() -> Vec<Tool> {
    vec![
        tool(
            "download_file",
            "Download a file from the current user's OneDrive",
            json!({
                "type": "object",
                "properties": {
                    "item_id": string("The ID of the file in the user's OneDrive"),
                    "download_path": string("Where to save it, inside this machine's local files folder (servers.local_files_dir); without it the answer holds the start of the content in base64")
                },
                "required": ["item_id"]
            }),
        ),
        tool(
            "create_folder",
            "Create a new folder in the current user's OneDrive",
            json!({
                "type": "object",
                "properties": {
                    "folder_name": string("The name of the new folder"),
                    "parent_folder_id": string("The ID of the parent folder (default: the root)"),
                    "conflict_behavior": conflict()
                },
                "required": ["folder_name"]
            }),
        ),
        tool(
            "upload_file",
            "Upload a file to the current user's OneDrive",
            json!({
                "type": "object",
                "properties": {
                    "file_path": string("Path of the file to upload, inside this machine's local files folder (servers.local_files_dir)"),
                    "destination_path": string("Path in OneDrive, including the file name (or give parent_folder_id)"),
                    "conflict_behavior": conflict(),
                    "content_type": string("The file's media type (default text/plain)"),
                    "parent_folder_id": string("The ID of the folder to upload into, under the file's own name")
                },
                "required": ["file_path"]
            }),
        ),
        tool(
            "create_site_page",
            "Create a new SharePoint site page",
            json!({
                "type": "object",
                "properties": {
                    "site_id": string("The ID of the SharePoint site (or give site_url)"),
                    "site_url": string("The URL of the SharePoint site"),
                    "page_name": string("The file name of the page (e.g. 'Plans.aspx')"),
                    "page_title": string("The title of the page"),
                    "page_layout": { "type": "string", "enum": ["article", "home", "singleWebPartAppPage"], "description": "The page's layout (default article)" },
                    "web_parts": {
                        "type": "array",
                        "description": "The page's content: text parts ({\"type\": \"text\", \"data\": {\"text\": \"<p>…</p>\"}})",
                        "items": {
                            "type": "object",
                            "properties": {
                                "type": string("The kind of web part (text)"),
                                "data": { "type": "object", "description": "The part's content" }
                            }
                        }
                    }
                },
                "required": ["page_name", "page_title"]
            }),
        ),
    ]
}

fn field<'a>(item: &'a Value, key: &str) -> &'a str {
    item.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// Graph's path of the site at `url`: `/sites/{host}:/{path}` (each segment encoded), or
/// `/sites/{host}` for a root site.
fn site_path(url: &str) -> Result<String, String> {
    let parsed = reqwest::Url::parse(url)
        .ok()
        .filter(|url| matches!(url.scheme(), "https" | "http"))
        .ok_or_else(|| format!("{url:?} is not a SharePoint site URL"))?;
    let host = id_segment(parsed.host_str().unwrap_or_default())?;
    let mut segments = Vec::new();
    for part in parsed.path().split('/').filter(|part| !part.is_empty()) {
        let decoded = percent_encoding::percent_decode_str(part).decode_utf8_lossy();
        segments.push(id_segment(&decoded)?);
    }
    Ok(if segments.is_empty() {
        format!("/sites/{host}")
    } else {
        format!("/sites/{host}:/{}", segments.join("/"))
    })
}

/// A text web part as Graph's canvas takes it; other kinds are not created (see the README).
fn web_part(part: &Value) -> Option<Value> {
    (field(part, "type") == "text").then(|| {
        json!({
            "@odata.type": "#microsoft.graph.textWebPart",
            "innerHtml": part.pointer("/data/text").and_then(Value::as_str).unwrap_or_default(),
        })
    })
}

impl Sharepoint {
    fn api<'a>(&'a self, ctx: &'a RequestContext) -> Api<'a> {
        self.upstream.manifest_api(&self.manifest, ctx)
    }

    /// The site's id: `site_id`, else the id of the site at `site_url`.
    async fn site_id(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<String, String> {
        if let Some(id) = text(arguments, "site_id").filter(|id| !id.is_empty()) {
            return Ok(id.to_owned());
        }
        let Some(url) = text(arguments, "site_url") else {
            return Err("Either site_id or site_url must be provided".to_owned());
        };
        let site = self
            .api(ctx)
            .json(Method::GET, &site_path(url)?, &[], None)
            .await?;
        match field(&site, "id") {
            "" => Err(format!("Graph gave no id for the site at {url}")),
            id => Ok(id.to_owned()),
        }
    }

    /// The arguments of a declared tool with the ids its path needs filled in.
    async fn resolved(
        &self,
        name: &str,
        mut arguments: JsonObject,
        ctx: &RequestContext,
    ) -> Result<JsonObject, String> {
        let site = self.site_id(&arguments, ctx).await?;
        arguments.insert("site_id".into(), json!(site));
        match name {
            "get_list" if text(&arguments, "list_id").is_none() => {
                let title = text(&arguments, "list_title")
                    .ok_or("Either list_id or list_title must be provided")?;
                arguments.insert("list_id".into(), json!(title));
            }
            "get_site_page" if text(&arguments, "page_id").is_none() => {
                let page = required_text(&arguments, "page_name")
                    .map_err(|_| "Either page_id or page_name must be provided".to_owned())?;
                let path = format!("/sites/{}/pages", id_segment(&site)?);
                let pages = self.api(ctx).json(Method::GET, &path, &[], None).await?;
                let id = pages
                    .get("value")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .find(|found| field(found, "name") == page)
                    .map(|found| field(found, "id").to_owned())
                    .ok_or_else(|| format!("No page found with name '{page}'"))?;
                arguments.insert("page_id".into(), json!(id));
            }
            _ => {}
        }
        Ok(arguments)
    }

    async fn create_site_page(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let site = id_segment(&self.site_id(arguments, ctx).await?)?;
        let name = required_text(arguments, "page_name")?;
        let mut page = json!({
            "@odata.type": "#microsoft.graph.sitePage",
            "name": name,
            "title": text(arguments, "page_title").unwrap_or(name),
            "pageLayout": text(arguments, "page_layout").unwrap_or("article"),
        });
        let parts: Vec<Value> = arguments
            .get("web_parts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(web_part)
            .collect();
        if !parts.is_empty() {
            page["canvasLayout"] = json!({
                "horizontalSections": [{ "layout": "oneColumn", "id": "1", "columns": [{ "id": "1", "webparts": parts }] }]
            });
        }
        self.api(ctx)
            .json(
                Method::POST,
                &format!("/sites/{site}/pages"),
                &[],
                Some(&page),
            )
            .await
    }

    async fn create_folder(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let path = match text(arguments, "parent_folder_id") {
            Some(parent) => format!("/me/drive/items/{}/children", id_segment(parent)?),
            None => "/me/drive/root/children".to_owned(),
        };
        let body = json!({
            "name": required_text(arguments, "folder_name")?,
            "folder": {},
            "@microsoft.graph.conflictBehavior": text(arguments, "conflict_behavior").unwrap_or("rename"),
        });
        self.api(ctx)
            .json(Method::POST, &path, &[], Some(&body))
            .await
    }

    async fn download_file(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let id = id_segment(required_text(arguments, "item_id")?)?;
        let local = text(arguments, "download_path")
            .map(|given| self.upstream.local_file(given).map(|path| (given, path)))
            .transpose()?;
        let item = self
            .api(ctx)
            .json(Method::GET, &format!("/me/drive/items/{id}"), &[], None)
            .await?;
        let url = item
            .get("@microsoft.graph.downloadUrl")
            .and_then(Value::as_str)
            .ok_or("OneDrive gave no download URL for it (is it a folder?)")?;
        let file = self.upstream.fetch_file(url).await?;
        if let Some((given, path)) = local {
            let bytes = file.bytes;
            tokio::task::spawn_blocking(move || std::fs::write(&path, bytes))
                .await
                .map_err(|err| err.to_string())?
                .map_err(|err| format!("the file could not be saved: {err}"))?;
            return Ok(json!(format!("Successfully downloaded file to {given}")));
        }
        let encoded = base64::engine::general_purpose::STANDARD.encode(&file.bytes);
        let cut = encoded.len() > SHOWN_BASE64;
        Ok(json!({
            "filename": item.get("name"),
            "content_type": file.content_type,
            "content_length": file.bytes.len(),
            "base64_content": if cut { format!("{}...", &encoded[..SHOWN_BASE64]) } else { encoded },
            "note": cut.then_some("Content truncated for display"),
        }))
    }

    async fn upload_file(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let given = required_text(arguments, "file_path")?;
        let local = self.upstream.local_file(given)?;
        let file_name = local
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let path = match (
            text(arguments, "destination_path"),
            text(arguments, "parent_folder_id"),
        ) {
            (Some(destination), _) => {
                let mut segments = Vec::new();
                for part in destination.split('/').filter(|part| !part.is_empty()) {
                    segments.push(id_segment(part)?);
                }
                if segments.is_empty() {
                    return Err("destination_path must name a file".to_owned());
                }
                format!("/me/drive/root:/{}:/content", segments.join("/"))
            }
            (None, Some(parent)) => format!(
                "/me/drive/items/{}:/{}:/content",
                id_segment(parent)?,
                id_segment(&file_name)?
            ),
            (None, None) => {
                return Err("Either destination_path or parent_folder_id must be provided".into())
            }
        };
        let limit = self.upstream.max_response_bytes;
        let bytes = tokio::task::spawn_blocking(move || {
            let metadata = std::fs::metadata(&local)
                .map_err(|err| format!("the file cannot be read: {err}"))?;
            if !metadata.is_file() {
                return Err("file_path is not a file".to_owned());
            }
            if metadata.len() > limit as u64 {
                return Err(format!(
                    "the file is larger than servers.max_response_bytes ({limit} bytes)"
                ));
            }
            std::fs::read(&local).map_err(|err| format!("the file cannot be read: {err}"))
        })
        .await
        .map_err(|err| err.to_string())??;
        let conflict = text(arguments, "conflict_behavior").unwrap_or("replace");
        self.api(ctx)
            .upload(
                Method::PUT,
                &path,
                &[("@microsoft.graph.conflictBehavior", conflict.to_owned())],
                text(arguments, "content_type").unwrap_or("text/plain"),
                &bytes,
            )
            .await
    }
}

impl McpServer for Sharepoint {
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
                if !NAMES_A_SITE.contains(&name) {
                    return self.declared.call_tool(name, arguments, ctx).await;
                }
                return match self.resolved(name, arguments, ctx).await {
                    Ok(arguments) => self.declared.call_tool(name, arguments, ctx).await,
                    Err(message) => Ok(tool_error(message)),
                };
            }
            let outcome = match name {
                "download_file" => self.download_file(&arguments, ctx).await,
                "create_folder" => self.create_folder(&arguments, ctx).await,
                "upload_file" => self.upload_file(&arguments, ctx).await,
                "create_site_page" => self.create_site_page(&arguments, ctx).await,
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
    fn site_urls_become_graph_site_paths() {
        assert_eq!(
            site_path("https://contoso.sharepoint.com/sites/Marketing%20Team/").unwrap(),
            "/sites/contoso.sharepoint.com:/sites/Marketing%20Team"
        );
        assert_eq!(
            site_path("https://contoso.sharepoint.com").unwrap(),
            "/sites/contoso.sharepoint.com"
        );
        assert!(site_path("contoso").is_err());
        assert_eq!(
            site_path("https://contoso.sharepoint.com/sites/a%2Fb%3Fc").unwrap(),
            "/sites/contoso.sharepoint.com:/sites/a%2Fb%3Fc"
        );
    }
}
