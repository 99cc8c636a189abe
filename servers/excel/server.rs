//! excel: Excel workbooks in the user's OneDrive through Microsoft Graph's workbook API (v1.0),
//! with guMCP's 21 tools, names and arguments, on the Microsoft identity platform provider.
//! Ten tools are one request each, declared in `server.toml` and handed to the runtime's `http`
//! engine; the others are code:
//!
//! - create_workbook uploads a minimal .xlsx built here (one empty sheet) to the folder's path;
//!   guMCP uploaded an empty zip archive, which Excel cannot open.
//! - read_worksheet and list_tables go to one of two paths, as the arguments say.
//! - add_row, find_row, find_or_create_row and update_row read the worksheet's used range (its
//!   first row the headers) and write below it, or on the row found. add_row's `values` are
//!   objects (guMCP's schema), each a row of column name → value; on an empty sheet their
//!   names become the header row.
//! - add_table names the new table when a name is given (Graph's `tables/add` takes none).
//! - add_table_row orders the given values by the table's headers; update_table_column writes
//!   a column's values under its header (guMCP listed both tools but had no code for them).
//! - search_workbooks quotes the search text as an OData string.
//!
//! Names in a path are single segments, and a range address or search text inside `(…='…')`
//! has its quotes doubled, so an argument stays what it is. guMCP's resources are code too:
//! the workbooks Graph's search finds as `excel://file/{id}`, each read as its details and
//! worksheets. The runtime's `Api` does the credentials, the refresh-and-retry on 401 and the
//! wording of upstream failures.

use std::io::{Cursor, Write};
use std::sync::Arc;

use futures::FutureExt;
use reqwest::Method;
use rmcp::model::{CallToolResult, JsonObject, ReadResourceResult, Resource, Tool};
use serde_json::{json, Map, Value};

use crate::protocol::error::McpError;
use crate::servers::http::{Api, HttpServer, Upstream};
use crate::servers::kit::{answer, id_segment, required_text, segment, text, text_resource, tool};
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, Features, McpServer, RequestContext, ServerFuture, ServerInit};

const XLSX_MIME: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
/// What every workbook resource's URI starts with; the file id follows.
const FILE_URI: &str = "excel://file/";
/// Workbooks listed as resources, as many as guMCP's.
const LISTED_WORKBOOKS: u64 = 50;

/// The parts of a new workbook with one empty sheet: the least Excel opens.
const XLSX_PARTS: [(&str, &str); 5] = [
    (
        "[Content_Types].xml",
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#,
    ),
    (
        "_rels/.rels",
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#,
    ),
    (
        "xl/workbook.xml",
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>"#,
    ),
    (
        "xl/_rels/workbook.xml.rels",
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#,
    ),
    (
        "xl/worksheets/sheet1.xml",
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData/></worksheet>"#,
    ),
];

/// guMCP's order of the tools, declared and coded alike.
const ORDER: [&str; 21] = [
    "create_workbook",
    "list_worksheets",
    "add_worksheet",
    "read_worksheet",
    "update_cells",
    "add_formula",
    "add_row",
    "add_table",
    "add_table_row",
    "find_row",
    "find_or_create_row",
    "update_row",
    "delete_worksheet_row",
    "list_tables",
    "get_table",
    "list_table_rows",
    "add_table_column",
    "update_table_column",
    "delete_table",
    "download_workbook",
    "search_workbooks",
];

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    let declared = HttpServer::new(init.manifest.clone(), init.upstream.clone());
    let mut tools = coded_tools();
    tools.extend(declared.tools());
    tools.sort_by_key(|tool| ORDER.iter().position(|name| *name == tool.name));
    Arc::new(Excel {
        manifest: init.manifest,
        upstream: init.upstream,
        declared,
        tools,
    })
}

struct Excel {
    manifest: Arc<Manifest>,
    upstream: Upstream,
    /// The tools `server.toml` declares, run by the `http` engine.
    declared: HttpServer,
    tools: Vec<Tool>,
}

