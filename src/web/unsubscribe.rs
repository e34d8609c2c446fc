//! The unsubscribe pages: `GET /u/{token}` asks, `POST /u/{token}` unsubscribes
//! (docs/rules/contacts.md, "Unsubscribe links"). The token is the only credential: no cookie,
//! no login, no CSRF token, so a mail client can POST `List-Unsubscribe=One-Click` (RFC 8058)
//! and the person's click on the page's button works the same way.
//!
//! The pages are small static HTML in English or French (`?lang=` first, then
//! `Accept-Language`), with no script at all and a strict Content-Security-Policy; every value
//! written into them is escaped. A token that does not verify gets an HTML 404, never the JSON
//! envelope a person could not read.

use crate::app::App;
use crate::billing::Channel;
use crate::contacts::UnsubscribeVia;
use crate::contacts::unsubscribe::{self, UnsubscribeToken};
use crate::error::AppError;
use crate::html::escape;
use crate::web::request::Request;
use crate::web::response::{ApiResponse, HTML};

/// No script, no styles, no frames, forms only to us; the token stays out of Referer headers.
const CSP: &str = "default-src 'none'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    En,
    Fr,
}

impl Lang {
    fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fr => "fr",
        }
    }

    fn other(self) -> Lang {
        match self {
            Lang::En => Lang::Fr,
            Lang::Fr => Lang::En,
        }
    }

    /// The name of the language, in itself (for the link to switch to it).
    fn name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::Fr => "Français",
        }
    }
}

/// `?lang=en|fr`, else the preferred of English and French in `Accept-Language` (by `q`, the
/// first listed on a tie), else English.
fn language(request: &Request<'_>) -> Lang {
    match request.query_param("lang").as_deref() {
        Some("fr") => return Lang::Fr,
        Some("en") => return Lang::En,
        _ => {}
    }
    request
        .header("Accept-Language")
        .map_or(Lang::En, preferred_language)
}

