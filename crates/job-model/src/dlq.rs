//! Dead-letter items as admins see them.

use serde::{Deserialize, Serialize};

/// What a DLQ item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    /// A job row parked in status DLQ (retries exhausted, a panicking
    /// stage, a job that kept killing its worker).
    Job,
    /// A message on `jobs.dlq` that no job row stands behind (unparseable,
    /// unknown job, dead-lettered by the broker); imported into `dlq_poison`.
    Poison,
}

impl ItemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Job => "job",
            ItemKind::Poison => "poison",
        }
    }

    pub fn parse(raw: &str) -> Option<ItemKind> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "job" => Some(ItemKind::Job),
            "poison" => Some(ItemKind::Poison),
            _ => None,
        }
    }
}
