//! Connecting a user's account (`gumcp-actors auth`): the OAuth authorization-code flow with
//! PKCE and a loopback redirect listener, or an API key typed at a hidden prompt (or piped on
//! stdin). Provider quirks that decide whether the user ends up with usable, refreshable
//! tokens are handled here: Google only hands out a refresh token with `access_type=offline`
//! and `prompt=consent`; Slack's user token comes from `user_scope` and sits under
//! `authed_user` in the answer; GitHub answers form-encoded unless asked for JSON (the
//! `oauth2` crate asks).

use std::time::Duration;

use oauth2::basic::BasicClient;
use oauth2::url::Url;
use oauth2::{
    AuthUrl, ClientId, CsrfToken, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
};
use serde_json::{Map, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::credentials::{unix_now, Credentials, OAuthApp};
use super::fields::{self, AuthField, FieldError, FieldSource};
use super::oauth::{self, TokenError};
use crate::servers::manifest::{AuthSpec, OAuthProvider};
use crate::upstream::{read_capped, CappedClient, ReadError};

/// Why an account could not be connected.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("{0}")]
    Setup(String),
    #[error("cannot listen for the OAuth redirect on {address}: {source}")]
    Listen {
        address: String,
        source: std::io::Error,
    },
    #[error("no redirect arrived within {0} s; run the command again and finish in the browser")]
    TimedOut(u64),
    #[error("the provider refused: {0}")]
    Denied(String),
    #[error("the token request failed: {0}")]
    Token(#[from] TokenError),
    #[error("reading the API key failed: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] crate::auth::store::AuthError),
    #[error(transparent)]
    Field(#[from] FieldError),
}

/// Where the browser is sent, and what must come back.
pub struct Authorization {
    pub url: Url,
    pub state: CsrfToken,
    pub verifier: PkceCodeVerifier,
    pub redirect: Url,
    /// The `[[auth.fields]]` the user gave (or the OAuth app's config named) before the
    /// sign-in, checked; they fill the endpoints and are stored with the credential.
    pub given: Map<String, Value>,
}

/// What the provider's redirect brought: the code, and the other query parameters (a field
/// may come from one: QuickBooks' `realmId`).
#[derive(Debug, Clone)]
pub struct Returned {
    pub code: String,
    pub params: Vec<(String, String)>,
}

impl Returned {
    /// A redirect that brought a code and nothing else.
    pub fn code(code: String) -> Returned {
        Returned {
            code,
            params: Vec::new(),
        }
    }
}

/// The fields of `spec` the user provides (`from = "user"`), each taken from the OAuth app's
/// config where it names one (guMCP's `custom_subdomain` in `oauth.json`), else from `ask`,
/// and checked against its format.
pub fn user_fields(
    app: Option<&OAuthApp>,
    spec: &AuthSpec,
    mut ask: impl FnMut(&AuthField) -> Result<Option<String>, ConnectError>,
) -> Result<Map<String, Value>, ConnectError> {
    let mut given = Map::new();
    for field in spec.fields.iter().filter(|f| f.from == FieldSource::User) {
        let configured = app
            .and_then(|app| app.extra.get(&field.name))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let raw = match configured {
            Some(raw) => raw,
            None => ask(field)?.ok_or_else(|| FieldError::Missing {
                label: field.label.clone(),
            })?,
        };
        given.insert(field.name.clone(), Value::String(field.accept(&raw)?));
    }
    Ok(given)
}

/// An endpoint of the provider for `app`: its `{tenant}` and the user's fields filled.
fn endpoint(
    app: &OAuthApp,
    spec: &AuthSpec,
    url: &str,
    given: &Map<String, Value>,
) -> Result<String, ConnectError> {
    Ok(fields::fill(&app.endpoint(url), &spec.fields, given)?)
}

/// The authorization URL for `app` as the server's manifest describes the provider, coming
/// back to the app's own `redirect_uri` (the `auth` command's loopback listener).
pub fn authorization(
    app: &OAuthApp,
    spec: &AuthSpec,
    given: Map<String, Value>,
) -> Result<Authorization, ConnectError> {
    let redirect_text = app
        .redirect_uri
        .clone()
        .unwrap_or_else(|| "http://localhost:8080/".to_owned());
    authorization_to(app, spec, redirect_text, given)
}

/// The authorization URL for `app`, coming back to `redirect_text` (the web connect flow's
/// callback): PKCE S256, a random state, the scopes and the provider's quirks; `given` are
/// the user's fields.
pub fn authorization_to(
    app: &OAuthApp,
    spec: &AuthSpec,
    redirect_text: String,
    given: Map<String, Value>,
) -> Result<Authorization, ConnectError> {
    let redirect = Url::parse(&redirect_text)
        .map_err(|err| ConnectError::Setup(format!("redirect_uri {redirect_text:?}: {err}")))?;
    let authorize = spec
        .authorize_url
        .as_deref()
        .map(|url| endpoint(app, spec, url, &given))
        .transpose()?
        .ok_or_else(|| ConnectError::Setup("the server declares no auth.authorize_url".into()))?;
    let client =
        BasicClient::new(ClientId::new(app.client_id.clone()))
            .set_auth_uri(AuthUrl::new(authorize.clone()).map_err(|err| {
                ConnectError::Setup(format!("authorize_url {authorize:?}: {err}"))
            })?)
            .set_redirect_uri(
                RedirectUrl::new(redirect_text.clone())
                    .map_err(|err| ConnectError::Setup(format!("redirect_uri: {err}")))?,
            );
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(CsrfToken::new_random)
        .set_pkce_challenge(challenge);
    match spec.provider {
        OAuthProvider::Slack => {
            request = request.add_extra_param("user_scope", spec.scopes.join(","));
        }
        OAuthProvider::Google => {
            request = request
                .add_scopes(spec.scopes.iter().cloned().map(Scope::new))
                .add_extra_param("access_type", "offline")
                .add_extra_param("prompt", "consent");
        }
        OAuthProvider::Microsoft => {
            request = request
                .add_scopes(spec.scopes.iter().cloned().map(Scope::new))
                .add_extra_param("response_mode", "query");
        }
        OAuthProvider::Atlassian => {
            request = request
                .add_scopes(spec.scopes.iter().cloned().map(Scope::new))
                .add_extra_param("audience", "api.atlassian.com")
                .add_extra_param("prompt", "consent");
        }
        // Zoom's scopes are the app's; it takes none in the authorization URL.
        OAuthProvider::Zoom => {}
        OAuthProvider::Dropbox => {
            request = request
                .add_scopes(spec.scopes.iter().cloned().map(Scope::new))
                .add_extra_param("token_access_type", "offline");
        }
        OAuthProvider::Reddit => {
            request = request
                .add_scopes(spec.scopes.iter().cloned().map(Scope::new))
                .add_extra_param("duration", "permanent");
        }
        OAuthProvider::Shopify => {
            request = request.add_extra_param("scope", spec.scopes.join(","));
        }
        OAuthProvider::Standard
        | OAuthProvider::Github
        | OAuthProvider::Notion
        | OAuthProvider::Airtable
        | OAuthProvider::Figma
        | OAuthProvider::X
        | OAuthProvider::Canva
        | OAuthProvider::Klaviyo
        | OAuthProvider::Docusign
        | OAuthProvider::Intuit => {
            request = request.add_scopes(spec.scopes.iter().cloned().map(Scope::new));
        }
    }
    let (url, state) = request.url();
    Ok(Authorization {
        url,
        state,
        verifier,
        redirect,
        given,
    })
}

/// Binds the redirect listener on the loopback port of the redirect URI.
pub async fn listen(redirect: &Url) -> Result<TcpListener, ConnectError> {
    let host = redirect.host_str().unwrap_or("localhost");
    if !matches!(host, "localhost" | "127.0.0.1" | "[::1]" | "::1") {
        return Err(ConnectError::Setup(format!(
            "redirect_uri must point at this machine (localhost) for the auth command, not {host}"
        )));
    }
    let port = redirect.port_or_known_default().unwrap_or(8080);
    let address = format!("127.0.0.1:{port}");
    TcpListener::bind(&address)
        .await
        .map_err(|source| ConnectError::Listen { address, source })
}

/// How long one connection to the redirect listener may take to send its request; a
/// connection that sends nothing is dropped then (and never holds up the others meanwhile).
const REDIRECT_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The most of a request read (request line and headers); a browser's redirect is far shorter.
const MAX_REQUEST_HEAD: u64 = 64 * 1024;

/// Waits for the provider's redirect on `listener` and returns its `code`, answering the
/// browser with a page that says what happened.
///
/// Anything on this machine can connect to the loopback port, so connections are served
/// side by side (one that sends nothing cannot block the real redirect), and a request that
/// does not carry this flow's `state` is answered and ignored rather than ending the flow: a
/// stray or forged request neither completes nor cancels it.
pub async fn receive_code(
    listener: &TcpListener,
    redirect: &Url,
    expected_state: &CsrfToken,
    timeout: Duration,
) -> Result<Returned, ConnectError> {
    let (outcomes, mut finished) = tokio::sync::mpsc::channel(1);
    // Dropped on return, which aborts every connection still being read.
    let mut connections = tokio::task::JoinSet::new();
    let waiting = async {
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, _) = accepted?;
                    while connections.try_join_next().is_some() {}
                    let expected = expected_state.secret().clone();
                    let outcomes = outcomes.clone();
                    connections.spawn(answer(stream, redirect.clone(), expected, outcomes));
                }
                Some(outcome) = finished.recv() => return outcome,
            }
        }
    };
    tokio::time::timeout(timeout, waiting)
        .await
        .map_err(|_| ConnectError::TimedOut(timeout.as_secs()))?
}

