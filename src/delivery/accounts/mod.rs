//! A workspace's own provider accounts: credentials for a provider (its own Twilio account, its
//! own SMTP relay) that its live messages of that channel go through instead of the instance's
//! providers (docs/design/delivery.md, "Provider accounts").
//!
//! - An account names a channel, a provider, the provider's non-secret `settings` and its
//!   `secrets`, validated by the checks of the instance's own settings
//!   (`settings::account_settings`). Secrets are sealed with the `SecretBox` (context
//!   `provider_account/{id}/{field}`), never shown again: a view gives whether each is set and
//!   its last four characters.
//! - A live message of a workspace with enabled accounts for its channel stores them as its
//!   route, `accounts=pac_…,pac_…` in priority order (`route_for`); the dispatcher tries those
//!   accounts, in that order, and never the instance's providers (no fallback: the workspace
//!   pays its own provider). An account deleted, disabled or whose secrets no longer open is
//!   skipped; with none left the message fails retryably (`provider_account_unavailable`) and,
//!   after the last delivery cycle, fails and is refunded.
//! - Test-mode messages always go to `log`: accounts are live objects only.

pub mod store;

use std::collections::BTreeMap;

use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::billing::Channel;
use crate::clock::{Timestamp, format_timestamp};
use crate::delivery::routes;
use crate::delivery::settings::{
    AccountField, DeliverySettings, account_fields, account_providers, account_settings,
};
use crate::error::{AppError, FieldErrors};
use crate::ids::{Ids, ProviderAccountId, WorkspaceId};
use crate::scope::WorkspaceScope;
use crate::secrets::{SecretBox, Unsealed, derived_token};
use crate::settings::Secret;
use store::{AccountRow, SecretRow};

/// The most accounts a workspace may have per channel (each one a provider a message may try in
/// one delivery cycle).
pub const MAX_PER_CHANNEL: usize = 5;
const MAX_PRIORITY: i64 = 1000;
const MAX_DESCRIPTION_CHARS: usize = 500;
const MAX_SETTING_CHARS: usize = 2048;
const MAX_SECRET_CHARS: usize = 4096;
/// Secrets shorter than this show no hint at all (four characters would give too much away).
const HINT_MIN_CHARS: usize = 8;

/// A secret as it arrives in a body: never printed.
pub struct SecretText(Secret);

impl<'de> Deserialize<'de> for SecretText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<SecretText, D::Error> {
        String::deserialize(deserializer).map(|text| SecretText(Secret::new(text)))
    }
}

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// The body of `POST /v1/provider-accounts`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    pub channel: String,
    pub provider: String,
    #[serde(default)]
    pub settings: BTreeMap<String, Value>,
    #[serde(default)]
    pub secrets: BTreeMap<String, Option<SecretText>>,
    pub priority: Option<i64>,
    pub enabled: Option<bool>,
    pub description: Option<String>,
}

/// The body of `PATCH /v1/provider-accounts/{id}`: what is sent changes. In `settings` and
/// `secrets`, a field given replaces its value, `null` removes it, one left out is kept.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountChanges {
    #[serde(default)]
    pub settings: BTreeMap<String, Value>,
    #[serde(default)]
    pub secrets: BTreeMap<String, Option<SecretText>>,
    pub priority: Option<i64>,
    pub enabled: Option<bool>,
    #[serde(default, deserialize_with = "crate::validate::present")]
    pub description: Option<Option<String>>,
}

/// An account with its sealed secrets.
#[derive(Debug, Clone)]
pub struct Account {
    pub row: AccountRow,
    pub secrets: Vec<SecretRow>,
}

/// The instance settings and checks an account is validated against.
pub struct Checks<'a> {
    pub instance: &'a DeliverySettings,
    /// Where a provider's calls may go: the operator's rules for outgoing URLs (the webhook
    /// endpoints' SSRF checks).
    pub url: &'a dyn Fn(&str) -> Result<String, String>,
}

fn setting_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// The settings of a row, by name.
fn stored_settings(row: &AccountRow) -> Result<BTreeMap<String, String>, AppError> {
    serde_json::from_str(&row.settings)
        .map_err(|err| AppError::internal(format!("provider account {}: {err}", row.id)))
}

fn parse_channel(text: &str) -> Result<Channel, AppError> {
    Channel::parse(text)
        .ok_or_else(|| AppError::invalid_field("channel", "must be one of sms, email"))
}

