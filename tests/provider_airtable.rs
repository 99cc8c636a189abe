//! Airtable through the real binary. Its token endpoint: an expired token is refreshed with a
//! confidential app's credentials as HTTP Basic authentication (a public app sends its client
//! id alone in the form), and the rotated refresh token is saved before the new access token
//! reaches Airtable — the old one is dead once used. Its resources: each table of each base,
//! read as the table's records. The code exchange with its PKCE verifier is tested beside the
//! code (`auth::connect`); the tools' requests by `tests/fixtures.rs`.

mod common;

use common::{call_tool, modern_meta, saved_credentials, shipped_server, StdioClient};
use serde_json::{json, Value};
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// airtable for alice with `tokens`, its OAuth app (`secret`, if confidential) on `upstream`.
fn airtable(
    root: &std::path::Path,
    tokens: Value,
    secret: Option<&str>,
    upstream: &MockServer,
) -> StdioClient {
    let app = root.join("local_auth/oauth_configs/airtable");
    std::fs::create_dir_all(&app).unwrap();
    let mut file = json!({
        "client_id": "cid", "redirect_uri": "http://localhost:8080/",
        "token_uri": format!("{}/oauth2/v1/token", upstream.uri())
    });
    if let Some(secret) = secret {
        file["client_secret"] = json!(secret);
    }
    std::fs::write(app.join("oauth.json"), file.to_string()).unwrap();
    shipped_server(root, "airtable", tokens, &upstream.uri())
}

/// Airtable's API answering a record only once the rotated refresh token is on disk: what is
/// saved when the new access token is first used.
struct SavedFirst(std::path::PathBuf);

impl Respond for SavedFirst {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let saved: Value = std::fs::read(&self.0)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        if saved["refresh_token"] == "oar2" {
            ResponseTemplate::new(200)
                .set_body_json(json!({ "id": "rec1", "fields": { "Name": "Write docs" } }))
        } else {
            ResponseTemplate::new(500).set_body_json(json!({ "error": "not saved yet" }))
        }
    }
}

#[tokio::test]
async fn a_rotated_refresh_token_is_saved_before_the_new_access_token_is_used() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth2/v1/token"))
        // base64("cid:cs")
        .and(header("authorization", "Basic Y2lkOmNz"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=oar1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "oaa.fresh", "token_type": "Bearer", "refresh_token": "oar2",
            "expires_in": 3600, "refresh_expires_in": 5184000,
            "scope": "data.records:read data.records:write"
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let saved = root
        .path()
        .join("local_auth/credentials/airtable/alice_credentials.json");
    Mock::given(method("GET"))
        .and(path("/app1/tbl1/rec1"))
        .and(header("authorization", "Bearer oaa.fresh"))
        .respond_with(SavedFirst(saved))
        .expect(2)
        .mount(&upstream)
        .await;
    let expired = json!({ "access_token": "oaa.old", "refresh_token": "oar1", "expires_at": 1 });
    let mut client = airtable(root.path(), expired, Some("cs"), &upstream);
    let arguments = json!({ "base_id": "app1", "table_id": "tbl1", "record_id": "rec1" });
    let result = call_tool(&mut client, 1, "get_record", arguments.clone()).await;
    assert_eq!(result["isError"], false, "{result}");
    let saved = saved_credentials(root.path(), "airtable");
    assert_eq!(saved["access_token"], "oaa.fresh");
    assert_eq!(saved["refresh_token"], "oar2");
    // The fresh token serves the next call with no second refresh.
    let again = call_tool(&mut client, 2, "get_record", arguments).await;
    assert_eq!(again["isError"], false, "{again}");
    let requests = upstream.received_requests().await.unwrap_or_default();
    let refresh = requests
        .iter()
        .find(|request| request.url.path() == "/oauth2/v1/token")
        .map(|request| String::from_utf8_lossy(&request.body).into_owned())
        .unwrap_or_default();
    assert!(
        !refresh.contains("client_secret"),
        "the secret goes only in the Authorization header: {refresh}"
    );
    upstream.verify().await;
}

#[tokio::test]
async fn a_public_app_refreshes_with_its_client_id_alone() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth2/v1/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=oar1"))
        .and(body_string_contains("client_id=cid"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "oaa.fresh", "token_type": "Bearer", "refresh_token": "oar2",
            "expires_in": 3600
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    Mock::given(method("GET"))
        .and(path("/meta/bases"))
        .and(header("authorization", "Bearer oaa.fresh"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "bases": [] })))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let expired = json!({ "access_token": "oaa.old", "refresh_token": "oar1", "expires_at": 1 });
    let mut client = airtable(root.path(), expired, None, &upstream);
    let result = call_tool(&mut client, 1, "list_bases", json!({})).await;
    assert_eq!(result["isError"], false, "{result}");
    let requests = upstream.received_requests().await.unwrap_or_default();
    let refresh = requests
        .iter()
        .find(|request| request.url.path() == "/oauth2/v1/token")
        .unwrap();
    assert!(
        refresh.headers.get("authorization").is_none(),
        "a public app has no secret to send"
    );
    assert_eq!(
        saved_credentials(root.path(), "airtable")["refresh_token"],
        "oar2"
    );
    upstream.verify().await;
}

#[tokio::test]
async fn every_table_is_a_resource_read_as_its_records() {
    let upstream = MockServer::start().await;
    let answer = |route: &str, body: Value| {
        Mock::given(method("GET"))
            .and(path(route.to_owned()))
            .and(header("authorization", "Bearer oaa.alice"))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .expect(1)
    };
    answer(
        "/meta/bases",
        json!({ "bases": [{ "id": "app1", "name": "Projects", "permissionLevel": "create" }] }),
    )
    .mount(&upstream)
    .await;
    answer(
        "/meta/bases/app1/tables",
        json!({ "tables": [{ "id": "tbl1", "name": "Tasks" }, { "id": "tbl2", "name": "People" }] }),
    )
    .mount(&upstream)
    .await;
    answer(
        "/app1/tbl1",
        json!({ "records": [{ "id": "rec1", "fields": { "Name": "Write docs" } }] }),
    )
    .mount(&upstream)
    .await;
    let root = tempfile::tempdir().unwrap();
    let tokens = json!({ "access_token": "oaa.alice", "refresh_token": "oar1", "expires_at": 4102444800_i64 });
    let mut client = airtable(root.path(), tokens, Some("cs"), &upstream);
    let listed = client
        .request(1, "resources/list", json!({ "_meta": modern_meta() }))
        .await;
    let named: Vec<(String, String)> = listed["result"]["resources"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|r| {
            (
                r["uri"].as_str().unwrap_or_default().to_owned(),
                r["name"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        named,
        [
            (
                "airtable://table/app1/tbl1".to_owned(),
                "Projects - Tasks".to_owned()
            ),
            (
                "airtable://table/app1/tbl2".to_owned(),
                "Projects - People".to_owned()
            ),
        ],
        "{listed}"
    );
    let read = client
        .request(
            2,
            "resources/read",
            json!({ "uri": "airtable://table/app1/tbl1", "_meta": modern_meta() }),
        )
        .await;
    let text = read["result"]["contents"][0]["text"]
        .as_str()
        .unwrap_or_default();
    let records: Value = serde_json::from_str(text).unwrap_or_default();
    assert_eq!(records[0]["fields"]["Name"], "Write docs", "{read}");
    let unknown = client
        .request(
            3,
            "resources/read",
            json!({ "uri": "airtable://base/app1", "_meta": modern_meta() }),
        )
        .await;
    assert!(unknown.get("error").is_some(), "{unknown}");
    upstream.verify().await;
}
