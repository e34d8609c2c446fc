//! The network side of the edge: one tokio current-thread runtime on the `http-io` thread runs
//! the accept loop and one task per connection, each speaking HTTP/1.1 through hyper.
//!
//! What this side guarantees, whatever the clients do:
//! - **The accept loop never ends on an error.** A client that resets before `accept` returns
//!   (`ECONNABORTED`) is skipped; running out of descriptors or memory pauses accepting briefly.
//!   Only shutdown ends the loop.
//! - **Per-connection timeouts, none on the listener.** The request head must arrive within the
//!   HTTP timeout (hyper's header timeout), the body within the same time from its first byte
//!   (else 408 and close), and an idle keep-alive connection is closed after the same time without
//!   a byte. A response the client does not read is abandoned after the same time. While a
//!   handler works, the connection has no read deadline.
//! - **`TCP_NODELAY`** on every connection: a response leaves in one segment without waiting for
//!   the client's delayed ACK.
//! - **Framing (RFC 9112 §6).** hyper refuses a `Transfer-Encoding` whose final coding is not
//!   `chunked`, differing `Content-Length`s and malformed lengths (400). On top of that only a
//!   bare `chunked` is accepted (anything else is 400: crier decodes no other coding), and a
//!   `Content-Length` must be plain digits. A request with both headers is framed by
//!   `Transfer-Encoding` alone and its connection closed after the answer, as §6.1 allows; hyper
//!   drops the `Content-Length` before crier could see it, so it cannot be refused with 400.
//! - **Bodies are read here, never sized by the client.** A declared length over the limit is
//!   refused before reading (413, connection closed). A chunked body is collected up to the limit
//!   and, past it, read on and discarded (so the connection stays in step) up to `DRAIN_LIMIT`,
//!   beyond which the connection is closed.
//! - **One route streams its body to disk** (`POST /v1/contacts/imports` with a `text/csv`
//!   body): written to a spool file beside the database as it arrives, up to its own limit
//!   (`--max-import-bytes`, 413 beyond it, the connection closed), each frame due within the HTTP
//!   timeout of the previous one rather than the whole body within it. The file writes run on
//!   tokio's blocking pool, never on this thread. The handler gets the file (`Spooled`), which is
//!   deleted when the request ends unless an import job adopted it.
//! - **ASCII heads only.** Raw bytes outside ASCII in the path or a header value are 400
//!   `bad_request` in the envelope, whether hyper's parser refuses them (its bare 400 is
//!   rewritten on the way out, `HYPERS_BAD_REQUEST`) or lets them through (`check_ascii`).
//! - Header values are built with hyper's `HeaderValue`, which refuses CR and LF, so nothing a
//!   client sends can split a response header.

use std::convert::Infallible;
use std::future::Future;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::{BodyExt, Either, Full};
use hyper::body::{Bytes, Frame};
use hyper::header::{CONTENT_LENGTH, HeaderName, HeaderValue, TRANSFER_ENCODING};
use hyper::server::conn::http1;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;

use crate::app::App;
use crate::config::Config;
use crate::error::AppError;
use crate::web::exchange::{
    self, Answer, Incoming, Job, Outgoing, RequestBody, SpooledBody, Unread,
};
use crate::web::response::Later;
use crate::web::response::{BodyWriter, error_response};

/// The most body crier reads just to throw it away, so that a keep-alive connection stays in
/// step after a chunked body over the limit. Beyond it the connection is closed instead.
const DRAIN_LIMIT_BYTES: u64 = 64 * 1024 * 1024;

/// Bytes read from a socket per call.
const READ_CHUNK: usize = 16 * 1024;

/// The size of the chunks a streamed response body is sent in, and how many may wait for a
/// slow client before the writer thread blocks.
const STREAM_CHUNK: usize = 64 * 1024;
const STREAM_CHUNKS_AHEAD: usize = 4;

/// How long accepting pauses after an error that retrying at once would repeat (no descriptors,
/// no memory).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The edge's settings, copied out of `Config` once.
#[derive(Debug, Clone)]
pub(super) struct EdgeSettings {
    timeout: Duration,
    max_body_bytes: u64,
    shutdown_timeout: Duration,
    max_import_bytes: u64,
    /// Where spooled uploads are written: the imports directory beside the database.
    spool_dir: PathBuf,
}

