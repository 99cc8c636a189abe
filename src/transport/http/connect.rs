//! The web connect pages under `/connect`, where users connect their own accounts:
//!
//! - `GET /connect` — the caller's servers that need an account, each connected, not
//!   connected or needing a reconnect, with the action that fits.
//! - `GET /connect/{server}` — OAuth: a sign-in started (PKCE S256, a random single-use state
//!   bound to the user, the server, this browser and an expiry) and the browser sent to the
//!   provider — first a form for the `[[auth.fields]]` the user provides (a subdomain), whose
//!   answers come back to this page, checked; API key: a form; client credentials: a button.
//! - `POST /connect/{server}` — the API-key form (CSRF token), stored as `auth` stores it; for
//!   a client-credentials server, the app token asked for.
//! - `GET /connect/callback` — the provider's answer: the state checked and used up, the code
//!   exchanged through the auth actor, the outcome shown.
//! - `POST /connect/{server}/disconnect` — revoked at the provider where it can be, deleted.
//! - `POST /connect/link` — a signed link to the list for the caller of the request.
//!
//! Who is asking is decided as for MCP requests (the access mode, from the request head), or
//! — for a browser, which sends no bearer header — from a signed link (`t`), which every page
//! carries on. No parameter names an address to go to: the only place a page sends the
//! browser is the provider's authorization endpoint from the server's manifest.

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::pages::{escape, page, problem, secured};
use super::{bearer_token, HttpState};
use crate::actors::auth::{
    AccountState, Connect, Connection, Disconnect, GetOAuthApp, Revocation, Status,
};
use crate::auth::connect;
use crate::auth::connect_link::{LinkClaim, LinkScope};
use crate::auth::key_fields;
use crate::metrics::Rejection;
use crate::servers::manifest::AuthKind;
use crate::servers::registry::ServerEntry;

mod sign_ins;

pub use sign_ins::PendingSignIns;
use sign_ins::{Pending, Refused, Return};

/// The cookie that ties a sign-in to the browser that started it.
const BROWSER_COOKIE: &str = "gumcp_connect";

/// The routes under `/connect`.
pub fn routes(config: &mut web::ServiceConfig) {
    config.service(
        web::scope("/connect")
            .route("", web::get().to(list))
            .route("/", web::get().to(list))
            .route("/link", web::post().to(make_link))
            .route("/callback", web::get().to(callback))
            .route("/{server}", web::get().to(start))
            .route("/{server}", web::post().to(save_api_key))
            .route("/{server}/disconnect", web::post().to(disconnect))
            .default_service(web::to(not_found)),
    );
}

async fn not_found() -> HttpResponse {
    problem(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no such connect page.",
        "Open the link you were given, or /connect.",
    )
}

/// The link token of a page request, from its query or form, and the values of a server's
/// `[[auth.fields]]` when its field form sent them.
#[derive(Deserialize, Default)]
struct PageQuery {
    t: Option<String>,
    #[serde(flatten)]
    fields: HashMap<String, String>,
}

/// What the forms send.
#[derive(Deserialize, Default)]
struct FormFields {
    t: Option<String>,
    csrf: Option<String>,
    api_key: Option<String>,
    /// The other values of a server with `[[auth.key_fields]]`, by field name.
    #[serde(flatten)]
    fields: std::collections::BTreeMap<String, String>,
}

/// The provider's answer at the callback.
#[derive(Deserialize, Default)]
struct CallbackQuery {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    /// The rest of the redirect's query (a field may come from it: QuickBooks' `realmId`).
    #[serde(flatten)]
    params: HashMap<String, String>,
}

/// Who a page acts for, and the link token its own links carry on.
struct PageCaller {
    claim: LinkClaim,
    token: String,
}

impl PageCaller {
    fn user(&self) -> &str {
        &self.claim.user
    }
}

