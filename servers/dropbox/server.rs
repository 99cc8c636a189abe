//! dropbox: Dropbox's API v2 with guMCP's nine tools, names and arguments. list_files, delete,
//! search and get_file_metadata are one RPC call each, declared in `server.toml` and handed to
//! the runtime's `http` engine. The other five are code: create_folder and move join a folder
//! and a name into one Dropbox path; get_user_info sends Dropbox's `null` argument; upload_file
//! and download use the content endpoints (`https://content.dropboxapi.com`), which take their
//! argument as JSON in the `Dropbox-API-Arg` header (ASCII only: other characters escaped)
//! and the file as the body or the answer. Files of this machine are read and written only
//! inside `servers.local_files_dir` (`Upstream::local_file`). The runtime's `Api` does the
//! credentials, the refresh-and-retry on 401 and the wording of upstream failures.

use std::sync::Arc;

use reqwest::Method;
use rmcp::model::{CallToolResult, JsonObject, Tool};
use serde::Serialize;
use serde_json::{json, Value};

use crate::servers::http::{Api, HttpServer, Upstream};
use crate::servers::kit::{answer, required_text, text, tool};
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, McpServer, RequestContext, ServerFuture, ServerInit};

/// guMCP's order of the tools, declared and coded alike.
const ORDER: [&str; 9] = [
    "list_files",
    "upload_file",
    "create_folder",
    "delete",
    "download",
    "search",
    "move",
    "get_user_info",
    "get_file_metadata",
];

/// Where Dropbox serves file contents (the RPC endpoints are at the manifest's base URL); a
/// configured base URL for the server stands for both.
const CONTENT_HOST: &str = "https://content.dropboxapi.com";

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    let declared = HttpServer::new(init.manifest.clone(), init.upstream.clone());
    let mut tools = coded_tools();
    tools.extend(declared.tools());
    tools.sort_by_key(|tool| ORDER.iter().position(|name| *name == tool.name));
    Arc::new(Dropbox {
        manifest: init.manifest,
        upstream: init.upstream,
        declared,
        tools,
    })
}

struct Dropbox {
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
            "upload_file",
            "Upload a file to a specific directory in Dropbox",
            json!({
                "type": "object",
                "properties": {
                    "dropbox_path": string("The path to the directory to upload the file to, root directory is \"\" (also taken as `path`)"),
                    "file_path": string("The path to the file to upload, inside this machine's local files folder (servers.local_files_dir)"),
                    "file_name": string("The name of the file to upload"),
                    "mode": { "type": "string", "description": "The mode to upload the file in", "enum": ["overwrite", "add"], "default": "add" }
                },
                "required": ["path", "file_path", "file_name"]
            }),
        ),
        tool(
            "create_folder",
            "Create a folder in a specific directory in Dropbox",
            json!({
                "type": "object",
                "properties": {
                    "folder_name": string("The name of the folder to create"),
                    "path": string("The path to the directory to create the folder in, root directory is \"\"")
                },
                "required": ["folder_name", "path"]
            }),
        ),
        tool(
            "download",
            "Download a file from a specific directory in Dropbox",
            json!({
                "type": "object",
                "properties": {
                    "path": string("The path to the file to download"),
                    "local_path": string("The local directory to save the file to, inside this machine's local files folder (servers.local_files_dir)"),
                    "file_name": string("The name of the file to download")
                },
                "required": ["path", "local_path", "file_name"]
            }),
        ),
        tool(
            "move",
            "Move a file or a folder to a specific directory in Dropbox",
            json!({
                "type": "object",
                "properties": {
                    "from_path": string("The path to the file or folder to move"),
                    "to_path": string("The path to the directory to move the file or folder to, root directory is \"\""),
                    "file_name": string("The name of the file or folder to move")
                },
                "required": ["from_path", "to_path", "file_name"]
            }),
        ),
        tool(
            "get_user_info",
            "Get information about the current user",
            json!({ "type": "object", "properties": {}, "required": [] }),
        ),
    ]
}

/// `name` inside the folder `folder` (`""` or `/` is the root).
fn joined(folder: &str, name: &str) -> String {
    format!(
        "{}/{}",
        folder.trim_end_matches('/'),
        name.trim_start_matches('/')
    )
}

/// A content endpoint's argument as the `Dropbox-API-Arg` header takes it: JSON with every
/// character outside ASCII escaped (`\uXXXX`, UTF-16), since header values are bytes.
fn api_arg(argument: &impl Serialize) -> Result<String, String> {
    let text = serde_json::to_string(argument).map_err(|err| err.to_string())?;
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        if character.is_ascii() {
            escaped.push(character);
        } else {
            let mut units = [0u16; 2];
            for unit in character.encode_utf16(&mut units) {
                escaped.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    Ok(escaped)
}

#[derive(Serialize)]
struct UploadArg<'a> {
    path: &'a str,
    mode: &'a str,
}

#[derive(Serialize)]
struct DownloadArg<'a> {
    path: &'a str,
}

