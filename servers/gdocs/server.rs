//! gdocs: Google Docs (Docs API v1, and Drive v3 to find and create documents) with guMCP's five
//! tools, names and arguments, and its resources. read_doc is one call and is declared in
//! `server.toml`; this code hands it to the runtime's `http` engine. The rest need code:
//! search_docs quotes the search text into a Drive query (backslashes and quotes escaped, so
//! the text cannot change the query) and answers guMCP's listing, with the files as structured
//! content; create_doc creates the document in Drive, then writes its text; append_to_doc and
//! update_doc read the document first to find where its text ends (update_doc deletes nothing
//! from an empty document, where guMCP asked Docs to delete an empty range and failed).
//!
//! Resources are guMCP's: each Google Doc is `gdocs://document/{id}`, read as its plain text
//! (paragraphs, tables and tables of contents). The runtime's `Api` does the credentials, the
//! refresh-and-retry on 401 and the wording of upstream failures.

use std::sync::Arc;

use futures::FutureExt;
use reqwest::Method;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject, ReadResourceResult, Resource, Tool};
use serde_json::{json, Value};

use crate::protocol::error::McpError;
use crate::servers::http::{Api, HttpServer, Upstream};
use crate::servers::kit::{answer, id_segment, required_text, text_resource, tool, tool_error};
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, Features, McpServer, RequestContext, ServerFuture, ServerInit};

/// guMCP's order of the tools, declared and coded alike.
const ORDER: [&str; 5] = [
    "search_docs",
    "read_doc",
    "create_doc",
    "append_to_doc",
    "update_doc",
];

/// The Drive API, which finds and creates documents. A configured base URL for this server
/// replaces it too (`Upstream::api`), so a proxy or stub must serve both APIs.
const DRIVE_BASE_URL: &str = "https://www.googleapis.com/drive/v3";
const DOCUMENT_MIME: &str = "application/vnd.google-apps.document";
/// What every document resource's URI starts with; the document id follows.
const DOCUMENT_URI: &str = "gdocs://document/";
/// Documents listed as resources, as many as guMCP's one page.
const LISTED_DOCUMENTS: &str = "20";

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    let declared = HttpServer::new(init.manifest.clone(), init.upstream.clone());
    let mut tools = coded_tools();
    tools.extend(declared.tools());
    tools.sort_by_key(|tool| ORDER.iter().position(|name| *name == tool.name));
    Arc::new(Gdocs {
        manifest: init.manifest,
        upstream: init.upstream,
        declared,
        tools,
    })
}

struct Gdocs {
    manifest: Arc<Manifest>,
    upstream: Upstream,
    /// The tools `server.toml` declares, run by the `http` engine.
    declared: HttpServer,
    tools: Vec<Tool>,
}

fn coded_tools() -> Vec<Tool> {
    let doc_id = json!({ "type": "string", "description": "Document ID" });
    vec![
        tool(
            "search_docs",
            "Search for Google Docs in Drive",
            json!({
                "type": "object",
                "properties": { "query": { "type": "string", "description": "Search query" } },
                "required": ["query"]
            }),
        ),
        tool(
            "create_doc",
            "Create a new Google Doc",
            json!({
                "type": "object",
                "properties": {
                    "title": { "type": "string", "description": "Document title" },
                    "content": { "type": "string", "description": "Document content" }
                },
                "required": ["title", "content"]
            }),
        ),
        tool(
            "append_to_doc",
            "Append content to an existing Google Doc",
            json!({
                "type": "object",
                "properties": {
                    "doc_id": doc_id,
                    "content": { "type": "string", "description": "Content to append" }
                },
                "required": ["doc_id", "content"]
            }),
        ),
        tool(
            "update_doc",
            "Update content in an existing Google Doc",
            json!({
                "type": "object",
                "properties": {
                    "doc_id": doc_id,
                    "content": { "type": "string", "description": "New document content" }
                },
                "required": ["doc_id", "content"]
            }),
        ),
    ]
}

