//! Campaign link tracking over HTTP: the draft field, URLs rewritten to short links at the
//! fan-out (SMS text, email text and `href`s; never the unsubscribe link or a URL with a template
//! expression), segments counted after rewriting by the estimate and the fan-out alike, the
//! short link's 302 and its click recorded in the campaign's mode, clicks and unique clicks in
//! the stats and the timeline, forged and foreign codes refused with nothing recorded.

use std::time::Duration;

use serde_json::{Value, json};

use crate::auth_fixtures::{Caller, count, create_key, second_tenant, send};
use crate::campaign_sending::{SCOPES, Shop};
use crate::harness::{TestResponse, TestServer, wait_for_value};

const SETTLE: Duration = Duration::from_secs(120);

/// The test server's `PUBLIC_URL` followed by the short links' path.
const SHORT: &str = "http://127.0.0.1/l/";

const TARGET: &str = "https://shop.example.com/autumn?ref=sms&x=1";

/// What these tests ask of a shop besides what the campaign sending tests do.
impl Shop<'_> {
    /// A contact whose name is its first name.
    fn named_contact(&self, mut body: Value) -> String {
        body["name"] = body["first_name"].clone();
        let response = self.api.post("/v1/contacts", body);
        assert_eq!(response.status, 201, "{}", response.text());
        response.json()["id"].as_str().unwrap().to_owned()
    }

    /// Launches and waits until every message is sent.
    fn send(&self, id: &str) -> Value {
        let authorization = format!("Bearer {}", self.api.key);
        let launched = send(
            self.server,
            "POST",
            &format!("/v1/campaigns/{id}/launch"),
            vec![
                ("Authorization", authorization.as_str()),
                ("Idempotency-Key", &format!("launch-{id}")),
            ],
            None,
        );
        assert_eq!(launched.status, 200, "{}", launched.text());
        wait_for_value(
            &format!("campaign {id} completes"),
            SETTLE,
            || self.show(id),
            |campaign| campaign["status"] == "completed",
        )
    }

    /// The campaign's messages as stored, in contact order: (contact id, text, html, segments).
    fn link_messages(&self, campaign: &str) -> Vec<StoredMessage> {
        let db = self.server.db();
        let mut stmt = db
            .prepare(
                "SELECT m.contact_id, m.text, m.html, m.segments
                 FROM messages m JOIN contacts c ON c.id = m.contact_id
                 WHERE m.campaign_id = ?1 ORDER BY c.rowid",
            )
            .unwrap();
        stmt.query_map([campaign], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
    }
}

/// A campaign message as stored: (contact id, text, html, segments).
type StoredMessage = (String, Option<String>, Option<String>, Option<i64>);

/// The short links in `content`, in order (codes are base62).
fn short_links(content: &str) -> Vec<String> {
    content
        .match_indices(SHORT)
        .map(|(at, _)| {
            let code: String = content[at + SHORT.len()..]
                .chars()
                .take_while(char::is_ascii_alphanumeric)
                .collect();
            format!("/l/{code}")
        })
        .collect()
}

fn clicks(server: &TestServer) -> i64 {
    count(server, "SELECT count(*) FROM campaign_clicks")
}

/// A short link followed by a browser that does not follow redirects.
fn follow(server: &TestServer, path: &str) -> TestResponse {
    server.get(path)
}

fn assert_redirects(response: &TestResponse, target: &str) {
    assert_eq!(response.status, 302, "{}", response.text());
    assert_eq!(response.header("Location"), Some(target));
    assert_eq!(response.header("Cache-Control"), Some("no-store"));
    assert_eq!(response.header("Referrer-Policy"), Some("no-referrer"));
}

fn assert_not_found_page(response: &TestResponse) {
    assert_eq!(response.status, 404);
    assert!(
        response
            .header("Content-Type")
            .is_some_and(|value| value.starts_with("text/html")),
        "{:?}",
        response.headers
    );
    assert_eq!(response.header("Cache-Control"), Some("no-store"));
    assert!(response.text().contains("Link not found"));
}

