//! Exit statuses: one per kind of outcome, so a script can tell "fix your
//! command" from "log in" from "try again later" from "the document failed"
//! without reading the message.

use std::process::ExitCode;

use reqwest::StatusCode;

use crate::client::ApiFailure;

/// The statuses; `--help` and the README list them (keep all three in step).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Anything not below: the API refused the request (400, 409, 422, ...),
    /// a 500, a file that cannot be read.
    Error = 1,
    /// A usage error: clap's own (unknown flag, missing argument) and a
    /// malformed value the CLI checks itself (e.g. `--tag` without `=`).
    Usage = 2,
    /// 404: no such job, item, ticket or route.
    NotFound = 3,
    /// 401 or 403: a missing or wrong key or token, or one without the right.
    Auth = 4,
    /// The service cannot be reached (connection refused, TLS handshake,
    /// timeout) or says it is away (429, 502, 503, 504): try again later.
    Unavailable = 5,
    /// `submit --wait`: the job ended FAILED or DLQ (or was deleted).
    JobFailed = 6,
    /// `submit --wait`: still not final after `--wait-timeout-seconds`.
    WaitTimeout = 7,
}

pub const AFTER_HELP: &str = "\
Human-readable tables by default; --json prints the API's JSON for scripts.

Exit status:
  0  success (submit --wait: the job COMPLETED)
  1  the API refused the request (400, 409, 422, ...) or another error
  2  usage error (unknown flag, missing argument, malformed value)
  3  not found (404)
  4  authentication or permission (401, 403): check DOCFLOW_API_KEY / DOCFLOW_ADMIN_TOKEN
  5  unavailable: cannot connect, TLS failure, timeout, or 429/502/503/504
  6  submit --wait: the job ended FAILED or DLQ
  7  submit --wait: the job was not final within --wait-timeout-seconds";

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

/// An error that carries its own exit status (usage, job outcome, wait).
#[derive(Debug)]
pub struct Coded {
    pub exit: Exit,
    pub message: String,
}

impl std::fmt::Display for Coded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Coded {}

/// A usage error as an `anyhow::Error`.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    Coded { exit: Exit::Usage, message: message.into() }.into()
}

/// The status for an API answer that was not a 2xx.
pub fn for_status(status: StatusCode) -> Exit {
    match status.as_u16() {
        404 => Exit::NotFound,
        401 | 403 => Exit::Auth,
        429 | 502 | 503 | 504 => Exit::Unavailable,
        _ => Exit::Error,
    }
}

/// The status for what `run` returned: the first cause in the chain that
/// says what it is decides.
pub fn classify(error: &anyhow::Error) -> Exit {
    for cause in error.chain() {
        if let Some(c) = cause.downcast_ref::<Coded>() {
            return c.exit;
        }
        if let Some(f) = cause.downcast_ref::<ApiFailure>() {
            return for_status(f.status);
        }
        if let Some(e) = cause.downcast_ref::<reqwest::Error>() {
            // A request that never got an answer: the service is away (or
            // not who it claims to be: a TLS failure is a connect error).
            if e.is_connect() || e.is_timeout() || e.is_request() {
                return Exit::Unavailable;
            }
        }
    }
    Exit::Error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_distinct_codes() {
        assert_eq!(for_status(StatusCode::NOT_FOUND), Exit::NotFound);
        assert_eq!(for_status(StatusCode::UNAUTHORIZED), Exit::Auth);
        assert_eq!(for_status(StatusCode::FORBIDDEN), Exit::Auth);
        assert_eq!(for_status(StatusCode::SERVICE_UNAVAILABLE), Exit::Unavailable);
        assert_eq!(for_status(StatusCode::UNPROCESSABLE_ENTITY), Exit::Error);
        assert_eq!(for_status(StatusCode::INTERNAL_SERVER_ERROR), Exit::Error);
        let wrapped = anyhow::Error::from(Coded { exit: Exit::JobFailed, message: "x".into() }).context("waiting");
        assert_eq!(classify(&wrapped), Exit::JobFailed);
        assert_eq!(classify(&anyhow::anyhow!("plain")), Exit::Error);
    }

    #[test]
    fn help_lists_every_code() {
        for code in 1..=7 {
            assert!(AFTER_HELP.contains(&format!("\n  {code}  ")), "code {code} missing from --help");
        }
    }
}
