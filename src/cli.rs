//! The command line: `serve`, `stdio`, `auth`, `servers`.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::actors::runtime::Runtime;
use crate::auth::connect::{self, ConnectError};
use crate::auth::credentials::{unix_now, Credentials};
use crate::auth::key_fields;
use crate::auth::store::AuthError;
use crate::config::{ConfigError, ConfigFile, Settings};
use crate::ids;
use crate::servers::http::Upstream;
use crate::servers::manifest::{self, AuthKind, Manifest};
use crate::servers::{ServerEntry, ServerEvents, ServerInit, ServerRegistry, UserStore};
use crate::{auth, telemetry, transport, upstream};

/// What `--help` says after the commands: where settings come from, and what the exit
/// status means to a script or a service manager.
const AFTER_HELP: &str = "\
Config file: --config or GUMCP_CONFIG if given (it must exist), else ./gumcp.toml, else
gumcp-actors/gumcp.toml in the user's config folder (~/.config on Linux, or $XDG_CONFIG_HOME);
none means the built-in defaults. Every key can also be set as GUMCP__SECTION__KEY.

Exit status:
  0   done (serve and stdio: stopped by a signal or the client, in-flight requests answered)
  1   a runtime failure: a port taken, a sign-in that failed, a store that cannot be reached
  2   a usage error: an unknown command or flag, an unknown server, an invalid user id
  78  a configuration error: a missing config file, an unknown key, a bad value (EX_CONFIG)";

#[derive(Debug, Parser)]
#[command(
    name = "gumcp-actors",
    version,
    about = "Hosts MCP servers for many users over HTTP, or for one over stdio",
    after_help = AFTER_HELP
)]
pub struct Cli {
    /// Config file (TOML). Unset: ./gumcp.toml, else the user's gumcp-actors/gumcp.toml.
    #[arg(long, global = true, env = "GUMCP_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve one server to one client over stdin/stdout (for desktop MCP clients).
    Stdio {
        /// The server to run (see `gumcp-actors servers`).
        #[arg(long)]
        server: String,
        /// The user whose data and credentials to use (default: stdio.user_id, "local").
        #[arg(long)]
        user_id: Option<String>,
    },
    /// Serve every server to many users over HTTP: guMCP's SSE routes, Streamable HTTP of
    /// both eras, health checks, and Prometheus metrics on their own port.
    Serve {
        /// Address to bind (default: http.host, 127.0.0.1).
        #[arg(long)]
        host: Option<String>,
        /// Port to listen on; 0 picks a free one (default: http.port, 8000).
        #[arg(long)]
        port: Option<u16>,
        /// Port of the /metrics listener; 0 picks a free one (default: http.metrics_port, 9091).
        #[arg(long)]
        metrics_port: Option<u16>,
    },
    /// Connect a user's account for a server: the OAuth flow in a browser (with a loopback
    /// redirect listener), or an API key typed at a hidden prompt (or piped on stdin).
    /// `auth import` and `auth rekey` look after the PostgreSQL store.
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Auth {
        #[command(subcommand)]
        action: Option<AuthAction>,
        /// The server whose service to connect (see `gumcp-actors servers`).
        #[arg(long, required = true)]
        server: Option<String>,
        /// The user the credentials belong to (default: stdio.user_id, "local").
        #[arg(long)]
        user_id: Option<String>,
        /// Print the authorization URL without trying to open a browser.
        #[arg(long)]
        no_browser: bool,
        /// How long to wait for the browser to come back.
        #[arg(long, default_value_t = 300)]
        timeout_secs: u64,
    },
    /// List the servers (built in, and those of the servers folder) with their kind and auth
    /// kind.
    Servers {
        /// Print each server's README, or its description and tools when it has none.
        #[arg(long, short)]
        verbose: bool,
    },
}