fn string(description: &str) -> Value {
    json!({ "type": "string", "description": description })
}

fn file_id() -> Value {
    string("ID of the Excel file")
}

fn coded_tools() -> Vec<Tool> {
    let sheet = string("Name of the worksheet");
    let table_sheet = string("Name of the worksheet containing the table");
    vec![
        tool(
            "create_workbook",
            "Create a new Excel workbook in OneDrive",
            json!({
                "type": "object",
                "properties": {
                    "name": string("Name for the new workbook (will add .xlsx extension if not included)"),
                    "folder_path": string("Path to folder in OneDrive (optional, defaults to root)")
                },
                "required": ["name"]
            }),
        ),
        tool(
            "read_worksheet",
            "Read data from a worksheet",
            json!({
                "type": "object",
                "properties": {
                    "file_id": file_id(),
                    "worksheet_name": string("Name of the worksheet to read"),
                    "range": string("Cell range to read (e.g., 'A1:D10'), defaults to used range if not specified")
                },
                "required": ["file_id", "worksheet_name"]
            }),
        ),
        tool(
            "add_row",
            "Add a row to the end of a worksheet",
            json!({
                "type": "object",
                "properties": {
                    "file_id": file_id(),
                    "worksheet_name": sheet,
                    "values": { "type": "array", "items": { "type": "object" }, "description": "Rows to add, each an object of column name (header) to value" }
                },
                "required": ["file_id", "worksheet_name", "values"]
            }),
        ),
        tool(
            "add_table",
            "Create a new table in a worksheet",
            json!({
                "type": "object",
                "properties": {
                    "file_id": file_id(),
                    "worksheet_name": sheet,
                    "name": string("Name for the new table"),
                    "range": string("Cell range for the table (e.g., 'A1:D10')"),
                    "has_headers": { "type": "boolean", "description": "Whether the first row contains headers", "default": true }
                },
                "required": ["file_id", "worksheet_name", "range"]
            }),
        ),
        tool(
            "add_table_row",
            "Add a row to a table",
            json!({
                "type": "object",
                "properties": {
                    "file_id": file_id(),
                    "worksheet_name": table_sheet,
                    "table_name": string("Name of the table to add a row to"),
                    "values": { "type": "object", "description": "Object with key-value pairs for the new row (keys should match table headers)" }
                },
                "required": ["file_id", "worksheet_name", "table_name", "values"]
            }),
        ),
        tool(
            "find_row",
            "Find a row by column value",
            json!({
                "type": "object",
                "properties": {
                    "file_id": file_id(),
                    "worksheet_name": sheet,
                    "column": string("Column name or letter to search in"),
                    "value": { "description": "Value to search for" }
                },
                "required": ["file_id", "worksheet_name", "column", "value"]
            }),
        ),
        tool(
            "find_or_create_row",
            "Find a row by column value or create it if not found",
            json!({
                "type": "object",
                "properties": {
                    "file_id": file_id(),
                    "worksheet_name": sheet,
                    "search_column": string("Column name or letter to search in"),
                    "search_value": { "description": "Value to search for" },
                    "values": { "type": "object", "description": "Object with key-value pairs for the new row if not found" }
                },
                "required": ["file_id", "worksheet_name", "search_column", "search_value", "values"]
            }),
        ),
        tool(
            "update_row",
            "Update a specific row in a worksheet",
            json!({
                "type": "object",
                "properties": {
                    "file_id": file_id(),
                    "worksheet_name": sheet,
                    "row_index": { "type": "integer", "description": "Index of the row to update (1-based: 1 is the first row below the headers)" },
                    "values": { "type": "object", "description": "Object with column-value pairs to update" }
                },
                "required": ["file_id", "worksheet_name", "row_index", "values"]
            }),
        ),
        tool(
            "list_tables",
            "List all tables in an Excel workbook",
            json!({
                "type": "object",
                "properties": {
                    "file_id": file_id(),
                    "worksheet_name": string("Name of the worksheet (optional, if specified will only list tables in this worksheet)")
                },
                "required": ["file_id"]
            }),
        ),
        tool(
            "update_table_column",
            "Update data in a table column",
            json!({
                "type": "object",
                "properties": {
                    "file_id": file_id(),
                    "worksheet_name": table_sheet,
                    "table_name": string("Name of the table"),
                    "column_name": string("Name of the column to update"),
                    "values": { "type": "array", "items": {}, "description": "Array of values for the column" }
                },
                "required": ["file_id", "worksheet_name", "table_name", "column_name", "values"]
            }),
        ),
        tool(
            "search_workbooks",
            "Search for workbooks",
            json!({
                "type": "object",
                "properties": {
                    "query": string("Search query"),
                    "limit": { "type": "integer", "description": "Maximum number of results to return", "default": 20 }
                },
                "required": ["query"]
            }),
        ),
    ]
}

