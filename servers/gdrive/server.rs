//! gdrive: Google Drive (API v3) with guMCP's twelve tools, names and arguments.
//!
//! copy_file, create_folder, create_shortcut, update_file_folder_name,
//! retrieve_file_or_folder_by_id and delete_file are one call each and are declared in
//! `server.toml`; this code hands them to the runtime's `http` engine. The other six need code:
//! search quotes its text into a Drive query (backslashes and quotes escaped, so the text cannot
//! change the query) and answers one block per file; move_file reads the file's parents before
//! it moves it; create_file_from_text sends a multipart upload (metadata and content);
//! replace_file fetches the new content from the URL it is given (`Upstream::fetch_file`: no
//! credentials, no redirects, capped, no private addresses) and uploads it over the file;
//! add_file_sharing_preference adds the permission and then reads the file's link;
//! retrieve_files adds `trashed = false` to the query unless trashed files are asked for. The
//! runtime's `Api` does the credentials, the refresh-and-retry on 401 and the wording of
//! upstream failures.
//!
//! Resources are guMCP's: the files Drive lists (the first page of 100) as
//! `gdrive://{folder|document|spreadsheet|presentation|file}/{id}`; reading one exports a Google
//! format (documents as Markdown, spreadsheets as CSV, presentations as text, drawings as PNG)
//! and downloads anything else, as text when it is text (or JSON), else as a base64 blob.

use std::sync::Arc;

use base64::Engine;
use futures::FutureExt;
use reqwest::Method;
use rmcp::model::{
    CallToolResult, JsonObject, ReadResourceResult, Resource, ResourceContents, Tool,
};
use serde_json::{json, Value};

use crate::protocol::error::McpError;
use crate::servers::http::{Api, HttpServer, Upstream};
use crate::servers::kit::{answer, id_segment, required_text, text, tool};
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, Features, McpServer, RequestContext, ServerFuture, ServerInit};

/// guMCP's order of the tools, declared and coded alike.
const ORDER: [&str; 12] = [
    "search",
    "copy_file",
    "create_folder",
    "move_file",
    "create_file_from_text",
    "replace_file",
    "add_file_sharing_preference",
    "create_shortcut",
    "update_file_folder_name",
    "retrieve_files",
    "retrieve_file_or_folder_by_id",
    "delete_file",
];

const FILES: &str = "/drive/v3/files";
/// Files listed as resources: one page, Drive's list being read on every request.
const LISTED_FILES: &str = "100";
const UPLOADS: &str = "/upload/drive/v3/files";

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    let declared = HttpServer::new(init.manifest.clone(), init.upstream.clone());
    let mut tools = coded_tools();
    tools.extend(declared.tools());
    tools.sort_by_key(|tool| ORDER.iter().position(|name| *name == tool.name));
    Arc::new(Gdrive {
        manifest: init.manifest,
        upstream: init.upstream,
        declared,
        tools,
    })
}

struct Gdrive {
    manifest: Arc<Manifest>,
    upstream: Upstream,
    /// The tools `server.toml` declares, run by the `http` engine.
    declared: HttpServer,
    tools: Vec<Tool>,
}

fn string(description: &str) -> Value {
    json!({ "type": "string", "description": description })
}

fn coded_tools() -> Vec<Tool> {
    vec![
        tool(
            "search",
            "Search for files in Google Drive",
            json!({
                "type": "object",
                "properties": { "query": string("Search query") },
                "required": ["query"]
            }),
        ),
        tool(
            "move_file",
            "Move a file from one folder to another.",
            json!({
                "type": "object",
                "properties": {
                    "file_id": string("ID of the file to move"),
                    "folder_id": string("ID of the destination folder"),
                    "remove_parents": { "type": "boolean", "description": "Whether to remove the file from its current parent folders (optional; default: true)" }
                },
                "required": ["file_id", "folder_id"]
            }),
        ),
        tool(
            "create_file_from_text",
            "Create a new file from plain text.",
            json!({
                "type": "object",
                "properties": {
                    "name": string("Name of the file to create"),
                    "content": string("Text content of the file"),
                    "mime_type": string("MIME type (default: text/plain)"),
                    "folder_id": string("Parent folder ID (optional)")
                },
                "required": ["name", "content"]
            }),
        ),
        tool(
            "replace_file",
            "Upload a file to Drive, that replaces an existing file.",
            json!({
                "type": "object",
                "properties": {
                    "file_id": string("ID of the file to replace"),
                    "url": string("URL of the new file content (http or https)"),
                    "mime_type": string("MIME type of the new content (optional; default: the file's)")
                },
                "required": ["file_id", "url"]
            }),
        ),
        tool(
            "add_file_sharing_preference",
            "Adds a sharing scope to the sharing preference of a file. Does not remove existing sharing settings. Provides a sharing URL.",
            json!({
                "type": "object",
                "properties": {
                    "file_id": string("ID of the file to share"),
                    "role": {
                        "type": "string",
                        "description": "Role to grant (reader, commenter, writer, fileOrganizer, organizer, owner)",
                        "enum": ["reader", "commenter", "writer", "fileOrganizer", "organizer", "owner"]
                    },
                    "type": {
                        "type": "string",
                        "description": "Type of sharing (user, group, domain, anyone)",
                        "enum": ["user", "group", "domain", "anyone"]
                    },
                    "email_address": string("Email address for user or group sharing (required for user/group types)"),
                    "domain": string("Domain for domain sharing (required for domain type)")
                },
                "required": ["file_id", "role", "type"]
            }),
        ),
        tool(
            "retrieve_files",
            "This action sends a GET request to the Google Drive API to retrieve a list of files based on specific query parameters.",
            json!({
                "type": "object",
                "properties": {
                    "query": string("Search query using Google Drive query syntax"),
                    "page_size": { "type": "integer", "minimum": 1, "maximum": 1000, "description": "Maximum number of files to return (optional; default: 10)" },
                    "order_by": string("Field to sort results by (optional)"),
                    "include_trashed": { "type": "boolean", "description": "Whether to include files in trash (optional)" }
                },
                "required": ["query"]
            }),
        ),
    ]
}

