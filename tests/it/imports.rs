//! CSV imports of contacts over HTTP: the awkward files of real life (BOM, Windows-1252 from
//! Excel, semicolons, quoted newlines, repeated rows, blank lines, a header alone, a flood of bad
//! rows), every bad option refused with nothing kept, progress and rejects, cancel and rollback,
//! and the walls between workspaces and modes.

use std::time::Duration;

use serde_json::{Value, json};

use crate::auth_fixtures::{Caller, count, create_key, second_tenant, setup};
use crate::harness::{TestResponse, TestServer, wait_for_value};

const BOTH: &[&str] = &["contacts:read", "contacts:write"];

impl Caller<'_> {
    /// Sends `csv` as the body of an import with the query string `options`.
    fn import(&self, options: &str, csv: &[u8]) -> TestResponse {
        self.upload(options, "text/csv", csv)
    }

    fn upload(&self, options: &str, content_type: &str, csv: &[u8]) -> TestResponse {
        let authorization = format!("Bearer {}", self.key);
        let path = if options.is_empty() {
            "/v1/contacts/imports".to_owned()
        } else {
            format!("/v1/contacts/imports?{options}")
        };
        self.server.request(
            "POST",
            &path,
            &[
                ("Authorization", authorization.as_str()),
                ("Content-Type", content_type),
            ],
            csv,
        )
    }

    /// Imports `csv`, waits for the job to end, and returns it.
    fn import_to_end(&self, options: &str, csv: &[u8]) -> Value {
        let response = self.import(options, csv);
        assert_eq!(response.status, 202, "{}", response.text());
        let job = response.json();
        assert_eq!(job["status"], "queued");
        self.wait_for_end(job["id"].as_str().unwrap())
    }

    fn wait_for_end(&self, id: &str) -> Value {
        let path = format!("/v1/contacts/imports/{id}");
        let status = wait_for_value(
            "the import ends",
            Duration::from_secs(300),
            || {
                self.get(&path).json()["status"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            },
            |status| status != "queued" && status != "running",
        );
        assert_eq!(status, "completed");
        self.get(&path).json()
    }

    fn rejects(&self, id: &str) -> String {
        let response = self.get(&format!("/v1/contacts/imports/{id}/rejects"));
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(
            response.header("Content-Type"),
            Some("text/csv; charset=utf-8")
        );
        response.text()
    }
}

fn caller<'s>(server: &'s TestServer, console: &crate::auth_fixtures::Console<'s>) -> Caller<'s> {
    let (_, key) = create_key(console, BOTH, "live");
    Caller { server, key }
}

fn counts(job: &Value) -> [i64; 5] {
    ["rows_read", "created", "updated", "unchanged", "rejected"].map(|name| {
        job[name]
            .as_i64()
            .unwrap_or_else(|| panic!("{name} in {job}"))
    })
}

fn files_in_imports_dir(server: &TestServer) -> usize {
    let dir = server.db_path().parent().unwrap().join("imports");
    std::fs::read_dir(dir).map_or(0, |entries| entries.count())
}

/// `+2376770000nn`: a valid Cameroonian mobile number per `n`.
fn phone(n: usize) -> String {
    format!("+23767{n:07}")
}

