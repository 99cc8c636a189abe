//! The command line: `serve`, `stdio`, `auth`, `servers`.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::actors::runtime::Runtime;
use crate::auth::connect::{self, ConnectError};
use crate::auth::credentials::Credentials;
use crate::auth::store::AuthError;
use crate::config::{ConfigError, Settings};
use crate::ids;
use crate::servers::manifest::{self, AuthKind, Manifest};
use crate::servers::ServerRegistry;
use crate::{auth, telemetry, transport, upstream};
use std::io::Write;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "gumcp-actors",
    version,
    about = "Hosts MCP servers for many users over HTTP, or for one over stdio"
)]
pub struct Cli {
    /// Config file (TOML); every key can also be set as GUMCP__SECTION__KEY.
    #[arg(long, global = true, env = "GUMCP_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve one server to one client over stdin/stdout (for desktop MCP clients).
    Stdio {
        /// The server to run (a folder under servers/).
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
    Auth {
        /// The server whose service to connect (a folder under servers/).
        #[arg(long)]
        server: String,
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
    /// List the servers found under servers/ with their kind and auth kind.
    Servers,
}

/// Why a command could not run; printed as one line, exit code 2.
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
}

/// Every SSE session holds its socket and a duplicate of it (to notice a hang-up), so the
/// usual soft limit of 1,024 files would cap the service far below `http.max_sessions`: raise
/// the soft limit to the hard one, and say so when even that is too low.
fn raise_open_file_limit(max_sessions: usize) {
    let wanted = u64::try_from(max_sessions)
        .unwrap_or(u64::MAX)
        .saturating_mul(2)
        + 256;
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
    let mut settings = Settings::load(cli.config.as_deref())?;
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
    let registry = Arc::new(ServerRegistry::discover(&settings.servers_dir()));
    for problem in registry.problems() {
        tracing::warn!("skipped server: {problem}");
    }
    match cli.command {
        Command::Servers => {
            print_servers(&registry);
            Ok(())
        }
        Command::Serve { .. } => {
            raise_open_file_limit(settings.http.max_sessions);
            let arbiters = settings.arbiter_count();
            actix_rt::System::new().block_on(async move {
                let arbiters = (0..arbiters)
                    .map(|_| actix_rt::Arbiter::new().handle())
                    .collect();
                let runtime = Runtime::start(settings, registry, arbiters)?;
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
            server,
            user_id,
            no_browser,
            timeout_secs,
        } => {
            let user = user_id.unwrap_or_else(|| settings.stdio.user_id.clone());
            ids::validate_user_id(&user)?;
            // Manifests alone say how to connect; the server's code need not be built in.
            let (found, _) = manifest::discover(&settings.servers_dir());
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
                tracing::info!(server, user, "serving over stdio");
                let (input, output) = transport::stdio::standard_streams();
                transport::stdio::serve(runtime, &server, &user, input, output).await?;
                Ok::<(), CliError>(())
            })?;
            Ok(())
        }
    }
}

/// `gumcp-actors auth`: connects `user`'s account for the server's service and saves the
/// credentials through the configured store.
async fn connect_account(
    settings: &Settings,
    manifest: &Manifest,
    user: &str,
    open_browser: bool,
    timeout: Duration,
) -> Result<(), CliError> {
    let service = manifest.auth_service();
    let client = upstream::client(Duration::from_secs(settings.auth.upstream_timeout_secs))?;
    let store = auth::configured_store(settings, &client);
    let credentials = match manifest.auth.kind {
        AuthKind::None => {
            return Err(CliError::NoCredentialsNeeded {
                server: manifest.name.clone(),
            })
        }
        AuthKind::ApiKey => Credentials {
            api_key: Some(connect::read_api_key(service)?),
            ..Credentials::default()
        },
        AuthKind::Oauth2 => {
            let app = store.oauth_app(service).await?;
            let authorization = connect::authorization(&app, &manifest.auth)?;
            let listener = connect::listen(&authorization.redirect).await?;
            println!(
                "Open this URL to connect {service} for user {user}:\n{}",
                authorization.url
            );
            let _ = std::io::Write::flush(&mut std::io::stdout());
            if open_browser && connect::open_browser(&authorization.url) {
                println!("(opening it in your browser)");
            }
            let code = connect::receive_code(
                &listener,
                &authorization.redirect,
                &authorization.state,
                timeout,
            )
            .await?;
            let http = upstream::CappedClient {
                client: &client,
                max_response_bytes: settings.servers.max_response_bytes,
            };
            connect::exchange(http, &app, &manifest.auth, authorization, code).await?
        }
    };
    store.save(service, user, &credentials).await?;
    println!("Connected {service} for user {user}.");
    Ok(())
}

fn print_servers(registry: &ServerRegistry) {
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
    for row in std::iter::once(&header).chain(rows.iter()) {
        println!("{:w0$}  {:w1$}  {:w2$}  {}", row[0], row[1], row[2], row[3]);
    }
    for problem in registry.problems() {
        eprintln!("skipped: {problem}");
    }
}
