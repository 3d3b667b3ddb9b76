//! `crm up`: the whole local stack as one process tree. The API runs in this process;
//! every other role (worker, bot, …) runs as a child `crm <role>` with the same
//! configuration, restarted if it dies, and stopped when `crm up` stops.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use crm_concepts::records::{Actor, PageRequest};
use crm_concepts::user::{NewUser, Role};
use tokio::process::Command;
use tokio::sync::watch;

use crate::commands::parent_death;
use crate::commands::private_servers::{PrivateServers, Programs};
use crate::commands::serve;
use crate::config::Config;

/// A role of the stack started as a child process: `crm <args…>`.
struct Child {
    name: &'static str,
    args: &'static [&'static str],
}

/// The children of `crm up`. Adding a role to the local stack is adding one line here.
#[rustfmt::skip]
const CHILDREN: &[Child] = &[
    Child { name: "worker", args: &["worker"] },
];

/// Started only when a bot token is configured: without one there is no bot to run.
const BOT: Child = Child { name: "bot", args: &["bot"] };

/// How long a child gets to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

#[derive(clap::Args, Debug)]
pub struct UpArgs {
    /// Address of the API (default: CRM_LISTEN).
    #[arg(long)]
    pub listen: Option<String>,
}

pub async fn run(config: &Config, config_path: Option<&Path>, args: UpArgs) -> anyhow::Result<()> {
    // Both servers answer (or private ones were started), or nothing is written: no
    // database, no admin, no examples.
    let mut config = config.clone();
    let private = servers(&mut config).await?;
    let result = stack(&config, config_path, args).await;
    private.stop().await;
    result
}

/// Everything after the servers answer, until the stack stops.
async fn stack(config: &Config, config_path: Option<&Path>, args: UpArgs) -> anyhow::Result<()> {
    crm_store::Db::ensure_database(&config.database_url)
        .await
        .with_context(|| format!("creating the database {}", crm_store::database::redact(&config.database_url)))?;
    let db = serve::connect(config).await?;
    db.migrate().await.context("applying migrations")?;
    crm_store::users::set_default_time_zone(&db, &config.time_zone).await.context("recording CRM_TIME_ZONE")?;
    let listen = args.listen.unwrap_or_else(|| config.listen.clone());
    let (listener, addr) = serve::bind(&listen).await?;
    let first_token = bootstrap_admin(&db).await?;
    let examples = crate::commands::examples::deploy_missing(&db).await?;

    println!("crm is up");
    // Scripts (and the tests) read this line to learn the port, as with `crm serve`.
    println!("crm api listening on http://{addr}");
    let web = crate::commands::serve::public_url(config, addr);
    println!("  Web app    {web}/   (sign in with /web in the bot, or paste an API token at {web}/sign-in)");
    println!("  API        http://{addr}   (OpenAPI: http://{addr}/api/openapi.json, readiness: http://{addr}/readyz)");
    println!("  Postgres   {}", crm_store::database::redact(&config.database_url));
    println!("  Redis      {}", crm_queue::redact(&config.redis_url));
    let engine_url = config.engine_url.clone().unwrap_or_else(|| format!("http://{addr}"));
    // The worker gets a credential of its own for this `crm up` (revoked at stop) and no
    // database URL: everything it does goes through the engine.
    let (worker_credential_id, worker_secret) = worker_credential(&db).await?;
    let worker_env = vec![
        ("CRM_ENGINE_URL", engine_url.clone()),
        ("CRM_WORKER_CREDENTIAL", worker_secret),
        ("CRM_REDIS_URL", config.redis_url.clone()),
    ];
    let mut children: Vec<(&'static Child, Vec<(&'static str, String)>)> =
        CHILDREN.iter().map(|c| (c, worker_env.clone())).collect();
    let mut bot_token_id = None;
    if config.bot_token.is_some() {
        let mut env = vec![("CRM_ENGINE_URL", engine_url.clone())];
        if config.engine_token.is_none() {
            // The bot gets a delegate token: it acts for the chat user each request names and
            // has none of the operator's powers; minted for this `crm up`, revoked at stop.
            let (token_id, secret) = bot_token(&db, "crm up: bot").await?;
            bot_token_id = Some(token_id);
            env.push(("CRM_ENGINE_TOKEN", secret));
        }
        children.push((&BOT, env));
    }
    for (child, _) in &children {
        println!("  {:<10} crm {}", child.name, child.args.join(" "));
    }
    if config.bot_token.is_none() {
        println!("  bot        not started: set CRM_BOT_TOKEN (and CRM_BOT_API_URL for a local Bot API server)");
    }
    match first_token {
        Some((user_id, secret)) => {
            println!("first start: created admin user {user_id}; its API token (shown once):");
            println!("  export CRM_TOKEN={secret}");
        }
        None => println!("API token:  crm token create --user 1   (users: crm user list)"),
    }
    println!("try:        curl -H \"Authorization: Bearer $CRM_TOKEN\" http://{addr}/api/me");
    for line in &examples {
        println!("{line}");
    }
    println!("schedules:  crm schedule list");
    println!("stop with Ctrl-C");

    let exe = std::env::current_exe().context("finding the crm executable")?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let supervisors: Vec<_> = children
        .into_iter()
        .map(|(child, env)| {
            tokio::spawn(supervise(child, env, exe.clone(), config_path.map(Path::to_path_buf), stop_rx.clone()))
        })
        .collect();

    let stop = stop_tx.clone();
    let result = serve::serve(config, db, listener, false, async move {
        serve::shutdown_signal().await;
        let _ = stop.send(true);
    })
    .await;
    let _ = stop_tx.send(true);
    for s in supervisors {
        let _ = s.await;
    }
    if let Ok(db) = serve::connect(config).await {
        if let Some(id) = bot_token_id {
            let _ = crm_store::tokens::revoke(&db, id).await;
        }
        let _ = crm_store::worker_credentials::revoke(&db, worker_credential_id).await;
        db.pool.close().await;
    }
    result
}

