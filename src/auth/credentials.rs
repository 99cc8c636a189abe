//! What a credential file holds, in guMCP's JSON shapes: a user's tokens for a service, and a
//! service's OAuth app. Fields this runtime does not know are kept as they are, so a file
//! written by guMCP (or by a provider's SDK) survives a round trip here. Debug output never
//! shows a secret.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// A user's credentials for one service: OAuth tokens, or an API key.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Credentials {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// When the access token expires, in Unix seconds (guMCP writes integers; floats and
    /// numeric strings are read too).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_timestamp"
    )]
    pub expires_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// Everything else in the file (token type, scope, team ids …), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = |secret: &Option<String>| secret.as_ref().map(|_| "<redacted>");
        f.debug_struct("Credentials")
            .field("access_token", &shown(&self.access_token))
            .field("refresh_token", &shown(&self.refresh_token))
            .field("expires_at", &self.expires_at)
            .field("api_key", &shown(&self.api_key))
            .field("extra_fields", &self.extra.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Credentials {
    /// Whether the access token is expired, or will be within `margin_secs` of `now`.
    pub fn expires_within(&self, now: i64, margin_secs: i64) -> bool {
        self.expires_at
            .is_some_and(|expires_at| expires_at <= now.saturating_add(margin_secs))
    }
}

/// A service's OAuth app (`oauth_configs/<service>/oauth.json`).
#[derive(Clone, Serialize, Deserialize)]
pub struct OAuthApp {
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl std::fmt::Debug for OAuthApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthApp")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("redirect_uri", &self.redirect_uri)
            .finish()
    }
}

fn lenient_timestamp<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    Ok(match Option::<Value>::deserialize(deserializer)? {
        Some(Value::Number(number)) => number
            .as_i64()
            .or_else(|| number.as_f64().map(|seconds| seconds as i64)),
        Some(Value::String(text)) => text.trim().parse::<f64>().ok().map(|s| s as i64),
        _ => None,
    })
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let file = json!({
            "access_token": "a", "refresh_token": "r", "expires_at": 1700000000.5,
            "token_type": "Bearer", "team": { "id": "T1" }
        });
        let creds: Credentials = serde_json::from_value(file).unwrap();
        assert_eq!(creds.expires_at, Some(1_700_000_000));
        let back = serde_json::to_value(&creds).unwrap();
        assert_eq!(back["team"]["id"], "T1");
        assert_eq!(back["token_type"], "Bearer");
    }

    #[test]
    fn debug_output_hides_secrets() {
        let creds = Credentials {
            access_token: Some("tok-123".into()),
            api_key: Some("key-456".into()),
            ..Credentials::default()
        };
        let shown = format!("{creds:?}");
        assert!(
            !shown.contains("tok-123") && !shown.contains("key-456"),
            "{shown}"
        );
    }
}