impl HttpState {
    /// Whether the pages are served: on in the settings, and the public address known.
    #[allow(clippy::result_large_err)]
    fn connect_pages_on(&self) -> Result<&str, HttpResponse> {
        let base = self
            .runtime
            .settings
            .http
            .connect_pages
            .then(|| self.runtime.connect_links.base())
            .flatten();
        base.ok_or_else(|| {
            problem(
                StatusCode::NOT_FOUND,
                "Connect pages are off",
                "This service does not serve its connect pages.",
                "Its operator can turn them on with http.connect_pages and http.public_url.",
            )
        })
    }

    /// Who a connect page acts for: the link's user, or the caller the access rules decide
    /// from the request head (a key the service can vouch for is required: a user merely
    /// claimed by an unverified key cannot connect that user's accounts).
    async fn page_caller(
        &self,
        request: &HttpRequest,
        token: Option<&str>,
    ) -> Result<PageCaller, HttpResponse> {
        self.connect_pages_on()?;
        if self.open_for_local_only && !self.trusted_proxies.is_local(request) {
            return Err(problem(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "Access to this service is open to this machine only, and this request came \
                 from elsewhere.",
                "Open the page on the machine the service runs on.",
            ));
        }
        let links = &self.runtime.connect_links;
        if let Some(token) = token.filter(|token| !token.is_empty()) {
            return match links.open(token) {
                Ok(claim) => Ok(PageCaller {
                    claim,
                    token: token.to_owned(),
                }),
                Err(err) => Err(problem(
                    StatusCode::FORBIDDEN,
                    "Link not valid",
                    &err.to_string(),
                    "Nothing was changed.",
                )),
            };
        }
        let bearer = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(bearer_token);
        let refused = |why: String, challenge: String, status: StatusCode| {
            let mut response = problem(
                status,
                "Not signed in",
                &why,
                "Open the connect link your MCP client showed you, or ask for one with \
                 POST /connect/link and your key.",
            );
            if let Ok(value) = header::HeaderValue::from_str(&challenge) {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, value);
            }
            response
        };
        let caller = match self.access.caller(None, bearer, request.path()) {
            Ok(caller) => caller,
            Err(denied) => {
                let status = if denied.is_forbidden() {
                    StatusCode::FORBIDDEN
                } else {
                    StatusCode::UNAUTHORIZED
                };
                return Err(refused(
                    denied.to_string(),
                    self.access.challenge(&denied),
                    status,
                ));
            }
        };
        let caller = match self.access.vouch(caller).await {
            Ok(caller) => caller,
            Err(denied) if denied.is_transient() => {
                return Err(problem(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Try again",
                    &denied.to_string(),
                    "Reload the page in a moment.",
                ))
            }
            Err(denied) => {
                return Err(refused(
                    denied.to_string(),
                    self.access.challenge(&denied),
                    StatusCode::UNAUTHORIZED,
                ))
            }
        };
        if caller.principal.partition.is_some() {
            return Err(problem(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "Connecting accounts needs a caller this service can vouch for; a key that \
                 only claims a user is not enough.",
                "Ask the operator to configure auth.remote_verify_url.",
            ));
        }
        let user = caller.principal.user.to_string();
        let token = links.token(&user, &LinkScope::All);
        Ok(PageCaller {
            claim: LinkClaim {
                user,
                scope: LinkScope::All,
            },
            token,
        })
    }

    /// The registry entry of `server` if the caller's link allows it and it needs an account.
    #[allow(clippy::result_large_err)]
    fn connectable(
        &self,
        caller: &PageCaller,
        server: &str,
    ) -> Result<Arc<ServerEntry>, HttpResponse> {
        let entry = self.runtime.registry.get(server).filter(|entry| {
            entry.manifest.auth.kind != AuthKind::None && caller.claim.allows(&entry.name)
        });
        entry.cloned().ok_or_else(|| {
            problem(
                StatusCode::NOT_FOUND,
                "Not found",
                "There is no server of that name that this link can connect.",
                "Go back to the list of your accounts and pick one there.",
            )
        })
    }
}