/// Reads one request on the redirect listener and answers it; sends the flow's outcome when
/// the request was this flow's redirect.
async fn answer(
    mut stream: tokio::net::TcpStream,
    redirect: Url,
    expected_state: String,
    outcomes: tokio::sync::mpsc::Sender<Result<Returned, ConnectError>>,
) {
    let mut request_line = String::new();
    let read = {
        let mut reader = BufReader::new((&mut stream).take(MAX_REQUEST_HEAD));
        tokio::time::timeout(REDIRECT_READ_TIMEOUT, async {
            reader.read_line(&mut request_line).await?;
            // The headers are read (and ignored) too: closing with bytes left unread resets
            // the connection, and the browser may then lose the page.
            let mut header = Vec::new();
            loop {
                header.clear();
                let read = reader.read_until(b'\n', &mut header).await?;
                if read == 0 || header.trim_ascii().is_empty() {
                    return Ok::<_, std::io::Error>(());
                }
            }
        })
        .await
    };
    if !matches!(read, Ok(Ok(()))) {
        return;
    }
    let target = request_line.split_whitespace().nth(1).unwrap_or("/");
    let url = match redirect.join(target) {
        Ok(url) if url.path() == redirect.path() => url,
        _ => {
            respond(&mut stream, "404 Not Found", "Not the OAuth redirect.").await;
            return;
        }
    };
    let param = |name: &str| {
        url.query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    };
    if param("state").as_deref() != Some(expected_state.as_str()) {
        tracing::warn!("ignored a request to the OAuth redirect whose state does not match");
        respond(
            &mut stream,
            "400 Bad Request",
            "The state of this redirect does not match the running sign-in; it was ignored. \
             Finish the sign-in from the URL the terminal shows.",
        )
        .await;
        return;
    }
    let outcome = if let Some(error) = param("error") {
        let detail = param("error_description").unwrap_or_default();
        Err(ConnectError::Denied(printable(&format!(
            "{error} {detail}"
        ))))
    } else {
        param("code")
            .map(|code| Returned {
                code,
                params: url
                    .query_pairs()
                    .filter(|(key, _)| !matches!(key.as_ref(), "code" | "state"))
                    .map(|(key, value)| (key.into_owned(), value.into_owned()))
                    .collect(),
            })
            .ok_or_else(|| ConnectError::Denied("the redirect carried no code".into()))
    };
    let page = match &outcome {
        Ok(_) => (
            "200 OK",
            "Connected. You can close this tab and return to the terminal.",
        ),
        Err(_) => (
            "400 Bad Request",
            "The account was not connected; see the terminal.",
        ),
    };
    respond(&mut stream, page.0, page.1).await;
    // The page is written before the outcome ends the wait (which aborts this task).
    let _ = outcomes.send(outcome).await;
}

