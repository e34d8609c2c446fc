//! What a marketing email carries besides its content (docs/rules/messages.md, "Marketing
//! email"): the RFC 8058 headers naming its unsubscribe link (added by the email provider from
//! `EmailOut::list_unsubscribe`) and a visible unsubscribe line at the end of its text and HTML
//! parts, in the contact's language. Pure: the dispatcher supplies the link and the language.

use crate::contacts::Language;
use crate::html::escape;

/// The email's parts with the unsubscribe line appended, and the link for the headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketingEmail {
    pub url: String,
    pub text: Option<String>,
    pub html: Option<String>,
}

fn line(language: Option<Language>) -> &'static str {
    match language {
        Some(Language::Fr) => "Pour ne plus recevoir ces e-mails, désabonnez-vous :",
        Some(Language::En) | None => "To stop receiving these emails, unsubscribe:",
    }
}

fn link_text(language: Option<Language>) -> &'static str {
    match language {
        Some(Language::Fr) => "Se désabonner",
        Some(Language::En) | None => "Unsubscribe",
    }
}

/// Appends the unsubscribe line (with `url`) to each part present: after the text, and in the
/// HTML before `</body>` when there is one, else at the end.
pub fn with_unsubscribe(
    url: String,
    language: Option<Language>,
    text: Option<&str>,
    html: Option<&str>,
) -> MarketingEmail {
    let text = text.map(|text| format!("{text}\n\n--\n{} {url}\n", line(language)));
    let html = html.map(|html| {
        let footer = format!(
            "<p>{} <a href=\"{}\">{}</a></p>",
            escape(line(language)),
            escape(&url),
            escape(link_text(language)),
        );
        match html.to_ascii_lowercase().rfind("</body>") {
            Some(at) => format!("{}{footer}\n{}", &html[..at], &html[at..]),
            None => format!("{html}\n{footer}\n"),
        }
    });
    MarketingEmail { url, text, html }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_goes_after_the_text_and_before_the_end_of_the_body() {
        let email = with_unsubscribe(
            "https://crier.example/u/abc".to_owned(),
            Some(Language::Fr),
            Some("Bonjour"),
            Some("<html><BODY><p>Bonjour</p></BODY></html>"),
        );
        assert_eq!(
            email.text.as_deref(),
            Some(
                "Bonjour\n\n--\nPour ne plus recevoir ces e-mails, désabonnez-vous : \
                 https://crier.example/u/abc\n"
            )
        );
        assert_eq!(
            email.html.as_deref(),
            Some(
                "<html><BODY><p>Bonjour</p><p>Pour ne plus recevoir ces e-mails, \
                 désabonnez-vous : <a href=\"https://crier.example/u/abc\">Se désabonner</a></p>\n\
                 </BODY></html>"
            )
        );
    }

    #[test]
    fn english_by_default_and_only_the_parts_present() {
        let email = with_unsubscribe(
            "https://x/u/t?a=1&b=2".to_owned(),
            None,
            None,
            Some("<p>Hi</p>"),
        );
        assert_eq!(email.text, None);
        let html = email.html.unwrap();
        assert!(
            html.starts_with("<p>Hi</p>\n<p>To stop receiving these emails"),
            "{html}"
        );
        assert!(
            html.contains("href=\"https://x/u/t?a=1&amp;b=2\""),
            "{html}"
        );
    }
}
