//! PDF text in reading order.
//!
//! lopdf's own `extract_text` returns strings in content-stream order, which
//! is the order a producer happened to paint them: a label and its value
//! drawn by different parts of a report generator end up lines apart. This
//! pass interprets the text operators instead (PDF 32000-1 §9.4: `BT`,
//! `Tf`, `Td`/`TD`/`Tm`/`T*`, `Tj`/`TJ`/`'`/`"`, `Tc`/`Tw`/`Tz`/`TL`/`Ts`,
//! and `cm`/`q`/`Q` and form XObjects for the graphics state), places every
//! glyph run at its position on the page, groups runs into lines by
//! baseline, orders each line left to right, and keeps the gaps: a space
//! between words, a tab where a column gap is (at least two em wide).
//!
//! Glyph widths come from the font's `/Widths` (simple fonts) or `/W`
//! (CID fonts); fonts without them (the standard 14) get approximate
//! Helvetica widths, which only decide where spaces go.
//!
//! Hostile input is bounded by [`crate::limits`]: content bytes are capped
//! when decompressed, operators and operands are counted before lopdf
//! decodes a stream ([`crate::cost::check_content`]), operations are then
//! parsed one at a time (never collected: lopdf's parsed form is ~550 times
//! the bytes), and pages, runs, form nesting and CPU time all have limits.
//! A document over one of them fails ("too complex"); the [`Meter`] is
//! looked at every few thousand operators, so a cancelled stage stops.

use std::collections::{BTreeMap, HashMap};

use lopdf::content::Content;
use lopdf::{Dictionary, Document, Encoding, Object, ObjectId};

use crate::budget::{Meter, Stopped};
use crate::limits::{self, TooComplex};
use crate::pdf::PdfText;

type Matrix = [f32; 6];

const IDENTITY: Matrix = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0];

fn mul(m1: &Matrix, m2: &Matrix) -> Matrix {
    [
        m1[0] * m2[0] + m1[1] * m2[2],
        m1[0] * m2[1] + m1[1] * m2[3],
        m1[2] * m2[0] + m1[3] * m2[2],
        m1[2] * m2[1] + m1[3] * m2[3],
        m1[4] * m2[0] + m1[5] * m2[2] + m2[4],
        m1[4] * m2[1] + m1[5] * m2[3] + m2[5],
    ]
}

fn translate(tx: f32, ty: f32) -> Matrix {
    [1.0, 0.0, 0.0, 1.0, tx, ty]
}

/// A piece of text drawn at one place.
#[derive(Debug, Clone)]
struct Run {
    x: f32,
    y: f32,
    x_end: f32,
    size: f32,
    text: String,
    /// Drawn upright (not rotated): only those form lines with others.
    upright: bool,
}

/// What the interpreter needs of a font.
struct FontInfo<'a> {
    encoding: Option<Encoding<'a>>,
    /// The font's `/ToUnicode` CMap, read here: lopdf falls back to the
    /// standard encoding on CMaps it cannot parse (LibreOffice's, among
    /// others), which turns a whole document into symbols.
    to_unicode: Option<ToUnicode>,
    /// CID fonts (Type0) use two-byte codes.
    two_byte: bool,
    first_char: u32,
    widths: Vec<f32>,
    cid_widths: HashMap<u32, f32>,
    default_width: Option<f32>,
}

impl FontInfo<'_> {
    /// Width of a code in text space units (thousandths of an em).
    fn width(&self, code: u32, decoded: Option<char>) -> f32 {
        if self.two_byte {
            return self.cid_widths.get(&code).copied().or(self.default_width).unwrap_or(1000.0);
        }
        if let Some(w) = code.checked_sub(self.first_char).and_then(|i| self.widths.get(i as usize)) {
            return *w;
        }
        self.default_width.unwrap_or_else(|| approximate_width(decoded.unwrap_or(' ')))
    }
}

