//! `crm bench web`: how long the web app takes to answer its two heaviest pages, the
//! contacts table and the pipeline board, at `crm demo-data` sizes (goal: p99 ≤ 50 ms
//! with 100,000 contacts and 1,000 open deals). Each request goes through the web app's
//! whole router in this process (session lookup, CSRF guard, store queries, rendering),
//! without a network in between: what is timed is the server's own work.

use std::time::Instant;

use anyhow::{Context, ensure};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use crm_concepts::records::Actor;
use crm_concepts::user::{NewUser, Role};
use crm_store::Db;
use crm_store::database::with_database;
use crm_store::web_sessions::{self, SignedInVia};
use serde_json::json;
use tower::ServiceExt;

use crate::commands::bench_stack::percentile;
use crate::commands::demo_data::progress_bar;
use crate::config::Config;

#[derive(clap::Args, Debug)]
pub struct WebArgs {
    /// Contacts to generate (companies are a tenth of that).
    #[arg(long, default_value_t = 100_000)]
    pub contacts: u64,
    /// Open deals on the board (plus a fifth of that closed in the last weeks).
    #[arg(long, default_value_t = 1_000)]
    pub open_deals: u64,
    /// Timed requests per page, after a warm-up.
    #[arg(long, default_value_t = 300)]
    pub requests: usize,
    /// Scratch database (on the server of CRM_DATABASE_URL), dropped and recreated.
    #[arg(long, default_value = "crm_bench_web")]
    pub database: String,
    /// Reuse the scratch database when it already holds the data.
    #[arg(long)]
    pub reuse: bool,
    /// Keep the scratch database afterwards (for --reuse).
    #[arg(long)]
    pub keep: bool,
    /// Print the figures as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The pages timed: (name, path).
const PAGES: &[(&str, &str)] = &[
    ("contacts table", "/contacts"),
    ("contacts table, fuzzy search", "/contacts?q=jon+smth"),
    ("contacts table, by name", "/contacts?sort=name"),
    ("board", "/board"),
];

pub async fn run(config: &Config, args: WebArgs) -> anyhow::Result<()> {
    let admin_url = with_database(&config.database_url, "postgres");
    let url = with_database(&config.database_url, &args.database);
    let reused = args.reuse && has_data(&url, args.contacts).await;
    let db = if reused {
        eprintln!("reusing {}", args.database);
        Db::connect(&url, 8).await?
    } else {
        let url = Db::create_scratch(&admin_url, &args.database).await.context("creating the scratch database")?;
        let db = Db::connect(&url, 8).await?;
        load(&db, &args).await?;
        db
    };
    let result = measure(&db, &args).await;
    db.pool.close().await;
    if !args.keep {
        Db::drop_scratch(&admin_url, &args.database).await;
    }
    result
}

async fn has_data(url: &str, contacts: u64) -> bool {
    let Ok(db) = Db::connect(url, 1).await else { return false };
    let n: Result<i64, _> = sqlx::query_scalar("SELECT count(*) FROM contacts").fetch_one(&db.pool).await;
    db.pool.close().await;
    n.is_ok_and(|n| u64::try_from(n).unwrap_or(0) >= contacts)
}

/// Ten owners, the contacts and companies of `crm demo-data`, and the open and recently
/// closed deals of a busy pipeline.
async fn load(db: &Db, args: &WebArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    for i in 0..10 {
        let role = if i == 0 { Role::Admin } else { Role::Manager };
        let new = NewUser { name: format!("Owner {i}"), email: None, role, telegram_user_id: None, time_zone: None };
        crm_store::users::create(db, &Actor::system(), new).await?;
    }
    let companies = (args.contacts / 10).max(1);
    let bar = progress_bar(companies + args.contacts, "generating contacts");
    let mut sample = crm_store::sample::Sample::new(42);
    crm_store::sample::load(db, &mut sample, companies, args.contacts, false, &|d, _| bar.set_position(d))
        .await
        .context("generating contacts")?;
    bar.finish_and_clear();
    // Open deals spread over the open stages; a fifth as many closed in the last 30 days.
    let closed = args.open_deals / 5;
    sqlx::query(
        "INSERT INTO deals (title, amount_minor, currency, pipeline_id, stage_id, contact_id, company_id, owner_id,
                            status, closed_at, stage_changed_at)
         SELECT 'Deal ' || g, (g * 7919) % 5000000, 'USD', s.pipeline_id, s.id,
                (SELECT min(id) FROM contacts) + g, (SELECT min(id) FROM companies) + (g % $3),
                (SELECT min(id) FROM users) + (g % 10), s.kind,
                CASE WHEN s.kind = 'open' THEN NULL ELSE now() - make_interval(days => (g % 30)::int) END,
                now() - make_interval(mins => g::int)
         FROM generate_series(0, $1 + $2 - 1) AS g
         JOIN LATERAL (
             SELECT st.id, st.pipeline_id, st.kind FROM stages st
             WHERE st.pipeline_id = (SELECT min(id) FROM pipelines)
               AND (CASE WHEN g < $1 THEN st.kind = 'open' ELSE st.kind <> 'open' END)
             ORDER BY st.position OFFSET (g % (CASE WHEN g < $1 THEN 4 ELSE 2 END)) LIMIT 1
         ) s ON true",
    )
    .bind(i64::try_from(args.open_deals)?)
    .bind(i64::try_from(closed)?)
    .bind(i64::try_from(companies)?)
    .execute(&db.pool)
    .await
    .context("generating deals")?;
    for table in ["contacts", "companies", "deals", "users"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("VACUUM ANALYZE {table}"))).execute(&db.pool).await?;
    }
    eprintln!(
        "generated {} contacts, {companies} companies, {} open and {closed} closed deals in {:.1?}",
        args.contacts,
        args.open_deals,
        started.elapsed()
    );
    Ok(())
}

