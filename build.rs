//! Compiles in the shipped servers, so an installed binary needs no source tree:
//! - every `servers/<name>/server.rs` becomes a module of the crate, registered under its
//!   folder name (adding a native server is adding a folder);
//! - every `servers/<name>/server.toml`, with its `README.md`, becomes text in the binary: the
//!   built-in servers that a configured servers folder can add to or override at run time.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    // Read when the script runs, not when it was compiled: a copied `target/` (another
    // checkout's) must not make the script scan the other checkout's servers.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".to_owned());
    let root = Path::new(&manifest_dir).join("servers");
    // A folder here is scanned whole: an added, removed or edited file reruns this script.
    println!("cargo:rerun-if-changed={}", root.display());
    let mut folders: Vec<PathBuf> = std::fs::read_dir(&root)
        .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    folders.sort();
    let mut modules = String::new();
    let mut natives = String::from("pub const NATIVE_SERVERS: &[(&str, NativeFactory)] = &[\n");
    let mut embedded = String::from("pub const BUILT_IN_SERVERS: &[BuiltInServer] = &[\n");
    for folder in folders {
        let Some(name) = folder.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let code = folder.join("server.rs");
        if code.is_file() {
            let module = name.replace('-', "_");
            let _ = writeln!(
                modules,
                "#[path = {:?}]\npub mod {module};",
                code.display().to_string()
            );
            let _ = writeln!(natives, "    ({name:?}, {module}::create),");
        }
        let manifest = folder.join("server.toml");
        if manifest.is_file() {
            let readme = folder.join("README.md");
            let readme = if readme.is_file() {
                format!("Some(include_str!({:?}))", readme.display().to_string())
            } else {
                "None".to_owned()
            };
            let _ = writeln!(
                embedded,
                "    BuiltInServer {{ folder: {name:?}, manifest: include_str!({:?}), readme: {readme} }},",
                manifest.display().to_string()
            );
        }
    }
    natives.push_str("];\n");
    embedded.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default());
    for (file, text) in [
        ("native_servers.rs", modules + &natives),
        ("built_in_servers.rs", embedded),
    ] {
        let path = out.join(file);
        if let Err(err) = std::fs::write(&path, text) {
            panic!("cannot write {}: {err}", path.display());
        }
    }
}