/// Checks PostgreSQL and Redis at the configured URLs; one that does not answer is replaced
/// by a private one (unless CRM_PRIVATE_SERVERS=off), and `config` points at it. Every check
/// (both servers, the programs of the missing ones, the data directory's lock) comes before
/// anything is written.
async fn servers(config: &mut Config) -> anyhow::Result<PrivateServers> {
    use crate::commands::preflight::{PreflightError, check_postgres, check_redis};
    let auto = config.private_servers == "auto";
    let replace = |checked: Result<(), PreflightError>| match checked {
        Ok(()) => Ok(None),
        Err(e) if e.is_down() && auto => Ok(Some(e)),
        Err(e) => Err(e),
    };
    let postgres_down = replace(check_postgres(&config.database_url).await)?;
    let redis_down = replace(check_redis(&config.redis_url).await)?;
    if postgres_down.is_none() && redis_down.is_none() {
        return Ok(PrivateServers::default());
    }
    let found = Programs::find(
        postgres_down.is_some(),
        redis_down.is_some(),
        config.postgres_bin_dir.as_deref(),
        config.redis_bin_dir.as_deref(),
    );
    let programs = match found {
        Ok(programs) => programs,
        Err(e) => {
            // The fix first, then what was tried.
            let tried: Vec<String> =
                [&postgres_down, &redis_down].into_iter().flatten().map(ToString::to_string).collect();
            anyhow::bail!("{e}.\n{}", tried.join("\n"))
        }
    };
    let mut private = PrivateServers::lock(&config.data_dir)?;
    if let (Some(e), Some(bin)) = (postgres_down, &programs.postgres) {
        let database = config
            .database_url
            .parse::<sqlx::postgres::PgConnectOptions>()
            .ok()
            .and_then(|o| o.get_database().map(str::to_string))
            .unwrap_or_else(|| "crm".into());
        config.database_url = private.start_postgres(bin, &database).await.context(e)?;
        println!("PostgreSQL did not answer: started a private one under {}", config.data_dir.display());
    }
    if let (Some(e), Some(server)) = (redis_down, &programs.redis) {
        config.redis_url = private.start_redis(server).await.context(e)?;
        println!("Redis did not answer: started a private one under {}", config.data_dir.display());
    }
    Ok(private)
}

