//! gsheets: Google Sheets (API v4) with guMCP's nine tools, names and arguments.
//!
//! Every tool is code, because none is a plain declared call: a spreadsheet is named by its URL
//! (or bare id) and the id has to be cut out of it; `ranges` travel as a repeated query
//! parameter; lookup-row searches the values it reads; create-sheet merges its properties and
//! wraps bare sheet titles; copy-sheet renames or moves the copy with a second request. The
//! runtime's `Api` still does the credentials, the refresh-and-retry on 401 and the wording of
//! upstream failures, as for declared tools.
//!
//! Resources are guMCP's: each spreadsheet in the account's Drive is
//! `gsheets://spreadsheet/{id}` (listed through the Drive API, which is why the manifest asks
//! for `drive.readonly`), and reading one answers its title, URL, sheet titles and the values of
//! the first ten rows and columns of its first three sheets, as JSON.

use std::sync::Arc;

use futures::FutureExt;
use percent_encoding::utf8_percent_encode;
use reqwest::Method;
use rmcp::model::{CallToolResult, JsonObject, ReadResourceResult, Resource, Tool};
use serde_json::{json, Map, Value};

use crate::protocol::error::McpError;
use crate::servers::http::{Api, Upstream};
use crate::servers::kit::{answer, required_text, text, text_resource, tool, SEGMENT};
use crate::servers::manifest::Manifest;
use crate::servers::{CallError, Features, McpServer, RequestContext, ServerFuture, ServerInit};

/// Where a spreadsheet lives in the browser; create-sheet answers with it.
const SPREADSHEET_PAGE: &str = "https://docs.google.com/spreadsheets/d/";
/// The Drive API, which alone can list an account's spreadsheets. A configured base URL for
/// this server replaces it too (`Upstream::api`), so a proxy or stub must serve both APIs.
const DRIVE_BASE_URL: &str = "https://www.googleapis.com/drive/v3";
/// What every spreadsheet resource's URI starts with; the spreadsheet id follows.
const SPREADSHEET_URI: &str = "gsheets://spreadsheet/";
/// Files per page of Drive's list (its maximum is 1,000; guMCP asked for 50).
const FILES_PER_PAGE: &str = "100";
/// Pages of Drive's list read for `resources/list` (500 spreadsheets); the list is fetched on
/// every request, so it is bounded.
const MAX_FILE_PAGES: usize = 5;
/// Sheets whose values a spreadsheet resource shows, and the cells of each, as guMCP's.
const SAMPLED_SHEETS: usize = 3;
const SAMPLED_CELLS: &str = "A1:J10";

pub fn create(init: ServerInit) -> Arc<dyn McpServer> {
    Arc::new(Sheets {
        manifest: init.manifest,
        upstream: init.upstream,
        tools: tools(),
    })
}

struct Sheets {
    manifest: Arc<Manifest>,
    upstream: Upstream,
    tools: Vec<Tool>,
}

fn url_property() -> Value {
    json!({
        "type": "string",
        "description": "The URL of the Google Sheets document (https://docs.google.com/spreadsheets/d/<id>/edit), or its bare id"
    })
}

fn value_render_option(description: &str) -> Value {
    json!({
        "type": "string",
        "description": description,
        "enum": ["FORMATTED_VALUE", "UNFORMATTED_VALUE", "FORMULA"]
    })
}

fn date_time_render_option(description: &str) -> Value {
    json!({
        "type": "string",
        "description": description,
        "enum": ["SERIAL_NUMBER", "FORMATTED_STRING"]
    })
}

fn value_input_option() -> Value {
    json!({
        "type": "string",
        "description": "How the input data should be interpreted (optional, default: 'RAW')",
        "enum": ["RAW", "USER_ENTERED"]
    })
}

fn rows_property(description: &str) -> Value {
    json!({
        "type": "array",
        "description": description,
        "items": { "type": "array", "items": {} }
    })
}

