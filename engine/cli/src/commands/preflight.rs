//! What `crm up` checks before it changes anything: that PostgreSQL and Redis answer at the
//! configured URLs. A newcomer's first command then fails with the fix (start the server,
//! or point the URL elsewhere) instead of a bare connection error, and a stack that could
//! not run is never half set up (no database created, no admin, no deployed examples).
//! Every URL printed here is redacted, and so is the password in any message a client
//! library wrote.

use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};

/// How long a server that does not answer (a dropped SYN) may take before it is reported.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

const POSTGRES_HELP: &str = "Start PostgreSQL (Debian/Ubuntu: `sudo apt-get install postgresql && sudo service postgresql start`), \
     or set CRM_DATABASE_URL to a server that is running";
const REDIS_HELP: &str = "Start Redis (Debian/Ubuntu: `sudo apt-get install redis-server && sudo service redis-server start`), \
     or set CRM_REDIS_URL to a server that is running";

/// Why the stack cannot start, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error(
        "CRM_DATABASE_URL {url} is not a PostgreSQL URL ({message}); expected postgres://USER[:PASSWORD]@HOST:PORT/DATABASE"
    )]
    PostgresUrl { url: String, message: String },
    #[error("cannot reach PostgreSQL at {url}: {message}. {POSTGRES_HELP}.")]
    PostgresDown { url: String, message: String },
    #[error(
        "PostgreSQL at {url} refused the login: {message}. Set CRM_DATABASE_URL to a role that may connect \
         (and create the database on the first start), e.g. postgres://postgres@127.0.0.1:5432/crm."
    )]
    PostgresLogin { url: String, message: String },
    #[error("CRM_REDIS_URL {url} is not a Redis URL ({message}); expected redis://[USER:PASSWORD@]HOST:PORT")]
    RedisUrl { url: String, message: String },
    #[error("cannot reach Redis at {url}: {message}. {REDIS_HELP}.")]
    RedisDown { url: String, message: String },
    #[error(
        "Redis at {url} refused the login: {message}. Set CRM_REDIS_URL's user and password to an ACL user \
         of this installation (`crm redis-acl` prints them)."
    )]
    RedisLogin { url: String, message: String },
}

impl PreflightError {
    /// Nothing answered (as opposed to a bad URL or a refused login): the case where
    /// `crm up` may start a private server instead.
    pub fn is_down(&self) -> bool {
        matches!(self, PreflightError::PostgresDown { .. } | PreflightError::RedisDown { .. })
    }
}

/// `message` without the password `url` carries, should a library have quoted the URL.
fn scrub(message: &str, url: &str) -> String {
    let password = url
        .split_once("://")
        .and_then(|(_, rest)| rest.rsplit_once('@'))
        .and_then(|(userinfo, _)| userinfo.split_once(':'))
        .map(|(_, password)| password)
        .filter(|p| !p.is_empty());
    match password {
        Some(p) => message.replace(p, "***"),
        None => message.to_string(),
    }
}

/// Connects to the configured database (or, while it does not exist yet, only proves the
/// server answers and takes the login: `crm up` creates the database next).
pub async fn check_postgres(url: &str) -> Result<(), PreflightError> {
    let shown = crm_store::database::redact(url);
    let opts: PgConnectOptions = url.parse().map_err(|e: sqlx::Error| PreflightError::PostgresUrl {
        url: shown.clone(),
        message: scrub(&e.to_string(), url),
    })?;
    let connected = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&opts)).await;
    let error = match connected {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            return Ok(());
        }
        Ok(Err(e)) => e,
        Err(_) => {
            return Err(PreflightError::PostgresDown {
                url: shown,
                message: format!("no answer within {}s", CONNECT_TIMEOUT.as_secs()),
            });
        }
    };
    let message = scrub(&error.to_string(), url);
    match &error {
        // 3D000: the database does not exist yet, which `crm up` is about to fix; the server
        // answered and accepted the login.
        sqlx::Error::Database(d) if d.code().as_deref() == Some("3D000") => Ok(()),
        // 28000 / 28P01: no such role, or a wrong password.
        sqlx::Error::Database(d) if d.code().as_deref().is_some_and(|c| c.starts_with("28")) => {
            Err(PreflightError::PostgresLogin { url: shown, message })
        }
        _ => Err(PreflightError::PostgresDown { url: shown, message }),
    }
}

/// Connects and sends PING, which answers only once any login the URL carries has worked.
pub async fn check_redis(url: &str) -> Result<(), PreflightError> {
    let shown = crm_queue::redact(url);
    let redis = crm_queue::Redis::open(url)
        .map_err(|e| PreflightError::RedisUrl { url: shown.clone(), message: scrub(&e.to_string(), url) })?;
    let ping = redis.ping();
    let error = match tokio::time::timeout(CONNECT_TIMEOUT, ping).await {
        Ok(Ok(_)) => return Ok(()),
        Ok(Err(e)) => e,
        Err(_) => {
            return Err(PreflightError::RedisDown {
                url: shown,
                message: format!("no answer within {}s", CONNECT_TIMEOUT.as_secs()),
            });
        }
    };
    let message = scrub(&error.to_string(), url);
    let login = matches!(error.code(), Some("NOAUTH" | "WRONGPASS" | "NOPERM"))
        || error.kind() == redis::ErrorKind::AuthenticationFailed;
    if login {
        Err(PreflightError::RedisLogin { url: shown, message })
    } else {
        Err(PreflightError::RedisDown { url: shown, message })
    }
}

#[cfg(test)]
mod tests {
    use super::scrub;

    #[test]
    fn a_quoted_password_is_scrubbed() {
        assert_eq!(scrub("cannot use redis://u:hunter2@h:1", "redis://u:hunter2@h:1"), "cannot use redis://u:***@h:1");
        assert_eq!(scrub("refused", "redis://h:1"), "refused");
        assert_eq!(scrub("x :@ y", "redis://u:@h"), "x :@ y");
    }
}
