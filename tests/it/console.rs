//! The web console: every file of `static/console/` is served from the binary with its media
//! type and a validator; its page carries the strict headers; and the data the console needs
//! that no other endpoint gave (messages per day) is there.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::auth_fixtures::{create_key, send, setup};
use crate::harness::{TestResponse, TestServer};

fn console_files() -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let relative = path.strip_prefix(root).unwrap().to_string_lossy();
                out.push(relative.replace('\\', "/"));
            }
        }
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("static/console");
    let mut files = Vec::new();
    walk(&root, &root, &mut files);
    files.sort();
    files
}

fn url_of(file: &str) -> String {
    if file == "index.html" {
        "/".to_owned()
    } else {
        format!("/console/{file}")
    }
}

#[test]
fn every_file_in_static_console_is_served_byte_for_byte_with_its_type() {
    let server = TestServer::start();
    let files = console_files();
    assert!(files.len() >= 8, "the console has its files: {files:?}");
    for file in &files {
        let response = server.get(&url_of(file));
        assert_eq!(response.status, 200, "{file} is not served");
        let on_disk = std::fs::read(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("static/console")
                .join(file),
        )
        .unwrap();
        assert!(response.body == on_disk, "{file} is served stale");
        let expected = match file.rsplit_once('.').unwrap().1 {
            "html" => "text/html; charset=utf-8",
            "js" => "text/javascript; charset=utf-8",
            "css" => "text/css; charset=utf-8",
            "svg" => "image/svg+xml",
            other => panic!("{file}: no expected type for .{other}"),
        };
        assert_eq!(response.header("Content-Type"), Some(expected), "{file}");
        assert_eq!(response.header("Cache-Control"), Some("no-cache"), "{file}");
        assert_eq!(
            response.header("X-Content-Type-Options"),
            Some("nosniff"),
            "{file}"
        );
    }
    // And the embedded table holds nothing the folder does not.
    let mut embedded: Vec<String> = crier::web::console::ASSETS
        .iter()
        .map(|(path, _)| (*path).to_owned())
        .collect();
    embedded.sort();
    assert_eq!(embedded, files);
}

#[test]
fn an_etag_the_browser_holds_gets_304_without_a_body() {
    let server = TestServer::start();
    for path in ["/", "/console/lib/api.js"] {
        let first = server.get(path);
        let etag = first.header("ETag").unwrap().to_owned();
        assert!(etag.starts_with('"') && etag.len() == 34, "{etag}");
        let again = server.request("GET", path, &[("If-None-Match", &etag)], b"");
        assert_eq!(again.status, 304, "{path}");
        assert!(again.body.is_empty());
        assert_eq!(again.header("ETag"), Some(etag.as_str()));
        let other = server.request("GET", path, &[("If-None-Match", "\"0000\"")], b"");
        assert_eq!(other.status, 200, "{path}");
        assert_eq!(other.body, first.body);
    }
}

fn assert_strict_page_headers(response: &TestResponse) {
    assert_eq!(
        response.header("Content-Security-Policy"),
        Some(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
        )
    );
    assert_eq!(response.header("Referrer-Policy"), Some("same-origin"));
    assert_eq!(response.header("X-Content-Type-Options"), Some("nosniff"));
    assert_eq!(response.header("X-Frame-Options"), Some("DENY"));
}