#[test]
fn a_utf8_file_with_a_bom_quoted_newlines_repeats_and_blank_lines() {
    let server = TestServer::start();
    let owner = setup(&server);
    let api = caller(&server, &owner);
    let csv = "\u{feff}Name,Phone,Email,Note\r\n\
               Hélène Dupont,677 12 34 56,helene@example.com,\"two\r\nlines\"\r\n\
               \r\n\
               Zoë Martin,+237677123457,,\r\n\
               Hélène Dupont,677 12 34 56,helene@example.com,again\r\n\
               No Address,,,\r\n\
               Bad Phone,12,bad@,x\r\n";
    let job = api.import_to_end("", csv.as_bytes());
    assert_eq!(counts(&job), [5, 2, 0, 1, 2], "{job}");
    assert_eq!(job["charset"], "utf-8");
    assert_eq!(job["delimiter"], ",");
    assert_eq!(job["import_mode"], "create");
    assert_eq!(job["ignored_columns"], json!(["Note"]));
    assert_eq!(
        job["columns"][1],
        json!({"name": "Phone", "field": "phone"})
    );
    assert_eq!(job["bytes_received"], csv.len());
    assert_eq!(job["bytes_read"], csv.len());
    assert!(job["started_at"].is_string() && job["finished_at"].is_string());
    let names: Vec<String> = server
        .db()
        .prepare("SELECT name FROM contacts ORDER BY rowid")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(names, ["Hélène Dupont", "Zoë Martin"]);
    let id = job["id"].as_str().unwrap();
    let rejects = api.rejects(id);
    let mut reader = csv::Reader::from_reader(rejects.as_bytes());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        ["row", "reason", "Name", "Phone", "Email", "Note"]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(&rows[0][0], "4");
    assert!(
        rows[0][1].contains("phone: a contact needs a phone or an email"),
        "{rows:?}"
    );
    assert_eq!(&rows[1][0], "5");
    assert!(
        rows[1][1].contains("phone:") && rows[1][1].contains("email:"),
        "{rows:?}"
    );
    assert_eq!(
        rows[1].iter().skip(2).collect::<Vec<_>>(),
        ["Bad Phone", "12", "bad@", "x"]
    );
    // The spooled file went with the job's end.
    assert_eq!(files_in_imports_dir(&server), 0);
    // Listed, newest first.
    let listed = api.get("/v1/contacts/imports").json();
    assert_eq!(listed["data"][0]["id"], id);
}

#[test]
fn a_windows_1252_file_with_semicolons_from_excel_keeps_its_accents() {
    let server = TestServer::start();
    let owner = setup(&server);
    let api = caller(&server, &owner);
    let field = api.post(
        "/v1/contact-fields",
        json!({"key": "city", "label": "City", "type": "text"}),
    );
    assert_eq!(field.status, 201, "{}", field.text());
    // "Prénom;Nom;Téléphone;City" then French names and a euro sign, in Windows-1252.
    let mut csv: Vec<u8> = b"first_name;last_name;phone;City\r\n".to_vec();
    csv.extend_from_slice(b"H\xe9l\xe8ne;Dupont;677123456;Tr\xe9sor \x80\r\n");
    csv.extend_from_slice(b"Zo\xeb;No\xebl;677123457;\r\n");
    let job = api.import_to_end("", &csv);
    assert_eq!(job["charset"], "windows-1252");
    assert_eq!(job["delimiter"], ";");
    assert_eq!(counts(&job), [2, 2, 0, 0, 0], "{job}");
    let contacts = api.get("/v1/contacts").json();
    let zoe = &contacts["data"][0];
    assert_eq!(zoe["name"], "Zoë Noël");
    assert_eq!(zoe["first_name"], "Zoë");
    let helene = &contacts["data"][1];
    assert_eq!(helene["name"], "Hélène Dupont");
    assert_eq!(helene["custom"], json!({"city": "Trésor €"}));
    assert_eq!(helene["phone"], "+237677123456");
}

#[test]
fn a_header_alone_completes_with_no_rows_and_an_empty_file_is_refused() {
    let server = TestServer::start();
    let owner = setup(&server);
    let api = caller(&server, &owner);
    let job = api.import_to_end("", b"name,phone\n");
    assert_eq!(counts(&job), [0, 0, 0, 0, 0]);
    let empty = api.import("", b"");
    let fields = empty.assert_error(422, "validation_failed")["error"]["details"]["fields"].clone();
    assert!(fields["body"].is_string(), "{fields}");
}

#[test]
fn a_hundred_thousand_invalid_rows_are_all_rejected_with_reasons() {
    let server = TestServer::start();
    let owner = setup(&server);
    let api = caller(&server, &owner);
    let mut csv = String::from("name,email\n");
    for n in 0..100_000 {
        csv.push_str(&format!("Person {n},not-an-email-{n}\n"));
    }
    let job = api.import_to_end("", csv.as_bytes());
    assert_eq!(counts(&job), [100_000, 0, 0, 0, 100_000]);
    assert_eq!(count(&server, "SELECT count(*) FROM contacts"), 0);
    let rejects = api.rejects(job["id"].as_str().unwrap());
    assert_eq!(rejects.lines().count(), 100_001);
    assert!(
        rejects
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("1,email: must be an email")
    );
}