impl EdgeSettings {
    pub(super) fn from_config(config: &Config) -> EdgeSettings {
        EdgeSettings {
            timeout: config.http_timeout,
            max_body_bytes: config.max_body_bytes,
            shutdown_timeout: config.shutdown_timeout,
            max_import_bytes: config.max_import_bytes,
            spool_dir: crate::contacts::imports::imports_dir(&config.db_path),
        }
    }
}

/// Bytes gathered before one write to a spool file.
const SPOOL_WRITE_BYTES: usize = 1024 * 1024;

/// The runtime for connection I/O only: one thread, no handler ever runs on it.
pub(super) fn runtime() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
}

struct Shared {
    settings: EdgeSettings,
    jobs: mpsc::Sender<Job>,
    app: Arc<App>,
}

/// Accepts until `stop` turns true, then waits (up to the shutdown timeout) for every connection
/// to finish the request it is in. Returns whether they all did.
pub(super) async fn serve(
    listener: TcpListener,
    settings: EdgeSettings,
    jobs: mpsc::Sender<Job>,
    mut stop: watch::Receiver<bool>,
    app: Arc<App>,
) -> bool {
    let shutdown_timeout = settings.shutdown_timeout;
    let shared = Arc::new(Shared {
        settings,
        jobs,
        app,
    });
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            () = stopped(&mut stop) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            (stream, peer) = next_connection(|| listener.accept()) => {
                if let Err(err) = stream.set_nodelay(true) {
                    log::debug!(error:% = err; "cannot set TCP_NODELAY");
                }
                let connection = serve_connection(stream, peer, Arc::clone(&shared), stop.clone());
                connections.spawn(connection);
            }
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(shutdown_timeout, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        log::warn!(open = connections.len(); "shutdown timeout passed with connections still open");
        connections.abort_all();
    }
    drained.is_ok()
}

/// Resolves once shutdown has begun (or the server is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopping| *stopping).await;
}

/// The next accepted connection. An accept error never ends the search (see `on_accept_error`):
/// a listener that fails for a while serves again as soon as it can.
async fn next_connection<T, F, Accepted>(mut accept: F) -> T
where
    F: FnMut() -> Accepted,
    Accepted: std::future::Future<Output = io::Result<T>>,
{
    loop {
        match accept().await {
            Ok(accepted) => return accepted,
            Err(err) => on_accept_error(&err).await,
        }
    }
}

/// Errors that concern one client are skipped; the rest (out of descriptors or memory) pause
/// accepting briefly so the loop does not spin. Either way the loop goes on.
async fn on_accept_error(err: &io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionReset, Interrupted, WouldBlock};
    if matches!(
        err.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock
    ) {
        log::debug!(error:% = err; "a client went away before its connection was accepted");
    } else {
        if let Some(since_last) = ACCEPT_WARNINGS.note() {
            log::warn!(error:% = err, failures = since_last; "cannot accept connections; pausing briefly between tries");
        }
        tokio::time::sleep(ACCEPT_BACKOFF).await;
    }
}

/// How often a lasting accept failure (out of descriptors) is logged: once, then at most once
/// per interval with how many failures it stands for — not twenty lines a second.
const ACCEPT_WARNING_INTERVAL: Duration = Duration::from_secs(10);

static ACCEPT_WARNINGS: AcceptWarnings = AcceptWarnings {
    state: std::sync::Mutex::new((None, 0)),
};

struct AcceptWarnings {
    /// When the last warning was logged, and the failures since.
    state: std::sync::Mutex<(Option<std::time::Instant>, u64)>,
}

impl AcceptWarnings {
    /// Counts a failure; `Some(failures)` (this one included) when it is time to log.
    fn note(&self) -> Option<u64> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.1 += 1;
        let now = std::time::Instant::now();
        match state.0 {
            Some(last) if now.duration_since(last) < ACCEPT_WARNING_INTERVAL => None,
            _ => {
                let failures = state.1;
                *state = (Some(now), 0);
                Some(failures)
            }
        }
    }
}

