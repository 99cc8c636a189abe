//! OAuth 2 token requests through the `oauth2` crate over our reqwest client: the
//! refresh-token grant (used by the auth actor), the authorization-code grant with PKCE
//! (the `auth` command and the web connect flow) and revocation (RFC 7009, on disconnect).
//! Failures are sorted into *rejected* (the grant is dead; the user must reconnect) and
//! *transient* (network, 5xx, 429: try again later).

use oauth2::basic::{BasicClient, BasicErrorResponseType, BasicTokenResponse};
use oauth2::http;
use oauth2::{
    AuthorizationCode, ClientId, ClientSecret, EndpointNotSet, EndpointSet, PkceCodeVerifier,
    RedirectUrl, RefreshToken, RequestTokenError, StandardErrorResponse, TokenResponse, TokenUrl,
};

use super::credentials::{unix_now, Credentials, OAuthApp};
use crate::upstream::{read_capped, CappedClient, ReadError};

/// Why a token request failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    #[error("{0}")]
    Rejected(String),
    #[error("{0}")]
    Transient(String),
}

/// An HTTP failure below OAuth: unreachable, timed out, or a 5xx/429 answer.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Unavailable(String);

async fn send(
    http: CappedClient<'_>,
    request: oauth2::HttpRequest,
) -> Result<oauth2::HttpResponse, Unavailable> {
    let (parts, body) = request.into_parts();
    let response = http
        .client
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .map_err(|err| {
            Unavailable(format!(
                "the token endpoint is unreachable: {}",
                err.without_url()
            ))
        })?;
    let status = response.status();
    if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        return Err(Unavailable(format!(
            "the token endpoint answered HTTP {}",
            status.as_u16()
        )));
    }
    let mut built = http::Response::builder().status(status);
    for (name, value) in response.headers() {
        built = built.header(name, value);
    }
    let bytes = read_capped(response, http.max_response_bytes)
        .await
        .map_err(|err| match err {
            ReadError::TooLarge { limit } => Unavailable(format!(
                "the token endpoint's answer is larger than servers.max_response_bytes \
                 ({limit} bytes)"
            )),
            ReadError::Cut(err) => Unavailable(format!("the token answer was cut off: {err}")),
        })?;
    built
        .body(bytes)
        .map_err(|err| Unavailable(err.to_string()))
}

type TokenFailure = RequestTokenError<Unavailable, StandardErrorResponse<BasicErrorResponseType>>;

fn classify(failure: TokenFailure) -> TokenError {
    match failure {
        RequestTokenError::Request(unavailable) => TokenError::Transient(unavailable.0),
        RequestTokenError::ServerResponse(response) => {
            let mut reason = response.error().to_string();
            if let Some(description) = response.error_description() {
                reason = format!("{reason}: {description}");
            }
            TokenError::Rejected(reason)
        }
        RequestTokenError::Parse(err, _) => {
            TokenError::Rejected(format!("the token endpoint's answer is not a token: {err}"))
        }
        RequestTokenError::Other(other) => TokenError::Rejected(other),
    }
}

fn token_url(url: &str) -> Result<TokenUrl, TokenError> {
    TokenUrl::new(url.to_owned())
        .map_err(|err| TokenError::Rejected(format!("the token URL {url:?} is invalid: {err}")))
}

/// Applies a token answer to `previous`: a new access token and expiry; a new refresh token
/// only if the provider rotated it (most keep the old one valid and send none).
fn merged(previous: &Credentials, answer: &BasicTokenResponse) -> Credentials {
    let mut next = previous.clone();
    next.access_token = Some(answer.access_token().secret().clone());
    if let Some(rotated) = answer.refresh_token() {
        next.refresh_token = Some(rotated.secret().clone());
    }
    next.expires_at = answer
        .expires_in()
        .map(|lifetime| unix_now().saturating_add(lifetime.as_secs() as i64));
    if let Some(scopes) = answer.scopes() {
        let joined: Vec<&str> = scopes.iter().map(|scope| scope.as_str()).collect();
        next.extra
            .insert("scope".to_owned(), joined.join(" ").into());
    }
    next
}

/// How the client credentials reach the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// In the form body (Google, GitHub, Slack, Linear).
    Body,
    /// As HTTP Basic authentication (Notion, Zoom).
    Basic,
}