/// Text as an OData string literal's content, quotes doubled, then as one path segment.
fn odata(value: &str) -> String {
    segment(&value.replace('\'', "''"))
}

/// The column letters of a 1-based column number (1 → A, 27 → AA).
fn column_letters(mut number: usize) -> String {
    let mut letters = Vec::new();
    while number > 0 {
        let rest = (number - 1) % 26;
        letters.push(char::from(b'A' + u8::try_from(rest).unwrap_or(0)));
        number = (number - 1) / 26;
    }
    letters.iter().rev().collect()
}

/// A cell value as text, the way a person compares it: strings as they are, numbers and
/// booleans printed, empty for none.
fn cell_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A worksheet's used range as rows; none for a sheet with nothing in it (Graph answers one
/// empty cell).
fn used_rows(range: &Value) -> Vec<Vec<Value>> {
    let rows: Vec<Vec<Value>> = range
        .get("values")
        .and_then(Value::as_array)
        .map(|rows| {
            rows.iter()
                .map(|row| row.as_array().cloned().unwrap_or_default())
                .collect()
        })
        .unwrap_or_default();
    let empty = rows.iter().flatten().all(|cell| cell_text(cell).is_empty());
    if empty {
        Vec::new()
    } else {
        rows
    }
}

/// The sheet row (1-based) of the used range's first row.
fn first_row(range: &Value) -> usize {
    range
        .get("rowIndex")
        .and_then(Value::as_u64)
        .and_then(|index| usize::try_from(index).ok())
        .unwrap_or(0)
        + 1
}

/// The index of `column` (a letter, or a header's name in any case) among `headers`.
fn column_index(column: &str, headers: &[Value]) -> Option<usize> {
    let index = if column.len() == 1 && column.chars().all(|c| c.is_ascii_alphabetic()) {
        Some(usize::from(
            column.to_ascii_uppercase().as_bytes()[0] - b'A',
        ))
    } else {
        headers
            .iter()
            .position(|header| cell_text(header).eq_ignore_ascii_case(column))
    };
    index.filter(|index| *index < headers.len())
}

/// A row as an object of its headers' names.
fn row_object(headers: &[Value], row: &[Value]) -> Value {
    let mut object = Map::new();
    for (header, value) in headers.iter().zip(row) {
        object.insert(cell_text(header), value.clone());
    }
    Value::Object(object)
}

