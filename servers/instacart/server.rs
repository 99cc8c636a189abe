//! instacart: Instacart's Developer Platform API with guMCP's two tools.
//! `create_shopping_list` is declared in `server.toml`; `create_recipe` is code, because each
//! ingredient's `quantity` and `unit` travel as Instacart's `measurements` list.

use std::sync::Arc;

use reqwest::Method;
use rmcp::model::{CallToolResult, JsonObject, Tool};
use serde_json::{json, Value};

use crate::servers::http::{HttpServer, Upstream};
use crate::servers::kit::{answer, required_text, tool};
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, Features, McpServer, RequestContext, ServerFuture, ServerInit};

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    let declared = HttpServer::new(init.manifest.clone(), init.upstream.clone());
    let mut tools = declared.tools();
    tools.push(recipe_tool());
    Arc::new(Instacart {
        manifest: init.manifest,
        upstream: init.upstream,
        declared,
        tools,
    })
}

struct Instacart {
    manifest: Arc<Manifest>,
    upstream: Upstream,
    /// create_shopping_list, run by the `http` engine.
    declared: HttpServer,
    tools: Vec<Tool>,
}

fn recipe_tool() -> Tool {
    tool(
        "create_recipe",
        "Create a recipe page on Instacart; answers the page's URL (products_link_url)",
        json!({
            "type": "object",
            "properties": {
                "title": { "type": "string", "description": "The title of the recipe" },
                "image_url": { "type": "string", "description": "URL of the image to display on the page (Optional)" },
                "author": { "type": "string", "description": "The author of the recipe (Optional)" },
                "servings": { "type": "integer", "description": "The number of servings the recipe makes (Optional)" },
                "cooking_time": { "type": "integer", "description": "The time it takes to cook the recipe in minutes (Optional)" },
                "instructions": { "type": "array", "items": { "type": "string" }, "description": "Step-by-step instructions for the recipe" },
                "ingredients": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "name": { "type": "string", "description": "Ingredient name (required)" },
                            "display_text": { "type": "string", "description": "Display text for the ingredient (Optional)" },
                            "quantity": { "type": "number", "description": "Ingredient quantity (Optional)" },
                            "unit": { "type": "string", "description": "Unit of measurement (Optional)" }
                        },
                        "required": ["name"]
                    },
                    "description": "Array of ingredients for the recipe"
                },
                "partner_linkback_url": { "type": "string", "description": "URL to link back to your site (Optional)" },
                "enable_pantry_items": { "type": "boolean", "description": "Whether to enable pantry items feature (Optional, defaults to false)" }
            },
            "required": ["title", "ingredients"]
        }),
    )
}

/// The `/products/recipe` body guMCP builds: the recipe's fields, each ingredient's quantity
/// and unit as one measurement, and the landing page's settings when any is given.
fn recipe_body(arguments: &JsonObject) -> Result<Value, String> {
    let mut body = json!({ "title": required_text(arguments, "title")? });
    for field in [
        "image_url",
        "author",
        "servings",
        "cooking_time",
        "instructions",
    ] {
        if let Some(value) = arguments.get(field).filter(|value| !value.is_null()) {
            body[field] = value.clone();
        }
    }
    let ingredients = arguments
        .get("ingredients")
        .and_then(Value::as_array)
        .ok_or("ingredients is required")?;
    let ingredients: Vec<Value> = ingredients
        .iter()
        .map(|given| {
            let mut ingredient = json!({ "name": given.get("name").cloned().unwrap_or_default() });
            if let Some(text) = given.get("display_text") {
                ingredient["display_text"] = text.clone();
            }
            if let (Some(quantity), Some(unit)) = (given.get("quantity"), given.get("unit")) {
                ingredient["measurements"] = json!([{ "quantity": quantity, "unit": unit }]);
            }
            ingredient
        })
        .collect();
    body["ingredients"] = Value::Array(ingredients);
    let mut landing = JsonObject::new();
    for field in ["partner_linkback_url", "enable_pantry_items"] {
        if let Some(value) = arguments.get(field).filter(|value| !value.is_null()) {
            landing.insert(field.to_owned(), value.clone());
        }
    }
    if !landing.is_empty() {
        body["landing_page_configuration"] = Value::Object(landing);
    }
    Ok(body)
}

impl Instacart {
    async fn create_recipe(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let body = recipe_body(arguments)?;
        self.upstream
            .manifest_api(&self.manifest, ctx)
            .json(Method::POST, "/products/recipe", &[], Some(&body))
            .await
    }
}

impl McpServer for Instacart {
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
        if name != "create_recipe" {
            return self.declared.call_tool(name, arguments, ctx);
        }
        Box::pin(async move { Ok(answer(self.create_recipe(&arguments, ctx).await)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_become_measurements() {
        let given = json!({ "title": "Soup", "ingredients": [
            { "name": "carrot", "quantity": 2, "unit": "each" },
            { "name": "salt", "display_text": "a pinch of salt" }
        ], "enable_pantry_items": true });
        assert_eq!(
            recipe_body(given.as_object().unwrap()).unwrap(),
            json!({ "title": "Soup", "ingredients": [
                { "name": "carrot", "measurements": [{ "quantity": 2, "unit": "each" }] },
                { "name": "salt", "display_text": "a pinch of salt" }
            ], "landing_page_configuration": { "enable_pantry_items": true } })
        );
    }
}
