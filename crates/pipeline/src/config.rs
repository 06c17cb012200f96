//! Pipeline settings. Plain data with defaults that work out of the box; the
//! worker fills it from its flags and environment.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Documents above this size fail validation (`too_large`).
    pub max_document_bytes: u64,
    /// Time limit for a stage without an entry in `stage_timeouts`.
    pub default_stage_timeout: Duration,
    /// Per-stage time limits, by stage name.
    pub stage_timeouts: BTreeMap<String, Duration>,
    /// Criteria rules file (TOML, or JSON when it ends in `.json`). `None`
    /// uses the rules embedded in the crate (`rules/default.toml`).
    pub rules_path: Option<PathBuf>,
    /// Blob-store prefix for result documents: `{prefix}/{job_id}.json`.
    pub results_prefix: String,
    /// How much text classification looks at: the title and first lines
    /// carry the document type; reading further only adds noise.
    pub classification_peek_chars: usize,
    /// CPU time the document work of one job may use (validation,
    /// classification, extraction, analysis together); over it the job
    /// fails as `document_too_complex` (`crate::limits`).
    pub document_cpu_budget: Duration,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            max_document_bytes: 50 * 1024 * 1024,
            default_stage_timeout: Duration::from_secs(60),
            stage_timeouts: BTreeMap::new(),
            rules_path: None,
            results_prefix: "results".to_owned(),
            classification_peek_chars: 4000,
            document_cpu_budget: crate::limits::DOCUMENT_CPU_TIME,
        }
    }
}

impl PipelineConfig {
    /// The time limit for the stage called `stage`.
    pub fn timeout_for(&self, stage: &str) -> Duration {
        self.stage_timeouts.get(stage).copied().unwrap_or(self.default_stage_timeout)
    }

    /// Builder-style: sets the time limit of one stage.
    pub fn with_stage_timeout(mut self, stage: impl Into<String>, limit: Duration) -> Self {
        self.stage_timeouts.insert(stage.into(), limit);
        self
    }
}
