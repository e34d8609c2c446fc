//! Login throttling (docs/rules/access.md, "Login throttling"): failures counted per
//! (account, client IP) with growing delays and per client IP across accounts, never per account
//! alone; counters kept across a restart. The client IP is varied through a trusted proxy's
//! `X-Forwarded-For`.

use chrono::Duration;
use serde_json::json;

use crate::auth_fixtures::{OWNER_EMAIL, PASSWORD, count, session_cookie, setup};
use crate::harness::{TestResponse, TestServer};
use crier::web::router::Router;

const WRONG: &str = "wrong password entirely";

fn behind_a_proxy() -> TestServer {
    TestServer::start_with(
        |config| config.trusted_proxies = vec!["127.0.0.1".parse().unwrap()],
        Router::standard(),
    )
}

/// A login as seen from client `ip` behind the trusted proxy.
fn login_from(server: &TestServer, ip: &str, email: &str, password: &str) -> TestResponse {
    let body = json!({"email": email, "password": password});
    server.request(
        "POST",
        "/v1/auth/login",
        &[
            ("Content-Type", "application/json"),
            ("X-Forwarded-For", ip),
        ],
        body.to_string().as_bytes(),
    )
}

/// Asserts a 429 that set no session, and returns its `Retry-After` in seconds.
fn refused(response: &TestResponse) -> i64 {
    let body = response.assert_error(429, "rate_limited");
    assert!(session_cookie(response).is_none());
    let retry_after: i64 = response
        .header("Retry-After")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert_eq!(body["error"]["details"]["retry_after_seconds"], retry_after);
    retry_after
}

fn assert_signed_in(response: &TestResponse) {
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(session_cookie(response).is_some());
}

fn sessions(server: &TestServer) -> i64 {
    count(server, "SELECT count(*) FROM sessions")
}

#[test]
fn a_strangers_failures_from_one_address_never_stop_the_owner_from_another() {
    let server = behind_a_proxy();
    setup(&server);
    let stranger = "203.0.113.7";
    for _ in 0..3 {
        login_from(&server, stranger, OWNER_EMAIL, WRONG).assert_error(401, "invalid_credentials");
    }
    // Ten more guesses, each as soon as it is allowed: the stranger is slowed down...
    for _ in 0..10 {
        let wait = refused(&login_from(&server, stranger, OWNER_EMAIL, WRONG));
        server.clock.advance(Duration::seconds(wait));
        login_from(&server, stranger, OWNER_EMAIL, WRONG).assert_error(401, "invalid_credentials");
    }
    // ... and even the right password from the stranger's address waits, unchecked.
    refused(&login_from(&server, stranger, OWNER_EMAIL, PASSWORD));
    assert_eq!(sessions(&server), 1);

    // The owner, from their own address, is let in at once.
    assert_signed_in(&login_from(&server, "198.51.100.20", OWNER_EMAIL, PASSWORD));
    // So is anyone else on another account from the stranger's address.
    login_from(&server, stranger, "colleague@example.com", WRONG)
        .assert_error(401, "invalid_credentials");
    assert_eq!(sessions(&server), 2);
}

#[test]
fn an_account_from_one_address_waits_a_growing_delay_and_a_success_starts_it_over() {
    let server = behind_a_proxy();
    setup(&server);
    let ip = "203.0.113.8";
    for attempt in 1..=3 {
        let response = login_from(&server, ip, OWNER_EMAIL, WRONG);
        assert_eq!(response.status, 401, "free attempt {attempt}");
    }
    for expected in [1, 2, 4, 8, 16] {
        assert_eq!(
            refused(&login_from(&server, ip, OWNER_EMAIL, WRONG)),
            expected
        );
        server.clock.advance(Duration::seconds(expected - 1));
        assert_eq!(
            refused(&login_from(&server, ip, OWNER_EMAIL, WRONG)),
            1,
            "not yet"
        );
        server.clock.advance(Duration::seconds(1));
        login_from(&server, ip, OWNER_EMAIL, WRONG).assert_error(401, "invalid_credentials");
    }
    // The right password is refused unchecked while the pair waits, then accepted.
    assert_eq!(refused(&login_from(&server, ip, OWNER_EMAIL, PASSWORD)), 32);
    server.clock.advance(Duration::seconds(32));
    assert_signed_in(&login_from(&server, ip, OWNER_EMAIL, PASSWORD));
    assert_eq!(
        count(
            &server,
            "SELECT count(*) FROM login_failures WHERE kind = 'account'"
        ),
        0,
        "the success cleared the pair"
    );

    // Three free failures again, then the first delay.
    for _ in 0..3 {
        login_from(&server, ip, OWNER_EMAIL, WRONG).assert_error(401, "invalid_credentials");
    }
    assert_eq!(refused(&login_from(&server, ip, OWNER_EMAIL, PASSWORD)), 1);
}

