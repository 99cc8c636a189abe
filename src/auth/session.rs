//! Password sessions in the AT Protocol's shape (Bluesky): an identifier and an app password
//! are traded once for a session (`com.atproto.server.createSession`), whose short-lived
//! access JWT is renewed with its refresh JWT (`com.atproto.server.refreshSession`, which
//! rotates both). The password is never stored; the session is, in the answer's own shape
//! (`accessJwt`, `refreshJwt`, `handle`, `did` …, as guMCP stores it), which
//! [`Credentials`] reads as access and refresh tokens with the access JWT's `exp` as expiry.
//! The auth actor refreshes it in its single flight, as it refreshes OAuth tokens.

use serde::Deserialize;
use serde_json::{json, Value};

use super::credentials::Credentials;
use super::oauth::TokenError;
use crate::upstream::{read_capped, CappedClient};

/// `[auth.session]` of a manifest: where sessions are made and renewed, and which key fields
/// are the identifier and the password.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSpec {
    pub create_url: String,
    pub refresh_url: String,
    /// The key field holding the identifier (a handle or an email).
    pub identifier: String,
    /// The key field holding the (app) password.
    pub password: String,
}

/// A new session for `identifier` and `password`.
pub async fn create(
    http: CappedClient<'_>,
    url: &str,
    identifier: &str,
    password: &str,
) -> Result<Credentials, TokenError> {
    let request = http
        .client
        .post(url)
        .json(&json!({ "identifier": identifier, "password": password }));
    session_from(exchange(http, request).await?)
}

/// The session renewed with its refresh JWT: new access and refresh JWTs, the rest kept.
pub async fn refresh(
    http: CappedClient<'_>,
    url: &str,
    current: &Credentials,
) -> Result<Credentials, TokenError> {
    let Some(refresh_jwt) = &current.refresh_token else {
        return Err(TokenError::Rejected(
            "the session expired and there is no refresh token".to_owned(),
        ));
    };
    let request = http
        .client
        .post(url)
        .bearer_auth(refresh_jwt)
        .header(reqwest::header::CONTENT_LENGTH, "0");
    let renewed = session_from(exchange(http, request).await?)?;
    let mut merged = current.clone();
    merged.access_token = renewed.access_token;
    merged.refresh_token = renewed.refresh_token;
    merged.expires_at = renewed.expires_at;
    merged.extra.extend(renewed.extra);
    Ok(merged)
}

/// Sends a session request; the JSON answer, or why not, sorted as token requests are: the
/// server's refusal (400/401: `{"error", "message"}`) is final, anything else passes.
async fn exchange(
    http: CappedClient<'_>,
    request: reqwest::RequestBuilder,
) -> Result<Value, TokenError> {
    let response = request.send().await.map_err(|err| {
        TokenError::Transient(format!(
            "the session endpoint is unreachable: {}",
            err.without_url()
        ))
    })?;
    let status = response.status();
    let bytes = read_capped(response, http.max_response_bytes)
        .await
        .map_err(|err| TokenError::Transient(format!("the session answer: {err}")))?;
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(body);
    }
    let reason = body
        .get("message")
        .or_else(|| body.get("error"))
        .and_then(Value::as_str)
        .unwrap_or("no details given");
    let reason = format!(
        "the session endpoint answered HTTP {}: {reason}",
        status.as_u16()
    );
    if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        Err(TokenError::Transient(reason))
    } else {
        Err(TokenError::Rejected(reason))
    }
}

/// A session answer as credentials (through the same mapping as a stored one).
fn session_from(answer: Value) -> Result<Credentials, TokenError> {
    let credentials: Credentials = serde_json::from_value(answer)
        .map_err(|_| TokenError::Transient("the session answer is not an object".to_owned()))?;
    if credentials.access_token.is_none() {
        return Err(TokenError::Transient(
            "the session answer has no accessJwt".to_owned(),
        ));
    }
    Ok(credentials)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_answer_is_read_as_tokens_with_the_jwts_expiry() {
        // {"exp": 1900000000}, unsigned: only the claims are read.
        let access = "eyJhbGciOiJub25lIn0.eyJleHAiOjE5MDAwMDAwMDB9.";
        let credentials = session_from(json!({
            "accessJwt": access, "refreshJwt": "r1", "handle": "ada.bsky.social",
            "did": "did:plc:ada"
        }))
        .unwrap();
        assert_eq!(credentials.access_token.as_deref(), Some(access));
        assert_eq!(credentials.refresh_token.as_deref(), Some("r1"));
        assert_eq!(credentials.expires_at, Some(1_900_000_000));
        assert_eq!(credentials.extra["handle"], "ada.bsky.social");
        assert!(session_from(json!({ "handle": "x" })).is_err());
    }
}
