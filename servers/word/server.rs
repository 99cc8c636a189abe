//! word: Word documents (.docx) in the user's OneDrive through Microsoft Graph (v1.0), with
//! guMCP's seven tools, names and arguments, on the Microsoft identity platform provider.
//! Every tool is code. A document is a zip archive whose `word/document.xml` holds the text:
//! create_document builds a minimal one, read_document takes the text of its paragraphs (runs'
//! text, breaks and tabs), write_document appends a paragraph at the end of the body and keeps
//! every other part as it was. Content is read through the item's pre-authenticated download
//! URL (`Upstream::fetch_file`: no credentials, and the shared client follows no redirects),
//! within `servers.max_response_bytes`, and the document part is read within the same bound
//! (a small archive cannot unpack without end). Answers are guMCP's JSON objects; the lists
//! answer one block per document. The runtime's `Api` does the credentials, the
//! refresh-and-retry on 401 and the wording of upstream failures.
//!
//! Resources are guMCP's: the Word documents Graph's search finds (50) as `word://file/{id}`,
//! read as the document's details in JSON (name, links, dates, size, download URL).

use std::io::{Cursor, Read, Write};
use std::sync::Arc;

use futures::FutureExt;
use reqwest::Method;
use rmcp::model::{CallToolResult, JsonObject, ReadResourceResult, Resource, Tool};
use serde_json::{json, Value};

use crate::protocol::error::McpError;
use crate::servers::http::{Api, Upstream};
use crate::servers::kit::{answer, id_segment, required_text, segment, text, text_resource, tool};
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, Features, McpServer, RequestContext, ServerFuture, ServerInit};

const DOCX_MIME: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
const LISTED_FIELDS: &str = "id,name,webUrl,lastModifiedDateTime,size,createdDateTime,file";
/// What every document resource's URI starts with; the file id follows.
const FILE_URI: &str = "word://file/";
/// Documents listed as resources, as many as guMCP's.
const LISTED_DOCUMENTS: u64 = 50;
/// The part of a .docx that holds the body.
const DOCUMENT_PART: &str = "word/document.xml";

const CONTENT_TYPES: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#;
const PACKAGE_RELS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>"#;
const DOCUMENT_START: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>"#;
const DOCUMENT_END: &str = "</w:body></w:document>";

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    Arc::new(Word {
        manifest: init.manifest,
        upstream: init.upstream,
    })
}

struct Word {
    manifest: Arc<Manifest>,
    upstream: Upstream,
}

fn file_id() -> Value {
    json!({ "type": "string", "description": "ID of the Word document" })
}

fn tools() -> Vec<Tool> {
    vec![
        tool(
            "list_documents",
            "List Word documents from OneDrive",
            json!({
                "type": "object",
                "properties": {
                    "limit": { "type": "integer", "minimum": 1, "maximum": 1000, "default": 50, "description": "Maximum number of documents to return" },
                    "query": { "type": "string", "description": "Optional search query to filter documents (defaults to all .docx files)" }
                }
            }),
        ),
        tool(
            "create_document",
            "Create a new Word document in OneDrive",
            json!({
                "type": "object",
                "properties": {
                    "name": { "type": "string", "description": "Name for the new document (will add .docx extension if not included)" },
                    "content": { "type": "string", "description": "Content to write to the document (optional, default is empty)" },
                    "folder_path": { "type": "string", "description": "Path to folder in OneDrive (optional, defaults to root)" }
                },
                "required": ["name"]
            }),
        ),
        tool(
            "read_document",
            "Read text content from a Word document",
            json!({ "type": "object", "properties": { "file_id": file_id() }, "required": ["file_id"] }),
        ),
        tool(
            "write_document",
            "Append content to an existing Word document",
            json!({
                "type": "object",
                "properties": {
                    "file_id": file_id(),
                    "content": { "type": "string", "description": "Content to append to the document" }
                },
                "required": ["file_id", "content"]
            }),
        ),
        tool(
            "search_documents",
            "Search for Word documents by content",
            json!({
                "type": "object",
                "properties": {
                    "query": { "type": "string", "description": "Search query to find documents containing this content" },
                    "limit": { "type": "integer", "minimum": 1, "maximum": 1000, "default": 25, "description": "Maximum number of documents to return" }
                },
                "required": ["query"]
            }),
        ),
        tool(
            "download_document",
            "Get a download URL for a Word document",
            json!({ "type": "object", "properties": { "file_id": file_id() }, "required": ["file_id"] }),
        ),
        tool(
            "delete_document",
            "Delete a Word document from OneDrive",
            json!({ "type": "object", "properties": { "file_id": file_id() }, "required": ["file_id"] }),
        ),
    ]
}

