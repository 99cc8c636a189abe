//! An installed binary works from anywhere: the built binary, put in a `bin/` folder of its
//! own (as `cargo install` does), runs from an empty folder with a fresh home and nothing of
//! the project's environment, and still serves the shipped servers, finds its config file in
//! the user's config folder and keeps credentials in the user's data folder.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{modern_meta, StdioClient, WAIT};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// The binary installed under a temporary root, and the folders a user's session would have.
struct Installed {
    root: tempfile::TempDir,
    bin: PathBuf,
}

impl Installed {
    fn new() -> Installed {
        let root = tempfile::tempdir().unwrap();
        let bin_dir = root.path().join("bin");
        std::fs::create_dir_all(&bin_dir).unwrap();
        let bin = bin_dir.join("gumcp-actors");
        // A link is a copy that costs nothing (and leaves no writable descriptor that a
        // concurrently forked test process could hold, which makes exec fail as busy); a
        // copy where the temporary folder is on another file system.
        let built = common::binary();
        if std::fs::hard_link(&built, &bin).is_err() {
            std::fs::copy(&built, &bin).unwrap();
        }
        for folder in ["work", "home", "config", "data"] {
            std::fs::create_dir_all(root.path().join(folder)).unwrap();
        }
        Installed { root, bin }
    }

    /// The empty folder the binary runs in.
    fn work(&self) -> PathBuf {
        self.root.path().join("work")
    }

    /// `$XDG_CONFIG_HOME/gumcp-actors`.
    fn user_config(&self) -> PathBuf {
        self.root.path().join("config/gumcp-actors")
    }

    /// `$XDG_DATA_HOME/gumcp-actors`.
    fn user_data(&self) -> PathBuf {
        self.root.path().join("data/gumcp-actors")
    }

