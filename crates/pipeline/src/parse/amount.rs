//! Money amounts as printed on invoices: `1.234,56`, `1,234.56`, `1234.56`,
//! `1'234.56`, `1 234,56` (with a no-break space), with an optional sign.
//!
//! Amounts are kept as integer minor units (cents): money is never an `f64`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A money amount in minor units (hundredths), without a currency.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount {
    cents: i64,
}

impl Amount {
    pub const ZERO: Amount = Amount { cents: 0 };

    pub const fn from_cents(cents: i64) -> Amount {
        Amount { cents }
    }

    pub const fn cents(self) -> i64 {
        self.cents
    }

    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.cents.checked_add(other.cents).map(Amount::from_cents)
    }

    pub fn checked_sub(self, other: Amount) -> Option<Amount> {
        self.cents.checked_sub(other.cents).map(Amount::from_cents)
    }

    pub fn checked_neg(self) -> Option<Amount> {
        self.cents.checked_neg().map(Amount::from_cents)
    }
}

impl fmt::Display for Amount {
    /// A plain decimal string with two decimals and `.` as separator
    /// (`-1234.50`): the one form every consumer parses unambiguously.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.cents < 0 { "-" } else { "" };
        let abs = self.cents.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a money amount: {0:?}")]
pub struct AmountParseError(pub String);

impl FromStr for Amount {
    type Err = AmountParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_amount(s).ok_or_else(|| AmountParseError(s.to_owned()))
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Characters that only ever group thousands, never separate decimals.
fn is_group_only(c: char) -> bool {
    matches!(c, '\'' | '\u{2019}' | '\u{a0}' | '\u{202f}' | '\u{2009}')
}

fn is_separator(c: char) -> bool {
    c == '.' || c == ',' || c == ' ' || is_group_only(c)
}

/// Parses one amount. Accepts a leading `-`/`−`/`+`, a trailing `-`, or
/// parentheses for negatives; grouping by `.`, `,`, apostrophes or spaces;
/// and at most two decimals.
///
/// A single `.` or `,` followed by exactly three digits is read as a
/// thousands separator (`1,234` and `1.234` are both 1234): invoices print
/// money with two decimals, so three digits after the separator mean grouping.
pub fn parse_amount(input: &str) -> Option<Amount> {
    let s = input.trim();
    let (negative, body) = if let Some(rest) = s.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
        (true, rest.trim())
    } else if let Some(rest) = s.strip_prefix('-').or_else(|| s.strip_prefix('\u{2212}')) {
        (true, rest.trim_start())
    } else if let Some(rest) = s.strip_suffix('-') {
        (true, rest.trim_end())
    } else {
        (false, s.strip_prefix('+').unwrap_or(s).trim_start())
    };
    let cents = parse_unsigned(body)?;
    Some(Amount::from_cents(if negative { -cents } else { cents }))
}

/// Digit groups and the separators between them.
fn split_groups(body: &str) -> Option<(Vec<&str>, Vec<char>)> {
    let mut groups = Vec::new();
    let mut seps = Vec::new();
    let mut start = 0;
    let mut prev_sep = true; // no leading separator
    for (i, c) in body.char_indices() {
        if c.is_ascii_digit() {
            prev_sep = false;
        } else if is_separator(c) {
            if prev_sep {
                return None; // two separators in a row, or a leading one
            }
            groups.push(&body[start..i]);
            seps.push(c);
            start = i + c.len_utf8();
            prev_sep = true;
        } else {
            return None;
        }
    }
    if prev_sep {
        return None; // empty, or a trailing separator
    }
    groups.push(&body[start..]);
    Some((groups, seps))
}

fn parse_unsigned(body: &str) -> Option<i64> {
    let (groups, seps) = split_groups(body)?;
    let last_group = *groups.last()?;
    // Decide which separator, if any, is the decimal one.
    let decimal = match seps.last() {
        Some(&sep @ ('.' | ',')) => {
            let earlier = &seps[..seps.len() - 1];
            match last_group.len() {
                1 | 2 if !earlier.contains(&sep) => true,
                3 if earlier.contains(&sep) || earlier.is_empty() => false,
                _ => return None,
            }
        }
        Some(_) => false,
        None => false,
    };
    let (int_groups, int_seps, frac) = if decimal {
        (&groups[..groups.len() - 1], &seps[..seps.len() - 1], Some(last_group))
    } else {
        (&groups[..], &seps[..], None)
    };
    if let Some(first_sep) = int_seps.first() {
        // Grouped integer part: one grouping character, `1-3` digits first
        // (not starting with 0), then groups of exactly three.
        if int_seps.iter().any(|s| s != first_sep) {
            return None;
        }
        let first = int_groups.first()?;
        if first.is_empty() || first.len() > 3 || first.starts_with('0') {
            return None;
        }
        if int_groups[1..].iter().any(|g| g.len() != 3) {
            return None;
        }
    }
    let mut units: i64 = 0;
    for group in int_groups {
        for b in group.bytes() {
            units = units.checked_mul(10)?.checked_add(i64::from(b - b'0'))?;
        }
    }
    let frac_cents = match frac {
        None => 0,
        Some(f) if f.len() == 1 => i64::from(f.as_bytes()[0] - b'0') * 10,
        Some(f) => f.parse::<i64>().ok()?,
    };
    units.checked_mul(100)?.checked_add(frac_cents)
}

/// An amount found in a line of text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AmountMatch {
    /// Byte range in the searched text, sign included.
    pub start: usize,
    pub end: usize,
    pub amount: Amount,
    /// Followed by `%`: a rate, not money.
    pub percent: bool,
}