/// Helvetica-like widths for fonts that give none (the standard 14).
fn approximate_width(c: char) -> f32 {
    match c {
        ' ' | '.' | ',' | ':' | ';' | '!' | '|' | '\'' => 278.0,
        'i' | 'j' | 'l' => 222.0,
        'f' | 't' | 'I' | '/' | '(' | ')' | '[' | ']' | '-' => 300.0,
        'r' => 333.0,
        'm' => 833.0,
        'w' => 722.0,
        'M' | 'W' => 850.0,
        c if c.is_ascii_digit() => 556.0,
        c if c.is_uppercase() => 680.0,
        _ => 556.0,
    }
}

/// A ToUnicode CMap (PDF 32000-1 §9.10.3): `bfchar` and `bfrange`
/// mappings from codes to UTF-16BE strings.
struct ToUnicode {
    map: HashMap<u32, String>,
    /// Bytes per code, from the source codes' hex length.
    code_len: usize,
}

impl ToUnicode {
    fn parse(data: &[u8]) -> Option<ToUnicode> {
        let text = String::from_utf8_lossy(data);
        let mut map = HashMap::new();
        let mut lens: HashMap<usize, usize> = HashMap::new();
        let hex = |t: &str| -> Option<(u32, usize)> {
            let h = t.strip_prefix('<')?.strip_suffix('>')?;
            if h.is_empty() || h.len() > 8 {
                return None;
            }
            u32::from_str_radix(h, 16).ok().map(|v| (v, h.len().div_ceil(2)))
        };
        let utf16 = |t: &str| -> Option<String> {
            let h = t.strip_prefix('<')?.strip_suffix('>')?;
            let units: Vec<u16> = h
                .as_bytes()
                .chunks(4)
                .filter_map(|c| std::str::from_utf8(c).ok().and_then(|c| u16::from_str_radix(c, 16).ok()))
                .collect();
            Some(String::from_utf16_lossy(&units))
        };
        // Tokens: hex strings, brackets and words, whatever the spacing.
        let spaced = text.replace('<', " <").replace('>', "> ").replace('[', " [ ").replace(']', " ] ");
        let tokens: Vec<&str> = spaced.split_whitespace().collect();
        let mut i = 0;
        let mut section = "";
        while i < tokens.len() && map.len() < 65536 {
            match tokens[i] {
                "beginbfchar" => section = "char",
                "beginbfrange" => section = "range",
                "endbfchar" | "endbfrange" => section = "",
                t if section == "char" => {
                    if let (Some((code, len)), Some(dst)) = (hex(t), tokens.get(i + 1).and_then(|d| utf16(d))) {
                        map.insert(code, dst);
                        *lens.entry(len).or_default() += 1;
                        i += 1;
                    }
                }
                t if section == "range" => {
                    let (Some((lo, len)), Some((hi, _))) = (hex(t), tokens.get(i + 1).and_then(|h| hex(h))) else {
                        i += 1;
                        continue;
                    };
                    *lens.entry(len).or_default() += 1;
                    let hi = hi.min(lo.saturating_add(65535));
                    match tokens.get(i + 2).copied() {
                        Some("[") => {
                            let mut j = i + 3;
                            let mut code = lo;
                            while j < tokens.len() && tokens[j] != "]" {
                                if let Some(dst) = utf16(tokens[j]) {
                                    map.insert(code, dst);
                                }
                                code = code.saturating_add(1);
                                j += 1;
                            }
                            i = j;
                        }
                        Some(d) => {
                            if let Some(start) = utf16(d) {
                                let mut units: Vec<u16> = start.encode_utf16().collect();
                                for code in lo..=hi {
                                    map.insert(code, String::from_utf16_lossy(&units));
                                    if let Some(last) = units.last_mut() {
                                        *last = last.wrapping_add(1);
                                    }
                                }
                            }
                            i += 2;
                        }
                        None => {}
                    }
                }
                _ => {}
            }
            i += 1;
        }
        let code_len = lens.into_iter().max_by_key(|(_, n)| *n).map_or(1, |(l, _)| l.clamp(1, 4));
        (!map.is_empty()).then_some(ToUnicode { map, code_len })
    }
}

fn number(o: &Object) -> Option<f32> {
    o.as_float().ok().filter(|f| f.is_finite())
}

