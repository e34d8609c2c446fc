//! First-run setup, login (its throttling: tests/it/login_throttling.rs), logout, `me`, CSRF protection of cookie-authenticated
//! mutations, and session expiry.

use serde_json::json;

use crate::auth_fixtures::{
    Console, EPOCH, OWNER_EMAIL, PASSWORD, count, create_key, send, session_cookie, set_cookie,
    setup, setup_body, try_login, without_request_id,
};
use crate::harness::{TestResponse, TestServer, send_raw};
use crier::web::router::Router;

fn setup_required(server: &TestServer) -> bool {
    let response = server.get("/v1/setup");
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()["setup_required"].as_bool().unwrap()
}

#[test]
fn setup_is_required_on_an_empty_instance() {
    let server = TestServer::start();
    assert_eq!(
        server.get("/v1/setup").json(),
        json!({"setup_required": true})
    );
}

#[test]
fn setup_creates_the_instance_admin_owner_and_logs_them_in() {
    let server = TestServer::start();
    let mut body = setup_body();
    body["email"] = json!("  Owner@Example.COM ");
    let response = server.post_json("/v1/setup", &body.to_string());
    assert_eq!(response.status, 201, "{}", response.text());
    let created = response.json();
    let user = &created["user"];
    assert!(user["id"].as_str().unwrap().starts_with("usr_"), "{user}");
    assert_eq!(user["email"], OWNER_EMAIL);
    assert_eq!(user["name"], "Olive Owner");
    assert_eq!(user["is_instance_admin"], true);
    assert_eq!(user["created_at"], EPOCH);
    let workspace = &created["workspace"];
    assert!(workspace["id"].as_str().unwrap().starts_with("wsp_"));
    assert_eq!(workspace["name"], "Acme");
    assert_eq!(workspace["created_at"], EPOCH);
    assert!(!created["csrf_token"].as_str().unwrap().is_empty());

    let cookie = set_cookie(&response).expect("Set-Cookie crier_session");
    let attributes: Vec<&str> = cookie.split(';').map(str::trim).collect();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(attributes.contains(&attribute), "{attribute} in {cookie}");
    }
    assert!(
        !attributes.contains(&"Secure"),
        "plain-http public URL: {cookie}"
    );
    assert!(!setup_required(&server));

    // The cookie is a working session in the new workspace, as its owner.
    let console = Console::from_response(&server, &response);
    let me = console.get("/v1/auth/me");
    assert_eq!(me.status, 200, "{}", me.text());
    let me = me.json();
    assert_eq!(me["user"], created["user"]);
    assert_eq!(me["workspace"], created["workspace"]);
    assert_eq!(me["role"], "owner");
    assert_eq!(
        me["memberships"],
        json!([{"workspace": created["workspace"], "role": "owner"}])
    );
    assert_eq!(me["csrf_token"], created["csrf_token"]);
}

#[test]
fn setup_cookie_is_secure_behind_an_https_public_url() {
    let server = TestServer::start_with(
        |config| config.public_url = "https://crier.example.com".to_owned(),
        crier::web::router::Router::standard(),
    );
    let response = server.post_json("/v1/setup", &setup_body().to_string());
    assert_eq!(response.status, 201, "{}", response.text());
    let cookie = set_cookie(&response).expect("Set-Cookie crier_session");
    assert!(
        cookie.split(';').map(str::trim).any(|a| a == "Secure"),
        "{cookie}"
    );
}

#[test]
fn second_setup_is_409_conflict_and_changes_nothing() {
    let server = TestServer::start();
    setup(&server);
    let second = json!({
        "email": "intruder@example.com",
        "password": "another long password",
        "name": "Intruder",
        "workspace_name": "Takeover",
    });
    let response = server.post_json("/v1/setup", &second.to_string());
    response.assert_error(409, "conflict");
    assert!(session_cookie(&response).is_none());
    assert_eq!(count(&server, "SELECT count(*) FROM users"), 1);
    assert_eq!(count(&server, "SELECT count(*) FROM workspaces"), 1);
    assert_eq!(count(&server, "SELECT count(*) FROM sessions"), 1);
    try_login(&server, "intruder@example.com", "another long password")
        .assert_error(401, "invalid_credentials");
}