#[test]
fn upsert_and_update_match_by_phone_then_email_and_fill_the_group() {
    let server = TestServer::start();
    let owner = setup(&server);
    let api = caller(&server, &owner);
    let existing = api.post(
        "/v1/contacts",
        json!({"name": "Ada Lovelace", "phone": "677000001", "email": "ada@example.com"}),
    );
    assert_eq!(existing.status, 201, "{}", existing.text());
    let existing_id = existing.json()["id"].as_str().unwrap().to_owned();
    let group = api.post("/v1/groups", json!({"name": "Imported"})).json();
    let group_id = group["id"].as_str().unwrap();
    let csv = "Full name,Tel,Mail,Lang\n\
               Ada King,,ada@example.com,FR\n\
               Bob New,677000002,,en\n\
               Bob New,677000002,,en\n";
    let options = format!(
        "mode=upsert&group={group_id}&map.Full%20name=name&map.Tel=phone&map.Mail=email&map.Lang=language"
    );
    let job = api.import_to_end(&options, csv.as_bytes());
    assert_eq!(counts(&job), [3, 1, 1, 1, 0], "{job}");
    let ada = api.get(&format!("/v1/contacts/{existing_id}")).json();
    assert_eq!(ada["name"], "Ada King");
    assert_eq!(ada["phone"], "+237677000001");
    assert_eq!(ada["language"], "fr");
    let members = api.get(&format!("/v1/contacts?group={group_id}")).json();
    assert_eq!(members["data"].as_array().unwrap().len(), 2);

    // update: only existing contacts; the others are rejected by name.
    let csv = "name,phone\nAda Byron,677000001\nCarol Unknown,677000003\n";
    let job = api.import_to_end("mode=update", csv.as_bytes());
    assert_eq!(counts(&job), [2, 0, 1, 0, 1], "{job}");
    let rejects = api.rejects(job["id"].as_str().unwrap());
    assert!(
        rejects.contains("no contact has this phone or email"),
        "{rejects}"
    );
    // create: an existing contact is refused, naming it.
    let job = api.import_to_end("mode=create", csv.as_bytes());
    assert_eq!(counts(&job), [2, 1, 0, 0, 1], "{job}");
    let rejects = api.rejects(job["id"].as_str().unwrap());
    assert!(
        rejects.contains(&format!("phone: the contact {existing_id} already has")),
        "{rejects}"
    );
}

/// An import inserts first and looks addresses up only when one is taken: a row whose phone is
/// one contact's and email another's is still refused naming both, with neither changed, and a
/// person erased before comes back unsubscribed, as through the API.
#[test]
fn a_row_of_two_contacts_is_refused_and_an_erased_person_comes_back_unsubscribed() {
    let server = TestServer::start();
    let owner = setup(&server);
    let api = caller(&server, &owner);
    let ada = api.post("/v1/contacts", json!({"name": "Ada", "phone": "677000001"}));
    assert_eq!(ada.status, 201, "{}", ada.text());
    let ada = ada.json()["id"].as_str().unwrap().to_owned();
    let bob = api.post(
        "/v1/contacts",
        json!({"name": "Bob", "email": "bob@example.com"}),
    );
    assert_eq!(bob.status, 201, "{}", bob.text());
    let bob = bob.json()["id"].as_str().unwrap().to_owned();
    let eve = api.post(
        "/v1/contacts",
        json!({"name": "Eve", "phone": "677000009", "email": "eve@example.com"}),
    );
    assert_eq!(eve.status, 201, "{}", eve.text());
    let eve = eve.json()["id"].as_str().unwrap().to_owned();
    let erased = api.call("POST", &format!("/v1/contacts/{eve}/erase"), None);
    assert_eq!(erased.status, 200, "{}", erased.text());
    let erased_at = erased.json()["erased_at"].clone();

    let csv = "name,phone,email\n\
               Mixed,677000001,bob@example.com\n\
               Eve Again,677000009,eve@example.com\n";
    for mode in ["create", "upsert"] {
        let before = count(
            &server,
            "SELECT count(*) FROM contacts WHERE deleted_at IS NULL",
        );
        let job = api.import_to_end(&format!("mode={mode}"), csv.as_bytes());
        let rejects = api.rejects(job["id"].as_str().unwrap());
        assert!(
            rejects.contains(&format!("the phone is {ada}'s and the email {bob}'s")),
            "{mode}: {rejects}"
        );
        assert_eq!(
            api.get(&format!("/v1/contacts/{ada}")).json()["name"],
            "Ada"
        );
        assert_eq!(
            api.get(&format!("/v1/contacts/{bob}")).json()["name"],
            "Bob"
        );
        if mode == "create" {
            assert_eq!(counts(&job), [2, 1, 0, 0, 1], "{job}");
            assert_eq!(
                count(
                    &server,
                    "SELECT count(*) FROM contacts WHERE deleted_at IS NULL"
                ),
                before + 1
            );
        } else {
            // Eve's row now matches the contact the first import made of her.
            assert_eq!(counts(&job), [2, 0, 0, 1, 1], "{job}");
        }
    }
    let again = api.get("/v1/contacts?q=eve%40example.com").json();
    let again = &again["data"][0];
    assert_eq!(again["name"], "Eve Again");
    assert_eq!(again["sms_unsubscribed_at"], erased_at, "{again}");
    assert_eq!(again["email_unsubscribed_at"], erased_at, "{again}");
}