fn tools() -> Vec<Tool> {
    vec![
        tool(
            "create-sheet",
            "Create a new Google Sheets spreadsheet",
            json!({
                "type": "object",
                "properties": {
                    "title": { "type": "string", "description": "The title of the new spreadsheet" },
                    "sheets": {
                        "type": "array",
                        "description": "The sheets to create with the spreadsheet (optional): {\"title\": …} each, or Sheet objects as the API takes them",
                        "items": {
                            "type": "object",
                            "properties": { "title": { "type": "string", "description": "The title of the sheet" } }
                        }
                    },
                    "locale": { "type": "string", "description": "The locale of the new spreadsheet (e.g., 'en_US') (optional)" },
                    "timeZone": { "type": "string", "description": "The time zone of the new spreadsheet (e.g., 'America/New_York') (optional)" },
                    "properties": { "type": "object", "description": "Additional SpreadsheetProperties for the spreadsheet (optional)" }
                },
                "required": ["title"]
            }),
        ),
        tool(
            "get-spreadsheet-info",
            "Get spreadsheet metadata",
            json!({
                "type": "object",
                "properties": {
                    "spreadsheet_url": url_property(),
                    "include_grid_data": { "type": "boolean", "description": "Whether to include grid data in the response (optional)" },
                    "ranges": { "type": "array", "description": "The ranges to retrieve from the spreadsheet (optional)", "items": { "type": "string" } },
                    "include_filter_views": { "type": "boolean", "description": "Whether to include filter views in the response (optional, default: true)" }
                },
                "required": ["spreadsheet_url"]
            }),
        ),
        tool(
            "get-sheet-names",
            "List sheet names in spreadsheet",
            json!({
                "type": "object",
                "properties": { "spreadsheet_url": url_property() },
                "required": ["spreadsheet_url"]
            }),
        ),
        tool(
            "batch-get",
            "Get values from multiple ranges",
            json!({
                "type": "object",
                "properties": {
                    "spreadsheet_url": url_property(),
                    "ranges": {
                        "type": "array",
                        "description": "The ranges to retrieve from the spreadsheet (e.g. 'Sheet1!A1:C10')",
                        "items": { "type": "string" },
                        "minItems": 1
                    },
                    "major_dimension": {
                        "type": "string",
                        "description": "The major dimension of the values (optional, default: 'ROWS')",
                        "enum": ["ROWS", "COLUMNS"]
                    },
                    "value_render_option": value_render_option("How values should be rendered in the output (optional)"),
                    "date_time_render_option": date_time_render_option("How dates, times, and durations should be represented (optional)")
                },
                "required": ["spreadsheet_url", "ranges"]
            }),
        ),
        tool(
            "batch-update",
            "Update values in multiple ranges",
            json!({
                "type": "object",
                "properties": {
                    "spreadsheet_url": url_property(),
                    "data": {
                        "type": "array",
                        "description": "The data to update in the spreadsheet",
                        "items": {
                            "type": "object",
                            "properties": {
                                "range": { "type": "string", "description": "The range to update (e.g. 'Sheet1!A1:C10')" },
                                "values": rows_property("The values to update"),
                                "majorDimension": {
                                    "type": "string",
                                    "description": "The major dimension of the values (optional, default: 'ROWS')",
                                    "enum": ["ROWS", "COLUMNS"]
                                }
                            },
                            "required": ["range", "values"]
                        }
                    },
                    "value_input_option": value_input_option(),
                    "include_values_in_response": { "type": "boolean", "description": "Whether to include values in the response (optional)" },
                    "response_value_render_option": value_render_option("How values should be rendered in the response (optional)"),
                    "response_date_time_render_option": date_time_render_option("How dates, times, and durations should be represented in the response (optional)")
                },
                "required": ["spreadsheet_url", "data"]
            }),
        ),
        tool(
            "append-values",
            "Append values to a sheet",
            json!({
                "type": "object",
                "properties": {
                    "spreadsheet_url": url_property(),
                    "range": { "type": "string", "description": "The range to append to (e.g. 'Sheet1!A1')" },
                    "values": rows_property("The values to append, one array per row"),
                    "value_input_option": value_input_option(),
                    "insert_data_option": {
                        "type": "string",
                        "description": "How the input data should be inserted (optional)",
                        "enum": ["OVERWRITE", "INSERT_ROWS"]
                    },
                    "include_values_in_response": { "type": "boolean", "description": "Whether to include values in the response (optional)" },
                    "response_value_render_option": value_render_option("How values should be rendered in the response (optional)"),
                    "response_date_time_render_option": date_time_render_option("How dates, times, and durations should be represented in the response (optional)")
                },
                "required": ["spreadsheet_url", "range", "values"]
            }),
        ),
        tool(
            "lookup-row",
            "Find a row by value in a column",
            json!({
                "type": "object",
                "properties": {
                    "spreadsheet_url": url_property(),
                    "range": { "type": "string", "description": "The range to search within (e.g. 'Sheet1!A1:C10')" },
                    "value": { "type": "string", "description": "The value to search for" },
                    "column_index": { "type": "integer", "minimum": 0, "description": "The column to search, 0-based within the range (optional; default: every column)" },
                    "exact_match": { "type": "boolean", "description": "Whether the cell must equal the value, rather than contain it (optional, default: true)" }
                },
                "required": ["spreadsheet_url", "range", "value"]
            }),
        ),
        tool(
            "clear-values",
            "Clear a sheet range",
            json!({
                "type": "object",
                "properties": {
                    "spreadsheet_url": url_property(),
                    "range": { "type": "string", "description": "The range to clear (e.g. 'Sheet1!A1:C10')" }
                },
                "required": ["spreadsheet_url", "range"]
            }),
        ),
        tool(
            "copy-sheet",
            "Copy a sheet from one spreadsheet to another",
            json!({
                "type": "object",
                "properties": {
                    "source_spreadsheet_id": { "type": "string", "description": "The ID of the spreadsheet containing the sheet to copy (its URL works too)" },
                    "source_sheet_id": { "type": "integer", "description": "The ID of the sheet to copy (its sheetId, not its title)" },
                    "destination_spreadsheet_id": { "type": "string", "description": "The ID of the spreadsheet to copy the sheet to (its URL works too)" },
                    "new_sheet_name": { "type": "string", "description": "Optional name for the copied sheet" },
                    "insert_sheet_index": { "type": "integer", "minimum": 0, "description": "The zero-based index where the new sheet should be inserted (optional)" }
                },
                "required": ["source_spreadsheet_id", "source_sheet_id", "destination_spreadsheet_id"]
            }),
        ),
    ]
}

