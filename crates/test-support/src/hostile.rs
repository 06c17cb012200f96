//! Hostile PDFs, built in memory for the tests: a few kilobytes each (the
//! largest about a megabyte), never committed. Each is a valid one-page
//! invoice PDF but for the one thing that makes it hostile, so that what
//! stops it is that thing and not some unrelated damage.

use std::io::Write;

use flate2::Compression;
use flate2::write::ZlibEncoder;

/// The visible text of every hostile PDF's page.
pub const PAGE_TEXT: &[u8] = b"BT /F1 10 Tf 56 700 Td (Invoice INV-1 Total 10.00 EUR) Tj ET\n";

const FONT: &[u8] = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>";

pub fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = ZlibEncoder::new(Vec::new(), Compression::best());
    e.write_all(data).expect("in memory");
    e.finish().expect("in memory")
}

/// A stream object's body: its dictionary (with `extra` keys) and data.
fn stream(extra: &str, data: &[u8], compress: bool) -> Vec<u8> {
    let (data, filter) = if compress { (zlib(data), " /Filter /FlateDecode") } else { (data.to_vec(), "") };
    let mut out = format!("<< /Length {}{filter} {extra} >>\nstream\n", data.len()).into_bytes();
    out.extend(data);
    out.extend(b"\nendstream");
    out
}