fn fields_of(channel: Channel, provider: &str) -> Result<&'static [AccountField], AppError> {
    account_fields(channel, provider).ok_or_else(|| {
        AppError::invalid_field(
            "provider",
            format!(
                "{provider:?} is not a provider for {channel}; one of {}",
                account_providers(channel).join(", ")
            ),
        )
    })
}

/// The settings after `changes` (given values replace, `null` removes), each checked to be a
/// setting of the provider and a string or number within bounds.
fn merged_settings(
    fields: &[AccountField],
    provider: &str,
    mut settings: BTreeMap<String, String>,
    changes: BTreeMap<String, Value>,
    errors: &mut FieldErrors,
) -> BTreeMap<String, String> {
    for (name, value) in changes {
        let key = format!("settings.{name}");
        if !fields
            .iter()
            .any(|field| !field.secret && field.name == name)
        {
            errors.add(
                key,
                format!("is not a setting of {provider}; {}", names(fields, false)),
            );
            continue;
        }
        match value {
            Value::Null => {
                settings.remove(&name);
            }
            value => match setting_text(&value) {
                Some(text) if text.chars().count() <= MAX_SETTING_CHARS => {
                    settings.insert(name, text);
                }
                Some(_) => errors.add(
                    key,
                    format!("must be at most {MAX_SETTING_CHARS} characters"),
                ),
                None => errors.add(key, "must be a string"),
            },
        }
    }
    settings
}

/// The names of a provider's settings (or secrets), for an error.
fn names(fields: &[AccountField], secret: bool) -> String {
    let names: Vec<&str> = fields
        .iter()
        .filter(|field| field.secret == secret)
        .map(|field| field.name)
        .collect();
    if names.is_empty() {
        "it takes none".to_owned()
    } else {
        format!("one of {}", names.join(", "))
    }
}

/// Checks each secret given is one of the provider's; `Some(value)` to set, `None` to remove.
fn checked_secrets(
    fields: &[AccountField],
    provider: &str,
    secrets: BTreeMap<String, Option<SecretText>>,
    errors: &mut FieldErrors,
) -> Vec<(&'static str, Option<Secret>)> {
    let mut checked = Vec::new();
    for (name, value) in secrets {
        let key = format!("secrets.{name}");
        let Some(field) = fields
            .iter()
            .find(|field| field.secret && field.name == name)
        else {
            errors.add(
                key,
                format!("is not a secret of {provider}; {}", names(fields, true)),
            );
            continue;
        };
        match value {
            Some(SecretText(secret)) if secret.expose().trim().is_empty() => {
                errors.add(key, "must not be empty (send null to remove it)")
            }
            Some(SecretText(secret)) if secret.expose().chars().count() > MAX_SECRET_CHARS => {
                errors.add(
                    key,
                    format!("must be at most {MAX_SECRET_CHARS} characters"),
                )
            }
            value => checked.push((field.name, value.map(|SecretText(secret)| secret))),
        }
    }
    checked
}

/// Validates the whole account as the instance's settings would be: `settings` and which
/// secrets will be set (their values matter only for presence, so kept ones stand in as
/// placeholders). URL fields also pass the operator's URL rules.
fn validate_account(
    (channel, provider, fields): (Channel, &str, &[AccountField]),
    settings: &BTreeMap<String, String>,
    secrets_set: &[&str],
    checks: &Checks<'_>,
    errors: &mut FieldErrors,
) {
    let mut values: Vec<(&str, String)> = settings
        .iter()
        .map(|(name, value)| (name.as_str(), value.clone()))
        .collect();
    values.extend(secrets_set.iter().map(|name| (*name, "set".to_owned())));
    if let Err(problems) = account_settings(channel, provider, &values, checks.instance) {
        for (name, reason) in problems {
            let secret = fields
                .iter()
                .any(|field| field.secret && field.name == name);
            let not_field = !fields.iter().any(|field| field.name == name);
            let key = match (not_field, secret) {
                (true, _) => name.to_owned(),
                (false, true) => format!("secrets.{name}"),
                (false, false) => format!("settings.{name}"),
            };
            errors.add(key, reason);
        }
    }
    for field in fields.iter().filter(|field| field.url || field.host) {
        let Some(value) = settings.get(field.name) else {
            continue;
        };
        // A host goes through the same rules as a URL's host (an https URL to it).
        let checked = match field.host {
            true => (checks.url)(&format!("https://{}/", value.trim())).map_err(|why| {
                if why.contains("private") {
                    why
                } else {
                    "must be a host name or an IP address".to_owned()
                }
            }),
            false => (checks.url)(value),
        };
        if let Err(why) = checked {
            let key = format!("settings.{}", field.name);
            if !errors.contains(&key) {
                errors.add(key, why);
            }
        }
    }
}

