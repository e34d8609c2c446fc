//! HTTP for CSV imports of contacts. The upload's body never sits in memory: the edge streams a
//! `text/csv` body to `SPOOLED_UPLOAD_PATH` into a spool file, the handler checks the options and
//! the header against it and hands the file to a queued job, which the import runner works in
//! the background. An API key works on the imports of its own mode; a console session on the
//! live ones.

use crate::activity::{Action, Event};
use crate::api_keys::format::Scope;
use crate::app::App;
use crate::contacts::imports::store;
use crate::contacts::imports::view::import_view;
use crate::contacts::imports::{self as domain, ImportOptions, Upload};
use crate::error::AppError;
use crate::ids::ContactImportId;
use crate::web::activity::{actor, record};
use crate::web::auth::authenticate_request;
use crate::web::idempotency::{self, OPTIONAL_PER_WORKSPACE};
use crate::web::request::{Request, page_response};
use crate::web::response::{ApiResponse, CSV};

/// The one route whose body the edge streams to disk (when sent as `text/csv`).
pub const SPOOLED_UPLOAD_PATH: &str = "/v1/contacts/imports";

/// `text/csv`, with any parameters (the charset is the import's `charset` option's business).
pub fn is_csv_media_type(value: &str) -> bool {
    value
        .split(';')
        .next()
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("text/csv"))
}

/// The import options among the query parameters; any other parameter is kept to be refused.
fn options_of(request: &Request<'_>) -> ImportOptions {
    let mut options = ImportOptions::default();
    for (name, value) in request.query_pairs() {
        match name.as_str() {
            "mode" => options.import_mode = Some(value),
            "group" => options.group = Some(value),
            "charset" => options.charset = Some(value),
            "delimiter" => options.delimiter = Some(value),
            _ => match name.strip_prefix("map.") {
                Some(column) => options.map.push((column.to_owned(), value)),
                None => options.unknown.push(name),
            },
        }
    }
    options
}

/// `POST /v1/contacts/imports`: a CSV body and options as query parameters; 202 with the
/// queued job. Bad options are 422 naming each, and the upload is discarded. Scope
/// `contacts:write`. Accepts an `Idempotency-Key` (the file and the query are the request).
pub fn create_import(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::ContactsWrite)?;
    if !request
        .header("Content-Type")
        .is_some_and(is_csv_media_type)
    {
        return Err(AppError::UnsupportedMediaType {
            expected: "text/csv",
        });
    }
    let spooled = request.spooled_body()?;
    let upload_path = spooled.path().to_owned();
    let upload = Upload {
        path: &upload_path,
        bytes: spooled.bytes(),
    };
    let options = options_of(request);
    let mode = principal.mode();
    let prepared = app
        .db
        .read(|conn| domain::prepare_import(conn, &scope, mode, options, upload))?;
    let id = ContactImportId::generate(&app.ids);
    let file = format!("{id}.csv");
    let adopted = domain::imports_dir(&app.config.db_path).join(&file);
    let actor = actor(app, request, &principal);
    // Set once the job that owns the file is written, in the transaction that commits it.
    let mut adopted_by_job = false;
    let response =
        idempotency::in_transaction(app, request, &principal, OPTIONAL_PER_WORKSPACE, |conn| {
            // The job owns the file from here; the upload's own name is then gone, so its guard
            // deletes nothing. A replay never gets here: the guard deletes the upload.
            std::fs::rename(&upload_path, &adopted)
                .map_err(|err| AppError::Internal(format!("adopting an upload: {err}")))?;
            let event = Event::about(Action::ContactsImportStarted, scope.id(), mode, id.as_str());
            let job =
                domain::create_import(conn, id, &scope, mode, &prepared, &file, app.clock.now())?;
            record(app, conn, &actor, event)?;
            let response = ApiResponse::json(202, &import_view(&job)?)?;
            adopted_by_job = true;
            Ok(response)
        });
    if !(adopted_by_job && response.is_ok()) {
        let _ = std::fs::remove_file(&adopted);
    }
    let response = response?;
    if response.status == 202 {
        app.imports.notify();
    }
    Ok(response)
}

