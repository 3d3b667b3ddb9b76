//! `/healthz` (the process answers) and `/readyz` (it can reach Postgres and Redis).

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::extract::Json;

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(readyz))
}

#[derive(Debug, Serialize, ToSchema)]
struct Health {
    /// always `ok`
    status: &'static str,
}

/// The process is up
#[utoipa::path(
    get, path = "/healthz", tag = "health", operation_id = "healthz",
    responses((status = 200, description = "up", body = Health)),
)]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[derive(Debug, Serialize, ToSchema)]
struct Readiness {
    /// `ready` or `not_ready`; what is wrong is in the engine's log, not told to anyone who asks
    status: &'static str,
}

/// Postgres and Redis are reachable
#[utoipa::path(
    get, path = "/readyz", tag = "health", operation_id = "readyz",
    responses(
        (status = 200, description = "both are reachable", body = Readiness),
        (status = 503, description = "one of them is not (the log says which, and why)", body = Readiness),
    ),
)]
async fn readyz(State(s): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let pg = match tokio::time::timeout(PROBE_TIMEOUT, sqlx::query("SELECT 1").execute(&s.db.pool)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".to_string()),
    };
    let redis = match tokio::time::timeout(PROBE_TIMEOUT, ping_redis(&s)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".to_string()),
    };
    if let Err(e) = &pg {
        tracing::warn!(error = %e, "not ready: Postgres");
    }
    if let Err(e) = &redis {
        tracing::warn!(error = %e, "not ready: Redis");
    }
    if pg.is_ok() && redis.is_ok() {
        (StatusCode::OK, Json(Readiness { status: "ready" }))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(Readiness { status: "not_ready" }))
    }
}

/// Pings over one kept connection (reconnected by its manager), not a new one per probe.
async fn ping_redis(s: &AppState) -> Result<(), redis::RedisError> {
    let conn = s.readiness.get_or_try_init(|| s.redis.connect()).await?;
    let _: String = redis::cmd("PING").query_async(&mut conn.clone()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn not_ready_says_so_and_nothing_else() {
        let (status, Json(body)) = readyz(State(AppState::unreachable())).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(serde_json::to_value(&body).unwrap(), serde_json::json!({"status": "not_ready"}));
    }
}
