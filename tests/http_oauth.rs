//! The OAuth resource-server access mode over real HTTP: access tokens (JWTs signed with an
//! Ed25519 key whose JWKS a mock issuer publishes) decide the user; wrong audience, expired,
//! bad signature, unknown key and missing scope are refused with the right status and
//! challenge; RFC 9728 metadata tells clients where to get tokens; a key published later is
//! found when a token names it.

mod common;

use std::time::Duration;

use base64::Engine;
use common::{modern_meta, serve, Served, WAIT};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// RFC 8032's first Ed25519 test vector: a published key, fit only for tests.
const SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
/// RFC 8032's second test vector: a key the issuer never published.
const OTHER_SEED: &str = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb";
const RESOURCE: &str = "https://mcp.example.test";

fn signing_key(seed: &str) -> EncodingKey {
    // PKCS#8 v1 wrapping of a raw Ed25519 seed.
    let mut der = hex::decode("302e020100300506032b657004220420").unwrap();
    der.extend(hex::decode(seed).unwrap());
    EncodingKey::from_ed_der(&der)
}

fn token_with(claims: Value, kid: &str, seed: &str) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, &claims, &signing_key(seed)).unwrap()
}

fn token(claims: Value, kid: &str) -> String {
    token_with(claims, kid, SEED)
}

fn claims(issuer: &str, audience: &str, expires_in: i64, scope: &str) -> Value {
    let now = jsonwebtoken::get_current_timestamp() as i64;
    json!({ "iss": issuer, "aud": audience, "sub": "erin", "exp": now + expires_in, "iat": now, "scope": scope })
}

fn jwks(kids: &[&str]) -> Value {
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hex::decode(PUBLIC).unwrap());
    let keys: Vec<Value> = kids
        .iter()
        .map(|kid| json!({ "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": kid, "x": x }))
        .collect();
    // An encryption key of a kind we do not use must not hide the signing keys.
    let mut keys = keys;
    keys.push(json!({ "kty": "RSA", "use": "enc", "alg": "RSA-OAEP-256", "kid": "enc", "n": "AQAB", "e": "AQAB" }));
    json!({ "keys": keys })
}

