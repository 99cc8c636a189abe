//! hubspot: HubSpot's CRM API with guMCP's thirty-two tools, names and arguments. Thirteen are
//! one request each, declared in `server.toml` and run by the runtime's `http` engine. The
//! nineteen here need logic: the list tools become a CRM search when given a query; the create
//! and update tools gather the named arguments and the `properties` object into HubSpot's
//! `properties` (a new deal or ticket also takes its contact and company associations);
//! get_engagements follows a contact's associations; send_email reads the contact's address
//! first; the engagement and GDPR tools build bodies from alternative arguments. The runtime's
//! `Api` does the credentials, the retry on 401 and the wording of upstream failures.
//!
//! guMCP's resources are code too: recent contacts, companies, deals, tickets and products as
//! `hubspot://{type}/{id}`, read with their properties and associations.

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

const URI: &str = "hubspot://";

/// guMCP's order of the tools, declared and coded alike.
const ORDER: [&str; 32] = [
    "list_contacts",
    "create_contact",
    "update_contact",
    "search_contacts",
    "list_companies",
    "create_company",
    "update_company",
    "list_deals",
    "create_deal",
    "update_deal",
    "get_engagements",
    "send_email",
    "list_tickets",
    "get_ticket",
    "create_ticket",
    "update_ticket",
    "delete_ticket",
    "merge_tickets",
    "list_products",
    "get_product",
    "create_product",
    "update_product",
    "delete_product",
    "get_engagement",
    "list_engagements",
    "get_recent_engagements",
    "get_call_dispositions",
    "create_engagement",
    "update_engagement",
    "delete_engagement",
    "merge_contacts",
    "gdpr_delete_contact",
];

/// A CRM object type as the create, update and list tools use it.
struct Object {
    /// Its collection under `/crm/v3/objects`.
    path: &'static str,
    /// The argument naming the record an update changes.
    id_arg: &'static str,
    /// The named arguments that are HubSpot properties.
    properties: &'static [&'static str],
    /// What a new record is associated with: (argument, HubSpot-defined association type).
    associations: &'static [(&'static str, u32)],
}

/// A list tool: the collection, the property its `query` searches (CONTAINS_TOKEN), and the
/// properties it returns when the call names none (guMCP's).
struct Listing {
    path: &'static str,
    searched: &'static str,
    listed: &'static [&'static str],
}

const CONTACTS: Object = Object {
    path: "contacts",
    id_arg: "contact_id",
    properties: &[
        "email",
        "firstname",
        "lastname",
        "phone",
        "company",
        "website",
        "jobtitle",
        "address",
        "city",
        "state",
        "zip",
        "country",
    ],
    associations: &[],
};

const COMPANY_PROPERTIES: &[&str] = &[
    "name",
    "domain",
    "description",
    "industry",
    "city",
    "state",
    "country",
    "phone",
];

const COMPANIES: Object = Object {
    path: "companies",
    id_arg: "company_id",
    properties: COMPANY_PROPERTIES,
    associations: &[],
};

const DEALS: Object = Object {
    path: "deals",
    id_arg: "deal_id",
    properties: &["dealname", "amount", "dealstage", "pipeline", "closedate"],
    associations: &[("contact_id", 3), ("company_id", 5)],
};

const TICKETS: Object = Object {
    path: "tickets",
    id_arg: "ticket_id",
    properties: &[
        "subject",
        "content",
        "hs_pipeline",
        "hs_pipeline_stage",
        "hs_ticket_priority",
        "hs_ticket_category",
    ],
    associations: &[("contact_id", 16), ("company_id", 25)],
};

const PRODUCTS: Object = Object {
    path: "products",
    id_arg: "product_id",
    properties: &[
        "name",
        "description",
        "price",
        "hs_sku",
        "hs_cost_of_goods_sold",
        "hs_recurring_billing_period",
    ],
    associations: &[],
};

const CONTACT_LIST: Listing = Listing {
    path: "contacts",
    searched: "email",
    listed: &[],
};

const COMPANY_LIST: Listing = Listing {
    path: "companies",
    searched: "name",
    listed: COMPANY_PROPERTIES,
};

const DEAL_LIST: Listing = Listing {
    path: "deals",
    searched: "dealname",
    listed: &["dealname", "amount", "dealstage", "closedate", "pipeline"],
};