#[test]
fn short_links_redirect_count_clicks_per_recipient_and_refuse_forged_codes() {
    let server = TestServer::start();
    let shop = Shop::open(&server, "test");
    for (n, name) in ["Ann", "Bob", "Cy"].iter().enumerate() {
        shop.named_contact(json!({"first_name": name, "phone": format!("+23767000000{n}")}));
    }
    let text = format!("Hi {{{{ contact.first_name }}}}, the sale: {TARGET}. See you!");
    let id = shop.campaign(json!({"name": "Sale", "channel": "sms", "text": text,
                                  "audience": {"all": true}, "opt_out_line": true}));
    // The draft field: off by default, on by PATCH, copied by a duplicate.
    assert_eq!(shop.show(&id)["track_links"], false);
    let patched = shop
        .api
        .patch(&format!("/v1/campaigns/{id}"), json!({"track_links": true}));
    assert_eq!(patched.status, 200, "{}", patched.text());
    assert_eq!(patched.json()["track_links"], true);
    let copy = shop
        .api
        .post(&format!("/v1/campaigns/{id}/duplicate"), json!({}));
    assert_eq!(copy.json()["track_links"], true, "{}", copy.text());
    let not_bool = shop.api.patch(
        &format!("/v1/campaigns/{id}"),
        json!({"track_links": "yes"}),
    );
    let fields = not_bool.assert_error(422, "validation_failed");
    assert!(fields["error"]["details"]["fields"]["track_links"].is_string());

    let done = shop.send(&id);
    assert_eq!(done["stats"]["clicks"], 0, "{done}");
    assert_eq!(done["stats"]["unique_clicks"], 0);
    let changed = shop.api.patch(
        &format!("/v1/campaigns/{id}"),
        json!({"track_links": false}),
    );
    assert_eq!(changed.status, 409, "only a draft changes");
    assert_eq!(
        count(
            &server,
            &format!("SELECT count(*) FROM campaign_links WHERE campaign_id = '{id}'")
        ),
        1,
        "one stored link for three messages"
    );

    let messages = shop.link_messages(&id);
    assert_eq!(messages.len(), 3);
    let mut links = Vec::new();
    for (_, text, _, segments) in &messages {
        let text = text.as_deref().unwrap();
        assert!(!text.contains(TARGET), "{text}");
        let found = short_links(text);
        assert_eq!(found.len(), 1, "{text}");
        // The code stays short; the punctuation after the URL stays; the opt-out line keeps
        // its unsubscribe link.
        let code_length = found[0].len() - "/l/".len();
        assert!((6..=12).contains(&code_length), "{}", found[0]);
        assert!(text.contains(&format!("{}. See you!", found[0])), "{text}");
        assert!(text.contains("\nSTOP: http://127.0.0.1/u/"), "{text}");
        // Counted as sent: plain GSM text, 160 characters a segment, 153 once split.
        let length = text.chars().count();
        let expected = if length <= 160 {
            1
        } else {
            length.div_ceil(153)
        };
        assert_eq!(*segments, Some(expected as i64), "{text}");
        links.push(found[0].clone());
    }
    assert_eq!(
        links
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        3,
        "each recipient has a code of their own"
    );

    // Two clicks from the first recipient, one from the second.
    for link in [&links[0], &links[0], &links[1]] {
        assert_redirects(&follow(&server, link), TARGET);
    }
    assert_eq!(clicks(&server), 3);
    assert_eq!(
        count(
            &server,
            "SELECT count(*) FROM campaign_clicks WHERE mode = 'test'"
        ),
        3,
        "a test-mode campaign's clicks are test-mode"
    );
    let shown = shop.show(&id);
    assert_eq!(shown["stats"]["clicks"], 3, "{shown}");
    assert_eq!(shown["stats"]["unique_clicks"], 2);
    let timeline = shop.api.get(&format!("/v1/campaigns/{id}/timeline")).json();
    assert_eq!(
        timeline,
        json!({"period": "minute", "data": [{"start": "2026-11-25T09:30:00.000Z",
               "sent": 3, "delivered": 0, "failed": 0, "clicks": 3}]})
    );

    // Forged codes: every single character changed, a code cut short or lengthened, nonsense.
    let code = &links[2]["/l/".len()..];
    let mut forged = Vec::new();
    for (index, original) in code.char_indices() {
        let other = if original == 'a' { 'b' } else { 'a' };
        let mut changed = code.to_owned();
        changed.replace_range(index..=index, &other.to_string());
        forged.push(changed);
    }
    forged.extend([
        code[..code.len() - 1].to_owned(),
        format!("{code}0"),
        "0".to_owned(),
        "not-a-code".to_owned(),
        "z".repeat(40),
    ]);
    for forged in &forged {
        assert_not_found_page(&follow(&server, &format!("/l/{forged}")));
    }
    assert_eq!(clicks(&server), 3, "nothing recorded for a bad code");
    // The real one still works.
    assert_redirects(&follow(&server, &links[2]), TARGET);
    let shown = shop.show(&id);
    assert_eq!(shown["stats"]["clicks"], 4);
    assert_eq!(shown["stats"]["unique_clicks"], 3);
}