/// At shutdown, how long a connection part-way through a request head may take to finish it.
const STOP_GRACE: Duration = Duration::from_secs(1);

/// Where a connection stands, kept by its `TimedIo`, its service and the requests it serves:
/// what the idle deadline and shutdown (`STOP_GRACE`) need to know.
#[derive(Default)]
struct Progress {
    /// A request is being served, its streamed answer included (`BusyGuard`): no idle deadline.
    busy: AtomicBool,
    /// Bytes of a request head have come since the last request began.
    head_begun: AtomicBool,
    /// An answer's bytes wait for the client to read them (a write is pending).
    writing: AtomicBool,
}

impl Progress {
    /// The connection holds nothing but the start of a request head: no request is being
    /// served and no answer is on its way.
    fn only_a_head(&self) -> bool {
        self.head_begun.load(Ordering::SeqCst)
            && !self.busy.load(Ordering::SeqCst)
            && !self.writing.load(Ordering::SeqCst)
    }
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let timeout = shared.settings.timeout;
    let progress = Arc::new(Progress::default());
    let io = TimedIo::new(
        stream,
        timeout,
        Arc::clone(&progress),
        Arc::clone(&shared.app),
    );
    let served = Arc::clone(&progress);
    let service = hyper::service::service_fn(move |request| {
        // A request has begun: its head is whole.
        served.head_begun.store(false, Ordering::SeqCst);
        serve_request(Arc::clone(&shared), peer, Arc::clone(&served), request)
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer)
        .header_read_timeout(timeout)
        // A client that shuts its side down once its request is sent (HTTP/1.0 tools, `nc -N`,
        // health checkers) still gets the answer; without this hyper dropped the connection on
        // that end of input, after the handler had run.
        .half_close(true)
        .serve_connection(io, service);
    let mut connection = std::pin::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = stopped(&mut stop) => {
            connection.as_mut().graceful_shutdown();
            // hyper closes an idle connection at once, but waits for one part-way through a
            // request head. Such a client holds no request of ours: it gets `STOP_GRACE` to
            // finish sending (its request is then answered 503, as any after the stop), not the
            // whole shutdown timeout, which one silent client used to stall. A request being
            // served, or an answer waiting for the client to read it, is always waited for.
            let grace = tokio::time::Instant::now() + STOP_GRACE;
            match tokio::time::timeout_at(grace, connection.as_mut()).await {
                Ok(result) => result,
                Err(_) if !progress.only_a_head() => connection.await,
                Err(_) => Ok(()),
            }
        }
    };
    if let Err(err) = result {
        log::debug!(peer:% = peer, error:% = err; "connection ended with an error");
    }
}

