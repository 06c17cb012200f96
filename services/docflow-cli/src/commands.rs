//! What each command does: one or a few API calls, then a table or JSON.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use clap::CommandFactory;
use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use crate::cli::{
    Cli, Command, DlqCommand, FilterArgs, JobsArgs, MetricsCommand, RetryArgs, SubmitArgs, TicketsCommand,
};
use crate::client::Service;
use crate::exit::{Coded, Exit, usage};
use crate::render::{cell, fields, table};

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Completions { shell } = cli.command {
        clap_complete::generate(shell, &mut Cli::command(), "docflow", &mut std::io::stdout());
        return Ok(());
    }
    let http = crate::client::http_client(Duration::from_secs(cli.timeout_seconds), cli.ca_file.as_deref())?;
    let json_out = cli.json;
    match cli.command {
        Command::Submit(args) => {
            let api = Service::new("ingest-api", &cli.api_url, cli.api_key, http);
            submit(&api, args, json_out).await
        }
        Command::Jobs(args) => {
            let api = Service::new("ingest-api", &cli.api_url, cli.api_key, http);
            jobs(&api, args, json_out).await
        }
        Command::Status { job_id } => {
            let api = Service::new("ingest-api", &cli.api_url, cli.api_key, http);
            status(&api, &job_id, json_out).await
        }
        Command::Result { job_id } => {
            let api = Service::new("ingest-api", &cli.api_url, cli.api_key, http);
            result(&api, &job_id, json_out).await
        }
        Command::Tickets(command) => {
            let api = Service::new("ingest-api", &cli.api_url, cli.api_key, http);
            tickets(&api, command, json_out).await
        }
        Command::Dlq(command) => {
            let admin = Service::new("dlq-admin", &cli.admin_url, cli.admin_token, http);
            dlq(&admin, command, json_out).await
        }
        Command::Metrics(command) => {
            let tracker = Service::new("metrics-tracker", &cli.metrics_url, cli.admin_token, http);
            metrics(&tracker, command, json_out).await
        }
        Command::Completions { .. } => unreachable!("handled above"),
    }
}

fn print_json(v: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn key_value(raw: &str, what: &str) -> anyhow::Result<(String, String)> {
    match raw.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(usage(format!("{what} must be KEY=VALUE, got {raw:?}"))),
    }
}

async fn submit(api: &Service, args: SubmitArgs, json_out: bool) -> anyhow::Result<()> {
    let bytes = std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let filename = args.file.file_name().and_then(|n| n.to_str()).context("the file needs a UTF-8 name")?.to_owned();
    let document_id = match args.document_id {
        Some(d) => d,
        None => args.file.file_stem().and_then(|n| n.to_str()).unwrap_or(&filename).to_owned(),
    };
    let mut tags = BTreeMap::new();
    for t in &args.tags {
        let (k, v) = key_value(t, "--tag")?;
        tags.insert(k, v);
    }
    let mut form = Form::new()
        .text("document_id", document_id)
        .text("priority", args.priority)
        .part("file", Part::bytes(bytes).file_name(filename));
    if !tags.is_empty() {
        form = form.text("tags", serde_json::to_string(&tags)?);
    }
    let mut request = api.request(Method::POST, "/api/documents").multipart(form);
    if let Some(key) = &args.idempotency_key {
        request = request.header("Idempotency-Key", key);
    }
    let body = api.send(request).await?;
    if args.wait {
        let job_id = body["job_id"].as_str().context("ingest-api's answer has no job_id")?.to_owned();
        if !json_out {
            eprintln!("submitted {} as job {job_id}", cell(&body["document_id"]));
        }
        let wait = Wait {
            timeout: Duration::from_secs(args.wait_timeout_seconds),
            interval: Duration::from_millis(args.poll_interval_ms.max(50)),
        };
        return wait_for_job(api, &job_id, wait, json_out).await;
    }
    if json_out {
        return print_json(&body);
    }
    println!(
        "{}",
        fields(&[
            ("job_id", &body["job_id"]),
            ("document_id", &body["document_id"]),
            ("priority", &body["priority"]),
            ("status", &body["status"])
        ])
    );
    println!("follow it with: docflow status {}", cell(&body["job_id"]));
    Ok(())
}

/// The pipeline's stages in order, to show progress as "3/8".
use job_model::STAGES;

struct Wait {
    timeout: Duration,
    interval: Duration,
}

