//! The pipeline's eight stages, by the names stage rows, execution events,
//! reports and the CLI use. The pipeline crate names each stage from this
//! list; everything else reads the list from here.

/// In the order they run.
pub const STAGES: [&str; 8] = [
    "upload",
    "validation",
    "classification",
    "extraction",
    "analysis",
    "criteria_detection",
    "ticket_generation",
    "storage",
];