/// A record type offered as a resource: `hubspot://{kind}/{id}`.
struct Kind {
    kind: &'static str,
    /// Its collection under `/crm/v3/objects`.
    path: &'static str,
    /// The properties read.
    properties: &'static [&'static str],
    /// The collections whose associated ids a read adds.
    associated: &'static [&'static str],
    /// How many recent records are listed (none: readable, not listed).
    listed: usize,
    /// The properties whose values, joined, name a listed record; then a fallback property.
    title: &'static [&'static str],
    fallback: Option<&'static str>,
    label: &'static str,
    description: &'static str,
}

const KINDS: [Kind; 8] = [
    Kind {
        kind: "contact",
        path: "contacts",
        properties: &[
            "firstname",
            "lastname",
            "email",
            "phone",
            "company",
            "website",
            "address",
            "city",
            "state",
            "zip",
            "country",
            "jobtitle",
        ],
        associated: &["companies"],
        listed: 10,
        title: &["firstname", "lastname"],
        fallback: Some("email"),
        label: "Contact",
        description: "HubSpot Contact Record",
    },
    Kind {
        kind: "company",
        path: "companies",
        properties: &[
            "name",
            "domain",
            "description",
            "industry",
            "city",
            "state",
            "country",
            "phone",
            "website",
            "numberofemployees",
        ],
        associated: &["contacts"],
        listed: 10,
        title: &["name"],
        fallback: None,
        label: "Company",
        description: "HubSpot Company Record",
    },
    Kind {
        kind: "deal",
        path: "deals",
        properties: &[
            "dealname",
            "amount",
            "dealstage",
            "closedate",
            "pipeline",
            "description",
        ],
        associated: &["contacts", "companies"],
        listed: 10,
        title: &["dealname"],
        fallback: None,
        label: "Deal",
        description: "HubSpot Deal Record",
    },
    Kind {
        kind: "ticket",
        path: "tickets",
        properties: &[
            "subject",
            "content",
            "hs_pipeline_stage",
            "hs_ticket_priority",
            "hs_ticket_category",
        ],
        associated: &["contacts"],
        listed: 10,
        title: &["subject"],
        fallback: None,
        label: "Ticket",
        description: "HubSpot Ticket Record",
    },
    Kind {
        kind: "product",
        path: "products",
        properties: &[
            "name",
            "description",
            "price",
            "hs_sku",
            "hs_cost_of_goods_sold",
            "hs_recurring_billing_period",
        ],
        associated: &[],
        listed: 5,
        title: &["name"],
        fallback: None,
        label: "Product",
        description: "HubSpot Product Definition",
    },
    Kind {
        kind: "line_item",
        path: "line_items",
        properties: &["name", "quantity", "price", "amount", "hs_sku"],
        associated: &["deals"],
        listed: 0,
        title: &["name"],
        fallback: None,
        label: "Line item",
        description: "HubSpot Line Item",
    },
    Kind {
        kind: "quote",
        path: "quotes",
        properties: &[
            "hs_title",
            "hs_expiration_date",
            "hs_status",
            "hs_quote_amount",
        ],
        associated: &["deals"],
        listed: 0,
        title: &["hs_title"],
        fallback: None,
        label: "Quote",
        description: "HubSpot Quote",
    },
    Kind {
        kind: "engagement",
        path: "engagements",
        properties: &[
            "hs_activity_type",
            "hs_timestamp",
            "subject",
            "hs_email_text",
            "hs_meeting_outcome",
            "hs_call_direction",
            "hs_task_status",
        ],
        associated: &["contacts"],
        listed: 0,
        title: &["subject"],
        fallback: None,
        label: "Engagement",
        description: "HubSpot Engagement",
    },
];

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    let declared = HttpServer::new(init.manifest.clone(), init.upstream.clone());
    let mut tools = coded_tools();
    tools.extend(declared.tools());
    tools.sort_by_key(|tool| ORDER.iter().position(|name| *name == tool.name));
    Arc::new(Hubspot {
        manifest: init.manifest,
        upstream: init.upstream,
        declared,
        tools,
    })
}

