//! `crm redis-acl`: the Redis ACL users of this installation (its `CRM_REDIS_PREFIX`), as
//! lines for an ACL file (`redis-server --aclfile users.acl`) or `ACL SETUSER`. The engine's
//! user may use every key under the prefix; a worker's only the jobs stream and the
//! heartbeat set (see `crm_queue::acl`).

use anyhow::bail;
use clap::Args;
use rand::Rng;

use crate::config::Config;

#[derive(Args, Debug)]
pub struct RedisAclArgs {
    /// The engine's password (generated when absent).
    #[arg(long, env = "CRM_REDIS_ENGINE_PASSWORD")]
    engine_password: Option<String>,
    /// The workers' password (generated when absent).
    #[arg(long, env = "CRM_REDIS_WORKER_PASSWORD")]
    worker_password: Option<String>,
    #[arg(long, default_value = "crm-engine")]
    engine_user: String,
    #[arg(long, default_value = "crm-worker")]
    worker_user: String,
}

pub fn run(config: &Config, args: RedisAclArgs) -> anyhow::Result<()> {
    let generate = || rand::rng().sample_iter(rand::distr::Alphanumeric).take(32).map(char::from).collect::<String>();
    let engine = args.engine_password.unwrap_or_else(generate);
    let worker = args.worker_password.unwrap_or_else(generate);
    for pw in [&engine, &worker] {
        if pw.len() < 16 || pw.chars().any(|c| c.is_whitespace() || c == '@' || c == ':' || c == '/') {
            bail!(
                "a Redis password must be at least 16 characters, without spaces, '@', ':' or '/' (it goes in a URL)"
            );
        }
    }
    let prefix = &config.redis_prefix;
    println!("{}", crm_queue::acl::engine_user(&args.engine_user, &engine, prefix));
    println!("{}", crm_queue::acl::worker_user(&args.worker_user, &worker, prefix));
    eprintln!(
        "# engine: CRM_REDIS_URL=redis://{}:{engine}@HOST:6379\n# workers: CRM_REDIS_URL=redis://{}:{worker}@HOST:6379",
        args.engine_user, args.worker_user
    );
    Ok(())
}
