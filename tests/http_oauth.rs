//! The OAuth resource-server access mode over real HTTP: access tokens (JWTs signed with an
//! Ed25519 key whose JWKS a mock issuer publishes) decide the user; wrong audience, expired,
//! unknown key and missing scope are refused with the right status and challenge; RFC 9728
//! metadata tells clients where to get tokens.

mod common;

use base64::Engine;
use common::{binary, modern_meta, Served, WAIT};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tokio::process::Command;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// RFC 8032's first Ed25519 test vector: a published key, fit only for tests.
const SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
const RESOURCE: &str = "http://127.0.0.1/mcp-resource";

fn signing_key() -> EncodingKey {
    let mut der = hex::decode("302e020100300506032b657004220420").unwrap();
    der.extend(hex::decode(SEED).unwrap());
    EncodingKey::from_ed_der(&der)
}

fn token(claims: Value, kid: &str) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, &claims, &signing_key()).unwrap()
}

fn claims(issuer: &str, audience: &str, expires_in: i64, scope: &str) -> Value {
    let now = jsonwebtoken::get_current_timestamp() as i64;
    json!({ "iss": issuer, "aud": audience, "sub": "erin", "exp": now + expires_in, "iat": now, "scope": scope })
}

async fn serve(issuer: &MockServer) -> (Served, tempfile::TempDir) {
    let jwks = json!({ "keys": [{
        "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": "k1",
        "x": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hex::decode(PUBLIC).unwrap())
    }]});
    Mock::given(method("GET"))
        .and(path("/jwks.json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(jwks))
        .mount(issuer)
        .await;
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("gumcp.toml");
    std::fs::write(
        &config,
        format!(
            "[access]\nmode = \"oauth\"\n[access.oauth]\nissuer = \"{0}\"\njwks_url = \"{0}/jwks.json\"\nresource = \"{RESOURCE}\"\nrequired_scopes = [\"mcp\"]\nscopes_supported = [\"mcp\"]\n",
            issuer.uri()
        ),
    )
    .unwrap();
    (
        common::serve(Some(&config), &[("RUST_LOG", "debug")]).await,
        root,
    )
}

async fn call(url: &str, bearer: Option<&str>, tool: &str, arguments: Value) -> reqwest::Response {
    let client = gumcp_actors::upstream::client(WAIT);
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", tool)
        .body(
            json!({
                "jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": { "name": tool, "arguments": arguments, "_meta": modern_meta() }
            })
            .to_string(),
        );
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn a_valid_token_names_the_user_and_bad_ones_are_refused_with_a_challenge() {
    let issuer = MockServer::start().await;
    let (served, _root) = serve(&issuer).await;
    let iss = issuer.uri();
    let mcp = format!("{}/simple-tools-server/mcp", served.url);

    let good = token(claims(&iss, RESOURCE, 600, "mcp other"), "k1");
    let stored = call(
        &mcp,
        Some(&good),
        "store-data",
        json!({ "key": "k", "value": "v" }),
    )
    .await;
    assert_eq!(stored.status(), 200);
    // The same user through the keyed route, with the same token.
    let keyed = format!("{}/simple-tools-server/erin/mcp", served.url);
    let read = call(&keyed, Some(&good), "retrieve-data", json!({ "key": "k" })).await;
    let body: Value = read.json().await.unwrap();
    assert_eq!(body["result"]["content"][0]["text"], "Value for 'k': v");
    let other_user = format!("{}/simple-tools-server/mallory/mcp", served.url);
    assert_eq!(
        call(&other_user, Some(&good), "list-data", json!({}))
            .await
            .status(),
        401
    );

    let none = call(&mcp, None, "list-data", json!({})).await;
    assert_eq!(none.status(), 401);
    let challenge = none.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.contains(&format!(
            "resource_metadata=\"{RESOURCE}/.well-known/oauth-protected-resource\""
        )),
        "{challenge}"
    );

    for (bad, why) in [
        (
            token(claims(&iss, "http://elsewhere/mcp", 600, "mcp"), "k1"),
            "audience",
        ),
        (token(claims(&iss, RESOURCE, -600, "mcp"), "k1"), "expired"),
        (
            token(claims("http://evil.example", RESOURCE, 600, "mcp"), "k1"),
            "issuer",
        ),
        (
            token(claims(&iss, RESOURCE, 600, "mcp"), "k-unknown"),
            "unknown key",
        ),
        ("not-a-jwt".to_owned(), "not a JWT"),
    ] {
        let refused = call(&mcp, Some(&bad), "list-data", json!({})).await;
        assert_eq!(refused.status(), 401, "{why}");
        let challenge = refused.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            challenge.contains("error=\"invalid_token\""),
            "{why}: {challenge}"
        );
        let text = refused.text().await.unwrap();
        assert!(text.contains(why), "{why}: {text}");
        assert!(!text.contains(&bad), "the token is never echoed");
    }

    let unscoped = token(claims(&iss, RESOURCE, 600, "other"), "k1");
    let forbidden = call(&mcp, Some(&unscoped), "list-data", json!({})).await;
    assert_eq!(forbidden.status(), 403);
    let challenge = forbidden.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.contains("error=\"insufficient_scope\"") && challenge.contains("scope=\"mcp\""),
        "{challenge}"
    );

    let mut child = served.child;
    child.start_kill().unwrap();
    let output = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let logs = String::from_utf8_lossy(&output.stderr);
    assert!(!logs.is_empty(), "debug logging produced nothing to check");
    assert!(
        !logs.contains(&good) && !logs.contains(&unscoped),
        "a token reached the logs"
    );
}

#[tokio::test]
async fn the_protected_resource_metadata_points_at_the_issuer() {
    let issuer = MockServer::start().await;
    let (served, _root) = serve(&issuer).await;
    let client = gumcp_actors::upstream::client(WAIT);
    let metadata: Value = client
        .get(format!(
            "{}/.well-known/oauth-protected-resource",
            served.url
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["resource"], RESOURCE);
    assert_eq!(metadata["authorization_servers"], json!([issuer.uri()]));
    assert_eq!(metadata["bearer_methods_supported"], json!(["header"]));
    let per_path: Value = client
        .get(format!(
            "{}/.well-known/oauth-protected-resource/simple-tools-server/mcp",
            served.url
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        per_path["resource"],
        format!("{RESOURCE}/simple-tools-server/mcp")
    );
}

#[tokio::test]
async fn oauth_mode_without_its_settings_is_refused_by_name() {
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("gumcp.toml");
    std::fs::write(&config, "[access]\nmode = \"oauth\"\n").unwrap();
    let output = Command::new(binary())
        .arg("--config")
        .arg(&config)
        .args(["serve", "--port", "0", "--metrics-port", "0"])
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("access.oauth"));
}
