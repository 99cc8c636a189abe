//! The context of one request as server code sees it: who is asking, with which protocol, and
//! the ways back to the client (progress, log messages, elicitation, sampling, roots).
//!
//! The era difference lives here and nowhere in server code. In a legacy session
//! [`RequestContext::elicit`] sends `elicitation/create` to the client and waits for the answer;
//! in 2026-07-28 it returns the answer the client attached to this retry (`inputResponses`), or
//! fails with [`CallError::InputRequired`], which the runtime turns into an
//! `InputRequiredResult` — so one tool body serves both.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use futures::future::BoxFuture;
use rmcp::model::JsonObject;
use serde_json::{json, Value};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::auth::credentials::Credentials;
use crate::auth::store::AuthError;
use crate::protocol::error::McpError;
use crate::protocol::jsonrpc::Outgoing;
use crate::protocol::meta::LogLevel;
use crate::protocol::version::ProtocolVersion;

/// Why a server call did not produce a result.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// Answered as a JSON-RPC error.
    #[error(transparent)]
    Protocol(#[from] McpError),
    /// The resource does not exist (-32002 in legacy revisions, -32602 in 2026-07-28).
    #[error("Resource not found: {0}")]
    ResourceNotFound(String),
    /// More input is needed from the client (2026-07-28 multi round-trip requests).
    #[error("input required from the client")]
    InputRequired(InputRequired),
    /// The user's account for the server's service is missing or refused (its text says where
    /// to connect it): a tool call answers it as the tool's error, as a server that reads its
    /// credentials inside the tool does; other methods as a JSON-RPC error.
    #[error(transparent)]
    Account(AuthError),
}

/// The requests a server needs the client to fulfil before it retries, keyed by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InputRequired {
    /// `{key: {"method": …, "params": …}}` as `InputRequests` in the schema.
    pub requests: BTreeMap<String, Value>,
    /// Server state to be echoed back on the retry (sealed by the runtime before it leaves).
    pub state: Option<String>,
}

/// The link back to the client that a request arrived on.
pub trait ClientLink: Send + Sync {
    /// Sends a notification on the stream that will carry this request's response.
    fn notify(&self, message: Outgoing);

    /// Sends a request to the client and waits for its answer (legacy sessions only; a link
    /// that cannot do this answers with an error).
    fn request(
        &self,
        method: &'static str,
        params: Value,
    ) -> BoxFuture<'static, Result<Value, McpError>>;

    /// The call's first answer comes from elsewhere (a hosted child that decides for itself
    /// whether a call becomes a task): before the runtime makes a call that requires a task
    /// its own task, it waits for that answer — an input request stays an MRTR round on
    /// `tools/call` — or for [`ClientLink::continues`].
    fn awaits_first_answer(&self) {}

    /// The call goes on past its first answer (the hosted child made it a task of its own).
    fn continues(&self) {}
}

/// The era-specific half of a request.
#[derive(Clone)]
pub enum Era {
    /// A session that began with `initialize`: the client can be asked things directly.
    Legacy,
    /// 2026-07-28: answers to earlier input requests arrive with the retry.
    Modern {
        input_responses: Arc<JsonObject>,
        request_state: Option<String>,
    },
}

/// Everything a server call may use besides its arguments.
#[derive(Clone)]
pub struct RequestContext {
    pub user_id: Arc<str>,
    pub protocol: ProtocolVersion,
    pub client_capabilities: Arc<JsonObject>,
    pub era: Era,
    /// Set when the client asked for progress notifications.
    pub progress_token: Option<Value>,
    /// The lowest level the client wants log messages at; `None` means none at all.
    pub log_level: Option<LogLevel>,
    pub cancellation: CancellationToken,
    pub link: Arc<dyn ClientLink>,
    /// The user's credentials for this server's upstream service.
    pub credentials: Arc<dyn CredentialSource>,
}

/// Where a call gets the user's credentials for its upstream service.
pub trait CredentialSource: Send + Sync {
    /// Ready-to-use credentials (refreshed first if they were about to expire).
    fn get(&self) -> BoxFuture<'static, Result<Credentials, AuthError>>;