#[test]
fn every_bad_option_is_named_and_nothing_is_kept() {
    let server = TestServer::start();
    let owner = setup(&server);
    let api = caller(&server, &owner);
    let other = second_tenant(&owner, "globex@example.com");
    let foreign_group = other.post("/v1/groups", &json!({"name": "Theirs"})).json();
    let csv = b"Name,Phone\nAda,677000001\n";
    let bad = format!(
        "mode=merge&charset=koi8-r&delimiter=%7C&group={}&map.Missing=phone&map.Name=shoe_size&colour=blue",
        foreign_group["id"].as_str().unwrap()
    );
    let response = api.import(&bad, csv);
    let envelope = response.assert_error(422, "validation_failed");
    let fields = envelope["error"]["details"]["fields"].as_object().unwrap();
    for name in ["mode", "charset", "delimiter", "group", "colour"] {
        assert!(fields.contains_key(name), "{name} not in {fields:?}");
    }
    // Once the charset and delimiter are good, the mapping is checked against the header, in
    // the same answer as the other bad options (a bad mode too).
    let response = api.import(
        "mode=merge&map.Missing=phone&map.Name=shoe_size&map.Phone=custom.nope&group=grp_unknown",
        csv,
    );
    let envelope = response.assert_error(422, "validation_failed");
    let fields = envelope["error"]["details"]["fields"].as_object().unwrap();
    for name in ["mode", "map.Missing", "map.Name", "map.Phone", "group"] {
        assert!(fields.contains_key(name), "{name} not in {fields:?}");
    }
    // A file whose columns give neither phone nor email.
    let response = api.import("", b"name,city\nAda,Douala\n");
    let envelope = response.assert_error(422, "validation_failed");
    assert!(envelope["error"]["details"]["fields"]["map"].is_string());
    // Not CSV.
    api.upload("", "application/json", br#"{"name": "Ada"}"#)
        .assert_error(415, "unsupported_media_type");
    assert_eq!(count(&server, "SELECT count(*) FROM contact_imports"), 0);
    assert_eq!(count(&server, "SELECT count(*) FROM contacts"), 0);
    assert_eq!(files_in_imports_dir(&server), 0);
}

#[test]
fn scopes_workspaces_and_modes_wall_imports_off() {
    let server = TestServer::start();
    let owner = setup(&server);
    let api = caller(&server, &owner);
    let (_, read_only) = create_key(&owner, &["contacts:read"], "live");
    let reader = Caller {
        server: &server,
        key: read_only,
    };
    reader
        .import("", b"name,phone\nAda,677000001\n")
        .assert_error(403, "insufficient_scope");
    let job = api.import_to_end("", b"name,phone\nAda,677000001\n");
    let id = job["id"].as_str().unwrap();
    assert_eq!(
        reader.get(&format!("/v1/contacts/imports/{id}")).status,
        200
    );
    // Another workspace, and the test mode of this one, see no such import.
    let other = second_tenant(&owner, "globex@example.com");
    let (_, other_key) = create_key(&other, BOTH, "live");
    let (_, test_key) = create_key(&owner, BOTH, "test");
    for key in [other_key, test_key] {
        let stranger = Caller {
            server: &server,
            key,
        };
        for path in [
            format!("/v1/contacts/imports/{id}"),
            format!("/v1/contacts/imports/{id}/rejects"),
        ] {
            stranger.get(&path).assert_error(404, "not_found");
        }
        for action in ["cancel", "rollback"] {
            stranger
                .post(&format!("/v1/contacts/imports/{id}/{action}"), json!({}))
                .assert_error(404, "not_found");
        }
        assert_eq!(
            stranger.get("/v1/contacts/imports").json()["data"],
            json!([])
        );
    }
    api.get("/v1/contacts/imports/imp_nope")
        .assert_error(404, "not_found");
    // An ended import cannot be cancelled.
    api.post(&format!("/v1/contacts/imports/{id}/cancel"), json!({}))
        .assert_error(409, "conflict");
}

/// An import that fails for crier's own reasons again and again (here a trigger planted in the
/// database refuses its contact, as a bug would) is tried a few times, then ended `failed` with
/// a reason: it does not hold up the imports queued behind it — another workspace's.
#[test]
fn an_import_that_keeps_failing_is_ended_and_does_not_hold_up_the_others() {
    let server = TestServer::start();
    let owner = setup(&server);
    let api = caller(&server, &owner);
    let other = second_tenant(&owner, "globex@example.com");
    let other_api = caller(&server, &other);
    rusqlite::Connection::open(server.db_path())
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER injected_fault BEFORE INSERT ON contacts WHEN NEW.name = 'Broken Bob'
             BEGIN SELECT RAISE(ABORT, 'injected fault'); END;",
        )
        .unwrap();
    let stuck = api.import("", b"name,phone\nBroken Bob,677000001\n");
    assert_eq!(stuck.status, 202, "{}", stuck.text());
    let stuck_id = stuck.json()["id"].as_str().unwrap().to_owned();
    let job = other_api.import_to_end("", b"name,phone\nAda,677000002\n");
    assert_eq!(counts(&job), [1, 1, 0, 0, 0]);
    let stuck = api.get(&format!("/v1/contacts/imports/{stuck_id}")).json();
    assert_eq!(stuck["status"], "failed", "{stuck}");
    let why = stuck["error"].as_str().unwrap();
    assert!(why.contains("internal error after 3 attempts"), "{why}");
    assert!(
        !why.contains("injected fault"),
        "internal detail shown: {why}"
    );
    assert_eq!(api.get("/v1/contacts").json()["data"], json!([]));
    assert_eq!(files_in_imports_dir(&server), 0);
}

