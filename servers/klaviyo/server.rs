//! klaviyo: Klaviyo's API (revision 2025-04-15) with guMCP's seventeen tools, names and
//! arguments. Nine are one request each, declared in `server.toml` and run by the runtime's
//! `http` engine. The eight here need logic: create_profile and update_profile gather named
//! arguments into a profile's attributes and location; update_campaign builds the campaign's
//! audiences, options and send strategy; send_campaign sets a draft to send immediately, then
//! starts a send job; list_campaigns and list_metrics compose Klaviyo filters from arguments;
//! add_profiles_to_list and remove_profiles_from_list send profile ids as relationships. The
//! runtime's `Api` does the credentials, the retry on 401 and the wording of upstream failures.
//!
//! guMCP's resources are code too: email and SMS campaigns as `klaviyo://campaign/{id}`.

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

const CAMPAIGN_URI: &str = "klaviyo://campaign/";

/// guMCP's order of the tools, declared and coded alike.
const ORDER: [&str; 17] = [
    "create_profile",
    "get_profiles",
    "get_profile",
    "update_profile",
    "list_campaigns",
    "update_campaign",
    "get_campaign",
    "send_campaign",
    "delete_campaign",
    "list_metrics",
    "get_metric",
    "create_list",
    "add_profiles_to_list",
    "remove_profiles_from_list",
    "get_list_profiles",
    "get_list",
    "get_lists",
];

/// A profile's own attributes, as the tools name them.
const PROFILE_ATTRIBUTES: [&str; 11] = [
    "email",
    "phone_number",
    "external_id",
    "first_name",
    "last_name",
    "organization",
    "locale",
    "title",
    "image",
    "timezone",
    "ip",
];

/// The attributes that make up a profile's `location`.
const LOCATION_ATTRIBUTES: [&str; 8] = [
    "address1",
    "address2",
    "city",
    "country",
    "latitude",
    "longitude",
    "region",
    "zip",
];

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    let declared = HttpServer::new(init.manifest.clone(), init.upstream.clone());
    let mut tools = coded_tools();
    tools.extend(declared.tools());
    tools.sort_by_key(|tool| ORDER.iter().position(|name| *name == tool.name));
    Arc::new(Klaviyo {
        manifest: init.manifest,
        upstream: init.upstream,
        declared,
        tools,
    })
}

