//! The web console's revoked sessions (`console_revoked_sessions`): a
//! session logged out of is refused until it would have expired.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::error::StoreResult;

/// Revokes a session until `expires_at`, and forgets revocations whose
/// sessions have expired by now (they are refused as expired anyway).
pub async fn revoke(pool: &PgPool, session_hash: &str, expires_at: DateTime<Utc>) -> StoreResult<()> {
    let mut tx = pool.begin().await?;
    sqlx::query!(
        "INSERT INTO console_revoked_sessions (session_hash, expires_at) VALUES ($1, $2) \
         ON CONFLICT (session_hash) DO NOTHING",
        session_hash,
        expires_at,
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!("DELETE FROM console_revoked_sessions WHERE expires_at < now()").execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

pub async fn is_revoked(pool: &PgPool, session_hash: &str) -> StoreResult<bool> {
    Ok(sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM console_revoked_sessions WHERE session_hash = $1) AS "revoked!""#,
        session_hash,
    )
    .fetch_one(pool)
    .await?)
}
