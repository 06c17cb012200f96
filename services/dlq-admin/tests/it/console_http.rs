//! The console over plain HTTP (no browser): session cookie attributes,
//! tampered and revoked sessions, the login form's CSRF check, a group
//! retried after a dry run, tickets resolved with a reason.

use base64::Engine;
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};

use crate::helpers::{DlqJobs, READ_TOKEN, TestApp, WRITE_TOKEN, World, insert_poison};

/// A client that keeps the console's one cookie by hand.
struct Console<'a> {
    app: &'a TestApp,
    http: reqwest::Client,
    cookie: Option<String>,
    /// The last Set-Cookie header, whole (attributes included).
    set_cookie: Option<String>,
    /// The last POST's Location header.
    location: Option<String>,
}

fn csrf_of(html: &str) -> String {
    html.split("name=\"csrf\" value=\"").nth(1).expect("a form with a CSRF token").split('"').next().unwrap().to_owned()
}

impl<'a> Console<'a> {
    fn new(app: &'a TestApp) -> Console<'a> {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Console { app, http, cookie: None, set_cookie: None, location: None }
    }

    fn keep(&mut self, r: &reqwest::Response) {
        if let Some(v) = r.headers().get(SET_COOKIE) {
            let whole = v.to_str().unwrap().to_owned();
            self.cookie = Some(whole.split(';').next().unwrap().to_owned());
            self.set_cookie = Some(whole);
        }
    }

    async fn get(&mut self, path: &str) -> (StatusCode, String, Option<String>) {
        let mut r = self.http.get(self.app.url(path));
        if let Some(c) = &self.cookie {
            r = r.header(COOKIE, c);
        }
        let r = r.send().await.unwrap();
        self.keep(&r);
        let location = r.headers().get(LOCATION).map(|l| l.to_str().unwrap().to_owned());
        (r.status(), r.text().await.unwrap(), location)
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)], extra: Option<(&str, &str)>) -> (StatusCode, String) {
        let mut r = self.http.post(self.app.url(path)).form(form);
        if let Some(c) = &self.cookie {
            r = r.header(COOKIE, c);
        }
        if let Some((k, v)) = extra {
            r = r.header(k, v);
        }
        let r = r.send().await.unwrap();
        self.keep(&r);
        self.location = r.headers().get(LOCATION).map(|l| l.to_str().unwrap().to_owned());
        (r.status(), r.text().await.unwrap())
    }

    async fn log_in(&mut self, token: &str) -> StatusCode {
        let (_, html, _) = self.get("/login").await;
        let csrf = csrf_of(&html);
        self.post("/login", &[("csrf", &csrf), ("token", token), ("next", "/jobs")], None).await.0
    }

    /// The session's CSRF token, from any page's logout form.
    async fn csrf(&mut self) -> String {
        let (status, html, _) = self.get("/jobs").await;
        assert_eq!(status, StatusCode::OK);
        csrf_of(&html)
    }
}

#[tokio::test]
async fn the_session_cookie_is_httponly_strict_and_secure_behind_tls_and_tampering_ends_it() {
    let world = World::new().await;
    let app = world.app(&[]).await;
    let mut c = Console::new(&app);
    let (status, _, location) = c.get("/").await;
    assert_eq!((status, location.as_deref()), (StatusCode::SEE_OTHER, Some("/login?next=%2F")));

    // Pages may not be framed, run inline script or be cached.
    let page = reqwest::get(app.url("/login")).await.unwrap();
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    assert_eq!(page.headers()["cache-control"], "no-store");
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");

    assert_eq!(c.log_in(WRITE_TOKEN).await, StatusCode::SEE_OTHER);
    let set = c.set_cookie.clone().unwrap();
    assert!(set.starts_with("docflow_console="), "{set}");
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/"), "{set}");
    assert!(!set.contains("Secure"), "plain HTTP: not Secure ({set})");
    assert!(!set.contains(WRITE_TOKEN), "the token is encrypted in the cookie");
    assert_eq!(c.get("/jobs").await.0, StatusCode::OK);

    // One byte changed: the cookie no longer authenticates.
    let cookie = c.cookie.clone().unwrap();
    let (name, value) = cookie.split_once('=').unwrap();
    let mut bytes = base64::engine::general_purpose::STANDARD.decode(value).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    c.cookie = Some(format!("{name}={}", base64::engine::general_purpose::STANDARD.encode(bytes)));
    let (status, _, location) = c.get("/jobs").await;
    assert_eq!((status, location.as_deref()), (StatusCode::SEE_OTHER, Some("/login?next=%2Fjobs")));

    // Behind a TLS-terminating proxy, or when told so: Secure.
    let mut tls = Console::new(&app);
    let (_, html, _) = tls.get("/login").await;
    let csrf = csrf_of(&html);
    tls.post("/login", &[("csrf", &csrf), ("token", READ_TOKEN)], Some(("x-forwarded-proto", "https"))).await;
    assert!(tls.set_cookie.unwrap().contains("Secure"));
    let always = world.app(&["--console-secure-cookies"]).await;
    let mut s = Console::new(&always);
    s.log_in(READ_TOKEN).await;
    assert!(s.set_cookie.unwrap().contains("Secure"));
}

