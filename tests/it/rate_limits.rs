//! Request rate limits over HTTP (docs/API.md, "Rate limits"): each API key has its own bucket,
//! each client IP one for the routes open without credentials; an empty bucket answers 429
//! `rate_limited` with `Retry-After`, and the IETF `RateLimit-Policy` / `RateLimit` fields say
//! the quota and what is left. Buckets refill with real time, so these tests use buckets too
//! slow to refill while they run (1 token a second, a burst of 3 or 2) and assert only the
//! requests made back to back.

use crier::auth::buckets::Rate;
use crier::web::router::{OPEN_ROUTES, Router};

use crate::auth_fixtures::{bearer, count, create_key, setup};
use crate::harness::{TestResponse, TestServer};

fn limited(api: Rate, public: Rate) -> TestServer {
    TestServer::start_with(
        |config| {
            config.api_rate = api;
            config.public_rate = public;
        },
        Router::standard(),
    )
}

fn rate(per_second: u32, burst: u32) -> Rate {
    Rate { per_second, burst }
}

fn fields(response: &TestResponse) -> (Option<&str>, Option<&str>) {
    (
        response.header("RateLimit-Policy"),
        response.header("RateLimit"),
    )
}

#[test]
fn each_api_key_has_its_own_bucket_and_an_empty_one_answers_429() {
    // One request a second with bursts of 3: at most one token comes back while this runs,
    // and the assertions allow for it.
    let server = limited(rate(1, 3), Rate::OFF);
    let owner = setup(&server);
    let (_, key) = create_key(&owner, &["messages:read"], "live");
    let (_, other) = create_key(&owner, &["messages:read"], "live");
    let first = bearer(&server, &key, "GET", "/v1/workspace", None);
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(
        fields(&first),
        (Some("\"api\";q=3;w=3"), Some("\"api\";r=2;t=1"))
    );
    let mut refused = None;
    for _ in 0..4 {
        let response = bearer(&server, &key, "GET", "/v1/workspace", None);
        if response.status == 429 {
            refused = Some(response);
            break;
        }
        assert_eq!(response.status, 200, "{}", response.text());
    }
    let refused = refused.expect("the fifth request at the latest is refused");
    refused.assert_error(429, "rate_limited");
    assert_eq!(refused.header("Retry-After"), Some("1"));
    assert_eq!(refused.header("RateLimit-Policy"), Some("\"api\";q=3;w=3"));
    assert!(
        refused
            .header("RateLimit")
            .unwrap()
            .starts_with("\"api\";r=0;t="),
        "{:?}",
        refused.header("RateLimit")
    );
    // A refused send changes nothing; another key, and the console, are not affected.
    let messages = count(&server, "SELECT count(*) FROM messages");
    let body = serde_json::json!({"channel": "sms", "to": "677 12 34 56", "text": "Hi"});
    let send = bearer(&server, &key, "POST", "/v1/messages", Some(&body));
    assert_eq!(send.status, 429, "{}", send.text());
    assert_eq!(count(&server, "SELECT count(*) FROM messages"), messages);
    assert_eq!(
        bearer(&server, &other, "GET", "/v1/workspace", None).status,
        200
    );
    for _ in 0..5 {
        let console = owner.get("/v1/workspace");
        assert_eq!(console.status, 200, "{}", console.text());
        assert_eq!(fields(&console), (None, None));
    }
}

/// A plan of the catalog may give its workspaces' keys their own rate (`api_requests_per_second`,
/// bursts of twice as many; 0 = no limit); plans without one keep the instance's.
#[test]
fn a_plan_may_set_its_keys_own_rate() {
    let server = TestServer::start_with(
        |config| {
            config.api_rate = rate(1, 3);
            config.public_rate = Rate::OFF;
            for plan in &mut config.billing_catalog.plans {
                plan.api_requests_per_second = match plan.code.as_str() {
                    "basic" => Some(1000),
                    "pro" => Some(0),
                    _ => None,
                };
            }
        },
        Router::standard(),
    );
    let owner = setup(&server);
    let workspace = owner.workspace_id().to_owned();
    let (_, key) = create_key(&owner, &["messages:read"], "live");
    let set_plan = |code: &str| {
        let response = owner.request(
            "PUT",
            &format!("/v1/admin/workspaces/{workspace}/plan"),
            Some(&serde_json::json!({ "plan_code": code })),
        );
        assert_eq!(response.status, 200, "{}", response.text());
    };

    // The plans say each one's rate: their own, or the instance's.
    let plans = owner.request("GET", "/v1/billing/plans", None).json();
    let rates: Vec<(&str, u64)> = plans["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|plan| {
            (
                plan["code"].as_str().unwrap(),
                plan["api_requests_per_second"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rates,
        [
            ("free", 1),
            ("basic", 1000),
            ("growth", 1),
            ("pro", 0),
            ("custom", 1)
        ]
    );

    // Free sets none: the instance's 1 a second, bursts of 3.
    let first = bearer(&server, &key, "GET", "/v1/workspace", None);
    assert_eq!(first.header("RateLimit-Policy"), Some("\"api\";q=3;w=3"));

    // Basic: 1,000 a second with bursts of 2,000; the same key's bucket takes the new shape at
    // once and keeps the tokens it had (two), so ten quick requests need the 10 ms of refill
    // that a fast loopback would not otherwise leave between them.
    set_plan("basic");
    std::thread::sleep(std::time::Duration::from_millis(20));
    for _ in 0..10 {
        let response = bearer(&server, &key, "GET", "/v1/workspace", None);
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(
            response.header("RateLimit-Policy"),
            Some("\"api\";q=2000;w=2")
        );
    }

    // Pro: no limit, so no RateLimit fields.
    set_plan("pro");
    for _ in 0..10 {
        let response = bearer(&server, &key, "GET", "/v1/workspace", None);
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(fields(&response), (None, None));
    }

    // Back to free: the bucket is cut down to the instance's burst of 3, and empties.
    set_plan("free");
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(bearer(&server, &key, "GET", "/v1/workspace", None).status);
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    assert_eq!(
        bearer(&server, &key, "GET", "/v1/workspace", None).header("RateLimit-Policy"),
        Some("\"api\";q=3;w=3")
    );
}

#[test]
fn open_routes_are_limited_per_client_ip() {
    let server = limited(Rate::OFF, rate(1, 2));
    let unsigned = || {
        server.request(
            "POST",
            "/v1/webhooks/stripe",
            &[("Content-Type", "application/json")],
            b"{}",
        )
    };
    let first = unsigned();
    first.assert_error(401, "invalid_signature");
    assert_eq!(
        fields(&first),
        (Some("\"public\";q=2;w=2"), Some("\"public\";r=1;t=1"))
    );
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(unsigned().status);
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    let journal = count(&server, "SELECT count(*) FROM payment_webhook_events");
    let refused = unsigned();
    refused.assert_error(429, "rate_limited");
    assert_eq!(
        count(&server, "SELECT count(*) FROM payment_webhook_events"),
        journal,
        "a refused request is not journalled"
    );
    // Routes behind credentials, and the probes, are not counted per IP.
    let probe = server.get("/healthz");
    assert_eq!(probe.status, 200);
    assert_eq!(fields(&probe), (None, None));
}

#[test]
fn every_open_route_is_a_route() {
    let router = Router::standard();
    for open in OPEN_ROUTES {
        assert!(
            router.routes().iter().any(|route| route.path == *open),
            "{open} is in OPEN_ROUTES but no route has that path"
        );
    }
}
