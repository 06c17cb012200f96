use std::time::Duration;

use test_support::{PrivatePostgres, TcpProxy, eventually};

use crate::platform::{API_KEY, Platform, Setup, text_invoice};

/// Every job final, each with exactly one terminal event: nothing lost,
/// nothing done twice.
async fn assert_each_finished_once(platform: &Platform, jobs: &[String]) {
    for job in jobs {
        let status = platform.wait_final(job, Duration::from_secs(180)).await;
        assert_eq!(status["job_status"], "COMPLETED", "{status}");
    }
    let finished: Vec<(String, i64)> = sqlx::query_as(
        "SELECT job_id::text, count(*) FILTER (WHERE to_status = 'COMPLETED') FROM job_events GROUP BY job_id",
    )
    .fetch_all(&platform.db.pool)
    .await
    .unwrap();
    assert_eq!(finished.len(), jobs.len());
    for (job, completions) in finished {
        assert_eq!(completions, 1, "job {job} completed once");
    }
}

/// Sessions of the test's database blocked on a lock (a test holds one).
async fn sessions_waiting_on_a_lock(platform: &Platform) -> i64 {
    platform
        .count("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()")
        .await
}

async fn submit_many(platform: &Platform, prefix: &str, n: usize) -> Vec<String> {
    let mut jobs = Vec::new();
    for i in 0..n {
        jobs.push(
            platform
                .submit_document(
                    &format!("{prefix}-{i}"),
                    "invoice.txt",
                    &text_invoice(&format!("{prefix}-{i}")),
                    "NORMAL",
                )
                .await,
        );
    }
    jobs
}

#[tokio::test]
async fn kill_9_of_a_worker_mid_run_loses_and_duplicates_nothing() {
    let mut platform = Platform::start(Setup { workers: 0, ..Setup::default() }).await;
    let jobs = submit_many(&platform, "kill", 120).await;
    // A short lease, so the dead worker's jobs are rescued quickly.
    let short_lease = [("WORKER_LEASE_SECONDS", "2".to_owned())];
    platform.start_worker(&short_lease).await;

    // Kill it while it holds jobs.
    eventually(Duration::from_secs(60), "jobs in flight", || async {
        (platform.count("SELECT count(*) FROM jobs WHERE status = 'PROCESSING'").await > 0).then_some(())
    })
    .await;
    platform.workers[0].kill9();
    let orphaned = platform.count("SELECT count(*) FROM jobs WHERE status = 'PROCESSING'").await;
    assert!(orphaned > 0, "the worker died holding jobs");

    platform.start_worker(&short_lease).await;
    assert_each_finished_once(&platform, &jobs).await;
    let recovered =
        platform.count("SELECT count(*) FROM job_events WHERE (detail->>'recovered_from_crash')::boolean").await;
    // At least those; on a loaded machine a late heartbeat can let a live
    // job's lease lapse too, which the claim also handles as a recovery.
    assert!(recovered >= orphaned, "each job the killed worker held was claimed again as a crash recovery");
    let results = platform.count("SELECT count(*) FROM document_results").await;
    assert_eq!(results, jobs.len() as i64, "one result row per job");
    let stage_rows = platform.count("SELECT count(*) FROM (SELECT DISTINCT job_id FROM job_stages WHERE status = 'succeeded' AND stage = 'storage') s").await;
    assert_eq!(stage_rows, jobs.len() as i64);
}

#[tokio::test]
async fn a_broker_connection_cut_mid_run_is_survived() {
    let proxy = TcpProxy::start("127.0.0.1:5672".parse().unwrap()).await;
    let mut platform = Platform::start(Setup { workers: 0, ..Setup::default() }).await;
    let jobs = submit_many(&platform, "cut", 80).await;
    platform.start_worker(&[("AMQP_URL", format!("amqp://guest:guest@{}/%2f", proxy.addr()))]).await;

    eventually(Duration::from_secs(60), "some jobs done", || async {
        (platform.count("SELECT count(*) FROM jobs WHERE status = 'COMPLETED'").await >= 5).then_some(())
    })
    .await;
    proxy.cut();
    let port = platform.workers[0].port;
    eventually(Duration::from_secs(30), "the worker to notice", || async {
        let r = platform.http.get(format!("http://127.0.0.1:{port}/readyz")).send().await.ok()?;
        (r.status() == 503).then_some(())
    })
    .await;
    proxy.restore();
    assert_each_finished_once(&platform, &jobs).await;
    let consuming = format!("consuming {}", platform.broker.topology.job_queue(job_model::JobPriority::High));
    assert!(platform.workers[0].log_text().matches(&consuming).count() >= 2, "it reconnected");
}

