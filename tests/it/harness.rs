//! The test harness: `TestServer` (a real crier on a free loopback port, stopped on drop) and a
//! small HTTP/1.1 client that sends exactly the bytes a test asks for.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::TimeZone;
use crier::clock::ManualClock;
use crier::config::Config;
use crier::ids::SeededRandom;
use crier::server::{self, RunningServer, Runtime};
use crier::web::router::Router;

static NEXT_SEED: AtomicU64 = AtomicU64::new(1);

/// The fixed instant every test server starts at.
pub fn test_epoch() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc
        .with_ymd_and_hms(2026, 11, 25, 9, 30, 0)
        .single()
        .unwrap()
}

pub struct TestServer {
    running: Option<RunningServer>,
    pub addr: SocketAddr,
    pub clock: Arc<ManualClock>,
    pub config: Config,
    /// Taken by `stop_keeping_data`; removed with the server otherwise.
    dir: Option<tempfile::TempDir>,
}

/// A stopped server's data directory and configuration, to start another server on (a restart).
pub struct DataDir {
    dir: tempfile::TempDir,
    pub config: Config,
}

impl TestServer {
    pub fn start() -> TestServer {
        TestServer::start_with(|_| {}, Router::standard())
    }

    /// Starts a server whose configuration `configure` may adjust, serving `router`.
    pub fn start_with(configure: impl FnOnce(&mut Config), router: Router) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::for_tests(dir.path());
        configure(&mut config);
        TestServer::start_on(DataDir { dir, config }, router)
    }

    /// Starts a server on the database another one left (`stop_keeping_data`), as after a
    /// restart; its clock starts at `test_epoch` again.
    pub fn start_on(data: DataDir, router: Router) -> TestServer {
        logs::install();
        let DataDir { dir, config } = data;
        let clock = Arc::new(ManualClock::new(test_epoch()));
        let runtime = Runtime {
            clock: clock.clone(),
            // Reproducible per server, distinct across the servers of this test binary, so ids
            // (and request ids in the captured logs) never collide between tests.
            random: Arc::new(SeededRandom::new(NEXT_SEED.fetch_add(1, Ordering::Relaxed))),
            router,
        };
        let running = server::start(config.clone(), runtime).unwrap();
        TestServer {
            addr: running.addr(),
            running: Some(running),
            clock,
            config,
            dir: Some(dir),
        }
    }

    /// Stops the server gracefully and keeps its database for `start_on`.
    pub fn stop_keeping_data(mut self) -> DataDir {
        self.running.take().unwrap().shutdown();
        DataDir {
            dir: self.dir.take().unwrap(),
            config: self.config.clone(),
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.config.db_path.clone()
    }

    /// A direct connection to the server's database, for asserting on what a request changed.
    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.db_path()).unwrap()
    }

    pub fn get(&self, path: &str) -> TestResponse {
        self.request("GET", path, &[], b"")
    }

    pub fn post_json(&self, path: &str, body: &str) -> TestResponse {
        self.request(
            "POST",
            path,
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
    }

    /// Sends one request with a correct Content-Length for `body`.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> TestResponse {
        let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
        for (name, value) in headers {
            raw.push_str(&format!("{name}: {value}\r\n"));
        }
        raw.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut bytes = raw.into_bytes();
        bytes.extend_from_slice(body);
        send_raw(self.addr, &bytes)
    }

    /// The running server's shared state, for calling into it directly (a janitor round).
    pub fn app(&self) -> &crier::app::App {
        &self.running.as_ref().unwrap().app
    }

    /// Stops the server gracefully and reports how it went.
    pub fn shutdown(mut self) -> crier::web::ShutdownOutcome {
        self.running.take().unwrap().shutdown()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown();
        }
    }
}

/// How long `eventually` waits for a background thread before failing the test.
pub const EVENTUALLY_LIMIT: Duration = Duration::from_secs(20);