struct Hubspot {
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
            "list_contacts",
            "List HubSpot contacts with optional filtering",
            json!({"type": "object", "properties": {"query": {"type": "string", "description": "Search query for contacts"}, "limit": {"type": "integer", "description": "Maximum number of contacts to return"}, "properties": {"type": "array", "items": {"type": "string"}, "description": "Specific contact properties to return (optional)"}}, "required": []}),
        ),
        tool(
            "create_contact",
            "Create a new HubSpot contact",
            json!({"type": "object", "properties": {"email": {"type": "string", "description": "Email address (required)"}, "firstname": {"type": "string", "description": "First name"}, "lastname": {"type": "string", "description": "Last name"}, "phone": {"type": "string", "description": "Phone number"}, "company": {"type": "string", "description": "Company name"}, "website": {"type": "string", "description": "Website URL"}, "jobtitle": {"type": "string", "description": "Job title"}, "address": {"type": "string", "description": "Street address"}, "city": {"type": "string", "description": "City"}, "state": {"type": "string", "description": "State/province/region"}, "zip": {"type": "string", "description": "Postal/ZIP code"}, "country": {"type": "string", "description": "Country"}, "properties": {"type": "object", "description": "Additional properties to set on the contact (key-value pairs)"}}, "required": ["email"]}),
        ),
        tool(
            "update_contact",
            "Update an existing HubSpot contact",
            json!({"type": "object", "properties": {"contact_id": {"type": "string", "description": "HubSpot contact ID (required)"}, "email": {"type": "string", "description": "Email address"}, "firstname": {"type": "string", "description": "First name"}, "lastname": {"type": "string", "description": "Last name"}, "phone": {"type": "string", "description": "Phone number"}, "company": {"type": "string", "description": "Company name"}, "website": {"type": "string", "description": "Website URL"}, "jobtitle": {"type": "string", "description": "Job title"}, "address": {"type": "string", "description": "Street address"}, "city": {"type": "string", "description": "City"}, "state": {"type": "string", "description": "State/province/region"}, "zip": {"type": "string", "description": "Postal/ZIP code"}, "country": {"type": "string", "description": "Country"}, "properties": {"type": "object", "description": "Additional properties to set on the contact (key-value pairs)"}}, "required": ["contact_id"]}),
        ),
        tool(
            "search_contacts",
            "Search for HubSpot contacts using advanced filters",
            json!({"type": "object", "properties": {"filter_property": {"type": "string", "description": "Property to filter on (e.g., 'email', 'firstname')"}, "filter_operator": {"type": "string", "description": "Filter operator (e.g., 'EQ', 'CONTAINS_TOKEN', 'GT')"}, "filter_value": {"type": "string", "description": "Value to filter for"}, "limit": {"type": "integer", "description": "Maximum number of contacts to return"}, "properties": {"type": "array", "items": {"type": "string"}, "description": "Specific contact properties to return"}}, "required": ["filter_property", "filter_operator", "filter_value"]}),
        ),
        tool(
            "list_companies",
            "List HubSpot companies with optional filtering",
            json!({"type": "object", "properties": {"query": {"type": "string", "description": "Search query for companies"}, "limit": {"type": "integer", "description": "Maximum number of companies to return"}, "properties": {"type": "array", "items": {"type": "string"}, "description": "Specific company properties to return"}}, "required": []}),
        ),
        tool(
            "create_company",
            "Create a new HubSpot company",
            json!({"type": "object", "properties": {"name": {"type": "string", "description": "Company name (required)"}, "domain": {"type": "string", "description": "Company website domain"}, "description": {"type": "string", "description": "Company description"}, "industry": {"type": "string", "description": "Company industry"}, "city": {"type": "string", "description": "City"}, "state": {"type": "string", "description": "State/province/region"}, "country": {"type": "string", "description": "Country"}, "phone": {"type": "string", "description": "Phone number"}, "properties": {"type": "object", "description": "Additional properties to set on the company"}}, "required": ["name"]}),
        ),
        tool(
            "update_company",
            "Update an existing HubSpot company",
            json!({"type": "object", "properties": {"company_id": {"type": "string", "description": "HubSpot company ID (required)"}, "name": {"type": "string", "description": "Company name"}, "domain": {"type": "string", "description": "Company website domain"}, "description": {"type": "string", "description": "Company description"}, "industry": {"type": "string", "description": "Company industry"}, "city": {"type": "string", "description": "City"}, "state": {"type": "string", "description": "State/province/region"}, "country": {"type": "string", "description": "Country"}, "phone": {"type": "string", "description": "Phone number"}, "properties": {"type": "object", "description": "Additional properties to set on the company"}}, "required": ["company_id"]}),
        ),
        tool(
            "list_deals",
            "List HubSpot deals with optional filtering",
            json!({"type": "object", "properties": {"query": {"type": "string", "description": "Search query for deals"}, "limit": {"type": "integer", "description": "Maximum number of deals to return"}, "properties": {"type": "array", "items": {"type": "string"}, "description": "Specific deal properties to return"}}, "required": []}),
        ),
        tool(
            "create_deal",
            "Create a new HubSpot deal",
            json!({"type": "object", "properties": {"dealname": {"type": "string", "description": "Deal name (required)"}, "amount": {"type": "number", "description": "Deal amount"}, "dealstage": {"type": "string", "description": "Deal stage (e.g., 'appointmentscheduled')"}, "pipeline": {"type": "string", "description": "Pipeline ID"}, "closedate": {"type": "string", "description": "Expected close date (yyyy-MM-dd)"}, "contact_id": {"type": "string", "description": "Associated contact ID"}, "company_id": {"type": "string", "description": "Associated company ID"}, "properties": {"type": "object", "description": "Additional properties to set on the deal"}}, "required": ["dealname"]}),
        ),
        tool(
            "update_deal",
            "Update an existing HubSpot deal",
            json!({"type": "object", "properties": {"deal_id": {"type": "string", "description": "HubSpot deal ID (required)"}, "dealname": {"type": "string", "description": "Deal name"}, "amount": {"type": "number", "description": "Deal amount"}, "dealstage": {"type": "string", "description": "Deal stage (e.g., 'appointmentscheduled')"}, "pipeline": {"type": "string", "description": "Pipeline ID"}, "closedate": {"type": "string", "description": "Expected close date (yyyy-MM-dd)"}, "properties": {"type": "object", "description": "Additional properties to set on the deal"}}, "required": ["deal_id"]}),
        ),
        tool(
            "get_engagements",
            "Get engagement data (calls, emails, meetings, etc.) for a contact",
            json!({"type": "object", "properties": {"contact_id": {"type": "string", "description": "HubSpot contact ID"}, "limit": {"type": "integer", "description": "Maximum number of engagements to return"}, "engagement_type": {"type": "string", "description": "Type of engagement (EMAIL, CALL, MEETING, etc.)"}}, "required": ["contact_id"]}),
        ),
        tool(
            "send_email",
            "Send an email to a HubSpot contact",
            json!({"type": "object", "properties": {"contact_id": {"type": "string", "description": "HubSpot contact ID (required)"}, "subject": {"type": "string", "description": "Email subject line (required)"}, "body": {"type": "string", "description": "Email body content (required)"}, "from_name": {"type": "string", "description": "Sender name"}}, "required": ["contact_id", "subject", "body"]}),
        ),
        tool(
            "create_ticket",
            "Create a new HubSpot ticket",
            json!({"type": "object", "properties": {"subject": {"type": "string", "description": "Ticket subject (required)"}, "content": {"type": "string", "description": "Ticket content/description"}, "hs_pipeline": {"type": "string", "description": "Ticket pipeline ID"}, "hs_pipeline_stage": {"type": "string", "description": "Ticket pipeline stage"}, "hs_ticket_priority": {"type": "string", "description": "Ticket priority (LOW, MEDIUM, HIGH)"}, "hs_ticket_category": {"type": "string", "description": "Ticket category"}, "contact_id": {"type": "string", "description": "Associated contact ID"}, "company_id": {"type": "string", "description": "Associated company ID"}, "properties": {"type": "object", "description": "Additional properties to set on the ticket"}}, "required": ["subject"]}),
        ),
        tool(
            "update_ticket",
            "Update an existing HubSpot ticket",
            json!({"type": "object", "properties": {"ticket_id": {"type": "string", "description": "HubSpot ticket ID (required)"}, "subject": {"type": "string", "description": "Ticket subject"}, "content": {"type": "string", "description": "Ticket content/description"}, "hs_pipeline": {"type": "string", "description": "Ticket pipeline ID"}, "hs_pipeline_stage": {"type": "string", "description": "Ticket pipeline stage"}, "hs_ticket_priority": {"type": "string", "description": "Ticket priority (LOW, MEDIUM, HIGH)"}, "hs_ticket_category": {"type": "string", "description": "Ticket category"}, "properties": {"type": "object", "description": "Additional properties to set on the ticket"}}, "required": ["ticket_id"]}),
        ),
        tool(
            "create_product",
            "Create a new HubSpot product",
            json!({"type": "object", "properties": {"name": {"type": "string", "description": "Product name (required)"}, "description": {"type": "string", "description": "Product description"}, "price": {"type": "number", "description": "Product price"}, "hs_sku": {"type": "string", "description": "Product SKU"}, "hs_cost_of_goods_sold": {"type": "number", "description": "Cost of goods sold"}, "hs_recurring_billing_period": {"type": "string", "description": "Recurring billing period"}, "properties": {"type": "object", "description": "Additional properties to set on the product"}}, "required": ["name"]}),
        ),
        tool(
            "update_product",
            "Update an existing HubSpot product",
            json!({"type": "object", "properties": {"product_id": {"type": "string", "description": "HubSpot product ID (required)"}, "name": {"type": "string", "description": "Product name"}, "description": {"type": "string", "description": "Product description"}, "price": {"type": "number", "description": "Product price"}, "hs_sku": {"type": "string", "description": "Product SKU"}, "hs_cost_of_goods_sold": {"type": "number", "description": "Cost of goods sold"}, "hs_recurring_billing_period": {"type": "string", "description": "Recurring billing period"}, "properties": {"type": "object", "description": "Additional properties to set on the product"}}, "required": ["product_id"]}),
        ),
        tool(
            "create_engagement",
            "Create a new HubSpot engagement (email, call, meeting, task, or note)",
            json!({"type": "object", "properties": {"type": {"type": "string", "description": "Engagement type (EMAIL, CALL, MEETING, TASK, NOTE)"}, "metadata": {"type": "object", "description": "Engagement metadata (varies by type)"}, "metadata_body": {"type": "string", "description": "Engagement metadata body"}, "owner_id": {"type": "string", "description": "Owner ID for the engagement"}, "timestamp": {"type": "integer", "description": "Time of engagement (in milliseconds)"}, "contact_ids": {"type": "array", "items": {"type": "string"}, "description": "Contact IDs to associate with this engagement"}, "company_ids": {"type": "array", "items": {"type": "string"}, "description": "Company IDs to associate with this engagement"}, "deal_ids": {"type": "array", "items": {"type": "string"}, "description": "Deal IDs to associate with this engagement"}, "ticket_ids": {"type": "array", "items": {"type": "string"}, "description": "Ticket IDs to associate with this engagement"}}, "required": ["type"]}),
        ),
        tool(
            "update_engagement",
            "Update an existing HubSpot engagement",
            json!({"type": "object", "properties": {"engagement_id": {"type": "string", "description": "HubSpot engagement ID (required)"}, "owner_id": {"type": "string", "description": "Owner ID for the engagement"}, "timestamp": {"type": "integer", "description": "Time of engagement (in milliseconds)"}, "metadata": {"type": "object", "description": "Engagement metadata (varies by type)"}, "metadata_body": {"type": "string", "description": "Engagement metadata body text"}}, "required": ["engagement_id"]}),
        ),
        tool(
            "gdpr_delete_contact",
            "Permanently delete a contact and all associated content to follow GDPR",
            json!({"type": "object", "properties": {"contact_id": {"type": "string", "description": "The ID of the contact to permanently delete"}, "email": {"type": "string", "description": "Email address of the contact to permanently delete (alternative to contact_id)"}}, "required": []}),
        ),
    ]
}

