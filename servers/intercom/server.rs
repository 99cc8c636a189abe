//! intercom: Intercom's REST API with guMCP's nineteen tools, names and arguments. Ten are one
//! request each, declared in `server.toml` and run by the runtime's `http` engine. The nine
//! here need logic: search_contacts searches by email, then by name; search_companies keeps
//! the listed companies whose name matches; list_tickets searches tickets by state;
//! create_conversation, reply_to_conversation, create_article and update_ticket shape their
//! bodies by which arguments are given; remove_tags_from_conversation removes one tag per
//! request; create_company makes up a company id when none is given (Intercom requires one).
//! The runtime's `Api` does the credentials, the retry on 401 and the wording of upstream
//! failures.
//!
//! guMCP's resources are code too: the recent conversations as `intercom://conversation/{id}`,
//! each read as Intercom gives it.

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

const CONVERSATION_URI: &str = "intercom://conversation/";

/// guMCP's order of the tools, declared and coded alike.
const ORDER: [&str; 19] = [
    "search_contacts",
    "create_contact",
    "create_conversation",
    "reply_to_conversation",
    "add_tags_to_conversation",
    "remove_tags_from_conversation",
    "list_admins",
    "search_companies",
    "create_company",
    "associate_contact_with_company",
    "list_articles",
    "retrieve_article",
    "create_article",
    "list_tickets",
    "get_ticket",
    "create_ticket",
    "update_ticket",
    "add_comment_to_ticket",
    "list_ticket_types",
];

/// Companies listed per search_companies call, among which names are matched.
const COMPANIES_PAGE: usize = 50;

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    let declared = HttpServer::new(init.manifest.clone(), init.upstream.clone());
    let mut tools = coded_tools();
    tools.extend(declared.tools());
    tools.sort_by_key(|tool| ORDER.iter().position(|name| *name == tool.name));
    Arc::new(Intercom {
        manifest: init.manifest,
        upstream: init.upstream,
        declared,
        tools,
    })
}

struct Intercom {
    manifest: Arc<Manifest>,
    upstream: Upstream,
    /// The tools `server.toml` declares, run by the `http` engine.
    declared: HttpServer,
    tools: Vec<Tool>,
}

