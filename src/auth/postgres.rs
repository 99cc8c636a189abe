//! Credentials in PostgreSQL (`auth.backend = "postgres"`), for a service that runs on more
//! than one machine or keeps its accounts in a database it already backs up.
//!
//! Two tables, created by the migrations in `migrations/postgres/` when the store is first
//! used (under an advisory lock, so nodes starting together do not race):
//! `gumcp_credentials` (a row per service and user) and `gumcp_oauth_apps` (a row per
//! service). What a row holds — the credentials or the OAuth app in guMCP's JSON shape, so
//! whatever the local store keeps is kept here too — is sealed with AES-256-GCM under the first
//! configured key, with a fresh random nonce per write; the key's id is stored beside it, so a
//! new key can be put first while the old ones still open older rows, and `auth rekey` moves
//! every row to the newest key. The sealed bytes are bound to their row (service and user are
//! the associated data): a row copied over another user's does not open. Only the expiry is
//! kept in the clear, for operators.
//!
//! A write replaces the whole row in one statement, so concurrent writers of one account leave
//! the last one's credentials, never a mix. Reads and writes that cannot reach the database
//! are [`AuthError::StoreUnavailable`]; errors never show the database URL.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use aes_gcm::aead::{Aead, Generate, KeyInit, Nonce, Payload};
use aes_gcm::Aes256Gcm;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use futures::future::BoxFuture;
use futures::FutureExt;
use tokio::sync::OnceCell;

use super::credentials::{Credentials, OAuthApp};
use super::local::LocalStore;
use super::principal::PresentedKey;
use super::store::{AuthClient, AuthError};
use crate::config::{AuthSettings, ConfigError, EncryptionKey};
use crate::ids;

/// Connections kept at most: credential lookups are short, and most are answered from the
/// auth actor's cache.
const POOL_SIZE: usize = 16;

/// How long a lookup waits for a connection (or to open one) before the store counts as
/// unavailable: a database that is down answers with an error, not a hang.
const CONNECT_WAIT: Duration = Duration::from_secs(5);

/// How long a health check waits for `SELECT 1`: a probe must answer well inside a load
/// balancer's own timeout even when the database hangs.
const HEALTH_WAIT: Duration = Duration::from_secs(1);

/// Rows re-encrypted per query by `rekey`.
const REKEY_BATCH: i64 = 200;

/// The schema, in order; refinery records which have run in `gumcp_schema_history`.
const MIGRATIONS: [(&str, &str); 2] = [
    (
        "V1__credentials",
        include_str!("../../migrations/postgres/V1__credentials.sql"),
    ),
    (
        "V2__refresh_fence",
        include_str!("../../migrations/postgres/V2__refresh_fence.sql"),
    ),
];

/// Where the sealed bytes of a credentials row belong: the row's service and user.
fn credentials_context(service: &str, user: &str) -> Vec<u8> {
    format!("gumcp-actors credentials\0{service}\0{user}").into_bytes()
}

/// Where the sealed bytes of an OAuth app row belong: the row's service.
fn app_context(service: &str) -> Vec<u8> {
    format!("gumcp-actors oauth app\0{service}").into_bytes()
}

/// The configured keys: the first seals, any of them opens what it sealed.
struct Keyring {
    keys: Vec<(String, Aes256Gcm)>,
}

/// Bytes sealed under one key.
struct Sealed {
    key_id: String,
    nonce: Vec<u8>,
    ciphertext: Vec<u8>,
}

/// Why a row could not be opened.
enum OpenError {
    /// Its key id is not among the configured keys.
    UnknownKey(String),
    /// The key is known but the bytes do not open under it (altered, or moved from another row).
    Corrupt(String),
}

impl Keyring {
    fn new(keys: &[EncryptionKey]) -> Keyring {
        Keyring {
            keys: keys
                .iter()
                .map(|key| (key.id.clone(), Aes256Gcm::new(&key.bytes.into())))
                .collect(),
        }
    }

    fn current_id(&self) -> &str {
        self.keys.first().map_or("", |(id, _)| id)
    }

