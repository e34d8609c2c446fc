//! `crier admin …`: operator helpers that work on the database file directly, for setups and
//! scripts (the server may be running; SQLite serialises the writes).

use std::io::BufRead;
use std::sync::Arc;

use crate::activity::{self, Action, Actor, Event};
use crate::api_keys::format::Scope;
use crate::api_keys::{self, NewApiKey};
use crate::app::App;
use crate::cli::{AdjustWalletArgs, CreateApiKeyArgs, CreateUserArgs};
use crate::clock::SystemClock;
use crate::commands::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use crate::config::Config;
use crate::db::{Db, DbSettings};
use crate::error::AppError;
use crate::ids::{SystemRandomSource, WorkspaceId};
use crate::scope::WorkspaceScope;
use crate::users::password::hash_password;
use crate::users::{self, NewUser};
use crate::validate;
use crate::vocabulary::Mode;
use crate::workspaces::Role;
use crate::workspaces::store::{self as workspace_store, Workspace};

/// Whether a command may create the database: only `create-user` (a first run's first step);
/// the others need rows that only an existing database has, so a missing file is a mistyped
/// `--data-dir` / `--db-path`, not a new instance.
#[derive(PartialEq)]
enum Database {
    CreateIfMissing,
    MustExist,
}

fn open_app(config: Config, database: Database) -> Result<App, String> {
    let settings = DbSettings::from_config(&config);
    if database == Database::MustExist && !settings.path.is_file() {
        return Err(format!(
            "no database at {} (check --data-dir / --db-path)",
            settings.path.display()
        ));
    }
    let path = settings.path.display().to_string();
    // SQLite's "database is locked" says neither which file nor what to do.
    let explain_lock = |err: crate::error::StartupError| {
        if err.0.contains("database is locked") {
            format!(
                "{path} is locked by another writer; retry, or wait longer with \
                 --db-busy-timeout-ms ({})",
                err.0
            )
        } else {
            err.0
        }
    };
    let db = Db::open(&settings).map_err(explain_lock)?;
    App::new(
        config,
        db,
        Arc::new(SystemClock),
        Arc::new(SystemRandomSource::new()),
    )
    .map_err(explain_lock)
}

fn explain(err: &AppError) -> String {
    match err {
        AppError::Validation(fields) => fields
            .iter()
            .map(|(field, reason)| format!("{field} {reason}"))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.public_message(),
    }
}

