//! Parsers for the values found on business documents. Each is a pure
//! function over text, so it is unit-tested on its own, independent of the
//! stages that use it.

pub mod amount;
pub mod date;
pub mod iban;
pub mod vat_id;

pub use amount::{Amount, find_amounts, parse_amount};
pub use date::{find_dates, parse_date};
pub use iban::{find_ibans, is_valid_iban};
pub use vat_id::{find_vat_ids, is_valid_vat_id};

/// Returns `s` with the byte ranges replaced by spaces, keeping every other
/// byte offset unchanged, so that a later scan does not see what an earlier
/// one already consumed (e.g. the digits of a date read as an amount).
pub(crate) fn mask(s: &str, ranges: &[(usize, usize)]) -> String {
    let mut bytes = s.as_bytes().to_vec();
    for &(start, end) in ranges {
        for b in bytes.iter_mut().take(end.min(s.len())).skip(start) {
            *b = b' ';
        }
    }
    // Ranges come from matches on char boundaries, so the result stays UTF-8;
    // the lossy conversion only guards against a caller passing odd ranges.
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}