#[test]
fn the_console_page_has_strict_headers_and_no_inline_code() {
    let server = TestServer::start();
    let page = server.get("/");
    assert_eq!(page.status, 200);
    assert_strict_page_headers(&page);
    let html = page.text();
    assert!(html.contains("<title>crier"));
    // The CSP would block inline code; none must be needed.
    assert!(!html.contains("<style"), "inline style element");
    assert!(!html.contains(" style="), "inline style attribute");
    for (at, _) in html.match_indices(" on") {
        let rest: String = html[at + 1..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        assert!(
            !html[at + 1 + rest.len()..].starts_with('='),
            "inline event handler {rest}"
        );
    }
    for script in html.split("<script").skip(1) {
        assert!(
            script.contains("src=\"/console/"),
            "inline script: {script}"
        );
    }
    // Scripts and styles are not pages: no CSP needed on them.
    let script = server.get("/console/app.js");
    assert_eq!(script.header("Content-Security-Policy"), None);
}

/// The addresses handed out to others — a payment provider's return, an invitation link — are
/// the console itself (which opens the right page from the path), with the same strict headers.
#[test]
fn the_return_and_invitation_links_open_the_console() {
    let server = TestServer::start();
    let index = server.get("/").text();
    for path in [
        "/billing/return?session=pay_1",
        "/invitations/accept?token=abc",
    ] {
        let page = server.get(path);
        assert_eq!(page.status, 200, "{path}");
        assert_strict_page_headers(&page);
        assert_eq!(page.text(), index, "{path}");
    }
}

#[test]
fn console_modules_use_no_inline_styles_or_foreign_origins() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("static/console");
    for file in console_files() {
        // SVG's namespace is a name, not a place anything is loaded from.
        let text = std::fs::read_to_string(root.join(&file))
            .unwrap()
            .replace("http://www.w3.org/2000/svg", "");
        assert!(!text.contains("http://"), "{file} names a foreign origin");
        assert!(!text.contains("https://"), "{file} names a foreign origin");
        if file.ends_with(".js") {
            // `.style.x =` from script is allowed by CSP; `setAttribute("style"` and
            // `innerHTML` with markup are not how the console builds pages.
            assert!(!text.contains("innerHTML"), "{file} uses innerHTML");
            assert!(!text.contains("eval("), "{file} uses eval");
        }
    }
}

#[test]
fn unknown_console_files_are_404_in_the_envelope() {
    let server = TestServer::start();
    for path in [
        "/console/nope.js",
        "/console/lib/nope.js",
        "/console/pages/../app.js",
        "/console/pages/app.js",
    ] {
        server.get(path).assert_error(404, "not_found");
    }
}

