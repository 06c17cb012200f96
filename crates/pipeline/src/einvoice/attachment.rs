//! Files embedded in a PDF (PDF/A-3 associated files): where Factur-X,
//! ZUGFeRD and XRechnung PDFs keep their invoice XML.
//!
//! Attachments are found through the catalog's `/Names /EmbeddedFiles`
//! name tree and its `/AF` array (PDF 32000-2 §14.13), and, for producers
//! that fill neither correctly, through any file specification object in the
//! file. Trees are walked with a visited set and a depth bound: a crafted
//! file can make them cyclic.

use std::collections::HashSet;

use lopdf::{Dictionary, Document, Object, ObjectId};

use crate::limits;

/// An embedded file, decompressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub name: String,
    pub data: Vec<u8>,
}

/// File names that the e-invoice standards give their XML, in lower case.
const INVOICE_NAMES: &[&str] =
    &["factur-x.xml", "zugferd-invoice.xml", "xrechnung.xml", "zugferd_invoice.xml", "order-x.xml"];

/// The invoice XML embedded in a PDF: an attachment with a standard name,
/// else any `.xml` attachment. `None` when the PDF has none; `Err` when one
/// is there but cannot be read (over the size limit, a broken stream).
pub fn invoice_xml(doc: &Document) -> Option<Result<Attachment, String>> {
    let specs = file_specs(doc);
    let named = |pred: &dyn Fn(&str) -> bool| {
        specs.iter().find(|(name, _)| pred(&name.to_lowercase())).map(|(name, dict)| read_spec(doc, name, dict))
    };
    named(&|n| INVOICE_NAMES.iter().any(|known| n.ends_with(known))).or_else(|| named(&|n| n.ends_with(".xml")))
}

/// Every file specification reachable from the catalog, by name, without
/// duplicates; then those found by scanning the objects.
fn file_specs(doc: &Document) -> Vec<(String, &Dictionary)> {
    let mut out: Vec<(String, &Dictionary)> = Vec::new();
    let mut seen: HashSet<ObjectId> = HashSet::new();
    fn push<'a>(
        out: &mut Vec<(String, &'a Dictionary)>,
        seen: &mut HashSet<ObjectId>,
        id: Option<ObjectId>,
        dict: &'a Dictionary,
    ) {
        if id.is_some_and(|id| !seen.insert(id)) {
            return;
        }
        if let Some(name) = spec_name(dict) {
            out.push((name, dict));
        }
    }
    if let Ok(catalog) = doc.catalog() {
        // /Names /EmbeddedFiles: a name tree of (name, filespec) pairs.
        if let Some(tree) = deref_dict(doc, catalog.get(b"Names").ok())
            .and_then(|names| deref_dict(doc, names.get(b"EmbeddedFiles").ok()))
        {
            let mut specs = Vec::new();
            walk_name_tree(doc, tree, 0, &mut HashSet::new(), &mut specs);
            for (id, dict) in specs {
                push(&mut out, &mut seen, id, dict);
            }
        }
        // /AF: the associated files of the document.
        if let Some(af) =
            catalog.get(b"AF").ok().and_then(|o| doc.dereference(o).ok()).and_then(|(_, o)| o.as_array().ok())
        {
            for item in af.iter().take(limits::MAX_ATTACHMENTS) {
                if let Ok((id, Object::Dictionary(dict))) = doc.dereference(item) {
                    push(&mut out, &mut seen, id, dict);
                }
            }
        }
    }
    // Some producers attach the file but link it only from a page
    // annotation or not at all.
    for (id, obj) in doc.objects.iter() {
        if out.len() >= limits::MAX_ATTACHMENTS {
            break;
        }
        if let Object::Dictionary(dict) = obj
            && dict.has(b"EF")
        {
            push(&mut out, &mut seen, Some(*id), dict);
        }
    }
    out
}

fn deref_dict<'a>(doc: &'a Document, obj: Option<&'a Object>) -> Option<&'a Dictionary> {
    doc.dereference(obj?).ok().and_then(|(_, o)| o.as_dict().ok())
}

fn walk_name_tree<'a>(
    doc: &'a Document,
    node: &'a Dictionary,
    depth: usize,
    visited: &mut HashSet<ObjectId>,
    out: &mut Vec<(Option<ObjectId>, &'a Dictionary)>,
) {
    if depth > limits::MAX_TREE_DEPTH || out.len() >= limits::MAX_ATTACHMENTS {
        return;
    }
    if let Ok(names) = node.get(b"Names").and_then(|o| o.as_array()) {
        // [key1 value1 key2 value2 ...]: the values are the file specs.
        for value in names.iter().skip(1).step_by(2) {
            if let Ok((id, Object::Dictionary(dict))) = doc.dereference(value) {
                out.push((id, dict));
            }
        }
    }
    if let Ok(kids) = node.get(b"Kids").and_then(|o| o.as_array()) {
        for kid in kids {
            let Ok((id, Object::Dictionary(dict))) = doc.dereference(kid) else { continue };
            if let Some(id) = id
                && !visited.insert(id)
            {
                continue;
            }
            walk_name_tree(doc, dict, depth + 1, visited, out);
        }
    }
}

/// The file name of a file specification: `/UF` (Unicode) over `/F`.
fn spec_name(spec: &Dictionary) -> Option<String> {
    if !spec.has(b"EF") {
        return None;
    }
    [b"UF".as_slice(), b"F"]
        .iter()
        .find_map(|key| spec.get(key).ok().and_then(|o| lopdf::decode_text_string(o).ok()))
        .or_else(|| Some(String::new()))
}

fn read_spec(doc: &Document, name: &str, spec: &Dictionary) -> Result<Attachment, String> {
    let ef = deref_dict(doc, spec.get(b"EF").ok()).ok_or_else(|| format!("{name}: no /EF dictionary"))?;
    let stream = [b"UF".as_slice(), b"F"]
        .iter()
        .find_map(|key| ef.get(key).ok().and_then(|o| doc.dereference(o).ok()).and_then(|(_, o)| o.as_stream().ok()))
        .ok_or_else(|| format!("{name}: the embedded file stream is missing"))?;
    let data = stream
        .decompressed_content_with_limit(limits::MAX_XML_BYTES)
        .map_err(|e| format!("{name}: cannot decompress the embedded file: {e}"))?;
    Ok(Attachment { name: name.to_owned(), data })
}