fn deref<'a>(doc: &'a Document, o: &'a Object) -> &'a Object {
    doc.dereference(o).map(|(_, o)| o).unwrap_or(o)
}

fn font_info<'a>(doc: &'a Document, font: &'a Dictionary) -> FontInfo<'a> {
    let encoding = font.get_font_encoding_with_limit(doc, limits::MAX_PAGE_CONTENT_BYTES).ok();
    let subtype = font.get(b"Subtype").and_then(Object::as_name).unwrap_or(b"");
    let to_unicode = font
        .get(b"ToUnicode")
        .ok()
        .map(|o| deref(doc, o))
        .and_then(|o| o.as_stream().ok())
        .and_then(|s| s.decompressed_content_with_limit(limits::MAX_CMAP_BYTES).ok())
        .and_then(|data| ToUnicode::parse(&data));
    let mut info = FontInfo {
        encoding,
        to_unicode,
        two_byte: subtype == b"Type0",
        first_char: 0,
        widths: Vec::new(),
        cid_widths: HashMap::new(),
        default_width: None,
    };
    if info.two_byte {
        let descendant = font
            .get(b"DescendantFonts")
            .ok()
            .map(|o| deref(doc, o))
            .and_then(|o| o.as_array().ok())
            .and_then(|a| a.first())
            .map(|o| deref(doc, o))
            .and_then(|o| o.as_dict().ok());
        if let Some(d) = descendant {
            info.default_width = Some(d.get(b"DW").ok().and_then(number).unwrap_or(1000.0));
            if let Some(w) = d.get(b"W").ok().map(|o| deref(doc, o)).and_then(|o| o.as_array().ok()) {
                parse_cid_widths(doc, w, &mut info.cid_widths);
            }
        }
    } else {
        info.first_char = font.get(b"FirstChar").ok().and_then(|o| o.as_i64().ok()).unwrap_or(0).clamp(0, 65535) as u32;
        if let Some(w) = font.get(b"Widths").ok().map(|o| deref(doc, o)).and_then(|o| o.as_array().ok()) {
            info.widths = w.iter().take(65536).map(|o| number(deref(doc, o)).unwrap_or(0.0)).collect();
        }
        info.default_width = font
            .get(b"FontDescriptor")
            .ok()
            .map(|o| deref(doc, o))
            .and_then(|o| o.as_dict().ok())
            .and_then(|d| d.get(b"MissingWidth").ok())
            .and_then(number)
            .filter(|w| *w > 0.0);
    }
    info
}

/// `/W [c [w1 w2 ...] cfirst clast w ...]`, bounded.
fn parse_cid_widths(doc: &Document, w: &[Object], out: &mut HashMap<u32, f32>) {
    let mut i = 0;
    while i < w.len() && out.len() < 65536 {
        let Some(first) = deref(doc, &w[i]).as_i64().ok().map(|c| c.clamp(0, 0xFFFF) as u32) else { break };
        match w.get(i + 1).map(|o| deref(doc, o)) {
            Some(Object::Array(list)) => {
                for (k, o) in list.iter().take(65536).enumerate() {
                    out.insert(first + k as u32, number(deref(doc, o)).unwrap_or(1000.0));
                }
                i += 2;
            }
            Some(o) => {
                let last = o.as_i64().ok().map(|c| c.clamp(0, 0xFFFF) as u32).unwrap_or(first);
                let width = w.get(i + 2).and_then(|o| number(deref(doc, o))).unwrap_or(1000.0);
                for c in first..=last.min(first + 65536) {
                    out.insert(c, width);
                }
                i += 3;
            }
            None => break,
        }
    }
}

#[derive(Clone)]
struct TextState {
    font: Option<Vec<u8>>,
    size: f32,
    char_spacing: f32,
    word_spacing: f32,
    scale: f32,
    leading: f32,
    rise: f32,
}

impl Default for TextState {
    fn default() -> Self {
        TextState { font: None, size: 0.0, char_spacing: 0.0, word_spacing: 0.0, scale: 1.0, leading: 0.0, rise: 0.0 }
    }
}

/// Decompressed content bytes read so far, against both content limits.
struct ContentBytes<'p> {
    document: &'p mut usize,
}