/// An `oauth2` client of `app` that knows the token endpoint.
fn token_client(
    app: &OAuthApp,
    token_url_text: &str,
    client_auth: ClientAuth,
) -> Result<
    BasicClient<EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>,
    TokenError,
> {
    let client = BasicClient::new(ClientId::new(app.client_id.clone()))
        .set_token_uri(token_url(token_url_text)?);
    Ok(match &app.client_secret {
        Some(secret) => client
            .set_client_secret(ClientSecret::new(secret.clone()))
            .set_auth_type(match client_auth {
                ClientAuth::Body => oauth2::AuthType::RequestBody,
                ClientAuth::Basic => oauth2::AuthType::BasicAuth,
            }),
        None => client,
    })
}

/// Trades `current`'s refresh token for a new access token at `token_url`, the client
/// credentials sent as `client_auth` says; an answer over `http.max_response_bytes` is a
/// transient failure.
pub async fn refresh(
    http: CappedClient<'_>,
    app: &OAuthApp,
    token_url_text: &str,
    current: &Credentials,
    client_auth: ClientAuth,
) -> Result<Credentials, TokenError> {
    let Some(refresh_token) = &current.refresh_token else {
        return Err(TokenError::Rejected(
            "the access token expired and there is no refresh token".to_owned(),
        ));
    };
    let send = |request| send(http, request);
    let answer = token_client(app, token_url_text, client_auth)?
        .exchange_refresh_token(&RefreshToken::new(refresh_token.clone()))
        .request_async(&send)
        .await
        .map_err(classify)?;
    Ok(merged(current, &answer))
}

/// Trades an authorization code (with its PKCE verifier) for the first credentials.
pub async fn exchange_code(
    http: CappedClient<'_>,
    app: &OAuthApp,
    token_url_text: &str,
    redirect_uri: &str,
    code: String,
    verifier: PkceCodeVerifier,
    client_auth: ClientAuth,
) -> Result<Credentials, TokenError> {
    let redirect = RedirectUrl::new(redirect_uri.to_owned())
        .map_err(|err| TokenError::Rejected(format!("redirect_uri is invalid: {err}")))?;
    let send = |request| send(http, request);
    let answer = token_client(app, token_url_text, client_auth)?
        .set_redirect_uri(redirect)
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&send)
        .await
        .map_err(classify)?;
    Ok(merged(&Credentials::default(), &answer))
}

/// Revokes `credentials` at `revocation_url` (RFC 7009): the refresh token where there is one,
/// since revoking it ends the grant, else the access token. Sent by hand: the `oauth2` crate
/// refuses any revocation endpoint but an https one, where token and JWKS endpoints may be
/// plain http on loopback (local providers, test doubles).
pub async fn revoke(
    http: CappedClient<'_>,
    app: &OAuthApp,
    revocation_url: &str,
    credentials: &Credentials,
    client_auth: ClientAuth,
) -> Result<(), TokenError> {
    let (token, hint) = match (&credentials.refresh_token, &credentials.access_token) {
        (Some(refresh), _) => (refresh, "refresh_token"),
        (None, Some(access)) => (access, "access_token"),
        (None, None) => return Ok(()),
    };
    let mut form = vec![("token", token.as_str()), ("token_type_hint", hint)];
    let mut request = http.client.post(revocation_url);
    match (&app.client_secret, client_auth) {
        (Some(secret), ClientAuth::Basic) => {
            request = request.basic_auth(&app.client_id, Some(secret));
        }
        (secret, _) => {
            form.push(("client_id", app.client_id.as_str()));
            if let Some(secret) = secret {
                form.push(("client_secret", secret.as_str()));
            }
        }
    }
    let response = request.form(&form).send().await.map_err(|err| {
        TokenError::Transient(format!(
            "the revocation endpoint is unreachable: {}",
            err.without_url()
        ))
    })?;
    let status = response.status();
    // The answer's body says nothing RFC 7009 needs; it is read (capped) only to reuse the
    // connection.
    let _ = read_capped(response, http.max_response_bytes).await;
    if status.is_success() {
        Ok(())
    } else if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        Err(TokenError::Transient(format!(
            "the revocation endpoint answered HTTP {}",
            status.as_u16()
        )))
    } else {
        Err(TokenError::Rejected(format!(
            "the revocation endpoint answered HTTP {}",
            status.as_u16()
        )))
    }
}
