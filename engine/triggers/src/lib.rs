//! What starts workflow runs by itself: cron schedules (exactly once per tick across
//! replicas), record events consumed from the outbox (exactly once per matching change,
//! with loop protection), and signed webhooks (HMAC-SHA256, replay window).

pub mod catalog;
pub mod cron;
pub mod error;
pub mod event_match;
pub mod events;
pub mod schedules;
pub mod signature;
pub mod starter;
pub mod webhook;

pub use error::{TriggerError, WebhookError};
pub use starter::{RunStarter, StartRunError};

use std::sync::Arc;

use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The trigger loops of one engine replica, stopped with [`Running::shutdown`].
pub struct Running {
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stops the loops and waits for them; a pass in progress finishes or rolls back.
    pub async fn shutdown(self) {
        self.stop.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Starts the cron ticker and the record-event consumer of this engine replica. Every
/// replica runs both: they coordinate through Postgres, so any number may run at once.
pub fn spawn(pool: PgPool, starter: Arc<dyn RunStarter>) -> Running {
    let stop = CancellationToken::new();
    let ticker = tokio::spawn(schedules::run_ticker(
        pool.clone(),
        starter.clone(),
        schedules::TickerConfig::default(),
        stop.clone(),
    ));
    let consumer = tokio::spawn(events::run_consumer(pool, starter, stop.clone()));
    Running { stop, tasks: vec![ticker, consumer] }
}