#[test]
fn fifty_failures_from_one_address_across_accounts_make_it_wait_for_the_window() {
    let server = behind_a_proxy();
    setup(&server);
    let sprayer = "203.0.113.9";
    for n in 0..50 {
        // One guess per account: no (account, IP) pair ever leaves its free failures.
        let email = format!("user{n}@example.com");
        let response = login_from(&server, sprayer, &email, WRONG);
        assert_eq!(response.status, 401, "attempt {n}: {}", response.text());
        server.clock.advance(Duration::seconds(6));
    }
    // 300 s into the window that began with the first failure: 600 s are left.
    assert_eq!(
        refused(&login_from(&server, sprayer, "user99@example.com", WRONG)),
        600
    );
    assert_eq!(
        refused(&login_from(&server, sprayer, OWNER_EMAIL, PASSWORD)),
        600
    );
    assert_eq!(sessions(&server), 1);
    assert_eq!(
        count(
            &server,
            "SELECT failures FROM login_failures WHERE kind = 'ip' AND ip_block = '203.0.113.9'"
        ),
        50,
        "refused attempts are not failures"
    );

    // Another address (another client behind the same proxy) is not affected.
    assert_signed_in(&login_from(&server, "203.0.113.10", OWNER_EMAIL, PASSWORD));
    // The window ends 15 minutes after its first failure.
    server.clock.advance(Duration::seconds(599));
    refused(&login_from(&server, sprayer, OWNER_EMAIL, PASSWORD));
    server.clock.advance(Duration::seconds(1));
    assert_signed_in(&login_from(&server, sprayer, OWNER_EMAIL, PASSWORD));
}

#[test]
fn an_office_behind_one_address_with_a_few_typos_each_is_never_refused() {
    let server = behind_a_proxy();
    setup(&server);
    let office = "192.0.2.1";
    // Sixteen people with two typos each (32 failures) in one window, all of them let in.
    for n in 0..16 {
        let email = format!("person{n}@example.com");
        for _ in 0..2 {
            login_from(&server, office, &email, WRONG).assert_error(401, "invalid_credentials");
        }
    }
    assert_signed_in(&login_from(&server, office, OWNER_EMAIL, PASSWORD));
}

#[test]
fn the_right_password_from_a_clean_address_is_accepted_while_the_account_is_under_attack() {
    let server = behind_a_proxy();
    setup(&server);
    let attackers: Vec<String> = (1..=8).map(|n| format!("203.0.113.{n}")).collect();
    for round in 0..5 {
        for attacker in &attackers {
            let response = login_from(&server, attacker, OWNER_EMAIL, WRONG);
            if round < 3 {
                response.assert_error(401, "invalid_credentials");
            } else {
                refused(&response);
            }
        }
        // The owner logs in from a clean address between every round of the attack.
        assert_signed_in(&login_from(&server, "198.51.100.30", OWNER_EMAIL, PASSWORD));
        assert_signed_in(&login_from(
            &server,
            "2001:db8:0:2::5",
            OWNER_EMAIL,
            PASSWORD,
        ));
    }
    assert_eq!(sessions(&server), 1 + 2 * 5);
}

#[test]
fn ipv6_clients_are_counted_per_64() {
    let server = behind_a_proxy();
    setup(&server);
    for host in 1..=3 {
        let ip = format!("2001:db8:7:7::{host}");
        login_from(&server, &ip, OWNER_EMAIL, WRONG).assert_error(401, "invalid_credentials");
    }
    // Another address of the same /64 is the same client; another /64 is not.
    refused(&login_from(
        &server,
        "2001:db8:7:7:ffff::1",
        OWNER_EMAIL,
        PASSWORD,
    ));
    assert_signed_in(&login_from(
        &server,
        "2001:db8:7:8::1",
        OWNER_EMAIL,
        PASSWORD,
    ));
}

#[test]
fn counters_survive_a_restart_and_the_janitor_forgets_them_once_expired() {
    let server = behind_a_proxy();
    setup(&server);
    let ip = "203.0.113.11";
    for _ in 0..3 {
        login_from(&server, ip, OWNER_EMAIL, WRONG).assert_error(401, "invalid_credentials");
    }
    for n in 0..49 {
        login_from(&server, "203.0.113.12", &format!("u{n}@example.com"), WRONG)
            .assert_error(401, "invalid_credentials");
    }
    assert_eq!(refused(&login_from(&server, ip, OWNER_EMAIL, PASSWORD)), 1);
    assert_eq!(
        count(&server, "SELECT count(*) FROM login_failures"),
        2 + 49 + 1
    );

    let server = TestServer::start_on(server.stop_keeping_data(), Router::standard());
    // The restarted clock is where the failures happened: the pair still waits...
    assert_eq!(refused(&login_from(&server, ip, OWNER_EMAIL, PASSWORD)), 1);
    // ... and the sprayer has one failure left before its window is used up.
    login_from(&server, "203.0.113.12", "u49@example.com", WRONG)
        .assert_error(401, "invalid_credentials");
    assert_eq!(
        refused(&login_from(
            &server,
            "203.0.113.12",
            "u50@example.com",
            WRONG
        )),
        15 * 60
    );
    // Another address is let in at once.
    assert_signed_in(&login_from(&server, "198.51.100.40", OWNER_EMAIL, PASSWORD));

    // The IP windows expire after 15 minutes, the pair a day after its last failure.
    server.clock.advance(Duration::minutes(15));
    crier::janitor::sweep(server.app()).unwrap();
    assert_eq!(
        count(
            &server,
            "SELECT count(*) FROM login_failures WHERE kind = 'ip'"
        ),
        0
    );
    assert_eq!(
        count(&server, "SELECT count(*) FROM login_failures"),
        1 + 50
    );
    server.clock.advance(Duration::hours(24));
    crier::janitor::sweep(server.app()).unwrap();
    assert_eq!(count(&server, "SELECT count(*) FROM login_failures"), 0);
    assert_signed_in(&login_from(&server, ip, OWNER_EMAIL, PASSWORD));
}