/// guMCP's schemas of the coded tools (reply_to_conversation with the conversation_id its
/// code reads).
fn coded_tools() -> Vec<Tool> {
    vec![
        tool(
            "search_contacts",
            "Search for contacts in Intercom by name or email",
            json!({"type": "object", "properties": {"query": {"type": "string", "description": "Search query for contacts (name or email)"}}, "required": ["query"]}),
        ),
        tool(
            "create_conversation",
            "Create a new conversation in Intercom",
            json!({"type": "object", "properties": {"contact_id": {"type": "string", "description": "ID of the contact to create conversation with"}, "message": {"type": "string", "description": "Initial message for the conversation"}, "admin_id": {"type": "string", "description": "ID of the admin initiating the conversation (optional)"}, "tag_ids": {"type": "array", "items": {"type": "string"}, "description": "Tag IDs to apply to the conversation (optional)"}}, "required": ["contact_id", "message"]}),
        ),
        tool(
            "reply_to_conversation",
            "Reply to an existing conversation in Intercom",
            json!({"type": "object", "properties": {"conversation_id": {"type": "string", "description": "ID of the conversation to reply to (optional: without it, the reply goes to the user's last conversation)"}, "message": {"type": "string", "description": "Reply message"}, "user_id": {"type": "string", "description": "ID of the contact/user sending the reply (use this for replies from contacts)"}, "admin_id": {"type": "string", "description": "ID of the admin sending the reply (use this for replies from admins)"}, "attachment_urls": {"type": "array", "items": {"type": "string"}, "description": "URLs of attachments to include (optional)"}}, "required": ["message"]}),
        ),
        tool(
            "remove_tags_from_conversation",
            "Remove tags from an existing conversation",
            json!({"type": "object", "properties": {"conversation_id": {"type": "string", "description": "ID of the conversation to untag"}, "tag_ids": {"type": "array", "items": {"type": "string"}, "description": "IDs of tags to remove from the conversation"}}, "required": ["conversation_id", "tag_ids"]}),
        ),
        tool(
            "search_companies",
            "Search for companies in Intercom",
            json!({"type": "object", "properties": {"query": {"type": "string", "description": "Search query for companies (name)"}}, "required": ["query"]}),
        ),
        tool(
            "create_company",
            "Create a new company in Intercom",
            json!({"type": "object", "properties": {"name": {"type": "string", "description": "Name of the company"}, "company_id": {"type": "string", "description": "Unique identifier for the company in your system (optional)"}, "website": {"type": "string", "description": "Website URL of the company (optional)"}, "industry": {"type": "string", "description": "Industry of the company (optional)"}, "custom_attributes": {"type": "object", "description": "Custom attributes for the company (optional)"}}, "required": ["name"]}),
        ),
        tool(
            "create_article",
            "Create a new help center article",
            json!({"type": "object", "properties": {"title": {"type": "string", "description": "Title of the article"}, "body": {"type": "string", "description": "HTML content of the article"}, "author_id": {"type": "string", "description": "ID of the admin authoring the article"}, "collection_id": {"type": "string", "description": "ID of the collection to add the article to (optional)"}, "state": {"type": "string", "description": "State of the article", "enum": ["draft", "published"]}}, "required": ["title", "body", "author_id"]}),
        ),
        tool(
            "list_tickets",
            "List support tickets in Intercom",
            json!({"type": "object", "properties": {"state": {"type": "string", "description": "Filter tickets by state (submitted, in_progress, waiting_on_customer, resolved)", "enum": ["submitted", "in_progress", "waiting_on_customer", "resolved", "all"]}, "tag_id": {"type": "string", "description": "Filter tickets by tag ID (optional)"}, "limit": {"type": "integer", "description": "Maximum number of tickets to return (optional)"}}, "required": []}),
        ),
        tool(
            "update_ticket",
            "Update an existing support ticket in Intercom",
            json!({"type": "object", "properties": {"ticket_id": {"type": "string", "description": "ID of the ticket to update"}, "title": {"type": "string", "description": "New title/subject of the ticket (optional)"}, "description": {"type": "string", "description": "New description of the ticket (optional)"}, "state": {"type": "string", "description": "New state of the ticket (optional)", "enum": ["in_progress", "waiting_on_customer", "resolved"]}, "admin_id": {"type": "string", "description": "ID of the admin to assign the ticket to (optional)"}, "is_shared": {"type": "boolean", "description": "Whether the ticket is visible to users (optional)"}}, "required": ["ticket_id"]}),
        ),
    ]
}

/// A string argument that is given and not empty.
fn given<'a>(arguments: &'a JsonObject, key: &str) -> Option<&'a str> {
    text(arguments, key).filter(|value| !value.is_empty())
}

/// Copies the arguments given among `keys` into `body` under the same names.
fn copy(arguments: &JsonObject, keys: &[&str], body: &mut Map<String, Value>) {
    for key in keys {
        if let Some(value) = arguments.get(*key).filter(|value| !value.is_null()) {
            body.insert((*key).to_owned(), value.clone());
        }
    }
}

