//! Tickets: the findings that need a person, listed as a work list and
//! closed with a reason.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::StoreResult;

#[derive(Debug, Clone, PartialEq)]
pub struct TicketRow {
    pub ticket_id: i64,
    pub job_id: Uuid,
    /// The attempt that opened it.
    pub attempt: i32,
    pub rule: String,
    pub severity: String,
    pub message: String,
    /// OPEN, IN_PROGRESS, RESOLVED or DISMISSED.
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolution: Option<String>,
    pub resolved_by: Option<String>,
}

/// The statuses a ticket can have.
pub const STATUSES: [&str; 4] = ["OPEN", "IN_PROGRESS", "RESOLVED", "DISMISSED"];

/// A job's tickets, in the order they were opened.
pub async fn of_job(pool: &PgPool, job_id: Uuid) -> StoreResult<Vec<TicketRow>> {
    Ok(sqlx::query_as!(
        TicketRow,
        "SELECT ticket_id, job_id, attempt, rule, severity, message, status, created_at, updated_at, resolved_at, \
                resolution, resolved_by \
         FROM tickets WHERE job_id = $1 ORDER BY ticket_id",
        job_id
    )
    .fetch_all(pool)
    .await?)
}

/// Oldest first (a work list); `after` is the keyset cursor, the last
/// ticket id of the previous page.
pub async fn list(
    pool: &PgPool,
    status: Option<&str>,
    rule: Option<&str>,
    after: Option<i64>,
    limit: i64,
) -> StoreResult<Vec<TicketRow>> {
    Ok(sqlx::query_as!(
        TicketRow,
        "SELECT ticket_id, job_id, attempt, rule, severity, message, status, created_at, updated_at, resolved_at, \
                resolution, resolved_by \
         FROM tickets \
         WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR rule = $2) \
           AND ($3::bigint IS NULL OR ticket_id > $3) \
         ORDER BY ticket_id LIMIT $4",
        status,
        rule,
        after,
        limit,
    )
    .fetch_all(pool)
    .await?)
}

/// What resolving a ticket did.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved {
    /// Closed now, by this request.
    Now(TicketRow),
    /// Already closed (RESOLVED or DISMISSED) before.
    AlreadyClosed(TicketRow),
    NotFound,
}

/// Closes an open ticket with a reason, recording who closed it.
pub async fn resolve(pool: &PgPool, ticket_id: i64, reason: &str, actor: &str) -> StoreResult<Resolved> {
    let closed = sqlx::query_as!(
        TicketRow,
        "UPDATE tickets SET status = 'RESOLVED', resolution = $2, resolved_by = $3, resolved_at = now(), \
                updated_at = now() \
         WHERE ticket_id = $1 AND status IN ('OPEN', 'IN_PROGRESS') \
         RETURNING ticket_id, job_id, attempt, rule, severity, message, status, created_at, updated_at, resolved_at, \
                   resolution, resolved_by",
        ticket_id,
        reason,
        actor,
    )
    .fetch_optional(pool)
    .await?;
    if let Some(row) = closed {
        return Ok(Resolved::Now(row));
    }
    let existing = sqlx::query_as!(
        TicketRow,
        "SELECT ticket_id, job_id, attempt, rule, severity, message, status, created_at, updated_at, resolved_at, \
                resolution, resolved_by \
         FROM tickets WHERE ticket_id = $1",
        ticket_id
    )
    .fetch_optional(pool)
    .await?;
    Ok(existing.map_or(Resolved::NotFound, Resolved::AlreadyClosed))
}
