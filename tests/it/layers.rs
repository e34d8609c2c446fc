//! The layer rules of ARCHITECTURE.md, read from the source: only the web layer knows HTTP, and
//! domains depend on each other one way, in the order written down in `DOMAIN_ORDER`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The domains, lowest first. A domain may use the ones listed before it, never one after it.
/// (Shared plumbing — `db`, `clock`, `ids`, `money`, `error`, `validate`, `secrets`, `outbound`,
/// `recipients` —
/// is below all of them; `config` gathers every module's settings.)
const DOMAIN_ORDER: &[&str] = &[
    "activity",
    "users",
    // The outbox of events: below every domain that records one in its own transaction.
    "events",
    "billing",
    // Sending domains: read by message creation (web), campaign launch and the dispatcher.
    "sending_domains",
    "idempotency",
    "api_keys",
    "workspaces",
    "auth",
    "contacts",
    "messages",
    "delivery",
    "campaigns",
    "payments",
    // Outgoing webhooks: renders the objects of messages, campaigns and payments into events.
    "webhooks",
];

/// Modules that put the program together and so may start the web layer.
const COMPOSITION_ROOT: &[&str] = &["lib", "main", "server", "commands"];

/// Crates only the web layer may name.
const WEB_ONLY_CRATES: &[&str] = &["hyper", "hyper_util", "http_body_util", "tokio", "bytes"];

fn source_files(dir: &Path, into: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            source_files(&path, into);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            into.push(path);
        }
    }
}

/// Each file under `src/` (path relative to `src/`) with its non-test code: everything before a
/// `#[cfg(test)]` module, and not a file that is itself a test module.
fn product_code() -> BTreeMap<String, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    source_files(&src, &mut files);
    files
        .into_iter()
        .map(|path| {
            let relative = path
                .strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            let code = match text.find("#[cfg(test)]") {
                Some(at) => text[..at].to_owned(),
                None => text,
            };
            (relative, code)
        })
        .filter(|(relative, _)| !relative.ends_with("/tests.rs"))
        .collect()
}

/// The top-level module a file belongs to (`billing/store.rs` → `billing`, `server.rs` → `server`).
fn module_of(relative: &str) -> &str {
    let first = relative.split('/').next().unwrap();
    first.strip_suffix(".rs").unwrap_or(first)
}

/// Lines of code (comments left out) that name `pattern`.
fn code_lines_naming<'a>(code: &'a str, pattern: &str) -> Vec<&'a str> {
    code.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .filter(|line| line.contains(pattern))
        .collect()
}

#[test]
fn nothing_outside_the_web_layer_names_it() {
    let mut offences = Vec::new();
    for (file, code) in product_code() {
        if file.starts_with("web/") || COMPOSITION_ROOT.contains(&module_of(&file)) {
            continue;
        }
        for line in code_lines_naming(&code, "crate::web") {
            // `crate::web` itself, not a module whose name starts alike (`crate::webhooks`).
            let names_web = line.match_indices("crate::web").any(|(at, _)| {
                !line[at + "crate::web".len()..]
                    .starts_with(|c: char| c.is_alphanumeric() || c == '_')
            });
            if names_web {
                offences.push(format!("{file}: {}", line.trim()));
            }
        }
    }
    assert!(
        offences.is_empty(),
        "names the web layer:\n{}",
        offences.join("\n")
    );
}

#[test]
fn only_the_web_layer_knows_the_http_server_crates() {
    let mut offences = Vec::new();
    for (file, code) in product_code() {
        if file.starts_with("web/") {
            continue;
        }
        for krate in WEB_ONLY_CRATES {
            for line in code_lines_naming(&code, &format!("{krate}::")) {
                let named = line
                    .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                    .any(|word| word.starts_with(&format!("{krate}::")));
                if named {
                    offences.push(format!("{file}: {}", line.trim()));
                }
            }
        }
    }
    assert!(
        offences.is_empty(),
        "web-only crates used outside src/web:\n{}",
        offences.join("\n")
    );
}

#[test]
fn domains_depend_on_each_other_one_way() {
    let mut offences = Vec::new();
    for (file, code) in product_code() {
        let module = module_of(&file);
        let Some(rank) = DOMAIN_ORDER.iter().position(|domain| *domain == module) else {
            continue;
        };
        for higher in &DOMAIN_ORDER[rank + 1..] {
            for line in code_lines_naming(&code, &format!("crate::{higher}")) {
                let exact = line.contains(&format!("crate::{higher}::"))
                    || line.contains(&format!("crate::{higher};"))
                    || line.contains(&format!("crate::{higher} "));
                if exact {
                    offences.push(format!("{file} ({module}) uses {higher}: {}", line.trim()));
                }
            }
        }
    }
    assert!(
        offences.is_empty(),
        "a domain uses one above it:\n{}",
        offences.join("\n")
    );
}