fn check_priority(priority: i64, errors: &mut FieldErrors) {
    if !(0..=MAX_PRIORITY).contains(&priority) {
        errors.add(
            "priority",
            format!("must be a whole number from 0 to {MAX_PRIORITY}"),
        );
    }
}

fn check_description(raw: Option<String>, errors: &mut FieldErrors) -> Option<String> {
    match raw {
        Some(text) if !text.trim().is_empty() => {
            match crate::validate::text(&text, 1, MAX_DESCRIPTION_CHARS) {
                Ok(text) => Some(text),
                Err(why) => {
                    errors.add("description", why);
                    None
                }
            }
        }
        _ => None,
    }
}

/// The hint kept of a secret: its last four characters, or nothing for a short one.
fn hint(secret: &Secret) -> String {
    let chars: Vec<char> = secret.expose().chars().collect();
    if chars.len() < HINT_MIN_CHARS {
        return String::new();
    }
    chars[chars.len() - 4..].iter().collect()
}

fn context(id: &ProviderAccountId, field: &str) -> String {
    format!("provider_account/{id}/{field}")
}

fn seal(
    ids: &Ids,
    secret_box: &SecretBox,
    id: &ProviderAccountId,
    field: &str,
    secret: &Secret,
) -> SecretRow {
    SecretRow {
        field: field.to_owned(),
        sealed: secret_box.seal(ids, &context(id, field), secret.expose().as_bytes()),
        last4: hint(secret),
    }
}

/// A new account in the caller's workspace (live only; the web layer refuses test mode).
pub fn create(
    conn: &Connection,
    (ids, secret_box): (&Ids, &SecretBox),
    scope: &WorkspaceScope,
    body: NewAccount,
    checks: &Checks<'_>,
    now: Timestamp,
) -> Result<Account, AppError> {
    let channel = parse_channel(&body.channel)?;
    let provider = body.provider.trim().to_ascii_lowercase();
    let fields = fields_of(channel, &provider)?;
    let mut errors = FieldErrors::new();
    let settings = merged_settings(
        fields,
        &provider,
        BTreeMap::new(),
        body.settings,
        &mut errors,
    );
    let secrets: Vec<(&str, Secret)> =
        checked_secrets(fields, &provider, body.secrets, &mut errors)
            .into_iter()
            .filter_map(|(name, value)| value.map(|value| (name, value)))
            .collect();
    let priority = body.priority.unwrap_or(0);
    check_priority(priority, &mut errors);
    let description = check_description(body.description, &mut errors);
    if errors.is_empty() {
        let set: Vec<&str> = secrets.iter().map(|(name, _)| *name).collect();
        validate_account(
            (channel, &provider, fields),
            &settings,
            &set,
            checks,
            &mut errors,
        );
    }
    errors.into_result()?;
    if store::count(conn, scope.id(), channel)? >= MAX_PER_CHANNEL {
        return Err(AppError::Conflict(format!(
            "A workspace has at most {MAX_PER_CHANNEL} provider accounts per channel; delete \
             one first."
        )));
    }
    let now = format_timestamp(now);
    let row = AccountRow {
        id: ProviderAccountId::generate(ids),
        workspace_id: scope.id().clone(),
        channel,
        provider,
        settings: settings_json(&settings),
        priority,
        enabled: body.enabled.unwrap_or(true),
        description,
        version: 1,
        created_at: now.clone(),
        updated_at: now,
    };
    store::insert(conn, &row)?;
    let mut sealed = Vec::new();
    for (name, secret) in &secrets {
        let secret = seal(ids, secret_box, &row.id, name, secret);
        store::put_secret(conn, &row.id, &secret)?;
        sealed.push(secret);
    }
    sealed.sort_by(|a, b| a.field.cmp(&b.field));
    Ok(Account {
        row,
        secrets: sealed,
    })
}

