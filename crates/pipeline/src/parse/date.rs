//! Dates as printed on invoices: ISO `2026-03-01`, European `01.03.2026`,
//! `01/03/2026` and `01-03-2026` (two-digit years too), and written months
//! in English, German, French and Dutch (`1 March 2026`, `March 1, 2026`,
//! `1. März 2026`, `1er mars 2026`, `1 maart 2026`).

use std::sync::LazyLock;

use chrono::NaiveDate;
use regex::Regex;

/// Month names and common abbreviations, lower case, in the four languages.
const MONTHS: &[(&str, u32)] = &[
    ("january", 1),
    ("jan", 1),
    ("januar", 1),
    ("jänner", 1),
    ("janvier", 1),
    ("janv", 1),
    ("januari", 1),
    ("february", 2),
    ("feb", 2),
    ("februar", 2),
    ("février", 2),
    ("fevrier", 2),
    ("févr", 2),
    ("fevr", 2),
    ("februari", 2),
    ("march", 3),
    ("mar", 3),
    ("märz", 3),
    ("maerz", 3),
    ("mär", 3),
    ("mars", 3),
    ("maart", 3),
    ("mrt", 3),
    ("april", 4),
    ("apr", 4),
    ("avril", 4),
    ("avr", 4),
    ("may", 5),
    ("mai", 5),
    ("mei", 5),
    ("june", 6),
    ("jun", 6),
    ("juni", 6),
    ("juin", 6),
    ("july", 7),
    ("jul", 7),
    ("juli", 7),
    ("juillet", 7),
    ("juil", 7),
    ("august", 8),
    ("aug", 8),
    ("août", 8),
    ("aout", 8),
    ("augustus", 8),
    ("september", 9),
    ("sep", 9),
    ("sept", 9),
    ("septembre", 9),
    ("october", 10),
    ("oct", 10),
    ("oktober", 10),
    ("okt", 10),
    ("octobre", 10),
    ("november", 11),
    ("nov", 11),
    ("novembre", 11),
    ("december", 12),
    ("dec", 12),
    ("dezember", 12),
    ("dez", 12),
    ("décembre", 12),
    ("decembre", 12),
    ("déc", 12),
];

fn month_number(name: &str) -> Option<u32> {
    let lower = name.to_lowercase();
    let lower = lower.trim_end_matches('.');
    MONTHS.iter().find(|(n, _)| *n == lower).map(|&(_, m)| m)
}

/// The month alternation, longest names first so `march` wins over `mar`.
fn month_alternation() -> String {
    let mut names: Vec<&str> = MONTHS.iter().map(|(n, _)| *n).collect();
    names.sort_by_key(|n| std::cmp::Reverse(n.chars().count()));
    names.iter().map(|n| regex::escape(n)).collect::<Vec<_>>().join("|")
}

static ISO: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})\b").expect("static regex"));
static NUMERIC: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(\d{1,2})([./-])(\d{1,2})([./-])(\d{4}|\d{2})\b").expect("static regex"));
static DAY_MONTH_YEAR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?i)\b(\d{{1,2}})(?:st|nd|rd|th|er|e|\.)?\s+(?:of\s+)?({})\.?,?\s+(\d{{4}})\b",
        month_alternation()
    ))
    .expect("static regex")
});
static MONTH_DAY_YEAR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(r"(?i)\b({})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b", month_alternation()))
        .expect("static regex")
});

/// A date found in text, with its byte range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateMatch {
    pub start: usize,
    pub end: usize,
    pub date: NaiveDate,
}

fn year_of(digits: &str) -> Option<i32> {
    let y: i32 = digits.parse().ok()?;
    let y = if digits.len() == 2 { 2000 + y } else { y };
    // Business documents of this century; anything else is a number that
    // merely looks like a date (a reference, a phone number).
    (1990..=2100).contains(&y).then_some(y)
}

fn ymd(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(y, m, d)
}

/// Reads `a sep b sep year`. Day-first is the European default; `/` dates
/// whose second number cannot be a month are read month-first (US style).
fn numeric(a: u32, sep: &str, b: u32, year: i32) -> Option<NaiveDate> {
    if sep == "/" && a <= 12 && b > 12 {
        return ymd(year, a, b);
    }
    ymd(year, b, a)
}

