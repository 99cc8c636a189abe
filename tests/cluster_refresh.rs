//! One token refresh per account in the whole cluster, through the real binary: three `serve`
//! nodes on one Redis and one PostgreSQL credential store, the user's GitHub token expired.
//! Many concurrent calls spread over the nodes make one request at the provider; the node
//! holding the refresh lock killed mid-refresh leaves exactly one more refresh to another
//! node, and no call fails but the killed node's own; a provider that rotates refresh tokens
//! never sees one presented twice; without Redis nothing is refreshed and the call says to
//! retry.
//!
//! Each test has its own Redis database of the machines' Redis (9, 10, 12; the one that stops
//! Redis starts its own `redis-server` on a free port) and its own PostgreSQL schema in
//! database `test`, dropped at the end.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{modern_meta, Served, WAIT};
use gumcp_actors::auth::credentials::{Credentials, OAuthApp};
use gumcp_actors::auth::postgres::PostgresStore;
use gumcp_actors::auth::store::AuthClient;
use gumcp_actors::config::{AuthBackend, AuthSettings};
use serde_json::{json, Value};
use wiremock::matchers::{header, header_regex, method, path, query_param};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const DATABASE: &str = "postgres://postgres@127.0.0.1:5432/test";
const KEYS: &str = "k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
const SHARED_KEYS: &str = "new:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// A schema of this test's own in database `test`, dropped when it goes out of scope.
struct Schema {
    name: String,
}

impl Schema {
    async fn new() -> Schema {
        let name = format!("gumcp_refresh_{}", uuid::Uuid::new_v4().simple());
        connect()
            .await
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .await
            .expect("a schema can be created");
        Schema { name }
    }

    fn url(&self) -> String {
        format!("{DATABASE}?options=-csearch_path%3D{}", self.name)
    }

    fn store(&self) -> PostgresStore {
        PostgresStore::from_settings(&AuthSettings {
            backend: AuthBackend::Postgres,
            database_url: Some(self.url()),
            encryption_keys: Some(KEYS.to_owned()),
            ..AuthSettings::default()
        })
        .expect("valid store settings")
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                connect()
                    .await
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                    .await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop schema {}", self.name);
        }
    }
}

async fn connect() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(DATABASE, tokio_postgres::NoTls)
        .await
        .expect("these tests need PostgreSQL at 127.0.0.1:5432, database `test`, trust auth");
    tokio::spawn(connection);
    client
}

/// Redis database `db` of the machines' Redis, this test's own (nothing is flushed: keys
/// differ per run where it matters, and a refresh lock left by an earlier run lapses).
fn redis_db(db: u8) -> String {
    format!("redis://127.0.0.1:6379/{db}")
}

/// The account and app in the store: alice's GitHub token expired, the app's token endpoint
/// at `provider`.
async fn expired_account(schema: &Schema, provider: &MockServer, refresh_token: &str) {
    let store = schema.store();
    let expired: Credentials = serde_json::from_value(json!({
        "access_token": "gho_expired", "refresh_token": refresh_token, "expires_at": 1_000
    }))
    .unwrap();
    store.save("github", "alice", &expired).await.unwrap();
    let app: OAuthApp = serde_json::from_value(json!({
        "client_id": "cid", "client_secret": "cs",
        "token_uri": format!("{}/token", provider.uri())
    }))
    .unwrap();
    store.write_app("github", &app, true).await.unwrap();
}

