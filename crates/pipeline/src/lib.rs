//! The eight docflow pipeline stages.
