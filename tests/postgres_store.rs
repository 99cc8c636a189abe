//! The PostgreSQL credential store (`auth.backend = "postgres"`), against the PostgreSQL the
//! machine runs (127.0.0.1:5432, user postgres, trust auth, database `test`; README says it is
//! required). Each test works in a schema of its own, dropped at the end, so tests running side
//! by side never see each other's rows.
//!
//! Through the binary: `auth` saves an API key that `serve` then uses for a tool call;
//! `auth import` copies a `local_auth/` folder in and `serve` refreshes an imported token
//! (saving the rotated refresh token there); `auth rekey` moves rows to a new key; a database
//! that is down is a clear, retryable error that never shows the URL's password. At the store:
//! every credential shape round-trips as the local store gives it, no raw row holds a secret,
//! keys rotate, concurrent writers leave one whole write.

mod common;

use std::process::Stdio;
use std::sync::Arc;

use base64::Engine;
use common::{modern_meta, WAIT};
use gumcp_actors::auth::credentials::{Credentials, OAuthApp};
use gumcp_actors::auth::local::LocalStore;
use gumcp_actors::auth::postgres::PostgresStore;
use gumcp_actors::auth::store::{AuthClient, AuthError};
use gumcp_actors::config::{AuthBackend, AuthSettings};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use wiremock::matchers::{body_string_contains, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The database every test needs.
const DATABASE: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A schema of one test's own, dropped when it goes out of scope (a failing test too).
struct Schema {
    name: String,
}

impl Schema {
    async fn new() -> Schema {
        let name = format!("gumcp_test_{}", uuid::Uuid::new_v4().simple());
        let client = connect().await;
        client
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .await
            .expect("a schema can be created");
        Schema { name }
    }

    /// The database URL whose connections work in this schema.
    fn url(&self) -> String {
        format!("{DATABASE}?options=-csearch_path%3D{}", self.name)
    }

    /// The settings of a store in this schema with `keys` (`id:base64` entries).
    fn settings(&self, keys: &str) -> AuthSettings {
        AuthSettings {
            backend: AuthBackend::Postgres,
            database_url: Some(self.url()),
            encryption_keys: Some(keys.to_owned()),
            ..AuthSettings::default()
        }
    }

    fn store(&self, keys: &str) -> PostgresStore {
        PostgresStore::from_settings(&self.settings(keys)).expect("valid store settings")
    }

    /// Every row of `table`, each column as text (bytea in hex), and the raw ciphertexts.
    async fn raw(&self, table: &str) -> (Vec<String>, Vec<Vec<u8>>) {
        let client = connect().await;
        let rows = client
            .query(
                &format!("SELECT t::text, t.ciphertext FROM {}.{table} t", self.name),
                &[],
            )
            .await
            .unwrap();
        (
            rows.iter().map(|row| row.get(0)).collect(),
            rows.iter().map(|row| row.get(1)).collect(),
        )
    }

    /// (user_id, key_id) of every credentials row.
    async fn key_ids(&self) -> Vec<(String, String)> {
        let client = connect().await;
        let rows = client
            .query(
                &format!(
                    "SELECT user_id, key_id FROM {}.gumcp_credentials ORDER BY user_id",
                    self.name
                ),
                &[],
            )
            .await
            .unwrap();
        rows.iter().map(|row| (row.get(0), row.get(1))).collect()
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Dropped from a thread of its own: a test's runtime may be gone or busy here.
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

/// A plain connection to the test database, or a failure that says what is missing.
async fn connect() -> tokio_postgres::Client {
    let (client, connection) = match tokio_postgres::connect(DATABASE, tokio_postgres::NoTls).await
    {
        Ok(connected) => connected,
        Err(err) => panic!(
            "these tests need PostgreSQL at 127.0.0.1:5432 (user postgres without a password, \
             database `test`; README, \"Credentials in PostgreSQL\"): {err}"
        ),
    };
    tokio::spawn(connection);
    client
}

fn key(id: &str, byte: u8) -> String {
    format!(
        "{id}:{}",
        base64::engine::general_purpose::STANDARD.encode([byte; 32])
    )
}

fn credentials(value: Value) -> Credentials {
    serde_json::from_value(value).unwrap()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[tokio::test]
async fn every_credential_shape_round_trips_as_the_local_store_gives_it_and_no_row_holds_a_secret()
{
    let schema = Schema::new().await;
    let store = schema.store(&key("k1", 1));
    let local_root = tempfile::tempdir().unwrap();
    let local = LocalStore::new(local_root.path());
    let shapes = [
        // OAuth tokens with what providers add (Slack's team, scopes).
        (
            "slack",
            "alice",
            json!({ "access_token": "xoxp-secret-1", "refresh_token": "xoxe-secret-2",
                    "expires_at": 1_900_000_000, "token_type": "Bearer", "scope": "chat:write",
                    "team": { "id": "T1", "name": "Acme" } }),
        ),
        // An API key.
        ("perplexity", "alice", json!({ "api_key": "pplx-secret-3" })),
        // google-auth's shape as guMCP's Google servers write it.
        (
            "gmail",
            "bob",
            json!({ "token": "ya29.secret-4", "refresh_token": "1//secret-5",
                    "token_uri": "https://oauth2.googleapis.com/token", "client_id": "cid",
                    "client_secret": "secret-6", "scopes": ["s"],
                    "expiry": "2030-03-01T12:00:00.123456Z" }),
        ),
        // An access token alone; user ids differing only in case are different users.
        ("github", "Alice", json!({ "access_token": "gho-secret-7" })),
        (
            "github",
            "alice",
            json!({ "access_token": "gho-secret-8", "expires_at": "1900000000.5" }),
        ),
    ];
    for (service, user, file) in &shapes {
        store
            .save(service, user, &credentials(file.clone()))
            .await
            .unwrap();
        local
            .save(service, user, &credentials(file.clone()))
            .await
            .unwrap();
    }
    for (service, user, _) in &shapes {
        let from_postgres = store.credentials(service, user, None).await.unwrap();
        let from_files = local.credentials(service, user, None).await.unwrap();
        assert!(from_postgres.is_some(), "{service} {user}");
        assert_eq!(
            serde_json::to_value(&from_postgres).unwrap(),
            serde_json::to_value(&from_files).unwrap(),
            "{service} {user}"
        );
    }
    let github = store.credentials("github", "alice", None).await.unwrap();
    assert_eq!(github.unwrap().expires_at, Some(1_900_000_000));
    assert_eq!(
        store.credentials("github", "ALICE", None).await.unwrap(),
        None
    );

    let apps = [
        (
            "slack",
            json!({ "client_id": "slack-id", "client_secret": "app-secret-9",
                    "redirect_uri": "http://localhost:8080/", "token_url": "https://slack.test" }),
        ),
        (
            "gmail",
            json!({ "installed": { "client_id": "g.apps", "client_secret": "app-secret-10",
                    "redirect_uris": ["http://localhost"], "token_uri": "https://google.test" } }),
        ),
    ];
    for (service, file) in &apps {
        let app: OAuthApp = serde_json::from_value(file.clone()).unwrap();
        assert!(store.write_app(service, &app, true).await.unwrap());
        let back = store.oauth_app(service).await.unwrap();
        assert_eq!(
            serde_json::to_value(&back).unwrap(),
            serde_json::to_value(&app).unwrap()
        );
    }
    let missing = store.oauth_app("notion").await.unwrap_err();
    assert!(matches!(missing, AuthError::NoOAuthApp { .. }), "{missing}");
    assert!(missing.to_string().contains("auth import"), "{missing}");

    let secrets = (1..=10).map(|n| format!("secret-{n}"));
    let (credential_rows, credential_bytes) = schema.raw("gumcp_credentials").await;
    let (app_rows, app_bytes) = schema.raw("gumcp_oauth_apps").await;
    assert_eq!(credential_rows.len(), shapes.len());
    assert_eq!(app_rows.len(), apps.len());
    for secret in secrets {
        for row in credential_rows.iter().chain(&app_rows) {
            assert!(!row.contains(&secret), "{secret} in {row}");
            assert!(
                !row.contains(&hex::encode(&secret)),
                "{secret} in hex in {row}"
            );
        }
        for bytes in credential_bytes.iter().chain(&app_bytes) {
            assert!(!contains(bytes, &secret), "{secret} in a ciphertext");
        }
    }
    // Ids outside the rules never reach a query.
    assert!(matches!(
        store.credentials("github", "../alice", None).await,
        Err(AuthError::Id(_))
    ));
}

#[tokio::test]
async fn keys_rotate_rekey_moves_old_rows_and_a_removed_key_fails_clearly() {
    let schema = Schema::new().await;
    let token = |t: &str| Credentials {
        access_token: Some(t.into()),
        ..Credentials::default()
    };
    let old = schema.store(&key("k1", 1));
    old.save("github", "alice", &token("a1")).await.unwrap();
    old.save("github", "carol", &token("c1")).await.unwrap();
    let app: OAuthApp =
        serde_json::from_value(json!({ "client_id": "c", "client_secret": "s" })).unwrap();
    old.write_app("github", &app, true).await.unwrap();

    // The new key first, the old one still listed: old rows open, new writes use the new key.
    let rotating = schema.store(&format!("{},{}", key("k2", 2), key("k1", 1)));
    assert_eq!(
        rotating.credentials("github", "alice", None).await.unwrap(),
        Some(token("a1"))
    );
    rotating.save("github", "bob", &token("b2")).await.unwrap();
    assert_eq!(
        schema.key_ids().await,
        [
            ("alice".to_owned(), "k1".to_owned()),
            ("bob".to_owned(), "k2".to_owned()),
            ("carol".to_owned(), "k1".to_owned())
        ]
    );

    // Without the old key, its rows fail with a message that says what to do.
    let new_only = schema.store(&key("k2", 2));
    let err = new_only
        .credentials("github", "alice", None)
        .await
        .unwrap_err();
    let shown = err.to_string();
    assert!(matches!(err, AuthError::Store(_)), "{shown}");
    assert!(
        shown.contains("`k1`") && shown.contains("not configured") && shown.contains("rekey"),
        "{shown}"
    );

    let report = rotating.rekey().await.unwrap();
    assert_eq!((report.credentials, report.apps), (2, 1), "{report:?}");
    assert!(report.unreadable.is_empty(), "{report:?}");
    assert!(schema.key_ids().await.iter().all(|(_, id)| id == "k2"));
    // Now the old key can go.
    assert_eq!(
        new_only.credentials("github", "carol", None).await.unwrap(),
        Some(token("c1"))
    );
    assert_eq!(new_only.oauth_app("github").await.unwrap().client_id, "c");
    assert_eq!(rotating.rekey().await.unwrap().credentials, 0);

    // A row under a key nobody configured is counted by rekey and left as it is.
    old.save("github", "dave", &token("d1")).await.unwrap();
    let report = new_only.rekey().await.unwrap();
    assert_eq!(report.unreadable.get("k1"), Some(&1), "{report:?}");
    assert_eq!(report.credentials, 0);

    // A ciphertext moved to another user's row does not open there.
    connect()
        .await
        .batch_execute(&format!(
            "UPDATE {0}.gumcp_credentials SET key_id = b.key_id, nonce = b.nonce, \
             ciphertext = b.ciphertext FROM {0}.gumcp_credentials b \
             WHERE {0}.gumcp_credentials.user_id = 'alice' AND b.user_id = 'bob'",
            schema.name
        ))
        .await
        .unwrap();
    let moved = new_only
        .credentials("github", "alice", None)
        .await
        .unwrap_err()
        .to_string();
    assert!(moved.contains("do not decrypt"), "{moved}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_of_one_account_leave_one_whole_write() {
    let schema = Schema::new().await;
    let store = Arc::new(schema.store(&key("k1", 1)));
    let writers = (0..40).map(|n| {
        let store = store.clone();
        tokio::spawn(async move {
            let written = Credentials {
                access_token: Some(format!("access-{n}")),
                refresh_token: Some(format!("refresh-{n}")),
                expires_at: Some(2_000_000_000 + n),
                ..Credentials::default()
            };
            store.save("slack", "alice", &written).await.unwrap();
            // Whatever a reader sees meanwhile is one writer's whole credentials.
            let seen = store
                .credentials("slack", "alice", None)
                .await
                .unwrap()
                .unwrap();
            let access = seen.access_token.unwrap();
            let n = access.strip_prefix("access-").unwrap().to_owned();
            assert_eq!(seen.refresh_token, Some(format!("refresh-{n}")));
            assert_eq!(
                seen.expires_at,
                Some(2_000_000_000 + n.parse::<i64>().unwrap())
            );
        })
    });
    for writer in futures::future::join_all(writers).await {
        writer.unwrap();
    }
    let last = store
        .credentials("slack", "alice", None)
        .await
        .unwrap()
        .unwrap();
    let n = last
        .access_token
        .as_deref()
        .and_then(|t| t.strip_prefix("access-"))
        .unwrap()
        .to_owned();
    assert_eq!(last.refresh_token, Some(format!("refresh-{n}")));
    let (rows, _) = schema.raw("gumcp_credentials").await;
    assert_eq!(rows.len(), 1);
    // The clear expiry column belongs to the same write.
    assert!(rows[0].contains(&format!("{}", 2_000_000_000 + n.parse::<i64>().unwrap())));
}

#[tokio::test]
async fn many_stores_starting_together_migrate_once() {
    let schema = Schema::new().await;
    let stores: Vec<PostgresStore> = (0..4).map(|_| schema.store(&key("k1", 1))).collect();
    let prepared = futures::future::join_all(stores.iter().map(|store| store.prepare())).await;
    for result in prepared {
        result.unwrap();
    }
    let client = connect().await;
    let applied: i64 = client
        .query_one(
            &format!("SELECT count(*) FROM {}.gumcp_schema_history", schema.name),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(applied, 2, "each of the two migrations once");
    // A newer release migrated further: this one still works (rolling upgrades).
    client
        .batch_execute(&format!(
            "INSERT INTO {}.gumcp_schema_history (version, name, applied_on, checksum) \
             VALUES (3, 'from_a_newer_release', '2030-01-01T00:00:00Z', '1')",
            schema.name
        ))
        .await
        .unwrap();
    let older = schema.store(&key("k1", 1));
    older.prepare().await.unwrap();
    older
        .save("github", "alice", &Credentials::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_database_that_is_down_is_a_retryable_error_that_never_shows_the_password() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let settings = AuthSettings {
        backend: AuthBackend::Postgres,
        database_url: Some(format!(
            "postgres://gumcp:pw-never-shown@127.0.0.1:{port}/test"
        )),
        encryption_keys: Some(key("k1", 1)),
        ..AuthSettings::default()
    };
    let store = PostgresStore::from_settings(&settings).unwrap();
    let err = store
        .credentials("github", "alice", None)
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::StoreUnavailable(_)), "{err}");
    let shown = err.to_string();
    assert!(shown.contains("unavailable"), "{shown}");
    assert!(!shown.contains("pw-never-shown"), "{shown}");
    let location = store.location("github", "alice");
    assert!(
        location.contains(&format!("127.0.0.1:{port}/test")) && !location.contains("pw-never"),
        "{location}"
    );
    assert!(!format!("{settings:?}").contains("pw-never-shown"));
    assert!(!format!("{settings:?}").contains(&key("k1", 1)[3..]));

    // TLS is not built in: asking for it is a settings error, not an outage.
    let tls = AuthSettings {
        database_url: Some(format!(
            "postgres://gumcp:pw-never-shown@127.0.0.1:{port}/test?sslmode=require"
        )),
        ..settings.clone()
    };
    let refused = PostgresStore::from_settings(&tls)
        .err()
        .unwrap()
        .to_string();
    assert!(
        refused.contains("auth.database_url") && refused.contains("TLS"),
        "{refused}"
    );
    assert!(!refused.contains("pw-never-shown"), "{refused}");
}

/// A config file for the binary: the postgres backend in `schema`, keys from a file, the
/// servers' upstreams at `upstream` and `local_auth` beside it.
fn config(root: &std::path::Path, url: &str, keys: &str, upstream: &str) -> std::path::PathBuf {
    std::fs::write(root.join("keys"), format!("# newest first\n{keys}\n")).unwrap();
    let config = root.join("gumcp.toml");
    std::fs::write(
        &config,
        format!(
            "[servers.base_urls]\nperplexity = \"{upstream}\"\ngithub = \"{upstream}\"\n\
             [auth]\nbackend = \"postgres\"\ndatabase_url = \"{url}\"\n\
             encryption_keys_file = \"keys\"\nlocal_dir = \"local_auth\"\n"
        ),
    )
    .unwrap();
    config
}

/// Runs the binary with `args` and `stdin`; its output.
async fn run(config: &std::path::Path, args: &[&str], stdin: &str) -> std::process::Output {
    let mut child = Command::new(common::binary())
        .arg("--config")
        .arg(config)
        .args(args)
        .env("RUST_LOG", "warn")
        .env(
            "GUMCP__SERVERS__DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/servers"),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .expect("the command finishes in time")
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A 2026-07-28 `tools/call` through `serve`; the JSON-RPC answer.
async fn call(url: &str, server: &str, tool: &str, arguments: Value) -> Value {
    let client = common::http_client();
    common::stateless_call(
        &client,
        &format!("{url}/{server}/alice/mcp"),
        tool,
        arguments,
        modern_meta(),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap()
}

#[tokio::test]
async fn auth_saves_an_api_key_in_postgres_and_serve_calls_with_it() {
    let schema = Schema::new().await;
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/chat/completions"))
        .and(header("authorization", "Bearer pplx-from-auth"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "c1", "model": "sonar",
            "choices": [{ "index": 0, "message": { "role": "assistant", "content": "Hi!" } }]
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let config = config(root.path(), &schema.url(), &key("k1", 1), &upstream.uri());

    let output = run(
        &config,
        &["auth", "--server", "perplexity", "--user-id", "alice"],
        "pplx-from-auth\n",
    )
    .await;
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    assert!(
        stdout.contains("PostgreSQL at 127.0.0.1:5432/test") && stdout.contains("`k1`"),
        "{stdout}"
    );
    assert!(!stdout.contains("pplx-from-auth"), "{stdout}");
    let (rows, bytes) = schema.raw("gumcp_credentials").await;
    assert_eq!(rows.len(), 1);
    assert!(!rows[0].contains("pplx-from-auth") && !contains(&bytes[0], "pplx-from-auth"));

    let served = common::serve(Some(&config), &[]).await;
    let answer = call(
        &served.url,
        "perplexity",
        "chat",
        json!({ "message": "hello" }),
    )
    .await;
    assert_eq!(answer["result"]["isError"], false, "{answer}");
    assert_eq!(answer["result"]["content"][0]["text"], "Hi!", "{answer}");
    let logs = served.stop().await;
    assert!(!logs.contains("pplx-from-auth"), "{logs}");
    upstream.verify().await;
}

#[tokio::test]
async fn import_copies_local_auth_in_and_serve_saves_a_rotated_refresh_token_there() {
    let schema = Schema::new().await;
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=ghr_old"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "gho_fresh", "refresh_token": "ghr_rotated",
            "expires_in": 28800, "token_type": "bearer"
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    Mock::given(method("GET"))
        .and(path("/search/repositories"))
        .and(query_param("q", "mcp"))
        .and(header("authorization", "Bearer gho_fresh"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "total_count": 1, "items": [{ "full_name": "octo/mcp", "stargazers_count": 7 }]
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let config = config(root.path(), &schema.url(), &key("k1", 1), &upstream.uri());
    let local = LocalStore::new(root.path().join("local_auth"));
    local
        .save(
            "github",
            "alice",
            &credentials(
                json!({ "access_token": "gho_expired", "refresh_token": "ghr_old",
                                 "expires_at": 1_000, "scope": "repo" }),
            ),
        )
        .await
        .unwrap();
    local
        .save(
            "github",
            "Bob",
            &credentials(json!({ "access_token": "gho_bob" })),
        )
        .await
        .unwrap();
    local
        .save(
            "perplexity",
            "alice",
            &credentials(json!({ "api_key": "pplx-imported" })),
        )
        .await
        .unwrap();
    let app_dir = root.path().join("local_auth/oauth_configs/github");
    std::fs::create_dir_all(&app_dir).unwrap();
    std::fs::write(
        app_dir.join("oauth.json"),
        json!({ "client_id": "cid", "client_secret": "cs",
                "token_uri": format!("{}/token", upstream.uri()) })
        .to_string(),
    )
    .unwrap();
    let store = schema.store(&key("k1", 1));
    // Already in the database: kept unless --replace.
    store
        .save(
            "perplexity",
            "alice",
            &credentials(json!({ "api_key": "pplx-newer" })),
        )
        .await
        .unwrap();

    let output = run(&config, &["auth", "import"], "").await;
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    assert!(
        stdout.contains("Imported 2 accounts and 1 OAuth apps; kept 1"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("gho_") && !stdout.contains("pplx-"),
        "{stdout}"
    );
    let read = |user: &'static str, service: &'static str| store.credentials(service, user, None);
    assert_eq!(
        read("Bob", "github").await.unwrap().unwrap().access_token,
        Some("gho_bob".into())
    );
    assert_eq!(read("bob", "github").await.unwrap(), None);
    assert_eq!(
        read("alice", "perplexity").await.unwrap().unwrap().api_key,
        Some("pplx-newer".into())
    );
    assert_eq!(store.oauth_app("github").await.unwrap().client_id, "cid");

    let served = common::serve(Some(&config), &[]).await;
    let answer = call(
        &served.url,
        "github",
        "search_repositories",
        json!({ "query": "mcp", "max_limit": 1 }),
    )
    .await;
    assert_eq!(answer["result"]["isError"], false, "{answer}");
    assert!(
        answer["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("octo/mcp"),
        "{answer}"
    );
    served.stop().await;
    let saved = read("alice", "github").await.unwrap().unwrap();
    assert_eq!(saved.access_token.as_deref(), Some("gho_fresh"));
    assert_eq!(saved.refresh_token.as_deref(), Some("ghr_rotated"));
    upstream.verify().await;

    // --replace overwrites what the database had.
    let output = run(&config, &["auth", "import", "--replace"], "").await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        read("alice", "perplexity").await.unwrap().unwrap().api_key,
        Some("pplx-imported".into())
    );
}

#[tokio::test]
async fn rekey_through_the_binary_moves_rows_and_says_what_it_cannot_read() {
    let schema = Schema::new().await;
    let root = tempfile::tempdir().unwrap();
    let old = schema.store(&key("k1", 1));
    for user in ["alice", "bob"] {
        old.save(
            "perplexity",
            user,
            &credentials(json!({ "api_key": format!("pplx-{user}") })),
        )
        .await
        .unwrap();
    }
    let rotated = config(
        root.path(),
        &schema.url(),
        &format!("{}\n{}", key("k2", 2), key("k1", 1)),
        "http://127.0.0.1:9",
    );
    let output = run(&rotated, &["auth", "rekey"], "").await;
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    assert!(
        stdout.contains("Re-encrypted 2 accounts and 0 OAuth apps under key `k2`"),
        "{stdout}"
    );
    assert!(schema.key_ids().await.iter().all(|(_, id)| id == "k2"));

    // A row under a key that is gone: rekey says so and fails.
    old.save(
        "perplexity",
        "carol",
        &credentials(json!({ "api_key": "pplx-carol" })),
    )
    .await
    .unwrap();
    let new_only = config(
        root.path(),
        &schema.url(),
        &key("k2", 2),
        "http://127.0.0.1:9",
    );
    let output = run(&new_only, &["auth", "rekey"], "").await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("1 under key `k1`"), "{stderr}");

    // Not the postgres backend: a configuration error.
    let local = root.path().join("local.toml");
    std::fs::write(&local, "[auth]\nbackend = \"local\"\n").unwrap();
    let output = run(&local, &["auth", "rekey"], "").await;
    assert_eq!(output.status.code(), Some(78));
    assert!(text(&output.stderr).contains("auth.backend = \"postgres\""));
}

#[tokio::test]
async fn serve_answers_a_clear_retryable_error_while_postgres_is_down() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let root = tempfile::tempdir().unwrap();
    let config = config(
        root.path(),
        &format!("postgres://gumcp:pw-never-shown@127.0.0.1:{port}/test"),
        &key("k1", 1),
        "http://127.0.0.1:9",
    );
    let served = common::serve(Some(&config), &[]).await;
    let answer = call(
        &served.url,
        "perplexity",
        "chat",
        json!({ "message": "hello" }),
    )
    .await;
    let shown = answer.to_string();
    assert!(shown.contains("unavailable"), "{shown}");
    assert!(!shown.contains("pw-never-shown"), "{shown}");
    let logs = served.stop().await;
    assert!(!logs.contains("pw-never-shown"), "{logs}");
}

/// A TCP proxy to PostgreSQL that the test can take down (every connection cut, new ones
/// closed at once) and bring back, as an outage of the database looks to the service.
struct Outage {
    port: u16,
    up: Arc<std::sync::atomic::AtomicBool>,
    links: Arc<std::sync::Mutex<tokio::task::JoinSet<()>>>,
    accepting: tokio::task::JoinHandle<()>,
}

impl Outage {
    async fn start() -> Outage {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let links = Arc::new(std::sync::Mutex::new(tokio::task::JoinSet::new()));
        let accepting = tokio::spawn({
            let (up, links) = (up.clone(), links.clone());
            async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    if !up.load(std::sync::atomic::Ordering::SeqCst) {
                        continue;
                    }
                    links.lock().unwrap().spawn(async move {
                        if let Ok(mut database) =
                            tokio::net::TcpStream::connect("127.0.0.1:5432").await
                        {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut database).await;
                        }
                    });
                }
            }
        });
        Outage {
            port,
            up,
            links,
            accepting,
        }
    }

    fn set_up(&self, up: bool) {
        self.up.store(up, std::sync::atomic::Ordering::SeqCst);
        if !up {
            self.links.lock().unwrap().abort_all();
        }
    }
}

impl Drop for Outage {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_credentials_keep_serving_while_postgres_is_down_and_lookups_recover() {
    let schema = Schema::new().await;
    let outage = Outage::start().await;
    let upstream = MockServer::start().await;
    let refresh = |old: &str, access: &str, refresh: &str, lifetime: i64| {
        Mock::given(method("POST"))
            .and(path("/token"))
            .and(body_string_contains(format!("refresh_token={old}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "access_token": access, "refresh_token": refresh,
                "expires_in": lifetime, "token_type": "bearer"
            })))
            .expect(1)
    };
    // Good for two minutes: inside the refresh margin, so every lookup goes to the store.
    refresh("ghr_1", "gho_short", "ghr_2", 120)
        .mount(&upstream)
        .await;
    refresh("ghr_2", "gho_long", "ghr_3", 28800)
        .mount(&upstream)
        .await;
    let search = |token: &str, times: u64| {
        Mock::given(method("GET"))
            .and(path("/search/repositories"))
            .and(header("authorization", format!("Bearer {token}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "total_count": 1, "items": [{ "full_name": "octo/mcp", "stargazers_count": 7 }]
            })))
            .expect(times)
    };
    search("gho_short", 2).mount(&upstream).await;
    search("gho_long", 1).mount(&upstream).await;

    let store = schema.store(&key("k1", 1));
    store
        .save(
            "github",
            "alice",
            &credentials(json!({ "access_token": "gho_old", "refresh_token": "ghr_1",
                                 "expires_at": 1_000 })),
        )
        .await
        .unwrap();
    let app: OAuthApp = serde_json::from_value(json!({
        "client_id": "cid", "client_secret": "cs",
        "token_uri": format!("{}/token", upstream.uri())
    }))
    .unwrap();
    store.write_app("github", &app, true).await.unwrap();
    let root = tempfile::tempdir().unwrap();
    let proxied = format!(
        "postgres://postgres@127.0.0.1:{}/test?options=-csearch_path%3D{}",
        outage.port, schema.name
    );
    let config = config(root.path(), &proxied, &key("k1", 1), &upstream.uri());
    let served = common::serve(Some(&config), &[]).await;
    let search_call = || {
        call(
            &served.url,
            "github",
            "search_repositories",
            json!({ "query": "mcp", "max_limit": 1 }),
        )
    };

    let first = search_call().await;
    assert_eq!(first["result"]["isError"], false, "{first}");
    assert_store_health(&served, "up", 1).await;
    outage.set_up(false);
    let during = search_call().await;
    assert_eq!(during["result"]["isError"], false, "{during}");
    assert_store_health(&served, "down", 0).await;
    outage.set_up(true);
    let after = search_call().await;
    assert_eq!(after["result"]["isError"], false, "{after}");
    assert_store_health(&served, "up", 1).await;
    served.stop().await;
    let saved = store
        .credentials("github", "alice", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(saved.refresh_token.as_deref(), Some("ghr_3"));
    upstream.verify().await;
}

/// `/health_check` names the credential database as `status`, and `/metrics` agrees.
async fn assert_store_health(served: &common::Served, status: &str, gauge: u8) {
    let health: Value = reqwest::get(format!("{}/health_check", served.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        health["credential_store"],
        json!({ "backend": "postgres", "status": status }),
        "{health}"
    );
    let metrics = reqwest::get(&served.metrics_url)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = format!("gumcp_credential_store_up{{backend=\"postgres\"}} {gauge}");
    assert!(metrics.contains(&line), "{metrics}");
}

#[tokio::test]
async fn the_oauth_flow_of_auth_takes_its_app_from_postgres_and_saves_the_tokens_there() {
    use tokio::io::AsyncBufReadExt;
    let schema = Schema::new().await;
    let provider = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("grant_type=authorization_code"))
        .and(body_string_contains("code=the-code"))
        .and(body_string_contains("client_id=pg-cid"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "gho_connected", "refresh_token": "ghr_connected",
            "expires_in": 28800, "token_type": "bearer"
        })))
        .expect(1)
        .mount(&provider)
        .await;
    let root = tempfile::tempdir().unwrap();
    let manifest = root.path().join("servers/mockhub");
    std::fs::create_dir_all(&manifest).unwrap();
    std::fs::write(
        manifest.join("server.toml"),
        format!(
            "name = \"mockhub\"\ndescription = \"test\"\nversion = \"1\"\nkind = \"native\"\n\n\
             [auth]\nkind = \"oauth2\"\nscopes = [\"repo\"]\nprovider = \"github\"\n\
             authorize_url = \"{0}/authorize\"\ntoken_url = \"{0}/token\"\n",
            provider.uri()
        ),
    )
    .unwrap();
    let config = config(root.path(), &schema.url(), &key("k1", 1), &provider.uri());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = schema.store(&key("k1", 1));
    let app: OAuthApp = serde_json::from_value(json!({
        "client_id": "pg-cid", "client_secret": "pg-secret",
        "redirect_uri": format!("http://127.0.0.1:{port}/callback")
    }))
    .unwrap();
    store.write_app("mockhub", &app, true).await.unwrap();

    let mut child = Command::new(common::binary())
        .arg("--config")
        .arg(&config)
        .args([
            "auth",
            "--server",
            "mockhub",
            "--user-id",
            "alice",
            "--no-browser",
        ])
        .env("RUST_LOG", "warn")
        .env("GUMCP__SERVERS__DIR", root.path().join("servers"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut said = String::new();
    let url = tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            said.push_str(&line);
            said.push('\n');
            if line.starts_with("http") {
                return line;
            }
        }
        panic!("the command printed no URL: {said}");
    })
    .await
    .unwrap();
    assert!(said.contains("PostgreSQL at 127.0.0.1:5432/test"), "{said}");
    assert!(url.contains("client_id=pg-cid"), "{url}");
    let state = url
        .split(['?', '&'])
        .find_map(|pair| pair.strip_prefix("state="))
        .unwrap()
        .to_owned();
    let page = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let request = format!(
            "GET /callback?code=the-code&state={state} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).unwrap();
        let mut page = String::new();
        let _ = stream.read_to_string(&mut page);
        page
    })
    .await
    .unwrap();
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    let saved = store
        .credentials("mockhub", "alice", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(saved.access_token.as_deref(), Some("gho_connected"));
    assert_eq!(saved.refresh_token.as_deref(), Some("ghr_connected"));
    provider.verify().await;
}

/// `name="…" value="…"` of a page's form field.
fn field(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker).expect("the field is on the page") + marker.len();
    let end = page[start..].find('"').expect("the value ends") + start;
    page[start..end].replace("&amp;", "&")
}

#[tokio::test]
async fn the_connect_pages_save_into_postgres_and_disconnect_deletes_the_row() {
    let schema = Schema::new().await;
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/chat/completions"))
        .and(header("authorization", "Bearer pplx-from-page"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "c1", "model": "sonar",
            "choices": [{ "index": 0, "message": { "role": "assistant", "content": "Hi!" } }]
        })))
        .expect(1)
        .mount(&upstream)
        .await;
    let root = tempfile::tempdir().unwrap();
    let config = config(root.path(), &schema.url(), &key("k1", 1), &upstream.uri());
    let served = common::serve(Some(&config), &[]).await;

    // Not connected: the tool error carries the connect link.
    let first = call(
        &served.url,
        "perplexity",
        "chat",
        json!({ "message": "hi" }),
    )
    .await;
    assert_eq!(first["result"]["isError"], true, "{first}");
    let said = first["result"]["content"][0]["text"].as_str().unwrap();
    let start = said.find("http://").expect("a link in the tool error");
    let link = said[start..]
        .split(|c: char| c.is_whitespace() || c == ')')
        .next()
        .unwrap()
        .trim_end_matches('.');
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = browser.get(link).send().await.unwrap();
    assert_eq!(form.status(), 200);
    let form = form.text().await.unwrap();
    let token = field(&form, "t");
    let saved = browser
        .post(format!("{}/connect/perplexity", served.url))
        .form(&[
            ("t", token.as_str()),
            ("csrf", field(&form, "csrf").as_str()),
            ("api_key", "pplx-from-page"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), 200, "{}", saved.text().await.unwrap());
    let (rows, bytes) = schema.raw("gumcp_credentials").await;
    assert_eq!(rows.len(), 1);
    assert!(!rows[0].contains("pplx-from-page") && !contains(&bytes[0], "pplx-from-page"));

    let answer = call(
        &served.url,
        "perplexity",
        "chat",
        json!({ "message": "hi" }),
    )
    .await;
    assert_eq!(answer["result"]["content"][0]["text"], "Hi!", "{answer}");

    let list = format!("{}/connect?t={token}", served.url);
    let page = browser
        .get(list)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("class=\"connected\">Connected"), "{page}");
    let disconnect_csrf = {
        let form_at = page
            .find("action=\"/connect/perplexity/disconnect\"")
            .expect("a connected account offers a disconnect");
        field(&page[form_at..], "csrf")
    };
    let gone = browser
        .post(format!("{}/connect/perplexity/disconnect", served.url))
        .form(&[("t", token.as_str()), ("csrf", disconnect_csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 200, "{}", gone.text().await.unwrap());
    assert!(schema.raw("gumcp_credentials").await.0.is_empty());
    let again = call(
        &served.url,
        "perplexity",
        "chat",
        json!({ "message": "hi" }),
    )
    .await;
    assert_eq!(again["result"]["isError"], true, "{again}");
    let logs = served.stop().await;
    assert!(!logs.contains("pplx-from-page"), "{logs}");
    upstream.verify().await;
}
