//! CSV imports of contacts (docs/rules/contacts.md, "Imports"). The upload is spooled to a file
//! by the edge; `prepare_import` checks the options and the header against it and
//! `create_import` records a queued job that owns the file. The runner (`runner.rs`) then reads
//! the file in chunks: each row is checked exactly as `POST /v1/contacts` checks a body
//! (`check_new_contact`) outside any transaction, and each part of a chunk (`PART_ROWS` rows,
//! in its own savepoint; the parts share a transaction while nothing else writes) does the
//! lookups, the writes, the rejects and the job's counters together, so the job always says
//! exactly how far it got, and resumes from there after a crash.

pub mod csvfile;
pub mod runner;
pub mod store;
pub mod view;

use std::path::{Path, PathBuf};

use rusqlite::Connection;
use serde_json::Value;

use crate::clock::{Timestamp, format_timestamp};
use crate::contacts::fields::{FieldType, one_of};
use crate::contacts::store::{self as contacts_store, ContactRow, FieldRow};
use crate::contacts::{CheckedContact, NewContact, check_new_contact};
use crate::error::{AppError, FieldErrors};
use crate::ids::{ContactId, ContactImportId, GroupId, Ids};
use crate::scope::WorkspaceScope;
use crate::secrets::ServerKey;
use crate::vocabulary::Mode;
use csvfile::{Charset, Delimiter};
use store::{AddressColumn, ImportRow};

/// Rows read and checked ahead of the writes, and written in one transaction while nobody else
/// writes: large enough that a commit (an fsync, ~5 ms on the 2-core machine) is small beside
/// the rows.
pub const CHUNK_ROWS: usize = 5_000;
/// Rows written each time the import holds the writer: small enough that a send waiting for it
/// is not held long (with whole 5,000-row chunks per hold, the sends' p99 during an import was
/// over 1 s; docs/rules/contacts.md, "Imports").
pub const PART_ROWS: usize = 250;
/// Contacts soft-deleted per write transaction by a rollback.
const ROLLBACK_BATCH: usize = 5_000;

crate::text_enum! {
    /// What an import does with a row whose phone or email a contact already has.
    pub enum ImportMode {
        /// Only new contacts: a row matching an existing contact is rejected.
        Create = "create",
        /// Update the matching contact, or create one.
        Upsert = "upsert",
        /// Only existing contacts: a row matching none is rejected.
        Update = "update",
    }
}

crate::text_enum! {
    /// Where an import job is.
    pub enum ImportStatus {
        Queued = "queued",
        Running = "running",
        Completed = "completed",
        Failed = "failed",
        Cancelled = "cancelled",
    }
}

impl ImportStatus {
    /// Whether the job has ended (and so may be rolled back, never resumed).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            ImportStatus::Completed | ImportStatus::Failed | ImportStatus::Cancelled
        )
    }
}

/// The contact field a column fills.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Name,
    FirstName,
    LastName,
    Phone,
    Email,
    Language,
    Custom(String),
}

const FIXED_TARGETS: &[(&str, Target)] = &[
    ("name", Target::Name),
    ("first_name", Target::FirstName),
    ("last_name", Target::LastName),
    ("phone", Target::Phone),
    ("email", Target::Email),
    ("language", Target::Language),
];

impl Target {
    fn as_text(&self) -> String {
        match self {
            Target::Custom(key) => format!("custom.{key}"),
            fixed => FIXED_TARGETS
                .iter()
                .find(|(_, target)| target == fixed)
                .map_or_else(String::new, |(name, _)| (*name).to_owned()),
        }
    }

    /// A field name as a mapping writes it (`phone`, `custom.plan`), checked against the
    /// workspace's custom field definitions.
    fn parse(text: &str, definitions: &[FieldRow]) -> Option<Target> {
        if let Some(key) = text.strip_prefix("custom.") {
            return definitions
                .iter()
                .any(|field| field.key == key)
                .then(|| Target::Custom(key.to_owned()));
        }
        FIXED_TARGETS
            .iter()
            .find(|(name, _)| *name == text)
            .map(|(_, target)| target.clone())
    }
}

/// The options of `POST /v1/contacts/imports`, as sent (query parameters).
#[derive(Debug, Default, Clone)]
pub struct ImportOptions {
    pub import_mode: Option<String>,
    pub group: Option<String>,
    pub charset: Option<String>,
    pub delimiter: Option<String>,
    /// `map.<header>=<field>` pairs, in the order sent.
    pub map: Vec<(String, String)>,
    /// Parameters that are no option, to be refused by name.
    pub unknown: Vec<String>,
}