/// What `auth` does besides connecting an account: the PostgreSQL store's upkeep.
#[derive(Debug, Subcommand)]
pub enum AuthAction {
    /// Copy the OAuth apps and accounts of a local_auth/ folder into the PostgreSQL store
    /// (auth.backend = "postgres"), encrypted. What the database already holds is kept unless
    /// --replace.
    Import {
        /// The folder (default: auth.local_dir, else ./local_auth, else the user's data folder).
        #[arg(long)]
        from: Option<PathBuf>,
        /// Overwrite accounts and apps the database already has.
        #[arg(long)]
        replace: bool,
    },
    /// Re-encrypt every row of the PostgreSQL store under the first key of
    /// auth.encryption_keys, so older keys can then be removed.
    Rekey,
}

/// Why a command could not run; printed as one line, with the exit status of
/// [`CliError::exit_code`].
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Id(#[from] ids::IdError),
    #[error("unknown server {name:?}; available: {available}")]
    UnknownServer { name: String, available: String },
    #[error("stdio failed: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Serve(#[from] transport::http::ServeError),
    #[error("{server} needs no credentials (its auth kind is none)")]
    NoCredentialsNeeded { server: String },
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Client(#[from] upstream::ClientError),
    #[error(transparent)]
    Telemetry(#[from] telemetry::TelemetryError),
    #[error(transparent)]
    Start(#[from] crate::actors::runtime::StartError),
    #[error("cannot write to stdout: {0}")]
    Output(std::io::Error),
    #[error("auth {command} works on the PostgreSQL store: set auth.backend = \"postgres\" (with auth.database_url and auth.encryption_keys)")]
    NotPostgres { command: &'static str },
    #[error("{0}")]
    Unfinished(String),
}

/// Exit status of a configuration error: sysexits.h's `EX_CONFIG`, which service managers and
/// scripts tell apart from a failure worth retrying.
const EXIT_CONFIG: u8 = 78;

/// Exit status of a usage error, as clap gives for a bad flag.
const EXIT_USAGE: u8 = 2;

/// Exit status of anything else that stopped a command.
const EXIT_FAILURE: u8 = 1;

impl CliError {
    /// The process's exit status for this error (the table in `--help`).
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Config(_)
            | CliError::Start(crate::actors::runtime::StartError::Config(_))
            | CliError::NotPostgres { .. } => EXIT_CONFIG,
            CliError::Id(_)
            | CliError::UnknownServer { .. }
            | CliError::NoCredentialsNeeded { .. } => EXIT_USAGE,
            CliError::Io(_)
            | CliError::Serve(_)
            | CliError::Auth(_)
            | CliError::Connect(_)
            | CliError::Client(_)
            | CliError::Telemetry(_)
            | CliError::Start(_)
            | CliError::Output(_)
            | CliError::Unfinished(_) => EXIT_FAILURE,
        }
    }
}

/// Every SSE session holds a socket, so the usual soft limit of 1,024 files would cap the
/// service far below `http.max_sessions`: raise the soft limit to the hard one (room for every
/// session, plus the upstream connections and files beside them), and say so when even that is
/// too low.
fn raise_open_file_limit(max_sessions: usize) {
    let wanted = u64::try_from(max_sessions).unwrap_or(u64::MAX) + 1024;
    match rlimit::increase_nofile_limit(wanted) {
        Ok(limit) if limit < wanted => tracing::warn!(
            limit,
            wanted,
            "the open-file limit is below what http.max_sessions needs; sessions past it will be refused by the OS (raise `ulimit -n`)"
        ),
        Ok(limit) => tracing::debug!(limit, "open-file limit"),
        Err(err) => tracing::warn!(%err, "could not raise the open-file limit"),
    }
}

pub fn run(cli: Cli) -> Result<(), CliError> {
    let config_file = ConfigFile::find(cli.config.as_deref());
    let mut settings = Settings::load_found(config_file.as_ref())?;
    if let Command::Serve {
        host,
        port,
        metrics_port,
    } = &cli.command
    {
        if let Some(host) = host {
            settings.http.host = host.clone();
        }
        settings.http.port = port.unwrap_or(settings.http.port);
        settings.http.metrics_port = metrics_port.unwrap_or(settings.http.metrics_port);
        // The bind address decides what access is safe: check again with the flags applied.
        settings.validate()?;
    }
    let settings = Arc::new(settings);
    let _telemetry = telemetry::init(&settings)?;
    match &config_file {
        Some(file) => tracing::info!(path = %file.path.display(), "config file ({})", file.found),
        None => tracing::debug!("no config file: built-in defaults and GUMCP__ variables"),
    }
    let servers_dir = settings.servers_dir();
    match &servers_dir {
        Some(dir) => tracing::debug!(
            dir = %dir.display(),
            "servers folder: its servers add to or replace the built-in ones"
        ),
        None => tracing::debug!("no servers folder: the built-in servers only"),
    }
    let registry = Arc::new(ServerRegistry::discover(servers_dir.as_deref()));
    for problem in registry.problems() {
        tracing::warn!("skipped server: {problem}");
    }
    match cli.command {
        Command::Servers { verbose } => {
            let listed = if verbose {
                describe_servers(&settings, &registry)
            } else {
                print_servers(&registry).map_err(CliError::Output)
            };
            let mut stderr = std::io::stderr().lock();
            for problem in registry.problems() {
                let _ = writeln!(stderr, "skipped: {problem}");
            }
            match listed {
                // A reader that stopped early (`| head`) has all it wanted.
                Err(CliError::Output(err)) if err.kind() == std::io::ErrorKind::BrokenPipe => {
                    Ok(())
                }
                listed => listed,
            }
        }
        Command::Serve { .. } => {
            raise_open_file_limit(settings.http.max_sessions);
            let arbiters = settings.arbiter_count();
            actix_rt::System::new().block_on(async move {
                let arbiters = (0..arbiters)
                    .map(|_| actix_rt::Arbiter::new().handle())
                    .collect();
                let runtime = Runtime::start(settings, registry, arbiters)?;
                let_actors_start().await;
                transport::http::serve(runtime, |bound| {
                    // Whoever started us may have stopped reading stdout; that is no reason
                    // to stop serving (println! would panic on the broken pipe).
                    let mut stdout = std::io::stdout().lock();
                    let _ = writeln!(stdout, "listening on http://{}", bound.api);
                    let _ = writeln!(stdout, "metrics on http://{}/metrics", bound.metrics);
                    let _ = stdout.flush();
                })
                .await?;
                Ok::<(), CliError>(())
            })?;
            Ok(())
        }
        Command::Auth {
            action: Some(action),
            ..
        } => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(look_after_store(&settings, action))
        }
        Command::Auth {
            action: None,
            server,
            user_id,
            no_browser,
            timeout_secs,
        } => {
            let server = server.unwrap_or_default();
            let user = user_id.unwrap_or_else(|| settings.stdio.user_id.clone());
            ids::validate_user_id(&user)?;
            // Manifests alone say how to connect; the server's code need not be built in.
            let (found, _) = manifest::discover(servers_dir.as_deref());
            let Some(manifest) = found
                .into_iter()
                .map(|found| found.manifest)
                .find(|manifest| manifest.name == server)
            else {
                return Err(CliError::UnknownServer {
                    name: server,
                    available: registry.names().join(", "),
                });
            };
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(connect_account(
                &settings,
                &manifest,
                &user,
                !no_browser,
                Duration::from_secs(timeout_secs),
            ))
        }
        Command::Stdio { server, user_id } => {
            let user = user_id.unwrap_or_else(|| settings.stdio.user_id.clone());
            ids::validate_user_id(&user)?;
            if registry.get(&server).is_none() {
                return Err(CliError::UnknownServer {
                    name: server,
                    available: registry.names().join(", "),
                });
            }
            actix_rt::System::new().block_on(async move {
                let runtime = Runtime::start(settings, registry, Vec::new())?;
                let_actors_start().await;
                tracing::info!(server, user = %telemetry::user_label(&user), "serving over stdio");
                let (input, output) = transport::stdio::standard_streams();
                transport::stdio::serve(runtime, &server, &user, input, output).await?;
                Ok::<(), CliError>(())
            })?;
            Ok(())
        }
    }
}

/// Lets the actors `Runtime::start` put on this thread's system run their `started` now.
/// An actor still unstarted when serving fails early (a port taken) would be started by the
/// system's teardown, outside the runtime, and panic on its first timer.
async fn let_actors_start() {
    tokio::task::yield_now().await;
}

/// A line for the person at the terminal. A closed stdout is no reason to stop (the browser
/// may still finish the flow), and `println!` would panic on it.
fn say(line: std::fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_fmt(line)
        .and_then(|()| stdout.write_all(b"\n"))
        .and_then(|()| stdout.flush());
}

/// `gumcp-actors auth`: connects `user`'s account for the server's service and saves the
/// credentials through the configured store, saying each step (never a secret) so that a
/// flow that waits or fails can be followed.
async fn connect_account(
    settings: &Settings,
    manifest: &Manifest,
    user: &str,
    open_browser: bool,
    timeout: Duration,
) -> Result<(), CliError> {
    let service = manifest.auth_service();
    let client = upstream::client(Duration::from_secs(settings.auth.upstream_timeout_secs))?;
    let store = auth::configured_store(settings, &client)?;
    let location = store.location(service, user);
    let announce = || {
        say(format_args!(
            "Connecting {service} for user {user}; the credentials go to {location}."
        ))
    };
    let credentials = match manifest.auth.kind {
        AuthKind::None => {
            return Err(CliError::NoCredentialsNeeded {
                server: manifest.name.clone(),
            })
        }
        AuthKind::ApiKey if !manifest.auth.key_fields.is_empty() => {
            announce();
            let fields = &manifest.auth.key_fields;
            if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                let labels: Vec<&str> = fields.iter().map(|f| f.label.as_str()).collect();
                say(format_args!(
                    "Reading {} for {service} from standard input, one line each.",
                    labels.join(", ")
                ));
            }
            let typed = key_fields::read_fields(service, fields).map_err(ConnectError::Io)?;
            if manifest.auth.session.is_some() {
                say(format_args!("Signing in to {service} for a session."));
            }
            let http = upstream::CappedClient {
                client: &client,
                max_response_bytes: settings.servers.max_response_bytes,
            };
            key_fields::connect_values(
                &manifest.auth.key_fields,
                manifest.auth.session.as_ref(),
                &typed,
                http,
            )
            .await
            .map_err(ConnectError::Setup)?
        }
        AuthKind::ApiKey => {
            announce();
            if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                say(format_args!(
                    "Reading the API key for {service} from standard input (its first line)."
                ));
            }
            let api_key = connect::read_api_key(service)?;
            let given = connect::user_fields(None, &manifest.auth, connect::read_field)?;
            Credentials {
                api_key: Some(api_key),
                extra: given,
                ..Credentials::default()
            }
        }
        AuthKind::ClientCredentials => {
            announce();
            let app = store.oauth_app(service).await?;
            say(format_args!(
                "Using the OAuth app {} of {service}; asking for an app token (no sign-in).",
                app.client_id
            ));
            let http = upstream::CappedClient {
                client: &client,
                max_response_bytes: settings.servers.max_response_bytes,
            };
            let credentials = connect::client_credentials(http, &app, &manifest.auth).await?;
            say(format_args!(
                "Received an app token; it is renewed when it expires."
            ));
            credentials
        }
        AuthKind::Oauth2 => {
            announce();
            let app = store.oauth_app(service).await?;
            say(format_args!(
                "Using the OAuth app {} of {service}.",
                app.client_id
            ));
            let given = connect::user_fields(Some(&app), &manifest.auth, connect::read_field)?;
            let authorization = connect::authorization(&app, &manifest.auth, given)?;
            let listener = connect::listen(&authorization.redirect).await?;
            let address = listener
                .local_addr()
                .map_or_else(|_| "the loopback port".to_owned(), |a| a.to_string());
            say(format_args!(
                "Open this URL to connect {service} for user {user}:\n{}",
                authorization.url
            ));
            if open_browser && connect::open_browser(&authorization.url) {
                say(format_args!("(opening it in your browser)"));
            }
            say(format_args!(
                "Waiting up to {} s for the browser to come back to {} (listening on {address}); \
                 Ctrl-C to cancel.",
                timeout.as_secs(),
                authorization.redirect
            ));
            let returned = connect::receive_code(
                &listener,
                &authorization.redirect,
                &authorization.state,
                timeout,
            )
            .await?;
            let token_url = manifest.auth.token_url.as_deref().unwrap_or_default();
            say(format_args!(
                "The browser came back; trading the code for tokens at {token_url}."
            ));
            let http = upstream::CappedClient {
                client: &client,
                max_response_bytes: settings.servers.max_response_bytes,
            };
            let credentials =
                connect::exchange(http, &app, &manifest.auth, authorization, returned).await?;
            let refresh = if credentials.refresh_token.is_some() {
                " and a refresh token"
            } else {
                ""
            };
            let lifetime = credentials
                .expires_at
                .map(|at| format!(", valid for {} min", (at - unix_now()).max(0) / 60))
                .unwrap_or_default();
            say(format_args!("Received an access token{refresh}{lifetime}."));
            credentials
        }
    };
    store.save(service, user, &credentials).await?;
    say(format_args!("Saved the credentials to {location}."));
    say(format_args!("Connected {service} for user {user}."));
    Ok(())
}