/// `crier admin create-user`: a user, and a workspace for them (or a membership in an existing
/// one when `--workspace` is a workspace id). The instance's first user is an instance admin.
pub fn create_user(config: Config, args: CreateUserArgs) -> i32 {
    if !args.password_stdin {
        eprintln!("crier: pass the password on standard input with --password-stdin");
        return EXIT_USAGE;
    }
    let mut password = String::new();
    match std::io::stdin().lock().read_line(&mut password) {
        Ok(0) => {
            eprintln!(
                "crier: --password-stdin found nothing on standard input; pipe the password in"
            );
            return EXIT_USAGE;
        }
        Ok(_) => {}
        Err(err) => {
            eprintln!("crier: cannot read the password from standard input: {err}");
            return EXIT_USAGE;
        }
    }
    let password = password.trim_end_matches(['\r', '\n']).to_owned();
    let mut problems = Vec::new();
    let email = validate::email(&args.email)
        .map_err(|why| problems.push(format!("--email {why}")))
        .ok();
    if let Err(why) = validate::password(&password) {
        problems.push(format!("the password {why}"));
    }
    let role = Role::parse(&args.role);
    if role.is_none() {
        problems.push("--role must be owner, admin or member".to_owned());
    }
    let (Some(email), Some(role), true) = (email, role, problems.is_empty()) else {
        return fail(&problems.join("; "));
    };
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| email.split('@').next().unwrap_or("").to_owned());

    let app = match open_app(config, Database::CreateIfMissing) {
        Ok(app) => app,
        Err(err) => return fail(&err),
    };
    let password_hash = hash_password(&password, app.config.password_iterations, &app.ids);
    let now = app.clock.now();
    let outcome = app.db.write(|conn| {
        let new_user = NewUser {
            email,
            name,
            password_hash,
        };
        let user = users::create_user(conn, &app.ids, new_user, args.instance_admin, now)?;
        // An id names an existing workspace (a typo in it is not a new workspace's name).
        let existing = match WorkspaceId::parse(&args.workspace) {
            Some(id) => Some(workspace_store::find_workspace(conn, &id)?.ok_or_else(|| {
                AppError::BadRequest(format!("no workspace has the id {:?}", args.workspace))
            })?),
            None => None,
        };
        let (workspace, role) = match existing {
            Some(workspace) => {
                let joined = crate::clock::format_timestamp(now);
                workspace_store::insert_membership(conn, &workspace.id, &user.id, role, &joined)?;
                (workspace, role)
            }
            None => (
                crate::workspaces::create_workspace(
                    conn,
                    &app.ids,
                    &args.workspace,
                    &user.id,
                    &app.config.billing_catalog.currency,
                    now,
                )?,
                Role::Owner,
            ),
        };
        let event = Event::new(Action::UserCreated)
            .workspace(&workspace.id)
            .target(user.id.as_str())
            .detail("email", activity::mask_email(&user.email))
            .detail("role", role.as_str())
            .detail("is_instance_admin", user.is_instance_admin);
        activity::record(conn, &app.ids, &Actor::operator(), event, now)?;
        Ok((user, workspace, role))
    });
    match outcome {
        Ok((user, workspace, role)) => {
            if args.json {
                let out = serde_json::json!({
                    "user_id": user.id, "email": user.email, "workspace_id": workspace.id,
                    "workspace_name": workspace.name, "role": role.as_str(),
                    "is_instance_admin": user.is_instance_admin,
                });
                println!("{out}");
            } else {
                println!(
                    "created user {} ({}){}, {} of workspace {} ({})",
                    user.id,
                    user.email,
                    if user.is_instance_admin {
                        ", instance admin"
                    } else {
                        ""
                    },
                    role.as_str(),
                    workspace.id,
                    workspace.name
                );
            }
            EXIT_OK
        }
        Err(err) => fail(&explain(&err)),
    }
}

/// `crier admin create-api-key`: prints the key (shown this once).
pub fn create_api_key(config: Config, args: CreateApiKeyArgs) -> i32 {
    let mut problems = Vec::new();
    let scopes: Vec<Scope> = args
        .scopes
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .filter_map(|name| {
            let scope = Scope::parse(name);
            if scope.is_none() {
                let known: Vec<&str> = Scope::ALL.iter().map(|scope| scope.as_str()).collect();
                problems.push(format!(
                    "{name:?} is not a scope (scopes: {})",
                    known.join(", ")
                ));
            }
            scope
        })
        .collect();
    if scopes.is_empty() && problems.is_empty() {
        problems.push("--scopes must list at least one scope".to_owned());
    }
    let mode = Mode::parse(&args.mode);
    if mode.is_none() {
        problems.push("--mode must be live or test".to_owned());
    }
    let name = validate::text(&args.name, 1, 100)
        .map_err(|why| problems.push(format!("--name {why}")))
        .ok();
    let (Some(mode), Some(name), true) = (mode, name, problems.is_empty()) else {
        return fail(&problems.join("; "));
    };
    let app = match open_app(config, Database::MustExist) {
        Ok(app) => app,
        Err(err) => return fail(&err),
    };
    let now = app.clock.now();
    let outcome = app.db.write(|conn| {
        let workspace = resolve_workspace(conn, &args.workspace)?;
        let new_key = NewApiKey {
            workspace_id: workspace.id,
            name,
            scopes,
            mode,
            created_by: None,
            expires_at: None,
        };
        let issued = api_keys::issue_key(conn, &app.ids, new_key, now)?;
        let key = &issued.api_key;
        let event = Event::new(Action::ApiKeyCreated)
            .workspace(&key.workspace_id)
            .mode(key.mode)
            .target(key.id.as_str())
            .detail("name", key.name.as_str())
            .detail(
                "scopes",
                key.scopes
                    .iter()
                    .map(|scope| scope.as_str())
                    .collect::<Vec<_>>(),
            );
        activity::record(conn, &app.ids, &Actor::operator(), event, now)?;
        Ok(issued)
    });
    match outcome {
        Ok(issued) => {
            let key = &issued.api_key;
            if args.json {
                let scopes: Vec<&str> = key.scopes.iter().map(|scope| scope.as_str()).collect();
                let out = serde_json::json!({
                    "id": key.id, "key": issued.key, "workspace_id": key.workspace_id,
                    "name": key.name, "scopes": scopes, "mode": key.mode.as_str(),
                    "display_prefix": key.display_prefix,
                });
                println!("{out}");
            } else {
                println!("{}", issued.key);
                eprintln!(
                    "created API key {} in workspace {}; the key above is shown only this once",
                    key.id, key.workspace_id
                );
            }
            EXIT_OK
        }
        Err(err) => fail(&explain(&err)),
    }
}

