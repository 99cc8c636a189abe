//! Settings: built-in defaults ← the config file ← environment (`GUMCP__SECTION__KEY`), read
//! once at start into one typed, validated [`Settings`]. The file is the one given
//! (`--config` or `GUMCP_CONFIG`), else the first of `./gumcp.toml` and the user's
//! `gumcp-actors/gumcp.toml` config file that exists ([`ConfigFile::find`]), so an installed
//! binary finds its settings from whatever folder it is started in.
//!
//! Unknown keys are refused rather than ignored, so a typo in a file or an environment variable
//! is reported instead of silently falling back to a default.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::protocol::meta::LogLevel;

/// The folder of this program's files inside the user's config and data folders.
const APP_DIR: &str = "gumcp-actors";

/// The config file's name, in the working folder and in the user's config folder.
const CONFIG_FILE: &str = "gumcp.toml";

/// The settings file to read and how it was found, which start-up logs say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFile {
    pub path: PathBuf,
    pub found: FoundBy,
}

/// How the config file was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FoundBy {
    /// `--config` or `GUMCP_CONFIG`: it must exist.
    Given,
    /// `./gumcp.toml`.
    WorkingFolder,
    /// `gumcp-actors/gumcp.toml` in the user's config folder (`$XDG_CONFIG_HOME`,
    /// `~/.config` on Linux).
    UserConfig,
}

impl std::fmt::Display for FoundBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FoundBy::Given => "given by --config or GUMCP_CONFIG",
            FoundBy::WorkingFolder => "found in the working folder",
            FoundBy::UserConfig => "found in the user's config folder",
        })
    }
}

impl ConfigFile {
    /// The file to read: `given` (from `--config` or `GUMCP_CONFIG`) as it is — a missing one
    /// is reported by [`Settings::load`] — else `./gumcp.toml`, else the user's
    /// `gumcp-actors/gumcp.toml`, whichever exists first; none means the built-in defaults.
    pub fn find(given: Option<&Path>) -> Option<ConfigFile> {
        if let Some(path) = given {
            return Some(ConfigFile {
                path: path.to_owned(),
                found: FoundBy::Given,
            });
        }
        let here = PathBuf::from(CONFIG_FILE);
        if here.is_file() {
            return Some(ConfigFile {
                path: here,
                found: FoundBy::WorkingFolder,
            });
        }
        let user = dirs::config_dir()?.join(APP_DIR).join(CONFIG_FILE);
        user.is_file().then_some(ConfigFile {
            path: user,
            found: FoundBy::UserConfig,
        })
    }
}

