//! docusign: DocuSign's eSignature REST API (v2.1) with guMCP's ten tools, names and
//! arguments. The account and its base URI come from the user's `userinfo` at sign-in (its
//! default account) and are stored with the credential; a tool's `account_id` argument, when
//! given, names another account of the user. Code builds DocuSign's bodies from guMCP's
//! arguments (documents and signers numbered as guMCP numbers them, template roles) and checks
//! what guMCP checks before sending. The runtime's `Api` fills the base URI and the default
//! account, applies the credentials, refreshes and retries on 401 and words failures.

use std::sync::Arc;

use reqwest::Method;
use rmcp::model::{CallToolResult, JsonObject, Tool};
use serde_json::{json, Map, Value};

use crate::protocol::error::McpError;
use crate::servers::http::{Api, Upstream};
use crate::servers::kit::{answer, id_segment, required_text, text, tool};
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, McpServer, RequestContext, ServerFuture, ServerInit};

/// guMCP's blurb when none is given.
const DEFAULT_BLURB: &str = "Please review and sign this document";

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    Arc::new(Docusign {
        manifest: init.manifest,
        upstream: init.upstream,
        tools: declared_tools(),
    })
}

struct Docusign {
    manifest: Arc<Manifest>,
    upstream: Upstream,
    tools: Vec<Tool>,
}

/// A text argument that is given and not empty.
fn given<'a>(arguments: &'a JsonObject, key: &str) -> Option<&'a str> {
    text(arguments, key).filter(|value| !value.is_empty())
}

/// Query parameters of the arguments named that are given (numbers printed).
fn query_of(arguments: &JsonObject, names: &[&'static str]) -> Vec<(&'static str, String)> {
    names
        .iter()
        .filter_map(|name| {
            let value = match arguments.get(*name)? {
                Value::String(text) if !text.is_empty() => text.clone(),
                Value::Number(number) => number.to_string(),
                Value::Bool(flag) => flag.to_string(),
                _ => return None,
            };
            // The tools' argument names are DocuSign's parameter names.
            Some((*name, value))
        })
        .collect()
}

/// guMCP's documents: each with its name, id, extension and content, renamed for DocuSign.
fn documents(arguments: &JsonObject) -> Result<Vec<Value>, String> {
    arguments
        .get("documents")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|document| {
            let field = |key: &str| document.get(key).and_then(Value::as_str);
            match (
                field("name"),
                field("document_id"),
                field("file_extension"),
                field("document_base64"),
            ) {
                (Some(name), Some(id), Some(extension), Some(content)) => Ok(json!({
                    "name": name, "documentId": id, "fileExtension": extension,
                    "documentBase64": content,
                })),
                _ => Err("Each document must include name, document_id, file_extension, and document_base64".to_owned()),
            }
        })
        .collect()
}

/// The recipients given (each with an email address and a name).
fn recipients(arguments: &JsonObject) -> Result<Vec<&Map<String, Value>>, String> {
    arguments
        .get("recipients")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|recipient| {
            recipient
                .as_object()
                .filter(|r| {
                    r.get("email").is_some_and(Value::is_string)
                        && r.get("name").is_some_and(Value::is_string)
                })
                .ok_or_else(|| "Each recipient must have email and name properties".to_owned())
        })
        .collect()
}

/// Signers numbered from 1 as guMCP numbers them (its routing order unless one is given);
/// `keep_id` keeps a recipient's own `recipient_id`; tabs kept as given.
fn signers(list: &[&Map<String, Value>], keep_id: bool) -> Value {
    let signers: Vec<Value> = list
        .iter()
        .enumerate()
        .map(|(index, recipient)| {
            let number = (index + 1).to_string();
            let id = recipient
                .get("recipient_id")
                .filter(|_| keep_id)
                .cloned()
                .unwrap_or_else(|| json!(number));
            let mut signer = json!({
                "email": recipient["email"], "name": recipient["name"], "recipientId": id,
                "routingOrder": recipient.get("routing_order").cloned().unwrap_or_else(|| json!(number)),
            });
            if let Some(tabs) = recipient.get("tabs") {
                signer["tabs"] = tabs.clone();
            }
            signer
        })
        .collect();
    json!({ "signers": signers })
}

