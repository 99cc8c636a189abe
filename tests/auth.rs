//! The auth actor against a mock OAuth provider: single-flight refresh per (service, user),
//! parallel refreshes for different users, rejected vs transient failures, rotated refresh
//! tokens saved, the remote store, and answers over `servers.max_response_bytes`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use gumcp_actors::actors::auth::{AuthActor, AuthHandle, GetCredentials};
use gumcp_actors::auth::credentials::{unix_now, Credentials, OAuthApp};
use gumcp_actors::auth::local::LocalStore;
use gumcp_actors::auth::principal::PresentedKey;
use gumcp_actors::auth::remote::RemoteStore;
use gumcp_actors::auth::store::{AuthClient, AuthError};
use gumcp_actors::metrics::Metrics;
use serde_json::json;
use wiremock::matchers::{body_string_contains, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SERVICE: &str = "github";
/// `servers.max_response_bytes` as shipped.
const LIMIT: usize = 16 << 20;

fn expired(refresh: &str) -> Credentials {
    Credentials {
        access_token: Some("old-access".into()),
        refresh_token: Some(refresh.into()),
        expires_at: Some(unix_now() - 10),
        ..Credentials::default()
    }
}

fn local_store(root: &Path) -> Arc<LocalStore> {
    let store = Arc::new(LocalStore::new(root));
    let app = OAuthApp {
        client_id: "client-1".into(),
        client_secret: Some("secret-1".into()),
        redirect_uri: Some("http://localhost:8080/".into()),
        extra: Default::default(),
    };
    let app_path = store.oauth_app_path(SERVICE).unwrap();
    std::fs::create_dir_all(app_path.parent().unwrap()).unwrap();
    std::fs::write(&app_path, serde_json::to_vec(&app).unwrap()).unwrap();
    store
}

fn auth(store: Arc<dyn AuthClient>, token_server: &MockServer) -> AuthHandle {
    auth_reading_up_to(store, token_server, LIMIT)
}

fn auth_reading_up_to(
    store: Arc<dyn AuthClient>,
    token_server: &MockServer,
    max_response_bytes: usize,
) -> AuthHandle {
    let token_urls = HashMap::from([(SERVICE.to_owned(), format!("{}/token", token_server.uri()))]);
    AuthHandle::start(AuthActor::new(
        store,
        gumcp_actors::upstream::client(std::time::Duration::from_secs(5))
            .expect("the HTTP client builds"),
        max_response_bytes,
        token_urls,
        300,
    ))
}

fn get(user: &str) -> GetCredentials {
    GetCredentials {
        service: Arc::from(SERVICE),
        user: Arc::from(user),
        caller_key: None,
        rejected_access_token: None,
    }
}

fn token_answer(access: &str, refresh: Option<&str>) -> ResponseTemplate {
    let mut body = json!({ "access_token": access, "token_type": "bearer", "expires_in": 3600 });
    if let Some(refresh) = refresh {
        body["refresh_token"] = json!(refresh);
    }
    ResponseTemplate::new(200).set_body_json(body)
}

#[actix_rt::test]
async fn a_thousand_concurrent_callers_share_one_refresh() {
    let provider = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=r-1"))
        .respond_with(
            token_answer("new-access", Some("r-2"))
                .set_delay(std::time::Duration::from_millis(200)),
        )
        .expect(1)
        .mount(&provider)
        .await;
    let root = tempfile::tempdir().unwrap();
    let store = local_store(root.path());
    store.save(SERVICE, "alice", &expired("r-1")).await.unwrap();
    let metrics = Arc::new(Metrics::new());
    let token_urls = HashMap::from([(SERVICE.to_owned(), format!("{}/token", provider.uri()))]);
    let auth = AuthHandle::start(
        AuthActor::new(
            store.clone(),
            gumcp_actors::upstream::client(std::time::Duration::from_secs(5))
                .expect("the HTTP client builds"),
            LIMIT,
            token_urls,
            300,
        )
        .counting_refreshes_in(metrics.clone()),
    );

    let calls = (0..1000).map(|_| auth.credentials(get("alice")));
    let results = futures::future::join_all(calls).await;
    for result in &results {
        assert_eq!(
            result.as_ref().unwrap().access_token.as_deref(),
            Some("new-access")
        );
    }
    let saved = store
        .credentials(SERVICE, "alice", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        saved.refresh_token.as_deref(),
        Some("r-2"),
        "the rotated token is saved"
    );
    assert!(saved.expires_at.unwrap() > unix_now() + 3000);
    let refreshed = metrics
        .credential_refreshes
        .with_label_values(&[SERVICE, "refreshed"]);
    assert_eq!(refreshed.get(), 1, "one refresh counted");
    provider.verify().await;
}

#[actix_rt::test]
async fn one_users_slow_refresh_does_not_hold_up_another_users() {
    let provider = MockServer::start().await;
    for (user, delay_ms) in [("u1", 2_000), ("u2", 0)] {
        Mock::given(method("POST"))
            .and(path("/token"))
            .and(body_string_contains(format!("refresh_token=r-{user}")))
            .respond_with(
                token_answer(&format!("a-{user}"), None)
                    .set_delay(std::time::Duration::from_millis(delay_ms)),
            )
            .expect(1)
            .mount(&provider)
            .await;
    }
    let root = tempfile::tempdir().unwrap();
    let store = local_store(root.path());
    for user in ["u1", "u2"] {
        store
            .save(SERVICE, user, &expired(&format!("r-{user}")))
            .await
            .unwrap();
    }
    let auth = auth(store.clone(), &provider);
    let slow = actix_rt::spawn(auth.credentials(get("u1")));
    // Let u1's refresh get under way first.
    while provider
        .received_requests()
        .await
        .unwrap_or_default()
        .is_empty()
    {
        actix_rt::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let quick = auth.credentials(get("u2")).await.unwrap();
    assert_eq!(quick.access_token.as_deref(), Some("a-u2"));
    assert!(
        !slow.is_finished(),
        "u2 was answered while u1's refresh was still running"
    );
    assert_eq!(
        slow.await.unwrap().unwrap().access_token.as_deref(),
        Some("a-u1")
    );
    let kept = store
        .credentials(SERVICE, "u1", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        kept.refresh_token.as_deref(),
        Some("r-u1"),
        "an unrotated token is kept"
    );
    provider.verify().await;
}

#[actix_rt::test]
async fn invalid_grant_tells_every_waiter_to_reconnect() {
    let provider = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({ "error": "invalid_grant", "error_description": "revoked" })),
        )
        .expect(1)
        .mount(&provider)
        .await;
    let root = tempfile::tempdir().unwrap();
    let store = local_store(root.path());
    store.save(SERVICE, "bob", &expired("dead")).await.unwrap();
    let auth = auth(store, &provider);
    let results = futures::future::join_all((0..50).map(|_| auth.credentials(get("bob")))).await;
    for result in results {
        match result {
            Err(AuthError::Rejected { reason, .. }) => assert!(reason.contains("invalid_grant")),
            other => panic!("expected a rejection, got {other:?}"),
        }
    }
    provider.verify().await;
}

