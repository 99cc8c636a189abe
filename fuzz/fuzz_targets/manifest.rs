//! `server.toml` parsing and checking (`manifest::parse`, what `load` runs on a file's text).
//!
//! Asserts: any text either fails with a printable reason or yields a manifest that keeps
//! every promise the runtime relies on afterwards — a folder-safe name, a description and a
//! version, http(s) URLs where URLs are needed, an `http` server with tools, unique tool names,
//! each tool's declaration checked (path under the base URL, every `{arg}` of the path and
//! every query, body and `each` argument defined by its input schema), OAuth endpoints present,
//! prompt roles MCP knows — and parsing the same text twice gives the same answer.
#![no_main]

use std::collections::HashSet;

use gumcp_actors::ids::validate_server_name;
use gumcp_actors::servers::http::call::fill;
use gumcp_actors::servers::manifest::{parse, AuthKind, Inject, ServerKind};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn is_http_url(url: &str) -> bool {
    url.starts_with("https://") || url.starts_with("http://")
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let manifest = match parse(text) {
        Ok(manifest) => manifest,
        Err(reason) => {
            assert!(!reason.trim().is_empty());
            assert_eq!(parse(text).err(), Some(reason));
            return;
        }
    };
    assert!(
        validate_server_name(&manifest.name).is_ok(),
        "{}",
        manifest.name
    );
    assert!(!manifest.description.trim().is_empty());
    assert!(!manifest.version.trim().is_empty());
    if let Some(service) = &manifest.auth.service {
        assert!(validate_server_name(service).is_ok());
    }
    assert!(validate_server_name(manifest.auth_service()).is_ok());
    if manifest.auth.kind == AuthKind::Oauth2 {
        assert!(manifest
            .auth
            .authorize_url
            .as_deref()
            .is_some_and(is_http_url));
        assert!(manifest.auth.token_url.as_deref().is_some_and(is_http_url));
    }
    match &manifest.auth.inject {
        Some(Inject::Header(name)) | Some(Inject::Query(name)) => {
            assert!(!name.is_empty() && name.trim() == name)
        }
        _ => {}
    }
    let declares = !manifest.tools.is_empty() || !manifest.prompts.is_empty();
    if manifest.kind == ServerKind::Http || declares {
        assert!(manifest.base_url.as_deref().is_some_and(is_http_url));
    }
    if manifest.kind == ServerKind::Http {
        assert!(!manifest.tools.is_empty());
    }
    for prompt in &manifest.prompts {
        assert!(prompt
            .messages
            .iter()
            .all(|m| m.role == "user" || m.role == "assistant"));
    }
    let mut names = HashSet::new();
    for tool in &manifest.tools {
        assert!(names.insert(tool.name.as_str()), "{} twice", tool.name);
        assert_eq!(tool.check(), Ok(()));
        assert!(tool.path.starts_with('/'));
        let properties = tool
            .input_schema
            .get("properties")
            .and_then(Value::as_object);
        let known = |arg: &str| properties.is_some_and(|p| p.contains_key(arg));
        for arg in tool.path_args().iter().chain(tool.query.values()) {
            assert!(known(arg), "{arg} is not in the schema of {}", tool.name);
        }
        for arg in tool.body_args.iter().flatten() {
            assert!(known(arg));
        }
        // The declared path, filled with its own argument names, stays under the base URL.
        if let Ok(path) = fill(&tool.path, |name| Some(name.to_owned())) {
            assert!(path.starts_with('/'));
        }
    }
    assert_eq!(parse(text).map(|again| again.name), Ok(manifest.name));
});
