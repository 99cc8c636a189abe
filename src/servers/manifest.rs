//! `servers/<name>/server.toml`: what a server is, read and checked at start-up — the shipped
//! ones from the binary, others from the servers folder.
//!
//! Discovery never fails as a whole: each manifest either yields a server or a
//! [`ManifestProblem`] naming the file and the reason, and the runtime goes on with the rest.

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::built_in::{BuiltInServer, BUILT_IN_SERVERS};
use crate::ids;

pub const MANIFEST_FILE: &str = "server.toml";
pub const README_FILE: &str = "README.md";

/// The parsed `server.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Must equal the folder name; it is the `{server}` in every URL and the `--server` value.
    pub name: String,
    pub title: Option<String>,
    pub description: String,
    pub version: String,
    pub kind: ServerKind,
    /// Guidance for the model, sent as `instructions` at initialize and discover.
    pub instructions: Option<String>,
    #[serde(default)]
    pub auth: AuthSpec,
    /// The upstream API's base URL (overridable per server in `servers.base_urls`); needed by
    /// `http` servers and by native ones that declare tools or call an API.
    pub base_url: Option<String>,
    /// Headers sent with every declared tool's upstream request.
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    /// Declared tools, each an upstream call run by the `http` engine (a native server's code
    /// answers its other tools).
    #[serde(default)]
    pub tools: Vec<super::http::spec::HttpTool>,
    /// How the upstream reports a failure inside a 200 answer.
    #[serde(default)]
    pub body_errors: super::http::spec::BodyErrors,
    /// Declared prompts, as message templates.
    #[serde(default)]
    pub prompts: Vec<super::http::spec::PromptSpec>,
    /// What a `stdio` server runs for each user.
    pub stdio: Option<super::hosted::spec::StdioSpec>,
    /// Where an `mcp` server is.
    pub mcp: Option<super::hosted::spec::RemoteSpec>,
    /// What of its tools the server exposes, and how (every kind).
    #[serde(default)]
    pub shape: super::shape::ShapeSpec,
}

/// How the server's tools are implemented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerKind {
    /// Rust code in the server's folder (`server.rs`), compiled into the binary; it may also
    /// declare tools in the manifest and hand them to the `http` engine.
    Native,
    /// Tools declared in `server.toml` as upstream HTTP calls, run by one engine.
    Http,
    /// Any MCP server that speaks over stdin/stdout, run as one child process per user
    /// (`[stdio]`) and spoken to by the runtime's own MCP client.
    Stdio,
    /// A remote MCP server (Streamable HTTP, `[mcp]`), with a session per user carrying that
    /// user's credential.
    Mcp,
}

/// The credentials the server needs from each user for its upstream service.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSpec {
    #[serde(default)]
    pub kind: AuthKind,
    /// The credentials folder and OAuth app name (`local_auth/credentials/<service>/`);
    /// defaults to the server's name, as guMCP's servers use.
    pub service: Option<String>,
    /// OAuth scopes requested when the user connects an account.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The provider's authorization endpoint (OAuth only).
    pub authorize_url: Option<String>,
    /// The provider's token endpoint (OAuth only); used to connect and to refresh.
    pub token_url: Option<String>,
    /// The provider's refresh endpoint, where it is not the token endpoint (Figma's
    /// `/v1/oauth/refresh`); refreshes go to `token_url` otherwise.
    pub refresh_url: Option<String>,
    /// The provider's token revocation endpoint (RFC 7009), told when a user disconnects.
    pub revoke_url: Option<String>,
    /// Provider quirks the `auth` command must honour.
    #[serde(default)]
    pub provider: OAuthProvider,
    /// Where an `http` server puts the secret: `bearer` (default), `basic`, `header:<Name>` or
    /// `query:<name>`.
    pub inject: Option<Inject>,
    /// The values an `api_key` server asks for when its credential is more than one key
    /// (`[[auth.key_fields]]`); empty: the key alone.
    #[serde(default)]
    pub key_fields: Vec<crate::auth::key_fields::KeyField>,
    /// The key fields are traded for a session when connecting, and the session is refreshed
    /// (`[auth.session]`, the AT Protocol's: Bluesky).
    pub session: Option<crate::auth::session::SessionSpec>,
    /// Values stored with each user's credential beside the secret (`[[auth.fields]]`), which
    /// fill `{name}` in `base_url` and the OAuth endpoints.
    #[serde(default)]
    pub fields: Vec<crate::auth::fields::AuthField>,
}

