//! The Model Context Protocol as a server speaks it, independent of transport: JSON-RPC
//! framing, errors, revisions and eras, `_meta`, and the dispatch of server methods.

pub mod dispatch;
pub mod error;
pub mod headers;
pub mod jsonrpc;
pub mod meta;
pub mod tasks;
pub mod version;
