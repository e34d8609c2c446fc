//! The HTTP edge under clients that misbehave: it keeps accepting after idling, resets and
//! running out of descriptors; per-connection timeouts never hold a worker; many keep-alive
//! connections at once are all served; message framing follows RFC 9112 so nothing can be
//! smuggled; a header can never be split.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use crier::app::App;
use crier::error::AppError;
use crier::web::request::Request;
use crier::web::response::ApiResponse;
use crier::web::router::{Method, Route, Router};

use crate::harness::{TestServer, open_connection, read_head, read_response, send_raw};

/// Echoes the body's length, and a header value a client chose (to prove it cannot split the
/// response's headers).
fn reflect(_app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let body = request.body_bytes()?;
    let echoed = request.header("X-Echo").unwrap_or("").to_owned();
    Ok(
        ApiResponse::json(200, &serde_json::json!({ "length": body.len() }))?
            .with_header("X-Echo", echoed),
    )
}

fn router() -> Router {
    Router::standard()
        .with_route(Route::new(Method::Post, "/test/reflect", reflect))
        .with_route(Route::new(Method::Get, "/test/reflect", reflect))
}

/// One worker and a one-second HTTP timeout: a client that could hold the worker would stop
/// every other client, so each test below proves the worker stays free.
fn strict_server() -> TestServer {
    TestServer::start_with(
        |config| {
            config.workers = NonZeroUsize::MIN;
            config.http_timeout = Duration::from_secs(1);
            config.max_body_bytes = 4096;
        },
        router(),
    )
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
}

/// Reads until the server closes the connection, returning what came; fails if it stays open
/// for 20 s.
fn read_until_closed(stream: &mut impl Read) -> Vec<u8> {
    let mut bytes = Vec::new();
    match stream.read_to_end(&mut bytes) {
        Ok(_) => {}
        // A reset after the server gave up on us is a close too.
        Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(err) => panic!("the server kept the connection open: {err}"),
    }
    bytes
}

