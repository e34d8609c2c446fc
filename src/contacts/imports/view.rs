//! A contact import as the API shows it: one view shared by the import routes and the
//! `import.completed` webhook event.

use serde::Serialize;

use crate::contacts::imports::csvfile::{Charset, Delimiter};
use crate::contacts::imports::store::ImportRow;
use crate::contacts::imports::{ImportMode, ImportStatus};
use crate::error::AppError;
use crate::vocabulary::Mode;

/// An import job as the API shows it.
#[derive(Serialize)]
pub struct ImportView<'a> {
    pub id: &'a str,
    pub mode: Mode,
    pub status: ImportStatus,
    pub import_mode: ImportMode,
    pub group_id: Option<&'a str>,
    pub charset: Charset,
    pub delimiter: Delimiter,
    /// Each column of the header and the field it fills (`null`: ignored).
    pub columns: Vec<ColumnView>,
    pub ignored_columns: Vec<String>,
    pub bytes_received: i64,
    pub bytes_read: i64,
    pub rows_read: i64,
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub rejected: i64,
    pub rolled_back: Option<i64>,
    pub error: Option<&'a str>,
    pub created_at: &'a str,
    pub started_at: Option<&'a str>,
    pub finished_at: Option<&'a str>,
    pub rolled_back_at: Option<&'a str>,
    pub updated_at: &'a str,
}

#[derive(Serialize)]
pub struct ColumnView {
    pub name: String,
    pub field: Option<String>,
}

pub fn import_view(job: &ImportRow) -> Result<ImportView<'_>, AppError> {
    let header: Vec<String> = serde_json::from_str(&job.header).map_err(AppError::internal)?;
    let mapping: Vec<Option<String>> =
        serde_json::from_str(&job.mapping).map_err(AppError::internal)?;
    let ignored_columns = serde_json::from_str(&job.ignored_columns).map_err(AppError::internal)?;
    Ok(ImportView {
        id: job.id.as_str(),
        mode: job.mode,
        status: job.status,
        import_mode: job.import_mode,
        group_id: job.group_id.as_ref().map(|id| id.as_str()),
        charset: job.charset,
        delimiter: job.delimiter,
        columns: header
            .into_iter()
            .zip(mapping)
            .map(|(name, field)| ColumnView { name, field })
            .collect(),
        ignored_columns,
        bytes_received: job.bytes_received,
        bytes_read: job.bytes_read,
        rows_read: job.rows_read,
        created: job.created,
        updated: job.updated,
        unchanged: job.unchanged,
        rejected: job.rejected,
        rolled_back: job.rolled_back,
        error: job.error.as_deref(),
        created_at: &job.created_at,
        started_at: job.started_at.as_deref(),
        finished_at: job.finished_at.as_deref(),
        rolled_back_at: job.rolled_back_at.as_deref(),
        updated_at: &job.updated_at,
    })
}

/// The import `id` of the workspace and mode as the API shows it, for an event; `None` when
/// there is none.
pub fn find_json(
    conn: &rusqlite::Connection,
    workspace_id: &crate::ids::WorkspaceId,
    mode: Mode,
    id: &str,
) -> Result<Option<serde_json::Value>, AppError> {
    let Some(id) = crate::ids::ContactImportId::parse(id) else {
        return Ok(None);
    };
    let Some(job) = crate::contacts::imports::store::find_import(conn, workspace_id, mode, &id)?
    else {
        return Ok(None);
    };
    serde_json::to_value(import_view(&job)?)
        .map(Some)
        .map_err(AppError::internal)
}
