//! Requests become domain types here, at the edge; the rest of the service
//! cannot hold an invalid submission.

pub mod submission;

pub use submission::{Limits, Submission, SubmissionFields};
