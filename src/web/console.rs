//! The web console: static files from `static/console/`, embedded in the binary at build time
//! (`build.rs` lists every file of the folder into a table, so none can be forgotten), served
//! with a content-hash `ETag` and `Cache-Control: no-cache` — the browser revalidates each load
//! and gets a 304 while the file is unchanged, so a new release is never hidden by a cache.
//!
//! The console is a single page (`/`, `static/console/index.html`) whose modules call the public
//! JSON API with the session cookie. Its HTML carries a strict Content-Security-Policy: no inline
//! script or style at all, everything from this origin, no framing.

use std::sync::OnceLock;

use ring::digest;

use crate::app::App;
use crate::error::AppError;
use crate::web::request::Request;
use crate::web::response::ApiResponse;

/// Every file under `static/console/`, by its path relative to that folder (`lib/api.js`).
pub const ASSETS: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/console_assets.rs"));

/// The console's pages may load only our own files; no inline code, no frames, no foreign posts.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Where URLs of console files start: `/console/lib/api.js` is `static/console/lib/api.js`.
pub const PREFIX: &str = "/console/";

/// One embedded file with its validator.
struct Asset {
    path: &'static str,
    body: &'static [u8],
    etag: String,
}

fn assets() -> &'static [Asset] {
    static TABLE: OnceLock<Vec<Asset>> = OnceLock::new();
    TABLE.get_or_init(|| {
        ASSETS
            .iter()
            .map(|(path, body)| Asset {
                path,
                body,
                etag: etag_of(body),
            })
            .collect()
    })
}

/// A strong validator: the first 128 bits of the SHA-256 of the bytes, in hex.
fn etag_of(body: &[u8]) -> String {
    let hash = digest::digest(&digest::SHA256, body);
    let hex: String = hash.as_ref()[..16]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("\"{hex}\"")
}

/// The media type for a file name; the console holds only these kinds.
pub fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("json") => "application/json",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    }
}

/// Whether an `If-None-Match` header names `etag` (a list, or `*`; weak forms compare equal).
fn matches(if_none_match: &str, etag: &str) -> bool {
    if_none_match.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == etag
    })
}

/// The response for one embedded file: 200 with it, or 304 when the browser holds it already.
fn serve(request: &Request<'_>, path: &str) -> Result<ApiResponse, AppError> {
    let asset = assets()
        .iter()
        .find(|asset| asset.path == path)
        .ok_or(AppError::NotFound)?;
    let fresh = request
        .header("If-None-Match")
        .is_some_and(|value| matches(value, &asset.etag));
    let response = if fresh {
        ApiResponse::bytes(304, content_type(path), Vec::new())
    } else {
        ApiResponse::bytes(200, content_type(path), asset.body)
    };
    let response = response
        .with_header("ETag", asset.etag.clone())
        .with_header("Cache-Control", "no-cache")
        .with_header("X-Content-Type-Options", "nosniff");
    Ok(if path.ends_with(".html") {
        response
            .with_header("Content-Security-Policy", CSP)
            .with_header("Referrer-Policy", "same-origin")
            .with_header("X-Frame-Options", "DENY")
    } else {
        response
    })
}

/// `GET /`: the console's single page. Its routes live after `#` (`/#/messages`), so this is
/// the only HTML the server needs to know about.
pub fn show_console(_app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    serve(request, "index.html")
}

/// `GET /docs`: the API reference page (`docs.html`, drawn by `docs.js`).
pub fn show_docs(_app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    serve(request, "docs.html")
}

/// `GET /console/{file}`, `/console/lib/{file}`, `/console/pages/{file}`: the console's scripts,
/// styles and images.
pub fn show_asset(_app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let path = request
        .path()
        .strip_prefix(PREFIX)
        .ok_or(AppError::NotFound)?
        .to_owned();
    serve(request, &path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_accepts_lists_weak_forms_and_star() {
        let etag = "\"abc\"";
        assert!(matches("\"abc\"", etag));
        assert!(matches("W/\"abc\"", etag));
        assert!(matches("\"x\", \"abc\"", etag));
        assert!(matches("*", etag));
        assert!(!matches("\"abcd\"", etag));
        assert!(!matches("abc", etag));
    }

    #[test]
    fn every_asset_has_a_known_media_type_and_distinct_etags_for_distinct_bytes() {
        for (path, _) in ASSETS {
            assert_ne!(
                content_type(path),
                "application/octet-stream",
                "{path} has no media type"
            );
        }
        assert_ne!(etag_of(b"a"), etag_of(b"b"));
        assert_eq!(etag_of(b"a"), etag_of(b"a"));
    }

    #[test]
    fn the_single_page_is_embedded() {
        assert!(ASSETS.iter().any(|(path, _)| *path == "index.html"));
    }
}
