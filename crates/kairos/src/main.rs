//! `kairos`: the command line. `serve` runs the server, `migrate` applies migrations,
//! `keys create` makes an API key, `mcp` serves the Model Context Protocol over stdio.
#![forbid(unsafe_code)]

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use kairos::{Config, open_store, serve, shutdown_signal};
use kairos_api::Clock;
use kairos_store::{Mode, keys};
use tracing_subscriber::EnvFilter;

/// glibc's allocator serialises threads on its arena locks under this server's load (seen in
/// profiles as futex waits); mimalloc keeps per-thread heaps.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Self-hostable scheduling infrastructure. Configuration comes from KAIROS_* environment
/// variables (see README.md).
#[derive(Parser)]
#[command(name = "kairos", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (migrations are applied on start).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Serve the Model Context Protocol on stdin/stdout for an AI agent, calling the server at
    /// KAIROS_URL (default http://127.0.0.1:3001) with KAIROS_API_KEY.
    Mcp,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create an API key (and the account, if needed); prints only the key.
    Create {
        /// The account's name; created if it does not exist.
        #[arg(long)]
        account: String,
        /// Test or live data.
        #[arg(long, value_enum, default_value_t = KeyMode::Test)]
        mode: KeyMode,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum KeyMode {
    Test,
    Live,
}

fn init_logging() {
    let filter = EnvFilter::try_from_env("KAIROS_LOG").unwrap_or_else(|_| EnvFilter::new("info,rmcp=warn"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if std::env::var("KAIROS_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging();
    let config = Config::from_env()?;
    match cli.command {
        Command::Serve => {
            let store = open_store(&config).await?;
            let listener = tokio::net::TcpListener::bind(&config.bind)
                .await
                .with_context(|| format!("could not listen on {}", config.bind))?;
            let addr = listener.local_addr()?;
            tracing::info!(database = %config.database_url, "Kairos is listening on http://{addr}");
            tracing::info!(
                "Create an API key:  kairos keys create --account demo   (from a checkout: cargo run --release -- keys create --account demo)"
            );
            tracing::info!(
                "Then try:           curl -H \"Authorization: Bearer $KEY\" http://{addr}/v1/users   (the API is described at http://{addr}/v1/openapi.json)"
            );
            let served = serve(store.clone(), Clock::system(), listener, &config, shutdown_signal()).await;
            store.close().await;
            served
        }
        Command::Migrate => {
            open_store(&config).await?;
            tracing::info!(database = %config.database_url, "migrations applied");
            Ok(())
        }
        Command::Keys { command: KeysCommand::Create { account, mode } } => {
            let account = account.trim();
            anyhow::ensure!(!account.is_empty() && account.len() <= 100, "--account must be 1 to 100 characters");
            let mode = match mode {
                KeyMode::Test => Mode::Test,
                KeyMode::Live => Mode::Live,
            };
            let store = open_store(&config).await?;
            let (key, hashed) = keys::generate(mode);
            store
                .create_api_key(account, mode, &hashed, jiff::Timestamp::now())
                .await
                .context("could not store the key")?;
            #[allow(clippy::print_stdout)] // the one line scripts read
            {
                println!("{key}");
            }
            Ok(())
        }
        Command::Mcp => {
            // stdout carries the protocol: logs go to stderr (init_logging).
            let api = kairos_mcp::HttpApi::from_env()?;
            tracing::info!(api = api.base_url(), "MCP server on stdio");
            kairos_mcp::serve_stdio(std::sync::Arc::new(api)).await.context("the MCP server stopped")
        }
    }
}