impl ContentBytes<'_> {
    /// The most the next stream may inflate to, and what running out of it
    /// means.
    fn allowance(&self) -> (usize, &'static str, usize) {
        let remaining = limits::MAX_DOCUMENT_CONTENT_BYTES.saturating_sub(*self.document);
        if remaining < limits::MAX_PAGE_CONTENT_BYTES {
            (remaining, "decompressed content bytes of the document", limits::MAX_DOCUMENT_CONTENT_BYTES)
        } else {
            (limits::MAX_PAGE_CONTENT_BYTES, "decompressed bytes of one content stream", limits::MAX_PAGE_CONTENT_BYTES)
        }
    }

    /// Inflates a content stream within the allowance. `Ok(None)`: the
    /// stream is damaged (not a limit).
    fn inflate(
        &mut self,
        inflate: impl FnOnce(usize) -> lopdf::Result<Vec<u8>>,
    ) -> Result<Option<Vec<u8>>, TooComplex> {
        let (allowed, what, limit) = self.allowance();
        match inflate(allowed) {
            Ok(data) => {
                *self.document += data.len();
                Ok(Some(data))
            }
            Err(lopdf::Error::Decompress(lopdf::DecompressError::MemoryLimitExceeded { .. })) => {
                Err(TooComplex::over(what, limit))
            }
            Err(_) => Ok(None),
        }
    }
}

struct Interpreter<'a, 'f> {
    doc: &'a Document,
    fonts: &'f mut HashMap<ObjectId, FontInfo<'a>>,
    runs: Vec<Run>,
    operators: usize,
    content: ContentBytes<'f>,
    meter: &'f Meter,
    /// Part of the content could not be decoded (damage, not a limit).
    damaged: bool,
    synthetic_fonts: u16,
}

/// A font or XObject resource by name, looked up in a list of resource
/// dictionaries (nearest first).
fn resource<'a>(
    doc: &'a Document,
    resources: &[&'a Dictionary],
    kind: &[u8],
    name: &[u8],
) -> Option<(Option<ObjectId>, &'a Object)> {
    resources.iter().find_map(|r| {
        let dict = r.get(kind).ok().map(|o| deref(doc, o)).and_then(|o| o.as_dict().ok())?;
        let o = dict.get(name).ok()?;
        doc.dereference(o).ok()
    })
}

