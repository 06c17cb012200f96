//! Failures through `Pipeline::run`: they are reported, classified
//! (permanent or retryable) and never escape as a panic or an early return.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pipeline::stages::names;
use pipeline::{
    Pipeline, PipelineConfig, PipelineRun, Stage, StageContext, StageError, StageReport, StageStatus, kind,
};

use crate::support::{UnreachableStore, World, standard};

/// Checks a run failed at `index` with `kind`, and that the stages after it
/// were skipped.
fn assert_failed_at(run: &PipelineRun, index: usize, expected_kind: &str, retryable: bool) -> StageError {
    let (at, err) = run.result.clone().expect_err("the run should fail");
    assert_eq!((at, err.kind(), err.is_retryable()), (index, expected_kind, retryable), "{err}");
    let statuses: Vec<_> = run.outcomes.iter().map(|o| o.status).collect();
    for (i, status) in statuses.iter().enumerate() {
        let expected = match i.cmp(&index) {
            std::cmp::Ordering::Less => StageStatus::Succeeded,
            std::cmp::Ordering::Equal => StageStatus::Failed,
            std::cmp::Ordering::Greater => StageStatus::Skipped,
        };
        assert_eq!(*status, expected, "stage {i} in {statuses:?}");
    }
    assert_eq!(run.outcomes[index].error.as_ref(), Some(&err));
    let (outcome, failure) = run.failure().unwrap();
    assert_eq!((outcome.seq, failure), (index, &err));
    err
}

struct Panics;

#[async_trait]
impl Stage for Panics {
    fn name(&self) -> &'static str {
        names::ANALYSIS
    }

    async fn run(&self, ctx: &mut StageContext) -> Result<StageReport, StageError> {
        let text = &ctx.extraction_output()?.text;
        // A bug a document can trigger: indexing past the end.
        let byte = text.as_bytes()[text.len() + 10];
        Ok(StageReport::new(u64::from(byte), 0))
    }
}

#[tokio::test]
async fn a_stage_that_panics_fails_the_job_not_the_caller() {
    let world = World::new().await;
    let mut pipeline = standard();
    pipeline.replace(names::ANALYSIS, Panics).unwrap();
    let doc = world.job("invoice_en.txt").await;
    let job_id = doc.job_id;
    let mut ctx = world.context(&pipeline, doc);
    let run = world.run(&pipeline, &mut ctx).await;
    let err = assert_failed_at(&run, 4, kind::PANIC, false);
    assert!(err.message().contains("index out of bounds"), "{err}");
    assert!(ctx.analysis.is_none());
    assert!(world.tickets(job_id).await.is_empty(), "stages after the panic did not run");

    // The pipeline is still usable afterwards.
    let mut again = world.context(&pipeline, world.job("invoice_en.txt").await);
    assert_failed_at(&world.run(&pipeline, &mut again).await, 4, kind::PANIC, false);
}

struct Hangs;

#[async_trait]
impl Stage for Hangs {
    fn name(&self) -> &'static str {
        "hangs"
    }

    async fn run(&self, _: &mut StageContext) -> Result<StageReport, StageError> {
        // Waits for something that never comes (a lost wake-up, a dead peer).
        std::future::pending::<()>().await;
        Ok(StageReport::default())
    }
}

#[tokio::test]
async fn a_stage_over_its_time_limit_fails_retryably() {
    let world = World::new().await;
    let config = PipelineConfig::default().with_stage_timeout("hangs", Duration::from_millis(50));
    assert_eq!(config.timeout_for("hangs"), Duration::from_millis(50));
    assert_eq!(config.timeout_for(names::UPLOAD), config.default_stage_timeout);
    let mut pipeline = Pipeline::standard(config).unwrap();
    pipeline.insert_after(names::UPLOAD, Hangs).unwrap();
    let mut ctx = world.context(&pipeline, world.job("invoice_en.txt").await);
    let run = world.run(&pipeline, &mut ctx).await;
    let err = assert_failed_at(&run, 1, kind::TIMEOUT, true);
    assert_eq!(err.message(), "stage hangs exceeded its time limit of 50 ms");
    assert_eq!(run.outcomes[1].stage, "hangs");
}

