//! A call whose server needs the user's account, when none is connected (or the provider
//! refused it): the user gets a link to the connect page through MCP itself, the way the
//! client can carry it.
//!
//! - A 2025-11-25 session whose client declared URL elicitation gets `elicitation/create` in
//!   URL mode; once the user has connected the account, the client is sent
//!   `notifications/elicitation/complete` and the call goes on with the new credentials.
//! - A 2025-11-25 client without it gets `URLElicitationRequiredError` (-32042).
//! - A 2026-07-28 request whose client declared URL elicitation gets an `InputRequiredResult`
//!   carrying the URL elicitation; its retry finds the account connected.
//! - Everyone else gets the tool's error, naming the link instead of the `auth` command.
//!
//! The link is signed for (user, server) and expires (`auth::connect_link`); only the
//! service's own pages accept it, and they show whose account is being connected.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use futures::FutureExt;
use rmcp::model::JsonObject;
use serde_json::{json, Value};

use super::auth::AwaitConnection;
use super::runtime::Runtime;
use crate::auth::connect_link::LinkScope;
use crate::auth::credentials::Credentials;
use crate::auth::store::AuthError;
use crate::protocol::error::McpError;
use crate::protocol::jsonrpc::Outgoing;
use crate::protocol::version::ProtocolVersion;
use crate::servers::context::{ClientLink, CredentialSource, Era};
use crate::servers::{CallError, InputRequired};

/// `URLElicitationRequiredError` (2025-11-25).
pub const URL_ELICITATION_REQUIRED: i32 = -32042;

/// The key of the URL elicitation in a 2026-07-28 `InputRequiredResult`.
const INPUT_KEY: &str = "connect_account";

/// How the link reaches the user, decided by the request's protocol and client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// `elicitation/create` (URL mode) on the session, then wait for the connection.
    Elicit,
    /// -32042 with the elicitation.
    RequiredError,
    /// An `InputRequiredResult` with the elicitation.
    InputRequired,
    /// The tool's error text names the link.
    ToolError,
}

/// A link the call could not deliver itself, to travel as the protocol's answer.
#[derive(Debug, Clone)]
struct Undelivered {
    delivery: Delivery,
    url: String,
    message: String,
    elicitation_id: String,
}

/// Filled when a call stopped for want of an account and the link must travel as the
/// protocol's answer rather than the tool's; read by the host after the call. Empty (nothing
/// allocated) unless [`linked`] armed it: most requests never need one.
#[derive(Clone, Default)]
pub struct LinkSlot(Option<Arc<Mutex<Option<Undelivered>>>>);

impl LinkSlot {
    fn armed() -> LinkSlot {
        LinkSlot(Some(Arc::default()))
    }

    fn fill(&self, undelivered: Undelivered) {
        if let Some(Ok(mut slot)) = self.0.as_ref().map(|slot| slot.lock()) {
            *slot = Some(undelivered);
        }
    }

    /// The call's outcome, or the protocol's answer carrying the link when there is one.
    pub fn answer<T>(&self, outcome: Result<T, CallError>) -> Result<T, CallError> {
        let taken = self
            .0
            .as_ref()
            .and_then(|slot| slot.lock().ok().and_then(|mut slot| slot.take()));
        let Some(link) = taken else {
            return outcome;
        };
        let mut elicitation = json!({
            "mode": "url",
            "url": link.url,
            "message": link.message,
        });
        match link.delivery {
            Delivery::RequiredError => {
                elicitation["elicitationId"] = json!(link.elicitation_id);
                Err(McpError::new(
                    URL_ELICITATION_REQUIRED,
                    format!("{} Retry once it is connected.", link.message),
                )
                .with_data(json!({ "elicitations": [elicitation] }))
                .into())
            }
            Delivery::InputRequired => {
                let mut requests = BTreeMap::new();
                requests.insert(
                    INPUT_KEY.to_owned(),
                    json!({ "method": "elicitation/create", "params": elicitation }),
                );
                Err(CallError::InputRequired(InputRequired {
                    requests,
                    state: None,
                }))
            }
            Delivery::Elicit | Delivery::ToolError => outcome,
        }
    }
}

/// Whether the client declared URL-mode elicitation.
fn declares_url_elicitation(capabilities: &JsonObject) -> bool {
    capabilities
        .get("elicitation")
        .and_then(|elicitation| elicitation.get("url"))
        .is_some()
}

/// Whether a 2026-07-28 retry says the user declined (or dismissed) the connect link.
fn declined(era: &Era) -> bool {
    let Era::Modern {
        input_responses, ..
    } = era
    else {
        return false;
    };
    input_responses
        .get(INPUT_KEY)
        .and_then(|answer| answer.get("action"))
        .and_then(Value::as_str)
        .is_some_and(|action| action != "accept")
}

