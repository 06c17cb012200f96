//! `/healthz` (the process is alive) and `/readyz` (its dependencies answer).

use std::time::Duration;

use actix_web::HttpResponse;
use serde::Serialize;
use sqlx::PgPool;

/// One dependency's state in a readiness answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    /// Whether the service cannot serve without it.
    pub required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// "ready", "degraded" (an optional dependency is down) or "unavailable".
    pub status: &'static str,
    pub checks: Vec<Check>,
}

/// Asks Postgres for `SELECT 1`, bounded so a hung database cannot hang the probe.
pub async fn check_postgres(pool: &PgPool) -> Check {
    let result = tokio::time::timeout(Duration::from_secs(2), sqlx::query("SELECT 1").execute(pool)).await;
    let detail = match result {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some("timed out".to_owned()),
    };
    Check { name: "postgres", ok: detail.is_none(), required: true, detail }
}

/// Renders checks: 503 when a required one fails, else 200.
pub fn readiness_response(checks: Vec<Check>) -> HttpResponse {
    let required_ok = checks.iter().filter(|c| c.required).all(|c| c.ok);
    let all_ok = checks.iter().all(|c| c.ok);
    let status = match (required_ok, all_ok) {
        (true, true) => "ready",
        (true, false) => "degraded",
        (false, _) => "unavailable",
    };
    let body = Readiness { status, checks };
    if required_ok { HttpResponse::Ok().json(body) } else { HttpResponse::ServiceUnavailable().json(body) }
}

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}