impl<'a> Interpreter<'a, '_> {
    fn font(&mut self, resources: &[&'a Dictionary], name: &[u8]) -> Option<ObjectId> {
        let (id, obj) = resource(self.doc, resources, b"Font", name)?;
        // Direct font dictionaries (no object id) are rare: each use gets a
        // synthetic id, up to a bound.
        let id = id.unwrap_or_else(|| {
            self.synthetic_fonts = (self.synthetic_fonts + 1).min(256);
            (u32::MAX, self.synthetic_fonts)
        });
        if !self.fonts.contains_key(&id) || id.0 == u32::MAX {
            let dict = obj.as_dict().ok()?;
            self.fonts.insert(id, font_info(self.doc, dict));
        }
        Some(id)
    }

    fn run(&mut self, content: &[u8], resources: &[&'a Dictionary], ctm: Matrix, depth: usize) -> Result<(), Stopped> {
        // Operands pile up in lopdf until their operator: count them first.
        crate::cost::check_content(content)?;
        let mut ctm = ctm;
        let mut gstack: Vec<(Matrix, TextState)> = Vec::new();
        let mut ts = TextState::default();
        let mut tm = IDENTITY;
        let mut tlm = IDENTITY;
        let mut font_id: Option<ObjectId> = None;
        for op in Content::decode_iter(content) {
            let Ok(op) = op else {
                self.damaged = true;
                break;
            };
            self.operators += 1;
            if self.operators > limits::MAX_PDF_OPERATORS {
                return Err(TooComplex::over("content operators of the page", limits::MAX_PDF_OPERATORS).into());
            }
            if self.runs.len() > limits::MAX_PAGE_RUNS {
                return Err(TooComplex::over("glyph runs of the page", limits::MAX_PAGE_RUNS).into());
            }
            if self.operators.is_multiple_of(4096) {
                self.meter.check()?;
            }
            let args = &op.operands;
            let n = |i: usize| args.get(i).and_then(number).unwrap_or(0.0);
            match op.operator.as_str() {
                "q" if gstack.len() < limits::MAX_GRAPHICS_STATES => gstack.push((ctm, ts.clone())),
                "Q" => {
                    if let Some((m, t)) = gstack.pop() {
                        ctm = m;
                        let font = t.font.clone();
                        ts = t;
                        if font.is_none() {
                            font_id = None;
                        } else if let Some(name) = font {
                            font_id = self.font(resources, &name);
                        }
                    }
                }
                "cm" if args.len() == 6 => ctm = mul(&[n(0), n(1), n(2), n(3), n(4), n(5)], &ctm),
                "BT" => {
                    tm = IDENTITY;
                    tlm = IDENTITY;
                }
                "Tf" => {
                    ts.size = n(1);
                    ts.font = args.first().and_then(|o| o.as_name().ok()).map(<[u8]>::to_vec);
                    font_id = ts.font.clone().and_then(|name| self.font(resources, &name));
                }
                "Tc" => ts.char_spacing = n(0),
                "Tw" => ts.word_spacing = n(0),
                "Tz" => ts.scale = n(0) / 100.0,
                "TL" => ts.leading = n(0),
                "Ts" => ts.rise = n(0),
                "Td" => {
                    tlm = mul(&translate(n(0), n(1)), &tlm);
                    tm = tlm;
                }
                "TD" => {
                    ts.leading = -n(1);
                    tlm = mul(&translate(n(0), n(1)), &tlm);
                    tm = tlm;
                }
                "Tm" if args.len() == 6 => {
                    tlm = [n(0), n(1), n(2), n(3), n(4), n(5)];
                    tm = tlm;
                }
                "T*" => {
                    tlm = mul(&translate(0.0, -ts.leading), &tlm);
                    tm = tlm;
                }
                "Tj" | "'" | "\"" | "TJ" => {
                    if op.operator == "'" || op.operator == "\"" {
                        if op.operator == "\"" {
                            ts.word_spacing = n(0);
                            ts.char_spacing = n(1);
                        }
                        tlm = mul(&translate(0.0, -ts.leading), &tlm);
                        tm = tlm;
                    }
                    let items: Vec<&Object> = match (op.operator.as_str(), args.last()) {
                        ("TJ", Some(Object::Array(a))) => a.iter().collect(),
                        (_, Some(o)) => vec![o],
                        _ => Vec::new(),
                    };
                    for item in items {
                        match item {
                            Object::String(bytes, _) => self.show(bytes, font_id, &ts, &mut tm, &ctm),
                            o => {
                                if let Some(adj) = number(o) {
                                    let tx = -adj / 1000.0 * ts.size * ts.scale;
                                    tm = mul(&translate(tx, 0.0), &tm);
                                }
                            }
                        }
                    }
                }
                "Do" if depth < limits::MAX_FORM_DEPTH => {
                    let Some(name) = args.first().and_then(|o| o.as_name().ok()) else { continue };
                    let Some((_, Object::Stream(form))) = resource(self.doc, resources, b"XObject", name) else {
                        continue;
                    };
                    if form.dict.get(b"Subtype").and_then(Object::as_name).ok() != Some(b"Form".as_slice()) {
                        continue;
                    }
                    let Some(data) = self.content.inflate(|max| form.decompressed_content_with_limit(max))? else {
                        self.damaged = true;
                        continue;
                    };
                    let matrix = form
                        .dict
                        .get(b"Matrix")
                        .ok()
                        .and_then(|o| o.as_array().ok())
                        .filter(|a| a.len() == 6)
                        .map(|a| {
                            let v: Vec<f32> = a.iter().map(|o| number(o).unwrap_or(0.0)).collect();
                            [v[0], v[1], v[2], v[3], v[4], v[5]]
                        })
                        .unwrap_or(IDENTITY);
                    let mut inner: Vec<&'a Dictionary> = Vec::new();
                    if let Some(r) =
                        form.dict.get(b"Resources").ok().map(|o| deref(self.doc, o)).and_then(|o| o.as_dict().ok())
                    {
                        inner.push(r);
                    }
                    inner.extend_from_slice(resources);
                    self.run(&data, &inner, mul(&matrix, &ctm), depth + 1)?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn show(&mut self, bytes: &[u8], font_id: Option<ObjectId>, ts: &TextState, tm: &mut Matrix, ctm: &Matrix) {
        let Some(font) = font_id.and_then(|id| self.fonts.get(&id)) else { return };
        let step = match &font.to_unicode {
            Some(cmap) if font.two_byte || cmap.code_len > 1 => cmap.code_len.max(if font.two_byte { 2 } else { 1 }),
            _ if font.two_byte => 2,
            _ => 1,
        };
        let text = match (&font.to_unicode, &font.encoding) {
            (Some(cmap), _) => bytes
                .chunks(step)
                .map(|c| {
                    let code = c.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
                    cmap.map.get(&code).cloned().unwrap_or_else(|| {
                        // Unmapped codes of a simple font: the encoding's guess.
                        font.encoding.as_ref().and_then(|e| e.bytes_to_string(c).ok()).unwrap_or_default()
                    })
                })
                .collect(),
            (None, Some(enc)) => enc.bytes_to_string(bytes).unwrap_or_default(),
            (None, None) => bytes.iter().map(|&b| b as char).collect(),
        };
        let chars: Vec<char> = text.chars().collect();
        let codes: Vec<u32> =
            bytes.chunks(step).map(|c| c.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b))).collect();
        let trm = mul(&[ts.size * ts.scale, 0.0, 0.0, ts.size, 0.0, ts.rise], &mul(tm, ctm));
        let (x, y) = (trm[4], trm[5]);
        let mut advance = 0.0;
        for (i, &code) in codes.iter().enumerate() {
            let decoded = if codes.len() == chars.len() { chars.get(i).copied() } else { None };
            let w = font.width(code, decoded) / 1000.0;
            let space = if step == 1 && code == 32 { ts.word_spacing } else { 0.0 };
            advance += (w * ts.size + ts.char_spacing + space) * ts.scale;
        }
        *tm = mul(&translate(advance, 0.0), tm);
        let end = mul(tm, ctm);
        let end = mul(&[ts.size * ts.scale, 0.0, 0.0, ts.size, 0.0, ts.rise], &end);
        // The size as drawn on the page: the text matrix and CTM scale it.
        let size = (trm[2] * trm[2] + trm[3] * trm[3]).sqrt();
        let upright = trm[1].abs() <= 0.1 * trm[0].abs().max(f32::EPSILON) && trm[0] > 0.0 && trm[3] > 0.0;
        let text: String = text.chars().filter(|c| !c.is_control()).collect();
        if text.is_empty() {
            return;
        }
        self.runs.push(Run { x, y, x_end: end[4], size, text, upright });
    }
}

/// One laid-out line: runs on a common baseline, left to right.
fn lines_of(mut runs: Vec<Run>) -> Vec<String> {
    let (upright, rotated): (Vec<Run>, Vec<Run>) = runs.drain(..).partition(|r| r.upright);
    let mut runs = upright;
    runs.sort_by(|a, b| b.y.total_cmp(&a.y).then(a.x.total_cmp(&b.x)));
    let mut lines: Vec<Vec<Run>> = Vec::new();
    for run in runs {
        let joins = lines.last().is_some_and(|line| {
            let base = line[0].y;
            let tolerance = 0.4 * line[0].size.min(run.size).max(1.0);
            (base - run.y).abs() <= tolerance
        });
        if joins {
            if let Some(line) = lines.last_mut() {
                line.push(run);
            }
        } else {
            lines.push(vec![run]);
        }
    }
    let mut out: Vec<String> = lines.into_iter().map(join_line).filter(|l| !l.trim().is_empty()).collect();
    // Rotated text (margins, stamps) as lines of their own, after the page.
    out.extend(rotated.into_iter().map(|r| r.text).filter(|t| !t.trim().is_empty()));
    out
}

fn join_line(mut runs: Vec<Run>) -> String {
    runs.sort_by(|a, b| a.x.total_cmp(&b.x));
    let mut out = String::new();
    // (end of the text so far, size and start of the last run, its text)
    let mut prev: Option<(f32, f32, f32, String)> = None;
    for run in runs {
        if let Some((end, size, start, prev_text)) = &prev {
            // Painted twice for a bold effect: the same text a hair apart.
            if *prev_text == run.text && (run.x - start).abs() < 0.2 * size.max(1.0) {
                continue;
            }
            let gap = run.x - end;
            let em = size.max(run.size).max(1.0);
            if gap > 2.0 * em {
                out.push('\t');
            } else if gap > 0.15 * em && !out.ends_with(' ') && !run.text.starts_with(' ') {
                out.push(' ');
            }
        }
        out.push_str(&run.text);
        let end = run.x_end.max(run.x);
        let end = prev.as_ref().map_or(end, |p| p.0.max(end));
        prev = Some((end, run.size, run.x, run.text));
    }
    // Runs often carry their own spacing; keep one space, but tabs as tabs.
    let mut cleaned = String::with_capacity(out.len());
    for part in out.split('\t') {
        if !cleaned.is_empty() {
            cleaned.push('\t');
        }
        cleaned.push_str(&part.split(' ').filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" "));
    }
    cleaned.trim_matches(|c: char| c == ' ' || c == '\t').to_owned()
}

/// One page's text in reading order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageText {
    pub number: u32,
    pub text: String,
    /// Part or all of the page's content could not be decoded: damage, not
    /// a limit (a limit fails the document).
    pub unreadable: bool,
}

/// A PDF's text laid out page by page, as far as it has been read. The
/// stages share one (through the context): classification reads the first
/// page, extraction the others, and no page is interpreted twice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PdfPages {
    /// Pages of the document.
    pub total: u32,
    /// The pages read so far, from the first, in order.
    pub read: Vec<PageText>,
    /// Decompressed content bytes read so far.
    content_bytes: usize,
}