/// The provider's error text as it may reach a terminal: control characters (escape
/// sequences, line breaks) become spaces, so the provider, or whoever forged the redirect,
/// cannot rewrite what the user sees.
pub fn printable(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    cleaned.trim().to_owned()
}

async fn respond(stream: &mut tokio::net::TcpStream, status: &str, text: &str) {
    let body = format!("<!doctype html><title>gumcp-actors</title><p>{text}</p>");
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Trades the code for credentials, the way the provider wants it; answers over
/// `http.max_response_bytes` are refused.
pub async fn exchange(
    http: CappedClient<'_>,
    app: &OAuthApp,
    spec: &AuthSpec,
    authorization: Authorization,
    returned: Returned,
) -> Result<Credentials, ConnectError> {
    let given = authorization.given;
    let token_url = spec
        .token_url
        .as_deref()
        .map(|url| endpoint(app, spec, url, &given))
        .transpose()?
        .ok_or_else(|| ConnectError::Setup("the server declares no auth.token_url".into()))?;
    let token_url = token_url.as_str();
    let redirect = authorization.redirect.as_str();
    let code = returned.code;
    let mut credentials = if spec.provider == OAuthProvider::Slack {
        slack_exchange(http, app, token_url, redirect, code, authorization.verifier).await?
    } else {
        oauth::exchange_code(
            http,
            app,
            token_url,
            redirect,
            code,
            authorization.verifier,
            client_auth(spec),
        )
        .await?
    };
    complete_fields(http, spec, &mut credentials, &given, &returned.params).await?;
    Ok(credentials)
}

/// How `spec`'s provider takes the client credentials at its token endpoint.
pub fn client_auth(spec: &AuthSpec) -> oauth::ClientAuth {
    if spec.provider.basic_client_auth() {
        oauth::ClientAuth::Basic
    } else {
        oauth::ClientAuth::Body
    }
}

/// The first app token of a client-credentials server (PayPal), its fields completed.
pub async fn client_credentials(
    http: CappedClient<'_>,
    app: &OAuthApp,
    spec: &AuthSpec,
) -> Result<Credentials, ConnectError> {
    let given = user_fields(Some(app), spec, |_| Ok(None))?;
    let token_url = spec
        .token_url
        .as_deref()
        .ok_or_else(|| ConnectError::Setup("the server declares no auth.token_url".into()))?;
    let token_url = app
        .extra
        .get("token_uri")
        .and_then(Value::as_str)
        .unwrap_or(token_url);
    let token_url = endpoint(app, spec, token_url, &given)?;
    let mut credentials = oauth::client_credentials(
        http,
        app,
        &token_url,
        &Credentials::default(),
        oauth::ClientAuth::Basic,
    )
    .await?;
    complete_fields(http, spec, &mut credentials, &given, &[]).await?;
    Ok(credentials)
}

/// Stores every `[[auth.fields]]` value with the new credential: what the user gave, what
/// the token answer (already among the credential's members) or the redirect carried, and
/// what the fields' endpoints answer when asked with the new access token — each checked.
pub async fn complete_fields(
    http: CappedClient<'_>,
    spec: &AuthSpec,
    credentials: &mut Credentials,
    given: &Map<String, Value>,
    redirect_params: &[(String, String)],
) -> Result<(), ConnectError> {
    let mut answers: std::collections::HashMap<String, Value> = Default::default();
    for field in &spec.fields {
        let value = match field.from {
            FieldSource::User => fields::stored(field, given)?,
            FieldSource::Token => field.pick(&Value::Object(credentials.extra.clone()))?,
            FieldSource::Redirect => {
                let raw = redirect_params
                    .iter()
                    .find(|(key, _)| *key == field.name)
                    .map(|(_, value)| value.as_str())
                    .ok_or_else(|| FieldError::Missing {
                        label: field.label.clone(),
                    })?;
                field.accept(raw)?
            }
            FieldSource::Response => {
                let url = field.url.clone().unwrap_or_default();
                if !answers.contains_key(&url) {
                    let scheme = field.scheme.as_deref().unwrap_or("Bearer");
                    let answer = read_with_token(http, &url, scheme, credentials).await?;
                    answers.insert(url.clone(), answer);
                }
                field.pick(&answers[&url])?
            }
        };
        credentials
            .extra
            .insert(field.name.clone(), Value::String(value));
    }
    Ok(())
}

/// The JSON answer of `url` asked with the credential's new access token under `scheme`.
async fn read_with_token(
    http: CappedClient<'_>,
    url: &str,
    scheme: &str,
    credentials: &Credentials,
) -> Result<Value, ConnectError> {
    let token = credentials.access_token.as_deref().unwrap_or_default();
    let response = http
        .client
        .get(url)
        .header(reqwest::header::AUTHORIZATION, format!("{scheme} {token}"))
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|err| TokenError::Transient(err.without_url().to_string()))?;
    let status = response.status();
    let body = read_capped(response, http.max_response_bytes)
        .await
        .map_err(|err| TokenError::Transient(err.to_string()))?;
    if !status.is_success() {
        return Err(TokenError::Rejected(format!(
            "the account's details could not be read (HTTP {})",
            status.as_u16()
        ))
        .into());
    }
    serde_json::from_slice(&body)
        .map_err(|_| TokenError::Rejected("the account's details are not JSON".to_owned()).into())
}

