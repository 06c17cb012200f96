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
/// labels, `job_stages.stage`) and of configuration (time limits).
pub mod names {
    pub const UPLOAD: &str = "upload";
    pub const VALIDATION: &str = "validation";
    pub const CLASSIFICATION: &str = "classification";
    pub const EXTRACTION: &str = "extraction";
    pub const ANALYSIS: &str = "analysis";
    pub const CRITERIA_DETECTION: &str = "criteria_detection";
    pub const TICKET_GENERATION: &str = "ticket_generation";
    pub const STORAGE: &str = "storage";

    pub const ALL: [&str; 8] =
        [UPLOAD, VALIDATION, CLASSIFICATION, EXTRACTION, ANALYSIS, CRITERIA_DETECTION, TICKET_GENERATION, STORAGE];
}

use sha2::{Digest, Sha256};

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}