impl Docusign {
    /// The API under the account: the one the arguments name, else the user's default
    /// (the stored `account_id`, filled by the runtime with the base URI).
    fn account<'a>(
        &'a self,
        arguments: &JsonObject,
        ctx: &'a RequestContext,
    ) -> Result<Api<'a>, String> {
        let api = self.upstream.manifest_api(&self.manifest, ctx);
        Ok(match given(arguments, "account_id") {
            Some(account) => api.under(&format!("/accounts/{}", id_segment(account)?)),
            None => api.under("/accounts/{account_id}"),
        })
    }

    async fn run(
        &self,
        name: &str,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let api = self.account(arguments, ctx)?;
        match name {
            "list_templates" => {
                let query = query_of(
                    arguments,
                    &[
                        "search_text",
                        "folder_ids",
                        "folder_types",
                        "include",
                        "created_from_date",
                        "created_to_date",
                        "order_by",
                        "order",
                        "count",
                    ],
                );
                api.json(Method::GET, "/templates", &query, None).await
            }
            "get_template" => {
                let id = id_segment(required_text(arguments, "template_id")?)?;
                api.json(Method::GET, &format!("/templates/{id}"), &[], None)
                    .await
            }
            "create_template" => {
                let name = required_text(arguments, "name")?;
                let body = json!({
                    "envelopeTemplateDefinition": {
                        "name": name,
                        "description": given(arguments, "description").unwrap_or_default(),
                        "shared": "false",
                    },
                    "documents": [{
                        "documentId": "1",
                        "name": required_text(arguments, "document_name")?,
                        "fileExtension": required_text(arguments, "file_extension")?,
                        "documentBase64": required_text(arguments, "document_base64")?,
                    }],
                    "emailSubject": given(arguments, "email_subject").map_or_else(|| format!("Please sign: {name}"), str::to_owned),
                    "emailBlurb": given(arguments, "email_blurb").unwrap_or(DEFAULT_BLURB),
                });
                api.json(Method::POST, "/templates", &[], Some(&body)).await
            }
            "create_envelope" => {
                let status = required_text(arguments, "status")?;
                if status != "sent" && status != "created" {
                    return Err("Status must be either 'sent' or 'created'".to_owned());
                }
                let mut body = json!({
                    "emailSubject": required_text(arguments, "email_subject")?,
                    "emailBlurb": given(arguments, "email_blurb").unwrap_or(DEFAULT_BLURB),
                    "status": status,
                });
                let people = recipients(arguments)?;
                if let Some(template) = given(arguments, "template_id") {
                    body["templateId"] = json!(template);
                    if !people.is_empty() {
                        let roles = people
                            .iter()
                            .map(|recipient| {
                                let role = recipient.get("role_name").and_then(Value::as_str).ok_or(
                                    "When using a template, each recipient must have a role_name property",
                                )?;
                                let mut entry = json!({ "email": recipient["email"], "name": recipient["name"], "roleName": role });
                                if let Some(order) = recipient.get("routing_order") {
                                    entry["routingOrder"] = order.clone();
                                }
                                Ok(entry)
                            })
                            .collect::<Result<Vec<Value>, &str>>()?;
                        body["templateRoles"] = json!(roles);
                    }
                } else {
                    let documents = documents(arguments)?;
                    if documents.is_empty() {
                        return Err(
                            "When not using a template, you must provide documents".to_owned()
                        );
                    }
                    body["documents"] = json!(documents);
                    if !people.is_empty() {
                        body["recipients"] = signers(&people, false);
                    }
                }
                api.json(Method::POST, "/envelopes", &[], Some(&body)).await
            }
            "get_envelope" => {
                let id = id_segment(required_text(arguments, "envelope_id")?)?;
                let query = query_of(arguments, &["include"]);
                api.json(Method::GET, &format!("/envelopes/{id}"), &query, None)
                    .await
            }
            "send_envelope" => self.send_envelope(&api, arguments).await,
            "get_envelope_status_bulk" => {
                let ids: Vec<&str> = arguments
                    .get("envelope_ids")
                    .and_then(Value::as_array)
                    .map(|ids| ids.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                if ids.is_empty() {
                    return Err("envelope_ids must name at least one envelope".to_owned());
                }
                let mut query = vec![("envelope_ids", ids.join(","))];
                query.extend(query_of(arguments, &["include"]));
                api.json(Method::GET, "/envelopes", &query, None).await
            }
            "create_user" => {
                let users = arguments
                    .get("users")
                    .and_then(Value::as_array)
                    .filter(|users| !users.is_empty())
                    .ok_or("users must name at least one user")?;
                let mut new_users = Vec::new();
                for (index, user) in users.iter().enumerate() {
                    let mut entry = Map::new();
                    for key in ["userName", "email"] {
                        let value = user.get(key).filter(|v| v.is_string()).ok_or_else(|| {
                            format!("User at index {index} is missing the required {key} field")
                        })?;
                        entry.insert(key.to_owned(), value.clone());
                    }
                    for key in [
                        "firstName",
                        "lastName",
                        "middleName",
                        "title",
                        "permissionProfileId",
                        "isAdmin",
                    ] {
                        if let Some(value) = user.get(key).filter(|v| !v.is_null()) {
                            entry.insert(key.to_owned(), value.clone());
                        }
                    }
                    new_users.push(Value::Object(entry));
                }
                let body = json!({ "newUsers": new_users });
                api.json(Method::POST, "/users", &[], Some(&body)).await
            }
            "list_users" => {
                let query = query_of(
                    arguments,
                    &[
                        "email",
                        "status",
                        "username",
                        "additional_info",
                        "count",
                        "start_position",
                    ],
                );
                api.json(Method::GET, "/users", &query, None).await
            }
            "get_user" => {
                let id = id_segment(required_text(arguments, "user_id")?)?;
                let query = query_of(arguments, &["additional_info"]);
                api.json(Method::GET, &format!("/users/{id}"), &query, None)
                    .await
            }
            _ => Err(format!("Unknown tool: {name}")),
        }
    }

    /// guMCP's steps: the envelope must still be a draft; its subject, blurb, documents and
    /// signers (each with tabs) are put, then its status is set to `sent`.
    async fn send_envelope(&self, api: &Api<'_>, arguments: &JsonObject) -> Result<Value, String> {
        let id = id_segment(required_text(arguments, "envelope_id")?)?;
        let path = format!("/envelopes/{id}");
        let documents = documents(arguments)?;
        let people = recipients(arguments)?;
        if documents.is_empty() || people.is_empty() {
            return Err("documents and recipients must each name at least one".to_owned());
        }
        if let Some(missing) = people
            .iter()
            .find(|recipient| !recipient.contains_key("tabs"))
        {
            return Err(format!(
                "Recipient '{}' is missing required tabs (signature fields)",
                missing["name"].as_str().unwrap_or_default()
            ));
        }
        let query = [("include", "recipients,tabs".to_owned())];
        let envelope = api.json(Method::GET, &path, &query, None).await?;
        let status = envelope
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if status != "created" && status != "draft" {
            return Err(format!(
                "Cannot send envelope. Current status is '{status}'. Only draft envelopes can be sent."
            ));
        }
        let update = json!({
            "emailSubject": required_text(arguments, "email_subject")?,
            "emailBlurb": given(arguments, "email_blurb").unwrap_or(DEFAULT_BLURB),
            "documents": documents,
            "recipients": signers(&people, true),
        });
        api.json(Method::PUT, &path, &[], Some(&update)).await?;
        api.json(Method::PUT, &path, &[], Some(&json!({ "status": "sent" })))
            .await
    }
}

