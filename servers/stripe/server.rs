//! stripe: Stripe's API with guMCP's twenty-one tools, names and arguments. Twenty are one
//! request each, declared in `server.toml` and run by the runtime's `http` engine, their
//! bodies form-encoded as Stripe takes them. attach_payment_method is code: it attaches the
//! payment method, then, when asked, makes it the customer's default for invoices (a second
//! request). The runtime's `Api` does the credentials, the retry on 401 and the wording of
//! upstream failures (Stripe's own `error.message`).

use std::sync::Arc;

use reqwest::Method;
use rmcp::model::{CallToolResult, JsonObject, Tool};
use serde_json::{json, Value};

use crate::protocol::error::McpError;
use crate::servers::http::{Api, HttpServer, Upstream};
use crate::servers::kit::{answer, id_segment, required_text, tool};
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, McpServer, RequestContext, ServerFuture, ServerInit};

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    let declared = HttpServer::new(init.manifest.clone(), init.upstream.clone());
    let mut tools = declared.tools();
    // guMCP lists it last.
    tools.push(tool(
        "attach_payment_method",
        "Attach a payment method to a customer",
        json!({
            "type": "object",
            "properties": {
                "payment_method": { "type": "string", "description": "The ID of the payment method to attach" },
                "customer_id": { "type": "string", "description": "The ID of the customer to attach the payment method to" },
                "set_as_default": { "type": "boolean", "description": "Whether to set this as the default payment method" }
            },
            "required": ["payment_method", "customer_id"]
        }),
    ));
    Arc::new(Stripe {
        manifest: init.manifest,
        upstream: init.upstream,
        declared,
        tools,
    })
}

struct Stripe {
    manifest: Arc<Manifest>,
    upstream: Upstream,
    /// The tools `server.toml` declares, run by the `http` engine.
    declared: HttpServer,
    tools: Vec<Tool>,
}

impl Stripe {
    fn api<'a>(&'a self, ctx: &'a RequestContext) -> Api<'a> {
        self.upstream.manifest_api(&self.manifest, ctx)
    }

    /// The attached payment method, as Stripe answers the attachment.
    async fn attach_payment_method(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let method = required_text(arguments, "payment_method")?;
        let customer = required_text(arguments, "customer_id")?;
        let api = self.api(ctx);
        let path = format!("/v1/payment_methods/{}/attach", id_segment(method)?);
        let attached = api
            .form(Method::POST, &path, &[], &json!({ "customer": customer }))
            .await?;
        if arguments.get("set_as_default").and_then(Value::as_bool) == Some(true) {
            let path = format!("/v1/customers/{}", id_segment(customer)?);
            let default = json!({ "invoice_settings": { "default_payment_method": method } });
            api.form(Method::POST, &path, &[], &default).await?;
        }
        Ok(attached)
    }
}

impl McpServer for Stripe {
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
            match name {
                "attach_payment_method" => {
                    Ok(answer(self.attach_payment_method(&arguments, ctx).await))
                }
                _ => Err(McpError::invalid_params(format!("Unknown tool: {name}")).into()),
            }
        })
    }
}
