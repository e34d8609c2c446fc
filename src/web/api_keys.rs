//! HTTP for API keys. Every endpoint needs an owner or admin console session.

use serde::{Deserialize, Serialize};

use crate::api_keys::format::Scope;
use crate::api_keys::store::{self, ApiKey};
use crate::api_keys::{self, MAX_GRACE_SECONDS, NewApiKey};
use crate::app::App;
use crate::clock::parse_timestamp;
use crate::error::{AppError, FieldErrors};
use crate::validate;
use crate::vocabulary::Mode;
use crate::web::auth::authenticate_request;
use crate::web::request::Request;
use crate::web::response::ApiResponse;
use crate::workspaces::Role;

#[derive(Serialize)]
struct ApiKeyView {
    id: String,
    name: String,
    display_prefix: String,
    scopes: Vec<&'static str>,
    mode: &'static str,
    created_by: Option<String>,
    created_at: String,
    last_used_at: Option<String>,
    expires_at: Option<String>,
    revoked_at: Option<String>,
    replaced_by: Option<String>,
}

impl From<&ApiKey> for ApiKeyView {
    fn from(key: &ApiKey) -> ApiKeyView {
        ApiKeyView {
            id: key.id.clone(),
            name: key.name.clone(),
            display_prefix: key.display_prefix.clone(),
            scopes: key.scopes.iter().map(|scope| scope.as_str()).collect(),
            mode: key.mode.as_str(),
            created_by: key.created_by.clone(),
            created_at: key.created_at.clone(),
            last_used_at: key.last_used_at.clone(),
            expires_at: key.expires_at.clone(),
            revoked_at: key.revoked_at.clone(),
            replaced_by: key.replaced_by.clone(),
        }
    }
}

/// The view plus the secret, for the one response that shows it.
fn issued_view(issued: &api_keys::IssuedKey) -> Result<serde_json::Value, AppError> {
    let mut body =
        serde_json::to_value(ApiKeyView::from(&issued.api_key)).map_err(AppError::internal)?;
    body["key"] = issued.key.clone().into();
    Ok(body)
}

/// Parses scope names, recording unknown ones and an empty list in `fields`.
pub fn parse_scopes(names: &[String], fields: &mut FieldErrors) -> Vec<Scope> {
    if names.is_empty() {
        fields.add("scopes", "must list at least one scope");
    }
    let mut scopes = Vec::new();
    for name in names {
        match Scope::parse(name) {
            Some(scope) => scopes.push(scope),
            None => {
                let known: Vec<&str> = Scope::ALL.iter().map(|scope| scope.as_str()).collect();
                fields.add(
                    "scopes",
                    format!(
                        "{name:?} is not a scope; known scopes: {}",
                        known.join(", ")
                    ),
                );
            }
        }
    }
    scopes
}

/// `GET /v1/api-keys`: newest first, paginated; never the keys themselves.
pub fn list_api_keys(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let (scope, _) = principal.require_session()?.require_role(Role::Admin)?;
    let workspace_id = scope.id();
    let page = request.page()?;
    let keys = app
        .db
        .read(|conn| store::list_keys(conn, workspace_id, page.cursor.as_deref(), page.fetch()))?;
    page.respond(
        keys,
        |key| key.id.as_str(),
        |key| serde_json::json!(ApiKeyView::from(key)),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    scopes: Vec<String>,
    mode: String,
    expires_at: Option<String>,
}

/// `POST /v1/api-keys`: the response is the only place the key ever appears.
pub fn create_api_key(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let session = principal.require_session()?;
    let (scope, _) = session.require_role(Role::Admin)?;
    let workspace_id = scope.id();
    let body: CreateBody = request.json()?;
    let now = app.clock.now();
    let mut fields = FieldErrors::new();
    let name = validate::text(&body.name, 1, 100)
        .map_err(|why| fields.add("name", why))
        .ok();
    let scopes = parse_scopes(&body.scopes, &mut fields);
    let mode = Mode::parse(&body.mode);
    if mode.is_none() {
        fields.add("mode", "must be live or test");
    }
    let expires_at = match body.expires_at.as_deref().map(parse_timestamp) {
        None => None,
        Some(Some(at)) if at > now => Some(at),
        Some(Some(_)) => {
            fields.add("expires_at", "must be in the future");
            None
        }
        Some(None) => {
            fields.add("expires_at", "must be an RFC 3339 timestamp");
            None
        }
    };
    fields.into_result()?;
    let (Some(name), Some(mode)) = (name, mode) else {
        return Err(AppError::internal("validated fields missing"));
    };
    let new_key = NewApiKey {
        workspace_id: workspace_id.to_owned(),
        name,
        scopes,
        mode,
        created_by: Some(session.user_id().to_owned()),
        expires_at,
    };
    let issued = app
        .db
        .write(|conn| api_keys::issue_key(conn, &app.ids, new_key, now))?;
    ApiResponse::json(201, &issued_view(&issued)?)
}

/// `DELETE /v1/api-keys/{id}`: revokes at once.
pub fn revoke_api_key(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let (scope, _) = principal.require_session()?.require_role(Role::Admin)?;
    let id = request.param("id").to_owned();
    let now = app.clock.now();
    let key = app
        .db
        .write(|conn| api_keys::revoke_key(conn, &scope, &id, now))?;
    ApiResponse::json(200, &ApiKeyView::from(&key))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    #[serde(default)]
    grace_seconds: i64,
}

/// `POST /v1/api-keys/{id}/rotate`.
pub fn rotate_api_key(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let session = principal.require_session()?;
    let (scope, _) = session.require_role(Role::Admin)?;
    let body: RotateBody = request.json_or_default()?;
    if !(0..=MAX_GRACE_SECONDS).contains(&body.grace_seconds) {
        return Err(AppError::invalid_field(
            "grace_seconds",
            format!("must be from 0 to {MAX_GRACE_SECONDS} (7 days)"),
        ));
    }
    let id = request.param("id").to_owned();
    let now = app.clock.now();
    let (issued, replaced) = app.db.write(|conn| {
        api_keys::rotate_key(
            conn,
            &app.ids,
            &scope,
            &id,
            chrono::Duration::seconds(body.grace_seconds),
            Some(session.user_id().to_owned()),
            now,
        )
    })?;
    ApiResponse::json(
        201,
        &serde_json::json!({ "api_key": issued_view(&issued)?, "replaced": ApiKeyView::from(&replaced) }),
    )
}
