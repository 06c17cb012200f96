//! EU (and UK/Swiss) VAT identification numbers: a country prefix and a
//! national number, checked against the country's format and, where the
//! country publishes one, its check-digit algorithm.

use std::sync::LazyLock;

use regex::Regex;

/// Country formats of the number after the prefix (anchored).
static FORMATS: LazyLock<Vec<(&'static str, Regex)>> = LazyLock::new(|| {
    [
        ("AT", r"^U\d{8}$"),
        ("BE", r"^[01]\d{9}$"),
        ("BG", r"^\d{9,10}$"),
        ("CH", r"^E\d{9}(?:MWST|TVA|IVA)?$"),
        ("CY", r"^\d{8}[A-Z]$"),
        ("CZ", r"^\d{8,10}$"),
        ("DE", r"^[1-9]\d{8}$"),
        ("DK", r"^\d{8}$"),
        ("EE", r"^\d{9}$"),
        ("EL", r"^\d{9}$"),
        ("ES", r"^[A-Z0-9]\d{7}[A-Z0-9]$"),
        ("FI", r"^\d{8}$"),
        ("FR", r"^[0-9A-HJ-NP-Z]{2}\d{9}$"),
        ("GB", r"^(?:\d{9}|\d{12}|GD\d{3}|HA\d{3})$"),
        ("HR", r"^\d{11}$"),
        ("HU", r"^\d{8}$"),
        ("IE", r"^(?:\d{7}[A-W][A-I]?|\d[A-Z+*]\d{5}[A-W])$"),
        ("IT", r"^\d{11}$"),
        ("LT", r"^(?:\d{9}|\d{12})$"),
        ("LU", r"^\d{8}$"),
        ("LV", r"^\d{11}$"),
        ("MT", r"^\d{8}$"),
        ("NL", r"^\d{9}B\d{2}$"),
        ("PL", r"^\d{10}$"),
        ("PT", r"^\d{9}$"),
        ("RO", r"^[1-9]\d{1,9}$"),
        ("SE", r"^\d{10}01$"),
        ("SI", r"^[1-9]\d{7}$"),
        ("SK", r"^[1-9]\d{9}$"),
        ("XI", r"^(?:\d{9}|\d{12})$"),
    ]
    .into_iter()
    .map(|(c, re)| (c, Regex::new(re).expect("static regex")))
    .collect()
});

/// How sure a format match is: a passed check digit makes a typo unlikely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VatCheck {
    /// The country's check digit algorithm passed.
    Checksum,
    /// The country has no check implemented here; only the format matched.
    FormatOnly,
    /// The format matched but the check digits are wrong (only from
    /// [`find_vat_ids_lenient`]).
    ChecksumFailed,
}

fn digits(s: &str) -> Option<Vec<u32>> {
    s.chars().map(|c| c.to_digit(10)).collect()
}

/// Luhn: every second digit from the right doubled, digit sums added.
fn luhn_valid(d: &[u32]) -> bool {
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| if i % 2 == 1 { if x * 2 > 9 { x * 2 - 9 } else { x * 2 } } else { x })
        .sum();
    sum.is_multiple_of(10)
}

/// ISO 7064 MOD 11,10 (German USt-IdNr.).
fn mod_11_10_valid(d: &[u32]) -> bool {
    let Some((&check, body)) = d.split_last() else {
        return false;
    };
    let mut product = 10;
    for &x in body {
        let mut sum = (x + product) % 10;
        if sum == 0 {
            sum = 10;
        }
        product = (2 * sum) % 11;
    }
    let expected = (11 - product) % 10;
    expected == check
}

/// The check for one country's number (prefix removed). `None`: no
/// algorithm is implemented for that country.
fn checksum(country: &str, number: &str) -> Option<bool> {
    match country {
        "DE" => Some(digits(number).is_some_and(|d| mod_11_10_valid(&d))),
        "AT" => {
            // U + 7 digits + check: Luhn-style weights 1,2,1,2,... then (6 - sum) mod 10.
            let d = digits(number.get(1..)?)?;
            let sum: u32 = d[..7]
                .iter()
                .enumerate()
                .map(|(i, &x)| if i % 2 == 1 { if x * 2 > 9 { x * 2 - 9 } else { x * 2 } } else { x })
                .sum();
            Some((6 + 10 * 10 - sum) % 10 == d[7])
        }
        "BE" => {
            let n: u64 = number.parse().ok()?;
            Some((n / 100 + n % 100).is_multiple_of(97))
        }
        "FR" => {
            let key = number.get(..2)?;
            let siren: u64 = number.get(2..)?.parse().ok()?;
            // Alphabetic (new-style) keys use another scheme; check only numeric ones.
            let key: u64 = key.parse().ok()?;
            Some(key == (siren * 100 + 12) % 97)
        }
        "IT" => Some(digits(number).is_some_and(|d| luhn_valid(&d))),
        "NL" => {
            // Either the RSIN/BSN eleven-test on the first nine digits, or
            // (sole traders since 2020) the whole id mod 97 == 1.
            let d = digits(number.get(..9)?)?;
            let eleven: i64 = d.iter().take(8).enumerate().map(|(i, &x)| i64::from(x) * (9 - i as i64)).sum::<i64>()
                - i64::from(d[8]);
            let mod97 = super::iban::mod97(&format!("NL{number}")) == Some(1);
            Some(eleven.rem_euclid(11) == 0 || mod97)
        }
        "GB" | "XI" if number.len() == 9 || number.len() == 12 => {
            let d = digits(number.get(..9)?)?;
            let weights = [8, 7, 6, 5, 4, 3, 2, 10, 1];
            let sum: u32 = d.iter().zip(weights).map(|(x, w)| x * w).sum::<u32>() % 97;
            let leading: u32 = number.get(..3)?.parse().ok()?;
            Some(if leading >= 100 { matches!(sum, 0 | 42 | 55) } else { sum == 0 })
        }
        _ => None,
    }
}

