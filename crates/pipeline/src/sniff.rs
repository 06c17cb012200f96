//! Document type from content, never from the file name: magic bytes for
//! binary formats (via `infer`), and for text formats checks of our own
//! (`infer` only recognises binaries and a few markup types).

use serde::{Deserialize, Serialize};

/// The document formats the pipeline accepts (DESIGN.md, "validation").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentFormat {
    Pdf,
    Png,
    Jpeg,
    Tiff,
    Text,
    Csv,
    Xml,
}

impl DocumentFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentFormat::Pdf => "pdf",
            DocumentFormat::Png => "png",
            DocumentFormat::Jpeg => "jpeg",
            DocumentFormat::Tiff => "tiff",
            DocumentFormat::Text => "text",
            DocumentFormat::Csv => "csv",
            DocumentFormat::Xml => "xml",
        }
    }

    pub fn mime_type(self) -> &'static str {
        match self {
            DocumentFormat::Pdf => "application/pdf",
            DocumentFormat::Png => "image/png",
            DocumentFormat::Jpeg => "image/jpeg",
            DocumentFormat::Tiff => "image/tiff",
            DocumentFormat::Text => "text/plain",
            DocumentFormat::Csv => "text/csv",
            DocumentFormat::Xml => "application/xml",
        }
    }

    pub fn is_image(self) -> bool {
        matches!(self, DocumentFormat::Png | DocumentFormat::Jpeg | DocumentFormat::Tiff)
    }

    pub fn is_text(self) -> bool {
        matches!(self, DocumentFormat::Text | DocumentFormat::Csv | DocumentFormat::Xml)
    }
}

/// What sniffing found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sniffed {
    Supported(DocumentFormat),
    /// Recognised but not accepted (a ZIP, an executable, HTML, ...).
    Unsupported {
        mime_type: String,
    },
    /// Binary data of no known type.
    Unknown,
}

/// Strips a UTF-8 byte order mark.
pub(crate) fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// Text we accept: UTF-8, no NUL bytes and almost no other control
/// characters (a binary file that happens to decode as UTF-8 has many).
pub(crate) fn as_text(bytes: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(strip_bom(bytes)).ok()?;
    let mut controls = 0usize;
    for c in text.chars() {
        if c == '\0' {
            return None;
        }
        if c.is_control() && !matches!(c, '\n' | '\r' | '\t' | '\u{c}') {
            controls += 1;
        }
    }
    (controls * 100 <= text.len().max(1)).then_some(text)
}

/// Whether `text` reads as CSV: at least two non-empty lines, most of them
/// containing the same delimiter the same number of times (quotes honoured).
pub(crate) fn looks_like_csv(text: &str) -> bool {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).take(50).collect();
    if lines.len() < 2 {
        return false;
    }
    csv_delimiter(&lines).is_some()
}

/// The delimiter (`,`, `;` or tab) used consistently by at least 80% of
/// the lines, with at least one delimiter per line.
pub(crate) fn csv_delimiter(lines: &[&str]) -> Option<char> {
    [',', ';', '\t'].into_iter().find(|&delim| {
        let counts: Vec<usize> = lines.iter().map(|l| count_unquoted(l, delim)).collect();
        let Some(&first) = counts.first() else {
            return false;
        };
        if first == 0 {
            return false;
        }
        let same = counts.iter().filter(|&&c| c == first).count();
        same * 5 >= counts.len() * 4
    })
}

fn count_unquoted(line: &str, delim: char) -> usize {
    let mut quoted = false;
    let mut n = 0;
    for c in line.chars() {
        if c == '"' {
            quoted = !quoted;
        } else if c == delim && !quoted {
            n += 1;
        }
    }
    n
}

