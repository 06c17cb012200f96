//! What the stages may ask of earlier jobs. The pipeline holds no database
//! connection: the worker passes in an implementation backed by the job
//! store, tests pass in theirs.

use async_trait::async_trait;
use uuid::Uuid;

use crate::error::StageError;

#[async_trait]
pub trait EarlierResults: Send + Sync {
    /// An earlier job (not `job_id`) whose stored result has the same
    /// normalised supplier and invoice number. An error says whether to retry
    /// (the store unavailable) or not.
    async fn duplicate_of(
        &self,
        job_id: Uuid,
        supplier_key: &str,
        invoice_key: &str,
    ) -> Result<Option<Uuid>, StageError>;
}