/// `GET /connect`: the caller's accounts.
async fn list(
    request: HttpRequest,
    state: web::Data<HttpState>,
    query: web::Query<PageQuery>,
) -> HttpResponse {
    let caller = match state.page_caller(&request, query.t.as_deref()).await {
        Ok(caller) => caller,
        Err(refused) => return refused,
    };
    let links = &state.runtime.connect_links;
    let token = escape(&caller.token);
    let mut rows = String::new();
    for entry in state.runtime.registry.entries() {
        if entry.manifest.auth.kind == AuthKind::None || !caller.claim.allows(&entry.name) {
            continue;
        }
        let account = state
            .runtime
            .auth
            .status(Status {
                service: entry.auth_service.clone(),
                user: Arc::from(caller.user()),
            })
            .await;
        let name = escape(&entry.name);
        let title = escape(
            entry
                .manifest
                .title
                .as_deref()
                .unwrap_or(&entry.manifest.name),
        );
        let connect_label = match &account {
            Ok(AccountState::NeedsReconnect) => "Reconnect",
            _ => "Connect",
        };
        let connect =
            format!("<a class=\"button\" href=\"/connect/{name}?t={token}\">{connect_label}</a>");
        let disconnect = format!(
            "<form method=\"post\" action=\"/connect/{name}/disconnect\">\
             <input type=\"hidden\" name=\"t\" value=\"{token}\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <button type=\"submit\">Disconnect</button></form>",
            csrf = escape(&links.form_token(caller.user(), &entry.name, "disconnect")),
        );
        let (class, label, actions) = match account {
            Ok(AccountState::Connected) => ("connected", "Connected", disconnect),
            Ok(AccountState::NotConnected) => ("not-connected", "Not connected", connect),
            Ok(AccountState::NeedsReconnect) => (
                "needs-reconnect",
                "Needs reconnecting",
                format!("{connect} {disconnect}"),
            ),
            Err(err) => {
                tracing::warn!(server = %entry.name, %err, "cannot read an account's state");
                ("error", "Unknown (the credential store failed)", connect)
            }
        };
        rows.push_str(&format!(
            "<tr id=\"server-{name}\"><td><strong>{name}</strong><br>{title}</td>\
             <td class=\"{class}\">{label}</td><td>{actions}</td></tr>"
        ));
    }
    let body = format!(
        "<p>Accounts of user <strong>{user}</strong>. Each server's tools use the account \
         connected here.</p><table><thead><tr><th>Server</th><th>State</th><th></th></tr>\
         </thead><tbody>{rows}</tbody></table>",
        user = escape(caller.user()),
    );
    page(StatusCode::OK, "Connected accounts", &body)
}

/// `POST /connect/link`: a link to the list, for the caller of this request (not for a
/// browser: it needs the caller's key or token in the request head).
async fn make_link(request: HttpRequest, state: web::Data<HttpState>) -> HttpResponse {
    let caller = match state.page_caller(&request, None).await {
        Ok(caller) => caller,
        Err(refused) => return refused,
    };
    let links = &state.runtime.connect_links;
    match links.link(caller.user(), &LinkScope::All) {
        Some(url) => secured(&mut HttpResponse::Ok()).json(serde_json::json!({
            "url": url,
            "expires_in": links.ttl().as_secs(),
        })),
        None => not_found().await,
    }
}

