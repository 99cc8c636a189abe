//! salesforce: Salesforce's REST API (v59.0, guMCP's) on each user's own instance, with
//! guMCP's nineteen tools, names and arguments. Eleven are one request each, declared in
//! `server.toml` and run by the `http` engine. The eight here need logic: SOQL built from
//! arguments (values quoted and escaped, object and field names checked, so no argument can
//! change the query's shape), one limit picked out of the org's limits, several records made
//! in turn, a note or a file linked to a record after it is made, and a lead conversion's
//! flags. The runtime's `Api` fills the instance URL, applies the credentials, refreshes and
//! retries on 401 and words upstream failures.

use std::sync::Arc;

use base64::Engine;
use reqwest::Method;
use rmcp::model::{CallToolResult, JsonObject, Tool};
use serde_json::{json, Map, Value};

use crate::protocol::error::McpError;
use crate::servers::http::{Api, HttpServer, Upstream};
use crate::servers::kit::{answer, id_segment, required_text, text, tool};
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, McpServer, RequestContext, ServerFuture, ServerInit};

/// guMCP's order of the tools, declared and coded alike.
const ORDER: [&str; 19] = [
    "soql_query",
    "sosl_search",
    "describe_object",
    "get_record",
    "create_record",
    "update_record",
    "delete_record",
    "get_org_limits",
    "add_contact_to_campaign",
    "add_file_to_record",
    "add_lead_to_campaign",
    "convert_lead",
    "create_child_records",
    "create_enhanced_note",
    "create_file",
    "create_note",
    "find_child_records",
    "list_campaigns",
    "list_email_templates",
];

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    let declared = HttpServer::new(init.manifest.clone(), init.upstream.clone());
    let mut tools = coded_tools();
    tools.extend(declared.tools());
    tools.sort_by_key(|tool| ORDER.iter().position(|name| *name == tool.name));
    Arc::new(Salesforce {
        manifest: init.manifest,
        upstream: init.upstream,
        declared,
        tools,
    })
}

struct Salesforce {
    manifest: Arc<Manifest>,
    upstream: Upstream,
    declared: HttpServer,
    tools: Vec<Tool>,
}

