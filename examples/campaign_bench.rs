//! Campaign launch benchmark: the real `crier serve` binary launches an SMS campaign to N
//! contacts while clients keep sending `POST /v1/messages`, then dispatches it to the `log`
//! provider; prints one table.
//!
//! `cargo build --release --bin crier --example campaign_bench &&
//!  target/release/examples/campaign_bench [--sizes 10000,100000,1000000] [--bin PATH] [--no-drain]
//!  [--no-floor]`
//!
//! For each size, in a fresh data directory: `crier migrate` and `crier admin` make a user, a
//! key and a funded wallet; the contacts are written straight through the crate's own
//! `contacts::store::insert_contact` (an import is measured by bench/import.sh); then the server
//! starts with no dispatchers (`CRIER_DISPATCH_WORKERS=0`), a personalised campaign (first name
//! and opt-out line) is estimated and launched while 4 closed-loop senders run, and the fan-out
//! is timed from the launch request to `launch.fanout_done` (polled every 50 ms), with the
//! server's peak VmRSS. Then the server restarts with its default dispatchers and the drain to
//! the `log` provider is timed until the campaign is `completed` (`--no-drain` skips it).
//! Targets (issue 14): 1,000,000 from launch to all queued in < 10 s, RSS < 150 MB, send p99 <
//! 100 ms during the fan-out.
//!
//! Before the server starts, on a copy of the same database, the "rows alone" columns time the
//! floor under any fan-out that stores each message as a row: the fan-out's own writes
//! (`CampaignBatch`, `ReservationInserts`) storing one message and its reservation per contact,
//! in the fan-out's parts and rounds, with nothing else running — no rendering, pricing, checks
//! or sends (`--no-floor` skips them).

// A benchmark that cannot set itself up has nothing to measure: it stops with the reason.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crier::billing::Channel;
use crier::billing::pools::Share;
use crier::billing::store::{ReservationInserts, ReservationRow};
use crier::campaigns::runner::{FANOUT_PART, FANOUT_PARTS_PER_ROUND};
use crier::clock::{Clock, SystemClock, format_timestamp};
use crier::config::Synchronous;
use crier::contacts::store::{self, ContactRow};
use crier::contacts::{EmailState, PhoneState};
use crier::db::{Db, DbSettings};
use crier::ids::{CampaignId, ContactId, Ids, MessageId, SystemRandomSource, WorkspaceId};
use crier::messages::segments;
use crier::messages::{CampaignBatch, CampaignMessage};
use crier::scope::WorkspaceScope;
use crier::vocabulary::Mode;

const FIRST_NAMES: &[&str] = &[
    "Ada",
    "Amina",
    "Jean-Baptiste",
    "Ngozi",
    "Marie",
    "Emmanuel",
    "Fatou",
    "Maximilien-Alexandre",
];
/// Closed-loop senders during the fan-out (`SENDERS` in the environment, default 4).
fn senders() -> usize {
    std::env::var("SENDERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(4)
}

struct Options {
    sizes: Vec<usize>,
    bin: PathBuf,
    /// Whether to time the drain to `log` after the fan-out (`--no-drain` skips it).
    drain: bool,
    /// Whether to time the rows alone first (`--no-floor` skips it).
    floor: bool,
}

fn options() -> Options {
    let mut sizes = vec![10_000, 100_000, 1_000_000];
    let mut bin = PathBuf::from("target/release/crier");
    let mut drain = true;
    let mut floor = true;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--sizes" => {
                sizes = args
                    .next()
                    .expect("--sizes N,N")
                    .split(',')
                    .map(|n| n.parse().expect("a size"))
                    .collect();
            }
            "--bin" => bin = PathBuf::from(args.next().expect("--bin PATH")),
            "--no-drain" => drain = false,
            "--no-floor" => floor = false,
            other => panic!("unknown argument {other}"),
        }
    }
    Options {
        sizes,
        bin,
        drain,
        floor,
    }
}

fn admin(bin: &Path, data: &Path, args: &[&str], stdin: &str) -> Value {
    use std::io::Write;
    let mut child = Command::new(bin)
        .arg("admin")
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).unwrap_or(Value::Null)
}

/// The database of data directory `data`, opened as the server opens it (its default
/// `synchronous=NORMAL`).
fn open_db(data: &Path) -> Db {
    Db::open(&DbSettings {
        path: data.join("crier.db"),
        pool_size: 1,
        busy_timeout: Duration::from_secs(5),
        synchronous: Synchronous::Normal,
    })
    .unwrap()
}

