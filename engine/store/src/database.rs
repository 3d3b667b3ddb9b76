//! Connecting, migrating, and creating throwaway databases for tests and benchmarks.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, PgPool};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot connect to Postgres at {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error("migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
    #[error("invalid database name {0:?}: use letters, digits and underscores (at most 63)")]
    BadName(String),
}

/// The migrations in `migrations/`, embedded at build time so the binary carries its schema.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// A connection idle for longer than this is pinged before it is handed out.
const PING_IDLE_AFTER: Duration = Duration::from_secs(10);

/// How every pool of the engine hands out connections. sqlx pings each connection before
/// handing it out by default: a round trip to Postgres on every acquire, which doubled the
/// round trips of a step's one-statement read. A connection in steady use has just proven
/// itself, so only one idle for [`PING_IDLE_AFTER`] is pinged (one Postgres restarted under
/// a busy engine fails one statement per connection, and sqlx drops that connection when its
/// release ping fails).
pub fn pool_options(max_connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_IDLE_AFTER {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
}

#[derive(Clone, Debug)]
pub struct Db {
    pub pool: PgPool,
}

impl Db {
    pub async fn connect(url: &str, max_connections: u32) -> Result<Db, DbError> {
        let opts: PgConnectOptions = url
            .parse::<PgConnectOptions>()
            .map_err(|source| DbError::Connect { url: redact(url), source })?
            .log_statements(tracing::log::LevelFilter::Trace)
            .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_millis(500))
            // Search corrects typos against its word dictionary with the `%` operator; one
            // typo in a short word leaves little trigram overlap ("jonh"/"john" = 0.25), so
            // the default 0.3 would miss it. Set per session, so search needs no transaction.
            .options([("pg_trgm.similarity_threshold", crate::search::WORD_THRESHOLD)])
            // The engine's statements are short; a plan whose estimated cost passes
            // `jit_above_cost` (a batch's UNNEST joins, a scan of a grown table) had LLVM
            // compile it on every execution: 15 % of Postgres' CPU under `crm bench runs`
            // went to libLLVM, for queries that run in well under a millisecond.
            .options([("jit", "off")]);
        let pool = pool_options(max_connections)
            .connect_with(opts)
            .await
            .map_err(|source| DbError::Connect { url: redact(url), source })?;
        Ok(Db { pool })
    }

    pub async fn migrate(&self) -> Result<(), DbError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    /// Creates the database `url` names if it does not exist yet, so a first `crm up` on a
    /// fresh Postgres needs no manual `createdb`.
    pub async fn ensure_database(url: &str) -> Result<(), DbError> {
        let opts: PgConnectOptions = url.parse().map_err(|source| DbError::Connect { url: redact(url), source })?;
        let Some(name) = opts.get_database().map(str::to_string) else {
            return Ok(());
        };
        let admin = opts.clone().database("postgres");
        let mut conn = sqlx::PgConnection::connect_with(&admin)
            .await
            .map_err(|source| DbError::Connect { url: redact(url), source })?;
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut conn)
            .await?;
        if !exists {
            let quoted = format!("\"{}\"", name.replace('"', ""));
            // A concurrent creator wins the race harmlessly: ignore "already exists".
            if let Err(e) = sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {quoted}"))).execute(&mut conn).await {
                let duplicate = matches!(&e, sqlx::Error::Database(d) if d.code().as_deref() == Some("42P04"));
                if !duplicate {
                    return Err(e.into());
                }
            }
        }
        conn.close().await?;
        Ok(())
    }

    /// Creates a fresh database named `name` next to the one `admin_url` points at, applies
    /// the migrations, and returns its URL. Tests use one database each so they run in parallel.
    pub async fn create_scratch(admin_url: &str, name: &str) -> Result<String, DbError> {
        let admin: PgConnectOptions =
            admin_url.parse().map_err(|source| DbError::Connect { url: redact(admin_url), source })?;
        let mut conn = sqlx::PgConnection::connect_with(&admin)
            .await
            .map_err(|source| DbError::Connect { url: redact(admin_url), source })?;
        let quoted = quote_database_name(name)?;
        sqlx::query(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))).execute(&mut conn).await?;
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {quoted}"))).execute(&mut conn).await?;
        conn.close().await?;
        let url = with_database(admin_url, name);
        let db = Db::connect(&url, 2).await?;
        db.migrate().await?;
        db.pool.close().await;
        Ok(url)
    }

    /// Drops a scratch database; errors are ignored because this runs in test teardown.
    pub async fn drop_scratch(admin_url: &str, name: &str) {
        if let Ok(mut conn) = sqlx::PgConnection::connect(admin_url).await
            && let Ok(quoted) = quote_database_name(name)
        {
            let _ = sqlx::query(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")))
                .execute(&mut conn)
                .await;
        }
    }
}

/// Database names can't be bind parameters, so only a conservative alphabet is accepted.
fn quote_database_name(name: &str) -> Result<String, DbError> {
    let ok = !name.is_empty() && name.len() <= 63 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok { Ok(format!("\"{name}\"")) } else { Err(DbError::BadName(name.to_string())) }
}

/// `postgres://u@h:5432/db?x` with the database replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let path_start = base[scheme_end..].find('/').map(|i| i + scheme_end);
    let host_part = match path_start {
        Some(i) => &base[..i],
        None => base,
    };
    match query {
        Some(q) => format!("{host_part}/{name}?{q}"),
        None => format!("{host_part}/{name}"),
    }
}

/// Hides a password in a URL before it reaches a log or an error message.
pub fn redact(url: &str) -> String {
    if let Some(scheme_end) = url.find("://")
        && let Some(at) = url[scheme_end + 3..].find('@')
    {
        let creds = &url[scheme_end + 3..scheme_end + 3 + at];
        if let Some(colon) = creds.find(':') {
            return format!("{}{}:***{}", &url[..scheme_end + 3], &creds[..colon], &url[scheme_end + 3 + at..]);
        }
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn swaps_database_and_redacts() {
        assert_eq!(with_database("postgres://u@h:5432/postgres", "x"), "postgres://u@h:5432/x");
        assert_eq!(with_database("postgres://u@h/postgres?sslmode=disable", "x"), "postgres://u@h/x?sslmode=disable");
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
    }
}