/// One line of progress: status, attempt, and the current attempt's stages.
fn progress_line(status: &Value) -> String {
    let job_status = cell(&status["job_status"]);
    let attempt = status["attempt"].as_i64().unwrap_or(0);
    let stages: Vec<&Value> =
        status["stages"].as_array().into_iter().flatten().filter(|s| s["attempt"].as_i64() == Some(attempt)).collect();
    let done =
        stages.iter().filter(|s| s["status"].as_str().is_some_and(|x| x.eq_ignore_ascii_case("succeeded"))).count();
    let mut line = job_status.clone();
    if attempt > 0 {
        line.push_str(&format!(" attempt {attempt}"));
    }
    if let Some(last) = stages.last() {
        line.push_str(&format!(
            ": {done}/{} stages done, last {} {}",
            STAGES.len(),
            cell(&last["stage"]),
            cell(&last["status"])
        ));
    }
    if matches!(job_status.as_str(), "RETRYING" | "FAILED" | "DLQ")
        && let Some(e) = status["error_message"].as_str()
    {
        line.push_str(&format!(" ({})", crate::render::safe(e)));
    }
    line
}

/// Polls the job's status until it is final, printing a progress line on
/// stderr whenever it changes; the final status is printed as `status`
/// prints it (or as JSON). COMPLETED is success; FAILED, DLQ and DELETED are
/// [`Exit::JobFailed`]; still going after the timeout is [`Exit::WaitTimeout`].
async fn wait_for_job(api: &Service, job_id: &str, wait: Wait, json_out: bool) -> anyhow::Result<()> {
    let path = format!("/api/job/{}/status", urlencode(job_id));
    let deadline = tokio::time::Instant::now() + wait.timeout;
    let mut last_line = String::new();
    let status = loop {
        let status = api.get(&path, &[]).await?;
        let line = progress_line(&status);
        if line != last_line && !json_out {
            eprintln!("{line}");
            last_line = line;
        }
        if matches!(status["job_status"].as_str(), Some("COMPLETED" | "FAILED" | "DLQ" | "DELETED")) {
            break status;
        }
        if tokio::time::Instant::now() + wait.interval > deadline {
            if json_out {
                print_json(&status)?;
            }
            return Err(Coded {
                exit: Exit::WaitTimeout,
                message: format!(
                    "job {job_id} is still {} after {} s; it goes on: docflow status {job_id}",
                    cell(&status["job_status"]),
                    wait.timeout.as_secs()
                ),
            }
            .into());
        }
        tokio::time::sleep(wait.interval).await;
    };
    if json_out {
        print_json(&status)?;
    } else {
        print_status(&status);
    }
    match status["job_status"].as_str() {
        Some("COMPLETED") => Ok(()),
        _ => Err(Coded {
            exit: Exit::JobFailed,
            message: format!(
                "job {job_id} ended {}{}",
                cell(&status["job_status"]),
                status["error_message"].as_str().map(|e| format!(": {e}")).unwrap_or_default()
            ),
        }
        .into()),
    }
}

async fn jobs(api: &Service, args: JobsArgs, json_out: bool) -> anyhow::Result<()> {
    let mut filter: Vec<(&str, String)> = vec![("limit", args.limit.to_string())];
    for (k, v) in [("status", args.status), ("priority", args.priority), ("document_id", args.document_id)] {
        if let Some(v) = v {
            filter.push((k, v));
        }
    }
    let mut jobs = Vec::new();
    let mut cursor = args.cursor;
    let next = loop {
        let mut query = filter.clone();
        if let Some(c) = &cursor {
            query.push(("cursor", c.clone()));
        }
        let body = api.get("/api/jobs", &query).await?;
        jobs.extend(body["jobs"].as_array().cloned().unwrap_or_default());
        match body["next_cursor"].as_str().map(str::to_owned) {
            Some(c) if args.all => cursor = Some(c),
            other => break other,
        }
    };
    let body = json!({"jobs": jobs, "next_cursor": next});
    if json_out {
        return print_json(&body);
    }
    let rows: Vec<Vec<String>> = jobs
        .iter()
        .map(|j| {
            vec![
                cell(&j["job_id"]),
                cell(&j["document_id"]),
                cell(&j["job_status"]),
                cell(&j["priority"]),
                cell(&j["attempt"]),
                cell(&j["created_at"]),
                cell(&j["error_message"]),
            ]
        })
        .collect();
    println!("{}", table(&["JOB ID", "DOCUMENT", "STATUS", "PRIORITY", "ATTEMPT", "CREATED", "ERROR"], &rows));
    if let Some(next) = next {
        println!("more: --cursor {next}  (or --all)");
    }
    Ok(())
}

