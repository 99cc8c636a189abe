//! Compiles in the shipped servers, so an installed binary needs no source tree:
//! - every `servers/<name>/server.rs` becomes a module of the crate, registered under its
//!   folder name (adding a native server is adding a folder);
//! - every `servers/<name>/server.toml`, with its `README.md`, becomes text in the binary: the
//!   built-in servers that a configured servers folder can add to or override at run time. The
//!   manifest goes in as JSON: read here once, it is a fraction of TOML's cost to read at every
//!   start (nearly all of a start's work was parsing the shipped TOML), and a shipped manifest
//!   that is not TOML fails the build rather than a start.

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
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default());
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
            let json = out.join(format!("{name}.server.json"));
            write(&json, &manifest_as_json(&manifest));
            let _ = writeln!(
                embedded,
                "    BuiltInServer {{ folder: {name:?}, manifest_toml: include_str!({:?}), \
                 manifest_json: include_str!({:?}), readme: {readme} }},",
                manifest.display().to_string(),
                json.display().to_string()
            );
        }
    }
    natives.push_str("];\n");
    embedded.push_str("];\n");
    write(&out.join("native_servers.rs"), &(modules + &natives));
    write(&out.join("built_in_servers.rs"), &embedded);
}

/// The manifest at `path` as JSON text: the same tables and values, which serde reads into
/// the same `Manifest`.
fn manifest_as_json(path: &Path) -> String {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
    let table: toml::Table = toml::from_str(&text)
        .unwrap_or_else(|err| panic!("{} is not valid TOML: {err}", path.display()));
    serde_json::to_string(&table)
        .unwrap_or_else(|err| panic!("{} has no JSON form: {err}", path.display()))
}

fn write(path: &Path, text: &str) {
    if let Err(err) = std::fs::write(path, text) {
        panic!("cannot write {}: {err}", path.display());
    }
}
