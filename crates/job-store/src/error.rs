//! One error for every store call, by what the caller should do about it.

/// What went wrong, by kind: callers match on the variant, never on text.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Postgres cannot be reached or is shedding load (connection refused,
    /// pool timed out, admin shutdown, too many connections, serialization
    /// failure): retry later. The API answers 503 with `Retry-After`.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// A uniqueness or exclusion constraint refused the write: the same
    /// request will fail again the same way.
    #[error("conflict: {0}")]
    Conflict(#[source] sqlx::Error),
    /// A row broke a rule the code relies on (an impossible status, a
    /// transition the status machine forbids): a bug, not an outage.
    #[error("invariant violated: {0}")]
    Invariant(String),
    /// Any other database error (a bad query, a check constraint): a bug.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
}

impl StoreError {
    pub fn invariant(message: impl Into<String>) -> Self {
        StoreError::Invariant(message.into())
    }

    /// Whether waiting and retrying can make the same call succeed.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(error),
            sqlx::Error::Database(db) => {
                let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
                // SQLSTATE classes (PostgreSQL, Appendix A): 08 connection
                // exception, 53 insufficient resources, 57 operator
                // intervention, 40 transaction rollback (serialization
                // failure, deadlock): all pass if tried again.
                if ["08", "53", "57", "40"].iter().any(|class| code.starts_with(class)) {
                    StoreError::Unavailable(error)
                } else if code == "23505" || code == "23P01" {
                    StoreError::Conflict(error)
                } else {
                    StoreError::Database(error)
                }
            }
            sqlx::Error::Decode(_) | sqlx::Error::ColumnDecode { .. } | sqlx::Error::RowNotFound => {
                StoreError::Invariant(error.to_string())
            }
            _ => StoreError::Database(error),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_sorted_by_what_to_do_next() {
        assert!(StoreError::from(sqlx::Error::PoolTimedOut).is_unavailable());
        assert!(StoreError::from(sqlx::Error::Io(std::io::ErrorKind::ConnectionRefused.into())).is_unavailable());
        assert!(matches!(StoreError::from(sqlx::Error::RowNotFound), StoreError::Invariant(_)));
        let decode = sqlx::Error::Decode("not a string map".into());
        assert!(matches!(StoreError::from(decode), StoreError::Invariant(_)));
        assert!(!StoreError::invariant("job x: DLQ -> COMPLETED").is_unavailable());
    }
}
