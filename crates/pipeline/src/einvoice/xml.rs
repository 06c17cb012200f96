//! Parsing invoice XML as outside input: bounded size, node count and depth,
//! no DTD (so no entity expansion: billion laughs fails at the `<!DOCTYPE`).

use roxmltree::{Document, Node, ParsingOptions};

use crate::limits;

/// Parses `bytes` as XML within the limits of [`crate::limits`].
pub fn parse(bytes: &[u8]) -> Result<Document<'_>, String> {
    if bytes.len() > limits::MAX_XML_BYTES {
        return Err(format!("the XML has {} bytes, the limit is {}", bytes.len(), limits::MAX_XML_BYTES));
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| format!("the XML is not UTF-8: {e}"))?;
    let options = ParsingOptions { allow_dtd: false, nodes_limit: limits::MAX_XML_NODES, ..ParsingOptions::default() };
    let doc = Document::parse_with_options(text, options).map_err(|e| format!("malformed XML: {e}"))?;
    // roxmltree builds the tree without recursion, so depth cannot overflow
    // the parser's stack; it would overflow ours in any recursive walk.
    // Nodes come in document order, a parent before its children.
    let mut depths = vec![0u16; doc.descendants().count() + 1];
    for node in doc.descendants().filter(|n| n.is_element()) {
        let parent = node.parent().map_or(0, |p| depths.get(p.id().get_usize()).copied().unwrap_or(0));
        let depth = parent + 1;
        if usize::from(depth) > limits::MAX_XML_DEPTH {
            return Err(format!("the XML nests elements deeper than {}", limits::MAX_XML_DEPTH));
        }
        if let Some(d) = depths.get_mut(node.id().get_usize()) {
            *d = depth;
        }
    }
    Ok(doc)
}

/// The first child element named `name` (local name, any namespace).
pub fn child<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    node.children().find(|n| n.is_element() && n.tag_name().name() == name)
}

/// Child elements named `name`.
pub fn children<'a, 'i: 'a>(node: Node<'a, 'i>, name: &'a str) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    node.children().filter(move |n| n.is_element() && n.tag_name().name() == name)
}

/// Follows a path of local names from `node`, taking the first match at
/// each step.
pub fn path<'a, 'i>(node: Node<'a, 'i>, steps: &[&str]) -> Option<Node<'a, 'i>> {
    steps.iter().try_fold(node, |n, step| child(n, step))
}

/// The trimmed text of the element at `steps`, if not empty.
pub fn text_at(node: Node<'_, '_>, steps: &[&str]) -> Option<String> {
    path(node, steps).and_then(text_of)
}

/// The trimmed text content of an element, if not empty.
pub fn text_of(node: Node<'_, '_>) -> Option<String> {
    let text: String = node.descendants().filter(|n| n.is_text()).filter_map(|n| n.text()).collect();
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn billion_laughs_is_refused() {
        let mut xml = String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n<!ENTITY lol \"lol\">\n");
        for i in 1..10 {
            let prev = if i == 1 { "lol".to_owned() } else { format!("lol{}", i - 1) };
            xml.push_str(&format!("<!ENTITY lol{i} \"{}\">\n", format!("&{prev};").repeat(10)));
        }
        xml.push_str("]>\n<Invoice>&lol9;</Invoice>");
        let err = parse(xml.as_bytes()).unwrap_err();
        assert!(err.contains("malformed XML"), "{err}");
    }

    #[test]
    fn deep_nesting_is_refused() {
        let depth = 100_000;
        let xml = format!("{}{}", "<a>".repeat(depth), "</a>".repeat(depth));
        let err = parse(xml.as_bytes()).unwrap_err();
        assert!(err.contains("deeper than"), "{err}");
        // Within the limit it parses.
        let ok = format!("{}{}", "<a>".repeat(limits::MAX_XML_DEPTH), "</a>".repeat(limits::MAX_XML_DEPTH));
        assert!(parse(ok.as_bytes()).is_ok());
    }

    #[test]
    fn huge_files_are_refused_before_parsing() {
        let mut xml = b"<a>".to_vec();
        xml.resize(limits::MAX_XML_BYTES + 1, b' ');
        let err = parse(&xml).unwrap_err();
        assert!(err.contains("limit"), "{err}");
    }

    #[test]
    fn too_many_nodes_are_refused() {
        let n = limits::MAX_XML_NODES as usize;
        let xml = format!("<a>{}</a>", "<b/>".repeat(n));
        assert!(xml.len() < limits::MAX_XML_BYTES);
        let err = parse(xml.as_bytes()).unwrap_err();
        assert!(err.contains("malformed XML") && err.to_lowercase().contains("nodes"), "{err}");
    }

    #[test]
    fn paths_by_local_name() {
        let doc =
            parse(br#"<r:Root xmlns:r="urn:r" xmlns:x="urn:x"><x:A><x:B> one  two </x:B></x:A></r:Root>"#).unwrap();
        assert_eq!(text_at(doc.root_element(), &["A", "B"]).as_deref(), Some("one two"));
        assert_eq!(text_at(doc.root_element(), &["A", "C"]), None);
    }
}
