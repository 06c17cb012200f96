//! Human-readable output: aligned tables and key/value blocks. Cells are
//! made terminal-safe (control characters shown as `?`) and cut to a width.

use serde_json::Value;

const MAX_CELL: usize = 64;

/// A cell from a JSON value: strings bare, null as `-`.
pub fn cell(v: &Value) -> String {
    let text = match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    safe(&text)
}

/// Replaces control characters (and bidi overrides) so text cannot move the
/// cursor or restyle the terminal.
pub fn safe(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') { '?' } else { c })
        .collect()
}

fn cut(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_owned()
    } else {
        let mut s: String = text.chars().take(width.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

/// An aligned table with a header row.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows.iter().map(|r| r.iter().map(|c| cut(c, MAX_CELL)).collect()).collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (i, c) in row.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> =
            cells.iter().enumerate().map(|(i, c)| format!("{c:<width$}", width = widths[i])).collect();
        padded.join("  ").trim_end().to_owned()
    };
    let mut out = vec![line(headers.to_vec())];
    out.extend(rows.iter().map(|r| line(r.iter().map(String::as_str).collect())));
    out.join("\n")
}

/// `key: value` lines, keys aligned; null values are left out.
pub fn fields(pairs: &[(&str, &Value)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    pairs
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| format!("{:<width$}  {}", format!("{k}:"), cell(v), width = width + 1))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_and_cells_are_safe() {
        let t = table(
            &["ID", "ERROR"],
            &[vec!["1".into(), cell(&json!("bad\x1b[2J"))], vec!["22".into(), cell(&Value::Null)]],
        );
        assert_eq!(t, "ID  ERROR\n1   bad?[2J\n22  -");
        let long = "x".repeat(100);
        assert_eq!(table(&["A"], &[vec![long]]).lines().nth(1).unwrap().chars().count(), MAX_CELL);
    }

    #[test]
    fn fields_skip_nulls() {
        assert_eq!(fields(&[("a", &json!(1)), ("bb", &Value::Null), ("ccc", &json!("x"))]), "a:    1\nccc:  x");
    }
}
