//! What parsing a PDF will cost, counted from its bytes before lopdf
//! allocates anything: the "too complex" limits of [`crate::limits`] that
//! must hold *before* the parser runs, because the parser cannot be stopped
//! half way and its memory is the worker's memory.
//!
//! - [`check_document`] runs over the file before `lopdf::Document::load`:
//!   the tokens lopdf will turn into objects (those of the object streams
//!   included, inflated here under a bound), how deep they nest, the page
//!   count the page tree declares, and the size of the streams lopdf
//!   inflates while loading.
//! - [`check_content`] runs over a content stream before lopdf decodes its
//!   operations: operators, operands per operator and nesting.

use lopdf::{Dictionary, Object, Stream};

use crate::budget::{Meter, Stopped};
use crate::lex::{Lexer, Token, find, is_whitespace};
use crate::limits::{self, TooComplex};

/// Tokens between two meter checks.
const CHECK_EVERY: usize = 1 << 14;

fn number<T: std::str::FromStr>(word: &[u8]) -> Option<T> {
    std::str::from_utf8(word).ok()?.parse().ok()
}

/// What the keys of a top-level dictionary say, as far as the checks need.
#[derive(Debug, Default)]
struct DictInfo {
    kind: Option<Vec<u8>>,
    count: Option<u64>,
    /// `/Length n` written directly (not `n 0 R`).
    length: Option<usize>,
    /// `/DL n`: the decoded length a stream declares.
    decoded_length: Option<u64>,
    first: Option<usize>,
    filters: Vec<Vec<u8>>,
}

/// Follows tokens: their count, the nesting depth, and the keys of each
/// top-level dictionary (a page tree node's `/Count`, a stream's length
/// and filters).
#[derive(Default)]
struct Watch {
    tokens: usize,
    depth: usize,
    /// The top-level dictionary being read, or the last one closed.
    dict: DictInfo,
    /// The key at depth 1 whose value comes next.
    key: Option<Vec<u8>>,
    /// Inside the `/Filter [...]` array.
    in_filters: bool,
}

impl Watch {
    fn token(&mut self, token: Token<'_>) -> Result<(), TooComplex> {
        self.tokens += 1;
        match token {
            Token::ArrayOpen | Token::DictOpen => {
                if self.depth == 0 && token == Token::DictOpen {
                    self.dict = DictInfo::default();
                }
                if self.depth == 1 && token == Token::ArrayOpen && self.key.as_deref() == Some(b"Filter") {
                    self.in_filters = true;
                }
                self.depth += 1;
                if self.depth > limits::MAX_NESTING_DEPTH {
                    return Err(TooComplex::over("arrays and dictionaries nested", limits::MAX_NESTING_DEPTH));
                }
                if self.depth > 1 {
                    self.key = None;
                }
            }
            Token::ArrayClose | Token::DictClose => {
                self.depth = self.depth.saturating_sub(1);
                self.in_filters = false;
                if self.depth == 0 && token == Token::DictClose {
                    self.dict_closed()?;
                }
            }
            Token::Name(name) if self.in_filters => self.dict.filters.push(name.to_vec()),
            Token::Name(name) if self.depth == 1 => match self.key.take() {
                Some(key) if key == b"Type" => self.dict.kind = Some(name.to_vec()),
                Some(key) if key == b"Filter" => self.dict.filters = vec![name.to_vec()],
                Some(_) => {}
                None => self.key = Some(name.to_vec()),
            },
            Token::Number(word) if self.depth == 1 => match self.key.take() {
                Some(key) if key == b"Count" => self.dict.count = number(word),
                Some(key) if key == b"Length" => self.dict.length = number(word),
                Some(key) if key == b"DL" => self.dict.decoded_length = number(word),
                Some(key) if key == b"First" => self.dict.first = number(word),
                _ => {}
            },
            // `n 0 R`: the value was a reference, not the number read.
            Token::Keyword(b"R") if self.depth == 1 => self.dict.length = None,
            _ if self.depth == 1 => self.key = None,
            Token::Keyword(b"obj" | b"endobj") => self.dict = DictInfo::default(),
            _ => {}
        }
        Ok(())
    }