fn delivery(protocol: ProtocolVersion, capabilities: &JsonObject, era: &Era) -> Delivery {
    let url_mode = declares_url_elicitation(capabilities);
    match (protocol, era) {
        // Declined: not asked again (the client would loop); the tool error keeps the link.
        (ProtocolVersion::V2026_07_28, Era::Modern { .. }) if url_mode && declined(era) => {
            Delivery::ToolError
        }
        (ProtocolVersion::V2026_07_28, Era::Modern { .. }) if url_mode => Delivery::InputRequired,
        (ProtocolVersion::V2025_11_25, Era::Legacy) if url_mode => Delivery::Elicit,
        (ProtocolVersion::V2025_11_25, Era::Legacy) => Delivery::RequiredError,
        _ => Delivery::ToolError,
    }
}

/// Who the credentials are for, and where the answer goes.
pub struct LinkTarget {
    pub runtime: Runtime,
    pub service: Arc<str>,
    pub server: Arc<str>,
    pub user: Arc<str>,
}

/// A request's credentials that answer a missing account with a connect link.
struct LinkedCredentials {
    inner: Arc<dyn CredentialSource>,
    target: Arc<LinkTarget>,
    delivery: Delivery,
    link: Arc<dyn ClientLink>,
    slot: LinkSlot,
}

/// `inner` for one request, answering a missing account with a link as the request's protocol
/// and client allow (`slot` is armed for the link that must travel as the protocol's answer),
/// or `inner` itself where no link can be made (no public address: stdio, or the pages are
/// off).
pub fn linked(
    inner: Arc<dyn CredentialSource>,
    target: LinkTarget,
    protocol: ProtocolVersion,
    capabilities: &JsonObject,
    era: &Era,
    link: Arc<dyn ClientLink>,
    slot: &mut LinkSlot,
) -> Arc<dyn CredentialSource> {
    if target.runtime.connect_links.base().is_none() {
        return inner;
    }
    *slot = LinkSlot::armed();
    let slot = slot.clone();
    Arc::new(LinkedCredentials {
        inner,
        target: Arc::new(target),
        delivery: delivery(protocol, capabilities, era),
        link,
        slot,
    })
}

impl LinkedCredentials {
    /// `answer` as it stands, or — for want of an account — the link, delivered.
    fn linked(
        &self,
        answer: BoxFuture<'static, Result<Credentials, AuthError>>,
    ) -> BoxFuture<'static, Result<Credentials, AuthError>> {
        let inner = self.inner.clone();
        let target = self.target.clone();
        let delivery = self.delivery;
        let link = self.link.clone();
        let slot = self.slot.clone();
        async move {
            let error = match answer.await {
                Err(error) if error.needs_connecting() => error,
                other => return other,
            };
            let links = &target.runtime.connect_links;
            let scope = LinkScope::Server(target.server.to_string());
            let Some(url) = links.link(&target.user, &scope) else {
                return Err(error);
            };
            let message = format!(
                "Connect your {} account (user {}) to use {}.",
                target.service, target.user, target.server
            );
            let elicitation_id = uuid::Uuid::new_v4().to_string();
            match delivery {
                Delivery::Elicit => {
                    match elicit(&inner, &target, &link, &url, &message, &elicitation_id).await {
                        Some(connected) => connected,
                        None => Err(error.with_connect_link(url)),
                    }
                }
                Delivery::RequiredError | Delivery::InputRequired => {
                    slot.fill(Undelivered {
                        delivery,
                        url: url.clone(),
                        message,
                        elicitation_id,
                    });
                    Err(error.with_connect_link(url))
                }
                Delivery::ToolError => Err(error.with_connect_link(url)),
            }
        }
        .boxed()
    }
}

/// Sends the URL elicitation and waits for the account to be connected (at most as long as
/// the link is valid), then tells the client the elicitation is complete and answers with the
/// new credentials; `None` when the user declined, the client failed, or time ran out.
async fn elicit(
    inner: &Arc<dyn CredentialSource>,
    target: &LinkTarget,
    link: &Arc<dyn ClientLink>,
    url: &str,
    message: &str,
    elicitation_id: &str,
) -> Option<Result<Credentials, AuthError>> {
    let auth = &target.runtime.auth;
    let connected = auth
        .await_connection(AwaitConnection {
            service: target.service.clone(),
            user: target.user.clone(),
        })
        .await?;
    // Connected between the first look and the wait being registered: nothing to ask.
    if let Ok(credentials) = inner.get().await {
        return Some(Ok(credentials));
    }
    let params = json!({
        "mode": "url",
        "elicitationId": elicitation_id,
        "url": url,
        "message": message,
    });
    let answer = link.request("elicitation/create", params).await.ok()?;
    if answer.get("action").and_then(Value::as_str) != Some("accept") {
        return None;
    }
    let ttl = target.runtime.connect_links.ttl();
    tokio::time::timeout(ttl, connected).await.ok()?.ok()?;
    link.notify(Outgoing::notification(
        "notifications/elicitation/complete",
        json!({ "elicitationId": elicitation_id }),
    ));
    Some(inner.get().await)
}

impl CredentialSource for LinkedCredentials {
    fn get(&self) -> BoxFuture<'static, Result<Credentials, AuthError>> {
        self.linked(self.inner.get())
    }

    fn after_rejection(
        &self,
        rejected_access_token: &str,
    ) -> BoxFuture<'static, Result<Credentials, AuthError>> {
        self.linked(self.inner.after_rejection(rejected_access_token))
    }
}
