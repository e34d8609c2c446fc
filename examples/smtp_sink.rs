//! A minimal, fast SMTP sink on 127.0.0.1 for `bench/dispatch.sh`: it accepts every message and
//! keeps none, counting messages and connections.
//!
//! `cargo run --release --example smtp_sink -- [--port N] [--max-secs N]`
//!
//! - Listens on 127.0.0.1 only (port 0, the default, picks a free one) and prints
//!   `LISTENING 127.0.0.1:PORT` once it accepts connections.
//! - Speaks EHLO/HELO, MAIL, RCPT, DATA, BDAT, RSET, NOOP, QUIT, and offers PIPELINING and
//!   CHUNKING (RFC 3030: `BDAT n LAST` and the message's n bytes, no dot-stuffing): replies to a
//!   pipelined group go out in one write, when the client has nothing more buffered.
//! - On SIGTERM or SIGINT, or by itself after `--max-secs` (default 300), it prints
//!   `SINK messages=N connections=N` and exits 0.
//!
//! One thread per connection; this is a benchmark tool, not a mail server.

// A sink that cannot set itself up has nothing to measure: it stops with the reason.
#![allow(clippy::expect_used)]

#[path = "support/sink.rs"]
mod sink;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

#[derive(Default)]
struct Counts {
    messages: AtomicU64,
    connections: AtomicU64,
}

fn main() {
    let counts = Arc::new(Counts::default());
    let reported = Arc::clone(&counts);
    let listener = sink::listen(Arc::new(move || {
        format!(
            "SINK messages={} connections={}",
            reported.messages.load(Ordering::SeqCst),
            reported.connections.load(Ordering::SeqCst)
        )
    }));
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        counts.connections.fetch_add(1, Ordering::SeqCst);
        let counts = Arc::clone(&counts);
        thread::spawn(move || {
            let _ = serve(stream, &counts);
        });
    }
}

/// One SMTP session. Replies are buffered and written when the client has sent nothing more
/// that is already here, so a pipelined group gets its replies in one write.
fn serve(stream: TcpStream, counts: &Counts) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(300)))?;
    let mut reader = BufReader::with_capacity(64 * 1024, stream.try_clone()?);
    let mut writer = stream;
    let mut out: Vec<u8> = Vec::with_capacity(512);
    let mut line: Vec<u8> = Vec::with_capacity(1024);
    out.extend_from_slice(b"220 sink.localhost ESMTP crier bench sink\r\n");
    loop {
        if reader.buffer().is_empty() && !out.is_empty() {
            writer.write_all(&out)?;
            out.clear();
        }
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        // Every verb it knows has four letters, followed by a space or the line's end.
        let mut verb = [0u8; 4];
        let known = line.len() >= 4 && !line.get(4).is_some_and(u8::is_ascii_alphabetic);
        if known {
            for (to, from) in verb.iter_mut().zip(&line) {
                *to = from.to_ascii_uppercase();
            }
        }
        match &verb {
            b"EHLO" => out.extend_from_slice(
                b"250-sink.localhost\r\n250-PIPELINING\r\n250-CHUNKING\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n",
            ),
            b"HELO" => out.extend_from_slice(b"250 sink.localhost\r\n"),
            b"MAIL" | b"RCPT" | b"RSET" | b"NOOP" => out.extend_from_slice(b"250 OK\r\n"),
            b"DATA" => {
                out.extend_from_slice(b"354 End data with <CR><LF>.<CR><LF>\r\n");
                writer.write_all(&out)?;
                out.clear();
                loop {
                    line.clear();
                    if reader.read_until(b'\n', &mut line)? == 0 {
                        return Ok(());
                    }
                    if line == b".\r\n" || line == b".\n" {
                        break;
                    }
                }
                counts.messages.fetch_add(1, Ordering::SeqCst);
                out.extend_from_slice(b"250 OK queued\r\n");
            }
            b"BDAT" => {
                // `BDAT <size> [LAST]`: exactly <size> bytes follow, whatever they contain.
                let text = String::from_utf8_lossy(&line);
                let mut words = text.split_whitespace().skip(1);
                let Some(size) = words.next().and_then(|size| size.parse::<u64>().ok()) else {
                    out.extend_from_slice(b"501 Syntax: BDAT size [LAST]\r\n");
                    continue;
                };
                let last = words.next().is_some_and(|word| word.eq_ignore_ascii_case("LAST"));
                let skipped = std::io::copy(&mut (&mut reader).take(size), &mut std::io::sink())?;
                if skipped < size {
                    return Ok(());
                }
                if last {
                    counts.messages.fetch_add(1, Ordering::SeqCst);
                    out.extend_from_slice(b"250 OK queued\r\n");
                } else {
                    out.extend_from_slice(b"250 OK chunk\r\n");
                }
            }
            b"QUIT" => {
                out.extend_from_slice(b"221 Bye\r\n");
                return writer.write_all(&out);
            }
            _ => out.extend_from_slice(b"502 Command not implemented\r\n"),
        }
    }
}
