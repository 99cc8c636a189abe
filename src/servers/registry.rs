//! The server registry: every server this binary offers — the built-in ones and those of the
//! servers folder — with the code that creates a user's instance of it. Built once at start-up
//! and shared read-only.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};

use super::hosted::{HostedRuntime, HostedServer};
use super::http::{HttpServer, Upstream};
use super::manifest::{self, Manifest, ManifestProblem, Origin, ServerKind};
use super::schema::SharedTools;
use super::shape::{Shape, Shaped};
use super::{native, McpServer, ServerEvents, UserStore};
use crate::auth::principal::Principal;

/// What a new instance is given: whose it is, the data that outlives it, its event channel,
/// and the shared upstream client (for `http` servers).
#[derive(Clone)]
pub struct ServerInit {
    /// The server's own manifest (its auth spec, for upstream calls through `Upstream::api`).
    pub manifest: Arc<Manifest>,
    pub user_id: Arc<str>,
    /// Who the instance serves: the user and, where only a key vouches, that key's digest
    /// (per-caller bounds, such as live hosted children, count by it).
    pub principal: Principal,
    pub store: Arc<UserStore>,
    pub events: ServerEvents,
    pub upstream: Upstream,
    /// What hosted (`stdio`) servers' children share: settings and the live-child bounds.
    pub hosted: HostedRuntime,
}

/// Creates one user's instance of a native server.
pub type NativeFactory = fn(ServerInit) -> Arc<dyn McpServer>;

/// How instances of a server are made.
enum Factory {
    Native(NativeFactory),
    /// The `http` engine, driven by the manifest's tools.
    Http,
    /// Any MCP server, hosted per user: a child process (`stdio`) or a remote session
    /// (`mcp`), spoken to by the runtime's own client (`servers::hosted`).
    Hosted,
}

/// A usable server: its manifest, where that came from, and how to instantiate it.
pub struct ServerEntry {
    pub manifest: Arc<Manifest>,
    pub origin: Origin,
    factory: Factory,
    /// The names every request to this server carries, allocated once here rather than per
    /// request: the server's name, the credential service it uses, and the `serverInfo` of
    /// its replies' `_meta`.
    pub name: Arc<str>,
    pub auth_service: Arc<str>,
    pub server_info: Arc<Value>,
    /// The tools (and compiled schemas) its instances share.
    pub tools: SharedTools,
    /// The manifest's `[shape]`, when it has one: every instance is wrapped in it.
    shape: Option<Arc<Shape>>,
}

impl ServerEntry {
    /// The server's own name of the tool a caller knows as `exposed` (renamed or prefixed by
    /// the `[shape]`); `None` for a tool the shape hides.
    pub fn own_tool_name<'a>(&self, exposed: &'a str) -> Option<std::borrow::Cow<'a, str>> {
        match &self.shape {
            Some(shape) => shape.own_name(exposed).map(std::borrow::Cow::Owned),
            None => Some(std::borrow::Cow::Borrowed(exposed)),
        }
    }

    pub fn instantiate(&self, init: ServerInit) -> Arc<dyn McpServer> {
        let instance = self.instantiate_unshaped(init);
        match &self.shape {
            Some(shape) => Arc::new(Shaped {
                inner: instance,
                shape: shape.clone(),
            }),
            None => instance,
        }
    }

    fn instantiate_unshaped(&self, init: ServerInit) -> Arc<dyn McpServer> {
        match &self.factory {
            Factory::Native(factory) => factory(init),
            Factory::Http => Arc::new(HttpServer::new(self.manifest.clone(), init.upstream)),
            Factory::Hosted => {
                let folder = match &self.origin {
                    Origin::Folder(folder) => Some(folder.clone()),
                    Origin::BuiltIn => None,
                };
                Arc::new(HostedServer::new(self.manifest.clone(), folder, init))
            }
        }
    }
}

/// All servers found at start-up, plus the folders that were skipped and why.
#[derive(Default)]
pub struct ServerRegistry {
    entries: BTreeMap<String, Arc<ServerEntry>>,
    problems: Vec<ManifestProblem>,
}

impl ServerRegistry {
    /// The built-in servers, added to or overridden by the folders of `dir` (see
    /// [`manifest::discover`]); a manifest that is broken or whose code is missing is recorded
    /// in [`ServerRegistry::problems`] and skipped.
    pub fn discover(dir: Option<&Path>) -> Self {
        let (found, mut problems) = manifest::discover(dir);
        let mut entries = BTreeMap::new();
        for server in found {
            let name = server.manifest.name.clone();
            let factory = match server.manifest.kind {
                ServerKind::Http => Some(Factory::Http),
                ServerKind::Stdio | ServerKind::Mcp => Some(Factory::Hosted),
                ServerKind::Native => native_factory(&name).map(Factory::Native),
            };
            match factory {
                Some(factory) => {
                    let manifest = server.manifest;
                    let shape = Shape::new(&manifest.shape).map(Arc::new);
                    let entry = ServerEntry {
                        name: Arc::from(name.as_str()),
                        auth_service: Arc::from(manifest.auth_service()),
                        server_info: Arc::new(
                            json!({ "name": manifest.name, "version": manifest.version }),
                        ),
                        manifest: Arc::new(manifest),
                        origin: server.origin,
                        factory,
                        tools: SharedTools::default(),
                        shape,
                    };
                    entries.insert(name, Arc::new(entry));
                }
                None => problems.push(ManifestProblem {
                    path: server.origin.manifest_path(&name),
                    reason: format!(
                        "kind = \"native\" but no code for {name:?} was compiled into this \
                         binary (servers/{name}/server.rs must exist when building)"
                    ),
                }),
            }
        }
        ServerRegistry { entries, problems }
    }

    pub fn get(&self, name: &str) -> Option<&Arc<ServerEntry>> {
        self.entries.get(name)
    }

    pub fn entries(&self) -> impl Iterator<Item = &Arc<ServerEntry>> {
        self.entries.values()
    }

    pub fn names(&self) -> Vec<String> {
        self.entries.keys().cloned().collect()
    }

    pub fn problems(&self) -> &[ManifestProblem] {
        &self.problems
    }
}

fn native_factory(name: &str) -> Option<NativeFactory> {
    native::NATIVE_SERVERS
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, factory)| *factory)
}
