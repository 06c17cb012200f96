//! Console errors as HTML pages: the status and the machine-readable code
//! are the API's (`service_common::ErrorCode`), shown on the page and in
//! its `data-error-code`, so a browser test (or a script) can tell them apart.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpResponse, ResponseError};
use maud::html;
use service_common::{ApiError, ErrorCode};

use crate::console::layout;
use crate::ops::OpError;

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// No (valid) session: a GET is sent to the login form and back.
    #[error("log in first")]
    LoginRequired { next: String },
    #[error("that token is not an admin token")]
    LoginFailed,
    #[error("{0}")]
    Api(ApiError),
}

impl From<ApiError> for ConsoleError {
    fn from(e: ApiError) -> Self {
        ConsoleError::Api(e)
    }
}

impl From<OpError> for ConsoleError {
    fn from(e: OpError) -> Self {
        ConsoleError::Api(e.into())
    }
}

impl From<job_store::StoreError> for ConsoleError {
    fn from(e: job_store::StoreError) -> Self {
        ConsoleError::Api(ApiError::store(e))
    }
}

impl ConsoleError {
    fn code(&self) -> ErrorCode {
        match self {
            ConsoleError::LoginRequired { .. } | ConsoleError::LoginFailed => ErrorCode::Unauthorized,
            ConsoleError::Api(e) => e.code,
        }
    }
}

impl ResponseError for ConsoleError {
    fn status_code(&self) -> StatusCode {
        match self {
            ConsoleError::LoginRequired { .. } => StatusCode::SEE_OTHER,
            other => other.code().status(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ConsoleError::LoginRequired { next } = self {
            let to = format!("/login?next={}", urlencode(next));
            return HttpResponse::SeeOther().insert_header((header::LOCATION, to)).finish();
        }
        let code = self.code().as_str();
        let message = match self {
            ConsoleError::Api(e) => e.message.to_string(),
            other => other.to_string(),
        };
        let status = self.status_code();
        let body = html! {
            section.error-page data-error-code=(code) {
                h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("Error")) }
                p.error-message { (message) }
                p { "Code: " code.error-code { (code) } }
                p { a href="/" { "Overview" } " · " a href="/jobs" { "Jobs" } " · " a href="/dead-letters" { "Dead letters" } }
            }
        };
        crate::console::page_headers(&mut HttpResponse::build(status))
            .body(layout::bare(&format!("{} · docflow console", status.as_u16()), body).into_string())
    }
}

/// Percent-encodes a query value.
pub fn urlencode(raw: &str) -> String {
    url::form_urlencoded::byte_serialize(raw.as_bytes()).collect()
}