/// An upload checked against its options, ready to become a job.
#[derive(Debug, Clone)]
pub struct PreparedImport {
    import_mode: ImportMode,
    group_id: Option<GroupId>,
    charset: Charset,
    delimiter: Delimiter,
    header: Vec<String>,
    mapping: Vec<Option<Target>>,
    ignored: Vec<String>,
    data_offset: u64,
    bytes_received: u64,
}

/// The spooled upload the edge wrote: where, and how many bytes.
#[derive(Debug, Clone, Copy)]
pub struct Upload<'a> {
    pub path: &'a Path,
    pub bytes: u64,
}

fn io_error(err: std::io::Error) -> AppError {
    AppError::Internal(format!("reading the spooled import: {err}"))
}

/// Checks every option and the file's header; 422 naming each bad option (or the body), and
/// nothing is recorded. Reads the workspace's groups and field definitions on `conn`.
pub fn prepare_import(
    conn: &Connection,
    scope: &WorkspaceScope,
    mode: Mode,
    options: ImportOptions,
    upload: Upload<'_>,
) -> Result<PreparedImport, AppError> {
    let mut errors = FieldErrors::new();
    for name in &options.unknown {
        errors.add(
            name.clone(),
            "is not an import option (mode, group, charset, delimiter, map.<column>)",
        );
    }
    let import_mode = match options.import_mode.as_deref() {
        None => Some(ImportMode::Create),
        Some(text) => ImportMode::parse(text).or_else(|| {
            errors.add("mode", one_of(ImportMode::ALL));
            None
        }),
    };
    let group_id = options.group.as_deref().and_then(|text| {
        let found = GroupId::parse(text)
            .map(|id| contacts_store::find_group(conn, scope.id(), mode, &id))
            .transpose();
        match found {
            Ok(Some(Some(group))) => Some(group.id),
            Ok(_) => {
                errors.add("group", "no such group among the caller's");
                None
            }
            Err(err) => {
                errors.add("group", "could not be checked");
                log::warn!(error:% = err; "checking an import's group failed");
                None
            }
        }
    });
    let charset = match options.charset.as_deref() {
        None => Some(csvfile::detect_charset(upload.path).map_err(io_error)?),
        Some(text) => Charset::parse(&text.to_ascii_lowercase()).or_else(|| {
            errors.add("charset", one_of(Charset::ALL));
            None
        }),
    };
    let delimiter = match options.delimiter.as_deref() {
        None => None,
        Some("\t" | "tab" | "\\t") => Some(Some(Delimiter::Tab)),
        Some(text) => match Delimiter::parse(text) {
            Some(delimiter) => Some(Some(delimiter)),
            None => {
                errors.add("delimiter", "must be one of , ; tab");
                Some(None)
            }
        },
    };
    // The file's head is read whenever it can be (its charset and delimiter are known), so a
    // bad `map.<column>` is named with the other bad options, not after they are fixed.
    let (Some(charset), None | Some(Some(_))) = (charset, delimiter) else {
        return Err(AppError::Validation(errors));
    };
    let head = csvfile::read_head(upload.path, charset, delimiter.flatten()).map_err(io_error)?;
    let Some(head) = head else {
        errors.add("body", "is empty: a CSV file starts with its header row");
        return Err(AppError::Validation(errors));
    };
    let definitions = contacts_store::list_fields(conn, scope.id(), None, None)?;
    let mapping = resolve_mapping(&head.columns, &options.map, &definitions, &mut errors);
    errors.into_result()?;
    let Some(import_mode) = import_mode else {
        return Err(AppError::internal("an unknown import mode was not named"));
    };
    let ignored = head
        .columns
        .iter()
        .zip(&mapping)
        .filter(|(_, target)| target.is_none())
        .map(|(column, _)| column.clone())
        .collect();
    Ok(PreparedImport {
        import_mode,
        group_id,
        charset,
        delimiter: head.delimiter,
        header: head.columns,
        mapping,
        ignored,
        data_offset: head.data_offset,
        bytes_received: upload.bytes,
    })
}

