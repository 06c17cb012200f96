//! `GET /dead-letters`: the DLQ grouped by error fingerprint (count, first
//! and last seen, a sample error) or as a list, with the API's filters.
//! Writers retry or delete one item, retry a group or everything the
//! filter matches (after a dry-run count), always with a reason; each
//! change is `crate::ops`'s, audited in its own transaction.

use actix_web::{HttpResponse, web};
use job_model::{ItemKind, JobPriority};
use maud::{Markup, html};
use serde::Deserialize;
use service_common::request::check_reason;
use service_common::{ApiError, ErrorCode};
use uuid::Uuid;

use super::status_badge;
use crate::console::error::{ConsoleError, urlencode};
use crate::console::forms::given;
use crate::console::layout::{self, Nav, csrf_field, notice, reason_field, when};
use crate::console::runs::BulkRuns;
use crate::console::session::{ConsoleUser, safe_next};
use crate::console::{html as page_html, see_other};
use crate::domain::{FilterFields, ItemCursor, parse_cursor, parse_id};
use crate::ops::{self, Selection};
use crate::routes::views::{DlqGroup, DlqItem};
use crate::state::AppState;
use job_store::dlq::{DlqFilter, items};

const PAGE: i64 = 50;
const GROUPS: i64 = 100;

/// The filter as the page's query string and hidden form fields carry it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FilterForm {
    kind: Option<String>,
    error_contains: Option<String>,
    stage: Option<String>,
    priority: Option<String>,
    document_id: Option<String>,
    since: Option<String>,
    until: Option<String>,
    fingerprint: Option<String>,
    reason_code: Option<String>,
}