/// The kind a file's resource URI names, by its MIME type (guMCP's).
fn resource_kind(mime_type: &str) -> &'static str {
    match mime_type {
        "application/vnd.google-apps.folder" => "folder",
        "application/vnd.google-apps.document" => "document",
        "application/vnd.google-apps.spreadsheet" => "spreadsheet",
        "application/vnd.google-apps.presentation" => "presentation",
        _ => "file",
    }
}

/// The file id of a `gdrive://{kind}/{id}` URI.
fn resource_id(uri: &str) -> Option<&str> {
    let (_, id) = uri.strip_prefix("gdrive://")?.split_once('/')?;
    (!id.trim().is_empty() && !id.contains('/')).then_some(id)
}

/// What a Google format is exported as (guMCP's choices); `None` for a file to download.
fn export_type(mime_type: &str) -> Option<&'static str> {
    if !mime_type.starts_with("application/vnd.google-apps") {
        return None;
    }
    Some(match mime_type {
        "application/vnd.google-apps.document" => "text/markdown",
        "application/vnd.google-apps.spreadsheet" => "text/csv",
        "application/vnd.google-apps.drawing" => "image/png",
        _ => "text/plain",
    })
}

/// Whether content of this type is read as text.
fn is_text(mime_type: &str) -> bool {
    mime_type.starts_with("text/") || mime_type == "application/json"
}

/// Text as a Drive query string literal: backslashes and single quotes escaped.
fn drive_literal(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// A MIME type as a header value: refused if it could end its header line.
fn mime_type(value: &str) -> Result<&str, String> {
    if value.trim().is_empty() || value.chars().any(char::is_control) {
        return Err(format!("{value:?} is not a MIME type"));
    }
    Ok(value)
}

/// Drive's `multipart/related` upload body: the metadata as JSON, then the content; and its
/// content type, with a boundary of its own.
fn multipart(metadata: &Value, content_type: &str, content: &[u8]) -> (String, Vec<u8>) {
    let boundary = format!("gumcp-{}", uuid::Uuid::new_v4().simple());
    let mut body = format!(
        "--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{metadata}\r\n\
         --{boundary}\r\nContent-Type: {content_type}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/related; boundary={boundary}"), body)
}

/// retrieve_files' query: trashed files left out unless asked for or the query says.
fn files_query(query: &str, include_trashed: bool) -> String {
    if include_trashed || query.contains("trashed") {
        query.to_owned()
    } else {
        format!("{query} and trashed = false")
    }
}

/// The permission add_file_sharing_preference creates.
fn permission(arguments: &JsonObject) -> Result<Value, String> {
    let kind = required_text(arguments, "type")?;
    let mut permission = json!({ "role": required_text(arguments, "role")?, "type": kind });
    match kind {
        "user" | "group" => {
            if let Some(email) = text(arguments, "email_address") {
                permission["emailAddress"] = json!(email);
            }
        }
        "domain" => {
            if let Some(domain) = text(arguments, "domain") {
                permission["domain"] = json!(domain);
            }
        }
        _ => {}
    }
    Ok(permission)
}

impl Gdrive {
    fn api<'a>(&'a self, ctx: &'a RequestContext) -> Api<'a> {
        self.upstream.manifest_api(&self.manifest, ctx)
    }