/// A value worth sending as a property: not null, not an empty string.
fn meaningful(value: &Value) -> bool {
    !(value.is_null() || value.as_str().is_some_and(str::is_empty))
}

/// HubSpot's `properties` of a record: the named arguments, then the `properties` object's
/// entries (which win, as in guMCP).
fn properties(object: &Object, arguments: &JsonObject) -> Map<String, Value> {
    let named = object
        .properties
        .iter()
        .filter_map(|name| Some((*name, arguments.get(*name)?)));
    let extra = arguments
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(name, value)| (name.as_str(), value));
    named
        .chain(extra)
        .filter(|(_, value)| meaningful(value))
        .map(|(name, value)| (name.to_owned(), value.clone()))
        .collect()
}

/// A list argument of strings.
fn strings(arguments: &JsonObject, key: &str) -> Option<Vec<String>> {
    arguments.get(key).and_then(Value::as_array).map(|items| {
        items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    })
}

/// A page size: the argument, else `default`, at most `max` (guMCP's bounds).
fn limit(arguments: &JsonObject, key: &str, default: u64, max: u64) -> u64 {
    arguments
        .get(key)
        .and_then(Value::as_u64)
        .unwrap_or(default)
        .min(max)
}

/// A CRM search body with one filter.
fn search_body(filter: Value, limit: u64, properties: Vec<String>) -> Value {
    json!({
        "filterGroups": [{ "filters": [filter] }],
        "limit": limit,
        "properties": properties,
    })
}

