//! What the benchmarks' sinks (`smtp_sink`, `http_sink`) share: their command line (`--port N`,
//! `--max-secs N`), a listener on 127.0.0.1 only, and their end — on SIGTERM or SIGINT, or by
//! themselves after `--max-secs` (default 300), they print their `SINK …` counts and exit 0.

use std::io::Write;
use std::net::TcpListener;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// Binds the sink's listener from the command line, arranges its end (printing `report()`),
/// prints `LISTENING 127.0.0.1:PORT` and returns the listener to accept from.
pub fn listen(report: Arc<dyn Fn() -> String + Send + Sync>) -> TcpListener {
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
    let report_and_exit = move || -> ! {
        println!("{}", report());
        let _ = std::io::stdout().flush();
        std::process::exit(0)
    };
    let on_signal = report_and_exit.clone();
    let mut signals = Signals::new([SIGTERM, SIGINT]).expect("signal handlers");
    thread::spawn(move || {
        if signals.forever().next().is_some() {
            on_signal();
        }
    });
    thread::spawn(move || {
        thread::sleep(Duration::from_secs(max_secs));
        report_and_exit();
    });
    println!("LISTENING {addr}");
    let _ = std::io::stdout().flush();
    listener
}
