//! Job priority: which queue a job travels on and how soon a worker takes it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How urgently a job should run. The numeric values are the seed's
/// (HIGH=1, NORMAL=5, LOW=10: lower runs sooner) and are what Postgres stores.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default, utoipa::ToSchema,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum JobPriority {
    High,
    #[default]
    Normal,
    Low,
}

impl JobPriority {
    /// All priorities, most urgent first: the order workers serve queues in.
    pub const ALL: [JobPriority; 3] = [JobPriority::High, JobPriority::Normal, JobPriority::Low];

    /// The seed's numeric value, stored in `jobs.priority`.
    pub fn value(self) -> i16 {
        match self {
            JobPriority::High => 1,
            JobPriority::Normal => 5,
            JobPriority::Low => 10,
        }
    }

    pub fn from_value(value: i16) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.value() == value)
    }

    /// Upper-case name, as clients send it and the API returns it.
    pub fn as_str(self) -> &'static str {
        match self {
            JobPriority::High => "HIGH",
            JobPriority::Normal => "NORMAL",
            JobPriority::Low => "LOW",
        }
    }

    /// Routing key on `docflow.jobs`, and the suffix of the job queue's name.
    pub fn routing_key(self) -> &'static str {
        match self {
            JobPriority::High => "high",
            JobPriority::Normal => "normal",
            JobPriority::Low => "low",
        }
    }
}

impl fmt::Display for JobPriority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown priority {0:?}: expected HIGH, NORMAL or LOW")]
pub struct UnknownPriority(pub String);

impl FromStr for JobPriority {
    type Err = UnknownPriority;

    /// Names are accepted in any case, since clients write "high" as often as "HIGH".
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownPriority(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_in_any_case() {
        assert_eq!("high".parse(), Ok(JobPriority::High));
        assert_eq!("Normal".parse(), Ok(JobPriority::Normal));
        assert_eq!(" LOW ".parse(), Ok(JobPriority::Low));
        assert!("urgent".parse::<JobPriority>().is_err());
        assert!("".parse::<JobPriority>().is_err());
    }

    #[test]
    fn values_round_trip_and_order_by_urgency() {
        for p in JobPriority::ALL {
            assert_eq!(JobPriority::from_value(p.value()), Some(p));
        }
        assert_eq!(JobPriority::from_value(3), None);
        assert!(JobPriority::High.value() < JobPriority::Normal.value());
        assert!(JobPriority::Normal.value() < JobPriority::Low.value());
    }

    #[test]
    fn serialises_as_upper_case_name() {
        assert_eq!(serde_json::to_string(&JobPriority::High).unwrap(), "\"HIGH\"");
        assert_eq!(serde_json::from_str::<JobPriority>("\"LOW\"").unwrap(), JobPriority::Low);
    }
}
