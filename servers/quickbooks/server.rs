//! quickbooks: QuickBooks Online's Accounting API for the company the user connected (its
//! realm id came with the OAuth redirect and is stored with the credential), with guMCP's six
//! tools, names and arguments: a customer search and five analyses computed here from
//! QuickBooks queries (`GET /query?query=SELECT …`). Dates given by the caller must be
//! `YYYY-MM-DD` before they go into a query; no other argument goes into one. Answers are JSON
//! figures (guMCP wrote text). guMCP's resources too: the first hundred customers, invoices
//! and accounts as `quickbooks://{customer|invoice|account}/{id}`, each read as QuickBooks
//! gives it. The runtime's `Api` fills the realm id, applies the credentials, refreshes and
//! retries on 401 and words failures.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::{Datelike, Duration, NaiveDate};
use futures::FutureExt;
use reqwest::Method;
use rmcp::model::{CallToolResult, JsonObject, ReadResourceResult, Resource, Tool};
use serde_json::{json, Value};

use crate::protocol::error::McpError;
use crate::servers::http::Upstream;
use crate::servers::kit::{answer, id_segment, json_resource, required_text, text, tool};
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, Features, McpServer, RequestContext, ServerFuture, ServerInit};

/// guMCP's resources: (entity, URI kind, the member that names one).
const KINDS: [(&str, &str, &str); 3] = [
    ("Customer", "customer", "DisplayName"),
    ("Invoice", "invoice", "DocNumber"),
    ("Account", "account", "Name"),
];
const RESOURCE_URI: &str = "quickbooks://";
/// Resources listed of each kind (guMCP's).
const LISTED: u32 = 100;

/// The most rows one query asks for (QuickBooks' own ceiling).
const MAX_RESULTS: u32 = 1000;

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    Arc::new(Quickbooks {
        manifest: init.manifest,
        upstream: init.upstream,
        tools: declared_tools(),
    })
}

struct Quickbooks {
    manifest: Arc<Manifest>,
    upstream: Upstream,
    tools: Vec<Tool>,
}

fn declared_tools() -> Vec<Tool> {
    vec![
        tool(
            "search_customers",
            "Search customers by name, company, email or phone",
            json!({"type": "object", "properties": {"query": {"type": "string", "description": "Text to look for"}, "limit": {"type": "integer", "description": "How many at most (default 10)"}}, "required": ["query"]}),
        ),
        tool(
            "analyze_sred",
            "Find expenses on research and development accounts that may qualify for SR&ED credits",
            json!({"type": "object", "properties": {"start_date": {"type": "string", "description": "YYYY-MM-DD"}, "end_date": {"type": "string", "description": "YYYY-MM-DD"}}, "required": ["start_date", "end_date"]}),
        ),
        tool(
            "analyze_cash_flow",
            "Income (invoices) against expenses (purchases) per month, quarter or year, and the trend",
            json!({"type": "object", "properties": {"period": {"type": "string", "description": "month, quarter or year"}, "num_periods": {"type": "integer", "description": "How many periods back (default 6)"}}, "required": ["period"]}),
        ),
        tool(
            "find_duplicate_transactions",
            "Find purchases that may be duplicates: same vendor and amount within seven days",
            json!({"type": "object", "properties": {"start_date": {"type": "string", "description": "YYYY-MM-DD"}, "end_date": {"type": "string", "description": "YYYY-MM-DD"}, "threshold": {"type": "number", "description": "Accepted for guMCP's interface; matches are exact"}}, "required": ["start_date", "end_date"]}),
        ),
        tool(
            "analyze_customer_payment_patterns",
            "How quickly invoices are paid (early, on time, late), for one customer or all",
            json!({"type": "object", "properties": {"customer_id": {"type": "string", "description": "One customer's id (all when left out)"}, "lookback_months": {"type": "integer", "description": "How many months back (default 12)"}}}),
        ),
        tool(
            "generate_financial_metrics",
            "Balance sheet totals, year-to-date income and expenses, and the usual ratios",
            json!({"type": "object", "properties": {"as_of_date": {"type": "string", "description": "YYYY-MM-DD (today when left out)"}, "include_trends": {"type": "boolean", "description": "Accepted for guMCP's interface"}}}),
        ),
    ]
}