const GLUED_CURRENCY_CODES: [&str; 13] =
    ["EUR", "USD", "GBP", "CHF", "SEK", "NOK", "DKK", "PLN", "CZK", "HUF", "JPY", "CAD", "AUD"];

/// Whether the letters touching a number are a currency code (`EUR1.234,56`),
/// which is the one case where a number glued to letters is still an amount.
fn glued_letters_are_currency(letters: &str) -> bool {
    GLUED_CURRENCY_CODES.contains(&letters)
}

/// Finds every amount-shaped number in `text` that stands on its own: a
/// number glued to letters (`A4`, `3rd`, `DE123456789`) is not an amount.
/// Callers mask dates first, since `01.03` would otherwise read as 1.03.
pub fn find_amounts(text: &str) -> Vec<AmountMatch> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let (start_byte, c) = chars[i];
        if !c.is_ascii_digit() {
            i += 1;
            continue;
        }
        // Letters right before the number: only a currency code is allowed.
        let mut k = i;
        while k > 0 && chars[k - 1].1.is_alphanumeric() {
            k -= 1;
        }
        let before_ok = if k == i {
            true
        } else {
            let letters: String = chars[k..i].iter().map(|&(_, c)| c).collect();
            glued_letters_are_currency(&letters)
        };
        // Extend over digits and over separators that are followed by a digit.
        let mut j = i + 1;
        while j < chars.len() {
            let cj = chars[j].1;
            let separator_then_digit = (cj == '.' || cj == ',' || is_group_only(cj))
                && chars.get(j + 1).is_some_and(|&(_, n)| n.is_ascii_digit());
            if cj.is_ascii_digit() || separator_then_digit {
                j += 1;
            } else {
                break;
            }
        }
        let end_byte = chars.get(j).map_or(text.len(), |&(b, _)| b);
        // Letters right after: again only a currency code.
        let mut m = j;
        while m < chars.len() && chars[m].1.is_alphanumeric() {
            m += 1;
        }
        let after_ok = if m == j {
            true
        } else {
            let letters: String = chars[j..m].iter().map(|&(_, c)| c).collect();
            glued_letters_are_currency(&letters)
        };
        if before_ok && after_ok {
            let percent = chars[j..].iter().find(|&&(_, c)| c != ' ').is_some_and(|&(_, c)| c == '%');
            // A minus sign directly before the number, itself not glued to a word.
            let (sign_start, negative) = match i.checked_sub(1).map(|p| (p, chars[p].1)) {
                Some((p, '-' | '\u{2212}')) if p == 0 || !chars[p - 1].1.is_alphanumeric() => (chars[p].0, true),
                _ => (start_byte, false),
            };
            if let Some(amount) = parse_amount(&text[start_byte..end_byte]) {
                let amount = if negative { Amount::from_cents(-amount.cents()) } else { amount };
                out.push(AmountMatch { start: sign_start, end: end_byte, amount, percent });
            }
        }
        i = j.max(i + 1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cents(s: &str) -> Option<i64> {
        parse_amount(s).map(Amount::cents)
    }

    #[test]
    fn european_and_english_grouping() {
        assert_eq!(cents("1.234,56"), Some(123_456));
        assert_eq!(cents("1,234.56"), Some(123_456));
        assert_eq!(cents("1234.56"), Some(123_456));
        assert_eq!(cents("1234,56"), Some(123_456));
        assert_eq!(cents("12.345.678,90"), Some(1_234_567_890));
        assert_eq!(cents("12,345,678.90"), Some(1_234_567_890));
        assert_eq!(cents("1'234.56"), Some(123_456));
        assert_eq!(cents("1\u{a0}234,56"), Some(123_456));
        assert_eq!(cents("1 234,56"), Some(123_456));
    }

    #[test]
    fn decimals_and_integers() {
        assert_eq!(cents("0.5"), Some(50));
        assert_eq!(cents("0,05"), Some(5));
        assert_eq!(cents("42"), Some(4200));
        assert_eq!(cents("1,234"), Some(123_400));
        assert_eq!(cents("1.234"), Some(123_400));
        assert_eq!(cents("1.234.567"), Some(123_456_700));
    }

    #[test]
    fn signs() {
        assert_eq!(cents("-12.50"), Some(-1250));
        assert_eq!(cents("\u{2212}12,50"), Some(-1250));
        assert_eq!(cents("12.50-"), Some(-1250));
        assert_eq!(cents("(12.50)"), Some(-1250));
        assert_eq!(cents("+3.00"), Some(300));
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "abc",
            "1.2.3",
            "1,23,45",
            "0.125",
            "1,234,56",
            "1..2",
            ".5",
            "5.",
            "12.3456",
            "1,2345.00",
            "1.234,5,6",
        ] {
            assert_eq!(cents(bad), None, "{bad:?}");
        }
        assert_eq!(cents("99999999999999999999"), None, "overflow");
    }

    #[test]
    fn display_is_plain_decimal() {
        assert_eq!(Amount::from_cents(123_456).to_string(), "1234.56");
        assert_eq!(Amount::from_cents(-5).to_string(), "-0.05");
        assert_eq!(Amount::from_cents(0).to_string(), "0.00");
        let json = serde_json::to_string(&Amount::from_cents(119_000)).unwrap();
        assert_eq!(json, "\"1190.00\"");
        assert_eq!(serde_json::from_str::<Amount>("\"1.190,00\"").unwrap(), Amount::from_cents(119_000));
    }

    #[test]
    fn finds_amounts_in_lines() {
        let found: Vec<_> =
            find_amounts("MwSt. 19 %: 426,74 EUR").into_iter().map(|m| (m.amount.cents(), m.percent)).collect();
        assert_eq!(found, vec![(1900, true), (42_674, false)]);
        let found: Vec<_> = find_amounts("Total: €1,500.00").into_iter().map(|m| m.amount.cents()).collect();
        assert_eq!(found, vec![150_000]);
        let found: Vec<_> = find_amounts("Paper A4 20 x 4,50 = 90,00").into_iter().map(|m| m.amount.cents()).collect();
        assert_eq!(found, vec![2000, 450, 9000]);
        let found: Vec<_> =
            find_amounts("Credit: -250.00 EUR1.000,00 DE136695976").into_iter().map(|m| m.amount.cents()).collect();
        assert_eq!(found, vec![-25_000, 100_000]);
        let m = find_amounts("Balance -12.00")[0];
        assert_eq!((m.start, m.end), (8, 14));
    }
}