/// Three nodes on `redis`, the credential store in `schema`, GitHub's API at `api`.
async fn three_nodes(
    root: &std::path::Path,
    schema: &Schema,
    redis: &str,
    api: &str,
    lock_ms: &str,
) -> Vec<Served> {
    std::fs::write(root.join("keys"), format!("{KEYS}\n")).unwrap();
    let config = root.join("gumcp.toml");
    std::fs::write(
        &config,
        format!(
            "[servers.base_urls]\ngithub = \"{api}\"\n\
             [auth]\nbackend = \"postgres\"\ndatabase_url = \"{}\"\n\
             encryption_keys_file = \"keys\"\n\
             [runtime]\nmax_in_flight_per_user = 3000\n",
            schema.url()
        ),
    )
    .unwrap();
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let mut nodes = Vec::new();
    for name in ["a", "b", "c"] {
        let id = format!("{name}-{run}");
        nodes.push(
            common::serve(
                Some(&config),
                &[
                    ("GUMCP__CLUSTER__REDIS_URL", redis),
                    ("GUMCP__CLUSTER__NODE_ID", &id),
                    ("GUMCP__CLUSTER__SHARED_KEYS", SHARED_KEYS),
                    ("GUMCP__CLUSTER__REFRESH_LOCK_MS", lock_ms),
                ],
            )
            .await,
        );
    }
    members_seen(&nodes, 3).await;
    nodes
}

/// Waits until every node's `/health_check` lists `count` members.
async fn members_seen(nodes: &[Served], count: usize) {
    let client = common::http_client();
    for node in nodes {
        let mut seen = 0;
        for _ in 0..100 {
            let health: Value = client
                .get(format!("{}/health_check", node.url))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            seen = health["cluster"]["members"].as_array().map_or(0, Vec::len);
            if seen == count {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(seen, count, "{} sees every member", node.url);
    }
}

/// GitHub's repository search, answering only the bearer of a token matching `token`.
async fn mount_search(api: &MockServer, token: &str) {
    Mock::given(method("GET"))
        .and(path("/search/repositories"))
        .and(query_param("q", "mcp"))
        .and(header_regex("authorization", token))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "total_count": 1, "items": [{ "full_name": "octo/mcp", "stargazers_count": 7 }]
        })))
        .mount(api)
        .await;
}

/// One 2026-07-28 `search_repositories` call of alice on `base`: whether it succeeded, and the
/// answer (or the transport error) for the failure message.
async fn search(client: &reqwest::Client, base: &str) -> Result<(), String> {
    let sent = common::stateless_call(
        client,
        &format!("{base}/github/alice/mcp"),
        "search_repositories",
        json!({ "query": "mcp", "max_limit": 1 }),
        modern_meta(),
    )
    .timeout(Duration::from_secs(60))
    .send()
    .await
    .map_err(|err| err.to_string())?;
    let answer: Value = sent.json().await.map_err(|err| err.to_string())?;
    let found = answer["result"]["content"][0]["text"]
        .as_str()
        .is_some_and(|text| text.contains("octo/mcp"));
    if answer["result"]["isError"] == false && found {
        Ok(())
    } else {
        Err(answer.to_string())
    }
}

/// A form field of a token request.
fn field(request: &Request, name: &str) -> Option<String> {
    form_urlencoded::parse(&request.body)
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

#[tokio::test]
async fn a_thousand_calls_over_three_nodes_make_one_token_request() {
    let schema = Schema::new().await;
    let redis = redis_db(9);
    let (provider, api) = (MockServer::start().await, MockServer::start().await);
    // Slow, so the calls on every node arrive while the refresh is under way.
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(wiremock::matchers::body_string_contains(
            "grant_type=refresh_token",
        ))
        .and(wiremock::matchers::body_string_contains(
            "refresh_token=ghr_first",
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({
                    "access_token": "gho_fresh", "refresh_token": "ghr_second",
                    "expires_in": 28800, "token_type": "bearer"
                }))
                .set_delay(Duration::from_millis(500)),
        )
        .expect(1)
        .mount(&provider)
        .await;
    mount_search(&api, "^Bearer gho_fresh$").await;
    expired_account(&schema, &provider, "ghr_first").await;
    let root = tempfile::tempdir().unwrap();
    let nodes = three_nodes(root.path(), &schema, &redis, &api.uri(), "10000").await;

    let client = common::http_client();
    let calls = (0..1000).map(|i| search(&client, &nodes[i % 3].url));
    let failed: Vec<String> = futures::future::join_all(calls)
        .await
        .into_iter()
        .filter_map(Result::err)
        .collect();
    assert!(
        failed.is_empty(),
        "{} failed: {:?}",
        failed.len(),
        &failed[..1]
    );
    provider.verify().await;
    let saved = schema
        .store()
        .credentials("github", "alice", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(saved.access_token.as_deref(), Some("gho_fresh"));
    assert_eq!(saved.refresh_token.as_deref(), Some("ghr_second"));
    for node in nodes {
        let logs = node.stop().await;
        assert!(
            !logs.contains("gho_fresh") && !logs.contains("ghr_"),
            "{logs}"
        );
    }
}

/// A token endpoint whose first answer never comes in time (the node asking is killed while
/// it waits); later ones come at once. Counts the requests.
struct StallsFirst {
    requests: Arc<AtomicUsize>,
}

impl Respond for StallsFirst {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let valid = field(request, "grant_type").as_deref() == Some("refresh_token")
            && field(request, "refresh_token").as_deref() == Some("ghr_first")
            && field(request, "client_id").as_deref() == Some("cid");
        if !valid {
            return ResponseTemplate::new(400).set_body_json(json!({ "error": "invalid_grant" }));
        }
        let answer = ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "gho_fresh", "expires_in": 28800, "token_type": "bearer"
        }));
        if self.requests.fetch_add(1, Ordering::SeqCst) == 0 {
            answer.set_delay(Duration::from_secs(120))
        } else {
            answer
        }
    }
}

