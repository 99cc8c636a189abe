//! The shipped server folders, compiled in by `build.rs` so that an installed binary serves
//! them wherever it runs: each `servers/<name>/server.toml` (in its JSON form) and `README.md`
//! as they were when the binary was built.

/// One shipped `servers/<folder>/`.
pub struct BuiltInServer {
    pub folder: &'static str,
    /// `server.toml` as shipped: a servers folder holding the same text (a checkout's own)
    /// is read from the JSON form instead.
    pub manifest_toml: &'static str,
    /// `server.toml`'s tables and values as JSON, which starts read much faster than TOML.
    pub manifest_json: &'static str,
    pub readme: Option<&'static str>,
}

include!(concat!(env!("OUT_DIR"), "/built_in_servers.rs"));