#[tokio::test]
async fn the_login_form_needs_its_csrf_token_and_a_known_token() {
    let world = World::new().await;
    let app = world.app(&[]).await;
    let mut c = Console::new(&app);
    c.get("/login").await;
    let (status, body) = c.post("/login", &[("token", WRITE_TOKEN)], None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains(r#"data-error-code="invalid_csrf_token""#), "{body}");
    assert_eq!(c.get("/jobs").await.0, StatusCode::SEE_OTHER, "not logged in");
    let (_, html, _) = c.get("/login").await;
    let (status, body) = c.post("/login", &[("csrf", &csrf_of(&html)), ("token", "nope")], None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains(r#"data-error-code="unauthorized""#));
    assert_eq!(c.get("/jobs").await.0, StatusCode::SEE_OTHER, "still logged out");
    // Only a path on this site as the place to go back to.
    let (_, html, _) = c.get("/login?next=//evil.example/").await;
    let (status, _) =
        c.post("/login", &[("csrf", &csrf_of(&html)), ("token", READ_TOKEN), ("next", "//evil.example/")], None).await;
    assert_eq!((status, c.location.as_deref()), (StatusCode::SEE_OTHER, Some("/")));
}

#[tokio::test]
async fn sessions_outlive_a_restart_with_a_set_key_and_end_with_their_token() {
    let world = World::new().await;
    let key = base64::engine::general_purpose::STANDARD.encode([9u8; 48]);
    let first = world.app(&["--console-session-key", &key]).await;
    let mut c = Console::new(&first);
    c.log_in(READ_TOKEN).await;
    let cookie = c.cookie.clone();

    // Another replica with the same key and tokens: the same session.
    let second = world.app(&["--console-session-key", &key]).await;
    let mut c2 = Console::new(&second);
    c2.cookie = cookie.clone();
    assert_eq!(c2.get("/jobs").await.0, StatusCode::OK);
    // A replica with another key cannot read it.
    let other = world.app(&[]).await;
    let mut c3 = Console::new(&other);
    c3.cookie = cookie.clone();
    assert_eq!(c3.get("/jobs").await.0, StatusCode::SEE_OTHER);
    // The read token removed from ADMIN_TOKENS: its session ends.
    let mut args = world.args();
    let tokens = args.iter().position(|a| a == "--admin-tokens").unwrap() + 1;
    args[tokens] = format!("{WRITE_TOKEN}:write");
    args.extend(["--console-session-key".to_owned(), key.clone()]);
    let revoked = world.app_with(args).await;
    let mut c4 = Console::new(&revoked);
    c4.cookie = cookie;
    assert_eq!(c4.get("/jobs").await.0, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_group_is_retried_after_a_dry_run_with_a_reason_and_audited() {
    let world = World::new().await;
    let group = DlqJobs { count: 3, ..Default::default() }.insert(world.pool()).await;
    let other = DlqJobs {
        count: 1,
        stage: "extraction",
        error_kind: "pdf_unreadable",
        error: "pdf_unreadable: bad xref",
        document_prefix: "other",
        ..Default::default()
    }
    .insert(world.pool())
    .await;
    let app = world.app(&[]).await;
    let mut c = Console::new(&app);
    c.log_in(WRITE_TOKEN).await;
    let (status, html, _) = c.get("/dead-letters").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(html.matches("data-fingerprint=").count(), 2, "two groups");
    let fingerprint: String = sqlx::query_scalar(
        "SELECT dlq_fingerprint('blob_store_unavailable', error_stage, error_message) FROM jobs WHERE job_id = $1",
    )
    .bind(group[0])
    .fetch_one(world.pool())
    .await
    .unwrap();
    assert!(html.contains(&format!(r#"data-fingerprint="{fingerprint}""#)));

    let csrf = c.csrf().await;
    let (status, page) = c
        .post("/dead-letters/bulk-retry", &[("csrf", &csrf), ("fingerprint", &fingerprint), ("dry_run", "1")], None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(r#"<strong id="dry-run-count">3</strong>"#), "{page}");
    assert_eq!(world.count("SELECT count(*) FROM jobs WHERE status = 'DLQ'").await, 4, "a dry run changes nothing");

    let (status, body) =
        c.post("/dead-letters/bulk-retry", &[("csrf", &csrf), ("fingerprint", &fingerprint)], None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "a reason is required");
    assert!(body.contains(r#"data-error-code="missing_field""#));
    let (status, _) = c
        .post(
            "/dead-letters/bulk-retry",
            &[("csrf", &csrf), ("fingerprint", &fingerprint), ("reason", "store fixed")],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    // It runs in the background; its page reloads itself until it is done.
    let run = c.location.clone().unwrap();
    assert!(run.starts_with("/dead-letters/runs/"), "{run}");
    let page = test_support::eventually(std::time::Duration::from_secs(30), "the bulk retry to finish", || {
        let (http, url, cookie) = (c.http.clone(), app.url(&run), c.cookie.clone().unwrap());
        async move {
            let page = http.get(url).header(COOKIE, cookie).send().await.ok()?.text().await.ok()?;
            page.contains(r#"data-finished="true""#).then_some(page)
        }
    })
    .await;
    assert!(page.contains(r#"<strong id="bulk-retried">3</strong>"#), "{page}");
    for id in &group {
        assert_eq!(world.status_of(*id).await, "QUEUED");
    }
    assert_eq!(world.status_of(other[0]).await, "DLQ", "the other group is untouched");
    let audit = world.audit_rows().await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["action"], "bulk_retry");
    assert_eq!(audit[0]["reason"], "store fixed");
    assert_eq!(audit[0]["affected"], 3);
    let (_, log, _) = c.get("/audit").await;
    assert!(log.contains("store fixed"));
    world.outbox_drained().await;

    // Deleting the other one, from its row.
    let (status, _) =
        c.post(&format!("/dead-letters/{}/delete", other[0]), &[("csrf", &csrf), ("reason", "withdrawn")], None).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(world.status_of(other[0]).await, "DELETED");
}

#[tokio::test]
async fn a_ticket_is_resolved_with_a_reason_by_a_writer_only() {
    let world = World::new().await;
    let job = DlqJobs::default().insert(world.pool()).await[0];
    let ticket: i64 = sqlx::query_scalar(
        "INSERT INTO tickets (job_id, attempt, rule, severity, message) \
         VALUES ($1, 1, 'possible_duplicate', 'medium', 'same invoice as an earlier one') RETURNING ticket_id",
    )
    .bind(job)
    .fetch_one(world.pool())
    .await
    .unwrap();
    let app = world.app(&[]).await;

    let mut reader = Console::new(&app);
    reader.log_in(READ_TOKEN).await;
    let (_, html, _) = reader.get("/tickets?rule=possible_duplicate").await;
    assert!(html.contains(&format!(r#"data-ticket-id="{ticket}""#)));
    assert!(!html.contains("/resolve"), "no resolve button for a read token");
    let csrf = reader.csrf().await;
    let path = format!("/tickets/{ticket}/resolve");
    assert_eq!(reader.post(&path, &[("csrf", &csrf), ("reason", "x")], None).await.0, StatusCode::FORBIDDEN);

    let mut writer = Console::new(&app);
    writer.log_in(WRITE_TOKEN).await;
    let csrf = writer.csrf().await;
    assert_eq!(writer.post(&path, &[("csrf", &csrf)], None).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        writer.post(&path, &[("csrf", &csrf), ("reason", "checked: not a duplicate")], None).await.0,
        StatusCode::SEE_OTHER
    );
    let (status, resolution): (String, Option<String>) =
        sqlx::query_as("SELECT status, resolution FROM tickets WHERE ticket_id = $1")
            .bind(ticket)
            .fetch_one(world.pool())
            .await
            .unwrap();
    assert_eq!((status.as_str(), resolution.as_deref()), ("RESOLVED", Some("checked: not a duplicate")));
    assert_eq!(writer.post(&path, &[("csrf", &csrf), ("reason", "again")], None).await.0, StatusCode::CONFLICT);
    let (_, open, _) = writer.get("/tickets").await;
    assert!(!open.contains(&format!(r#"data-ticket-id="{ticket}""#)), "the open list no longer has it");
}

#[tokio::test]
async fn the_jobs_checked_on_a_list_page_are_retried_together() {
    let world = World::new().await;
    let ids = DlqJobs { count: 3, ..Default::default() }.insert(world.pool()).await;
    let app = world.app(&[]).await;
    let mut c = Console::new(&app);
    c.log_in(WRITE_TOKEN).await;
    let (_, html, _) = c.get("/dead-letters?view=list").await;
    assert_eq!(html.matches(r#"form="retry-selected""#).count(), 3, "a checkbox per DLQ job");
    let csrf = csrf_of(&html);
    let (a, b) = (ids[0].to_string(), ids[2].to_string());
    let form = [("csrf", csrf.as_str()), ("job_id", a.as_str()), ("job_id", b.as_str()), ("reason", "two of three")];
    let (status, _) = c.post("/dead-letters/retry-selected", &form, None).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        (world.status_of(ids[0]).await, world.status_of(ids[1]).await, world.status_of(ids[2]).await),
        ("QUEUED".to_owned(), "DLQ".to_owned(), "QUEUED".to_owned())
    );
    let audit = world.audit_rows().await;
    assert_eq!(
        (audit.len(), &audit[0]["reason"], &audit[0]["affected"]),
        (1, &serde_json::json!("two of three"), &serde_json::json!(2))
    );
    let (status, _) =
        c.post("/dead-letters/retry-selected", &[("csrf", csrf.as_str()), ("reason", "none")], None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "nothing selected");
    world.outbox_drained().await;
}

#[tokio::test]
async fn a_filter_is_deleted_in_bulk_jobs_and_poison_alike_and_any_replica_shows_the_run() {
    let world = World::new().await;
    let jobs = DlqJobs { count: 3, ..Default::default() }.insert(world.pool()).await;
    let poison = [
        insert_poison(world.pool(), "not_json", b"\xff one", "1 hour").await,
        insert_poison(world.pool(), "not_json", b"\xff two", "2 hours").await,
    ];
    let app = world.app(&["--bulk-batch-size", "2"]).await;
    let mut c = Console::new(&app);
    c.log_in(WRITE_TOKEN).await;
    let (_, html, _) = c.get("/dead-letters?view=list&since=2000-01-01").await;
    assert!(html.contains(r#"action="/dead-letters/bulk-delete""#), "a bulk delete for the filter");
    assert!(html.contains(r#"formaction="/dead-letters/delete-selected""#), "and for the checked jobs");
    let csrf = csrf_of(&html);

    let filter = [("csrf", csrf.as_str()), ("since", "2000-01-01")];
    let (status, page) = c.post("/dead-letters/bulk-delete", &[filter[0], filter[1], ("dry_run", "1")], None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(r#"<strong id="dry-run-count">5</strong>"#), "3 jobs and 2 poison messages: {page}");
    assert_eq!(world.count("SELECT count(*) FROM jobs WHERE status = 'DLQ'").await, 3, "a dry run changes nothing");

    let (status, _) = c.post("/dead-letters/bulk-delete", &[filter[0], filter[1], ("reason", "test data")], None).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let run = c.location.clone().unwrap();
    assert!(run.starts_with("/dead-letters/runs/"), "{run}");
    let finished = |app: &TestApp, cookie: String| {
        let (http, url) = (c.http.clone(), app.url(&run));
        async move {
            let page = http.get(url).header(COOKIE, cookie).send().await.ok()?.text().await.ok()?;
            page.contains(r#"data-finished="true""#).then_some(page)
        }
    };
    let cookie = c.cookie.clone().unwrap();
    let page = test_support::eventually(std::time::Duration::from_secs(30), "the bulk delete to finish", || {
        finished(&app, cookie.clone())
    })
    .await;
    assert!(page.contains(r#"<strong id="bulk-retried">5</strong>"#), "{page}");
    for id in &jobs {
        assert_eq!(world.status_of(*id).await, "DELETED");
    }
    assert_eq!(world.count("SELECT count(*) FROM dlq_poison WHERE status = 'DELETED'").await, poison.len() as i64);
    let audit = world.audit_rows().await;
    assert!(audit.iter().all(|a| a["action"] == "bulk_delete" && a["reason"] == "test data"), "{audit:?}");
    let affected: i64 = audit.iter().map(|a| a["affected"].as_i64().unwrap()).sum();
    assert_eq!((audit.len(), affected), (3, 5), "batches of two: jobs 2 + 1, then both poison messages");

    // Another replica (or this one restarted) shows the same run: its
    // progress is in Postgres, not in the process that ran it.
    let replica = world.app(&[]).await;
    let mut other = Console::new(&replica);
    other.log_in(READ_TOKEN).await;
    let page = finished(&replica, other.cookie.clone().unwrap()).await.expect("the run, finished, on the replica");
    assert!(page.contains(r#"<strong id="bulk-retried">5</strong>"#), "{page}");

    // A run whose process went away mid-way says so instead of spinning.
    let orphan = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO dlq_bulk_runs (run_id, action, actor, reason, selection, matched, done, batches, started_at, updated_at) \
         VALUES ($1, 'bulk_retry', 'ops', 'replay', '{}', 10, 4, 2, now() - interval '1 hour', now() - interval '50 minutes')",
    )
    .bind(orphan)
    .execute(world.pool())
    .await
    .unwrap();
    let (status, page, _) = other.get(&format!("/dead-letters/runs/{orphan}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(r#"id="bulk-stalled""#) && page.contains(r#"data-stalled="true""#), "{page}");
    assert!(!page.contains("data-refresh-seconds"), "a stalled run's page does not reload forever");
}

#[tokio::test]
async fn the_jobs_checked_on_a_list_page_are_deleted_together() {
    let world = World::new().await;
    let ids = DlqJobs { count: 3, ..Default::default() }.insert(world.pool()).await;
    let app = world.app(&[]).await;
    let mut c = Console::new(&app);
    c.log_in(WRITE_TOKEN).await;
    let (_, html, _) = c.get("/dead-letters?view=list").await;
    let csrf = csrf_of(&html);
    let a = ids[1].to_string();
    let form = [("csrf", csrf.as_str()), ("job_id", a.as_str()), ("reason", "withdrawn")];
    let (status, _) = c.post("/dead-letters/delete-selected", &form, None).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        (world.status_of(ids[0]).await, world.status_of(ids[1]).await, world.status_of(ids[2]).await),
        ("DLQ".to_owned(), "DELETED".to_owned(), "DLQ".to_owned())
    );
    assert_eq!(world.audit_rows().await[0]["action"], "bulk_delete");

    let mut reader = Console::new(&app);
    reader.log_in(READ_TOKEN).await;
    let (_, html, _) = reader.get("/dead-letters?view=list").await;
    assert!(!html.contains("delete-selected"), "no delete for a read token");
    let csrf = csrf_of(&html);
    let a = ids[0].to_string();
    let forged = [("csrf", csrf.as_str()), ("job_id", a.as_str()), ("reason", "forged")];
    assert_eq!(reader.post("/dead-letters/delete-selected", &forged, None).await.0, StatusCode::FORBIDDEN);
    assert_eq!(world.status_of(ids[0]).await, "DLQ");
}

#[tokio::test]
async fn logging_out_ends_the_session_on_every_replica_and_login_attempts_are_limited() {
    let world = World::new().await;
    let key = base64::engine::general_purpose::STANDARD.encode([7u8; 48]);
    let app = world.app(&["--console-session-key", &key, "--console-login-attempts-per-minute", "3"]).await;
    let replica = world.app(&["--console-session-key", &key]).await;
    let mut c = Console::new(&app);
    assert_eq!(c.log_in(READ_TOKEN).await, StatusCode::SEE_OTHER);
    let copied = c.cookie.clone();
    let mut elsewhere = Console::new(&replica);
    elsewhere.cookie = copied.clone();
    assert_eq!(elsewhere.get("/jobs").await.0, StatusCode::OK, "the session works on the replica");

    let csrf = c.csrf().await;
    assert_eq!(c.post("/logout", &[("csrf", &csrf)], None).await.0, StatusCode::SEE_OTHER);
    // A copy of the cookie taken before the logout is refused, here and on
    // the replica (the cookie alone would still decrypt and be in date).
    let mut stolen = Console::new(&app);
    stolen.cookie = copied.clone();
    assert_eq!(stolen.get("/jobs").await.0, StatusCode::SEE_OTHER);
    let mut stolen_elsewhere = Console::new(&replica);
    stolen_elsewhere.cookie = copied;
    assert_eq!(stolen_elsewhere.get("/jobs").await.0, StatusCode::SEE_OTHER);
    assert_eq!(world.count("SELECT count(*) FROM console_revoked_sessions").await, 1);

    // Three attempts a minute from one address: the login above was one.
    let mut guesser = Console::new(&app);
    for _ in 0..2 {
        assert_eq!(guesser.log_in("wrong-token").await, StatusCode::UNAUTHORIZED);
    }
    let (_, html, _) = guesser.get("/login").await;
    let csrf = csrf_of(&html);
    let (status, body) = guesser.post("/login", &[("csrf", &csrf), ("token", WRITE_TOKEN)], None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "even a right token waits once the limit is hit");
    assert!(body.contains(r#"data-error-code="rate_limited""#), "{body}");
    // Another replica keeps its own count (the limit is per process).
    let mut other = Console::new(&replica);
    assert_eq!(other.log_in(WRITE_TOKEN).await, StatusCode::SEE_OTHER);
}