/// A campaign's text whose URL makes it two segments as written, one once rewritten.
fn long_url_text() -> String {
    // Rendered for "Ann0": 38 characters, then 133 of URL (the plain campaign's estimate
    // below checks it is two segments as written).
    let url = format!(
        "https://shop.example.com/{}",
        "autumn-collection/".repeat(6)
    );
    format!("Hi {{{{ contact.first_name }}}}! Our autumn collection is in: {url}")
}

#[test]
fn segments_are_counted_after_rewriting_by_the_estimate_and_the_fan_out() {
    let server = TestServer::start();
    let shop = Shop::open(&server, "test");
    for n in 0..4 {
        shop.named_contact(
            json!({"first_name": format!("Ann{n}"), "phone": format!("+2376700000{n:02}")}),
        );
    }
    let tracked = shop.campaign(
        json!({"name": "Long", "channel": "sms", "text": long_url_text(),
                                       "audience": {"all": true}, "track_links": true}),
    );
    let plain = shop.campaign(
        json!({"name": "Long", "channel": "sms", "text": long_url_text(),
                                     "audience": {"all": true}}),
    );
    let estimate = shop.estimate(&tracked);
    assert_eq!(
        estimate["segments"],
        json!([{"segments": 1, "recipients": 4}]),
        "{estimate}"
    );
    assert_eq!(estimate["units"], 4);
    let estimate = shop.estimate(&plain);
    assert_eq!(
        estimate["segments"],
        json!([{"segments": 2, "recipients": 4}]),
        "{estimate}"
    );

    let done = shop.send(&tracked);
    assert_eq!(done["launch"]["planned_units"], 4, "{done}");
    for (_, text, _, segments) in shop.link_messages(&tracked) {
        let text = text.unwrap();
        assert_eq!(short_links(&text).len(), 1, "{text}");
        assert!(text.chars().count() <= 160, "{text}");
        assert_eq!(segments, Some(1));
    }
    // Without tracking, URLs are left alone: no link stored, nothing rewritten, no click stats.
    let done = shop.send(&plain);
    assert!(done["stats"].get("clicks").is_none(), "{done}");
    assert!(done["stats"].get("unique_clicks").is_none());
    for (_, text, _, segments) in shop.link_messages(&plain) {
        let text = text.unwrap();
        assert!(
            text.contains("https://shop.example.com/autumn-collection/"),
            "{text}"
        );
        assert!(short_links(&text).is_empty(), "{text}");
        assert_eq!(segments, Some(2));
    }
    assert_eq!(
        count(
            &server,
            &format!("SELECT count(*) FROM campaign_links WHERE campaign_id = '{plain}'")
        ),
        0
    );
}

