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
    /// `ready` or `not_ready`
    status: &'static str,
    /// `ok` or the error
    postgres: String,
    /// `ok` or the error
    redis: String,
}

/// Postgres and Redis are reachable
#[utoipa::path(
    get, path = "/readyz", tag = "health", operation_id = "readyz",
    responses(
        (status = 200, description = "both are reachable", body = Readiness),
        (status = 503, description = "one of them is not", body = Readiness),
    ),
)]
async fn readyz(State(s): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let pg = tokio::time::timeout(PROBE_TIMEOUT, sqlx::query("SELECT 1").execute(&s.db.pool)).await;
    let pg = match pg {
        Ok(Ok(_)) => "ok".to_string(),
        Ok(Err(e)) => format!("error: {e}"),
        Err(_) => "error: timed out".to_string(),
    };
    let redis = tokio::time::timeout(PROBE_TIMEOUT, ping_redis(&s.redis)).await;
    let redis = match redis {
        Ok(Ok(())) => "ok".to_string(),
        Ok(Err(e)) => format!("error: {e}"),
        Err(_) => "error: timed out".to_string(),
    };
    let ready = pg == "ok" && redis == "ok";
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(Readiness { status: if ready { "ready" } else { "not_ready" }, postgres: pg, redis }))
}

async fn ping_redis(client: &redis::Client) -> Result<(), redis::RedisError> {
    let mut conn = client.get_multiplexed_async_connection().await?;
    let _: String = redis::cmd("PING").query_async(&mut conn).await?;
    Ok(())
}
