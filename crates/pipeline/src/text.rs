//! Text formats turned into plain lines for analysis: CSV rows become
//! tab-separated lines (quotes removed, so `"1,234.56"` is one value), XML
//! leaf elements become `Element Name: value` lines (so `<InvoiceNumber>`
//! reads like the label on a printed invoice).

use crate::sniff::{as_text, csv_delimiter};

/// Decodes a text document; `None` if it is not clean UTF-8.
pub fn decode(bytes: &[u8]) -> Option<&str> {
    as_text(bytes)
}

/// CSV records as lines of tab-separated, unquoted fields.
pub fn csv_to_text(text: &str) -> String {
    let sample: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).take(50).collect();
    let delim = csv_delimiter(&sample).unwrap_or(',');
    let mut out = String::with_capacity(text.len());
    let mut field = String::new();
    let mut record: Vec<String> = Vec::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    let flush_record = |record: &mut Vec<String>, out: &mut String| {
        if record.iter().any(|f| !f.trim().is_empty()) {
            out.push_str(&record.iter().map(|f| f.trim()).collect::<Vec<_>>().join("\t"));
            out.push('\n');
        }
        record.clear();
    };
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            '"' => quoted = !quoted,
            c if c == delim && !quoted => record.push(std::mem::take(&mut field)),
            '\r' if !quoted => {}
            '\n' if !quoted => {
                record.push(std::mem::take(&mut field));
                flush_record(&mut record, &mut out);
            }
            // A line break inside a quoted field is content, but a tab-joined
            // line must stay one line.
            '\n' | '\r' | '\t' => field.push(' '),
            c => field.push(c),
        }
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        flush_record(&mut record, &mut out);
    }
    out
}

/// `InvoiceNumber` → `Invoice Number`, `VATNumber` → `VAT Number`,
/// `due_date` → `due date`.
fn words(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c == '_' || c == '-' || c == '.' {
            out.push(' ');
            continue;
        }
        let prev = i.checked_sub(1).map(|p| chars[p]);
        let next = chars.get(i + 1);
        let boundary = c.is_uppercase()
            && prev.is_some_and(|p| p.is_lowercase() || (p.is_uppercase() && next.is_some_and(|n| n.is_lowercase())));
        if boundary && !out.ends_with(' ') {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp..];
        let Some(semi) = after.find(';').filter(|&i| i <= 10) else {
            out.push('&');
            rest = &after[1..];
            continue;
        };
        let entity = &after[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") || e.starts_with("#X") => {
                u32::from_str_radix(&e[2..], 16).ok().and_then(char::from_u32)
            }
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &after[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Attributes that qualify a value in a way analysis needs (the currency of
/// an amount, as in UBL's `currencyID="EUR"`).
fn currency_attribute(tag: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let at = lower.find("currency")?;
    let after = &tag[at..];
    let quote_start = after.find(['"', '\''])?;
    let quote = after[quote_start..].chars().next()?;
    let value_start = quote_start + 1;
    let value_len = after[value_start..].find(quote)?;
    Some(after[value_start..value_start + value_len].trim().to_owned())
}

/// XML as lines: each leaf element's text as `Element Name: text`, other
/// text as is. Not a validating parser: it reads well-formed business XML
/// and degrades to "text without tags" on anything else.
pub fn xml_to_text(xml: &str) -> String {
    let mut out = String::new();
    // (local name, currency attribute, whether a child element was seen)
    let mut stack: Vec<(String, Option<String>, bool)> = Vec::new();
    let mut text = String::new();
    let mut rest = xml;
    let emit = |out: &mut String, line: &str| {
        let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
        if !line.is_empty() {
            out.push_str(&line);
            out.push('\n');
        }
    };
    while let Some(lt) = rest.find('<') {
        text.push_str(&decode_entities(&rest[..lt]));
        let after = &rest[lt..];
        if let Some(body) = after.strip_prefix("<![CDATA[") {
            let end = body.find("]]>").unwrap_or(body.len());
            text.push_str(&body[..end]);
            rest = body.get(end + 3..).unwrap_or("");
            continue;
        }
        let (terminator, skip) = if after.starts_with("<!--") {
            ("-->", true)
        } else if after.starts_with("<?") || after.starts_with("<!") {
            (">", true)
        } else {
            (">", false)
        };
        let Some(gt) = after.find(terminator) else {
            break;
        };
        let tag = &after[1..gt];
        rest = &after[gt + terminator.len()..];
        if skip {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            let local = name.trim().rsplit(':').next().unwrap_or(name).to_owned();
            let pending = std::mem::take(&mut text);
            match stack.pop() {
                Some((open, currency, false)) if open == local => {
                    let value = pending.trim();
                    if !value.is_empty() {
                        let value = match currency {
                            Some(c) if !c.is_empty() => format!("{value} {c}"),
                            _ => value.to_owned(),
                        };
                        emit(&mut out, &format!("{}: {value}", words(&local)));
                    }
                }
                _ => emit(&mut out, &pending),
            }
        } else {
            emit(&mut out, &std::mem::take(&mut text));
            if let Some(parent) = stack.last_mut() {
                parent.2 = true;
            }
            let self_closing = tag.ends_with('/');
            let name = tag.trim_end_matches('/').split_whitespace().next().unwrap_or("");
            let local = name.rsplit(':').next().unwrap_or(name).to_owned();
            if !self_closing {
                stack.push((local, currency_attribute(tag), false));
            }
        }
    }
    text.push_str(&decode_entities(rest));
    emit(&mut out, &text);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_become_tab_separated_lines() {
        let csv = "Field,Value\nTotal,\"1,190.00\"\n\"Say \"\"hi\"\"\",x\n\n";
        assert_eq!(csv_to_text(csv), "Field\tValue\nTotal\t1,190.00\nSay \"hi\"\tx\n");
        assert_eq!(csv_to_text("a;b\r\n1;2"), "a\tb\n1\t2\n");
    }

    #[test]
    fn element_names_become_labels() {
        assert_eq!(words("InvoiceNumber"), "Invoice Number");
        assert_eq!(words("VATNumber"), "VAT Number");
        assert_eq!(words("IBAN"), "IBAN");
        assert_eq!(words("due_date"), "due date");
    }

    #[test]
    fn xml_leaves_become_label_lines() {
        let xml = r#"<?xml version="1.0"?>
<!-- sample -->
<inv:Invoice xmlns:inv="urn:x">
  <inv:InvoiceNumber>LL-1</inv:InvoiceNumber>
  <Supplier><Name>Smith &amp; Sons</Name></Supplier>
  <PayableAmount currencyID="EUR">10.00</PayableAmount>
  <Note><![CDATA[a < b]]></Note>
  <Empty/>
</inv:Invoice>"#;
        assert_eq!(
            xml_to_text(xml),
            "Invoice Number: LL-1\nName: Smith & Sons\nPayable Amount: 10.00 EUR\nNote: a < b\n"
        );
    }
}
