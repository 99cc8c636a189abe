//! outlook's (and word's) resources against a mock of Microsoft Graph: mail folders listed as
//! `outlook://folder/{id}` with their counts, a folder read as its newest messages in guMCP's
//! words. Its tools are covered by `tests/fixtures.rs`, its provider by
//! `tests/provider_microsoft.rs`.

mod common;

use common::{modern_meta, shipped_server};
use serde_json::json;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn mail_folders_are_resources_read_as_their_newest_messages() {
    let upstream = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/me/mailFolders"))
        .and(header("authorization", "Bearer EwB.mail"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "value": [
            { "id": "AAMkInbox", "displayName": "Inbox", "totalItemCount": 42 }
        ] })))
        .expect(1)
        .mount(&upstream)
        .await;
    Mock::given(method("GET"))
        .and(path("/me/mailFolders/AAMkInbox/messages"))
        .and(header("authorization", "Bearer EwB.mail"))
        .and(query_param("$top", "25"))
        .and(query_param("$orderby", "receivedDateTime desc"))
        .and(query_param("$select", "id,subject,from,receivedDateTime,isRead"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "value": [
            { "id": "m1", "subject": "Lunch?", "isRead": true, "receivedDateTime": "2025-05-14T09:00:00Z",
              "from": { "emailAddress": { "name": "Ada", "address": "ada@example.com" } } },
            { "id": "m2" }
        ] })))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let tokens = json!({ "access_token": "EwB.mail", "refresh_token": "M.r1", "expires_at": 4102444800_i64 });
    let mut client = shipped_server(root.path(), "outlook", tokens, &upstream.uri());
    let listed = client
        .request(1, "resources/list", json!({ "_meta": modern_meta() }))
        .await;
    let folder = &listed["result"]["resources"][0];
    assert_eq!(folder["uri"], "outlook://folder/AAMkInbox", "{listed}");
    assert_eq!(folder["name"], "Inbox");
    assert_eq!(folder["description"], "Inbox folder with 42 emails");
    let read = client
        .request(
            2,
            "resources/read",
            json!({ "uri": "outlook://folder/AAMkInbox", "_meta": modern_meta() }),
        )
        .await;
    assert_eq!(
        read["result"]["contents"][0]["text"],
        "ID: outlook://email/m1\nSubject: Lunch?\nFrom: Ada <ada@example.com>\nDate: 2025-05-14T09:00:00Z\nStatus: Read\n\
         \n---\nID: outlook://email/m2\nSubject: No Subject\nFrom:  <Unknown>\nDate: \nStatus: Unread\n",
        "{read}"
    );
    let missing = client
        .request(
            3,
            "resources/read",
            json!({ "uri": "outlook://folder/a/b", "_meta": modern_meta() }),
        )
        .await;
    assert!(missing.get("error").is_some(), "{missing}");
    upstream.verify().await;
}

/// word's resources (the same Graph, the same provider): documents listed as
/// `word://file/{id}`, read as their details.
#[tokio::test]
async fn word_documents_are_resources_read_as_their_details() {
    let upstream = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/me/drive/root/search(q=%27.docx%27)"))
        .and(header("authorization", "Bearer EwB.word"))
        .and(query_param("$top", "50"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "value": [
            { "id": "w1", "name": "Plan.docx" }, { "id": "x1", "name": "data.xlsx" }
        ] })))
        .expect(1)
        .mount(&upstream)
        .await;
    Mock::given(method("GET"))
        .and(path("/me/drive/items/w1"))
        .and(header("authorization", "Bearer EwB.word"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "w1", "name": "Plan.docx", "size": 1178,
            "@microsoft.graph.downloadUrl": "https://public.example/w1"
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let tokens = json!({ "access_token": "EwB.word", "refresh_token": "M.r1", "expires_at": 4102444800_i64 });
    let mut client = shipped_server(root.path(), "word", tokens, &upstream.uri());
    let listed = client
        .request(1, "resources/list", json!({ "_meta": modern_meta() }))
        .await;
    let resources = listed["result"]["resources"].as_array().unwrap();
    assert_eq!(resources.len(), 1, "{listed}");
    assert_eq!(resources[0]["uri"], "word://file/w1");
    let read = client
        .request(
            2,
            "resources/read",
            json!({ "uri": "word://file/w1", "_meta": modern_meta() }),
        )
        .await;
    let details: serde_json::Value =
        serde_json::from_str(read["result"]["contents"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(
        details["downloadUrl"], "https://public.example/w1",
        "{read}"
    );
    assert_eq!(details["size"], 1178);
    upstream.verify().await;
}
