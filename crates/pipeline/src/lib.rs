//! The eight docflow pipeline stages behind one [`Stage`] trait.
//!
//! Pure document work: no queue code. A worker builds a [`Pipeline`] once
//! ([`Pipeline::standard`]), and for each job creates a [`StageContext`]
//! ([`Pipeline::context`]) and calls [`Pipeline::run`], which returns a
//! [`PipelineRun`]: one timed [`StageOutcome`] per stage and, on failure,
//! the failing stage and a [`StageError`] that says whether to retry. The
//! stages' rows for Postgres (result, tickets) come back from
//! [`StageContext::outputs`]; the caller commits them with the outcome.
//!
//! ```no_run
//! # async fn example(earlier: std::sync::Arc<dyn pipeline::EarlierResults>, blobs: std::sync::Arc<dyn object_store::ObjectStore>, document: pipeline::Document) {
//! use pipeline::{Pipeline, PipelineConfig};
//! let pipeline = Pipeline::standard(PipelineConfig::default()).expect("rules parse");
//! let mut ctx = pipeline.context(document, earlier, blobs);
//! let run = pipeline.run(&mut ctx).await;
//! match &run.result {
//!     Ok(()) => { /* COMPLETED */ }
//!     Err((_, e)) if e.is_retryable() => { /* RETRYING or DLQ */ }
//!     Err(_) => { /* FAILED */ }
//! }
//! # }
//! ```

mod blob;
pub mod budget;
pub mod classify;
pub mod config;
pub mod context;
mod cost;
pub mod document;
pub mod einvoice;
pub mod error;
pub mod eval;
pub mod fields;
pub mod layout;
mod lex;
pub mod limits;
mod lookup;
pub mod parse;
pub mod pdf;
pub mod pipeline;
pub mod rules;
pub mod sniff;
pub mod stages;
pub mod text;

pub use budget::{Stopped, WorkBudget};
pub use classify::{Classification, DocumentType, classify};
pub use config::PipelineConfig;
pub use context::{Document, StageContext};
pub use error::{ConfigError, StageError, kind};
pub use fields::{Field, FieldName, InvoiceFields, Source, extract_fields};
pub use lookup::EarlierResults;
pub use parse::Amount;
pub use pipeline::{Pipeline, PipelineRun, Stage, StageOutcome, StageReport, StageStatus, blocking};
pub use rules::{Finding, RuleSet, Severity};
pub use sniff::DocumentFormat;
pub use stages::analysis::AnalysisOutput;
pub use stages::classification::ClassificationOutput;
pub use stages::criteria_detection::CriteriaOutput;
pub use stages::extraction::ExtractionOutput;
pub use stages::storage::{ResultDocument, StorageOutput};
pub use stages::ticket_generation::TicketOutput;
pub use stages::upload::UploadOutput;
pub use stages::validation::ValidationOutput;