/// A caller's date, checked before it goes into a query.
fn date(arguments: &JsonObject, key: &str) -> Result<NaiveDate, String> {
    let given = required_text(arguments, key)?;
    NaiveDate::parse_from_str(given, "%Y-%m-%d")
        .map_err(|_| format!("{key} must be a date as YYYY-MM-DD, not {given:?}"))
}

fn today() -> NaiveDate {
    chrono::Utc::now().date_naive()
}

fn amount(value: Option<&Value>) -> f64 {
    match value {
        Some(Value::Number(number)) => number.as_f64().unwrap_or_default(),
        Some(Value::String(text)) => text.parse().unwrap_or_default(),
        _ => 0.0,
    }
}

fn text_at<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn txn_date(value: &Value) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text_at(value, "/TxnDate"), "%Y-%m-%d").ok()
}

/// Rounded to cents, for answers.
fn cents(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// A ratio, or `null` where the divisor is zero (guMCP's "N/A").
fn ratio(part: f64, whole: f64, scale: f64) -> Value {
    if whole == 0.0 {
        Value::Null
    } else {
        json!(cents(part / whole * scale))
    }
}

/// An id as a quoted literal of QuickBooks' query language: digits only (its ids are).
fn id_literal(id: &str) -> Result<String, String> {
    if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(format!("'{id}'"))
    } else {
        Err(format!("{id:?} is not a QuickBooks id"))
    }
}

fn between(entity: &str, from: NaiveDate, to: NaiveDate) -> String {
    format!(
        "SELECT * FROM {entity} WHERE TxnDate >= '{from}' AND TxnDate <= '{to}' MAXRESULTS {MAX_RESULTS}"
    )
}