fn ms(v: &Value) -> String {
    v.as_f64().map(|d| format!("{d:.1}")).unwrap_or_else(|| "-".into())
}

async fn metrics(tracker: &Service, command: MetricsCommand, json_out: bool) -> anyhow::Result<()> {
    let MetricsCommand::Report { hours } = command;
    let r = tracker.get("/api/metrics/report", &[("hours", hours.to_string())]).await?;
    if json_out {
        return print_json(&r);
    }
    println!(
        "{}",
        fields(&[
            ("window", &json!(format!("{} h from {}", cell(&r["period_hours"]), cell(&r["window_start"])))),
            ("executions", &r["total_executions"]),
            ("successful", &r["successful_executions"]),
            ("failed", &r["failed_executions"]),
            ("retrying", &r["retrying_executions"]),
            ("dlq", &r["dlq_executions"]),
            ("success_rate_pct", &r["success_rate"]),
            ("p50_ms", &json!(ms(&r["p50_total_duration_ms"]))),
            ("p95_ms", &json!(ms(&r["p95_total_duration_ms"]))),
            ("p99_ms", &json!(ms(&r["p99_total_duration_ms"]))),
            ("per_hour", &r["throughput_documents_per_hour"]),
            ("sla_compliance_pct", &r["sla"]["total_compliance_pct"]),
            ("sla_success_met", &r["sla"]["success_rate_met"]),
        ])
    );
    let stages: Vec<Vec<String>> = r["stage_breakdown"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            vec![
                cell(&s["stage"]),
                cell(&s["count"]),
                cell(&s["failures"]),
                ms(&s["p50_ms"]),
                ms(&s["p95_ms"]),
                ms(&s["max_ms"]),
                s["share_of_total_time_pct"].as_f64().map(|p| format!("{p:.1}")).unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    if !stages.is_empty() {
        println!(
            "
{}",
            table(&["STAGE", "COUNT", "FAILURES", "P50 MS", "P95 MS", "MAX MS", "% OF TIME"], &stages)
        );
    }
    let waits: Vec<Vec<String>> = r["queue_wait"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|q| {
            vec![
                cell(&q["priority"]),
                cell(&q["executions"]),
                ms(&q["p50_ms"]),
                ms(&q["p95_ms"]),
                cell(&q["queued_now"]),
            ]
        })
        .collect();
    if !waits.is_empty() {
        println!(
            "
{}",
            table(&["PRIORITY", "STARTED", "WAIT P50 MS", "WAIT P95 MS", "QUEUED NOW"], &waits)
        );
    }
    Ok(())
}

fn stages_table(stages: &Value) -> String {
    let rows: Vec<Vec<String>> = stages
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            vec![
                cell(&s["attempt"]),
                cell(&s["stage"]),
                cell(&s["status"]),
                s["duration_ms"].as_f64().map(|d| format!("{d:.1}")).unwrap_or_else(|| "-".into()),
                cell(&s["error"]),
            ]
        })
        .collect();
    table(&["ATTEMPT", "STAGE", "STATUS", "MS", "ERROR"], &rows)
}

async fn status(api: &Service, job_id: &str, json_out: bool) -> anyhow::Result<()> {
    let body = api.get(&format!("/api/job/{}/status", urlencode(job_id)), &[]).await?;
    if json_out {
        return print_json(&body);
    }
    print_status(&body);
    Ok(())
}

fn print_status(b: &Value) {
    println!(
        "{}",
        fields(&[
            ("job_id", &b["job_id"]),
            ("document_id", &b["document_id"]),
            ("filename", &b["filename"]),
            ("status", &b["job_status"]),
            ("priority", &b["priority"]),
            ("attempt", &b["attempt"]),
            ("retry_count", &b["retry_count"]),
            ("created_at", &b["created_at"]),
            ("completed_at", &b["completed_at"]),
            ("error_stage", &b["error_stage"]),
            ("error", &b["error_message"]),
            ("trace_id", &b["trace_id"]),
        ])
    );
    if b["stages"].as_array().is_some_and(|s| !s.is_empty()) {
        println!("\n{}", stages_table(&b["stages"]));
    }
}

