//! HTTP for sending domains: a workspace's own domain to send its live email From, DKIM-signed
//! with that domain's key. An API key needs `domains:read` / `domains:write`; a console session
//! the owner or admin role. Domains belong to the workspace, not to a mode (DNS is one world,
//! and test email never leaves crier): they are managed in live mode only, and a test key or a
//! session looking at test mode gets 403. Instance admins approve or reject them under
//! `/v1/admin/sending-domains`, as they do sender IDs.
//!
//! The key is parsed (an imported PEM) or made (Ed25519) here with the smtp provider's
//! `DkimSigner`, which also gives the DNS record; the domain module seals and stores it.

use serde::{Deserialize, Serialize};

use crate::activity::{Action, Event, mask_email};
use crate::api_keys::format::Scope;
use crate::app::App;
use crate::auth::principal::Principal;
use crate::delivery::providers::smtp::DkimSigner;
use crate::error::{AppError, FieldErrors};
use crate::ids::SendingDomainId;
use crate::sending_domains::{
    self as domain, DkimAlgorithm, DomainRow, DomainStatus, MAX_PEM_LEN, NewDomain,
};
use crate::validate;
use crate::vocabulary::Mode;
use crate::web::activity::{actor, record};
use crate::web::auth::authenticate_request;
use crate::web::idempotency::{self, OPTIONAL_PER_USER, OPTIONAL_PER_WORKSPACE};
use crate::web::request::{Request, page_response};
use crate::web::response::ApiResponse;

fn domain_id(request: &Request<'_>) -> Result<SendingDomainId, AppError> {
    SendingDomainId::parse(request.param("id")).ok_or(AppError::NotFound)
}

/// Sending domains are the workspace's, shared by both modes, and managed in live mode.
fn live_only(principal: &Principal) -> Result<(), AppError> {
    match principal.mode() {
        Mode::Live => Ok(()),
        Mode::Test => Err(AppError::Forbidden(
            "Sending domains belong to the workspace, not to a mode, and are managed in live \
             mode: use a live key, or switch the console to live."
                .to_owned(),
        )),
    }
}

/// The DNS record that publishes the domain's public key.
#[derive(Serialize)]
struct DnsRecordView<'a> {
    name: String,
    #[serde(rename = "type")]
    kind: &'static str,
    value: &'a str,
}

/// A sending domain as the API shows it: never its private key.
#[derive(Serialize)]
struct DomainView<'a> {
    id: &'a str,
    workspace_id: &'a str,
    domain: &'a str,
    selector: &'a str,
    algorithm: DkimAlgorithm,
    status: DomainStatus,
    rejection_reason: Option<&'a str>,
    /// The workspace's From on this domain, if set here.
    from: Option<&'a str>,
    dns_record: DnsRecordView<'a>,
    created_at: &'a str,
    updated_at: &'a str,
    reviewed_at: Option<&'a str>,
}