    fn seal(&self, plaintext: &[u8], context: &[u8]) -> Result<Sealed, AuthError> {
        let Some((key_id, cipher)) = self.keys.first() else {
            return Err(AuthError::Store("no encryption key is configured".into()));
        };
        let nonce = Nonce::<Aes256Gcm>::try_generate()
            .map_err(|err| AuthError::Store(format!("no random nonce could be drawn: {err}")))?;
        let ciphertext = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            .map_err(|_| AuthError::Store("the credentials could not be encrypted".into()))?;
        Ok(Sealed {
            key_id: key_id.clone(),
            nonce: nonce.to_vec(),
            ciphertext,
        })
    }

    fn open(
        &self,
        key_id: &str,
        nonce: &[u8],
        ciphertext: &[u8],
        context: &[u8],
    ) -> Result<Vec<u8>, OpenError> {
        let Some((_, cipher)) = self.keys.iter().find(|(id, _)| id == key_id) else {
            return Err(OpenError::UnknownKey(key_id.to_owned()));
        };
        let nonce = Nonce::<Aes256Gcm>::try_from(nonce)
            .map_err(|_| OpenError::Corrupt(key_id.to_owned()))?;
        cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad: context,
                },
            )
            .map_err(|_| OpenError::Corrupt(key_id.to_owned()))
    }
}

impl OpenError {
    /// What to tell about the row of `what` (e.g. "the github credentials of user alice").
    fn into_auth_error(self, what: &str) -> AuthError {
        AuthError::Store(match self {
            OpenError::UnknownKey(id) => format!(
                "{what} are encrypted under key `{id}`, which is not configured: add it back to \
                 auth.encryption_keys (after the current key) and run `gumcp-actors auth rekey`, \
                 or connect the account again"
            ),
            OpenError::Corrupt(id) => format!(
                "{what} do not decrypt under key `{id}`: the row was altered, or the key with \
                 that id is not the one it was written with"
            ),
        })
    }
}

/// A PostgreSQL error as the store reports it: the database out of reach is
/// `StoreUnavailable` (worth retrying); anything it answered is a `Store` error.
fn query_failed(err: tokio_postgres::Error) -> AuthError {
    match err.as_db_error() {
        Some(db) => AuthError::Store(format!("PostgreSQL refused a query: {}", db.message())),
        None => AuthError::StoreUnavailable(format!("PostgreSQL did not answer: {err}")),
    }
}

fn pool_failed(err: deadpool_postgres::PoolError) -> AuthError {
    match err {
        deadpool_postgres::PoolError::Backend(err) => match err.as_db_error() {
            Some(db) => AuthError::Store(format!(
                "PostgreSQL refused the connection: {}",
                db.message()
            )),
            None => AuthError::StoreUnavailable(format!("PostgreSQL cannot be reached: {err}")),
        },
        other => AuthError::StoreUnavailable(format!("PostgreSQL cannot be reached: {other}")),
    }
}

/// What `rekey` did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RekeyReport {
    /// The key everything is now under.
    pub key_id: String,
    pub credentials: usize,
    pub apps: usize,
    /// Rows left as they were, by the key id they are under: keys no longer configured, or
    /// rows that do not open.
    pub unreadable: BTreeMap<String, usize>,
}

/// What `import` did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub credentials: usize,
    pub apps: usize,
    /// Accounts and apps already in the database, left as they are (without `replace`).
    pub kept: usize,
    /// Files that could not be read, with why.
    pub skipped: Vec<String>,
}

pub struct PostgresStore {
    pool: Pool,
    keys: Keyring,
    /// Host and database, for the `auth` command to say where credentials go.
    shown: String,
    migrated: OnceCell<()>,
}

impl PostgresStore {
    /// The store `settings` describe. Nothing is connected yet: the first use connects and
    /// migrates, so a database that is down at start only delays the first lookup.
    pub fn from_settings(settings: &AuthSettings) -> Result<PostgresStore, ConfigError> {
        let url = settings.database_url.as_deref().unwrap_or_default();
        // tokio-postgres' message could quote part of the URL, password included: not shown.
        let mut config =
            tokio_postgres::Config::from_str(url).map_err(|_| ConfigError::Invalid {
                key: "auth.database_url",
                value: "(not shown)".to_owned(),
                allowed: "must be a PostgreSQL connection URL: postgres://user:password@host:port/database",
            })?;
        if matches!(
            config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        ) {
            return Err(ConfigError::Invalid {
                key: "auth.database_url",
                value: "(sslmode=require)".to_owned(),
                allowed: "TLS to PostgreSQL is not built in yet: reach the database over a \
                          private network or loopback, without sslmode=require",
            });
        }
        config.connect_timeout(CONNECT_WAIT);
        if config.get_application_name().is_none() {
            config.application_name("gumcp-actors");
        }
        let shown = shown_address(&config);
        let manager = Manager::from_config(
            config,
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .wait_timeout(Some(CONNECT_WAIT))
            .create_timeout(Some(CONNECT_WAIT))
            .recycle_timeout(Some(CONNECT_WAIT))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|_| ConfigError::Invalid {
                key: "auth.database_url",
                value: "(not shown)".to_owned(),
                allowed: "could not make a connection pool of it",
            })?;
        Ok(PostgresStore {
            pool,
            keys: Keyring::new(&settings.encryption_keys()?),
            shown,
            migrated: OnceCell::new(),
        })
    }

