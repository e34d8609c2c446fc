//! SMS routing against fake providers: the README's Cameroon routes (read from the README) send MTN and Orange mobiles
//! to the local aggregators (AvlyText, then MboaSMS) and everything else to the default chain;
//! the message and the estimate show the route chosen; test mode and email have their own.

use serde_json::{Value, json};

use crate::auth_fixtures::send;
use crate::fake_http::{FakeHttp, Reply};
use crate::harness::TestServer;
use crate::sending::{Sender, sms};
use crier::config::{Config, Secret};
use crier::delivery::routes::parse_routes;
use crier::delivery::settings::{
    AvlyTextSettings, MboaSmsSettings, SmsProviderName, TwilioSettings,
};
use crier::web::router::Router;

/// The example of README's "SMS routing", as written there.
fn readme_routes() -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    readme
        .lines()
        .find_map(|line| line.strip_prefix("CRIER_SMS_ROUTES="))
        .expect("README shows CRIER_SMS_ROUTES=")
        .to_owned()
}

struct Fakes {
    avlytext: FakeHttp,
    mboasms: FakeHttp,
    twilio: FakeHttp,
}

impl Fakes {
    /// AvlyText refuses Orange's 69x numbers (503), so they fall back to MboaSMS.
    fn start() -> Fakes {
        Fakes {
            avlytext: FakeHttp::start(|request| {
                if request.json()["recipient"]
                    .as_str()
                    .is_some_and(|to| to.starts_with("+23769"))
                {
                    Reply::text(503, "busy")
                } else {
                    Reply::json(200, json!({"id": "avly-1"}))
                }
            }),
            mboasms: FakeHttp::start(|_| Reply::json(200, json!({"success": true, "id": 7}))),
            twilio: FakeHttp::start(|_| Reply::json(201, json!({"sid": "SM1"}))),
        }
    }

    fn configure(&self) -> impl FnOnce(&mut Config) {
        let (avlytext, mboasms, twilio) =
            (self.avlytext.url(), self.mboasms.url(), self.twilio.url());
        let routes = parse_routes(&readme_routes()).unwrap();
        move |config: &mut Config| {
            let delivery = &mut config.delivery;
            delivery.sms_providers = vec![SmsProviderName::Twilio];
            delivery.sms_routes = routes;
            delivery.twilio = Some(TwilioSettings {
                base_url: twilio,
                account_sid: "AC1".to_owned(),
                auth_token: Secret::new("twilio-token"),
            });
            delivery.avlytext = Some(AvlyTextSettings {
                base_url: avlytext,
                api_key: Secret::new("avly-key"),
            });
            delivery.mboasms = Some(MboaSmsSettings {
                base_url: mboasms,
                user_id: "u".to_owned(),
                password: Secret::new("mboa-pw"),
            });
        }
    }
}

fn estimate(sender: &Sender<'_>, body: &Value) -> Value {
    let authorization = format!("Bearer {}", sender.key);
    let response = send(
        sender.server,
        "POST",
        "/v1/messages/estimate",
        vec![("Authorization", authorization.as_str())],
        Some(body),
    );
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()
}