fn domain_view(row: &DomainRow) -> DomainView<'_> {
    DomainView {
        id: row.id.as_str(),
        workspace_id: row.workspace_id.as_str(),
        domain: &row.domain,
        selector: &row.selector,
        algorithm: row.algorithm,
        status: row.status,
        rejection_reason: row.rejection_reason.as_deref(),
        from: row.from_mailbox.as_deref(),
        dns_record: DnsRecordView {
            name: format!("{}._domainkey.{}", row.selector, row.domain),
            kind: "TXT",
            value: &row.dns_value,
        },
        created_at: &row.created_at,
        updated_at: &row.updated_at,
        reviewed_at: row.reviewed_at.as_deref(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewDomainBody {
    domain: String,
    selector: Option<String>,
    /// An RSA (PKCS#8 or PKCS#1) or Ed25519 (PKCS#8) private key; made here when absent.
    private_key_pem: Option<String>,
}

/// `POST /v1/sending-domains`: adds a domain, `pending` until an instance admin approves it.
/// Imports the key given, or generates an Ed25519 one. Scope `domains:write`. Accepts an
/// `Idempotency-Key` (the answer never holds the private key).
pub fn create_domain(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::DomainsWrite)?;
    live_only(&principal)?;
    let body: NewDomainBody = request.json()?;
    let now = app.clock.now();
    let mut fields = FieldErrors::new();
    let name = domain::check_domain(&body.domain)
        .map_err(|why| fields.add("domain", why))
        .ok();
    let selector = match body.selector.as_deref() {
        Some(selector) => domain::check_selector(selector)
            .map_err(|why| fields.add("selector", why))
            .ok(),
        None => Some(domain::default_selector(now)),
    };
    let random = crate::ids::signing_random();
    let (pem, imported) = match body.private_key_pem {
        Some(pem) => (pem, true),
        None => (
            DkimSigner::generate_ed25519_pem(random.as_ref()).map_err(AppError::internal)?,
            false,
        ),
    };
    // Parsed whatever the other fields say, so every problem is reported at once.
    let signer = if pem.len() > MAX_PEM_LEN {
        fields.add(
            "private_key_pem",
            format!("must be at most {MAX_PEM_LEN} characters"),
        );
        None
    } else {
        DkimSigner::from_pem(
            &pem,
            name.as_deref().unwrap_or("example.com"),
            selector.as_deref().unwrap_or("crier"),
            random,
        )
        .map_err(|why| {
            fields.add(
                "private_key_pem",
                format!(
                    "must be a PEM private key: RSA of 1024 bits or more (2048 advised; PKCS#8 \
                     or PKCS#1) or Ed25519 (PKCS#8) — {why}"
                ),
            )
        })
        .ok()
    };
    fields.into_result()?;
    let (Some(name), Some(selector), Some(signer)) = (name, selector, signer) else {
        return Err(AppError::internal("validated field missing"));
    };
    let algorithm = DkimAlgorithm::parse(signer.algorithm())
        .ok_or_else(|| AppError::internal("a DKIM algorithm outside the vocabulary"))?;
    let actor = actor(app, request, &principal);
    idempotency::in_transaction(app, request, &principal, OPTIONAL_PER_WORKSPACE, |conn| {
        let row = domain::create(
            conn,
            (&app.ids, &app.secret_box),
            &scope,
            NewDomain {
                domain: name.clone(),
                selector: selector.clone(),
                algorithm,
                dns_value: signer.record(),
                private_key_pem: &pem,
            },
            now,
        )?;
        let event = domain_event(Action::SendingDomainCreated, &row)
            .detail("key", if imported { "imported" } else { "generated" });
        record(app, conn, &actor, event)?;
        ApiResponse::json(201, &domain_view(&row))
    })
}

fn domain_event(action: Action, row: &DomainRow) -> Event {
    Event::new(action)
        .workspace(&row.workspace_id)
        .target(row.id.as_str())
        .detail("domain", row.domain.as_str())
        .detail("selector", row.selector.as_str())
        .detail("algorithm", row.algorithm.as_str())
}

/// `GET /v1/sending-domains`: the workspace's domains, newest first. Scope `domains:read`.
pub fn list_domains(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::DomainsRead)?;
    live_only(&principal)?;
    let page = request.page()?;
    let rows = app
        .db
        .read(|conn| domain::list(conn, &scope, page.cursor.as_deref(), page.fetch()))?;
    let (rows, next_cursor) = page.split(rows, |row| row.id.as_str());
    let data: Vec<DomainView<'_>> = rows.iter().map(domain_view).collect();
    page_response(&data, next_cursor)
}

/// `GET /v1/sending-domains/{id}`. Scope `domains:read`.
pub fn show_domain(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::DomainsRead)?;
    live_only(&principal)?;
    let id = domain_id(request)?;
    let row = app.db.read(|conn| domain::find(conn, &scope, &id))?;
    ApiResponse::json(200, &domain_view(&row))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DomainChanges {
    /// Required; `null` clears the workspace's From.
    #[serde(default, deserialize_with = "validate::present")]
    from: Option<Option<String>>,
}

