//! `FakeHttp`: a stand-in for an HTTP provider on a free loopback port. It records every request
//! (method, path with query, headers, body) before answering from a script, and stops on drop.
//!
//! ```ignore
//! let fake = FakeHttp::start(|req| Reply::json(200, json!({"sid": "SM1"})));
//! // or a queue: FakeHttp::scripted([Reply::empty(503), Reply::json(200, …)])
//! provider_settings.base_url = fake.url();
//! … send …
//! let sent = fake.requests();             // or fake.wait_for_requests(2, timeout)
//! assert_eq!(sent[0].path(), "/v1/sms");
//! ```
//!
//! Each request is answered on its own thread, so a slow reply (`Reply::…(…).after(delay)`) never
//! holds up the next request; a pending delay is cut short when the fake is dropped.

#![allow(dead_code)] // A shared fixture: not every test binary module uses every helper.

use std::collections::VecDeque;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One request as the fake received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Path and query, as on the request line (`/v1/sms?api_key=k`).
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    /// The path without the query.
    pub fn path(&self) -> &str {
        self.url.split_once('?').map_or(&self.url, |(path, _)| path)
    }

    /// The decoded query parameters.
    pub fn query(&self) -> Vec<(String, String)> {
        self.url
            .split_once('?')
            .map(|(_, query)| decode_form(query))
            .unwrap_or_default()
    }

    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// The body decoded as `application/x-www-form-urlencoded`, in order.
    pub fn form(&self) -> Vec<(String, String)> {
        decode_form(&self.text())
    }

    /// One form field of the body.
    pub fn form_field(&self, name: &str) -> Option<String> {
        self.form()
            .into_iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value)
    }
}

/// A canned answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// How long to wait before answering.
    pub delay: Duration,
}

impl Reply {
    pub fn json(status: u16, body: serde_json::Value) -> Reply {
        Reply::text(status, &body.to_string()).with_header("Content-Type", "application/json")
    }

    pub fn text(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
            delay: Duration::ZERO,
        }
    }

    pub fn empty(status: u16) -> Reply {
        Reply::text(status, "")
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The same answer, sent only after `delay` (a slow provider).
    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

type Handler = dyn Fn(&Recorded) -> Reply + Send + Sync;

struct Shared {
    requests: Mutex<Vec<Recorded>>,
    arrived: Condvar,
    stopping: Mutex<bool>,
    stop: Condvar,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

/// The fake server; stops (and waits for its threads) on drop.
pub struct FakeHttp {
    addr: SocketAddr,
    server: Arc<tiny_http::Server>,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl FakeHttp {
    /// Answers every request with `handler(request)`.
    pub fn start(handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> FakeHttp {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let addr = server.server_addr().to_ip().unwrap();
        let shared = Arc::new(Shared {
            requests: Mutex::new(Vec::new()),
            arrived: Condvar::new(),
            stopping: Mutex::new(false),
            stop: Condvar::new(),
            workers: Mutex::new(Vec::new()),
        });
        let handler: Arc<Handler> = Arc::new(handler);
        let acceptor = {
            let server = Arc::clone(&server);
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || {
                // `recv` fails once `unblock` is called on drop.
                while let Ok(request) = server.recv() {
                    let shared_for_worker = Arc::clone(&shared);
                    let handler = Arc::clone(&handler);
                    let worker = std::thread::spawn(move || {
                        serve(request, &shared_for_worker, &*handler);
                    });
                    shared.workers.lock().unwrap().push(worker);
                }
            })
        };
        FakeHttp {
            addr,
            server,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// Answers the requests in order with `replies`; once they run out, with a 500 saying so.
    pub fn scripted(replies: impl IntoIterator<Item = Reply>) -> FakeHttp {
        let queue = Mutex::new(replies.into_iter().collect::<VecDeque<_>>());
        FakeHttp::start(move |_| {
            queue
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or_else(|| Reply::text(500, "fake: script exhausted"))
        })
    }

    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Waits until at least `count` requests have arrived (panics after `timeout`), then returns
    /// them all: for tests where something else (a dispatcher thread) makes the calls.
    pub fn wait_for_requests(&self, count: usize, timeout: Duration) -> Vec<Recorded> {
        let deadline = Instant::now() + timeout;
        let mut requests = self.shared.requests.lock().unwrap();
        while requests.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "fake http: {} of {count} requests after {timeout:?}",
                requests.len()
            );
            requests = self.shared.arrived.wait_timeout(requests, left).unwrap().0;
        }
        requests.clone()
    }
}

fn serve(mut request: tiny_http::Request, shared: &Shared, handler: &Handler) {
    let mut body = Vec::new();
    if request.as_reader().read_to_end(&mut body).is_err() {
        return;
    }
    let recorded = Recorded {
        method: request.method().as_str().to_owned(),
        url: request.url().to_owned(),
        headers: request
            .headers()
            .iter()
            .map(|header| {
                (
                    header.field.as_str().as_str().to_owned(),
                    header.value.as_str().to_owned(),
                )
            })
            .collect(),
        body,
    };
    // Recorded before answering: once a client has its answer, the request is visible.
    shared.requests.lock().unwrap().push(recorded.clone());
    shared.arrived.notify_all();
    let reply = handler(&recorded);
    if !reply.delay.is_zero() {
        let stopping = shared.stopping.lock().unwrap();
        let (stopping, _) = shared
            .stop
            .wait_timeout_while(stopping, reply.delay, |stopping| !*stopping)
            .unwrap();
        if *stopping {
            return;
        }
    }
    let mut response = tiny_http::Response::from_data(reply.body).with_status_code(reply.status);
    for (name, value) in &reply.headers {
        response
            .add_header(tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).unwrap());
    }
    // The client may have given up (a timeout test); that is its business.
    let _ = request.respond(response);
}

impl Drop for FakeHttp {
    fn drop(&mut self) {
        *self.shared.stopping.lock().unwrap() = true;
        self.shared.stop.notify_all();
        self.server.unblock();
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        let workers = std::mem::take(&mut *self.shared.workers.lock().unwrap());
        for worker in workers {
            let _ = worker.join();
        }
    }
}

/// A loopback address nothing listens on (bound, then released), for "connection refused".
pub fn closed_port_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

fn decode_form(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name), percent_decode(value))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 2;
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}