/// One request: check its framing, read its body, hand it to a worker, wait for the answer.
async fn serve_request(
    shared: Arc<Shared>,
    peer: SocketAddr,
    progress: Arc<Progress>,
    request: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<ResponseBody>, Infallible> {
    let busy = BusyGuard::enter(progress);
    let (parts, body) = request.into_parts();
    let checked =
        check_ascii(&parts.uri, &parts.headers).and_then(|()| check_framing(&parts.headers));
    let body = match checked {
        Ok(declared) if is_spooled_upload(&parts.method, &parts.uri, &parts.headers) => {
            spool_body(body, declared, &shared.settings, &shared.app).await
        }
        Ok(declared) => read_body(body, declared, &shared.settings).await,
        Err(unread) => RequestBody::Unread(unread),
    };
    let incoming = Incoming {
        method: parts.method,
        uri: parts.uri,
        headers: parts.headers,
        peer,
        body,
    };
    let (reply, answer) = oneshot::channel();
    let answer = match shared.jobs.send(Job { incoming, reply }).await {
        Ok(()) => answer.await.ok(),
        Err(_) => None,
    };
    let outgoing = match answer {
        Some(Answer::Now(outgoing)) => Some(outgoing),
        // The worker has moved on; the writer's job thread brings the outcome once committed.
        Some(Answer::Later(Later(outcome), finish)) => {
            let result = outcome.await.unwrap_or_else(|_| {
                Err(AppError::Unavailable {
                    retry_after_secs: 1,
                    detail: "the writer stopped before answering".to_owned(),
                })
            });
            Some(finish.answer(&shared.app, result))
        }
        None => None,
    };
    // Only a worker that died outside its panic guard, or a queue closed by shutdown, leaves no
    // answer: the client is told to retry.
    let outgoing = outgoing.unwrap_or_else(|| exchange::no_worker(&shared.app));
    Ok(into_hyper(outgoing, busy))
}

/// Raw bytes outside ASCII in the path or in a header value: hyper lets through what its parser
/// tolerates (UTF-8 in the path, RFC 9110's `obs-text` in values), but no route, header or
/// credential crier knows has any, and reading them as text would go wrong quietly (a header
/// read as absent, a path matched by its escaped form). Refused whole: 400 in the envelope.
/// (Bytes hyper's parser refuses never get here: `TimedIo` turns that answer into the same one.)
fn check_ascii(uri: &hyper::Uri, headers: &hyper::HeaderMap) -> Result<(), Unread> {
    if !uri
        .path_and_query()
        .is_none_or(|target| target.as_str().is_ascii())
    {
        return Err(Unread::BadFraming(
            "The path must be ASCII: percent-encode other characters (RFC 3986).",
        ));
    }
    if headers.values().any(|value| !value.as_bytes().is_ascii()) {
        return Err(Unread::BadFraming(
            "Header values must be ASCII: encode other characters (RFC 8187, or percent-encoding).",
        ));
    }
    Ok(())
}

/// The declared body length, or why the request's framing is refused.
fn check_framing(headers: &hyper::HeaderMap) -> Result<Option<u64>, Unread> {
    let mut codings = headers.get_all(TRANSFER_ENCODING).iter();
    if let Some(coding) = codings.next()
        && (codings.next().is_some() || !coding.as_bytes().eq_ignore_ascii_case(b"chunked"))
    {
        return Err(Unread::BadFraming(
            "Transfer-Encoding must be exactly \"chunked\"; no other coding is supported.",
        ));
    }
    let mut lengths = headers.get_all(CONTENT_LENGTH).iter();
    let Some(length) = lengths.next() else {
        return Ok(None);
    };
    let digits = length.as_bytes();
    let parsed =
        (!digits.is_empty() && digits.len() <= 19 && digits.iter().all(u8::is_ascii_digit))
            .then(|| std::str::from_utf8(digits).ok()?.parse::<u64>().ok())
            .flatten();
    match (parsed, lengths.next()) {
        (Some(declared), None) => Ok(Some(declared)),
        _ => Err(Unread::BadFraming(
            "Content-Length must be sent once, as a plain number.",
        )),
    }
}

/// Reads the whole body within the HTTP timeout, keeping at most `max_body_bytes` of it.
async fn read_body(
    mut body: hyper::body::Incoming,
    declared: Option<u64>,
    settings: &EdgeSettings,
) -> RequestBody {
    let limit = settings.max_body_bytes;
    if declared.is_some_and(|declared| declared > limit) {
        return RequestBody::Unread(Unread::DeclaredTooLarge);
    }
    // Bounded by the limit just checked, never by what a chunked client might claim.
    let mut kept = Vec::with_capacity(usize::try_from(declared.unwrap_or(0)).unwrap_or(0));
    let mut seen: u64 = 0;
    let deadline = tokio::time::Instant::now() + settings.timeout;
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return RequestBody::Unread(Unread::TimedOut(settings.timeout)),
            Ok(None) => break,
            Ok(Some(Err(err))) => {
                log::debug!(error:% = err; "request body read failed");
                return RequestBody::Unread(Unread::Broken);
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers carry nothing crier reads
        };
        seen = seen.saturating_add(data.len() as u64);
        if seen > DRAIN_LIMIT_BYTES.max(limit) {
            return RequestBody::Unread(Unread::TooLargeToDrain);
        }
        if seen <= limit {
            kept.extend_from_slice(&data);
        } else if !kept.is_empty() {
            kept = Vec::new();
        }
    }
    if seen > limit {
        RequestBody::TooLarge
    } else {
        RequestBody::Complete(kept)
    }
}

