//! Short links of campaigns that track links: `GET /l/{code}` (docs/rules/campaigns.md, "Link
//! tracking"). Like the unsubscribe pages, a browser opens it: the code is its only credential,
//! and the answer is a redirect or a short HTML page, never the JSON envelope.
//!
//! The code is checked on a read (a forged one costs no write lock); a good one is recorded in
//! one write, then answered `302` to its target.

use crate::app::App;
use crate::campaigns::links;
use crate::error::AppError;
use crate::web::request::Request;
use crate::web::response::{ApiResponse, HTML};

/// The page for a code that is not one of ours: short, no script, nothing of the code echoed.
const NOT_FOUND_PAGE: &str = "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta name=\"robots\" content=\"noindex\">\n<title>Link not found</title>\n</head>\n<body>\n\
<h1>Link not found</h1>\n<p>This link is not valid. Check that you opened the whole link.</p>\n\
</body>\n</html>\n";

/// Nothing to run on the page; the short link stays out of the target's Referer header; every
/// click reaches crier (no cache keeps the redirect).
fn browser_facing(response: ApiResponse) -> ApiResponse {
    response
        .with_header("Cache-Control", "no-store")
        .with_header("Referrer-Policy", "no-referrer")
}

/// `GET /l/{code}`: a campaign's short link. A code crier made is recorded as a click of its
/// recipient (in the campaign's workspace and mode) and answered `302` to the link's target; any
/// other code is an HTML 404 and nothing is recorded.
pub fn follow_link(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let code = request.param("code");
    let click = app
        .db
        .read(|conn| links::resolve(conn, &app.unsubscribe_key, code))?;
    let Some(click) = click else {
        return Ok(browser_facing(
            ApiResponse::bytes(404, HTML, NOT_FOUND_PAGE).with_header(
                "Content-Security-Policy",
                "default-src 'none'; base-uri 'none'; frame-ancestors 'none'",
            ),
        ));
    };
    let now = app.clock.now();
    app.db
        .write(|conn| links::record_click(conn, &click, now))?;
    Ok(browser_facing(
        ApiResponse::bytes(302, HTML, Vec::new())
            .with_header("Location", links::location(&click.url)),
    ))
}