struct Klaviyo {
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
            "create_profile",
            "Creates a new profile with the specified attributes in Klaviyo.",
            json!({"type": "object", "properties": {"email": {"type": "string", "description": "Individual's email address"}, "phone_number": {"type": "string", "description": "Individual's phone number in E.164 format"}, "external_id": {"type": "string", "description": "A unique identifier used to associate Klaviyo profiles with profiles in an external system"}, "first_name": {"type": "string", "description": "Individual's first name"}, "last_name": {"type": "string", "description": "Individual's last name"}, "organization": {"type": "string", "description": "Name of the company or organization within the company for whom the individual works"}, "locale": {"type": "string", "description": "The locale of the profile, in the IETF BCP 47 language tag format"}, "title": {"type": "string", "description": "Individual's job title"}, "image": {"type": "string", "description": "URL pointing to the location of a profile image"}, "address1": {"type": "string", "description": "First line of street address"}, "address2": {"type": "string", "description": "Second line of street address"}, "city": {"type": "string", "description": "City name"}, "country": {"type": "string", "description": "Country name"}, "latitude": {"type": ["string", "number"], "description": "Latitude coordinate (recommended precision of four decimal places)"}, "longitude": {"type": ["string", "number"], "description": "Longitude coordinate (recommended precision of four decimal places)"}, "region": {"type": "string", "description": "Region within a country, such as state or province"}, "zip": {"type": "string", "description": "Zip code"}, "timezone": {"type": "string", "description": "Time zone name (recommend using from IANA Time Zone Database)"}, "ip": {"type": "string", "description": "IP Address"}, "properties": {"type": "object", "description": "An object containing key/value pairs for any custom properties assigned to this profile"}}, "required": []}),
        ),
        tool(
            "update_profile",
            "Updates an existing profile with the given profile ID.",
            json!({"type": "object", "properties": {"profile_id": {"type": "string", "description": "The ID of the profile to update (required)"}, "email": {"type": "string", "description": "Individual's email address"}, "phone_number": {"type": "string", "description": "Individual's phone number in E.164 format"}, "external_id": {"type": "string", "description": "A unique identifier used to associate Klaviyo profiles with profiles in an external system"}, "first_name": {"type": "string", "description": "Individual's first name"}, "last_name": {"type": "string", "description": "Individual's last name"}, "organization": {"type": "string", "description": "Name of the company or organization within the company for whom the individual works"}, "locale": {"type": "string", "description": "The locale of the profile, in the IETF BCP 47 language tag format"}, "title": {"type": "string", "description": "Individual's job title"}, "image": {"type": "string", "description": "URL pointing to the location of a profile image"}, "address1": {"type": "string", "description": "First line of street address"}, "address2": {"type": "string", "description": "Second line of street address"}, "city": {"type": "string", "description": "City name"}, "country": {"type": "string", "description": "Country name"}, "latitude": {"type": ["string", "number"], "description": "Latitude coordinate (recommended precision of four decimal places)"}, "longitude": {"type": ["string", "number"], "description": "Longitude coordinate (recommended precision of four decimal places)"}, "region": {"type": "string", "description": "Region within a country, such as state or province"}, "zip": {"type": "string", "description": "Zip code"}, "timezone": {"type": "string", "description": "Time zone name (recommend using from IANA Time Zone Database)"}, "ip": {"type": "string", "description": "IP Address"}, "properties": {"type": "object", "description": "An object containing key/value pairs for any custom properties assigned to this profile"}}, "required": ["profile_id"]}),
        ),
        tool(
            "list_campaigns",
            "Returns campaigns based on the selected channel filter.",
            json!({"type": "object", "properties": {"channel": {"type": "string", "description": "The channel type to filter campaigns (required)", "enum": ["email", "sms", "mobile_push"]}, "additional_filter": {"type": "string", "description": "Optional additional filter expression (will be combined with channel filter)"}, "include_fields": {"type": "array", "description": "Optional list of specific fields to include in the response", "items": {"type": "string"}}}, "required": ["channel"]}),
        ),
        tool(
            "update_campaign",
            "Updates an existing campaign with the given campaign ID.",
            json!({"type": "object", "properties": {"campaign_id": {"type": "string", "description": "The ID of the campaign to update (required)"}, "name": {"type": "string", "description": "The name of the campaign"}, "included_audiences": {"type": "array", "description": "List of audience IDs to include", "items": {"type": "string"}}, "excluded_audiences": {"type": "array", "description": "List of audience IDs to exclude", "items": {"type": "string"}}, "send_strategy": {"type": "string", "description": "The send strategy (Immediate, Static, Throttled, or SmartSendTime)", "enum": ["Immediate", "Static", "Throttled", "SmartSendTime"]}, "smart_send_time": {"type": "string", "description": "Date to send (required for SmartSendTime strategy, format: YYYY-MM-DD)"}, "use_smart_sending": {"type": "boolean", "description": "Whether to use smart sending"}, "add_tracking_params": {"type": "boolean", "description": "Whether to add tracking parameters to links"}, "message_content": {"type": "string", "description": "The email content for the campaign message"}, "subject_line": {"type": "string", "description": "The subject line for the email"}, "template_id": {"type": "string", "description": "The ID of the template to use for the campaign message"}}, "required": ["campaign_id"]}),
        ),
        tool(
            "send_campaign",
            "Triggers a campaign to send asynchronously.",
            json!({"type": "object", "properties": {"campaign_id": {"type": "string", "description": "The ID of the campaign to send (required)"}}, "required": ["campaign_id"]}),
        ),
        tool(
            "list_metrics",
            "Gets all metrics in a Klaviyo account with filtering options.",
            json!({"type": "object", "properties": {"integration_name": {"type": "string", "description": "Filter metrics by integration name (e.g., 'Shopify', 'Magento')"}, "integration_category": {"type": "string", "description": "Filter metrics by integration category (e.g., 'ecommerce', 'custom')"}, "include_fields": {"type": "array", "description": "Optional list of specific fields to include in the response", "items": {"type": "string"}}}, "required": []}),
        ),
        tool(
            "add_profiles_to_list",
            "Adds profiles to a list with the given list ID.",
            json!({"type": "object", "properties": {"list_id": {"type": "string", "description": "The ID of the list to add profiles to (required)"}, "profile_ids": {"type": "array", "description": "Array of profile IDs to add to the list (required)", "items": {"type": "string"}}}, "required": ["list_id", "profile_ids"]}),
        ),
        tool(
            "remove_profiles_from_list",
            "Removes profiles from a list with the given list ID.",
            json!({"type": "object", "properties": {"list_id": {"type": "string", "description": "The ID of the list to remove profiles from (required)"}, "profile_ids": {"type": "array", "description": "Array of profile IDs to remove from the list (required)", "items": {"type": "string"}}}, "required": ["list_id", "profile_ids"]}),
        ),
    ]
}