/// Text as a Drive query string literal: backslashes and single quotes escaped.
pub(crate) fn drive_literal(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Where a document's text ends: the largest `endIndex` of its body (1 when it has none).
fn end_index(document: &Value) -> i64 {
    document
        .pointer("/body/content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|element| element.get("endIndex").and_then(Value::as_i64))
        .fold(1, i64::max)
}

/// The plain text of a document's structural elements.
fn plain_text(elements: &[Value], out: &mut String) {
    for element in elements {
        if let Some(parts) = element
            .pointer("/paragraph/elements")
            .and_then(Value::as_array)
        {
            for part in parts {
                if let Some(text) = part.pointer("/textRun/content").and_then(Value::as_str) {
                    out.push_str(text);
                }
            }
        } else if let Some(rows) = element
            .pointer("/table/tableRows")
            .and_then(Value::as_array)
        {
            for cell in rows
                .iter()
                .filter_map(|row| row.get("tableCells").and_then(Value::as_array))
                .flatten()
            {
                let content = cell.get("content").and_then(Value::as_array);
                plain_text(content.map(Vec::as_slice).unwrap_or_default(), out);
            }
        } else if let Some(content) = element
            .pointer("/tableOfContents/content")
            .and_then(Value::as_array)
        {
            plain_text(content, out);
        }
    }
}

/// guMCP's sentence about a document it wrote to.
fn document_links(doc_id: &str) -> String {
    format!(
        "Resource URI: {DOCUMENT_URI}{doc_id}\nDocument link: https://docs.google.com/document/d/{doc_id}/edit"
    )
}

impl Gdocs {
    fn docs<'a>(&'a self, ctx: &'a RequestContext) -> Api<'a> {
        self.upstream.manifest_api(&self.manifest, ctx)
    }

    fn drive<'a>(&'a self, ctx: &'a RequestContext) -> Api<'a> {
        self.upstream.api(&self.manifest, DRIVE_BASE_URL, ctx)
    }

    async fn search_docs(&self, arguments: &JsonObject, ctx: &RequestContext) -> CallToolResult {
        let query = match required_text(arguments, "query") {
            Ok(query) => query,
            Err(why) => return tool_error(why),
        };
        let search = format!(
            "mimeType='{DOCUMENT_MIME}' and fullText contains {}",
            drive_literal(query)
        );
        let params = [
            ("q", search),
            ("pageSize", "10".to_owned()),
            ("fields", "files(id, name, modifiedTime)".to_owned()),
        ];
        let found = match self
            .drive(ctx)
            .json(Method::GET, "/files", &params, None)
            .await
        {
            Ok(found) => found,
            Err(why) => return tool_error(why),
        };
        let files = found
            .get("files")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let field = |file: &Value, key: &str| {
            file.get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let lines: Vec<String> = files
            .iter()
            .map(|file| {
                format!(
                    "{} (URI: {DOCUMENT_URI}{}, Modified: {})",
                    field(file, "name"),
                    field(file, "id"),
                    field(file, "modifiedTime")
                )
            })
            .collect();
        let text = format!(
            "Found {} Google Docs matching '{query}':\n{}",
            files.len(),
            lines.join("\n")
        );
        let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
        result.structured_content = Some(json!({ "files": files }));
        result
    }

    async fn create_doc(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let title = required_text(arguments, "title")?;
        let content = required_text(arguments, "content")?;
        let metadata = json!({ "name": title, "mimeType": DOCUMENT_MIME });
        let created = self
            .drive(ctx)
            .json(Method::POST, "/files", &[], Some(&metadata))
            .await?;
        let doc_id = created
            .get("id")
            .and_then(Value::as_str)
            .ok_or("Drive created the document but named no id")?;
        let requests = json!({ "requests": [
            { "insertText": { "location": { "index": 1 }, "text": content } }
        ] });
        self.batch_update(ctx, doc_id, &requests).await?;
        Ok(Value::String(format!(
            "Created new Google Doc '{title}'\n{}",
            document_links(doc_id)
        )))
    }

    async fn append_to_doc(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let doc_id = required_text(arguments, "doc_id")?;
        let content = required_text(arguments, "content")?;
        let end = end_index(&self.document(ctx, doc_id).await?);
        let requests = json!({ "requests": [
            { "insertText": { "location": { "index": (end - 1).max(1) }, "text": format!("\n{content}") } }
        ] });
        self.batch_update(ctx, doc_id, &requests).await?;
        Ok(Value::String(format!(
            "Successfully appended content to Google Doc\n{}",
            document_links(doc_id)
        )))
    }

    async fn update_doc(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let doc_id = required_text(arguments, "doc_id")?;
        let content = required_text(arguments, "content")?;
        let end = end_index(&self.document(ctx, doc_id).await?);
        let mut requests = Vec::new();
        if end - 1 > 1 {
            requests.push(json!({ "deleteContentRange": { "range": { "startIndex": 1, "endIndex": end - 1 } } }));
        }
        requests.push(json!({ "insertText": { "location": { "index": 1 }, "text": content } }));
        self.batch_update(ctx, doc_id, &json!({ "requests": requests }))
            .await?;
        Ok(Value::String(format!(
            "Successfully updated Google Doc\n{}",
            document_links(doc_id)
        )))
    }

    async fn document(&self, ctx: &RequestContext, doc_id: &str) -> Result<Value, String> {
        let path = format!("/documents/{}", id_segment(doc_id)?);
        self.docs(ctx).json(Method::GET, &path, &[], None).await
    }

    async fn batch_update(
        &self,
        ctx: &RequestContext,
        doc_id: &str,
        requests: &Value,
    ) -> Result<Value, String> {
        let path = format!("/documents/{}:batchUpdate", id_segment(doc_id)?);
        self.docs(ctx)
            .json(Method::POST, &path, &[], Some(requests))
            .await
    }

    async fn documents(&self, ctx: &RequestContext) -> Result<Vec<Resource>, String> {
        let params = [
            ("pageSize", LISTED_DOCUMENTS.to_owned()),
            (
                "fields",
                "nextPageToken, files(id, name, mimeType)".to_owned(),
            ),
            ("q", format!("mimeType='{DOCUMENT_MIME}'")),
        ];
        let listed = self
            .drive(ctx)
            .json(Method::GET, "/files", &params, None)
            .await?;
        let files = listed
            .get("files")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        Ok(files
            .iter()
            .filter_map(|file| {
                let id = file.get("id")?.as_str()?;
                let name = file.get("name").and_then(Value::as_str).unwrap_or(id);
                Some(
                    Resource::new(format!("{DOCUMENT_URI}{id}"), name)
                        .with_mime_type(DOCUMENT_MIME),
                )
            })
            .collect())
    }
}

impl McpServer for Gdocs {
    fn features(&self) -> Features {
        Features {
            resources: true,
            ..Features::default()
        }
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
        if self.declared.declares(name) {
            return self.declared.call_tool(name, arguments, ctx);
        }
        Box::pin(async move {
            Ok(match name {
                "search_docs" => self.search_docs(&arguments, ctx).await,
                "create_doc" => answer(self.create_doc(&arguments, ctx).await),
                "append_to_doc" => answer(self.append_to_doc(&arguments, ctx).await),
                "update_doc" => answer(self.update_doc(&arguments, ctx).await),
                _ => return Err(McpError::invalid_params(format!("Unknown tool: {name}")).into()),
            })
        })
    }

    fn list_resources<'a>(
        &'a self,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<Vec<Resource>, McpError>> {
        async move { self.documents(ctx).await.map_err(McpError::internal) }.boxed()
    }

    fn read_resource<'a>(
        &'a self,
        uri: &'a str,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<ReadResourceResult, CallError>> {
        async move {
            let doc_id = uri
                .strip_prefix(DOCUMENT_URI)
                .filter(|id| !id.trim().is_empty() && !id.contains('/'))
                .ok_or_else(|| CallError::ResourceNotFound(uri.into()))?;
            let document = self
                .document(ctx, doc_id)
                .await
                .map_err(McpError::internal)?;
            let mut text = String::new();
            let content = document.pointer("/body/content").and_then(Value::as_array);
            plain_text(content.map(Vec::as_slice).unwrap_or_default(), &mut text);
            Ok(text_resource(uri, text, "text/plain"))
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_text_cannot_leave_its_quotes() {
        assert_eq!(drive_literal(r"it's a \ test"), r"'it\'s a \\ test'");
    }

    #[test]
    fn text_is_read_from_paragraphs_tables_and_contents() {
        let body = json!([
            { "endIndex": 7, "paragraph": { "elements": [{ "textRun": { "content": "Title\n" } }] } },
            { "endIndex": 20, "table": { "tableRows": [{ "tableCells": [
                { "content": [{ "paragraph": { "elements": [{ "textRun": { "content": "cell\n" } }] } }] }
            ] }] } }
        ]);
        let mut text = String::new();
        plain_text(body.as_array().unwrap(), &mut text);
        assert_eq!(text, "Title\ncell\n");
        assert_eq!(end_index(&json!({ "body": { "content": body } })), 20);
        assert_eq!(end_index(&json!({})), 1);
    }
}
