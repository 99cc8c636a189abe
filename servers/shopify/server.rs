//! shopify: Shopify's GraphQL Admin API on each user's own shop, with guMCP's nine tools,
//! names and arguments. Every tool is one GraphQL request; code builds its variables (ids
//! written as Shopify's global ids, `gid://shopify/{Type}/{id}`, when a bare number is given)
//! and reads GraphQL's own failures: `errors` beside a 200 answer, and a mutation's
//! `userErrors`, become tool errors with Shopify's words. guMCP's resource too: the shop, as
//! `shopify://shop/{id}`. The runtime's `Api` fills the shop's host, applies the access token
//! (`X-Shopify-Access-Token`) and words HTTP failures.

use std::sync::Arc;

use futures::FutureExt;
use reqwest::Method;
use rmcp::model::{CallToolResult, JsonObject, ReadResourceResult, Resource, Tool};
use serde_json::{json, Map, Value};

use crate::protocol::error::McpError;
use crate::servers::http::Upstream;
use crate::servers::kit::{answer, json_resource, required_text, text, tool};
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, Features, McpServer, RequestContext, ServerFuture, ServerInit};

const SHOP_URI: &str = "shopify://shop/";

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    Arc::new(Shopify {
        manifest: init.manifest,
        upstream: init.upstream,
        tools: declared_tools(),
    })
}

struct Shopify {
    manifest: Arc<Manifest>,
    upstream: Upstream,
    tools: Vec<Tool>,
}

const SHOP: &str = "query Shop { shop { id name email myshopifyDomain \
    primaryDomain { url host } currencyCode ianaTimezone plan { displayName } \
    billingAddress { address1 city province country zip } } }";

/// What a product answers with: its fields, its first variants (with their inventory items)
/// and images.
const PRODUCT_FIELDS: &str = "id title handle description descriptionHtml productType vendor \
    status tags createdAt updatedAt \
    variants(first: 10) { edges { node { id title price sku inventoryQuantity inventoryItem { id } } } } \
    images(first: 5) { edges { node { id url altText } } }";

const LEVEL_FIELDS: &str =
    "id quantities(names: [\"available\", \"on_hand\"]) { name quantity } location { id name }";

fn products_query() -> String {
    format!(
        "query Products($first: Int, $last: Int, $after: String, $before: String, $query: String, \
         $sortKey: ProductSortKeys, $reverse: Boolean, $savedSearchId: ID) {{ \
         products(first: $first, last: $last, after: $after, before: $before, query: $query, \
         sortKey: $sortKey, reverse: $reverse, savedSearchId: $savedSearchId) {{ \
         edges {{ cursor node {{ {PRODUCT_FIELDS} }} }} \
         pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }} }} }}"
    )
}

/// `id` as a Shopify global id of `kind`: a bare id (`123`) is written out in full, a global
/// id is kept as given.
fn global_id(id: &str, kind: &str) -> String {
    let id = id.trim();
    if id.starts_with("gid://") {
        id.to_owned()
    } else {
        format!("gid://shopify/{kind}/{id}")
    }
}

/// The location and inventory item of an inventory level's id
/// (`gid://shopify/InventoryLevel/{location}?inventory_item_id={item}`).
fn level_parts(level: &str) -> Result<(String, String), String> {
    let rest = level
        .trim()
        .strip_prefix("gid://shopify/InventoryLevel/")
        .unwrap_or(level.trim());
    let parsed = rest
        .split_once("?inventory_item_id=")
        .filter(|(location, item)| {
            !location.is_empty()
                && !item.is_empty()
                && location.bytes().all(|b| b.is_ascii_digit())
                && item.bytes().all(|b| b.is_ascii_digit())
        });
    let Some((location, item)) = parsed else {
        return Err(format!(
            "{level:?} is not an inventory level id \
             (gid://shopify/InventoryLevel/<location>?inventory_item_id=<item>)"
        ));
    };
    Ok((
        format!("gid://shopify/Location/{location}"),
        format!("gid://shopify/InventoryItem/{item}"),
    ))
}