/// A value worth sending: not null, not an empty string, list or object.
fn meaningful(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(text) => !text.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(object) => !object.is_empty(),
        _ => true,
    }
}

/// A string argument that is given and not empty.
fn given<'a>(arguments: &'a JsonObject, key: &str) -> Option<&'a str> {
    text(arguments, key).filter(|value| !value.is_empty())
}

/// The arguments among `keys` worth sending, under the same names.
fn pick(arguments: &JsonObject, keys: &[&str]) -> Map<String, Value> {
    keys.iter()
        .filter_map(|key| Some((*key, arguments.get(*key)?)))
        .filter(|(_, value)| meaningful(value))
        .map(|(key, value)| (key.to_owned(), value.clone()))
        .collect()
}

/// A profile's attributes: its own, its location, its custom properties.
fn profile_attributes(arguments: &JsonObject) -> Map<String, Value> {
    let mut attributes = pick(arguments, &PROFILE_ATTRIBUTES);
    let location = pick(arguments, &LOCATION_ATTRIBUTES);
    if !location.is_empty() {
        attributes.insert("location".into(), Value::Object(location));
    }
    if let Some(properties) = arguments.get("properties").filter(|p| meaningful(p)) {
        attributes.insert("properties".into(), properties.clone());
    }
    attributes
}

/// Klaviyo's filter of several conditions: one alone, else all of them.
fn all_of(conditions: Vec<String>) -> Option<String> {
    match conditions.len() {
        0 => None,
        1 => conditions.into_iter().next(),
        _ => Some(format!("and({})", conditions.join(","))),
    }
}

/// A list argument as one comma-separated value.
fn joined(arguments: &JsonObject, key: &str) -> Option<String> {
    let items: Vec<&str> = arguments
        .get(key)?
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    (!items.is_empty()).then(|| items.join(","))
}

/// A text that may go inside a quoted Klaviyo filter value.
fn quoted(value: &str) -> Result<String, String> {
    if value.contains('\'') {
        return Err(format!("{value:?} cannot contain a single quote"));
    }
    Ok(format!("'{value}'"))
}

/// The campaign's send strategy as Klaviyo takes it.
fn send_strategy(strategy: &str, arguments: &JsonObject) -> Result<Value, String> {
    let time = given(arguments, "smart_send_time");
    Ok(match strategy {
        "Immediate" => json!({ "method": "immediate" }),
        "SmartSendTime" => {
            let date = time.ok_or(
                "smart_send_time is required when using the SmartSendTime strategy".to_owned(),
            )?;
            json!({ "method": "smart-send-time", "date": date })
        }
        "Static" => json!({ "method": "static", "options_static": { "datetime": time } }),
        "Throttled" => json!({ "method": "throttled" }),
        other => return Err(format!("send_strategy {other:?} is not known")),
    })
}

impl Klaviyo {
    fn api<'a>(&'a self, ctx: &'a RequestContext) -> Api<'a> {
        self.upstream.manifest_api(&self.manifest, ctx)
    }

    async fn create_profile(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let body =
            json!({ "data": { "type": "profile", "attributes": profile_attributes(arguments) } });
        self.api(ctx)
            .json(Method::POST, "/profiles", &[], Some(&body))
            .await
    }

