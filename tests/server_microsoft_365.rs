//! The resources of excel and teams against a mock of Microsoft Graph, as guMCP offers them
//! (guMCP offers none for sharepoint). Their tools are covered by `tests/fixtures.rs`, their
//! provider (the Microsoft identity platform) by `tests/provider_microsoft.rs`.

mod common;

use common::{modern_meta, shipped_server};
use serde_json::json;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// excel's resources: the workbooks Graph's search finds as `excel://file/{id}`, read as the
/// workbook's details and worksheets.
#[tokio::test]
async fn excel_workbooks_are_resources_read_with_their_worksheets() {
    let upstream = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/me/drive/root/search(q='.xlsx')"))
        .and(header("authorization", "Bearer EwB.excel"))
        .and(query_param("$top", "50"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "value": [
            { "id": "f1", "name": "Budget.xlsx" }, { "id": "d1", "name": "notes.docx" }
        ] })))
        .expect(1)
        .mount(&upstream)
        .await;
    Mock::given(method("GET"))
        .and(path("/me/drive/items/f1"))
        .and(header("authorization", "Bearer EwB.excel"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "f1", "name": "Budget.xlsx", "webUrl": "https://onedrive.example/f1", "size": 9000
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    Mock::given(method("GET"))
        .and(path("/me/drive/items/f1/workbook/worksheets"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "value": [
            { "id": "{S1}", "name": "Sheet1", "position": 0, "visibility": "Visible" }
        ] })))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let tokens = json!({ "access_token": "EwB.excel", "refresh_token": "M.r1", "expires_at": 4102444800_i64 });
    let mut client = shipped_server(root.path(), "excel", tokens, &upstream.uri());
    let listed = client
        .request(1, "resources/list", json!({ "_meta": modern_meta() }))
        .await;
    let resources = listed["result"]["resources"].as_array().unwrap();
    assert_eq!(resources.len(), 1, "{listed}");
    assert_eq!(resources[0]["uri"], "excel://file/f1");
    assert_eq!(resources[0]["name"], "Budget.xlsx");
    let read = client
        .request(
            2,
            "resources/read",
            json!({ "uri": "excel://file/f1", "_meta": modern_meta() }),
        )
        .await;
    let details: serde_json::Value =
        serde_json::from_str(read["result"]["contents"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(details["webUrl"], "https://onedrive.example/f1", "{read}");
    assert_eq!(details["worksheets"][0]["name"], "Sheet1");
    upstream.verify().await;
}

/// teams' resources: each channel of the user's teams as `teams://channel/{team}_{channel}`,
/// read as its messages, oldest first.
#[tokio::test]
async fn teams_channels_are_resources_read_as_their_messages() {
    let upstream = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/me/joinedTeams"))
        .and(header("authorization", "Bearer EwB.teams"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "value": [
            { "id": "t1", "displayName": "Sales" }
        ] })))
        .expect(1)
        .mount(&upstream)
        .await;
    Mock::given(method("GET"))
        .and(path("/teams/t1/channels"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "value": [
            { "id": "19:gen@thread.tacv2", "displayName": "General", "membershipType": "standard" },
            { "id": "19:deals@thread.tacv2", "displayName": "Deals", "membershipType": "private" }
        ] })))
        .expect(1)
        .mount(&upstream)
        .await;
    Mock::given(method("GET"))
        .and(path("/teams/t1/channels/19%3Adeals%40thread.tacv2/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "value": [
            { "createdDateTime": "2025-05-02T09:00:00Z", "from": { "user": { "displayName": "Bo" } }, "body": { "content": "signed" } },
            { "createdDateTime": "2025-05-01T09:00:00Z", "from": { "user": { "displayName": "Ann" } }, "body": { "content": "sent" } }
        ] })))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let tokens = json!({ "access_token": "EwB.teams", "refresh_token": "M.r1", "expires_at": 4102444800_i64 });
    let mut client = shipped_server(root.path(), "teams", tokens, &upstream.uri());
    let listed = client
        .request(1, "resources/list", json!({ "_meta": modern_meta() }))
        .await;
    let resources = listed["result"]["resources"].as_array().unwrap();
    assert_eq!(resources.len(), 2, "{listed}");
    assert_eq!(
        resources[1]["uri"],
        "teams://channel/t1_19:deals@thread.tacv2"
    );
    assert_eq!(resources[1]["name"], "#Sales/Deals");
    assert_eq!(
        resources[1]["description"],
        "Private Teams channel: #Sales/Deals"
    );
    let read = client
        .request(
            2,
            "resources/read",
            json!({ "uri": "teams://channel/t1_19:deals@thread.tacv2", "_meta": modern_meta() }),
        )
        .await;
    assert_eq!(
        read["result"]["contents"][0]["text"],
        "[2025-05-01T09:00:00Z] Ann: sent\n[2025-05-02T09:00:00Z] Bo: signed",
        "{read}"
    );
    upstream.verify().await;
}