    /// Credentials newer than the access token the upstream just refused (refreshed once, or
    /// re-read from a remote store); for the one retry after a 401.
    fn after_rejection(
        &self,
        rejected_access_token: &str,
    ) -> BoxFuture<'static, Result<Credentials, AuthError>>;
}

impl RequestContext {
    /// Reports progress if the client asked for it; otherwise does nothing.
    pub fn progress(&self, progress: f64, total: Option<f64>, message: Option<&str>) {
        let Some(token) = &self.progress_token else {
            return;
        };
        let mut params = json!({ "progressToken": token, "progress": progress });
        if let Some(total) = total {
            params["total"] = json!(total);
        }
        if let Some(message) = message {
            params["message"] = json!(message);
        }
        self.link
            .notify(Outgoing::notification("notifications/progress", params));
    }

    /// Sends a log message if the client wants messages at this level.
    pub fn log(&self, level: LogLevel, logger: Option<&str>, data: Value) {
        let Some(threshold) = self.log_level else {
            return;
        };
        if level < threshold {
            return;
        }
        let mut params = json!({ "level": level, "data": data });
        if let Some(logger) = logger {
            params["logger"] = json!(logger);
        }
        self.link
            .notify(Outgoing::notification("notifications/message", params));
    }

    /// The state this server put into its last `InputRequiredResult`, verified, on a retry.
    pub fn request_state(&self) -> Option<&str> {
        match &self.era {
            Era::Modern { request_state, .. } => request_state.as_deref(),
            Era::Legacy => None,
        }
    }

    /// Asks the client for user input (`elicitation/create`); `key` names the request for
    /// the multi round-trip exchange and must be unique within the call.
    pub async fn elicit(&self, key: &str, params: Value) -> Result<Value, CallError> {
        self.ask(key, "elicitation/create", params, None).await
    }

    /// Asks the client's model for a completion (`sampling/createMessage`).
    pub async fn create_message(&self, key: &str, params: Value) -> Result<Value, CallError> {
        self.ask(key, "sampling/createMessage", params, None).await
    }

    /// Asks the client for its roots (`roots/list`).
    pub async fn list_roots(&self, key: &str) -> Result<Value, CallError> {
        self.ask(key, "roots/list", json!({}), None).await
    }

    /// One question to the client. In 2026-07-28, `state` travels with the input request and
    /// comes back (verified) from [`RequestContext::request_state`] on the retry, which is how
    /// a call that needs several rounds remembers earlier answers.
    pub async fn ask(
        &self,
        key: &str,
        method: &'static str,
        params: Value,
        state: Option<String>,
    ) -> Result<Value, CallError> {
        let mut answers = self.ask_all(vec![(key, method, params)], state).await?;
        answers
            .remove(key)
            .ok_or_else(|| McpError::internal("the client's answer went missing").into())
    }

    /// Several questions at once: in 2026-07-28 every missing answer is requested in a single
    /// `InputRequiredResult`; in a legacy session they are asked one after another.
    pub async fn ask_all(
        &self,
        questions: Vec<(&str, &'static str, Value)>,
        state: Option<String>,
    ) -> Result<BTreeMap<String, Value>, CallError> {
        let mut answers = BTreeMap::new();
        let mut missing = InputRequired {
            requests: BTreeMap::new(),
            state,
        };
        for (key, method, params) in questions {
            let capability = capability_for(method)?;
            if !self.has_capability(capability) {
                return Err(McpError::missing_client_capability(json!({ capability: {} })).into());
            }
            match &self.era {
                Era::Legacy => {
                    let answer = self.link.request(method, params).await?;
                    answers.insert(key.to_owned(), answer);
                }
                Era::Modern {
                    input_responses, ..
                } => match input_responses.get(key) {
                    Some(answer) => {
                        answers.insert(key.to_owned(), answer.clone());
                    }
                    None => {
                        missing.requests.insert(
                            key.to_owned(),
                            json!({ "method": method, "params": params }),
                        );
                    }
                },
            }
        }
        if missing.requests.is_empty() {
            Ok(answers)
        } else {
            Err(CallError::InputRequired(missing))
        }
    }

    /// Whether the client declared a capability (`"sampling"`, `"elicitation"`, `"roots"`, …).
    pub fn has_capability(&self, capability: &str) -> bool {
        self.client_capabilities.contains_key(capability)
    }
}

fn capability_for(method: &str) -> Result<&'static str, McpError> {
    match method {
        "elicitation/create" => Ok("elicitation"),
        "sampling/createMessage" => Ok("sampling"),
        "roots/list" => Ok("roots"),
        other => Err(McpError::internal(format!(
            "{other} is not a request a server can send to a client"
        ))),
    }
}