fn settings_json(settings: &BTreeMap<String, String>) -> String {
    serde_json::to_string(settings).unwrap_or_else(|_| "{}".to_owned())
}

/// The account `id` of the workspace, with its sealed secrets; 404 for another's.
pub fn find(
    conn: &Connection,
    scope: &WorkspaceScope,
    id: &ProviderAccountId,
) -> Result<Account, AppError> {
    let row = store::find(conn, Some(scope.id()), id)?.ok_or(AppError::NotFound)?;
    let secrets = store::secrets(conn, &row.id)?;
    Ok(Account { row, secrets })
}

/// The account `id` whatever its workspace (receipts: crier's own work on the row).
pub fn find_any(conn: &Connection, id: &ProviderAccountId) -> Result<Option<Account>, AppError> {
    let Some(row) = store::find(conn, None, id)? else {
        return Ok(None);
    };
    let secrets = store::secrets(conn, &row.id)?;
    Ok(Some(Account { row, secrets }))
}

/// A page of the workspace's accounts, newest first.
pub fn list(
    conn: &Connection,
    scope: &WorkspaceScope,
    before: Option<&str>,
    limit: usize,
) -> Result<Vec<Account>, AppError> {
    store::list(conn, scope.id(), before, limit)?
        .into_iter()
        .map(|row| {
            let secrets = store::secrets(conn, &row.id)?;
            Ok(Account { row, secrets })
        })
        .collect()
}

/// Changes an account: settings and secrets merged (given values replace, `null` removes),
/// priority, whether it is on, description. The whole account is validated again.
pub fn update(
    conn: &Connection,
    (ids, secret_box): (&Ids, &SecretBox),
    scope: &WorkspaceScope,
    id: &ProviderAccountId,
    changes: AccountChanges,
    checks: &Checks<'_>,
    now: Timestamp,
) -> Result<(Account, Vec<&'static str>), AppError> {
    let Account { mut row, secrets } = find(conn, scope, id)?;
    let fields = fields_of(row.channel, &row.provider)?;
    let provider = row.provider.clone();
    let mut errors = FieldErrors::new();
    let settings = merged_settings(
        fields,
        &provider,
        stored_settings(&row)?,
        changes.settings,
        &mut errors,
    );
    let changed = checked_secrets(fields, &provider, changes.secrets, &mut errors);
    let mut set: Vec<&str> = fields
        .iter()
        .filter(|field| field.secret)
        .filter(
            |field| match changed.iter().find(|(name, _)| *name == field.name) {
                Some((_, value)) => value.is_some(),
                None => secrets.iter().any(|secret| secret.field == field.name),
            },
        )
        .map(|field| field.name)
        .collect();
    set.sort_unstable();
    if let Some(priority) = changes.priority {
        check_priority(priority, &mut errors);
        row.priority = priority;
    }
    if let Some(description) = changes.description {
        row.description = check_description(description, &mut errors);
    }
    if errors.is_empty() {
        validate_account(
            (row.channel, &provider, fields),
            &settings,
            &set,
            checks,
            &mut errors,
        );
    }
    errors.into_result()?;
    if let Some(enabled) = changes.enabled {
        row.enabled = enabled;
    }
    row.settings = settings_json(&settings);
    row.version += 1;
    row.updated_at = format_timestamp(now);
    store::update(conn, &row)?;
    for (name, value) in &changed {
        match value {
            Some(secret) => {
                store::put_secret(conn, &row.id, &seal(ids, secret_box, &row.id, name, secret))?
            }
            None => store::remove_secret(conn, &row.id, name)?,
        }
    }
    let secrets = store::secrets(conn, &row.id)?;
    let names = changed.iter().map(|(name, _)| *name).collect();
    Ok((Account { row, secrets }, names))
}

/// Deletes an account and its secrets. Messages already queued through it skip it (see the
/// module's documentation).
pub fn delete(
    conn: &Connection,
    scope: &WorkspaceScope,
    id: &ProviderAccountId,
) -> Result<AccountRow, AppError> {
    let row = store::find(conn, Some(scope.id()), id)?.ok_or(AppError::NotFound)?;
    store::delete(conn, &row.id)?;
    Ok(row)
}