fn healthz(addr: SocketAddr) -> u16 {
    send_raw(
        addr,
        b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .status
}

#[test]
fn a_new_connection_is_served_after_idling_past_every_timeout() {
    let server = strict_server();
    assert_eq!(healthz(server.addr), 200);
    // The old edge stopped accepting once the listener's own receive timeout passed without a
    // new connection. Idle for well over the HTTP timeout, twice.
    for _ in 0..2 {
        std::thread::sleep(Duration::from_millis(2500));
        assert_eq!(healthz(server.addr), 200);
    }
}

#[test]
fn resets_and_half_open_connections_do_not_stop_the_server() {
    let server = strict_server();
    let mut half_open = Vec::new();
    for round in 0..200 {
        let stream = TcpStream::connect(server.addr).unwrap();
        match round % 3 {
            // Reset at once (RST instead of FIN), possibly before the server accepted it.
            0 => {
                socket2::SockRef::from(&stream)
                    .set_linger(Some(Duration::ZERO))
                    .unwrap();
                drop(stream);
            }
            // Reset in the middle of a request head.
            1 => {
                let mut stream = stream;
                let _ = stream.write_all(b"POST /test/reflect HTTP/1.1\r\nHost: t\r\nContent-Le");
                socket2::SockRef::from(&stream)
                    .set_linger(Some(Duration::ZERO))
                    .unwrap();
                drop(stream);
            }
            // Connect and say nothing, keeping the socket open.
            _ => half_open.push(stream),
        }
    }
    // With 67 silent connections open and the rest reset, the one worker still serves.
    assert_eq!(healthz(server.addr), 200);
    // The silent ones are closed by the server once the timeout passes.
    let started = Instant::now();
    for mut stream in half_open {
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        assert!(read_until_closed(&mut stream).is_empty());
    }
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(healthz(server.addr), 200);
}

#[test]
fn a_slow_request_head_is_cut_off_without_holding_the_worker() {
    let server = strict_server();
    let mut slow = connect(server.addr);
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
        .unwrap();
    // While the head is incomplete, the only worker serves someone else.
    assert_eq!(healthz(server.addr), 200);
    // Trickling a header line every 400 ms never completes the head within the timeout.
    let started = Instant::now();
    for index in 0..10 {
        std::thread::sleep(Duration::from_millis(400));
        if slow
            .write_all(format!("X-Slow-{index}: 1\r\n").as_bytes())
            .is_err()
        {
            break;
        }
    }
    let answer = read_until_closed(&mut slow);
    let text = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
    assert!(started.elapsed() < Duration::from_secs(15));
}

#[test]
fn a_slow_body_is_408_and_the_worker_serves_others_meanwhile() {
    let server = strict_server();
    let mut slow = open_connection(
        server.addr,
        b"POST /test/reflect HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"a\":",
    );
    assert_eq!(healthz(server.addr), 200);
    let response = read_response(&mut slow);
    response.assert_error(408, "request_timeout");
    assert_eq!(response.header("Connection"), Some("close"));
    assert!(read_until_closed(&mut slow).is_empty());
    assert_eq!(healthz(server.addr), 200);
}

#[test]
fn an_idle_keep_alive_connection_is_closed_and_a_busy_one_is_not() {
    let server = strict_server();
    let mut stream = connect(server.addr);
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    // Two requests on the same connection with pauses shorter than the timeout: kept alive.
    for _ in 0..2 {
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        assert_eq!(read_response(&mut reader).status, 200);
        std::thread::sleep(Duration::from_millis(500));
    }
    // Then silence past the timeout: the server closes it.
    let started = Instant::now();
    assert!(read_until_closed(&mut reader).is_empty());
    assert!(started.elapsed() >= Duration::from_millis(400));
}

#[test]
fn a_client_that_never_reads_its_responses_is_dropped_and_frees_the_worker() {
    let server = strict_server();
    let mut greedy = connect(server.addr);
    greedy
        .set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    // Pipeline requests for a large page and never read: the socket buffers fill, the server's
    // write waits, and after the timeout the connection is dropped.
    let request = b"GET /openapi.json HTTP/1.1\r\nHost: t\r\n\r\n";
    for _ in 0..2000 {
        if greedy.write_all(request).is_err() {
            break;
        }
    }
    // Meanwhile, and afterwards, the one worker answers everyone else.
    assert_eq!(healthz(server.addr), 200);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(healthz(server.addr), 200);
    // The server gave up writing to it: what it had sent can be read, then the connection ends.
    read_until_closed(&mut greedy);
}

#[test]
fn many_keep_alive_connections_opened_at_once_are_all_served() {
    let server = TestServer::start_with(|_| {}, router());
    let started = Instant::now();
    let mut connections: Vec<(TcpStream, BufReader<TcpStream>)> = (0..256)
        .map(|_| {
            let stream = connect(server.addr);
            let reader = BufReader::new(stream.try_clone().unwrap());
            (stream, reader)
        })
        .collect();
    for round in 0..2 {
        for (stream, _) in &mut connections {
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
                .unwrap();
        }
        for (index, (_, reader)) in connections.iter_mut().enumerate() {
            let response = read_response(reader);
            assert_eq!(response.status, 200, "connection {index}, round {round}");
        }
    }
    // Generous: the point is that no connection waits for another to close (the old edge left
    // most of a burst unserved until the end of the run).
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// Sends `head` plus a pipelined request that must never be mistaken for part of the first one,
/// and returns the first answer with whatever followed it.
fn first_answer_and_rest(addr: SocketAddr, head_and_body: &str) -> (u16, String) {
    let mut bytes = head_and_body.as_bytes().to_vec();
    bytes.extend_from_slice(
        b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Request-Id: smuggled\r\nConnection: close\r\n\r\n",
    );
    let mut reader = open_connection(addr, &bytes);
    let (status, _) = read_head(&mut reader);
    let mut rest = Vec::new();
    let _ = reader.read_to_end(&mut rest);
    (status, String::from_utf8_lossy(&rest).into_owned())
}

#[test]
fn framing_that_could_smuggle_a_request_is_refused() {
    let server = strict_server();
    for (what, request) in [
        (
            "a coding other than chunked",
            "POST /test/reflect HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n",
        ),
        (
            "chunked, then another coding",
            "POST /test/reflect HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
        ),
        (
            "another coding before chunked",
            "POST /test/reflect HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        ),
        (
            "Transfer-Encoding twice",
            "POST /test/reflect HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ),
        (
            "an obfuscated coding",
            "POST /test/reflect HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
        ),
        (
            "two different lengths",
            "POST /test/reflect HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde",
        ),
        (
            "a length list",
            "POST /test/reflect HTTP/1.1\r\nHost: t\r\nContent-Length: 5, 5\r\n\r\nabcde",
        ),
        (
            "a signed length",
            "POST /test/reflect HTTP/1.1\r\nHost: t\r\nContent-Length: +5\r\n\r\nabcde",
        ),
        (
            "a length that is not a number",
            "POST /test/reflect HTTP/1.1\r\nHost: t\r\nContent-Length: five\r\n\r\nabcde",
        ),
        (
            "a bare CR inside a header value",
            "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Echo: a\rSet-Cookie: evil=1\r\n\r\n",
        ),
        (
            "a bare LF ending a header line",
            "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Echo: a\nTransfer-Encoding: chunked\r\n\r\n",
        ),
        (
            "an obsolete folded header line",
            "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Echo: a\r\n Transfer-Encoding: chunked\r\n\r\n",
        ),
        (
            "a space before the colon",
            "POST /test/reflect HTTP/1.1\r\nHost: t\r\nTransfer-Encoding : chunked\r\nContent-Length: 3\r\n\r\nabc",
        ),
    ] {
        let (status, rest) = first_answer_and_rest(server.addr, request);
        assert_eq!(status, 400, "{what}");
        assert!(
            !rest.contains("smuggled"),
            "{what}: a smuggled request was served: {rest}"
        );
    }
    assert_eq!(healthz(server.addr), 200);
}

/// A client that shuts its sending side down right after its request (`nc -N`, HTTP/1.0
/// tools, some health checkers) still reads the answer: a half-closed connection is not an
/// abandoned one.
#[test]
fn a_client_that_half_closes_after_its_request_gets_the_answer() {
    let server = strict_server();
    for request in [
        &b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"[..],
        &b"GET /healthz HTTP/1.0\r\n\r\n"[..],
        &b"POST /test/reflect HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nabcde"[..],
    ] {
        let mut stream = connect(server.addr);
        stream.write_all(request).unwrap();
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        let answer = String::from_utf8_lossy(&read_until_closed(&mut stream)).into_owned();
        assert!(answer.starts_with("HTTP/1."), "{request:?}: {answer:?}");
        assert!(answer.contains(" 200 "), "{answer}");
    }
    assert_eq!(healthz(server.addr), 200);
}

/// RFC 9110 §8.6 lets a recipient read a `Content-Length` repeated with the same value as one
/// (hyper does, before crier sees the headers): there is one body either way, so the request is
/// served and the next one on the connection is read as itself, never as part of this body.
#[test]
fn a_content_length_repeated_with_the_same_value_is_read_as_one() {
    let server = strict_server();
    let (status, rest) = first_answer_and_rest(
        server.addr,
        "POST /test/reflect HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nabcde",
    );
    assert_eq!(status, 200);
    assert!(rest.contains(r#"{"length":5}"#), "{rest}");
    // The pipelined request after the body was answered on its own.
    assert!(rest.contains("HTTP/1.1 200"), "{rest}");
    assert!(rest.contains("smuggled"), "{rest}");
}

#[test]
fn both_transfer_encoding_and_content_length_never_desynchronise_the_connection() {
    let server = strict_server();
    // RFC 9112 §6.1: framed by Transfer-Encoding alone, and the connection closed after the
    // answer, so the bytes a Content-Length reader would take for the next request are never
    // read as one — in either header order.
    for request in [
        "POST /test/reflect HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST /test/reflect HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
    ] {
        let (status, rest) = first_answer_and_rest(server.addr, request);
        assert!(status == 400 || status == 200, "{status}");
        assert!(
            !rest.contains("smuggled"),
            "a smuggled request was served: {rest}"
        );
    }
}

#[test]
fn a_client_cannot_split_a_response_header() {
    let server = strict_server();
    // hyper refuses raw CR/LF in a request header; an encoded one stays inert text. Either way
    // no header line of the client's making appears in the response.
    let response = send_raw(
        server.addr,
        b"GET /test/reflect HTTP/1.1\r\nHost: t\r\nX-Echo: ok%0d%0aSet-Cookie: evil=1\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("X-Echo"),
        Some("ok%0d%0aSet-Cookie: evil=1")
    );
    assert_eq!(response.header("Set-Cookie"), None);
}

#[test]
fn a_chunked_body_is_read_within_the_limit_and_refused_past_it() {
    let server = strict_server();
    let chunked = |size: usize| {
        let mut bytes =
            b"POST /test/reflect HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                .to_vec();
        for _ in 0..size / 512 {
            bytes.extend_from_slice(b"200\r\n");
            bytes.extend_from_slice(&[b'x'; 512]);
            bytes.extend_from_slice(b"\r\n");
        }
        bytes.extend_from_slice(b"0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: t\r\nX-Request-Id: next\r\nConnection: close\r\n\r\n");
        bytes
    };
    let mut reader = open_connection(server.addr, &chunked(4096));
    assert_eq!(read_response(&mut reader).json()["length"], 4096);
    assert_eq!(
        read_response(&mut reader).header("X-Request-Id"),
        Some("next")
    );

    let mut reader = open_connection(server.addr, &chunked(8192));
    read_response(&mut reader).assert_error(413, "payload_too_large");
    // Read to its end and discarded: the next request on the connection is served as itself.
    assert_eq!(
        read_response(&mut reader).header("X-Request-Id"),
        Some("next")
    );
}

#[test]
fn a_malformed_chunk_is_400_and_the_connection_closes() {
    let server = strict_server();
    let mut reader = open_connection(
        server.addr,
        b"POST /test/reflect HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    );
    let response = read_response(&mut reader);
    response.assert_error(400, "bad_request");
    assert!(read_until_closed(&mut reader).is_empty());
}

#[test]
fn the_server_keeps_accepting_after_running_out_of_descriptors() {
    let dir = tempfile::tempdir().unwrap();
    // The real binary under a low descriptor limit: a flood of connections exhausts it, accept
    // fails with EMFILE, and the server must go on once descriptors are free again.
    let server = crate::process::ServeProcess::start_limited(dir.path(), 96);
    assert_eq!(server.get("/healthz").status, 200);
    let flood: Vec<TcpStream> = (0..150)
        .filter_map(|_| TcpStream::connect(server.addr).ok())
        .collect();
    // The flood did run the server out of descriptors: its accept loop says so.
    server.wait_for_log(
        "cannot accept connections; pausing briefly between tries",
        Duration::from_secs(15),
    );
    // Said once, not twenty times a second while it lasts (again after 10 s at the soonest).
    std::thread::sleep(Duration::from_secs(2));
    let repeats = server
        .recent_log()
        .matches("cannot accept connections")
        .count();
    assert_eq!(
        repeats, 0,
        "the accept failure was logged {repeats} more times in 2 s"
    );
    drop(flood);
    // Connections from the flood that the server did accept are closed when it sees them end.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let status = TcpStream::connect(server.addr).ok().and_then(|mut stream| {
            stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                .ok()?;
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            reader.read_line(&mut line).ok()?;
            line.split_whitespace().nth(1)?.parse::<u16>().ok()
        });
        if status == Some(200) {
            break;
        }
        assert!(Instant::now() < deadline, "the server stopped accepting");
        std::thread::sleep(Duration::from_millis(100));
    }
    for _ in 0..5 {
        assert_eq!(server.get("/healthz").status, 200);
    }
}

#[test]
fn raw_non_ascii_bytes_in_a_header_value_or_the_path_are_400_in_the_envelope() {
    let server = TestServer::start();
    let requests: [&[u8]; 12] = [
        // Refused by hyper's parser (it used to answer a bare 400 without a body) …
        b"GET /\xff HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /v1/\x80abc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /v1/a\x01 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-N\xc3\xa9: a\r\nConnection: close\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Name: a\x00b\r\nConnection: close\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Name: a\x7fb\r\nConnection: close\r\n\r\n",
        b"GET /healthz?q=\xff HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        // … and let through by it (answered 200, 401 or 404 before).
        b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\xff\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Name: caf\xc3\xa9\r\nConnection: close\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Name: \xff\xfe\r\nConnection: close\r\n\r\n",
        b"GET /v1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xe9\r\nConnection: close\r\n\r\n",
        b"GET /v1/caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ];
    for raw in requests {
        let mut stream = connect(server.addr);
        stream.write_all(raw).unwrap();
        let answer = read_until_closed(&mut stream);
        let text = String::from_utf8_lossy(&answer);
        assert!(
            text.starts_with("HTTP/1.1 400 "),
            "{:?} got {text:?}",
            String::from_utf8_lossy(raw)
        );
        let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
        let json: serde_json::Value = serde_json::from_str(body)
            .unwrap_or_else(|_| panic!("not the JSON envelope: {text:?}"));
        assert_eq!(json["error"]["code"], "bad_request", "{text}");
        assert!(json["request_id"].is_string(), "{text}");
    }
    assert_eq!(healthz(server.addr), 200);
}
