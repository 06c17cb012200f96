//! Tiny PDFs built in the tests: text placed at given positions (in any
//! content-stream order) and, optionally, an embedded file the way PDF/A-3
//! e-invoices attach their XML.

use lopdf::content::{Content, Operation};
use lopdf::{Document, Object, Stream, StringFormat, dictionary};

/// One piece of text at (x, y) in points from the bottom left.
pub struct Placed<'a> {
    pub x: f32,
    pub y: f32,
    pub text: &'a str,
}

pub fn at(x: f32, y: f32, text: &str) -> Placed<'_> {
    Placed { x, y, text }
}

/// A one-page A4 PDF showing `texts` (each in its own BT block, in the
/// order given) with an optional attachment `(file name, bytes)` linked
/// from the catalog's EmbeddedFiles name tree and /AF.
pub fn pdf(texts: &[Placed<'_>], attachment: Option<(&str, &[u8])>) -> Vec<u8> {
    let mut doc = Document::with_version("1.7");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font",
        "Subtype" => "Type1",
        "BaseFont" => "Helvetica",
        "Encoding" => "WinAnsiEncoding",
    });
    let resources_id = doc.add_object(dictionary! { "Font" => dictionary! { "F1" => font_id } });
    let mut operations = Vec::new();
    for t in texts {
        operations.extend([
            Operation::new("BT", vec![]),
            Operation::new("Tf", vec!["F1".into(), 10.into()]),
            Operation::new("Td", vec![t.x.into(), t.y.into()]),
            Operation::new("Tj", vec![Object::String(t.text.as_bytes().to_vec(), StringFormat::Literal)]),
            Operation::new("ET", vec![]),
        ]);
    }
    let content = Content { operations };
    let content_id = doc.add_object(Stream::new(dictionary! {}, content.encode().expect("content encodes")));
    let page_id = doc.add_object(dictionary! { "Type" => "Page", "Parent" => pages_id, "Contents" => content_id });
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages",
            "Kids" => vec![page_id.into()],
            "Count" => 1,
            "Resources" => resources_id,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        }),
    );
    let mut catalog = dictionary! { "Type" => "Catalog", "Pages" => pages_id };
    if let Some((name, data)) = attachment {
        let file_id = doc.add_object(Stream::new(dictionary! { "Type" => "EmbeddedFile" }, data.to_vec()));
        let name_obj = Object::String(name.as_bytes().to_vec(), StringFormat::Literal);
        let spec_id = doc.add_object(dictionary! {
            "Type" => "Filespec",
            "F" => name_obj.clone(),
            "UF" => name_obj.clone(),
            "AFRelationship" => "Alternative",
            "EF" => dictionary! { "F" => file_id, "UF" => file_id },
        });
        catalog
            .set("Names", dictionary! { "EmbeddedFiles" => dictionary! { "Names" => vec![name_obj, spec_id.into()] } });
        catalog.set("AF", vec![spec_id.into()]);
    }
    let catalog_id = doc.add_object(catalog);
    doc.trailer.set("Root", catalog_id);
    doc.compress();
    let mut out = Vec::new();
    doc.save_to(&mut out).expect("PDF saves");
    out
}

/// A one-page PDF whose content stream is `content` as given (Flate
/// compressed when `compress`), with the font of [`pdf`] as `F1`.
pub fn pdf_with_content(content: Vec<u8>, compress: bool) -> Vec<u8> {
    let mut doc = Document::with_version("1.7");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font",
        "Subtype" => "Type1",
        "BaseFont" => "Helvetica",
        "Encoding" => "WinAnsiEncoding",
    });
    let resources_id = doc.add_object(dictionary! { "Font" => dictionary! { "F1" => font_id } });
    let mut stream = Stream::new(dictionary! {}, content);
    if compress {
        stream.compress().expect("content compresses");
    }
    let content_id = doc.add_object(stream);
    let page_id = doc.add_object(dictionary! { "Type" => "Page", "Parent" => pages_id, "Contents" => content_id });
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages",
            "Kids" => vec![page_id.into()],
            "Count" => 1,
            "Resources" => resources_id,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        }),
    );
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog_id);
    let mut out = Vec::new();
    doc.save_to(&mut out).expect("PDF saves");
    out
}
