//! sendgrid: SendGrid's v3 API with guMCP's five tools. Four are declared in `server.toml`;
//! send_email is code, because guMCP's `schedule_time` is an ISO 8601 date-time and SendGrid's
//! `send_at` a Unix timestamp.

use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime};
use reqwest::Method;
use rmcp::model::{CallToolResult, JsonObject, Tool};
use serde_json::{json, Value};

use crate::servers::http::{HttpServer, Upstream};
use crate::servers::kit::{answer, required_text, text, tool};
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, Features, McpServer, RequestContext, ServerFuture, ServerInit};

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    let declared = HttpServer::new(init.manifest.clone(), init.upstream.clone());
    let mut tools = vec![send_email_tool()];
    tools.extend(declared.tools());
    Arc::new(Sendgrid {
        manifest: init.manifest,
        upstream: init.upstream,
        declared,
        tools,
    })
}

struct Sendgrid {
    manifest: Arc<Manifest>,
    upstream: Upstream,
    /// The tools but send_email, run by the `http` engine.
    declared: HttpServer,
    tools: Vec<Tool>,
}

fn send_email_tool() -> Tool {
    tool(
        "send_email",
        "Send an email using SendGrid (plain text), now or at a scheduled time",
        json!({
            "type": "object",
            "properties": {
                "to": { "type": "string", "description": "Recipient email address" },
                "subject": { "type": "string", "description": "Email subject" },
                "content": { "type": "string", "description": "The message, sent as text/plain" },
                "from_email": { "type": "string", "description": "Sender email address (a verified sender of the account)" },
                "from_name": { "type": "string", "description": "Sender name" },
                "template_id": { "type": "string", "description": "A template to use" },
                "schedule_time": { "type": "string", "description": "When to send, ISO 8601 (2026-06-01T09:00:00+02:00; without an offset, UTC), at most 72 hours ahead" }
            },
            "required": ["to", "subject", "content", "from_email"]
        }),
    )
}

/// An ISO 8601 date-time as a Unix timestamp; without an offset it is taken as UTC.
fn unix_time(when: &str) -> Result<i64, String> {
    if let Ok(at) = DateTime::parse_from_rfc3339(when) {
        return Ok(at.timestamp());
    }
    [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ]
    .iter()
    .find_map(|format| NaiveDateTime::parse_from_str(when, format).ok())
    .map(|at| at.and_utc().timestamp())
    .ok_or_else(|| format!("schedule_time {when:?} is not an ISO 8601 date-time"))
}

/// The `/mail/send` body guMCP builds.
fn mail_body(arguments: &JsonObject) -> Result<Value, String> {
    let mut from = json!({ "email": required_text(arguments, "from_email")? });
    if let Some(name) = text(arguments, "from_name") {
        from["name"] = json!(name);
    }
    let mut body = json!({
        "personalizations": [{ "to": [{ "email": required_text(arguments, "to")? }] }],
        "from": from,
        "subject": required_text(arguments, "subject")?,
        "content": [{ "type": "text/plain", "value": required_text(arguments, "content")? }]
    });
    if let Some(template) = text(arguments, "template_id") {
        body["template_id"] = json!(template);
    }
    if let Some(when) = text(arguments, "schedule_time") {
        body["send_at"] = json!(unix_time(when)?);
    }
    Ok(body)
}

impl Sendgrid {
    async fn send_email(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let body = mail_body(arguments)?;
        self.upstream
            .manifest_api(&self.manifest, ctx)
            .json(Method::POST, "/mail/send", &[], Some(&body))
            .await?;
        Ok(json!("Email sent successfully!"))
    }
}

impl McpServer for Sendgrid {
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
        if name != "send_email" {
            return self.declared.call_tool(name, arguments, ctx);
        }
        Box::pin(async move { Ok(answer(self.send_email(&arguments, ctx).await)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_times_become_unix_timestamps() {
        assert_eq!(unix_time("2026-06-01T09:00:00+02:00"), Ok(1_780_297_200));
        assert_eq!(unix_time("2026-06-01T07:00:00Z"), Ok(1_780_297_200));
        assert_eq!(unix_time("2026-06-01T07:00:00"), Ok(1_780_297_200));
        assert!(unix_time("next tuesday").is_err());
    }
}
