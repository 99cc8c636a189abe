//! reducto: Reducto's API with guMCP's eleven tools. Ten are declared in `server.toml`:
//! `parse_document`, `split_document` and `extract_data` start Reducto's asynchronous job and
//! follow it through the engine's `poll` (progress, cancellation), the `*_async` variants answer
//! with the job at once. `upload_document` is code: a file of this machine (inside
//! `servers.local_files_dir`) sent as `multipart/form-data`.

use std::sync::Arc;

use reqwest::Method;
use rmcp::model::{CallToolResult, JsonObject, Tool};
use serde_json::{json, Value};

use crate::servers::http::{HttpServer, Upstream};
use crate::servers::kit::{answer, required_text, text, tool};
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, Features, McpServer, RequestContext, ServerFuture, ServerInit};

/// Where guMCP lists `upload_document` among its tools.
const UPLOAD_AT: usize = 8;

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    let declared = HttpServer::new(init.manifest.clone(), init.upstream.clone());
    let mut tools = declared.tools();
    tools.insert(UPLOAD_AT.min(tools.len()), upload_tool());
    Arc::new(Reducto {
        manifest: init.manifest,
        upstream: init.upstream,
        declared,
        tools,
    })
}

struct Reducto {
    manifest: Arc<Manifest>,
    upstream: Upstream,
    /// The tools but upload_document, run by the `http` engine.
    declared: HttpServer,
    tools: Vec<Tool>,
}

fn upload_tool() -> Tool {
    tool(
        "upload_document",
        "Upload a document to Reducto; answers its reducto:// file id, for the other tools' document_url",
        json!({
            "type": "object",
            "properties": {
                "file_path": { "type": "string", "description": "Path of the file to upload, inside this machine's local files folder (servers.local_files_dir)" },
                "extension": { "type": "string", "description": "File extension to use" }
            },
            "required": ["file_path"]
        }),
    )
}

/// A `multipart/form-data` body holding one file field, and its content type.
fn form_with_file(file_name: &str, content: &[u8]) -> (String, Vec<u8>) {
    let boundary = format!("gumcp-{}", uuid::Uuid::new_v4().simple());
    // The name travels inside a quoted header parameter: no quote or line break may end it.
    let name: String = file_name
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| if c == '"' { '_' } else { c })
        .collect();
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

impl Reducto {
    async fn upload(&self, arguments: &JsonObject, ctx: &RequestContext) -> Result<Value, String> {
        let given = required_text(arguments, "file_path")?;
        let bytes = self.upstream.read_local_file(given, "file_path").await?;
        let file_name = std::path::Path::new(given)
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| "document".to_owned());
        let (content_type, body) = form_with_file(&file_name, &bytes);
        let query: Vec<(&str, String)> = text(arguments, "extension")
            .map(|extension| ("extension", extension.to_owned()))
            .into_iter()
            .collect();
        self.upstream
            .manifest_api(&self.manifest, ctx)
            .upload(Method::POST, "/upload", &query, &content_type, &body)
            .await
    }
}

impl McpServer for Reducto {
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
        if name != "upload_document" {
            return self.declared.call_tool(name, arguments, ctx);
        }
        Box::pin(async move { Ok(answer(self.upload(&arguments, ctx).await)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_one_form_field_whose_name_cannot_break_its_header() {
        let (content_type, body) = form_with_file("a\"b\r\n.pdf", b"%PDF");
        let boundary = content_type
            .strip_prefix("multipart/form-data; boundary=")
            .unwrap();
        let body = String::from_utf8(body).unwrap();
        assert!(body.starts_with(&format!("--{boundary}\r\n")));
        assert!(body.contains("name=\"file\"; filename=\"a_b.pdf\"\r\n"));
        assert!(body.ends_with(&format!("\r\n\r\n%PDF\r\n--{boundary}--\r\n")));
    }
}
