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
use crate::console::session::{ConsoleUser, safe_next};
use crate::console::{html as page_html, see_other};
use crate::domain::{FilterFields, ItemCursor, parse_cursor, parse_id};
use crate::ops::{self, BulkAction, Selection};
use crate::routes::views::{DlqGroup, DlqItem};
use crate::state::AppState;
use job_store::dlq::{DlqFilter, bulk_runs, items};

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

fn bulk_form(user: &ConsoleUser, f: &FilterForm, action: BulkAction, label: &str) -> Markup {
    html! {
        @if user.can_write() {
            form.action method="post" action=(bulk_path(action)) {
                (csrf_field(user)) (f.hidden())
                @let class = if action == BulkAction::Delete { "bulk-delete" } else { "bulk-retry" };
                button class=(class) type="submit" name="dry_run" value="1" { "Dry run: " (label) }
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
                            @if g.kind == ItemKind::Job { (bulk_form(user, &gf, BulkAction::Retry, "retry this group")) }
                            (bulk_form(user, &gf, BulkAction::Delete, "delete this group"))
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
                @if !q.filter.is_empty() {
                    (bulk_form(&user, &q.filter, BulkAction::Retry, "retry every job this filter matches"))
                    (bulk_form(&user, &q.filter, BulkAction::Delete, "delete every item this filter matches"))
                }
                (list_view(&user, &rows, &back))
                @if user.can_write() {
                    form.action #retry-selected method="post" action="/dead-letters/retry-selected"
                        data-confirm="Retry the selected jobs?" {
                        (csrf_field(&user)) input type="hidden" name="back" value=(back);
                        div { (reason_field("selected-reason")) }
                        button.primary type="submit" { "Retry selected" }
                        " "
                        button.danger #delete-selected type="submit" formaction="/dead-letters/delete-selected"
                            data-confirm="Delete the selected jobs? They cannot be retried afterwards." { "Delete selected" }
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

/// An unfinished run with no batch committed for this long has most likely
/// lost its process (a batch takes BULK_BATCH_SIZE / BULK_RETRY_RATE_PER_SECOND
/// seconds at the slowest pace one would configure).
const STALLED_AFTER_SECONDS: f64 = 120.0;

/// `POST /dead-letters/bulk-retry`: every job the filter (or group) matches.
pub async fn bulk_retry(
    user: ConsoleUser,
    f: web::Form<BulkForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    bulk(user, f.into_inner(), state, BulkAction::Retry).await
}

/// `POST /dead-letters/bulk-delete`: every item (jobs and poison messages)
/// the filter (or group) matches.
pub async fn bulk_delete(
    user: ConsoleUser,
    f: web::Form<BulkForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    bulk(user, f.into_inner(), state, BulkAction::Delete).await
}

fn bulk_path(action: BulkAction) -> &'static str {
    match action {
        BulkAction::Retry => "/dead-letters/bulk-retry",
        BulkAction::Delete => "/dead-letters/bulk-delete",
    }
}

/// A dry run shows the count and asks for the reason; the real run works
/// in batches in the background (one transaction and audit row each, and
/// its `dlq_bulk_runs` row advanced in the same transaction) and its page
/// shows the progress.
async fn bulk(
    user: ConsoleUser,
    f: BulkForm,
    state: web::Data<AppState>,
    action: BulkAction,
) -> Result<HttpResponse, ConsoleError> {
    user.authorize_change(f.csrf.as_deref())?;
    let mut filter = f.filter.parse()?;
    if action == BulkAction::Retry {
        if filter.kind == Some(ItemKind::Poison) {
            return Err(crate::console::forms::invalid("kind", "poison messages have no job to requeue"));
        }
        filter.kind = Some(ItemKind::Job);
    }
    let selection = Selection::Filter(filter);
    let max = state.bulk.max_jobs;
    let (jobs, poison) = match action {
        BulkAction::Retry => (ops::bulk_retry_preview(&state, &selection, max).await?.0, 0),
        BulkAction::Delete => ops::bulk_delete_preview(&state, &selection, max).await?,
    };
    let matched = jobs + poison;
    let verb = action.verb();
    if given(&f.dry_run).is_some() {
        let body = html! {
            div.panel #dry-run {
                p { strong #dry-run-count { (matched) } " item(s) would be " (action.past_tense()) " now"
                    @if poison > 0 { " (" (jobs) " job(s), " (poison) " poison message(s))" }
                    @if jobs >= i64::from(max) { " (the most one request takes: " (max) " jobs)" } "." }
                @if action == BulkAction::Delete && matched > 0 {
                    p.error-text { "Deleted items cannot be retried afterwards." }
                }
                @if matched > 0 {
                    form.action method="post" action=(bulk_path(action))
                        data-confirm={(verb) " " (matched) " item(s)?"} {
                        (csrf_field(&user)) (f.filter.hidden())
                        div { (reason_field("bulk-reason")) }
                        @let class = if action == BulkAction::Delete { "danger" } else { "primary" };
                        button class=(class) #bulk-confirm type="submit" { (verb) " " (matched) " item(s)" }
                    }
                }
                p { a href={"/dead-letters?" (f.filter.query())} { "Back" } }
            }
        };
        return Ok(page_html(layout::page(
            &format!("Bulk {}: dry run", verb.to_lowercase()),
            &user,
            Nav::DeadLetters,
            body,
        )));
    }
    let reason = check_reason(f.reason.as_deref())?;
    let run = Uuid::now_v7();
    bulk_runs::start(
        &state.pool,
        &bulk_runs::NewRun {
            run_id: run,
            action: action.audit_action(),
            actor: &user.actor,
            reason: &reason,
            selection: selection.audit_filter(),
            matched,
        },
    )
    .await
    .map_err(ApiError::store)?;
    let (state, actor) = (state.into_inner(), user.actor.clone());
    tokio::spawn(async move {
        let result = ops::bulk_apply(&state, action, &actor, &reason, &selection, max, Some(run)).await;
        let (limit, error) = match &result {
            Ok(o) => {
                tracing::info!(%actor, %reason, jobs = o.retried, poison = o.poison, ?action, "DLQ bulk run from the console");
                (o.limit_reached, None)
            }
            Err(error) => {
                tracing::error!(%actor, %error, ?action, "DLQ bulk run from the console stopped");
                (false, Some(error.to_string()))
            }
        };
        if let Err(error) = bulk_runs::finish(&state.pool, run, limit, error.as_deref()).await {
            tracing::error!(%error, %run, "could not mark a bulk run finished");
        }
    });
    Ok(HttpResponse::SeeOther().insert_header(("Location", format!("/dead-letters/runs/{run}"))).finish())
}

/// `GET /dead-letters/runs/{id}`: a bulk run's progress, as committed (any
/// replica shows it; a restart keeps it), reloading itself until it is done.
pub async fn run_progress(
    user: ConsoleUser,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    let id = parse_id(&path)?;
    let run = bulk_runs::get(&state.pool, id, STALLED_AFTER_SECONDS)
        .await
        .map_err(ApiError::store)?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such bulk run"))?;
    let done = run.finished_at.is_some();
    let (title, past) =
        if run.action == "bulk_delete" { ("Bulk delete", "deleted") } else { ("Bulk retry", "retried") };
    let body = html! {
        div.panel #bulk-run data-finished=(done) data-retried=(run.done) data-stalled=(run.stalled) {
            p { "Started " (when(run.started_at)) " by " (run.actor) ": " em { (run.reason) } }
            progress max=(run.matched.max(1)) value=(run.done) aria-label={"Items " (past)} {}
            p { strong #bulk-retried { (run.done) } " of " (run.matched) " item(s) " (past) " in " (run.batches) " batch(es)." }
            @match (&run.finished_at, &run.error) {
                (None, _) if run.stalled => p.error-text role="alert" #bulk-stalled {
                    "No batch has committed since " (when(run.updated_at)) ": the process running it has most likely stopped. "
                    "What it " (past) " stays " (past) "; start the same action again to take the rest." },
                (None, _) => p.muted role="status" { "Running… this page reloads itself." },
                (Some(_), None) => p.notice role="status" { "Done."
                    @if run.limit_reached { " More items match than one request takes: start it again." } },
                (Some(_), Some(e)) => p.error-text role="alert" { "Stopped: " (e) ". The batches committed before stay " (past) "." },
            }
            p { a href={"/audit?action=" (run.action)} { "Audit log" } " (request " code { (run.run_id) } ")" }
            p { a href="/dead-letters" { "Dead letters" } }
        }
    };
    let refresh = (!done && !run.stalled).then_some(2);
    Ok(page_html(layout::page_with_refresh(title, &user, Nav::DeadLetters, refresh, body)))
}

/// `POST /dead-letters/retry-selected` and `/dead-letters/delete-selected`:
/// the checked jobs of a list page (repeated `job_id` fields, which serde's
/// form parsing cannot hold, so the body is read as pairs).
pub async fn retry_selected(
    user: ConsoleUser,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    change_selected(user, body, state, BulkAction::Retry).await
}

pub async fn delete_selected(
    user: ConsoleUser,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    change_selected(user, body, state, BulkAction::Delete).await
}

async fn change_selected(
    user: ConsoleUser,
    body: web::Bytes,
    state: web::Data<AppState>,
    action: BulkAction,
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
    let outcome = ops::bulk_apply(&state, action, &user.actor, &reason, &Selection::Ids(ids), max, None).await?;
    let past = action.past_tense();
    tracing::info!(actor = %user.actor, %reason, jobs = outcome.retried, "selected DLQ jobs {past} from the console");
    let skipped = if outcome.not_retried.is_empty() {
        String::new()
    } else {
        format!(" {} were no longer in the DLQ.", outcome.not_retried.len())
    };
    let done = format!("{}{} {} selected job(s).{skipped}", past[..1].to_uppercase(), &past[1..], outcome.retried);
    Ok(see_other(&safe_next(back.as_deref()), &done))
}