async fn result(api: &Service, job_id: &str, json_out: bool) -> anyhow::Result<()> {
    let body = api.get(&format!("/api/job/{}/result", urlencode(job_id)), &[]).await?;
    if json_out {
        return print_json(&body);
    }
    let r = &body["result"];
    println!(
        "{}",
        fields(&[
            ("job_id", &body["job_id"]),
            ("document_type", &r["classification"]["document_type"]),
            ("confidence", &r["classification"]["confidence"]),
            ("pages", &r["page_count"]),
            ("needs_ocr", &r["text"]["needs_ocr"]),
        ])
    );
    let rows: Vec<Vec<String>> = r["fields"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, f)| f.get("value").is_some())
        .map(|(name, f)| vec![name.clone(), cell(&f["value"]), cell(&f["confidence"]), cell(&f["source"])])
        .collect();
    println!("\n{}", table(&["field", "value", "confidence", "source"], &rows));
    let findings: Vec<Vec<String>> = r["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| vec![cell(&f["rule"]), cell(&f["severity"]), cell(&f["message"])])
        .collect();
    if !findings.is_empty() {
        println!("\n{}", table(&["finding", "severity", "message"], &findings));
    }
    if body["tickets"].as_array().is_some_and(|t| !t.is_empty()) {
        println!("\n{}", ticket_table(&body["tickets"]));
    }
    Ok(())
}

fn ticket_table(tickets: &Value) -> String {
    let rows: Vec<Vec<String>> = tickets
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            vec![
                cell(&t["ticket_id"]),
                cell(&t["job_id"]),
                cell(&t["rule"]),
                cell(&t["severity"]),
                cell(&t["ticket_status"]),
                cell(&t["message"]),
            ]
        })
        .collect();
    table(&["ticket", "job", "rule", "severity", "status", "message"], &rows)
}

async fn tickets(api: &Service, command: TicketsCommand, json_out: bool) -> anyhow::Result<()> {
    match command {
        TicketsCommand::List { status, rule, limit, cursor } => {
            let mut query = vec![("status", status), ("limit", limit.to_string())];
            query.extend(rule.map(|r| ("rule", r)));
            query.extend(cursor.map(|c| ("cursor", c)));
            let body = api.get("/api/tickets", &query).await?;
            if json_out {
                return print_json(&body);
            }
            println!("{}", ticket_table(&body["tickets"]));
            if !body["next_cursor"].is_null() {
                println!("more: --cursor {}", cell(&body["next_cursor"]));
            }
            Ok(())
        }
        TicketsCommand::Resolve { ticket_id, reason } => {
            let path = format!("/api/tickets/{ticket_id}/resolve");
            let body = api.json(Method::POST, &path, &json!({"reason": reason})).await?;
            if json_out {
                return print_json(&body);
            }
            println!(
                "ticket {} resolved by {}",
                cell(&body["ticket"]["ticket_id"]),
                cell(&body["ticket"]["resolved_by"])
            );
            Ok(())
        }
    }
}

/// Path segments come from the user: keep them one segment.
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn item_rows(items: &Value) -> Vec<Vec<String>> {
    items
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            vec![
                cell(&i["id"]),
                cell(&i["kind"]),
                cell(&i["priority"]),
                cell(&i["error_stage"]),
                cell(&i["retry_count"]),
                cell(&i["dlq_at"]),
                cell(&i["dlq_reason"]),
                cell(&i["error_message"]),
            ]
        })
        .collect()
}

const ITEM_HEADERS: [&str; 8] = ["ID", "KIND", "PRIORITY", "STAGE", "RETRIES", "DLQ AT", "REASON", "ERROR"];