#[tokio::test]
async fn the_lock_holder_killed_mid_refresh_leaves_one_more_refresh_to_another_node() {
    let schema = Schema::new().await;
    let redis = redis_db(10);
    let (provider, api) = (MockServer::start().await, MockServer::start().await);
    let requests = Arc::new(AtomicUsize::new(0));
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(StallsFirst {
            requests: requests.clone(),
        })
        .mount(&provider)
        .await;
    mount_search(&api, "^Bearer gho_fresh$").await;
    expired_account(&schema, &provider, "ghr_first").await;
    let root = tempfile::tempdir().unwrap();
    let mut nodes = three_nodes(root.path(), &schema, &redis, &api.uri(), "1500").await;
    let client = common::http_client();

    // Node a takes the lock and asks the provider, which keeps it waiting.
    let holder = {
        let (client, base) = (client.clone(), nodes[0].url.clone());
        tokio::spawn(async move { search(&client, &base).await })
    };
    for _ in 0..200 {
        if requests.load(Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(requests.load(Ordering::SeqCst), 1, "node a is refreshing");
    let (b, c) = (nodes[1].url.clone(), nodes[2].url.clone());
    let others: Vec<_> = (0..200)
        .map(|i| {
            let (client, base) = (client.clone(), if i % 2 == 0 { &b } else { &c }.clone());
            tokio::spawn(async move { search(&client, &base).await })
        })
        .collect();
    nodes[0].child.start_kill().expect("node a can be killed");
    assert!(
        holder.await.unwrap().is_err(),
        "the killed node's own call fails"
    );

    for call in others {
        let answered = tokio::time::timeout(WAIT * 3, call)
            .await
            .expect("no call hangs")
            .unwrap();
        assert_eq!(answered, Ok(()));
    }
    assert_eq!(
        requests.load(Ordering::SeqCst),
        2,
        "exactly one more refresh"
    );
    let saved = schema
        .store()
        .credentials("github", "alice", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(saved.access_token.as_deref(), Some("gho_fresh"));
}

/// A provider that rotates the refresh token at every refresh and refuses one presented
/// again (as strict providers do: reuse revokes the grant). Its tokens last one second, so
/// every round of calls refreshes again.
struct Rotating {
    state: Mutex<RotationState>,
}

struct RotationState {
    current: usize,
    presented: Vec<String>,
}

impl Respond for Rotating {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut state = self.state.lock().unwrap();
        let presented = field(request, "refresh_token").unwrap_or_default();
        state.presented.push(presented.clone());
        let valid = field(request, "grant_type").as_deref() == Some("refresh_token")
            && field(request, "client_id").as_deref() == Some("cid")
            && presented == format!("ghr_{}", state.current);
        if !valid {
            return ResponseTemplate::new(400).set_body_json(json!({ "error": "invalid_grant" }));
        }
        state.current += 1;
        ResponseTemplate::new(200)
            .set_body_json(json!({
                "access_token": format!("gho_{}", state.current),
                "refresh_token": format!("ghr_{}", state.current),
                "expires_in": 1, "token_type": "bearer"
            }))
            .set_delay(Duration::from_millis(50))
    }
}

#[tokio::test]
async fn a_rotating_refresh_token_is_never_presented_twice() {
    let schema = Schema::new().await;
    let redis = redis_db(12);
    let (provider, api) = (MockServer::start().await, MockServer::start().await);
    let rotating = Arc::new(Rotating {
        state: Mutex::new(RotationState {
            current: 0,
            presented: Vec::new(),
        }),
    });
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(SharedResponder(rotating.clone()))
        .mount(&provider)
        .await;
    mount_search(&api, "^Bearer gho_[0-9]+$").await;
    expired_account(&schema, &provider, "ghr_0").await;
    let root = tempfile::tempdir().unwrap();
    let nodes = three_nodes(root.path(), &schema, &redis, &api.uri(), "10000").await;
    let client = common::http_client();

    for round in 0..3 {
        if round > 0 {
            // The last round's token has expired by then: this round refreshes again.
            tokio::time::sleep(Duration::from_millis(1100)).await;
        }
        let calls = (0..60).map(|i| search(&client, &nodes[i % 3].url));
        let failed: Vec<String> = futures::future::join_all(calls)
            .await
            .into_iter()
            .filter_map(Result::err)
            .collect();
        assert!(
            failed.is_empty(),
            "{} failed: {:?}",
            failed.len(),
            &failed[..1]
        );
    }
    let (current, presented) = {
        let state = rotating.state.lock().unwrap();
        (state.current, state.presented.clone())
    };
    let mut seen = std::collections::HashSet::new();
    for token in &presented {
        assert!(seen.insert(token), "{token} presented twice: {presented:?}");
    }
    assert!(current >= 3, "{presented:?}");
    let saved = schema
        .store()
        .credentials("github", "alice", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        saved.refresh_token,
        Some(format!("ghr_{current}")),
        "the last rotated token is the one stored"
    );
}

/// Lets the test read the responder's state while wiremock holds it.
struct SharedResponder(Arc<Rotating>);

impl Respond for SharedResponder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        self.0.respond(request)
    }
}

