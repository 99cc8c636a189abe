//! The native servers compiled in from `servers/<name>/server.rs` (listed by `build.rs`).
//! Each module exposes `pub fn create(init: ServerInit) -> Arc<dyn McpServer>`.

use super::NativeFactory;

include!(concat!(env!("OUT_DIR"), "/native_servers.rs"));