/// Per column of the header, the field it fills. With `map.` options, exactly those (each must
/// name a column of the header and a field); without, headers that are field names or custom
/// field keys (case-insensitively) fill those fields. Either way a field is filled by one
/// column at most, and the phone or the email must be among them.
fn resolve_mapping(
    columns: &[String],
    map: &[(String, String)],
    definitions: &[FieldRow],
    errors: &mut FieldErrors,
) -> Vec<Option<Target>> {
    let mut mapping: Vec<Option<Target>> = vec![None; columns.len()];
    if map.is_empty() {
        for (slot, column) in mapping.iter_mut().zip(columns) {
            let wanted = column.to_lowercase();
            *slot = Target::parse(&wanted, definitions).or_else(|| {
                definitions
                    .iter()
                    .find(|field| field.key == wanted)
                    .map(|field| Target::Custom(field.key.clone()))
            });
        }
        // Then the common names (`Téléphone`, `Mobile`), each for a field no column has yet: a
        // column named exactly keeps its field, and of two synonyms the first does.
        let folded: Vec<String> = columns.iter().map(|column| fold_header(column)).collect();
        let synonyms: Vec<Option<Target>> = folded.iter().map(|f| header_synonym(f)).collect();
        // `Nom` beside a first-name column (`Nom`, `Prénom`) is the family name, not the whole.
        let has_first_name = synonyms.contains(&Some(Target::FirstName));
        for (index, synonym) in synonyms.into_iter().enumerate() {
            let synonym = match synonym {
                Some(Target::Name) if has_first_name && folded[index] == "nom" => {
                    Some(Target::LastName)
                }
                other => other,
            };
            if mapping[index].is_none()
                && let Some(target) = synonym
                && !mapping.contains(&Some(target.clone()))
            {
                mapping[index] = Some(target);
            }
        }
    } else {
        for (column, field) in map {
            let option = format!("map.{column}");
            let Some(index) = columns.iter().position(|name| name == column) else {
                errors.add(option, "names no column of the file's header row");
                continue;
            };
            if field == "ignore" {
                continue;
            }
            match Target::parse(field, definitions) {
                Some(target) => mapping[index] = Some(target),
                None => errors.add(
                    option,
                    "must be name, first_name, last_name, phone, email, language, \
                     custom.<a defined key> or ignore",
                ),
            }
        }
    }
    let mut seen: Vec<&Target> = Vec::new();
    for target in mapping.iter().flatten() {
        if seen.contains(&target) {
            errors.add(
                "map",
                format!(
                    "two columns fill {}; map one of them to ignore",
                    target.as_text()
                ),
            );
        }
        seen.push(target);
    }
    let has_address = seen
        .iter()
        .any(|target| matches!(target, Target::Phone | Target::Email));
    if !has_address && !errors.contains("map") {
        errors.add(
            "map",
            "no column fills phone or email: a contact needs one of them",
        );
    }
    mapping
}

/// The field a header commonly names in English or French (`Téléphone`, `E-mail`, `Prénom`,
/// `Mobile`), given the header folded (`fold_header`: without case, accents, spaces, dashes or
/// underscores). Only names that
/// mean that field and nothing else (`Numéro` or `Contact` could be an order number or a
/// company: left out). docs/rules/contacts.md lists them; the console guesses the same
/// (static/console/pages/import.js).
fn header_synonym(folded: &str) -> Option<Target> {
    let target = match folded {
        "fullname" | "nomcomplet" | "nom" | "contactname" => Target::Name,
        "firstname" | "givenname" | "prenom" => Target::FirstName,
        "lastname" | "surname" | "familyname" | "nomdefamille" => Target::LastName,
        "phone" | "phonenumber" | "telephone" | "tel" | "mobile" | "mobilephone" | "cell"
        | "cellphone" | "portable" | "gsm" | "numerodetelephone" => Target::Phone,
        "email" | "mail" | "emailaddress" | "courriel" | "adresseemail" | "adressemail" => {
            Target::Email
        }
        "language" | "lang" | "langue" => Target::Language,
        _ => return None,
    };
    Some(target)
}

/// A header without case, accents, spaces, dashes, underscores or dots (`Prénom` → `prenom`), as
/// the console's `fold` makes it.
fn fold_header(column: &str) -> String {
    column
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            'é' | 'è' | 'ê' | 'ë' => Some('e'),
            'à' | 'â' => Some('a'),
            'î' | 'ï' => Some('i'),
            'ô' => Some('o'),
            'ù' | 'û' => Some('u'),
            'ç' => Some('c'),
            // Combining accents (a decomposed `é`), spaces of every kind, and separators.
            '\u{300}'..='\u{36f}' | '-' | '_' | '.' => None,
            space if space.is_whitespace() => None,
            other => Some(other),
        })
        .collect()
}