/// Where a `WorkspaceScope` may be minted: authentication, and crier's own work on rows it
/// already stores (payments fulfilment, operator commands).
const SCOPE_MINTERS: &[&str] = &[
    // campaigns: its runner works every workspace's campaigns, each in its own workspace.
    "scope",
    "auth",
    "payments",
    "commands",
    "delivery",
    "janitor",
    "campaigns",
];

#[test]
fn only_authentication_and_crier_itself_mint_workspace_scopes() {
    let mut offences = Vec::new();
    for (file, code) in product_code() {
        if SCOPE_MINTERS.contains(&module_of(&file)) {
            continue;
        }
        for line in code_lines_naming(&code, "WorkspaceScope::trusted") {
            offences.push(format!("{file}: {}", line.trim()));
        }
    }
    assert!(
        offences.is_empty(),
        "mints a workspace scope:\n{}",
        offences.join("\n")
    );
}

/// The only domain files that may take the whole `App`: the runners that orchestrate provider
/// calls between short transactions (and so need the database, the clock, the providers and the
/// signals at once). Everything else in a domain takes what it needs.
const APP_USERS: &[&str] = &[
    "delivery/dispatcher.rs",
    "payments/flow.rs",
    "payments/worker.rs",
    "janitor.rs",
    // The import runner: reads spooled files and applies chunks between transactions.
    "contacts/imports/runner.rs",
    // The campaign runner: starts scheduled campaigns, fans out, sweeps cancels, finishes.
    "campaigns/runner.rs",
    // The backup runner: reads the clock and the database settings, counts in the metrics.
    "backups/runner.rs",
    // The webhook runner: prepares events and sends deliveries between transactions.
    "webhooks/runner.rs",
];

#[test]
fn only_the_runners_take_the_whole_app() {
    let mut offences = Vec::new();
    for (file, code) in product_code() {
        let module = module_of(&file);
        let is_domain = DOMAIN_ORDER.contains(&module);
        if !is_domain || APP_USERS.contains(&file.as_str()) {
            continue;
        }
        for line in code_lines_naming(&code, "crate::app") {
            offences.push(format!("{file}: {}", line.trim()));
        }
    }
    assert!(
        offences.is_empty(),
        "domain code taking the whole App:\n{}",
        offences.join("\n")
    );
}

/// Pairs (domain, other domain) where the first may call the second's store functions: the
/// dispatcher works the messages outbox, and the member list joins users in SQL.
const STORE_SHARERS: &[(&str, &str)] = &[("delivery", "messages"), ("workspaces", "users")];

/// The names a line takes from `crate::{other}::store`: `store::{a, B}` gives `a`, `B`;
/// `store::f(…)` gives `f`; `store::{self, …}` or `store as x` gives `self`.
fn store_items_named<'a>(line: &'a str, other: &str) -> Vec<&'a str> {
    let needle = format!("crate::{other}::store");
    let Some(at) = line.find(&needle) else {
        return Vec::new();
    };
    let rest = &line[at + needle.len()..];
    if let Some(list) = rest.strip_prefix("::{") {
        let list = list.split('}').next().unwrap_or("");
        return list
            .split(',')
            .map(|item| item.trim().split(' ').next().unwrap_or(""))
            .collect();
    }
    if let Some(item) = rest.strip_prefix("::") {
        let end = item
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(item.len());
        return vec![&item[..end]];
    }
    vec!["self"]
}

#[test]
fn domains_call_each_other_not_each_others_stores() {
    let mut offences = Vec::new();
    for (file, code) in product_code() {
        let module = module_of(&file);
        if !DOMAIN_ORDER.contains(&module) {
            continue;
        }
        for other in DOMAIN_ORDER.iter().filter(|other| **other != module) {
            if STORE_SHARERS.contains(&(module, *other)) {
                continue;
            }
            for line in code_lines_naming(&code, &format!("crate::{other}::store")) {
                // Row types are the owner's vocabulary and may be shared; functions may not.
                let calls = store_items_named(line, other)
                    .into_iter()
                    .any(|item| item.starts_with(|c: char| c.is_ascii_lowercase()));
                if calls {
                    offences.push(format!("{file}: {}", line.trim()));
                }
            }
        }
    }
    assert!(
        offences.is_empty(),
        "a domain calls another's store:\n{}",
        offences.join("\n")
    );
}

