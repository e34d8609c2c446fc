//! SQL for import jobs and their rejected rows. Reads of a job name its workspace and mode,
//! except the runner's, which works on the stored row itself.

use rusqlite::{Connection, OptionalExtension, Row, named_params};

use crate::contacts::imports::csvfile::{Charset, Delimiter};
use crate::contacts::imports::{ImportMode, ImportStatus};
use crate::contacts::store::ContactRow;
use crate::error::AppError;
use crate::ids::{ContactId, ContactImportId, GroupId, WorkspaceId};
use crate::vocabulary::Mode;

/// An import job as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRow {
    pub id: ContactImportId,
    pub workspace_id: WorkspaceId,
    pub mode: Mode,
    pub status: ImportStatus,
    pub import_mode: ImportMode,
    pub group_id: Option<GroupId>,
    pub charset: Charset,
    pub delimiter: Delimiter,
    /// A JSON array of the header's columns.
    pub header: String,
    /// A JSON array: per column, the field it fills (`null` for none).
    pub mapping: String,
    /// A JSON array of the header names no field takes.
    pub ignored_columns: String,
    /// The spooled file's name under the imports directory, while the job has one.
    pub spool_file: Option<String>,
    pub bytes_received: i64,
    pub bytes_read: i64,
    pub rows_read: i64,
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub rejected: i64,
    pub rolled_back: Option<i64>,
    pub error: Option<String>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub rolled_back_at: Option<String>,
    pub updated_at: String,
}

const IMPORT_COLUMNS: &str = "id, workspace_id, mode, status, import_mode, group_id, charset,
    delimiter, header, mapping, ignored_columns, spool_file, bytes_received, bytes_read,
    rows_read, created, updated, unchanged, rejected, rolled_back, error, created_at, started_at,
    finished_at, rolled_back_at, updated_at";

fn import_row(row: &Row<'_>) -> rusqlite::Result<ImportRow> {
    Ok(ImportRow {
        id: row.get(0)?,
        workspace_id: row.get(1)?,
        mode: row.get(2)?,
        status: row.get(3)?,
        import_mode: row.get(4)?,
        group_id: row.get(5)?,
        charset: row.get(6)?,
        delimiter: row.get(7)?,
        header: row.get(8)?,
        mapping: row.get(9)?,
        ignored_columns: row.get(10)?,
        spool_file: row.get(11)?,
        bytes_received: row.get(12)?,
        bytes_read: row.get(13)?,
        rows_read: row.get(14)?,
        created: row.get(15)?,
        updated: row.get(16)?,
        unchanged: row.get(17)?,
        rejected: row.get(18)?,
        rolled_back: row.get(19)?,
        error: row.get(20)?,
        created_at: row.get(21)?,
        started_at: row.get(22)?,
        finished_at: row.get(23)?,
        rolled_back_at: row.get(24)?,
        updated_at: row.get(25)?,
    })
}

pub fn insert_import(conn: &Connection, job: &ImportRow) -> Result<(), AppError> {
    conn.prepare_cached(&format!(
        "INSERT INTO contact_imports ({IMPORT_COLUMNS}) VALUES (:id, :workspace_id, :mode,
            :status, :import_mode, :group_id, :charset, :delimiter, :header, :mapping,
            :ignored_columns, :spool_file, :bytes_received, :bytes_read, :rows_read, :created,
            :updated, :unchanged, :rejected, :rolled_back, :error, :created_at, :started_at,
            :finished_at, :rolled_back_at, :updated_at)"
    ))?
    .execute(named_params! {
        ":id": job.id,
        ":workspace_id": job.workspace_id,
        ":mode": job.mode,
        ":status": job.status,
        ":import_mode": job.import_mode,
        ":group_id": job.group_id,
        ":charset": job.charset,
        ":delimiter": job.delimiter,
        ":header": job.header,
        ":mapping": job.mapping,
        ":ignored_columns": job.ignored_columns,
        ":spool_file": job.spool_file,
        ":bytes_received": job.bytes_received,
        ":bytes_read": job.bytes_read,
        ":rows_read": job.rows_read,
        ":created": job.created,
        ":updated": job.updated,
        ":unchanged": job.unchanged,
        ":rejected": job.rejected,
        ":rolled_back": job.rolled_back,
        ":error": job.error,
        ":created_at": job.created_at,
        ":started_at": job.started_at,
        ":finished_at": job.finished_at,
        ":rolled_back_at": job.rolled_back_at,
        ":updated_at": job.updated_at,
    })?;
    Ok(())
}