/// Every date in `text`, in order, without overlaps.
pub fn find_dates(text: &str) -> Vec<DateMatch> {
    let mut found: Vec<DateMatch> = Vec::new();
    let mut push = |start: usize, end: usize, date: Option<NaiveDate>| {
        if let Some(date) = date
            && !found.iter().any(|m| start < m.end && m.start < end)
        {
            found.push(DateMatch { start, end, date });
        }
    };
    for c in ISO.captures_iter(text) {
        let (Some(all), Some(y), Some(m), Some(d)) = (c.get(0), c.get(1), c.get(2), c.get(3)) else {
            continue;
        };
        let date = year_of(y.as_str())
            .and_then(|y| Some((y, m.as_str().parse().ok()?, d.as_str().parse().ok()?)))
            .and_then(|(y, m, d)| ymd(y, m, d));
        push(all.start(), all.end(), date);
    }
    for c in NUMERIC.captures_iter(text) {
        let (Some(all), Some(a), Some(s1), Some(b), Some(s2), Some(y)) =
            (c.get(0), c.get(1), c.get(2), c.get(3), c.get(4), c.get(5))
        else {
            continue;
        };
        // Mixed separators (`01.03/2026`) are not a date.
        if s1.as_str() != s2.as_str() {
            continue;
        }
        let date =
            (|| numeric(a.as_str().parse().ok()?, s1.as_str(), b.as_str().parse().ok()?, year_of(y.as_str())?))();
        push(all.start(), all.end(), date);
    }
    for c in DAY_MONTH_YEAR.captures_iter(text) {
        let (Some(all), Some(d), Some(m), Some(y)) = (c.get(0), c.get(1), c.get(2), c.get(3)) else {
            continue;
        };
        let date = (|| ymd(year_of(y.as_str())?, month_number(m.as_str())?, d.as_str().parse().ok()?))();
        push(all.start(), all.end(), date);
    }
    for c in MONTH_DAY_YEAR.captures_iter(text) {
        let (Some(all), Some(m), Some(d), Some(y)) = (c.get(0), c.get(1), c.get(2), c.get(3)) else {
            continue;
        };
        let date = (|| ymd(year_of(y.as_str())?, month_number(m.as_str())?, d.as_str().parse().ok()?))();
        push(all.start(), all.end(), date);
    }
    found.sort_by_key(|m| m.start);
    found
}

/// Parses a string that is exactly one date (surrounding blanks allowed).
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    match find_dates(s).as_slice() {
        [m] if m.start == 0 && m.end == s.len() => Some(m.date),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(y, m, day)
    }

    #[test]
    fn numeric_formats() {
        assert_eq!(parse_date("2026-03-01"), d(2026, 3, 1));
        assert_eq!(parse_date("2026/03/01"), d(2026, 3, 1));
        assert_eq!(parse_date("01.03.2026"), d(2026, 3, 1));
        assert_eq!(parse_date("1.3.2026"), d(2026, 3, 1));
        assert_eq!(parse_date("01/03/2026"), d(2026, 3, 1));
        assert_eq!(parse_date("01-03-2026"), d(2026, 3, 1));
        assert_eq!(parse_date("01.03.26"), d(2026, 3, 1));
        // Month-first only when the day-first reading is impossible.
        assert_eq!(parse_date("03/15/2026"), d(2026, 3, 15));
    }

    #[test]
    fn written_months() {
        assert_eq!(parse_date("1 March 2026"), d(2026, 3, 1));
        assert_eq!(parse_date("1st of March, 2026"), d(2026, 3, 1));
        assert_eq!(parse_date("March 1, 2026"), d(2026, 3, 1));
        assert_eq!(parse_date("Mar. 1 2026"), d(2026, 3, 1));
        assert_eq!(parse_date("1. März 2026"), d(2026, 3, 1));
        assert_eq!(parse_date("1er mars 2026"), d(2026, 3, 1));
        assert_eq!(parse_date("15 août 2026"), d(2026, 8, 15));
        assert_eq!(parse_date("31 december 2026"), d(2026, 12, 31));
        assert_eq!(parse_date("1 maart 2026"), d(2026, 3, 1));
        assert_eq!(parse_date("3 mei 2026"), d(2026, 5, 3));
    }

    #[test]
    fn rejects_impossible_dates() {
        for bad in
            ["2026-02-30", "32.01.2026", "13/13/2026", "01.03/2026", "1 Marchember 2026", "12.5", "2026", "01.03.1850"]
        {
            assert_eq!(parse_date(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn finds_dates_in_text_in_order() {
        let text = "Invoice date: 1 March 2026   Due: 31.03.2026 (ref 2026-0042)";
        let dates: Vec<_> = find_dates(text).into_iter().map(|m| m.date).collect();
        assert_eq!(dates, vec![d(2026, 3, 1).unwrap(), d(2026, 3, 31).unwrap()]);
        let m = find_dates(text)[1];
        assert_eq!(&text[m.start..m.end], "31.03.2026");
    }
}
