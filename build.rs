//! Compiles in the native servers: every `servers/<name>/server.rs` becomes a module of the
//! crate, registered under its folder name, so adding a native server is adding a folder.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("servers");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut folders: Vec<_> = std::fs::read_dir(&root)
        .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    folders.sort();
    let mut modules = String::new();
    let mut table = String::from("pub const NATIVE_SERVERS: &[(&str, NativeFactory)] = &[\n");
    for folder in folders {
        let code = folder.join("server.rs");
        if !code.is_file() {
            continue;
        }
        let Some(name) = folder.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let module = name.replace('-', "_");
        let _ = writeln!(
            modules,
            "#[path = {:?}]\npub mod {module};",
            code.display().to_string()
        );
        let _ = writeln!(table, "    ({name:?}, {module}::create),");
    }
    table.push_str("];\n");
    let out = Path::new(&std::env::var("OUT_DIR").unwrap_or_default()).join("native_servers.rs");
    if let Err(err) = std::fs::write(&out, modules + &table) {
        panic!("cannot write {}: {err}", out.display());
    }
}