fn write_contacts(data: &Path, workspace: &WorkspaceId, count: usize) {
    let db = open_db(data);
    let ids = Ids::new(Arc::new(SystemClock), Arc::new(SystemRandomSource::new()));
    let now = format_timestamp(SystemClock.now());
    db.write(|conn| {
        for n in 0..count {
            let first = FIRST_NAMES[n % FIRST_NAMES.len()];
            store::insert_contact(
                conn,
                &ContactRow {
                    id: ContactId::generate(&ids),
                    workspace_id: workspace.clone(),
                    mode: Mode::Live,
                    name: format!("{first} Person{n}"),
                    first_name: Some(first.to_owned()),
                    last_name: Some(format!("Person{n}")),
                    phone: Some(format!("+2376{n:08}")),
                    phone_input: None,
                    email: None,
                    language: None,
                    custom: "{}".to_owned(),
                    phone_state: PhoneState::Valid,
                    email_state: EmailState::Valid,
                    sms_unsubscribed_at: None,
                    sms_unsubscribed_via: None,
                    email_unsubscribed_at: None,
                    email_unsubscribed_via: None,
                    created_at: now.clone(),
                    updated_at: now.clone(),
                },
                None,
            )?;
        }
        Ok(())
    })
    .unwrap();
}

/// The rows alone: on a copy of `data`'s database, the fan-out's own writes (`CampaignBatch`,
/// `ReservationInserts`) store one message (a one-segment marketing SMS as long as the
/// campaign's) and, with `reservations`, its reservation for every contact, in parts of
/// `FANOUT_PART` and rounds of `FANOUT_PARTS_PER_ROUND` parts as the fan-out does; in seconds,
/// the contacts read first.
fn time_rows_alone(data: &Path, workspace: &WorkspaceId, reservations: bool) -> f64 {
    let copy = data.with_extension("floor");
    let _ = std::fs::remove_dir_all(&copy);
    std::fs::create_dir_all(&copy).unwrap();
    std::fs::copy(data.join("crier.db"), copy.join("crier.db")).unwrap();
    let db = open_db(&copy);
    let contacts: Vec<(String, String)> = db
        .read(|conn| {
            let mut statement = conn.prepare("SELECT id, phone FROM contacts ORDER BY rowid")?;
            let rows = statement
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
        .unwrap();
    let ids = Ids::new(Arc::new(SystemClock), Arc::new(SystemRandomSource::new()));
    let now = format_timestamp(SystemClock.now());
    let month = format!("{}-01T00:00:00.000000Z", &now[..7]);
    let text = "Hello Ada, our new branch opens near you on Saturday.\nSTOP: \
                http://127.0.0.1:8080/u/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let segmentation = segments::segment(text);
    let scope = WorkspaceScope::trusted(workspace);
    let campaign = CampaignId::generate(&ids);
    let started = Instant::now();
    for round in contacts.chunks(FANOUT_PART * FANOUT_PARTS_PER_ROUND) {
        db.write_parts(round.chunks(FANOUT_PART), |conn, part| {
            let mut messages = CampaignBatch::new(conn, &campaign)?;
            let mut reserved = ReservationInserts::new(conn)?;
            for (contact, phone) in part {
                let id = MessageId::generate(&ids);
                let contact = ContactId::parse(contact).expect("a contact id");
                let share = Share {
                    units: 1,
                    included_units: 0,
                    charge_minor: 25,
                };
                messages.create(
                    id.clone(),
                    CampaignMessage {
                        scope: &scope,
                        mode: Mode::Live,
                        api_key_id: None,
                        campaign_id: &campaign,
                        contact_id: &contact,
                        channel: Channel::Sms,
                        to: phone,
                        sender: Some("CRIER"),
                        from_name: None,
                        subject: None,
                        text: Some(text.to_owned()),
                        html: None,
                        segmentation: Some(&segmentation),
                        share,
                        currency: "XAF",
                        route: Some("default=log".to_owned()),
                    },
                    &now,
                )?;
                if reservations {
                    reserved.insert(
                        &ReservationRow {
                            reference: id.as_str().to_owned(),
                            workspace_id: workspace.clone(),
                            channel: "sms".to_owned(),
                            units: 1,
                            included_units: 0,
                            billable_units: 1,
                            charge_minor: 25,
                            currency: "XAF".to_owned(),
                            quota_period_start: month.clone(),
                            billing_month_start: month.clone(),
                        },
                        &now,
                    )?;
                }
            }
            messages.finish()?;
            Ok(true)
        })
        .unwrap();
    }
    let took = started.elapsed().as_secs_f64();
    drop(db);
    let _ = std::fs::remove_dir_all(&copy);
    took
}

/// Starts `crier serve`; returns the child and its address (from its first log lines).
fn serve(bin: &Path, data: &Path, dispatchers: Option<&str>) -> (Child, String) {
    let mut command = Command::new(bin);
    command
        .args(["serve", "--addr", "127.0.0.1:0", "--log-format", "json"])
        .arg("--data-dir")
        .arg(data)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // The concurrent senders measure the server, not the per-key limit.
        .env("CRIER_API_RATE_LIMIT", "0");
    if let Some(workers) = dispatchers {
        command.env("CRIER_DISPATCH_WORKERS", workers);
    }
    let mut child = command.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    // BENCH_LOG=path keeps the server's log lines (with CRIER_LOG_LEVEL=debug: each chunk).
    let mut keep = std::env::var_os("BENCH_LOG").map(|path| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap()
    });
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(file) = keep.as_mut() {
                use std::io::Write;
                let _ = writeln!(file, "{line}");
            }
            if !sent {
                let entry: Value = serde_json::from_str(&line).unwrap_or_default();
                if entry["msg"] == "listening" {
                    let _ = tx.send(entry["addr"].as_str().unwrap_or_default().to_owned());
                    sent = true;
                }
            }
        }
    });
    let addr = rx.recv_timeout(Duration::from_secs(60)).unwrap();
    (child, format!("http://{addr}"))
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(600)))
        .build()
        .into()
}

