//! `subscriptions/listen` (2026-07-28) streams, and the server events that feed them and the
//! legacy sessions' list-changed and resource-updated notifications.

use std::collections::HashSet;
use std::sync::Arc;

use actix::prelude::*;
use rmcp::model::JsonObject;
use serde_json::{json, Value};
use tokio::sync::broadcast;

use super::{deliver, Answer, SessionActor};
use crate::actors::outbox::Outbox;
use crate::actors::runtime::Interest;
use crate::protocol::error::McpError;
use crate::protocol::jsonrpc::{Outgoing, RequestId};
use crate::protocol::meta::SUBSCRIPTION_ID;
use crate::protocol::tasks::TASKS_EXTENSION;
use crate::servers::{Features, ServerEvent};

/// An open `subscriptions/listen`: the notification types it agreed to, and the stream its
/// notifications go to (its own response stream over HTTP).
#[derive(Debug, Clone)]
pub(super) struct Listen {
    out: Outbox,
    tools: bool,
    prompts: bool,
    resources: bool,
    resource_uris: HashSet<String>,
    /// Status changes of the principal's tasks (`notifications/tasks`, the tasks extension).
    tasks: bool,
    /// Its subscriptions at a server that passes them on, let go of when the listen ends.
    interest: Option<Arc<Interest>>,
}

impl SessionActor {
    /// Opens a `subscriptions/listen` stream: acknowledged with the subset the server can honour,
    /// then fed by server events until the client cancels it or the session ends.
    pub(super) fn listen(
        &mut self,
        id: RequestId,
        params: &JsonObject,
        out: Outbox,
        ctx: &mut Context<Self>,
    ) -> Answer {
        let wanted = params
            .get("notifications")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let server = self.host.server();
        let opened = async move { server.await?.describe().await };
        ctx.spawn(opened.into_actor(self).map(move |outcome, act, ctx| {
            let features = match outcome {
                Ok(desc) => desc.features,
                Err(error) => {
                    deliver(&out, Outgoing::reply(id, Err(error)));
                    return;
                }
            };
            let (listen, agreed) = agree(&wanted, &features, out);
            deliver(
                &listen.out,
                Outgoing::notification(
                    "notifications/subscriptions/acknowledged",
                    json!({ "_meta": { SUBSCRIPTION_ID: id }, "notifications": agreed }),
                ),
            );
            let mut listen = listen;
            if act.host.passes_interest_on() && !listen.resource_uris.is_empty() {
                let interest = Interest::new(&act.host.runtime, &act.host.key);
                let uris = listen.resource_uris.iter().cloned().collect();
                act.pass_on_listen(interest.holder(), uris, ctx);
                listen.interest = Some(Arc::new(interest));
            }
            act.listens.insert(id, listen);
            act.watch_events(ctx);
        }));
        Answer::Pending
    }

    /// `resources/subscribe` or `resources/unsubscribe` at a server that passes them on: the
    /// session's own subscription changes once the server has passed it on.
    pub(super) fn pass_on_subscription(
        &mut self,
        id: RequestId,
        method: &str,
        params: &JsonObject,
        out: &Outbox,
        ctx: &mut Context<Self>,
    ) -> Answer {
        let Some(uri) = params.get("uri").and_then(Value::as_str).map(str::to_owned) else {
            let error = McpError::invalid_params("missing required parameter `uri`");
            return Answer::Now(Outgoing::reply(id, Err(error)));
        };
        let subscribed = method == "resources/subscribe";
        if subscribed {
            if let Err(error) = self.admit_subscription(&uri) {
                return Answer::Now(Outgoing::reply(id, Err(error)));
            }
        }
        let Some(holder) = self.interest.as_ref().map(Interest::holder) else {
            let error = McpError::internal("this server takes no subscriptions of its own");
            return Answer::Now(Outgoing::reply(id, Err(error)));
        };
        let server = self.host.server();
        let passed = {
            let uri = uri.clone();
            async move { server.await?.subscribe(holder, &uri, subscribed).await }
        };
        let out = out.clone();
        ctx.spawn(passed.into_actor(self).map(move |outcome, act, _| {
            let reply = outcome.map(|()| {
                if subscribed {
                    act.resource_subscriptions.insert(uri);
                } else {
                    act.resource_subscriptions.remove(&uri);
                }
                json!({})
            });
            deliver(&out, Outgoing::reply(id, reply));
        }));
        Answer::Pending
    }

    /// `logging/setLevel` (already the session's own) passed on to a server that passes it on.
    pub(super) fn pass_on_level(
        &mut self,
        id: RequestId,
        holder: u64,
        out: &Outbox,
        ctx: &mut Context<Self>,
    ) -> Answer {
        let Some(level) = self.log_level else {
            return Answer::Now(Outgoing::reply(id, Ok(json!({}))));
        };
        let server = self.host.server();
        let passed = async move { server.await?.set_log_level(holder, level).await };
        let out = out.clone();
        ctx.spawn(passed.into_actor(self).map(move |outcome, _, _| {
            deliver(&out, Outgoing::reply(id, outcome.map(|()| json!({}))));
        }));
        Answer::Pending
    }

