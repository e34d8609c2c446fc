//! A minimal HTTP sink on 127.0.0.1 for `bench/dispatch.sh` (`WEBHOOKS=1`): the webhook endpoint
//! the benchmark registers, answering every request 200 at once and counting them.
//!
//! `cargo run --release --example http_sink -- [--port N] [--max-secs N]`
//!
//! - Listens on 127.0.0.1 only (port 0, the default, picks a free one) and prints
//!   `LISTENING 127.0.0.1:PORT` once it accepts connections.
//! - On SIGTERM or SIGINT, or by itself after `--max-secs` (default 300), it prints
//!   `SINK requests=N connections=N` and exits 0.
//!
//! One thread per connection; this is a benchmark tool, not a web server.

// A sink that cannot set itself up has nothing to measure: it stops with the reason.
#![allow(clippy::expect_used)]

#[path = "support/http_receiver.rs"]
mod http_receiver;
#[path = "support/sink.rs"]
mod sink;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

#[derive(Default)]
struct Counts {
    requests: AtomicUsize,
    connections: AtomicUsize,
}

fn main() {
    let counts = Arc::new(Counts::default());
    let reported = Arc::clone(&counts);
    let listener = sink::listen(Arc::new(move || {
        format!(
            "SINK requests={} connections={}",
            reported.requests.load(Ordering::SeqCst),
            reported.connections.load(Ordering::SeqCst)
        )
    }));
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        counts.connections.fetch_add(1, Ordering::SeqCst);
        let counts = Arc::clone(&counts);
        thread::spawn(move || http_receiver::serve_connection(stream, &counts.requests));
    }
}
