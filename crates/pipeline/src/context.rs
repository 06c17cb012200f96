//! What a stage sees: the job's document, the shared resources, and the
//! typed outputs of the stages before it.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use job_model::AttemptOutputs;
use object_store::ObjectStore;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::budget::WorkBudget;
use crate::config::PipelineConfig;
use crate::error::{StageError, kind};
use crate::layout::PdfPages;
use crate::lookup::EarlierResults;
use crate::stages::analysis::AnalysisOutput;
use crate::stages::classification::ClassificationOutput;
use crate::stages::criteria_detection::CriteriaOutput;
use crate::stages::extraction::ExtractionOutput;
use crate::stages::storage::StorageOutput;
use crate::stages::ticket_generation::TicketOutput;
use crate::stages::upload::UploadOutput;
use crate::stages::validation::ValidationOutput;

/// The job's document, as the `jobs` row describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    pub job_id: Uuid,
    pub document_id: String,
    pub filename: String,
    /// Location in the blob store (an `object_store` path, e.g. `uploads/ab/cd.pdf`).
    pub blob_path: String,
    /// Size the client declared; upload checks the blob against it.
    pub file_size: i64,
    /// Attempt number of this run (1 for the first).
    pub attempt: i32,
}

/// State for one run of the pipeline over one document.
///
/// Each standard stage fills its own `Option` field; later stages read the
/// fields they depend on and fail with `missing_input` when an earlier stage
/// was removed from the pipeline. Custom stages can keep their own output in
/// `extensions`.
pub struct StageContext {
    pub document: Document,
    /// Earlier jobs' results (the duplicate rule asks).
    pub earlier: Arc<dyn EarlierResults>,
    pub blobs: Arc<dyn ObjectStore>,
    pub config: Arc<PipelineConfig>,
    /// The day the document is judged against (e.g. for "overdue"): today
    /// in UTC by default; fixed by tests and by re-processing tools.
    pub processing_date: NaiveDate,
    /// The CPU budget of this job's document work, and the switch that
    /// stops it when a stage runs out of time.
    pub work: WorkBudget,
    /// The PDF's text laid out so far: classification reads the first page,
    /// extraction the others, so no page is interpreted twice.
    pub pdf_pages: Option<PdfPages>,
    pub upload: Option<UploadOutput>,
    pub validation: Option<ValidationOutput>,
    pub classification: Option<ClassificationOutput>,
    pub extraction: Option<ExtractionOutput>,
    pub analysis: Option<AnalysisOutput>,
    pub criteria: Option<CriteriaOutput>,
    pub tickets: Option<TicketOutput>,
    pub storage: Option<StorageOutput>,
    /// Free-form outputs of stages added by users, by stage name.
    pub extensions: BTreeMap<String, serde_json::Value>,
}

impl std::fmt::Debug for StageContext {
    // The uploaded bytes and the parsed PDF are large; show what was done.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StageContext")
            .field("document", &self.document)
            .field("processing_date", &self.processing_date)
            .field("upload", &self.upload.is_some())
            .field("validation", &self.validation.as_ref().map(|v| v.format))
            .field("classification", &self.classification)
            .field("extraction", &self.extraction.as_ref().map(|e| (e.page_count, e.text_chars)))
            .field("analysis", &self.analysis.is_some())
            .field("criteria", &self.criteria)
            .field("tickets", &self.tickets)
            .field("storage", &self.storage)
            .finish_non_exhaustive()
    }
}

fn missing(what: &str) -> StageError {
    StageError::permanent(kind::MISSING_INPUT, format!("no {what} output: is that stage missing from the pipeline?"))
}

impl StageContext {
    pub fn new(
        document: Document,
        earlier: Arc<dyn EarlierResults>,
        blobs: Arc<dyn ObjectStore>,
        config: Arc<PipelineConfig>,
    ) -> Self {
        let work = WorkBudget::new(config.document_cpu_budget);
        StageContext {
            document,
            earlier,
            blobs,
            config,
            processing_date: Utc::now().date_naive(),
            work,
            pdf_pages: None,
            upload: None,
            validation: None,
            classification: None,
            extraction: None,
            analysis: None,
            criteria: None,
            tickets: None,
            storage: None,
            extensions: BTreeMap::new(),
        }
    }

    pub fn upload_output(&self) -> Result<&UploadOutput, StageError> {
        self.upload.as_ref().ok_or_else(|| missing("upload"))
    }

    pub fn validation_output(&self) -> Result<&ValidationOutput, StageError> {
        self.validation.as_ref().ok_or_else(|| missing("validation"))
    }

    pub fn classification_output(&self) -> Result<&ClassificationOutput, StageError> {
        self.classification.as_ref().ok_or_else(|| missing("classification"))
    }

    pub fn extraction_output(&self) -> Result<&ExtractionOutput, StageError> {
        self.extraction.as_ref().ok_or_else(|| missing("extraction"))
    }

    pub fn analysis_output(&self) -> Result<&AnalysisOutput, StageError> {
        self.analysis.as_ref().ok_or_else(|| missing("analysis"))
    }

    pub fn criteria_output(&self) -> Result<&CriteriaOutput, StageError> {
        self.criteria.as_ref().ok_or_else(|| missing("criteria_detection"))
    }

    /// What the stages that ran produced for Postgres (the result row, the
    /// tickets), for the worker to commit with the attempt's outcome.
    pub fn outputs(&self) -> AttemptOutputs {
        AttemptOutputs {
            result: self.storage.as_ref().map(|s| s.record.clone()),
            tickets: self.tickets.as_ref().map(|t| t.tickets.clone()).unwrap_or_default(),
        }
    }
}
