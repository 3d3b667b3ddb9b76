//! `crm`: the one binary of the stack. Each role (engine API, worker, bot) is a subcommand,
//! so `crm up` can start them all as one process tree and each can run alone in production.

mod commands;
mod config;

use clap::{Parser, Subcommand};

use crate::config::Config;

#[derive(Parser, Debug)]
#[command(name = "crm", version, about = "A CRM whose automation runs as sandboxed WebAssembly components")]
struct Cli {
    /// Optional TOML configuration file; environment variables override it.
    #[arg(long, global = true, env = "CRM_CONFIG")]
    config: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Apply database migrations and exit.
    Migrate,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    config::init_tracing();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        let config = Config::load(cli.config.as_deref())?;
        match cli.command {
            Command::Migrate => commands::migrate::run(&config).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