/// The `metadata` of an engagement: `metadata_body` as its body, else the `metadata` object.
fn engagement_metadata(arguments: &JsonObject) -> Option<Value> {
    match text(arguments, "metadata_body").filter(|body| !body.is_empty()) {
        Some(body) => Some(json!({ "body": body })),
        None => arguments.get("metadata").filter(|m| m.is_object()).cloned(),
    }
}

/// Text as HTML: escaped, line breaks as `<br>`.
fn html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\n', "<br>")
}

/// A record's text property.
fn property<'a>(record: &'a Value, name: &str) -> Option<&'a str> {
    record
        .pointer(&format!("/properties/{name}"))
        .and_then(Value::as_str)
        .filter(|value| !value.is_empty())
}

impl Kind {
    /// A listed record's name: its title properties, else its fallback, else label and id.
    fn name_of(&self, record: &Value, id: &str) -> String {
        let title: Vec<&str> = self
            .title
            .iter()
            .filter_map(|name| property(record, name))
            .collect();
        if !title.is_empty() {
            return title.join(" ");
        }
        self.fallback
            .and_then(|name| property(record, name))
            .map_or_else(|| format!("{} {id}", self.label), str::to_owned)
    }
}

impl Hubspot {
    fn api<'a>(&'a self, ctx: &'a RequestContext) -> Api<'a> {
        self.upstream.manifest_api(&self.manifest, ctx)
    }

