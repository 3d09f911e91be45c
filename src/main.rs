//! `juno-server`: parses the command line and configuration, then serves, migrates
//! or mints a token. All the work lives in the library.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use juno_server::config::Config;
use juno_server::gateway::auth::Auth;
use juno_server::store::Store;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "juno-server",
    version,
    about = "JunoSixteen realtime game server"
)]
struct Cli {
    /// A KEY=VALUE file under the environment (also JUNO_CONFIG).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve HTTP and WebSocket clients (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Operator commands (the operations guide's scripts); each is safe to re-run.
    Admin {
        #[command(subcommand)]
        command: juno_server::ops::AdminCommand,
    },
    /// Print a JWT signed with the first configured secret (in dev mode, the kept one).
    Token {
        #[arg(long)]
        user: String,
        #[arg(long)]
        name: Option<String>,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 86_400)]
        ttl: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref())?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let listener = tokio::net::TcpListener::bind(config.listen)
                .await
                .with_context(|| format!("binding {}", config.listen))?;
            juno_server::run(config, listener, shutdown_signal()).await
        }
        Command::Migrate => {
            Store::connect(&config.database_url).await?;
            println!(
                "migrations applied to {}",
                config
                    .database_url
                    .split('@')
                    .next_back()
                    .unwrap_or_default()
            );
            Ok(())
        }
        Command::Admin { command } => {
            let store = Store::connect(&config.database_url).await?;
            let result = juno_server::ops::run(
                &store,
                command,
                chrono::Utc::now(),
                &mut std::io::stdout(),
                &mut std::io::stderr(),
            )
            .await;
            store.close().await;
            result
        }
        Command::Token { user, name, ttl } => {
            if !juno_protocol::limits::valid_user_id(&user) {
                anyhow::bail!("--user must be 1-64 of [A-Za-z0-9_-]");
            }
            let auth = Auth::from_config(&config)?;
            println!("{}", auth.mint(&user, name.as_deref(), ttl)?);
            Ok(())
        }
    }
}

/// SIGTERM or Ctrl-C: both start a drain.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "listening for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "listening for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
    tracing::info!("shutdown signal: draining");
}
