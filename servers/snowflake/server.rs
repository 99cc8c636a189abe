//! snowflake: guMCP's eight tools as statements sent to Snowflake's SQL API
//! (`POST /api/v2/statements` on the account's host), with a programmatic access token as
//! Bearer. guMCP ran them through the Python connector with a password; the SQL API takes
//! no password, so the credential's secret must be a token (see the README). Names given as
//! arguments go into the SQL as identifiers: plain ones as written (Snowflake upper-cases
//! them, as guMCP's did), anything else quoted, so an argument cannot add SQL of its own.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use rmcp::model::{CallToolResult, JsonObject, Tool};
use serde_json::{json, Map, Value};

use crate::auth::key_fields;
use crate::protocol::error::McpError;
use crate::servers::http::{Api, Upstream};
use crate::servers::kit::{answer, required_text, text, tool};
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, Features, McpServer, RequestContext, ServerFuture, ServerInit};

/// How long Snowflake holds the request before answering that the statement still runs.
const STATEMENT_TIMEOUT_SECS: u64 = 600;
/// Status reads of a statement still running, at most (2 s apart).
const STATUS_READS: usize = 300;
/// Result partitions read at most; the rest is left out and the answer says so.
const MAX_PARTITIONS: u64 = 20;
/// Snowflake's code for "the statement is still running".
const STILL_RUNNING: &str = "333334";

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    Arc::new(Snowflake {
        manifest: init.manifest,
        upstream: init.upstream,
        tools: tools(),
    })
}

struct Snowflake {
    manifest: Arc<Manifest>,
    upstream: Upstream,
    tools: Vec<Tool>,
}

fn tools() -> Vec<Tool> {
    let name = |description: &str| json!({ "type": "string", "description": description });
    vec![
        tool(
            "create_database",
            "Create a database",
            json!({ "type": "object", "properties": { "db_name": name("The database's name") }, "required": ["db_name"] }),
        ),
        tool(
            "list_databases",
            "The databases the user can see, one block each",
            json!({ "type": "object", "properties": {}, "required": [] }),
        ),
        tool(
            "create_table",
            "Create a table from column definitions",
            json!({ "type": "object", "properties": {
                "database_name": name("The database"),
                "warehouse_name": name("The warehouse to run on (else the default)"),
                "schema_name": { "type": "string", "default": "PUBLIC", "description": "The schema (default PUBLIC)" },
                "table_name": name("The table's name"),
                "columns": name("The column definitions as SQL, e.g. id INT PRIMARY KEY, name STRING")
            }, "required": ["database_name", "table_name", "columns"] }),
        ),
        tool(
            "list_tables",
            "The tables of a database, one block each",
            json!({ "type": "object", "properties": {
                "database_name": name("The database"),
                "warehouse_name": name("The warehouse to run on (else the default)")
            }, "required": ["database_name"] }),
        ),
        tool(
            "describe_table",
            "A table's columns, one block each",
            json!({ "type": "object", "properties": {
                "database_name": name("The database"),
                "warehouse_name": name("The warehouse to run on (else the default)"),
                "schema_name": { "type": "string", "default": "PUBLIC", "description": "The schema (default PUBLIC)" },
                "table_name": name("The table")
            }, "required": ["database_name", "table_name"] }),
        ),
        tool(
            "list_warehouses",
            "The warehouses the user can see, one block each",
            json!({ "type": "object", "properties": {}, "required": [] }),
        ),
        tool(
            "create_warehouse",
            "Create a warehouse unless one of that name exists",
            json!({ "type": "object", "properties": {
                "warehouse_name": name("The warehouse's name"),
                "warehouse_size": { "type": "string", "default": "X-SMALL", "description": "X-SMALL, SMALL, MEDIUM, LARGE … (default X-SMALL)" },
                "auto_suspend": { "type": "integer", "default": 300, "description": "Seconds idle before it suspends (default 300)" },
                "auto_resume": { "type": "boolean", "default": true, "description": "Whether a query resumes it (default true)" }
            }, "required": ["warehouse_name"] }),
        ),
        tool(
            "execute_query",
            "Run one SQL statement in a database; answers its rows, one block each",
            json!({ "type": "object", "properties": {
                "database_name": name("The database to run it in"),
                "query": name("The SQL statement")
            }, "required": ["database_name", "query"] }),
        ),
    ]
}

/// A name as an SQL identifier: a plain one as written, anything else double-quoted.
fn identifier(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("a name was empty".to_owned());
    }
    let mut chars = name.chars();
    let plain = chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    Ok(if plain {
        name.to_owned()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    })
}

