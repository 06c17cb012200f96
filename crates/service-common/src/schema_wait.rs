//! Start-up under `SKIP_MIGRATIONS`: wait until the schema has every
//! migration this build needs, applied by `docflow-migrate`, instead of
//! migrating from every replica.

use std::time::Duration;

use job_store::schema::{self, SchemaState};
use sqlx::PgPool;
use tokio::time::Instant;

const POLL_EVERY: Duration = Duration::from_secs(1);
/// How often a still-waiting service says so in its log.
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// Returns once the schema is current. Gives up after `limit` with an error
/// that says what is missing; a dirty or edited migration fails at once, as
/// waiting cannot mend it. Postgres being unreachable counts as waiting.
pub async fn until_current(pool: &PgPool, limit: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    let deadline = started + limit;
    let mut next_report = Instant::now();
    loop {
        let why = match schema::state(pool).await {
            Ok(SchemaState::Current { version }) => {
                tracing::info!(schema.version = version, "schema is current");
                return Ok(());
            }
            Ok(SchemaState::Dirty { version }) => anyhow::bail!(schema::dirty_advice(version)),
            Ok(SchemaState::Behind { pending }) => {
                let first = &pending[0];
                format!(
                    "{} migration(s) pending, from {} {} (docflow-migrate applies them)",
                    pending.len(),
                    first.version,
                    first.description
                )
            }
            Err(sqlx::migrate::MigrateError::VersionMismatch(version)) => anyhow::bail!(
                "migration {version} was applied from a different file than this build's: the migrations were edited"
            ),
            Err(error) => format!("cannot read the schema's state: {error}"),
        };
        if Instant::now() >= deadline {
            anyhow::bail!("SKIP_MIGRATIONS is set and the schema is not current after {} s: {why}", limit.as_secs());
        }
        if Instant::now() >= next_report {
            tracing::warn!(
                waited_s = started.elapsed().as_secs(),
                limit_s = limit.as_secs(),
                "waiting for the schema: {why}"
            );
            next_report = Instant::now() + REPORT_EVERY;
        }
        tokio::time::sleep(POLL_EVERY.min(deadline.saturating_duration_since(Instant::now()))).await;
    }
}