/// What a new live message of the workspace on `channel` stores as its route when the
/// workspace has enabled accounts for it: `accounts=pac_…,pac_…`, in the order they are tried.
pub fn route_for(
    conn: &Connection,
    scope: &WorkspaceScope,
    channel: Channel,
) -> Result<Option<String>, AppError> {
    let chain = store::enabled_chain(conn, scope.id(), channel)?;
    if chain.is_empty() {
        return Ok(None);
    }
    let ids: Vec<&str> = chain.iter().map(ProviderAccountId::as_str).collect();
    Ok(Some(format!(
        "{}={}",
        routes::ACCOUNTS_ROUTE,
        ids.join(",")
    )))
}

/// The accounts a stored route names that still exist in the message's workspace and are
/// enabled, in the route's order.
pub fn chain_rows(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    ids: &[ProviderAccountId],
) -> Result<Vec<AccountRow>, AppError> {
    let mut rows = Vec::new();
    for id in ids {
        if let Some(row) = store::find(conn, Some(workspace_id), id)?
            && row.enabled
        {
            rows.push(row);
        }
    }
    Ok(rows)
}

/// Why an account cannot send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unusable {
    /// A secret no longer opens: the key file was replaced or lost, or the value was damaged.
    NeedsSecrets,
    /// Its settings no longer validate (an instance setting changed since).
    Invalid(String),
}

/// Each value of an account by field name, its secrets in clear: kept in memory only.
type Values = Vec<(String, String)>;

/// Every value of the account, its secrets opened; the field names of the secrets that did not
/// open, if any.
fn opened(account: &Account, secret_box: &SecretBox) -> Result<(Values, Vec<String>), AppError> {
    let mut values: Vec<(String, String)> = stored_settings(&account.row)?.into_iter().collect();
    let mut closed = Vec::new();
    for secret in &account.secrets {
        match secret_box.open(&context(&account.row.id, &secret.field), &secret.sealed) {
            Ok(bytes) => values.push((
                secret.field.clone(),
                String::from_utf8_lossy(&bytes).into_owned(),
            )),
            Err(Unsealed::OtherKey | Unsealed::Damaged) => closed.push(secret.field.clone()),
        }
    }
    Ok((values, closed))
}

/// The token an SMS account's receipt URL carries: derived from its secrets (so only the
/// account's own secret makes it), for this account only.
fn receipt_token(
    id: &ProviderAccountId,
    values: &[(String, String)],
    fields: &[AccountField],
) -> Option<Secret> {
    let secrets: Vec<&str> = fields
        .iter()
        .filter(|field| field.secret)
        .filter_map(|field| {
            values
                .iter()
                .find(|(name, _)| name == field.name)
                .map(|(_, value)| value.as_str())
        })
        .collect();
    if secrets.is_empty() {
        return None;
    }
    Some(Secret::new(derived_token(
        &secrets.join("\n"),
        &format!("provider_account_receipts/{id}"),
    )))
}

/// What building an account's provider needs: its instance-style settings (this provider
/// alone), its own From for email, the token of its receipt URL.
pub struct Opened {
    pub settings: DeliverySettings,
    pub email_from: Option<String>,
    pub receipt_token: Option<Secret>,
}

/// Opens an account's secrets and validates it into settings the provider constructors take.
pub fn open(
    account: &Account,
    secret_box: &SecretBox,
    instance: &DeliverySettings,
) -> Result<Opened, Unusable> {
    let row = &account.row;
    let (values, closed) =
        opened(account, secret_box).map_err(|err| Unusable::Invalid(err.to_string()))?;
    if !closed.is_empty() {
        return Err(Unusable::NeedsSecrets);
    }
    let fields = account_fields(row.channel, &row.provider)
        .ok_or_else(|| Unusable::Invalid(format!("unknown provider {}", row.provider)))?;
    let borrowed: Vec<(&str, String)> = values
        .iter()
        .filter_map(|(name, value)| {
            fields
                .iter()
                .find(|field| field.name == name)
                .map(|field| (field.name, value.clone()))
        })
        .collect();
    let settings =
        account_settings(row.channel, &row.provider, &borrowed, instance).map_err(|problems| {
            let fields: Vec<String> = problems
                .into_iter()
                .map(|(name, _)| name.to_owned())
                .collect();
            Unusable::Invalid(format!("invalid settings: {}", fields.join(", ")))
        })?;
    let email_from = (row.channel == Channel::Email).then(|| settings.email_from.clone());
    let receipt_token = match row.channel {
        Channel::Sms => receipt_token(&row.id, &values, fields),
        Channel::Email => None,
    };
    Ok(Opened {
        settings,
        email_from,
        receipt_token,
    })
}