impl Quickbooks {
    /// The rows of `entity` a query finds.
    async fn query(
        &self,
        sql: String,
        entity: &str,
        ctx: &RequestContext,
    ) -> Result<Vec<Value>, String> {
        let answer = self
            .upstream
            .manifest_api(&self.manifest, ctx)
            .json(Method::GET, "/query", &[("query", sql)], None)
            .await?;
        Ok(answer
            .pointer(&format!("/QueryResponse/{entity}"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default())
    }

    /// Customers whose name, company, email or phone contains the text (QuickBooks' query
    /// language has no OR, so the match is made here, as guMCP's fallback made it).
    async fn search_customers(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let wanted = required_text(arguments, "query")?.to_lowercase();
        let limit = arguments.get("limit").and_then(Value::as_u64).unwrap_or(10) as usize;
        let customers = self
            .query(
                format!("SELECT * FROM Customer MAXRESULTS {MAX_RESULTS}"),
                "Customer",
                ctx,
            )
            .await?;
        let found: Vec<Value> = customers
            .into_iter()
            .filter(|customer| {
                [
                    "/DisplayName",
                    "/CompanyName",
                    "/PrimaryEmailAddr/Address",
                    "/PrimaryPhone/FreeFormNumber",
                ]
                .iter()
                .any(|pointer| text_at(customer, pointer).to_lowercase().contains(&wanted))
            })
            .take(limit)
            .collect();
        Ok(Value::Array(found))
    }

    async fn analyze_sred(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let (from, to) = (date(arguments, "start_date")?, date(arguments, "end_date")?);
        let accounts = self
            .query(
                "SELECT * FROM Account WHERE AccountType = 'Expense'".to_owned(),
                "Account",
                ctx,
            )
            .await?;
        let research: HashSet<String> = accounts
            .iter()
            .filter(|account| {
                let name = text_at(account, "/Name").to_lowercase();
                ["research", "development", "engineering", "r&d"]
                    .iter()
                    .any(|word| name.contains(word))
            })
            .map(|account| text_at(account, "/Id").to_owned())
            .collect();
        let purchases = self
            .query(between("Purchase", from, to), "Purchase", ctx)
            .await?;
        let mut total = 0.0;
        let mut expenses = Vec::new();
        for purchase in &purchases {
            for line in purchase
                .get("Line")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let account = line.pointer("/AccountBasedExpenseLineDetail/AccountRef");
                let id = account.map(|a| text_at(a, "/value")).unwrap_or_default();
                if !research.contains(id) {
                    continue;
                }
                let value = amount(line.get("Amount"));
                total += value;
                expenses.push(json!({
                    "date": text_at(purchase, "/TxnDate"),
                    "vendor": purchase.pointer("/EntityRef/name").and_then(Value::as_str).unwrap_or("Unknown Vendor"),
                    "amount": value,
                    "description": line.get("Description").and_then(Value::as_str).unwrap_or("No description"),
                    "account": account.map(|a| text_at(a, "/name")).unwrap_or_default(),
                }));
            }
        }
        Ok(json!({
            "start_date": from.to_string(),
            "end_date": to.to_string(),
            "total_potential_sred": cents(total),
            "expenses": expenses,
            "note": "A preliminary analysis only: consult an SR&ED tax specialist for eligibility.",
        }))
    }

    async fn analyze_cash_flow(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let period = required_text(arguments, "period")?;
        let count = arguments
            .get("num_periods")
            .and_then(Value::as_i64)
            .unwrap_or(6)
            .clamp(1, 120);
        let days = match period {
            "month" => 30,
            "quarter" => 90,
            "year" => 365,
            _ => return Err("Invalid period. Use 'month', 'quarter', or 'year'".to_owned()),
        };
        let to = today();
        let from = to - Duration::days(days * count);
        let invoices = self
            .query(between("Invoice", from, to), "Invoice", ctx)
            .await?;
        let purchases = self
            .query(between("Purchase", from, to), "Purchase", ctx)
            .await?;
        let key = |day: NaiveDate| match period {
            "month" => format!("{}-{:02}", day.year(), day.month()),
            "quarter" => format!("{}-Q{}", day.year(), (day.month() - 1) / 3 + 1),
            _ => day.year().to_string(),
        };
        let mut periods: BTreeMap<String, (f64, f64)> = BTreeMap::new();
        for invoice in &invoices {
            if let Some(day) = txn_date(invoice) {
                periods.entry(key(day)).or_default().0 += amount(invoice.get("TotalAmt"));
            }
        }
        for purchase in &purchases {
            if let Some(day) = txn_date(purchase) {
                periods.entry(key(day)).or_default().1 += amount(purchase.get("TotalAmt"));
            }
        }
        let nets: Vec<f64> = periods
            .values()
            .map(|(income, expenses)| income - expenses)
            .collect();
        let trend = match (nets.first(), nets.last()) {
            (Some(first), Some(last)) if nets.len() > 1 && first < last => "increasing",
            (Some(first), Some(last)) if nets.len() > 1 && first > last => "decreasing",
            _ if nets.len() > 1 => "stable",
            _ => "not enough periods",
        };
        let rows: Vec<Value> = periods
            .iter()
            .map(|(name, (income, expenses))| {
                json!({
                    "period": name, "income": cents(*income), "expenses": cents(*expenses),
                    "net_cash_flow": cents(income - expenses),
                })
            })
            .collect();
        Ok(
            json!({ "period": period, "num_periods": count, "from": from.to_string(), "to": to.to_string(), "periods": rows, "trend": trend }),
        )
    }

    async fn find_duplicates(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let (from, to) = (date(arguments, "start_date")?, date(arguments, "end_date")?);
        let purchases = self
            .query(between("Purchase", from, to), "Purchase", ctx)
            .await?;
        let mut pairs = Vec::new();
        for (index, first) in purchases.iter().enumerate() {
            for second in &purchases[index + 1..] {
                let value = amount(first.get("TotalAmt"));
                let same = value > 0.0
                    && value == amount(second.get("TotalAmt"))
                    && text_at(first, "/EntityRef/name") == text_at(second, "/EntityRef/name");
                let close = match (txn_date(first), txn_date(second)) {
                    (Some(a), Some(b)) => (a - b).num_days().abs() <= 7,
                    _ => false,
                };
                if same && close {
                    pairs.push(json!({
                        "vendor": first.pointer("/EntityRef/name").and_then(Value::as_str).unwrap_or("Unknown Vendor"),
                        "amount": value,
                        "first": { "id": text_at(first, "/Id"), "date": text_at(first, "/TxnDate") },
                        "second": { "id": text_at(second, "/Id"), "date": text_at(second, "/TxnDate") },
                    }));
                }
            }
        }
        Ok(
            json!({ "start_date": from.to_string(), "end_date": to.to_string(), "potential_duplicates": pairs }),
        )
    }

    async fn payment_patterns(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let months = arguments
            .get("lookback_months")
            .and_then(Value::as_i64)
            .unwrap_or(12)
            .clamp(1, 240);
        let to = today();
        let from = to - Duration::days(30 * months);
        let window = format!("TxnDate >= '{from}' AND TxnDate <= '{to}'");
        let (filter, customer_name) =
            match text(arguments, "customer_id").filter(|id| !id.is_empty()) {
                Some(id) => {
                    let literal = id_literal(id)?;
                    let found = self
                        .query(
                            format!("SELECT * FROM Customer WHERE Id = {literal}"),
                            "Customer",
                            ctx,
                        )
                        .await?;
                    let name = found
                        .first()
                        .and_then(|customer| customer.get("DisplayName"))
                        .and_then(Value::as_str)
                        .unwrap_or("Unknown Customer")
                        .to_owned();
                    (format!("CustomerRef = {literal} AND {window}"), name)
                }
                None => (window, "All Customers".to_owned()),
            };
        let invoices = self
            .query(
                format!("SELECT * FROM Invoice WHERE {filter} MAXRESULTS {MAX_RESULTS}"),
                "Invoice",
                ctx,
            )
            .await?;
        let payments = self
            .query(
                format!("SELECT * FROM Payment WHERE {filter} MAXRESULTS {MAX_RESULTS}"),
                "Payment",
                ctx,
            )
            .await?;
        let mut paid_on: HashMap<String, NaiveDate> = HashMap::new();
        for payment in &payments {
            let Some(day) = txn_date(payment) else {
                continue;
            };
            for line in payment
                .get("Line")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                for linked in line
                    .get("LinkedTxn")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if text_at(linked, "/TxnType") == "Invoice" {
                        paid_on
                            .entry(text_at(linked, "/TxnId").to_owned())
                            .or_insert(day);
                    }
                }
            }
        }
        let (mut paid, mut early, mut on_time, mut late, mut days) = (0u32, 0u32, 0u32, 0u32, 0i64);
        for invoice in &invoices {
            let Some(issued) = txn_date(invoice) else {
                continue;
            };
            let due = NaiveDate::parse_from_str(text_at(invoice, "/DueDate"), "%Y-%m-%d")
                .unwrap_or(issued);
            if let Some(payment) = paid_on.get(text_at(invoice, "/Id")) {
                paid += 1;
                days += (*payment - issued).num_days();
                match payment.cmp(&due) {
                    std::cmp::Ordering::Less => early += 1,
                    std::cmp::Ordering::Equal => on_time += 1,
                    std::cmp::Ordering::Greater => late += 1,
                }
            }
        }
        let total = invoices.len() as f64;
        let share = |part: u32| ratio(f64::from(part), f64::from(paid), 100.0);
        Ok(json!({
            "customer": customer_name,
            "from": from.to_string(),
            "to": to.to_string(),
            "total_invoices": invoices.len(),
            "paid_invoices": paid,
            "unpaid_invoices": invoices.len() as u32 - paid.min(invoices.len() as u32),
            "payment_rate_percent": ratio(f64::from(paid), total, 100.0),
            "average_days_to_pay": ratio(days as f64, f64::from(paid), 1.0),
            "early_payments": early,
            "on_time_payments": on_time,
            "late_payments": late,
            "early_percent": share(early),
            "on_time_percent": share(on_time),
            "late_percent": share(late),
        }))
    }

    async fn financial_metrics(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let as_of = match text(arguments, "as_of_date").filter(|d| !d.is_empty()) {
            Some(_) => date(arguments, "as_of_date")?,
            None => today(),
        };
        let start_of_year = NaiveDate::from_ymd_opt(as_of.year(), 1, 1).unwrap_or(as_of);
        let accounts = self
            .query(
                format!("SELECT * FROM Account MAXRESULTS {MAX_RESULTS}"),
                "Account",
                ctx,
            )
            .await?;
        let invoices = self
            .query(between("Invoice", start_of_year, as_of), "Invoice", ctx)
            .await?;
        let purchases = self
            .query(between("Purchase", start_of_year, as_of), "Purchase", ctx)
            .await?;
        let sum = |classification: &str, types: Option<&[&str]>| -> f64 {
            accounts
                .iter()
                .filter(|a| text_at(a, "/Classification") == classification)
                .filter(|a| types.is_none_or(|types| types.contains(&text_at(a, "/AccountType"))))
                .map(|a| amount(a.get("CurrentBalance")))
                .sum()
        };
        let assets = sum("Asset", None);
        let liabilities = sum("Liability", None);
        let equity = sum("Equity", None);
        let current_assets = sum(
            "Asset",
            Some(&["Bank", "Accounts Receivable", "Other Current Asset"]),
        );
        let current_liabilities = sum(
            "Liability",
            Some(&["Accounts Payable", "Credit Card", "Other Current Liability"]),
        );
        let revenue: f64 = invoices.iter().map(|i| amount(i.get("TotalAmt"))).sum();
        let expenses: f64 = purchases.iter().map(|p| amount(p.get("TotalAmt"))).sum();
        let net = revenue - expenses;
        Ok(json!({
            "as_of_date": as_of.to_string(),
            "balance_sheet": { "total_assets": cents(assets), "total_liabilities": cents(liabilities), "total_equity": cents(equity) },
            "income_statement_ytd": { "total_revenue": cents(revenue), "total_expenses": cents(expenses), "net_income": cents(net) },
            "ratios": {
                "current_ratio": ratio(current_assets, current_liabilities, 1.0),
                "debt_to_equity": ratio(liabilities, equity, 1.0),
                "debt_to_assets": ratio(liabilities, assets, 1.0),
                "profit_margin_percent": ratio(net, revenue, 100.0),
                "return_on_assets_percent": ratio(net, assets, 100.0),
                "return_on_equity_percent": ratio(net, equity, 100.0),
            },
        }))
    }
}