    /// The installed binary with `args`, in the empty folder, with only a user's folders in
    /// its environment: no `GUMCP__SERVERS__DIR`, nothing cargo sets.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.bin);
        command
            .args(args)
            .current_dir(self.work())
            .env_clear()
            .env("HOME", self.root.path().join("home"))
            .env("XDG_CONFIG_HOME", self.root.path().join("config"))
            .env("XDG_DATA_HOME", self.root.path().join("data"))
            .stdin(Stdio::null());
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args)
            .output()
            .expect("the installed binary runs")
    }

    /// Writes the user's config file.
    fn configure(&self, text: &str) -> PathBuf {
        std::fs::create_dir_all(self.user_config()).unwrap();
        let path = self.user_config().join("gumcp.toml");
        std::fs::write(&path, text).unwrap();
        path
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The servers shipped in this checkout: every `servers/*/server.toml`.
fn shipped_servers() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("servers");
    let mut names: Vec<String> = std::fs::read_dir(root)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|folder| folder.join("server.toml").is_file())
        .map(|folder| folder.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A declared `http` server, `echo-api`, in `servers/` beside the user's config.
fn declare_echo_server(installed: &Installed) {
    let folder = installed.user_config().join("servers/echo-api");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(
        folder.join("server.toml"),
        "name = \"echo-api\"\ndescription = \"Echoes what it is given\"\nversion = \"1\"\n\
         kind = \"http\"\nbase_url = \"http://127.0.0.1:9\"\n\n[[tools]]\nname = \"echo\"\n\
         description = \"Echo a word\"\npath = \"/echo\"\ninput_schema = { type = \"object\" }\n",
    )
    .unwrap();
}

#[test]
fn servers_lists_the_shipped_servers_as_built_in() {
    let installed = Installed::new();
    let output = installed.run(&["servers"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let listed: Vec<String> = text(&output.stdout)
        .lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
        .collect();
    assert_eq!(listed, shipped_servers());
    assert!(!text(&output.stderr).contains("skipped"), "{output:?}");

    let output = installed.run(&["servers", "--verbose"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let described = text(&output.stdout);
    assert!(
        described.contains("== simple-tools-server (native, auth: none; built in) =="),
        "{described}"
    );
    let readme = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("servers/simple-tools-server/README.md"),
    )
    .unwrap();
    assert!(described.contains(readme.trim_end()), "{described}");
    // Nothing was read from the checkout the binary was built in.
    assert!(
        !described.contains(env!("CARGO_MANIFEST_DIR")),
        "{described}"
    );
}

#[test]
fn help_and_auth_help_work_and_name_the_exit_codes() {
    let installed = Installed::new();
    let output = installed.run(&["--help"]);
    assert_eq!(output.status.code(), Some(0));
    let help = text(&output.stdout);
    assert!(
        help.contains("78") && help.contains("EX_CONFIG") && help.contains("gumcp.toml"),
        "{help}"
    );
    let output = installed.run(&["auth", "--help"]);
    assert_eq!(output.status.code(), Some(0));
    assert!(text(&output.stdout).contains("--server"));
    let output = installed.run(&["auth", "--no-such-flag"]);
    assert_eq!(output.status.code(), Some(2));
}

#[tokio::test]
async fn serve_answers_health_checks_and_tool_calls_from_an_empty_folder() {
    let installed = Installed::new();
    let mut command = tokio::process::Command::from(installed.command(&[
        "serve",
        "--port",
        "0",
        "--metrics-port",
        "0",
    ]));
    let mut child = command
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the installed binary starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let listening = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .expect("serve prints its address in time")
        .unwrap()
        .expect("serve prints its address");
    let url = listening.replace("listening on ", "");
    let client = gumcp_actors::upstream::client(WAIT).expect("the HTTP client builds");

    let health: Value = client
        .get(format!("{url}/health_check"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["servers"], json!(shipped_servers()), "{health}");

    let endpoint = format!("{url}/simple-tools-server/mcp");
    let call = |tool: &str, arguments: Value| {
        common::stateless_call(&client, &endpoint, tool, arguments, modern_meta()).send()
    };
    let stored: Value = call("store-data", json!({ "key": "k", "value": "v" }))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        stored["result"]["content"][0]["text"], "Stored 'k' with value: v",
        "{stored}"
    );
    let read: Value = call("retrieve-data", json!({ "key": "k" }))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        read["result"]["content"][0]["text"], "Value for 'k': v",
        "{read}"
    );
}

#[tokio::test]
async fn stdio_serves_a_shipped_server_from_an_empty_folder() {
    let installed = Installed::new();
    let command = installed.command(&["stdio", "--server", "simple-tools-server"]);
    let mut client = StdioClient::spawn(tokio::process::Command::from(command));
    let reply = client.initialize("2025-06-18", json!({})).await;
    assert_eq!(
        reply["result"]["serverInfo"]["name"], "simple-tools-server",
        "{reply}"
    );
    let listed = client.request(1, "tools/list", json!({})).await;
    let tools = listed["result"]["tools"].as_array().map_or(0, Vec::len);
    assert_eq!(tools, 3, "{listed}");
    let (status, _) = client.close().await;
    assert!(status.success());
}

#[tokio::test]
async fn the_users_config_file_is_found_and_its_servers_folder_adds_servers() {
    let installed = Installed::new();
    let config = installed.configure("[servers]\ndir = \"servers\"\n[protocol]\npage_size = 2\n");
    declare_echo_server(&installed);

    let output = installed.run(&["servers"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let listing = text(&output.stdout);
    let echo = listing
        .lines()
        .find(|line| line.starts_with("echo-api"))
        .unwrap_or_else(|| panic!("{listing}"));
    assert!(echo.contains("http"), "{echo}");
    assert!(listing.contains("simple-tools-server"), "{listing}");
    let logs = text(&output.stderr);
    assert!(
        logs.contains(&config.display().to_string()) && logs.contains("user's config folder"),
        "{logs}"
    );

    // Without a README, --verbose lists the description and the declared tools.
    let output = installed.run(&["servers", "--verbose"]);
    let described = text(&output.stdout);
    assert!(
        described.contains("Echoes what it is given") && described.contains("echo  Echo a word"),
        "{described}"
    );

    // The config's page size reaches the protocol: 3 tools, 2 on the first page.
    let command = installed.command(&["stdio", "--server", "simple-tools-server"]);
    let mut client = StdioClient::spawn(tokio::process::Command::from(command));
    client.initialize("2025-06-18", json!({})).await;
    let listed = client.request(1, "tools/list", json!({})).await;
    assert_eq!(
        listed["result"]["tools"].as_array().map(Vec::len),
        Some(2),
        "{listed}"
    );
    assert!(listed["result"]["nextCursor"].is_string(), "{listed}");
    client.close().await;
}

#[test]
fn a_config_file_in_the_working_folder_wins_over_the_users() {
    let installed = Installed::new();
    installed.configure("[protocol]\npage_size = 0\n");
    std::fs::write(
        installed.work().join("gumcp.toml"),
        "[servers]\ndir = \"extra\"\n",
    )
    .unwrap();
    let folder = installed.work().join("extra/local-tool");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(
        folder.join("server.toml"),
        "name = \"local-tool\"\ndescription = \"d\"\nversion = \"1\"\nkind = \"http\"\n\
         base_url = \"http://127.0.0.1:9\"\n[[tools]]\nname = \"t\"\ndescription = \"d\"\n\
         path = \"/t\"\ninput_schema = { type = \"object\" }\n",
    )
    .unwrap();
    let output = installed.run(&["servers"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("local-tool"));
    assert!(text(&output.stderr).contains("working folder"));
}

#[test]
fn a_bad_config_file_exits_78_and_names_the_file() {
    let installed = Installed::new();
    let config = installed.configure("[protocol]\npage_size = 0\n");
    let output = installed.run(&["servers"]);
    assert_eq!(output.status.code(), Some(78));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("protocol.page_size") && stderr.contains(&config.display().to_string()),
        "{stderr}"
    );

    let output = installed.run(&["--config", "missing.toml", "servers"]);
    assert_eq!(output.status.code(), Some(78));
    assert!(text(&output.stderr).contains("missing.toml"));
    let output = installed
        .command(&["servers"])
        .env("GUMCP_CONFIG", "/nonexistent/gumcp.toml")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(78));
}

#[tokio::test]
async fn auth_keeps_credentials_in_the_users_data_folder_and_says_where() {
    let installed = Installed::new();
    let mut child = tokio::process::Command::from(installed.command(&[
        "auth",
        "--server",
        "perplexity",
        "--user-id",
        "bob",
    ]))
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true)
    .spawn()
    .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"pplx-secret\n").await.unwrap();
    drop(stdin);
    let output = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let file = installed
        .user_data()
        .join("local_auth/credentials/perplexity/bob_credentials.json");
    let saved: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(saved, json!({ "api_key": "pplx-secret" }));
    let said = text(&output.stdout);
    assert!(
        said.contains(&format!("Saved the credentials to {}", file.display())),
        "{said}"
    );
    assert!(
        !said.contains("pplx-secret") && !text(&output.stderr).contains("pplx-secret"),
        "{output:?}"
    );
    assert!(!installed.work().join("local_auth").exists());
    // The working folder's own local_auth/ wins when there is one (a checkout, guMCP's).
    std::fs::create_dir_all(installed.work().join("local_auth")).unwrap();
    let output = installed.run(&["auth", "--server", "perplexity"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stdout).contains("credentials go to local_auth/credentials/perplexity"),
        "{output:?}"
    );
    assert!(
        text(&output.stderr).contains("no API key was given"),
        "{output:?}"
    );
}