/// A rollback walks the workspace's contacts by rowid in batches of 5,000: two imports of 6,000
/// rows each, the second rolled back first, then the first: each takes exactly its own contacts
/// (over two batches), the contact added by hand between them stays.
#[test]
fn a_rollback_over_several_batches_takes_exactly_its_own_contacts() {
    let server = TestServer::start();
    let owner = setup(&server);
    let api = caller(&server, &owner);
    let import = |from: usize| {
        let mut csv = String::from("name,phone\n");
        for n in from..from + 6_000 {
            csv.push_str(&format!("Person {n},{}\n", phone(n)));
        }
        let job = api.import_to_end("mode=create", csv.as_bytes());
        assert_eq!(counts(&job), [6_000, 6_000, 0, 0, 0], "{job}");
        job["id"].as_str().unwrap().to_owned()
    };
    let first = import(0);
    let by_hand = api.post(
        "/v1/contacts",
        json!({"name": "By hand", "phone": phone(50_000)}),
    );
    assert_eq!(by_hand.status, 201, "{}", by_hand.text());
    let second = import(10_000);
    let live = |import: &str| {
        count(
            &server,
            &format!(
                "SELECT count(*) FROM contacts WHERE import_id = '{import}' AND deleted_at IS NULL"
            ),
        )
    };
    for (rolled_back, other) in [(&second, &first), (&first, &second)] {
        let answer = api.post(
            &format!("/v1/contacts/imports/{rolled_back}/rollback"),
            json!({}),
        );
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert_eq!(answer.json()["rolled_back"], 6_000);
        assert_eq!(live(rolled_back), 0);
        if rolled_back == &second {
            assert_eq!(live(other), 6_000);
        }
    }
    assert_eq!(
        count(
            &server,
            "SELECT count(*) FROM contacts WHERE deleted_at IS NULL"
        ),
        1
    );
    // Again: answered as it is, nothing more deleted.
    let again = api.post(&format!("/v1/contacts/imports/{first}/rollback"), json!({}));
    assert_eq!(again.json()["rolled_back"], 6_000);
}