/// `auth import` and `auth rekey`: the PostgreSQL store's upkeep, each step said on stdout.
async fn look_after_store(settings: &Settings, action: AuthAction) -> Result<(), CliError> {
    let command = match action {
        AuthAction::Import { .. } => "import",
        AuthAction::Rekey => "rekey",
    };
    if settings.auth.backend != crate::config::AuthBackend::Postgres {
        return Err(CliError::NotPostgres { command });
    }
    let store = auth::postgres::PostgresStore::from_settings(&settings.auth)?;
    match action {
        AuthAction::Import { from, replace } => {
            let from = from.unwrap_or_else(|| settings.local_auth_dir());
            say(format_args!(
                "Importing {} into {}.",
                from.display(),
                store.location_of_rows()
            ));
            let local = auth::local::LocalStore::new(&from);
            let report = store.import(&local, replace).await?;
            for skipped in &report.skipped {
                say(format_args!("Skipped {skipped}"));
            }
            say(format_args!(
                "Imported {} accounts and {} OAuth apps; kept {} already in the database{}.",
                report.credentials,
                report.apps,
                report.kept,
                if replace {
                    ""
                } else {
                    " (--replace overwrites them)"
                }
            ));
            Ok(())
        }
        AuthAction::Rekey => {
            let report = store.rekey().await?;
            say(format_args!(
                "Re-encrypted {} accounts and {} OAuth apps under key `{}`.",
                report.credentials, report.apps, report.key_id
            ));
            if report.unreadable.is_empty() {
                say(format_args!(
                    "Every row is under key `{}`: older keys can be removed.",
                    report.key_id
                ));
                return Ok(());
            }
            let left: Vec<String> = report
                .unreadable
                .iter()
                .map(|(key, rows)| format!("{rows} under key `{key}`"))
                .collect();
            Err(CliError::Unfinished(format!(
                "rows left as they were, since they do not decrypt with the configured keys: {}; \
                 add those keys to auth.encryption_keys (after the first) and run rekey again, \
                 or connect those accounts again",
                left.join(", ")
            )))
        }
    }
}