    /// A list of records, or a search of `listing.searched` when the call has a query.
    async fn list(
        &self,
        listing: &Listing,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let limit = limit(arguments, "limit", 10, 50);
        let properties = strings(arguments, "properties")
            .unwrap_or_else(|| listing.listed.iter().map(|p| (*p).to_owned()).collect());
        let api = self.api(ctx);
        match text(arguments, "query").filter(|query| !query.is_empty()) {
            Some(query) => {
                let filter = json!({ "propertyName": listing.searched, "operator": "CONTAINS_TOKEN", "value": query });
                let path = format!("/crm/v3/objects/{}/search", listing.path);
                let body = search_body(filter, limit, properties);
                api.json(Method::POST, &path, &[], Some(&body)).await
            }
            None => {
                let mut query = vec![("limit", limit.to_string())];
                if !properties.is_empty() {
                    query.push(("properties", properties.join(",")));
                }
                let path = format!("/crm/v3/objects/{}", listing.path);
                api.json(Method::GET, &path, &query, None).await
            }
        }
    }

    async fn search_contacts(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let filter = json!({
            "propertyName": required_text(arguments, "filter_property")?,
            "operator": required_text(arguments, "filter_operator")?,
            "value": required_text(arguments, "filter_value")?,
        });
        let properties = strings(arguments, "properties").unwrap_or_default();
        let body = search_body(filter, limit(arguments, "limit", 10, 50), properties);
        self.api(ctx)
            .json(
                Method::POST,
                "/crm/v3/objects/contacts/search",
                &[],
                Some(&body),
            )
            .await
    }