async fn dlq(admin: &Service, command: DlqCommand, json_out: bool) -> anyhow::Result<()> {
    match command {
        DlqCommand::List { filter, limit, cursor, all } => list(admin, &filter, limit, cursor, all, json_out).await,
        DlqCommand::Groups { filter, limit } => {
            let mut query = filter.pairs();
            query.push(("limit", limit.to_string()));
            let body = admin.get("/api/dlq/groups", &query).await?;
            if json_out {
                return print_json(&body);
            }
            let rows: Vec<Vec<String>> = body["groups"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|g| {
                    vec![
                        cell(&g["count"]),
                        cell(&g["fingerprint"]),
                        cell(&g["title"]),
                        cell(&g["first_seen"]),
                        cell(&g["last_seen"]),
                        cell(&g["message_template"]),
                    ]
                })
                .collect();
            println!("{}", table(&["COUNT", "FINGERPRINT", "GROUP", "FIRST SEEN", "LAST SEEN", "MESSAGE"], &rows));
            println!(
                "{} group(s); retry one with: docflow dlq retry --fingerprint FINGERPRINT --reason …",
                cell(&body["total_groups"])
            );
            Ok(())
        }
        DlqCommand::Show { id } => show(admin, &id, json_out).await,
        DlqCommand::Retry(args) => retry(admin, args, json_out).await,
        DlqCommand::Delete { id, reason } => {
            let body =
                admin.json(Method::DELETE, &format!("/api/dlq/{}", urlencode(&id)), &json!({"reason": reason})).await?;
            if json_out {
                return print_json(&body);
            }
            println!(
                "deleted {} {} ({} -> {}), audit #{}",
                cell(&body["kind"]),
                cell(&body["id"]),
                cell(&body["from"]),
                cell(&body["to"]),
                cell(&body["audit_id"])
            );
            Ok(())
        }
        DlqCommand::Purge { older_than_days, reason, dry_run } => {
            let mut req = json!({"reason": reason, "dry_run": dry_run});
            if let Some(days) = older_than_days {
                req["older_than_days"] = json!(days);
            }
            let body = admin.json(Method::POST, "/api/dlq/purge", &req).await?;
            if json_out {
                return print_json(&body);
            }
            let verb = if dry_run { "would delete" } else { "deleted" };
            println!(
                "{verb} {} job(s) and {} poison message(s) that entered the DLQ before {} (older than {} days)",
                cell(&body["deleted_jobs"]),
                cell(&body["deleted_poison"]),
                cell(&body["cutoff"]),
                cell(&body["older_than_days"])
            );
            Ok(())
        }
        DlqCommand::Audit { action, actor, target, limit, cursor } => {
            let mut query: Vec<(&str, String)> = vec![("limit", limit.to_string())];
            for (k, v) in [("action", action), ("actor", actor), ("target", target), ("cursor", cursor)] {
                if let Some(v) = v {
                    query.push((k, v));
                }
            }
            let body = admin.get("/api/audit", &query).await?;
            if json_out {
                return print_json(&body);
            }
            let rows: Vec<Vec<String>> = body["entries"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| {
                    vec![
                        cell(&e["id"]),
                        cell(&e["at"]),
                        cell(&e["actor"]),
                        cell(&e["action"]),
                        cell(&e["affected"]),
                        cell(&e["target"]),
                        cell(&e["reason"]),
                    ]
                })
                .collect();
            println!("{}", table(&["ID", "AT", "ACTOR", "ACTION", "CHANGED", "TARGET", "REASON"], &rows));
            if let Some(next) = body["next_cursor"].as_str() {
                println!("more: --cursor {next}");
            }
            Ok(())
        }
    }
}

async fn list(
    admin: &Service,
    filter: &FilterArgs,
    limit: u32,
    cursor: Option<String>,
    all: bool,
    json_out: bool,
) -> anyhow::Result<()> {
    let mut items = Vec::new();
    let mut cursor = cursor;
    let next = loop {
        let mut query = filter.pairs();
        query.push(("limit", limit.to_string()));
        if let Some(c) = &cursor {
            query.push(("cursor", c.clone()));
        }
        let body = admin.get("/api/dlq", &query).await?;
        items.extend(body["items"].as_array().cloned().unwrap_or_default());
        let next = body["next_cursor"].as_str().map(str::to_owned);
        match next {
            Some(c) if all => cursor = Some(c),
            other => break other,
        }
    };
    let body = json!({"items": items, "next_cursor": next});
    if json_out {
        return print_json(&body);
    }
    println!("{}", table(&ITEM_HEADERS, &item_rows(&body["items"])));
    if let Some(next) = next {
        println!("more: --cursor {next}  (or --all)");
    }
    Ok(())
}