impl PdfPages {
    pub fn new(doc: &Document) -> Self {
        PdfPages { total: u32::try_from(doc.page_iter().count()).unwrap_or(u32::MAX), ..PdfPages::default() }
    }

    /// Reads the pages up to page `up_to` (all when `None`) that are not
    /// read yet. Fails when the document goes over a limit
    /// ([`crate::limits`], "too complex"), or when the meter says stop.
    pub fn read(&mut self, doc: &Document, up_to: Option<u32>, meter: &Meter) -> Result<(), Stopped> {
        let pages: BTreeMap<u32, ObjectId> = doc.get_pages();
        if pages.len() > limits::MAX_PDF_PAGES {
            return Err(TooComplex::over(format!("{} pages", pages.len()), limits::MAX_PDF_PAGES).into());
        }
        self.total = u32::try_from(pages.len()).unwrap_or(u32::MAX);
        let mut fonts: HashMap<ObjectId, FontInfo<'_>> = HashMap::new();
        let from = self.read.last().map_or(0, |p| p.number);
        for (&number, &page_id) in pages.range(from + 1..=up_to.unwrap_or(u32::MAX)) {
            meter.check()?;
            meter.page_laid_out();
            let content = ContentBytes { document: &mut self.content_bytes };
            let page = match crate::pdf::guarded(|| page_text(doc, page_id, &mut fonts, content, meter)) {
                Ok(Ok(Some((text, damaged)))) => PageText { number, text, unreadable: damaged },
                Ok(Ok(None)) | Err(_) => PageText { number, text: String::new(), unreadable: true },
                Ok(Err(stopped)) => {
                    return Err(match stopped {
                        Stopped::TooComplex(e) => Stopped::TooComplex(e.context(format!("page {number}"))),
                        cancelled => cancelled,
                    });
                }
            };
            self.read.push(page);
        }
        Ok(())
    }

