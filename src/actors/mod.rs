//! The actors (actix) and the only place actor types appear: the [`supervisor`] of server
//! instances, the per-(server, user) [`server_core`] (the shared instance calls run against, on
//! the caller's task) and its [`server`] actor (its lifecycle), the per-connection [`session`]
//! actors, the [`auth`] actor (credentials and refreshes), and the lock-free [`directory`].
//! Everything else talks to them through [`runtime::Runtime`], [`runtime::ServerHandle`] and
//! [`host::Host`] (serving one request, with or without a session), or, for transports,
//! through a session's handle. [`budget`] is each user's fair share of running calls,
//! [`outbox`] the bounded queue from a session to its transport, [`account_link`] the connect
//! link a call needing an account answers with.

pub mod account_link;
pub mod auth;
pub mod budget;
pub mod directory;
pub mod host;
pub mod outbox;
pub mod runtime;
pub mod server;
pub mod server_core;
pub mod session;
pub mod supervisor;
pub mod tasks;