/// `crier admin adjust-wallet`: one `adjustment` ledger row with the reason; never below zero.
pub fn adjust_wallet(config: Config, args: AdjustWalletArgs) -> i32 {
    let reason = match validate::text(&args.reason, 1, 500) {
        Ok(reason) => reason,
        Err(why) => return fail(&format!("--reason {why}")),
    };
    if let Some(why) = crate::billing::check_adjustment(args.amount_minor) {
        return fail(&format!("--amount-minor {why}"));
    }
    let app = match open_app(config, Database::MustExist) {
        Ok(app) => app,
        Err(err) => return fail(&err),
    };
    let now = app.clock.now();
    let outcome = app.db.write(|conn| {
        let workspace = resolve_workspace(conn, &args.workspace)?;
        let adjusted = crate::billing::adjust_wallet(
            conn,
            &app.ids,
            &WorkspaceScope::trusted(&workspace.id),
            args.amount_minor,
            &reason,
            None,
            now,
        )?;
        let event = Event::new(Action::WalletAdjusted)
            .workspace(&workspace.id)
            .target(adjusted.0.id.as_str())
            .detail("amount_minor", args.amount_minor)
            .detail("reason", reason.as_str());
        activity::record(conn, &app.ids, &Actor::operator(), event, now)?;
        Ok(adjusted)
    });
    match outcome {
        Ok((entry, account)) => {
            if args.json {
                let out = serde_json::json!({
                    "workspace_id": account.workspace_id, "balance_minor": account.wallet_balance_minor,
                    "currency": account.wallet_currency, "ledger_entry_id": entry.id,
                });
                println!("{out}");
            } else {
                println!(
                    "wallet of {} is now {} {} (minor units)",
                    account.workspace_id, account.wallet_balance_minor, account.wallet_currency
                );
            }
            EXIT_OK
        }
        Err(err) => fail(&explain(&err)),
    }
}

/// A workspace by id, or by a name exactly one workspace has.
fn resolve_workspace(conn: &rusqlite::Connection, id_or_name: &str) -> Result<Workspace, AppError> {
    if let Some(id) = WorkspaceId::parse(id_or_name)
        && let Some(workspace) = workspace_store::find_workspace(conn, &id)?
    {
        return Ok(workspace);
    }
    let mut named = workspace_store::find_workspaces_named(conn, id_or_name)?;
    match named.len() {
        1 => Ok(named.remove(0)),
        0 => Err(AppError::BadRequest(format!(
            "no workspace has the id or name {id_or_name:?}"
        ))),
        n => {
            let ids: Vec<String> = named.iter().map(|w| w.id.to_string()).collect();
            Err(AppError::BadRequest(format!(
                "{n} workspaces are named {id_or_name:?} ({}); give the workspace id instead",
                ids.join(", ")
            )))
        }
    }
}

/// The command was refused or failed: one line on standard error, exit 1.
fn fail(message: &str) -> i32 {
    eprintln!("crier: {}", crate::commands::one_line(message));
    EXIT_FAILED
}