#[test]
fn a_cancelled_import_keeps_true_counts_and_a_rollback_deletes_what_it_created() {
    let server = TestServer::start();
    let owner = setup(&server);
    let api = caller(&server, &owner);
    let kept = api.post("/v1/contacts", json!({"name": "Kept", "phone": phone(0)}));
    assert_eq!(kept.status, 201);
    let mut csv = String::from("name,phone\n");
    for n in 0..60_000 {
        csv.push_str(&format!("Person {n},{}\n", phone(n)));
    }
    let response = api.import("mode=upsert", csv.as_bytes());
    assert_eq!(response.status, 202, "{}", response.text());
    let id = response.json()["id"].as_str().unwrap().to_owned();
    // Running still: a queued or running job may be cancelled; a rollback must wait for that.
    api.post(&format!("/v1/contacts/imports/{id}/rollback"), json!({}))
        .assert_error(409, "conflict");
    let cancelled = api.post(&format!("/v1/contacts/imports/{id}/cancel"), json!({}));
    assert_eq!(cancelled.status, 200, "{}", cancelled.text());
    assert_eq!(cancelled.json()["status"], "cancelled");
    let job = api.get(&format!("/v1/contacts/imports/{id}")).json();
    assert_eq!(job["status"], "cancelled");
    let [rows_read, created, updated, unchanged, rejected] = counts(&job);
    assert!(rows_read < 60_000, "{job}");
    assert_eq!(rejected, 0);
    let imported = count(
        &server,
        &format!("SELECT count(*) FROM contacts WHERE import_id = '{id}'"),
    );
    assert_eq!(imported, created);
    assert_eq!(created + updated + unchanged, rows_read);
    assert_eq!(files_in_imports_dir(&server), 0);

    let rolled = api.post(&format!("/v1/contacts/imports/{id}/rollback"), json!({}));
    assert_eq!(rolled.status, 200, "{}", rolled.text());
    let rolled = rolled.json();
    assert_eq!(rolled["rolled_back"], created);
    assert!(rolled["rolled_back_at"].is_string());
    assert_eq!(
        count(
            &server,
            "SELECT count(*) FROM contacts WHERE deleted_at IS NULL"
        ),
        1,
        "only the contact made before the import stays"
    );
    // Again: answered as it is.
    let again = api.post(&format!("/v1/contacts/imports/{id}/rollback"), json!({}));
    assert_eq!(again.json()["rolled_back"], created);
}

#[test]
fn an_upload_over_the_import_limit_is_413_and_leaves_no_file() {
    let server = TestServer::start_with(
        |config| config.max_import_bytes = 4096,
        crier::web::router::Router::standard(),
    );
    let owner = setup(&server);
    let api = caller(&server, &owner);
    let mut csv = String::from("name,phone\n");
    while csv.len() <= 4096 {
        csv.push_str("Ada Lovelace,677000001\n");
    }
    api.import("", csv.as_bytes())
        .assert_error(413, "payload_too_large");
    assert_eq!(files_in_imports_dir(&server), 0);
    assert_eq!(count(&server, "SELECT count(*) FROM contact_imports"), 0);
}