async fn measure(db: &Db, args: &WebArgs) -> anyhow::Result<()> {
    let admin: i64 = sqlx::query_scalar("SELECT min(id) FROM users WHERE role = 'admin'").fetch_one(&db.pool).await?;
    let session = web_sessions::create(db, admin, SignedInVia::Token).await?;
    let cookie = format!("{}={}", web_sessions::COOKIE, session.secret);
    let open: i64 = sqlx::query_scalar("SELECT count(*) FROM deals WHERE status = 'open' AND deleted_at IS NULL")
        .fetch_one(&db.pool)
        .await?;
    let contacts: i64 = sqlx::query_scalar("SELECT count(*) FROM contacts").fetch_one(&db.pool).await?;
    let app = crm_web::router(crm_web::WebState::new(db.clone()));

    let mut figures = Vec::new();
    for (name, path) in PAGES {
        let get = || Request::get(*path).header(header::COOKIE, &cookie).body(Body::empty()).expect("a valid request");
        let mut size = 0;
        for _ in 0..20 {
            let response = app.clone().oneshot(get()).await?;
            ensure!(response.status() == StatusCode::OK, "{path} answered {}", response.status());
            size = axum::body::to_bytes(response.into_body(), usize::MAX).await?.len();
        }
        let mut samples = Vec::with_capacity(args.requests);
        for _ in 0..args.requests {
            let t = Instant::now();
            let response = app.clone().oneshot(get()).await?;
            let _ = axum::body::to_bytes(response.into_body(), usize::MAX).await?;
            samples.push(t.elapsed());
        }
        samples.sort_unstable();
        let (p50, p99, max) = (percentile(&samples, 0.5), percentile(&samples, 0.99), percentile(&samples, 1.0));
        if !args.json {
            println!(
                "{name:<30} {path:<24} p50 {p50:>6.2} ms  p99 {p99:>6.2} ms  max {max:>6.2} ms  ({} KiB)",
                size / 1024
            );
        }
        figures.push(json!({"page": name, "path": path, "p50_ms": p50, "p99_ms": p99, "max_ms": max, "bytes": size}));
    }
    let worst_p99 = figures.iter().filter_map(|f| f["p99_ms"].as_f64()).fold(0.0, f64::max);
    if args.json {
        println!(
            "{}",
            json!({"bench": "web", "contacts": contacts, "open_deals": open, "requests": args.requests, "pages": figures})
        );
    } else {
        println!(
            "{contacts} contacts, {open} open deals, {} requests per page: worst p99 {worst_p99:.2} ms (goal ≤ 50 ms)",
            args.requests
        );
    }
    Ok(())
}