impl Quickbooks {
    async fn resources(&self, ctx: &RequestContext) -> Result<Vec<Resource>, String> {
        let mut resources = Vec::new();
        for (entity, kind, label) in KINDS {
            let rows = self
                .query(
                    format!("SELECT * FROM {entity} MAXRESULTS {LISTED}"),
                    entity,
                    ctx,
                )
                .await?;
            for row in &rows {
                let id = text_at(row, "/Id");
                let mut name = format!("{entity}: {}", text_at(row, &format!("/{label}")));
                if entity == "Account" {
                    name = format!("{name} ({})", text_at(row, "/AccountType"));
                }
                resources.push(
                    Resource::new(format!("{RESOURCE_URI}{kind}/{id}"), name.clone())
                        .with_description(format!("QuickBooks {name}"))
                        .with_mime_type("application/json"),
                );
            }
        }
        Ok(resources)
    }

    /// One customer, invoice or account as QuickBooks gives it; `None` for another URI.
    async fn read(&self, uri: &str, ctx: &RequestContext) -> Result<Option<Value>, String> {
        let Some((kind, id)) = uri
            .strip_prefix(RESOURCE_URI)
            .and_then(|rest| rest.split_once('/'))
        else {
            return Ok(None);
        };
        if !KINDS.iter().any(|(_, known, _)| *known == kind) {
            return Ok(None);
        }
        let path = format!("/{kind}/{}", id_segment(id)?);
        self.upstream
            .manifest_api(&self.manifest, ctx)
            .json(Method::GET, &path, &[], None)
            .await
            .map(Some)
    }
}

impl McpServer for Quickbooks {
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
        Box::pin(async move {
            let args = &arguments;
            let outcome = match name {
                "search_customers" => self.search_customers(args, ctx).await,
                "analyze_sred" => self.analyze_sred(args, ctx).await,
                "analyze_cash_flow" => self.analyze_cash_flow(args, ctx).await,
                "find_duplicate_transactions" => self.find_duplicates(args, ctx).await,
                "analyze_customer_payment_patterns" => self.payment_patterns(args, ctx).await,
                "generate_financial_metrics" => self.financial_metrics(args, ctx).await,
                _ => return Err(McpError::invalid_params(format!("Unknown tool: {name}")).into()),
            };
            Ok(answer(outcome))
        })
    }
}