/// The spreadsheet id in a Sheets URL (`…/spreadsheets/d/<id>/…`), or the argument itself when
/// it is a bare id. Ids are letters, digits, `-` and `_`, so the result is a safe path segment.
fn spreadsheet_id(url_or_id: &str) -> Result<String, String> {
    let text = url_or_id.trim();
    let is_id_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let candidate = match text.split_once("/d/") {
        Some((_, rest)) => rest.split(|c: char| !is_id_char(c)).next().unwrap_or(""),
        None if text.chars().all(is_id_char) => text,
        None => "",
    };
    if candidate.is_empty() {
        return Err(format!(
            "{text:?} is neither a Google Sheets URL (https://docs.google.com/spreadsheets/d/<id>/edit) nor a spreadsheet id"
        ));
    }
    Ok(candidate.to_owned())
}

/// The spreadsheet id of a `gsheets://spreadsheet/{id}` URI: a bare id, nothing else.
fn spreadsheet_of(uri: &str) -> Option<&str> {
    let id = uri.strip_prefix(SPREADSHEET_URI)?;
    spreadsheet_id(id).ok().filter(|parsed| parsed == id)?;
    Some(id)
}

/// A sheet title quoted for A1 notation (`It's` → `'It''s'`), so any title names its sheet.
fn quoted_sheet(title: &str) -> String {
    format!("'{}'", title.replace('\'', "''"))
}

/// A range in A1 notation as one path segment (`Sheet 1!A1:B2` → `Sheet%201%21A1%3AB2`).
fn range_segment(range: &str) -> Result<String, String> {
    if range.trim().is_empty() || range == "." || range == ".." {
        return Err(format!("{range:?} is not a range (e.g. 'Sheet1!A1:C10')"));
    }
    Ok(utf8_percent_encode(range, SEGMENT).to_string())
}