#[tokio::test]
async fn a_broken_pdf_fails_validation_permanently() {
    let world = World::new().await;
    let pipeline = standard();
    let doc = world.job("truncated.pdf").await;
    let job_id = doc.job_id;
    let mut ctx = world.context(&pipeline, doc);
    let run = world.run(&pipeline, &mut ctx).await;
    assert_failed_at(&run, 1, kind::BROKEN_PDF, false);
    let results: i64 = sqlx::query_scalar("SELECT count(*) FROM document_results WHERE job_id = $1")
        .bind(job_id)
        .fetch_one(&world.db.pool)
        .await
        .unwrap();
    assert_eq!(results, 0);
}

#[tokio::test]
async fn bad_documents_fail_permanently_with_their_kinds() {
    let world = World::new().await;
    let pipeline = standard();
    for (name, expected) in [
        ("encrypted.pdf", kind::ENCRYPTED),
        ("empty.pdf", kind::EMPTY),
        ("archive.zip", kind::UNSUPPORTED_TYPE),
        ("random.bin", kind::UNSUPPORTED_TYPE),
    ] {
        let mut ctx = world.context(&pipeline, world.job(name).await);
        let run = world.run(&pipeline, &mut ctx).await;
        assert_failed_at(&run, 1, expected, false);
    }
}

#[tokio::test]
async fn a_missing_blob_fails_permanently_and_an_unreachable_store_retryably() {
    let world = World::new().await;
    let pipeline = standard();
    let mut doc = world.job("invoice_en.txt").await;
    doc.blob_path = "uploads/gone.txt".into();
    let mut ctx = world.context(&pipeline, doc);
    assert_failed_at(&world.run(&pipeline, &mut ctx).await, 0, kind::BLOB_MISSING, false);

    let mut ctx =
        pipeline.context(world.job("invoice_en.txt").await, world.earlier.clone(), Arc::new(UnreachableStore));
    assert_failed_at(&world.run(&pipeline, &mut ctx).await, 0, kind::BLOB_STORE_UNAVAILABLE, true);
}

#[tokio::test]
async fn a_store_failing_on_write_fails_storage_retryably() {
    let world = World::new().await;
    let pipeline = standard();
    let mut ctx = world.context(&pipeline, world.job("invoice_en.txt").await);
    // Read the document with the real store, then lose the store.
    pipeline::stages::upload::Upload.run(&mut ctx).await.unwrap();
    ctx.blobs = Arc::new(UnreachableStore);
    let mut rest = standard();
    rest.remove(names::UPLOAD).unwrap();
    let run = rest.run(&mut ctx).await;
    assert_failed_at(&run, 6, kind::BLOB_STORE_UNAVAILABLE, true);
}

/// Earlier results that cannot be read (the job store's database down).
struct Unreadable;

#[async_trait]
impl pipeline::EarlierResults for Unreadable {
    async fn duplicate_of(&self, _: uuid::Uuid, _: &str, _: &str) -> Result<Option<uuid::Uuid>, StageError> {
        Err(StageError::retryable(kind::DATABASE_UNAVAILABLE, "duplicate lookup: connection refused"))
    }
}

#[tokio::test]
async fn a_duplicate_lookup_that_cannot_answer_fails_the_attempt_retryably() {
    let world = World::new().await;
    let pipeline = standard();
    let mut ctx = pipeline.context(world.job("rechnung_de.pdf").await, Arc::new(Unreadable), world.blobs.clone());
    let run = world.run(&pipeline, &mut ctx).await;
    // criteria_detection is the only stage that looks at earlier jobs.
    assert_failed_at(&run, 5, kind::DATABASE_UNAVAILABLE, true);
    assert!(ctx.tickets.is_none() && ctx.storage.is_none(), "nothing after it ran, so nothing to commit");
}

#[tokio::test]
async fn a_pipeline_missing_a_stage_fails_with_missing_input() {
    let world = World::new().await;
    let mut pipeline = standard();
    pipeline.remove(names::VALIDATION).unwrap();
    let mut ctx = world.context(&pipeline, world.job("invoice_en.txt").await);
    let err = assert_failed_at(&world.run(&pipeline, &mut ctx).await, 1, kind::MISSING_INPUT, false);
    assert!(err.message().contains("validation"), "{err}");
}