/// `GET /connect/{server}`: an OAuth sign-in started, or the API-key form.
async fn start(
    request: HttpRequest,
    state: web::Data<HttpState>,
    server: web::Path<String>,
    query: web::Query<PageQuery>,
) -> HttpResponse {
    let caller = match state.page_caller(&request, query.t.as_deref()).await {
        Ok(caller) => caller,
        Err(refused) => return refused,
    };
    let entry = match state.connectable(&caller, &server) {
        Ok(entry) => entry,
        Err(refused) => return refused,
    };
    let links = &state.runtime.connect_links;
    match entry.manifest.auth.kind {
        AuthKind::Oauth2 => {}
        AuthKind::ApiKey if !entry.manifest.auth.key_fields.is_empty() => {
            let body = format!(
                "<p>User <strong>{user}</strong>: the credentials of your {service} account. \
                 They are stored on this service and the secret ones never shown again.</p>\
                 <form method=\"post\" action=\"/connect/{name}\">\
                 <input type=\"hidden\" name=\"t\" value=\"{token}\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">{inputs}\
                 <p><button type=\"submit\">Save</button> \
                 <a href=\"/connect?t={token}\">Cancel</a></p></form>",
                user = escape(caller.user()),
                service = escape(&entry.auth_service),
                name = escape(&entry.name),
                token = escape(&caller.token),
                csrf = escape(&links.form_token(caller.user(), &entry.name, "api_key")),
                inputs = key_field_inputs(&entry.manifest.auth.key_fields),
            );
            return page(StatusCode::OK, &format!("Connect {}", entry.name), &body);
        }
        AuthKind::ClientCredentials => {
            let body = format!(
                "<p>User <strong>{user}</strong>: {service} is reached with this service's own \
                 app credentials; connecting asks {service} for an app token.</p>\
                 <form method=\"post\" action=\"/connect/{name}\">\
                 <input type=\"hidden\" name=\"t\" value=\"{token}\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
                 <p><button type=\"submit\">Connect</button> \
                 <a href=\"/connect?t={token}\">Cancel</a></p></form>",
                user = escape(caller.user()),
                service = escape(&entry.auth_service),
                name = escape(&entry.name),
                token = escape(&caller.token),
                csrf = escape(&links.form_token(caller.user(), &entry.name, "api_key")),
            );
            return page(StatusCode::OK, &format!("Connect {}", entry.name), &body);
        }
        _ => {
            let body = format!(
                "<p>User <strong>{user}</strong>: paste the API key of your {service} account. \
                 It is stored on this service and never shown again.</p>\
                 <form method=\"post\" action=\"/connect/{name}\">\
                 <input type=\"hidden\" name=\"t\" value=\"{token}\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
                 <p><label>API key<br><input type=\"password\" name=\"api_key\" \
                 autocomplete=\"off\" required></label></p>\
                 <p><button type=\"submit\">Save</button> \
                 <a href=\"/connect?t={token}\">Cancel</a></p></form>",
                user = escape(caller.user()),
                service = escape(&entry.auth_service),
                name = escape(&entry.name),
                token = escape(&caller.token),
                csrf = escape(&links.form_token(caller.user(), &entry.name, "api_key")),
            );
            return page(StatusCode::OK, &format!("Connect {}", entry.name), &body);
        }
    }
    let Ok(base) = state.connect_pages_on() else {
        return not_found().await;
    };
    let app = match state
        .runtime
        .auth
        .oauth_app(GetOAuthApp {
            service: entry.auth_service.clone(),
        })
        .await
    {
        Ok(app) => app,
        Err(err) => {
            tracing::warn!(server = %entry.name, %err, "no OAuth app to connect with");
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "Cannot connect yet",
                &format!(
                    "This service has no OAuth app for {} yet.",
                    entry.auth_service
                ),
                "Ask its operator to configure one; nothing was changed.",
            );
        }
    };
    let spec = &entry.manifest.auth;
    let given = connect::user_fields(Some(&app), spec, |field| {
        Ok(query.fields.get(&field.name).cloned())
    });
    let given = match given {
        Ok(given) => given,
        Err(err) => return field_form(&caller, &entry, &query.fields, &err),
    };
    let redirect = format!("{base}/connect/callback");
    let authorization = match connect::authorization_to(&app, spec, redirect, given) {
        Ok(authorization) => authorization,
        Err(err) => {
            tracing::warn!(server = %entry.name, %err, "cannot start a sign-in");
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "Cannot connect",
                &format!("The sign-in for {} is not set up correctly.", entry.name),
                "Ask the service's operator to check its manifest and OAuth app.",
            );
        }
    };
    let browser = request
        .cookie_value(BROWSER_COOKIE)
        .filter(|value| value.len() == 32 && value.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let provider_url = authorization.url.to_string();
    let kept = state
        .sign_ins
        .insert(Pending {
            user: Arc::from(caller.user()),
            server: entry.name.clone(),
            authorization,
            browser: Sha256::digest(browser.as_bytes()).into(),
            link_token: caller.token.clone(),
        })
        .await;
    match kept {
        Ok(()) => {}
        Err(Refused::Full) => {
            state.runtime.metrics.rejected(Rejection::ConnectSignIns);
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "Busy",
                "Too many sign-ins are in progress on this service right now.",
                "Try again in a few minutes.",
            );
        }
        Err(Refused::Unavailable) => return sign_ins_unavailable(),
    }
    let secure = if base.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{BROWSER_COOKIE}={browser}; Path=/connect/callback; Max-Age={}; HttpOnly; \
         SameSite=Lax{secure}",
        state.sign_ins.ttl.as_secs()
    );
    secured(&mut HttpResponse::SeeOther())
        .insert_header((header::LOCATION, provider_url))
        .insert_header((header::SET_COOKIE, cookie))
        .finish()
}

