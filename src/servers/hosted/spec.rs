//! `[stdio]` in a `kind = "stdio"` server's manifest: the program each user's child runs, and
//! where the user's credential goes into it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

/// Replaced by the user's secret (access token or API key) in `args`.
pub const CREDENTIAL_PLACEHOLDER: &str = "{credential}";

/// What a hosted stdio server runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdioSpec {
    /// The program: a bare name is looked up on `PATH`; a relative path is taken from the
    /// server's folder.
    pub command: String,
    /// Its arguments; `{credential}` in one is replaced by the user's secret (prefer
    /// `credential_env`: arguments are visible to every user of the machine).
    #[serde(default)]
    pub args: Vec<String>,
    /// The child's working folder, relative to the server's folder; unset: the server's folder
    /// (for a built-in server, the runtime's working folder).
    pub working_dir: Option<PathBuf>,
    /// Variables set for the child on top of the few passed through (`PATH`, `HOME`, locale):
    /// nothing else of the runtime's environment reaches it.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The variable that carries the user's secret, e.g. `GITHUB_PERSONAL_ACCESS_TOKEN`.
    pub credential_env: Option<String>,
}

impl StdioSpec {
    /// Whether the child needs the user's credential at all.
    pub fn wants_credential(&self) -> bool {
        self.credential_env.is_some()
            || self
                .args
                .iter()
                .any(|arg| arg.contains(CREDENTIAL_PLACEHOLDER))
    }

    /// Checks what a manifest can get wrong, naming the key.
    pub fn check(&self) -> Result<(), String> {
        if self.command.trim().is_empty() {
            return Err("stdio.command must not be empty".to_owned());
        }
        let names = self.env.keys().chain(self.credential_env.iter());
        for name in names {
            let valid = !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(format!(
                    "stdio: {name:?} is not an environment variable name (letters, digits, _)"
                ));
            }
        }
        Ok(())
    }
}

/// What a hosted remote server (`kind = "mcp"`) is: a Streamable HTTP MCP endpoint. The
/// user's secret is sent as `[auth] inject` says (a Bearer token unless told otherwise).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteSpec {
    /// The MCP endpoint, e.g. `https://mcp.example.com/mcp`.
    pub url: String,
}

impl RemoteSpec {
    pub fn check(&self) -> Result<(), String> {
        let url = reqwest::Url::parse(&self.url)
            .map_err(|err| format!("mcp.url {:?} is not a URL: {err}", self.url))?;
        if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
            return Err(format!("mcp.url {:?} must be an http(s) URL", self.url));
        }
        Ok(())
    }
}
