//! Where the database's schema stands against the migrations this build
//! embeds ([`crate::MIGRATOR`]): read without writing anything, so a service
//! whose database role may not create tables can still ask.
//!
//! Deployments migrate in one step (`docflow-migrate`, a Kubernetes Job)
//! and start the services with `SKIP_MIGRATIONS=true`; those wait until
//! [`state`] says [`SchemaState::Current`].

use std::collections::HashMap;

use sqlx::migrate::{Migrate, MigrateError, Migrator};
use sqlx::{PgConnection, PgPool, Postgres};

use crate::MIGRATOR;

/// A migration this build has and the database has not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingMigration {
    pub version: i64,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaState {
    /// Every migration of this build is applied. The database may hold newer
    /// ones too (a rolling upgrade in progress): migrations only add, so an
    /// older build runs on a newer schema.
    Current { version: i64 },
    /// Migrations this build needs are not applied yet (oldest first).
    Behind { pending: Vec<PendingMigration> },
    /// A migration failed part-way (`_sqlx_migrations.success = false`); it
    /// must be repaired by hand before `docflow-migrate` runs again.
    Dirty { version: i64 },
}

impl SchemaState {
    pub fn is_current(&self) -> bool {
        matches!(self, SchemaState::Current { .. })
    }
}

/// What to do about a migration that failed part-way: said the same by the
/// migrator and by a service waiting for the schema.
pub fn dirty_advice(version: i64) -> String {
    format!(
        "migration {version} failed part-way (_sqlx_migrations.success = false): repair the database by hand, \
         delete that row, and run docflow-migrate again"
    )
}

/// The schema's state. An applied migration whose checksum differs from this
/// build's (its file was edited after it ran) is an error, as it is for
/// `MIGRATOR.run`: no amount of waiting fixes it.
pub async fn state(pool: &PgPool) -> Result<SchemaState, MigrateError> {
    let mut conn = pool.acquire().await?;
    state_on(&mut conn).await
}

async fn state_on(conn: &mut PgConnection) -> Result<SchemaState, MigrateError> {
    let table = MIGRATOR.table_name.as_ref();
    let exists: bool = sqlx::query_scalar::<Postgres, bool>("SELECT to_regclass($1) IS NOT NULL")
        .bind(table)
        .fetch_one(&mut *conn)
        .await?;
    let applied: HashMap<i64, Vec<u8>> = if exists {
        if let Some(version) = conn.dirty_version(table).await? {
            return Ok(SchemaState::Dirty { version });
        }
        conn.list_applied_migrations(table).await?.into_iter().map(|m| (m.version, m.checksum.into_owned())).collect()
    } else {
        HashMap::new()
    };
    let mut pending = Vec::new();
    let mut version = 0;
    for migration in MIGRATOR.iter().filter(|m| !m.migration_type.is_down_migration()) {
        match applied.get(&migration.version) {
            Some(checksum) if checksum.as_slice() != migration.checksum.as_ref() => {
                return Err(MigrateError::VersionMismatch(migration.version));
            }
            Some(_) => version = version.max(migration.version),
            None => pending
                .push(PendingMigration { version: migration.version, description: migration.description.to_string() }),
        }
    }
    Ok(if pending.is_empty() { SchemaState::Current { version } } else { SchemaState::Behind { pending } })
}

/// Applies every pending migration and returns the ones this call applied.
/// The state is read and the migrations run under one advisory lock (the one
/// sqlx's own `run` takes), so of several callers at once each migration is
/// reported by the one that applied it.
pub async fn apply(pool: &PgPool) -> Result<Vec<PendingMigration>, MigrateError> {
    let mut conn = pool.acquire().await?;
    conn.lock().await?;
    let applied = apply_locked(&mut conn).await;
    // A failed migration's error matters more than a failed unlock (the lock
    // goes with the session anyway).
    let unlocked = conn.unlock().await;
    let applied = applied?;
    unlocked?;
    Ok(applied)
}

async fn apply_locked(conn: &mut PgConnection) -> Result<Vec<PendingMigration>, MigrateError> {
    match state_on(conn).await? {
        SchemaState::Current { .. } => Ok(Vec::new()),
        SchemaState::Dirty { version } => Err(MigrateError::Dirty(version)),
        SchemaState::Behind { pending } => {
            let mut migrator = Migrator::with_migrations(MIGRATOR.iter().cloned().collect());
            migrator.set_locking(false); // held above
            migrator.run(&mut *conn).await?;
            Ok(pending)
        }
    }
}

/// The newest migration this build embeds.
pub fn latest_version() -> i64 {
    MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}