fn providers_called(message: &Value) -> Vec<String> {
    message["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|attempt| attempt["provider"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn mtn_and_orange_numbers_go_to_the_local_aggregators_and_the_rest_to_the_default_chain() {
    let fakes = Fakes::start();
    let server = TestServer::start_with(fakes.configure(), Router::standard());
    let sender = Sender::new(&server, "live");
    sender.credit(1000);
    let local = json!({"matched": "+23767", "providers": ["avlytext", "mboasms"]});

    // MTN 67x: the estimate and the message name the route; AvlyText takes it.
    let mtn = sms("+237677123456", "mtn");
    assert_eq!(estimate(&sender, &mtn)["route"], local);
    let created = sender.sent(&mtn, "mtn");
    assert_eq!(created["route"], local);
    let sent = sender.wait_for(created["id"].as_str().unwrap(), "sent");
    assert_eq!(sent["route"], local);
    assert_eq!(providers_called(&sent), ["avlytext"]);

    // Orange 69x: AvlyText is busy, so the route's next provider, MboaSMS; never Twilio.
    let orange = sender.sent(&sms("+237699000001", "orange"), "orange");
    assert_eq!(orange["route"]["matched"], "+23769");
    let sent = sender.wait_for(orange["id"].as_str().unwrap(), "sent");
    assert_eq!(providers_called(&sent), ["avlytext", "mboasms"]);
    assert_eq!(sent["provider"], "mboasms");

    // Orange 686 by its three-digit prefix.
    let orange_686 = sender.sent(&sms("+237686000001", "orange 686"), "orange-686");
    assert_eq!(
        orange_686["route"],
        json!({"matched": "+237686", "providers": ["avlytext", "mboasms"]})
    );
    sender.wait_for(orange_686["id"].as_str().unwrap(), "sent");

    // 684 is neither MTN's nor Orange's, and France is elsewhere: the default chain.
    let default = json!({"matched": "default", "providers": ["twilio"]});
    for (to, key) in [("+237684000001", "other"), ("+33612345678", "france")] {
        assert_eq!(estimate(&sender, &sms(to, key))["route"], default, "{to}");
        let created = sender.sent(&sms(to, key), key);
        assert_eq!(created["route"], default, "{to}");
        let sent = sender.wait_for(created["id"].as_str().unwrap(), "sent");
        assert_eq!(providers_called(&sent), ["twilio"], "{to}");
    }

    // Each fake saw exactly the numbers its routes gave it.
    let recipients = |fake: &FakeHttp, field: &str| -> Vec<String> {
        fake.requests()
            .iter()
            .map(|request| match field {
                "To" => request.form_field("To").unwrap(),
                _ => request.json()[field].as_str().unwrap().to_owned(),
            })
            .collect()
    };
    let mut to_avlytext = recipients(&fakes.avlytext, "recipient");
    to_avlytext.sort();
    assert_eq!(
        to_avlytext,
        ["+237677123456", "+237686000001", "+237699000001"]
    );
    assert_eq!(recipients(&fakes.mboasms, "phone_str"), ["237699000001"]);
    let mut to_twilio = recipients(&fakes.twilio, "To");
    to_twilio.sort();
    assert_eq!(to_twilio, ["+237684000001", "+33612345678"]);
}

#[test]
fn test_mode_sms_show_the_log_route_and_email_shows_none() {
    let fakes = Fakes::start();
    let server = TestServer::start_with(fakes.configure(), Router::standard());
    let sender = Sender::new(&server, "test");
    let test_route = json!({"matched": "test", "providers": ["log"]});
    let mtn = sms("+237677123456", "test mode");
    assert_eq!(estimate(&sender, &mtn)["route"], test_route);
    let created = sender.sent(&mtn, "t1");
    assert_eq!(created["route"], test_route);
    let sent = sender.wait_for(created["id"].as_str().unwrap(), "sent");
    assert_eq!(providers_called(&sent), ["log"]);
    assert!(fakes.avlytext.requests().is_empty());

    let email = json!({"channel": "email", "to": "a@example.com", "subject": "s", "text": "t"});
    assert_eq!(estimate(&sender, &email)["route"], Value::Null);
    let created = sender.sent(&email, "e1");
    assert_eq!(created["route"], Value::Null);
    assert_eq!(
        server
            .db()
            .query_row(
                "SELECT count(*) FROM messages WHERE route IS NULL",
                [],
                |row| row.get::<_, i64>(0)
            )
            .unwrap(),
        1
    );
}

#[test]
fn bad_routes_stop_the_server_from_starting_with_one_clear_problem_each() {
    let dir = tempfile::tempdir().unwrap();
    for (routes, problem) in [
        (
            "+23767=avlytext;+23767=mboasms",
            "--sms-routes / CRIER_SMS_ROUTES: +23767 is routed twice",
        ),
        (
            "+23767=avlytxt",
            "--sms-routes / CRIER_SMS_ROUTES: route \"+23767=avlytxt\": \"avlytxt\" is not a \
             provider name",
        ),
        (
            "CM=lmt",
            "the lmt provider is listed but not configured: set CRIER_LMT_API_KEY and \
             CRIER_LMT_SECRET",
        ),
    ] {
        let output = crate::process::crier()
            .args(["--sms-routes", routes, "--data-dir"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{routes}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(problem), "{routes}: {stderr}");
        assert!(!dir.path().join("crier.db").exists(), "{routes}");
    }
}