/// The values of a row in the headers' order (empty where an object gives none); a list is
/// taken as it is.
fn ordered_row(values: &Value, headers: &[Value]) -> Vec<Value> {
    match values {
        Value::Object(object) if !headers.is_empty() => headers
            .iter()
            .map(|header| object.get(&cell_text(header)).cloned().unwrap_or(json!("")))
            .collect(),
        Value::Object(object) => object.values().cloned().collect(),
        Value::Array(items) => items.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

/// The range address of one row of `width` cells from column A on sheet row `row`.
fn row_address(row: usize, width: usize) -> String {
    format!("A{row}:{}{row}", column_letters(width.max(1)))
}

/// The data row (1 = the first below the headers) whose `column` holds `value` (compared as
/// text, case aside), with its content.
fn find(rows: &[Vec<Value>], column: &str, value: &Value) -> Result<(usize, Value), String> {
    let Some(headers) = rows.first().filter(|_| rows.len() >= 2) else {
        return Err("No data found in worksheet or only headers present".to_owned());
    };
    let index = column_index(column, headers)
        .ok_or_else(|| format!("Column '{column}' not found in worksheet"))?;
    let wanted = cell_text(value).to_lowercase();
    rows.iter()
        .enumerate()
        .skip(1)
        .find(|(_, row)| {
            row.get(index)
                .is_some_and(|cell| cell_text(cell).to_lowercase() == wanted)
        })
        .map(|(at, row)| (at, row_object(headers, row)))
        .ok_or_else(|| {
            format!(
                "No row found with value '{}' in column '{column}'",
                cell_text(value)
            )
        })
}

/// The new workbook's .xlsx archive.
fn new_xlsx() -> Result<Vec<u8>, String> {
    let mut archive = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, text) in XLSX_PARTS {
        archive
            .start_file(name, stored)
            .and_then(|()| archive.write_all(text.as_bytes()).map_err(Into::into))
            .map_err(|err| format!("the workbook could not be built: {err}"))?;
    }
    archive
        .finish()
        .map(Cursor::into_inner)
        .map_err(|err| format!("the workbook could not be built: {err}"))
}

/// The OneDrive path of a new workbook (`.xlsx` added if missing), each segment encoded.
fn workbook_path(folder: &str, name: &str) -> Result<String, String> {
    let name = if name.to_lowercase().ends_with(".xlsx") {
        name.to_owned()
    } else {
        format!("{name}.xlsx")
    };
    let mut parts = Vec::new();
    for part in folder
        .split('/')
        .chain(std::iter::once(name.as_str()))
        .filter(|part| !part.is_empty())
    {
        parts.push(id_segment(part)?);
    }
    Ok(parts.join("/"))
}

impl Excel {
    fn api<'a>(&'a self, ctx: &'a RequestContext) -> Api<'a> {
        self.upstream.manifest_api(&self.manifest, ctx)
    }

    /// `/me/drive/items/{file}/workbook/worksheets/{sheet}` of the arguments.
    fn sheet_path(arguments: &JsonObject) -> Result<String, String> {
        Ok(format!(
            "/me/drive/items/{}/workbook/worksheets/{}",
            id_segment(required_text(arguments, "file_id")?)?,
            id_segment(required_text(arguments, "worksheet_name")?)?
        ))
    }

    /// The sheet's path with the table the arguments name.
    fn table_path(arguments: &JsonObject) -> Result<String, String> {
        Ok(format!(
            "{}/tables/{}",
            Self::sheet_path(arguments)?,
            id_segment(required_text(arguments, "table_name")?)?
        ))
    }

    async fn used_range(&self, sheet: &str, ctx: &RequestContext) -> Result<Value, String> {
        self.api(ctx)
            .json(Method::GET, &format!("{sheet}/usedRange"), &[], None)
            .await
    }

    /// Writes `rows` on the sheet rows below the used range; Graph's answer and the first
    /// sheet row written.
    async fn append(
        &self,
        sheet: &str,
        range: &Value,
        rows: Vec<Vec<Value>>,
        ctx: &RequestContext,
    ) -> Result<(Value, usize), String> {
        let used = used_rows(range);
        let next = if used.is_empty() {
            1
        } else {
            first_row(range) + used.len()
        };
        let width = rows.iter().map(Vec::len).max().unwrap_or(0);
        let rows: Vec<Vec<Value>> = rows
            .into_iter()
            .map(|mut row| {
                row.resize(width, json!(""));
                row
            })
            .collect();
        let last = next + rows.len().saturating_sub(1);
        let address = format!("A{next}:{}{last}", column_letters(width.max(1)));
        let path = format!("{sheet}/range(address='{}')", odata(&address));
        let written = self
            .api(ctx)
            .json(Method::PATCH, &path, &[], Some(&json!({ "values": rows })))
            .await?;
        Ok((written, next))
    }

    async fn create_workbook(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let path = workbook_path(
            text(arguments, "folder_path").unwrap_or_default(),
            required_text(arguments, "name")?,
        )?;
        self.api(ctx)
            .upload(
                Method::PUT,
                &format!("/me/drive/root:/{path}:/content"),
                &[("@microsoft.graph.conflictBehavior", "rename".to_owned())],
                XLSX_MIME,
                &new_xlsx()?,
            )
            .await
    }

    async fn read_worksheet(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let sheet = Self::sheet_path(arguments)?;
        let path = match text(arguments, "range") {
            Some(range) => format!("{sheet}/range(address='{}')", odata(range)),
            None => format!("{sheet}/usedRange"),
        };
        self.api(ctx).json(Method::GET, &path, &[], None).await
    }

    async fn add_row(&self, arguments: &JsonObject, ctx: &RequestContext) -> Result<Value, String> {
        let sheet = Self::sheet_path(arguments)?;
        let range = self.used_range(&sheet, ctx).await?;
        let items = arguments
            .get("values")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if items.is_empty() {
            return Err("values must hold at least one row".to_owned());
        }
        let mut headers = used_rows(&range).first().cloned().unwrap_or_default();
        let mut rows = Vec::new();
        if headers.is_empty() {
            // An empty sheet: the first row's names become its headers.
            headers = match &items[0] {
                Value::Object(first) => first.keys().map(|key| json!(key)).collect(),
                _ => Vec::new(),
            };
            if !headers.is_empty() {
                rows.push(headers.clone());
            }
        }
        rows.extend(items.iter().map(|item| ordered_row(item, &headers)));
        let (written, _) = self.append(&sheet, &range, rows, ctx).await?;
        Ok(written)
    }

    async fn add_table(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let path = format!("{}/tables/add", Self::sheet_path(arguments)?);
        let body = json!({
            "address": required_text(arguments, "range")?,
            "hasHeaders": arguments.get("has_headers").and_then(Value::as_bool).unwrap_or(true),
        });
        let api = self.api(ctx);
        let table = api.json(Method::POST, &path, &[], Some(&body)).await?;
        let (Some(name), Some(id)) = (
            text(arguments, "name"),
            table.get("id").and_then(Value::as_str),
        ) else {
            return Ok(table);
        };
        let path = format!(
            "/me/drive/items/{}/workbook/tables/{}",
            id_segment(required_text(arguments, "file_id")?)?,
            id_segment(id)?
        );
        api.json(Method::PATCH, &path, &[], Some(&json!({ "name": name })))
            .await
    }

    async fn add_table_row(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let table = Self::table_path(arguments)?;
        let api = self.api(ctx);
        let header_range = api
            .json(Method::GET, &format!("{table}/headerRowRange"), &[], None)
            .await?;
        let headers = used_rows(&header_range)
            .first()
            .cloned()
            .unwrap_or_default();
        let values = arguments.get("values").cloned().unwrap_or(Value::Null);
        let body = json!({ "values": [ordered_row(&values, &headers)] });
        api.json(Method::POST, &format!("{table}/rows"), &[], Some(&body))
            .await
    }

    async fn find_row(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let sheet = Self::sheet_path(arguments)?;
        let range = self.used_range(&sheet, ctx).await?;
        let value = arguments.get("value").cloned().unwrap_or(Value::Null);
        let (at, row) = find(
            &used_rows(&range),
            required_text(arguments, "column")?,
            &value,
        )?;
        Ok(json!({ "found_row": row, "row_index": at }))
    }

    async fn find_or_create_row(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let sheet = Self::sheet_path(arguments)?;
        let range = self.used_range(&sheet, ctx).await?;
        let rows = used_rows(&range);
        let value = arguments
            .get("search_value")
            .cloned()
            .unwrap_or(Value::Null);
        let column = required_text(arguments, "search_column")?;
        if let Ok((at, row)) = find(&rows, column, &value) {
            return Ok(json!({ "row": row, "row_index": at, "created": false }));
        }
        let headers = rows.first().cloned().unwrap_or_default();
        let values = arguments.get("values").cloned().unwrap_or(Value::Null);
        let (_, sheet_row) = self
            .append(&sheet, &range, vec![ordered_row(&values, &headers)], ctx)
            .await?;
        let row_index = sheet_row.saturating_sub(first_row(&range));
        Ok(json!({ "row": values, "row_index": row_index, "created": true }))
    }

    async fn update_row(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let sheet = Self::sheet_path(arguments)?;
        let range = self.used_range(&sheet, ctx).await?;
        let rows = used_rows(&range);
        let Some(headers) = rows.first() else {
            return Err("No headers found in worksheet".to_owned());
        };
        let index = arguments
            .get("row_index")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let Some(at) = usize::try_from(index)
            .ok()
            .filter(|at| *at >= 1 && *at < rows.len())
        else {
            return Err(format!("Row index {index} is out of range"));
        };
        let mut row = rows[at].clone();
        row.resize(headers.len().max(row.len()), json!(""));
        if let Some(values) = arguments.get("values").and_then(Value::as_object) {
            for (name, value) in values {
                if let Some(column) = headers.iter().position(|header| cell_text(header) == *name) {
                    row[column] = value.clone();
                }
            }
        }
        let address = row_address(first_row(&range) + at, row.len());
        let path = format!("{sheet}/range(address='{}')", odata(&address));
        self.api(ctx)
            .json(
                Method::PATCH,
                &path,
                &[],
                Some(&json!({ "values": [row.clone()] })),
            )
            .await?;
        Ok(json!({ "updated": true, "row": row_object(headers, &row), "row_index": at }))
    }

    async fn list_tables(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let path = match text(arguments, "worksheet_name") {
            Some(_) => format!("{}/tables", Self::sheet_path(arguments)?),
            None => format!(
                "/me/drive/items/{}/workbook/tables",
                id_segment(required_text(arguments, "file_id")?)?
            ),
        };
        let listed = self.api(ctx).json(Method::GET, &path, &[], None).await?;
        Ok(listed.get("value").cloned().unwrap_or(json!([])))
    }

    async fn update_table_column(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let column = required_text(arguments, "column_name")?;
        let path = format!(
            "{}/columns/{}",
            Self::table_path(arguments)?,
            id_segment(column)?
        );
        let mut cells = vec![json!([column])];
        cells.extend(
            arguments
                .get("values")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|value| json!([value])),
        );
        self.api(ctx)
            .json(Method::PATCH, &path, &[], Some(&json!({ "values": cells })))
            .await
    }

    /// Graph's search for `query` among the user's files, newest first.
    async fn search(
        &self,
        ctx: &RequestContext,
        query: &str,
        limit: u64,
    ) -> Result<Vec<Value>, String> {
        let path = format!("/me/drive/root/search(q='{}')", odata(query));
        let params = [
            ("$top", limit.to_string()),
            (
                "$select",
                "id,name,webUrl,lastModifiedDateTime,createdDateTime,size".to_owned(),
            ),
            ("$orderby", "lastModifiedDateTime desc".to_owned()),
        ];
        let found = self
            .api(ctx)
            .json(Method::GET, &path, &params, None)
            .await?;
        Ok(found
            .get("value")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default())
    }

    async fn search_workbooks(
        &self,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let query = format!("{}.xlsx", required_text(arguments, "query")?);
        let limit = arguments
            .get("limit")
            .and_then(Value::as_u64)
            .unwrap_or(20)
            .clamp(1, 200);
        self.search(ctx, &query, limit).await.map(Value::Array)
    }

    async fn read(&self, uri: &str, ctx: &RequestContext) -> Result<ReadResourceResult, CallError> {
        let id = uri
            .strip_prefix(FILE_URI)
            .and_then(|id| id_segment(id).ok())
            .filter(|id| !id.contains("%2F"))
            .ok_or_else(|| CallError::ResourceNotFound(uri.into()))?;
        let api = self.api(ctx);
        let item = api
            .json(Method::GET, &format!("/me/drive/items/{id}"), &[], None)
            .await
            .map_err(McpError::internal)?;
        let sheets = api
            .json(
                Method::GET,
                &format!("/me/drive/items/{id}/workbook/worksheets"),
                &[],
                None,
            )
            .await
            .map_err(McpError::internal)?;
        let worksheets: Vec<Value> = sheets
            .get("value")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|sheet| {
                json!({
                    "id": sheet.get("id"),
                    "name": sheet.get("name"),
                    "position": sheet.get("position"),
                    "visibility": sheet.get("visibility"),
                })
            })
            .collect();
        let details = json!({
            "id": item.get("id"),
            "name": item.get("name"),
            "webUrl": item.get("webUrl"),
            "lastModifiedDateTime": item.get("lastModifiedDateTime"),
            "worksheets": worksheets,
        });
        let text = serde_json::to_string_pretty(&details).unwrap_or_default();
        Ok(text_resource(uri, text, "application/json"))
    }
}

