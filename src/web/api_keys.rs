//! HTTP for API keys. Every endpoint needs an owner or admin console session.

use serde::{Deserialize, Serialize};

use crate::activity::{Action, Event};
use crate::api_keys::format::Scope;
use crate::api_keys::store::{self, ApiKey};
use crate::api_keys::{self, MAX_GRACE_SECONDS, NewApiKey};
use crate::app::App;
use crate::clock::parse_timestamp;
use crate::error::{AppError, FieldErrors};
use crate::ids::{ApiKeyId, UserId};
use crate::validate;
use crate::vocabulary::Mode;
use crate::web::activity::{actor, record};
use crate::web::auth::authenticate_request;
use crate::web::request::{Request, page_response};
use crate::web::response::ApiResponse;
use crate::workspaces::Role;

/// An API key as the API shows it: never the key itself.
#[derive(Serialize)]
struct ApiKeyView<'a> {
    id: &'a str,
    name: &'a str,
    display_prefix: &'a str,
    scopes: Vec<&'static str>,
    mode: Mode,
    created_by: Option<&'a str>,
    created_at: &'a str,
    last_used_at: Option<&'a str>,
    expires_at: Option<&'a str>,
    revoked_at: Option<&'a str>,
    replaced_by: Option<&'a str>,
}

impl<'a> From<&'a ApiKey> for ApiKeyView<'a> {
    fn from(key: &'a ApiKey) -> ApiKeyView<'a> {
        ApiKeyView {
            id: key.id.as_str(),
            name: &key.name,
            display_prefix: &key.display_prefix,
            scopes: key.scopes.iter().map(|scope| scope.as_str()).collect(),
            mode: key.mode,
            created_by: key.created_by.as_ref().map(UserId::as_str),
            created_at: &key.created_at,
            last_used_at: key.last_used_at.as_deref(),
            expires_at: key.expires_at.as_deref(),
            revoked_at: key.revoked_at.as_deref(),
            replaced_by: key.replaced_by.as_ref().map(ApiKeyId::as_str),
        }
    }
}

/// The view plus the secret, for the one response that shows it.
#[derive(Serialize)]
struct IssuedKeyView<'a> {
    #[serde(flatten)]
    api_key: ApiKeyView<'a>,
    key: &'a str,
}

impl<'a> From<&'a api_keys::IssuedKey> for IssuedKeyView<'a> {
    fn from(issued: &'a api_keys::IssuedKey) -> IssuedKeyView<'a> {
        IssuedKeyView {
            api_key: ApiKeyView::from(&issued.api_key),
            key: &issued.key,
        }
    }
}

/// What a rotation answers: the new key (with its secret) and the one it replaces.
#[derive(Serialize)]
struct RotatedKeyView<'a> {
    api_key: IssuedKeyView<'a>,
    replaced: ApiKeyView<'a>,
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
    let (keys, next_cursor) = page.split(keys, |key| key.id.as_str());
    let data: Vec<ApiKeyView<'_>> = keys.iter().map(ApiKeyView::from).collect();
    page_response(&data, next_cursor)
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
        created_by: Some(session.user_id().clone()),
        expires_at,
    };
    let actor = actor(app, request, &principal);
    let issued = app.db.write(|conn| {
        let issued = api_keys::issue_key(conn, &app.ids, new_key, now)?;
        let key = &issued.api_key;
        let event = Event::about(
            Action::ApiKeyCreated,
            workspace_id,
            key.mode,
            key.id.as_str(),
        )
        .detail("name", key.name.as_str())
        .detail(
            "scopes",
            key.scopes
                .iter()
                .map(|scope| scope.as_str())
                .collect::<Vec<_>>(),
        );
        record(app, conn, &actor, event)?;
        Ok(issued)
    })?;
    ApiResponse::json(201, &IssuedKeyView::from(&issued))
}

/// `DELETE /v1/api-keys/{id}`: revokes at once.
pub fn revoke_api_key(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let (scope, _) = principal.require_session()?.require_role(Role::Admin)?;
    let id = ApiKeyId::parse(request.param("id")).ok_or(AppError::NotFound)?;
    let now = app.clock.now();
    let actor = actor(app, request, &principal);
    let key = app.db.write(|conn| {
        let key = api_keys::revoke_key(conn, &scope, &id, now)?;
        let event = Event::about(Action::ApiKeyRevoked, scope.id(), key.mode, key.id.as_str())
            .detail("name", key.name.as_str());
        record(app, conn, &actor, event)?;
        Ok(key)
    })?;
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
    let id = ApiKeyId::parse(request.param("id")).ok_or(AppError::NotFound)?;
    let now = app.clock.now();
    let actor = actor(app, request, &principal);
    let (issued, replaced) = app.db.write(|conn| {
        let (issued, replaced) = api_keys::rotate_key(
            conn,
            &app.ids,
            &scope,
            &id,
            chrono::Duration::seconds(body.grace_seconds),
            Some(session.user_id().clone()),
            now,
        )?;
        let event = Event::about(
            Action::ApiKeyRotated,
            scope.id(),
            replaced.mode,
            replaced.id.as_str(),
        )
        .detail("replaced_by", issued.api_key.id.as_str())
        .detail("grace_seconds", body.grace_seconds);
        record(app, conn, &actor, event)?;
        Ok((issued, replaced))
    })?;
    ApiResponse::json(
        201,
        &RotatedKeyView {
            api_key: IssuedKeyView::from(&issued),
            replaced: ApiKeyView::from(&replaced),
        },
    )
}