/// `GET /v1/contacts/imports`: the caller's imports, newest first. Scope `contacts:read`.
pub fn list_imports(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::ContactsRead)?;
    let page = request.page()?;
    let mode = principal.mode();
    let jobs = app.db.read(|conn| {
        store::list_imports(conn, scope.id(), mode, page.cursor.as_deref(), page.fetch())
    })?;
    let (jobs, next_cursor) = page.split(jobs, |job| job.id.as_str());
    let data = jobs
        .iter()
        .map(import_view)
        .collect::<Result<Vec<_>, _>>()?;
    page_response(&data, next_cursor)
}

fn import_id(request: &Request<'_>) -> Result<ContactImportId, AppError> {
    ContactImportId::parse(request.param("id")).ok_or(AppError::NotFound)
}

/// `GET /v1/contacts/imports/{id}`: the job and its progress. Scope `contacts:read`.
pub fn show_import(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::ContactsRead)?;
    let id = import_id(request)?;
    let mode = principal.mode();
    let job = app
        .db
        .read(|conn| domain::find_import(conn, &scope, mode, &id))?;
    ApiResponse::json(200, &import_view(&job)?)
}

/// `GET /v1/contacts/imports/{id}/rejects`: the rejected rows as CSV (`row`, `reason`, then the
/// file's columns). Scope `contacts:read`.
pub fn download_rejects(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::ContactsRead)?;
    let id = import_id(request)?;
    let mode = principal.mode();
    let body = app.db.read(|conn| {
        let job = domain::find_import(conn, &scope, mode, &id)?;
        domain::rejects_csv(conn, &job)
    })?;
    Ok(ApiResponse::bytes(200, CSV, body).with_header(
        "Content-Disposition",
        format!("attachment; filename=\"{id}-rejects.csv\""),
    ))
}

/// `POST /v1/contacts/imports/{id}/cancel`: stops a queued or running import; what it wrote
/// stays, and its counts say exactly what. 409 once it has ended. Scope `contacts:write`.
/// Accepts an `Idempotency-Key`.
pub fn cancel_import(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::ContactsWrite)?;
    let id = import_id(request)?;
    let mode = principal.mode();
    // The job's spooled file, deleted once the cancel is committed.
    let mut spool_file = None;
    let response =
        idempotency::in_transaction(app, request, &principal, OPTIONAL_PER_WORKSPACE, |conn| {
            let (job, file) = domain::cancel_import(conn, &scope, mode, &id, app.clock.now())?;
            let response = ApiResponse::json(200, &import_view(&job)?)?;
            spool_file = file;
            Ok(response)
        })?;
    if let Some(file) = spool_file {
        let _ = std::fs::remove_file(domain::imports_dir(&app.config.db_path).join(file));
    }
    Ok(response)
}

/// `POST /v1/contacts/imports/{id}/rollback`: soft-deletes the contacts the import created, a
/// batch per transaction (updates it made stay). 409 while it is queued or running. Calling
/// it again after an interruption finishes it. Scope `contacts:write`.
///
/// Accepts an `Idempotency-Key`. The batches cannot share one transaction with the key's
/// record, so a replay (or a key used with another request) is answered first, changing
/// nothing; the answer is stored with one last step, which finds the job rolled back and
/// answers it as it is. A refusal (404, 409) is not stored: cancel the import and retry.
pub fn rollback_import(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::ContactsWrite)?;
    let id = import_id(request)?;
    let mode = principal.mode();
    if let Some(replay) =
        idempotency::replay_completed(app, request, &principal, OPTIONAL_PER_WORKSPACE)?
    {
        return Ok(replay);
    }
    let step = |conn: &rusqlite::Connection, after| {
        domain::rollback_step(conn, &scope, mode, &id, after, app.clock.now())
    };
    let mut after = 0;
    while let (_, Some(last)) = app.db.write(|conn| step(conn, after))? {
        after = last;
    }
    idempotency::in_transaction(app, request, &principal, OPTIONAL_PER_WORKSPACE, |conn| {
        let (job, _) = step(conn, after)?;
        ApiResponse::json(200, &import_view(&job)?)
    })
}
