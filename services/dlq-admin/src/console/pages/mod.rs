//! One module per page.

pub mod audit;
pub mod auth;
pub mod dead_letters;
pub mod job;
pub mod jobs;
pub mod overview;
pub mod tickets;

use maud::{Markup, html};

/// A status as a badge.
pub fn status_badge(status: &str) -> Markup {
    html! { span class={"status status-" (status)} { (status) } }
}