    /// A new record with its properties and the associations its arguments name.
    async fn create(
        &self,
        object: &Object,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let associations: Vec<Value> = object
            .associations
            .iter()
            .filter_map(|(arg, type_id)| {
                let id = text(arguments, arg).filter(|id| !id.is_empty())?;
                Some(json!({
                    "to": { "id": id },
                    "types": [{ "associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id }],
                }))
            })
            .collect();
        let mut body = json!({ "properties": properties(object, arguments) });
        if !associations.is_empty() {
            body["associations"] = Value::Array(associations);
        }
        let path = format!("/crm/v3/objects/{}", object.path);
        self.api(ctx)
            .json(Method::POST, &path, &[], Some(&body))
            .await
    }

    async fn update(
        &self,
        object: &Object,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let id = id_segment(required_text(arguments, object.id_arg)?)?;
        let body = json!({ "properties": properties(object, arguments) });
        let path = format!("/crm/v3/objects/{}/{id}", object.path);
        self.api(ctx)
            .json(Method::PATCH, &path, &[], Some(&body))
            .await
    }

    /// The engagements associated with a contact, read one by one, of one type if asked.
    async fn get_engagements(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let contact = id_segment(required_text(arguments, "contact_id")?)?;
        let wanted = text(arguments, "engagement_type").map(str::to_uppercase);
        let count = usize::try_from(limit(arguments, "limit", 10, 50)).unwrap_or(50);
        let api = self.api(ctx);
        let path = format!("/crm/v3/objects/contacts/{contact}/associations/engagements");
        let associated = api.json(Method::GET, &path, &[], None).await?;
        let ids: Vec<&str> = associated
            .get("results")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|result| result.get("id").and_then(Value::as_str))
            .take(count)
            .collect();
        let mut results = Vec::new();
        for id in ids {
            let path = format!("/crm/v3/objects/engagements/{}", id_segment(id)?);
            let engagement = api.json(Method::GET, &path, &[], None).await?;
            let kind = property(&engagement, "type").map(str::to_uppercase);
            if wanted.is_none() || kind == wanted {
                results.push(engagement);
            }
        }
        Ok(json!({ "total": results.len(), "results": results }))
    }

    /// An email engagement to the contact's address, logged on the contact.
    async fn send_email(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let contact_id = required_text(arguments, "contact_id")?;
        let subject = required_text(arguments, "subject")?;
        let body = required_text(arguments, "body")?;
        let api = self.api(ctx);
        let path = format!("/crm/v3/objects/contacts/{}", id_segment(contact_id)?);
        let query = [("properties", "email,firstname,lastname".to_owned())];
        let contact = api.json(Method::GET, &path, &query, None).await?;
        let Some(email) = property(&contact, "email") else {
            return Err(format!("Contact {contact_id} has no email address"));
        };
        let engagement = json!({
            "engagement": { "type": "EMAIL", "active": true },
            "metadata": {
                "from": { "email": "", "firstName": text(arguments, "from_name").unwrap_or_default() },
                "to": [{ "email": email }],
                "subject": subject,
                "text": body,
                "html": html(body),
            },
            "associations": { "contactIds": [contact_id] },
        });
        api.json(
            Method::POST,
            "/engagements/v1/engagements",
            &[],
            Some(&engagement),
        )
        .await
    }

    async fn create_engagement(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let mut engagement = json!({ "active": true, "type": required_text(arguments, "type")? });
        for (arg, field) in [("timestamp", "timestamp"), ("owner_id", "ownerId")] {
            if let Some(value) = arguments.get(arg).filter(|v| meaningful(v)) {
                engagement[field] = value.clone();
            }
        }
        let ids = |arg: &str| Value::from(strings(arguments, arg).unwrap_or_default());
        let mut body = json!({
            "engagement": engagement,
            "associations": {
                "contactIds": ids("contact_ids"),
                "companyIds": ids("company_ids"),
                "dealIds": ids("deal_ids"),
                "ticketIds": ids("ticket_ids"),
            },
        });
        if let Some(metadata) = engagement_metadata(arguments) {
            body["metadata"] = metadata;
        }
        self.api(ctx)
            .json(
                Method::POST,
                "/engagements/v1/engagements",
                &[],
                Some(&body),
            )
            .await
    }

    async fn update_engagement(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let id = id_segment(required_text(arguments, "engagement_id")?)?;
        let mut engagement = Map::new();
        for (arg, field) in [("timestamp", "timestamp"), ("owner_id", "ownerId")] {
            if let Some(value) = arguments.get(arg).filter(|v| meaningful(v)) {
                engagement.insert(field.to_owned(), value.clone());
            }
        }
        let mut body = json!({ "engagement": engagement });
        if let Some(metadata) = engagement_metadata(arguments) {
            body["metadata"] = metadata;
        }
        let path = format!("/engagements/v1/engagements/{id}");
        self.api(ctx)
            .json(Method::PATCH, &path, &[], Some(&body))
            .await
    }

    /// GDPR deletion by id, or by email address when no id is given.
    async fn gdpr_delete_contact(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let given = |key| text(arguments, key).filter(|value| !value.is_empty());
        let (body, who) = match (given("contact_id"), given("email")) {
            (Some(id), _) => (json!({ "objectId": id }), id),
            (None, Some(email)) => (json!({ "objectId": email, "idProperty": "email" }), email),
            (None, None) => return Err("Either contact_id or email is required".to_owned()),
        };
        let answer = self
            .api(ctx)
            .json(
                Method::POST,
                "/crm/v3/objects/contacts/gdpr-delete",
                &[],
                Some(&body),
            )
            .await?;
        Ok(match answer {
            Value::Null => Value::String(format!("Contact {who} permanently deleted.")),
            other => other,
        })
    }

    /// guMCP's resources: the most recent records of each listed kind.
    async fn resources(&self, ctx: &RequestContext) -> Result<Vec<Resource>, String> {
        let api = self.api(ctx);
        let mut resources = Vec::new();
        for kind in KINDS.iter().filter(|kind| kind.listed > 0) {
            let query = [
                ("limit", kind.listed.to_string()),
                (
                    "properties",
                    kind.title
                        .iter()
                        .chain(kind.fallback.iter())
                        .copied()
                        .collect::<Vec<_>>()
                        .join(","),
                ),
            ];
            let path = format!("/crm/v3/objects/{}", kind.path);
            let page = api.json(Method::GET, &path, &query, None).await?;
            for record in page
                .get("results")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let Some(id) = record.get("id").and_then(Value::as_str) else {
                    continue;
                };
                resources.push(
                    Resource::new(format!("{URI}{}/{id}", kind.kind), kind.name_of(record, id))
                        .with_description(kind.description)
                        .with_mime_type("application/json"),
                );
            }
        }
        Ok(resources)
    }