#[test]
fn twenty_concurrent_setups_create_exactly_one_user() {
    let server = TestServer::start();
    let addr = server.addr;
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..20)
            .map(|n| {
                scope.spawn(move || {
                    let body = json!({
                        "email": format!("racer{n}@example.com"),
                        "password": PASSWORD,
                        "name": format!("Racer {n}"),
                        "workspace_name": format!("Race {n}"),
                    })
                    .to_string();
                    let request = format!(
                        "POST /v1/setup HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    send_raw(addr, request.as_bytes()).status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|&&s| s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&s| s == 409).count(),
        19,
        "{statuses:?}"
    );
    assert_eq!(count(&server, "SELECT count(*) FROM users"), 1);
    assert_eq!(count(&server, "SELECT count(*) FROM workspaces"), 1);
    assert_eq!(count(&server, "SELECT count(*) FROM memberships"), 1);
}

#[test]
fn invalid_setup_is_422_naming_the_field_and_creates_nothing() {
    let server = TestServer::start();
    let cases = [
        ("email", json!("not-an-email")),
        ("email", json!("")),
        ("password", json!("123456789")),
        ("password", json!("p".repeat(1025))),
        ("name", json!("")),
        ("name", json!("n".repeat(101))),
        ("workspace_name", json!("")),
        ("workspace_name", json!("w".repeat(101))),
    ];
    for (field, value) in cases {
        let mut body = setup_body();
        body[field] = value;
        let envelope = server
            .post_json("/v1/setup", &body.to_string())
            .assert_error(422, "validation_failed");
        let fields = envelope["error"]["details"]["fields"].as_object().unwrap();
        assert!(fields[field].is_string(), "{field}: {envelope}");
        assert_eq!(fields.len(), 1, "only {field} is wrong: {envelope}");
    }
    let mut unknown_field = setup_body();
    unknown_field["is_instance_admin"] = json!(false);
    server
        .post_json("/v1/setup", &unknown_field.to_string())
        .assert_error(422, "validation_failed");

    assert!(setup_required(&server));
    assert_eq!(count(&server, "SELECT count(*) FROM users"), 0);
    assert_eq!(count(&server, "SELECT count(*) FROM workspaces"), 0);
}

#[test]
fn setup_accepts_the_boundary_lengths() {
    let server = TestServer::start();
    let body = json!({
        "email": OWNER_EMAIL,
        "password": "p".repeat(1024),
        "name": "n".repeat(100),
        "workspace_name": "w".repeat(100),
    });
    let response = server.post_json("/v1/setup", &body.to_string());
    assert_eq!(response.status, 201, "{}", response.text());
    assert_eq!(
        try_login(&server, OWNER_EMAIL, &"p".repeat(1024)).status,
        200
    );
}

#[test]
fn setup_accepts_a_ten_character_password() {
    let server = TestServer::start();
    let mut body = setup_body();
    body["password"] = json!("0123456789");
    let response = server.post_json("/v1/setup", &body.to_string());
    assert_eq!(response.status, 201, "{}", response.text());
}

#[test]
fn login_returns_a_new_session_in_the_first_workspace() {
    let server = TestServer::start();
    let owner = setup(&server);
    let response = try_login(&server, OWNER_EMAIL, PASSWORD);
    assert_eq!(response.status, 200, "{}", response.text());
    let body = response.json();
    assert_eq!(body["user"]["id"], owner.user_id.as_str());
    assert_eq!(body["user"]["email"], OWNER_EMAIL);
    assert_eq!(body["workspace"]["id"], owner.workspace_id());
    let session = Console::from_response(&server, &response);
    assert_ne!(session.session, owner.session);
    assert_eq!(session.get("/v1/auth/me").json()["role"], "owner");
    assert_eq!(count(&server, "SELECT count(*) FROM sessions"), 2);
}

#[test]
fn login_failure_is_401_invalid_credentials_alike_for_unknown_email_and_wrong_password() {
    let server = TestServer::start();
    setup(&server);
    let unknown = try_login(&server, "nobody@example.com", PASSWORD);
    unknown.assert_error(401, "invalid_credentials");
    let wrong = try_login(&server, OWNER_EMAIL, "wrong password entirely");
    wrong.assert_error(401, "invalid_credentials");
    assert_eq!(without_request_id(&unknown), without_request_id(&wrong));
    assert!(session_cookie(&unknown).is_none());
    assert!(session_cookie(&wrong).is_none());
    assert_eq!(count(&server, "SELECT count(*) FROM sessions"), 1);
}

#[test]
fn logout_clears_the_cookie_and_ends_the_session() {
    let server = TestServer::start();
    let owner = setup(&server);
    let response = owner.request("POST", "/v1/auth/logout", None);
    assert_eq!(response.status, 204, "{}", response.text());
    let cookie = set_cookie(&response).expect("a clearing Set-Cookie");
    assert!(
        cookie.split(';').map(str::trim).any(|a| a == "Max-Age=0"),
        "{cookie}"
    );
    assert_eq!(count(&server, "SELECT count(*) FROM sessions"), 0);
    owner
        .get("/v1/auth/me")
        .assert_error(401, "unauthenticated");
    owner
        .get("/v1/workspace")
        .assert_error(401, "unauthenticated");
}

#[test]
fn me_without_a_session_is_401_unauthenticated() {
    let server = TestServer::start();
    setup(&server);
    server
        .get("/v1/auth/me")
        .assert_error(401, "unauthenticated");
    server
        .request(
            "GET",
            "/v1/auth/me",
            &[("Cookie", "crier_session=not-a-session-anyone-was-given")],
            b"",
        )
        .assert_error(401, "unauthenticated");
}

#[test]
fn protected_routes_without_credentials_are_401_unauthenticated() {
    let server = TestServer::start();
    setup(&server);
    for (method, path) in [
        ("GET", "/v1/workspace"),
        ("GET", "/v1/workspaces"),
        ("GET", "/v1/api-keys"),
        ("GET", "/v1/workspace/members"),
        ("GET", "/v1/auth/me"),
        ("POST", "/v1/workspaces"),
    ] {
        server
            .request(method, path, &[], b"")
            .assert_error(401, "unauthenticated");
    }
}

#[test]
fn logout_without_a_live_session_still_clears_the_cookie() {
    let server = TestServer::start();
    setup(&server);
    for cookie in [None, Some("crier_session=not-a-session-token")] {
        let headers: Vec<(&str, &str)> = cookie.map(|c| ("Cookie", c)).into_iter().collect();
        let response = server.request("POST", "/v1/auth/logout", &headers, b"");
        assert_eq!(response.status, 204, "{}", response.text());
        let set_cookie = response.header("Set-Cookie").unwrap();
        assert!(
            set_cookie.starts_with("crier_session=;") && set_cookie.contains("Max-Age=0"),
            "{set_cookie}"
        );
    }
}

#[test]
fn cookie_mutation_without_the_csrf_token_is_403_and_changes_nothing() {
    let server = TestServer::start();
    let owner = setup(&server);
    for csrf in [None, Some("wrong-token"), Some("")] {
        owner
            .request_with_csrf(
                "PATCH",
                "/v1/workspace",
                csrf,
                Some(&json!({"name": "Hijacked"})),
            )
            .assert_error(403, "csrf_failed");
        owner
            .request_with_csrf(
                "POST",
                "/v1/api-keys",
                csrf,
                Some(&json!({"name": "stolen", "scopes": ["messages:send"], "mode": "live"})),
            )
            .assert_error(403, "csrf_failed");
        owner
            .request_with_csrf("POST", "/v1/auth/logout", csrf, None)
            .assert_error(403, "csrf_failed");
    }
    let workspace = owner.get("/v1/workspace");
    assert_eq!(workspace.json()["name"], "Acme");
    assert_eq!(count(&server, "SELECT count(*) FROM api_keys"), 0);
    assert_eq!(count(&server, "SELECT count(*) FROM sessions"), 1);
    assert_eq!(owner.get("/v1/auth/me").status, 200);
}

#[test]
fn csrf_tokens_are_never_stored_and_stay_the_same_for_a_session() {
    let server = TestServer::start();
    let owner = setup(&server);
    let other = crate::auth_fixtures::login(&server, OWNER_EMAIL, PASSWORD);
    for session in [&owner, &other] {
        let me = session.get("/v1/auth/me");
        assert_eq!(me.json()["csrf_token"], session.csrf_token.as_str());
        let stored = count(
            &server,
            &format!(
                "SELECT count(*) FROM sessions WHERE csrf_token = '{}'",
                session.csrf_token
            ),
        );
        assert_eq!(stored, 0, "the CSRF token is in the sessions table");
    }
    assert_eq!(
        count(
            &server,
            "SELECT count(*) FROM sessions WHERE csrf_token <> ''"
        ),
        0
    );
    // Still enforced: the derived token works, another one does not.
    assert_eq!(
        owner
            .request("PATCH", "/v1/workspace", Some(&json!({"name": "Renamed"})))
            .status,
        200
    );
}

#[test]
fn another_sessions_csrf_token_is_refused() {
    let server = TestServer::start();
    let owner = setup(&server);
    let other_session = crate::auth_fixtures::login(&server, OWNER_EMAIL, PASSWORD);
    assert_ne!(owner.csrf_token, other_session.csrf_token);
    owner
        .request_with_csrf(
            "PATCH",
            "/v1/workspace",
            Some(&other_session.csrf_token),
            Some(&json!({"name": "Hijacked"})),
        )
        .assert_error(403, "csrf_failed");
    assert_eq!(owner.get("/v1/workspace").json()["name"], "Acme");
}

#[test]
fn login_needs_no_csrf_token_even_with_a_session_cookie() {
    let server = TestServer::start();
    let owner = setup(&server);
    let cookie = owner.cookie();
    let response = send(
        &server,
        "POST",
        "/v1/auth/login",
        vec![("Cookie", cookie.as_str())],
        Some(&json!({"email": OWNER_EMAIL, "password": PASSWORD})),
    );
    assert_eq!(response.status, 200, "{}", response.text());
}

#[test]
fn a_session_idle_for_more_than_24_hours_is_401() {
    let server = TestServer::start();
    let owner = setup(&server);
    server.clock.advance(chrono::Duration::hours(23));
    assert_eq!(owner.get("/v1/auth/me").status, 200);
    server.clock.advance(chrono::Duration::hours(25));
    owner
        .get("/v1/auth/me")
        .assert_error(401, "unauthenticated");
}

#[test]
fn session_last_seen_is_written_at_most_once_a_minute() {
    let server = TestServer::start();
    let owner = setup(&server);
    let last_seen = || -> String {
        server
            .db()
            .query_row("SELECT last_seen_at FROM sessions", [], |row| row.get(0))
            .unwrap()
    };
    let at_setup = last_seen();
    server.clock.advance(chrono::Duration::seconds(30));
    assert_eq!(owner.get("/v1/auth/me").status, 200);
    assert_eq!(last_seen(), at_setup, "rewritten within a minute");
    server.clock.advance(chrono::Duration::minutes(2));
    assert_eq!(owner.get("/v1/auth/me").status, 200);
    assert_ne!(last_seen(), at_setup);
}

#[test]
fn an_active_session_still_ends_30_days_after_login() {
    let server = TestServer::start();
    let owner = setup(&server);
    // 31 × 23 h = 713 h: used within every idle window, still inside 30 days (720 h).
    for step in 1..=31 {
        server.clock.advance(chrono::Duration::hours(23));
        let response = owner.get("/v1/auth/me");
        assert_eq!(response.status, 200, "step {step}: {}", response.text());
    }
    server.clock.advance(chrono::Duration::hours(23));
    owner
        .get("/v1/auth/me")
        .assert_error(401, "unauthenticated");
}

#[test]
fn a_bearer_key_wins_over_a_session_cookie() {
    let server = TestServer::start();
    let owner = setup(&server);
    let (key_id, key) = create_key(&owner, &["messages:read"], "test");
    let authorization = format!("Bearer {key}");
    let cookie = owner.cookie();
    let response = send(
        &server,
        "GET",
        "/v1/workspace",
        vec![
            ("Authorization", authorization.as_str()),
            ("Cookie", cookie.as_str()),
        ],
        None,
    );
    assert_eq!(response.status, 200, "{}", response.text());
    let body = response.json();
    assert_eq!(body["api_key"]["id"], key_id.as_str());
    assert!(body.get("role").is_none(), "{body}");

    // And a bad key is not rescued by a good cookie.
    let bad = send(
        &server,
        "GET",
        "/v1/workspace",
        vec![
            ("Authorization", "Bearer crier_live_nope"),
            ("Cookie", cookie.as_str()),
        ],
        None,
    );
    bad.assert_error(401, "invalid_api_key");
}

#[test]
fn any_authorization_header_is_judged_alone_never_falling_back_to_the_cookie() {
    let server = TestServer::start();
    let owner = setup(&server);
    let cookie = owner.cookie();
    assert_eq!(owner.get("/v1/workspace").status, 200);
    for (authorization, code) in [
        ("Bearer ", "invalid_api_key"),
        ("Bearer", "invalid_api_key"),
        ("bearer    ", "invalid_api_key"),
        ("Basic dXNlcjpwYXNz", "unauthenticated"),
        ("Digest username=\"x\"", "unauthenticated"),
        ("", "unauthenticated"),
        ("garbage", "unauthenticated"),
    ] {
        for (method, path) in [("GET", "/v1/workspace"), ("GET", "/v1/auth/me")] {
            let response = send(
                &server,
                method,
                path,
                vec![
                    ("Authorization", authorization),
                    ("Cookie", cookie.as_str()),
                ],
                None,
            );
            assert_eq!(
                response.status,
                401,
                "{authorization:?} on {path}: {}",
                response.text()
            );
            response.assert_error(401, code);
        }
        // A mutation with the right CSRF token is refused too and changes nothing.
        let csrf = owner.csrf_token.clone();
        let body = json!({"name": "Renamed"}).to_string();
        server
            .request(
                "PATCH",
                "/v1/workspace",
                &[
                    ("Authorization", authorization),
                    ("Cookie", cookie.as_str()),
                    ("X-CSRF-Token", csrf.as_str()),
                    ("Content-Type", "application/json"),
                ],
                body.as_bytes(),
            )
            .assert_error(401, code);
    }
    assert_eq!(owner.get("/v1/workspace").json()["name"], "Acme");
}

/// A failed login for a fresh email, as seen from `forwarded_for` behind the proxy.
fn failed_login_via_proxy(server: &TestServer, n: usize, forwarded_for: &str) -> TestResponse {
    let body = json!({"email": format!("nobody{n}@example.com"), "password": "wrong password"});
    server.request(
        "POST",
        "/v1/auth/login",
        &[
            ("Content-Type", "application/json"),
            ("X-Forwarded-For", forwarded_for),
        ],
        body.to_string().as_bytes(),
    )
}

#[test]
fn behind_a_trusted_proxy_logins_are_throttled_per_client() {
    let server = TestServer::start_with(
        |config| config.trusted_proxies = vec!["127.0.0.1".parse().unwrap()],
        Router::standard(),
    );
    setup(&server);
    for n in 0..50 {
        failed_login_via_proxy(&server, n, "203.0.113.7").assert_error(401, "invalid_credentials");
    }
    failed_login_via_proxy(&server, 50, "203.0.113.7").assert_error(429, "rate_limited");
    // Another client behind the same proxy is not locked out; a spoofed chain is read from the
    // proxy's end.
    failed_login_via_proxy(&server, 51, "198.51.100.9").assert_error(401, "invalid_credentials");
    failed_login_via_proxy(&server, 52, "203.0.113.7, 198.51.100.10")
        .assert_error(401, "invalid_credentials");
}

#[test]
fn without_trusted_proxies_x_forwarded_for_is_ignored() {
    let server = TestServer::start();
    setup(&server);
    for n in 0..50 {
        // Each claims another client, but the socket's peer is what counts.
        let claimed = format!("203.0.113.{n}");
        failed_login_via_proxy(&server, n, &claimed).assert_error(401, "invalid_credentials");
    }
    failed_login_via_proxy(&server, 50, "198.51.100.9").assert_error(429, "rate_limited");
}