#[test]
fn the_session_cookie_is_http_only_and_same_site_lax() {
    let server = TestServer::start();
    let response = server.post_json(
        "/v1/setup",
        &json!({"email": "owner@example.com", "password": "correct horse battery",
                "name": "Owner", "workspace_name": "Acme"})
        .to_string(),
    );
    assert_eq!(response.status, 201, "{}", response.text());
    let cookie = response.header("Set-Cookie").unwrap();
    assert!(cookie.contains("; HttpOnly"), "{cookie}");
    assert!(cookie.contains("; SameSite=Lax"), "{cookie}");
    assert!(cookie.contains("; Path=/"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");

    let https = TestServer::start_with(
        |config| config.public_url = "https://crier.example.com".to_owned(),
        crier::web::router::Router::standard(),
    );
    let response = https.post_json(
        "/v1/setup",
        &json!({"email": "owner@example.com", "password": "correct horse battery",
                "name": "Owner", "workspace_name": "Acme"})
        .to_string(),
    );
    assert_eq!(response.status, 201, "{}", response.text());
    assert!(response.header("Set-Cookie").unwrap().contains("; Secure"));
}

#[test]
fn messages_per_day_count_the_modes_own_messages_by_utc_day() {
    let server = TestServer::start();
    let owner = setup(&server);
    let (_, key) = create_key(&owner, &["messages:send", "messages:read"], "test");
    let authorization = format!("Bearer {key}");
    let send_one = |n: usize, body: serde_json::Value| {
        let idem = format!("k{n}");
        let response = send(
            &server,
            "POST",
            "/v1/messages",
            vec![
                ("Authorization", authorization.as_str()),
                ("Idempotency-Key", idem.as_str()),
            ],
            Some(&body),
        );
        assert_eq!(response.status, 201, "{}", response.text());
    };
    let sms = json!({"channel": "sms", "to": "+237677123456", "text": "hi"});
    let email = json!({"channel": "email", "to": "a@example.com", "subject": "s", "text": "t"});
    send_one(1, sms.clone());
    // 09:30 + 15 h: the next UTC day (and the session has not idled out).
    server.clock.advance(chrono::Duration::hours(15));
    send_one(2, sms.clone());
    send_one(3, email);
    let timeline = |days: &str| {
        send(
            &server,
            "GET",
            &format!("/v1/messages/timeline{days}"),
            vec![("Authorization", authorization.as_str())],
            None,
        )
    };
    let response = timeline("");
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        response.json(),
        json!({"days": 14, "data": [
            {"day": "2026-11-25", "sms": 1, "email": 0},
            {"day": "2026-11-26", "sms": 1, "email": 1},
        ]})
    );
    // One day: today only.
    assert_eq!(
        timeline("?days=1").json()["data"],
        json!([{"day": "2026-11-26", "sms": 1, "email": 1}])
    );
    for bad in ["0", "91", "x", "-1"] {
        let response = timeline(&format!("?days={bad}"));
        let body = response.assert_error(422, "validation_failed");
        assert!(body["error"]["details"]["fields"]["days"].is_string());
    }
    // A console session works on live messages: the test ones are not its.
    let live = owner.get("/v1/messages/timeline");
    assert_eq!(live.status, 200, "{}", live.text());
    assert_eq!(live.json()["data"], json!([]));
    // Without credentials: 401.
    server
        .get("/v1/messages/timeline")
        .assert_error(401, "unauthenticated");
}

/// The keys of one dictionary of `lib/i18n.js` (`const NAME = { "key": "text", … };`).
fn dictionary_keys(source: &str, name: &str) -> Vec<String> {
    let start = source
        .find(&format!("const {name} = {{"))
        .unwrap_or_else(|| panic!("no dictionary {name}"));
    let body = &source[start..];
    let body = &body[..body.find("\n};").unwrap()];
    let mut keys: Vec<String> = body
        .lines()
        .filter_map(|line| {
            let line = line.trim().strip_prefix('"')?;
            Some(line[..line.find("\":")?].to_owned())
        })
        .collect();
    keys.sort();
    keys
}

#[test]
fn english_and_french_have_the_same_keys() {
    let source = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("static/console/lib/i18n.js"),
    )
    .unwrap();
    let english = dictionary_keys(&source, "en");
    let french = dictionary_keys(&source, "fr");
    assert!(english.len() > 50, "{english:?}");
    let only_english: Vec<_> = english.iter().filter(|k| !french.contains(k)).collect();
    let only_french: Vec<_> = french.iter().filter(|k| !english.contains(k)).collect();
    assert!(only_english.is_empty(), "not in French: {only_english:?}");
    assert!(only_french.is_empty(), "not in English: {only_french:?}");
}

/// Every key a console module names literally (`t("contacts.title")`) is in the English
/// dictionary (the French one has the same keys, checked above): a misspelt key would show
/// as the key itself.
#[test]
fn every_literal_key_the_modules_use_is_in_the_dictionaries() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("static/console");
    let english = dictionary_keys(
        &std::fs::read_to_string(root.join("lib/i18n.js")).unwrap(),
        "en",
    );
    let mut missing = Vec::new();
    let mut seen = 0;
    for file in console_files().iter().filter(|f| f.ends_with(".js")) {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        for (at, _) in text.match_indices("t(\"") {
            // `t(` alone, not the end of another name (`select(`, `at(`).
            let before = text[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.') {
                continue;
            }
            let rest = &text[at + 3..];
            let key = &rest[..rest.find('"').unwrap()];
            seen += 1;
            if !english.iter().any(|k| k == key) {
                missing.push(format!("{file}: {key}"));
            }
        }
    }
    assert!(seen > 200, "only {seen} keys found");
    assert!(
        missing.is_empty(),
        "keys not in the dictionaries: {missing:?}"
    );
}

fn console_source(file: &str) -> String {
    std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("static/console")
            .join(file),
    )
    .unwrap()
}

/// The machine codes `AppError::code` can answer, read from the one match in src/error.rs
/// (every envelope the server sends is made from an `AppError`).
fn server_error_codes() -> Vec<String> {
    let source =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/error.rs"))
            .unwrap();
    let start = source.find("pub fn code(&self)").expect("AppError::code");
    let body = &source[start..];
    let body = &body[..body.find("\n    }\n").unwrap()];
    let mut codes: Vec<String> = body
        .split("=> \"")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].to_owned())
        .collect();
    codes.sort();
    codes.dedup();
    codes
}