/// The answer while the cluster's Redis, which keeps the sign-ins, does not answer.
fn sign_ins_unavailable() -> HttpResponse {
    let mut refused = problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again shortly",
        "The service cannot reach the store of sign-ins in progress right now.",
        "Reload this page in a few seconds; nothing was stored.",
    );
    refused
        .headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    refused
}

/// `GET /connect/callback`: the provider sent the browser back.
async fn callback(
    request: HttpRequest,
    state: web::Data<HttpState>,
    query: web::Query<CallbackQuery>,
) -> HttpResponse {
    if let Err(off) = state.connect_pages_on() {
        return off;
    }
    let retry = "Start again from your connect link (or the list of your accounts); nothing \
                 was stored.";
    let Some(returned) = query.state.as_deref() else {
        return problem(
            StatusCode::BAD_REQUEST,
            "Sign-in not finished",
            "The provider's answer carries no state, so it cannot be matched to a sign-in.",
            retry,
        );
    };
    let browser = request
        .cookie_value(BROWSER_COOKIE)
        .map(|value| Sha256::digest(value.as_bytes()).into());
    let pending = match state.sign_ins.take(returned, browser).await {
        Ok(pending) => pending,
        Err(Return::Unavailable) => return sign_ins_unavailable(),
        Err(Return::Unknown) => {
            return problem(
                StatusCode::BAD_REQUEST,
                "Sign-in not finished",
                "This sign-in is unknown: it was already finished, it expired, or it was not \
                 started here.",
                retry,
            )
        }
        Err(Return::OtherBrowser) => {
            return problem(
                StatusCode::BAD_REQUEST,
                "Sign-in not finished",
                "This sign-in was started in another browser or by another user, so it cannot \
                 be finished here.",
                retry,
            )
        }
    };
    let back = format!(
        "<p><a class=\"button\" href=\"/connect?t={}\">Back to your accounts</a></p>",
        escape(&pending.link_token)
    );
    if let Some(error) = &query.error {
        let detail = query.error_description.as_deref().unwrap_or_default();
        let said = connect::printable(&format!("{error} {detail}"));
        return page(
            StatusCode::BAD_REQUEST,
            "Not connected",
            &format!(
                "<p class=\"error\">{} answered: {}</p><p>{}</p>{back}",
                escape(&pending.server),
                escape(&said),
                escape(retry),
            ),
        );
    }
    let Some(code) = query.code.clone() else {
        return problem(
            StatusCode::BAD_REQUEST,
            "Not connected",
            "The provider's answer carries no code.",
            retry,
        );
    };
    let Some(entry) = state.runtime.registry.get(&pending.server).cloned() else {
        return not_found().await;
    };
    let connected = state
        .runtime
        .auth
        .connect(Connect {
            service: entry.auth_service.clone(),
            user: pending.user.clone(),
            connection: Connection::OAuthCode {
                spec: Box::new(entry.manifest.auth.clone()),
                authorization: Box::new(pending.authorization),
                returned: connect::Returned {
                    code,
                    params: query
                        .params
                        .iter()
                        .map(|(key, value)| (key.clone(), value.clone()))
                        .collect(),
                },
            },
        })
        .await;
    match connected {
        Ok(credentials) => {
            let granted = credentials
                .extra
                .get("scope")
                .and_then(|scope| scope.as_str())
                .map(|scope| {
                    format!(
                        "<p>Granted: <code>{}</code></p>",
                        escape(&connect::printable(scope))
                    )
                })
                .unwrap_or_default();
            page(
                StatusCode::OK,
                "Connected",
                &format!(
                    "<p class=\"ok\">Connected <strong>{server}</strong> for user \
                     <strong>{user}</strong>.</p>{granted}\
                     <p>You can close this tab and go back to your MCP client.</p>{back}",
                    server = escape(&pending.server),
                    user = escape(&pending.user),
                ),
            )
        }
        Err(err) => {
            tracing::warn!(server = %pending.server, %err, "connecting an account failed");
            page(
                StatusCode::BAD_GATEWAY,
                "Not connected",
                &format!(
                    "<p class=\"error\">{} did not accept the sign-in: {}</p><p>{}</p>{back}",
                    escape(&pending.server),
                    escape(&connect::printable(&err.to_string())),
                    escape(retry),
                ),
            )
        }
    }
}