async fn worker_credential(db: &crm_store::Db) -> anyhow::Result<(i64, String)> {
    let (c, secret) = crm_store::worker_credentials::create(db, "crm up: worker").await?;
    Ok((c.id, secret))
}

/// A fresh delegate token for the bot child, owned by the first admin (who minted it).
pub(crate) async fn bot_token(db: &crm_store::Db, name: &str) -> anyhow::Result<(i64, String)> {
    let users = crm_store::users::list(db, &PageRequest { limit: Some(200), ..PageRequest::default() }).await?;
    let admin = users
        .items
        .iter()
        .find(|u| u.role == Role::Admin)
        .context("the bot needs an admin user: create one with `crm user add --role admin`")?;
    let new = crm_store::tokens::NewToken { name, scope: crm_concepts::user::TokenScope::Delegate, expires_at: None };
    let (token, secret) = crm_store::tokens::create_with(db, admin.id, &new).await?;
    Ok((token.id, secret))
}

/// On a database without users, creates an admin and a token so a newcomer can call the
/// API at once. Returns the user id and the secret.
pub(crate) async fn bootstrap_admin(db: &crm_store::Db) -> anyhow::Result<Option<(i64, String)>> {
    let users = crm_store::users::list(db, &PageRequest { limit: Some(1), ..PageRequest::default() }).await?;
    if !users.items.is_empty() {
        return Ok(None);
    }
    let admin = crm_store::users::create(
        db,
        &Actor::system(),
        NewUser { name: "Admin".into(), email: None, role: Role::Admin, telegram_user_id: None, time_zone: None },
    )
    .await?;
    let (_, secret) = crm_store::tokens::create(db, admin.id, "crm up").await?;
    Ok(Some((admin.id, secret)))
}

/// Runs one child until `stop` turns true, restarting it (with backoff) when it exits.
async fn supervise(
    child: &'static Child,
    env: Vec<(&'static str, String)>,
    exe: PathBuf,
    config_path: Option<PathBuf>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(500);
    loop {
        let mut cmd = Command::new(&exe);
        if let Some(p) = &config_path {
            cmd.arg("--config").arg(p);
        }
        cmd.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
        // The metrics address is the engine's (this process); a child would fight it for it.
        cmd.env("CRM_METRICS_LISTEN", "");
        if child.name == "worker" {
            // Not even by inheritance: a worker is never given the database.
            cmd.env_remove("CRM_DATABASE_URL");
        }
        cmd.args(child.args).stdin(std::process::Stdio::null()).kill_on_drop(true);
        parent_death::signal_on_parent_death(&mut cmd, nix::sys::signal::Signal::SIGTERM);
        let mut proc = match cmd.spawn() {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(child = child.name, error = %e, "cannot start");
                return;
            }
        };
        let started = tokio::time::Instant::now();
        tokio::select! {
            status = proc.wait() => {
                tracing::warn!(child = child.name, ?status, "exited; restarting in {backoff:?}");
            }
            _ = stop.changed() => {
                terminate(child.name, &mut proc).await;
                return;
            }
        }
        if started.elapsed() > Duration::from_secs(60) {
            backoff = Duration::from_millis(500);
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

async fn terminate(name: &str, proc: &mut tokio::process::Child) {
    if let Some(pid) = proc.id().and_then(|p| i32::try_from(p).ok()) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
    }
    if tokio::time::timeout(STOP_GRACE, proc.wait()).await.is_err() {
        tracing::warn!(child = name, "did not stop in time; killing");
        let _ = proc.kill().await;
    }
}