fn print_servers(registry: &ServerRegistry) -> std::io::Result<()> {
    let rows: Vec<[String; 4]> = registry
        .entries()
        .map(|entry| {
            let manifest = &entry.manifest;
            [
                manifest.name.clone(),
                manifest.kind.to_string(),
                manifest.auth.kind.to_string(),
                manifest
                    .title
                    .clone()
                    .unwrap_or_else(|| manifest.description.clone()),
            ]
        })
        .collect();
    let header = ["NAME", "KIND", "AUTH", "DESCRIPTION"].map(str::to_owned);
    let width = |column: usize| {
        rows.iter()
            .chain(std::iter::once(&header))
            .map(|row| row[column].len())
            .max()
            .unwrap_or(0)
    };
    let (w0, w1, w2) = (width(0), width(1), width(2));
    let mut stdout = std::io::stdout().lock();
    for row in std::iter::once(&header).chain(rows.iter()) {
        writeln!(
            stdout,
            "{:w0$}  {:w1$}  {:w2$}  {}",
            row[0], row[1], row[2], row[3]
        )?;
    }
    stdout.flush()
}

/// `servers --verbose`: each server's README, or — for one that has none — its description
/// and the tools an instance of it lists (a native server's come from its code, so an
/// instance is made, for `stdio.user_id`, and asked; nothing is called).
fn describe_servers(settings: &Settings, registry: &ServerRegistry) -> Result<(), CliError> {
    let mut upstream = None;
    let mut stdout = std::io::stdout().lock();
    for entry in registry.entries() {
        let manifest = &entry.manifest;
        writeln!(
            stdout,
            "== {} ({}, auth: {}; {}) ==\n",
            manifest.name, manifest.kind, manifest.auth.kind, entry.origin
        )
        .map_err(CliError::Output)?;
        if let Some(readme) = entry.origin.readme(&manifest.name) {
            writeln!(stdout, "{}\n", readme.trim_end()).map_err(CliError::Output)?;
            continue;
        }
        if let Some(runs) = hosted_summary(manifest) {
            writeln!(stdout, "{}\n\n{runs}\n", manifest.description.trim())
                .map_err(CliError::Output)?;
            continue;
        }
        let upstream = match &mut upstream {
            Some(upstream) => upstream,
            None => upstream.insert(listing_upstream(settings)?),
        };
        let mut text = format!("{}\n\nTools:\n", manifest.description.trim());
        for tool in tool_list(settings, entry, upstream) {
            let summary = tool
                .description
                .as_deref()
                .and_then(|text| text.lines().next())
                .unwrap_or_default();
            text.push_str(&format!("  {}  {summary}\n", tool.name));
        }
        writeln!(stdout, "{text}").map_err(CliError::Output)?;
    }
    stdout.flush().map_err(CliError::Output)
}