/// A warehouse size as Snowflake spells them (`X-SMALL`, `XSMALL`, `MEDIUM` …).
fn warehouse_size(size: &str) -> Result<String, String> {
    let size = size.trim().to_ascii_uppercase();
    if !size.is_empty() && size.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        Ok(size)
    } else {
        Err(format!(
            "{size:?} is not a warehouse size (X-SMALL, SMALL, MEDIUM …)"
        ))
    }
}

/// The statement a tool runs and where: its SQL, the database (`execute_query`'s; the others
/// name theirs in the SQL), the warehouse.
#[derive(Debug, PartialEq)]
struct Statement {
    sql: String,
    database: Option<String>,
    warehouse: Option<String>,
}

fn statement(name: &str, arguments: &JsonObject) -> Result<Statement, String> {
    let named = |key: &str| required_text(arguments, key).and_then(identifier);
    let schema = || identifier(text(arguments, "schema_name").unwrap_or("PUBLIC"));
    let database = text(arguments, "database_name")
        .filter(|_| name == "execute_query")
        .map(str::to_owned);
    // create_warehouse's warehouse_name is the one it creates, not one to run on.
    let warehouse = text(arguments, "warehouse_name")
        .filter(|w| !w.is_empty() && name != "create_warehouse")
        .map(str::to_owned);
    let sql = match name {
        "create_database" => format!("CREATE DATABASE {}", named("db_name")?),
        "list_databases" => "SHOW DATABASES".to_owned(),
        "create_table" => format!(
            "CREATE TABLE {}.{}.{} ({})",
            named("database_name")?,
            schema()?,
            named("table_name")?,
            required_text(arguments, "columns")?
        ),
        "list_tables" => format!("SHOW TABLES IN DATABASE {}", named("database_name")?),
        "describe_table" => format!(
            "DESCRIBE TABLE {}.{}.{}",
            named("database_name")?,
            schema()?,
            named("table_name")?
        ),
        "list_warehouses" => "SHOW WAREHOUSES".to_owned(),
        "create_warehouse" => format!(
            "CREATE WAREHOUSE IF NOT EXISTS {} WITH WAREHOUSE_SIZE = '{}' AUTO_SUSPEND = {} \
             AUTO_RESUME = {}",
            named("warehouse_name")?,
            warehouse_size(text(arguments, "warehouse_size").unwrap_or("X-SMALL"))?,
            arguments
                .get("auto_suspend")
                .and_then(Value::as_i64)
                .unwrap_or(300),
            if arguments
                .get("auto_resume")
                .and_then(Value::as_bool)
                .unwrap_or(true)
            {
                "TRUE"
            } else {
                "FALSE"
            }
        ),
        "execute_query" => required_text(arguments, "query")?.to_owned(),
        other => return Err(format!("Unknown tool: {other}")),
    };
    Ok(Statement {
        sql,
        database,
        warehouse,
    })
}

/// The account's SQL API host from its identifier (`myorg-myaccount`, `xy12345.us-east-1`,
/// or the whole host): lowercase, `_` as `-`, nothing but letters, digits, `-` and `.`.
fn account_host(account: &str) -> Result<String, String> {
    let account = account
        .trim()
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .trim_end_matches(".snowflakecomputing.com")
        .to_ascii_lowercase()
        .replace('_', "-");
    let valid = !account.is_empty()
        && !account.starts_with(['-', '.'])
        && account
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if valid {
        Ok(format!("https://{account}.snowflakecomputing.com"))
    } else {
        Err("is not a Snowflake account identifier (like myorg-myaccount)".to_owned())
    }
}

/// The rows of a result partition as objects of column name to value.
fn rows(columns: &[String], data: &Value) -> Vec<Value> {
    data.as_array()
        .into_iter()
        .flatten()
        .map(|row| {
            let cells = row.as_array().cloned().unwrap_or_default();
            let object: Map<String, Value> = columns.iter().cloned().zip(cells).collect();
            Value::Object(object)
        })
        .collect()
}