/// How a secret travels to the upstream API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inject {
    Bearer,
    Basic,
    /// HTTP Basic with the secret as the password and no user name (lemlist's `:key`).
    BasicPassword,
    /// HTTP Basic with two `[[auth.key_fields]]` as user name and password (Twilio's API key
    /// SID and secret): `basic_fields:<user field>:<password field>`.
    BasicFields {
        user: String,
        password: String,
    },
    Header(String),
    Query(String),
}

impl<'de> Deserialize<'de> for Inject {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.split_once(':') {
            None if text == "bearer" => Ok(Inject::Bearer),
            None if text == "basic" => Ok(Inject::Basic),
            None if text == "basic_password" => Ok(Inject::BasicPassword),
            Some(("header", name)) if !name.trim().is_empty() => {
                Ok(Inject::Header(name.trim().to_owned()))
            }
            Some(("query", name)) if !name.trim().is_empty() => {
                Ok(Inject::Query(name.trim().to_owned()))
            }
            Some(("basic_fields", fields)) => match fields.split_once(':') {
                Some((user, password)) if !user.is_empty() && !password.is_empty() => {
                    Ok(Inject::BasicFields {
                        user: user.to_owned(),
                        password: password.to_owned(),
                    })
                }
                _ => Err(serde::de::Error::custom(
                    "inject \"basic_fields:<user field>:<password field>\" names two key fields",
                )),
            },
            _ => Err(serde::de::Error::custom(format!(
                "inject {text:?} must be \"bearer\", \"basic\", \"basic_password\", \"basic_fields:<user>:<password>\", \"header:<Name>\" or \"query:<name>\""
            ))),
        }
    }
}

/// OAuth providers whose flows differ from the plain standard in ways that matter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OAuthProvider {
    #[default]
    Standard,
    /// Needs `access_type=offline` and `prompt=consent` to hand out a refresh token.
    Google,
    /// Scopes go in `user_scope` for a user token (`scope` is for the bot token).
    Slack,
    /// Answers the token request form-encoded unless asked for JSON.
    Github,
    /// Takes the client credentials as HTTP Basic authentication at its token endpoint.
    Notion,
    /// The Microsoft identity platform (v2 endpoints): `{tenant}` in the endpoint URLs is the
    /// OAuth app's `tenant_id` (default `common`); refresh tokens rotate, and each new one is
    /// saved before the access token is used.
    Microsoft,
    /// Zoom: the client credentials go as HTTP Basic authentication to its token endpoint, for
    /// the code exchange and every refresh; the authorization URL carries no scopes (they are
    /// the app's, chosen in Zoom's Marketplace); refresh tokens rotate, and each new one is
    /// saved before the access token is used.
    Zoom,
    /// Dropbox: `token_access_type=offline` in the authorization URL for a refresh token, and
    /// the client credentials as HTTP Basic authentication at its token endpoint.
    Dropbox,
    /// Airtable: PKCE is required (every flow here sends it); a confidential app's client
    /// credentials go as HTTP Basic authentication to its token endpoint, a public app sends
    /// its client id alone in the form; refresh tokens rotate, and each new one is saved
    /// before the access token is used.
    Airtable,
    /// Figma: the client credentials as HTTP Basic authentication at its token and refresh
    /// endpoints; a refresh answers a new access token only (the refresh token stays).
    Figma,
    /// Reddit: `duration=permanent` in the authorization URL for a refresh token, and the
    /// client credentials as HTTP Basic authentication at its token and revocation endpoints.
    Reddit,
    /// X: PKCE is required (every flow here sends it); a confidential app's client
    /// credentials go as HTTP Basic authentication to its token and revocation endpoints, a
    /// public app sends its client id alone; refresh tokens rotate, and each new one is saved
    /// before the access token is used.
    X,
    /// Canva: PKCE is required (every flow here sends it); the client credentials go as HTTP
    /// Basic authentication to its token and revocation endpoints; refresh tokens rotate, and
    /// each new one is saved before the access token is used.
    Canva,
    /// Atlassian (OAuth 2.0 3LO): `audience=api.atlassian.com` and `prompt=consent` in the
    /// authorization URL; refresh tokens rotate (with `offline_access`), and each new one is
    /// saved before the access token is used.
    Atlassian,
    /// Klaviyo: the standard flow (scopes, PKCE), with the client credentials as HTTP Basic
    /// authentication at its token endpoint, for the code and every refresh.
    Klaviyo,
    /// Shopify: the scopes comma-separated in the authorization URL; the token answer has no
    /// `token_type` and no expiry (an offline token lasts until the app is uninstalled).
    Shopify,
    /// DocuSign: the client credentials as HTTP Basic authentication at its token endpoint.
    Docusign,
    /// Intuit (QuickBooks): the client credentials as HTTP Basic authentication at its token
    /// and revocation endpoints; refresh tokens rotate, and each new one is saved before use.
    Intuit,
}

