//! The shipped server folders, compiled in by `build.rs` so that an installed binary serves
//! them wherever it runs: each `servers/<name>/server.toml` and `README.md` as they were when
//! the binary was built.

/// One shipped `servers/<folder>/`.
pub struct BuiltInServer {
    pub folder: &'static str,
    pub manifest: &'static str,
    pub readme: Option<&'static str>,
}

include!(concat!(env!("OUT_DIR"), "/built_in_servers.rs"));