/// Whether the request is a CSV upload to the import route, whose body goes to disk.
fn is_spooled_upload(method: &hyper::Method, uri: &hyper::Uri, headers: &hyper::HeaderMap) -> bool {
    method == hyper::Method::POST
        && uri.path() == crate::web::imports::SPOOLED_UPLOAD_PATH
        && headers
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(crate::web::imports::is_csv_media_type)
}

/// Streams the body to a new file in the spool directory, up to `max_import_bytes`, each frame
/// due within the HTTP timeout. Whatever goes wrong, the file is deleted (the `SpooledBody`
/// guard owns it from the start).
async fn spool_body(
    mut body: hyper::body::Incoming,
    declared: Option<u64>,
    settings: &EdgeSettings,
    app: &App,
) -> RequestBody {
    let limit = settings.max_import_bytes;
    if declared.is_some_and(|declared| declared > limit) {
        return RequestBody::Unread(Unread::UploadTooLarge);
    }
    let failed = |err: io::Error| {
        log::error!(error:% = err; "cannot write an upload to the spool directory");
        RequestBody::Unread(Unread::SpoolFailed)
    };
    let guard = SpooledBody::new(
        settings
            .spool_dir
            .join(format!("{}.upload", app.ids.new_id("upl"))),
    );
    let (dir, path) = (settings.spool_dir.clone(), guard.path().to_owned());
    let created = on_blocking_pool(move || {
        crate::db::files::create_private_dir(&dir)?;
        crate::db::files::create_private_file(&path)
    });
    let file = match created.await {
        Ok(file) => Arc::new(file),
        Err(err) => return failed(err),
    };
    let mut pending: Vec<u8> = Vec::with_capacity(SPOOL_WRITE_BYTES);
    let mut seen: u64 = 0;
    loop {
        let frame = match tokio::time::timeout(settings.timeout, body.frame()).await {
            Err(_) => return RequestBody::Unread(Unread::TimedOut(settings.timeout)),
            Ok(None) => break,
            Ok(Some(Err(err))) => {
                log::debug!(error:% = err; "upload body read failed");
                return RequestBody::Unread(Unread::Broken);
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen = seen.saturating_add(data.len() as u64);
        if seen > limit {
            return RequestBody::Unread(Unread::UploadTooLarge);
        }
        pending.extend_from_slice(&data);
        if pending.len() >= SPOOL_WRITE_BYTES {
            let (file, bytes) = (
                Arc::clone(&file),
                std::mem::replace(&mut pending, Vec::with_capacity(SPOOL_WRITE_BYTES)),
            );
            if let Err(err) = on_blocking_pool(move || (&*file).write_all(&bytes)).await {
                return failed(err);
            }
        }
    }
    // On disk before a job can adopt it: a job never outlives its file.
    let finished = on_blocking_pool(move || {
        (&*file).write_all(&pending)?;
        file.sync_all()
    });
    if let Err(err) = finished.await {
        return failed(err);
    }
    RequestBody::Spooled(guard.with_bytes(seen))
}

/// Runs blocking file I/O on tokio's blocking pool, so the I/O thread never waits for a disk.
async fn on_blocking_pool<T: Send + 'static>(
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|err| Err(io::Error::other(err)))
}

/// A response body: built in memory by the handler, or streamed by a writer thread.
type ResponseBody = Either<Full<Bytes>, StreamedBody>;

/// The connection stays busy (no idle read deadline) until a streamed body has been sent.
fn into_hyper(outgoing: Outgoing, busy: BusyGuard) -> hyper::Response<ResponseBody> {
    let Outgoing { response, close } = outgoing;
    let body = match response.stream {
        None => Either::Left(Full::new(response.body)),
        Some(writer) => Either::Right(StreamedBody::start(Vec::from(response.body), writer, busy)),
    };
    let mut out = hyper::Response::new(body);
    *out.status_mut() = hyper::StatusCode::from_u16(response.status)
        .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    let headers = out.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static(response.content_type),
    );
    for (name, value) in response.headers {
        // Names and values crier builds are plain ASCII; anything with CR, LF or another byte
        // a header cannot hold is dropped rather than allowed to split the response.
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            (Ok(name), Ok(value)) => {
                headers.append(name, value);
            }
            _ => log::warn!(header = name.as_str(); "dropped a response header that is not valid"),
        }
    }
    if close {
        headers.insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
    }
    out
}