impl McpServer for Excel {
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
            let found = self
                .search(ctx, ".xlsx", LISTED_WORKBOOKS)
                .await
                .map_err(McpError::internal)?;
            Ok(found
                .iter()
                .filter_map(|item| {
                    let id = item.get("id")?.as_str()?;
                    let name = item.get("name")?.as_str()?;
                    // Graph's search matches content too: only workbooks are listed.
                    name.to_lowercase().ends_with(".xlsx").then(|| {
                        Resource::new(format!("{FILE_URI}{id}"), name).with_mime_type(XLSX_MIME)
                    })
                })
                .collect())
        }
        .boxed()
    }

    fn read_resource<'a>(
        &'a self,
        uri: &'a str,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<ReadResourceResult, CallError>> {
        self.read(uri, ctx).boxed()
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
            let outcome = match name {
                "create_workbook" => self.create_workbook(&arguments, ctx).await,
                "read_worksheet" => self.read_worksheet(&arguments, ctx).await,
                "add_row" => self.add_row(&arguments, ctx).await,
                "add_table" => self.add_table(&arguments, ctx).await,
                "add_table_row" => self.add_table_row(&arguments, ctx).await,
                "find_row" => self.find_row(&arguments, ctx).await,
                "find_or_create_row" => self.find_or_create_row(&arguments, ctx).await,
                "update_row" => self.update_row(&arguments, ctx).await,
                "list_tables" => self.list_tables(&arguments, ctx).await,
                "update_table_column" => self.update_table_column(&arguments, ctx).await,
                "search_workbooks" => self.search_workbooks(&arguments, ctx).await,
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
    fn columns_are_lettered_past_z() {
        assert_eq!(column_letters(1), "A");
        assert_eq!(column_letters(26), "Z");
        assert_eq!(column_letters(27), "AA");
        assert_eq!(column_letters(52), "AZ");
        assert_eq!(column_letters(703), "AAA");
    }

    #[test]
    fn rows_are_found_by_header_or_letter_as_text() {
        let rows = vec![
            vec![json!("Name"), json!("Age")],
            vec![json!("Ann"), json!(31)],
            vec![json!("Bob"), json!(42)],
        ];
        let (at, row) = find(&rows, "age", &json!("42")).unwrap();
        assert_eq!((at, row), (2, json!({ "Name": "Bob", "Age": 42 })));
        assert_eq!(find(&rows, "A", &json!("ann")).unwrap().0, 1);
        assert!(find(&rows, "Height", &json!(1)).is_err());
        assert!(find(&rows[..1], "Name", &json!("Ann")).is_err());
    }

    #[test]
    fn an_empty_sheet_has_no_rows_and_a_row_follows_the_used_range() {
        assert!(used_rows(&json!({ "values": [[""]] })).is_empty());
        assert_eq!(row_address(3, 2), "A3:B3");
        assert_eq!(first_row(&json!({ "rowIndex": 4 })), 5);
    }
}