/// The store's side of fencing: a refresh saved with a fence at or below the last one saved is
/// refused and changes nothing, and a disconnected account is not brought back by one.
#[tokio::test]
async fn the_store_refuses_a_stale_fence_and_keeps_what_a_later_holder_saved() {
    let schema = Schema::new().await;
    let store = schema.store();
    let token = |access: &str| -> Credentials {
        serde_json::from_value(json!({ "access_token": access, "refresh_token": "r" })).unwrap()
    };
    store
        .save("github", "alice", &token("first"))
        .await
        .unwrap();
    assert_eq!(store.refresh_fence("github", "alice").await.unwrap(), 0);
    assert!(store
        .save_fenced("github", "alice", &token("later"), 7)
        .await
        .unwrap());
    assert_eq!(store.refresh_fence("github", "alice").await.unwrap(), 7);
    for stale in [7, 3] {
        assert!(!store
            .save_fenced("github", "alice", &token("stale"), stale)
            .await
            .unwrap());
    }
    let kept = store.credentials("github", "alice", None).await.unwrap();
    assert_eq!(kept.unwrap().access_token.as_deref(), Some("later"));
    store.delete("github", "alice").await.unwrap();
    assert!(!store
        .save_fenced("github", "alice", &token("late"), 9)
        .await
        .unwrap());
    assert_eq!(
        store.credentials("github", "alice", None).await.unwrap(),
        None
    );
}

/// A `redis-server` of this test's own on a free port, without persistence.
struct OwnRedis {
    child: tokio::process::Child,
}

impl OwnRedis {
    async fn start(port: u16) -> OwnRedis {
        let child = tokio::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server starts");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return OwnRedis { child };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server did not listen on {port}");
    }

    async fn stop(mut self) {
        self.child.kill().await.expect("redis-server stops");
    }
}