    /// Where the rows are: host and database, never a user or password.
    pub fn location_of_rows(&self) -> &str {
        &self.shown
    }

    /// A connection to a database whose schema is up to date (migrated once per process).
    async fn connection(&self) -> Result<deadpool_postgres::Object, AuthError> {
        self.migrated.get_or_try_init(|| self.migrate()).await?;
        self.pool.get().await.map_err(pool_failed)
    }

    async fn migrate(&self) -> Result<(), AuthError> {
        let mut client = self.pool.get().await.map_err(pool_failed)?;
        let migrations = MIGRATIONS
            .iter()
            .map(|(name, sql)| refinery::Migration::unapplied(name, sql))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| AuthError::Store(format!("a migration is malformed: {err}")))?;
        // A node of an older release still works with a schema a newer one has moved on
        // (migrations only add): rolling upgrades need no downtime.
        let mut runner = refinery::Runner::new(&migrations).set_abort_missing(false);
        runner.set_migration_table_name("gumcp_schema_history");
        // One migrating process per schema at a time; the lock goes with the session.
        client
            .batch_execute(
                "SELECT pg_advisory_lock(hashtext(current_schema() || '.gumcp_schema_history'))",
            )
            .await
            .map_err(query_failed)?;
        let migrated = runner.run_async(&mut **client).await;
        let unlocked = client
            .batch_execute("SELECT pg_advisory_unlock_all()")
            .await
            .map_err(query_failed);
        migrated.map_err(|err| {
            AuthError::Store(format!(
                "the PostgreSQL schema could not be brought up to date: {err}"
            ))
        })?;
        unlocked
    }

    async fn read_credentials(
        &self,
        service: &str,
        user: &str,
    ) -> Result<Option<Credentials>, AuthError> {
        ids::validate_server_name(service)?;
        ids::validate_user_id(user)?;
        let client = self.connection().await?;
        let statement = client
            .prepare_cached(
                "SELECT key_id, nonce, ciphertext FROM gumcp_credentials \
                 WHERE service = $1 AND user_id = $2",
            )
            .await
            .map_err(query_failed)?;
        let row = client
            .query_opt(&statement, &[&service, &user])
            .await
            .map_err(query_failed)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let what = format!("the {service} credentials of user {user}");
        let plain = self
            .keys
            .open(
                row.get(0),
                row.get(1),
                row.get(2),
                &credentials_context(service, user),
            )
            .map_err(|err| err.into_auth_error(&what))?;
        parse(&plain, &what).map(Some)
    }

    /// `credentials` encrypted for the row of (`service`, `user`), once both ids are checked.
    fn sealed_row(
        &self,
        service: &str,
        user: &str,
        credentials: &Credentials,
    ) -> Result<Sealed, AuthError> {
        ids::validate_server_name(service)?;
        ids::validate_user_id(user)?;
        let plain =
            serde_json::to_vec(credentials).map_err(|err| AuthError::Store(err.to_string()))?;
        self.keys.seal(&plain, &credentials_context(service, user))
    }

    /// Stores `credentials`; with `replace` false, only if the account has none yet. Whether
    /// the row was written.
    pub async fn write_credentials(
        &self,
        service: &str,
        user: &str,
        credentials: &Credentials,
        replace: bool,
    ) -> Result<bool, AuthError> {
        let sealed = self.sealed_row(service, user, credentials)?;
        let on_conflict = if replace {
            "DO UPDATE SET key_id = excluded.key_id, nonce = excluded.nonce, \
             ciphertext = excluded.ciphertext, expires_at = excluded.expires_at, \
             updated_at = now()"
        } else {
            "DO NOTHING"
        };
        let client = self.connection().await?;
        let statement = client
            .prepare_cached(&format!(
                "INSERT INTO gumcp_credentials \
                 (service, user_id, key_id, nonce, ciphertext, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (service, user_id) {on_conflict}"
            ))
            .await
            .map_err(query_failed)?;
        let written = client
            .execute(
                &statement,
                &[
                    &service,
                    &user,
                    &sealed.key_id,
                    &sealed.nonce,
                    &sealed.ciphertext,
                    &credentials.expires_at,
                ],
            )
            .await
            .map_err(query_failed)?;
        Ok(written == 1)
    }

    /// The fence of the last fenced save of the account; 0 when there was none (or no row).
    async fn read_fence(&self, service: &str, user: &str) -> Result<i64, AuthError> {
        ids::validate_server_name(service)?;
        ids::validate_user_id(user)?;
        let client = self.connection().await?;
        let statement = client
            .prepare_cached(
                "SELECT refresh_fence FROM gumcp_credentials WHERE service = $1 AND user_id = $2",
            )
            .await
            .map_err(query_failed)?;
        let row = client
            .query_opt(&statement, &[&service, &user])
            .await
            .map_err(query_failed)?;
        Ok(row.map_or(0, |row| row.get(0)))
    }

    /// Replaces the account's credentials only if `fence` is greater than the row's (and there
    /// is a row: a disconnected account stays disconnected); whether it was written.
    async fn write_fenced(
        &self,
        service: &str,
        user: &str,
        credentials: &Credentials,
        fence: i64,
    ) -> Result<bool, AuthError> {
        let sealed = self.sealed_row(service, user, credentials)?;
        let client = self.connection().await?;
        let statement = client
            .prepare_cached(
                "UPDATE gumcp_credentials SET key_id = $3, nonce = $4, ciphertext = $5, \
                 expires_at = $6, refresh_fence = $7, updated_at = now() \
                 WHERE service = $1 AND user_id = $2 AND refresh_fence < $7",
            )
            .await
            .map_err(query_failed)?;
        let written = client
            .execute(
                &statement,
                &[
                    &service,
                    &user,
                    &sealed.key_id,
                    &sealed.nonce,
                    &sealed.ciphertext,
                    &credentials.expires_at,
                    &fence,
                ],
            )
            .await
            .map_err(query_failed)?;
        Ok(written == 1)
    }

    /// Deletes the account's row (a disconnect); whether there was one.
    async fn delete_credentials(&self, service: &str, user: &str) -> Result<bool, AuthError> {
        ids::validate_server_name(service)?;
        ids::validate_user_id(user)?;
        let client = self.connection().await?;
        let statement = client
            .prepare_cached("DELETE FROM gumcp_credentials WHERE service = $1 AND user_id = $2")
            .await
            .map_err(query_failed)?;
        let deleted = client
            .execute(&statement, &[&service, &user])
            .await
            .map_err(query_failed)?;
        Ok(deleted == 1)
    }

    async fn read_app(&self, service: &str) -> Result<Option<OAuthApp>, AuthError> {
        ids::validate_server_name(service)?;
        let client = self.connection().await?;
        let row = client
            .query_opt(
                "SELECT key_id, nonce, ciphertext FROM gumcp_oauth_apps WHERE service = $1",
                &[&service],
            )
            .await
            .map_err(query_failed)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let what = format!("the OAuth app settings of {service}");
        let plain = self
            .keys
            .open(row.get(0), row.get(1), row.get(2), &app_context(service))
            .map_err(|err| err.into_auth_error(&what))?;
        parse(&plain, &what).map(Some)
    }

    /// Stores the OAuth app of `service`; with `replace` false, only if it has none yet.
    /// Whether the row was written.
    pub async fn write_app(
        &self,
        service: &str,
        app: &OAuthApp,
        replace: bool,
    ) -> Result<bool, AuthError> {
        ids::validate_server_name(service)?;
        let plain = serde_json::to_vec(app).map_err(|err| AuthError::Store(err.to_string()))?;
        let sealed = self.keys.seal(&plain, &app_context(service))?;
        let on_conflict = if replace {
            "DO UPDATE SET key_id = excluded.key_id, nonce = excluded.nonce, \
             ciphertext = excluded.ciphertext, updated_at = now()"
        } else {
            "DO NOTHING"
        };
        let client = self.connection().await?;
        let written = client
            .execute(
                &format!(
                    "INSERT INTO gumcp_oauth_apps (service, key_id, nonce, ciphertext) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (service) {on_conflict}"
                ),
                &[&service, &sealed.key_id, &sealed.nonce, &sealed.ciphertext],
            )
            .await
            .map_err(query_failed)?;
        Ok(written == 1)
    }

    /// Re-encrypts every row that is not under the first configured key. A row written
    /// meanwhile is left to its writer (who used the first key); rows under keys no longer
    /// configured are counted, not touched.
    pub async fn rekey(&self) -> Result<RekeyReport, AuthError> {
        let client = self.connection().await?;
        let current = self.keys.current_id().to_owned();
        let mut report = RekeyReport {
            key_id: current.clone(),
            ..RekeyReport::default()
        };
        let mut after = (String::new(), String::new());
        loop {
            let rows = client
                .query(
                    "SELECT service, user_id, key_id, nonce, ciphertext FROM gumcp_credentials \
                     WHERE key_id <> $1 AND (service, user_id) > ($2, $3) \
                     ORDER BY service, user_id LIMIT $4",
                    &[&current, &after.0, &after.1, &REKEY_BATCH],
                )
                .await
                .map_err(query_failed)?;
            let Some(last) = rows.last() else { break };
            after = (last.get(0), last.get(1));
            for row in &rows {
                let (service, user, key_id): (&str, &str, &str) =
                    (row.get(0), row.get(1), row.get(2));
                let nonce: &[u8] = row.get(3);
                let context = credentials_context(service, user);
                let Ok(plain) = self.keys.open(key_id, nonce, row.get(4), &context) else {
                    *report.unreadable.entry(key_id.to_owned()).or_default() += 1;
                    continue;
                };
                let sealed = self.keys.seal(&plain, &context)?;
                let moved = client
                    .execute(
                        "UPDATE gumcp_credentials SET key_id = $1, nonce = $2, ciphertext = $3 \
                         WHERE service = $4 AND user_id = $5 AND key_id = $6 AND nonce = $7",
                        &[
                            &sealed.key_id,
                            &sealed.nonce,
                            &sealed.ciphertext,
                            &service,
                            &user,
                            &key_id,
                            &nonce,
                        ],
                    )
                    .await
                    .map_err(query_failed)?;
                report.credentials += usize::try_from(moved).unwrap_or(0);
            }
        }
        let rows = client
            .query(
                "SELECT service, key_id, nonce, ciphertext FROM gumcp_oauth_apps \
                 WHERE key_id <> $1",
                &[&current],
            )
            .await
            .map_err(query_failed)?;
        for row in &rows {
            let (service, key_id): (&str, &str) = (row.get(0), row.get(1));
            let nonce: &[u8] = row.get(2);
            let context = app_context(service);
            let Ok(plain) = self.keys.open(key_id, nonce, row.get(3), &context) else {
                *report.unreadable.entry(key_id.to_owned()).or_default() += 1;
                continue;
            };
            let sealed = self.keys.seal(&plain, &context)?;
            let moved = client
                .execute(
                    "UPDATE gumcp_oauth_apps SET key_id = $1, nonce = $2, ciphertext = $3 \
                     WHERE service = $4 AND key_id = $5 AND nonce = $6",
                    &[
                        &sealed.key_id,
                        &sealed.nonce,
                        &sealed.ciphertext,
                        &service,
                        &key_id,
                        &nonce,
                    ],
                )
                .await
                .map_err(query_failed)?;
            report.apps += usize::try_from(moved).unwrap_or(0);
        }
        Ok(report)
    }

    /// Copies every OAuth app and account of a `local_auth/` folder in; with `replace` false,
    /// what the database already has for an account or app is kept (it may be newer: a
    /// refreshed token).
    pub async fn import(
        &self,
        local: &LocalStore,
        replace: bool,
    ) -> Result<ImportReport, AuthError> {
        let listing = local.list()?;
        let mut report = ImportReport {
            skipped: listing.skipped,
            ..ImportReport::default()
        };
        for service in &listing.apps {
            match local.oauth_app(service).await {
                Ok(app) => {
                    if self.write_app(service, &app, replace).await? {
                        report.apps += 1;
                    } else {
                        report.kept += 1;
                    }
                }
                Err(err @ (AuthError::Store(_) | AuthError::NoOAuthApp { .. })) => {
                    report.skipped.push(err.to_string());
                }
                Err(err) => return Err(err),
            }
        }
        for (service, user) in &listing.accounts {
            match local.credentials(service, user, None).await {
                Ok(Some(credentials)) => {
                    if self
                        .write_credentials(service, user, &credentials, replace)
                        .await?
                    {
                        report.credentials += 1;
                    } else {
                        report.kept += 1;
                    }
                }
                Ok(None) => {}
                Err(err @ AuthError::Store(_)) => report.skipped.push(err.to_string()),
                Err(err) => return Err(err),
            }
        }
        Ok(report)
    }
}

