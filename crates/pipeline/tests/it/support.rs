//! Shared set-up: a database, a blob store, sample documents and jobs.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::NaiveDate;
use futures::stream::{self, BoxStream, StreamExt};
use job_model::AttemptOutcome;
use job_store::lifecycle::{self, AttemptRecord};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, ObjectStoreExt,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use pipeline::{Document, EarlierResults, Pipeline, PipelineConfig, PipelineRun, StageContext, StageError};
use sha2::{Digest, Sha256};
use test_support::TestDb;
use uuid::Uuid;

pub fn sample_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../samples").join(name)
}

pub fn sample(name: &str) -> Vec<u8> {
    std::fs::read(sample_path(name)).unwrap_or_else(|e| panic!("sample {name}: {e}"))
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The processing date of every test run: after the sample invoices were
/// issued, before most are due.
pub fn processing_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 15).unwrap()
}

/// The lease owner the tests commit attempts as.
const WORKER: &str = "pipeline-test";

/// Earlier results, from the test's database through the job store (as the
/// worker answers the duplicate rule).
struct StoredResults(sqlx::PgPool);

#[async_trait]
impl EarlierResults for StoredResults {
    async fn duplicate_of(&self, job_id: Uuid, supplier: &str, invoice: &str) -> Result<Option<Uuid>, StageError> {
        job_store::results::find_duplicate(&self.0, job_id, supplier, invoice)
            .await
            .map_err(|e| StageError::retryable(pipeline::kind::DATABASE_ERROR, e.to_string()))
    }
}

/// A test's world: its own database and blob directory.
pub struct World {
    pub db: TestDb,
    pub blobs: Arc<dyn ObjectStore>,
    pub earlier: Arc<dyn EarlierResults>,
    _dir: tempfile::TempDir,
}

impl World {
    pub async fn new() -> World {
        let db = TestDb::new().await;
        let dir = tempfile::tempdir().unwrap();
        let blobs: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
        let earlier: Arc<dyn EarlierResults> = Arc::new(StoredResults(db.pool.clone()));
        World { db, blobs, earlier, _dir: dir }
    }

    /// Stores `bytes` as a new job's document and inserts its `jobs` row
    /// (results and tickets reference it).
    pub async fn job_with(&self, filename: &str, bytes: &[u8]) -> Document {
        let job_id = Uuid::now_v7();
        let blob_path = format!("uploads/{job_id}/{filename}");
        self.blobs.put(&Path::from(blob_path.as_str()), PutPayload::from(bytes.to_vec())).await.unwrap();
        let document = Document {
            job_id,
            document_id: format!("doc-{job_id}"),
            filename: filename.to_owned(),
            blob_path,
            file_size: bytes.len() as i64,
            attempt: 1,
        };
        if !bytes.is_empty() {
            insert_job(&self.db.pool, &document).await;
        }
        document
    }

    pub async fn job(&self, sample_name: &str) -> Document {
        self.job_with(sample_name, &sample(sample_name)).await
    }

    pub fn context(&self, pipeline: &Pipeline, document: Document) -> StageContext {
        let mut ctx = pipeline.context(document, self.earlier.clone(), self.blobs.clone());
        ctx.processing_date = processing_date();
        ctx
    }

    pub fn context_with(&self, config: PipelineConfig, document: Document) -> StageContext {
        let mut ctx = StageContext::new(document, self.earlier.clone(), self.blobs.clone(), Arc::new(config));
        ctx.processing_date = processing_date();
        ctx
    }

    /// Runs the pipeline and commits the outputs of its stages with the
    /// attempt's outcome, through the job store, as the worker does.
    pub async fn run(&self, pipeline: &Pipeline, ctx: &mut StageContext) -> PipelineRun {
        let run = pipeline.run(ctx).await;
        let d = &ctx.document;
        if d.file_size == 0 {
            return run; // no job row (see job_with)
        }
        sqlx::query("UPDATE jobs SET status = 'PROCESSING', attempt = $2, lease_owner = $3 WHERE job_id = $1")
            .bind(d.job_id)
            .bind(d.attempt)
            .bind(WORKER)
            .execute(&self.db.pool)
            .await
            .unwrap();
        let record = AttemptRecord {
            job_id: d.job_id,
            attempt: d.attempt,
            outcome: if run.succeeded() { AttemptOutcome::Completed } else { AttemptOutcome::Failed },
            error_message: None,
            error_stage: None,
            stages: Vec::new(),
            messages: Vec::new(),
            outputs: ctx.outputs(),
            detail: serde_json::json!({}),
        };
        assert!(lifecycle::record_attempt(&self.db.pool, WORKER, &record).await.unwrap(), "the attempt commits");
        run
    }

    pub async fn tickets(&self, job_id: Uuid) -> Vec<(String, String)> {
        sqlx::query_as::<_, (String, String)>("SELECT rule, severity FROM tickets WHERE job_id = $1 ORDER BY rule")
            .bind(job_id)
            .fetch_all(&self.db.pool)
            .await
            .unwrap()
    }
}

pub async fn insert_job(pool: &sqlx::PgPool, d: &Document) {
    sqlx::query(
        "INSERT INTO jobs (job_id, document_id, filename, blob_path, file_size, priority, status, attempt, \
         max_retries, request_hash) VALUES ($1, $2, $3, $4, $5, 5, 'PROCESSING', $6, 3, $7)",
    )
    .bind(d.job_id)
    .bind(&d.document_id)
    .bind(&d.filename)
    .bind(&d.blob_path)
    .bind(d.file_size)
    .bind(d.attempt)
    .bind(Sha256::digest(d.job_id.as_bytes()).to_vec())
    .execute(pool)
    .await
    .unwrap();
}

pub fn standard() -> Pipeline {
    Pipeline::standard(PipelineConfig::default()).unwrap()
}

/// A blob store whose every call fails the way an unreachable S3 endpoint
/// does: not "not found", but an error talking to the store.
#[derive(Debug)]
pub struct UnreachableStore;

impl fmt::Display for UnreachableStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UnreachableStore")
    }
}

fn unreachable() -> object_store::Error {
    object_store::Error::Generic { store: "UnreachableStore", source: "connection refused (os error 111)".into() }
}

#[async_trait]
impl ObjectStore for UnreachableStore {
    async fn put_opts(&self, _: &Path, _: PutPayload, _: PutOptions) -> object_store::Result<PutResult> {
        Err(unreachable())
    }

    async fn put_multipart_opts(
        &self,
        _: &Path,
        _: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        Err(unreachable())
    }

    async fn get_opts(&self, _: &Path, _: GetOptions) -> object_store::Result<GetResult> {
        Err(unreachable())
    }

    fn delete_stream(
        &self,
        _: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        stream::once(async { Err(unreachable()) }).boxed()
    }

    fn list(&self, _: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        stream::once(async { Err(unreachable()) }).boxed()
    }

    async fn list_with_delimiter(&self, _: Option<&Path>) -> object_store::Result<ListResult> {
        Err(unreachable())
    }

    async fn copy_opts(&self, _: &Path, _: &Path, _: CopyOptions) -> object_store::Result<()> {
        Err(unreachable())
    }
}