/// Writes a job's status, progress and outcome (everything that changes after creation).
pub fn update_import(conn: &Connection, job: &ImportRow) -> Result<(), AppError> {
    conn.prepare_cached(
        "UPDATE contact_imports SET status = :status, spool_file = :spool_file,
            bytes_read = :bytes_read, rows_read = :rows_read, created = :created,
            updated = :updated, unchanged = :unchanged, rejected = :rejected,
            rolled_back = :rolled_back, error = :error, started_at = :started_at,
            finished_at = :finished_at, rolled_back_at = :rolled_back_at,
            updated_at = :updated_at
         WHERE id = :id",
    )?
    .execute(named_params! {
        ":id": job.id,
        ":status": job.status,
        ":spool_file": job.spool_file,
        ":bytes_read": job.bytes_read,
        ":rows_read": job.rows_read,
        ":created": job.created,
        ":updated": job.updated,
        ":unchanged": job.unchanged,
        ":rejected": job.rejected,
        ":rolled_back": job.rolled_back,
        ":error": job.error,
        ":started_at": job.started_at,
        ":finished_at": job.finished_at,
        ":rolled_back_at": job.rolled_back_at,
        ":updated_at": job.updated_at,
    })?;
    Ok(())
}

/// The job `id` of the workspace in `mode`.
pub fn find_import(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    mode: Mode,
    id: &ContactImportId,
) -> Result<Option<ImportRow>, AppError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {IMPORT_COLUMNS} FROM contact_imports
             WHERE id = :id AND workspace_id = :workspace_id AND mode = :mode"
        ))?
        .query_row(
            named_params! { ":id": id, ":workspace_id": workspace_id, ":mode": mode },
            import_row,
        )
        .optional()?)
}

/// The job `id` as stored, for the runner.
pub fn load_import(conn: &Connection, id: &ContactImportId) -> Result<Option<ImportRow>, AppError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {IMPORT_COLUMNS} FROM contact_imports WHERE id = :id"
        ))?
        .query_row(named_params! { ":id": id }, import_row)
        .optional()?)
}

/// The oldest job still queued or running (any workspace), for the runner.
pub fn next_pending_import(conn: &Connection) -> Result<Option<ImportRow>, AppError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {IMPORT_COLUMNS} FROM contact_imports
             WHERE status IN ('queued', 'running') ORDER BY rowid LIMIT 1"
        ))?
        .query_row([], import_row)
        .optional()?)
}

