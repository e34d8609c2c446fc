//! Text written into HTML that crier makes itself (its small pages, the unsubscribe line of an
//! email, a short link in an `href`).

/// `&`, `<`, `>`, `"` and `'` as entities: safe in element content and in quoted attributes.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_five_special_characters_become_entities_and_nothing_else_changes() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a> é"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt; é"
        );
        assert_eq!(escape("plain"), "plain");
    }
}
