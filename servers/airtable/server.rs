//! airtable: Airtable's Web API with guMCP's fifteen tools, names and arguments. Fourteen are
//! one request each, declared in `server.toml` and handed to the runtime's `http` engine.
//! search_records is code: Airtable has no text search (guMCP sent a `search` parameter that
//! Airtable ignores, so it answered the first page of the table whatever the text), so it reads
//! the table page by page (at most [`SEARCHED_PAGES`]) and keeps the records with the text,
//! case-insensitively, in one of their fields.
//!
//! guMCP's resources are code too: each table of each base as
//! `airtable://table/{base_id}/{table_id}`, read as its records (Airtable's first page). The
//! runtime's `Api` does the credentials, the refresh-and-retry on 401 and the wording of
//! upstream failures.

use std::sync::Arc;

use futures::FutureExt;
use reqwest::Method;
use rmcp::model::{CallToolResult, JsonObject, ReadResourceResult, Resource, Tool};
use serde_json::{json, Value};

use crate::protocol::error::McpError;
use crate::servers::http::{Api, HttpServer, Upstream};
use crate::servers::kit::{answer, id_segment, json_resource, required_text, tool};
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, Features, McpServer, RequestContext, ServerFuture, ServerInit};

const TABLE_URI: &str = "airtable://table/";
/// Pages of a table search_records reads at most (Airtable's largest page is 100 records).
const SEARCHED_PAGES: usize = 10;
/// Bases whose tables are listed as resources (one request each).
const LISTED_BASES: usize = 20;

/// guMCP's order of the tools, declared and coded alike.
const ORDER: [&str; 15] = [
    "read_records",
    "create_records",
    "update_records",
    "list_bases",
    "list_tables",
    "base_schema",
    "search_records",
    "get_record",
    "delete_records",
    "create_table",
    "update_table",
    "create_field",
    "update_field",
    "create_base",
    "delete_base",
];

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    let declared = HttpServer::new(init.manifest.clone(), init.upstream.clone());
    let mut tools = vec![tool(
        "search_records",
        "Search for records containing specific text in a table",
        json!({
            "type": "object",
            "properties": {
                "base_id": { "type": "string", "description": "Airtable base ID" },
                "table_id": { "type": "string", "description": "Airtable table ID" },
                "search_query": { "type": "string", "description": "Text to search for in records" }
            },
            "required": ["base_id", "table_id", "search_query"]
        }),
    )];
    tools.extend(declared.tools());
    tools.sort_by_key(|tool| ORDER.iter().position(|name| *name == tool.name));
    Arc::new(Airtable {
        manifest: init.manifest,
        upstream: init.upstream,
        declared,
        tools,
    })
}

struct Airtable {
    manifest: Arc<Manifest>,
    upstream: Upstream,
    /// The tools `server.toml` declares, run by the `http` engine.
    declared: HttpServer,
    tools: Vec<Tool>,
}

/// Whether `value` (a field's value: text, a number, a list of them, a linked object) holds
/// `needle` (lower case) in any of its texts.
fn mentions(value: &Value, needle: &str) -> bool {
    match value {
        Value::String(text) => text.to_lowercase().contains(needle),
        Value::Number(number) => number.to_string().contains(needle),
        Value::Array(items) => items.iter().any(|item| mentions(item, needle)),
        Value::Object(object) => object.values().any(|item| mentions(item, needle)),
        Value::Bool(_) | Value::Null => false,
    }
}

/// A text field of an Airtable object.
fn field<'a>(item: &'a Value, key: &str) -> &'a str {
    item.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// The list at `key` of an answer.
fn list(answer: &Value, key: &str) -> Vec<Value> {
    answer
        .get(key)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

impl Airtable {
    fn api<'a>(&'a self, ctx: &'a RequestContext) -> Api<'a> {
        self.upstream.manifest_api(&self.manifest, ctx)
    }

    async fn search_records(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let base = id_segment(required_text(arguments, "base_id")?)?;
        let table = id_segment(required_text(arguments, "table_id")?)?;
        let needle = required_text(arguments, "search_query")?.to_lowercase();
        let path = format!("/{base}/{table}");
        let api = self.api(ctx);
        let mut found = Vec::new();
        let mut offset: Option<String> = None;
        for _ in 0..SEARCHED_PAGES {
            let mut query = vec![("pageSize", "100".to_owned())];
            if let Some(offset) = offset.take() {
                query.push(("offset", offset));
            }
            let page = api.json(Method::GET, &path, &query, None).await?;
            found.extend(
                list(&page, "records")
                    .into_iter()
                    .filter(|record| record.get("fields").is_some_and(|f| mentions(f, &needle))),
            );
            match page.get("offset").and_then(Value::as_str) {
                Some(next) => offset = Some(next.to_owned()),
                None => break,
            }
        }
        Ok(Value::Array(found))
    }

    /// guMCP's resources: every table of the user's bases.
    async fn resources(&self, ctx: &RequestContext) -> Result<Vec<Resource>, String> {
        let api = self.api(ctx);
        let bases = api.json(Method::GET, "/meta/bases", &[], None).await?;
        let mut resources = Vec::new();
        for base in list(&bases, "bases").iter().take(LISTED_BASES) {
            let (base_id, base_name) = (field(base, "id"), field(base, "name"));
            let Ok(segment) = id_segment(base_id) else {
                continue;
            };
            let path = format!("/meta/bases/{segment}/tables");
            let tables = api.json(Method::GET, &path, &[], None).await?;
            for table in list(&tables, "tables") {
                let (table_id, table_name) = (field(&table, "id"), field(&table, "name"));
                if table_id.is_empty() {
                    continue;
                }
                resources.push(
                    Resource::new(
                        format!("{TABLE_URI}{base_id}/{table_id}"),
                        format!("{base_name} - {table_name}"),
                    )
                    .with_description(format!("Airtable table: {table_name} in base: {base_name}"))
                    .with_mime_type("application/json"),
                );
            }
        }
        Ok(resources)
    }

    /// A table's records (its first page); `None` when the URI names no table.
    async fn read(&self, uri: &str, ctx: &RequestContext) -> Result<Option<Value>, String> {
        let Some((base, table)) = uri
            .strip_prefix(TABLE_URI)
            .and_then(|rest| rest.split_once('/'))
        else {
            return Ok(None);
        };
        let path = format!("/{}/{}", id_segment(base)?, id_segment(table)?);
        let page = self.api(ctx).json(Method::GET, &path, &[], None).await?;
        Ok(Some(Value::Array(list(&page, "records"))))
    }
}

impl McpServer for Airtable {
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
        async move { self.resources(ctx).await.map_err(McpError::internal) }.boxed()
    }

    fn read_resource<'a>(
        &'a self,
        uri: &'a str,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<ReadResourceResult, CallError>> {
        async move {
            let found = self.read(uri, ctx).await.map_err(McpError::internal)?;
            json_resource(uri, found)
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
            match name {
                "search_records" => Ok(answer(self.search_records(&arguments, ctx).await)),
                _ => Err(McpError::invalid_params(format!("Unknown tool: {name}")).into()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_mentions_text_in_any_field_whatever_its_case() {
        let fields = json!({
            "Name": "Ada Lovelace", "Age": 36, "Tags": ["Math", "Engines"],
            "Owner": { "email": "ada@example.com" }, "Done": true
        });
        for needle in ["lovelace", "36", "engines", "example.com"] {
            assert!(mentions(&fields, needle), "{needle}");
        }
        assert!(!mentions(&fields, "babbage"));
        assert!(!mentions(&fields, "true"), "a checkbox is no text");
    }
}
