//! The Google servers of the second wave (gdrive, gdocs, gmeet, youtube) and their credentials,
//! as the shipped Google servers handle them: an expired token is refreshed at Google's token
//! endpoint (and saved) before the call, a token Google rejects is refreshed once and the call
//! retried, a refresh Google refuses says to reconnect, and no account says how to connect.
//! Their tools' requests are covered by `tests/fixtures.rs`.

mod common;

use common::{
    call_tool, google_app, mount_google_refresh, saved_credentials, shipped_server, text_of,
    StdioClient,
};
use serde_json::{json, Value};
use wiremock::matchers::{body_string_contains, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Per server: a read-only tool, its arguments, the request path it makes and a scope.
const READS: [(&str, &str, &str, &str); 4] = [
    (
        "gdrive",
        "retrieve_file_or_folder_by_id",
        "/drive/v3/files/f1",
        "https://www.googleapis.com/auth/drive.readonly",
    ),
    (
        "gdocs",
        "read_doc",
        "/documents/f1",
        "https://www.googleapis.com/auth/documents",
    ),
    (
        "gmeet",
        "get_meeting_details",
        "/calendars/primary/events/f1",
        "https://www.googleapis.com/auth/calendar",
    ),
    (
        "youtube",
        "get_video_statistics",
        "/videos",
        "https://www.googleapis.com/auth/youtube.readonly",
    ),
];

fn arguments(server: &str) -> Value {
    match server {
        "gdrive" => json!({ "id": "f1" }),
        "gdocs" => json!({ "doc_id": "f1" }),
        "gmeet" => json!({ "meeting_id": "f1" }),
        _ => json!({ "video_id": "f1" }),
    }
}

fn start(
    root: &std::path::Path,
    server: &str,
    tokens: Value,
    upstream: &MockServer,
) -> StdioClient {
    google_app(root, server, upstream);
    shipped_server(root, server, tokens, &upstream.uri())
}

#[tokio::test]
async fn an_expired_token_is_refreshed_and_saved_before_the_call() {
    for (server, tool, route, scope) in READS {
        let upstream = MockServer::start().await;
        mount_google_refresh(&upstream, scope).await;
        Mock::given(method("GET"))
            .and(path(route))
            .and(header("authorization", "Bearer ya29.fresh"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "id": "f1" })))
            .expect(1)
            .mount(&upstream)
            .await;
        let root = tempfile::tempdir().unwrap();
        let expired = json!({ "access_token": "ya29.old", "refresh_token": "r1", "expires_at": 1 });
        let mut client = start(root.path(), server, expired, &upstream);
        let result = call_tool(&mut client, 1, tool, arguments(server)).await;
        assert_eq!(result["isError"], false, "{server}: {result}");
        let saved = saved_credentials(root.path(), server);
        assert_eq!(saved["access_token"], "ya29.fresh", "{server}");
        assert_eq!(saved["refresh_token"], "r1", "{server}");
        upstream.verify().await;
    }
}

#[tokio::test]
async fn a_rejected_token_is_refreshed_once_and_a_refused_refresh_says_to_reconnect() {
    for (server, tool, route, scope) in READS {
        let upstream = MockServer::start().await;
        // Google rejects the stored token; the refresh gives a fresh one, which works.
        Mock::given(method("GET"))
            .and(path(route))
            .and(header("authorization", "Bearer ya29.revoked"))
            .respond_with(ResponseTemplate::new(401).set_body_json(json!({
                "error": { "code": 401, "message": "Request had invalid authentication credentials.", "status": "UNAUTHENTICATED" }
            })))
            .expect(1)
            .mount(&upstream)
            .await;
        mount_google_refresh(&upstream, scope).await;
        Mock::given(method("GET"))
            .and(path(route))
            .and(header("authorization", "Bearer ya29.fresh"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "id": "f1" })))
            .expect(1)
            .mount(&upstream)
            .await;
        let root = tempfile::tempdir().unwrap();
        let stored = json!({ "access_token": "ya29.revoked", "refresh_token": "r1", "expires_at": 4102444800_i64 });
        let mut client = start(root.path(), server, stored, &upstream);
        let result = call_tool(&mut client, 1, tool, arguments(server)).await;
        assert_eq!(result["isError"], false, "{server}: {result}");
        upstream.verify().await;
        drop(client);

        // The refresh token was revoked too: the answer says how to reconnect.
        let upstream = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(route))
            .respond_with(ResponseTemplate::new(401))
            .mount(&upstream)
            .await;
        Mock::given(method("POST"))
            .and(path("/token"))
            .and(body_string_contains("grant_type=refresh_token"))
            .respond_with(ResponseTemplate::new(400).set_body_json(json!({
                "error": "invalid_grant", "error_description": "Token has been expired or revoked."
            })))
            .mount(&upstream)
            .await;
        let root = tempfile::tempdir().unwrap();
        let stored = json!({ "access_token": "ya29.revoked", "refresh_token": "r1", "expires_at": 4102444800_i64 });
        let mut client = start(root.path(), server, stored, &upstream);
        let result = call_tool(&mut client, 2, tool, arguments(server)).await;
        assert_eq!(result["isError"], true, "{server}: {result}");
        let text = text_of(&result);
        assert!(
            text.contains(&format!(
                "reconnect with `gumcp-actors auth --server {server} --user-id alice`"
            )),
            "{server}: {text}"
        );
        assert!(!text.contains("ya29") && !text.contains("r1\""), "{text}");
    }
}