/// Changes a server announces to everyone connected to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    ToolsListChanged,
    PromptsListChanged,
    ResourcesListChanged,
    ResourceUpdated {
        uri: String,
    },
    /// One of this principal's tasks on this server changed status (2026-07-28 listens that
    /// asked for `notifications/tasks`); the task as `tasks/get` shows it, without what it
    /// inlines.
    TaskStatus(Value),
}

/// The sending side of a server instance's event channel; it outlives restarts of the instance.
/// It also counts tool-list changes, so the server's core knows synchronously — before the call
/// that changed the list has even returned — that its cached tool list is stale. The channel
/// itself is made when the first session listens: most users never do, and a broadcast
/// channel allocates all its slots up front.
#[derive(Debug, Clone)]
pub struct ServerEvents {
    inner: Arc<EventChannel>,
}

#[derive(Debug)]
struct EventChannel {
    sender: OnceLock<broadcast::Sender<ServerEvent>>,
    capacity: usize,
    tools_generation: AtomicU64,
    /// Cluster mode: where this channel's changes also go, for the same user's sessions on the
    /// other nodes.
    relay: OnceLock<Arc<dyn EventRelay>>,
}

/// Carries a channel's changes to the other nodes of a cluster (`cluster::events`).
pub trait EventRelay: Send + Sync + std::fmt::Debug {
    fn publish(&self, event: &ServerEvent);
}

/// A [`ServerEvents`] that does not keep the channel alive (the cluster's index of channels).
#[derive(Debug, Clone)]
pub struct WeakServerEvents(std::sync::Weak<EventChannel>);

impl WeakServerEvents {
    pub fn upgrade(&self) -> Option<ServerEvents> {
        self.0.upgrade().map(|inner| ServerEvents { inner })
    }
}

impl ServerEvents {
    pub fn new(capacity: usize) -> Self {
        ServerEvents {
            inner: Arc::new(EventChannel {
                sender: OnceLock::new(),
                capacity,
                tools_generation: AtomicU64::new(0),
                relay: OnceLock::new(),
            }),
        }
    }

    /// Sends every change announced from now on through `relay` too (once; later calls
    /// change nothing).
    pub fn relay_to(&self, relay: Arc<dyn EventRelay>) {
        let _ = self.inner.relay.set(relay);
    }

    pub fn downgrade(&self) -> WeakServerEvents {
        WeakServerEvents(Arc::downgrade(&self.inner))
    }

    /// Announces a change here and, in a cluster, on the other nodes; nobody listening is not
    /// an error.
    pub fn send(&self, event: ServerEvent) {
        if let Some(relay) = self.inner.relay.get() {
            relay.publish(&event);
        }
        self.deliver(event);
    }

    /// Announces a change to this node's listeners only (one relayed from another node).
    pub fn deliver(&self, event: ServerEvent) {
        if event == ServerEvent::ToolsListChanged {
            self.inner.tools_generation.fetch_add(1, Ordering::SeqCst);
        }
        if let Some(sender) = self.inner.sender.get() {
            let _ = sender.send(event);
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<ServerEvent> {
        self.inner
            .sender
            .get_or_init(|| broadcast::channel(self.inner.capacity).0)
            .subscribe()
    }

    /// Whether a session is listening (a state with listeners must outlive its instance).
    pub fn has_listeners(&self) -> bool {
        self.inner
            .sender
            .get()
            .is_some_and(|sender| sender.receiver_count() > 0)
    }

    /// How many times the tool list has changed.
    pub fn tools_generation(&self) -> u64 {
        self.inner.tools_generation.load(Ordering::SeqCst)
    }
}