    /// The text of the pages read, pages separated by a blank line.
    pub fn text(&self) -> PdfText {
        self.text_up_to(None)
    }

    /// The text of the pages read up to page `up_to` (all when `None`).
    pub fn text_up_to(&self, up_to: Option<u32>) -> PdfText {
        let mut out = PdfText { pages: self.total, ..PdfText::default() };
        for page in self.read.iter().take_while(|p| up_to.is_none_or(|n| p.number <= n)) {
            if page.unreadable {
                out.unreadable_pages.push(page.number);
            }
            if !page.text.is_empty() {
                if !out.text.is_empty() {
                    out.text.push('\n');
                }
                out.text.push_str(&page.text);
                out.text.push('\n');
            }
        }
        out
    }

    /// The text of one page read.
    pub fn page(&self, number: u32) -> Option<&PageText> {
        self.read.iter().find(|p| p.number == number)
    }
}

/// Text of the first `max_pages` pages (all when `None`) in reading order,
/// pages separated by a blank line; see [`PdfPages`].
pub fn extract_text(doc: &Document, max_pages: Option<u32>, meter: &Meter) -> Result<PdfText, Stopped> {
    let mut pages = PdfPages::new(doc);
    pages.read(doc, max_pages, meter)?;
    Ok(pages.text())
}

