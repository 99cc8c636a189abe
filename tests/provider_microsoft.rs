//! The Microsoft identity platform provider through the real binary (outlook on Graph): an
//! expired token is refreshed at the tenant's v2 token endpoint (`{tenant}` filled from the
//! OAuth app's `tenant_id`), the rotated refresh token is saved with the new access token
//! before the call uses it, and a revoked refresh token says to reconnect. The authorization
//! URL and the code exchange are tested beside the code (`auth::connect`).

mod common;

use common::{call_tool, saved_credentials, shipped_server, text_of, StdioClient};
use serde_json::{json, Value};
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// outlook for alice with `tokens`, its OAuth app in tenant `contoso` whose token endpoint is on
/// `upstream` (`{tenant}` left for the runtime to fill).
fn outlook(root: &std::path::Path, tokens: Value, upstream: &MockServer) -> StdioClient {
    let app = root.join("local_auth/oauth_configs/outlook");
    std::fs::create_dir_all(&app).unwrap();
    let file = json!({
        "client_id": "cid", "client_secret": "cs", "tenant_id": "contoso",
        "redirect_uri": "http://localhost:8080/",
        "token_uri": format!("{}/{{tenant}}/oauth2/v2.0/token", upstream.uri())
    });
    std::fs::write(app.join("oauth.json"), file.to_string()).unwrap();
    shipped_server(root, "outlook", tokens, &upstream.uri())
}

#[tokio::test]
async fn an_expired_token_is_refreshed_at_the_tenant_and_the_rotated_refresh_token_saved() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/contoso/oauth2/v2.0/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=M.r1"))
        .and(body_string_contains("client_id=cid"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "token_type": "Bearer", "scope": "https://graph.microsoft.com/Mail.ReadWrite",
            "expires_in": 3599, "access_token": "EwB.fresh", "refresh_token": "M.r2"
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    Mock::given(method("GET"))
        .and(path("/me/mailFolders/inbox/messages"))
        .and(header("authorization", "Bearer EwB.fresh"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "value": [] })))
        .expect(2)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let expired = json!({ "access_token": "EwB.old", "refresh_token": "M.r1", "expires_at": 1 });
    let mut client = outlook(root.path(), expired, &upstream);
    let result = call_tool(&mut client, 1, "read_emails", json!({})).await;
    assert_eq!(result["isError"], false, "{result}");
    let saved = saved_credentials(root.path(), "outlook");
    assert_eq!(saved["access_token"], "EwB.fresh");
    assert_eq!(
        saved["refresh_token"], "M.r2",
        "the rotated token replaces the old one"
    );
    // The fresh token is used from then on, with no second refresh.
    let again = call_tool(&mut client, 2, "read_emails", json!({})).await;
    assert_eq!(again["isError"], false, "{again}");
    upstream.verify().await;
}

#[tokio::test]
async fn a_revoked_refresh_token_says_to_reconnect() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/contoso/oauth2/v2.0/token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": "invalid_grant",
            "error_description": "AADSTS70008: The provided authorization code or refresh token has expired due to inactivity."
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let expired = json!({ "access_token": "EwB.old", "refresh_token": "M.r1", "expires_at": 1 });
    let mut client = outlook(root.path(), expired, &upstream);
    let result = call_tool(
        &mut client,
        1,
        "send_email",
        json!({ "to": "a@x.com", "subject": "s", "body": "b" }),
    )
    .await;
    assert_eq!(result["isError"], true, "{result}");
    let text = text_of(&result);
    assert!(
        text.contains("reconnect with `gumcp-actors auth --server outlook --user-id alice`"),
        "{text}"
    );
    assert!(!text.contains("M.r1") && !text.contains("EwB"), "{text}");
    upstream.verify().await;
}