/// A GraphQL answer's failures as one sentence: `errors`, else the `userErrors` of the
/// mutation named `payload`.
fn graphql_failure(answer: &Value, payload: Option<&str>) -> Option<String> {
    let messages = |list: Option<&Value>| -> Vec<String> {
        list.and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|error| {
                let message = error.get("message")?.as_str()?;
                let field = error
                    .get("field")
                    .and_then(Value::as_array)
                    .map(|path| {
                        path.iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(".")
                    })
                    .filter(|path| !path.is_empty());
                Some(match field {
                    Some(field) => format!("{field}: {message}"),
                    None => message.to_owned(),
                })
            })
            .collect()
    };
    let errors = messages(answer.get("errors"));
    if !errors.is_empty() {
        return Some(format!(
            "Shopify refused the request: {}",
            errors.join("; ")
        ));
    }
    let user_errors = payload
        .map(|name| messages(answer.pointer(&format!("/data/{name}/userErrors"))))
        .unwrap_or_default();
    (!user_errors.is_empty()).then(|| format!("Shopify refused: {}", user_errors.join("; ")))
}

/// The arguments of `names` that are given, under the same names.
fn given(arguments: &JsonObject, names: &[&str]) -> Map<String, Value> {
    names
        .iter()
        .filter_map(|name| {
            let value = arguments.get(*name).filter(|value| !value.is_null())?;
            Some(((*name).to_owned(), value.clone()))
        })
        .collect()
}

impl Shopify {
    /// One GraphQL request; its `data`, or the sentence a tool error says.
    async fn graphql(
        &self,
        query: &str,
        variables: Value,
        payload: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let body = json!({ "query": query, "variables": variables });
        let answer = self
            .upstream
            .manifest_api(&self.manifest, ctx)
            .json(Method::POST, "/graphql.json", &[], Some(&body))
            .await?;
        if let Some(failure) = graphql_failure(&answer, payload) {
            return Err(failure);
        }
        Ok(answer.get("data").cloned().unwrap_or(Value::Null))
    }