#[actix_rt::test]
async fn a_transient_failure_is_retried() {
    let provider = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .expect(1)
        .mount(&provider)
        .await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(token_answer("after-retry", None))
        .expect(1)
        .mount(&provider)
        .await;
    let root = tempfile::tempdir().unwrap();
    let store = local_store(root.path());
    store.save(SERVICE, "carol", &expired("r")).await.unwrap();
    let auth = auth(store, &provider);
    let creds = auth.credentials(get("carol")).await.unwrap();
    assert_eq!(creds.access_token.as_deref(), Some("after-retry"));
    provider.verify().await;
}

#[actix_rt::test]
async fn a_rejected_token_is_refreshed_once_then_served_from_cache() {
    let provider = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(token_answer("second", None))
        .expect(1)
        .mount(&provider)
        .await;
    let root = tempfile::tempdir().unwrap();
    let store = local_store(root.path());
    let fresh = Credentials {
        access_token: Some("first".into()),
        refresh_token: Some("r".into()),
        expires_at: Some(unix_now() + 3600),
        ..Credentials::default()
    };
    store.save(SERVICE, "dan", &fresh).await.unwrap();
    let auth = auth(store, &provider);
    assert_eq!(
        auth.credentials(get("dan"))
            .await
            .unwrap()
            .access_token
            .as_deref(),
        Some("first")
    );
    let rejected = || GetCredentials {
        rejected_access_token: Some("first".into()),
        ..get("dan")
    };
    let (a, b) = futures::join!(auth.credentials(rejected()), auth.credentials(rejected()));
    assert_eq!(a.unwrap().access_token.as_deref(), Some("second"));
    assert_eq!(b.unwrap().access_token.as_deref(), Some("second"));
    provider.verify().await;
}

