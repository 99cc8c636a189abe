//! OAuth 2 token requests through the `oauth2` crate over our reqwest client: the
//! refresh-token grant (used by the auth actor), the authorization-code grant with PKCE
//! (the `auth` command and the web connect flow) and revocation (RFC 7009, on disconnect).
//! Failures are sorted into *rejected* (the grant is dead; the user must reconnect) and
//! *transient* (network, 5xx, 429: try again later).

use oauth2::basic::{
    BasicErrorResponse, BasicErrorResponseType, BasicRevocationErrorResponse,
    BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::http;
use oauth2::{
    AuthorizationCode, ClientId, ClientSecret, EndpointNotSet, EndpointSet, PkceCodeVerifier,
    RedirectUrl, RefreshToken, RequestTokenError, StandardErrorResponse, StandardRevocableToken,
    TokenResponse, TokenUrl,
};
use serde_json::{Map, Value};

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

/// A token answer as providers send it: the standard members read (a missing `token_type`
/// taken as Bearer, since Mailchimp sends none; `expires_in` as a number or a numeric string),
/// and every other member kept with the credential (Salesforce's `instance_url`, QuickBooks'
/// `x_refresh_token_expires_in`, …): a server may need them, and `[[auth.fields]]` take
/// values from them.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct TokenAnswer {
    access_token: oauth2::AccessToken,
    #[serde(default = "bearer", deserialize_with = "lenient_token_type")]
    token_type: BasicTokenType,
    #[serde(default, deserialize_with = "lenient_seconds")]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<RefreshToken>,
    #[serde(
        rename = "scope",
        default,
        deserialize_with = "oauth2::helpers::deserialize_space_delimited_vec",
        serialize_with = "oauth2::helpers::serialize_space_delimited_vec",
        skip_serializing_if = "Option::is_none"
    )]
    scopes: Option<Vec<oauth2::Scope>>,
    #[serde(flatten)]
    members: Map<String, Value>,
}

fn bearer() -> BasicTokenType {
    BasicTokenType::Bearer
}

/// A `token_type` that is absent or `null` is Bearer.
fn lenient_token_type<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<BasicTokenType, D::Error> {
    use serde::Deserialize;
    Ok(match Option::<String>::deserialize(deserializer)? {
        Some(text) => serde_json::from_value(Value::String(text)).unwrap_or_else(|_| bearer()),
        None => bearer(),
    })
}

/// Seconds as a number or a numeric string; anything else as none.
fn lenient_seconds<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<u64>, D::Error> {
    use serde::Deserialize;
    Ok(match Option::<Value>::deserialize(deserializer)? {
        Some(Value::Number(number)) => number.as_u64(),
        Some(Value::String(text)) => text.trim().parse().ok(),
        _ => None,
    })
}

impl TokenResponse for TokenAnswer {
    type TokenType = BasicTokenType;

    fn access_token(&self) -> &oauth2::AccessToken {
        &self.access_token
    }

    fn token_type(&self) -> &BasicTokenType {
        &self.token_type
    }

    fn expires_in(&self) -> Option<std::time::Duration> {
        self.expires_in.map(std::time::Duration::from_secs)
    }

    fn refresh_token(&self) -> Option<&RefreshToken> {
        self.refresh_token.as_ref()
    }

    fn scopes(&self) -> Option<&Vec<oauth2::Scope>> {
        self.scopes.as_ref()
    }
}

/// An `oauth2` client whose token answers keep their other members.
type KeepingClient<HasTokenUrl> = oauth2::Client<
    BasicErrorResponse,
    TokenAnswer,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    HasTokenUrl,
>;

/// The members of a token answer the `oauth2` crate reads itself.
const STANDARD_MEMBERS: [&str; 5] = [
    "access_token",
    "refresh_token",
    "expires_in",
    "token_type",
    "scope",
];

