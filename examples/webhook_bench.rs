//! Webhook delivery benchmark: events delivered per second to a local receiver.
//!
//! `cargo run --release --example webhook_bench [-- --events 5000]`
//!
//! Starts crier in-process (a fresh database in a temporary directory, the system clock) with
//! webhooks allowed to reach loopback over http, and a minimal keep-alive HTTP receiver on
//! 127.0.0.1 that answers 200 at once. It registers one endpoint (first-run setup, then the
//! domain call), records N `message.sent` events in one transaction (as the triggers do), and
//! times from that commit until every delivery is `succeeded`: preparation (id, body, fan-out),
//! signing, sending (8 at a time) and recording the outcomes. Prints one line.

// A benchmark that cannot set itself up has nothing to measure: it stops with the reason.
#![allow(clippy::expect_used, clippy::unwrap_used)]

#[path = "support/http_receiver.rs"]
mod http_receiver;

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crier::clock::{Clock, SystemClock, format_timestamp};
use crier::config::Config;
use crier::events::{EventType, NewEvent};
use crier::ids::{SystemRandomSource, WorkspaceId};
use crier::scope::WorkspaceScope;
use crier::server::{self, Runtime};
use crier::vocabulary::Mode;
use crier::web::router::Router;
use crier::webhooks::{self, NewEndpoint, WebhookSettings};

fn events_wanted() -> usize {
    let mut args = std::env::args().skip(1);
    let mut events = 5_000;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--events" => events = args.next().expect("--events N").parse().expect("a number"),
            other => panic!("unknown argument {other}"),
        }
    }
    events
}

fn main() {
    let events = events_wanted();
    let received = Arc::new(AtomicUsize::new(0));
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
    let receiver = listener.local_addr().unwrap();
    {
        let received = Arc::clone(&received);
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let received = Arc::clone(&received);
                std::thread::spawn(move || http_receiver::serve_connection(stream, &received));
            }
        });
    }

    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut config = Config::for_tests(dir.path());
    config.webhooks = WebhookSettings {
        allow_private: true,
        http_hosts: vec!["127.0.0.1".to_owned()],
        timeout: Duration::from_secs(10),
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let running = server::start(
        config.clone(),
        Runtime {
            clock: Arc::clone(&clock),
            random: Arc::new(SystemRandomSource::new()),
            router: Router::standard(),
        },
    )
    .expect("start crier");
    let base = format!("http://{}", running.addr());
    let mut answer = ureq::post(format!("{base}/v1/setup"))
        .header("Content-Type", "application/json")
        .send(
            r#"{"email":"bench@example.com","password":"a long enough password","name":"Bench","workspace_name":"Bench"}"#,
        )
        .expect("first-run setup");
    let setup: serde_json::Value =
        serde_json::from_str(&answer.body_mut().read_to_string().unwrap()).unwrap();
    let workspace = WorkspaceId::parse(setup["workspace"]["id"].as_str().expect("a workspace"))
        .expect("a workspace id");

    let app = &running.app;
    let scope = WorkspaceScope::trusted(&workspace);
    app.db
        .write(|conn| {
            webhooks::create_endpoint(
                conn,
                &app.ids,
                (&scope, Mode::Live),
                NewEndpoint {
                    url: format!("http://{receiver}/hooks"),
                    events: vec!["*".to_owned()],
                    description: None,
                    enabled: None,
                },
                &config.webhooks,
                clock.now(),
            )
        })
        .expect("the endpoint");

    let now = format_timestamp(clock.now());
    let started = Instant::now();
    app.db
        .write(|conn| {
            for n in 0..events {
                let object_id = format!("msg_bench{n}");
                crier::events::record(
                    conn,
                    &NewEvent {
                        workspace_id: &workspace,
                        mode: Mode::Live,
                        event_type: EventType::MessageSent,
                        object_id: &object_id,
                        created_at: &now,
                    },
                )?;
            }
            Ok(())
        })
        .expect("record the events");
    loop {
        let settled: i64 = app
            .db
            .read(|conn| {
                Ok(conn.query_row(
                    "SELECT count(*) FROM webhook_deliveries WHERE status = 'succeeded'",
                    [],
                    |row| row.get(0),
                )?)
            })
            .expect("count");
        if usize::try_from(settled).unwrap_or(0) >= events {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "not delivered after 10 minutes: {settled} of {events}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = started.elapsed();
    println!(
        "{events} events delivered in {:.2} s: {:.0} events/s ({} requests received)",
        elapsed.as_secs_f64(),
        events as f64 / elapsed.as_secs_f64(),
        received.load(Ordering::Relaxed)
    );
    running.shutdown();
}