/// `(param, value)` for each of `pairs` whose argument was given, as the query wants it.
fn optional_query(
    arguments: &JsonObject,
    pairs: &[(&'static str, &str)],
) -> Vec<(&'static str, String)> {
    pairs
        .iter()
        .filter_map(|(param, key)| {
            let value = match arguments.get(*key)? {
                Value::String(text) => text.clone(),
                Value::Bool(flag) => flag.to_string(),
                Value::Number(number) => number.to_string(),
                _ => return None,
            };
            Some((*param, value))
        })
        .collect()
}

/// Copies the given arguments into `body` under the API's names.
fn copy_into(body: &mut Map<String, Value>, arguments: &JsonObject, pairs: &[(&str, &str)]) {
    for (field, key) in pairs {
        if let Some(value) = arguments.get(*key) {
            body.insert((*field).to_owned(), value.clone());
        }
    }
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// A cell as the text it shows (the API answers formatted values as strings, unformatted ones
/// as numbers or booleans).
fn cell_text(cell: &Value) -> String {
    match cell {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The sheet row number of the first row of an A1 range (`Sheet1!B5:D9` → 5; 1 when the range
/// names whole columns).
fn first_row(range: &str) -> u64 {
    let cells = range.rsplit_once('!').map_or(range, |(_, cells)| cells);
    let start = cells.split(':').next().unwrap_or("");
    let digits: String = start
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap_or(1)
}

/// The rows of `values` where `wanted` is found: in column `column` only when given, else in
/// any cell; equal to the cell (`exact`) or inside it.
fn matching_rows(values: &[Value], wanted: &str, column: Option<usize>, exact: bool) -> Vec<usize> {
    let hit = |cell: &Value| {
        let shown = cell_text(cell);
        if exact {
            shown == wanted
        } else {
            shown.contains(wanted)
        }
    };
    values
        .iter()
        .enumerate()
        .filter(|(_, row)| {
            let cells = row.as_array().map(Vec::as_slice).unwrap_or_default();
            match column {
                Some(column) => cells.get(column).is_some_and(hit),
                None => cells.iter().any(hit),
            }
        })
        .map(|(index, _)| index)
        .collect()
}

/// A bare `{"title": …}` becomes the API's `{"properties": {"title": …}}`; Sheet objects pass.
fn sheet_spec(sheet: &Value) -> Value {
    match sheet {
        Value::Object(object) if !object.contains_key("properties") => {
            json!({ "properties": object })
        }
        other => other.clone(),
    }
}

impl Sheets {
    fn api<'a>(&'a self, ctx: &'a RequestContext) -> Api<'a> {
        self.upstream.manifest_api(&self.manifest, ctx)
    }

    async fn run(
        &self,
        name: &str,
        arguments: &JsonObject,
        ctx: &RequestContext,
    ) -> Result<Value, String> {
        let api = self.api(ctx);
        let id = || spreadsheet_id(required_text(arguments, "spreadsheet_url")?);
        let range = || range_segment(required_text(arguments, "range")?);
        match name {
            "create-sheet" => {
                let mut properties = arguments
                    .get("properties")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                copy_into(
                    &mut properties,
                    arguments,
                    &[
                        ("title", "title"),
                        ("locale", "locale"),
                        ("timeZone", "timeZone"),
                    ],
                );
                let mut body = json!({ "properties": properties });
                if let Some(sheets) = arguments.get("sheets").and_then(Value::as_array) {
                    body["sheets"] = sheets.iter().map(sheet_spec).collect();
                }
                let mut created = api
                    .json(Method::POST, "/spreadsheets", &[], Some(&body))
                    .await?;
                if let Some(id) = created.get("spreadsheetId").and_then(Value::as_str) {
                    let url = format!("{SPREADSHEET_PAGE}{id}");
                    created["url"] = Value::String(url);
                }
                Ok(created)
            }
            "get-spreadsheet-info" => {
                let mut query =
                    optional_query(arguments, &[("includeGridData", "include_grid_data")]);
                query.extend(
                    strings(arguments.get("ranges"))
                        .into_iter()
                        .map(|r| ("ranges", r)),
                );
                let mut info = api
                    .json(
                        Method::GET,
                        &format!("/spreadsheets/{}", id()?),
                        &query,
                        None,
                    )
                    .await?;
                // Sheets always sends filter views; leave them out only when asked to.
                if arguments.get("include_filter_views") == Some(&Value::Bool(false)) {
                    if let Some(sheets) = info.get_mut("sheets").and_then(Value::as_array_mut) {
                        for sheet in sheets.iter_mut().filter_map(Value::as_object_mut) {
                            sheet.remove("filterViews");
                        }
                    }
                }
                Ok(info)
            }
            "get-sheet-names" => {
                let query = [("fields", "sheets.properties.title".to_owned())];
                let info = api
                    .json(
                        Method::GET,
                        &format!("/spreadsheets/{}", id()?),
                        &query,
                        None,
                    )
                    .await?;
                let names: Vec<Value> = info
                    .get("sheets")
                    .and_then(Value::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|sheet| sheet.pointer("/properties/title").cloned())
                    .collect();
                Ok(Value::Array(names))
            }
            "batch-get" => {
                let mut query: Vec<(&str, String)> = strings(arguments.get("ranges"))
                    .into_iter()
                    .map(|r| ("ranges", r))
                    .collect();
                query.extend(optional_query(
                    arguments,
                    &[
                        ("majorDimension", "major_dimension"),
                        ("valueRenderOption", "value_render_option"),
                        ("dateTimeRenderOption", "date_time_render_option"),
                    ],
                ));
                let path = format!("/spreadsheets/{}/values:batchGet", id()?);
                api.json(Method::GET, &path, &query, None).await
            }
            "batch-update" => {
                let mut body = Map::new();
                body.insert("valueInputOption".into(), json!("RAW"));
                copy_into(
                    &mut body,
                    arguments,
                    &[
                        ("valueInputOption", "value_input_option"),
                        ("data", "data"),
                        ("includeValuesInResponse", "include_values_in_response"),
                        ("responseValueRenderOption", "response_value_render_option"),
                        (
                            "responseDateTimeRenderOption",
                            "response_date_time_render_option",
                        ),
                    ],
                );
                let path = format!("/spreadsheets/{}/values:batchUpdate", id()?);
                api.json(Method::POST, &path, &[], Some(&Value::Object(body)))
                    .await
            }
            "append-values" => {
                let mut query = vec![(
                    "valueInputOption",
                    text(arguments, "value_input_option")
                        .unwrap_or("RAW")
                        .to_owned(),
                )];
                query.extend(optional_query(
                    arguments,
                    &[
                        ("insertDataOption", "insert_data_option"),
                        ("includeValuesInResponse", "include_values_in_response"),
                        ("responseValueRenderOption", "response_value_render_option"),
                        (
                            "responseDateTimeRenderOption",
                            "response_date_time_render_option",
                        ),
                    ],
                ));
                let body =
                    json!({ "values": arguments.get("values").cloned().unwrap_or(json!([])) });
                let path = format!("/spreadsheets/{}/values/{}:append", id()?, range()?);
                api.json(Method::POST, &path, &query, Some(&body)).await
            }
            "lookup-row" => {
                let path = format!("/spreadsheets/{}/values/{}", id()?, range()?);
                let answer = api.json(Method::GET, &path, &[], None).await?;
                let wanted = required_text(arguments, "value")?;
                let column = arguments
                    .get("column_index")
                    .and_then(Value::as_u64)
                    .map(|c| usize::try_from(c).unwrap_or(usize::MAX));
                let exact = arguments
                    .get("exact_match")
                    .and_then(Value::as_bool)
                    .unwrap_or(true);
                let values = answer
                    .get("values")
                    .and_then(Value::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                let top = first_row(answer.get("range").and_then(Value::as_str).unwrap_or(""));
                let matches: Vec<Value> = matching_rows(values, wanted, column, exact)
                    .into_iter()
                    .map(|index| {
                        json!({
                            "index": index,
                            "row_number": top + index as u64,
                            "row": values[index],
                        })
                    })
                    .collect();
                Ok(json!({
                    "found": !matches.is_empty(),
                    "row": matches.first().map_or(Value::Null, |m| m["row"].clone()),
                    "row_number": matches.first().map_or(Value::Null, |m| m["row_number"].clone()),
                    "matches": matches,
                    "all_values": answer,
                }))
            }
            "clear-values" => {
                let path = format!("/spreadsheets/{}/values/{}:clear", id()?, range()?);
                api.json(Method::POST, &path, &[], Some(&json!({}))).await
            }
            "copy-sheet" => copy_sheet(&api, arguments).await,
            other => Err(format!("Unknown tool: {other}")),
        }
    }
}

/// copyTo takes only the destination; a new name or position is a second request on the
/// destination spreadsheet, naming the copy by the sheet id the first one answered.
/// The spreadsheets in the account's Drive as guMCP's resources.
async fn spreadsheet_resources(api: &Api<'_>) -> Result<Vec<Resource>, String> {
    let mut resources = Vec::new();
    let mut page_token: Option<String> = None;
    for _ in 0..MAX_FILE_PAGES {
        let mut query = vec![
            (
                "q",
                "mimeType='application/vnd.google-apps.spreadsheet'".to_owned(),
            ),
            ("spaces", "drive".to_owned()),
            (
                "fields",
                "nextPageToken, files(id, name, description)".to_owned(),
            ),
            ("pageSize", FILES_PER_PAGE.to_owned()),
        ];
        if let Some(token) = page_token.take() {
            query.push(("pageToken", token));
        }
        let page = api.json(Method::GET, "/files", &query, None).await?;
        for file in page
            .get("files")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let Some(id) = file.get("id").and_then(Value::as_str) else {
                continue;
            };
            let name = file
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("Untitled Spreadsheet");
            let description = file
                .get("description")
                .and_then(Value::as_str)
                .map_or_else(|| format!("Google Sheets document: {name}"), str::to_owned);
            resources.push(
                Resource::new(format!("{SPREADSHEET_URI}{id}"), name)
                    .with_description(description)
                    .with_mime_type("application/vnd.google-apps.spreadsheet"),
            );
        }
        page_token = page
            .get("nextPageToken")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if page_token.is_none() {
            break;
        }
    }
    Ok(resources)
}

/// A spreadsheet as guMCP's resource shows it: title, URL, sheet titles, and a sample of the
/// first sheets' values (formatted as displayed).
async fn spreadsheet_sample(api: &Api<'_>, id: &str) -> Result<Value, String> {
    let path = format!("/spreadsheets/{id}");
    let query = [
        ("includeGridData", "false".to_owned()),
        (
            "fields",
            "properties.title,sheets.properties.title".to_owned(),
        ),
    ];
    let spreadsheet = api.json(Method::GET, &path, &query, None).await?;
    let sheets: Vec<String> = spreadsheet
        .get("sheets")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|sheet| sheet.pointer("/properties/title").and_then(Value::as_str))
        .map(str::to_owned)
        .collect();
    let mut samples = Vec::new();
    for sheet in sheets.iter().take(SAMPLED_SHEETS) {
        let range = range_segment(&format!("{}!{SAMPLED_CELLS}", quoted_sheet(sheet)))?;
        let values = api
            .json(
                Method::GET,
                &format!("{path}/values/{range}"),
                &[("valueRenderOption", "FORMATTED_VALUE".to_owned())],
                None,
            )
            .await?;
        let rows = values.get("values").cloned().unwrap_or_else(|| json!([]));
        samples.push(json!({ "sheet_name": sheet, "sample_data": rows }));
    }
    let title = spreadsheet
        .pointer("/properties/title")
        .and_then(Value::as_str)
        .unwrap_or("Untitled");
    Ok(json!({
        "spreadsheet_id": id,
        "title": title,
        "url": format!("{SPREADSHEET_PAGE}{id}"),
        "sheets": sheets,
        "sample_data": samples,
    }))
}

async fn copy_sheet(api: &Api<'_>, arguments: &JsonObject) -> Result<Value, String> {
    let source = spreadsheet_id(required_text(arguments, "source_spreadsheet_id")?)?;
    let destination = spreadsheet_id(required_text(arguments, "destination_spreadsheet_id")?)?;
    let sheet = arguments
        .get("source_sheet_id")
        .and_then(Value::as_i64)
        .ok_or("source_sheet_id is required")?;
    let body = json!({ "destinationSpreadsheetId": destination });
    let path = format!("/spreadsheets/{source}/sheets/{sheet}:copyTo");
    let mut copied = api.json(Method::POST, &path, &[], Some(&body)).await?;
    let mut properties = Map::new();
    copy_into(
        &mut properties,
        arguments,
        &[("title", "new_sheet_name"), ("index", "insert_sheet_index")],
    );
    if properties.is_empty() {
        return Ok(copied);
    }
    let Some(new_id) = copied.get("sheetId").and_then(Value::as_i64) else {
        return Err(format!(
                "the sheet was copied, but Sheets did not say the copy's sheetId, so it was not renamed or moved: {copied}"
            ));
    };
    // In a fixed order, whatever order the map keeps its keys in.
    let fields: Vec<&str> = ["title", "index"]
        .into_iter()
        .filter(|field| properties.contains_key(*field))
        .collect();
    let fields = fields.join(",");
    properties.insert("sheetId".into(), json!(new_id));
    let update = json!({
        "requests": [{ "updateSheetProperties": { "properties": properties, "fields": fields } }]
    });
    let path = format!("/spreadsheets/{destination}:batchUpdate");
    if let Err(why) = api.json(Method::POST, &path, &[], Some(&update)).await {
        return Err(format!(
            "the sheet was copied (sheetId {new_id}), but renaming or moving it failed: {why}"
        ));
    }
    if let Some(copy) = copied.as_object_mut() {
        copy.extend(properties);
    }
    Ok(copied)
}

impl McpServer for Sheets {
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
            let drive = self.upstream.api(&self.manifest, DRIVE_BASE_URL, ctx);
            spreadsheet_resources(&drive)
                .await
                .map_err(McpError::internal)
        }
        .boxed()
    }

    fn read_resource<'a>(
        &'a self,
        uri: &'a str,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<ReadResourceResult, CallError>> {
        async move {
            let id = spreadsheet_of(uri).ok_or_else(|| CallError::ResourceNotFound(uri.into()))?;
            let sample = spreadsheet_sample(&self.api(ctx), id)
                .await
                .map_err(McpError::internal)?;
            let text = serde_json::to_string_pretty(&sample).unwrap_or_default();
            Ok(text_resource(uri, text, "application/json"))
        }
        .boxed()
    }

    fn call_tool<'a>(
        &'a self,
        name: &'a str,
        arguments: JsonObject,
        ctx: &'a RequestContext,
    ) -> ServerFuture<'a, Result<CallToolResult, CallError>> {
        async move { Ok(answer(self.run(name, &arguments, ctx).await)) }.boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_come_from_urls_and_bare_ids() {
        let id = "1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms";
        for given in [
            format!("https://docs.google.com/spreadsheets/d/{id}/edit#gid=0"),
            format!("https://docs.google.com/spreadsheets/d/{id}"),
            format!("https://docs.google.com/spreadsheets/u/1/d/{id}/edit?usp=sharing"),
            format!(" {id} "),
        ] {
            assert_eq!(spreadsheet_id(&given).unwrap(), id, "{given}");
        }
        for bad in [
            "",
            "https://example.com/sheet",
            "a/b",
            "../x",
            "https://docs.google.com/spreadsheets/d/",
        ] {
            assert!(spreadsheet_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn spreadsheet_uris_hold_a_bare_id_and_sheet_titles_are_quoted() {
        assert_eq!(
            spreadsheet_of("gsheets://spreadsheet/1Bx-i_9"),
            Some("1Bx-i_9")
        );
        for bad in [
            "gsheets://spreadsheet/",
            "gsheets://spreadsheet/a/b",
            "gsheets://spreadsheet/x/d/abc",
            "gsheets://sheet/abc",
        ] {
            assert_eq!(spreadsheet_of(bad), None, "{bad}");
        }
        assert_eq!(quoted_sheet("It's Q1"), "'It''s Q1'");
    }

    #[test]
    fn a_range_is_one_path_segment() {
        assert_eq!(
            range_segment("Sheet 1!A1:B2").unwrap(),
            "Sheet%201%21A1%3AB2"
        );
        assert_eq!(range_segment("'a/b'!A:A").unwrap(), "%27a%2Fb%27%21A%3AA");
        assert!(range_segment("..").is_err());
        assert!(range_segment(" ").is_err());
    }

    #[test]
    fn rows_are_found_by_exact_or_partial_value_in_one_column_or_any() {
        let values = vec![
            json!(["Name", "Email"]),
            json!(["Ada", "ada@example.com"]),
            json!(["Bob"]),
            json!(["Adam", "adam@example.com", 7]),
        ];
        assert_eq!(matching_rows(&values, "Ada", Some(0), true), [1]);
        assert_eq!(matching_rows(&values, "Ada", Some(0), false), [1, 3]);
        assert_eq!(
            matching_rows(&values, "Ada", Some(1), false),
            Vec::<usize>::new()
        );
        assert_eq!(matching_rows(&values, "example.com", None, false), [1, 3]);
        assert_eq!(matching_rows(&values, "7", None, true), [3]);
        assert_eq!(
            matching_rows(&values, "Email", Some(5), true),
            Vec::<usize>::new()
        );
    }

    #[test]
    fn the_first_row_of_a_range_is_read_from_its_start_cell() {
        assert_eq!(first_row("Sheet1!B5:D9"), 5);
        assert_eq!(first_row("'Q1!data'!A12:C"), 12);
        assert_eq!(first_row("A:C"), 1);
    }
}