    fn dict_closed(&mut self) -> Result<(), TooComplex> {
        if self.dict.kind.as_deref() == Some(b"Pages")
            && let Some(count) = self.dict.count
            && count > limits::MAX_PDF_PAGES as u64
        {
            return Err(TooComplex::over(format!("{count} pages declared"), limits::MAX_PDF_PAGES));
        }
        Ok(())
    }
}

/// The data of the stream whose `stream` keyword ends at `after_keyword`,
/// as the bytes to its `endstream`; and where reading goes on.
fn stream_data(bytes: &[u8], after_keyword: usize, declared: Option<usize>) -> (&[u8], usize) {
    let mut start = after_keyword;
    if bytes.get(start) == Some(&b'\r') {
        start += 1;
    }
    if bytes.get(start) == Some(&b'\n') {
        start += 1;
    }
    // Trust /Length only where `endstream` follows it: a declared 1 GB is
    // read as what the file holds.
    if let Some(len) = declared
        && let Some(end) = start.checked_add(len).filter(|&e| e <= bytes.len())
    {
        let rest = &bytes[end..];
        let skip = rest.iter().take_while(|b| matches!(b, b'\r' | b'\n' | b' ')).count();
        if rest[skip..].starts_with(b"endstream") {
            return (&bytes[start..end], end);
        }
    }
    match find(bytes, b"endstream", start) {
        Some(end) => (&bytes[start..end], end),
        None => (&bytes[start..], bytes.len()),
    }
}

/// Inflates a stream the way lopdf will while loading, under `limit`.
fn inflate(data: &[u8], filters: &[Vec<u8>], limit: usize, what: &str) -> Result<Option<Vec<u8>>, TooComplex> {
    let mut dict = Dictionary::new();
    match filters {
        [] => {}
        [one] => dict.set("Filter", Object::Name(one.clone())),
        many => dict.set("Filter", Object::Array(many.iter().map(|f| Object::Name(f.clone())).collect())),
    }
    match Stream::new(dict, data.to_vec()).decompressed_content_with_limit(limit) {
        Ok(content) => Ok(Some(content)),
        Err(lopdf::Error::Decompress(lopdf::DecompressError::MemoryLimitExceeded { .. })) => {
            Err(TooComplex::over(format!("decompressed bytes of {what}"), limit))
        }
        // Broken: lopdf will not read it either.
        Err(_) => Ok(None),
    }
}

/// Tokens lopdf builds from an object stream. Each `(number, offset)` pair
/// of its index is parsed on its own from its offset, so objects that
/// overlap (offsets inside an enclosing array) are paid for once per entry;
/// this counts what each entry's parse will cost.
fn object_stream_tokens(content: &[u8], first: usize, watch: &mut Watch, meter: &Meter) -> Result<usize, Stopped> {
    let first = first.min(content.len());
    let offsets: Vec<usize> = Lexer::new(&content[..first])
        .filter_map(|(_, t)| match t {
            Token::Number(w) => number::<usize>(w),
            _ => None,
        })
        .skip(1)
        .step_by(2)
        .collect();
    let body = &content[first..];
    // Each token's start, and the index of the last token of the object it
    // opens (itself unless it opens an array or dictionary).
    let mut starts: Vec<u32> = Vec::new();
    let mut ends: Vec<u32> = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    for (pos, token) in Lexer::new(body) {
        let index = starts.len();
        if index > limits::MAX_PDF_OBJECT_TOKENS {
            return Err(TooComplex::over("tokens in an object stream", limits::MAX_PDF_OBJECT_TOKENS).into());
        }
        if index.is_multiple_of(CHECK_EVERY) {
            meter.check()?;
        }
        starts.push(u32::try_from(pos).unwrap_or(u32::MAX));
        ends.push(u32::try_from(index).unwrap_or(u32::MAX));
        match token {
            Token::ArrayOpen | Token::DictOpen => open.push(index),
            Token::ArrayClose | Token::DictClose => {
                if let Some(o) = open.pop() {
                    ends[o] = u32::try_from(index).unwrap_or(u32::MAX);
                }
            }
            _ => {}
        }
        watch.token(token)?;
    }
    let last = u32::try_from(starts.len().saturating_sub(1)).unwrap_or(u32::MAX);
    for o in open {
        ends[o] = last;
    }
    let mut total = 0usize;
    for offset in offsets {
        let Ok(offset) = u32::try_from(offset) else { continue };
        let i = starts.partition_point(|&s| s < offset);
        if let Some(&end) = ends.get(i) {
            total = total.saturating_add(end as usize - i + 1);
        }
    }
    Ok(total)
}