impl OAuthProvider {
    /// Whether the token endpoint takes the client credentials as HTTP Basic authentication
    /// rather than in the form body.
    pub fn basic_client_auth(self) -> bool {
        matches!(
            self,
            OAuthProvider::Notion
                | OAuthProvider::Zoom
                | OAuthProvider::Dropbox
                | OAuthProvider::Airtable
                | OAuthProvider::Figma
                | OAuthProvider::Reddit
                | OAuthProvider::X
                | OAuthProvider::Canva
                | OAuthProvider::Klaviyo
                | OAuthProvider::Docusign
                | OAuthProvider::Intuit
        )
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthKind {
    #[default]
    None,
    Oauth2,
    ApiKey,
    /// OAuth's client-credentials grant (PayPal): the OAuth app's client id and secret are
    /// traded for an app token at `token_url` when the account is connected, and again
    /// whenever it expires — no user consent, no refresh token.
    ClientCredentials,
}

impl fmt::Display for AuthKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuthKind::None => "none",
            AuthKind::Oauth2 => "oauth2",
            AuthKind::ApiKey => "api_key",
            AuthKind::ClientCredentials => "client_credentials",
        })
    }
}

impl fmt::Display for ServerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ServerKind::Native => "native",
            ServerKind::Http => "http",
            ServerKind::Stdio => "stdio",
            ServerKind::Mcp => "mcp",
        })
    }
}

/// A server folder that could not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestProblem {
    pub path: PathBuf,
    pub reason: String,
}

impl fmt::Display for ManifestProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

impl Manifest {
    /// The credentials service of this server (see [`AuthSpec::service`]).
    pub fn auth_service(&self) -> &str {
        self.auth.service.as_deref().unwrap_or(&self.name)
    }
}

/// Where a server's manifest came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Shipped in the project's `servers/` and compiled into the binary.
    BuiltIn,
    /// A folder of the servers folder, read at start-up.
    Folder(PathBuf),
}

impl Origin {
    /// The manifest's path as problems name it; a built-in one has no file on this machine,
    /// so its name says where it was built from.
    pub fn manifest_path(&self, name: &str) -> PathBuf {
        match self {
            Origin::BuiltIn => PathBuf::from(format!("(built in) servers/{name}/{MANIFEST_FILE}")),
            Origin::Folder(folder) => folder.join(MANIFEST_FILE),
        }
    }

    /// The server's README: compiled in with a built-in server, read from its folder
    /// otherwise (at the time it is asked for, so an edit shows without a restart).
    pub fn readme(&self, name: &str) -> Option<Cow<'static, str>> {
        match self {
            Origin::BuiltIn => BUILT_IN_SERVERS
                .iter()
                .find(|server| server.folder == name)
                .and_then(|server| server.readme)
                .map(Cow::Borrowed),
            Origin::Folder(folder) => std::fs::read_to_string(folder.join(README_FILE))
                .ok()
                .map(Cow::Owned),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::BuiltIn => f.write_str("built in"),
            Origin::Folder(folder) => write!(f, "{}", folder.display()),
        }
    }
}

/// A manifest together with where it came from.
#[derive(Debug, Clone)]
pub struct FoundServer {
    pub manifest: Manifest,
    pub origin: Origin,
}

/// Every server this binary can offer: the built-in ones, then the servers folder `dir` (when
/// there is one), whose folders add servers or replace the built-in one of the same name —
/// so a declared `http` server, or a changed manifest, needs no rebuild. Sorted by name.
pub fn discover(dir: Option<&Path>) -> (Vec<FoundServer>, Vec<ManifestProblem>) {
    let (found, folder_problems) = match dir {
        Some(dir) => scan(dir),
        None => (Vec::new(), Vec::new()),
    };
    let mut servers: std::collections::BTreeMap<String, FoundServer> = found
        .into_iter()
        .map(|server| (server.manifest.name.clone(), server))
        .collect();
    let mut problems = Vec::new();
    // A built-in server the folder replaces is not read at all.
    for server in BUILT_IN_SERVERS {
        if servers.contains_key(server.folder) {
            continue;
        }
        match parse_built_in(server) {
            Ok(manifest) => {
                let found = FoundServer {
                    manifest,
                    origin: Origin::BuiltIn,
                };
                servers.insert(found.manifest.name.clone(), found);
            }
            Err(reason) => problems.push(ManifestProblem {
                path: Origin::BuiltIn.manifest_path(server.folder),
                reason,
            }),
        }
    }
    for mut problem in folder_problems {
        // A broken replacement leaves the built-in server in place; say so, or the warning
        // reads as if the server were gone.
        let folder = problem
            .path
            .ends_with(MANIFEST_FILE)
            .then(|| problem.path.parent().and_then(Path::file_name))
            .flatten()
            .and_then(|name| name.to_str());
        let served_instead = folder.filter(|name| {
            servers
                .get(*name)
                .is_some_and(|server| server.origin == Origin::BuiltIn)
        });
        if let Some(name) = served_instead {
            problem.reason = format!("{} (the built-in {name} is served instead)", problem.reason);
        }
        problems.push(problem);
    }
    (servers.into_values().collect(), problems)
}