#[tokio::test]
async fn a_database_outage_mid_run_loses_and_duplicates_nothing() {
    let mut platform = Platform::start(Setup { workers: 0, ..Setup::default() }).await;
    let jobs = submit_many(&platform, "pg-cut", 60).await;
    let proxy = TcpProxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let via_proxy = platform.db.url_via(proxy.addr());
    platform.start_worker(&[("DATABASE_URL", via_proxy), ("DATABASE_ACQUIRE_TIMEOUT_MS", "500".into())]).await;

    eventually(Duration::from_secs(60), "some jobs done", || async {
        (platform.count("SELECT count(*) FROM jobs WHERE status = 'COMPLETED'").await >= 5).then_some(())
    })
    .await;
    proxy.cut();
    let port = platform.workers[0].port;
    eventually(Duration::from_secs(30), "the worker to report the database gone", || async {
        let r = platform.http.get(format!("http://127.0.0.1:{port}/readyz")).send().await.ok()?;
        (r.status() == 503).then_some(())
    })
    .await;
    proxy.restore();
    assert_each_finished_once(&platform, &jobs).await;
    let results = platform.count("SELECT count(*) FROM document_results").await;
    assert_eq!(results, jobs.len() as i64, "one result row per job");
}

/// A claim commits asynchronously (job-store `lifecycle::claim`), so a
/// Postgres crash can lose it while its job runs. Here four claims are
/// sure to be lost: the WAL writer is stopped, so their commits stay in
/// shared memory, and every outcome write (which would flush them) waits
/// on a lock the test holds. Then the server crashes and recovers. Each
/// of the four outcomes finds its job back in QUEUED and writes nothing;
/// the worker must give those deliveries back, not ack them, or the four
/// jobs are stranded in QUEUED with no message to run them.
#[tokio::test]
async fn a_database_crash_that_loses_claims_strands_no_job() {
    // Nothing but a synchronous commit may write the WAL while the WAL
    // writer is stopped (see `PrivatePostgres::stop_wal_writer`).
    let mut server = PrivatePostgres::start_plain(&["autovacuum = off", "bgwriter_lru_maxpages = 0"]).await;
    let mut platform =
        Platform::start(Setup { workers: 0, database_server: Some(server.admin_url()), ..Setup::default() }).await;
    let jobs = submit_many(&platform, "pg-crash", 12).await;
    eventually(Duration::from_secs(30), "the job messages published", || async {
        (platform.count("SELECT count(*) FROM outbox").await == 0).then_some(())
    })
    .await;
    // The relay's deletes of the published rows commit asynchronously too:
    // made durable here, so that the crash cannot bring the messages back
    // (a second copy of each job's message would run the jobs whatever the
    // worker does with its first deliveries).
    sqlx::query("CHECKPOINT").execute(&platform.db.pool).await.unwrap();

    let mut hold = platform.db.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE job_attempts IN SHARE MODE").execute(&mut *hold).await.unwrap();
    server.stop_wal_writer().await;
    platform.start_worker(&[("WORKER_COUNT", "4".to_owned())]).await;
    eventually(Duration::from_secs(60), "four claimed jobs whose outcomes wait on the lock", || async {
        let claimed = platform.count("SELECT count(*) FROM jobs WHERE status = 'PROCESSING'").await;
        let waiting = sessions_waiting_on_a_lock(&platform).await;
        (claimed == 4 && waiting >= 1).then_some(())
    })
    .await;

    server.crash().await;
    drop(hold);
    // ingest-api answers 503 until it has replaced its broken connections.
    eventually(Duration::from_secs(30), "ingest-api to reach the recovered database", || async {
        let url = platform.api(&format!("/api/job/{}/status", jobs[0]));
        let response = platform.http.get(url).bearer_auth(API_KEY).send().await.ok()?;
        (response.status() == 200).then_some(())
    })
    .await;
    assert_each_finished_once(&platform, &jobs).await;
    let results = platform.count("SELECT count(*) FROM document_results").await;
    assert_eq!(results, jobs.len() as i64, "one result row per job");
    eventually(Duration::from_secs(30), "the four lost claims found at their outcomes", || async {
        (platform.workers[0].log_text().matches("lease was lost at its outcome").count() >= 4).then_some(())
    })
    .await;
}

