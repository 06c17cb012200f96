//! IBANs (ISO 13616): country code, two check digits, a national account
//! number; valid when the rearranged number is 1 modulo 97 (ISO 7064).

/// IBAN lengths per country (SWIFT IBAN registry). A country missing here is
/// still accepted when its length is plausible and the checksum holds.
const LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AL", 28),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BR", 29),
    ("BY", 28),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IQ", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LC", 32),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NL", 18),
    ("NO", 15),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("SA", 24),
    ("SC", 31),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("ST", 25),
    ("SV", 28),
    ("TL", 23),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VA", 22),
    ("VG", 24),
    ("XK", 20),
];

fn expected_length(country: &str) -> Option<usize> {
    LENGTHS.iter().find(|(c, _)| *c == country).map(|&(_, l)| l)
}

/// ISO 7064 MOD 97-10 over an alphanumeric string (letters count as 10..35),
/// computed digit by digit so no big integers are needed.
pub(crate) fn mod97(s: &str) -> Option<u32> {
    let mut rem: u32 = 0;
    for c in s.chars() {
        let v = c.to_digit(36)?;
        rem = if v < 10 { (rem * 10 + v) % 97 } else { (rem * 100 + v) % 97 };
    }
    Some(rem)
}

/// Whether `iban` (spaces allowed, any case) is a valid IBAN.
pub fn is_valid_iban(iban: &str) -> bool {
    let compact: String = iban.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_uppercase();
    valid_compact(&compact)
}

fn valid_compact(s: &str) -> bool {
    let bytes = s.as_bytes();
    if bytes.len() < 15 || bytes.len() > 34 || !s.is_ascii() {
        return false;
    }
    if !bytes[..2].iter().all(u8::is_ascii_uppercase)
        || !bytes[2..4].iter().all(u8::is_ascii_digit)
        || !bytes[4..].iter().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return false;
    }
    if let Some(len) = expected_length(&s[..2])
        && len != s.len()
    {
        return false;
    }
    let rearranged = format!("{}{}", &s[4..], &s[..4]);
    mod97(&rearranged) == Some(1)
}

/// An IBAN found in text: its byte range and compact form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IbanMatch {
    pub start: usize,
    pub end: usize,
    pub iban: String,
}

/// Every valid IBAN in `text`, printed compact or in groups separated by
/// single spaces. An IBAN-shaped string that fails the checksum is skipped.
pub fn find_ibans(text: &str) -> Vec<IbanMatch> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 4 <= chars.len() {
        let starts_word = i == 0 || !chars[i - 1].1.is_alphanumeric();
        let head = &chars[i..i + 4];
        let shaped = head[0].1.is_ascii_alphabetic()
            && head[1].1.is_ascii_alphabetic()
            && head[2].1.is_ascii_digit()
            && head[3].1.is_ascii_digit();
        if !(starts_word && shaped) {
            i += 1;
            continue;
        }
        // Collect alphanumerics, allowing single spaces between groups, and
        // remember where each group ends: the IBAN must end at a group end
        // (what follows may be another word, e.g. "BIC").
        let mut compact = String::new();
        let mut ends: Vec<(usize, usize)> = Vec::new(); // (compact length, byte end)
        let mut j = i;
        while j < chars.len() && compact.len() < 34 {
            let c = chars[j].1;
            if c.is_ascii_alphanumeric() {
                compact.push(c.to_ascii_uppercase());
                j += 1;
                let at_group_end = chars.get(j).is_none_or(|&(_, n)| !n.is_ascii_alphanumeric());
                if at_group_end {
                    ends.push((compact.len(), chars.get(j).map_or(text.len(), |&(b, _)| b)));
                }
            } else if c == ' '
                && chars.get(j + 1).is_some_and(|&(_, n)| n.is_ascii_alphanumeric())
                && !compact.is_empty()
            {
                j += 1;
            } else {
                break;
            }
        }
        let found = ends.iter().rev().find(|&&(len, _)| valid_compact(&compact[..len])).map(|&(len, end)| IbanMatch {
            start: chars[i].0,
            end,
            iban: compact[..len].to_owned(),
        });
        match found {
            Some(m) => {
                let end = m.end;
                out.push(m);
                i = chars.iter().position(|&(b, _)| b >= end).unwrap_or(chars.len());
            }
            None => i += 1,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_ibans() {
        for iban in [
            "DE89370400440532013000",
            "DE89 3704 0044 0532 0130 00",
            "GB82 WEST 1234 5698 7654 32",
            "NL91ABNA0417164300",
            "FR14 2004 1010 0505 0001 3M02 606",
            "be68 5390 0754 7034",
        ] {
            assert!(is_valid_iban(iban), "{iban}");
        }
    }

    #[test]
    fn checksum_or_length_failures() {
        for iban in [
            "DE89370400440532013001", // one digit off
            "DE88370400440532013000", // wrong check digits
            "DE8937040044053201300",  // too short for DE
            "GB82WEST1234569876543X",
            "XX00",
            "",
        ] {
            assert!(!is_valid_iban(iban), "{iban}");
        }
    }

    #[test]
    fn mod97_matches_iso_example() {
        // ISO 13616 example: DE89 3704 0044 0532 0130 00 rearranged.
        assert_eq!(mod97("370400440532013000DE89"), Some(1));
    }

    #[test]
    fn finds_grouped_iban_followed_by_words() {
        let text = "Bank: IBAN DE89 3704 0044 0532 0130 00 BIC COBADEFFXXX, or GB82WEST12345698765432.";
        let found: Vec<_> = find_ibans(text).into_iter().map(|m| m.iban).collect();
        assert_eq!(found, vec!["DE89370400440532013000", "GB82WEST12345698765432"]);
    }

    #[test]
    fn skips_iban_with_bad_checksum() {
        assert!(find_ibans("IBAN: DE89 3704 0044 0532 0130 01").is_empty());
    }
}
