//! A PDF lexer that allocates nothing (PDF 32000-1 §7.2): enough to count
//! what lopdf would build from some bytes before it builds it.
//!
//! lopdf turns every token into an `Object` and every content-stream
//! operation into a `Vec` of them; on hostile bytes that is where the
//! memory goes (DEPENDENCIES.md: ~550 times the bytes of a content stream).
//! This lexer only finds where tokens start and what kind they are, so the
//! cost checks in [`crate::cost`] can refuse a document first.

/// What a token is; strings and names are not decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Token<'a> {
    Number(&'a [u8]),
    Name(&'a [u8]),
    /// A literal `( … )` or hexadecimal `< … >` string.
    String,
    ArrayOpen,
    ArrayClose,
    DictOpen,
    DictClose,
    /// Anything else made of regular characters: operators, `obj`, `R`,
    /// `stream`, `true`, `null`…
    Keyword(&'a [u8]),
}

pub(crate) fn is_whitespace(b: u8) -> bool {
    matches!(b, b'\0' | b'\t' | b'\n' | b'\x0C' | b'\r' | b' ')
}

fn is_delimiter(b: u8) -> bool {
    matches!(b, b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%')
}

fn is_regular(b: u8) -> bool {
    !is_whitespace(b) && !is_delimiter(b)
}

/// The tokens of `data`, each with the offset it starts at.
pub(crate) struct Lexer<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Lexer { data, pos: 0 }
    }

    /// Where the next token would start (after what was read).
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// Moves on to `pos` (e.g. past a stream's data).
    pub(crate) fn seek(&mut self, pos: usize) {
        self.pos = pos.min(self.data.len());
    }

    fn run_while(&mut self, pred: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while self.pos < self.data.len() && pred(self.data[self.pos]) {
            self.pos += 1;
        }
        &self.data[start..self.pos]
    }

    /// Skips a literal string's body after its `(`: nested parentheses
    /// balance, a backslash escapes the next byte.
    fn skip_literal_string(&mut self) {
        let mut depth = 1usize;
        while self.pos < self.data.len() {
            match self.data[self.pos] {
                b'\\' => self.pos += 1,
                b'(' => depth += 1,
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        self.pos += 1;
                        return;
                    }
                }
                _ => {}
            }
            self.pos += 1;
        }
    }
}

impl<'a> Iterator for Lexer<'a> {
    type Item = (usize, Token<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.run_while(is_whitespace);
            let start = self.pos;
            let &b = self.data.get(self.pos)?;
            self.pos += 1;
            let token = match b {
                b'%' => {
                    self.run_while(|c| c != b'\n' && c != b'\r');
                    continue;
                }
                b'(' => {
                    self.skip_literal_string();
                    Token::String
                }
                b'<' if self.data.get(self.pos) == Some(&b'<') => {
                    self.pos += 1;
                    Token::DictOpen
                }
                b'<' => {
                    self.run_while(|c| c != b'>');
                    self.pos = (self.pos + 1).min(self.data.len());
                    Token::String
                }
                b'>' if self.data.get(self.pos) == Some(&b'>') => {
                    self.pos += 1;
                    Token::DictClose
                }
                b'[' => Token::ArrayOpen,
                b']' => Token::ArrayClose,
                b'/' => Token::Name(self.run_while(is_regular)),
                // A stray `)` or `>`, or PostScript braces: no object.
                b')' | b'>' | b'{' | b'}' => continue,
                _ => {
                    self.pos = start;
                    let word = self.run_while(is_regular);
                    if word[0].is_ascii_digit() || matches!(word[0], b'+' | b'-' | b'.') {
                        Token::Number(word)
                    } else {
                        Token::Keyword(word)
                    }
                }
            };
            return Some((start, token));
        }
    }
}

/// Where `needle` first occurs in `haystack` at or after `from`.
pub(crate) fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|p| p + from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(data: &[u8]) -> Vec<Token<'_>> {
        Lexer::new(data).map(|(_, t)| t).collect()
    }

    #[test]
    fn tokens_of_objects_and_content() {
        use Token::*;
        assert_eq!(
            kinds(b"1 0 obj << /Type /Page /Kids [2 0 R] >> endobj"),
            vec![
                Number(b"1"),
                Number(b"0"),
                Keyword(b"obj"),
                DictOpen,
                Name(b"Type"),
                Name(b"Page"),
                Name(b"Kids"),
                ArrayOpen,
                Number(b"2"),
                Number(b"0"),
                Keyword(b"R"),
                ArrayClose,
                DictClose,
                Keyword(b"endobj")
            ]
        );
        assert_eq!(
            kinds(b"BT %comment (not a string)\n/F1 12 Tf (a (nested) \\) str) Tj <48656c6c6f> Tj -.5 Tw ET"),
            vec![
                Keyword(b"BT"),
                Name(b"F1"),
                Number(b"12"),
                Keyword(b"Tf"),
                String,
                Keyword(b"Tj"),
                String,
                Keyword(b"Tj"),
                Number(b"-.5"),
                Keyword(b"Tw"),
                Keyword(b"ET")
            ]
        );
    }
}