/// A heartbeat that finds the job's lease gone stops the attempt and gives
/// the delivery back (`Executor::lease_lost`), so that its redelivery runs
/// the job. Here the lease passes to another (dead) worker while the job
/// waits mid-pipeline on a lock the test holds, and the reaper, which would
/// otherwise rescue a job with an expired lease, is too slow to help: were
/// the delivery acked, the job would stay in PROCESSING with no message.
#[tokio::test]
async fn a_lease_lost_mid_attempt_gives_the_delivery_back() {
    let mut platform = Platform::start(Setup { workers: 0, ..Setup::default() }).await;
    let job = platform.submit_document("lease-mid", "invoice.txt", &text_invoice("L1"), "NORMAL").await;
    // The criteria stage's duplicate lookup reads document_results: the
    // attempt waits there while its heartbeat goes on.
    let mut hold = platform.db.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE document_results IN ACCESS EXCLUSIVE MODE").execute(&mut *hold).await.unwrap();
    platform
        .start_worker(&[
            ("WORKER_LEASE_SECONDS", "1.5".to_owned()),
            ("WORKER_REAPER_INTERVAL_SECONDS", "3600".to_owned()),
        ])
        .await;
    eventually(Duration::from_secs(60), "the attempt waiting mid-pipeline on the lock", || async {
        let running = platform.count("SELECT count(*) FROM jobs WHERE status = 'PROCESSING'").await;
        let waiting = sessions_waiting_on_a_lock(&platform).await;
        (running == 1 && waiting >= 1).then_some(())
    })
    .await;

    sqlx::query(
        "UPDATE jobs SET lease_owner = 'another-worker', lease_expires_at = now() - interval '1 second' \
         WHERE job_id = $1::uuid",
    )
    .bind(&job)
    .execute(&platform.db.pool)
    .await
    .unwrap();
    eventually(Duration::from_secs(30), "the heartbeat to find the lease gone", || async {
        platform.workers[0].log_text().contains("lease was lost mid-attempt").then_some(())
    })
    .await;
    hold.rollback().await.unwrap();

    let status = platform.wait_final(&job, Duration::from_secs(60)).await;
    assert_eq!(status["job_status"], "COMPLETED", "{status}");
    let completions = platform.count("SELECT count(*) FROM job_events WHERE to_status = 'COMPLETED'").await;
    assert_eq!(completions, 1, "completed once");
}

#[tokio::test]
async fn a_job_that_keeps_killing_workers_is_quarantined() {
    let platform = Platform::start(Setup::default()).await;
    let job = platform.submit_document("poison-crash", "invoice.txt", &text_invoice("P1"), "NORMAL").await;
    platform.wait_final(&job, Duration::from_secs(60)).await;
    // Make the row look like a job whose worker has died three times and
    // whose lease just ran out again: the reaper rescues it, and the next
    // claim must park it instead of running it a fourth time.
    sqlx::query(
        "UPDATE jobs SET status = 'PROCESSING', crash_count = 2, lease_owner = 'dead-worker', \
         lease_expires_at = now() - interval '1 second', completed_at = NULL WHERE job_id = $1::uuid",
    )
    .bind(&job)
    .execute(&platform.db.pool)
    .await
    .unwrap();

    let parked = eventually(Duration::from_secs(30), "the job to be quarantined", || async {
        let s = platform.status(&job).await;
        (s["job_status"] == "DLQ").then_some(s)
    })
    .await;
    assert!(parked["error_message"].as_str().unwrap().contains("quarantined"), "{parked}");
    let reason: String =
        sqlx::query_scalar("SELECT detail->>'reason' FROM job_events WHERE job_id = $1::uuid AND to_status = 'DLQ'")
            .bind(&job)
            .fetch_one(&platform.db.pool)
            .await
            .unwrap();
    assert_eq!(reason, "poison_crashes");
    let completions = platform.count("SELECT count(*) FROM job_events WHERE to_status = 'COMPLETED'").await;
    assert_eq!(completions, 1, "it did not run again");
}