    async fn search(&self, arguments: &JsonObject, ctx: &RequestContext) -> Result<Value, String> {
        let query = required_text(arguments, "query")?;
        let params = [
            ("q", format!("fullText contains {}", drive_literal(query))),
            ("pageSize", "10".to_owned()),
            (
                "fields",
                "files(id, name, mimeType, modifiedTime, size)".to_owned(),
            ),
        ];
        let found = self
            .api(ctx)
            .json(Method::GET, FILES, &params, None)
            .await?;
        Ok(found.get("files").cloned().unwrap_or(json!([])))
    }

    async fn move_file(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let path = format!(
            "{FILES}/{}",
            id_segment(required_text(arguments, "file_id")?)?
        );
        let folder = required_text(arguments, "folder_id")?;
        let remove = arguments
            .get("remove_parents")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let api = self.api(ctx);
        let mut query = vec![
            ("addParents", folder.to_owned()),
            ("fields", "id, parents".to_owned()),
        ];
        if remove {
            let file = api
                .json(
                    Method::GET,
                    &path,
                    &[("fields", "parents".to_owned())],
                    None,
                )
                .await?;
            let parents: Vec<&str> = file
                .get("parents")
                .and_then(Value::as_array)
                .map(|list| list.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if !parents.is_empty() {
                query.push(("removeParents", parents.join(",")));
            }
        }
        api.json(Method::PATCH, &path, &query, Some(&json!({})))
            .await
    }

    async fn create_file_from_text(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let content_type = mime_type(text(arguments, "mime_type").unwrap_or("text/plain"))?;
        let mut metadata = json!({
            "name": required_text(arguments, "name")?,
            "mimeType": content_type
        });
        if let Some(folder) = text(arguments, "folder_id") {
            metadata["parents"] = json!([folder]);
        }
        let content = required_text(arguments, "content")?;
        let (upload_type, body) = multipart(&metadata, content_type, content.as_bytes());
        let query = [
            ("uploadType", "multipart".to_owned()),
            ("fields", "id, name, parents, mimeType".to_owned()),
        ];
        self.api(ctx)
            .upload(Method::POST, UPLOADS, &query, &upload_type, &body)
            .await
    }

    async fn replace_file(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let id = id_segment(required_text(arguments, "file_id")?)?;
        let fetched = self
            .upstream
            .fetch_file(required_text(arguments, "url")?)
            .await?;
        let api = self.api(ctx);
        let content_type = match text(arguments, "mime_type") {
            Some(given) => mime_type(given)?.to_owned(),
            None => {
                let file = api
                    .json(
                        Method::GET,
                        &format!("{FILES}/{id}"),
                        &[("fields", "name,mimeType".to_owned())],
                        None,
                    )
                    .await?;
                file.get("mimeType")
                    .and_then(Value::as_str)
                    .unwrap_or("application/octet-stream")
                    .to_owned()
            }
        };
        let query = [
            ("uploadType", "media".to_owned()),
            ("fields", "id, name, mimeType".to_owned()),
        ];
        api.upload(
            Method::PATCH,
            &format!("{UPLOADS}/{id}"),
            &query,
            &content_type,
            &fetched.bytes,
        )
        .await
    }

    async fn add_file_sharing_preference(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let id = id_segment(required_text(arguments, "file_id")?)?;
        let api = self.api(ctx);
        let created = api
            .json(
                Method::POST,
                &format!("{FILES}/{id}/permissions"),
                &[("fields", "id, type, role".to_owned())],
                Some(&permission(arguments)?),
            )
            .await?;
        let file = api
            .json(
                Method::GET,
                &format!("{FILES}/{id}"),
                &[("fields", "webViewLink".to_owned())],
                None,
            )
            .await?;
        let link = file
            .get("webViewLink")
            .and_then(Value::as_str)
            .unwrap_or("Link not available");
        Ok(json!({ "permission": created, "webViewLink": link }))
    }

    async fn retrieve_files(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let include_trashed = arguments
            .get("include_trashed")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let page_size = arguments
            .get("page_size")
            .and_then(Value::as_u64)
            .unwrap_or(10);
        let mut query = vec![
            (
                "q",
                files_query(required_text(arguments, "query")?, include_trashed),
            ),
            ("pageSize", page_size.to_string()),
            (
                "fields",
                "files(id, name, mimeType, modifiedTime, size, parents, webViewLink)".to_owned(),
            ),
        ];
        if let Some(order) = text(arguments, "order_by") {
            query.push(("orderBy", order.to_owned()));
        }
        self.api(ctx).json(Method::GET, FILES, &query, None).await
    }
}

impl Gdrive {
    async fn files(&self, ctx: &RequestContext) -> Result<Vec<Resource>, String> {
        let query = [
            ("pageSize", LISTED_FILES.to_owned()),
            (
                "fields",
                "nextPageToken, files(id, name, mimeType)".to_owned(),
            ),
        ];
        let listed = self.api(ctx).json(Method::GET, FILES, &query, None).await?;
        let files = listed.get("files").and_then(Value::as_array);
        Ok(files
            .into_iter()
            .flatten()
            .filter_map(|file| {
                let id = file.get("id")?.as_str()?;
                let mime_type = file.get("mimeType").and_then(Value::as_str).unwrap_or("");
                let name = file.get("name").and_then(Value::as_str).unwrap_or(id);
                let uri = format!("gdrive://{}/{id}", resource_kind(mime_type));
                Some(Resource::new(uri, name).with_mime_type(mime_type))
            })
            .collect())
    }

