//! `crm bench bot`: command → reply latency of the Telegram bot, measured through a local
//! Bot API server. Everything is real except Telegram itself: a scratch database, a
//! `crm serve` child, a `crm bot` child polling the local Bot API server, and chat users
//! sending commands. Latency is from the moment a message is offered to the bot (the
//! update becomes visible to its long poll) to the moment the Bot API server receives the
//! bot's reply.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use crm_concepts::records::Actor;
use crm_concepts::user::{NewUser, Role};
use crm_store::Db;
use crm_store::database::with_database;
use crm_testing::bot_api::{LocalBotApi, TgUser};
use crm_testing::process::Process;
use serde_json::json;

use crate::commands::bench_stack::bench_admin;
use crate::config::Config;

#[derive(clap::Args, Debug)]
pub struct BotBenchArgs {
    /// Chat users sending commands at the same time.
    #[arg(long, default_value_t = 20)]
    pub chats: usize,
    /// Commands to time in all (after one warm-up command per chat).
    #[arg(long, default_value_t = 400)]
    pub commands: usize,
    /// Least time between two commands of one chat; 0 sends each command right after the
    /// previous reply. A chat past its burst (CRM_BOT_CHAT_BURST, 20) waits for its
    /// average (1 s), and the measurement includes that waiting.
    #[arg(long, default_value_t = 1100)]
    pub chat_interval_ms: u64,
    /// Contacts in the scratch database that `/find` searches.
    #[arg(long, default_value_t = 5_000)]
    pub contacts: u64,
    /// Scratch database (on the server of CRM_DATABASE_URL), dropped and recreated.
    #[arg(long, default_value = "crm_bench_bot")]
    pub database: String,
    /// The commands each chat sends in turn; `{name}` becomes a contact's first name.
    #[arg(long = "command", default_values_t = ["/find {name}".to_string(), "/tasks".to_string()])]
    pub commands_sent: Vec<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn start_engine(exe: &Path, config: &Config, db_url: &str, logs: &Path) -> anyhow::Result<(Process, String)> {
    let prefix = format!("crm_bench_bot_{}", std::process::id());
    let mut cmd = Command::new(exe);
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .env("CRM_DATABASE_URL", db_url)
        .env("CRM_REDIS_URL", &config.redis_url)
        .env("CRM_REDIS_PREFIX", prefix)
        .env("RUST_LOG", "error")
        .stdin(Stdio::null());
    let mut engine = Process::spawn("crm serve", cmd, &logs.join("serve.log"))?;
    let url = engine.listening_url(Duration::from_secs(30)).await?;
    Ok((engine, url))
}

pub async fn run(config: &Config, args: BotBenchArgs) -> anyhow::Result<()> {
    if args.chats == 0 || args.commands == 0 {
        bail!("--chats and --commands must be at least 1");
    }
    let exe = std::env::current_exe().context("finding the crm executable")?;
    let admin_url = with_database(&config.database_url, "postgres");
    let db_url = Db::create_scratch(&admin_url, &args.database).await.context("creating the scratch database")?;
    // The bot's state and both processes' logs; kept when the bench fails, for the logs.
    let data = std::env::temp_dir().join(format!("crm-bench-bot-{}", std::process::id()));
    std::fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;
    let result = measure(config, &args, &exe, &db_url, &data).await;
    Db::drop_scratch(&admin_url, &args.database).await;
    match result {
        Ok(()) => {
            let _ = std::fs::remove_dir_all(&data);
            Ok(())
        }
        Err(e) => Err(e.context(format!("the logs of crm serve and crm bot are in {}", data.display()))),
    }
}

async fn measure(config: &Config, args: &BotBenchArgs, exe: &Path, db_url: &str, data: &Path) -> anyhow::Result<()> {
    let db = Db::connect(db_url, 4).await?;
    let (admin, _) = bench_admin(&db, "bench bot").await?;
    // The bot runs as in production: with a delegate token.
    let delegate = crm_store::tokens::NewToken {
        name: "bench bot",
        scope: crm_concepts::user::TokenScope::Delegate,
        expires_at: None,
    };
    let (_, token) = crm_store::tokens::create_with(&db, admin, &delegate).await?;
    let mut users = Vec::new();
    for i in 0..args.chats {
        let tg = 9_000_000 + i64::try_from(i)?;
        crm_store::users::create(
            &db,
            &Actor::system(),
            NewUser {
                name: format!("Seller {i}"),
                email: None,
                role: Role::Manager,
                telegram_user_id: Some(tg),
                time_zone: None,
            },
        )
        .await?;
        users.push(TgUser::new(tg, &format!("Seller {i}")));
    }
    // After the users, so the sample's tasks are theirs and `/tasks` has work to do.
    let mut sample = crm_store::sample::Sample::new(11);
    crm_store::sample::load(&db, &mut sample, (args.contacts / 50).max(1), args.contacts, true, &|_, _| {})
        .await
        .context("generating contacts")?;
    let names: Vec<String> = sqlx::query_scalar("SELECT split_part(name, ' ', 1) FROM contacts ORDER BY id LIMIT 200")
        .fetch_all(&db.pool)
        .await?;
    if names.is_empty() {
        bail!("no contacts were generated");
    }

    let (_engine, engine_url) = start_engine(exe, config, db_url, data).await?;
    let api = Arc::new(LocalBotApi::start("5555:bench").await.context("starting the local Bot API server")?);
    let mut cmd = Command::new(exe);
    crm_testing::bot::configure(&mut cmd, &api, &engine_url, &token, data)
        .env("RUST_LOG", "error")
        .stdin(Stdio::null());
    let _bot = Process::spawn("crm bot", cmd, &data.join("bot.log"))?;
    api.wait_for(0, Duration::from_secs(60), |c| c.method == "getUpdates")
        .await
        .map_err(|e| anyhow::anyhow!("the bot did not start polling: {e}"))?;

    let per_chat = args.commands.div_ceil(args.chats);
    let interval = Duration::from_millis(args.chat_interval_ms);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, user) in users.into_iter().enumerate() {
        let api = api.clone();
        let names = names.clone();
        let sent_commands = args.commands_sent.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            // The first command warms the bot's identity cache and connections.
            for n in 0..=per_chat {
                let command =
                    sent_commands[n % sent_commands.len()].replace("{name}", &names[(i * 7 + n) % names.len()]);
                let since = api.seq();
                let sent = tokio::time::Instant::now();
                api.send_text(&user, &command);
                let reply = api.reply(user.id, since, Duration::from_secs(30)).await?;
                if n > 0 {
                    latencies.push(reply.at.duration_since(sent));
                }
                tokio::time::sleep_until(sent + interval).await;
            }
            Ok::<_, String>(latencies)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await?.map_err(|e| anyhow::anyhow!("a reply did not come: {e}"))?);
    }
    let wall = started.elapsed();
    all.sort();
    let mean = all.iter().sum::<Duration>() / u32::try_from(all.len()).unwrap_or(1);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (p50, p90, p99, max) =
        (percentile(&all, 50.0), percentile(&all, 90.0), percentile(&all, 99.0), percentile(&all, 100.0));
    let failed = api.calls().iter().filter(|c| c.error.is_some()).count();
    if args.json {
        println!(
            "{}",
            json!({
                "bench": "bot", "chats": args.chats, "sent": args.commands_sent, "commands": all.len(), "contacts": args.contacts,
                "p50_ms": ms(p50), "p90_ms": ms(p90), "p99_ms": ms(p99), "max_ms": ms(max), "mean_ms": ms(mean),
                "commands_per_s": all.len() as f64 / wall.as_secs_f64(), "telegram_errors": failed,
            })
        );
    } else {
        println!(
            "bot command → reply latency through the local Bot API server ({} commands from {} chats: {}; {} contacts):",
            all.len(),
            args.chats,
            args.commands_sent.join(", "),
            args.contacts
        );
        println!(
            "  p50 {:.1} ms   p90 {:.1} ms   p99 {:.1} ms   max {:.1} ms   mean {:.1} ms",
            ms(p50),
            ms(p90),
            ms(p99),
            ms(max),
            ms(mean)
        );
        println!(
            "  {:.1} commands/s over {:.1?}; Bot API errors: {failed}",
            all.len() as f64 / wall.as_secs_f64(),
            wall
        );
    }
    Ok(())
}
