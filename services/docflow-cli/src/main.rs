//! `docflow`: the command-line client for admins and operators.
//!
//! ```text
//! docflow submit invoice.pdf --priority high --tag customer=acme
//! docflow submit invoice.pdf --wait            # exit 0 once COMPLETED, 6 if FAILED/DLQ
//! docflow status JOB_ID
//! docflow jobs --status DLQ --priority HIGH
//! docflow metrics report --hours 1
//! docflow completions bash > ~/.local/share/bash-completion/completions/docflow
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
mod exit;
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
            exit::classify(&error).into()
        }
    }
}