/// The list at `key` of an answer (empty when absent).
fn items(answer: Value, key: &str) -> Vec<Value> {
    match answer {
        Value::Object(mut object) => match object.remove(key) {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

impl Intercom {
    fn api<'a>(&'a self, ctx: &'a RequestContext) -> Api<'a> {
        self.upstream.manifest_api(&self.manifest, ctx)
    }

    /// Contacts whose email contains the query, else those whose name does.
    async fn search_contacts(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let query = required_text(arguments, "query")?;
        let api = self.api(ctx);
        for field in ["email", "name"] {
            let body = json!({ "query": { "field": field, "operator": "~", "value": query } });
            let found = api
                .json(Method::POST, "/contacts/search", &[], Some(&body))
                .await?;
            let contacts = items(found, "data");
            if !contacts.is_empty() {
                return Ok(Value::Array(contacts));
            }
        }
        Ok(json!([]))
    }

    /// A conversation started by the contact, or by the admin when one is named.
    async fn create_conversation(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let from = match given(arguments, "admin_id") {
            Some(admin) => json!({ "type": "admin", "id": admin }),
            None => json!({ "type": "user", "id": required_text(arguments, "contact_id")? }),
        };
        let mut body = json!({ "from": from, "body": required_text(arguments, "message")? });
        if let Some(tags) = arguments.get("tag_ids").filter(|tags| tags.is_array()) {
            body["tags"] = json!({ "ids": tags });
        }
        self.api(ctx)
            .json(Method::POST, "/conversations", &[], Some(&body))
            .await
    }

    /// A comment on the conversation named, else on the user's last conversation, from the
    /// user or the admin given.
    async fn reply_to_conversation(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let mut body = Map::new();
        body.insert("message_type".into(), json!("comment"));
        body.insert("body".into(), json!(required_text(arguments, "message")?));
        match (given(arguments, "user_id"), given(arguments, "admin_id")) {
            (Some(user), _) => {
                body.insert("type".into(), json!("user"));
                body.insert("intercom_user_id".into(), json!(user));
            }
            (None, Some(admin)) => {
                body.insert("type".into(), json!("admin"));
                body.insert("admin_id".into(), json!(admin));
            }
            (None, None) => return Err("Either user_id or admin_id is required".to_owned()),
        }
        copy(arguments, &["attachment_urls"], &mut body);
        let conversation = match given(arguments, "conversation_id") {
            Some(id) => id_segment(id)?,
            None => "last".to_owned(),
        };
        let path = format!("/conversations/{conversation}/reply");
        self.api(ctx)
            .json(Method::POST, &path, &[], Some(&Value::Object(body)))
            .await
    }

    async fn remove_tags_from_conversation(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let conversation = required_text(arguments, "conversation_id")?;
        let tags: Vec<&str> = arguments
            .get("tag_ids")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let api = self.api(ctx);
        let mut results = Vec::new();
        for tag in &tags {
            let path = format!(
                "/conversations/{}/tags/{}",
                id_segment(conversation)?,
                id_segment(tag)?
            );
            results.push(api.json(Method::DELETE, &path, &[], None).await?);
        }
        Ok(json!({
            "success": true,
            "conversation_id": conversation,
            "removed_tag_ids": tags,
            "results": results,
        }))
    }

    /// The listed companies whose name contains the query (case aside).
    async fn search_companies(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let query = required_text(arguments, "query")?.to_lowercase();
        let listed = self
            .api(ctx)
            .json(
                Method::POST,
                "/companies/list",
                &[("per_page", COMPANIES_PAGE.to_string())],
                None,
            )
            .await?;
        let matching: Vec<Value> = items(listed, "data")
            .into_iter()
            .filter(|company| {
                company
                    .get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|name| name.to_lowercase().contains(&query))
            })
            .collect();
        Ok(Value::Array(matching))
    }

    async fn create_company(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let mut body = Map::new();
        body.insert("name".into(), json!(required_text(arguments, "name")?));
        copy(
            arguments,
            &["company_id", "website", "industry", "custom_attributes"],
            &mut body,
        );
        if given(arguments, "company_id").is_none() {
            body.insert("company_id".into(), json!(uuid::Uuid::new_v4().to_string()));
        }
        self.api(ctx)
            .json(Method::POST, "/companies", &[], Some(&Value::Object(body)))
            .await
    }

    /// An article, a draft unless said otherwise, in the collection given.
    async fn create_article(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let mut body = Map::new();
        copy(arguments, &["title", "body", "author_id"], &mut body);
        body.insert(
            "state".into(),
            json!(given(arguments, "state").unwrap_or("draft")),
        );
        if let Some(collection) = given(arguments, "collection_id") {
            body.insert("parent_id".into(), json!(collection));
            body.insert("parent_type".into(), json!("collection"));
        }
        self.api(ctx)
            .json(Method::POST, "/articles", &[], Some(&Value::Object(body)))
            .await
    }

    /// Tickets of the state given (all: open or not), through Intercom's ticket search.
    async fn list_tickets(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        if given(arguments, "tag_id").is_some() {
            return Err(
                "Intercom's ticket search cannot filter by tag; leave tag_id out".to_owned(),
            );
        }
        let query = match given(arguments, "state").filter(|state| *state != "all") {
            Some(state) => json!({ "field": "state", "operator": "=", "value": state }),
            None => json!({ "operator": "OR", "value": [
                { "field": "open", "operator": "=", "value": true },
                { "field": "open", "operator": "=", "value": false },
            ] }),
        };
        let mut body = json!({ "query": query });
        if let Some(limit) = arguments.get("limit").and_then(Value::as_u64) {
            body["pagination"] = json!({ "per_page": limit });
        }
        let found = self
            .api(ctx)
            .json(Method::POST, "/tickets/search", &[], Some(&body))
            .await?;
        Ok(Value::Array(items(found, "tickets")))
    }

    async fn update_ticket(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let id = required_text(arguments, "ticket_id")?;
        let mut attributes = Map::new();
        for (arg, attribute) in [
            ("title", "_default_title_"),
            ("description", "_default_description_"),
        ] {
            if let Some(value) = arguments.get(arg).filter(|value| !value.is_null()) {
                attributes.insert(attribute.to_owned(), value.clone());
            }
        }
        let mut body = Map::new();
        if !attributes.is_empty() {
            body.insert("ticket_attributes".into(), Value::Object(attributes));
        }
        copy(arguments, &["state", "is_shared"], &mut body);
        if let Some(admin) = arguments.get("admin_id").filter(|admin| !admin.is_null()) {
            body.insert("assignment".into(), json!({ "admin_id": admin }));
        }
        if body.is_empty() {
            return Err(format!("No fields provided to update ticket {id}"));
        }
        let path = format!("/tickets/{}", id_segment(id)?);
        self.api(ctx)
            .json(Method::PUT, &path, &[], Some(&Value::Object(body)))
            .await
    }

    /// guMCP's resources: the recent conversations, named after who started each.
    async fn resources(&self, ctx: &RequestContext) -> Result<Vec<Resource>, String> {
        let listed = self
            .api(ctx)
            .json(Method::GET, "/conversations", &[], None)
            .await?;
        Ok(items(listed, "conversations")
            .iter()
            .filter_map(|conversation| {
                let id = conversation.get("id").and_then(Value::as_str)?;
                let author = conversation
                    .pointer("/source/author/name")
                    .and_then(Value::as_str)
                    .unwrap_or("Unknown");
                Some(
                    Resource::new(
                        format!("{CONVERSATION_URI}{id}"),
                        format!("Conversation with {author}"),
                    )
                    .with_mime_type("application/json"),
                )
            })
            .collect())
    }

    /// A conversation; `None` when the URI names none.
    async fn read(&self, uri: &str, ctx: &RequestContext) -> Result<Option<Value>, String> {
        let Some(id) = uri.strip_prefix(CONVERSATION_URI) else {
            return Ok(None);
        };
        let path = format!("/conversations/{}", id_segment(id)?);
        self.api(ctx)
            .json(Method::GET, &path, &[], None)
            .await
            .map(Some)
    }
}

impl McpServer for Intercom {
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
                "search_contacts" => self.search_contacts(args, ctx).await,
                "create_conversation" => self.create_conversation(args, ctx).await,
                "reply_to_conversation" => self.reply_to_conversation(args, ctx).await,
                "remove_tags_from_conversation" => {
                    self.remove_tags_from_conversation(args, ctx).await
                }
                "search_companies" => self.search_companies(args, ctx).await,
                "create_company" => self.create_company(args, ctx).await,
                "create_article" => self.create_article(args, ctx).await,
                "list_tickets" => self.list_tickets(args, ctx).await,
                "update_ticket" => self.update_ticket(args, ctx).await,
                _ => return Err(McpError::invalid_params(format!("Unknown tool: {name}")).into()),
            };
            Ok(answer(outcome))
        })
    }
}