fn call(agent: &ureq::Agent, method: &str, url: &str, key: &str, body: Option<Value>) -> Value {
    let auth = format!("Bearer {key}");
    let mut response = match body {
        Some(body) => agent
            .post(url)
            .header("Authorization", &auth)
            .header("Content-Type", "application/json")
            .header(
                "Idempotency-Key",
                &format!(
                    "bench-{}",
                    SystemClock.now().timestamp_nanos_opt().unwrap_or(0)
                ),
            )
            .send(body.to_string())
            .unwrap(),
        None if method == "GET" => agent
            .get(url)
            .header("Authorization", &auth)
            .call()
            .unwrap(),
        None => unreachable!(),
    };
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    assert!(status < 300, "{method} {url}: {status} {value}");
    value
}

fn vm_rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    values[((values.len() as f64 * p) as usize).min(values.len() - 1)]
}

struct Row {
    size: usize,
    /// The rows alone (messages and reservations; messages only), seconds.
    floor_s: Option<(f64, f64)>,
    estimate_ms: f64,
    launch_ms: f64,
    fanout_s: f64,
    rss_mb: f64,
    sends: usize,
    p50: f64,
    p99: f64,
    drain_s: Option<f64>,
}

fn run(bin: &Path, size: usize, options: &Options) -> Row {
    let base = std::env::var_os("TMPDIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let data = base.join(format!(
        "crier-campaign-bench-{}-{size}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&data);
    let migrated = Command::new(bin)
        .args(["migrate", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(migrated.status.success(), "{migrated:?}");
    admin(
        bin,
        &data,
        &[
            "create-user",
            "--email",
            "bench@example.com",
            "--password-stdin",
            "--workspace",
            "Bench",
            "--json",
        ],
        "bench password, long enough\n",
    );
    let key_info = admin(
        bin,
        &data,
        &[
            "create-api-key",
            "--workspace",
            "Bench",
            "--name",
            "bench",
            "--scopes",
            "campaigns:read,campaigns:write,messages:send",
            "--mode",
            "live",
            "--json",
        ],
        "",
    );
    let key = key_info["key"].as_str().unwrap().to_owned();
    let workspace = WorkspaceId::parse(key_info["workspace_id"].as_str().unwrap()).unwrap();
    admin(
        bin,
        &data,
        &[
            "adjust-wallet",
            "--workspace",
            workspace.as_str(),
            "--amount-minor",
            "100000000000",
            "--reason",
            "bench",
        ],
        "",
    );
    write_contacts(&data, &workspace, size);
    let floor_s = options.floor.then(|| {
        (
            time_rows_alone(&data, &workspace, true),
            time_rows_alone(&data, &workspace, false),
        )
    });

    let (server, base_url) = serve(bin, &data, Some("0"));
    let agent = agent();
    let campaign = call(
        &agent,
        "POST",
        &format!("{base_url}/v1/campaigns"),
        &key,
        Some(
            json!({"name": "Bench", "channel": "sms", "audience": {"all": true}, "opt_out_line": true,
                    "text": "Hello {{ contact.first_name | default(\"client\") }}, our new branch opens near you on Saturday."}),
        ),
    );
    let id = campaign["id"].as_str().unwrap().to_owned();
    let started = Instant::now();
    call(
        &agent,
        "POST",
        &format!("{base_url}/v1/campaigns/{id}/estimate"),
        &key,
        Some(json!({})),
    );
    let estimate_ms = started.elapsed().as_secs_f64() * 1e3;

    let stop_sending = Arc::new(AtomicBool::new(false));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let senders: Vec<_> = (0..senders())
        .map(|_| {
            let (stop_sending, latencies) = (Arc::clone(&stop_sending), Arc::clone(&latencies));
            let (url, key) = (format!("{base_url}/v1/messages"), key.clone());
            std::thread::spawn(move || {
                let agent = self::agent();
                while !stop_sending.load(Ordering::Relaxed) {
                    let sent = Instant::now();
                    call(&agent, "POST", &url, &key, Some(json!({"channel": "sms", "to": "+237677123456", "text": "Your code is 482913."})));
                    latencies.lock().unwrap().push(sent.elapsed().as_secs_f64() * 1e3);
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let baseline = vm_rss_kb(server.id());
    let mut peak = baseline;
    latencies.lock().unwrap().clear();
    let launched_at = Instant::now();
    call(
        &agent,
        "POST",
        &format!("{base_url}/v1/campaigns/{id}/launch"),
        &key,
        Some(json!({})),
    );
    let launch_ms = launched_at.elapsed().as_secs_f64() * 1e3;
    loop {
        peak = peak.max(vm_rss_kb(server.id()));
        let shown = call(
            &agent,
            "GET",
            &format!("{base_url}/v1/campaigns/{id}"),
            &key,
            None,
        );
        if shown["launch"]["fanout_done"] == true {
            assert_eq!(shown["launch"]["messages_created"], size);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let fanout_s = launched_at.elapsed().as_secs_f64();
    stop_sending.store(true, Ordering::Relaxed);
    for sender in senders {
        sender.join().unwrap();
    }
    stop(server);
    let mut latencies = latencies.lock().unwrap().clone();
    let (p50, p99) = (
        percentile(&mut latencies, 0.5),
        percentile(&mut latencies, 0.99),
    );

    let drain_s = options
        .drain
        .then(|| time_drain(bin, &data, &agent, &key, &id));
    let _ = std::fs::remove_dir_all(&data);
    Row {
        size,
        floor_s,
        estimate_ms,
        launch_ms,
        fanout_s,
        rss_mb: peak as f64 * 1024.0 / 1e6,
        sends: latencies.len(),
        p50,
        p99,
        drain_s,
    }
}

/// Restarts the server with its dispatchers and times the drain of campaign `id` to `log`,
/// until it is `completed`; in seconds.
fn time_drain(bin: &Path, data: &Path, agent: &ureq::Agent, key: &str, id: &str) -> f64 {
    let (server, base_url) = serve(bin, data, None);
    let drain = Instant::now();
    loop {
        let shown = call(
            agent,
            "GET",
            &format!("{base_url}/v1/campaigns/{id}"),
            key,
            None,
        );
        if shown["status"] != "running" {
            assert_eq!(shown["status"], "completed", "{shown}");
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let drain_s = drain.elapsed().as_secs_f64();
    stop(server);
    drain_s
}

fn main() {
    let options = options();
    let mut rows = Vec::new();
    for &size in &options.sizes {
        eprintln!("campaign to {size} contacts…");
        rows.push(run(&options.bin, size, &options));
    }
    println!(
        "crier campaign bench: {}, {} CPUs, {} closed-loop senders during the fan-out",
        format_timestamp(SystemClock.now()),
        std::thread::available_parallelism().map_or(0, usize::from),
        senders()
    );
    println!(
        "| recipients | rows alone: messages + reservations / messages | estimate | launch request | launch → all queued | messages/s | peak RSS | sends p50 / p99 (n) | drain to log |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        println!(
            "| {} | {} | {:.0} ms | {:.0} ms | {:.1} s | {:.0} | {:.0} MB | {:.1} / {:.1} ms ({}) | {} |",
            row.size,
            row.floor_s.map_or_else(
                || "not run".to_owned(),
                |(both, messages)| format!("{both:.1} s / {messages:.1} s")
            ),
            row.estimate_ms,
            row.launch_ms,
            row.fanout_s,
            row.size as f64 / row.fanout_s,
            row.rss_mb,
            row.p50,
            row.p99,
            row.sends,
            row.drain_s
                .map_or_else(|| "not run".to_owned(), |s| format!("{s:.1} s"))
        );
    }
}