/// Every released migration and the SHA-256 of its text. A database migrated with one must
/// never meet a different text under the same name: add a new migration instead, and its line
/// here.
const RELEASED_MIGRATIONS: &[(&str, &str)] = &[
    (
        "V1__foundation.sql",
        "95a07ad034121ae7289be8aaabd25c553dfc707a93f16affab659786577b7bdb",
    ),
    (
        "V2__people_and_keys.sql",
        "5a6547b02549a2829ee83b9c0a3d97f5b7663a9452caa07d3b8f3fedf0c6e0d8",
    ),
    (
        "V3__idempotency.sql",
        "00321e8c89c6021d6c71736273626eeb27eedf1f13a3b0448a3a9c8b934186c8",
    ),
    (
        "V4__billing.sql",
        "ed63f28519906e2f07f6e4ef23e4c62856811272c4ee974b6ab115bcfa187d44",
    ),
    (
        "V5__sender_ids_and_verification.sql",
        "2a0658c62c93334949655d22904795cd9e72a95cb0affdbe754e02c897dbd5c3",
    ),
    (
        "V6__custom_plans.sql",
        "f2477a603237d97acc1072122241f78dd0996ccc9e867a19a5140e5ded795cc1",
    ),
    (
        "V7__wallet_guards.sql",
        "0d4fd04837d308ae629d82df0c075131cdf695450cd1663db8c743b223f831c8",
    ),
    (
        "V8__messages.sql",
        "3c6f43ac2d2be1ec25f7ac2368faf2273441e3bd9f2e5f01558c898a89948482",
    ),
    (
        "V9__ledger_by_workspace_in_order.sql",
        "f06e62ba48cc44eeb703a87987664aa8213ff38be058ee7af2c90a673395139d",
    ),
    (
        "V10__payments.sql",
        "2d98f299746e4f6d3304b613434088d276dfaa6056c32aaecf2e98d5f6cf6017",
    ),
    (
        "V11__attempts_by_provider_id.sql",
        "34b721ec1277f0f3936177701c8171b4b9414f3065873ad3570f43a88d7f7153",
    ),
    (
        "V12__webhook_events_worker.sql",
        "9a67525276302037c89567ef1d84535b2caa6d99a298c31ee72e04a01a2a0c2c",
    ),
    (
        "V13__contacts.sql",
        "91f451aed1e2ec7938301df7a3ae04a186917d9892ea1bcaf2aa68dd23f8e727",
    ),
    (
        "V14__groups.sql",
        "24477693dc413ae046cc53e6b57e2d7286a2c3a91a6ed406efbfe40764c08b07",
    ),
    (
        "V15__contact_imports.sql",
        "2423dba1611bb2d0005ea3fd7987e3d21613bb618b2abf2c72d25f7010d4098f",
    ),
    (
        "V16__segments.sql",
        "ccf1c437c3eef4bc9fc8978767f8c88738912ca3d7ead5bd077bfe3239675b86",
    ),
    (
        "V17__unsubscribe_and_erase.sql",
        "69d4b0f3fe8d31edd2925b69e6d6bef3f6542c6a408449d6d2ad5d545bbfd820",
    ),
    (
        "V18__contacts_by_name.sql",
        "fe9b8994f58859017a86a4eaff94075b806a77a49ba209a58f22ee96bf9fe0f0",
    ),
    (
        "V19__campaigns.sql",
        "bd8e09f0825224d28001cf872e079c72ef2e7bfccbf5491d6166636435a46fd8",
    ),
    (
        "V20__campaign_launch.sql",
        "0d4a3a682eff0b2fbabfdca7fac5f68c93d3b654edbb71e91e4fd340c848eb4d",
    ),
    (
        "V21__contacts_write_speed.sql",
        "9d0a9342537e49c7dae1629842c3679aa7d85cea24bd14596cc24fa18b5ba061",
    ),
    (
        "V22__campaign_links.sql",
        "e2bfbf7bfa7315cffddbec561a1bbe8bd2b24fd8218a45f67c3498e1805fbdc4",
    ),
    (
        "V23__transactional_first.sql",
        "be5bd2dd79041ef6631f744027dc4baa37b0a779514fc0501ef067420e101b42",
    ),
    (
        "V25__campaign_tallies_and_checks.sql",
        "50372fb18888322b489373babeab6144c916dc401157193dadb1e29832eb418a",
    ),
    (
        "V27__test_and_live.sql",
        "afe75c1c4e0ff96ef1001e7f88baca4cf0044b4c18d58e0dcfcc709802719ea6",
    ),
    (
        "V28__webhook_journal_retention.sql",
        "4c16b77a0a217c1bac215164e63f4927ef992aa53ae0e579478cc167523229ab",
    ),
    (
        "V29__login_failures.sql",
        "0ea51faee548f0b1f50c301c331d161ced2854a4376ddf6babbdf51fea5bc789",
    ),
    (
        "V30__webhooks.sql",
        "f9eac3998e63050c086d6fcee6d73ff45a16ca863b06af7b8842c5ef261c6c13",
    ),
    (
        "V31__import_and_unsubscribe_events.sql",
        "132608155945d2d80259c0ee33bdab0447a5ba41419d4ed412b32190e8b0757c",
    ),
    (
        "V32__activity.sql",
        "4958633483074c0835ce3501f19cfd1f220edb91cd780aa4d3586420905acb00",
    ),
    (
        "V33__sms_routes.sql",
        "898e20758f452a5df07dd8ad7554505f9255ae48404aef4ed1b31c8700ce6af0",
    ),
    (
        "V36__message_retention.sql",
        "0032ce55b3807aa9a69dc54fc4a400319836754f815755b2a285bc2896067f32",
    ),
    (
        "V37__wallet_low_balance.sql",
        "f22212888e53234d67bc542ae9dc574bca4c201374e5e660f8705797bddd76b4",
    ),
    (
        "V38__provider_accounts.sql",
        "0d20943e781d92bd07cfd1d4f130aec30736a8efa9c019ca7a36d07315095fd0",
    ),
    (
        "V39__sending_domains.sql",
        "7fe6cf67289b3b85c31b671a2974511c4d21f95c818f43a1247eac5f9cdbec93",
    ),
    (
        "V40__messages_created_without_trigger.sql",
        "680a67baf9c63c61c3ce8c446e39f217753b14980d14f80fd7aa1f37d4883c60",
    ),
    (
        "V42__contacts_fewer_indexes.sql",
        "1fb704c60bbddc5f2347d0fdbd8f302e0f3365058a4ed34a2687957753819e7e",
    ),
    (
        "V43__campaign_messages_by_contact.sql",
        "2e8a72a7b3f33e89a6cebd4aba33cc0d5a2fc5245ca657803f3ed3c6984a27cc",
    ),
    (
        "V44__message_from_name.sql",
        "9d1dcba13d39d9d4b4a8975fb57af538321cca7cf995a6cdd8d3e86724822289",
    ),
];