    async fn run(
        &self,
        name: &str,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        match name {
            "get_shop_details" => self.graphql(SHOP, json!({}), None, ctx).await,
            "create_product" => {
                required_text(arguments, "title")?;
                let product = given(
                    arguments,
                    &[
                        "title",
                        "descriptionHtml",
                        "vendor",
                        "productType",
                        "tags",
                        "status",
                        "handle",
                        "giftCard",
                        "productOptions",
                        "requiresSellingPlan",
                        "seo",
                        "metafields",
                        "templateSuffix",
                    ],
                );
                let mutation = format!(
                    "mutation ProductCreate($product: ProductCreateInput!) {{ \
                     productCreate(product: $product) {{ product {{ {PRODUCT_FIELDS} }} \
                     userErrors {{ field message }} }} }}"
                );
                self.graphql(
                    &mutation,
                    json!({ "product": product }),
                    Some("productCreate"),
                    ctx,
                )
                .await
            }
            "get_products" => {
                let mut variables = given(
                    arguments,
                    &[
                        "first",
                        "last",
                        "after",
                        "before",
                        "query",
                        "sortKey",
                        "reverse",
                        "savedSearchId",
                    ],
                );
                // guMCP's defaults: the first ten by id (unless counting from the end).
                if !variables.contains_key("last") {
                    variables.entry("first").or_insert(json!(10));
                }
                variables.entry("sortKey").or_insert(json!("ID"));
                self.graphql(&products_query(), Value::Object(variables), None, ctx)
                    .await
            }
            "get_product" => {
                let id = global_id(required_text(arguments, "product_id")?, "Product");
                let query = format!(
                    "query Product($id: ID!) {{ product(id: $id) {{ {PRODUCT_FIELDS} }} }}"
                );
                self.graphql(&query, json!({ "id": id }), None, ctx).await
            }
            "delete_product" => {
                let id = global_id(required_text(arguments, "id")?, "Product");
                let mutation = "mutation ProductDelete($input: ProductDeleteInput!) { \
                     productDelete(input: $input) { deletedProductId userErrors { field message } } }";
                self.graphql(
                    mutation,
                    json!({ "input": { "id": id } }),
                    Some("productDelete"),
                    ctx,
                )
                .await
            }
            "get_inventory_level" => {
                let item = global_id(
                    required_text(arguments, "inventory_item_id")?,
                    "InventoryItem",
                );
                match text(arguments, "location_id").filter(|id| !id.is_empty()) {
                    Some(location) => {
                        let query = format!(
                            "query Level($item: ID!, $location: ID!) {{ inventoryItem(id: $item) {{ \
                             id tracked inventoryLevel(locationId: $location) {{ {LEVEL_FIELDS} }} }} }}"
                        );
                        let variables =
                            json!({ "item": item, "location": global_id(location, "Location") });
                        self.graphql(&query, variables, None, ctx).await
                    }
                    None => {
                        let query = format!(
                            "query Levels($item: ID!) {{ inventoryItem(id: $item) {{ id tracked \
                             inventoryLevels(first: 10) {{ edges {{ node {{ {LEVEL_FIELDS} }} }} }} }} }}"
                        );
                        self.graphql(&query, json!({ "item": item }), None, ctx)
                            .await
                    }
                }
            }
            "adjust_inventory" => {
                let (location, item) =
                    level_parts(required_text(arguments, "inventory_level_id")?)?;
                let delta = arguments
                    .get("quantity_adjustment")
                    .and_then(Value::as_i64)
                    .ok_or("quantity_adjustment is required")?;
                let mutation = "mutation Adjust($input: InventoryAdjustQuantitiesInput!) { \
                     inventoryAdjustQuantities(input: $input) { inventoryAdjustmentGroup { \
                     createdAt reason changes { name delta quantityAfterChange } } \
                     userErrors { field message } } }";
                let input = json!({
                    "reason": "correction",
                    "name": "available",
                    "changes": [{ "delta": delta, "inventoryItemId": item, "locationId": location }],
                });
                self.graphql(
                    mutation,
                    json!({ "input": input }),
                    Some("inventoryAdjustQuantities"),
                    ctx,
                )
                .await
            }
            "update_inventory_tracking" => {
                let item = global_id(
                    required_text(arguments, "inventory_item_id")?,
                    "InventoryItem",
                );
                let tracked = arguments
                    .get("tracked")
                    .and_then(Value::as_bool)
                    .ok_or("tracked is required")?;
                let mutation = "mutation Track($id: ID!, $input: InventoryItemInput!) { \
                     inventoryItemUpdate(id: $id, input: $input) { inventoryItem { id tracked } \
                     userErrors { field message } } }";
                let variables = json!({ "id": item, "input": { "tracked": tracked } });
                self.graphql(mutation, variables, Some("inventoryItemUpdate"), ctx)
                    .await
            }
            "get_variant_inventory_item" => {
                let id = global_id(required_text(arguments, "variant_id")?, "ProductVariant");
                let query = format!(
                    "query Variant($id: ID!) {{ productVariant(id: $id) {{ id title sku \
                     inventoryItem {{ id tracked inventoryLevels(first: 10) {{ edges {{ node {{ {LEVEL_FIELDS} }} }} }} }} }} }}"
                );
                self.graphql(&query, json!({ "id": id }), None, ctx).await
            }
            _ => Err(format!("Unknown tool: {name}")),
        }
    }
}