    async fn read_file(
        &self,
        uri: &str,
        id: &str,
        ctx: &RequestContext,
    ) -> Result<ReadResourceResult, String> {
        let api = self.api(ctx);
        let path = format!("{FILES}/{}", id_segment(id)?);
        let file = api
            .json(
                Method::GET,
                &path,
                &[("fields", "mimeType".to_owned())],
                None,
            )
            .await?;
        let mime_type = file
            .get("mimeType")
            .and_then(Value::as_str)
            .unwrap_or("application/octet-stream")
            .to_owned();
        let (content_type, raw) = match export_type(&mime_type) {
            Some(exported) => {
                let query = [("mimeType", exported.to_owned())];
                let raw = api
                    .bytes(Method::GET, &format!("{path}/export"), &query)
                    .await?;
                (exported.to_owned(), raw)
            }
            None => {
                let query = [("alt", "media".to_owned())];
                (mime_type, api.bytes(Method::GET, &path, &query).await?)
            }
        };
        let contents = if is_text(&content_type) {
            ResourceContents::text(String::from_utf8_lossy(&raw.bytes), uri)
        } else {
            let encoded = base64::engine::general_purpose::STANDARD.encode(&raw.bytes);
            ResourceContents::blob(encoded, uri)
        };
        Ok(ReadResourceResult::new(vec![
            contents.with_mime_type(content_type)
        ]))
    }
}

impl McpServer for Gdrive {
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
        async move { self.files(ctx).await.map_err(McpError::internal) }.boxed()
    }

    fn read_resource<'a>(
        &'a self,
        uri: &'a str,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<ReadResourceResult, CallError>> {
        async move {
            let id = resource_id(uri).ok_or_else(|| CallError::ResourceNotFound(uri.into()))?;
            self.read_file(uri, id, ctx)
                .await
                .map_err(|why| McpError::internal(why).into())
        }
        .boxed()
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
            let outcome = match name {
                "search" => self.search(&arguments, ctx).await,
                "move_file" => self.move_file(&arguments, ctx).await,
                "create_file_from_text" => self.create_file_from_text(&arguments, ctx).await,
                "replace_file" => self.replace_file(&arguments, ctx).await,
                "add_file_sharing_preference" => {
                    self.add_file_sharing_preference(&arguments, ctx).await
                }
                "retrieve_files" => self.retrieve_files(&arguments, ctx).await,
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
    fn uploads_are_metadata_then_content_between_one_boundary() {
        let (content_type, body) = multipart(&json!({ "name": "a.txt" }), "text/plain", b"hi");
        let boundary = content_type
            .strip_prefix("multipart/related; boundary=")
            .unwrap();
        let body = String::from_utf8(body).unwrap();
        assert_eq!(
            body,
            format!(
                "--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{{\"name\":\"a.txt\"}}\r\n\
                 --{boundary}\r\nContent-Type: text/plain\r\n\r\nhi\r\n--{boundary}--\r\n"
            )
        );
        assert!(mime_type("text/plain\r\nX-Evil: 1").is_err());
    }

    #[test]
    fn resource_uris_name_the_kind_and_the_id() {
        assert_eq!(
            resource_kind("application/vnd.google-apps.folder"),
            "folder"
        );
        assert_eq!(resource_kind("application/pdf"), "file");
        assert_eq!(resource_id("gdrive://document/abc"), Some("abc"));
        for bad in [
            "gdrive://document/",
            "gdrive://x/a/b",
            "other://file/a",
            "gdrive://a",
        ] {
            assert_eq!(resource_id(bad), None, "{bad}");
        }
        assert_eq!(
            export_type("application/vnd.google-apps.document"),
            Some("text/markdown")
        );
        assert_eq!(export_type("application/pdf"), None);
    }

    #[test]
    fn trashed_files_are_left_out_unless_asked_for() {
        assert_eq!(
            files_query("name = 'a'", false),
            "name = 'a' and trashed = false"
        );
        assert_eq!(files_query("name = 'a'", true), "name = 'a'");
        assert_eq!(files_query("trashed = true", false), "trashed = true");
    }
}