/// The text of a page, and whether part of it was damaged; `None` when its
/// content or resources cannot be read at all.
fn page_text<'a>(
    doc: &'a Document,
    page_id: ObjectId,
    fonts: &mut HashMap<ObjectId, FontInfo<'a>>,
    mut content: ContentBytes<'_>,
    meter: &Meter,
) -> Result<Option<(String, bool)>, Stopped> {
    let Some(data) = content.inflate(|max| doc.get_page_content_with_limit(page_id, max))? else {
        return Ok(None);
    };
    let Ok((direct, ids)) = doc.get_page_resources(page_id) else { return Ok(None) };
    let mut resources: Vec<&Dictionary> = direct.into_iter().collect();
    resources.extend(ids.iter().filter_map(|id| doc.get_dictionary(*id).ok()));
    let mut interp =
        Interpreter { doc, fonts, runs: Vec::new(), operators: 0, content, meter, damaged: false, synthetic_fonts: 0 };
    interp.run(&data, &resources, IDENTITY, 0)?;
    let damaged = interp.damaged;
    let lines = lines_of(interp.runs);
    Ok(Some((lines.join("\n"), damaged)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_unicode_cmaps_with_chars_ranges_and_arrays() {
        let cmap = b"/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n\
            1 begincodespacerange <00> <FF> endcodespacerange\n\
            2 beginbfchar <01> <0052> <02><00E9> endbfchar\n\
            2 beginbfrange <10> <12> <0061> <20> <21> [<0058> <0059>] endbfrange\n\
            endcmap CMapName currentdict /CMap defineresource pop end end";
        let map = ToUnicode::parse(cmap).expect("parses");
        assert_eq!(map.code_len, 1);
        let text: String = [0x01u32, 0x02, 0x10, 0x11, 0x12, 0x20, 0x21].iter().map(|c| map.map[c].clone()).collect();
        assert_eq!(text, "RéabcXY");
        assert!(ToUnicode::parse(b"no mappings here").is_none());
    }

    fn run(x: f32, y: f32, text: &str) -> Run {
        // Helvetica-ish: half an em per character at 10 pt.
        let x_end = x + 5.0 * text.chars().count() as f32;
        Run { x, y, x_end, size: 10.0, text: text.to_owned(), upright: true }
    }

    #[test]
    fn runs_become_lines_by_baseline_with_spaces_and_column_gaps() {
        let runs = vec![
            run(300.0, 700.0, "RE-1"),
            run(56.0, 700.8, "Invoice"),
            run(93.0, 700.0, "no.:"),
            run(56.0, 685.0, "Total"),
            run(56.0, 685.0, "Total"), // painted twice for bold
            run(300.0, 684.5, "10.00"),
            run(56.0, 800.0, "ACME Ltd"),
        ];
        assert_eq!(lines_of(runs), vec!["ACME Ltd", "Invoice no.:\tRE-1", "Total\t10.00"]);
    }
}