/// Where import files are spooled: `imports/` beside the database.
pub fn imports_dir(db_path: &Path) -> PathBuf {
    db_path
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join("imports")
}

fn json_text<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, AppError> {
    serde_json::to_string(value).map_err(AppError::internal)
}

/// Records a queued job owning `spool_file` (already in the imports directory).
pub fn create_import(
    conn: &Connection,
    id: ContactImportId,
    scope: &WorkspaceScope,
    mode: Mode,
    prepared: &PreparedImport,
    spool_file: &str,
    now: Timestamp,
) -> Result<ImportRow, AppError> {
    let now = format_timestamp(now);
    let mapping: Vec<Option<String>> = prepared
        .mapping
        .iter()
        .map(|target| target.as_ref().map(Target::as_text))
        .collect();
    let job = ImportRow {
        id,
        workspace_id: scope.id().clone(),
        mode,
        status: ImportStatus::Queued,
        import_mode: prepared.import_mode,
        group_id: prepared.group_id.clone(),
        charset: prepared.charset,
        delimiter: prepared.delimiter,
        header: json_text(&prepared.header)?,
        mapping: json_text(&mapping)?,
        ignored_columns: json_text(&prepared.ignored)?,
        spool_file: Some(spool_file.to_owned()),
        bytes_received: i64::try_from(prepared.bytes_received).unwrap_or(i64::MAX),
        bytes_read: i64::try_from(prepared.data_offset).unwrap_or(i64::MAX),
        rows_read: 0,
        created: 0,
        updated: 0,
        unchanged: 0,
        rejected: 0,
        rolled_back: None,
        error: None,
        created_at: now.clone(),
        started_at: None,
        finished_at: None,
        rolled_back_at: None,
        updated_at: now,
    };
    store::insert_import(conn, &job)?;
    Ok(job)
}

/// The job `id` of the workspace in `mode` (404 for any other).
pub fn find_import(
    conn: &Connection,
    scope: &WorkspaceScope,
    mode: Mode,
    id: &ContactImportId,
) -> Result<ImportRow, AppError> {
    store::find_import(conn, scope.id(), mode, id)?.ok_or(AppError::NotFound)
}

/// Stops a queued or running job: the rows committed so far stay, and so do its counts.
/// Returns the job and the spooled file to delete once this is committed. 409 for a job that
/// has ended.
pub fn cancel_import(
    conn: &Connection,
    scope: &WorkspaceScope,
    mode: Mode,
    id: &ContactImportId,
    now: Timestamp,
) -> Result<(ImportRow, Option<String>), AppError> {
    let mut job = find_import(conn, scope, mode, id)?;
    if job.status.is_final() {
        return Err(AppError::Conflict(format!(
            "The import is {}; only a queued or running import can be cancelled.",
            job.status
        )));
    }
    let now = format_timestamp(now);
    job.status = ImportStatus::Cancelled;
    job.finished_at = Some(now.clone());
    job.updated_at = now;
    let spool_file = job.spool_file.take();
    store::update_import(conn, &job)?;
    Ok((job, spool_file))
}

/// One step of a rollback: soft-deletes up to a batch of the contacts the job created (updates
/// it made are not undone), the first ones after rowid `after` (0 to start). Returns the job and,
/// while more may remain, the rowid to take the next step after. 409 for a job still queued or
/// running (cancel it first); a job rolled back already is answered as it is.
pub fn rollback_step(
    conn: &Connection,
    scope: &WorkspaceScope,
    mode: Mode,
    id: &ContactImportId,
    after: i64,
    now: Timestamp,
) -> Result<(ImportRow, Option<i64>), AppError> {
    let mut job = find_import(conn, scope, mode, id)?;
    if !job.status.is_final() {
        return Err(AppError::Conflict(format!(
            "The import is {}; cancel it before rolling it back.",
            job.status
        )));
    }
    if job.rolled_back_at.is_some() {
        return Ok((job, None));
    }
    let now = format_timestamp(now);
    let (deleted, last) = store::delete_imported_contacts(conn, &job, after, &now, ROLLBACK_BATCH)?;
    job.rolled_back = Some(job.rolled_back.unwrap_or(0) + i64::try_from(deleted).unwrap_or(0));
    let more = deleted == ROLLBACK_BATCH;
    if !more {
        job.rolled_back_at = Some(now.clone());
    }
    job.updated_at = now;
    store::update_import(conn, &job)?;
    Ok((job, more.then_some(last)))
}