/// The spooled files of jobs still queued or running: every other file in the imports
/// directory is left over and may go.
pub fn pending_spool_files(conn: &Connection) -> Result<Vec<String>, AppError> {
    let mut stmt = conn.prepare_cached(
        "SELECT spool_file FROM contact_imports
         WHERE status IN ('queued', 'running') AND spool_file IS NOT NULL",
    )?;
    let rows = stmt.query_map([], |row| row.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The workspace's jobs of `mode`, newest first, after the cursor `before` (a job id).
pub fn list_imports(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    mode: Mode,
    before: Option<&str>,
    limit: usize,
) -> Result<Vec<ImportRow>, AppError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {IMPORT_COLUMNS} FROM contact_imports
         WHERE workspace_id = :workspace_id AND mode = :mode
           AND (:before IS NULL
                OR rowid < (SELECT rowid FROM contact_imports WHERE id = :before))
         ORDER BY rowid DESC LIMIT :limit"
    ))?;
    let rows = stmt.query_map(
        named_params! {
            ":workspace_id": workspace_id,
            ":mode": mode,
            ":before": before,
            ":limit": i64::try_from(limit).unwrap_or(i64::MAX),
        },
        import_row,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn insert_reject(
    conn: &Connection,
    import_id: &ContactImportId,
    row_number: i64,
    reason: &str,
    fields: &str,
) -> Result<(), AppError> {
    conn.prepare_cached(
        "INSERT INTO contact_import_rejects (import_id, row_number, reason, fields)
         VALUES (:import_id, :row_number, :reason, :fields)",
    )?
    .execute(named_params! {
        ":import_id": import_id, ":row_number": row_number, ":reason": reason, ":fields": fields,
    })?;
    Ok(())
}

/// The job's rejected rows in file order: (row number, reason, JSON array of the fields).
pub fn list_rejects(
    conn: &Connection,
    import_id: &ContactImportId,
) -> Result<Vec<(i64, String, String)>, AppError> {
    let mut stmt = conn.prepare_cached(
        "SELECT row_number, reason, fields FROM contact_import_rejects
         WHERE import_id = :import_id ORDER BY row_number",
    )?;
    let rows = stmt.query_map(named_params! { ":import_id": import_id }, |row| {
        Ok((row.get(0)?, row.get(1)?, row.get(2)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The contact (not deleted) of the workspace in `mode` with this phone or this email, and the
/// import that created it.
pub fn find_contact_by(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    mode: Mode,
    column: AddressColumn,
    value: &str,
) -> Result<Option<(ContactRow, Option<ContactImportId>)>, AppError> {
    let sql = match column {
        AddressColumn::Phone => IMPORT_LOOKUP_BY_PHONE,
        AddressColumn::Email => IMPORT_LOOKUP_BY_EMAIL,
    };
    Ok(conn
        .prepare_cached(sql)?
        .query_row(rusqlite::params![workspace_id, mode, value], |row| {
            let contact = crate::contacts::store::contact_row(row)?;
            Ok((contact, row.get(19)?))
        })
        .optional()?)
}

/// Which unique address a lookup goes by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressColumn {
    Phone,
    Email,
}

const IMPORT_LOOKUP_BY_PHONE: &str = "SELECT id, workspace_id, mode, name, first_name, last_name,
    phone, phone_input, email, language, custom, phone_state, email_state, sms_unsubscribed_at,
    sms_unsubscribed_via, email_unsubscribed_at, email_unsubscribed_via, created_at, updated_at,
    import_id
    FROM contacts WHERE workspace_id = ?1 AND mode = ?2 AND phone = ?3
      AND deleted_at IS NULL";
const IMPORT_LOOKUP_BY_EMAIL: &str = "SELECT id, workspace_id, mode, name, first_name, last_name,
    phone, phone_input, email, language, custom, phone_state, email_state, sms_unsubscribed_at,
    sms_unsubscribed_via, email_unsubscribed_at, email_unsubscribed_via, created_at, updated_at,
    import_id
    FROM contacts WHERE workspace_id = ?1 AND mode = ?2 AND email = ?3
      AND deleted_at IS NULL";

/// Whether the group still exists (it may have been deleted while the job ran).
pub fn group_exists(conn: &Connection, group_id: &GroupId) -> Result<bool, AppError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM groups WHERE id = :id")?
        .query_row(named_params! { ":id": group_id }, |_| Ok(()))
        .optional()?
        .is_some())
}

/// Soft-deletes up to `batch` contacts (not deleted yet) that the import created, the first ones
/// after rowid `after` of its workspace and mode. Returns how many, and the rowid to go on
/// after. The search walks `contacts_by_workspace` (workspace, mode, rowid): an index of the
/// contacts by import would cost every imported row an insert, for a rollback's sake.
pub fn delete_imported_contacts(
    conn: &Connection,
    job: &ImportRow,
    after: i64,
    now: &str,
    batch: usize,
) -> Result<(usize, i64), AppError> {
    let params = named_params! {
        ":workspace_id": job.workspace_id,
        ":mode": job.mode,
        ":import_id": job.id,
        ":after": after,
        ":batch": i64::try_from(batch).unwrap_or(i64::MAX),
    };
    let last: Option<i64> = conn
        .prepare_cached(
            "SELECT max(rowid) FROM (SELECT rowid FROM contacts
                 WHERE workspace_id = :workspace_id AND mode = :mode AND rowid > :after
                   AND import_id = :import_id AND deleted_at IS NULL
                 ORDER BY rowid LIMIT :batch)",
        )?
        .query_row(params, |row| row.get(0))?;
    let Some(last) = last else {
        return Ok((0, after));
    };
    let deleted = conn
        .prepare_cached(
            "UPDATE contacts SET deleted_at = :now, updated_at = :now
             WHERE workspace_id = :workspace_id AND mode = :mode
               AND rowid > :after AND rowid <= :last
               AND import_id = :import_id AND deleted_at IS NULL",
        )?
        .execute(named_params! {
            ":workspace_id": job.workspace_id,
            ":mode": job.mode,
            ":import_id": job.id,
            ":after": after,
            ":last": last,
            ":now": now,
        })?;
    Ok((deleted, last))
}

/// Adds one contact to a group (nothing when it is a member already).
pub fn add_member(
    conn: &Connection,
    group_id: &GroupId,
    contact_id: &ContactId,
    now: &str,
) -> Result<(), AppError> {
    crate::contacts::store::add_group_members(
        conn,
        group_id,
        std::slice::from_ref(contact_id),
        now,
    )?;
    Ok(())
}
