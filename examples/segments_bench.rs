//! How long counting a segment takes over a big workspace, through the code path of the API
//! (`contacts::segments::rules_audience` then `Audience::count`, on a pooled read connection).
//!
//! `cargo run --release --example segments_bench -- [--contacts N] [--dir PATH] [--runs N]`
//!
//! Builds a fresh database (migrated like `crier serve` does) in `--dir` (default: a new
//! directory under `$TMPDIR`, removed at the end), with one workspace of `--contacts` live
//! contacts (default 1,000,000) written through the crate's own `store::insert_contact` in one
//! transaction, plus noise the counts must leave out: 5 % deleted contacts, 10 % test-mode
//! contacts and another workspace's contacts. Then it times each segment of the table `--runs`
//! times (default 3) and prints the matches, the first (colder) run and the median.

// A benchmark that cannot set itself up has nothing to measure: it stops with the reason.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crier::clock::{SystemClock, format_timestamp};
use crier::config::Synchronous;
use crier::contacts::fields::{self, NewField};
use crier::contacts::groups::{self, GroupName};
use crier::contacts::segments;
use crier::contacts::store::{self, ContactRow};
use crier::contacts::{EmailState, Language, PhoneState, UnsubscribeVia};
use crier::db::{Db, DbSettings};
use crier::ids::{ContactId, Ids, SystemRandomSource, WorkspaceId};
use crier::scope::WorkspaceScope;
use crier::vocabulary::Mode;

struct Options {
    contacts: usize,
    dir: Option<PathBuf>,
    runs: usize,
}

fn options() -> Options {
    let mut options = Options {
        contacts: 1_000_000,
        dir: None,
        runs: 3,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().expect("every option takes a value");
        match arg.as_str() {
            "--contacts" => options.contacts = value.parse().expect("--contacts N"),
            "--dir" => options.dir = Some(PathBuf::from(value)),
            "--runs" => options.runs = value.parse().expect("--runs N"),
            other => panic!("unknown option {other}"),
        }
    }
    options
}

/// A small deterministic generator (xorshift), so every run builds the same data.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const FIRST_NAMES: &[&str] = &[
    "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Niklaus",
];
const LAST_NAMES: &[&str] = &[
    "Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton",
    "Wirth", "Mbappe", "Eto'o",
];
const TIERS: &[&str] = &["gold", "silver", "bronze", "none"];