/// The job's rejected rows as CSV: `row`, `reason`, then the file's own columns.
pub fn rejects_csv(conn: &Connection, job: &ImportRow) -> Result<Vec<u8>, AppError> {
    let header: Vec<String> = serde_json::from_str(&job.header).map_err(AppError::internal)?;
    let mut writer = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::new());
    let mut first = vec!["row".to_owned(), "reason".to_owned()];
    first.extend(header);
    let csv_error = |err: csv::Error| AppError::internal(err);
    writer.write_record(&first).map_err(csv_error)?;
    for (row_number, reason, fields) in store::list_rejects(conn, &job.id)? {
        let fields: Vec<String> = serde_json::from_str(&fields).map_err(AppError::internal)?;
        let mut record = vec![row_number.to_string(), reason];
        record.extend(fields);
        writer.write_record(&record).map_err(csv_error)?;
    }
    writer
        .into_inner()
        .map_err(|err| AppError::internal(err.to_string()))
}

/// A row of the file after the checks that need no database.
#[derive(Debug)]
pub enum PreparedRow {
    Valid {
        row_number: i64,
        contact: Box<CheckedContact>,
        fields: Vec<String>,
    },
    Rejected {
        row_number: i64,
        reason: String,
        fields: Vec<String>,
    },
}

/// What the runner needs to check rows: the job's mapping and the workspace's definitions.
pub struct RowChecker {
    mapping: Vec<Option<Target>>,
    definitions: Vec<FieldRow>,
    default_country: String,
}

impl RowChecker {
    pub fn new(
        job: &ImportRow,
        definitions: Vec<FieldRow>,
        default_country: &str,
    ) -> Result<RowChecker, AppError> {
        let names: Vec<Option<String>> =
            serde_json::from_str(&job.mapping).map_err(AppError::internal)?;
        let mapping = names
            .iter()
            .map(|name| {
                name.as_deref()
                    .and_then(|name| Target::parse(name, &definitions))
            })
            .collect();
        Ok(RowChecker {
            mapping,
            definitions,
            default_country: default_country.to_owned(),
        })
    }

    /// Checks one row as `POST /v1/contacts` checks a body. Empty cells are absent fields; with
    /// no name column (or an empty name) the name is the first and last names joined.
    pub fn check(&self, row_number: i64, fields: Vec<String>) -> PreparedRow {
        let mut input = NewContact::default();
        let mut custom_errors = FieldErrors::new();
        for (target, cell) in self.mapping.iter().zip(&fields) {
            let Some(target) = target else { continue };
            let cell = cell.trim();
            if cell.is_empty() {
                continue;
            }
            let text = Some(cell.to_owned());
            match target {
                Target::Name => input.name = text,
                Target::FirstName => input.first_name = text,
                Target::LastName => input.last_name = text,
                Target::Phone => input.phone = text,
                Target::Email => input.email = text,
                Target::Language => input.language = Some(cell.to_lowercase()),
                Target::Custom(key) => match self.custom_value(key, cell) {
                    Ok(value) => {
                        input.custom.insert(key.clone(), value);
                    }
                    Err(reason) => custom_errors.add(format!("custom.{key}"), reason),
                },
            }
        }
        if input.name.is_none() {
            let parts: Vec<&str> = [&input.first_name, &input.last_name]
                .into_iter()
                .flatten()
                .map(String::as_str)
                .collect();
            if !parts.is_empty() {
                input.name = Some(parts.join(" "));
            }
        }
        match check_new_contact(input, &self.definitions, &self.default_country) {
            Ok(contact) if custom_errors.is_empty() => PreparedRow::Valid {
                row_number,
                contact: Box::new(contact),
                fields,
            },
            Ok(_) => PreparedRow::Rejected {
                row_number,
                reason: reason_of(&custom_errors),
                fields,
            },
            Err(mut errors) => {
                for (field, reason) in custom_errors.iter() {
                    errors.add(field.clone(), reason.clone());
                }
                PreparedRow::Rejected {
                    row_number,
                    reason: reason_of(&errors),
                    fields,
                }
            }
        }
    }