    /// A record with its properties and the ids of what it is associated with; `None` when
    /// the URI names no kind of record.
    async fn read(&self, uri: &str, ctx: &RequestContext) -> Result<Option<Value>, String> {
        let Some((kind, id)) = uri
            .strip_prefix(URI)
            .and_then(|rest| rest.split_once('/'))
            .and_then(|(kind, id)| Some((KINDS.iter().find(|k| k.kind == kind)?, id)))
        else {
            return Ok(None);
        };
        let id = id_segment(id)?;
        let api = self.api(ctx);
        let path = format!("/crm/v3/objects/{}/{id}", kind.path);
        let query = [("properties", kind.properties.join(","))];
        let mut record = api.json(Method::GET, &path, &query, None).await?;
        let mut associations = Map::new();
        for to in kind.associated {
            let path = format!("/crm/v3/objects/{}/{id}/associations/{to}", kind.path);
            let found = api.json(Method::GET, &path, &[], None).await?;
            let results = found.get("results").cloned().unwrap_or(json!([]));
            associations.insert((*to).to_owned(), results);
        }
        if !associations.is_empty() {
            record["associations"] = Value::Object(associations);
        }
        Ok(Some(record))
    }
}

impl McpServer for Hubspot {
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
                "list_contacts" => self.list(&CONTACT_LIST, args, ctx).await,
                "create_contact" => self.create(&CONTACTS, args, ctx).await,
                "update_contact" => self.update(&CONTACTS, args, ctx).await,
                "search_contacts" => self.search_contacts(args, ctx).await,
                "list_companies" => self.list(&COMPANY_LIST, args, ctx).await,
                "create_company" => self.create(&COMPANIES, args, ctx).await,
                "update_company" => self.update(&COMPANIES, args, ctx).await,
                "list_deals" => self.list(&DEAL_LIST, args, ctx).await,
                "create_deal" => self.create(&DEALS, args, ctx).await,
                "update_deal" => self.update(&DEALS, args, ctx).await,
                "get_engagements" => self.get_engagements(args, ctx).await,
                "send_email" => self.send_email(args, ctx).await,
                "create_ticket" => self.create(&TICKETS, args, ctx).await,
                "update_ticket" => self.update(&TICKETS, args, ctx).await,
                "create_product" => self.create(&PRODUCTS, args, ctx).await,
                "update_product" => self.update(&PRODUCTS, args, ctx).await,
                "create_engagement" => self.create_engagement(args, ctx).await,
                "update_engagement" => self.update_engagement(args, ctx).await,
                "gdpr_delete_contact" => self.gdpr_delete_contact(args, ctx).await,
                _ => return Err(McpError::invalid_params(format!("Unknown tool: {name}")).into()),
            };
            Ok(answer(outcome))
        })
    }
}