/// A body written by a `BodyWriter` on a thread of its own and handed over in chunks through a
/// small bounded channel: a slow client slows the writer down instead of filling memory, and a
/// client that goes away (the body is dropped) makes the writer's next write fail, ending it.
/// A writer that fails sends the error, which makes hyper end the response without its final
/// chunk.
struct StreamedBody {
    chunks: mpsc::Receiver<io::Result<Bytes>>,
    _busy: BusyGuard,
}

impl StreamedBody {
    fn start(prefix: Vec<u8>, writer: BodyWriter, busy: BusyGuard) -> StreamedBody {
        let (sender, chunks) = mpsc::channel(STREAM_CHUNKS_AHEAD);
        let failed = sender.clone();
        let spawned = std::thread::Builder::new()
            .name("crier-stream".to_owned())
            .spawn(move || {
                let mut out = ChunkSender {
                    buffer: prefix,
                    sender,
                };
                let written = (writer.0)(&mut out).and_then(|()| io::Write::flush(&mut out));
                match written {
                    Ok(()) => {}
                    // The client left (or asked with HEAD): nothing went wrong on crier's side.
                    Err(err) if err.kind() == io::ErrorKind::BrokenPipe => {
                        log::debug!(error:% = err; "a streamed response was not read to its end");
                    }
                    Err(err) => {
                        log::warn!(error:% = err; "a streamed response ended early");
                        let _ = out.sender.blocking_send(Err(err));
                    }
                }
            });
        if let Err(err) = spawned {
            log::error!(error:% = err; "cannot start a thread for a streamed response");
            let _ = failed.try_send(Err(err));
        }
        StreamedBody {
            chunks,
            _busy: busy,
        }
    }
}

impl hyper::body::Body for StreamedBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.get_mut()
            .chunks
            .poll_recv(cx)
            .map(|chunk| chunk.map(|chunk| chunk.map(Frame::data)))
    }
}

/// The writer thread's `Write`: gathers `STREAM_CHUNK` bytes, then waits for room in the channel.
struct ChunkSender {
    buffer: Vec<u8>,
    sender: mpsc::Sender<io::Result<Bytes>>,
}

impl io::Write for ChunkSender {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= STREAM_CHUNK {
            self.flush()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buffer));
        self.sender
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client stopped reading"))
    }
}

/// Marks the connection busy while a request is being served, so its idle deadline is off.
struct BusyGuard(Arc<Progress>);

impl BusyGuard {
    fn enter(progress: Arc<Progress>) -> BusyGuard {
        progress.busy.store(true, Ordering::Relaxed);
        BusyGuard(progress)
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.busy.store(false, Ordering::Relaxed);
    }
}

/// A TCP stream with an inactivity deadline on reads (off while the connection is busy with a
/// request) and on writes. hyper sees it through its own `Read` / `Write` traits.
struct TimedIo {
    stream: TcpStream,
    timeout: Duration,
    /// Its connection's, shared: `busy` turns the read deadline off; reads note `head_begun`,
    /// writes `writing`.
    progress: Arc<Progress>,
    read_deadline: Deadline,
    write_deadline: Deadline,
    /// For the request id of a rewritten answer (see `HYPERS_BAD_REQUEST`).
    app: Arc<App>,
    /// The envelope being written in place of hyper's bare 400, and how much of it is out.
    rewrite: Option<(Vec<u8>, usize)>,
}

impl TimedIo {
    fn new(
        stream: TcpStream,
        timeout: Duration,
        progress: Arc<Progress>,
        app: Arc<App>,
    ) -> TimedIo {
        TimedIo {
            stream,
            timeout,
            progress,
            read_deadline: Deadline::new(),
            write_deadline: Deadline::new(),
            app,
            rewrite: None,
        }
    }
}

/// A request head hyper's parser refuses (bytes outside the grammar in the path, a header name
/// or value; a malformed line) is answered by hyper itself, before crier sees a request, with a
/// bare `400 Bad Request` and no body, and the connection closed. Every answer crier writes
/// carries `x-request-id`, so a 400 head without one is that answer: `TimedIo` writes crier's
/// 400 `bad_request` in the envelope in its place (`bad_request_answer`).
const HYPERS_BAD_REQUEST: &[u8] = b"HTTP/1.1 400 Bad Request\r\n";