/// Reads every `*/server.toml` under `dir`, sorted by folder name.
pub fn scan(dir: &Path) -> (Vec<FoundServer>, Vec<ManifestProblem>) {
    let mut found = Vec::new();
    let mut problems = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) => {
            problems.push(ManifestProblem {
                path: dir.to_owned(),
                reason: format!("cannot read the servers folder: {err}"),
            });
            return (found, problems);
        }
    };
    let mut folders: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_dir())
        .collect();
    folders.sort();
    for folder in folders {
        let path = folder.join(MANIFEST_FILE);
        if !path.is_file() {
            continue;
        }
        match load(&folder) {
            Ok(manifest) => found.push(FoundServer {
                manifest,
                origin: Origin::Folder(folder),
            }),
            Err(reason) => problems.push(ManifestProblem { path, reason }),
        }
    }
    (found, problems)
}

/// Reads and checks one folder's manifest; the error is the reason, ready to print.
pub fn load(folder: &Path) -> Result<Manifest, String> {
    let path = folder.join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&path).map_err(|err| format!("cannot read: {err}"))?;
    let folder_name = folder
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    // A checkout's servers folder holds the shipped manifests as they were built: the same
    // text reads as the same manifest, from the JSON form.
    let shipped = BUILT_IN_SERVERS
        .iter()
        .find(|server| server.folder == folder_name && server.manifest_toml == text);
    match shipped {
        Some(server) => parse_built_in(server),
        None => parse_checked(&text, Some(&folder_name)),
    }
}

/// Parses and checks a manifest's text, everything [`load`] checks but the folder name. Kept
/// apart from the file so the `manifest` fuzz target (in `fuzz/`) needs no files.
pub fn parse(text: &str) -> Result<Manifest, String> {
    parse_checked(text, None)
}

/// A manifest's TOML text, read and checked: [`load`] and [`parse`].
fn parse_checked(text: &str, folder_name: Option<&str>) -> Result<Manifest, String> {
    let manifest: Manifest = toml::from_str(text).map_err(|err| err.to_string())?;
    checked(manifest, folder_name)
}

/// A shipped manifest, from the JSON form `build.rs` made of its TOML, with the same checks.
fn parse_built_in(server: &BuiltInServer) -> Result<Manifest, String> {
    let manifest: Manifest =
        serde_json::from_str(server.manifest_json).map_err(|err| err.to_string())?;
    checked(manifest, Some(server.folder))
}

/// The checks every manifest passes, whatever form it was read from, in the order `load` has
/// always made them (so a manifest with several faults keeps being reported by the same one).
fn checked(manifest: Manifest, folder_name: Option<&str>) -> Result<Manifest, String> {
    ids::validate_server_name(&manifest.name).map_err(|err| err.to_string())?;
    if let Some(folder_name) = folder_name.filter(|folder| manifest.name != *folder) {
        return Err(format!(
            "name {:?} must equal the folder name {:?}",
            manifest.name, folder_name
        ));
    }
    if manifest.description.trim().is_empty() {
        return Err("description must not be empty".to_owned());
    }
    if manifest.version.trim().is_empty() {
        return Err("version must not be empty".to_owned());
    }
    check_auth(&manifest.auth)?;
    check_fields(&manifest)?;
    check_kind(&manifest)?;
    manifest.shape.check()?;
    Ok(manifest)
}

