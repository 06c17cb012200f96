//! `GET /tickets`: open findings (or any status), filtered by rule, oldest
//! first as a work list; writers resolve one with a reason.

use actix_web::{HttpResponse, web};
use job_store::tickets::{self, Resolved, STATUSES};
use maud::html;
use serde::Deserialize;
use service_common::request::check_reason;
use service_common::{ApiError, ErrorCode};

use super::status_badge;
use crate::console::error::{ConsoleError, urlencode};
use crate::console::forms::{given, invalid};
use crate::console::layout::{self, Nav, csrf_field, notice, reason_field, when};
use crate::console::see_other;
use crate::console::session::{ConsoleUser, safe_next};
use crate::state::AppState;

const PAGE: i64 = 50;

#[derive(Debug, Deserialize)]
pub struct TicketQuery {
    rule: Option<String>,
    /// OPEN by default; `any` for every status.
    status: Option<String>,
    cursor: Option<String>,
    notice: Option<String>,
}

pub async fn list(
    user: ConsoleUser,
    q: web::Query<TicketQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    let status = match given(&q.status) {
        None => Some("OPEN"),
        Some("any") => None,
        Some(s) => Some(
            STATUSES
                .into_iter()
                .find(|x| x.eq_ignore_ascii_case(s))
                .ok_or_else(|| invalid("status", format!("status is one of {}", STATUSES.join(", "))))?,
        ),
    };
    let after = given(&q.cursor)
        .map(|c| c.parse::<i64>().map_err(|_| invalid("cursor", "cursor is not one this page gave")))
        .transpose()?;
    let rule = given(&q.rule);
    let mut rows = tickets::list(&state.pool, status, rule, after, PAGE + 1).await?;
    let more = rows.len() as i64 > PAGE;
    rows.truncate(PAGE as usize);
    let query = format!(
        "status={}{}",
        status.unwrap_or("any"),
        rule.map_or(String::new(), |r| format!("&rule={}", urlencode(r)))
    );
    let back = format!("/tickets?{query}");
    let next = more.then(|| rows.last().map(|r| format!("{back}&cursor={}", r.ticket_id))).flatten();
    let body = html! {
        (notice(q.notice.as_deref()))
        form.filters.panel method="get" action="/tickets" {
            div { label for="t-rule" { "Rule" } input #t-rule name="rule" value=[rule] placeholder="e.g. possible_duplicate"; }
            div { label for="t-status" { "Status" }
                select #t-status name="status" {
                    @for s in STATUSES { option value=(s) selected[status == Some(s)] { (s) } }
                    option value="any" selected[status.is_none()] { "any" }
                } }
            button.primary type="submit" { "Filter" }
        }
        div.panel {
            @if rows.is_empty() { p.muted #no-tickets { "No ticket matches." } } @else {
                table.stack #tickets {
                    thead { tr { th { "Ticket" } th { "Rule" } th { "Severity" } th { "Finding" } th { "Job" } th { "Opened" } th { "Status" } th { "" } } }
                    tbody {
                        @for t in &rows {
                            tr data-ticket-id=(t.ticket_id) data-rule=(t.rule) {
                                td.num data-label="Ticket" { (t.ticket_id) }
                                td data-label="Rule" { code { (t.rule) } }
                                td data-label="Severity" { (t.severity) }
                                td data-label="Finding" { (t.message) }
                                td data-label="Job" { a.mono href={"/jobs/" (t.job_id)} { (t.job_id) } }
                                td data-label="Opened" { (when(t.created_at)) }
                                td data-label="Status" { (status_badge(&t.status))
                                    @if let Some(r) = &t.resolution { br; span.muted { (r) " (" (t.resolved_by.as_deref().unwrap_or("")) ")" } } }
                                td {
                                    @if user.can_write() && (t.status == "OPEN" || t.status == "IN_PROGRESS") {
                                        form.action method="post" action={"/tickets/" (t.ticket_id) "/resolve"} {
                                            (csrf_field(&user)) input type="hidden" name="back" value=(back);
                                            div { (reason_field(&format!("resolve-{}", t.ticket_id))) }
                                            button.primary type="submit" { "Resolve" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if let Some(href) = next { p.pager { a rel="next" href=(href) { "More →" } } }
        }
    };
    Ok(crate::console::html(layout::page("Tickets", &user, Nav::Tickets, body)))
}

#[derive(Debug, Deserialize)]
pub struct ResolveForm {
    csrf: Option<String>,
    reason: Option<String>,
    back: Option<String>,
}

pub async fn resolve(
    user: ConsoleUser,
    path: web::Path<String>,
    f: web::Form<ResolveForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    user.authorize_change(f.csrf.as_deref())?;
    let id: i64 = path.parse().map_err(|_| invalid("ticket_id", "a ticket id is a number"))?;
    let reason = check_reason(f.reason.as_deref())?;
    match tickets::resolve(&state.pool, id, &reason, &user.actor).await? {
        Resolved::Now(_) => {
            tracing::info!(ticket_id = id, actor = %user.actor, %reason, "ticket resolved from the console");
            Ok(see_other(&safe_next(f.back.as_deref()), &format!("Ticket {id} resolved.")))
        }
        Resolved::AlreadyClosed(t) => {
            Err(ApiError::new(ErrorCode::Conflict, format!("ticket {id} is already {}", t.status)).into())
        }
        Resolved::NotFound => Err(ApiError::new(ErrorCode::NotFound, format!("no ticket {id}")).into()),
    }
}