/// What a hosted server runs or reaches — its tools are the child's or the remote's, known only
/// once it runs, which listing must not cause. Arguments are not shown: they may carry a
/// credential template.
fn hosted_summary(manifest: &Manifest) -> Option<String> {
    if let Some(stdio) = &manifest.stdio {
        return Some(format!(
            "Runs `{}` for each user over stdio; its tools are listed once it runs.",
            stdio.command
        ));
    }
    let remote = manifest.mcp.as_ref()?;
    Some(format!(
        "Reaches the MCP server at {} for each user; its tools are listed once connected.",
        remote.url
    ))
}

/// An upstream that lets a server be made, never called: listing tools sends no request.
fn listing_upstream(settings: &Settings) -> Result<Upstream, CliError> {
    Ok(Upstream::from_settings(
        settings,
        Arc::new(crate::metrics::Metrics::new()),
    )?)
}

fn tool_list(
    settings: &Settings,
    entry: &ServerEntry,
    upstream: &Upstream,
) -> Vec<rmcp::model::Tool> {
    let init = ServerInit {
        manifest: entry.manifest.clone(),
        user_id: Arc::from(settings.stdio.user_id.as_str()),
        principal: crate::auth::principal::Principal::user(settings.stdio.user_id.as_str()),
        store: Arc::new(UserStore::new(settings.runtime.max_store_bytes_per_user)),
        events: ServerEvents::new(1),
        upstream: upstream.clone(),
        hosted: crate::servers::hosted::HostedRuntime::new(
            settings.hosted.clone(),
            settings.runtime.max_restarts_per_minute,
            Arc::new(crate::metrics::Metrics::new()),
        ),
    };
    entry.instantiate(init).tools()
}