    /// A listen's resource subscriptions passed on to a server that passes them on, under
    /// the listen's own name (its [`Interest`] lets go of them when it ends).
    fn pass_on_listen(&mut self, holder: u64, uris: Vec<String>, ctx: &mut Context<Self>) {
        let server = self.host.server();
        let passed = async move {
            let mut server = match server.await {
                Ok(server) => server,
                Err(error) => {
                    return tracing::warn!(%error, "a listen's subscriptions were not passed on")
                }
            };
            for uri in uris {
                if let Err(error) = server.subscribe(holder, &uri, true).await {
                    tracing::warn!(%error, "a listen's subscription was not passed on");
                }
            }
        };
        ctx.spawn(passed.into_actor(self));
    }

    pub(super) fn watch_events(&mut self, ctx: &mut Context<Self>) {
        if self.watching_events {
            return;
        }
        self.watching_events = true;
        let server = self.host.server();
        let subscribe = async move { server.await?.watch_events().await };
        ctx.spawn(
            subscribe
                .into_actor(self)
                .map(|outcome, act, ctx| match outcome {
                    Ok(receiver) => {
                        ctx.add_stream(event_stream(receiver));
                    }
                    Err(error) => {
                        act.watching_events = false;
                        tracing::warn!(%error, "cannot watch server events");
                    }
                }),
        );
    }

    /// Ends every open listen with the graceful-closure result the spec describes.
    pub(super) fn close_listens(&mut self) {
        for (id, listen) in std::mem::take(&mut self.listens) {
            deliver(
                &listen.out,
                Outgoing::reply(
                    id.clone(),
                    Ok(json!({ "resultType": "complete", "_meta": { SUBSCRIPTION_ID: id } })),
                ),
            );
        }
    }
}

/// The notification types a listen asked for, narrowed to what the server supports.
fn agree(wanted: &JsonObject, features: &Features, out: Outbox) -> (Listen, Value) {
    let asked = |key: &str| wanted.get(key).and_then(Value::as_bool).unwrap_or(false);
    let listen = Listen {
        out,
        tools: asked("toolsListChanged") && features.tools_list_changed,
        prompts: asked("promptsListChanged") && features.prompts_list_changed,
        resources: asked("resourcesListChanged") && features.resources_list_changed,
        tasks: asked(TASKS_EXTENSION),
        interest: None,
        resource_uris: if features.resources_subscribe {
            wanted
                .get("resourceSubscriptions")
                .and_then(Value::as_array)
                .map(|uris| {
                    uris.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        } else {
            HashSet::new()
        },
    };
    let mut agreed = json!({});
    for (flag, key) in [
        (listen.tools, "toolsListChanged"),
        (listen.prompts, "promptsListChanged"),
        (listen.resources, "resourcesListChanged"),
        (listen.tasks, TASKS_EXTENSION),
    ] {
        if flag {
            agreed[key] = json!(true);
        }
    }
    if !listen.resource_uris.is_empty() {
        let mut uris: Vec<&String> = listen.resource_uris.iter().collect();
        uris.sort();
        agreed["resourceSubscriptions"] = json!(uris);
    }
    (listen, agreed)
}

/// A server's events as a stream that skips over lag rather than ending on it.
fn event_stream(receiver: broadcast::Receiver<ServerEvent>) -> impl Stream<Item = ServerEvent> {
    futures::stream::unfold(receiver, |mut receiver| async move {
        loop {
            match receiver.recv().await {
                Ok(event) => return Some((event, receiver)),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}

impl StreamHandler<ServerEvent> for SessionActor {
    fn handle(&mut self, event: ServerEvent, _: &mut Self::Context) {
        if let ServerEvent::TaskStatus(task) = &event {
            for (id, listen) in self.listens.iter().filter(|(_, listen)| listen.tasks) {
                let mut params = task.clone();
                params["_meta"] = json!({ SUBSCRIPTION_ID: id });
                deliver(
                    &listen.out,
                    Outgoing::notification("notifications/tasks", params),
                );
            }
            return;
        }
        let (method, uri) = match &event {
            ServerEvent::ToolsListChanged => ("notifications/tools/list_changed", None),
            ServerEvent::PromptsListChanged => ("notifications/prompts/list_changed", None),
            ServerEvent::ResourcesListChanged => ("notifications/resources/list_changed", None),
            ServerEvent::ResourceUpdated { uri } => ("notifications/resources/updated", Some(uri)),
            ServerEvent::TaskStatus(_) => return,
        };
        if self.legacy.is_some() {
            let wanted = uri.is_none_or(|uri| self.resource_subscriptions.contains(uri));
            if wanted {
                let params = uri.map_or(Value::Null, |uri| json!({ "uri": uri }));
                self.send(Outgoing::notification(method, params));
            }
        }
        for (id, listen) in &self.listens {
            let wanted = match &event {
                ServerEvent::ToolsListChanged => listen.tools,
                ServerEvent::PromptsListChanged => listen.prompts,
                ServerEvent::ResourcesListChanged => listen.resources,
                ServerEvent::ResourceUpdated { uri } => listen.resource_uris.contains(uri),
                ServerEvent::TaskStatus(_) => false,
            };
            if wanted {
                let mut params = json!({ "_meta": { SUBSCRIPTION_ID: id } });
                if let Some(uri) = uri {
                    params["uri"] = json!(uri);
                }
                deliver(&listen.out, Outgoing::notification(method, params));
            }
        }
    }

    fn finished(&mut self, _: &mut Self::Context) {
        // The event channel closing is not the connection closing; keep serving.
    }
}