/// guMCP's schemas of the coded tools.
fn coded_tools() -> Vec<Tool> {
    vec![
        tool(
            "get_org_limits",
            "Retrieves the organization's limits and their current usage",
            json!({"type": "object", "properties": {"limit_type": {"type": "string", "description": "One limit (DailyApiRequests, DataStorageMB, …); all when left out"}}}),
        ),
        tool(
            "convert_lead",
            "Converts a lead into an account, a contact and optionally an opportunity",
            json!({"type": "object", "properties": {
                "lead_id": {"type": "string", "description": "The lead's id"},
                "account_id": {"type": "string", "description": "An existing account to merge into"},
                "contact_id": {"type": "string", "description": "An existing contact to merge into"},
                "owner_id": {"type": "string", "description": "The new records' owner"},
                "opportunity_name": {"type": "string", "description": "The new opportunity's name"},
                "create_opportunity": {"type": "boolean", "default": false, "description": "Whether an opportunity is made"},
                "converted_status": {"type": "string", "description": "A converted lead status of the org (Closed - Converted)"},
                "send_notification_email": {"type": "boolean", "default": false, "description": "Whether the owner is emailed"}
            }, "required": ["lead_id", "converted_status"]}),
        ),
        tool(
            "create_child_records",
            "Creates several child records of one parent record",
            json!({"type": "object", "properties": {
                "parent_id": {"type": "string", "description": "The parent record's id"},
                "child_object_name": {"type": "string", "description": "API name of the child object"},
                "parent_field_name": {"type": "string", "description": "The child's field that points at the parent (AccountId, Parent__c)"},
                "records": {"type": "array", "items": {"type": "object", "additionalProperties": true}, "description": "The child records' fields"}
            }, "required": ["parent_id", "child_object_name", "parent_field_name", "records"]}),
        ),
        tool(
            "create_enhanced_note",
            "Creates an enhanced note (ContentNote), linked to a record when one is named",
            json!({"type": "object", "properties": {
                "title": {"type": "string", "description": "The note's title"},
                "content": {"type": "string", "description": "The note's text or HTML"},
                "record_id": {"type": "string", "description": "The record to link it to"},
                "share_type": {"type": "string", "default": "V", "description": "V (viewer), C (collaborator) or I (inferred)"}
            }, "required": ["title", "content"]}),
        ),
        tool(
            "create_file",
            "Uploads a file (ContentVersion), linked to a record when one is named",
            json!({"type": "object", "properties": {
                "title": {"type": "string", "description": "The file's title"},
                "path_on_client": {"type": "string", "description": "The file's name with its extension (report.pdf)"},
                "version_data": {"type": "string", "description": "The file's content, base64-encoded"},
                "description": {"type": "string", "description": "The file's description"},
                "record_id": {"type": "string", "description": "The record to link it to"},
                "share_type": {"type": "string", "default": "V", "description": "V (viewer), C (collaborator) or I (inferred)"}
            }, "required": ["title", "path_on_client", "version_data"]}),
        ),
        tool(
            "find_child_records",
            "Finds the child records of a parent record",
            json!({"type": "object", "properties": {
                "parent_id": {"type": "string", "description": "The parent record's id"},
                "child_object_name": {"type": "string", "description": "API name of the child object"},
                "parent_field_name": {"type": "string", "description": "The child's field that points at the parent"},
                "fields": {"type": "array", "items": {"type": "string"}, "description": "Fields to return (Id, Name, CreatedDate when left out)"}
            }, "required": ["parent_id", "child_object_name", "parent_field_name"]}),
        ),
        tool(
            "list_campaigns",
            "Lists campaigns, the most recently created first",
            json!({"type": "object", "properties": {
                "limit": {"type": "integer", "default": 10, "description": "How many"},
                "status": {"type": "string", "description": "Only campaigns of this status (Planned, In Progress, Completed, Aborted)"}
            }}),
        ),
        tool(
            "list_email_templates",
            "Lists email templates, the most recently created first",
            json!({"type": "object", "properties": {
                "limit": {"type": "integer", "default": 10, "description": "How many"},
                "folder_id": {"type": "string", "description": "Only templates of this folder"}
            }}),
        ),
    ]
}

/// A value inside SOQL single quotes: backslashes and quotes escaped, so it stays one literal.
fn quoted(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// An object or field API name as SOQL takes it: letters, digits and `_` (and `.` between the
/// parts of a relationship field), so an argument can only name, never add to the query.
fn api_name<'a>(value: &'a str, what: &str, dotted: bool) -> Result<&'a str, String> {
    let fits = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || (dotted && c == '.'));
    if fits {
        Ok(value)
    } else {
        Err(format!("{what} {value:?} is not a Salesforce API name"))
    }
}

/// A positive `limit` argument, else guMCP's 10.
fn limit(arguments: &JsonObject) -> u64 {
    arguments
        .get("limit")
        .and_then(Value::as_u64)
        .filter(|limit| *limit > 0)
        .unwrap_or(10)
}

fn given<'a>(arguments: &'a JsonObject, key: &str) -> Option<&'a str> {
    text(arguments, key).filter(|value| !value.is_empty())
}

impl Salesforce {
    fn api<'a>(&'a self, ctx: &'a RequestContext) -> Api<'a> {
        self.upstream.manifest_api(&self.manifest, ctx)
    }

    /// The records a SOQL query finds (its first batch, up to 2,000).
    async fn query(&self, soql: String, ctx: &RequestContext) -> Result<Value, String> {
        let answer = self
            .api(ctx)
            .json(Method::GET, "/query", &[("q", soql)], None)
            .await?;
        Ok(answer.get("records").cloned().unwrap_or(json!([])))
    }

    async fn create(
        &self,
        object: &str,
        fields: &Value,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let path = format!(
            "/sobjects/{}",
            id_segment(api_name(object, "object", false)?)?
        );
        self.api(ctx)
            .json(Method::POST, &path, &[], Some(fields))
            .await
    }