/// The inputs of the form of a server with `[[auth.key_fields]]`, one per field in order; the
/// key itself keeps the plain form's input name.
fn key_field_inputs(fields: &[key_fields::KeyField]) -> String {
    fields
        .iter()
        .map(|field| {
            format!(
                "<p><label>{label}<br><input type=\"{kind}\" name=\"{name}\" \
                 placeholder=\"{placeholder}\" autocomplete=\"off\"{required}></label></p>",
                label = escape(&field.label),
                kind = if field.secret { "password" } else { "text" },
                name = escape(&field.name),
                placeholder = escape(field.placeholder.as_deref().unwrap_or_default()),
                required = if field.optional { "" } else { " required" },
            )
        })
        .collect()
}

/// `POST /connect/{server}`: the API-key form.
async fn save_api_key(
    request: HttpRequest,
    state: web::Data<HttpState>,
    server: web::Path<String>,
    form: web::Form<FormFields>,
) -> HttpResponse {
    let form = form.into_inner();
    let caller = match state.page_caller(&request, form.t.as_deref()).await {
        Ok(caller) => caller,
        Err(refused) => return refused,
    };
    let entry = match state.connectable(&caller, &server) {
        Ok(entry)
            if matches!(
                entry.manifest.auth.kind,
                AuthKind::ApiKey | AuthKind::ClientCredentials
            ) =>
        {
            entry
        }
        Ok(_) => return not_found().await,
        Err(refused) => return refused,
    };
    let links = &state.runtime.connect_links;
    if let Err(err) =
        links.check_form_token(form.csrf.as_deref(), caller.user(), &entry.name, "api_key")
    {
        return problem(
            StatusCode::FORBIDDEN,
            "Not saved",
            &err.to_string(),
            "Nothing was stored.",
        );
    }
    if entry.manifest.auth.kind == AuthKind::ClientCredentials {
        return connect_app(&state, &caller, &entry).await;
    }
    let fields = &entry.manifest.auth.key_fields;
    let connection = if fields.is_empty() {
        None
    } else {
        let mut typed = form.fields;
        if let Some(api_key) = form.api_key.clone() {
            typed.insert(key_fields::API_KEY.to_owned(), api_key);
        }
        let client = state.runtime.upstream_client();
        let http = crate::upstream::CappedClient {
            client: &client,
            max_response_bytes: state.runtime.settings.servers.max_response_bytes,
        };
        match key_fields::connect_values(
            &entry.manifest.auth.key_fields,
            entry.manifest.auth.session.as_ref(),
            &typed,
            http,
        )
        .await
        {
            Ok(credentials) => Some(Connection::KeyFields(credentials)),
            Err(err) => {
                return problem(
                    StatusCode::BAD_REQUEST,
                    "Not saved",
                    &err,
                    "Go back and correct it; nothing was stored.",
                )
            }
        }
    };
    let api_key = form.api_key.unwrap_or_default().trim().to_owned();
    if connection.is_none() && api_key.is_empty() {
        return problem(
            StatusCode::BAD_REQUEST,
            "Not saved",
            "The API key was empty.",
            "Go back and paste the key; nothing was stored.",
        );
    }
    let saved = state
        .runtime
        .auth
        .connect(Connect {
            service: entry.auth_service.clone(),
            user: Arc::from(caller.user()),
            connection: connection.unwrap_or(Connection::ApiKey(api_key)),
        })
        .await;
    let back = format!(
        "<p><a class=\"button\" href=\"/connect?t={}\">Back to your accounts</a></p>",
        escape(&caller.token)
    );
    match saved {
        Ok(_) => page(
            StatusCode::OK,
            "Connected",
            &format!(
                "<p class=\"ok\">Saved the API key of <strong>{}</strong> for user \
                 <strong>{}</strong>.</p>{back}",
                escape(&entry.name),
                escape(caller.user()),
            ),
        ),
        Err(err) => {
            tracing::warn!(server = %entry.name, %err, "saving an API key failed");
            problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Not saved",
                "The credential store could not save the key.",
                "Try again later.",
            )
        }
    }
}

