//! webflow: Webflow's Data API v2 with guMCP's twenty-seven tools, names and arguments.
//! Twenty-five are one request each, declared in `server.toml` and handed to the runtime's
//! `http` engine. update_collection_items_staging and delete_collection_items_staging are code:
//! their `items` take guMCP's snake_case names (`cms_locale_id`, `is_archived`, `is_draft`,
//! `field_data`), which each item must carry to Webflow as its camelCase fields. The runtime's
//! `Api` does the credentials, the retry on 401 and the wording of upstream failures.

use std::sync::Arc;

use reqwest::Method;
use rmcp::model::{CallToolResult, JsonObject, Tool};
use serde_json::{json, Map, Value};

use crate::protocol::error::McpError;
use crate::servers::http::{HttpServer, Upstream};
use crate::servers::kit::{answer, id_segment, required_text, tool};
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, McpServer, RequestContext, ServerFuture, ServerInit};

/// guMCP's names of an item's fields → Webflow's.
const ITEM_FIELDS: [(&str, &str); 5] = [
    ("id", "id"),
    ("cms_locale_id", "cmsLocaleId"),
    ("is_archived", "isArchived"),
    ("is_draft", "isDraft"),
    ("field_data", "fieldData"),
];

/// guMCP's order of the tools, declared and coded alike.
const ORDER: [&str; 27] = [
    "get_authorized_user",
    "list_sites",
    "get_site",
    "get_custom_domains",
    "list_forms",
    "list_form_submissions",
    "get_form_submission",
    "list_form_submissions_by_site",
    "delete_form_submission",
    "list_pages",
    "get_page_metadata",
    "get_page_content",
    "list_collections",
    "get_collection",
    "delete_collection",
    "create_collection",
    "list_collection_items_staging",
    "get_collection_item_staging",
    "update_collection_item_staging",
    "update_collection_items_staging",
    "create_collection_item_staging",
    "delete_collection_item_staging",
    "delete_collection_items_staging",
    "list_users",
    "get_user",
    "delete_user",
    "invite_user",
];

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    let declared = HttpServer::new(init.manifest.clone(), init.upstream.clone());
    let mut tools = coded_tools();
    tools.extend(declared.tools());
    tools.sort_by_key(|tool| ORDER.iter().position(|name| *name == tool.name));
    Arc::new(Webflow {
        manifest: init.manifest,
        upstream: init.upstream,
        declared,
        tools,
    })
}

struct Webflow {
    manifest: Arc<Manifest>,
    upstream: Upstream,
    /// The tools `server.toml` declares, run by the `http` engine.
    declared: HttpServer,
    tools: Vec<Tool>,
}

fn coded_tools() -> Vec<Tool> {
    let collection =
        json!({ "type": "string", "description": "Unique identifier for a Collection" });
    let id = json!({ "type": "string", "description": "Unique identifier for the Item" });
    let locale =
        json!({ "type": "string", "description": "Identifier for the locale of the CMS item" });
    vec![
        tool(
            "update_collection_items_staging",
            "Update a single item or multiple items in a Collection",
            json!({
                "type": "object",
                "properties": {
                    "collection_id": collection,
                    "items": {
                        "type": "array",
                        "description": "Array of items to update",
                        "items": {
                            "type": "object",
                            "properties": {
                                "id": id,
                                "cms_locale_id": locale,
                                "is_archived": { "type": "boolean", "description": "Boolean determining if the Item is set to archived" },
                                "is_draft": { "type": "boolean", "description": "Boolean determining if the Item is set to draft" },
                                "field_data": { "type": "object", "description": "Fields to update for the item" }
                            },
                            "required": ["id"]
                        }
                    }
                },
                "required": ["collection_id", "items"]
            }),
        ),
        tool(
            "delete_collection_items_staging",
            "Delete Items from a Collection",
            json!({
                "type": "object",
                "properties": {
                    "collection_id": collection,
                    "items": {
                        "type": "array",
                        "description": "Array of items to delete",
                        "items": {
                            "type": "object",
                            "properties": { "id": id, "cms_locale_id": locale },
                            "required": ["id"]
                        }
                    }
                },
                "required": ["collection_id", "items"]
            }),
        ),
    ]
}

/// The `items` argument as Webflow takes it: each item's fields renamed, those not given left
/// out.
fn webflow_items(arguments: &JsonObject) -> Value {
    let items = arguments
        .get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|item| {
            let renamed: Map<String, Value> = ITEM_FIELDS
                .iter()
                .filter_map(|(ours, theirs)| {
                    let value = item.get(*ours).filter(|value| !value.is_null())?;
                    Some(((*theirs).to_owned(), value.clone()))
                })
                .collect();
            Value::Object(renamed)
        })
        .collect();
    json!({ "items": Value::Array(items) })
}

impl Webflow {
    /// `method` on the collection's items with the renamed `items` as the body.
    async fn items(
        &self,
        method: Method,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let collection = id_segment(required_text(arguments, "collection_id")?)?;
        let path = format!("/collections/{collection}/items");
        let body = webflow_items(arguments);
        let answer = self
            .upstream
            .manifest_api(&self.manifest, ctx)
            .json(method, &path, &[], Some(&body))
            .await?;
        Ok(match answer {
            Value::Null => Value::String("Items deleted.".to_owned()),
            other => other,
        })
    }
}

impl McpServer for Webflow {
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
            let method = match name {
                "update_collection_items_staging" => Method::PATCH,
                "delete_collection_items_staging" => Method::DELETE,
                _ => return Err(McpError::invalid_params(format!("Unknown tool: {name}")).into()),
            };
            Ok(answer(self.items(method, &arguments, ctx).await))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_take_webflows_names_and_only_the_fields_given() {
        let arguments = json!({ "items": [
            { "id": "i1", "is_draft": false, "field_data": { "name": "A" } },
            { "id": "i2", "cms_locale_id": "l1", "is_archived": null }
        ] });
        assert_eq!(
            webflow_items(arguments.as_object().unwrap()),
            json!({ "items": [
                { "id": "i1", "isDraft": false, "fieldData": { "name": "A" } },
                { "id": "i2", "cmsLocaleId": "l1" }
            ] })
        );
    }
}
