//! The engine's clock for waits. Real time, unless the engine was started with a test
//! clock (`crm serve --test-clock`): then an admin may move it forward
//! (`POST /api/engine/clock`), so a test of a three-day wait takes no three days. The
//! offset lives in Postgres, so every engine of the installation (and one restarted) sees
//! the same time.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};
use crm_store::workflow_error::WorkflowError;
use sqlx::PgPool;

const OFFSET_KEY: &str = "test_clock_offset_ms";

#[derive(Debug, Default)]
pub struct Clock {
    adjustable: bool,
    offset_ms: AtomicI64,
}

impl Clock {
    pub fn real() -> Clock {
        Clock::default()
    }

    pub fn adjustable() -> Clock {
        Clock { adjustable: true, offset_ms: AtomicI64::new(0) }
    }

    pub fn is_adjustable(&self) -> bool {
        self.adjustable
    }

    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Picks up an advance another engine made (test clocks only).
    pub async fn refresh(&self, pool: &PgPool) -> Result<(), WorkflowError> {
        if !self.adjustable {
            return Ok(());
        }
        let v: Option<String> = sqlx::query_scalar("SELECT value FROM scheduler_state WHERE key = $1")
            .bind(OFFSET_KEY)
            .fetch_optional(pool)
            .await?;
        self.offset_ms.store(v.and_then(|v| v.parse().ok()).unwrap_or(0), Ordering::Relaxed);
        Ok(())
    }

    /// Moves a test clock forward; `None` on a real clock.
    pub async fn advance(
        &self,
        pool: &PgPool,
        by: std::time::Duration,
    ) -> Result<Option<DateTime<Utc>>, WorkflowError> {
        if !self.adjustable {
            return Ok(None);
        }
        let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        let v: String = sqlx::query_scalar(
            "INSERT INTO scheduler_state (key, value) VALUES ($1, $2::bigint::text)
             ON CONFLICT (key) DO UPDATE SET value = (scheduler_state.value::bigint + $2::bigint)::text, at = now()
             RETURNING value",
        )
        .bind(OFFSET_KEY)
        .bind(by)
        .fetch_one(pool)
        .await?;
        self.offset_ms.store(v.parse().unwrap_or(0), Ordering::Relaxed);
        Ok(Some(self.now()))
    }
}