fn is_hypers_bad_request(head: &[u8]) -> bool {
    head.starts_with(HYPERS_BAD_REQUEST)
        && !head
            .windows(b"\r\nx-request-id:".len())
            .any(|window| window.eq_ignore_ascii_case(b"\r\nx-request-id:"))
}

/// The whole answer (head and envelope) to a request head hyper could not parse.
fn bad_request_answer(app: &App) -> Vec<u8> {
    let request_id = app.ids.request_id();
    let err = AppError::BadRequest(
        "The request head could not be read: a malformed request line or header (raw bytes \
         outside ASCII, a broken line) or a Content-Length / Transfer-Encoding that does not \
         frame the body unambiguously."
            .to_owned(),
    );
    log::info!(request_id = request_id.as_str(), status = 400; "refused a request head hyper could not parse");
    let body = error_response(&err, &request_id).body;
    let mut answer = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\nx-request-id: \
         {request_id}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    answer.extend_from_slice(&body);
    answer
}

impl TimedIo {
    /// Writes the rewritten answer in place of hyper's `claimed` bytes, reporting them all
    /// written once the whole answer is out.
    fn poll_rewrite(&mut self, cx: &mut Context<'_>, claimed: usize) -> Poll<io::Result<usize>> {
        loop {
            let Some((answer, sent)) = self.rewrite.take() else {
                return Poll::Ready(Ok(claimed));
            };
            if sent == answer.len() {
                return Poll::Ready(Ok(claimed));
            }
            let written = Pin::new(&mut self.stream).poll_write(cx, &answer[sent..]);
            match self.timed_write(cx, written) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Ok(0)),
                Poll::Ready(Ok(n)) => self.rewrite = Some((answer, sent + n)),
                Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                Poll::Pending => {
                    self.rewrite = Some((answer, sent));
                    return Poll::Pending;
                }
            }
        }
    }
}

impl TimedIo {
    /// A write that made progress disarms the write deadline; one that would wait arms it, and
    /// fails once it has run out.
    fn timed_write(
        &mut self,
        cx: &mut Context<'_>,
        written: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        self.progress
            .writing
            .store(written.is_pending(), Ordering::SeqCst);
        match written {
            Poll::Ready(result) => {
                self.write_deadline.progressed();
                Poll::Ready(result)
            }
            Poll::Pending => self.write_deadline.poll_waiting(cx, self.timeout).map(Err),
        }
    }
}

/// A reusable timer: armed when an operation starts waiting, disarmed when it makes progress.
struct Deadline {
    sleep: Pin<Box<tokio::time::Sleep>>,
    armed: bool,
}

impl Deadline {
    fn new() -> Deadline {
        Deadline {
            sleep: Box::pin(tokio::time::sleep(Duration::ZERO)),
            armed: false,
        }
    }

    /// Called when the operation would wait: arms the timer if needed, and fails the operation
    /// once the timer has run out.
    fn poll_waiting(&mut self, cx: &mut Context<'_>, timeout: Duration) -> Poll<io::Error> {
        if !self.armed {
            self.sleep
                .as_mut()
                .reset(tokio::time::Instant::now() + timeout);
            self.armed = true;
        }
        match self.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.armed = false;
                Poll::Ready(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no progress on the connection within the HTTP timeout",
                ))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn progressed(&mut self) {
        self.armed = false;
    }
}

impl hyper::rt::Read for TimedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut cursor: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let mut scratch = [0u8; READ_CHUNK];
        let len = cursor.remaining().min(READ_CHUNK);
        let mut buf = ReadBuf::new(&mut scratch[..len]);
        match Pin::new(&mut this.stream).poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) => {
                this.read_deadline.progressed();
                // Bytes between requests: the next head has begun.
                if !buf.filled().is_empty() && !this.progress.busy.load(Ordering::Relaxed) {
                    this.progress.head_begun.store(true, Ordering::SeqCst);
                }
                cursor.put_slice(buf.filled());
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending if this.progress.busy.load(Ordering::Relaxed) => {
                // A handler is working: hyper only watches for the client hanging up.
                this.read_deadline.progressed();
                Poll::Pending
            }
            Poll::Pending => this.read_deadline.poll_waiting(cx, this.timeout).map(Err),
        }
    }
}