fn contact(
    ids: &Ids,
    dice: &mut Dice,
    n: usize,
    workspace_id: &WorkspaceId,
    mode: Mode,
) -> ContactRow {
    let first = FIRST_NAMES[dice.below(FIRST_NAMES.len() as u64) as usize];
    let last = LAST_NAMES[dice.below(LAST_NAMES.len() as u64) as usize];
    let mut custom = serde_json::Map::new();
    if dice.below(10) < 8 {
        custom.insert("tier".into(), json!(TIERS[dice.below(4) as usize]));
    }
    if dice.below(10) < 9 {
        custom.insert("score".into(), json!(dice.below(1000)));
    }
    if dice.below(2) == 0 {
        let day = 1 + dice.below(28);
        let month = 1 + dice.below(12);
        custom.insert(
            "birthday".into(),
            json!(format!("19{:02}-{month:02}-{day:02}", 50 + dice.below(50))),
        );
    }
    custom.insert("vip".into(), json!(dice.below(20) == 0));
    if dice.below(3) == 0 {
        custom.insert(
            "note".into(),
            json!(format!("met at event {}", dice.below(500))),
        );
    }
    // Spread over a year, oldest first.
    let created = chrono::DateTime::from_timestamp(1_735_689_600 + (n as i64) * 31, 0).unwrap();
    let created = format_timestamp(created);
    let unsubscribed = dice.below(20) == 0;
    ContactRow {
        id: ContactId::generate(ids),
        workspace_id: workspace_id.clone(),
        mode,
        name: format!("{first} {last}"),
        first_name: Some(first.to_owned()),
        last_name: Some(last.to_owned()),
        phone: (dice.below(10) < 9).then(|| format!("+2376{n:08}")),
        phone_input: None,
        email: Some(format!("c{n}@example.com")),
        language: Some(if dice.below(3) == 0 {
            Language::Fr
        } else {
            Language::En
        }),
        custom: serde_json::to_string(&custom).unwrap(),
        phone_state: if dice.below(50) == 0 {
            PhoneState::Invalid
        } else {
            PhoneState::Valid
        },
        email_state: if dice.below(100) == 0 {
            EmailState::Bounced
        } else {
            EmailState::Valid
        },
        sms_unsubscribed_at: unsubscribed.then(|| created.clone()),
        sms_unsubscribed_via: unsubscribed.then_some(UnsubscribeVia::Link),
        email_unsubscribed_at: None,
        email_unsubscribed_via: None,
        created_at: created.clone(),
        updated_at: created,
    }
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn millis(duration: Duration) -> String {
    format!("{:.0} ms", duration.as_secs_f64() * 1000.0)
}

fn main() {
    let options = options();
    let temp = options.dir.is_none().then(|| {
        let base = std::env::var_os("TMPDIR").map_or_else(std::env::temp_dir, PathBuf::from);
        base.join(format!("crier-segments-bench-{}", std::process::id()))
    });
    let dir = options.dir.clone().or(temp.clone()).unwrap();
    let settings = DbSettings {
        path: dir.join("crier.db"),
        pool_size: 2,
        busy_timeout: Duration::from_secs(5),
        synchronous: Synchronous::Normal,
    };
    let db = Db::open(&settings).expect("opening the database");
    let clock = Arc::new(SystemClock);
    let ids = Ids::new(clock.clone(), Arc::new(SystemRandomSource::new()));
    let now = chrono::DateTime::from_timestamp(1_767_225_600, 0).unwrap();
    let workspace = WorkspaceId::parse("wsp_bench").unwrap();
    let other = WorkspaceId::parse("wsp_other").unwrap();
    let scope = WorkspaceScope::trusted(&workspace);

    let started = Instant::now();
    let (vip_group, small_group) = db
        .write(|conn| {
            for id in [&workspace, &other] {
                conn.execute(
                    "INSERT INTO workspaces (id, name, created_at) VALUES (?1, 'Bench', ?2)",
                    rusqlite::params![id, format_timestamp(now)],
                )?;
            }
            for (key, field_type, options) in [
                ("tier", "select", Some(TIERS)),
                ("score", "number", None),
                ("birthday", "date", None),
                ("vip", "boolean", None),
                ("note", "text", None),
            ] {
                let input = NewField {
                    key: Some(key.into()),
                    label: Some(key.into()),
                    field_type: Some(field_type.into()),
                    options: options.map(|o| o.iter().map(|s| (*s).to_owned()).collect()),
                };
                fields::create_field(conn, &ids, &scope, input, now)?;
            }
            let group = |name: &str| {
                let input = GroupName {
                    name: Some(name.into()),
                };
                groups::create_group(conn, &ids, &scope, Mode::Live, input, now)
            };
            Ok((group("Newsletter")?, group("Board")?))
        })
        .expect("setting up the workspace");

    let mut dice = Dice(0x9E37_79B9_7F4A_7C15);
    let (mut members, mut board) = (Vec::new(), Vec::new());
    db.write(|conn| {
        for n in 0..options.contacts {
            let row = contact(&ids, &mut dice, n, &workspace, Mode::Live);
            store::insert_contact(conn, &row, None)?;
            if n % 10 == 3 {
                members.push(row.id.clone());
            }
            if n % 1000 == 7 {
                board.push(row.id.clone());
            }
            // Noise the counts must leave out.
            if n % 20 == 0 {
                store::soft_delete_contact(conn, &workspace, Mode::Live, &row.id, "2026-01-01")?;
            }
            if n % 10 == 1 {
                let test = contact(&ids, &mut dice, n, &workspace, Mode::Test);
                store::insert_contact(conn, &test, None)?;
                let stranger = contact(&ids, &mut dice, n, &other, Mode::Live);
                store::insert_contact(conn, &stranger, None)?;
            }
        }
        let day = format_timestamp(now);
        store::add_group_members(conn, &vip_group.id, &members, &day)?;
        store::add_group_members(conn, &small_group.id, &board, &day)?;
        Ok(())
    })
    .expect("inserting contacts");
    let built = started.elapsed();
    db.write(|conn| Ok(conn.execute_batch("ANALYZE")?))
        .expect("ANALYZE");
    let version: String = db
        .read(|conn| Ok(conn.query_row("SELECT sqlite_version()", [], |row| row.get(0))?))
        .unwrap();
    println!(
        "{} live contacts (+ noise) built in {:.1} s; SQLite {version}; {} runs each",
        options.contacts,
        built.as_secs_f64(),
        options.runs
    );

    let cases: Vec<(&str, Value)> = vec![
        (
            "everyone (no condition but mode)",
            json!({"all": [{"field": "created_at", "op": "after", "value": "2000-01-01"}]}),
        ),
        (
            "built-in eq: language = fr",
            json!({"all": [{"field": "language", "op": "eq", "value": "fr"}]}),
        ),
        (
            "built-in eq: email = (one)",
            json!({"all": [{"field": "email", "op": "eq", "value": "c777@example.com"}]}),
        ),
        (
            "contains: name contains \"ove\"",
            json!({"all": [{"field": "name", "op": "contains", "value": "ove"}]}),
        ),
        (
            "custom number between 100 and 200",
            json!({"all": [{"field": "custom.score", "op": "between", "value": [100, 200]}]}),
        ),
        (
            "custom select eq gold",
            json!({"all": [{"field": "custom.tier", "op": "eq", "value": "gold"}]}),
        ),
        (
            "group member (10 % of contacts)",
            json!({"all": [{"field": "group", "op": "eq", "value": vip_group.id.as_str()}]}),
        ),
        (
            "group member (0.1 %)",
            json!({"all": [{"field": "group", "op": "in", "value": [small_group.id.as_str()]}]}),
        ),
        (
            "nested any/all (5 conditions)",
            json!({"all": [
                {"field": "sms_unsubscribed", "op": "eq", "value": false},
                {"any": [
                    {"all": [
                        {"field": "custom.tier", "op": "in", "value": ["gold", "silver"]},
                        {"field": "custom.score", "op": "gte", "value": 500}
                    ]},
                    {"field": "group", "op": "eq", "value": vip_group.id.as_str()},
                    {"field": "created_at", "op": "between", "value": ["2025-03-01", "2025-03-31"]}
                ]}
            ]}),
        ),
    ];

    println!();
    println!("| segment | matches | first run | median |");
    println!("|---|---:|---:|---:|");
    let mut worst = Duration::ZERO;
    for (label, rules) in &cases {
        let mut times = Vec::with_capacity(options.runs);
        let mut count = 0;
        for _ in 0..options.runs.max(1) {
            let start = Instant::now();
            count = db
                .read(|conn| segments::rules_audience(conn, &scope, Mode::Live, rules)?.count(conn))
                .expect("counting");
            times.push(start.elapsed());
        }
        let first = times[0];
        let middle = median(times);
        worst = worst.max(middle);
        println!(
            "| {label} | {count} | {} | {} |",
            millis(first),
            millis(middle)
        );
    }
    println!();
    println!("slowest median: {}", millis(worst));

    // What reading custom values costs, in plain SQL over the same rows: no rules, the JSON text
    // as stored (parsed per contact), and its JSONB copy (what segment conditions read).
    let base = "SELECT count(*) FROM contacts c WHERE c.workspace_id = ?1 AND c.mode = 'live' \
                AND c.deleted_at IS NULL";
    println!();
    println!("| plain SQL | matches | median |");
    println!("|---|---:|---:|");
    for (label, tail) in [
        ("no condition", ""),
        (
            "json_extract(custom) between",
            " AND json_extract(c.custom, '$.\"score\"') BETWEEN 100 AND 200",
        ),
        (
            "json_extract(custom_jsonb) between",
            " AND json_extract(c.custom_jsonb, '$.\"score\"') BETWEEN 100 AND 200",
        ),
    ] {
        let sql = format!("{base}{tail}");
        let mut times = Vec::new();
        let mut count: i64 = 0;
        for _ in 0..options.runs.max(1) {
            let start = Instant::now();
            count = db
                .read(|conn| Ok(conn.query_row(&sql, [workspace.as_str()], |row| row.get(0))?))
                .expect("counting");
            times.push(start.elapsed());
        }
        println!("| {label} | {count} | {} |", millis(median(times)));
    }
    drop(db);
    if let Some(temp) = temp {
        std::fs::remove_dir_all(temp).expect("removing the benchmark's directory");
    }
}