/// Applies a token answer to `previous`: a new access token and expiry (none when the
/// provider says `expires_in: 0`, as Mailchimp does for tokens that never expire); a new
/// refresh token only if the provider rotated it (most keep the old one valid and send none);
/// the answer's other members over the previous ones.
fn merged(previous: &Credentials, answer: &TokenAnswer) -> Credentials {
    let mut next = previous.clone();
    next.access_token = Some(answer.access_token().secret().clone());
    if let Some(rotated) = answer.refresh_token() {
        next.refresh_token = Some(rotated.secret().clone());
    }
    next.expires_at = answer
        .expires_in()
        .filter(|lifetime| !lifetime.is_zero())
        .map(|lifetime| unix_now().saturating_add(lifetime.as_secs() as i64));
    for (name, value) in &answer.members {
        if !STANDARD_MEMBERS.contains(&name.as_str()) && !value.is_null() {
            next.extra.insert(name.clone(), value.clone());
        }
    }
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
) -> Result<KeepingClient<EndpointSet>, TokenError> {
    let client = KeepingClient::<EndpointNotSet>::new(ClientId::new(app.client_id.clone()))
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

/// An app token through the client-credentials grant (PayPal): the app's client id and secret
/// at `token_url`, over `previous` (a renewal keeps what the credential held beside it).
pub async fn client_credentials(
    http: CappedClient<'_>,
    app: &OAuthApp,
    token_url_text: &str,
    previous: &Credentials,
    client_auth: ClientAuth,
) -> Result<Credentials, TokenError> {
    if app.client_secret.is_none() {
        return Err(TokenError::Rejected(
            "the OAuth app has no client_secret, which the client-credentials grant needs"
                .to_owned(),
        ));
    }
    let send = |request| send(http, request);
    let answer = token_client(app, token_url_text, client_auth)?
        .exchange_client_credentials()
        .request_async(&send)
        .await
        .map_err(classify)?;
    Ok(merged(previous, &answer))
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use wiremock::matchers::{body_string_contains, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    fn app() -> OAuthApp {
        OAuthApp {
            client_id: "cid".into(),
            client_secret: Some("secret".into()),
            redirect_uri: None,
            extra: Map::new(),
        }
    }

    #[tokio::test]
    async fn the_answers_other_members_are_kept_and_expires_in_zero_never_expires() {
        let provider = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/token"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "access_token": "at2", "token_type": "Bearer", "expires_in": 0,
                "instance_url": "https://acme.my.salesforce.com", "issued_at": "1700000000000"
            })))
            .mount(&provider)
            .await;
        let client = crate::upstream::client(std::time::Duration::from_secs(5)).unwrap();
        let http = CappedClient {
            client: &client,
            max_response_bytes: 1 << 20,
        };
        let previous = Credentials {
            access_token: Some("at1".into()),
            refresh_token: Some("rt1".into()),
            expires_at: Some(1),
            ..Credentials::default()
        };
        let url = format!("{}/token", provider.uri());
        let next = refresh(http, &app(), &url, &previous, ClientAuth::Body)
            .await
            .unwrap();
        assert_eq!(next.access_token.as_deref(), Some("at2"));
        assert_eq!(next.refresh_token.as_deref(), Some("rt1"));
        assert_eq!(next.expires_at, None);
        assert_eq!(next.extra["instance_url"], "https://acme.my.salesforce.com");
        assert!(!next.extra.contains_key("access_token"));
    }

    #[tokio::test]
    async fn the_client_credentials_grant_sends_the_app_as_basic_auth() {
        let provider = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/oauth2/token"))
            // base64("cid:secret")
            .and(header("authorization", "Basic Y2lkOnNlY3JldA=="))
            .and(body_string_contains("grant_type=client_credentials"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "access_token": "A21.app", "token_type": "Bearer", "expires_in": 32400,
                "app_id": "APP-80W", "nonce": "n"
            })))
            .expect(1)
            .mount(&provider)
            .await;
        let client = crate::upstream::client(std::time::Duration::from_secs(5)).unwrap();
        let http = CappedClient {
            client: &client,
            max_response_bytes: 1 << 20,
        };
        let url = format!("{}/v1/oauth2/token", provider.uri());
        let token = client_credentials(
            http,
            &app(),
            &url,
            &Credentials::default(),
            ClientAuth::Basic,
        )
        .await
        .unwrap();
        assert_eq!(token.access_token.as_deref(), Some("A21.app"));
        assert!(token.expires_at.is_some());
        assert_eq!(token.extra["app_id"], "APP-80W");
        let public = OAuthApp {
            client_secret: None,
            ..app()
        };
        let refused = client_credentials(
            http,
            &public,
            &url,
            &Credentials::default(),
            ClientAuth::Basic,
        )
        .await
        .unwrap_err();
        assert!(refused.to_string().contains("client_secret"), "{refused}");
        provider.verify().await;
    }
}
