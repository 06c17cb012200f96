//! `docflow`: the command-line client for admins and operators.
//!
//! ```text
//! docflow submit invoice.pdf --priority high --tag customer=acme
//! docflow status JOB_ID
//! docflow dlq list --stage upload
//! docflow dlq groups
//! docflow dlq show JOB_ID
//! docflow dlq retry JOB_ID --reason "blob store repaired"
//! docflow dlq retry --fingerprint 3f2a… --reason "…" [--dry-run]
//! docflow dlq retry --filter stage=upload --filter error_contains=timeout --reason "…"
//! docflow dlq purge --older-than-days 7 --reason "…"
//! ```

mod cli;
mod client;
mod commands;
mod render;

use std::process::ExitCode;

use clap::Parser;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let json = cli.json;
    match commands::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // With --json a script gets the API's error body on stdout too.
            if let Some(failure) = error.downcast_ref::<client::ApiFailure>().filter(|_| json) {
                println!("{}", failure.body);
            }
            eprintln!("error: {}", render::safe(&format!("{error:#}")));
            ExitCode::from(1)
        }
    }
}