    async fn update_profile(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let id = required_text(arguments, "profile_id")?;
        let attributes = profile_attributes(arguments);
        if attributes.is_empty() {
            return Err("No profile attributes provided for update".to_owned());
        }
        let body = json!({ "data": { "type": "profile", "id": id, "attributes": attributes } });
        let path = format!("/profiles/{}", id_segment(id)?);
        self.api(ctx)
            .json(Method::PATCH, &path, &[], Some(&body))
            .await
    }

    /// Campaigns of one channel, narrowed by a further filter if given.
    async fn list_campaigns(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let channel = required_text(arguments, "channel")?;
        let mut conditions = vec![format!("equals(messages.channel,{})", quoted(channel)?)];
        conditions.extend(given(arguments, "additional_filter").map(str::to_owned));
        let mut query = Vec::new();
        query.extend(all_of(conditions).map(|filter| ("filter", filter)));
        query.extend(joined(arguments, "include_fields").map(|f| ("fields[campaign]", f)));
        self.list(ctx, "/campaigns", &query).await
    }

    /// Metrics of an integration's name or category.
    async fn list_metrics(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let mut conditions = Vec::new();
        for (arg, field) in [
            ("integration_name", "integration.name"),
            ("integration_category", "integration.category"),
        ] {
            if let Some(value) = given(arguments, arg) {
                conditions.push(format!("equals({field},{})", quoted(value)?));
            }
        }
        let mut query = Vec::new();
        query.extend(all_of(conditions).map(|filter| ("filter", filter)));
        query.extend(joined(arguments, "include_fields").map(|f| ("fields[metric]", f)));
        self.list(ctx, "/metrics", &query).await
    }

    /// A list answer's records (its `data`).
    async fn list(
        &self,
        ctx: &RequestContext,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Value, String> {
        let answer = self.api(ctx).json(Method::GET, path, query, None).await?;
        Ok(answer.get("data").cloned().unwrap_or(answer))
    }

    async fn update_campaign(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let id = required_text(arguments, "campaign_id")?;
        let mut attributes = pick(arguments, &["name"]);
        let audiences: Map<String, Value> = [
            ("included_audiences", "included"),
            ("excluded_audiences", "excluded"),
        ]
        .into_iter()
        .filter_map(|(arg, field)| {
            let value = arguments.get(arg).filter(|v| meaningful(v))?;
            Some((field.to_owned(), value.clone()))
        })
        .collect();
        if !audiences.is_empty() {
            attributes.insert("audiences".into(), Value::Object(audiences));
        }
        for (arg, group) in [
            ("use_smart_sending", "send_options"),
            ("add_tracking_params", "tracking_options"),
        ] {
            if let Some(flag) = arguments.get(arg).filter(|flag| flag.is_boolean()) {
                let mut options = Map::new();
                options.insert(arg.to_owned(), flag.clone());
                attributes.insert(group.into(), Value::Object(options));
            }
        }
        if let Some(strategy) = given(arguments, "send_strategy") {
            attributes.insert("send_strategy".into(), send_strategy(strategy, arguments)?);
        }
        let mut data = json!({ "type": "campaign", "id": id, "attributes": attributes });
        let message = pick(arguments, &["message_content", "subject_line"]);
        if !message.is_empty() {
            let mut fields = Map::new();
            for (arg, field) in [("message_content", "content"), ("subject_line", "subject")] {
                if let Some(value) = message.get(arg) {
                    fields.insert(field.to_owned(), value.clone());
                }
            }
            data["relationships"] = json!({ "campaign-messages": {
                "data": [{ "type": "campaign-message", "attributes": fields }]
            } });
        } else if attributes_empty(&data) {
            return Err("No campaign attributes provided for update".to_owned());
        }
        let path = format!("/campaigns/{}", id_segment(id)?);
        self.api(ctx)
            .json(Method::PATCH, &path, &[], Some(&json!({ "data": data })))
            .await
    }

    /// A draft is set to send immediately first; then a send job starts.
    async fn send_campaign(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let id = required_text(arguments, "campaign_id")?;
        let path = format!("/campaigns/{}", id_segment(id)?);
        let api = self.api(ctx);
        let campaign = api.json(Method::GET, &path, &[], None).await?;
        let status = campaign
            .pointer("/data/attributes/status")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if status.eq_ignore_ascii_case("draft") {
            let immediate = json!({ "data": {
                "type": "campaign",
                "id": id,
                "attributes": { "send_strategy": { "method": "immediate" } },
            } });
            api.json(Method::PATCH, &path, &[], Some(&immediate))
                .await?;
        }
        let job = json!({ "data": { "type": "campaign-send-job", "id": id } });
        api.json(Method::POST, "/campaign-send-jobs", &[], Some(&job))
            .await
    }

    /// Profiles added to (POST) or removed from (DELETE) a list.
    async fn list_membership(
        &self,
        method: Method,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let list = required_text(arguments, "list_id")?;
        let profiles: Vec<Value> = arguments
            .get("profile_ids")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|id| json!({ "type": "profile", "id": id }))
            .collect();
        if profiles.is_empty() {
            return Err("At least one profile ID is required".to_owned());
        }
        let count = profiles.len();
        let adding = method == Method::POST;
        let path = format!("/lists/{}/relationships/profiles", id_segment(list)?);
        let body = json!({ "data": profiles });
        self.api(ctx).json(method, &path, &[], Some(&body)).await?;
        let counted = if adding {
            "added_profiles"
        } else {
            "removed_profiles"
        };
        let mut outcome = json!({ "success": true, "list_id": list });
        outcome[counted] = json!(count);
        Ok(outcome)
    }