/// Text escaped for XML content.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// XML text content unescaped (the five predefined entities; others are kept as written).
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// One paragraph holding `text`, its line breaks as breaks.
fn paragraph(text: &str) -> String {
    let runs: Vec<String> = text
        .split('\n')
        .map(|line| format!(r#"<w:t xml:space="preserve">{}</w:t>"#, escape(line)))
        .collect();
    format!("<w:p><w:r>{}</w:r></w:p>", runs.join("<w:br/>"))
}

/// A new document holding `content` (no paragraph when empty), as a .docx archive.
fn new_docx(content: &str) -> Result<Vec<u8>, String> {
    let body = if content.is_empty() {
        String::new()
    } else {
        paragraph(content)
    };
    let document = format!("{DOCUMENT_START}{body}{DOCUMENT_END}");
    let mut archive = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, text) in [
        ("[Content_Types].xml", CONTENT_TYPES),
        ("_rels/.rels", PACKAGE_RELS),
        (DOCUMENT_PART, document.as_str()),
    ] {
        archive
            .start_file(name, stored)
            .and_then(|()| archive.write_all(text.as_bytes()).map_err(Into::into))
            .map_err(|err| format!("the document could not be built: {err}"))?;
    }
    archive
        .finish()
        .map(Cursor::into_inner)
        .map_err(|err| format!("the document could not be built: {err}"))
}

/// The document part of a .docx, read within `limit` bytes.
fn document_xml(docx: &[u8], limit: usize) -> Result<String, String> {
    let not_word = |err: zip::result::ZipError| format!("the file is not a Word document: {err}");
    let mut archive = zip::ZipArchive::new(Cursor::new(docx)).map_err(not_word)?;
    let part = archive.by_name(DOCUMENT_PART).map_err(not_word)?;
    let mut xml = String::new();
    let read = part
        .take(limit as u64 + 1)
        .read_to_string(&mut xml)
        .map_err(|err| format!("the document could not be read: {err}"))?;
    if read > limit {
        return Err(format!(
            "the document's text is larger than servers.max_response_bytes ({limit} bytes)"
        ));
    }
    Ok(xml)
}

/// The text of a document's paragraphs, one line each (empty ones left out, as guMCP).
fn paragraphs_text(xml: &str) -> String {
    let mut paragraphs: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    let (mut in_run, mut in_text) = (false, false);
    let mut rest = xml;
    while let Some(open) = rest.find('<') {
        if in_text {
            if let Some(paragraph) = current.as_mut() {
                paragraph.push_str(&unescape(&rest[..open]));
            }
        }
        let Some(close) = rest[open..].find('>') else {
            break;
        };
        let tag = &rest[open + 1..open + close];
        rest = &rest[open + close + 1..];
        let closing = tag.starts_with('/');
        let empty = tag.ends_with('/');
        let name = tag
            .trim_start_matches('/')
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or_default();
        match name {
            "w:p" if closing => paragraphs.extend(current.take()),
            "w:p" if empty => paragraphs.push(String::new()),
            "w:p" => current = Some(String::new()),
            "w:r" => in_run = !closing && !empty,
            "w:t" => in_text = !closing && !empty,
            "w:br" | "w:cr" if in_run => current.iter_mut().for_each(|p| p.push('\n')),
            "w:tab" if in_run => current.iter_mut().for_each(|p| p.push('\t')),
            _ => {}
        }
    }
    paragraphs
        .into_iter()
        .filter(|paragraph| !paragraph.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The document XML with a paragraph of `content` at the end of its body (before the body's
/// section properties, which must stay last).
fn appended_xml(xml: &str, content: &str) -> Result<String, String> {
    let end = xml
        .rfind("</w:body>")
        .ok_or("the document has no body to append to")?;
    let last_paragraph = xml[..end].rfind("</w:p>").unwrap_or(0);
    let at = match xml[..end].rfind("<w:sectPr") {
        Some(section) if section >= last_paragraph => section,
        _ => end,
    };
    Ok(format!(
        "{}{}{}",
        &xml[..at],
        paragraph(content),
        &xml[at..]
    ))
}

/// The .docx with `content` appended: the document part rewritten, every other part copied
/// as it was.
fn append_docx(docx: &[u8], content: &str, limit: usize) -> Result<Vec<u8>, String> {
    let xml = appended_xml(&document_xml(docx, limit)?, content)?;
    let broken = |err: zip::result::ZipError| format!("the document could not be rewritten: {err}");
    let mut source = zip::ZipArchive::new(Cursor::new(docx)).map_err(broken)?;
    let mut archive = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for index in 0..source.len() {
        let entry = source.by_index_raw(index).map_err(broken)?;
        let name = entry.name().map_err(broken)?.into_owned();
        if name == DOCUMENT_PART {
            drop(entry);
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored);
            archive.start_file(name, options).map_err(broken)?;
            archive
                .write_all(xml.as_bytes())
                .map_err(|err| format!("the document could not be rewritten: {err}"))?;
        } else {
            archive.raw_copy_file(entry).map_err(broken)?;
        }
    }
    archive.finish().map(Cursor::into_inner).map_err(broken)
}

/// guMCP's summary of a document of a list.
fn listed(item: &Value, with_sharepoint: bool) -> Value {
    let mut summary = json!({
        "id": item.get("id"),
        "name": item.get("name"),
        "web_url": item.get("webUrl"),
        "last_modified": item.get("lastModifiedDateTime"),
        "created": item.get("createdDateTime"),
        "size": item.get("size"),
    });
    if with_sharepoint {
        summary["is_sharepoint"] = json!(on_sharepoint(item));
    }
    summary
}

fn on_sharepoint(item: &Value) -> bool {
    item.get("webUrl")
        .and_then(Value::as_str)
        .is_some_and(|url| url.to_lowercase().contains("sharepoint"))
}

/// Whether a search hit is a Word document.
fn is_docx(item: &Value) -> bool {
    item.pointer("/file/mimeType").and_then(Value::as_str) == Some(DOCX_MIME)
        || item
            .get("name")
            .and_then(Value::as_str)
            .is_some_and(|name| name.to_lowercase().ends_with(".docx"))
}

/// The items path of a document.
fn item_path(arguments: &JsonObject) -> Result<String, String> {
    Ok(format!(
        "/me/drive/items/{}",
        id_segment(required_text(arguments, "file_id")?)?
    ))
}

/// A list answer: one block per document, or guMCP's `{"documents": []}` when none.
fn documents(found: Vec<Value>) -> Value {
    if found.is_empty() {
        json!({ "documents": [] })
    } else {
        Value::Array(found)
    }
}

impl Word {
    fn api<'a>(&'a self, ctx: &'a RequestContext) -> Api<'a> {
        self.upstream.manifest_api(&self.manifest, ctx)
    }

    /// Documents matching `query` (Graph's search), Word documents only, at most `limit`.
    async fn search(
        &self,
        ctx: &RequestContext,
        query: &str,
        limit: u64,
    ) -> Result<Vec<Value>, String> {
        let literal = segment(&format!("'{}'", query.replace('\'', "''")));
        let params = [
            ("$top", limit.to_string()),
            ("$select", LISTED_FIELDS.to_owned()),
        ];
        let found = self
            .api(ctx)
            .json(
                Method::GET,
                &format!("/me/drive/root/search(q={literal})"),
                &params,
                None,
            )
            .await?;
        Ok(found
            .get("value")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|item| is_docx(item))
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .cloned()
            .collect())
    }

    /// A document's metadata and its .docx bytes.
    async fn content(
        &self,
        ctx: &RequestContext,
        arguments: &JsonObject,
    ) -> Result<(Value, Vec<u8>), String> {
        let item = self
            .api(ctx)
            .json(Method::GET, &item_path(arguments)?, &[], None)
            .await?;
        let url = item
            .get("@microsoft.graph.downloadUrl")
            .and_then(Value::as_str)
            .ok_or("OneDrive gave no download URL for the document")?;
        let file = self.upstream.fetch_file(url).await?;
        Ok((item, file.bytes))
    }

    async fn list_documents(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let limit = arguments.get("limit").and_then(Value::as_u64).unwrap_or(50);
        let query = text(arguments, "query")
            .filter(|q| !q.trim().is_empty())
            .unwrap_or(".docx");
        let found = self.search(ctx, query, limit).await?;
        Ok(documents(
            found.iter().map(|item| listed(item, false)).collect(),
        ))
    }

    async fn search_documents(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let limit = arguments.get("limit").and_then(Value::as_u64).unwrap_or(25);
        let found = self
            .search(ctx, required_text(arguments, "query")?, limit)
            .await?;
        Ok(documents(
            found.iter().map(|item| listed(item, true)).collect(),
        ))
    }

    async fn create_document(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let mut name = required_text(arguments, "name")?.trim().to_owned();
        if !name.to_lowercase().ends_with(".docx") {
            name.push_str(".docx");
        }
        let content = text(arguments, "content").unwrap_or_default();
        let mut path: Vec<String> = Vec::new();
        for part in text(arguments, "folder_path")
            .unwrap_or_default()
            .split('/')
            .chain([name.as_str()])
            .filter(|part| !part.is_empty())
        {
            path.push(id_segment(part)?);
        }
        let created = self
            .api(ctx)
            .upload(
                Method::PUT,
                &format!("/me/drive/root:/{}:/content", path.join("/")),
                &[("@microsoft.graph.conflictBehavior", "rename".to_owned())],
                DOCX_MIME,
                &new_docx(content)?,
            )
            .await?;
        Ok(json!({
            "created_file_id": created.get("id"),
            "name": created.get("name"),
            "web_url": created.get("webUrl"),
            "content": content,
            "is_sharepoint": on_sharepoint(&created),
        }))
    }

    async fn read_document(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let (item, docx) = self.content(ctx, arguments).await?;
        let xml = document_xml(&docx, self.upstream.max_response_bytes)?;
        Ok(json!({
            "file_id": item.get("id"),
            "name": item.get("name"),
            "content": paragraphs_text(&xml),
            "size": item.get("size"),
            "last_modified": item.get("lastModifiedDateTime"),
        }))
    }

    async fn write_document(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let content = required_text(arguments, "content")?;
        let (item, docx) = self.content(ctx, arguments).await?;
        let updated = append_docx(&docx, content, self.upstream.max_response_bytes)?;
        let saved = self
            .api(ctx)
            .upload(
                Method::PUT,
                &format!("{}/content", item_path(arguments)?),
                &[],
                DOCX_MIME,
                &updated,
            )
            .await?;
        Ok(json!({
            "file_id": saved.get("id").or_else(|| item.get("id")),
            "name": saved.get("name").or_else(|| item.get("name")),
            "appended": true,
            "size": saved.get("size").or_else(|| item.get("size")),
            "content_preview": content,
        }))
    }

    async fn download_document(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let item = self
            .api(ctx)
            .json(Method::GET, &item_path(arguments)?, &[], None)
            .await?;
        Ok(json!({
            "file_id": item.get("id"),
            "name": item.get("name"),
            "url": item.get("@microsoft.graph.downloadUrl"),
            "size": item.get("size"),
            "web_url": item.get("webUrl"),
            "mime_type": DOCX_MIME,
        }))
    }

    async fn delete_document(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        self.api(ctx)
            .json(Method::DELETE, &item_path(arguments)?, &[], None)
            .await?;
        Ok(json!({
            "deleted": true,
            "file_id": required_text(arguments, "file_id")?,
            "success": true,
        }))
    }
}

impl McpServer for Word {
    fn features(&self) -> Features {
        Features {
            resources: true,
            ..Features::default()
        }
    }

    fn tools(&self) -> Vec<Tool> {
        tools()
    }

    fn list_resources<'a>(
        &'a self,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<Vec<Resource>, McpError>> {
        async move {
            let found = self
                .search(ctx, ".docx", LISTED_DOCUMENTS)
                .await
                .map_err(McpError::internal)?;
            Ok(found
                .iter()
                .filter_map(|item| {
                    let id = item.get("id")?.as_str()?;
                    let name = item.get("name").and_then(Value::as_str).unwrap_or(id);
                    Some(Resource::new(format!("{FILE_URI}{id}"), name).with_mime_type(DOCX_MIME))
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
            let id = uri
                .strip_prefix(FILE_URI)
                .and_then(|id| id_segment(id).ok())
                .filter(|id| !id.contains("%2F"))
                .ok_or_else(|| CallError::ResourceNotFound(uri.into()))?;
            let item = self
                .api(ctx)
                .json(Method::GET, &format!("/me/drive/items/{id}"), &[], None)
                .await
                .map_err(McpError::internal)?;
            let details = json!({
                "id": item.get("id"),
                "name": item.get("name"),
                "webUrl": item.get("webUrl"),
                "lastModifiedDateTime": item.get("lastModifiedDateTime"),
                "size": item.get("size"),
                "createdDateTime": item.get("createdDateTime"),
                "downloadUrl": item.get("@microsoft.graph.downloadUrl"),
            });
            let text = serde_json::to_string_pretty(&details).unwrap_or_default();
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
        Box::pin(async move {
            let outcome = match name {
                "list_documents" => self.list_documents(&arguments, ctx).await,
                "create_document" => self.create_document(&arguments, ctx).await,
                "read_document" => self.read_document(&arguments, ctx).await,
                "write_document" => self.write_document(&arguments, ctx).await,
                "search_documents" => self.search_documents(&arguments, ctx).await,
                "download_document" => self.download_document(&arguments, ctx).await,
                "delete_document" => self.delete_document(&arguments, ctx).await,
                _ => return Err(McpError::invalid_params(format!("Unknown tool: {name}")).into()),
            };
            Ok(answer(outcome))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: usize = 1 << 20;

    #[test]
    fn a_new_document_reads_back_and_appends_keep_the_rest() {
        let docx = new_docx("Hello <world> & co\nsecond line").unwrap();
        let text = paragraphs_text(&document_xml(&docx, LIMIT).unwrap());
        assert_eq!(text, "Hello <world> & co\nsecond line");
        let appended = append_docx(&docx, "More", LIMIT).unwrap();
        let text = paragraphs_text(&document_xml(&appended, LIMIT).unwrap());
        assert_eq!(text, "Hello <world> & co\nsecond line\nMore");
        let archive = zip::ZipArchive::new(Cursor::new(appended.as_slice())).unwrap();
        assert_eq!(archive.len(), 3);
        assert!(paragraphs_text(&document_xml(&new_docx("").unwrap(), LIMIT).unwrap()).is_empty());
    }

    #[test]
    fn text_comes_from_runs_and_section_properties_stay_last() {
        let xml = r#"<w:body><w:p><w:pPr><w:tabs><w:tab w:val="left"/></w:tabs></w:pPr><w:r><w:t>A</w:t><w:tab/><w:t xml:space="preserve">B </w:t></w:r><w:proofErr/></w:p><w:p/><w:tbl><w:tr><w:tc><w:p><w:r><w:t>cell</w:t></w:r></w:p></w:tc></w:tr></w:tbl><w:sectPr><w:pgSz/></w:sectPr></w:body>"#;
        assert_eq!(paragraphs_text(xml), "A\tB \ncell");
        let appended = appended_xml(xml, "end").unwrap();
        assert!(appended.ends_with(r#"<w:p><w:r><w:t xml:space="preserve">end</w:t></w:r></w:p><w:sectPr><w:pgSz/></w:sectPr></w:body>"#), "{appended}");
    }

    #[test]
    fn a_part_larger_than_the_limit_is_refused() {
        let docx = new_docx(&"x".repeat(5000)).unwrap();
        assert!(document_xml(&docx, 1000).is_err());
    }
}