impl McpServer for Shopify {
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
        async move {
            let data = self
                .graphql(SHOP, json!({}), None, ctx)
                .await
                .map_err(McpError::internal)?;
            let shop = data.get("shop").cloned().unwrap_or(Value::Null);
            let text_of = |key: &str| shop.get(key).and_then(Value::as_str).unwrap_or_default();
            let name = shop
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("Unknown Shop");
            Ok(vec![Resource::new(
                format!("{SHOP_URI}{}", text_of("id")),
                name.to_owned(),
            )
            .with_description(format!(
                "Shopify shop: {name} ({})",
                text_of("myshopifyDomain")
            ))
            .with_mime_type("application/json")])
        }
        .boxed()
    }

    fn read_resource<'a>(
        &'a self,
        uri: &'a str,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<ReadResourceResult, CallError>> {
        async move {
            if !uri.starts_with(SHOP_URI) {
                return json_resource(uri, None);
            }
            let data = self
                .graphql(SHOP, json!({}), None, ctx)
                .await
                .map_err(McpError::internal)?;
            json_resource(uri, data.get("shop").cloned())
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
            "get_shop_details",
            "Get the shop's name, domains, currency, plan and address",
            json!({"type": "object", "properties": {}}),
        ),
        tool(
            "create_product",
            "Create a product",
            json!({"type": "object", "properties": {"title": {"type": "string"}, "descriptionHtml": {"type": "string"}, "vendor": {"type": "string"}, "productType": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}, "status": {"type": "string", "enum": ["DRAFT", "ACTIVE", "ARCHIVED"]}, "handle": {"type": "string"}, "giftCard": {"type": "boolean"}, "productOptions": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}, "values": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}}}, "required": ["name", "values"]}}, "requiresSellingPlan": {"type": "boolean"}, "seo": {"type": "object", "properties": {"title": {"type": "string"}, "description": {"type": "string"}}}, "metafields": {"type": "array", "items": {"type": "object", "properties": {"namespace": {"type": "string"}, "key": {"type": "string"}, "value": {"type": "string"}, "type": {"type": "string"}}, "required": ["namespace", "key", "value", "type"]}}, "templateSuffix": {"type": "string"}}, "required": ["title"]}),
        ),
        tool(
            "get_products",
            "List products, with filters, sorting and cursor paging",
            json!({"type": "object", "properties": {"first": {"type": "integer"}, "query": {"type": "string"}, "reverse": {"type": "boolean"}, "sortKey": {"type": "string", "enum": ["CREATED_AT", "ID", "INVENTORY_TOTAL", "PRODUCT_TYPE", "PUBLISHED_AT", "RELEVANCE", "TITLE", "UPDATED_AT", "VENDOR"]}, "after": {"type": "string"}, "before": {"type": "string"}, "last": {"type": "integer"}, "savedSearchId": {"type": "string"}}}),
        ),
        tool(
            "get_product",
            "Get a product with its variants and images",
            json!({"type": "object", "properties": {"product_id": {"type": "string"}}, "required": ["product_id"]}),
        ),
        tool(
            "delete_product",
            "Delete a product with its variants and media",
            json!({"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}),
        ),
        tool(
            "get_inventory_level",
            "Get an inventory item's levels, at one location or all",
            json!({"type": "object", "properties": {"inventory_item_id": {"type": "string"}, "location_id": {"type": "string"}}, "required": ["inventory_item_id"]}),
        ),
        tool(
            "adjust_inventory",
            "Adjust the available quantity of an inventory level by a positive or negative amount",
            json!({"type": "object", "properties": {"inventory_level_id": {"type": "string"}, "quantity_adjustment": {"type": "integer"}}, "required": ["inventory_level_id", "quantity_adjustment"]}),
        ),
        tool(
            "update_inventory_tracking",
            "Turn inventory tracking of an inventory item on or off",
            json!({"type": "object", "properties": {"inventory_item_id": {"type": "string"}, "tracked": {"type": "boolean"}}, "required": ["inventory_item_id", "tracked"]}),
        ),
        tool(
            "get_variant_inventory_item",
            "Get a product variant's inventory item and its levels",
            json!({"type": "object", "properties": {"variant_id": {"type": "string"}}, "required": ["variant_id"]}),
        ),
    ]
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_ids_become_global_ids_and_level_ids_split() {
        assert_eq!(global_id("123", "Product"), "gid://shopify/Product/123");
        assert_eq!(
            global_id("gid://shopify/Product/9", "Product"),
            "gid://shopify/Product/9"
        );
        assert_eq!(
            level_parts("gid://shopify/InventoryLevel/55?inventory_item_id=66").unwrap(),
            (
                "gid://shopify/Location/55".to_owned(),
                "gid://shopify/InventoryItem/66".to_owned()
            )
        );
        assert!(level_parts("gid://shopify/InventoryLevel/55").is_err());
        assert!(level_parts("55?inventory_item_id=6&x=1").is_err());
    }
}