/// Splits a candidate into country prefix and national number and checks
/// it. Returns the compact id (`DE136695976`) and how it was verified.
fn check_compact(compact: &str) -> Option<(String, VatCheck)> {
    check_compact_with(compact, false)
}

fn check_compact_with(compact: &str, lenient: bool) -> Option<(String, VatCheck)> {
    let country = compact.get(..2)?;
    // Greece uses EL in VAT ids although its ISO code is GR.
    let country = if country == "GR" { "EL" } else { country };
    let number = compact.get(2..)?;
    let (_, format) = FORMATS.iter().find(|(c, _)| *c == country)?;
    if !format.is_match(number) {
        return None;
    }
    let verified = match checksum(country, number) {
        Some(true) => VatCheck::Checksum,
        Some(false) if lenient => VatCheck::ChecksumFailed,
        Some(false) => return None,
        None => VatCheck::FormatOnly,
    };
    Some((format!("{country}{number}"), verified))
}

/// Whether `id` (separators allowed) is a well-formed VAT id whose check
/// digits, where the country has them, are right.
pub fn is_valid_vat_id(id: &str) -> bool {
    let compact: String = id.chars().filter(|c| !matches!(c, ' ' | '.' | '-')).collect::<String>().to_ascii_uppercase();
    check_compact(&compact).is_some()
}

/// A VAT id found in text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VatIdMatch {
    pub start: usize,
    pub end: usize,
    pub vat_id: String,
    pub check: VatCheck,
}

static CANDIDATE: LazyLock<Regex> = LazyLock::new(|| {
    // A country prefix, then alphanumerics possibly grouped by single spaces,
    // dots or hyphens ("DE 136 695 976", "CHE-123.456.789 MWST").
    Regex::new(r"\b(?:[A-Z]{2}|CHE)[ .\-]?[0-9A-Z](?:[ .\-]?[0-9A-Z+*]){5,14}").expect("static regex")
});

/// Every valid VAT id in `text`. A candidate may run into the next word
/// ("DE136695976 Berlin"), so each group boundary is tried, longest first.
pub fn find_vat_ids(text: &str) -> Vec<VatIdMatch> {
    find_with(text, false)
}

/// Like [`find_vat_ids`], but also the well-formed ids whose check digits
/// fail (marked [`VatCheck::ChecksumFailed`]): what a document states next
/// to a VAT-id label, right or wrong.
pub fn find_vat_ids_lenient(text: &str) -> Vec<VatIdMatch> {
    find_with(text, true)
}

fn find_with(text: &str, lenient: bool) -> Vec<VatIdMatch> {
    let mut out = Vec::new();
    for m in CANDIDATE.find_iter(text) {
        let raw = m.as_str();
        let mut compact = String::new();
        let mut ends: Vec<(usize, usize)> = Vec::new(); // (compact length, byte end in text)
        let chars: Vec<(usize, char)> = raw.char_indices().collect();
        for (k, &(b, c)) in chars.iter().enumerate() {
            if c.is_ascii_alphanumeric() || c == '+' || c == '*' {
                compact.push(c);
                let next_is_sep = chars.get(k + 1).is_none_or(|&(_, n)| matches!(n, ' ' | '.' | '-'));
                if next_is_sep {
                    ends.push((compact.len(), m.start() + b + c.len_utf8()));
                }
            }
        }
        // A candidate glued to more alphanumerics in the text is part of a
        // longer token (an IBAN, a reference), not a VAT id.
        let glued_after = |end: usize| text[end..].chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
        let found = ends.iter().rev().filter(|&&(_, end)| !glued_after(end)).find_map(|&(len, end)| {
            check_compact_with(&compact[..len], lenient).map(|(vat_id, check)| VatIdMatch {
                start: m.start(),
                end,
                vat_id,
                check,
            })
        });
        out.extend(found);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_ids_with_checksums() {
        // Published examples of valid numbers for each algorithm.
        for id in [
            "DE136695976",
            "DE 136 695 976",
            "ATU13585627",
            "BE0428759497",
            "FR40303265045",
            "FR23334175221",
            "IT00743110157",
            "NL004495445B01",
            "GB980780684",
            "GB 123 4567 82",
        ] {
            assert!(is_valid_vat_id(id), "{id}");
        }
    }

    #[test]
    fn invalid_check_digits_are_rejected() {
        for id in [
            "DE136695978",
            "ATU13585626",
            "BE0431150351",
            "FR84323140391",
            "IT00743110158",
            "NL123456789B90",
            "GB802311781",
        ] {
            assert!(!is_valid_vat_id(id), "{id}");
        }
    }

    #[test]
    fn format_only_countries_and_bad_formats() {
        assert!(is_valid_vat_id("ESA12345674"));
        assert!(is_valid_vat_id("CHE-123.456.788 MWST"));
        assert!(!is_valid_vat_id("DE012345678"), "German ids never start with 0");
        assert!(!is_valid_vat_id("DE12345678"), "too short");
        assert!(!is_valid_vat_id("ZZ123456789"), "unknown country");
    }

    #[test]
    fn finds_ids_in_text_and_ignores_ibans() {
        let text = "USt-IdNr.: DE 136 695 976 Berlin\nIBAN DE89370400440532013000\nVAT Reg No: GB123456782.";
        let found: Vec<_> = find_vat_ids(text).into_iter().map(|m| (m.vat_id, m.check)).collect();
        assert_eq!(
            found,
            vec![("DE136695976".to_owned(), VatCheck::Checksum), ("GB123456782".to_owned(), VatCheck::Checksum)]
        );
    }
}
