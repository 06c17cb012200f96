//! `docflow-migrate`: applies the migrations this build embeds, then exits.
//!
//! Exit codes: 0 the schema is current (after applying, or for `status`);
//! 1 an error (Postgres unreachable within the wait, a failed migration);
//! 2 a usage error; 3 `status` found migrations pending or a failed one.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use job_store::schema::{self, SchemaState};
use service_common::config::PostgresArgs;
use sqlx::migrate::MigrateError;

/// Applies docflow's pending Postgres migrations (the default), or reports
/// where the schema stands. Run it once per deployment before the services,
/// which then start with SKIP_MIGRATIONS=true and wait for the schema.
#[derive(Debug, Parser)]
#[command(name = "docflow-migrate", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    #[command(flatten)]
    postgres: PostgresArgs,

    /// How long to keep trying to reach Postgres before giving up (a Job may
    /// start before a managed database accepts connections), in seconds.
    #[arg(long, env = "MIGRATE_CONNECT_WAIT_SECONDS", default_value_t = 60, global = true)]
    connect_wait_seconds: u64,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply every pending migration (the default). Safe to run from several
    /// places at once: sqlx holds an advisory lock while it migrates, so it
    /// needs a direct session, not a transaction-mode PgBouncer.
    Run,
    /// Print the applied and pending migrations; exit 3 unless current.
    Status,
}

const EXIT_NOT_CURRENT: u8 = 3;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("docflow-migrate: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let pool = cli.postgres.pool(1, Duration::from_secs(3)).await?;
    let before = reachable_state(&pool, Duration::from_secs(cli.connect_wait_seconds)).await?;
    match cli.command.unwrap_or(Command::Run) {
        Command::Status => {
            print_state(&before);
            Ok(if before.is_current() { ExitCode::SUCCESS } else { ExitCode::from(EXIT_NOT_CURRENT) })
        }
        Command::Run => {
            let applied = match schema::apply(&pool).await {
                Err(MigrateError::Dirty(version)) => anyhow::bail!(schema::dirty_advice(version)),
                applied => applied.context("applying migrations")?,
            };
            for migration in applied {
                println!("applied {} {}", migration.version, migration.description);
            }
            let after = schema::state(&pool).await.context("reading the schema after migrating")?;
            print_state(&after);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The schema's state, retrying while Postgres cannot be reached.
async fn reachable_state(pool: &sqlx::PgPool, wait: Duration) -> anyhow::Result<SchemaState> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match schema::state(pool).await {
            Ok(state) => return Ok(state),
            Err(MigrateError::Execute(error)) if unreachable(&error) => {
                if tokio::time::Instant::now() >= deadline {
                    anyhow::bail!("Postgres not reachable within {} s: {error}", wait.as_secs());
                }
                eprintln!("docflow-migrate: waiting for Postgres: {error}");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(error) => return Err(error).context("reading the schema's state"),
        }
    }
}

/// Errors that waiting may cure: no route, refused, timed out, or a server
/// still starting. Bad credentials or a missing database fail at once.
fn unreachable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut => true,
        sqlx::Error::Database(db) => db.code().as_deref() == Some("57P03"),
        _ => false,
    }
}

fn print_state(state: &SchemaState) {
    match state {
        SchemaState::Current { version } => println!("schema current at {version}"),
        SchemaState::Dirty { version } => println!("schema dirty: migration {version} failed part-way"),
        SchemaState::Behind { pending } => {
            println!("schema behind: {} pending (this build goes to {})", pending.len(), schema::latest_version());
            for migration in pending {
                println!("pending {} {}", migration.version, migration.description);
            }
        }
    }
}