impl Dropbox {
    fn api<'a>(&'a self, ctx: &'a RequestContext) -> Api<'a> {
        self.upstream.manifest_api(&self.manifest, ctx)
    }

    fn content<'a>(&'a self, ctx: &'a RequestContext) -> Api<'a> {
        self.upstream.api(&self.manifest, CONTENT_HOST, ctx)
    }

    async fn upload_file(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let folder = text(arguments, "dropbox_path")
            .or_else(|| text(arguments, "path"))
            .unwrap_or_default();
        let destination = joined(folder, required_text(arguments, "file_name")?);
        let mode = match text(arguments, "mode") {
            Some("overwrite") => "overwrite",
            _ => "add",
        };
        let bytes = self
            .upstream
            .read_local_file(required_text(arguments, "file_path")?, "file_path")
            .await?;
        let argument = api_arg(&UploadArg {
            path: &destination,
            mode,
        })?;
        self.content(ctx)
            .header("Dropbox-API-Arg", argument)
            .upload(
                Method::POST,
                "/2/files/upload",
                &[],
                "application/octet-stream",
                &bytes,
            )
            .await
    }

    async fn download(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let path = required_text(arguments, "path")?;
        let file_name = required_text(arguments, "file_name")?;
        let folder = self
            .upstream
            .local_file(required_text(arguments, "local_path")?)?;
        make_folder(folder.clone()).await?;
        let target = self
            .upstream
            .local_file(&folder.join(file_name).to_string_lossy())?;
        let argument = api_arg(&DownloadArg { path })?;
        let file = self
            .content(ctx)
            .header("Dropbox-API-Arg", argument)
            .bytes(Method::POST, "/2/files/download", &[])
            .await?;
        let size = file.bytes.len();
        write_local(target.clone(), file.bytes).await?;
        Ok(json!(format!(
            "Successfully downloaded {path} ({size} bytes) to: {}",
            target.display()
        )))
    }

    async fn create_folder(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let path = joined(
            required_text(arguments, "path")?,
            required_text(arguments, "folder_name")?,
        );
        let body = json!({ "path": path, "autorename": true });
        let created = self
            .api(ctx)
            .json(Method::POST, "/2/files/create_folder_v2", &[], Some(&body))
            .await?;
        Ok(created.get("metadata").cloned().unwrap_or(created))
    }

    async fn move_item(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let body = json!({
            "from_path": required_text(arguments, "from_path")?,
            "to_path": joined(
                required_text(arguments, "to_path")?,
                required_text(arguments, "file_name")?,
            ),
        });
        let moved = self
            .api(ctx)
            .json(Method::POST, "/2/files/move_v2", &[], Some(&body))
            .await?;
        Ok(moved.get("metadata").cloned().unwrap_or(moved))
    }

    async fn get_user_info(&self, ctx: &RequestContext) -> Result<Value, String> {
        self.api(ctx)
            .json(
                Method::POST,
                "/2/users/get_current_account",
                &[],
                Some(&Value::Null),
            )
            .await
    }
}

/// Makes the local folder a download goes to (guMCP made it too), off the async threads.
async fn make_folder(folder: std::path::PathBuf) -> Result<(), String> {
    let made = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&folder)
            .map_err(|err| format!("the local folder could not be made: {err}"))
    });
    made.await.map_err(|err| err.to_string())?
}

/// Writes `bytes` to a local file, off the async threads.
async fn write_local(path: std::path::PathBuf, bytes: Vec<u8>) -> Result<(), String> {
    let written = tokio::task::spawn_blocking(move || {
        std::fs::write(&path, bytes).map_err(|err| format!("the file could not be saved: {err}"))
    });
    written.await.map_err(|err| err.to_string())?
}

impl McpServer for Dropbox {
    fn tools(&self) -> Vec<Tool> {
        self.tools.clone()
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
                "upload_file" => self.upload_file(&arguments, ctx).await,
                "create_folder" => self.create_folder(&arguments, ctx).await,
                "download" => self.download(&arguments, ctx).await,
                "move" => self.move_item(&arguments, ctx).await,
                "get_user_info" => self.get_user_info(ctx).await,
                _ => {
                    return Err(crate::protocol::error::McpError::invalid_params(format!(
                        "Unknown tool: {name}"
                    ))
                    .into())
                }
            };
            Ok(answer(outcome))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_join_their_folder_and_the_root_is_empty() {
        assert_eq!(joined("", "a.txt"), "/a.txt");
        assert_eq!(joined("/", "a.txt"), "/a.txt");
        assert_eq!(joined("/Docs/", "a.txt"), "/Docs/a.txt");
    }

    #[test]
    fn header_arguments_are_ascii() {
        let arg = api_arg(&DownloadArg {
            path: "/Café/😀.txt",
        })
        .unwrap();
        assert_eq!(arg, r#"{"path":"/Caf\u00e9/\ud83d\ude00.txt"}"#);
    }
}
