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

use std::io::Write;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

#[derive(Default)]
struct Counts {
    requests: AtomicUsize,
    connections: AtomicUsize,
}

impl Counts {
    fn report_and_exit(&self) -> ! {
        println!(
            "SINK requests={} connections={}",
            self.requests.load(Ordering::SeqCst),
            self.connections.load(Ordering::SeqCst)
        );
        let _ = std::io::stdout().flush();
        std::process::exit(0)
    }
}

fn main() {
    let mut port: u16 = 0;
    let mut max_secs: u64 = 300;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().unwrap_or_default();
        match arg.as_str() {
            "--port" => port = value.parse().expect("--port takes a number"),
            "--max-secs" => max_secs = value.parse().expect("--max-secs takes a number"),
            other => panic!("unknown argument {other}; use --port N and --max-secs N"),
        }
    }
    // Loopback only, whatever the arguments.
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("the bound address");
    let counts = Arc::new(Counts::default());

    let mut signals = Signals::new([SIGTERM, SIGINT]).expect("signal handlers");
    let on_signal = Arc::clone(&counts);
    thread::spawn(move || {
        if signals.forever().next().is_some() {
            on_signal.report_and_exit();
        }
    });
    let on_timer = Arc::clone(&counts);
    thread::spawn(move || {
        thread::sleep(Duration::from_secs(max_secs));
        on_timer.report_and_exit();
    });

    println!("LISTENING {addr}");
    let _ = std::io::stdout().flush();
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        counts.connections.fetch_add(1, Ordering::SeqCst);
        let counts = Arc::clone(&counts);
        thread::spawn(move || http_receiver::serve_connection(stream, &counts.requests));
    }
}
