//! The mergeable latency sketch behind every rollup: an HDR histogram of
//! durations in nanoseconds with 2 significant figures.
//!
//! Error bound: values are grouped in buckets whose width is at most 1/128 of
//! the values they hold (2 significant figures give 128 sub-buckets per power
//! of two). A percentile is read as the *highest* value of the bucket holding
//! the exact nearest-rank sample (the rank `ceil(q * n)`, as Postgres's
//! `percentile_disc`), capped at the exact maximum, so for the true value `v`
//! the reported one is in `[v, v * (1 + 1/128)]` (plus 1 ns of rounding):
//! never below, at most 0.79 % above. Merging adds bucket counts, so a merged
//! histogram has exactly the same bound as one recorded directly.
//! SLA compliance counts values up to the end of the target's bucket, so a
//! value at most 0.79 % above its target may count as compliant.

use std::io::Cursor;

use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};

/// Significant figures of every sketch (see the module docs for the bound).
pub const SIGNIFICANT_FIGURES: u8 = 2;
/// Upper bound of the relative error of a percentile read from a sketch.
pub const MAX_RELATIVE_ERROR: f64 = 1.0 / 128.0;
/// Durations are clamped to 30 days; nothing in a job should take that long.
const MAX_NANOS: u64 = 30 * 24 * 3600 * 1_000_000_000;

#[derive(Debug, thiserror::Error)]
#[error("stored sketch cannot be decoded: {0}")]
pub struct DecodeError(String);

#[derive(Debug, Clone)]
pub struct Sketch(Histogram<u64>);

impl Default for Sketch {
    fn default() -> Self {
        Sketch::new()
    }
}

fn to_nanos(ms: f64) -> u64 {
    if !ms.is_finite() || ms <= 0.0 {
        return 0;
    }
    ((ms * 1_000_000.0).round() as u64).min(MAX_NANOS)
}

impl Sketch {
    /// An empty, auto-resizing sketch (it grows with the largest value).
    pub fn new() -> Sketch {
        Sketch(Histogram::new(SIGNIFICANT_FIGURES).expect("2 significant figures is a valid precision"))
    }

    pub fn record_ms(&mut self, ms: f64) {
        // `record` grows the histogram (saturating_record would clamp to its
        // current top instead); values are capped at MAX_NANOS beforehand.
        let nanos = to_nanos(ms);
        if self.0.record(nanos).is_err() {
            self.0.saturating_record(nanos);
        }
    }

    pub fn merge(&mut self, other: &Sketch) {
        if let Err(error) = self.0.add(&other.0) {
            // Only possible when auto-resize is off, which it never is here.
            tracing::error!(%error, "sketch merge failed");
        }
    }

    pub fn count(&self) -> u64 {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The nearest-rank percentile (`q` in 0..=1), in milliseconds; `None`
    /// when empty. See the module docs for its error.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        if self.0.is_empty() {
            return None;
        }
        // q = 0 is rank 1 like any tiny q (hdrhistogram special-cases 0 to
        // the bucket's lowest value, which would break the bound).
        let value = self.0.value_at_quantile(q.clamp(f64::MIN_POSITIVE, 1.0)).min(self.0.max());
        Some(value as f64 / 1_000_000.0)
    }

    /// How many recorded values are at most `ms` (up to the end of its bucket).
    pub fn count_at_or_below_ms(&self, ms: f64) -> u64 {
        if self.0.is_empty() {
            return 0;
        }
        let target = to_nanos(ms);
        let top = self.0.max();
        if target >= top {
            return self.0.len();
        }
        self.0.count_between(0, target)
    }

    /// The V2 serialisation (uncompressed; runs of empty buckets are encoded
    /// compactly, so a minute's sketch is a few hundred bytes).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        V2Serializer::new().serialize(&self.0, &mut out).expect("serialising into a Vec cannot fail");
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Sketch, DecodeError> {
        let mut histogram: Histogram<u64> =
            Deserializer::new().deserialize(&mut Cursor::new(bytes)).map_err(|e| DecodeError(e.to_string()))?;
        histogram.auto(true);
        Ok(Sketch(histogram))
    }

    /// Merges a stored sketch into this one; an undecodable one is logged
    /// and skipped (its counts and sums are still in the exact columns).
    pub fn merge_encoded(&mut self, bytes: Option<&[u8]>) {
        let Some(bytes) = bytes else { return };
        match Sketch::decode(bytes) {
            Ok(other) => self.merge(&other),
            Err(error) => tracing::warn!(%error, "skipping a rollup sketch"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nearest-rank percentile of exact values, as `percentile_disc` has it.
    fn exact(sorted: &[f64], q: f64) -> f64 {
        let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
        sorted[rank - 1]
    }

    fn values(n: usize, seed: u64) -> Vec<f64> {
        // A small LCG: deterministic and spread over five orders of magnitude.
        let mut state = seed;
        (0..n)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let u = (state >> 11) as f64 / (1u64 << 53) as f64;
                0.01 * 10f64.powf(u * 5.0)
            })
            .collect()
    }

    #[test]
    fn percentiles_stay_within_the_stated_bound_after_merging_and_round_trips() {
        let all = values(20_000, 7);
        let mut merged = Sketch::new();
        for chunk in all.chunks(700) {
            let mut part = Sketch::new();
            chunk.iter().for_each(|v| part.record_ms(*v));
            merged.merge(&Sketch::decode(&part.encode()).unwrap());
        }
        let mut sorted = all.clone();
        sorted.sort_by(f64::total_cmp);
        assert_eq!(merged.count(), all.len() as u64);
        for q in [0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
            let truth = exact(&sorted, q);
            let got = merged.quantile_ms(q).unwrap();
            assert!(got >= truth - 1e-6, "q={q}: {got} < {truth}");
            assert!(got <= truth * (1.0 + MAX_RELATIVE_ERROR) + 1e-6, "q={q}: {got} too far above {truth}");
        }
    }

    #[test]
    fn compliance_counts_values_up_to_the_target() {
        let mut s = Sketch::new();
        for v in [10.0, 50.0, 99.0, 100.0, 101.5, 500.0] {
            s.record_ms(v);
        }
        assert_eq!(s.count_at_or_below_ms(100.0), 4);
        assert_eq!(s.count_at_or_below_ms(1000.0), 6);
        assert_eq!(s.count_at_or_below_ms(1.0), 0);
        assert_eq!(Sketch::new().count_at_or_below_ms(1.0), 0);
        assert_eq!(Sketch::new().quantile_ms(0.5), None);
    }

    #[test]
    fn garbage_does_not_decode() {
        assert!(Sketch::decode(b"not a histogram").is_err());
    }
}