/// Sniffs the format of a non-empty document.
pub fn sniff(bytes: &[u8]) -> Sniffed {
    let detected = infer::get(bytes);
    match detected.map(|k| k.mime_type()) {
        Some("application/pdf") => return Sniffed::Supported(DocumentFormat::Pdf),
        Some("image/png") => return Sniffed::Supported(DocumentFormat::Png),
        Some("image/jpeg") => return Sniffed::Supported(DocumentFormat::Jpeg),
        Some("image/tiff") => return Sniffed::Supported(DocumentFormat::Tiff),
        Some("text/html") => {
            return Sniffed::Unsupported { mime_type: "text/html".to_owned() };
        }
        _ => {}
    }
    // `infer` knows a PDF only by `%PDF` at offset 0; the spec lets the
    // header sit anywhere in the first 1024 bytes (after mail headers or junk).
    if bytes.len() > 5 && bytes[..bytes.len().min(1024)].windows(5).any(|w| w == b"%PDF-") {
        return Sniffed::Supported(DocumentFormat::Pdf);
    }
    // Text wins over the remaining magic numbers: some are two bytes long
    // (`BM` for bitmaps), so a text starting "BMW ..." would match one, while
    // a real binary is almost never clean UTF-8 without NULs.
    if let Some(text) = as_text(bytes) {
        let head = text.trim_start();
        // XML without a declaration is still XML when its root element
        // declares a namespace (e-invoices exported without a prolog).
        let namespaced_root = head.starts_with('<')
            && head.chars().nth(1).is_some_and(char::is_alphabetic)
            && head.split('>').next().is_some_and(|tag| tag.contains("xmlns"));
        return if head.starts_with("<?xml") || namespaced_root {
            Sniffed::Supported(DocumentFormat::Xml)
        } else if looks_like_csv(text) {
            Sniffed::Supported(DocumentFormat::Csv)
        } else {
            Sniffed::Supported(DocumentFormat::Text)
        };
    }
    match detected {
        Some(kind) => Sniffed::Unsupported { mime_type: kind.mime_type().to_owned() },
        None => Sniffed::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_formats_by_magic() {
        assert_eq!(sniff(b"%PDF-1.7\n..."), Sniffed::Supported(DocumentFormat::Pdf));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Sniffed::Supported(DocumentFormat::Png));
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0\0\x10JFIF\0"), Sniffed::Supported(DocumentFormat::Jpeg));
        assert_eq!(sniff(b"II*\0\x08\0\0\0\x0e\0\0\x01"), Sniffed::Supported(DocumentFormat::Tiff));
        assert_eq!(sniff(b"MM\0*\0\0\0\x08\0\x0e\x01\0"), Sniffed::Supported(DocumentFormat::Tiff));
        assert!(matches!(sniff(b"PK\x03\x04\x14\0\0\0\0\0"), Sniffed::Unsupported { .. }));
        assert_eq!(sniff(b"\0\x01\x02\x03garbage\xff\xfe"), Sniffed::Unknown);
    }

    #[test]
    fn text_formats() {
        assert_eq!(sniff("<?xml version=\"1.0\"?><a/>".as_bytes()), Sniffed::Supported(DocumentFormat::Xml));
        assert_eq!(sniff(b"\xEF\xBB\xBF<?xml version=\"1.0\"?><a/>"), Sniffed::Supported(DocumentFormat::Xml));
        assert_eq!(
            sniff(b"<rsm:CrossIndustryInvoice xmlns:rsm=\"urn:x\"></rsm:CrossIndustryInvoice>"),
            Sniffed::Supported(DocumentFormat::Xml)
        );
        assert_eq!(sniff(b"<note>no namespace, no declaration</note>"), Sniffed::Supported(DocumentFormat::Text));
        assert_eq!(
            sniff(b"date,amount\n2026-01-01,\"1,00\"\n2026-01-02,2.00\n"),
            Sniffed::Supported(DocumentFormat::Csv)
        );
        assert_eq!(sniff(b"Datum;Betrag\n01.01.2026;1,00\n"), Sniffed::Supported(DocumentFormat::Csv));
        assert_eq!(sniff("Invoice\nTotal: 12,00 €\n".as_bytes()), Sniffed::Supported(DocumentFormat::Text));
        assert_eq!(sniff(b"hello\0world"), Sniffed::Unknown);
        // Two-byte magic numbers do not turn text into a binary format.
        assert_eq!(sniff(b"BMW Financial Services\nInvoice\n"), Sniffed::Supported(DocumentFormat::Text));
        assert!(matches!(sniff(b"<!DOCTYPE html><html></html>"), Sniffed::Unsupported { .. }));
    }
}