async fn show(admin: &Service, id: &str, json_out: bool) -> anyhow::Result<()> {
    let body = admin.get(&format!("/api/dlq/{}", urlencode(id)), &[]).await?;
    if json_out {
        return print_json(&body);
    }
    let i = &body["item"];
    println!(
        "{}",
        fields(&[
            ("id", &i["id"]),
            ("kind", &i["kind"]),
            ("status", &i["status"]),
            ("job_id", &i["job_id"]),
            ("document_id", &i["document_id"]),
            ("filename", &i["filename"]),
            ("priority", &i["priority"]),
            ("attempt", &i["attempt"]),
            ("retry_count", &i["retry_count"]),
            ("dlq_at", &i["dlq_at"]),
            ("dlq_reason", &i["dlq_reason"]),
            ("error_kind", &i["error_kind"]),
            ("error_stage", &i["error_stage"]),
            ("error", &i["error_message"]),
            ("fingerprint", &i["fingerprint"]),
            ("trace_id", &body["job"]["trace_id"]),
        ])
    );
    if let Some(events) = body["events"].as_array().filter(|e| !e.is_empty()) {
        let rows: Vec<Vec<String>> = events
            .iter()
            .map(|e| {
                vec![
                    cell(&e["at"]),
                    cell(&e["from_status"]),
                    cell(&e["to_status"]),
                    cell(&e["actor"]),
                    cell(&e["detail"]),
                ]
            })
            .collect();
        println!("\nhistory:\n{}", table(&["AT", "FROM", "TO", "ACTOR", "DETAIL"], &rows));
    }
    if body["stages"].as_array().is_some_and(|s| !s.is_empty()) {
        println!("\nstages:\n{}", stages_table(&body["stages"]));
    }
    let p = &body["poison"];
    if p.is_object() {
        println!(
            "\npoison message:\n{}",
            fields(&[
                ("reason", &p["reason"]),
                ("source_queue", &p["source_queue"]),
                ("content_type", &p["content_type"]),
                ("payload_size", &p["payload_size"]),
                ("headers", &p["headers"]),
            ])
        );
        println!("payload (escaped):\n{}", cell(&p["payload"]));
    }
    Ok(())
}

async fn retry(admin: &Service, args: RetryArgs, json_out: bool) -> anyhow::Result<()> {
    if args.ids.len() == 1 && !args.dry_run && args.limit.is_none() {
        let id = &args.ids[0];
        let body = admin
            .json(Method::POST, &format!("/api/dlq/{}/retry", urlencode(id)), &json!({"reason": args.reason}))
            .await?;
        if json_out {
            return print_json(&body);
        }
        println!(
            "retried {} ({} -> {}), next attempt {}, audit #{}",
            cell(&body["id"]),
            cell(&body["from"]),
            cell(&body["to"]),
            cell(&body["next_attempt"]),
            cell(&body["audit_id"])
        );
        return Ok(());
    }
    let mut req = json!({"reason": args.reason, "dry_run": args.dry_run});
    if let Some(limit) = args.limit {
        req["limit"] = json!(limit);
    }
    if !args.ids.is_empty() {
        req["job_ids"] = json!(args.ids);
    } else if args.all || !args.filter.is_empty() || args.fingerprint.is_some() {
        let mut filter = serde_json::Map::new();
        for f in &args.filter {
            let (k, v) = key_value(f, "--filter")?;
            filter.insert(k, Value::String(v));
        }
        if args.all || !filter.is_empty() {
            req["filter"] = Value::Object(filter);
        }
        if let Some(fp) = &args.fingerprint {
            req["fingerprint"] = json!(fp);
        }
    } else {
        return Err(usage("say what to retry: a job id, several ids, --fingerprint, --filter KEY=VALUE, or --all"));
    }
    let body = admin.json(Method::POST, "/api/dlq/retry", &req).await?;
    if json_out {
        return print_json(&body);
    }
    if args.dry_run {
        let sample: Vec<String> = body["sample_job_ids"].as_array().into_iter().flatten().map(cell).collect();
        println!(
            "would retry {} job(s); the first: {}",
            cell(&body["matched"]),
            if sample.is_empty() { "-".into() } else { sample.join(", ") }
        );
        return Ok(());
    }
    println!(
        "retried {} job(s) in {} batch(es), request {}",
        cell(&body["retried"]),
        cell(&body["batches"]),
        cell(&body["request_id"])
    );
    if body["limit_reached"] == true {
        println!("stopped at the limit: more may match; run it again to continue");
    }
    for n in body["not_retried"].as_array().into_iter().flatten() {
        let status =
            if n["status"].is_null() { "no such job".to_owned() } else { format!("is {}", cell(&n["status"])) };
        println!("not retried: {} ({status})", cell(&n["job_id"]));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_counts_the_current_attempts_stages() {
        let status = json!({
            "job_status": "PROCESSING", "attempt": 2,
            "stages": [
                {"attempt": 1, "stage": "upload", "status": "failed"},
                {"attempt": 2, "stage": "upload", "status": "SUCCEEDED"},
                {"attempt": 2, "stage": "validation", "status": "SUCCEEDED"},
            ]
        });
        assert_eq!(progress_line(&status), "PROCESSING attempt 2: 2/8 stages done, last validation SUCCEEDED");
        assert_eq!(progress_line(&json!({"job_status": "QUEUED", "attempt": 0})), "QUEUED");
    }
}