/// Checks a whole PDF file before it is loaded; returns the tokens counted.
pub(crate) fn check_document(bytes: &[u8], meter: &Meter) -> Result<usize, Stopped> {
    let mut watch = Watch::default();
    let mut lexer = Lexer::new(bytes);
    let mut object_tokens = 0usize;
    let mut seen = 0usize;
    while let Some((_, token)) = lexer.next() {
        seen += 1;
        if seen.is_multiple_of(CHECK_EVERY) {
            meter.check()?;
        }
        if token != Token::Keyword(b"stream") {
            watch.token(token)?;
            continue;
        }
        let dict = std::mem::take(&mut watch.dict);
        // A length beyond any limit is a claim the file makes about itself,
        // as a page count is: refused, not read to see if it is true.
        let declared = dict.length.map(|l| l as u64).into_iter().chain(dict.decoded_length).max();
        if let Some(declared) = declared.filter(|&d| d > limits::MAX_DOCUMENT_CONTENT_BYTES as u64) {
            return Err(TooComplex::over(
                format!("a stream's declared length of {declared} bytes"),
                limits::MAX_DOCUMENT_CONTENT_BYTES,
            )
            .into());
        }
        let (data, resume) = stream_data(bytes, lexer.position(), dict.length);
        lexer.seek(resume);
        match dict.kind.as_deref() {
            Some(b"ObjStm") => {
                let Some(content) = inflate(data, &dict.filters, limits::MAX_OBJECT_STREAM_BYTES, "an object stream")?
                else {
                    continue;
                };
                let mut inner = Watch::default();
                object_tokens = object_tokens.saturating_add(object_stream_tokens(
                    &content,
                    dict.first.unwrap_or(0),
                    &mut inner,
                    meter,
                )?);
            }
            Some(b"XRef") => {
                inflate(data, &dict.filters, limits::MAX_XREF_STREAM_BYTES, "a cross-reference stream")?;
            }
            _ => {}
        }
        if watch.tokens.saturating_add(object_tokens) > limits::MAX_PDF_OBJECT_TOKENS {
            break;
        }
    }
    let total = watch.tokens.saturating_add(object_tokens);
    if total > limits::MAX_PDF_OBJECT_TOKENS {
        return Err(
            TooComplex::over("the objects' tokens (numbers, names, strings…)", limits::MAX_PDF_OBJECT_TOKENS).into()
        );
    }
    Ok(total)
}

