//! What a credential file holds, in guMCP's JSON shapes: a user's tokens for a service (an
//! AT Protocol session's `accessJwt`/`refreshJwt` read as tokens too), and a service's OAuth
//! app. Fields this runtime does not know are kept as they are, so a file
//! written by guMCP (or by a provider's SDK) survives a round trip here. Debug output never
//! shows a secret.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// A user's credentials for one service: OAuth tokens, or an API key. Files written by guMCP's
/// Google servers (google-auth's shape: `token`, and `expiry` as an ISO 8601 time) are read as
/// the same thing, so existing Google accounts keep working without reconnecting.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "StoredCredentials")]
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

/// A credentials file as stored, before google-auth's field names are mapped onto ours.
#[derive(Deserialize)]
struct StoredCredentials {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default, deserialize_with = "lenient_timestamp")]
    expires_at: Option<i64>,
    #[serde(default)]
    api_key: Option<String>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

impl From<StoredCredentials> for Credentials {
    fn from(stored: StoredCredentials) -> Credentials {
        let mut extra = stored.extra;
        let mut access_token = stored.access_token;
        if access_token.is_none() {
            if let Some(Value::String(token)) = extra.remove("token") {
                access_token = Some(token);
            }
        }
        let mut expires_at = stored.expires_at;
        if expires_at.is_none() {
            if let Some(Value::String(expiry)) = extra.get("expiry") {
                expires_at = iso_timestamp(expiry);
                if expires_at.is_some() {
                    extra.remove("expiry");
                }
            }
        }
        // An AT Protocol session (Bluesky's, as guMCP stores it): its JWTs are the tokens,
        // and the access JWT's `exp` says when it expires.
        let mut refresh_token = stored.refresh_token;
        if access_token.is_none() {
            if let Some(Value::String(jwt)) = extra.remove("accessJwt") {
                expires_at = expires_at.or_else(|| jwt_expiry(&jwt));
                access_token = Some(jwt);
            }
        }
        if refresh_token.is_none() {
            if let Some(Value::String(jwt)) = extra.remove("refreshJwt") {
                refresh_token = Some(jwt);
            }
        }
        Credentials {
            access_token,
            refresh_token,
            expires_at,
            api_key: stored.api_key,
            extra,
        }
    }
}

/// The `exp` claim of a JWT, read without checking its signature (only to know when to
/// refresh it; the issuer checks it).
fn jwt_expiry(jwt: &str) -> Option<i64> {
    use base64::Engine;
    let claims = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(claims.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice::<Value>(&bytes)
        .ok()?
        .get("exp")?
        .as_i64()
}

/// Unix seconds of an ISO 8601 time as google-auth writes it (`2025-03-01T12:00:00.123456Z`,
/// or without a zone, meaning UTC).
fn iso_timestamp(text: &str) -> Option<i64> {
    let text = text.trim();
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|time| time.timestamp())
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
                .map(|time| time.and_utc().timestamp())
        })
        .ok()
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

/// A service's OAuth app (`oauth_configs/<service>/oauth.json`). Google's downloaded client
/// file (`{"installed": {…}}` or `{"web": {…}}`, as guMCP's Google servers keep it) is read too.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "Map<String, Value>")]
pub struct OAuthApp {
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The tenant of the Microsoft identity platform an app signs in to when its `oauth.json`
/// names none: `common` (work, school and personal accounts).
pub const DEFAULT_TENANT: &str = "common";

impl OAuthApp {
    /// An endpoint URL of the app's provider with `{tenant}` filled from the app's `tenant_id`
    /// (or `tenant`), else [`DEFAULT_TENANT`] — the Microsoft identity platform's endpoints name
    /// the tenant in their path. The tenant is encoded as one path segment.
    pub fn endpoint(&self, url: &str) -> String {
        if !url.contains("{tenant}") {
            return url.to_owned();
        }
        let tenant = ["tenant_id", "tenant"]
            .iter()
            .find_map(|key| self.extra.get(*key).and_then(Value::as_str))
            .filter(|tenant| !tenant.trim().is_empty())
            .unwrap_or(DEFAULT_TENANT);
        const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
            .remove(b'-')
            .remove(b'.')
            .remove(b'_');
        let encoded = percent_encoding::utf8_percent_encode(tenant.trim(), SEGMENT).to_string();
        url.replace("{tenant}", &encoded)
    }
}

impl TryFrom<Map<String, Value>> for OAuthApp {
    type Error = String;

