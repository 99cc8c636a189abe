//! onedrive: the user's OneDrive through Microsoft Graph (v1.0) with guMCP's seven tools, names
//! and arguments, on the Microsoft identity platform provider. Every tool is code: items are
//! named by their path in the drive, which becomes Graph's `root:/{path}:` with each segment
//! encoded on its own (so a name cannot add segments, a query or `..`); answers are worded as
//! guMCP words them, with Graph's items as structured content.
//!
//! upload_file and download_file move files between OneDrive and this machine. guMCP read and
//! wrote any path of the host; here they use only `servers.local_files_dir`
//! (`Upstream::local_file`), and refuse when it is unset — a shared host's files are nobody's
//! to upload. A download follows Graph's pre-authenticated `@microsoft.graph.downloadUrl`
//! (fetched without credentials by `Upstream::fetch_file`), as the shared client follows no
//! redirects. The runtime's `Api` does the credentials, the refresh-and-retry on 401 and the
//! wording of upstream failures.

use std::sync::Arc;

use reqwest::Method;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool};
use serde_json::{json, Value};

use crate::protocol::error::McpError;
use crate::servers::http::{Api, Upstream};
use crate::servers::kit::{answer, id_segment, required_text, segment, text, tool, tool_error};
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, McpServer, RequestContext, ServerFuture, ServerInit};

const LISTED_FIELDS: &str = "id,name,folder,file,size,createdDateTime,lastModifiedDateTime";

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    Arc::new(Onedrive {
        manifest: init.manifest,
        upstream: init.upstream,
    })
}

struct Onedrive {
    manifest: Arc<Manifest>,
    upstream: Upstream,
}

fn string(description: &str) -> Value {
    json!({ "type": "string", "description": description })
}

fn tools() -> Vec<Tool> {
    vec![
        tool(
            "list_files",
            "Lists files and folders in a OneDrive directory",
            json!({
                "type": "object",
                "properties": { "folder_path": string("Path to the folder (default: root folder '/')") }
            }),
        ),
        tool(
            "upload_file",
            "Uploads a file to OneDrive",
            json!({
                "type": "object",
                "properties": {
                    "local_file_path": string("Path of the file to upload, inside this machine's local files folder (servers.local_files_dir)"),
                    "destination_path": string("Destination path in OneDrive, including the file name")
                },
                "required": ["local_file_path", "destination_path"]
            }),
        ),
        tool(
            "download_file",
            "Downloads a file from OneDrive",
            json!({
                "type": "object",
                "properties": {
                    "onedrive_path": string("Path of the file in OneDrive"),
                    "local_destination_path": string("Where to save it, inside this machine's local files folder (servers.local_files_dir)")
                },
                "required": ["onedrive_path", "local_destination_path"]
            }),
        ),
        tool(
            "create_folder",
            "Creates a new folder in OneDrive",
            json!({
                "type": "object",
                "properties": {
                    "folder_path": string("Path of the parent folder ('/' for the root)"),
                    "folder_name": string("Name of the new folder")
                },
                "required": ["folder_path", "folder_name"]
            }),
        ),
        tool(
            "delete_item",
            "Deletes a file or folder from OneDrive",
            json!({
                "type": "object",
                "properties": { "item_path": string("Path of the file or folder to delete") },
                "required": ["item_path"]
            }),
        ),
        tool(
            "search_files",
            "Searches for files in OneDrive",
            json!({
                "type": "object",
                "properties": { "search_term": string("Text to search for in file names and content") },
                "required": ["search_term"]
            }),
        ),
        tool(
            "get_file_sharing_link",
            "Gets sharing link for a OneDrive file",
            json!({
                "type": "object",
                "properties": { "file_path": string("Path of the file or folder in OneDrive") },
                "required": ["file_path"]
            }),
        ),
    ]
}

/// An OneDrive path as Graph's encoded item path (`a/b%20c.txt`); `None` for the root.
fn drive_path(path: &str) -> Result<Option<String>, String> {
    let trimmed = path.trim().trim_matches('/');
    if trimmed.is_empty() {
        return Ok(None);
    }
    let mut encoded = Vec::new();
    for part in trimmed.split('/').filter(|part| !part.is_empty()) {
        if part == "." || part == ".." {
            return Err(format!("{path:?} is not an OneDrive path"));
        }
        encoded.push(segment(part));
    }
    Ok(Some(encoded.join("/")))
}