fn preferred_language(header: &str) -> Lang {
    let mut best: Option<(f32, Lang)> = None;
    for item in header.split(',') {
        let mut parts = item.split(';');
        let tag = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let primary = tag.split('-').next().unwrap_or_default();
        let lang = match primary {
            "en" => Lang::En,
            "fr" => Lang::Fr,
            _ => continue,
        };
        let q = parts
            .find_map(|part| part.trim().strip_prefix("q="))
            .and_then(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if q > 0.0 && best.is_none_or(|(best_q, _)| q > best_q) {
            best = Some((q, lang));
        }
    }
    best.map_or(Lang::En, |(_, lang)| lang)
}

struct Texts {
    title: &'static str,
    question: &'static str,
    button: &'static str,
    done: &'static str,
    invalid: &'static str,
}

fn texts(lang: Lang, channel: Option<Channel>) -> Texts {
    let email = channel != Some(Channel::Sms);
    match lang {
        Lang::En => Texts {
            title: "Unsubscribe",
            question: if email {
                "Stop receiving marketing emails from this sender?"
            } else {
                "Stop receiving marketing text messages from this sender?"
            },
            button: "Unsubscribe",
            done: if email {
                "You are unsubscribed: you will no longer receive marketing emails from this sender."
            } else {
                "You are unsubscribed: you will no longer receive marketing text messages from this sender."
            },
            invalid: "This unsubscribe link is not valid. Check that you opened the whole link.",
        },
        Lang::Fr => Texts {
            title: "Désabonnement",
            question: if email {
                "Ne plus recevoir les e-mails marketing de cet expéditeur ?"
            } else {
                "Ne plus recevoir les SMS marketing de cet expéditeur ?"
            },
            button: "Me désabonner",
            done: if email {
                "Vous êtes désabonné : vous ne recevrez plus d'e-mails marketing de cet expéditeur."
            } else {
                "Vous êtes désabonné : vous ne recevrez plus de SMS marketing de cet expéditeur."
            },
            invalid: "Ce lien de désabonnement n'est pas valide. Vérifiez que vous avez ouvert le lien en entier.",
        },
    }
}

/// A whole page: `body` is already escaped HTML.
fn page(status: u16, lang: Lang, title: &str, body: &str, other_href: &str) -> ApiResponse {
    let other = lang.other();
    let html = format!(
        "<!doctype html>\n<html lang=\"{code}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"robots\" content=\"noindex\">\n<title>{title}</title>\n</head>\n<body>\n\
         <main>\n<h1>{title}</h1>\n{body}\n\
         <p><a href=\"{other_href}\" hreflang=\"{other_code}\" lang=\"{other_code}\">{other_name}</a></p>\n\
         </main>\n</body>\n</html>\n",
        code = lang.code(),
        title = escape(title),
        other_href = escape(other_href),
        other_code = other.code(),
        other_name = other.name(),
    );
    ApiResponse::bytes(status, HTML, html)
        .with_header("Content-Security-Policy", CSP)
        .with_header("Referrer-Policy", "no-referrer")
        .with_header("Cache-Control", "no-store")
        .with_header("Content-Language", lang.code())
}

/// The token of the path, verified; `Err` is the page to answer instead.
fn verified(app: &App, request: &Request<'_>, lang: Lang) -> Result<UnsubscribeToken, ApiResponse> {
    let text = request.param("token");
    UnsubscribeToken::verify(&app.unsubscribe_key, text).ok_or_else(|| {
        let texts = texts(lang, None);
        let body = format!("<p>{}</p>", escape(texts.invalid));
        page(
            404,
            lang,
            texts.title,
            &body,
            &format!("?lang={}", lang.other().code()),
        )
    })
}

/// `GET /u/{token}`: asks whether to unsubscribe, with a button that POSTs back. Changes
/// nothing (link scanners and previews open links).
pub fn show_unsubscribe(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let lang = language(request);
    let token = match verified(app, request, lang) {
        Ok(token) => token,
        Err(page) => return Ok(page),
    };
    let texts = texts(lang, Some(token.channel));
    let action = format!("/u/{}?lang={}", request.param("token"), lang.code());
    let body = format!(
        "<p>{question}</p>\n<form method=\"post\" action=\"{action}\">\n\
         <input type=\"hidden\" name=\"confirm\" value=\"yes\">\n\
         <button type=\"submit\">{button}</button>\n</form>",
        question = escape(texts.question),
        action = escape(&action),
        button = escape(texts.button),
    );
    Ok(page(
        200,
        lang,
        texts.title,
        &body,
        &format!("?lang={}", lang.other().code()),
    ))
}

/// Whether the body carries `List-Unsubscribe=One-Click` (RFC 8058): form-encoded, or as the
/// field of a `multipart/form-data` body (which the RFC prefers).
fn is_one_click(body: &[u8]) -> bool {
    if form_urlencoded::parse(body)
        .any(|(name, value)| name == "List-Unsubscribe" && value == "One-Click")
    {
        return true;
    }
    let text = String::from_utf8_lossy(body);
    text.split_once("name=\"List-Unsubscribe\"")
        .and_then(|(_, rest)| rest.split_once("\r\n\r\n"))
        .is_some_and(|(_, value)| value.starts_with("One-Click"))
}

/// `POST /u/{token}`: unsubscribes the token's contact from its channel in one step and says
/// so. Any body is accepted; `List-Unsubscribe=One-Click` records `one_click`, anything else
/// (the page's button) `link`. Idempotent: a second POST is 200 and keeps the first time and
/// way; a contact deleted or erased since is left alone, with the same answer.
pub fn unsubscribe(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let lang = language(request);
    let token = match verified(app, request, lang) {
        Ok(token) => token,
        Err(page) => return Ok(page),
    };
    // A body too large to read is still a request to unsubscribe (from the page, then).
    let body = request.body_bytes().unwrap_or_default();
    let via = if is_one_click(&body) {
        UnsubscribeVia::OneClick
    } else {
        UnsubscribeVia::Link
    };
    let now = app.clock.now();
    app.db
        .write(|conn| unsubscribe::unsubscribe_with_token(conn, &token, via, now))?;
    let texts = texts(lang, Some(token.channel));
    let body = format!("<p>{}</p>", escape(texts.done));
    let other_href = format!("/u/{}?lang={}", request.param("token"), lang.other().code());
    Ok(page(200, lang, texts.title, &body, &other_href))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_preferred_of_english_and_french() {
        assert_eq!(preferred_language("fr-CM,fr;q=0.9,en;q=0.8"), Lang::Fr);
        assert_eq!(preferred_language("en-GB, fr;q=0.5"), Lang::En);
        assert_eq!(preferred_language("de, fr;q=0.3, en;q=0.2"), Lang::Fr);
        assert_eq!(preferred_language("de"), Lang::En);
        assert_eq!(preferred_language("fr;q=0, en;q=0.1"), Lang::En);
        assert_eq!(preferred_language(""), Lang::En);
    }

    #[test]
    fn only_the_rfc_8058_pair_is_one_click() {
        assert!(is_one_click(b"List-Unsubscribe=One-Click"));
        assert!(is_one_click(b"a=b&List-Unsubscribe=One-Click"));
        assert!(!is_one_click(b"confirm=yes"));
        assert!(!is_one_click(b""));
        assert!(!is_one_click(b"List-Unsubscribe=one-click-ish"));
        let multipart = b"--b\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\n\
                          One-Click\r\n--b--\r\n";
        assert!(is_one_click(multipart));
    }
}