#[actix_rt::test]
async fn no_credentials_say_how_to_connect() {
    let provider = MockServer::start().await;
    let root = tempfile::tempdir().unwrap();
    let store = local_store(root.path());
    let err = auth(store, &provider)
        .credentials(get("nobody"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("gumcp-actors auth --server github --user-id nobody"),
        "{err}"
    );
}

#[actix_rt::test]
async fn the_remote_store_forwards_the_callers_key_and_caches() {
    let api = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/auth/github/credentials"))
        .and(query_param("user_id", "erin"))
        .and(header("authorization", "Bearer caller-key"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({ "access_token": "remote-token" })),
        )
        .expect(1)
        .mount(&api)
        .await;
    let store = RemoteStore::new(
        gumcp_actors::upstream::client(std::time::Duration::from_secs(5))
            .expect("the HTTP client builds"),
        &format!("{}/api/v1/", api.uri()),
        None,
        std::time::Duration::from_secs(30),
        LIMIT,
    );
    for _ in 0..3 {
        let creds = store
            .credentials(SERVICE, "erin", Some(&PresentedKey::new("caller-key")))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(creds.access_token.as_deref(), Some("remote-token"));
    }
    assert!(store
        .credentials(SERVICE, "../x", Some(&PresentedKey::new("k")))
        .await
        .is_err());
    api.verify().await;
}

#[actix_rt::test]
async fn the_remote_store_reports_an_outage_as_transient() {
    let api = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(502))
        .mount(&api)
        .await;
    let store = RemoteStore::new(
        gumcp_actors::upstream::client(std::time::Duration::from_secs(5))
            .expect("the HTTP client builds"),
        &api.uri(),
        Some("configured".into()),
        std::time::Duration::from_secs(30),
        LIMIT,
    );
    let err = store.credentials(SERVICE, "fay", None).await.unwrap_err();
    assert!(matches!(err, AuthError::Transient { .. }), "{err:?}");
    assert!(!err.to_string().contains("configured"));
}

#[actix_rt::test]
async fn a_token_answer_over_the_limit_is_transient_and_names_the_setting() {
    let provider = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "huge-token", "token_type": "bearer", "padding": "p".repeat(8192)
        })))
        .mount(&provider)
        .await;
    let root = tempfile::tempdir().unwrap();
    let store = local_store(root.path());
    store.save(SERVICE, "gus", &expired("r")).await.unwrap();
    let auth = auth_reading_up_to(store, &provider, 4096);
    let err = auth.credentials(get("gus")).await.unwrap_err();
    assert!(matches!(err, AuthError::Transient { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("larger than servers.max_response_bytes (4096 bytes)"),
        "{text}"
    );
    assert!(
        !text.contains("huge-token") && !text.contains(&provider.uri()),
        "{text}"
    );
}

#[actix_rt::test]
async fn a_credentials_answer_over_the_limit_is_refused_without_keys_or_url() {
    let api = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "remote-token", "padding": "p".repeat(8192)
        })))
        .mount(&api)
        .await;
    let store = RemoteStore::new(
        gumcp_actors::upstream::client(std::time::Duration::from_secs(5))
            .expect("the HTTP client builds"),
        &api.uri(),
        Some("configured-key".into()),
        std::time::Duration::from_secs(30),
        4096,
    );
    let err = store.credentials(SERVICE, "hal", None).await.unwrap_err();
    assert!(matches!(err, AuthError::Store(_)), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("larger than servers.max_response_bytes (4096 bytes)"),
        "{text}"
    );
    for secret in ["remote-token", "configured-key", &api.uri()] {
        assert!(!text.contains(secret), "{text}");
    }
}