    /// The record linked to a ContentDocument.
    async fn link(
        &self,
        document: &str,
        record: &str,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let share_type = given(arguments, "share_type").unwrap_or("V");
        let link = json!({ "ContentDocumentId": document, "LinkedEntityId": record, "ShareType": share_type });
        self.create("ContentDocumentLink", &link, ctx).await
    }

    async fn org_limits(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let limits = self
            .api(ctx)
            .json(Method::GET, "/limits", &[], None)
            .await?;
        let Some(wanted) = given(arguments, "limit_type") else {
            return Ok(limits);
        };
        match limits.get(wanted) {
            Some(found) => Ok(json!({ wanted: found })),
            None => {
                let known: Vec<&str> = limits
                    .as_object()
                    .map(|all| all.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                Err(format!(
                    "Limit type '{wanted}' not found; the org's limits are: {}",
                    known.join(", ")
                ))
            }
        }
    }

    /// guMCP's request: the lead, its converted status, and what is given of the rest.
    async fn convert_lead(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let lead = required_text(arguments, "lead_id")?;
        let mut body = Map::new();
        body.insert("leadId".into(), json!(lead));
        body.insert(
            "convertedStatus".into(),
            json!(required_text(arguments, "converted_status")?),
        );
        for (argument, member) in [
            ("account_id", "accountId"),
            ("contact_id", "contactId"),
            ("owner_id", "ownerId"),
            ("opportunity_name", "opportunityName"),
        ] {
            if let Some(value) = given(arguments, argument) {
                body.insert(member.into(), json!(value));
            }
        }
        if let Some(create) = arguments.get("create_opportunity").and_then(Value::as_bool) {
            body.insert("doNotCreateOpportunity".into(), json!(!create));
        }
        if let Some(send) = arguments
            .get("send_notification_email")
            .and_then(Value::as_bool)
        {
            body.insert("sendNotificationEmail".into(), json!(send));
        }
        let path = format!("/sobjects/Lead/{}/convert", id_segment(lead)?);
        self.api(ctx)
            .json(Method::POST, &path, &[], Some(&Value::Object(body)))
            .await
    }

    /// Each record made in turn with the parent field set; the answers in order. A failure
    /// stops there and says how many were made.
    async fn create_children(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let parent = required_text(arguments, "parent_id")?;
        let object = api_name(
            required_text(arguments, "child_object_name")?,
            "child_object_name",
            false,
        )?;
        let field = api_name(
            required_text(arguments, "parent_field_name")?,
            "parent_field_name",
            false,
        )?;
        let records = arguments
            .get("records")
            .and_then(Value::as_array)
            .ok_or("records is required")?;
        let mut made = Vec::new();
        for record in records {
            let mut fields = record
                .as_object()
                .cloned()
                .ok_or("each record must be an object")?;
            fields.insert(field.to_owned(), json!(parent));
            match self.create(object, &Value::Object(fields), ctx).await {
                Ok(answer) => made.push(answer),
                Err(err) => {
                    return Err(format!(
                        "{err} (after {} of {} records were made)",
                        made.len(),
                        records.len()
                    ))
                }
            }
        }
        Ok(Value::Array(made))
    }

    /// A ContentNote (its content base64-encoded, as the API takes it), then its link.
    async fn enhanced_note(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let content = required_text(arguments, "content")?;
        let note = json!({
            "Title": required_text(arguments, "title")?,
            "Content": base64::engine::general_purpose::STANDARD.encode(content),
        });
        let made = self.create("ContentNote", &note, ctx).await?;
        let Some(record) = given(arguments, "record_id") else {
            return Ok(json!({ "note": made }));
        };
        let id = made.get("id").and_then(Value::as_str).unwrap_or_default();
        let link = self.link(id, record, arguments, ctx).await?;
        Ok(json!({ "note": made, "link": link }))
    }

    /// A ContentVersion, then — for a record — its ContentDocument found and linked.
    async fn create_file(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let mut version = json!({
            "Title": required_text(arguments, "title")?,
            "PathOnClient": required_text(arguments, "path_on_client")?,
            "VersionData": required_text(arguments, "version_data")?,
        });
        if let Some(description) = given(arguments, "description") {
            version["Description"] = json!(description);
        }
        let made = self.create("ContentVersion", &version, ctx).await?;
        let Some(record) = given(arguments, "record_id") else {
            return Ok(json!({ "file": made }));
        };
        let id = made.get("id").and_then(Value::as_str).unwrap_or_default();
        let found = self
            .query(
                format!(
                    "SELECT ContentDocumentId FROM ContentVersion WHERE Id = {}",
                    quoted(id)
                ),
                ctx,
            )
            .await?;
        let document = found
            .pointer("/0/ContentDocumentId")
            .and_then(Value::as_str)
            .ok_or("Salesforce made the file but did not name its document")?;
        let link = self.link(document, record, arguments, ctx).await?;
        Ok(json!({ "file": made, "link": link }))
    }

    async fn find_children(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let parent = required_text(arguments, "parent_id")?;
        let object = api_name(
            required_text(arguments, "child_object_name")?,
            "child_object_name",
            false,
        )?;
        let field = api_name(
            required_text(arguments, "parent_field_name")?,
            "parent_field_name",
            true,
        )?;
        let fields: Vec<&str> = match arguments.get("fields").and_then(Value::as_array) {
            Some(fields) if !fields.is_empty() => fields
                .iter()
                .map(|field| api_name(field.as_str().unwrap_or_default(), "field", true))
                .collect::<Result<_, _>>()?,
            _ => vec!["Id", "Name", "CreatedDate"],
        };
        let soql = format!(
            "SELECT {} FROM {object} WHERE {field} = {}",
            fields.join(","),
            quoted(parent)
        );
        self.query(soql, ctx).await
    }

    async fn list_campaigns(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let mut soql =
            "SELECT Id, Name, IsActive, Status, Type, StartDate, EndDate FROM Campaign".to_owned();
        if let Some(status) = given(arguments, "status") {
            soql.push_str(&format!(" WHERE Status = {}", quoted(status)));
        }
        soql.push_str(&format!(
            " ORDER BY CreatedDate DESC LIMIT {}",
            limit(arguments)
        ));
        self.query(soql, ctx).await
    }

    async fn list_email_templates(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let mut soql = "SELECT Id, Name, FolderId, Subject, ApiVersion, TemplateType, TemplateStyle FROM EmailTemplate".to_owned();
        if let Some(folder) = given(arguments, "folder_id") {
            soql.push_str(&format!(" WHERE FolderId = {}", quoted(folder)));
        }
        soql.push_str(&format!(
            " ORDER BY CreatedDate DESC LIMIT {}",
            limit(arguments)
        ));
        self.query(soql, ctx).await
    }
}

impl McpServer for Salesforce {
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
            let args = &arguments;
            let outcome = match name {
                "get_org_limits" => self.org_limits(args, ctx).await,
                "convert_lead" => self.convert_lead(args, ctx).await,
                "create_child_records" => self.create_children(args, ctx).await,
                "create_enhanced_note" => self.enhanced_note(args, ctx).await,
                "create_file" => self.create_file(args, ctx).await,
                "find_child_records" => self.find_children(args, ctx).await,
                "list_campaigns" => self.list_campaigns(args, ctx).await,
                "list_email_templates" => self.list_email_templates(args, ctx).await,
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
    fn soql_values_stay_literals_and_names_stay_names() {
        assert_eq!(quoted("O'Brien \\ x"), "'O\\'Brien \\\\ x'");
        assert!(api_name("Contact", "o", false).is_ok());
        assert!(api_name("Account.Name", "f", true).is_ok());
        for hostile in [
            "Contact WHERE Id != ''",
            "Name,(SELECT Id FROM Users)",
            "",
            "a.b",
        ] {
            assert!(api_name(hostile, "o", false).is_err(), "{hostile}");
        }
    }
}