/// A PDF of `objects` (numbered from 1) with a classic cross-reference
/// table; object 1 is the catalog.
fn classic(objects: &[Vec<u8>]) -> Vec<u8> {
    let mut out = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend(body);
        out.extend(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for o in offsets {
        out.extend(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend(
        format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1).as_bytes(),
    );
    out
}

/// Catalog, page tree, page (font F1), content (object 4), font, then
/// `extra` objects from number 6.
fn one_page(content: Vec<u8>, extra: Vec<Vec<u8>>) -> Vec<u8> {
    let mut objects = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 /MediaBox [0 0 595 842] >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>".to_vec(),
        content,
        FONT.to_vec(),
    ];
    objects.extend(extra);
    classic(&objects)
}

/// A plain one-page PDF showing [`PAGE_TEXT`]: the control.
pub fn plain() -> Vec<u8> {
    one_page(stream("", PAGE_TEXT, true), Vec::new())
}

/// A 5 KB PDF whose page content inflates to 4 MiB of operands without an
/// operator: lopdf would hold two million `Object`s at once.
pub fn decompression_bomb() -> Vec<u8> {
    let mut content = PAGE_TEXT.to_vec();
    content.extend(b"0 ".repeat(2 << 20));
    one_page(stream("", &content, true), Vec::new())
}

/// Arrays nested 100,000 deep in an object of their own, and dictionaries
/// nested as deep in another; the page itself is fine.
pub fn deeply_nested_objects() -> Vec<u8> {
    let depth = 100_000;
    let arrays = [b"[".repeat(depth), b"]".repeat(depth)].concat();
    let dicts = [b"<< /A ".repeat(depth), b"1".to_vec(), b" >>".repeat(depth)].concat();
    one_page(stream("", PAGE_TEXT, true), vec![arrays, dicts])
}

/// 100,000 real page objects (and a page tree that declares them), packed
/// in an object stream with a cross-reference stream: about a megabyte.
pub fn hundred_thousand_pages() -> Vec<u8> {
    let n = 100_000usize;
    let first_page = 10usize;
    let kids: String = (0..n).map(|i| format!("{} 0 R ", first_page + i)).collect();
    let mut inner: Vec<(usize, Vec<u8>)> =
        vec![(2, format!("<< /Type /Pages /Kids [{kids}] /Count {n} /MediaBox [0 0 595 842] >>").into_bytes())];
    for i in 0..n {
        inner.push((
            first_page + i,
            b"<< /Type /Page /Parent 2 0 R /Resources << /Font << /F1 4 0 R >> >> /Contents 3 0 R >>".to_vec(),
        ));
    }
    let (mut index, mut body) = (String::new(), Vec::new());
    for (number, data) in &inner {
        index.push_str(&format!("{number} {} ", body.len()));
        body.extend(data);
        body.push(b'\n');
    }
    let packed = [index.as_bytes(), &body].concat();
    let mut out = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
    // (object number, offset) of the objects written directly.
    let mut direct: Vec<(usize, usize)> = Vec::new();
    let mut add = |out: &mut Vec<u8>, number: usize, data: Vec<u8>| {
        direct.push((number, out.len()));
        out.extend(format!("{number} 0 obj\n").as_bytes());
        out.extend(data);
        out.extend(b"\nendobj\n");
    };
    add(&mut out, 1, b"<< /Type /Catalog /Pages 2 0 R >>".to_vec());
    add(&mut out, 3, stream("", PAGE_TEXT, true));
    add(&mut out, 4, FONT.to_vec());
    add(&mut out, 5, stream(&format!("/Type /ObjStm /N {} /First {}", inner.len(), index.len()), &packed, true));
    let xref_number = 6usize;
    let xref_offset = out.len();
    direct.push((xref_number, xref_offset));
    let size = first_page + n;
    let mut rows = Vec::with_capacity(size * 9);
    for number in 0..size {
        // inner[0] is the page tree (object 2); inner[k], k ≥ 1, is
        // object first_page + k - 1.
        let packed_index = match number {
            2 => Some(0),
            n if n >= first_page => Some(n - first_page + 1),
            _ => None,
        };
        let (kind, a, b) = match (direct.iter().find(|(d, _)| *d == number), packed_index) {
            (Some((_, offset)), _) => (1u8, *offset as u32, 0u32),
            (None, Some(k)) => (2u8, 5u32, k as u32),
            (None, None) => (0u8, 0u32, 0u32),
        };
        rows.push(kind);
        rows.extend(a.to_be_bytes());
        rows.extend(b.to_be_bytes());
    }
    out.extend(format!("{xref_number} 0 obj\n").as_bytes());
    out.extend(stream(&format!("/Type /XRef /Size {size} /W [1 4 4] /Root 1 0 R"), &rows, true));
    out.extend(format!("\nendobj\nstartxref\n{xref_offset}\n%%EOF\n").as_bytes());
    out
}

/// A page tree that declares 100,000 pages over the one it has.
pub fn hundred_thousand_pages_declared() -> Vec<u8> {
    let mut pdf = plain();
    let from = b"/Count 1 ";
    let at = pdf.windows(from.len()).position(|w| w == from).expect("page tree");
    pdf.splice(at..at + from.len(), b"/Count 100000 ".iter().copied());
    // The offsets after it moved by five bytes: let lopdf repair them, as
    // it does for any such file.
    pdf
}

/// A content stream that declares a length of 1 GB (and a decoded length
/// of 1 GB) for the few bytes it has.
pub fn gigabyte_declared_stream() -> Vec<u8> {
    let data = zlib(PAGE_TEXT);
    let mut content = b"<< /Length 1073741824 /DL 1073741824 /Filter /FlateDecode >>\nstream\n".to_vec();
    content.extend(&data);
    content.extend(b"\nendstream");
    one_page(content, Vec::new())
}

/// Within every size limit, but costly to read: `pages` pages that share
/// one content stream of half a million matrix operators (7.5 MB
/// inflated, 60 MB for eight pages, under the document's 64 MiB).
pub fn costly(pages: usize) -> Vec<u8> {
    let mut content = PAGE_TEXT.to_vec();
    content.extend(b"1 0 0 1 0 0 cm\n".repeat(500_000));
    let page = b"<< /Type /Page /Parent 2 0 R /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>".to_vec();
    // Objects: 1 catalog, 2 page tree, 3 first page, 4 content, 5 font,
    // then the other pages from 6.
    let kids: String = std::iter::once(3).chain(6..5 + pages).map(|n| format!("{n} 0 R ")).collect();
    let mut objects = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        format!("<< /Type /Pages /Kids [{kids}] /Count {pages} /MediaBox [0 0 595 842] >>").into_bytes(),
        page.clone(),
        stream("", &content, true),
        FONT.to_vec(),
    ];
    objects.extend(std::iter::repeat_n(page, pages - 1));
    classic(&objects)
}

/// Every hostile PDF, by name.
pub fn all() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("decompression_bomb.pdf", decompression_bomb()),
        ("deeply_nested_objects.pdf", deeply_nested_objects()),
        ("hundred_thousand_pages.pdf", hundred_thousand_pages()),
        ("hundred_thousand_pages_declared.pdf", hundred_thousand_pages_declared()),
        ("gigabyte_declared_stream.pdf", gigabyte_declared_stream()),
    ]
}
