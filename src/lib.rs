//! gumcp-actors: hosts MCP servers as actors — for many users over HTTP, for one over stdio.
//!
//! Codemap (see ARCHITECTURE.md for the whole picture):
//! - [`cli`] — the command line; each command wires the pieces below together.
//! - [`config`] — the one typed, validated [`config::Settings`].
//! - [`protocol`] — MCP as a server speaks it: framing, errors, revisions, `_meta`, dispatch.
//! - [`actors`] — supervisor, server cores and their actors, session actors, the host that
//!   serves a request, the directory; the only place actix types appear.
//! - [`servers`] — what a server is (the [`servers::McpServer`] trait and the context of a
//!   call), manifests on disk, the registry, and the native servers compiled in from `servers/`.
//! - [`transport`] — stdio and HTTP (legacy SSE, Streamable HTTP of both eras, health): bytes
//!   in, bytes out, one session actor per connection (none for a stateless request).
//! - [`auth`] — credentials for upstream services: stores (local files, remote API), OAuth
//!   token requests.
//! - [`cluster`] — cluster mode (`cluster.redis_url`): this node's id and its Redis.
//! - [`upstream`] — the one pooled HTTP client for upstream APIs.
//! - [`ids`] — validation of user ids and server names before they reach a path or a key.
//! - [`telemetry`] — logs on stderr, spans, W3C trace context, OTLP export when configured.
//! - [`audit`] — the audit log of calls (who, what, when, outcome; never arguments).
//! - [`metrics`] — the Prometheus metrics `serve` exports.

pub mod actors;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod ids;
pub mod metrics;
pub mod protocol;
pub mod servers;
pub mod telemetry;
pub mod transport;
pub mod upstream;