crate::text_enum! {
    /// Whether an account can send.
    pub enum AccountStatus {
        /// Enabled, and its secrets open.
        Active = "active",
        /// Turned off by its owner: messages skip it.
        Disabled = "disabled",
        /// A secret no longer opens (the instance's `secrets.key` was replaced or lost): enter
        /// the secrets again with `PATCH`. Messages skip it meanwhile.
        NeedsSecrets = "needs_secrets",
    }
}

/// An account as the API shows it: its secrets only as set or not, with a hint.
#[derive(Serialize)]
pub struct AccountView<'a> {
    pub id: &'a str,
    pub channel: Channel,
    pub provider: &'a str,
    pub settings: BTreeMap<String, String>,
    pub secrets: BTreeMap<&'static str, SecretView>,
    pub priority: i64,
    pub enabled: bool,
    pub status: AccountStatus,
    /// SMS: the URL to give the provider for delivery receipts, verified with the account's
    /// own secret; `null` for email, an account without secrets, or one whose secrets must be
    /// entered again.
    pub receipts_url: Option<String>,
    /// SMS: the URL to give the provider for SMS people send to the account's numbers (a STOP
    /// unsubscribes them in this workspace); `null` when `receipts_url` is.
    pub inbound_url: Option<String>,
    pub description: Option<&'a str>,
    pub created_at: &'a str,
    pub updated_at: &'a str,
}

#[derive(Serialize)]
pub struct SecretView {
    pub set: bool,
    /// `…` and the last four characters of the value; `null` when not set or short.
    pub last4: Option<String>,
}

/// The view of an account (its secrets opened to tell whether they still open, and for the
/// receipt URL's token).
pub fn view<'a>(
    account: &'a Account,
    secret_box: &SecretBox,
    public_url: &str,
) -> Result<AccountView<'a>, AppError> {
    let row = &account.row;
    let fields = account_fields(row.channel, &row.provider).unwrap_or(&[]);
    let (values, closed) = opened(account, secret_box)?;
    let secrets = fields
        .iter()
        .filter(|field| field.secret)
        .map(|field| {
            let stored = account
                .secrets
                .iter()
                .find(|secret| secret.field == field.name);
            let view = SecretView {
                set: stored.is_some(),
                last4: stored
                    .filter(|secret| !secret.last4.is_empty())
                    .map(|secret| format!("…{}", secret.last4)),
            };
            (field.name, view)
        })
        .collect();
    let status = if !closed.is_empty() {
        AccountStatus::NeedsSecrets
    } else if !row.enabled {
        AccountStatus::Disabled
    } else {
        AccountStatus::Active
    };
    let receipts_url = match (row.channel, closed.is_empty()) {
        (Channel::Sms, true) => receipt_token(&row.id, &values, fields)
            .map(|token| receipts_url(public_url, &row.provider, &row.id, &token)),
        _ => None,
    };
    let inbound_url = receipts_url.as_deref().map(inbound_url_of);
    Ok(AccountView {
        id: row.id.as_str(),
        channel: row.channel,
        provider: &row.provider,
        settings: stored_settings(row)?,
        secrets,
        priority: row.priority,
        enabled: row.enabled,
        status,
        receipts_url,
        inbound_url,
        description: row.description.as_deref(),
        created_at: &row.created_at,
        updated_at: &row.updated_at,
    })
}

/// `{public_url}/v1/webhooks/sms/{provider}/accounts/{id}?token=…`.
pub fn receipts_url(
    public_url: &str,
    provider: &str,
    id: &ProviderAccountId,
    token: &Secret,
) -> String {
    format!(
        "{}/v1/webhooks/sms/{provider}/accounts/{id}?token={}",
        public_url.trim_end_matches('/'),
        token.expose()
    )
}

/// The inbound URL beside a receipts URL: `…/accounts/{id}/inbound?token=…`.
fn inbound_url_of(receipts_url: &str) -> String {
    match receipts_url.split_once('?') {
        Some((path, query)) => format!("{path}/inbound?{query}"),
        None => format!("{receipts_url}/inbound"),
    }
}
