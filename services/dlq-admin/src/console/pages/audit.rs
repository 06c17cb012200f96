//! `GET /audit`: every admin change, newest first, keyset pages.

use actix_web::{HttpResponse, web};
use job_store::dlq::audit::{self, Action};
use maud::html;
use serde::Deserialize;

use crate::console::error::{ConsoleError, urlencode};
use crate::console::forms::{given, invalid};
use crate::console::layout::{self, Nav, when};
use crate::console::session::ConsoleUser;
use crate::state::AppState;

const PAGE: i64 = 50;

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    action: Option<String>,
    /// A job id, item id or fingerprint.
    target: Option<String>,
    cursor: Option<String>,
}

pub async fn list(
    user: ConsoleUser,
    q: web::Query<AuditQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    let action = given(&q.action)
        .map(|a| Action::parse(a).ok_or_else(|| invalid("action", "action is retry, delete, bulk_retry or purge")))
        .transpose()?;
    let before = given(&q.cursor)
        .map(|c| c.parse::<i64>().map_err(|_| invalid("cursor", "cursor is not one this page gave")))
        .transpose()?;
    let mut rows = audit::list(&state.pool, action, None, given(&q.target), before, PAGE + 1).await?;
    let more = rows.len() as i64 > PAGE;
    rows.truncate(PAGE as usize);
    let next = more.then(|| rows.last().map(|r| r.id)).flatten().map(|id| {
        let mut href = format!("/audit?cursor={id}");
        if let Some(a) = given(&q.action) {
            href.push_str(&format!("&action={}", urlencode(a)));
        }
        if let Some(t) = given(&q.target) {
            href.push_str(&format!("&target={}", urlencode(t)));
        }
        href
    });
    let body = html! {
        form.filters.panel method="get" action="/audit" {
            div { label for="a-action" { "Action" }
                select #a-action name="action" {
                    option value="" { "any" }
                    @for a in ["retry", "delete", "bulk_retry", "purge"] { option value=(a) selected[given(&q.action) == Some(a)] { (a) } }
                } }
            div { label for="a-target" { "Job id, item id or fingerprint" } input #a-target name="target" value=[given(&q.target)] size="38"; }
            button.primary type="submit" { "Filter" }
        }
        div.panel {
            @if rows.is_empty() { p.muted { "No admin change recorded." } } @else {
                table.stack #audit {
                    thead { tr { th { "When" } th { "Who" } th { "Action" } th { "Target" } th { "Reason" } th.num { "Changed" } th { "Status" } } }
                    tbody {
                        @for r in &rows {
                            tr data-action=(r.action) data-target=[r.target.as_deref()] {
                                td data-label="When" { (when(r.at)) }
                                td data-label="Who" { (r.actor) }
                                td data-label="Action" { (r.action) }
                                td data-label="Target" {
                                    @match (&r.target, r.job_ids.as_slice()) {
                                        (_, [one]) => a.mono href={"/jobs/" (one)} { (one) },
                                        (Some(t), _) => code { (t) },
                                        (None, ids) => span.muted { (ids.len()) " job(s)" },
                                    }
                                }
                                td.reason data-label="Reason" { (r.reason) }
                                td.num data-label="Changed" { (r.affected) " of " (r.matched) }
                                td data-label="Status" { (r.status_before.as_deref().unwrap_or("")) " → " (r.status_after.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                }
            }
            @if let Some(href) = next { p.pager { a rel="next" href=(href) { "Older →" } } }
        }
    };
    Ok(crate::console::html(layout::page("Audit log", &user, Nav::Audit, body)))
}