    /// A cell as the JSON value its custom field takes: numbers and booleans from their text,
    /// everything else as text (checked against the definition by `check_new_contact`).
    /// The cell as the value of custom field `key`, or why it is not one.
    fn custom_value(&self, key: &str, cell: &str) -> Result<Value, &'static str> {
        let field = self
            .definitions
            .iter()
            .find(|field| field.key == key)
            .ok_or("is not a defined field")?;
        match field.field_type {
            FieldType::Number => number_cell(cell).ok_or(if is_ambiguous_number(cell) {
                "could be thousands or decimals: write 1000, or 1.5 / 1,5 for a decimal"
            } else {
                "must be a number (a point or a comma before decimals)"
            }),
            FieldType::Boolean => match cell.to_lowercase().as_str() {
                "true" | "yes" | "1" | "oui" | "vrai" => Ok(Value::Bool(true)),
                "false" | "no" | "0" | "non" | "faux" => Ok(Value::Bool(false)),
                _ => Err("must be true or false (yes/no, 1/0, oui/non, vrai/faux)"),
            },
            _ => Ok(Value::String(cell.to_owned())),
        }
    }
}

/// A `number` cell as the API would have stored it: a whole number stays one (`12`, not
/// `12.0`, so a template shows `12`), a decimal is read with a point or a comma (`1.5`, `1,5`).
/// A comma before exactly three digits (`1,000`), or a comma and a point together, could be a
/// thousands separator as much as a decimal one: such a cell is refused rather than guessed.
fn number_cell(cell: &str) -> Option<Value> {
    let cell = cell.trim();
    if let Ok(whole) = cell.parse::<i64>() {
        return Some(Value::from(whole));
    }
    if is_ambiguous_number(cell) {
        return None;
    }
    let decimal = match cell.split_once(',') {
        Some(_) => cell.replacen(',', ".", 1),
        None => cell.to_owned(),
    };
    let number: f64 = decimal.parse().ok()?;
    serde_json::Number::from_f64(number).map(Value::Number)
}

/// A comma before exactly three digits (`1,000`), or a comma and a point together (`1.000,5`):
/// a thousands separator as much as a decimal one.
fn is_ambiguous_number(cell: &str) -> bool {
    let cell = cell.trim();
    cell.split_once(',')
        .is_some_and(|(_, fraction)| cell.contains('.') || fraction.len() == 3)
}

