//! The pipeline's view of earlier jobs, answered by the job store.

use async_trait::async_trait;
use job_store::{ConnectionCache, StoreError};
use pipeline::{EarlierResults, StageError, kind};
use uuid::Uuid;

pub struct StoredResults {
    pub connections: ConnectionCache,
}

#[async_trait]
impl EarlierResults for StoredResults {
    async fn duplicate_of(
        &self,
        job_id: Uuid,
        supplier_key: &str,
        invoice_key: &str,
    ) -> Result<Option<Uuid>, StageError> {
        let lookup = async {
            let mut connection = self.connections.acquire().await?;
            let found = job_store::results::find_duplicate(&mut *connection, job_id, supplier_key, invoice_key).await;
            connection.keep_if_ok(found)
        };
        lookup.await.map_err(|e| match e {
            // Postgres away is a retry, not a failed document (DESIGN.md).
            StoreError::Unavailable(_) => {
                StageError::retryable(kind::DATABASE_UNAVAILABLE, format!("duplicate lookup: {e}"))
            }
            other => StageError::retryable(kind::DATABASE_ERROR, format!("duplicate lookup: {other}")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unreachable_database_makes_the_lookup_retryable() {
        // Nothing listens on port 1: connecting fails like a Postgres that is down.
        let pool = sqlx::postgres::PgPoolOptions::new()
            .acquire_timeout(std::time::Duration::from_secs(2))
            .connect_lazy("postgres://postgres@127.0.0.1:1/docflow")
            .unwrap();
        let connections = ConnectionCache::new(pool, 4);
        let error = StoredResults { connections }.duplicate_of(Uuid::now_v7(), "acme", "INV1").await.unwrap_err();
        assert!(error.is_retryable());
        assert_eq!(error.kind(), kind::DATABASE_UNAVAILABLE);
    }
}