#[test]
fn released_migrations_never_change() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".sql"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = RELEASED_MIGRATIONS
        .iter()
        .map(|(name, _)| (*name).to_owned())
        .collect();
    listed.sort();
    assert_eq!(
        on_disk, listed,
        "every migration is listed here once it exists"
    );
    for (name, expected) in RELEASED_MIGRATIONS {
        let text = std::fs::read(dir.join(name)).unwrap();
        let digest = ring::digest::digest(&ring::digest::SHA256, &text);
        let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(&hex, expected, "{name} changed after release");
    }
}

#[test]
fn the_rules_see_the_code() {
    // Guards the tests above against reading nothing: the files and imports they judge exist.
    let code = product_code();
    assert!(code.contains_key("web/router.rs"));
    assert!(code.contains_key("billing/mod.rs"));
    assert!(!code_lines_naming(&code["auth/mod.rs"], "crate::workspaces").is_empty());
    assert!(!code_lines_naming(&code["auth/principal.rs"], "WorkspaceScope::trusted").is_empty());
    assert_eq!(module_of("billing/store.rs"), "billing");
    assert_eq!(module_of("server.rs"), "server");
    assert_eq!(
        store_items_named("use crate::users::store::{User, find_user};", "users"),
        ["User", "find_user"]
    );
    assert_eq!(
        store_items_named(
            "crate::billing::store::set_wallet_currency(conn)",
            "billing"
        ),
        ["set_wallet_currency"]
    );
    assert_eq!(
        store_items_named("use crate::auth::store as s;", "auth"),
        ["self"]
    );
}