/// Why the settings could not be loaded; each variant names the key or file at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path} does not exist")]
    MissingFile { path: PathBuf },
    #[error("could not load settings: {0}")]
    Load(#[from] config::ConfigError),
    #[error("cannot read the file of `{key}`, {path}: {source}")]
    Unreadable {
        key: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid setting `{key}` = {value}: {allowed}")]
    Invalid {
        key: &'static str,
        value: String,
        allowed: &'static str,
    },
    /// Settings that failed with a file nobody named (found in the working or the user's
    /// folder): the message says which one was read, since the user may not know it is there.
    #[error("{source} (settings read from {path}, {found}, and GUMCP__ variables)")]
    InFoundFile {
        path: PathBuf,
        found: FoundBy,
        source: Box<ConfigError>,
    },
}

/// Every setting the runtime has. `config/gumcp.toml` documents each one.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub servers: ServersSettings,
    pub runtime: RuntimeSettings,
    pub protocol: ProtocolSettings,
    pub stdio: StdioSettings,
    pub http: HttpSettings,
    pub access: AccessSettings,
    pub auth: AuthSettings,
    pub logging: LoggingSettings,
    pub telemetry: TelemetrySettings,
    pub audit: AuditSettings,
    pub tasks: TaskSettings,
    pub hosted: HostedSettings,
    pub cluster: ClusterSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServersSettings {
    /// Folder holding one sub-folder per server, each adding a server to the built-in ones or
    /// replacing the built-in one of its name. Relative paths are taken from the config file's
    /// folder; unset means `./servers` when there is one (a checkout, or a project laid out
    /// like one), else the built-in servers alone ([`Settings::servers_dir`]).
    pub dir: Option<PathBuf>,
    /// Per `http` server: a base URL replacing its manifest's (a proxy, a test double).
    pub base_urls: std::collections::BTreeMap<String, String>,
    /// The longest `Retry-After` (seconds) an `http` server waits out before retrying once;
    /// longer ones become a tool error saying when to retry.
    pub max_retry_wait_secs: u64,
    /// The largest upstream answer body read (servers' APIs, token endpoints, the credentials
    /// API): all users share the process's memory, so one huge answer must not take it.
    pub max_response_bytes: usize,
    /// Whether a tool that fetches a file the user names by URL (gdrive's `replace_file`) may
    /// fetch it from a loopback, private or link-local address. Off: on a shared host such a
    /// URL would reach the host's own network (tests and single-user setups turn it on).
    pub fetch_private_urls: bool,
    /// The folder whose files tools that read or write files of this machine (onedrive's
    /// `upload_file` and `download_file`) may use; their paths are taken inside it. Unset:
    /// those tools refuse, as a shared host's files are nobody's to upload.
    pub local_files_dir: Option<PathBuf>,
}

impl Default for ServersSettings {
    fn default() -> Self {
        ServersSettings {
            dir: None,
            base_urls: Default::default(),
            max_retry_wait_secs: 10,
            max_response_bytes: 16 << 20,
            fetch_private_urls: false,
            local_files_dir: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeSettings {
    /// A per-(server, user) instance with nothing in flight for this long is stopped.
    pub server_idle_ttl_secs: u64,
    /// Threads that host server actors (their idle timers; calls run on the request's own
    /// thread); 0 means one per CPU core.
    pub arbiters: usize,
    /// Restarts of one server instance allowed within a minute; past it the server is reported
    /// as failing and paused (its calls refused) until the minute is over.
    pub max_restarts_per_minute: u32,
    /// Calls (tools, resources, prompts, completions) one user may have running at once over
    /// all their sessions and servers — the fair share that keeps one heavy user from taking
    /// every worker and upstream connection.
    pub max_in_flight_per_user: usize,
    /// When the client goes away (stdin closes), requests in flight get this long to finish.
    pub shutdown_grace_secs: u64,
    /// Bytes (keys + values) one user's store of one server may hold: stores live in memory
    /// for as long as the process runs, shared by every user.
    pub max_store_bytes_per_user: usize,
}

impl Default for RuntimeSettings {
    fn default() -> Self {
        RuntimeSettings {
            server_idle_ttl_secs: 900,
            arbiters: 0,
            max_restarts_per_minute: 5,
            max_in_flight_per_user: 256,
            shutdown_grace_secs: 10,
            max_store_bytes_per_user: 1 << 20,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProtocolSettings {
    /// Items per page of `tools/list`, `resources/list`, `prompts/list` and templates.
    pub page_size: usize,
    /// `ttlMs` cache hint on cacheable 2026-07-28 results.
    pub cache_ttl_ms: u64,
    /// Largest message accepted on one stdio line or in one HTTP body.
    pub max_message_bytes: usize,
    /// How long a server→client request (sampling, elicitation, roots) waits for its answer.
    pub client_request_timeout_secs: u64,
    /// How long a 2026-07-28 `requestState` stays valid for the retry that echoes it.
    pub request_state_ttl_secs: u64,
    /// Log messages a legacy session receives before it sends `logging/setLevel`.
    pub default_log_level: LogLevel,
    /// Messages queued for one stream (a stdio pipe, an SSE stream, one POST's answers); a
    /// client that falls this far behind is disconnected.
    pub outbound_buffer: usize,
    /// Requests one session may have in flight at once; more are refused with an error
    /// until some finish.
    pub max_in_flight_per_session: usize,
    /// Resources one session may be subscribed to at once (`resources/subscribe`).
    pub max_subscriptions_per_session: usize,
}

impl Default for ProtocolSettings {
    fn default() -> Self {
        ProtocolSettings {
            page_size: 100,
            cache_ttl_ms: 60_000,
            max_message_bytes: 4 * 1024 * 1024,
            client_request_timeout_secs: 300,
            request_state_ttl_secs: 600,
            default_log_level: LogLevel::Info,
            outbound_buffer: 1024,
            max_in_flight_per_session: 128,
            max_subscriptions_per_session: 1000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StdioSettings {
    /// User the stdio pipe acts for when `--user-id` is not given.
    pub user_id: String,
}

impl Default for StdioSettings {
    fn default() -> Self {
        StdioSettings {
            user_id: "local".to_owned(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// Address to bind; loopback unless deliberately opened up.
    pub host: String,
    pub port: u16,
    /// Port of the Prometheus `/metrics` listener (same host).
    pub metrics_port: u16,
    /// HTTP worker threads; 0 means one per CPU core.
    pub workers: usize,
    /// Seconds between SSE keep-alive comments; a dropped stream is noticed within one.
    pub keep_alive_secs: u64,
    /// Origins allowed to call (e.g. "https://app.example.com"). Empty: loopback origins only.
    pub allowed_origins: Vec<String>,
    /// Host header values allowed (DNS-rebinding protection), with or without a port. Empty:
    /// loopback names when bound to loopback, any host otherwise.
    pub allowed_hosts: Vec<String>,
    /// Live sessions (SSE streams and Streamable HTTP sessions) across all users.
    pub max_sessions: usize,
    /// Live sessions of one user.
    pub max_sessions_per_user: usize,
    /// A Streamable HTTP session (2025 revisions) with no request for this long is ended, even
    /// with a stream open (never while a request runs).
    pub session_idle_secs: u64,
    /// Events kept per Streamable HTTP stream for resumption with `Last-Event-ID`.
    pub replay_events: usize,
    /// A Streamable HTTP session with no stream open to its client and no request for this
    /// long is ended (its seat freed); the client starts a new one.
    pub detached_session_secs: u64,
    /// A request body must arrive within this long once its head has been accepted.
    pub body_timeout_secs: u64,
    /// Proxies (addresses or CIDR ranges) whose `Forwarded` / `X-Forwarded-*` headers are
    /// believed; from any other peer those headers are ignored.
    pub trusted_proxies: Vec<String>,
    /// The address users' browsers reach this service at (`https://mcp.example.com`): connect
    /// links and the OAuth callback start with it. Unset: the bound address, when that is
    /// loopback; otherwise the connect pages are off.
    pub public_url: Option<String>,
    /// Serve the web connect pages under `/connect` (and offer their links to MCP clients).
    pub connect_pages: bool,
    /// How long a connect link, a form on its pages, and an OAuth sign-in started there stay
    /// valid.
    pub connect_link_secs: u64,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            host: "127.0.0.1".to_owned(),
            port: 8000,
            metrics_port: 9091,
            workers: 0,
            keep_alive_secs: 15,
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            max_sessions: 20_000,
            max_sessions_per_user: 200,
            session_idle_secs: 1800,
            replay_events: 256,
            detached_session_secs: 120,
            body_timeout_secs: 10,
            trusted_proxies: Vec::new(),
            public_url: None,
            connect_pages: true,
            connect_link_secs: 600,
        }
    }
}

impl HttpSettings {
    /// Whether `host` names only this machine.
    pub fn binds_loopback(&self) -> bool {
        matches!(self.host.as_str(), "localhost" | "::1" | "[::1]")
            || self
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    pub fn worker_count(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

/// Who may call the HTTP service.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccessSettings {
    /// Unset: `open` when bound to loopback, `api_keys` otherwise.
    pub mode: Option<AccessMode>,
    /// The keys `api_keys` mode accepts, as SHA-256 digests, each acting for one user.
    pub api_keys: Vec<ApiKeyEntry>,
    /// `oauth` mode: the authorization server whose access tokens are accepted.
    pub oauth: Option<OAuthAccessSettings>,
    /// Allows `open` access on a non-loopback address, where anyone who can reach the
    /// service acts as whichever user the path names. Off: refused at start.
    pub allow_open_on_network: bool,
}

/// Callers' OAuth access tokens (JWTs): who issues them and what they must say.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthAccessSettings {
    /// The authorization server (the tokens' `iss`).
    pub issuer: String,
    /// Where its signing keys are published.
    pub jwks_url: String,
    /// This server's canonical URI: the audience tokens must name (RFC 8707), and the
    /// `resource` of the RFC 9728 metadata.
    pub resource: String,
    /// The claim that holds the user id.
    #[serde(default = "default_user_claim")]
    pub user_claim: String,
    /// Scopes every token must grant.
    #[serde(default)]
    pub required_scopes: Vec<String>,
    /// Scopes listed in the metadata.
    #[serde(default)]
    pub scopes_supported: Vec<String>,
    /// Seconds of clock skew allowed on `exp` and `nbf`.
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
}

impl OAuthAccessSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        let web_url = |text: &str| {
            reqwest::Url::parse(text)
                .ok()
                .filter(|url| matches!(url.scheme(), "http" | "https") && url.has_host())
        };
        // Whoever can rewrite the key set can sign any token, so it (and the issuer named in
        // the metadata clients follow) travels over TLS; only loopback, which never leaves the
        // machine, may be plain http (local issuers, test doubles).
        for (key, url) in [
            ("access.oauth.issuer", &self.issuer),
            ("access.oauth.jwks_url", &self.jwks_url),
        ] {
            check(
                key,
                url,
                web_url(url).is_some_and(|url| url.scheme() == "https" || is_loopback(&url)),
                "must be an absolute https URL (plain http only for a loopback host: \
                 127.0.0.0/8, ::1 or localhost)",
            )?;
        }
        // RFC 8707 §2: an absolute URI without a fragment; a query would not survive the
        // RFC 9728 well-known URL built from it.
        check(
            "access.oauth.resource",
            &self.resource,
            web_url(&self.resource)
                .is_some_and(|url| url.fragment().is_none() && url.query().is_none()),
            "must be this server's absolute http(s) URL, without query or fragment \
             (e.g. \"https://mcp.example.com\")",
        )?;
        check(
            "access.oauth.user_claim",
            &self.user_claim,
            !self.user_claim.is_empty(),
            "must name a claim (e.g. \"sub\")",
        )?;
        // RFC 6749 §3.3 scope-token characters (they are quoted in WWW-Authenticate).
        let scope_ok = |scope: &String| {
            !scope.is_empty()
                && scope
                    .bytes()
                    .all(|b| matches!(b, 0x21 | 0x23..=0x5b | 0x5d..=0x7e))
        };
        for (key, scopes) in [
            ("access.oauth.required_scopes", &self.required_scopes),
            ("access.oauth.scopes_supported", &self.scopes_supported),
        ] {
            if let Some(bad) = scopes.iter().find(|scope| !scope_ok(scope)) {
                check(
                    key,
                    bad,
                    false,
                    "scopes are non-empty and hold no spaces, quotes or backslashes",
                )?;
            }
        }
        check(
            "access.oauth.leeway_secs",
            self.leeway_secs,
            self.leeway_secs <= 300,
            "must be between 0 and 300 seconds",
        )
    }
}

/// Whether a URL's host is this machine: 127.0.0.0/8, `::1` or `localhost`.
fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(oauth2::url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(oauth2::url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(oauth2::url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn default_user_claim() -> String {
    "sub".to_owned()
}

fn default_leeway() -> u64 {
    30
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessMode {
    /// Anyone who can reach the service; the path names the user (`local` on `/{server}/mcp`).
    Open,
    /// A listed API key is required, and it decides the user.
    ApiKeys,
    /// A key is required and handed to the remote credential store, which vouches for it.
    Remote,
    /// An OAuth access token (a JWT from `access.oauth.issuer`) is required; it names the user.
    Oauth,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyEntry {
    pub user_id: String,
    /// Lowercase hex SHA-256 of the key (`printf %s "$KEY" | sha256sum`).
    pub sha256: String,
}

impl Settings {
    /// The access mode in force, resolving the default from the bind address.
    pub fn access_mode(&self) -> AccessMode {
        self.access.mode.unwrap_or(if self.http.binds_loopback() {
            AccessMode::Open
        } else {
            AccessMode::ApiKeys
        })
    }
}

#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// Where users' credentials live. guMCP's `ENVIRONMENT=gumloop` selects `remote`.
    pub backend: AuthBackend,
    /// The local store's folder (guMCP's `local_auth/` layout). Relative paths are taken from
    /// the config file's folder; unset means `./local_auth` when there is one, else the user's
    /// data folder ([`Settings::local_auth_dir`]).
    pub local_dir: Option<PathBuf>,
    /// The remote store's credentials API. guMCP's `GUMLOOP_API_BASE_URL` sets it too.
    pub remote_base_url: String,
    /// API key for the remote store when the caller presents none (`user_id:api_key`).
    pub remote_api_key: Option<String>,
    /// How long the remote store's answers (credentials, and key verifications) are reused.
    pub remote_cache_secs: u64,
    /// `remote` access: the store's endpoint that says whether a key belongs to a user
    /// (`GET ?user_id=…` with the key as Bearer; 2xx yes, 401/403/404 no). Unset: each key
    /// gets its own instances and data, and credentials only through lookups made with it.
    pub remote_verify_url: Option<String>,
    /// An access token expiring within this many seconds is refreshed before use.
    pub refresh_margin_secs: u64,
    /// Timeout of every upstream HTTP request (credential API, token endpoints, service APIs).
    pub upstream_timeout_secs: u64,
    /// The PostgreSQL store (`backend = "postgres"`): `postgres://user:password@host/db`; its
    /// `options=-csearch_path%3D…` parameter picks the schema the tables live in.
    pub database_url: Option<String>,
    /// The keys credentials are encrypted with in PostgreSQL, as `id:base64-key` entries
    /// separated by commas or new lines: the first encrypts, every one decrypts (so a new key
    /// goes first, and old ones stay until `auth rekey` has moved their rows). Usually given
    /// as `GUMCP__AUTH__ENCRYPTION_KEYS`; or `encryption_keys_file`, not both.
    pub encryption_keys: Option<String>,
    /// A file holding the same entries (one per line, `#` comments), instead of
    /// `encryption_keys`. Relative paths are taken from the config file's folder.
    pub encryption_keys_file: Option<PathBuf>,
}

impl std::fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthSettings")
            .field("backend", &self.backend)
            .field("local_dir", &self.local_dir)
            .field("remote_base_url", &self.remote_base_url)
            .field("remote_api_key", &AuthSettingsSecret(&self.remote_api_key))
            .field("remote_cache_secs", &self.remote_cache_secs)
            .field("remote_verify_url", &self.remote_verify_url)
            .field("refresh_margin_secs", &self.refresh_margin_secs)
            .field("upstream_timeout_secs", &self.upstream_timeout_secs)
            .field("database_url", &AuthSettingsSecret(&self.database_url))
            .field(
                "encryption_keys",
                &AuthSettingsSecret(&self.encryption_keys),
            )
            .field("encryption_keys_file", &self.encryption_keys_file)
            .finish()
    }
}

impl std::fmt::Debug for AuthSettingsSecret<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "<redacted>"
        } else {
            "None"
        })
    }
}

/// Shows whether a secret is set, never its value.
struct AuthSettingsSecret<'a>(&'a Option<String>);

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            backend: AuthBackend::Local,
            local_dir: None,
            remote_base_url: "https://api.gumloop.com/api/v1".to_owned(),
            remote_api_key: None,
            remote_cache_secs: 30,
            remote_verify_url: None,
            refresh_margin_secs: 300,
            upstream_timeout_secs: 30,
            database_url: None,
            encryption_keys: None,
            encryption_keys_file: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthBackend {
    #[default]
    Local,
    Remote,
    /// PostgreSQL (`auth.database_url`), credentials encrypted with `auth.encryption_keys`.
    Postgres,
}

impl AuthBackend {
    /// The name the config file uses.
    pub fn name(self) -> &'static str {
        match self {
            AuthBackend::Local => "local",
            AuthBackend::Remote => "remote",
            AuthBackend::Postgres => "postgres",
        }
    }
}

/// One key credentials are encrypted with at rest: its id (stored beside each row, so keys
/// can rotate) and its 32 bytes. `Debug` shows the id only.
#[derive(Clone)]
pub struct EncryptionKey {
    pub id: String,
    pub bytes: [u8; 32],
}

impl std::fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptionKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// What `auth.encryption_keys` entries must look like (the value itself is never shown).
const ENCRYPTION_KEYS_RULE: &str = "must be one or more `id:key` entries separated by commas or \
    new lines: a unique id of at most 64 letters, digits, `-` or `_`, and a key of 32 bytes in \
    base64 (`openssl rand -base64 32`); the first encrypts, every one decrypts";

impl AuthSettings {
    /// The encryption keys of the PostgreSQL store, the one that encrypts first, read from
    /// `encryption_keys` or `encryption_keys_file` (exactly one must be set).
    pub fn encryption_keys(&self) -> Result<Vec<EncryptionKey>, ConfigError> {
        let (key, text) = match (&self.encryption_keys, &self.encryption_keys_file) {
            (Some(text), None) => ("auth.encryption_keys", text.clone()),
            (None, Some(path)) => (
                "auth.encryption_keys_file",
                std::fs::read_to_string(path).map_err(|source| ConfigError::Unreadable {
                    key: "auth.encryption_keys_file",
                    path: path.clone(),
                    source,
                })?,
            ),
            (given, file) => {
                return Err(ConfigError::Invalid {
                    key: "auth.encryption_keys",
                    value: format!(
                        "{} keys and {} keys file",
                        if given.is_some() { "both" } else { "no" },
                        if file.is_some() { "a" } else { "no" }
                    ),
                    allowed: "the postgres backend needs exactly one of auth.encryption_keys \
                              (GUMCP__AUTH__ENCRYPTION_KEYS) and auth.encryption_keys_file",
                })
            }
        };
        key_entries(key, &text, ENCRYPTION_KEYS_RULE)
    }
}

/// The `id:base64-key` entries of `text` (commas or new lines between them, `#` comments), in
/// order; `key` and `rule` name the setting in errors, which never show the value.
fn key_entries(
    key: &'static str,
    text: &str,
    rule: &'static str,
) -> Result<Vec<EncryptionKey>, ConfigError> {
    let invalid = || ConfigError::Invalid {
        key,
        value: "(not shown)".to_owned(),
        allowed: rule,
    };
    let mut keys: Vec<EncryptionKey> = Vec::new();
    for entry in text
        .split(['\n', ','])
        .map(str::trim)
        .filter(|entry| !entry.is_empty() && !entry.starts_with('#'))
    {
        let (id, encoded) = entry.split_once(':').ok_or_else(invalid)?;
        let id = id.trim();
        let id_ok = !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !id_ok || keys.iter().any(|known| known.id == id) {
            return Err(invalid());
        }
        let decoded =
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, encoded.trim())
                .map_err(|_| invalid())?;
        let bytes = <[u8; 32]>::try_from(decoded.as_slice()).map_err(|_| invalid())?;
        keys.push(EncryptionKey {
            id: id.to_owned(),
            bytes,
        });
    }
    if keys.is_empty() {
        return Err(invalid());
    }
    Ok(keys)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoggingSettings {
    /// A `tracing` filter such as `info` or `gumcp_actors=debug`; `RUST_LOG` wins when set.
    pub level: String,
    pub format: LogFormat,
    /// Show user ids in logs, spans and audit records as digests (`u:` + 12 hex digits of
    /// their SHA-256) instead of as they are.
    pub hash_user_ids: bool,
}

impl Default for LoggingSettings {
    fn default() -> Self {
        LoggingSettings {
            level: "info".to_owned(),
            format: LogFormat::Pretty,
            hash_user_ids: false,
        }
    }
}

/// Traces exported over OTLP/HTTP.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetrySettings {
    /// The collector's OTLP/HTTP base URL (spans go to `{endpoint}/v1/traces`). Unset: no
    /// export, and no cost.
    pub otlp_endpoint: Option<String>,
    /// The `service.name` the spans carry.
    pub service_name: String,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        TelemetrySettings {
            otlp_endpoint: None,
            service_name: "gumcp-actors".to_owned(),
        }
    }
}

/// The audit log of calls: who, which server and method/tool, when, outcome and duration —
/// never arguments or results.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditSettings {
    pub enabled: bool,
    /// A file the records are appended to as JSON lines (created 0600). Unset: they go to the
    /// log on stderr, under the target `audit`.
    pub path: Option<PathBuf>,
}

impl Default for AuditSettings {
    fn default() -> Self {
        AuditSettings {
            enabled: true,
            path: None,
        }
    }
}

/// Long-running calls kept as tasks (2025-11-25 `tasks`, the 2026-07-28 tasks extension):
/// results wait in memory for the client to fetch them, so they are bounded per user and in
/// all, and dropped after their TTL.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TaskSettings {
    /// How long a task and its result are kept after its last change (a 2025-11-25 client may
    /// ask for less, never more).
    pub ttl_secs: u64,
    /// Tasks one user (principal) may hold at once, running or finished; past it a call that
    /// must be a task is refused with -32000 until some expire, and a 2026-07-28 call that may
    /// run either way is answered in place.
    pub max_per_user: usize,
    /// Tasks held at once over all users.
    pub max_total: usize,
    /// The `pollIntervalMs` suggested to clients.
    pub poll_interval_ms: u64,
}

impl Default for TaskSettings {
    fn default() -> Self {
        TaskSettings {
            ttl_secs: 3600,
            max_per_user: 100,
            max_total: 100_000,
            poll_interval_ms: 500,
        }
    }
}

/// Cluster mode: several `serve` nodes behind one plain load balancer, sharing a Redis. While
/// `redis_url` is unset the node is alone and nothing here is used (the embedded default).
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSettings {
    /// `redis://[user:password@]host:port[/db]` (or `rediss://`); setting it turns cluster mode
    /// on. It may hold a password, so it is never logged.
    pub redis_url: Option<String>,
    /// This node's name among the others: 1 to 32 letters, digits, `-` or `_`. Unset, a random
    /// one per start, so a restarted node is a new node whose sessions are new too.
    pub node_id: Option<String>,
    /// The base URL the other nodes reach this node's HTTP listener at (`http://10.0.0.5:8000`);
    /// unset, the address `serve` bound.
    pub advertise_url: Option<String>,
    /// How long one Redis command may take; a request that needed it is then refused with 503
    /// and `Retry-After`, so no request waits on a Redis that is gone.
    pub redis_timeout_ms: u64,
    /// The keys every node shares to seal what a client may bring to another node: 2026-07-28
    /// `requestState` and connect links (and their forms). `id:base64-key` entries as in
    /// `auth.encryption_keys`: the first seals, every one opens, so a new key goes first and the
    /// old one stays until what it sealed has expired. Required in cluster mode; usually given
    /// as `GUMCP__CLUSTER__SHARED_KEYS`.
    pub shared_keys: Option<String>,
    /// How long a node's lock on one account's token refresh lasts without being renewed.
    /// The holder renews it every third of this while the provider answers, so a slow refresh
    /// keeps it; a node that dies mid-refresh lets it lapse, and another node refreshes after
    /// at most this long.
    pub refresh_lock_ms: u64,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            redis_url: None,
            node_id: None,
            advertise_url: None,
            redis_timeout_ms: 500,
            shared_keys: None,
            refresh_lock_ms: 10_000,
        }
    }
}

