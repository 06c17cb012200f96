//! `GET /jobs`: search by job id, document id or tag (`key=value`), filter
//! by status, priority and submission time, newest first, keyset pages.

use actix_web::{HttpResponse, web};
use job_model::{JobPriority, JobStatus};
use job_store::search::{JobSearch, search_jobs};
use maud::html;
use serde::Deserialize;
use uuid::Uuid;

use super::status_badge;
use crate::console::error::{ConsoleError, urlencode};
use crate::console::forms::{given, instant, invalid, local_input};
use crate::console::layout::{self, Nav, when};
use crate::console::session::ConsoleUser;
use crate::state::AppState;

const PAGE: i64 = 50;

#[derive(Debug, Default, Deserialize)]
pub struct SearchQuery {
    /// A job id, a document id, or a tag as `key=value`.
    q: Option<String>,
    status: Option<String>,
    priority: Option<String>,
    since: Option<String>,
    until: Option<String>,
    cursor: Option<String>,
}

/// The search box's text as the field it names.
pub fn parse_q(q: &str, search: &mut JobSearch) {
    if let Ok(id) = Uuid::parse_str(q) {
        search.job_id = Some(id);
    } else if let Some((k, v)) = q.split_once('=') {
        search.tag = Some((k.trim().to_owned(), v.trim().to_owned()));
    } else {
        search.document_id = Some(q.to_owned());
    }
}

fn parse(q: &SearchQuery) -> Result<(JobSearch, Option<Uuid>), ConsoleError> {
    let mut search = JobSearch::default();
    if let Some(text) = given(&q.q) {
        parse_q(text, &mut search);
    }
    search.status = given(&q.status)
        .map(|s| s.parse::<JobStatus>().map_err(|_| invalid("status", format!("{s:?} is not a job status"))))
        .transpose()?;
    search.priority = given(&q.priority)
        .map(|p| p.parse::<JobPriority>().map_err(|e| invalid("priority", e.to_string())))
        .transpose()?;
    search.since = instant("since", given(&q.since))?;
    search.until = instant("until", given(&q.until))?;
    let cursor = given(&q.cursor)
        .map(|c| Uuid::parse_str(c).map_err(|_| invalid("cursor", "cursor is not one this page gave")))
        .transpose()?;
    Ok((search, cursor))
}

pub async fn search(
    user: ConsoleUser,
    q: web::Query<SearchQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    let (search, cursor) = parse(&q)?;
    let mut jobs = search_jobs(&state.pool, &search, cursor, PAGE + 1).await?;
    let more = jobs.len() as i64 > PAGE;
    jobs.truncate(PAGE as usize);
    let next = more.then(|| jobs.last().map(|j| j.job_id)).flatten().map(|last| {
        let mut params = vec![];
        for (k, v) in
            [("q", &q.q), ("status", &q.status), ("priority", &q.priority), ("since", &q.since), ("until", &q.until)]
        {
            if let Some(v) = given(v) {
                params.push(format!("{k}={}", urlencode(v)));
            }
        }
        params.push(format!("cursor={last}"));
        format!("/jobs?{}", params.join("&"))
    });
    let selected = |v: &Option<String>, option: &str| given(v).is_some_and(|s| s.eq_ignore_ascii_case(option));
    let body = html! {
        form.filters.panel method="get" action="/jobs" role="search" {
            div {
                label for="q" { "Job id, document id or tag (key=value)" }
                input #q type="search" name="q" value=[given(&q.q)] size="36";
            }
            div {
                label for="status" { "Status" }
                select #status name="status" {
                    option value="" { "any" }
                    @for s in JobStatus::ALL {
                        option value=(s.as_str()) selected[selected(&q.status, s.as_str())] { (s.as_str()) }
                    }
                }
            }
            div {
                label for="priority" { "Priority" }
                select #priority name="priority" {
                    option value="" { "any" }
                    @for p in JobPriority::ALL {
                        option value=(p.as_str()) selected[selected(&q.priority, p.as_str())] { (p.as_str()) }
                    }
                }
            }
            div {
                label for="since" { "Submitted from (UTC)" }
                input #since type="datetime-local" name="since" value=[local_input(search.since)];
            }
            div {
                label for="until" { "until (UTC)" }
                input #until type="datetime-local" name="until" value=[local_input(search.until)];
            }
            button.primary type="submit" { "Search" }
        }
        div.panel {
            @if jobs.is_empty() {
                p.muted #no-jobs { "No job matches." }
            } @else {
                table.stack #jobs {
                    thead { tr { th { "Job" } th { "Document" } th { "File" } th { "Status" } th { "Priority" }
                                 th.num { "Attempt" } th { "Submitted" } th { "Updated" } } }
                    tbody {
                        @for j in &jobs {
                            tr data-job-id=(j.job_id) {
                                td data-label="Job" { a.mono href={"/jobs/" (j.job_id)} { (j.job_id) } }
                                td data-label="Document" { (j.document.document_id) }
                                td data-label="File" { (j.document.filename) }
                                td data-label="Status" { (status_badge(j.status.as_str())) }
                                td data-label="Priority" { (j.document.priority.as_str()) }
                                td.num data-label="Attempt" { (j.attempt) }
                                td data-label="Submitted" { (when(j.created_at)) }
                                td data-label="Updated" { (when(j.updated_at)) }
                            }
                        }
                    }
                }
            }
            @if let Some(href) = next { p.pager { a rel="next" href=(href) { "Older jobs →" } } }
        }
    };
    Ok(crate::console::html(layout::page("Jobs", &user, Nav::Jobs, body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_search_box_names_its_field() {
        let mut s = JobSearch::default();
        parse_q("0193a5b2-7c00-7000-8000-000000000001", &mut s);
        assert!(s.job_id.is_some() && s.document_id.is_none());
        let mut s = JobSearch::default();
        parse_q("customer = acme", &mut s);
        assert_eq!(s.tag, Some(("customer".into(), "acme".into())));
        let mut s = JobSearch::default();
        parse_q("invoice-42", &mut s);
        assert_eq!(s.document_id.as_deref(), Some("invoice-42"));
    }
}
