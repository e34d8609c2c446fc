//! The layer rules of ARCHITECTURE.md, read from the source: only the web layer knows HTTP, and
//! domains depend on each other one way, in the order written down in `DOMAIN_ORDER`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The domains, lowest first. A domain may use the ones listed before it, never one after it.
/// (Shared plumbing — `db`, `clock`, `ids`, `money`, `error`, `validate`, `secrets`, `outbound` —
/// is below all of them; `config` gathers every module's settings.)
const DOMAIN_ORDER: &[&str] = &[
    "users",
    "billing",
    "idempotency",
    "api_keys",
    "workspaces",
    "auth",
    "messages",
    "delivery",
    "payments",
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
            offences.push(format!("{file}: {}", line.trim()));
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
    "scope", "auth", "payments", "commands", "delivery", "janitor",
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
}