/// The form asking for the `[[auth.fields]]` a sign-in needs first (a subdomain); it comes
/// back to the same page with the values, which are checked there. `why` says what was
/// missing or refused.
fn field_form(
    caller: &PageCaller,
    entry: &ServerEntry,
    sent: &HashMap<String, String>,
    why: &connect::ConnectError,
) -> HttpResponse {
    use crate::auth::fields::FieldSource;
    let inputs: String = entry
        .manifest
        .auth
        .fields
        .iter()
        .filter(|field| field.from == FieldSource::User)
        .map(|field| {
            format!(
                "<p><label>{label}<br><input name=\"{name}\" value=\"{value}\" required \
                 autocomplete=\"off\"></label></p>",
                label = escape(&field.label),
                name = escape(&field.name),
                value = escape(sent.get(&field.name).map_or("", String::as_str)),
            )
        })
        .collect();
    let said = if sent.is_empty() {
        String::new()
    } else {
        format!("<p class=\"error\">{}</p>", escape(&why.to_string()))
    };
    let body = format!(
        "<p>User <strong>{user}</strong>: {service} needs these before the sign-in.</p>{said}\
         <form method=\"get\" action=\"/connect/{name}\">\
         <input type=\"hidden\" name=\"t\" value=\"{token}\">{inputs}\
         <p><button type=\"submit\">Continue</button> \
         <a href=\"/connect?t={token}\">Cancel</a></p></form>",
        user = escape(caller.user()),
        service = escape(&entry.auth_service),
        name = escape(&entry.name),
        token = escape(&caller.token),
    );
    let status = if sent.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    page(status, &format!("Connect {}", entry.name), &body)
}