impl hyper::rt::Write for TimedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.rewrite.is_none() && is_hypers_bad_request(buf) {
            this.rewrite = Some((bad_request_answer(&this.app), 0));
        }
        if this.rewrite.is_some() {
            return this.poll_rewrite(cx, buf.len());
        }
        let written = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.timed_write(cx, written)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let first = bufs.iter().find(|buf| !buf.is_empty());
        if this.rewrite.is_none() && first.is_some_and(|buf| is_hypers_bad_request(buf)) {
            this.rewrite = Some((bad_request_answer(&this.app), 0));
        }
        if this.rewrite.is_some() {
            let claimed = bufs.iter().map(|buf| buf.len()).sum();
            return this.poll_rewrite(cx, claimed);
        }
        let written = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.timed_write(cx, written)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// hyper's timer (for the request-head timeout) on tokio's clock.
#[derive(Clone, Copy)]
struct TokioTimer;

impl hyper::rt::Timer for TokioTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(TokioSleep(Box::pin(tokio::time::sleep(duration))))
    }

    fn sleep_until(&self, deadline: std::time::Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(TokioSleep(Box::pin(tokio::time::sleep_until(
            deadline.into(),
        ))))
    }
}

struct TokioSleep(Pin<Box<tokio::time::Sleep>>);

impl Future for TokioSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.get_mut().0.as_mut().poll(cx)
    }
}

impl hyper::rt::Sleep for TokioSleep {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every accept error a listener can meet — a client that reset before it was accepted
    /// (`ECONNABORTED`, `ECONNRESET`), a signal, a spurious wake-up, no descriptors or memory
    /// left — is followed by another accept, and the first connection after them is served.
    #[test]
    fn no_accept_error_ends_the_accept_loop() {
        const ENFILE: i32 = 23;
        const EMFILE: i32 = 24;
        const ENOBUFS: i32 = 105;
        let mut errors = vec![
            io::Error::from(io::ErrorKind::ConnectionAborted),
            io::Error::from(io::ErrorKind::ConnectionReset),
            io::Error::from(io::ErrorKind::Interrupted),
            io::Error::from(io::ErrorKind::WouldBlock),
            io::Error::from_raw_os_error(EMFILE),
            io::Error::from_raw_os_error(ENFILE),
            io::Error::from_raw_os_error(ENOBUFS),
            io::Error::other("an error nobody foresaw"),
        ];
        errors.reverse();
        let mut calls = 0;
        let served = runtime().unwrap().block_on(next_connection(|| {
            calls += 1;
            let next = errors.pop().map_or(Ok("the next client"), Err);
            async move { next }
        }));
        assert_eq!(served, "the next client");
        assert_eq!(calls, 9);
    }

    fn headers(pairs: &[(&str, &str)]) -> hyper::HeaderMap {
        let mut map = hyper::HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn framing_accepts_one_plain_length_or_bare_chunked() {
        assert_eq!(check_framing(&headers(&[])), Ok(None));
        assert_eq!(
            check_framing(&headers(&[("content-length", "42")])),
            Ok(Some(42))
        );
        assert_eq!(
            check_framing(&headers(&[("transfer-encoding", "Chunked")])),
            Ok(None)
        );
    }

    #[test]
    fn framing_refuses_other_codings_and_odd_lengths() {
        for bad in [
            vec![("transfer-encoding", "gzip, chunked")],
            vec![
                ("transfer-encoding", "chunked"),
                ("transfer-encoding", "chunked"),
            ],
            vec![("transfer-encoding", "identity")],
            vec![("content-length", "5, 5")],
            vec![("content-length", "+5")],
            vec![("content-length", "")],
            vec![("content-length", "99999999999999999999")],
            vec![("content-length", "5"), ("content-length", "5")],
        ] {
            assert!(
                matches!(check_framing(&headers(&bad)), Err(Unread::BadFraming(_))),
                "{bad:?}"
            );
        }
    }
}