/// Polls `probe` until it returns `Some`, and returns that: for outcomes a background thread
/// (the payments worker, a dispatcher) brings about. Fails the test, naming `what`, when
/// `EVENTUALLY_LIMIT` passes first.
pub fn eventually<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + EVENTUALLY_LIMIT;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still waiting after {EVENTUALLY_LIMIT:?} for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[derive(Debug)]
pub struct TestResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl TestResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|err| panic!("body is not JSON ({err}): {}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts the response is an error envelope with `status` and `code`, carrying the same
    /// request id as the header; returns the envelope.
    pub fn assert_error(&self, status: u16, code: &str) -> serde_json::Value {
        assert_eq!(self.status, status, "body: {}", self.text());
        assert_eq!(self.header("Content-Type"), Some("application/json"));
        let body = self.json();
        assert_eq!(body["error"]["code"], code, "body: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
        let request_id = self.header("X-Request-Id").expect("X-Request-Id header");
        assert_eq!(body["request_id"], request_id);
        body
    }
}

/// Polls `condition` every 10 ms until it holds; panics naming `what` once `timeout` has passed
/// without it. For waiting on the server's background threads or another process: a test waits
/// for the event it needs, never for a fixed time.
pub fn wait_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Polls `observe` every 10 ms until `done` accepts what it returned, and returns that; panics
/// naming `what`, with the last value seen, once `timeout` has passed without it.
pub fn wait_for_value<T: std::fmt::Display>(
    what: &str,
    timeout: Duration,
    mut observe: impl FnMut() -> T,
    done: impl Fn(&T) -> bool,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        let value = observe();
        if done(&value) {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting until {what}; last seen: {value}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Writes `bytes` to a fresh connection and reads one response. The body is read by its
/// Content-Length (or chunks), not to end of stream, so a server that keeps the connection open
/// does not hang the test.
pub fn send_raw(addr: SocketAddr, bytes: &[u8]) -> TestResponse {
    read_response(&mut open_connection(addr, bytes))
}

/// Connects, writes `bytes`, and hands back the reading side. Reads time out after 20 s, so a
/// server that never answers fails the test instead of hanging it.
pub fn open_connection(addr: SocketAddr, bytes: &[u8]) -> BufReader<TcpStream> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    // The server may answer (and stop reading) before it has all of our bytes; that is fine.
    let _ = stream.write_all(bytes);
    BufReader::new(stream)
}

/// Reads a status line and headers: (status, headers).
pub fn read_head(reader: &mut impl BufRead) -> (u16, Vec<(String, String)>) {
    let mut status_line = String::new();
    reader.read_line(&mut status_line).unwrap();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').unwrap();
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    (status, headers)
}

pub fn read_response(reader: &mut impl BufRead) -> TestResponse {
    let (status, headers) = read_head(reader);
    let find = |name: &str| {
        headers
            .iter()
            .find(|(key, _): &&(String, String)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.clone())
    };
    let mut body = Vec::new();
    if let Some(length) = find("Content-Length") {
        body.resize(length.parse().unwrap(), 0);
        reader.read_exact(&mut body).unwrap();
    } else if find("Transfer-Encoding").is_some_and(|te| te.contains("chunked")) {
        loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line).unwrap();
            let size = usize::from_str_radix(size_line.trim(), 16).unwrap();
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).unwrap();
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        reader.read_to_end(&mut body).unwrap();
    }
    TestResponse {
        status,
        headers,
        body,
    }
}

/// Log records the in-process servers emitted, captured so tests can assert on what an operator
/// would read. Installed once for the whole test binary; tests find their lines by request id.
pub mod logs {
    use std::collections::BTreeMap;
    use std::sync::{Mutex, OnceLock};

    use log::kv::{Key, Value, VisitSource};

    /// One record: level, message, and its key-values as text.
    #[derive(Debug, Clone)]
    pub struct Line {
        pub level: log::Level,
        pub message: String,
        pub fields: BTreeMap<String, String>,
    }

    struct Capture(Mutex<Vec<Line>>);

    static CAPTURE: OnceLock<&'static Capture> = OnceLock::new();

    impl log::Log for Capture {
        fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
            metadata.target().starts_with("crier")
        }

        fn log(&self, record: &log::Record<'_>) {
            if !self.enabled(record.metadata()) {
                return;
            }
            struct Collect(BTreeMap<String, String>);
            impl<'kvs> VisitSource<'kvs> for Collect {
                fn visit_pair(
                    &mut self,
                    key: Key<'kvs>,
                    value: Value<'kvs>,
                ) -> Result<(), log::kv::Error> {
                    self.0.insert(key.to_string(), value.to_string());
                    Ok(())
                }
            }
            let mut fields = Collect(BTreeMap::new());
            let _ = record.key_values().visit(&mut fields);
            let line = Line {
                level: record.level(),
                message: record.args().to_string(),
                fields: fields.0,
            };
            self.0.lock().unwrap().push(line);
        }

        fn flush(&self) {}
    }

    pub fn install() {
        CAPTURE.get_or_init(|| {
            let capture: &'static Capture = Box::leak(Box::new(Capture(Mutex::new(Vec::new()))));
            log::set_logger(capture).unwrap();
            log::set_max_level(log::LevelFilter::Info);
            capture
        });
    }

    /// Every captured line with `message`, whose field `name` is `value` (for lines no request
    /// made, such as a background runner's).
    pub fn with_field(message: &str, name: &str, value: &str) -> Vec<Line> {
        let capture = CAPTURE.get().expect("logs::install was not called");
        capture
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|line| {
                line.message == message && line.fields.get(name).map(String::as_str) == Some(value)
            })
            .cloned()
            .collect()
    }

    /// Every captured line whose `request_id` field is `request_id`.
    pub fn for_request(request_id: &str) -> Vec<Line> {
        let capture = CAPTURE.get().expect("logs::install was not called");
        capture
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|line| line.fields.get("request_id").map(String::as_str) == Some(request_id))
            .cloned()
            .collect()
    }
}
