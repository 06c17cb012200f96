//! The eight standard stages, in pipeline order (DESIGN.md, "The eight
//! stages"). Each file holds one stage and the output it leaves in the
//! context.

pub mod analysis;
pub mod classification;
pub mod criteria_detection;
pub mod extraction;
pub mod storage;
pub mod ticket_generation;
pub mod upload;
pub mod validation;

/// Stage names, in order. They are part of the reporting contract (metrics
/// labels, `job_stages.stage`) and of configuration (time limits); the list
/// itself is `job_model::STAGES`, which reports and the CLI read too.
pub mod names {
    use job_model::STAGES;

    pub const UPLOAD: &str = STAGES[0];
    pub const VALIDATION: &str = STAGES[1];
    pub const CLASSIFICATION: &str = STAGES[2];
    pub const EXTRACTION: &str = STAGES[3];
    pub const ANALYSIS: &str = STAGES[4];
    pub const CRITERIA_DETECTION: &str = STAGES[5];
    pub const TICKET_GENERATION: &str = STAGES[6];
    pub const STORAGE: &str = STAGES[7];

    pub const ALL: [&str; 8] = STAGES;
}

use sha2::{Digest, Sha256};

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}