/// The path of an item (`/me/drive/root:/{path}`), or of the root.
fn item(path: &str) -> Result<String, String> {
    Ok(match drive_path(path)? {
        Some(encoded) => format!("/me/drive/root:/{encoded}"),
        None => "/me/drive/root".to_owned(),
    })
}

/// The children of a folder.
fn children(path: &str) -> Result<String, String> {
    Ok(match drive_path(path)? {
        Some(encoded) => format!("/me/drive/root:/{encoded}:/children"),
        None => "/me/drive/root/children".to_owned(),
    })
}

/// The path as guMCP shows it: without its leading slash.
fn shown(path: &str) -> &str {
    path.strip_prefix('/').unwrap_or(path)
}

fn field<'a>(item: &'a Value, key: &str) -> &'a str {
    item.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn kind(item: &Value) -> &'static str {
    if item.get("folder").is_some() {
        "Folder"
    } else {
        "File"
    }
}

fn size(item: &Value) -> i64 {
    item.get("size").and_then(Value::as_i64).unwrap_or(0)
}

/// A text answer with Graph's items beside it.
fn listing(text: String, items: Vec<Value>) -> CallToolResult {
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(json!({ "items": items }));
    result
}

/// The items of a Graph list answer.
fn values(answer: &Value) -> Vec<Value> {
    answer
        .get("value")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

impl Onedrive {
    fn api<'a>(&'a self, ctx: &'a RequestContext) -> Api<'a> {
        self.upstream.manifest_api(&self.manifest, ctx)
    }

    async fn list_files(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<CallToolResult, String> {
        let folder = text(arguments, "folder_path").unwrap_or("/");
        let query = [
            ("$select", LISTED_FIELDS.to_owned()),
            ("$orderby", "name asc".to_owned()),
        ];
        let listed = self
            .api(ctx)
            .json(Method::GET, &children(folder)?, &query, None)
            .await?;
        let items = values(&listed);
        let folder = shown(folder);
        if items.is_empty() {
            return Ok(listing(
                format!("No files found in folder: {folder}"),
                items,
            ));
        }
        let described: Vec<String> = items
            .iter()
            .map(|item| {
                format!(
                    "{}: {}\nSize: {} bytes\nCreated: {}\nModified: {}\n",
                    kind(item),
                    field(item, "name"),
                    size(item),
                    field(item, "createdDateTime"),
                    field(item, "lastModifiedDateTime")
                )
            })
            .collect();
        let text = format!(
            "Contents of folder '{folder}':\n\n{}",
            described.join("\n---\n")
        );
        Ok(listing(text, items))
    }

    async fn upload_file(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let local = required_text(arguments, "local_file_path")?;
        let destination = required_text(arguments, "destination_path")?;
        let target =
            drive_path(destination)?.ok_or("destination_path must name a file, not the root")?;
        let bytes = self
            .upstream
            .read_local_file(local, "local_file_path")
            .await?;
        let uploaded = self
            .api(ctx)
            .upload(
                Method::PUT,
                &format!("/me/drive/root:/{target}:/content"),
                &[],
                "application/octet-stream",
                &bytes,
            )
            .await?;
        Ok(Value::String(format!(
            "File uploaded successfully to {}\nID: {}",
            shown(destination),
            field(&uploaded, "id")
        )))
    }

    async fn download_file(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let remote = required_text(arguments, "onedrive_path")?;
        let given = required_text(arguments, "local_destination_path")?;
        let local = self.upstream.local_file(given)?;
        let found = self
            .api(ctx)
            .json(Method::GET, &item(remote)?, &[], None)
            .await?;
        let url = found
            .get("@microsoft.graph.downloadUrl")
            .and_then(Value::as_str)
            .ok_or("OneDrive gave no download URL for it (is it a folder?)")?;
        let file = self.upstream.fetch_file(url).await?;
        write_local(local, file.bytes).await?;
        Ok(Value::String(format!(
            "File downloaded successfully to {given}"
        )))
    }

    async fn create_folder(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let parent = required_text(arguments, "folder_path")?;
        let name = required_text(arguments, "folder_name")?;
        let body = json!({
            "name": name,
            "folder": {},
            "@microsoft.graph.conflictBehavior": "rename"
        });
        let created = self
            .api(ctx)
            .json(Method::POST, &children(parent)?, &[], Some(&body))
            .await?;
        Ok(Value::String(format!(
            "Folder '{name}' created successfully in {}\nID: {}",
            shown(parent),
            field(&created, "id")
        )))
    }

    async fn delete_item(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let path = required_text(arguments, "item_path")?;
        if drive_path(path)?.is_none() {
            return Err("item_path must name a file or folder, not the root".to_owned());
        }
        self.api(ctx)
            .json(Method::DELETE, &item(path)?, &[], None)
            .await?;
        Ok(Value::String(format!(
            "Item '{}' deleted successfully.",
            shown(path)
        )))
    }

    async fn search_files(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<CallToolResult, String> {
        let term = required_text(arguments, "search_term")?;
        // An OData string literal: quotes doubled; then one path segment.
        let literal = segment(&format!("'{}'", term.replace('\'', "''")));
        let found = self
            .api(ctx)
            .json(
                Method::GET,
                &format!("/me/drive/root/search(q={literal})"),
                &[],
                None,
            )
            .await?;
        let items = values(&found);
        if items.is_empty() {
            return Ok(listing(format!("No files found matching '{term}'"), items));
        }
        let described: Vec<String> = items
            .iter()
            .map(|item| {
                format!(
                    "{}: {}\nSize: {} bytes\n",
                    kind(item),
                    field(item, "name"),
                    size(item)
                )
            })
            .collect();
        let text = format!(
            "Search results for '{term}':\n\n{}",
            described.join("\n---\n")
        );
        Ok(listing(text, items))
    }

    async fn get_file_sharing_link(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let path = required_text(arguments, "file_path")?;
        let api = self.api(ctx);
        let found = api.json(Method::GET, &item(path)?, &[], None).await?;
        let id = id_segment(field(&found, "id"))?;
        let link = api
            .json(
                Method::POST,
                &format!("/me/drive/items/{id}/createLink"),
                &[],
                Some(&json!({ "type": "view" })),
            )
            .await?;
        let url = link
            .pointer("/link/webUrl")
            .and_then(Value::as_str)
            .unwrap_or_default();
        Ok(Value::String(format!(
            "Sharing link for '{}': {url}",
            shown(path)
        )))
    }
}

/// Writes `bytes` to a local file, off the async threads.
async fn write_local(path: std::path::PathBuf, bytes: Vec<u8>) -> Result<(), String> {
    let written = tokio::task::spawn_blocking(move || {
        std::fs::write(&path, bytes).map_err(|err| format!("the file could not be saved: {err}"))
    });
    written.await.map_err(|err| err.to_string())?
}

impl McpServer for Onedrive {
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
            let listed =
                |outcome: Result<CallToolResult, String>| outcome.unwrap_or_else(tool_error);
            Ok(match name {
                "list_files" => listed(self.list_files(&arguments, ctx).await),
                "search_files" => listed(self.search_files(&arguments, ctx).await),
                "upload_file" => answer(self.upload_file(&arguments, ctx).await),
                "download_file" => answer(self.download_file(&arguments, ctx).await),
                "create_folder" => answer(self.create_folder(&arguments, ctx).await),
                "delete_item" => answer(self.delete_item(&arguments, ctx).await),
                "get_file_sharing_link" => {
                    answer(self.get_file_sharing_link(&arguments, ctx).await)
                }
                _ => return Err(McpError::invalid_params(format!("Unknown tool: {name}")).into()),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drive_paths_are_encoded_segment_by_segment() {
        assert_eq!(drive_path("/").unwrap(), None);
        assert_eq!(drive_path("").unwrap(), None);
        assert_eq!(
            drive_path("/Documents/Q1 report?.docx").unwrap().as_deref(),
            Some("Documents/Q1%20report%3F.docx")
        );
        assert_eq!(drive_path("a//b/").unwrap().as_deref(), Some("a/b"));
        assert!(drive_path("a/../b").is_err());
        assert_eq!(children("/").unwrap(), "/me/drive/root/children");
        assert_eq!(children("Docs").unwrap(), "/me/drive/root:/Docs:/children");
    }
}