/// Checks a content stream (a page's, or a form XObject's) before its
/// operations are decoded; returns its operator count.
pub(crate) fn check_content(data: &[u8]) -> Result<usize, TooComplex> {
    let mut lexer = Lexer::new(data);
    let mut operators = 0usize;
    let mut operands = 0usize;
    let mut depth = 0usize;
    while let Some((_, token)) = lexer.next() {
        match token {
            Token::Keyword(b"true" | b"false" | b"null") => operands += 1,
            Token::Keyword(op) => {
                operators += 1;
                operands = 0;
                if operators > limits::MAX_PDF_OPERATORS {
                    return Err(TooComplex::over("content operators", limits::MAX_PDF_OPERATORS));
                }
                if op == b"ID" {
                    // Inline image data, up to the `EI` that lopdf stops at:
                    // after white space, before white space or the end.
                    let from = lexer.position();
                    let end = data[from..]
                        .windows(3)
                        .position(|w| is_whitespace(w[0]) && &w[1..] == b"EI")
                        .map_or(data.len(), |p| from + p + 3);
                    lexer.seek(end);
                }
            }
            Token::ArrayOpen | Token::DictOpen => {
                operands += 1;
                depth += 1;
                if depth > limits::MAX_NESTING_DEPTH {
                    return Err(TooComplex::over("arrays nested in content", limits::MAX_NESTING_DEPTH));
                }
            }
            Token::ArrayClose | Token::DictClose => depth = depth.saturating_sub(1),
            _ => operands += 1,
        }
        if operands > limits::MAX_OPERANDS {
            return Err(TooComplex::over("operands of one content operator", limits::MAX_OPERANDS));
        }
    }
    Ok(operators)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::WorkBudget;

    fn check(bytes: &[u8]) -> Result<usize, Stopped> {
        check_document(bytes, &WorkBudget::new(limits::DOCUMENT_CPU_TIME).meter())
    }

    #[test]
    fn content_costs() {
        assert_eq!(check_content(b"BT /F1 12 Tf [(a) -20 (b)] TJ ET"), Ok(4));
        assert!(check_content(&b"0 ".repeat(limits::MAX_OPERANDS + 1)).is_err());
        assert!(check_content(&b"[".repeat(limits::MAX_NESTING_DEPTH + 1)).is_err());
        // Inline image data is not content.
        let mut image = b"BI /W 100 /H 100 /BPC 8 /CS /G ID ".to_vec();
        image.extend(b"0 ".repeat(limits::MAX_OPERANDS + 1));
        image.extend(b"\nEI Q");
        assert_eq!(check_content(&image), Ok(3));
    }

    #[test]
    fn page_counts_nesting_and_tokens() {
        assert!(check(b"1 0 obj << /Type /Pages /Kids [2 0 R] /Count 3 >> endobj").is_ok());
        let err = check(b"1 0 obj << /Count 100000 /Kids [2 0 R] /Type /Pages >> endobj").unwrap_err();
        assert!(err.to_string().contains("100000 pages"), "{err}");
        let deep = [b"1 0 obj ".to_vec(), b"[".repeat(1000), b"]".repeat(1000), b" endobj".to_vec()].concat();
        assert!(check(&deep).unwrap_err().to_string().contains("nested"));
        let many = [b"1 0 obj [".to_vec(), b"0 ".repeat(limits::MAX_PDF_OBJECT_TOKENS), b"] endobj".to_vec()].concat();
        assert!(check(&many).unwrap_err().to_string().contains("tokens"));
        // Stream data is not parsed as objects; a length is trusted where
        // `endstream` follows it, and refused beyond the limits.
        let stream = |length: usize| {
            [
                format!("1 0 obj << /Length {length} >> stream\n").into_bytes(),
                b"[".repeat(1000),
                b"\nendstream endobj".to_vec(),
            ]
            .concat()
        };
        assert!(check(&stream(1000)).is_ok());
        assert!(check(&stream(10)).is_ok());
        assert!(check(&stream(1 << 30)).unwrap_err().to_string().contains("declared length of 1073741824"));
    }

    #[test]
    fn overlapping_objects_in_an_object_stream_are_paid_per_entry() {
        // Entries at offsets 0, 1, 2…: each parses the nested arrays from
        // there to the end, and all share the zeros inside.
        let n = 40usize;
        let zeros = limits::MAX_PDF_OBJECT_TOKENS / (n / 2);
        let body = [b"[".repeat(n), b"0 ".repeat(zeros), b"]".repeat(n)].concat();
        let index: String = (0..n).map(|i| format!("{} {i} ", i + 1)).collect();
        let content = [index.as_bytes(), &body].concat();
        let mut watch = Watch::default();
        let meter = WorkBudget::new(limits::DOCUMENT_CPU_TIME).meter();
        let cost = object_stream_tokens(&content, index.len(), &mut watch, &meter).unwrap();
        assert!(cost > n * zeros, "{cost}");
        assert!(watch.tokens < limits::MAX_PDF_OBJECT_TOKENS, "the body alone is within the limit");
    }
}
