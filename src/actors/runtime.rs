//! The runtime handle the transports hold: it finds (or has the supervisor start) a user's
//! server actor and wraps it in a [`ServerHandle`] whose methods are plain async calls, so no
//! actor types leak past this module.

use std::sync::Arc;

use actix::prelude::*;
use rmcp::model::{
    CallToolResult, CompleteRequestParams, CompleteResult, GetPromptResult, JsonObject, Prompt,
    ReadResourceResult, Resource, ResourceTemplate, Tool,
};
use tokio::sync::broadcast;

use super::directory::Directory;
use super::server::{
    CallTool, Complete, Describe, GetPrompt, ListPrompts, ListResourceTemplates, ListResources,
    ListTools, ReadResource, ServerActor, ServerDescription, WatchEvents,
};
use super::supervisor::{CountLive, GetServer, LookupError, ServerKey, Supervisor};
use crate::config::Settings;
use crate::protocol::dispatch::StateSeal;
use crate::protocol::error::McpError;
use crate::servers::{CallError, RequestContext, ServerEvent, ServerRegistry};

/// Shared by every transport and session; cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    pub settings: Arc<Settings>,
    pub registry: Arc<ServerRegistry>,
    /// Seals 2026-07-28 `requestState` with a key that lives as long as this runtime.
    pub seal: Arc<StateSeal>,
    directory: Arc<Directory>,
    supervisor: Addr<Supervisor>,
}

impl Runtime {
    /// Starts the supervisor on the current arbiter; server actors go onto `arbiters` (or the
    /// current arbiter when the list is empty). Must run inside an actix system.
    pub fn start(
        settings: Arc<Settings>,
        registry: Arc<ServerRegistry>,
        arbiters: Vec<ArbiterHandle>,
    ) -> Runtime {
        let directory = Arc::new(Directory::default());
        let supervisor = Supervisor::new(
            registry.clone(),
            directory.clone(),
            settings.runtime.clone(),
            arbiters,
        )
        .start();
        let seal_ttl = std::time::Duration::from_secs(settings.protocol.request_state_ttl_secs);
        Runtime {
            seal: Arc::new(StateSeal::random(seal_ttl)),
            settings,
            registry,
            directory,
            supervisor,
        }
    }

    /// The user's instance of `server`, started on first use.
    pub async fn server(&self, server: &str, user: &str) -> Result<ServerHandle, McpError> {
        let key = ServerKey {
            server: Arc::from(server),
            user: Arc::from(user),
        };
        let addr = match self.directory.live_server(&key) {
            Some(addr) => addr,
            None => self
                .supervisor
                .send(GetServer { key: key.clone() })
                .await
                .map_err(|_| McpError::internal("the runtime is shutting down"))?
                .map_err(|err: LookupError| McpError::invalid_params(err.to_string()))?,
        };
        Ok(ServerHandle {
            key,
            addr,
            runtime: self.clone(),
        })
    }

    /// Number of live server actors.
    pub async fn live_servers(&self) -> usize {
        self.supervisor.send(CountLive).await.unwrap_or(0)
    }
}

/// A user's server instance, as async calls. It re-finds its actor if the old one stopped
/// (idle, or died), so holders may keep it for as long as they like.
#[derive(Clone)]
pub struct ServerHandle {
    key: ServerKey,
    addr: Addr<ServerActor>,
    runtime: Runtime,
}

impl ServerHandle {
    async fn send<M>(&mut self, message: M) -> Result<M::Result, McpError>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        ServerActor: Handler<M>,
    {
        if !self.addr.connected() {
            let fresh = self
                .runtime
                .server(&self.key.server, &self.key.user)
                .await?;
            self.addr = fresh.addr;
        }
        self.addr.send(message).await.map_err(|_| {
            McpError::internal("the server stopped while handling the request; please retry")
        })
    }

    pub async fn describe(&mut self) -> Result<ServerDescription, McpError> {
        self.send(Describe).await
    }

    pub async fn tools(&mut self) -> Result<Arc<Vec<Tool>>, McpError> {
        self.send(ListTools).await
    }

    pub async fn call_tool(
        &mut self,
        name: String,
        arguments: JsonObject,
        ctx: RequestContext,
    ) -> Result<CallToolResult, CallError> {
        self.send(CallTool {
            name,
            arguments,
            ctx,
        })
        .await?
    }

    pub async fn resources(&mut self) -> Result<Vec<Resource>, McpError> {
        self.send(ListResources).await
    }

    pub async fn resource_templates(&mut self) -> Result<Vec<ResourceTemplate>, McpError> {
        self.send(ListResourceTemplates).await
    }

    pub async fn read_resource(
        &mut self,
        uri: String,
        ctx: RequestContext,
    ) -> Result<ReadResourceResult, CallError> {
        self.send(ReadResource { uri, ctx }).await?
    }

    pub async fn prompts(&mut self) -> Result<Vec<Prompt>, McpError> {
        self.send(ListPrompts).await
    }

    pub async fn get_prompt(
        &mut self,
        name: String,
        arguments: JsonObject,
        ctx: RequestContext,
    ) -> Result<GetPromptResult, CallError> {
        self.send(GetPrompt {
            name,
            arguments,
            ctx,
        })
        .await?
    }

    pub async fn complete(
        &mut self,
        params: CompleteRequestParams,
        ctx: RequestContext,
    ) -> Result<CompleteResult, CallError> {
        self.send(Complete { params, ctx }).await?
    }

    pub async fn watch_events(&mut self) -> Result<broadcast::Receiver<ServerEvent>, McpError> {
        self.send(WatchEvents).await
    }
}
