//! gsheets against a mock of the Sheets API: every tool sends the method, path (ranges
//! percent-encoded as one segment), query, bearer token and body the API expects, whether the
//! spreadsheet is named by URL or bare id; expired tokens are refreshed at Google's token
//! endpoint first.

mod common;

use common::{
    call_tool as call_raw, call_tool_ok as call, google_app, modern_meta, mount_google_refresh,
    saved_credentials, shipped_server, text_of as text, StdioClient,
};
use serde_json::{json, Value};
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const ID: &str = "1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms";

fn url() -> String {
    format!("https://docs.google.com/spreadsheets/d/{ID}/edit#gid=0")
}

fn gsheets(root: &std::path::Path, upstream: &MockServer) -> StdioClient {
    let tokens = json!({ "access_token": "ya29.sheets", "refresh_token": "r1", "expires_at": 4102444800_i64 });
    shipped_server(root, "gsheets", tokens, &upstream.uri())
}

/// A request as Sheets checks it: the verb, the (encoded) path and the bearer token.
fn sheets_request(verb: &str, route: &str) -> wiremock::MockBuilder {
    Mock::given(method(verb))
        .and(path(route))
        .and(header("authorization", "Bearer ya29.sheets"))
}

fn answer(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

/// The values of every `name` query parameter, in order.
fn query_values(request: &Request, name: &str) -> Vec<String> {
    request
        .url
        .query_pairs()
        .filter(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
        .collect()
}

#[tokio::test]
async fn every_tool_calls_sheets_as_its_api_expects() {
    let upstream = MockServer::start().await;
    sheets_request("POST", "/spreadsheets")
        .and(header("content-type", "application/json"))
        .and(body_json(json!({
            "properties": { "title": "Budget", "locale": "en_US", "timeZone": "Europe/Paris", "autoRecalc": "HOUR" },
            "sheets": [{ "properties": { "title": "Q1" } }, { "properties": { "title": "Q2", "index": 1 } }]
        })))
        .respond_with(answer(json!({ "spreadsheetId": "new1", "properties": { "title": "Budget" } })))
        .expect(1)
        .mount(&upstream)
        .await;
    sheets_request("GET", &format!("/spreadsheets/{ID}"))
        .and(query_param("includeGridData", "false"))
        .and(|request: &Request| {
            query_values(request, "ranges") == ["Sheet 1!A1:B2", "Data!C:C"]
                && query_values(request, "fields").is_empty()
        })
        .respond_with(answer(json!({
            "spreadsheetId": ID,
            "sheets": [{ "properties": { "title": "Sheet 1" }, "filterViews": [{ "filterViewId": 1 }] }]
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    sheets_request("GET", &format!("/spreadsheets/{ID}"))
        .and(query_param("fields", "sheets.properties.title"))
        .respond_with(answer(json!({
            "sheets": [{ "properties": { "title": "Sheet 1" } }, { "properties": { "title": "Data" } }]
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    sheets_request("GET", &format!("/spreadsheets/{ID}/values:batchGet"))
        .and(query_param("majorDimension", "COLUMNS"))
        .and(query_param("valueRenderOption", "UNFORMATTED_VALUE"))
        .and(|request: &Request| query_values(request, "ranges") == ["Sheet 1!A1:B2", "Data!C:C"])
        .respond_with(answer(json!({
            "spreadsheetId": ID,
            "valueRanges": [{ "range": "'Sheet 1'!A1:B2", "values": [["a", "b"]] }, { "range": "Data!C1:C3", "values": [[1, 2, 3]] }]
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    let data = json!([{ "range": "Sheet 1!A1:B1", "values": [["x", "=1+1"]] }]);
    sheets_request("POST", &format!("/spreadsheets/{ID}/values:batchUpdate"))
        .and(body_json(json!({
            "valueInputOption": "USER_ENTERED",
            "data": data,
            "includeValuesInResponse": true
        })))
        .respond_with(answer(
            json!({ "spreadsheetId": ID, "totalUpdatedCells": 2 }),
        ))
        .expect(1)
        .mount(&upstream)
        .await;
    sheets_request(
        "POST",
        &format!("/spreadsheets/{ID}/values/Sheet%201%21A1:append"),
    )
    .and(query_param("valueInputOption", "RAW"))
    .and(query_param("insertDataOption", "INSERT_ROWS"))
    .and(body_json(
        json!({ "values": [["Carol", "carol@example.com"]] }),
    ))
    .respond_with(answer(json!({
        "spreadsheetId": ID,
        "updates": { "updatedRange": "'Sheet 1'!A4:B4", "updatedRows": 1 }
    })))
    .expect(1)
    .mount(&upstream)
    .await;
    sheets_request("GET", &format!("/spreadsheets/{ID}/values/Sheet1%21A2%3AC10"))
        .respond_with(answer(json!({
            "range": "Sheet1!A2:C10",
            "majorDimension": "ROWS",
            "values": [["Ada", "ada@example.com"], ["Bob", "bob@example.org"], ["Adam", "adam@example.com"]]
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    sheets_request(
        "POST",
        &format!("/spreadsheets/{ID}/values/Sheet1%21A2%3AC10:clear"),
    )
    .and(body_json(json!({})))
    .respond_with(answer(
        json!({ "spreadsheetId": ID, "clearedRange": "Sheet1!A2:C10" }),
    ))
    .expect(1)
    .mount(&upstream)
    .await;
    sheets_request("POST", &format!("/spreadsheets/{ID}/sheets/0:copyTo"))
        .and(body_json(json!({ "destinationSpreadsheetId": "dest-2" })))
        .respond_with(answer(
            json!({ "sheetId": 99, "title": "Copy of Sheet1", "index": 3 }),
        ))
        .expect(2)
        .mount(&upstream)
        .await;
    sheets_request("POST", "/spreadsheets/dest-2:batchUpdate")
        .and(body_json(json!({
            "requests": [{ "updateSheetProperties": {
                "properties": { "sheetId": 99, "title": "Archive", "index": 0 },
                "fields": "title,index"
            } }]
        })))
        .respond_with(answer(
            json!({ "spreadsheetId": "dest-2", "replies": [{}] }),
        ))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let mut client = gsheets(root.path(), &upstream);

    let created = call(
        &mut client,
        1,
        "create-sheet",
        json!({
            "title": "Budget", "locale": "en_US", "timeZone": "Europe/Paris",
            "properties": { "autoRecalc": "HOUR", "title": "ignored" },
            "sheets": [{ "title": "Q1" }, { "properties": { "title": "Q2", "index": 1 } }]
        }),
    )
    .await;
    assert_eq!(
        created["structuredContent"]["url"], "https://docs.google.com/spreadsheets/d/new1",
        "{created}"
    );
    let info = call(
        &mut client,
        2,
        "get-spreadsheet-info",
        json!({
            "spreadsheet_url": url(), "include_grid_data": false,
            "ranges": ["Sheet 1!A1:B2", "Data!C:C"], "include_filter_views": false
        }),
    )
    .await;
    assert_eq!(
        info["structuredContent"]["sheets"][0]["properties"]["title"],
        "Sheet 1"
    );
    assert!(
        info["structuredContent"]["sheets"][0]
            .get("filterViews")
            .is_none(),
        "{info}"
    );
    let names = call(
        &mut client,
        3,
        "get-sheet-names",
        json!({ "spreadsheet_url": ID }),
    )
    .await;
    assert_eq!(
        names["structuredContent"]["items"],
        json!(["Sheet 1", "Data"])
    );
    let got = call(
        &mut client,
        4,
        "batch-get",
        json!({
            "spreadsheet_url": url(), "ranges": ["Sheet 1!A1:B2", "Data!C:C"],
            "major_dimension": "COLUMNS", "value_render_option": "UNFORMATTED_VALUE"
        }),
    )
    .await;
    assert_eq!(
        got["structuredContent"]["valueRanges"][1]["values"][0][2],
        3
    );
    let updated = call(
        &mut client,
        5,
        "batch-update",
        json!({
            "spreadsheet_url": url(), "data": data,
            "value_input_option": "USER_ENTERED", "include_values_in_response": true
        }),
    )
    .await;
    assert_eq!(updated["structuredContent"]["totalUpdatedCells"], 2);
    let appended = call(
        &mut client,
        6,
        "append-values",
        json!({
            "spreadsheet_url": ID, "range": "Sheet 1!A1",
            "values": [["Carol", "carol@example.com"]], "insert_data_option": "INSERT_ROWS"
        }),
    )
    .await;
    assert_eq!(appended["structuredContent"]["updates"]["updatedRows"], 1);
    let looked = call(
        &mut client,
        7,
        "lookup-row",
        json!({
            "spreadsheet_url": url(), "range": "Sheet1!A2:C10",
            "value": "example.com", "column_index": 1, "exact_match": false
        }),
    )
    .await;
    let found = &looked["structuredContent"];
    assert_eq!(found["found"], true, "{looked}");
    assert_eq!(found["row"], json!(["Ada", "ada@example.com"]));
    assert_eq!(found["row_number"], 2);
    assert_eq!(found["matches"][1]["row"][0], "Adam");
    assert_eq!(found["matches"][1]["row_number"], 4);
    assert_eq!(found["matches"].as_array().unwrap().len(), 2);
    let cleared = call(
        &mut client,
        8,
        "clear-values",
        json!({ "spreadsheet_url": url(), "range": "Sheet1!A2:C10" }),
    )
    .await;
    assert_eq!(
        cleared["structuredContent"]["clearedRange"],
        "Sheet1!A2:C10"
    );
    let copied = call(
        &mut client,
        9,
        "copy-sheet",
        json!({
            "source_spreadsheet_id": ID, "source_sheet_id": 0, "destination_spreadsheet_id": "dest-2",
            "new_sheet_name": "Archive", "insert_sheet_index": 0
        }),
    )
    .await;
    assert_eq!(copied["structuredContent"]["title"], "Archive", "{copied}");
    assert_eq!(copied["structuredContent"]["index"], 0);
    // Without a new name or position, the copy is left as Sheets made it: one request.
    let plain = call(
        &mut client,
        10,
        "copy-sheet",
        json!({ "source_spreadsheet_id": url(), "source_sheet_id": 0, "destination_spreadsheet_id": "dest-2" }),
    )
    .await;
    assert_eq!(plain["structuredContent"]["title"], "Copy of Sheet1");
    upstream.verify().await;
}

#[tokio::test]
async fn lookup_row_says_when_nothing_matches_exactly() {
    let upstream = MockServer::start().await;
    sheets_request("GET", &format!("/spreadsheets/{ID}/values/Sheet1"))
        .respond_with(answer(json!({
            "range": "Sheet1!A1:Z1000",
            "values": [["Name"], ["Ada Lovelace"]]
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let mut client = gsheets(root.path(), &upstream);
    let looked = call(
        &mut client,
        1,
        "lookup-row",
        json!({ "spreadsheet_url": ID, "range": "Sheet1", "value": "Ada" }),
    )
    .await;
    assert_eq!(looked["structuredContent"]["found"], false, "{looked}");
    assert_eq!(looked["structuredContent"]["row"], Value::Null);
    upstream.verify().await;
}

#[tokio::test]
async fn tools_are_gumcps_and_bad_input_never_reaches_sheets() {
    let upstream = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(answer(json!({})))
        .expect(0)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let mut client = gsheets(root.path(), &upstream);
    let listed = client
        .request(1, "tools/list", json!({ "_meta": modern_meta() }))
        .await;
    let names: Vec<&str> = listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tool| tool["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "create-sheet",
            "get-spreadsheet-info",
            "get-sheet-names",
            "batch-get",
            "batch-update",
            "append-values",
            "lookup-row",
            "clear-values",
            "copy-sheet"
        ]
    );
    let missing = call_raw(
        &mut client,
        2,
        "batch-get",
        json!({ "spreadsheet_url": ID }),
    )
    .await;
    assert_eq!(missing["isError"], true);
    assert!(text(&missing).contains("ranges"), "{missing}");
    let not_a_sheet = call_raw(
        &mut client,
        3,
        "get-sheet-names",
        json!({ "spreadsheet_url": "https://example.com/some/page" }),
    )
    .await;
    assert_eq!(not_a_sheet["isError"], true);
    assert!(
        text(&not_a_sheet).contains("Google Sheets URL"),
        "{not_a_sheet}"
    );
    upstream.verify().await;
}

#[tokio::test]
async fn a_sheets_error_is_a_tool_error_with_googles_message() {
    let upstream = MockServer::start().await;
    sheets_request("GET", "/spreadsheets/missing-id")
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({
            "error": { "code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND" }
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let mut client = gsheets(root.path(), &upstream);
    let result = call_raw(
        &mut client,
        1,
        "get-sheet-names",
        json!({ "spreadsheet_url": "https://docs.google.com/spreadsheets/d/missing-id/edit" }),
    )
    .await;
    assert_eq!(result["isError"], true);
    assert!(text(&result).contains("404"), "{result}");
    assert!(
        text(&result).contains("Requested entity was not found."),
        "{result}"
    );
    upstream.verify().await;
}

#[tokio::test]
async fn an_expired_google_token_is_refreshed_before_the_call() {
    let upstream = MockServer::start().await;
    mount_google_refresh(&upstream, "https://www.googleapis.com/auth/spreadsheets").await;
    Mock::given(method("GET"))
        .and(path(format!("/spreadsheets/{ID}")))
        .and(header("authorization", "Bearer ya29.fresh"))
        .respond_with(answer(
            json!({ "sheets": [{ "properties": { "title": "Sheet1" } }] }),
        ))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    google_app(root.path(), "gsheets", &upstream);
    let expired = json!({ "access_token": "ya29.old", "refresh_token": "r1", "expires_at": 1 });
    let mut client = shipped_server(root.path(), "gsheets", expired, &upstream.uri());
    let names = call(
        &mut client,
        1,
        "get-sheet-names",
        json!({ "spreadsheet_url": url() }),
    )
    .await;
    assert_eq!(names["structuredContent"]["items"], json!(["Sheet1"]));
    let saved = saved_credentials(root.path(), "gsheets");
    assert_eq!(saved["access_token"], "ya29.fresh");
    assert_eq!(saved["refresh_token"], "r1");
    upstream.verify().await;
}

#[tokio::test]
async fn spreadsheets_are_resources_read_as_a_sample_of_their_values() {
    let upstream = MockServer::start().await;
    sheets_request("GET", "/files")
        .and(query_param(
            "q",
            "mimeType='application/vnd.google-apps.spreadsheet'",
        ))
        .and(query_param("spaces", "drive"))
        .and(query_param("pageSize", "100"))
        .and(|request: &Request| query_values(request, "pageToken").is_empty())
        .respond_with(answer(json!({
            "files": [{ "id": ID, "name": "Budget", "description": "Money" }],
            "nextPageToken": "t2"
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    sheets_request("GET", "/files")
        .and(query_param("pageToken", "t2"))
        .respond_with(answer(
            json!({ "files": [{ "id": "other1", "name": "Plans" }] }),
        ))
        .expect(1)
        .mount(&upstream)
        .await;
    sheets_request("GET", &format!("/spreadsheets/{ID}"))
        .and(query_param("includeGridData", "false"))
        .respond_with(answer(json!({
            "properties": { "title": "Budget" },
            "sheets": [
                { "properties": { "title": "Sheet 1" } },
                { "properties": { "title": "It's" } },
                { "properties": { "title": "Empty" } },
                { "properties": { "title": "Fourth" } }
            ]
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    for (range, values) in [
        (
            "%27Sheet%201%27%21A1%3AJ10",
            json!({ "values": [["a", "1"]] }),
        ),
        ("%27It%27%27s%27%21A1%3AJ10", json!({ "values": [["b"]] })),
        ("%27Empty%27%21A1%3AJ10", json!({ "range": "Empty!A1:J10" })),
    ] {
        sheets_request("GET", &format!("/spreadsheets/{ID}/values/{range}"))
            .and(query_param("valueRenderOption", "FORMATTED_VALUE"))
            .respond_with(answer(values))
            .expect(1)
            .mount(&upstream)
            .await;
    }
    sheets_request("GET", "/spreadsheets/other1")
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({
            "error": { "code": 403, "message": "The caller does not have permission" }
        })))
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let mut client = gsheets(root.path(), &upstream);

    let listed = client
        .request(1, "resources/list", json!({ "_meta": modern_meta() }))
        .await;
    assert_eq!(
        listed["result"]["resources"],
        json!([
            { "uri": format!("gsheets://spreadsheet/{ID}"), "name": "Budget", "description": "Money", "mimeType": "application/vnd.google-apps.spreadsheet" },
            { "uri": "gsheets://spreadsheet/other1", "name": "Plans", "description": "Google Sheets document: Plans", "mimeType": "application/vnd.google-apps.spreadsheet" }
        ]),
        "{listed}"
    );

    let uri = format!("gsheets://spreadsheet/{ID}");
    let read = client
        .request(
            2,
            "resources/read",
            json!({ "uri": uri, "_meta": modern_meta() }),
        )
        .await;
    let contents = &read["result"]["contents"][0];
    assert_eq!(contents["mimeType"], "application/json", "{read}");
    let sample: Value = serde_json::from_str(contents["text"].as_str().unwrap()).unwrap();
    assert_eq!(
        sample,
        json!({
            "spreadsheet_id": ID,
            "title": "Budget",
            "url": format!("https://docs.google.com/spreadsheets/d/{ID}"),
            "sheets": ["Sheet 1", "It's", "Empty", "Fourth"],
            "sample_data": [
                { "sheet_name": "Sheet 1", "sample_data": [["a", "1"]] },
                { "sheet_name": "It's", "sample_data": [["b"]] },
                { "sheet_name": "Empty", "sample_data": [] }
            ]
        })
    );

    let refused = client
        .request(
            3,
            "resources/read",
            json!({ "uri": "gsheets://spreadsheet/other1", "_meta": modern_meta() }),
        )
        .await;
    assert_eq!(refused["error"]["code"], -32603, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("permission"),
        "{refused}"
    );
    let unknown = client
        .request(
            4,
            "resources/read",
            json!({ "uri": "gsheets://spreadsheet/a/b", "_meta": modern_meta() }),
        )
        .await;
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");
}