impl Snowflake {
    /// The account's SQL API (unless the config overrides it) and the default warehouse.
    async fn account<'a>(
        &'a self,
        ctx: &'a RequestContext,
    ) -> Result<(Api<'a>, Option<String>), String> {
        let credentials = ctx.credentials.get().await.map_err(|err| err.to_string())?;
        let user = &ctx.user_id;
        let field = |name: &str| {
            let field = self
                .manifest
                .auth
                .key_fields
                .iter()
                .find(|f| f.name == name)?;
            key_fields::value_of(&credentials, field).map(|value| (field, value))
        };
        let reconnect =
            format!("reconnect with `gumcp-actors auth --server snowflake --user-id {user}`");
        let host = if self.upstream.base_urls.contains_key(&self.manifest.name) {
            String::new()
        } else {
            let Some((field, account)) = field("account") else {
                return Err(format!(
                    "the Snowflake account of user {user} is not stored; {reconnect}"
                ));
            };
            account_host(account).map_err(|why| {
                format!(
                    "the {} stored for user {user} {why}; {reconnect}",
                    field.label
                )
            })?
        };
        let warehouse = field("warehouse").map(|(_, warehouse)| warehouse.to_owned());
        Ok((self.upstream.api(&self.manifest, &host, ctx), warehouse))
    }

    async fn run(
        &self,
        name: &str,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let statement = statement(name, arguments)?;
        let (api, default_warehouse) = self.account(ctx).await?;
        let mut body = json!({ "statement": statement.sql, "timeout": STATEMENT_TIMEOUT_SECS });
        for (key, value) in [
            ("database", statement.database),
            ("warehouse", statement.warehouse.or(default_warehouse)),
        ] {
            if let Some(value) = value {
                body[key] = json!(value);
            }
        }
        let mut answer = api
            .json(Method::POST, "/api/v2/statements", &[], Some(&body))
            .await?;
        let handle = answer
            .get("statementHandle")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let status_path = format!(
            "/api/v2/statements/{}",
            crate::servers::kit::segment(&handle)
        );
        let mut reads = 0;
        while answer.get("code").and_then(Value::as_str) == Some(STILL_RUNNING) {
            reads += 1;
            if reads > STATUS_READS || handle.is_empty() {
                return Err(format!(
                    "the statement {handle} is still running at Snowflake; it goes on there"
                ));
            }
            tokio::select! {
                () = ctx.cancellation.cancelled() => {
                    return Err("the call was cancelled; the statement goes on at Snowflake".to_owned())
                }
                () = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
            answer = api.json(Method::GET, &status_path, &[], None).await?;
        }
        let columns: Vec<String> = answer
            .pointer("/resultSetMetaData/rowType")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|column| {
                column
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect();
        let mut found = rows(&columns, answer.get("data").unwrap_or(&Value::Null));
        let partitions = answer
            .pointer("/resultSetMetaData/partitionInfo")
            .and_then(Value::as_array)
            .map_or(1, |parts| parts.len() as u64);
        for partition in 1..partitions.min(MAX_PARTITIONS) {
            let more = api
                .json(
                    Method::GET,
                    &status_path,
                    &[("partition", partition.to_string())],
                    None,
                )
                .await?;
            found.extend(rows(&columns, more.get("data").unwrap_or(&Value::Null)));
        }
        if partitions > MAX_PARTITIONS {
            found.push(json!(format!(
                "(the first {MAX_PARTITIONS} of {partitions} result partitions; narrow the query for the rest)"
            )));
        }
        Ok(Value::Array(found))
    }
}

impl McpServer for Snowflake {
    fn features(&self) -> Features {
        Features::default()
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
        Box::pin(async move {
            if !self.tools.iter().any(|tool| tool.name == name) {
                return Err(McpError::invalid_params(format!("Unknown tool: {name}")).into());
            }
            Ok(answer(self.run(name, &arguments, ctx).await))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_add_sql() {
        assert_eq!(identifier("analytics_2").unwrap(), "analytics_2");
        assert_eq!(
            identifier("x; DROP DATABASE prod").unwrap(),
            "\"x; DROP DATABASE prod\""
        );
        assert_eq!(identifier("a\"b").unwrap(), "\"a\"\"b\"");
        assert!(warehouse_size("X-SMALL' AUTO_SUSPEND = 0").is_err());
    }

    #[test]
    fn account_identifiers_become_hosts() {
        assert_eq!(
            account_host("MyOrg-My_Account").unwrap(),
            "https://myorg-my-account.snowflakecomputing.com"
        );
        assert_eq!(
            account_host("xy12345.us-east-1.snowflakecomputing.com").unwrap(),
            "https://xy12345.us-east-1.snowflakecomputing.com"
        );
        for bad in ["", "evil.com/x", "a@b", "-x"] {
            assert!(account_host(bad).is_err(), "{bad}");
        }
    }
}