    fn try_from(mut file: Map<String, Value>) -> Result<OAuthApp, String> {
        if !file.contains_key("client_id") {
            let wrapped = ["installed", "web"]
                .into_iter()
                .find_map(|kind| match file.get(kind) {
                    Some(Value::Object(inner)) => Some(inner.clone()),
                    _ => None,
                });
            if let Some(mut inner) = wrapped {
                if !inner.contains_key("redirect_uri") {
                    if let Some(first) = inner
                        .get("redirect_uris")
                        .and_then(Value::as_array)
                        .and_then(|uris| uris.first())
                        .cloned()
                    {
                        inner.insert("redirect_uri".into(), first);
                    }
                }
                file = inner;
            }
        }
        let text = |file: &mut Map<String, Value>, key: &str| match file.remove(key) {
            Some(Value::String(text)) => Ok(Some(text)),
            None | Some(Value::Null) => Ok(None),
            Some(_) => Err(format!("{key} must be a string")),
        };
        let client_id = text(&mut file, "client_id")?.ok_or("missing field `client_id`")?;
        Ok(OAuthApp {
            client_id,
            client_secret: text(&mut file, "client_secret")?,
            redirect_uri: text(&mut file, "redirect_uri")?,
            extra: file,
        })
    }
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
    fn google_auth_files_from_gumcp_are_read() {
        let file = json!({
            "token": "ya29.a", "refresh_token": "1//r", "token_uri": "https://oauth2.googleapis.com/token",
            "client_id": "c", "scopes": ["s"], "expiry": "2025-03-01T12:00:00.123456Z"
        });
        let creds: Credentials = serde_json::from_value(file).unwrap();
        assert_eq!(creds.access_token.as_deref(), Some("ya29.a"));
        assert_eq!(creds.expires_at, Some(1_740_830_400));
        assert_eq!(
            creds.extra["token_uri"],
            "https://oauth2.googleapis.com/token"
        );
        assert!(!creds.extra.contains_key("token"));
        let naive: Credentials =
            serde_json::from_value(json!({ "token": "t", "expiry": "2025-03-01T12:00:00" }))
                .unwrap();
        assert_eq!(naive.expires_at, Some(1_740_830_400));
        let ours: Credentials =
            serde_json::from_value(json!({ "access_token": "a", "token": "other" })).unwrap();
        assert_eq!(
            ours.access_token.as_deref(),
            Some("a"),
            "our own field wins"
        );
    }

    #[test]
    fn googles_client_file_is_an_oauth_app() {
        let installed = json!({ "installed": {
            "client_id": "id.apps.googleusercontent.com", "client_secret": "s",
            "redirect_uris": ["http://localhost"], "token_uri": "https://oauth2.googleapis.com/token"
        }});
        let app: OAuthApp = serde_json::from_value(installed).unwrap();
        assert_eq!(app.client_id, "id.apps.googleusercontent.com");
        assert_eq!(app.client_secret.as_deref(), Some("s"));
        assert_eq!(app.redirect_uri.as_deref(), Some("http://localhost"));
        assert_eq!(
            app.extra["token_uri"],
            "https://oauth2.googleapis.com/token"
        );
        let plain: OAuthApp = serde_json::from_value(json!({ "client_id": "c" })).unwrap();
        assert_eq!(plain.client_id, "c");
        assert!(serde_json::from_value::<OAuthApp>(json!({ "web": {} })).is_err());
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

    #[test]
    fn microsoft_endpoints_name_the_apps_tenant_or_common() {
        let url = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token";
        let app = |extra: Value| OAuthApp {
            client_id: "cid".into(),
            client_secret: None,
            redirect_uri: None,
            extra: extra.as_object().cloned().unwrap_or_default(),
        };
        assert_eq!(
            app(json!({})).endpoint(url),
            "https://login.microsoftonline.com/common/oauth2/v2.0/token"
        );
        assert_eq!(
            app(json!({ "tenant_id": "contoso.onmicrosoft.com" })).endpoint(url),
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        assert_eq!(
            app(json!({ "tenant": "a/../b?x" })).endpoint(url),
            "https://login.microsoftonline.com/a%2F..%2Fb%3Fx/oauth2/v2.0/token"
        );
        assert_eq!(
            app(json!({})).endpoint("https://x/token"),
            "https://x/token"
        );
    }
}
