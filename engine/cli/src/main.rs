//! `crm`: the one binary of the stack. Each role (engine API, worker, bot) is a subcommand,
//! so `crm up` can start them all as one process tree and each can run alone in production.

mod authoring;
mod commands;
mod config;
mod telemetry;

use clap::{Parser, Subcommand};

// Every role of the stack allocates per request, per job and per result (JSON, HTTP, SQL
// rows); under glibc's malloc that was a fifth of the engine's CPU per run (`perf` on
// `crm bench runs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Create the database, migrate, create the first admin and write the workers' and the
    /// bot's credentials to files (each once): an unattended deploy's first step.
    Bootstrap(commands::bootstrap::BootstrapArgs),
    /// Serve the engine's HTTP API.
    Serve(commands::serve::ServeArgs),
    /// Start the whole local stack in one process tree (applies migrations first).
    Up(commands::up::UpArgs),
    /// CRM users and their roles.
    User {
        #[command(subcommand)]
        command: commands::user::UserCommand,
    },
    /// API tokens.
    Token {
        #[command(subcommand)]
        command: commands::token::TokenCommand,
    },
    /// Typed custom fields of contacts, companies, deals and tasks.
    Field {
        #[command(subcommand)]
        command: commands::field::FieldCommand,
    },
    /// Import contacts, companies, deals or tasks from a CSV file (one transaction).
    Import(commands::import::ImportArgs),
    /// Load realistic sample companies, contacts, deals and tasks.
    DemoData(commands::demo_data::DemoDataArgs),
    /// The Telegram bot (needs CRM_BOT_TOKEN and CRM_ENGINE_TOKEN).
    Bot(commands::bot::BotArgs),
    /// Run workflow steps from Redis in a sandboxed worker process.
    Worker(commands::worker::WorkerArgs),
    /// Step components: check one, or run one locally without Postgres or Redis.
    Component {
        #[command(subcommand)]
        command: commands::component::ComponentCommand,
    },
    /// Performance measurements.
    Bench {
        #[command(subcommand)]
        command: commands::bench::BenchCommand,
    },
    /// Cron schedules of the deployed workflows.
    Schedule {
        #[command(subcommand)]
        command: commands::schedule::ScheduleCommand,
    },
    /// Print the Redis ACL users of this installation (engine and workers), for an ACL file.
    RedisAcl(commands::redis_acl::RedisAclArgs),
    /// Secrets steps read (`secret:NAME`): set, list, remove; values are never printed.
    Secret {
        #[command(subcommand)]
        command: commands::secret::SecretCommand,
    },
    /// Webhook triggers: their signing keys.
    Webhook {
        #[command(subcommand)]
        command: commands::webhook::WebhookCommand,
    },
    /// Workflows: deploy, list, show, disable, enable, roll back.
    Workflow {
        #[command(subcommand)]
        command: commands::workflow::WorkflowCommand,
    },
    /// Workflow runs: start, list, show, cancel.
    Run {
        #[command(subcommand)]
        command: commands::run::RunCommand,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let role = match cli.command {
        Command::Serve(_) | Command::Up(_) => "engine",
        Command::Worker(_) => "worker",
        Command::Bot(_) => "bot",
        _ => "cli",
    };
    let traces = match config::init_tracing(role) {
        Ok(traces) => traces,
        Err(e) => {
            eprintln!("error: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    // Read before the runtime starts: it says how many threads the runtime gets.
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = config.threads {
        runtime.worker_threads(threads);
    }
    let rt = match runtime.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        match cli.command {
            Command::Migrate => commands::migrate::run(&config).await,
            Command::Bootstrap(args) => commands::bootstrap::run(&config, args).await,
            Command::Serve(args) => commands::serve::run(&config, args).await,
            Command::Up(args) => commands::up::run(&config, cli.config.as_deref(), args).await,
            Command::User { command } => commands::user::run(&config, command).await,
            Command::Token { command } => commands::token::run(&config, command).await,
            Command::Field { command } => commands::field::run(&config, command).await,
            Command::Import(args) => commands::import::run(&config, args).await,
            Command::DemoData(args) => commands::demo_data::run(&config, args).await,
            Command::Bot(args) => commands::bot::run(&config, args).await,
            Command::Worker(args) => commands::worker::run(&config, args).await,
            Command::Component { command } => commands::component::run(&config, command).await,
            Command::Bench { command } => commands::bench::run(&config, command).await,
            Command::Schedule { command } => commands::schedule::run(&config, command).await,
            Command::RedisAcl(args) => commands::redis_acl::run(&config, args),
            Command::Secret { command } => commands::secret::run(&config, command).await,
            Command::Webhook { command } => commands::webhook::run(&config, command).await,
            Command::Workflow { command } => commands::workflow::run(&config, command).await,
            Command::Run { command } => commands::run::run(&config, command).await,
        }
    });
    // Flushes the spans still buffered, with the runtime gone: the exporter's HTTP client
    // must not be dropped inside it.
    drop(rt);
    drop(traces);
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