/// `phone: must be …; email: must be …` — every refused field, named.
fn reason_of(errors: &FieldErrors) -> String {
    errors
        .iter()
        .map(|(field, reason)| format!("{field}: {reason}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// What applying a chunk did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkOutcome {
    /// Written, with the job's counters.
    Applied,
    /// The job was cancelled meanwhile: nothing of the chunk was written.
    Cancelled,
}

/// Applies the rows read from the file between `offsets` (start, end) inside the caller's write
/// transaction: lookups, contact writes, group memberships, rejects, and the job's counters and
/// `bytes_read` (the end), together. Rows the job has passed already (its `bytes_read` is at or
/// past the end: a retry after a later part failed) are left alone; rows that do not start
/// where the job stands are refused (the job is then resumed from what is stored).
pub fn apply_chunk(
    conn: &Connection,
    ids: &Ids,
    key: &ServerKey,
    job_id: &ContactImportId,
    rows: &[PreparedRow],
    (start_offset, end_offset): (u64, u64),
    now: Timestamp,
) -> Result<(ChunkOutcome, ImportRow), AppError> {
    let mut job = store::load_import(conn, job_id)?.ok_or(AppError::NotFound)?;
    if job.status != ImportStatus::Running {
        return Ok((ChunkOutcome::Cancelled, job));
    }
    let bytes_read = u64::try_from(job.bytes_read).unwrap_or(0);
    if bytes_read >= end_offset {
        return Ok((ChunkOutcome::Applied, job));
    }
    if bytes_read != start_offset {
        return Err(AppError::internal(format!(
            "import {} stands at byte {bytes_read}, not at {start_offset} where these rows start",
            job.id
        )));
    }
    let now = format_timestamp(now);
    let group = match &job.group_id {
        Some(group_id) if store::group_exists(conn, group_id)? => Some(group_id.clone()),
        _ => None,
    };
    // Erased addresses are rare: when the workspace has none (in this mode), no row needs the
    // keyed hashes of its addresses looked up.
    let suppressions = contacts_store::any_suppression(conn, &job.workspace_id, job.mode)?;
    for row in rows {
        let (row_number, contact, fields) = match row {
            PreparedRow::Rejected {
                row_number,
                reason,
                fields,
            } => {
                reject(conn, &mut job, *row_number, reason, fields)?;
                continue;
            }
            PreparedRow::Valid {
                row_number,
                contact,
                fields,
            } => (*row_number, contact, fields),
        };
        match write_row(conn, ids, key, &job, contact, &now, suppressions)? {
            Written::Refused(reason) => reject(conn, &mut job, row_number, &reason, fields)?,
            Written::Contact(id, counted) => {
                match counted {
                    Counted::Created => job.created += 1,
                    Counted::Updated => job.updated += 1,
                    Counted::Unchanged => job.unchanged += 1,
                }
                job.rows_read += 1;
                if let Some(group) = &group {
                    store::add_member(conn, group, &id, &now)?;
                }
            }
        }
    }
    job.bytes_read = i64::try_from(end_offset).unwrap_or(i64::MAX);
    job.updated_at = now;
    store::update_import(conn, &job)?;
    Ok((ChunkOutcome::Applied, job))
}

fn reject(
    conn: &Connection,
    job: &mut ImportRow,
    row_number: i64,
    reason: &str,
    fields: &[String],
) -> Result<(), AppError> {
    store::insert_reject(conn, &job.id, row_number, reason, &json_text(fields)?)?;
    job.rejected += 1;
    job.rows_read += 1;
    Ok(())
}

enum Counted {
    Created,
    Updated,
    Unchanged,
}

enum Written {
    Contact(ContactId, Counted),
    Refused(String),
}

/// Creates, updates or refuses one checked row by the job's mode. A contact this same import
/// created is always merged into (a row repeated in the file is never a second contact).
fn write_row(
    conn: &Connection,
    ids: &Ids,
    key: &ServerKey,
    job: &ImportRow,
    contact: &CheckedContact,
    now: &str,
    suppressions: bool,
) -> Result<Written, AppError> {
    let new_row = || -> Result<ContactRow, AppError> {
        let mut row =
            contact
                .clone()
                .into_row(ContactId::generate(ids), &job.workspace_id, job.mode, now)?;
        // A person erased before comes back unsubscribed, as through the API.
        if suppressions {
            crate::contacts::reach::apply_suppressions(conn, key, &mut row)?;
        }
        Ok(row)
    };
    // Most rows of an import are new people: the insert goes first, and both addresses are
    // looked up only when the database says a live contact has one of them.
    if job.import_mode != ImportMode::Update {
        let row = new_row()?;
        if contacts_store::insert_new_contact(conn, &row, Some(&job.id))? {
            return Ok(Written::Contact(row.id, Counted::Created));
        }
    }
    let lookup = |column, value: Option<&String>| match value {
        Some(value) => store::find_contact_by(conn, &job.workspace_id, job.mode, column, value),
        None => Ok(None),
    };
    let by_phone = lookup(
        AddressColumn::Phone,
        contact.phone.as_ref().map(|(phone, _)| phone),
    )?;
    let by_email = lookup(AddressColumn::Email, contact.email.as_ref())?;
    let existing = match (by_phone, by_email) {
        (Some(phone), Some(email)) if phone.0.id != email.0.id => {
            return Ok(Written::Refused(format!(
                "phone, email: the phone is {}'s and the email {}'s, two different contacts",
                phone.0.id, email.0.id
            )));
        }
        (Some(found), _) | (None, Some(found)) => Some(found),
        (None, None) => None,
    };
    match (existing, job.import_mode) {
        (None, ImportMode::Update) => Ok(Written::Refused(
            "phone, email: no contact has this phone or email (mode update)".to_owned(),
        )),
        (None, _) => {
            // Only when the insert above was refused for something else than an address:
            // this one says what.
            let row = new_row()?;
            contacts_store::insert_contact(conn, &row, Some(&job.id))?;
            Ok(Written::Contact(row.id, Counted::Created))
        }
        (Some((row, created_by)), ImportMode::Create) if created_by.as_ref() != Some(&job.id) => {
            let field = if contact.phone.as_ref().map(|(phone, _)| phone) == row.phone.as_ref()
                && row.phone.is_some()
            {
                "phone"
            } else {
                "email"
            };
            Ok(Written::Refused(format!(
                "{field}: the contact {} already has this {field} (mode create)",
                row.id
            )))
        }
        (Some((mut row, _)), _) => {
            if contact.merge_into(&mut row)? {
                row.updated_at = now.to_owned();
                contacts_store::update_contact(conn, &row)?;
                Ok(Written::Contact(row.id, Counted::Updated))
            } else {
                Ok(Written::Contact(row.id, Counted::Unchanged))
            }
        }
    }
}

/// Marks a job running (first start), completed, or failed, in the caller's transaction.
pub fn set_status(
    conn: &Connection,
    job_id: &ContactImportId,
    status: ImportStatus,
    error: Option<String>,
    now: Timestamp,
) -> Result<Option<ImportRow>, AppError> {
    let Some(mut job) = store::load_import(conn, job_id)? else {
        return Ok(None);
    };
    if job.status.is_final() {
        return Ok(Some(job));
    }
    let now = format_timestamp(now);
    if job.started_at.is_none() {
        job.started_at = Some(now.clone());
    }
    job.status = status;
    if status.is_final() {
        job.finished_at = Some(now.clone());
        job.spool_file = None;
    }
    job.error = error;
    job.updated_at = now;
    store::update_import(conn, &job)?;
    Ok(Some(job))
}

/// The custom values a workspace's contacts may hold, for the runner (read once per job).
pub fn definitions(conn: &Connection, job: &ImportRow) -> Result<Vec<FieldRow>, AppError> {
    contacts_store::list_fields(conn, &job.workspace_id, None, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_headers_fill_their_fields_and_an_exact_name_wins() {
        let columns = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
        let fills = |names: &[&str]| {
            let mut errors = FieldErrors::new();
            resolve_mapping(&columns(names), &[], &[], &mut errors)
                .iter()
                .map(|target| target.as_ref().map(Target::as_text))
                .collect::<Vec<_>>()
        };
        let some = |text: &str| Some(text.to_owned());
        assert_eq!(
            fills(&[
                "Nom complet",
                "Prénom",
                "Téléphone",
                "E-mail",
                "Langue",
                "Ville"
            ]),
            [
                some("name"),
                some("first_name"),
                some("phone"),
                some("email"),
                some("language"),
                None
            ]
        );
        assert_eq!(
            fills(&["Full Name", "Mobile", "e_mail"]),
            [some("name"), some("phone"), some("email")]
        );
        // Decomposed accents and non-breaking spaces fold away too.
        assert_eq!(
            fills(&["Nom\u{a0}complet", "Te\u{301}le\u{301}phone"]),
            [some("name"), some("phone")]
        );
        // A column named exactly keeps its field; of two synonyms the first takes it.
        assert_eq!(fills(&["Mobile", "phone"]), [None, some("phone")]);
        assert_eq!(fills(&["Téléphone", "Mobile"]), [some("phone"), None]);
        // `Nom` with `Prénom` is the family name.
        assert_eq!(
            fills(&["Prénom", "Nom", "Tel"]),
            [some("first_name"), some("last_name"), some("phone")]
        );
    }

    #[test]
    fn number_cells_keep_whole_numbers_and_refuse_an_ambiguous_comma() {
        for (cell, stored) in [
            ("12", "12"),
            (" -3 ", "-3"),
            ("1.5", "1.5"),
            ("1,5", "1.5"),
            ("12,25", "12.25"),
            ("0.0001", "0.0001"),
        ] {
            let value = number_cell(cell).unwrap_or_else(|| panic!("{cell:?} was refused"));
            assert_eq!(value.to_string(), stored, "{cell:?}");
        }
        for cell in [
            "1,000", "1,500", "1.000,5", "1,000.5", "", "x", "NaN", "inf", "1,2,3",
        ] {
            assert_eq!(number_cell(cell), None, "{cell:?}");
        }
        // The refusal says why: an ambiguous separator is not a "not a number".
        for (cell, ambiguous) in [
            ("1,000", true),
            ("1.000,5", true),
            ("x", false),
            ("1,5", false),
        ] {
            assert_eq!(is_ambiguous_number(cell), ambiguous, "{cell:?}");
        }
    }
}
