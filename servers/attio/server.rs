//! attio: Attio's REST API v2 with guMCP's eleven tools, names and arguments. Eight are one
//! request each, declared in `server.toml` and run by the runtime's `http` engine. The three
//! here build Attio's values from named arguments: create_company (a domain as `domains`),
//! create_contact (email address, personal name and company reference) and add_to_list (a
//! list entry for a company or a person record). The runtime's `Api` does the credentials,
//! the retry on 401 and the wording of upstream failures.
//!
//! guMCP's resources are code too: `attio://collection/companies`, `attio://collection/people`
//! and each list as `attio://list/{id}`, read as the first fifty records or entries.

use std::sync::Arc;

use futures::FutureExt;
use reqwest::Method;
use rmcp::model::{CallToolResult, JsonObject, ReadResourceResult, Resource, Tool};
use serde_json::{json, Map, Value};

use crate::protocol::error::McpError;
use crate::servers::http::{Api, HttpServer, Upstream};
use crate::servers::kit::{answer, id_segment, json_resource, required_text, text, tool};
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, Features, McpServer, RequestContext, ServerFuture, ServerInit};

const COLLECTION_URI: &str = "attio://collection/";
const LIST_URI: &str = "attio://list/";
/// Records or entries a resource read gives (guMCP's page).
const READ_LIMIT: u64 = 50;

/// guMCP's order of the tools, declared and coded alike.
const ORDER: [&str; 11] = [
    "search_companies",
    "read_company",
    "create_company",
    "update_company",
    "search_contacts",
    "read_contact",
    "create_contact",
    "update_contact",
    "list_lists",
    "read_list",
    "add_to_list",
];

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    let declared = HttpServer::new(init.manifest.clone(), init.upstream.clone());
    let mut tools = coded_tools();
    tools.extend(declared.tools());
    tools.sort_by_key(|tool| ORDER.iter().position(|name| *name == tool.name));
    Arc::new(Attio {
        manifest: init.manifest,
        upstream: init.upstream,
        declared,
        tools,
    })
}

struct Attio {
    manifest: Arc<Manifest>,
    upstream: Upstream,
    /// The tools `server.toml` declares, run by the `http` engine.
    declared: HttpServer,
    tools: Vec<Tool>,
}

/// guMCP's schemas of the coded tools.
fn coded_tools() -> Vec<Tool> {
    vec![
        tool(
            "create_company",
            "Create a new company in Attio",
            json!({"type": "object", "properties": {"name": {"type": "string", "description": "Company name"}, "domain": {"type": "string", "description": "Company domain"}, "attributes": {"type": "object", "description": "Additional attributes for the company as key-value pairs"}}, "required": ["name"]}),
        ),
        tool(
            "create_contact",
            "Create a new contact in Attio",
            json!({"type": "object", "properties": {"email": {"type": "string", "description": "Contact email"}, "first_name": {"type": "string", "description": "First name"}, "last_name": {"type": "string", "description": "Last name"}, "company_id": {"type": "string", "description": "Optional company ID to associate with"}, "attributes": {"type": "object", "description": "Additional attributes for the contact as key-value pairs"}}, "required": ["email"]}),
        ),
        tool(
            "add_to_list",
            "Add a record to a list",
            json!({"type": "object", "properties": {"list_id": {"type": "string", "description": "List ID"}, "record_id": {"type": "string", "description": "Record ID to add"}, "record_type": {"type": "string", "description": "Type of record (company or contact)", "enum": ["company", "contact"]}}, "required": ["list_id", "record_id", "record_type"]}),
        ),
    ]
}

/// A string argument that is given and not empty.
fn given<'a>(arguments: &'a JsonObject, key: &str) -> Option<&'a str> {
    text(arguments, key).filter(|value| !value.is_empty())
}

/// The `attributes` object's entries.
fn attributes(arguments: &JsonObject) -> impl Iterator<Item = (&String, &Value)> {
    arguments
        .get("attributes")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
}

impl Attio {
    fn api<'a>(&'a self, ctx: &'a RequestContext) -> Api<'a> {
        self.upstream.manifest_api(&self.manifest, ctx)
    }

    /// A new record of `object` with `values`.
    async fn create_record(
        &self,
        object: &str,
        values: Map<String, Value>,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let body = json!({ "data": { "values": values } });
        let path = format!("/objects/{object}/records");
        self.api(ctx)
            .json(Method::POST, &path, &[], Some(&body))
            .await
    }