/// `http` servers need a base URL and tools, each well declared. A native server may declare
/// tools too — its code then answers the rest and hands these to the engine — and then needs
/// the base URL as well.
fn check_kind(manifest: &Manifest) -> Result<(), String> {
    check_hosted(manifest)?;
    let declares = !manifest.tools.is_empty() || !manifest.prompts.is_empty();
    if manifest.kind == ServerKind::Http || declares || manifest.base_url.is_some() {
        let starts_with_origin_field = |url: &str| {
            manifest.auth.fields.iter().any(|field| {
                field.format == crate::auth::fields::FieldFormat::Origin
                    && url.starts_with(&format!("{{{}}}", field.name))
            })
        };
        match &manifest.base_url {
            Some(url) if url.starts_with("https://") || url.starts_with("http://") => {}
            Some(url) if starts_with_origin_field(url) => {}
            Some(url) => return Err(format!("base_url {url:?} must be an http(s) URL")),
            None if manifest.kind == ServerKind::Http => {
                return Err("kind = \"http\" needs base_url".to_owned())
            }
            None => return Err("declared [[tools]] need base_url".to_owned()),
        }
    }
    if manifest.kind == ServerKind::Http && manifest.tools.is_empty() {
        return Err("kind = \"http\" needs at least one [[tools]] entry".to_owned());
    }
    for prompt in &manifest.prompts {
        if let Some(message) = prompt
            .messages
            .iter()
            .find(|m| m.role != "user" && m.role != "assistant")
        {
            return Err(format!(
                "prompt {:?}: role {:?} must be \"user\" or \"assistant\"",
                prompt.name, message.role
            ));
        }
    }
    let mut seen = std::collections::HashSet::new();
    for tool in &manifest.tools {
        tool.check()?;
        if !seen.insert(tool.name.as_str()) {
            return Err(format!("tool {:?} is declared twice", tool.name));
        }
    }
    Ok(())
}

/// A `stdio` server needs `[stdio]`, and an auth kind if its child is given a credential;
/// no other kind may have `[stdio]`.
fn check_hosted(manifest: &Manifest) -> Result<(), String> {
    match (&manifest.stdio, manifest.kind) {
        (None, ServerKind::Stdio) => Err("kind = \"stdio\" needs a [stdio] section".to_owned()),
        (Some(_), kind) if kind != ServerKind::Stdio => Err(format!(
            "[stdio] is only for kind = \"stdio\", not \"{kind}\""
        )),
        (Some(spec), _) => {
            spec.check()?;
            if spec.wants_credential() && manifest.auth.kind == AuthKind::None {
                return Err("stdio: credential_env or {credential} needs an [auth] kind".to_owned());
            }
            Ok(())
        }
        (None, _) => Ok(()),
    }?;
    match (&manifest.mcp, manifest.kind) {
        (None, ServerKind::Mcp) => Err("kind = \"mcp\" needs an [mcp] section".to_owned()),
        (Some(_), kind) if kind != ServerKind::Mcp => {
            Err(format!("[mcp] is only for kind = \"mcp\", not \"{kind}\""))
        }
        (Some(remote), _) => remote.check(),
        (None, _) => Ok(()),
    }
}

/// The auth section must name a valid service and, for OAuth, both endpoints as http(s) URLs.
fn check_auth(auth: &AuthSpec) -> Result<(), String> {
    if let Some(service) = &auth.service {
        ids::validate_server_name(service).map_err(|err| format!("auth.service: {err}"))?;
    }
    if !auth.key_fields.is_empty() {
        if auth.kind != AuthKind::ApiKey {
            return Err("auth.key_fields is only for kind = \"api_key\"".to_owned());
        }
        crate::auth::key_fields::check_fields(&auth.key_fields)?;
    }
    if let Some(session) = &auth.session {
        for name in [&session.identifier, &session.password] {
            if !auth.key_fields.iter().any(|field| field.name == *name) {
                return Err(format!(
                    "auth.session names {name:?}, which is not one of auth.key_fields"
                ));
            }
        }
    }
    if let Some(Inject::BasicFields { user, password }) = &auth.inject {
        for name in [user, password] {
            if !auth.key_fields.iter().any(|field| field.name == *name) {
                return Err(format!(
                    "auth.inject names {name:?}, which is not one of auth.key_fields"
                ));
            }
        }
    }
    if auth.kind == AuthKind::ClientCredentials {
        match &auth.token_url {
            Some(url) if url.starts_with("https://") || url.starts_with("http://") => {}
            Some(url) => return Err(format!("auth.token_url {url:?} must be an http(s) URL")),
            None => {
                return Err("auth.token_url is required for kind = \"client_credentials\"".into())
            }
        }
    }
    if auth.kind == AuthKind::Oauth2 {
        for (key, url) in [
            ("auth.authorize_url", &auth.authorize_url),
            ("auth.token_url", &auth.token_url),
        ] {
            match url {
                Some(url) if url.starts_with("https://") || url.starts_with("http://") => {}
                Some(url) => return Err(format!("{key} {url:?} must be an http(s) URL")),
                None => return Err(format!("{key} is required for kind = \"oauth2\"")),
            }
        }
    }
    Ok(())
}