impl std::fmt::Debug for ClusterSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterSettings")
            .field("redis_url", &AuthSettingsSecret(&self.redis_url))
            .field("node_id", &self.node_id)
            .field("advertise_url", &self.advertise_url)
            .field("redis_timeout_ms", &self.redis_timeout_ms)
            .field("shared_keys", &AuthSettingsSecret(&self.shared_keys))
            .field("refresh_lock_ms", &self.refresh_lock_ms)
            .finish()
    }
}

/// What `cluster.shared_keys` entries must look like (the value itself is never shown).
const SHARED_KEYS_RULE: &str = "cluster mode needs one or more `id:key` entries separated by \
    commas or new lines: a unique id of at most 64 letters, digits, `-` or `_`, and a key of 32 \
    bytes in base64 (`openssl rand -base64 32`), the same on every node; the first seals, every \
    one opens";

impl ClusterSettings {
    /// The keys shared by every node, the sealing one first; an error in cluster mode when they
    /// are missing or malformed (the node must not start: what it sealed would not open
    /// elsewhere).
    pub fn shared_keys(&self) -> Result<Vec<EncryptionKey>, ConfigError> {
        match &self.shared_keys {
            Some(text) => key_entries("cluster.shared_keys", text, SHARED_KEYS_RULE),
            None => Err(ConfigError::Invalid {
                key: "cluster.shared_keys",
                value: "(unset)".to_owned(),
                allowed: SHARED_KEYS_RULE,
            }),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.shared_keys.is_some() {
            self.shared_keys()?;
        }
        if let Some(url) = &self.redis_url {
            check(
                "cluster.redis_url",
                "(not shown: it may hold a password)",
                redis::Client::open(url.as_str()).is_ok(),
                "must be a redis:// or rediss:// URL",
            )?;
        }
        if let Some(node_id) = &self.node_id {
            check(
                "cluster.node_id",
                node_id,
                (1..=32).contains(&node_id.len())
                    && node_id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "must be 1 to 32 letters, digits, '-' or '_'",
            )?;
        }
        if let Some(url) = &self.advertise_url {
            check(
                "cluster.advertise_url",
                url,
                reqwest::Url::parse(url).is_ok_and(|parsed| {
                    matches!(parsed.scheme(), "http" | "https") && parsed.host().is_some()
                }),
                "must be an http(s) URL of this node",
            )?;
        }
        check(
            "cluster.redis_timeout_ms",
            self.redis_timeout_ms,
            (10..=10_000).contains(&self.redis_timeout_ms),
            "must be between 10 and 10000 milliseconds",
        )?;
        check(
            "cluster.refresh_lock_ms",
            self.refresh_lock_ms,
            (300..=300_000).contains(&self.refresh_lock_ms),
            "must be between 300 and 300000 milliseconds",
        )
    }
}

/// Hosted MCP servers (`kind = "stdio"`): the children run for users, and their bounds.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HostedSettings {
    /// Child processes alive at once over all users; a start past it is refused.
    pub max_children: usize,
    /// Child processes one user may have alive at once (one per hosted server they use);
    /// where only a key vouches for the user, counted per key.
    pub max_children_per_user: usize,
    /// How long a new child has to answer `initialize` before it is stopped and the call fails.
    pub initialize_timeout_secs: u64,
    /// The longest line a child may write on stdout; a longer one ends the child.
    pub max_line_bytes: usize,
    /// Lines a child may write on stdout within a second; a child writing more is ended.
    pub max_lines_per_sec: u32,
    /// `RLIMIT_NOFILE` of each child (Unix); 0 leaves the inherited limit.
    pub max_open_files: u64,
    /// `RLIMIT_AS` of each child in MiB (Unix); 0 leaves it unlimited (V8, Node's engine,
    /// reserves far more address space than it uses, so a limit must be generous for Node).
    pub max_address_space_mib: u64,
    /// `RLIMIT_CPU` of each child in CPU seconds (Unix); 0 leaves it unlimited. A child past
    /// it is ended by the OS, and the next call starts a new one.
    pub max_cpu_secs: u64,
}