/// `PUT /v1/sending-domains/{id}` `{"from": "Acme <news@acme.example>"}`: makes that mailbox
/// (at this active domain) the workspace's From for live email; `null` clears it. Scope
/// `domains:write`.
pub fn update_domain(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::DomainsWrite)?;
    live_only(&principal)?;
    let id = domain_id(request)?;
    let body: DomainChanges = request.json()?;
    let Some(from) = body.from else {
        return Err(AppError::invalid_field(
            "from",
            "is required (null clears the From)",
        ));
    };
    let actor = actor(app, request, &principal);
    let row = app.db.write(|conn| {
        let row = domain::set_from(conn, &scope, &id, from.as_deref(), app.clock.now())?;
        // The address only, masked like every address the log keeps (a From may name a person).
        let from = row
            .from_mailbox
            .as_deref()
            .and_then(|from| from.parse::<lettre::message::Mailbox>().ok())
            .map(|mailbox| mask_email(mailbox.email.as_ref()));
        let event = domain_event(Action::SendingDomainFromChanged, &row).detail("from", from);
        record(app, conn, &actor, event)?;
        Ok(row)
    })?;
    ApiResponse::json(200, &domain_view(&row))
}

/// `DELETE /v1/sending-domains/{id}`: deletes the domain and its key. Scope `domains:write`.
pub fn delete_domain(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::DomainsWrite)?;
    live_only(&principal)?;
    let id = domain_id(request)?;
    let actor = actor(app, request, &principal);
    app.db.write(|conn| {
        let row = domain::delete(conn, &scope, &id)?;
        record(
            app,
            conn,
            &actor,
            domain_event(Action::SendingDomainDeleted, &row),
        )
    })?;
    Ok(ApiResponse::no_content())
}

/// `GET /v1/admin/sending-domains?status=pending`: every workspace's domains in that status
/// (`pending`, `active`, `rejected`), oldest first. Instance admins.
pub fn list_for_review(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    principal.require_instance_admin()?;
    live_only(&principal)?;
    let status = request
        .query_param("status")
        .unwrap_or_else(|| DomainStatus::Pending.as_str().to_owned());
    let status = DomainStatus::parse(&status).ok_or_else(|| {
        AppError::invalid_field("status", "must be one of pending, active, rejected")
    })?;
    let page = request.page()?;
    let rows = app
        .db
        .read(|conn| domain::list_for_review(conn, status, page.cursor.as_deref(), page.fetch()))?;
    let (rows, next_cursor) = page.split(rows, |row| row.id.as_str());
    let data: Vec<DomainView<'_>> = rows.iter().map(domain_view).collect();
    page_response(&data, next_cursor)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    /// Required to reject.
    reason: Option<String>,
}

/// `POST /v1/admin/sending-domains/{id}/approve`: the domain becomes `active` (409 when another
/// workspace has it active). Instance admins. Accepts an `Idempotency-Key`, scoped to the
/// admin.
pub fn approve_domain(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    decide(app, request, true)
}

/// `POST /v1/admin/sending-domains/{id}/reject` `{reason}`: the domain becomes `rejected` and
/// stops being used. Instance admins. Accepts an `Idempotency-Key`, scoped to the admin.
pub fn reject_domain(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    decide(app, request, false)
}

fn decide(app: &App, request: &mut Request<'_>, approve: bool) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    principal.require_instance_admin()?;
    live_only(&principal)?;
    let id = domain_id(request)?;
    let body: DecisionBody = request.json_or_default()?;
    let reason = crate::web::billing::decision_reason(body.reason.as_deref(), approve)?;
    let actor = actor(app, request, &principal);
    idempotency::in_transaction(app, request, &principal, OPTIONAL_PER_USER, |conn| {
        let row = domain::decide(conn, &id, approve, reason.as_deref(), app.clock.now())?;
        let action = if approve {
            Action::SendingDomainApproved
        } else {
            Action::SendingDomainRejected
        };
        let mut event = domain_event(action, &row);
        if let Some(reason) = &reason {
            event = event.detail("reason", reason.as_str());
        }
        record(app, conn, &actor, event)?;
        ApiResponse::json(200, &domain_view(&row))
    })
}
