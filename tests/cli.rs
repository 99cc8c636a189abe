//! The command line: `servers`, unknown servers and users, configuration errors.

mod common;

use std::process::Command;

use common::binary;

fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let output = Command::new(binary())
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("the binary runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn servers_lists_discovered_servers_with_their_auth_kind() {
    let (code, stdout, _) = run(&["servers"], &[]);
    assert_eq!(code, 0);
    let line = stdout
        .lines()
        .find(|line| line.starts_with("simple-tools-server"))
        .unwrap_or_else(|| panic!("listed: {stdout}"));
    assert!(line.contains("native") && line.contains("none"), "{line}");
}

#[test]
fn a_broken_manifest_is_reported_and_the_rest_still_served() {
    let root = tempfile::tempdir().unwrap();
    let servers = root.path().join("servers");
    let good = servers.join("simple-tools-server");
    std::fs::create_dir_all(&good).unwrap();
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("servers/simple-tools-server/server.toml");
    std::fs::copy(shipped, good.join("server.toml")).unwrap();
    let broken = servers.join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(
        broken.join("server.toml"),
        "name = \"broken\"\nkind = \"native\"\n",
    )
    .unwrap();
    let uncompiled = servers.join("not-compiled");
    std::fs::create_dir_all(&uncompiled).unwrap();
    std::fs::write(
        uncompiled.join("server.toml"),
        "name = \"not-compiled\"\ndescription = \"x\"\nversion = \"1\"\nkind = \"native\"\n",
    )
    .unwrap();
    let dir = servers.to_string_lossy().into_owned();
    let (code, stdout, stderr) = run(&["servers"], &[("GUMCP__SERVERS__DIR", &dir)]);
    assert_eq!(code, 0);
    assert!(stdout.contains("simple-tools-server"));
    assert!(!stdout.contains("broken"));
    assert!(
        stderr.contains("broken/server.toml") && stderr.contains("description"),
        "{stderr}"
    );
    assert!(
        stderr.contains("not-compiled") && stderr.contains("compiled"),
        "{stderr}"
    );
}

#[test]
fn an_unknown_server_names_the_available_ones() {
    let (code, _, stderr) = run(&["stdio", "--server", "nope"], &[]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("nope") && stderr.contains("simple-tools-server"),
        "{stderr}"
    );
}

#[test]
fn a_user_id_that_could_escape_a_folder_is_refused() {
    let (code, _, stderr) = run(
        &[
            "stdio",
            "--server",
            "simple-tools-server",
            "--user-id",
            "../x",
        ],
        &[],
    );
    assert_eq!(code, 2);
    assert!(stderr.contains("invalid user id"), "{stderr}");
}

#[test]
fn a_bad_environment_setting_names_the_key() {
    let (code, _, stderr) = run(&["servers"], &[("GUMCP__PROTOCOL__PAGE_SIZE", "0")]);
    assert_eq!(code, 78);
    assert!(stderr.contains("protocol.page_size"), "{stderr}");
    let (code, _, stderr) = run(&["servers"], &[("GUMCP__PROTOCOL__PAGE_SIZE", "many")]);
    assert_eq!(code, 78);
    assert!(stderr.contains("page_size"), "{stderr}");
}

#[test]
fn the_shipped_config_file_is_accepted() {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/config/gumcp.toml");
    let (code, stdout, stderr) = run(&["--config", config, "servers"], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("simple-tools-server"));
}

/// A port already taken ends `serve` with one clear line naming the setting and the flag,
/// whichever of the two ports it is — and nothing else: no panic from the actors that had
/// already been started when the bind failed.
#[test]
fn serve_reports_a_taken_port_clearly() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    for (args, what, flag) in [
        (
            ["--port", "0", "--metrics-port", &port],
            "metrics",
            "--metrics-port",
        ),
        (["--port", &port, "--metrics-port", "0"], "HTTP", "--port"),
    ] {
        let mut command = vec!["serve"];
        command.extend(args);
        let (code, _, stderr) = run(&command, &[("RUST_LOG", "warn")]);
        assert_eq!(code, 1, "{stderr}");
        assert!(
            stderr.contains(&format!("cannot listen for {what}"))
                && stderr.contains(&port)
                && stderr.contains(flag),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn serve_refuses_an_invalid_http_setting_by_name() {
    let (code, _, stderr) = run(
        &["serve", "--port", "0"],
        &[("GUMCP__HTTP__KEEP_ALIVE_SECS", "0")],
    );
    assert_eq!(code, 78);
    assert!(stderr.contains("http.keep_alive_secs"), "{stderr}");
}

#[test]
fn a_reader_that_stops_early_ends_the_listing_quietly() {
    for args in [&["servers"][..], &["servers", "--verbose"][..]] {
        let mut child = Command::new(binary())
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the binary runs");
        // `| head -0`: the read end is gone before (or while) the listing is written.
        drop(child.stdout.take());
        let output = child.wait_with_output().expect("the binary exits");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