/// Opened bytes as JSON of `T`; an error says where, never what (a value may be a token).
fn parse<T: serde::de::DeserializeOwned>(plain: &[u8], what: &str) -> Result<T, AuthError> {
    serde_json::from_slice(plain).map_err(|err| {
        AuthError::Store(format!(
            "{what} are not valid JSON (line {}, column {})",
            err.line(),
            err.column()
        ))
    })
}

/// `PostgreSQL at host:port/database`: where the rows go, without user or password.
fn shown_address(config: &tokio_postgres::Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .zip(config.get_ports().iter().chain(std::iter::repeat(&5432)))
        .map(|(host, port)| match host {
            tokio_postgres::config::Host::Tcp(name) => format!("{name}:{port}"),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    format!(
        "PostgreSQL at {}/{}",
        hosts.join(","),
        config.get_dbname().unwrap_or("(default database)")
    )
}

impl AuthClient for PostgresStore {
    fn reachable(&self) -> BoxFuture<'_, Option<bool>> {
        Box::pin(async {
            let ask = async {
                let client = self.pool.get().await.ok()?;
                client.simple_query("SELECT 1").await.ok()
            };
            let answered = tokio::time::timeout(HEALTH_WAIT, ask).await;
            Some(matches!(answered, Ok(Some(_))))
        })
    }

    fn credentials<'a>(
        &'a self,
        service: &'a str,
        user: &'a str,
        _caller_key: Option<&'a PresentedKey>,
    ) -> BoxFuture<'a, Result<Option<Credentials>, AuthError>> {
        self.read_credentials(service, user).boxed()
    }

    fn oauth_app<'a>(&'a self, service: &'a str) -> BoxFuture<'a, Result<OAuthApp, AuthError>> {
        async move {
            self.read_app(service)
                .await?
                .ok_or_else(|| AuthError::NoOAuthApp {
                    service: service.to_owned(),
                    detail: format!(
                        "put it in a local_auth folder as oauth_configs/{service}/oauth.json \
                         and copy it in with `gumcp-actors auth import --from <folder>`"
                    ),
                })
        }
        .boxed()
    }

    fn save<'a>(
        &'a self,
        service: &'a str,
        user: &'a str,
        credentials: &'a Credentials,
    ) -> BoxFuture<'a, Result<(), AuthError>> {
        async move {
            self.write_credentials(service, user, credentials, true)
                .await
                .map(|_| ())
        }
        .boxed()
    }

    fn delete<'a>(
        &'a self,
        service: &'a str,
        user: &'a str,
    ) -> BoxFuture<'a, Result<bool, AuthError>> {
        self.delete_credentials(service, user).boxed()
    }

    fn refresh_fence<'a>(
        &'a self,
        service: &'a str,
        user: &'a str,
    ) -> BoxFuture<'a, Result<i64, AuthError>> {
        self.read_fence(service, user).boxed()
    }

    fn save_fenced<'a>(
        &'a self,
        service: &'a str,
        user: &'a str,
        credentials: &'a Credentials,
        fence: i64,
    ) -> BoxFuture<'a, Result<bool, AuthError>> {
        self.write_fenced(service, user, credentials, fence).boxed()
    }

    fn connects_here(&self) -> bool {
        true
    }

    fn location(&self, service: &str, user: &str) -> String {
        format!(
            "{} (the {service} credentials of user {user}, encrypted under key `{}`)",
            self.shown,
            self.keys.current_id()
        )
    }

    fn refreshes_here(&self) -> bool {
        true
    }

    fn prepare(&self) -> BoxFuture<'_, Result<(), AuthError>> {
        async move { self.connection().await.map(|_| ()) }.boxed()
    }
}