    /// A company named, with its domain; other attributes beside them (not overriding them).
    async fn create_company(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let mut values = Map::new();
        values.insert("name".into(), json!(required_text(arguments, "name")?));
        if let Some(domain) = given(arguments, "domain") {
            values.insert("domains".into(), json!([domain]));
        }
        for (key, value) in attributes(arguments) {
            values.entry(key.clone()).or_insert_with(|| value.clone());
        }
        self.create_record("companies", values, ctx).await
    }

    /// A person with an email address, a name and a company, as Attio's values; other
    /// attributes beside them (they win, as in guMCP).
    async fn create_contact(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let mut values = Map::new();
        let email = required_text(arguments, "email")?;
        values.insert(
            "email_addresses".into(),
            json!([{ "email_address": email }]),
        );
        let (first, last) = (
            given(arguments, "first_name"),
            given(arguments, "last_name"),
        );
        if first.is_some() || last.is_some() {
            let full: Vec<&str> = first.into_iter().chain(last).collect();
            let mut name = json!({ "full_name": full.join(" ") });
            if let Some(first) = first {
                name["first_name"] = json!(first);
            }
            if let Some(last) = last {
                name["last_name"] = json!(last);
            }
            values.insert("name".into(), name);
        }
        if let Some(company) = given(arguments, "company_id") {
            values.insert(
                "company".into(),
                json!([{ "target_object": "companies", "target_record_id": company }]),
            );
        }
        for (key, value) in attributes(arguments) {
            values.insert(key.clone(), value.clone());
        }
        self.create_record("people", values, ctx).await
    }

    /// The record as an entry of the list.
    async fn add_to_list(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let list = id_segment(required_text(arguments, "list_id")?)?;
        let record = required_text(arguments, "record_id")?;
        let kind = required_text(arguments, "record_type")?;
        let object = match kind {
            "company" => "companies",
            "contact" => "people",
            _ => return Err("record_type must be either 'company' or 'contact'".to_owned()),
        };
        let body = json!({ "data": {
            "parent_record_id": record,
            "parent_object": object,
            "entry_values": {},
        } });
        let path = format!("/lists/{list}/entries");
        self.api(ctx)
            .json(Method::POST, &path, &[], Some(&body))
            .await
    }

    /// guMCP's resources: the two collections, then each list.
    async fn resources(&self, ctx: &RequestContext) -> Result<Vec<Resource>, String> {
        let mut resources = vec![
            Resource::new(format!("{COLLECTION_URI}companies"), "Companies Collection")
                .with_mime_type("application/json"),
            Resource::new(format!("{COLLECTION_URI}people"), "People Collection")
                .with_mime_type("application/json"),
        ];
        let lists = self.api(ctx).json(Method::GET, "/lists", &[], None).await?;
        for list in lists
            .get("data")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(id) = list.pointer("/id/list_id").and_then(Value::as_str) else {
                continue;
            };
            let name = list.get("name").and_then(Value::as_str).unwrap_or(id);
            resources.push(
                Resource::new(format!("{LIST_URI}{id}"), format!("List: {name}"))
                    .with_mime_type("application/json"),
            );
        }
        Ok(resources)
    }

    /// The first records of a collection or entries of a list; `None` when the URI names
    /// neither.
    async fn read(&self, uri: &str, ctx: &RequestContext) -> Result<Option<Value>, String> {
        let path = if let Some(kind) = uri.strip_prefix(COLLECTION_URI) {
            match kind {
                "companies" | "people" => format!("/objects/{kind}/records/query"),
                _ => return Ok(None),
            }
        } else if let Some(id) = uri.strip_prefix(LIST_URI) {
            format!("/lists/{}/entries/query", id_segment(id)?)
        } else {
            return Ok(None);
        };
        let body = json!({ "limit": READ_LIMIT, "offset": 0 });
        self.api(ctx)
            .json(Method::POST, &path, &[], Some(&body))
            .await
            .map(Some)
    }
}

impl McpServer for Attio {
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
            let args = &arguments;
            let outcome = match name {
                "create_company" => self.create_company(args, ctx).await,
                "create_contact" => self.create_contact(args, ctx).await,
                "add_to_list" => self.add_to_list(args, ctx).await,
                _ => return Err(McpError::invalid_params(format!("Unknown tool: {name}")).into()),
            };
            Ok(answer(outcome))
        })
    }
}