impl FilterForm {
    fn pairs(&self) -> [(&'static str, Option<&str>); 9] {
        [
            ("kind", given(&self.kind)),
            ("error_contains", given(&self.error_contains)),
            ("stage", given(&self.stage)),
            ("priority", given(&self.priority)),
            ("document_id", given(&self.document_id)),
            ("since", given(&self.since)),
            ("until", given(&self.until)),
            ("fingerprint", given(&self.fingerprint)),
            ("reason_code", given(&self.reason_code)),
        ]
    }

    fn parse(&self) -> Result<DlqFilter, ConsoleError> {
        let own = |v: &Option<String>| given(v).map(str::to_owned);
        let fields = FilterFields {
            kind: own(&self.kind),
            error_contains: own(&self.error_contains),
            stage: own(&self.stage),
            priority: own(&self.priority),
            document_id: own(&self.document_id),
            since: own(&self.since),
            until: own(&self.until),
            fingerprint: own(&self.fingerprint),
            reason: own(&self.reason_code),
        };
        Ok(fields.parse("")?)
    }

    fn query(&self) -> String {
        self.pairs()
            .iter()
            .filter_map(|(k, v)| v.map(|v| format!("{k}={}", urlencode(v))))
            .collect::<Vec<_>>()
            .join("&")
    }

    fn hidden(&self) -> Markup {
        html! { @for (k, v) in self.pairs() { @if let Some(v) = v { input type="hidden" name=(k) value=(v); } } }
    }

    fn is_empty(&self) -> bool {
        self.pairs().iter().all(|(_, v)| v.is_none())
    }
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// `groups` (default) or `list`.
    view: Option<String>,
    cursor: Option<String>,
    notice: Option<String>,
    #[serde(flatten)]
    filter: FilterForm,
}

fn filter_form(f: &FilterForm, view: &str) -> Markup {
    html! {
        form.filters.panel method="get" action="/dead-letters" {
            input type="hidden" name="view" value=(view);
            div { label for="f-kind" { "Kind" }
                select #f-kind name="kind" {
                    option value="" { "any" }
                    @for k in ["job", "poison"] { option value=(k) selected[given(&f.kind) == Some(k)] { (k) } }
                } }
            div { label for="f-stage" { "Stage" } input #f-stage name="stage" value=[given(&f.stage)] size="12"; }
            div { label for="f-priority" { "Priority" }
                select #f-priority name="priority" {
                    option value="" { "any" }
                    @for p in JobPriority::ALL { option value=(p.as_str()) selected[given(&f.priority) == Some(p.as_str())] { (p.as_str()) } }
                } }
            div { label for="f-error" { "Error contains" } input #f-error name="error_contains" value=[given(&f.error_contains)]; }
            div { label for="f-doc" { "Document id" } input #f-doc name="document_id" value=[given(&f.document_id)] size="14"; }
            div { label for="f-since" { "Since" } input #f-since type="date" name="since" value=[given(&f.since)]; }
            div { label for="f-until" { "Until" } input #f-until type="date" name="until" value=[given(&f.until)]; }
            @if let Some(fp) = given(&f.fingerprint) { input type="hidden" name="fingerprint" value=(fp); }
            button.primary type="submit" { "Filter" }
            a href={"/dead-letters?view=" (view)} { "Clear" }
        }
    }
}

fn item_actions(user: &ConsoleUser, item: &DlqItem, back: &str) -> Markup {
    html! {
        @if user.can_write() && item.status == "DLQ" {
            @if item.kind == ItemKind::Job {
                form.action method="post" action={"/dead-letters/" (item.id) "/retry"} data-confirm="Retry this job?" {
                    (csrf_field(user)) input type="hidden" name="back" value=(back);
                    div { (reason_field(&format!("reason-retry-{}", item.id))) }
                    button.primary.retry type="submit" { "Retry" }
                }
            }
            form.action method="post" action={"/dead-letters/" (item.id) "/delete"} data-confirm="Delete this item? It cannot be retried afterwards." {
                (csrf_field(user)) input type="hidden" name="back" value=(back);
                div { (reason_field(&format!("reason-delete-{}", item.id))) }
                button.danger.delete type="submit" { "Delete" }
            }
        }
    }
}

fn bulk_form(user: &ConsoleUser, f: &FilterForm, label: &str) -> Markup {
    html! {
        @if user.can_write() {
            form.action method="post" action="/dead-letters/bulk-retry" {
                (csrf_field(user)) (f.hidden())
                button type="submit" name="dry_run" value="1" { "Dry run: " (label) }
            }
        }
    }
}

fn with_fingerprint(f: &FilterForm, fingerprint: &str) -> FilterForm {
    FilterForm { fingerprint: Some(fingerprint.to_owned()), ..f.clone() }
}

fn groups_view(user: &ConsoleUser, groups: &[DlqGroup], total: i64, f: &FilterForm) -> Markup {
    html! {
        p.muted { (total) " group(s) of items that failed the same way, largest first." }
        table.stack #groups {
            thead { tr { th { "Error" } th.num { "Items" } th { "First seen" } th { "Last seen" } th { "Sample" } th { "" } } }
            tbody {
                @for g in groups {
                    @let gf = with_fingerprint(f, &g.fingerprint);
                    tr data-fingerprint=(g.fingerprint) {
                        td data-label="Error" { strong { (g.title) } br; code { (g.message_template) } }
                        td.num data-label="Items" { (g.count) }
                        td data-label="First seen" { (when(g.first_seen)) }
                        td data-label="Last seen" { (when(g.last_seen)) }
                        td data-label="Sample" {
                            @if let Some(job) = g.sample.job_id { a.mono href={"/jobs/" (job)} { (job) } br; }
                            span.error-text { (g.sample.error_message.as_deref().unwrap_or("")) }
                        }
                        td {
                            a href={"/dead-letters?view=list&" (gf.query())} { "Show items" }
                            @if g.kind == ItemKind::Job { (bulk_form(user, &gf, "retry this group")) }
                        }
                    }
                }
            }
        }
    }
}

fn list_view(user: &ConsoleUser, rows: &[DlqItem], back: &str) -> Markup {
    html! {
        table.stack #dlq-items {
            thead { tr { th { "Item" } th { "Status" } th { "Failed at" } th { "Error" } th { "Dead-lettered" } th { "" } } }
            tbody {
                @for item in rows {
                    tr data-id=(item.id) data-kind=(item.kind.as_str()) {
                        td data-label="Item" {
                            @if user.can_write() && item.kind == ItemKind::Job && item.status == "DLQ" {
                                // Belongs to the "retry selected" form below the table (HTML's form attribute: no JS).
                                input.select type="checkbox" name="job_id" value=(item.id) form="retry-selected"
                                    aria-label={"Select " (item.id)};
                                " "
                            }
                            @if item.kind == ItemKind::Job { a.mono href={"/jobs/" (item.id)} { (item.id) } }
                            @else { code { (item.id) } " (poison)" }
                            br; span.muted { (item.document_id.as_deref().unwrap_or("")) }
                        }
                        td data-label="Status" { (status_badge(&item.status)) }
                        td data-label="Failed at" { (item.error_stage.as_deref().unwrap_or("—")) }
                        td data-label="Error" { code { (item.error_kind) } br; span.error-text { (item.error_message.as_deref().unwrap_or("")) } }
                        td data-label="Dead-lettered" { (when(item.dlq_at)) br; span.muted { (item.dlq_reason.as_deref().unwrap_or("")) } }
                        td { (item_actions(user, item, back)) }
                    }
                }
            }
        }
    }
}

pub async fn list(
    user: ConsoleUser,
    q: web::Query<ListQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    let filter = q.filter.parse()?;
    let view = if given(&q.view) == Some("list") { "list" } else { "groups" };
    let back = format!("/dead-letters?view={view}&{}", q.filter.query());
    let stats = items::stats(&state.pool).await?;
    let content = if view == "list" {
        let cursor = given(&q.cursor).map(parse_cursor).transpose()?;
        let preview = i32::try_from(state.payload_preview_bytes).unwrap_or(i32::MAX);
        let mut rows = items::list(&state.pool, &filter, cursor, PAGE + 1, preview).await?;
        let more = rows.len() as i64 > PAGE;
        rows.truncate(PAGE as usize);
        let next = more.then(|| rows.last().map(|r| ItemCursor { dlq_at: r.dlq_at, id: r.id }.encode())).flatten();
        let rows: Vec<DlqItem> = rows.into_iter().map(DlqItem::from).collect();
        html! {
            @if rows.is_empty() { p.muted #no-items { "Nothing in the DLQ matches." } } @else {
                @if !q.filter.is_empty() { (bulk_form(&user, &q.filter, "retry every job this filter matches")) }
                (list_view(&user, &rows, &back))
                @if user.can_write() {
                    form.action #retry-selected method="post" action="/dead-letters/retry-selected"
                        data-confirm="Retry the selected jobs?" {
                        (csrf_field(&user)) input type="hidden" name="back" value=(back);
                        div { (reason_field("selected-reason")) }
                        button.primary type="submit" { "Retry selected" }
                    }
                }
            }
            @if let Some(c) = next { p.pager { a rel="next" href={(back) "&cursor=" (urlencode(&c))} { "Older items →" } } }
        }
    } else {
        let (groups, total) = items::groups(&state.pool, &filter, GROUPS).await?;
        let groups: Vec<DlqGroup> = groups.into_iter().map(Into::into).collect();
        html! {
            @if groups.is_empty() { p.muted #no-items { "Nothing in the DLQ matches." } }
            @else { (groups_view(&user, &groups, total, &q.filter)) }
        }
    };
    let body = html! {
        (notice(q.notice.as_deref()))
        div.cards {
            div.card { div.label { "Jobs in the DLQ" } div.value #dlq-jobs { (stats.jobs) } }
            div.card { div.label { "Poison messages" } div.value { (stats.poison) } }
            div.card { div.label { "Oldest item" } div.value { @if let Some(t) = stats.oldest { (when(t)) } @else { "—" } } }
        }
        p {
            @if view == "groups" { strong { "Grouped" } " · " a href={"/dead-letters?view=list&" (q.filter.query())} { "List" } }
            @else { a href={"/dead-letters?view=groups&" (q.filter.query())} { "Grouped" } " · " strong { "List" } }
            " · " a href="/audit" { "Audit log" }
        }
        (filter_form(&q.filter, view))
        div.panel { (content) }
    };
    Ok(page_html(layout::page("Dead letters", &user, Nav::DeadLetters, body)))
}

#[derive(Debug, Deserialize)]
pub struct ChangeForm {
    csrf: Option<String>,
    reason: Option<String>,
    back: Option<String>,
}

pub async fn retry(
    user: ConsoleUser,
    path: web::Path<String>,
    f: web::Form<ChangeForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    user.authorize_change(f.csrf.as_deref())?;
    let id = parse_id(&path)?;
    let reason = check_reason(f.reason.as_deref())?;
    let outcome = ops::retry_one(&state, &user.actor, &reason, id).await?;
    tracing::info!(job_id = %id, actor = %user.actor, %reason, "DLQ job retried from the console");
    let next = outcome.next_attempt.map_or(String::new(), |n| format!(" (next attempt: {n})"));
    Ok(see_other(&safe_next(f.back.as_deref()), &format!("Job {id} retried{next}.")))
}

pub async fn delete(
    user: ConsoleUser,
    path: web::Path<String>,
    f: web::Form<ChangeForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    user.authorize_change(f.csrf.as_deref())?;
    let id = parse_id(&path)?;
    let reason = check_reason(f.reason.as_deref())?;
    ops::delete_one(&state, &user.actor, &reason, id).await?;
    tracing::info!(id = %id, actor = %user.actor, %reason, "DLQ item deleted from the console");
    Ok(see_other(&safe_next(f.back.as_deref()), &format!("Item {id} deleted.")))
}

#[derive(Debug, Deserialize)]
pub struct BulkForm {
    csrf: Option<String>,
    reason: Option<String>,
    dry_run: Option<String>,
    #[serde(flatten)]
    filter: FilterForm,
}

/// A dry run shows the count and asks for the reason; the real run
/// requeues in batches (one transaction and audit row each) and reports.
pub async fn bulk_retry(
    user: ConsoleUser,
    f: web::Form<BulkForm>,
    state: web::Data<AppState>,
    runs: web::Data<BulkRuns>,
) -> Result<HttpResponse, ConsoleError> {
    user.authorize_change(f.csrf.as_deref())?;
    let mut filter = f.filter.parse()?;
    if filter.kind == Some(ItemKind::Poison) {
        return Err(crate::console::forms::invalid("kind", "poison messages have no job to requeue"));
    }
    filter.kind = Some(ItemKind::Job);
    let selection = Selection::Filter(filter);
    let max = state.bulk.max_jobs;
    if given(&f.dry_run).is_some() {
        let (matched, sample) = ops::bulk_retry_preview(&state, &selection, max).await?;
        let body = html! {
            div.panel #dry-run {
                p { strong #dry-run-count { (matched) } " job(s) would be retried now"
                    @if matched >= i64::from(max) { " (the most one request retries: " (max) ")" } "." }
                @if !sample.is_empty() {
                    p.muted { "First of them: " @for id in &sample { a.mono href={"/jobs/" (id)} { (id) } " " } }
                }
                @if matched > 0 {
                    form.action method="post" action="/dead-letters/bulk-retry"
                        data-confirm={"Retry " (matched) " job(s)?"} {
                        (csrf_field(&user)) (f.filter.hidden())
                        div { (reason_field("bulk-reason")) }
                        button.primary #bulk-confirm type="submit" { "Retry " (matched) " job(s)" }
                    }
                }
                p { a href={"/dead-letters?" (f.filter.query())} { "Back" } }
            }
        };
        return Ok(page_html(layout::page("Bulk retry: dry run", &user, Nav::DeadLetters, body)));
    }
    let reason = check_reason(f.reason.as_deref())?;
    // Batches go on in the background (a big group takes a while at
    // BULK_RETRY_RATE_PER_SECOND); the run's page shows the progress.
    let (matched, _) = ops::bulk_retry_preview(&state, &selection, max).await?;
    let run = Uuid::now_v7();
    runs.start(run, &user.actor, &reason, matched);
    let (state, runs, actor) = (state.into_inner(), runs.into_inner(), user.actor.clone());
    tokio::spawn(async move {
        let report = |o: &ops::BulkRetryOutcome| runs.progress(run, o.retried, o.batches, o.request_id);
        let result = ops::bulk_retry_reporting(&state, &actor, &reason, &selection, max, report).await;
        match &result {
            Ok(o) => {
                runs.progress(run, o.retried, o.batches, o.request_id);
                tracing::info!(%actor, %reason, retried = o.retried, "DLQ bulk retry from the console");
            }
            Err(error) => tracing::error!(%actor, %error, "DLQ bulk retry from the console stopped"),
        }
        runs.finish(run, result.map(|o| o.limit_reached).map_err(|e| e.to_string()));
    });
    Ok(HttpResponse::SeeOther().insert_header(("Location", format!("/dead-letters/runs/{run}"))).finish())
}

/// `GET /dead-letters/runs/{id}`: a background bulk retry's progress,
/// reloading itself until it is done.
pub async fn run_progress(
    user: ConsoleUser,
    path: web::Path<String>,
    runs: web::Data<BulkRuns>,
) -> Result<HttpResponse, ConsoleError> {
    let id = parse_id(&path)?;
    let run = runs.get(id).ok_or_else(|| {
        ApiError::new(ErrorCode::NotFound, "no such bulk retry in this process (see the audit log for every batch)")
    })?;
    let done = run.finished.is_some();
    let body = html! {
        div.panel #bulk-run data-finished=(done) data-retried=(run.retried) {
            p { "Started " (when(run.started_at)) " by " (run.actor) ": " em { (run.reason) } }
            progress max=(run.matched.max(1)) value=(run.retried) aria-label="Jobs retried" {}
            p { strong #bulk-retried { (run.retried) } " of " (run.matched) " job(s) retried in " (run.batches) " batch(es)." }
            @match &run.finished {
                None => p.muted role="status" { "Running… this page reloads itself." },
                Some(Ok(limit)) => p.notice role="status" { "Done."
                    @if *limit { " More jobs match than one request retries: start it again." } },
                Some(Err(e)) => p.error-text role="alert" { "Stopped: " (e) ". The batches committed before stay retried." },
            }
            @if let Some(r) = run.request_id { p { a href="/audit?action=bulk_retry" { "Audit log" } " (request " code { (r) } ")" } }
            p { a href="/dead-letters" { "Dead letters" } }
        }
    };
    let refresh = (!done).then_some(2);
    Ok(page_html(layout::page_with_refresh("Bulk retry", &user, Nav::DeadLetters, refresh, body)))
}

/// `POST /dead-letters/retry-selected`: the checked jobs of a list page
/// (repeated `job_id` fields, which serde's form parsing cannot hold, so
/// the body is read as pairs).
pub async fn retry_selected(
    user: ConsoleUser,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    let (mut csrf, mut reason, mut back, mut ids) = (None, None, None, Vec::new());
    for (k, v) in url::form_urlencoded::parse(&body) {
        match k.as_ref() {
            "csrf" => csrf = Some(v.into_owned()),
            "reason" => reason = Some(v.into_owned()),
            "back" => back = Some(v.into_owned()),
            "job_id" => ids.push(parse_id(&v)?),
            _ => {}
        }
    }
    user.authorize_change(csrf.as_deref())?;
    if ids.is_empty() {
        return Err(crate::console::forms::invalid("job_id", "select at least one job"));
    }
    if ids.len() > state.bulk.max_jobs as usize {
        return Err(crate::console::forms::invalid("job_id", format!("at most {} jobs at once", state.bulk.max_jobs)));
    }
    ids.sort();
    ids.dedup();
    let reason = check_reason(reason.as_deref())?;
    let max = state.bulk.max_jobs;
    let outcome = ops::bulk_retry(&state, &user.actor, &reason, &Selection::Ids(ids), max).await?;
    tracing::info!(actor = %user.actor, %reason, retried = outcome.retried, "selected DLQ jobs retried from the console");
    let skipped = if outcome.not_retried.is_empty() {
        String::new()
    } else {
        format!(" {} were no longer in the DLQ.", outcome.not_retried.len())
    };
    Ok(see_other(&safe_next(back.as_deref()), &format!("Retried {} selected job(s).{skipped}", outcome.retried)))
}