/// Slack's `oauth.v2.access`: HTTP 200 with `ok: false` on failure, and the user token under
/// `authed_user` (the top-level token, if any, is the bot's and is kept beside it).
async fn slack_exchange(
    http: CappedClient<'_>,
    app: &OAuthApp,
    token_url: &str,
    redirect: &str,
    code: String,
    verifier: PkceCodeVerifier,
) -> Result<Credentials, ConnectError> {
    let mut form = vec![
        ("client_id", app.client_id.clone()),
        ("code", code),
        ("redirect_uri", redirect.to_owned()),
        ("code_verifier", verifier.secret().clone()),
    ];
    if let Some(secret) = &app.client_secret {
        form.push(("client_secret", secret.clone()));
    }
    let response = http
        .client
        .post(token_url)
        .form(&form)
        .send()
        .await
        .map_err(|err| TokenError::Transient(err.without_url().to_string()))?;
    let body = read_capped(response, http.max_response_bytes)
        .await
        .map_err(|err| match err {
            ReadError::TooLarge { limit } => TokenError::Transient(format!(
                "Slack's answer is larger than servers.max_response_bytes ({limit} bytes)"
            )),
            ReadError::Cut(err) => TokenError::Transient(err.to_string()),
        })?;
    let answer: Value = serde_json::from_slice(&body)
        .map_err(|err| TokenError::Rejected(format!("Slack's answer is not JSON: {err}")))?;
    if answer.get("ok") != Some(&Value::Bool(true)) {
        let error = answer
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("unknown error");
        return Err(TokenError::Rejected(error.to_owned()).into());
    }
    let user = answer.get("authed_user").cloned().unwrap_or(Value::Null);
    let text = |value: &Value, key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
    let mut credentials = Credentials {
        access_token: text(&user, "access_token").or_else(|| text(&answer, "access_token")),
        refresh_token: text(&user, "refresh_token").or_else(|| text(&answer, "refresh_token")),
        expires_at: user
            .get("expires_in")
            .or_else(|| answer.get("expires_in"))
            .and_then(Value::as_i64)
            .map(|lifetime| unix_now() + lifetime),
        ..Credentials::default()
    };
    if let Some(bot) = text(&answer, "access_token") {
        credentials.extra.insert("bot_token".into(), bot.into());
    }
    for key in ["team", "scope", "token_type"] {
        if let Some(value) = answer.get(key) {
            credentials.extra.insert(key.into(), value.clone());
        }
    }
    if let Some(user_id) = user.get("id") {
        credentials
            .extra
            .insert("authed_user_id".into(), user_id.clone());
    }
    Ok(credentials)
}

/// Tells the provider (RFC 7009, at the manifest's `revoke_url`) that `credentials` are no
/// longer wanted: the refresh token if there is one (revoking it ends its access tokens too),
/// else the access token. `Ok(false)` when the provider has no revocation endpoint.
pub async fn revoke(
    http: CappedClient<'_>,
    app: &OAuthApp,
    spec: &AuthSpec,
    credentials: &Credentials,
) -> Result<bool, TokenError> {
    let Some(revoke_url) = spec.revoke_url.as_deref() else {
        return Ok(false);
    };
    oauth::revoke(http, app, revoke_url, credentials, client_auth(spec)).await?;
    Ok(true)
}

/// Reads an API key: at a hidden prompt on a terminal, else the first line of stdin.
pub fn read_api_key(service: &str) -> Result<String, ConnectError> {
    use std::io::IsTerminal;
    let key = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("API key for {service} (input hidden): "))?
    } else {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        line
    };
    let key = key.trim().to_owned();
    if key.is_empty() {
        return Err(ConnectError::Setup("no API key was given".into()));
    }
    Ok(key)
}