#[test]
fn email_hrefs_and_text_are_rewritten_escaped_and_crier_links_left_alone() {
    let server = TestServer::start();
    let shop = Shop::open(&server, "test");
    shop.named_contact(json!({"first_name": "Ann", "email": "ann@example.com"}));
    let html = r#"<p>Hi {{ contact.first_name }}</p>
<a class="cta" href="https://shop.example.com/?a=1&amp;b=2">Shop</a>
<a href='https://shop.example.com/p/{{ contact.first_name }}'>Yours</a>
<a href="{{ unsubscribe_url }}">Unsubscribe</a>
<p>Text saying https://shop.example.com/plain is not an href.</p>"#;
    let text = "Shop at https://shop.example.com/?a=1&b=2 or https://other.example.org/x.";
    let id = shop.campaign(
        json!({"name": "Mail", "channel": "email", "subject": "Autumn",
        "html": html, "text": text, "audience": {"all": true}, "track_links": true}),
    );
    shop.send(&id);
    let messages = shop.link_messages(&id);
    assert_eq!(messages.len(), 1);
    let (_, text, html, _) = &messages[0];
    let (text, html) = (text.as_deref().unwrap(), html.as_deref().unwrap());

    // The href: a short link, written as an attribute value.
    let hrefs = short_links(html);
    assert_eq!(hrefs.len(), 1, "{html}");
    assert!(
        html.contains(&format!(
            r#"<a class="cta" href="http://127.0.0.1{}">Shop</a>"#,
            hrefs[0]
        )),
        "{html}"
    );
    // Left alone: a URL with a template expression, the unsubscribe link, text outside hrefs.
    assert!(
        html.contains("href='https://shop.example.com/p/Ann'"),
        "{html}"
    );
    // (minijinja escapes the variable's `/` in HTML.)
    assert!(
        html.contains(r#"href="http:&#x2f;&#x2f;127.0.0.1&#x2f;u&#x2f;"#),
        "{html}"
    );
    assert!(html.contains("https://shop.example.com/plain is"), "{html}");
    // The target is the href as a browser reads it: `&amp;` is `&`.
    assert_redirects(
        &follow(&server, &hrefs[0]),
        "https://shop.example.com/?a=1&b=2",
    );

    // The text part: both URLs rewritten; the one written like the href's target shares its
    // link (the same target), but the code is the same recipient's, so it is the same code.
    let in_text = short_links(text);
    assert_eq!(in_text.len(), 2, "{text}");
    assert_eq!(in_text[0], hrefs[0]);
    assert!(text.ends_with('.'), "{text}");
    assert_redirects(&follow(&server, &in_text[1]), "https://other.example.org/x");
    assert_eq!(
        count(
            &server,
            &format!("SELECT count(*) FROM campaign_links WHERE campaign_id = '{id}'")
        ),
        2
    );
    let shown = shop.show(&id);
    assert_eq!(shown["stats"]["clicks"], 2, "{shown}");
    assert_eq!(shown["stats"]["unique_clicks"], 1);
}

#[test]
fn another_workspaces_campaigns_and_codes_are_not_found() {
    let server = TestServer::start();
    let shop = Shop::open(&server, "test");
    shop.named_contact(json!({"first_name": "Ann", "phone": "+237670000001"}));
    let id = shop.campaign(json!({"name": "Sale", "channel": "sms",
        "text": format!("Sale: {TARGET}"), "audience": {"all": true}, "track_links": true}));
    shop.send(&id);
    let link = short_links(shop.link_messages(&id)[0].1.as_deref().unwrap()).remove(0);

    // Another workspace's key sees neither the campaign, its stats nor its timeline.
    let globex = second_tenant(&shop.owner, "globex@example.com");
    let (_, key) = create_key(&globex, SCOPES, "test");
    let other = Caller {
        server: &server,
        key,
    };
    for path in [
        format!("/v1/campaigns/{id}"),
        format!("/v1/campaigns/{id}/timeline"),
    ] {
        other.get(&path).assert_error(404, "not_found");
    }
    let patched = other.patch(
        &format!("/v1/campaigns/{id}"),
        json!({"track_links": false}),
    );
    patched.assert_error(404, "not_found");
    // The live key of the same workspace neither.
    let (_, live) = create_key(&shop.owner, SCOPES, "live");
    let live = Caller {
        server: &server,
        key: live,
    };
    live.get(&format!("/v1/campaigns/{id}"))
        .assert_error(404, "not_found");

    // A code signed with crier's own key for the link and another workspace's contact is
    // refused: a link only counts its own workspace's recipients.
    let stranger = other.post(
        "/v1/contacts",
        json!({"name": "Eve", "first_name": "Eve", "phone": "+237670000002"}),
    );
    assert_eq!(stranger.status, 201, "{}", stranger.text());
    let stranger = stranger.json()["id"].as_str().unwrap().to_owned();
    let db = server.db();
    let key: Vec<u8> = db
        .query_row(
            "SELECT key FROM server_keys WHERE name = 'unsubscribe'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    let key = crier::secrets::ServerKey::from_bytes(&key);
    let link_id: i64 = db
        .query_row(
            "SELECT id FROM campaign_links WHERE campaign_id = ?1",
            [&id],
            |row| row.get(0),
        )
        .unwrap();
    let rowid: i64 = db
        .query_row(
            "SELECT rowid FROM contacts WHERE id = ?1",
            [&stranger],
            |row| row.get(0),
        )
        .unwrap();
    let stranger_id = crier::ids::ContactId::parse(&stranger).unwrap();
    let foreign = crier::campaigns::links::Code::new(&key, link_id, rowid, &stranger_id)
        .unwrap()
        .encode();
    assert_not_found_page(&follow(&server, &format!("/l/{foreign}")));
    assert_eq!(clicks(&server), 0);
    // And crier's code for its own recipient works (the key read here is the one in use).
    assert_redirects(&follow(&server, &link), TARGET);
    assert_eq!(clicks(&server), 1);
}