async fn publish(issuer: &MockServer, kids: &[&str]) {
    Mock::given(method("GET"))
        .and(path("/jwks.json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(jwks(kids)))
        .mount(issuer)
        .await;
}

async fn serve_oauth(issuer: &MockServer) -> (Served, tempfile::TempDir) {
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("gumcp.toml");
    std::fs::write(
        &config,
        format!(
            "[access]\nmode = \"oauth\"\n[access.oauth]\nissuer = \"{0}\"\njwks_url = \"{0}/jwks.json\"\nresource = \"{RESOURCE}\"\nrequired_scopes = [\"mcp\"]\nscopes_supported = [\"mcp\", \"mcp:admin\"]\n",
            issuer.uri()
        ),
    )
    .unwrap();
    (serve(Some(&config), &[]).await, root)
}

async fn call(url: &str, bearer: Option<&str>, tool: &str, arguments: Value) -> reqwest::Response {
    let client = gumcp_actors::upstream::client(WAIT).expect("the HTTP client builds");
    let mut request = common::stateless_call(&client, url, tool, arguments, modern_meta());
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    request.send().await.unwrap()
}

fn challenge_of(response: &reqwest::Response) -> String {
    response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned()
}

const METADATA_URL: &str = "https://mcp.example.test/.well-known/oauth-protected-resource";

#[tokio::test]
async fn a_valid_token_names_the_user_and_bad_ones_are_refused_with_a_challenge() {
    let issuer = MockServer::start().await;
    publish(&issuer, &["k1"]).await;
    let (served, _root) = serve_oauth(&issuer).await;
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
    assert_eq!(read.status(), 200);
    let body: Value = read.json().await.unwrap();
    assert_eq!(body["result"]["content"][0]["text"], "Value for 'k': v");
    // Another user in the path: refused.
    let other_user = format!("{}/simple-tools-server/mallory/mcp", served.url);
    assert_eq!(
        call(&other_user, Some(&good), "list-data", json!({}))
            .await
            .status(),
        401
    );
    // `scp` as a list grants scopes too; the scheme's case does not matter.
    let listed = token(
        json!({ "iss": iss, "aud": RESOURCE, "sub": "erin", "exp": jsonwebtoken::get_current_timestamp() + 600, "scp": ["mcp"] }),
        "k1",
    );
    let client = gumcp_actors::upstream::client(WAIT).expect("the HTTP client builds");
    let lowercase = client
        .post(&keyed)
        .header("authorization", format!("bearer {listed}"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "retrieve-data")
        .body(
            json!({
                "jsonrpc": "2.0", "id": 2, "method": "tools/call",
                "params": { "name": "retrieve-data", "arguments": { "key": "k" }, "_meta": modern_meta() }
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(lowercase.status(), 200);

    // No token: 401 pointing at the metadata, with the scopes to ask for.
    let none = call(&mcp, None, "list-data", json!({})).await;
    assert_eq!(none.status(), 401);
    assert_eq!(
        challenge_of(&none),
        format!("Bearer scope=\"mcp\", resource_metadata=\"{METADATA_URL}\"")
    );

    let now = jsonwebtoken::get_current_timestamp() as i64;
    for (bad, why) in [
        (
            token(claims(&iss, "https://elsewhere.test", 600, "mcp"), "k1"),
            "audience",
        ),
        (token(claims(&iss, RESOURCE, -600, "mcp"), "k1"), "expired"),
        (
            token(
                json!({ "iss": iss, "aud": RESOURCE, "sub": "erin", "exp": now + 600, "nbf": now + 300, "scope": "mcp" }),
                "k1",
            ),
            "not valid yet",
        ),
        (
            token(claims("http://evil.example", RESOURCE, 600, "mcp"), "k1"),
            "issuer",
        ),
        (
            token_with(claims(&iss, RESOURCE, 600, "mcp"), "k1", OTHER_SEED),
            "signature",
        ),
        (
            token(claims(&iss, RESOURCE, 600, "mcp"), "k-unknown"),
            "unknown key",
        ),
        (
            token(
                json!({ "iss": iss, "aud": RESOURCE, "exp": now + 600, "scope": "mcp" }),
                "k1",
            ),
            "\"sub\" claim",
        ),
        (
            token(
                json!({ "iss": iss, "aud": RESOURCE, "sub": "../erin", "exp": now + 600, "scope": "mcp" }),
                "k1",
            ),
            "not a valid user id",
        ),
        (
            token(
                json!({ "iss": iss, "sub": "erin", "exp": now + 600, "scope": "mcp" }),
                "k1",
            ),
            "\"aud\"",
        ),
        ("not-a-jwt".to_owned(), "not a JWT"),
    ] {
        let refused = call(&mcp, Some(&bad), "list-data", json!({})).await;
        assert_eq!(refused.status(), 401, "{why}");
        assert_eq!(
            challenge_of(&refused),
            format!(
                "Bearer error=\"invalid_token\", scope=\"mcp\", resource_metadata=\"{METADATA_URL}\""
            ),
            "{why}"
        );
        let text = refused.text().await.unwrap();
        assert!(text.contains(why), "{why}: {text}");
        assert!(!text.contains(&bad), "the token is never echoed");
    }

    // Valid but without the required scope: 403 naming it.
    let unscoped = token(claims(&iss, RESOURCE, 600, "other"), "k1");
    let forbidden = call(&mcp, Some(&unscoped), "list-data", json!({})).await;
    assert_eq!(forbidden.status(), 403);
    assert_eq!(
        challenge_of(&forbidden),
        format!(
            "Bearer error=\"insufficient_scope\", scope=\"mcp\", resource_metadata=\"{METADATA_URL}\""
        )
    );
}

#[tokio::test]
async fn a_token_for_one_endpoint_works_there_only() {
    let issuer = MockServer::start().await;
    publish(&issuer, &["k1"]).await;
    let (served, _root) = serve_oauth(&issuer).await;
    let iss = issuer.uri();
    // What a client gets from the endpoint's per-path metadata.
    let endpoint_token = token(
        claims(
            &iss,
            &format!("{RESOURCE}/simple-tools-server/mcp"),
            600,
            "mcp",
        ),
        "k1",
    );
    let there = format!("{}/simple-tools-server/mcp", served.url);
    assert_eq!(
        call(&there, Some(&endpoint_token), "list-data", json!({}))
            .await
            .status(),
        200
    );
    let elsewhere = format!("{}/conformance-fixtures/mcp", served.url);
    let refused = call(&elsewhere, Some(&endpoint_token), "list-data", json!({})).await;
    assert_eq!(refused.status(), 401);
    assert!(refused.text().await.unwrap().contains("audience"));
}

#[tokio::test]
async fn a_key_published_later_is_fetched_once_when_a_token_names_it() {
    let issuer = MockServer::start().await;
    publish(&issuer, &["k1"]).await;
    let (served, _root) = serve_oauth(&issuer).await;
    let mcp = format!("{}/simple-tools-server/mcp", served.url);
    issuer.reset().await;
    publish(&issuer, &["k1", "k2"]).await;

    let rotated = token(claims(&issuer.uri(), RESOURCE, 600, "mcp"), "k2");
    let first = call(&mcp, Some(&rotated), "list-data", json!({})).await;
    assert_eq!(first.status(), 401, "not known yet: refused, and fetched");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let again = call(&mcp, Some(&rotated), "list-data", json!({})).await;
        if again.status() == 200 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "k2 never found");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Forged key ids cannot make the server hammer the issuer: one more fetch at most per 30 s.
    for n in 0..20 {
        let forged = token(
            claims(&issuer.uri(), RESOURCE, 600, "mcp"),
            &format!("forged-{n}"),
        );
        assert_eq!(
            call(&mcp, Some(&forged), "list-data", json!({}))
                .await
                .status(),
            401
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fetches = issuer.received_requests().await.unwrap().len();
    assert_eq!(fetches, 1, "one fetch since the reset");
}

#[tokio::test]
async fn the_protected_resource_metadata_points_at_the_issuer() {
    let issuer = MockServer::start().await;
    publish(&issuer, &["k1"]).await;
    let (served, _root) = serve_oauth(&issuer).await;
    let client = gumcp_actors::upstream::client(WAIT).expect("the HTTP client builds");
    let root = client
        .get(format!(
            "{}/.well-known/oauth-protected-resource",
            served.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(root.status(), 200);
    let metadata: Value = root.json().await.unwrap();
    assert_eq!(
        metadata,
        json!({
            "resource": RESOURCE,
            "authorization_servers": [issuer.uri()],
            "scopes_supported": ["mcp", "mcp:admin"],
            "bearer_methods_supported": ["header"],
        })
    );
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
    assert_eq!(per_path["authorization_servers"], json!([issuer.uri()]));
}

#[tokio::test]
async fn the_metadata_is_not_served_in_other_modes() {
    let served = serve(None, &[]).await;
    let client = gumcp_actors::upstream::client(WAIT).expect("the HTTP client builds");
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/simple-tools-server/mcp",
    ] {
        let answer = client
            .get(format!("{}{path}", served.url))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 404, "{path}");
    }
}

#[tokio::test]
async fn oauth_settings_are_checked_at_load_by_name() {
    for (config, named) in [
        ("[access]\nmode = \"oauth\"\n", "access.oauth"),
        (
            "[access]\nmode = \"oauth\"\n[access.oauth]\nissuer = \"https://a.test\"\njwks_url = \"https://a.test/jwks\"\n",
            "resource",
        ),
        (
            "[access]\nmode = \"oauth\"\n[access.oauth]\nissuer = \"https://a.test\"\njwks_url = \"https://a.test/jwks\"\nresource = \"https://mcp.test/#frag\"\n",
            "access.oauth.resource",
        ),
        (
            "[access]\nmode = \"oauth\"\n[access.oauth]\nissuer = \"auth.test\"\njwks_url = \"https://a.test/jwks\"\nresource = \"https://mcp.test\"\n",
            "access.oauth.issuer",
        ),
        (
            "[access]\nmode = \"oauth\"\n[access.oauth]\nissuer = \"https://a.test\"\njwks_url = \"https://a.test/jwks\"\nresource = \"https://mcp.test\"\nrequired_scopes = [\"a b\"]\n",
            "access.oauth.required_scopes",
        ),
    ] {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("gumcp.toml");
        std::fs::write(&file, config).unwrap();
        let output = tokio::process::Command::new(common::binary())
            .arg("--config")
            .arg(&file)
            .args(["serve", "--port", "0", "--metrics-port", "0"])
            .output()
            .await
            .unwrap();
        assert_eq!(output.status.code(), Some(78), "{config}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(named), "{named}: {stderr}");
    }
}
