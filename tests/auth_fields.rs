//! `[[auth.fields]]` end to end through the binary: the `auth` command asks for a field the
//! user provides (piped on stdin here), fills the provider's endpoints with it, and stores it
//! with the fields taken from the token answer, the redirect and an account endpoint; a value
//! that could move a request to another host is refused before anything is sent. A
//! client-credentials server gets its app token with no sign-in. Calls then go to the
//! user's own base URL, and a refresh to the user's own token endpoint.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::Stdio;

use common::{binary, call_tool, saved_credentials, shipped_server, WAIT};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A project with one server whose `[auth]` is `auth` (fields included).
fn project(root: &Path, server: &str, auth: &str) -> std::path::PathBuf {
    let dir = root.join("servers").join(server);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("server.toml"),
        format!(
            "name = \"{server}\"\ndescription = \"test\"\nversion = \"1\"\nkind = \"native\"\n\n[auth]\n{auth}"
        ),
    )
    .unwrap();
    let config = root.join("gumcp.toml");
    std::fs::write(
        &config,
        "[servers]\ndir = \"servers\"\n[auth]\nlocal_dir = \"local_auth\"\n",
    )
    .unwrap();
    config
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| {
            percent_encoding::percent_decode_str(value)
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

fn follow_redirect(port: u16, target: &str) -> String {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let request = format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut page = String::new();
    let _ = stream.read_to_string(&mut page);
    page
}

/// Every kind of field: the subdomain the user types, the instance from the token answer,
/// the realm from the redirect, the account from an endpoint (its default one).
fn fields(provider: &str) -> String {
    format!(
        "kind = \"oauth2\"\nscopes = [\"read\"]\n\
         authorize_url = \"{provider}/{{custom_subdomain}}/authorize\"\n\
         token_url = \"{provider}/{{custom_subdomain}}/token\"\n\
         [[auth.fields]]\nname = \"custom_subdomain\"\nlabel = \"Subdomain\"\nformat = \"label\"\n\
         [[auth.fields]]\nname = \"instance_url\"\nlabel = \"Instance\"\nfrom = \"token\"\n\
         format = \"origin\"\nhosts = [\".example.com\"]\n\
         [[auth.fields]]\nname = \"realmId\"\nlabel = \"Company\"\nfrom = \"redirect\"\nformat = \"digits\"\n\
         [[auth.fields]]\nname = \"account_id\"\nlabel = \"Account\"\nfrom = \"response\"\n\
         format = \"id\"\nurl = \"{provider}/userinfo\"\nselect = \"/accounts/[is_default=true]/account_id\"\n"
    )
}

async fn start_auth(config: &Path, server: &str, stdin_text: &str) -> tokio::process::Child {
    let mut child = Command::new(binary())
        .arg("--config")
        .arg(config)
        .args([
            "auth",
            "--server",
            server,
            "--user-id",
            "alice",
            "--no-browser",
        ])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(stdin_text.as_bytes()).await.unwrap();
    drop(stdin);
    child
}

#[tokio::test]
async fn the_auth_command_asks_for_user_fields_and_stores_every_field() {
    let provider = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/acme/token"))
        .and(body_string_contains("code=the-code"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "at-1", "token_type": "Bearer", "refresh_token": "rt-1",
            "instance_url": "https://acme.my.example.com", "issued_at": "1700000000000"
        })))
        .expect(1)
        .mount(&provider)
        .await;
    Mock::given(method("GET"))
        .and(path("/userinfo"))
        .and(header("authorization", "Bearer at-1"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({ "accounts": [
                { "account_id": "other", "is_default": false },
                { "account_id": "acc-42", "is_default": true }
            ]})),
        )
        .expect(1)
        .mount(&provider)
        .await;
    let root = tempfile::tempdir().unwrap();
    let config = project(root.path(), "fieldhub", &fields(&provider.uri()));
    let port = free_port();
    let app_dir = root.path().join("local_auth/oauth_configs/fieldhub");
    std::fs::create_dir_all(&app_dir).unwrap();
    let app = json!({ "client_id": "cid", "client_secret": "cs",
                      "redirect_uri": format!("http://127.0.0.1:{port}/callback") });
    std::fs::write(app_dir.join("oauth.json"), app.to_string()).unwrap();

    let mut child = start_auth(&config, "fieldhub", "Acme\n").await;
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.starts_with("http") {
                return line;
            }
        }
        panic!("the command printed no URL");
    })
    .await
    .unwrap();
    assert!(
        url.starts_with(&format!("{}/acme/authorize?", provider.uri())),
        "{url}"
    );
    let state = query_param(&url, "state").unwrap();
    let target = format!("/callback?code=the-code&state={state}&realmId=9130350");
    let page = tokio::task::spawn_blocking(move || follow_redirect(port, &target))
        .await
        .unwrap();
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    let output = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let saved = saved_credentials(root.path(), "fieldhub");
    assert_eq!(saved["access_token"], "at-1");
    assert_eq!(saved["custom_subdomain"], "acme");
    assert_eq!(saved["instance_url"], "https://acme.my.example.com");
    assert_eq!(saved["realmId"], "9130350");
    assert_eq!(saved["account_id"], "acc-42");
    assert_eq!(
        saved["issued_at"], "1700000000000",
        "the token's other members are kept"
    );
    provider.verify().await;
}