/// Reads a field the user provides (a subdomain): at a prompt on a terminal, else the next
/// line of stdin. Not hidden: it is no secret.
pub fn read_field(field: &AuthField) -> Result<Option<String>, ConnectError> {
    use std::io::{BufRead, IsTerminal, Write};
    if std::io::stdin().is_terminal() {
        let mut stdout = std::io::stdout().lock();
        let _ = write!(stdout, "{}: ", field.label).and_then(|()| stdout.flush());
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let line = line.trim();
    Ok((!line.is_empty()).then(|| line.to_owned()))
}

/// Opens `url` in a browser where one can be found; reports whether it tried.
pub fn open_browser(url: &Url) -> bool {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else if std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some()
    {
        "xdg-open"
    } else {
        return false;
    };
    std::process::Command::new(opener)
        .arg(url.as_str())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use wiremock::matchers::{body_string_contains, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    /// The shared client, reading up to `servers.max_response_bytes` as shipped (or `limit`).
    fn capped(client: &reqwest::Client, limit: usize) -> CappedClient<'_> {
        CappedClient {
            client,
            max_response_bytes: limit,
        }
    }

    const LIMIT: usize = 16 << 20;

    fn app() -> OAuthApp {
        OAuthApp {
            client_id: "cid".into(),
            client_secret: Some("secret".into()),
            redirect_uri: Some("http://localhost:8765/callback".into()),
            extra: Default::default(),
        }
    }

    fn spec(provider: OAuthProvider, token_url: Option<String>) -> AuthSpec {
        AuthSpec {
            kind: crate::servers::manifest::AuthKind::Oauth2,
            service: None,
            scopes: vec!["a.read".into(), "b.write".into()],
            authorize_url: Some("https://provider.example/authorize".into()),
            token_url,
            refresh_url: None,
            revoke_url: None,
            provider,
            inject: None,
            key_fields: Vec::new(),
            session: None,
            fields: Vec::new(),
        }
    }

    fn param(url: &Url, name: &str) -> Option<String> {
        url.query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    }

    #[test]
    fn google_asks_for_offline_access_and_consent() {
        let auth = authorization(&app(), &spec(OAuthProvider::Google, None), Map::new()).unwrap();
        assert_eq!(param(&auth.url, "access_type").as_deref(), Some("offline"));
        assert_eq!(param(&auth.url, "prompt").as_deref(), Some("consent"));
        assert_eq!(param(&auth.url, "scope").as_deref(), Some("a.read b.write"));
        assert_eq!(
            param(&auth.url, "code_challenge_method").as_deref(),
            Some("S256")
        );
        assert_eq!(auth.redirect.port(), Some(8765));
    }

    #[test]
    fn microsoft_signs_in_to_the_apps_tenant_with_offline_access() {
        let mut spec = spec(OAuthProvider::Microsoft, None);
        spec.authorize_url =
            Some("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize".into());
        spec.scopes = vec![
            "https://graph.microsoft.com/Mail.Send".into(),
            "offline_access".into(),
        ];
        let auth = authorization(&app(), &spec, Map::new()).unwrap();
        assert_eq!(auth.url.path(), "/common/oauth2/v2.0/authorize");
        assert_eq!(param(&auth.url, "response_mode").as_deref(), Some("query"));
        assert_eq!(
            param(&auth.url, "scope").as_deref(),
            Some("https://graph.microsoft.com/Mail.Send offline_access")
        );
        assert_eq!(
            param(&auth.url, "code_challenge_method").as_deref(),
            Some("S256")
        );
        let mut tenant_app = app();
        tenant_app
            .extra
            .insert("tenant_id".into(), json!("contoso.onmicrosoft.com"));
        let auth = authorization(&tenant_app, &spec, Map::new()).unwrap();
        assert_eq!(
            auth.url.path(),
            "/contoso.onmicrosoft.com/oauth2/v2.0/authorize"
        );
    }

    #[tokio::test]
    async fn microsoft_trades_the_code_at_the_tenants_token_endpoint() {
        let microsoft = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/contoso/oauth2/v2.0/token"))
            .and(body_string_contains("grant_type=authorization_code"))
            .and(body_string_contains("code=the-code"))
            .and(body_string_contains("client_secret=secret"))
            .and(body_string_contains("code_verifier="))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "token_type": "Bearer", "scope": "https://graph.microsoft.com/Mail.Send",
                "expires_in": 3599, "access_token": "EwB.first", "refresh_token": "M.r1"
            })))
            .expect(1)
            .mount(&microsoft)
            .await;
        let spec = spec(
            OAuthProvider::Microsoft,
            Some(format!("{}/{{tenant}}/oauth2/v2.0/token", microsoft.uri())),
        );
        let mut tenant_app = app();
        tenant_app
            .extra
            .insert("tenant_id".into(), json!("contoso"));
        let auth = authorization(&tenant_app, &spec, Map::new()).unwrap();
        let client = crate::upstream::client(std::time::Duration::from_secs(5)).unwrap();
        let creds = exchange(
            capped(&client, LIMIT),
            &tenant_app,
            &spec,
            auth,
            Returned::code("the-code".into()),
        )
        .await
        .unwrap();
        assert_eq!(creds.access_token.as_deref(), Some("EwB.first"));
        assert_eq!(creds.refresh_token.as_deref(), Some("M.r1"));
    }

    #[test]
    fn atlassian_asks_for_its_api_audience_and_consent() {
        let auth =
            authorization(&app(), &spec(OAuthProvider::Atlassian, None), Map::new()).unwrap();
        assert_eq!(
            param(&auth.url, "audience").as_deref(),
            Some("api.atlassian.com")
        );
        assert_eq!(param(&auth.url, "prompt").as_deref(), Some("consent"));
        assert_eq!(param(&auth.url, "scope").as_deref(), Some("a.read b.write"));
        assert_eq!(param(&auth.url, "response_type").as_deref(), Some("code"));
        assert_eq!(
            param(&auth.url, "code_challenge_method").as_deref(),
            Some("S256")
        );
    }

    #[tokio::test]
    async fn atlassian_trades_the_code_for_a_rotating_refresh_token() {
        let atlassian = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/oauth/token"))
            .and(body_string_contains("grant_type=authorization_code"))
            .and(body_string_contains("code=the-code"))
            .and(body_string_contains("client_id=cid"))
            .and(body_string_contains("client_secret=secret"))
            .and(body_string_contains("redirect_uri="))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "access_token": "eyJat.first", "token_type": "Bearer", "expires_in": 3600,
                "refresh_token": "ar1", "scope": "read:jira-work offline_access"
            })))
            .expect(1)
            .mount(&atlassian)
            .await;
        let spec = spec(
            OAuthProvider::Atlassian,
            Some(format!("{}/oauth/token", atlassian.uri())),
        );
        let auth = authorization(&app(), &spec, Map::new()).unwrap();
        let client = crate::upstream::client(std::time::Duration::from_secs(5)).unwrap();
        let creds = exchange(
            capped(&client, LIMIT),
            &app(),
            &spec,
            auth,
            Returned::code("the-code".into()),
        )
        .await
        .unwrap();
        assert_eq!(creds.access_token.as_deref(), Some("eyJat.first"));
        assert_eq!(creds.refresh_token.as_deref(), Some("ar1"));
        assert!(creds.expires_at.is_some());
        atlassian.verify().await;
    }

    #[test]
    fn slack_asks_for_user_scopes() {
        let auth = authorization(&app(), &spec(OAuthProvider::Slack, None), Map::new()).unwrap();
        assert_eq!(
            param(&auth.url, "user_scope").as_deref(),
            Some("a.read,b.write")
        );
        assert_eq!(param(&auth.url, "scope"), None);
    }

    #[tokio::test]
    async fn slack_hands_out_the_user_token_and_keeps_the_bot_token_beside_it() {
        let slack = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/oauth.v2.access"))
            .and(body_string_contains("code=the-code"))
            .and(body_string_contains("client_secret=secret"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "ok": true, "access_token": "xoxb-bot", "token_type": "bot",
                "team": { "id": "T1" },
                "authed_user": { "id": "U1", "access_token": "xoxp-user", "scope": "a.read" }
            })))
            .mount(&slack)
            .await;
        let token_url = format!("{}/oauth.v2.access", slack.uri());
        let spec = spec(OAuthProvider::Slack, Some(token_url));
        let auth = authorization(&app(), &spec, Map::new()).unwrap();
        let client = crate::upstream::client(std::time::Duration::from_secs(5)).unwrap();
        let creds = exchange(
            capped(&client, LIMIT),
            &app(),
            &spec,
            auth,
            Returned::code("the-code".into()),
        )
        .await
        .unwrap();
        assert_eq!(creds.access_token.as_deref(), Some("xoxp-user"));
        assert_eq!(creds.extra["bot_token"], "xoxb-bot");
        assert_eq!(creds.extra["team"]["id"], "T1");
    }

    #[tokio::test]
    async fn klaviyo_asks_for_its_scopes_with_pkce_and_takes_the_client_credentials_as_basic_auth()
    {
        let klaviyo = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/oauth/token"))
            // base64("cid:secret")
            .and(wiremock::matchers::header(
                "authorization",
                "Basic Y2lkOnNlY3JldA==",
            ))
            .and(body_string_contains("code=the-code"))
            .and(body_string_contains("code_verifier="))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "access_token": "kl-at", "token_type": "Bearer", "expires_in": 3600,
                "refresh_token": "kl-rt"
            })))
            .expect(1)
            .mount(&klaviyo)
            .await;
        let spec = spec(
            OAuthProvider::Klaviyo,
            Some(format!("{}/oauth/token", klaviyo.uri())),
        );
        let auth = authorization(&app(), &spec, Map::new()).unwrap();
        assert_eq!(param(&auth.url, "scope").as_deref(), Some("a.read b.write"));
        assert_eq!(
            param(&auth.url, "code_challenge_method").as_deref(),
            Some("S256")
        );
        let client = crate::upstream::client(std::time::Duration::from_secs(5)).unwrap();
        let creds = exchange(
            capped(&client, LIMIT),
            &app(),
            &spec,
            auth,
            Returned::code("the-code".into()),
        )
        .await
        .unwrap();
        assert_eq!(creds.refresh_token.as_deref(), Some("kl-rt"));
        let requests = klaviyo.received_requests().await.unwrap_or_default();
        let body = String::from_utf8_lossy(&requests[0].body).into_owned();
        assert!(!body.contains("client_secret"), "{body}");
        klaviyo.verify().await;
    }

    #[tokio::test]
    async fn notion_takes_the_client_credentials_as_basic_auth() {
        let notion = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/oauth/token"))
            // base64("cid:secret")
            .and(wiremock::matchers::header(
                "authorization",
                "Basic Y2lkOnNlY3JldA==",
            ))
            .and(body_string_contains("code=the-code"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "access_token": "secret_notion", "token_type": "bearer", "workspace_name": "Acme"
            })))
            .expect(1)
            .mount(&notion)
            .await;
        let spec = spec(
            OAuthProvider::Notion,
            Some(format!("{}/v1/oauth/token", notion.uri())),
        );
        let auth = authorization(&app(), &spec, Map::new()).unwrap();
        let client = crate::upstream::client(std::time::Duration::from_secs(5)).unwrap();
        let creds = exchange(
            capped(&client, LIMIT),
            &app(),
            &spec,
            auth,
            Returned::code("the-code".into()),
        )
        .await
        .unwrap();
        assert_eq!(creds.access_token.as_deref(), Some("secret_notion"));
        notion.verify().await;
    }

    #[tokio::test]
    async fn zoom_asks_for_no_scopes_and_takes_the_client_credentials_as_basic_auth() {
        let zoom = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/oauth/token"))
            // base64("cid:secret")
            .and(wiremock::matchers::header(
                "authorization",
                "Basic Y2lkOnNlY3JldA==",
            ))
            .and(body_string_contains("grant_type=authorization_code"))
            .and(body_string_contains("code=the-code"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "access_token": "eyJzm", "token_type": "bearer", "refresh_token": "zr1",
                "expires_in": 3599, "scope": "meeting:read:meeting"
            })))
            .expect(1)
            .mount(&zoom)
            .await;
        let spec = spec(
            OAuthProvider::Zoom,
            Some(format!("{}/oauth/token", zoom.uri())),
        );
        let auth = authorization(&app(), &spec, Map::new()).unwrap();
        assert_eq!(param(&auth.url, "scope"), None);
        assert_eq!(param(&auth.url, "client_id").as_deref(), Some("cid"));
        let dropbox = authorization(
            &app(),
            &self::spec(OAuthProvider::Dropbox, None),
            Map::new(),
        )
        .unwrap();
        assert_eq!(
            param(&dropbox.url, "token_access_type").as_deref(),
            Some("offline")
        );
        assert_eq!(
            param(&dropbox.url, "scope").as_deref(),
            Some("a.read b.write")
        );
        let client = crate::upstream::client(std::time::Duration::from_secs(5)).unwrap();
        let creds = exchange(
            capped(&client, LIMIT),
            &app(),
            &spec,
            auth,
            Returned::code("the-code".into()),
        )
        .await
        .unwrap();
        assert_eq!(creds.refresh_token.as_deref(), Some("zr1"));
        let requests = zoom.received_requests().await.unwrap_or_default();
        let body = String::from_utf8_lossy(&requests[0].body).into_owned();
        assert!(!body.contains("client_secret"), "{body}");
        zoom.verify().await;
    }

    /// A PKCE provider's code exchange: the verifier whose challenge the authorization URL
    /// carried; a public app (no secret) sends its client id in the form and no
    /// `Authorization`, a confidential one its credentials as HTTP Basic only.
    async fn pkce_exchange(provider: OAuthProvider) {
        let token = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/oauth2/token"))
            .and(body_string_contains("grant_type=authorization_code"))
            .and(body_string_contains("code_verifier="))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "access_token": "at1", "token_type": "bearer", "refresh_token": "rt1",
                "expires_in": 3600
            })))
            .expect(2)
            .mount(&token)
            .await;
        let spec = spec(provider, Some(format!("{}/oauth2/token", token.uri())));
        let client = crate::upstream::client(std::time::Duration::from_secs(5)).unwrap();
        let public = OAuthApp {
            client_secret: None,
            ..app()
        };
        for app in [public, app()] {
            let auth = authorization(&app, &spec, Map::new()).unwrap();
            assert_eq!(
                param(&auth.url, "code_challenge_method").as_deref(),
                Some("S256")
            );
            assert_eq!(param(&auth.url, "scope").as_deref(), Some("a.read b.write"));
            let verifier = auth.verifier.secret().clone();
            let creds = exchange(
                capped(&client, LIMIT),
                &app,
                &spec,
                auth,
                Returned::code("c".into()),
            )
            .await
            .unwrap();
            assert_eq!(creds.refresh_token.as_deref(), Some("rt1"));
            let requests = token.received_requests().await.unwrap_or_default();
            let last = requests.last().unwrap();
            let body = String::from_utf8_lossy(&last.body).into_owned();
            assert!(
                body.contains(&format!("code_verifier={verifier}")),
                "{body}"
            );
            assert!(!body.contains("client_secret"), "{body}");
            let authorization = last.headers.get("authorization");
            if app.client_secret.is_some() {
                // base64("cid:secret")
                assert_eq!(authorization.unwrap(), "Basic Y2lkOnNlY3JldA==");
                assert!(!body.contains("client_id"), "{body}");
            } else {
                assert!(
                    authorization.is_none(),
                    "a public app has no secret to send"
                );
                assert!(body.contains("client_id=cid"), "{body}");
            }
        }
        token.verify().await;
    }

    #[tokio::test]
    async fn reddit_asks_for_a_permanent_grant_and_takes_basic_auth_at_its_token_endpoint() {
        let reddit = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/api/v1/access_token"))
            // base64("cid:secret")
            .and(wiremock::matchers::header(
                "authorization",
                "Basic Y2lkOnNlY3JldA==",
            ))
            .and(body_string_contains("grant_type=authorization_code"))
            .and(body_string_contains("code=the-code"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "access_token": "eyJhb.reddit", "token_type": "bearer", "expires_in": 86400,
                "refresh_token": "rr1", "scope": "identity read"
            })))
            .expect(1)
            .mount(&reddit)
            .await;
        let spec = spec(
            OAuthProvider::Reddit,
            Some(format!("{}/api/v1/access_token", reddit.uri())),
        );
        let auth = authorization(&app(), &spec, Map::new()).unwrap();
        assert_eq!(param(&auth.url, "duration").as_deref(), Some("permanent"));
        assert_eq!(param(&auth.url, "scope").as_deref(), Some("a.read b.write"));
        let client = crate::upstream::client(std::time::Duration::from_secs(5)).unwrap();
        let creds = exchange(
            capped(&client, LIMIT),
            &app(),
            &spec,
            auth,
            Returned::code("the-code".into()),
        )
        .await
        .unwrap();
        assert_eq!(creds.refresh_token.as_deref(), Some("rr1"));
        let requests = reddit.received_requests().await.unwrap_or_default();
        let body = String::from_utf8_lossy(&requests[0].body).into_owned();
        assert!(!body.contains("client_secret"), "{body}");
        reddit.verify().await;
    }

    #[tokio::test]
    async fn reddit_revokes_the_refresh_token_with_basic_auth() {
        let reddit = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/api/v1/revoke_token"))
            // base64("cid:secret")
            .and(wiremock::matchers::header(
                "authorization",
                "Basic Y2lkOnNlY3JldA==",
            ))
            .and(body_string_contains("token=rr1"))
            .and(body_string_contains("token_type_hint=refresh_token"))
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
            .mount(&reddit)
            .await;
        let mut spec = spec(OAuthProvider::Reddit, None);
        spec.revoke_url = Some(format!("{}/api/v1/revoke_token", reddit.uri()));
        let credentials = Credentials {
            access_token: Some("eyJhb.reddit".into()),
            refresh_token: Some("rr1".into()),
            ..Credentials::default()
        };
        let client = crate::upstream::client(std::time::Duration::from_secs(5)).unwrap();
        let revoked = revoke(capped(&client, LIMIT), &app(), &spec, &credentials)
            .await
            .unwrap();
        assert!(revoked);
        let requests = reddit.received_requests().await.unwrap_or_default();
        let body = String::from_utf8_lossy(&requests[0].body).into_owned();
        assert!(!body.contains("client_secret"), "{body}");
        reddit.verify().await;
    }

    #[tokio::test]
    async fn airtable_trades_the_code_with_its_verifier_as_a_public_or_confidential_app() {
        pkce_exchange(OAuthProvider::Airtable).await;
    }

    #[tokio::test]
    async fn x_trades_the_code_with_its_verifier_as_a_public_or_confidential_app() {
        pkce_exchange(OAuthProvider::X).await;
    }

    #[tokio::test]
    async fn canva_trades_the_code_with_its_verifier_and_basic_auth() {
        pkce_exchange(OAuthProvider::Canva).await;
    }

    /// Mailchimp: a token that never expires (`expires_in: 0`), then the data center read
    /// from the metadata endpoint with the token under its `OAuth` scheme, stored as `dc`.
    #[tokio::test]
    async fn a_field_is_read_from_an_endpoint_with_the_new_token() {
        let mailchimp = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/oauth2/token"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "access_token": "mc-at", "expires_in": 0, "scope": null
            })))
            .expect(1)
            .mount(&mailchimp)
            .await;
        Mock::given(method("GET"))
            .and(path("/oauth2/metadata"))
            .and(wiremock::matchers::header("authorization", "OAuth mc-at"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "dc": "us21", "accountname": "Acme", "api_endpoint": "https://us21.api.mailchimp.com"
            })))
            .expect(1)
            .mount(&mailchimp)
            .await;
        let mut spec = spec(
            OAuthProvider::Standard,
            Some(format!("{}/oauth2/token", mailchimp.uri())),
        );
        spec.fields = vec![AuthField {
            name: "dc".into(),
            label: "Mailchimp data center".into(),
            from: FieldSource::Response,
            format: fields::FieldFormat::Label,
            hosts: Vec::new(),
            url: Some(format!("{}/oauth2/metadata", mailchimp.uri())),
            scheme: Some("OAuth".into()),
            select: None,
        }];
        let auth = authorization(&app(), &spec, Map::new()).unwrap();
        let client = crate::upstream::client(std::time::Duration::from_secs(5)).unwrap();
        let creds = exchange(
            capped(&client, LIMIT),
            &app(),
            &spec,
            auth,
            Returned::code("c".into()),
        )
        .await
        .unwrap();
        assert_eq!(creds.expires_at, None, "expires_in 0 never expires");
        assert_eq!(creds.extra["dc"], "us21");
        mailchimp.verify().await;
    }

    /// Shopify: the store the user gave in the endpoints, the scopes comma-separated, a token
    /// answer with no `token_type` and no expiry, the store kept with it.
    #[tokio::test]
    async fn shopify_signs_in_at_the_users_store() {
        let shopify = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/acme/admin/oauth/access_token"))
            .and(body_string_contains("code=the-code"))
            .and(body_string_contains("client_secret=secret"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "access_token": "shpat_1", "scope": "read_products,write_products"
            })))
            .expect(1)
            .mount(&shopify)
            .await;
        let mut spec = spec(
            OAuthProvider::Shopify,
            Some(format!(
                "{}/{{custom_subdomain}}/admin/oauth/access_token",
                shopify.uri()
            )),
        );
        spec.authorize_url =
            Some("https://{custom_subdomain}.myshopify.com/admin/oauth/authorize".into());
        spec.fields = vec![AuthField {
            name: "custom_subdomain".into(),
            label: "Store".into(),
            from: FieldSource::User,
            format: fields::FieldFormat::Label,
            hosts: Vec::new(),
            url: None,
            scheme: None,
            select: None,
        }];
        let given = user_fields(Some(&app()), &spec, |_| Ok(Some("Acme".into()))).unwrap();
        let auth = authorization(&app(), &spec, given).unwrap();
        assert_eq!(auth.url.host_str(), Some("acme.myshopify.com"));
        assert_eq!(param(&auth.url, "scope").as_deref(), Some("a.read,b.write"));
        let client = crate::upstream::client(std::time::Duration::from_secs(5)).unwrap();
        let creds = exchange(
            capped(&client, LIMIT),
            &app(),
            &spec,
            auth,
            Returned::code("the-code".into()),
        )
        .await
        .unwrap();
        assert_eq!(creds.access_token.as_deref(), Some("shpat_1"));
        assert_eq!(creds.expires_at, None);
        assert_eq!(creds.extra["custom_subdomain"], "acme");
        let hostile = user_fields(Some(&app()), &spec, |_| Ok(Some("evil.com/".into())));
        assert!(matches!(hostile, Err(ConnectError::Field(_))));
        shopify.verify().await;
    }

    fn docusign_fields(userinfo: &str) -> Vec<AuthField> {
        let field = |name: &str, format, hosts: &[&str]| AuthField {
            name: name.into(),
            label: name.into(),
            from: FieldSource::Response,
            format,
            hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
            url: Some(userinfo.to_owned()),
            scheme: None,
            select: Some(format!("/accounts/[is_default=true]/{name}")),
        };
        vec![
            field(
                "base_uri",
                fields::FieldFormat::Origin,
                &[".docusign.net", ".docusign.com"],
            ),
            field("account_id", fields::FieldFormat::Id, &[]),
        ]
    }

    /// DocuSign: Basic client auth at the token endpoint; the default account's id and base
    /// URI from `userinfo` (one read for both); a base URI off DocuSign is refused.
    #[tokio::test]
    async fn docusign_takes_the_default_account_from_userinfo() {
        let docusign = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/oauth/token"))
            // base64("cid:secret")
            .and(wiremock::matchers::header(
                "authorization",
                "Basic Y2lkOnNlY3JldA==",
            ))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "access_token": "ds-at", "token_type": "Bearer", "refresh_token": "ds-rt",
                "expires_in": 28800
            })))
            .expect(2)
            .mount(&docusign)
            .await;
        Mock::given(method("GET"))
            .and(path("/oauth/userinfo"))
            .and(wiremock::matchers::header("authorization", "Bearer ds-at"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "accounts": [
                { "account_id": "acc-1", "is_default": false, "base_uri": "https://na2.docusign.net" },
                { "account_id": "acc-42", "is_default": true, "base_uri": "https://na3.docusign.net" }
            ]})))
            .up_to_n_times(1)
            .mount(&docusign)
            .await;
        Mock::given(method("GET"))
            .and(path("/oauth/userinfo"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "accounts": [
                { "account_id": "acc-42", "is_default": true, "base_uri": "https://evil.example.com" }
            ]})))
            .mount(&docusign)
            .await;
        let mut spec = spec(
            OAuthProvider::Docusign,
            Some(format!("{}/oauth/token", docusign.uri())),
        );
        spec.fields = docusign_fields(&format!("{}/oauth/userinfo", docusign.uri()));
        let client = crate::upstream::client(std::time::Duration::from_secs(5)).unwrap();
        let auth = authorization(&app(), &spec, Map::new()).unwrap();
        let creds = exchange(
            capped(&client, LIMIT),
            &app(),
            &spec,
            auth,
            Returned::code("c".into()),
        )
        .await
        .unwrap();
        assert_eq!(creds.extra["base_uri"], "https://na3.docusign.net");
        assert_eq!(creds.extra["account_id"], "acc-42");
        let auth = authorization(&app(), &spec, Map::new()).unwrap();
        let refused = exchange(
            capped(&client, LIMIT),
            &app(),
            &spec,
            auth,
            Returned::code("c".into()),
        )
        .await
        .unwrap_err();
        assert!(matches!(refused, ConnectError::Field(_)), "{refused}");
        let requests = docusign.received_requests().await.unwrap_or_default();
        let userinfo_reads = requests
            .iter()
            .filter(|r| r.url.path() == "/oauth/userinfo")
            .count();
        assert_eq!(userinfo_reads, 2, "one read per sign-in for both fields");
    }

    #[tokio::test]
    async fn slacks_ok_false_is_a_refusal() {
        let slack = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({ "ok": false, "error": "invalid_code" })),
            )
            .mount(&slack)
            .await;
        let spec = spec(OAuthProvider::Slack, Some(format!("{}/x", slack.uri())));
        let auth = authorization(&app(), &spec, Map::new()).unwrap();
        let client = crate::upstream::client(std::time::Duration::from_secs(5)).unwrap();
        let err = exchange(
            capped(&client, LIMIT),
            &app(),
            &spec,
            auth,
            Returned::code("c".into()),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("invalid_code"), "{err}");
    }

    #[tokio::test]
    async fn a_token_answer_over_the_limit_is_refused_without_its_tokens() {
        let provider = MockServer::start().await;
        let padding = "p".repeat(4096);
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "ok": true, "access_token": "secret-token", "token_type": "bearer",
                "authed_user": { "access_token": "secret-token" }, "padding": padding
            })))
            .mount(&provider)
            .await;
        let client = crate::upstream::client(std::time::Duration::from_secs(5)).unwrap();
        for provider_kind in [OAuthProvider::Google, OAuthProvider::Slack] {
            let spec = spec(provider_kind, Some(format!("{}/token", provider.uri())));
            let auth = authorization(&app(), &spec, Map::new()).unwrap();
            let err = exchange(
                capped(&client, 1024),
                &app(),
                &spec,
                auth,
                Returned::code("c".into()),
            )
            .await
            .unwrap_err()
            .to_string();
            assert!(
                err.contains("larger than servers.max_response_bytes (1024 bytes)"),
                "{err}"
            );
            assert!(!err.contains("secret-token"), "{err}");
            assert!(!err.contains(&provider.uri()), "{err}");
        }
    }
}