impl McpServer for Docusign {
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
            if !self.tools.iter().any(|tool| tool.name == name) {
                return Err(McpError::invalid_params(format!("Unknown tool: {name}")).into());
            }
            Ok(answer(self.run(name, &arguments, ctx).await))
        })
    }
}

/// guMCP's tools: names, arguments and which are required.
fn declared_tools() -> Vec<Tool> {
    vec![
        tool(
            "list_templates",
            "List the account's templates",
            json!({"type": "object", "properties": {"account_id": {"type": "string"}, "search_text": {"type": "string"}, "folder_ids": {"type": "string"}, "folder_types": {"type": "string"}, "include": {"type": "string"}, "created_from_date": {"type": "string"}, "created_to_date": {"type": "string"}, "order_by": {"type": "string"}, "order": {"type": "string"}, "count": {"type": "integer"}}}),
        ),
        tool(
            "get_template",
            "Get a template's details",
            json!({"type": "object", "properties": {"account_id": {"type": "string"}, "template_id": {"type": "string"}}, "required": ["template_id"]}),
        ),
        tool(
            "create_template",
            "Create a template from one document",
            json!({"type": "object", "properties": {"account_id": {"type": "string"}, "name": {"type": "string"}, "description": {"type": "string"}, "email_subject": {"type": "string"}, "email_blurb": {"type": "string"}, "document_name": {"type": "string"}, "document_base64": {"type": "string"}, "file_extension": {"type": "string"}}, "required": ["name", "document_name", "document_base64", "file_extension"]}),
        ),
        tool(
            "create_envelope",
            "Create an envelope from a template or documents, sent or as a draft",
            json!({"type": "object", "properties": {"account_id": {"type": "string"}, "template_id": {"type": "string"}, "email_subject": {"type": "string"}, "email_blurb": {"type": "string"}, "status": {"type": "string", "enum": ["sent", "created"]}, "recipients": {"type": "array", "items": {"type": "object", "properties": {"email": {"type": "string"}, "name": {"type": "string"}, "role_name": {"type": "string"}, "routing_order": {"type": "string"}, "recipient_id": {"type": "string"}, "tabs": {"type": "object", "properties": {"signHereTabs": {"type": "array", "items": {"type": "object", "properties": {"anchorString": {"type": "string"}, "anchorUnits": {"type": "string"}, "anchorXOffset": {"type": "string"}, "anchorYOffset": {"type": "string"}}, "required": ["anchorString"]}}, "dateSignedTabs": {"type": "array"}, "textTabs": {"type": "array"}}, "required": ["signHereTabs"]}}, "required": ["email", "name", "tabs"]}}, "documents": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}, "document_id": {"type": "string"}, "file_extension": {"type": "string"}, "document_base64": {"type": "string"}}, "required": ["name", "document_id", "file_extension", "document_base64"]}}}, "required": ["email_subject", "status", "recipients", "documents"]}),
        ),
        tool(
            "get_envelope",
            "Get an envelope's details",
            json!({"type": "object", "properties": {"account_id": {"type": "string"}, "envelope_id": {"type": "string"}, "include": {"type": "string"}}, "required": ["envelope_id"]}),
        ),
        tool(
            "send_envelope",
            "Add documents and signers to a draft envelope and send it",
            json!({"type": "object", "properties": {"account_id": {"type": "string"}, "envelope_id": {"type": "string"}, "email_subject": {"type": "string"}, "email_blurb": {"type": "string"}, "documents": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}, "document_id": {"type": "string"}, "file_extension": {"type": "string"}, "document_base64": {"type": "string"}}, "required": ["name", "document_id", "file_extension", "document_base64"]}}, "recipients": {"type": "array", "items": {"type": "object", "properties": {"email": {"type": "string"}, "name": {"type": "string"}, "recipient_id": {"type": "string"}, "routing_order": {"type": "string"}, "tabs": {"type": "object", "properties": {"signHereTabs": {"type": "array", "items": {"type": "object", "properties": {"anchorString": {"type": "string"}, "anchorUnits": {"type": "string"}, "anchorXOffset": {"type": "string"}, "anchorYOffset": {"type": "string"}, "documentId": {"type": "string"}, "pageNumber": {"type": "string"}}, "required": ["anchorString"]}}, "dateSignedTabs": {"type": "array"}, "textTabs": {"type": "array"}}, "required": ["signHereTabs"]}}, "required": ["email", "name", "tabs"]}}}, "required": ["envelope_id", "email_subject", "recipients", "documents"]}),
        ),
        tool(
            "get_envelope_status_bulk",
            "Get the status of several envelopes",
            json!({"type": "object", "properties": {"account_id": {"type": "string"}, "envelope_ids": {"type": "array", "items": {"type": "string"}}, "include": {"type": "string"}}, "required": ["envelope_ids"]}),
        ),
        tool(
            "create_user",
            "Add users to the account",
            json!({"type": "object", "properties": {"account_id": {"type": "string"}, "users": {"type": "array", "items": {"type": "object", "properties": {"userName": {"type": "string"}, "email": {"type": "string"}, "firstName": {"type": "string"}, "lastName": {"type": "string"}, "middleName": {"type": "string"}, "title": {"type": "string"}, "isAdmin": {"type": "boolean"}, "permissionProfileId": {"type": "string"}, "groupId": {"type": "string"}}, "required": ["userName", "email"]}}}, "required": ["users"]}),
        ),
        tool(
            "list_users",
            "List the account's users",
            json!({"type": "object", "properties": {"account_id": {"type": "string"}, "email": {"type": "string"}, "username": {"type": "string"}, "status": {"type": "string"}, "additional_info": {"type": "string"}, "count": {"type": "integer"}, "start_position": {"type": "integer"}}}),
        ),
        tool(
            "get_user",
            "Get a user's details",
            json!({"type": "object", "properties": {"account_id": {"type": "string"}, "user_id": {"type": "string"}, "additional_info": {"type": "string"}}, "required": ["user_id"]}),
        ),
    ]
}