impl Default for HostedSettings {
    fn default() -> Self {
        HostedSettings {
            max_children: 256,
            max_children_per_user: 16,
            initialize_timeout_secs: 30,
            max_line_bytes: 8 << 20,
            max_lines_per_sec: 2_000,
            max_open_files: 1_024,
            max_address_space_mib: 0,
            max_cpu_secs: 3_600,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

impl Settings {
    /// [`Settings::load`] from the file [`ConfigFile::find`] chose; an error names the file
    /// when it was found rather than given, since the user may not know it is there.
    pub fn load_found(file: Option<&ConfigFile>) -> Result<Settings, ConfigError> {
        Settings::load(file.map(|file| file.path.as_path())).map_err(|err| match file {
            Some(file) if file.found != FoundBy::Given => ConfigError::InFoundFile {
                path: file.path.clone(),
                found: file.found,
                source: Box::new(err),
            },
            _ => err,
        })
    }

    /// Loads defaults ← `file` ← `GUMCP__…` environment, then validates.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        let mut builder = config::Config::builder();
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError::MissingFile {
                    path: path.to_owned(),
                });
            }
            builder = builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
        }
        builder = builder.add_source(
            config::Environment::with_prefix("GUMCP")
                .prefix_separator("__")
                .separator("__")
                .list_separator(",")
                .with_list_parse_key("http.allowed_origins")
                .with_list_parse_key("http.allowed_hosts")
                .with_list_parse_key("http.trusted_proxies"),
        );
        let mut settings: Settings = builder.build()?.try_deserialize()?;
        if let Some(base) = file.and_then(Path::parent) {
            for dir in [
                &mut settings.servers.dir,
                &mut settings.auth.local_dir,
                &mut settings.audit.path,
                &mut settings.auth.encryption_keys_file,
            ]
            .into_iter()
            .flatten()
            {
                if dir.is_relative() {
                    *dir = base.join(&*dir);
                }
            }
        }
        settings.apply_gumcp_environment();
        settings.validate()?;
        Ok(settings)
    }

    /// Checks every value and the combinations that would be unsafe; [`Settings::load`] calls
    /// it, and so must anyone who changes settings afterwards (command-line flags).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_access()?;
        self.cluster.validate()?;
        let protocol = &self.protocol;
        check(
            "protocol.page_size",
            protocol.page_size,
            (1..=10_000).contains(&protocol.page_size),
            "must be between 1 and 10000",
        )?;
        check(
            "protocol.max_message_bytes",
            protocol.max_message_bytes,
            (1024..=1 << 30).contains(&protocol.max_message_bytes),
            "must be between 1024 and 1073741824 bytes",
        )?;
        check(
            "hosted.max_line_bytes",
            self.hosted.max_line_bytes,
            (1024..=1 << 30).contains(&self.hosted.max_line_bytes),
            "must be between 1024 and 1073741824 bytes",
        )?;
        check(
            "hosted.initialize_timeout_secs",
            self.hosted.initialize_timeout_secs,
            self.hosted.initialize_timeout_secs >= 1,
            "must be at least 1 second",
        )?;
        check(
            "protocol.outbound_buffer",
            protocol.outbound_buffer,
            (1..=1_000_000).contains(&protocol.outbound_buffer),
            "must be between 1 and 1000000 messages",
        )?;
        check(
            "protocol.max_in_flight_per_session",
            protocol.max_in_flight_per_session,
            (1..=100_000).contains(&protocol.max_in_flight_per_session),
            "must be between 1 and 100000 requests",
        )?;
        check(
            "runtime.max_in_flight_per_user",
            self.runtime.max_in_flight_per_user,
            (1..=1_000_000).contains(&self.runtime.max_in_flight_per_user),
            "must be between 1 and 1000000 calls",
        )?;
        check(
            "protocol.client_request_timeout_secs",
            protocol.client_request_timeout_secs,
            protocol.client_request_timeout_secs > 0,
            "must be at least 1 second",
        )?;
        check(
            "runtime.server_idle_ttl_secs",
            self.runtime.server_idle_ttl_secs,
            self.runtime.server_idle_ttl_secs > 0,
            "must be at least 1 second",
        )?;
        check(
            "protocol.request_state_ttl_secs",
            protocol.request_state_ttl_secs,
            protocol.request_state_ttl_secs > 0,
            "must be at least 1 second",
        )?;
        check(
            "runtime.arbiters",
            self.runtime.arbiters,
            self.runtime.arbiters <= 1024,
            "must be between 0 (one per core) and 1024",
        )?;
        let http = &self.http;
        check(
            "http.keep_alive_secs",
            http.keep_alive_secs,
            (1..=3600).contains(&http.keep_alive_secs),
            "must be between 1 and 3600 seconds",
        )?;
        check(
            "http.max_sessions",
            http.max_sessions,
            http.max_sessions > 0,
            "must be at least 1",
        )?;
        check(
            "http.max_sessions_per_user",
            http.max_sessions_per_user,
            (1..=http.max_sessions).contains(&http.max_sessions_per_user),
            "must be between 1 and http.max_sessions",
        )?;
        check(
            "http.session_idle_secs",
            http.session_idle_secs,
            http.session_idle_secs > 0,
            "must be at least 1 second",
        )?;
        check(
            "http.workers",
            http.workers,
            http.workers <= 1024,
            "must be between 0 (one per core) and 1024",
        )?;
        check(
            "http.detached_session_secs",
            http.detached_session_secs,
            http.detached_session_secs > 0,
            "must be at least 1 second",
        )?;
        check(
            "http.body_timeout_secs",
            http.body_timeout_secs,
            (1..=3600).contains(&http.body_timeout_secs),
            "must be between 1 and 3600 seconds",
        )?;
        if let Some(bad) = http
            .trusted_proxies
            .iter()
            .find(|entry| proxy_net(entry).is_none())
        {
            check(
                "http.trusted_proxies",
                bad,
                false,
                "every entry is an IP address or a CIDR range (e.g. \"127.0.0.1\", \"10.0.0.0/8\")",
            )?;
        }
        if let Some(public_url) = &http.public_url {
            check(
                "http.public_url",
                public_url,
                reqwest::Url::parse(public_url).is_ok_and(|url| {
                    matches!(url.scheme(), "http" | "https")
                        && url.has_host()
                        && url.query().is_none()
                        && url.fragment().is_none()
                }),
                "must be an absolute http(s) URL without query or fragment \
                 (e.g. \"https://mcp.example.com\")",
            )?;
        }
        check(
            "http.connect_link_secs",
            http.connect_link_secs,
            (1..=86_400).contains(&http.connect_link_secs),
            "must be between 1 and 86400 seconds",
        )?;
        check(
            "protocol.max_subscriptions_per_session",
            protocol.max_subscriptions_per_session,
            (1..=1_000_000).contains(&protocol.max_subscriptions_per_session),
            "must be between 1 and 1000000",
        )?;
        check(
            "http.replay_events",
            http.replay_events,
            http.replay_events <= 100_000,
            "must be between 0 and 100000",
        )?;
        for (server, url) in &self.servers.base_urls {
            check(
                "servers.base_urls",
                server,
                url.starts_with("https://") || url.starts_with("http://"),
                "every base URL must be an http(s) URL",
            )?;
        }
        check(
            "servers.max_retry_wait_secs",
            self.servers.max_retry_wait_secs,
            self.servers.max_retry_wait_secs <= 300,
            "must be between 0 and 300 seconds",
        )?;
        check(
            "servers.max_response_bytes",
            self.servers.max_response_bytes,
            (1024..=1 << 30).contains(&self.servers.max_response_bytes),
            "must be between 1024 and 1073741824 bytes",
        )?;
        check(
            "runtime.max_store_bytes_per_user",
            self.runtime.max_store_bytes_per_user,
            (1024..=1 << 30).contains(&self.runtime.max_store_bytes_per_user),
            "must be between 1024 and 1073741824 bytes",
        )?;
        let remote_url = &self.auth.remote_base_url;
        check(
            "auth.remote_base_url",
            remote_url,
            remote_url.starts_with("https://") || remote_url.starts_with("http://"),
            "must be an http(s) URL",
        )?;
        check(
            "auth.upstream_timeout_secs",
            self.auth.upstream_timeout_secs,
            (1..=600).contains(&self.auth.upstream_timeout_secs),
            "must be between 1 and 600 seconds",
        )?;
        if self.auth.backend == AuthBackend::Postgres {
            check(
                "auth.database_url",
                "(missing)",
                self.auth
                    .database_url
                    .as_deref()
                    .is_some_and(|url| !url.trim().is_empty()),
                "the postgres backend needs auth.database_url (postgres://user@host/database)",
            )?;
            self.auth.encryption_keys()?;
        }
        if self.access_mode() == AccessMode::Oauth {
            let oauth = self.access.oauth.as_ref();
            check(
                "access.oauth",
                "(missing)",
                oauth.is_some(),
                "mode = \"oauth\" needs an [access.oauth] table with issuer, jwks_url and resource",
            )?;
            if let Some(oauth) = oauth {
                oauth.validate()?;
            }
        }
        for entry in &self.access.api_keys {
            check(
                "access.api_keys.user_id",
                &entry.user_id,
                crate::ids::validate_user_id(&entry.user_id).is_ok(),
                crate::ids::USER_ID_RULE,
            )?;
            let digest_ok =
                entry.sha256.len() == 64 && entry.sha256.bytes().all(|b| b.is_ascii_hexdigit());
            check(
                "access.api_keys.sha256",
                "(a digest)",
                digest_ok,
                "must be 64 hex characters: the SHA-256 of the key (printf %s \"$KEY\" | sha256sum)",
            )?;
        }
        check(
            "stdio.user_id",
            &self.stdio.user_id,
            crate::ids::validate_user_id(&self.stdio.user_id).is_ok(),
            crate::ids::USER_ID_RULE,
        )?;
        let tasks = &self.tasks;
        check(
            "tasks.ttl_secs",
            tasks.ttl_secs,
            (1..=7 * 24 * 3600).contains(&tasks.ttl_secs),
            "must be between 1 second and 7 days",
        )?;
        check(
            "tasks.max_per_user",
            tasks.max_per_user,
            (1..=100_000).contains(&tasks.max_per_user),
            "must be between 1 and 100000 tasks",
        )?;
        check(
            "tasks.max_total",
            tasks.max_total,
            (1..=10_000_000).contains(&tasks.max_total),
            "must be between 1 and 10000000 tasks",
        )?;
        check(
            "tasks.poll_interval_ms",
            tasks.poll_interval_ms,
            (1..=3_600_000).contains(&tasks.poll_interval_ms),
            "must be between 1 and 3600000 milliseconds",
        )?;
        Ok(())
    }

    /// Combinations of access settings that would hand users' data to the wrong callers.
    fn validate_access(&self) -> Result<(), ConfigError> {
        let mode = self.access_mode();
        check(
            "access.mode",
            "remote",
            mode != AccessMode::Remote || self.auth.backend == AuthBackend::Remote,
            "remote access hands callers' keys to the remote credential store, which vouches \
             for them: it needs auth.backend = \"remote\" (with the local backend nothing would \
             ever check a key)",
        )?;
        check(
            "access.mode",
            "open",
            mode != AccessMode::Open
                || self.http.binds_loopback()
                || self.access.allow_open_on_network,
            "open access on a network address lets anyone act as any user the path names: \
             choose api_keys, remote or oauth, bind http.host to loopback, or set \
             access.allow_open_on_network = true if that is really meant",
        )?;
        if let Some(url) = &self.telemetry.otlp_endpoint {
            check(
                "telemetry.otlp_endpoint",
                url,
                url.starts_with("https://") || url.starts_with("http://"),
                "must be the collector's http(s) OTLP/HTTP base URL (e.g. \"http://127.0.0.1:4318\")",
            )?;
        }
        if let Some(url) = &self.auth.remote_verify_url {
            check(
                "auth.remote_verify_url",
                url,
                url.starts_with("https://") || url.starts_with("http://"),
                "must be an http(s) URL",
            )?;
        }
        Ok(())
    }

    /// guMCP's own switches: `ENVIRONMENT=gumloop` selects the remote credential store and
    /// `GUMLOOP_API_BASE_URL` its address, so a guMCP deployment's environment keeps working.
    fn apply_gumcp_environment(&mut self) {
        if std::env::var("ENVIRONMENT").is_ok_and(|env| env.eq_ignore_ascii_case("gumloop")) {
            self.auth.backend = AuthBackend::Remote;
        }
        if let Ok(url) = std::env::var("GUMLOOP_API_BASE_URL") {
            self.auth.remote_base_url = url;
        }
    }

    /// The local credential folder: the configured one, else `./local_auth` when the process
    /// runs where one exists (a checkout, or a folder copied from guMCP keeps working as it
    /// is), else `gumcp-actors/local_auth` in the user's data folder
    /// (`~/.local/share/gumcp-actors/local_auth` on Linux) — where an installed binary keeps
    /// the accounts `auth` connects, whichever folder it was run from.
    pub fn local_auth_dir(&self) -> PathBuf {
        if let Some(dir) = &self.auth.local_dir {
            return dir.clone();
        }
        let here = PathBuf::from("local_auth");
        if here.is_dir() {
            return here;
        }
        dirs::data_dir().map_or(here, |data| data.join(APP_DIR).join("local_auth"))
    }

    /// The servers folder that adds to and overrides the built-in servers: the configured
    /// one, else `./servers` when it exists, else none. A process started elsewhere (by a
    /// desktop client, from a service manager) then serves the built-in servers only, and one
    /// started in a checkout sees its manifests as edited, without a rebuild.
    pub fn servers_dir(&self) -> Option<PathBuf> {
        if let Some(dir) = &self.servers.dir {
            return Some(dir.clone());
        }
        let here = PathBuf::from("servers");
        here.is_dir().then_some(here)
    }

    /// Arbiter threads for server actors, resolving 0 to the number of cores.
    pub fn arbiter_count(&self) -> usize {
        match self.runtime.arbiters {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

/// An `http.trusted_proxies` entry: an address or a CIDR range.
pub fn proxy_net(entry: &str) -> Option<ipnet::IpNet> {
    let entry = entry.trim();
    entry.parse::<ipnet::IpNet>().ok().or_else(|| {
        entry
            .parse::<std::net::IpAddr>()
            .ok()
            .map(ipnet::IpNet::from)
    })
}

fn check(
    key: &'static str,
    value: impl std::fmt::Debug,
    ok: bool,
    allowed: &'static str,
) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            key,
            value: format!("{value:?}"),
            allowed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_with(text: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        file
    }

    #[test]
    fn defaults_need_no_file() {
        let settings = Settings::load(None).unwrap();
        assert_eq!(settings.stdio.user_id, "local");
        assert_eq!(settings.protocol.page_size, 100);
    }

    #[test]
    fn the_shipped_config_file_loads_and_matches_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/gumcp.toml");
        let settings = Settings::load(Some(&path)).unwrap();
        let defaults = Settings::default();
        assert_eq!(settings.protocol.page_size, defaults.protocol.page_size);
        assert_eq!(
            settings.runtime.server_idle_ttl_secs,
            defaults.runtime.server_idle_ttl_secs
        );
        assert_eq!(
            settings.servers.max_response_bytes,
            defaults.servers.max_response_bytes
        );
        assert_eq!(
            settings.runtime.max_store_bytes_per_user,
            defaults.runtime.max_store_bytes_per_user
        );
        assert!(settings
            .servers_dir()
            .is_some_and(|dir| dir.join("simple-tools-server").is_dir()));
    }

    #[test]
    fn a_bad_value_names_the_key_and_what_is_allowed() {
        let file = file_with("[protocol]\npage_size = 0\n");
        let err = Settings::load(Some(file.path())).unwrap_err().to_string();
        assert!(err.contains("protocol.page_size"), "{err}");
        assert!(err.contains("between 1 and 10000"), "{err}");
    }

    #[test]
    fn the_postgres_backend_needs_a_url_and_well_formed_keys_never_shown() {
        let key = "k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
        let folder = tempfile::tempdir().unwrap();
        let config = folder.path().join("gumcp.toml");
        let load = |text: &str| {
            std::fs::write(&config, text).unwrap();
            Settings::load(Some(&config))
        };
        let base = "[auth]\nbackend = \"postgres\"\n";
        let url = "database_url = \"postgres://u:pw@127.0.0.1/db\"\n";
        for (text, named) in [
            (
                format!("{base}encryption_keys = \"{key}\"\n"),
                "auth.database_url",
            ),
            (format!("{base}{url}"), "exactly one of"),
            (
                format!("{base}{url}encryption_keys = \"{key}\"\nencryption_keys_file = \"k\"\n"),
                "exactly one of",
            ),
            (
                format!("{base}{url}encryption_keys = \"k1:c2hvcnQ=\"\n"),
                "auth.encryption_keys",
            ),
            (
                format!("{base}{url}encryption_keys = \"{key},{key}\"\n"),
                "a unique id",
            ),
            (
                format!("{base}{url}encryption_keys_file = \"missing\"\n"),
                "auth.encryption_keys_file",
            ),
        ] {
            let err = load(&text).unwrap_err().to_string();
            assert!(err.contains(named), "{text}: {err}");
            assert!(!err.contains("AQEBAQ") && !err.contains("c2hvcnQ"), "{err}");
        }
        std::fs::write(
            folder.path().join("keys"),
            format!("# newest first\nk2:{}\n\n{key}\n", &key[3..]),
        )
        .unwrap();
        let settings = load(&format!("{base}{url}encryption_keys_file = \"keys\"\n")).unwrap();
        let keys = settings.auth.encryption_keys().unwrap();
        let ids: Vec<&str> = keys.iter().map(|key| key.id.as_str()).collect();
        assert_eq!(ids, ["k2", "k1"]);
        assert_eq!(keys[1].bytes, [1; 32]);
        let shown = format!("{settings:?}{keys:?}");
        assert!(
            !shown.contains("pw@") && !shown.contains("AQEBAQ"),
            "{shown}"
        );
    }

    #[test]
    fn the_byte_bounds_are_checked_with_their_keys() {
        for (text, key) in [
            (
                "[servers]\nmax_response_bytes = 100\n",
                "servers.max_response_bytes",
            ),
            (
                "[runtime]\nmax_store_bytes_per_user = 2147483648\n",
                "runtime.max_store_bytes_per_user",
            ),
        ] {
            let file = file_with(text);
            let err = Settings::load(Some(file.path())).unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
            assert!(err.contains("between 1024 and 1073741824 bytes"), "{err}");
        }
    }

    #[test]
    fn bad_cluster_settings_are_refused_and_the_redis_url_never_shown() {
        for (text, key) in [
            (
                "[cluster]\nredis_url = \"http://:hunter2@example.com\"\n",
                "cluster.redis_url",
            ),
            ("[cluster]\nnode_id = \"a/b\"\n", "cluster.node_id"),
            (
                "[cluster]\nrefresh_lock_ms = 5\n",
                "cluster.refresh_lock_ms",
            ),
            (
                "[cluster]\nadvertise_url = \"ftp://10.0.0.5\"\n",
                "cluster.advertise_url",
            ),
            (
                "[cluster]\nredis_timeout_ms = 0\n",
                "cluster.redis_timeout_ms",
            ),
        ] {
            let file = file_with(text);
            let err = Settings::load(Some(file.path())).unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
        let file = file_with("[cluster]\nredis_url = \"redis://:hunter2@127.0.0.1:6379/0\"\n");
        let settings = Settings::load(Some(file.path())).unwrap();
        assert!(!format!("{settings:?}").contains("hunter2"));
    }

    #[test]
    fn an_unknown_key_is_refused_with_its_name() {
        let file = file_with("[protocol]\npage_sise = 10\n");
        let err = Settings::load(Some(file.path())).unwrap_err().to_string();
        assert!(err.contains("page_sise"), "{err}");
    }

    #[test]
    fn a_wrongly_typed_value_names_the_key() {
        let file = file_with("[runtime]\nserver_idle_ttl_secs = \"soon\"\n");
        let err = Settings::load(Some(file.path())).unwrap_err().to_string();
        assert!(err.contains("server_idle_ttl_secs"), "{err}");
    }

    #[test]
    fn a_given_file_is_used_as_given_and_a_found_one_is_named_in_errors() {
        let file = file_with("[protocol]\npage_size = 0\n");
        let given = ConfigFile::find(Some(file.path())).unwrap();
        assert_eq!(given.found, FoundBy::Given);
        let err = Settings::load_found(Some(&given)).unwrap_err().to_string();
        assert!(!err.contains("settings read from"), "{err}");
        let found = ConfigFile {
            path: file.path().to_owned(),
            found: FoundBy::UserConfig,
        };
        let err = Settings::load_found(Some(&found)).unwrap_err().to_string();
        assert!(err.contains("protocol.page_size"), "{err}");
        assert!(
            err.contains(&file.path().display().to_string()) && err.contains("config folder"),
            "{err}"
        );
        let missing = ConfigFile::find(Some(Path::new("/nonexistent/gumcp.toml"))).unwrap();
        assert!(Settings::load_found(Some(&missing)).is_err());
    }

    #[test]
    fn a_missing_file_is_reported() {
        let err = Settings::load(Some(Path::new("/nonexistent/gumcp.toml")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/gumcp.toml"), "{err}");
    }

    fn oauth_settings(issuer: &str, jwks_url: &str) -> Result<Settings, ConfigError> {
        let file = file_with(&format!(
            "[access]\nmode = \"oauth\"\n[access.oauth]\nissuer = \"{issuer}\"\n\
             jwks_url = \"{jwks_url}\"\nresource = \"https://mcp.example.com\"\n"
        ));
        Settings::load(Some(file.path()))
    }

    #[test]
    fn oauth_issuer_and_key_set_must_be_https_unless_on_loopback() {
        for (issuer, jwks_url) in [
            (
                "https://auth.example.com",
                "https://auth.example.com/jwks.json",
            ),
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080/jwks.json"),
            ("http://127.8.9.10", "http://[::1]:9000/jwks.json"),
            ("http://localhost:8080", "http://LOCALHOST/jwks.json"),
        ] {
            let loaded = oauth_settings(issuer, jwks_url);
            assert!(loaded.is_ok(), "{issuer} {jwks_url}: {:?}", loaded.err());
        }
        for (issuer, jwks_url, key) in [
            (
                "http://auth.example.com",
                "https://auth.example.com/jwks.json",
                "access.oauth.issuer",
            ),
            (
                "https://auth.example.com",
                "http://auth.example.com/jwks.json",
                "access.oauth.jwks_url",
            ),
            (
                "https://auth.example.com",
                "http://10.0.0.1/jwks.json",
                "access.oauth.jwks_url",
            ),
            (
                "https://auth.example.com",
                "http://localhost.evil.example/jwks.json",
                "access.oauth.jwks_url",
            ),
            (
                "http://[::ffff:8.8.8.8]",
                "https://auth.example.com/jwks.json",
                "access.oauth.issuer",
            ),
        ] {
            let err = oauth_settings(issuer, jwks_url).unwrap_err().to_string();
            assert!(err.contains(key), "{issuer} {jwks_url}: {err}");
            assert!(err.contains("must be an absolute https URL"), "{err}");
        }
    }

    #[test]
    fn access_that_nothing_would_check_is_refused() {
        let file = file_with("[access]\nmode = \"remote\"\n");
        let err = Settings::load(Some(file.path())).unwrap_err().to_string();
        assert!(
            err.contains("access.mode") && err.contains("auth.backend"),
            "{err}"
        );
        let file = file_with("[access]\nmode = \"remote\"\n[auth]\nbackend = \"remote\"\n");
        assert!(Settings::load(Some(file.path())).is_ok());
    }

    #[test]
    fn open_access_on_a_network_address_must_be_meant() {
        let mut settings = Settings::default();
        settings.access.mode = Some(AccessMode::Open);
        assert!(settings.validate().is_ok(), "loopback");
        settings.http.host = "0.0.0.0".into();
        let err = settings.validate().unwrap_err().to_string();
        assert!(err.contains("allow_open_on_network"), "{err}");
        settings.access.allow_open_on_network = true;
        assert!(settings.validate().is_ok());
        settings.access.mode = None;
        settings.access.allow_open_on_network = false;
        assert_eq!(settings.access_mode(), AccessMode::ApiKeys);
        assert!(settings.validate().is_ok());
    }

    #[test]
    fn relative_servers_dir_is_taken_from_the_config_files_folder() {
        let file = file_with("[servers]\ndir = \"my-servers\"\n");
        let settings = Settings::load(Some(file.path())).unwrap();
        assert_eq!(
            settings.servers_dir(),
            Some(file.path().parent().unwrap().join("my-servers"))
        );
    }
}