#[tokio::test]
async fn a_subdomain_that_names_another_host_is_refused_before_any_request() {
    let provider = MockServer::start().await;
    for hostile in ["evil.com#", "attacker.net/x", "a@evil.com"] {
        let root = tempfile::tempdir().unwrap();
        let config = project(root.path(), "fieldhub", &fields(&provider.uri()));
        let app_dir = root.path().join("local_auth/oauth_configs/fieldhub");
        std::fs::create_dir_all(&app_dir).unwrap();
        let app = json!({ "client_id": "cid", "client_secret": "cs" });
        std::fs::write(app_dir.join("oauth.json"), app.to_string()).unwrap();
        let child = start_auth(&config, "fieldhub", &format!("{hostile}\n")).await;
        let output = tokio::time::timeout(WAIT, child.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        assert!(!output.status.success(), "{hostile}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("Subdomain: must be one name"), "{stderr}");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(!stdout.contains("authorize"), "{stdout}");
        assert!(!root.path().join("local_auth/credentials").exists());
    }
    assert!(provider
        .received_requests()
        .await
        .unwrap_or_default()
        .is_empty());
}

#[tokio::test]
async fn a_client_credentials_server_gets_an_app_token_and_renews_it_when_expired() {
    let provider = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/oauth2/token"))
        // base64("pp-client:pp-secret")
        .and(header(
            "authorization",
            "Basic cHAtY2xpZW50OnBwLXNlY3JldA==",
        ))
        .and(body_string_contains("grant_type=client_credentials"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "A21-first", "token_type": "Bearer", "expires_in": 32400,
            "app_id": "APP-1"
        })))
        .expect(1)
        .mount(&provider)
        .await;
    let root = tempfile::tempdir().unwrap();
    let config = project(
        root.path(),
        "apphub",
        &format!(
            "kind = \"client_credentials\"\ntoken_url = \"{}/v1/oauth2/token\"\n",
            provider.uri()
        ),
    );
    let app_dir = root.path().join("local_auth/oauth_configs/apphub");
    std::fs::create_dir_all(&app_dir).unwrap();
    let app = json!({ "client_id": "pp-client", "client_secret": "pp-secret" });
    std::fs::write(app_dir.join("oauth.json"), app.to_string()).unwrap();
    let child = start_auth(&config, "apphub", "").await;
    let output = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let saved: Value = saved_credentials(root.path(), "apphub");
    assert_eq!(saved["access_token"], "A21-first");
    assert!(saved["expires_at"].as_i64().is_some());
    assert!(saved.get("refresh_token").is_none());
    provider.verify().await;
}

/// The shipped zendesk: a token Zendesk refuses is refreshed at the user's own subdomain
/// (the app's `token_uri` naming `{custom_subdomain}` too), and the call retried there.
#[tokio::test]
async fn zendesk_refreshes_at_the_users_own_subdomain() {
    let upstream = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/acme/search.json"))
        .and(header("authorization", "Bearer zd-old"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({ "error": "invalid_token" })))
        .expect(1)
        .mount(&upstream)
        .await;
    Mock::given(method("POST"))
        .and(path("/acme/oauth/tokens"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=zd-rt-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "zd-new", "token_type": "bearer", "refresh_token": "zd-rt-2",
            "expires_in": 172800
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    Mock::given(method("GET"))
        .and(path("/acme/search.json"))
        .and(header("authorization", "Bearer zd-new"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({ "results": [
            { "id": 1, "result_type": "ticket", "subject": "Hi" }
        ], "count": 1 })),
        )
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let app_dir = root.path().join("local_auth/oauth_configs/zendesk");
    std::fs::create_dir_all(&app_dir).unwrap();
    let app = json!({ "client_id": "zd-client", "client_secret": "zd-secret",
                      "token_uri": format!("{}/{{custom_subdomain}}/oauth/tokens", upstream.uri()) });
    std::fs::write(app_dir.join("oauth.json"), app.to_string()).unwrap();
    let stored = json!({ "access_token": "zd-old", "refresh_token": "zd-rt-1",
                         "custom_subdomain": "acme" });
    let base = format!("{}/{{custom_subdomain}}", upstream.uri());
    let mut client = shipped_server(root.path(), "zendesk", stored, &base);
    let result = call_tool(&mut client, 1, "search_tickets", json!({ "query": "hi" })).await;
    assert_eq!(result["isError"], false, "{result}");
    let saved = saved_credentials(root.path(), "zendesk");
    assert_eq!(saved["access_token"], "zd-new");
    assert_eq!(saved["refresh_token"], "zd-rt-2");
    assert_eq!(saved["custom_subdomain"], "acme");
    upstream.verify().await;
}

/// A stored subdomain that would name another host (a tampered credential) is refused at
/// the call: no request leaves.
#[tokio::test]
async fn a_tampered_stored_subdomain_sends_nothing() {
    let upstream = MockServer::start().await;
    let root = tempfile::tempdir().unwrap();
    let stored = json!({ "access_token": "zd-at", "custom_subdomain": "evil.com/x" });
    let base = format!("{}/{{custom_subdomain}}", upstream.uri());
    let mut client = shipped_server(root.path(), "zendesk", stored, &base);
    let result = call_tool(&mut client, 1, "search_tickets", json!({ "query": "hi" })).await;
    assert_eq!(result["isError"], true, "{result}");
    assert!(result.to_string().contains("must be one name"), "{result}");
    assert!(upstream
        .received_requests()
        .await
        .unwrap_or_default()
        .is_empty());
}