/// A French page shows French errors: every code the server can emit has its text in both
/// dictionaries (`error.code.<code>`), so a new `AppError` code cannot be forgotten by the
/// console — it would otherwise fall back to the API's English sentence.
#[test]
fn every_error_code_the_server_emits_has_a_text_in_both_languages() {
    let codes = server_error_codes();
    assert!(
        codes.len() >= 25
            && codes.contains(&"insufficient_funds".to_owned())
            && codes.contains(&"validation_failed".to_owned()),
        "{codes:?}"
    );
    let source = console_source("lib/i18n.js");
    for dictionary in ["en", "fr"] {
        let keys = dictionary_keys(&source, dictionary);
        let missing: Vec<_> = codes
            .iter()
            .filter(|code| !keys.contains(&format!("error.code.{code}")))
            .collect();
        assert!(
            missing.is_empty(),
            "{dictionary} lacks error.code.{missing:?}"
        );
        // And no text for a code the server no longer has.
        let stale: Vec<_> = keys
            .iter()
            .filter_map(|key| key.strip_prefix("error.code."))
            .filter(|code| !codes.iter().any(|known| known == code))
            .collect();
        assert!(
            stale.is_empty(),
            "{dictionary} has stale error.code.{stale:?}"
        );
    }
}

/// The quoted strings of the JavaScript array `const NAME = [ … ];` in `source`.
fn js_string_list(source: &str, name: &str) -> Vec<String> {
    let start = source
        .find(&format!("const {name} = ["))
        .unwrap_or_else(|| panic!("no list {name}"));
    let body = &source[start..];
    let body = &body[..body.find("];").unwrap()];
    body.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The API keys page offers exactly the scopes the server knows, in its order: a scope added
/// to `Scope` (or renamed) cannot be missing from the console, nor one offered that the API
/// would refuse.
#[test]
fn the_key_page_offers_the_servers_scopes() {
    let console = js_string_list(&console_source("pages/keys.js"), "SCOPES");
    let server: Vec<String> = crier::api_keys::format::Scope::ALL
        .iter()
        .map(|scope| scope.as_str().to_owned())
        .collect();
    assert!(!server.is_empty());
    assert_eq!(console, server);
}

/// The webhooks page offers every event type an endpoint may want, in the server's order, and
/// none it would refuse (`webhook.test` is only sent by the test route).
#[test]
fn the_webhooks_page_offers_the_servers_event_types() {
    let console = js_string_list(&console_source("pages/webhooks.js"), "EVENTS");
    let server: Vec<String> = crier::events::EventType::ALL
        .iter()
        .map(|kind| kind.as_str().to_owned())
        .filter(|kind| kind != "webhook.test")
        .collect();
    assert!(server.len() > 10);
    assert_eq!(console, server);
}

/// The activity page's action filter lists exactly the actions the log records: one added to
/// `Action` cannot be missing from the console, nor one offered that the API would refuse.
#[test]
fn the_activity_page_filters_by_the_servers_actions() {
    let console = js_string_list(&console_source("pages/activity.js"), "ACTIONS");
    let server: Vec<String> = crier::activity::Action::ALL
        .iter()
        .map(|action| action.as_str().to_owned())
        .collect();
    assert!(server.len() > 40);
    assert_eq!(console, server);
}

/// The segment builder stops offering "Add a group" at the depth the API accepts.
#[test]
fn the_segment_builder_nests_as_deep_as_the_api() {
    let source = console_source("pages/segments.js");
    let line = source
        .lines()
        .find(|line| line.starts_with("export const MAX_DEPTH = "))
        .expect("MAX_DEPTH in segments.js");
    let depth: usize = line
        .trim_start_matches("export const MAX_DEPTH = ")
        .trim_end_matches(';')
        .parse()
        .unwrap();
    assert_eq!(depth, crier::contacts::rules::MAX_DEPTH);
}