/// Every `{placeholder}` of the base URL and the OAuth endpoints is a declared field (or the
/// Microsoft `{tenant}` of an endpoint), and one the flow knows by then: the authorization
/// URL and the token URL of the first exchange can only use what the user gave.
fn check_fields(manifest: &Manifest) -> Result<(), String> {
    use crate::auth::fields::{placeholders, FieldSource};
    let auth = &manifest.auth;
    let mut seen = std::collections::HashSet::new();
    for field in &auth.fields {
        field.check()?;
        if !seen.insert(field.name.as_str()) {
            return Err(format!("auth.fields {:?} is declared twice", field.name));
        }
    }
    let field = |name: &str| auth.fields.iter().find(|field| field.name == name);
    if let Some(base_url) = &manifest.base_url {
        if let Some(unknown) = placeholders(base_url)
            .into_iter()
            .find(|n| field(n).is_none())
        {
            return Err(format!(
                "base_url names {{{unknown}}}, which is not one of [[auth.fields]]"
            ));
        }
    }
    for (key, url, before_the_token) in [
        ("auth.authorize_url", &auth.authorize_url, true),
        ("auth.token_url", &auth.token_url, true),
        ("auth.refresh_url", &auth.refresh_url, false),
    ] {
        for name in url.as_deref().map(placeholders).unwrap_or_default() {
            match field(name) {
                None if name == "tenant" => {}
                None => {
                    return Err(format!(
                        "{key} names {{{name}}}, which is not one of [[auth.fields]]"
                    ))
                }
                Some(found) if before_the_token && found.from != FieldSource::User => {
                    return Err(format!(
                        "{key} names {{{name}}}, which is only known after the sign-in"
                    ))
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_server(root: &Path, folder: &str, manifest: &str) {
        let dir = root.join(folder);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(MANIFEST_FILE), manifest).unwrap();
    }

    #[test]
    fn an_oauth_server_needs_both_endpoints() {
        let root = tempfile::tempdir().unwrap();
        write_server(
            root.path(),
            "gh",
            "name = \"gh\"\ndescription = \"d\"\nversion = \"1\"\nkind = \"native\"\n\
             [auth]\nkind = \"oauth2\"\nauthorize_url = \"https://x/authorize\"\n",
        );
        let (found, problems) = scan(root.path());
        assert!(found.is_empty());
        assert!(
            problems[0].reason.contains("auth.token_url"),
            "{problems:?}"
        );
    }

    const GOOD: &str = r#"
name = "alpha"
description = "A test server"
version = "1.0.0"
kind = "native"
[auth]
kind = "api_key"
"#;

    #[test]
    fn a_good_manifest_is_found() {
        let root = tempfile::tempdir().unwrap();
        write_server(root.path(), "alpha", GOOD);
        let (found, problems) = scan(root.path());
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].manifest.auth.kind, AuthKind::ApiKey);
    }

    #[test]
    fn broken_manifests_are_reported_with_path_and_reason_and_the_rest_kept() {
        let root = tempfile::tempdir().unwrap();
        write_server(root.path(), "alpha", GOOD);
        write_server(root.path(), "beta", "name = \"beta\"\nkind = \"native\"\n");
        write_server(root.path(), "gamma", &GOOD.replace("alpha", "other"));
        write_server(root.path(), "delta", &GOOD.replace("native", "python"));
        write_server(root.path(), "eps", "this is = not toml [");
        std::fs::create_dir_all(root.path().join("not-a-server")).unwrap();
        let (found, problems) = scan(root.path());
        assert_eq!(found.len(), 1);
        assert_eq!(problems.len(), 4, "{problems:?}");
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert!(text
            .iter()
            .any(|p| p.contains("beta") && p.contains("description")));
        assert!(text
            .iter()
            .any(|p| p.contains("gamma") && p.contains("folder name")));
        assert!(text
            .iter()
            .any(|p| p.contains("delta") && p.contains("python")));
        assert!(text.iter().any(|p| p.contains("eps")));
    }

    #[test]
    fn a_native_server_may_declare_tools_given_a_base_url() {
        let tool = "[[tools]]\nname = \"t\"\ndescription = \"d\"\npath = \"/t\"\n\
                    input_schema = { type = \"object\" }\n";
        let root = tempfile::tempdir().unwrap();
        let with_url = GOOD.replace("[auth]", "base_url = \"https://api.example\"\n[auth]");
        write_server(root.path(), "alpha", &format!("{with_url}{tool}"));
        write_server(
            root.path(),
            "beta",
            &format!("{}{tool}", GOOD.replace("alpha", "beta")),
        );
        let (found, problems) = scan(root.path());
        assert_eq!(found.len(), 1, "{problems:?}");
        assert_eq!(found[0].manifest.tools.len(), 1);
        assert!(problems[0].reason.contains("need base_url"), "{problems:?}");
    }

    #[test]
    fn a_stdio_server_needs_its_section_and_an_auth_kind_for_a_credential() {
        let stdio = GOOD.replace("native", "stdio");
        let root = tempfile::tempdir().unwrap();
        write_server(
            root.path(),
            "alpha",
            &format!("{stdio}[stdio]\ncommand = \"npx\"\ncredential_env = \"TOKEN\"\n"),
        );
        write_server(root.path(), "beta", &stdio.replace("alpha", "beta"));
        write_server(
            root.path(),
            "gamma",
            "name = \"gamma\"\ndescription = \"d\"\nversion = \"1\"\nkind = \"stdio\"\n\
             [stdio]\ncommand = \"x\"\nargs = [\"--token={credential}\"]\n",
        );
        write_server(
            root.path(),
            "delta",
            &format!(
                "{}[stdio]\ncommand = \"x\"\n",
                GOOD.replace("alpha", "delta")
            ),
        );
        let (found, problems) = scan(root.path());
        assert_eq!(found.len(), 1, "{problems:?}");
        assert_eq!(found[0].manifest.kind, ServerKind::Stdio);
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert!(text
            .iter()
            .any(|p| p.contains("beta") && p.contains("[stdio] section")));
        assert!(text
            .iter()
            .any(|p| p.contains("gamma") && p.contains("[auth] kind")));
        assert!(text
            .iter()
            .any(|p| p.contains("delta") && p.contains("only for kind")));
    }

    #[test]
    fn an_mcp_server_needs_an_http_url() {
        let mcp = GOOD.replace("native", "mcp");
        let root = tempfile::tempdir().unwrap();
        write_server(
            root.path(),
            "alpha",
            &format!("{mcp}[mcp]\nurl = \"https://mcp.example/mcp\"\n"),
        );
        write_server(
            root.path(),
            "beta",
            &format!(
                "{}[mcp]\nurl = \"ftp://x/mcp\"\n",
                mcp.replace("alpha", "beta")
            ),
        );
        write_server(root.path(), "gamma", &mcp.replace("alpha", "gamma"));
        let (found, problems) = scan(root.path());
        assert_eq!(found.len(), 1, "{problems:?}");
        assert_eq!(found[0].manifest.kind, ServerKind::Mcp);
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert!(text
            .iter()
            .any(|p| p.contains("beta") && p.contains("http(s) URL")));
        assert!(text
            .iter()
            .any(|p| p.contains("gamma") && p.contains("[mcp] section")));
    }

    #[test]
    fn basic_fields_must_name_key_fields() {
        let with = |inject: &str| {
            GOOD.replace(
                "kind = \"api_key\"",
                &format!(
                    "kind = \"api_key\"\ninject = \"{inject}\"\n\
                     [[auth.key_fields]]\nname = \"sid\"\nlabel = \"SID\"\n\
                     [[auth.key_fields]]\nname = \"secret\"\nlabel = \"Secret\"\nsecret = true\n"
                ),
            )
        };
        let parsed = parse(&with("basic_fields:sid:secret")).unwrap();
        assert_eq!(
            parsed.auth.inject,
            Some(Inject::BasicFields {
                user: "sid".into(),
                password: "secret".into()
            })
        );
        let wrong = parse(&with("basic_fields:sid:token")).unwrap_err();
        assert!(
            wrong.contains("\"token\", which is not one of auth.key_fields"),
            "{wrong}"
        );
        assert!(parse(&with("basic_fields:sid")).is_err());
    }

    #[test]
    fn templates_name_declared_fields_known_in_time() {
        let field = "[[auth.fields]]\nname = \"sub\"\nlabel = \"Subdomain\"\nformat = \"label\"\n";
        let token_field = "[[auth.fields]]\nname = \"instance_url\"\nlabel = \"Instance\"\n\
                           from = \"token\"\nformat = \"origin\"\nhosts = [\".example.com\"]\n";
        let oauth = |authorize: &str, fields: &str| {
            format!(
                "name = \"alpha\"\ndescription = \"d\"\nversion = \"1\"\nkind = \"native\"\n\
                 base_url = \"https://{{sub}}.example.com\"\n[auth]\nkind = \"oauth2\"\n\
                 authorize_url = \"{authorize}\"\ntoken_url = \"https://x/token\"\n{fields}"
            )
        };
        assert!(parse(&oauth("https://{sub}.example.com/authorize", field)).is_ok());
        let unknown = parse(&oauth("https://x/authorize", "")).unwrap_err();
        assert!(unknown.contains("base_url names {sub}"), "{unknown}");
        let late = parse(&oauth(
            "https://{instance_url}/authorize",
            &format!("{field}{token_field}"),
        ))
        .unwrap_err();
        assert!(late.contains("only known after the sign-in"), "{late}");
        let bad_origin = parse(&oauth(
            "https://x/authorize",
            &format!(
                "{field}{}",
                token_field.replace(".example.com", "example.com")
            ),
        ))
        .unwrap_err();
        assert!(bad_origin.contains("starting with"), "{bad_origin}");
    }

    /// The JSON form `build.rs` compiles in reads as the same manifest as the shipped TOML.
    #[test]
    fn every_built_in_manifest_reads_from_json_as_from_its_toml() {
        let servers = Path::new(env!("CARGO_MANIFEST_DIR")).join("servers");
        assert!(BUILT_IN_SERVERS.len() >= 67);
        for server in BUILT_IN_SERVERS {
            let text =
                std::fs::read_to_string(servers.join(server.folder).join(MANIFEST_FILE)).unwrap();
            let from_toml = parse_checked(&text, Some(server.folder)).unwrap();
            let from_json = parse_built_in(server).unwrap();
            assert_eq!(
                format!("{from_toml:?}"),
                format!("{from_json:?}"),
                "{}",
                server.folder
            );
        }
    }

    /// A folder's copy of a shipped manifest reads as the shipped one; once edited, as edited.
    #[test]
    fn a_folder_copy_of_a_shipped_manifest_reads_as_shipped_until_edited() {
        let shipped = BUILT_IN_SERVERS
            .iter()
            .find(|server| server.folder == "hackernews")
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("hackernews");
        std::fs::create_dir(&folder).unwrap();
        std::fs::write(folder.join(MANIFEST_FILE), shipped.manifest_toml).unwrap();
        let copy = load(&folder).unwrap();
        assert_eq!(
            format!("{copy:?}"),
            format!("{:?}", parse_built_in(shipped).unwrap())
        );
        let original = copy.description.clone();
        let edited = shipped
            .manifest_toml
            .replacen(&original, "An edited description", 1);
        assert_ne!(edited, shipped.manifest_toml);
        std::fs::write(folder.join(MANIFEST_FILE), edited).unwrap();
        assert_eq!(load(&folder).unwrap().description, "An edited description");
    }

    #[test]
    fn a_missing_servers_folder_is_a_problem_not_a_panic() {
        let (found, problems) = scan(Path::new("/nonexistent/servers"));
        assert!(found.is_empty());
        assert_eq!(problems.len(), 1);
    }

    #[test]
    fn every_shipped_server_is_built_in_with_its_readme() {
        let (found, problems) = discover(None);
        assert!(problems.is_empty(), "{problems:?}");
        let shipped = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("servers"))
            .unwrap()
            .filter(|entry| entry.as_ref().unwrap().path().join(MANIFEST_FILE).is_file())
            .count();
        assert_eq!(found.len(), shipped);
        for server in &found {
            assert_eq!(server.origin, Origin::BuiltIn);
            let readme = server.origin.readme(&server.manifest.name);
            assert!(
                readme.is_some_and(|text| !text.is_empty()),
                "{}",
                server.manifest.name
            );
        }
    }

    #[test]
    fn a_folder_adds_servers_and_replaces_built_in_ones_by_name() {
        let root = tempfile::tempdir().unwrap();
        write_server(root.path(), "alpha", GOOD);
        write_server(
            root.path(),
            "simple-tools-server",
            &GOOD.replace("alpha", "simple-tools-server"),
        );
        std::fs::write(root.path().join("alpha").join(README_FILE), "# Alpha\n").unwrap();
        let (found, problems) = discover(Some(root.path()));
        assert!(problems.is_empty(), "{problems:?}");
        let by_name = |name: &str| found.iter().find(|s| s.manifest.name == name).unwrap();
        let alpha = by_name("alpha");
        assert_eq!(alpha.origin, Origin::Folder(root.path().join("alpha")));
        assert_eq!(alpha.origin.readme("alpha").as_deref(), Some("# Alpha\n"));
        let replaced = by_name("simple-tools-server");
        assert_eq!(replaced.manifest.description, "A test server");
        assert!(replaced.origin.readme("simple-tools-server").is_none());
        assert_eq!(by_name("hackernews").origin, Origin::BuiltIn);
    }

    #[test]
    fn a_broken_replacement_is_reported_and_the_built_in_server_kept() {
        let root = tempfile::tempdir().unwrap();
        write_server(root.path(), "hackernews", "name = \"hackernews\"\n");
        let (found, problems) = discover(Some(root.path()));
        assert_eq!(problems.len(), 1, "{problems:?}");
        let text = problems[0].to_string();
        assert!(
            text.contains("hackernews/server.toml") && text.contains("built-in hackernews"),
            "{text}"
        );
        let kept = found.iter().find(|s| s.manifest.name == "hackernews");
        assert_eq!(kept.map(|s| &s.origin), Some(&Origin::BuiltIn));
    }
}