/// The real binary killed (SIGKILL) in the middle of a 200,000-row import, then started again:
/// the job resumes by itself from its last committed chunk and completes; every distinct valid
/// row is one contact, none twice, and the job's counters match the rows present.
#[test]
fn an_import_killed_mid_way_resumes_after_a_restart_with_nothing_lost_or_doubled() {
    use crate::process::ServeProcess;
    use std::collections::HashSet;

    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path();
    let admin = |args: &[&str], stdin: &str| crate::process::admin(data_dir, args, stdin);
    admin(
        &[
            "create-user",
            "--email",
            "ops@example.com",
            "--password-stdin",
            "--workspace",
            "Acme",
            "--json",
        ],
        "a long enough password\n",
    );
    let key = admin(
        &[
            "create-api-key",
            "--workspace",
            "Acme",
            "--name",
            "import",
            "--scopes",
            "contacts:read,contacts:write",
            "--mode",
            "live",
            "--json",
        ],
        "",
    )["key"]
        .as_str()
        .unwrap()
        .to_owned();

    // 200,000 rows: every 1,000th has a bad phone; the others name 150,000 people, so 49,800
    // rows repeat an earlier one exactly.
    const ROWS: usize = 200_000;
    let mut csv = String::from("name,phone\n");
    let mut distinct = HashSet::new();
    let mut invalid = 0;
    for n in 0..ROWS {
        if n % 1000 == 999 {
            csv.push_str(&format!("Bad {n},12\n"));
            invalid += 1;
        } else {
            let person = n % 150_000;
            distinct.insert(person);
            csv.push_str(&format!("Person {person},{}\n", phone(person)));
        }
    }
    let valid = ROWS - invalid;

    let server = ServeProcess::start(data_dir);
    let request = |server: &ServeProcess, method: &str, path: &str, body: &[u8]| {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: Bearer {key}\r\nContent-Type: text/csv\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body);
        crate::harness::send_raw(server.addr, &bytes)
    };
    let created = request(
        &server,
        "POST",
        "/v1/contacts/imports?mode=upsert",
        csv.as_bytes(),
    );
    assert_eq!(
        created.status,
        202,
        "{}\nthe server's log:\n{}",
        created.text(),
        server.recent_log()
    );
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/contacts/imports/{id}");
    // Killed once at least one chunk is committed and before the last.
    let seen = wait_for_value(
        "a first chunk is committed",
        Duration::from_secs(120),
        || {
            request(&server, "GET", &path, b"").json()["rows_read"]
                .as_i64()
                .unwrap()
        },
        |rows| *rows > 0,
    );
    assert!(seen < ROWS as i64, "the import ended before the kill");
    server.kill();

    let server = ServeProcess::start(data_dir);
    let status = wait_for_value(
        "the resumed import ends",
        Duration::from_secs(600),
        || {
            request(&server, "GET", &path, b"").json()["status"]
                .as_str()
                .unwrap()
                .to_owned()
        },
        |status| status != "queued" && status != "running",
    );
    assert_eq!(status, "completed");
    let job = request(&server, "GET", &path, b"").json();
    let db = rusqlite::Connection::open(data_dir.join("crier.db")).unwrap();
    let one = |sql: &str| -> i64 { db.query_row(sql, [], |row| row.get(0)).unwrap() };
    let contacts = one("SELECT count(*) FROM contacts WHERE deleted_at IS NULL");
    assert_eq!(contacts, distinct.len() as i64);
    assert_eq!(one("SELECT count(DISTINCT phone) FROM contacts"), contacts);
    let rejects = one("SELECT count(*) FROM contact_import_rejects");
    assert_eq!(
        counts(&job),
        [
            ROWS as i64,
            distinct.len() as i64,
            0,
            (valid - distinct.len()) as i64,
            invalid as i64
        ],
        "{job}"
    );
    assert_eq!(rejects, invalid as i64);
    assert_eq!(job["bytes_read"], csv.len());
    assert!(!data_dir.join("imports").join(format!("{id}.csv")).exists());
}

/// Segments read custom values from `custom_jsonb` (V16), which every write of `custom` keeps
/// equal to it (since V21 by the statements themselves, no trigger): a creation, an import's
/// creations and updates, an edit, a deleted field's values stripped, an erasure.
#[test]
fn every_write_of_custom_values_keeps_the_copy_segments_read() {
    let server = TestServer::start();
    let owner = setup(&server);
    let api = caller(&server, &owner);
    let define = |body: Value| {
        let response = api.post("/v1/contact-fields", body);
        assert_eq!(response.status, 201, "{}", response.text());
        response.json()["id"].as_str().unwrap().to_owned()
    };
    define(json!({"key": "score", "label": "Score", "type": "number"}));
    let tier = define(
        json!({"key": "tier", "label": "Tier", "type": "select", "options": ["gold", "silver"]}),
    );
    let ada = api.post(
        "/v1/contacts",
        json!({"name": "Ada", "phone": "677000001", "custom": {"score": 5, "tier": "gold"}}),
    );
    assert_eq!(ada.status, 201, "{}", ada.text());
    let ada = ada.json()["id"].as_str().unwrap().to_owned();
    let count = |field: &str, op: &str, value: Value| -> i64 {
        let condition = if value.is_null() {
            json!({"field": field, "op": op})
        } else {
            json!({"field": field, "op": op, "value": value})
        };
        let rules = json!({ "all": [condition] });
        let response = api.post("/v1/segments/preview", json!({ "rules": rules }));
        assert_eq!(response.status, 200, "{}", response.text());
        response.json()["count"].as_i64().unwrap()
    };
    let stale = || -> i64 {
        server
            .db()
            .query_row(
                "SELECT count(*) FROM contacts WHERE custom_jsonb IS NOT jsonb(custom)",
                [],
                |row| row.get(0),
            )
            .unwrap()
    };
    assert_eq!(count("custom.score", "gt", json!(4)), 1);
    assert_eq!(count("custom.tier", "eq", json!("gold")), 1);

    // An import creates Bob and updates Ada's score.
    let csv = "name,phone,score\nBob,677000002,7\nAda,677000001,50\n";
    let job = api.import_to_end("mode=upsert", csv.as_bytes());
    assert_eq!(counts(&job), [2, 1, 1, 0, 0], "{job}");
    assert_eq!(count("custom.score", "gt", json!(6)), 2);
    assert_eq!(count("custom.score", "gt", json!(40)), 1);
    // An edit.
    let edited = api.patch(
        &format!("/v1/contacts/{ada}"),
        json!({"custom": {"score": 1}}),
    );
    assert_eq!(edited.status, 200, "{}", edited.text());
    assert_eq!(count("custom.score", "gt", json!(40)), 0);
    assert_eq!(count("custom.score", "lt", json!(2)), 1);
    // A deleted field's values go with it; a field of the same key starts empty.
    let deleted = api.delete(&format!("/v1/contact-fields/{tier}"));
    assert_eq!(deleted.status, 204, "{}", deleted.text());
    define(
        json!({"key": "tier", "label": "Tier", "type": "select", "options": ["gold", "silver"]}),
    );
    assert_eq!(count("custom.tier", "eq", json!("gold")), 0);
    // An erasure empties them.
    let erased = api.call("POST", &format!("/v1/contacts/{ada}/erase"), None);
    assert_eq!(erased.status, 200, "{}", erased.text());
    assert_eq!(count("custom.score", "is_set", Value::Null), 1);
    assert_eq!(stale(), 0);
}