/// Without Redis no node refreshes (it could not take the account's turn): an expired token
/// is a tool error saying to retry, and nothing reaches the provider; once Redis is back the
/// next call refreshes, once.
#[tokio::test]
async fn without_redis_no_refresh_is_made_and_the_call_says_to_retry() {
    let schema = Schema::new().await;
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let redis = OwnRedis::start(port).await;
    let (provider, api) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(wiremock::matchers::body_string_contains(
            "grant_type=refresh_token",
        ))
        .and(wiremock::matchers::body_string_contains(
            "refresh_token=ghr_first",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "gho_fresh", "expires_in": 28800, "token_type": "bearer"
        })))
        .expect(1)
        .mount(&provider)
        .await;
    mount_search(&api, "^Bearer gho_fresh$").await;
    expired_account(&schema, &provider, "ghr_first").await;
    let root = tempfile::tempdir().unwrap();
    let url = format!("redis://127.0.0.1:{port}");
    let nodes = three_nodes(root.path(), &schema, &url, &api.uri(), "10000").await;
    let client = common::http_client();

    redis.stop().await;
    let refused = search(&client, &nodes[1].url).await.unwrap_err();
    assert!(refused.contains("retry shortly"), "{refused}");
    assert!(!refused.contains("redis://"), "{refused}");
    let asked = provider.received_requests().await.unwrap_or_default();
    assert!(asked.is_empty(), "no refresh without the lock");

    let _redis = OwnRedis::start(port).await;
    let mut recovered = Err(String::new());
    for _ in 0..50 {
        recovered = search(&client, &nodes[1].url).await;
        if recovered.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(recovered, Ok(()));
    provider.verify().await;
}

/// An account connected again in a cluster takes a fence above every refresh lock handed out
/// before: a node that was refreshing with the old grant cannot save over the new one.
#[actix_rt::test]
async fn a_new_connection_outfences_a_refresh_begun_with_the_old_grant() {
    use gumcp_actors::actors::auth::{AuthActor, AuthHandle, Connect, Connection};
    use gumcp_actors::cluster::refresh_lock::RefreshAccount;
    use gumcp_actors::cluster::Cluster;
    use gumcp_actors::config::ClusterSettings;

    let schema = Schema::new().await;
    let user = format!("carol{}", uuid::Uuid::new_v4().simple());
    let store = Arc::new(schema.store());
    let old: Credentials =
        serde_json::from_value(json!({ "access_token": "old", "refresh_token": "r_old" })).unwrap();
    store.save("github", &user, &old).await.unwrap();
    let cluster = Arc::new(
        Cluster::from_settings(&ClusterSettings {
            redis_url: Some(redis_db(12)),
            node_id: Some("connector".to_owned()),
            ..ClusterSettings::default()
        })
        .unwrap(),
    );
    // Another node is refreshing with the old grant.
    let account = RefreshAccount::new("github", &user, None);
    let refreshing = cluster
        .try_refresh_lock(&account, 0)
        .await
        .unwrap()
        .expect("the lock is free");

    gumcp_actors::upstream::install_crypto_provider();
    let client = gumcp_actors::upstream::client(Duration::from_secs(5)).unwrap();
    let auth = AuthHandle::start(
        AuthActor::new(store.clone(), client, 1 << 20, Default::default(), 60)
            .in_cluster(Some(cluster.clone())),
    );
    auth.connect(Connect {
        service: Arc::from("github"),
        user: Arc::from(user.as_str()),
        connection: Connection::ApiKey("new-key".into()),
    })
    .await
    .unwrap();

    let late: Credentials =
        serde_json::from_value(json!({ "access_token": "late", "refresh_token": "r_late" }))
            .unwrap();
    let saved = store
        .save_fenced("github", &user, &late, refreshing.fence())
        .await
        .unwrap();
    assert!(!saved, "the refresh begun with the old grant is refused");
    let kept = store.credentials("github", &user, None).await.unwrap();
    assert_eq!(kept.unwrap().api_key.as_deref(), Some("new-key"));
    refreshing.release().await;
}