    /// guMCP's resources: the email and the SMS campaigns.
    async fn resources(&self, ctx: &RequestContext) -> Result<Vec<Resource>, String> {
        let mut resources = Vec::new();
        for channel in ["email", "sms"] {
            let query = [
                ("filter", format!("equals(messages.channel,'{channel}')")),
                (
                    "fields[campaign]",
                    "name,status,created_at,updated_at".to_owned(),
                ),
            ];
            let campaigns = self.list(ctx, "/campaigns", &query).await?;
            for campaign in campaigns.as_array().into_iter().flatten() {
                let Some(id) = campaign.get("id").and_then(Value::as_str) else {
                    continue;
                };
                let field = |name: &str, fallback: &'static str| {
                    campaign
                        .pointer(&format!("/attributes/{name}"))
                        .and_then(Value::as_str)
                        .unwrap_or(fallback)
                        .to_owned()
                };
                resources.push(
                    Resource::new(
                        format!("{CAMPAIGN_URI}{id}"),
                        format!("Campaign: {}", field("name", "Unknown Campaign")),
                    )
                    .with_description(format!(
                        "Klaviyo campaign (Status: {}, Created: {})",
                        field("status", "unknown"),
                        field("created_at", "Unknown date")
                    ))
                    .with_mime_type("application/json"),
                );
            }
        }
        Ok(resources)
    }

    /// A campaign; `None` when the URI names none.
    async fn read(&self, uri: &str, ctx: &RequestContext) -> Result<Option<Value>, String> {
        let Some(id) = uri.strip_prefix(CAMPAIGN_URI) else {
            return Ok(None);
        };
        let path = format!("/campaigns/{}", id_segment(id)?);
        self.api(ctx)
            .json(Method::GET, &path, &[], None)
            .await
            .map(Some)
    }
}

/// Whether a campaign body changes nothing.
fn attributes_empty(data: &Value) -> bool {
    data.get("attributes")
        .and_then(Value::as_object)
        .is_none_or(Map::is_empty)
}

impl McpServer for Klaviyo {
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
                "create_profile" => self.create_profile(args, ctx).await,
                "update_profile" => self.update_profile(args, ctx).await,
                "list_campaigns" => self.list_campaigns(args, ctx).await,
                "update_campaign" => self.update_campaign(args, ctx).await,
                "send_campaign" => self.send_campaign(args, ctx).await,
                "list_metrics" => self.list_metrics(args, ctx).await,
                "add_profiles_to_list" => self.list_membership(Method::POST, args, ctx).await,
                "remove_profiles_from_list" => {
                    self.list_membership(Method::DELETE, args, ctx).await
                }
                _ => return Err(McpError::invalid_params(format!("Unknown tool: {name}")).into()),
            };
            Ok(answer(outcome))
        })
    }
}