/// A contact's checks of its columns' words are comparisons (V21), not `IN` lists, which SQLite
/// evaluates by building a temporary b-tree of the words for every row written: an import's
/// inserts would pay for four of them per row. The checks still refuse a word outside the list.
#[test]
fn writing_a_contact_builds_no_temporary_b_tree_and_its_checks_still_hold() {
    let server = TestServer::start();
    let owner = setup(&server);
    let api = caller(&server, &owner);
    let created = api.post("/v1/contacts", json!({"name": "Ada", "phone": "677000001"}));
    assert_eq!(created.status, 201, "{}", created.text());
    let db = server.db();
    let (workspace_id, created_at): (String, String) = db
        .query_row("SELECT workspace_id, created_at FROM contacts", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .unwrap();
    let insert = format!(
        "INSERT INTO contacts (id, workspace_id, mode, name, phone, email, language, custom,
            custom_jsonb, phone_state, email_state, sms_unsubscribed_at, sms_unsubscribed_via,
            email_unsubscribed_at, email_unsubscribed_via, created_at, updated_at)
        VALUES ('con_new', '{workspace_id}', 'live', 'Bob', '+237677000002', 'bob@x.io', 'en',
            '{{}}', jsonb('{{}}'), ?1, ?2, ?3, ?4, ?5, ?6, '{created_at}', '{created_at}')"
    );
    let insert = insert.as_str();
    let mut explain = db.prepare(&format!("EXPLAIN {insert}")).unwrap();
    let opcodes: Vec<String> = explain
        .query_map(
            rusqlite::params![
                "valid",
                "valid",
                None::<String>,
                None::<String>,
                None::<String>,
                None::<String>
            ],
            |row| row.get(1),
        )
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(opcodes.iter().any(|op| op == "Insert"), "{opcodes:?}");
    assert!(
        !opcodes.iter().any(|op| op == "OpenEphemeral"),
        "{opcodes:?}"
    );
    let now = Some("2026-01-01T00:00:00Z");
    let bad: [[Option<&str>; 6]; 4] = [
        [Some("bogus"), Some("valid"), None, None, None, None],
        [Some("valid"), Some("bogus"), None, None, None, None],
        [Some("valid"), Some("valid"), now, Some("bogus"), None, None],
        [Some("valid"), Some("valid"), None, None, now, Some("bogus")],
    ];
    for values in bad {
        let refused = db.execute(insert, rusqlite::params_from_iter(values));
        assert!(
            refused
                .as_ref()
                .is_err_and(|err| err.to_string().contains("CHECK")),
            "{values:?}: {refused:?}"
        );
    }
    let good = [
        Some("unreachable"),
        Some("complained"),
        now,
        Some("import"),
        now,
        Some("one_click"),
    ];
    assert_eq!(
        db.execute(insert, rusqlite::params_from_iter(good))
            .unwrap(),
        1
    );
}