/// A client-credentials server connected: its first app token asked for and saved.
async fn connect_app(state: &HttpState, caller: &PageCaller, entry: &ServerEntry) -> HttpResponse {
    let connected = state
        .runtime
        .auth
        .connect(Connect {
            service: entry.auth_service.clone(),
            user: Arc::from(caller.user()),
            connection: Connection::ClientCredentials {
                spec: Box::new(entry.manifest.auth.clone()),
            },
        })
        .await;
    let back = format!(
        "<p><a class=\"button\" href=\"/connect?t={}\">Back to your accounts</a></p>",
        escape(&caller.token)
    );
    match connected {
        Ok(_) => page(
            StatusCode::OK,
            "Connected",
            &format!(
                "<p class=\"ok\">Connected <strong>{}</strong> for user \
                 <strong>{}</strong>.</p>{back}",
                escape(&entry.name),
                escape(caller.user()),
            ),
        ),
        Err(err) => {
            tracing::warn!(server = %entry.name, %err, "connecting an app failed");
            page(
                StatusCode::BAD_GATEWAY,
                "Not connected",
                &format!(
                    "<p class=\"error\">{} did not give an app token: {}</p>{back}",
                    escape(&entry.name),
                    escape(&connect::printable(&err.to_string())),
                ),
            )
        }
    }
}

/// `POST /connect/{server}/disconnect`.
async fn disconnect(
    request: HttpRequest,
    state: web::Data<HttpState>,
    server: web::Path<String>,
    form: web::Form<FormFields>,
) -> HttpResponse {
    let form = form.into_inner();
    let caller = match state.page_caller(&request, form.t.as_deref()).await {
        Ok(caller) => caller,
        Err(refused) => return refused,
    };
    let entry = match state.connectable(&caller, &server) {
        Ok(entry) => entry,
        Err(refused) => return refused,
    };
    let links = &state.runtime.connect_links;
    if let Err(err) = links.check_form_token(
        form.csrf.as_deref(),
        caller.user(),
        &entry.name,
        "disconnect",
    ) {
        return problem(
            StatusCode::FORBIDDEN,
            "Not disconnected",
            &err.to_string(),
            "Nothing was changed.",
        );
    }
    let outcome = state
        .runtime
        .auth
        .disconnect(Disconnect {
            service: entry.auth_service.clone(),
            user: Arc::from(caller.user()),
            spec: entry.manifest.auth.clone(),
        })
        .await;
    let back = format!(
        "<p><a class=\"button\" href=\"/connect?t={}\">Back to your accounts</a></p>",
        escape(&caller.token)
    );
    match outcome {
        Ok(done) => {
            let said = match (&done.had_credentials, &done.revocation) {
                (false, _) => "Nothing was connected.".to_owned(),
                (true, Revocation::Revoked) => {
                    "The provider was told to revoke the access, and the stored credentials \
                     were deleted."
                        .to_owned()
                }
                (true, Revocation::NotOffered) => "The stored credentials were deleted. This \
                     provider offers no revocation here; you can remove the app's access in \
                     your account settings there."
                    .to_owned(),
                (true, Revocation::Failed(why)) => format!(
                    "The stored credentials were deleted, but the provider could not be told \
                     ({}); remove the app's access in your account settings there.",
                    connect::printable(why)
                ),
            };
            page(
                StatusCode::OK,
                "Disconnected",
                &format!(
                    "<p class=\"ok\">Disconnected <strong>{}</strong> for user \
                     <strong>{}</strong>.</p><p>{}</p>{back}",
                    escape(&entry.name),
                    escape(caller.user()),
                    escape(&said),
                ),
            )
        }
        Err(err) => {
            tracing::warn!(server = %entry.name, %err, "disconnecting an account failed");
            problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Not disconnected",
                "The credential store could not delete the credentials.",
                "Try again later.",
            )
        }
    }
}

/// The value of the cookie `name` in a request's `Cookie` headers.
trait CookieValue {
    fn cookie_value(&self, name: &str) -> Option<String>;
}

impl CookieValue for HttpRequest {
    fn cookie_value(&self, name: &str) -> Option<String> {
        self.headers()
            .get_all(header::COOKIE)
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.to_owned())
    }
}