#[tokio::test]
async fn no_connected_account_says_how_to_connect() {
    for (server, tool, _, _) in READS {
        let upstream = MockServer::start().await;
        let root = tempfile::tempdir().unwrap();
        let mut client = shipped_server(root.path(), server, json!({}), &upstream.uri());
        std::fs::remove_file(
            root.path()
                .join("local_auth/credentials")
                .join(server)
                .join("alice_credentials.json"),
        )
        .unwrap();
        let result = call_tool(&mut client, 1, tool, arguments(server)).await;
        assert_eq!(result["isError"], true, "{server}: {result}");
        assert!(
            text_of(&result).contains(&format!(
                "connect one with `gumcp-actors auth --server {server} --user-id alice`"
            )),
            "{server}: {result}"
        );
        assert!(upstream
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty());
    }
}

#[tokio::test]
async fn drive_files_are_resources_exported_or_downloaded() {
    let upstream = MockServer::start().await;
    let drive = |verb: &str, route: &str| {
        Mock::given(method(verb))
            .and(path(route.to_owned()))
            .and(header("authorization", "Bearer ya29.drive"))
    };
    drive("GET", "/drive/v3/files")
        .and(query_param("pageSize", "100"))
        .and(query_param(
            "fields",
            "nextPageToken, files(id, name, mimeType)",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "files": [
            { "id": "d1", "name": "Plan", "mimeType": "application/vnd.google-apps.document" },
            { "id": "p1", "name": "scan.pdf", "mimeType": "application/pdf" }
        ] })))
        .expect(1)
        .mount(&upstream)
        .await;
    for (id, mime) in [
        ("d1", "application/vnd.google-apps.document"),
        ("p1", "application/pdf"),
    ] {
        drive("GET", &format!("/drive/v3/files/{id}"))
            .and(query_param("fields", "mimeType"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "mimeType": mime })))
            .expect(1)
            .mount(&upstream)
            .await;
    }
    drive("GET", "/drive/v3/files/d1/export")
        .and(query_param("mimeType", "text/markdown"))
        .respond_with(ResponseTemplate::new(200).set_body_raw("# Plan\n", "text/markdown"))
        .expect(1)
        .mount(&upstream)
        .await;
    drive("GET", "/drive/v3/files/p1")
        .and(query_param("alt", "media"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(vec![0x25, 0x50, 0x44, 0x46], "application/pdf"),
        )
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let tokens = json!({ "access_token": "ya29.drive", "refresh_token": "r1", "expires_at": 4102444800_i64 });
    let mut client = shipped_server(root.path(), "gdrive", tokens, &upstream.uri());
    let listed = client
        .request(
            1,
            "resources/list",
            json!({ "_meta": common::modern_meta() }),
        )
        .await;
    let resources = &listed["result"]["resources"];
    assert_eq!(resources[0]["uri"], "gdrive://document/d1", "{listed}");
    assert_eq!(resources[1]["uri"], "gdrive://file/p1", "{listed}");
    let doc = client
        .request(
            2,
            "resources/read",
            json!({ "uri": "gdrive://document/d1", "_meta": common::modern_meta() }),
        )
        .await;
    assert_eq!(doc["result"]["contents"][0]["text"], "# Plan\n", "{doc}");
    assert_eq!(doc["result"]["contents"][0]["mimeType"], "text/markdown");
    let pdf = client
        .request(
            3,
            "resources/read",
            json!({ "uri": "gdrive://file/p1", "_meta": common::modern_meta() }),
        )
        .await;
    assert_eq!(pdf["result"]["contents"][0]["blob"], "JVBERg==", "{pdf}");
    assert_eq!(pdf["result"]["contents"][0]["mimeType"], "application/pdf");
    upstream.verify().await;
}

#[tokio::test]
async fn google_docs_are_resources_read_as_plain_text() {
    let upstream = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/files"))
        .and(header("authorization", "Bearer ya29.docs"))
        .and(query_param(
            "q",
            "mimeType='application/vnd.google-apps.document'",
        ))
        .and(query_param("pageSize", "20"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "files": [
            { "id": "d1", "name": "Plan", "mimeType": "application/vnd.google-apps.document" }
        ] })))
        .expect(1)
        .mount(&upstream)
        .await;
    Mock::given(method("GET"))
        .and(path("/documents/d1"))
        .and(header("authorization", "Bearer ya29.docs"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "body": { "content": [
            { "endIndex": 1, "sectionBreak": {} },
            { "endIndex": 7, "paragraph": { "elements": [{ "textRun": { "content": "Title\n" } }] } },
            { "endIndex": 30, "table": { "tableRows": [{ "tableCells": [
                { "content": [{ "paragraph": { "elements": [{ "textRun": { "content": "cell\n" } }] } }] }
            ] }] } }
        ] } })))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let tokens =
        json!({ "access_token": "ya29.docs", "refresh_token": "r1", "expires_at": 4102444800_i64 });
    let mut client = shipped_server(root.path(), "gdocs", tokens, &upstream.uri());
    let listed = client
        .request(
            1,
            "resources/list",
            json!({ "_meta": common::modern_meta() }),
        )
        .await;
    assert_eq!(
        listed["result"]["resources"][0]["uri"], "gdocs://document/d1",
        "{listed}"
    );
    assert_eq!(listed["result"]["resources"][0]["name"], "Plan");
    let read = client
        .request(
            2,
            "resources/read",
            json!({ "uri": "gdocs://document/d1", "_meta": common::modern_meta() }),
        )
        .await;
    assert_eq!(
        read["result"]["contents"][0]["text"], "Title\ncell\n",
        "{read}"
    );
    upstream.verify().await;
}
