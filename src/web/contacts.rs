//! HTTP for contacts and their custom field definitions. An API key works on the contacts of
//! its own mode; a console session on the live ones. Handlers parse and authenticate, then call
//! one domain function inside one transaction.

use std::io;

use serde::Serialize;

use crate::activity::{Action, Event};
use crate::api_keys::format::Scope;
use crate::app::App;
use crate::auth::principal::Principal;
use crate::billing::Channel;
use crate::contacts::export;
use crate::contacts::fields::{self, FieldChanges, FieldType, NewField, one_of};
use crate::contacts::rules::SqlCondition;
use crate::contacts::store::{self, ContactFilter, ContactOrder, FieldRow};
use crate::contacts::view::{ContactView, contact_view};
use crate::contacts::{
    self as domain, ContactChanges, Editor, EmailState, NewContact, PhoneState, UnsubscribeVia,
};
use crate::contacts::{groups, segments};
use crate::error::{AppError, FieldErrors};
use crate::ids::{ContactFieldId, ContactId, GroupId, SegmentId};
use crate::scope::WorkspaceScope;
use crate::vocabulary::Mode;
use crate::web::activity::{actor, record};
use crate::web::auth::authenticate_request;
use crate::web::idempotency::{self, OPTIONAL_PER_WORKSPACE};
use crate::web::request::{Request, page_response};
use crate::web::response::{ApiResponse, CSV, UTF8_BOM};

/// How a change by this caller is recorded on an unsubscription.
fn via_of(principal: &Principal) -> UnsubscribeVia {
    match principal {
        Principal::ApiKey(_) => UnsubscribeVia::Api,
        Principal::Session(_) => UnsubscribeVia::Console,
    }
}

/// `POST /v1/contacts`: creates a contact in the caller's mode. Scope `contacts:write`.
/// Accepts an `Idempotency-Key`.
pub fn create_contact(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::ContactsWrite)?;
    let body: NewContact = request.json()?;
    let editor = Editor {
        scope: &scope,
        mode: principal.mode(),
        via: via_of(&principal),
    };
    let actor = actor(app, request, &principal);
    idempotency::in_transaction(app, request, &principal, OPTIONAL_PER_WORKSPACE, |conn| {
        let contact = domain::create_contact(
            conn,
            &app.ids,
            &app.unsubscribe_key,
            editor,
            body,
            &app.config.default_country,
            app.clock.now(),
        )?;
        let event = Event::about(
            Action::ContactCreated,
            scope.id(),
            principal.mode(),
            contact.id.as_str(),
        );
        record(app, conn, &actor, event)?;
        ApiResponse::json(201, &contact_view(&contact))
    })
}

/// Why `?group=` was refused: malformed, unknown, another workspace's or the other mode's.
const NO_SUCH_GROUP: &str = "no such group among the caller's";

/// Why `?segment=` was refused: malformed, unknown, another workspace's or the other mode's.
const NO_SUCH_SEGMENT: &str = "no such segment among the caller's";

/// The value of query parameter `name` as one of `T`'s words; an unknown word goes to `errors`.
fn word_param<T: Copy + std::fmt::Display>(
    request: &Request<'_>,
    name: &str,
    parse: fn(&str) -> Option<T>,
    all: &[T],
    errors: &mut FieldErrors,
) -> Option<T> {
    request.query_param(name).and_then(|text| {
        let value = parse(&text);
        if value.is_none() {
            errors.add(name, one_of(all));
        }
        value
    })
}

/// The filters of `GET /v1/contacts` and its export, as the query gave them.
struct ContactQuery {
    q: Option<String>,
    phone_state: Option<PhoneState>,
    email_state: Option<EmailState>,
    unsubscribed: Option<Channel>,
    group: Option<GroupId>,
    segment: Option<SegmentId>,
    order: ContactOrder,
}

impl ContactQuery {
    /// Reads the filters from the query string: 422 naming every bad one.
    fn parse(request: &Request<'_>) -> Result<ContactQuery, AppError> {
        let mut errors = FieldErrors::new();
        let phone_state = word_param(
            request,
            "phone_state",
            PhoneState::parse,
            PhoneState::ALL,
            &mut errors,
        );
        let email_state = word_param(
            request,
            "email_state",
            EmailState::parse,
            EmailState::ALL,
            &mut errors,
        );
        let unsubscribed = word_param(
            request,
            "unsubscribed",
            Channel::parse,
            Channel::ALL,
            &mut errors,
        );
        let order = word_param(
            request,
            "sort",
            ContactOrder::parse,
            ContactOrder::ALL,
            &mut errors,
        );
        let group = request.query_param("group").map(|id| GroupId::parse(&id));
        if let Some(None) = group {
            errors.add("group", NO_SUCH_GROUP);
        }
        let segment = request
            .query_param("segment")
            .map(|text| SegmentId::parse(&text));
        if let Some(None) = segment {
            errors.add("segment", NO_SUCH_SEGMENT);
        }
        // SQLite's text functions stop at a NUL: `q` would then match everything.
        let q = request.query_param("q").filter(|q| !q.is_empty());
        if q.as_deref().is_some_and(|q| q.contains('\0')) {
            errors.add("q", "must not contain a NUL character");
        }
        errors.into_result()?;
        Ok(ContactQuery {
            q,
            phone_state,
            email_state,
            unsubscribed,
            group: group.flatten(),
            segment: segment.flatten(),
            order: order.unwrap_or(ContactOrder::NewestFirst),
        })
    }

    /// Checks that the group named is one of the caller's (422 on `group` otherwise).
    /// Checks that the group and segment named are the caller's (422 on `group` / `segment`
    /// otherwise, and for a broken segment), and gives the segment's rules as SQL.
    fn check(
        &self,
        conn: &rusqlite::Connection,
        scope: &WorkspaceScope,
        mode: Mode,
    ) -> Result<Option<SqlCondition>, AppError> {
        if let Some(group_id) = &self.group {
            groups::find_group(conn, scope, mode, group_id).map_err(|err| match err {
                AppError::NotFound => AppError::invalid_field("group", NO_SUCH_GROUP),
                other => other,
            })?;
        }
        self.segment
            .as_ref()
            .map(|id| {
                segments::segment_audience(conn, scope, mode, id, "segment")
                    .map(|audience| audience.rules().clone())
                    .map_err(|err| match err {
                        AppError::NotFound => AppError::invalid_field("segment", NO_SUCH_SEGMENT),
                        other => other,
                    })
            })
            .transpose()
    }

    fn filter<'a>(&'a self, segment: Option<&'a SqlCondition>) -> ContactFilter<'a> {
        ContactFilter {
            q: self.q.as_deref(),
            phone_state: self.phone_state,
            email_state: self.email_state,
            unsubscribed: self.unsubscribed,
            group: self.group.as_ref(),
            segment,
        }
    }
}

/// `GET /v1/contacts`: the caller's contacts, newest first unless `sort` says otherwise. `q`
/// searches name, phone and email; filters `phone_state`, `email_state`, `unsubscribed` (`sms`
/// or `email`), `group` (a group of the caller's; any other, or a malformed id, is 422 on
/// `group`), `segment` (a saved segment of the caller's, likewise; a broken one is 422 too).
/// Scope `contacts:read`.
pub fn list_contacts(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::ContactsRead)?;
    let page = request.page()?;
    let query = ContactQuery::parse(request)?;
    let mode = principal.mode();
    let contacts = app.db.read(|conn| {
        let segment = query.check(conn, &scope, mode)?;
        store::list_contacts(
            conn,
            scope.id(),
            mode,
            &query.filter(segment.as_ref()),
            query.order,
            page.cursor.as_deref(),
            page.fetch(),
        )
    })?;
    let (contacts, next_cursor) = page.split(contacts, |contact| contact.id.as_str());
    let data: Vec<ContactView<'_>> = contacts.iter().map(contact_view).collect();
    page_response(&data, next_cursor)
}

/// Contacts read per query while exporting.
const EXPORT_PAGE: usize = 1000;

/// `GET /v1/contacts/export`: every contact the same filters as the list select, as CSV (UTF-8
/// with a byte-order mark, so spreadsheets read accents right) in the list's order, streamed in
/// pages of `EXPORT_PAGE`; each page is its own short read, so a long export never holds
/// the database. A contact added while the export runs may or may not appear; none appears
/// twice. Scope `contacts:read`.
pub fn export_contacts(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::ContactsRead)?;
    let query = ContactQuery::parse(request)?;
    let mode = principal.mode();
    // The segment's rules as they are now: the whole export selects by the same condition.
    let (segment, definitions) = app.db.read(|conn| {
        let segment = query.check(conn, &scope, mode)?;
        Ok((segment, store::list_fields(conn, scope.id(), None, None)?))
    })?;
    // Reading is not a change: the export is recorded on its own, before its first byte.
    let actor = actor(app, request, &principal);
    app.db.write(|conn| {
        let event = Event::new(Action::ContactsExported)
            .workspace(scope.id())
            .mode(mode);
        record(app, conn, &actor, event)
    })?;
    let db = app.db.clone();
    let workspace_id = scope.id().clone();
    let filename = format!(
        "attachment; filename=\"contacts-{}.csv\"",
        app.clock.now().format("%Y-%m-%d")
    );
    let response = ApiResponse::streamed(CSV, move |out| {
        let mut csv = csv::Writer::from_writer(out);
        csv.write_record(export::header(&definitions))?;
        let mut cursor: Option<ContactId> = None;
        loop {
            let page = db
                .read(|conn| {
                    store::list_contacts(
                        conn,
                        &workspace_id,
                        mode,
                        &query.filter(segment.as_ref()),
                        query.order,
                        cursor.as_ref().map(ContactId::as_str),
                        EXPORT_PAGE,
                    )
                })
                .map_err(io::Error::other)?;
            for contact in &page {
                csv.write_record(export::record(contact, &definitions).map_err(io::Error::other)?)?;
            }
            match page.last() {
                Some(last) if page.len() == EXPORT_PAGE => cursor = Some(last.id.clone()),
                _ => break,
            }
        }
        csv.flush()
    });
    Ok(response
        .with_prefix(UTF8_BOM)
        .with_header("Content-Disposition", filename))
}

fn contact_id(request: &Request<'_>) -> Result<ContactId, AppError> {
    ContactId::parse(request.param("id")).ok_or(AppError::NotFound)
}

/// `GET /v1/contacts/{id}`. Scope `contacts:read`.
pub fn show_contact(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::ContactsRead)?;
    let id = contact_id(request)?;
    let mode = principal.mode();
    let contact = app
        .db
        .read(|conn| domain::find_contact(conn, &scope, mode, &id))?;
    ApiResponse::json(200, &contact_view(&contact))
}

/// `PATCH /v1/contacts/{id}`: changes the fields sent (`null` clears one). Scope
/// `contacts:write`.
pub fn update_contact(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::ContactsWrite)?;
    let id = contact_id(request)?;
    let changes: ContactChanges = request.json()?;
    let editor = Editor {
        scope: &scope,
        mode: principal.mode(),
        via: via_of(&principal),
    };
    let actor = actor(app, request, &principal);
    let contact = app.db.write(|conn| {
        let contact = domain::update_contact(
            conn,
            editor,
            &id,
            changes,
            &app.config.default_country,
            app.clock.now(),
        )?;
        let event = Event::about(
            Action::ContactUpdated,
            scope.id(),
            principal.mode(),
            id.as_str(),
        );
        record(app, conn, &actor, event)?;
        Ok(contact)
    })?;
    ApiResponse::json(200, &contact_view(&contact))
}

/// `DELETE /v1/contacts/{id}`: soft-deletes; the contact is 404 afterwards. Scope
/// `contacts:write`.
pub fn delete_contact(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::ContactsWrite)?;
    let id = contact_id(request)?;
    let mode = principal.mode();
    let actor = actor(app, request, &principal);
    app.db.write(|conn| {
        domain::delete_contact(conn, &scope, mode, &id, app.clock.now())?;
        let event = Event::about(Action::ContactDeleted, scope.id(), mode, id.as_str());
        record(app, conn, &actor, event)
    })?;
    Ok(ApiResponse::no_content())
}

/// `POST /v1/contacts/{id}/erase`: removes the contact's personal data for good (GDPR). The
/// contact may be deleted already; an erased one is 404. Each of its addresses stays only as a
/// keyed hash with its channel's unsubscription, and the workspace's finished messages of this
/// mode to them are scrubbed, in the same transaction. Scope `contacts:write`. Accepts an
/// `Idempotency-Key`.
pub fn erase_contact(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::ContactsWrite)?;
    let id = contact_id(request)?;
    let editor = Editor {
        scope: &scope,
        mode: principal.mode(),
        via: via_of(&principal),
    };
    let actor = actor(app, request, &principal);
    idempotency::in_transaction(app, request, &principal, OPTIONAL_PER_WORKSPACE, |conn| {
        let (erased, messages_scrubbed) = crate::messages::erase_contact(
            conn,
            &app.ids,
            &app.unsubscribe_key,
            editor,
            &id,
            app.clock.now(),
        )?;
        let event = Event::about(
            Action::ContactErased,
            scope.id(),
            principal.mode(),
            id.as_str(),
        )
        .detail("messages_scrubbed", messages_scrubbed);
        record(app, conn, &actor, event)?;
        ApiResponse::json(
            200,
            &ErasedView {
                id: erased.contact_id.as_str(),
                erased_at: &erased.erased_at,
                messages_scrubbed,
            },
        )
    })
}

/// What an erasure did.
#[derive(Serialize)]
struct ErasedView<'a> {
    id: &'a str,
    erased_at: &'a str,
    messages_scrubbed: usize,
}

/// `GET /v1/contact-fields`: the workspace's custom field definitions, oldest first. Scope
/// `contacts:read`.
pub fn list_fields(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::ContactsRead)?;
    let page = request.page()?;
    let definitions = app.db.read(|conn| {
        store::list_fields(conn, scope.id(), page.cursor.as_deref(), Some(page.fetch()))
    })?;
    let (definitions, next_cursor) = page.split(definitions, |field| field.id.as_str());
    let data: Vec<FieldView<'_>> = definitions.iter().map(field_view).collect();
    page_response(&data, next_cursor)
}

/// `POST /v1/contact-fields`: defines a custom field (at most 50 per workspace). Scope
/// `contacts:write`. Accepts an `Idempotency-Key`.
pub fn create_field(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::ContactsWrite)?;
    live_schema(&principal)?;
    let body: NewField = request.json()?;
    let actor = actor(app, request, &principal);
    idempotency::in_transaction(app, request, &principal, OPTIONAL_PER_WORKSPACE, |conn| {
        let field = fields::create_field(conn, &app.ids, &scope, body, app.clock.now())?;
        let event = Event::new(Action::ContactFieldCreated)
            .workspace(scope.id())
            .target(field.id.as_str());
        record(app, conn, &actor, event)?;
        ApiResponse::json(201, &field_view(&field))
    })
}

/// Field definitions are the workspace's schema, shared by both worlds (docs/rules/contacts.md,
/// "Custom fields"): only the live world changes them, so nothing done in test mode can touch
/// a live contact's values.
fn live_schema(principal: &Principal) -> Result<(), AppError> {
    match principal.mode() {
        Mode::Live => Ok(()),
        Mode::Test => Err(AppError::Forbidden(
            "Custom fields are shared by live and test and are defined in live mode: use a live \
             key, or switch the console to live."
                .to_owned(),
        )),
    }
}

fn field_id(request: &Request<'_>) -> Result<ContactFieldId, AppError> {
    ContactFieldId::parse(request.param("id")).ok_or(AppError::NotFound)
}

/// `PATCH /v1/contact-fields/{id}`: changes a definition's label or options. Scope
/// `contacts:write`.
pub fn update_field(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::ContactsWrite)?;
    live_schema(&principal)?;
    let id = field_id(request)?;
    let changes: FieldChanges = request.json()?;
    let actor = actor(app, request, &principal);
    let field = app.db.write(|conn| {
        let field = fields::update_field(conn, &scope, &id, changes, app.clock.now())?;
        let event = Event::new(Action::ContactFieldUpdated)
            .workspace(scope.id())
            .target(id.as_str());
        record(app, conn, &actor, event)?;
        Ok(field)
    })?;
    ApiResponse::json(200, &field_view(&field))
}

/// `DELETE /v1/contact-fields/{id}`: deletes a definition and its values on every contact.
/// Scope `contacts:write`.
pub fn delete_field(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::ContactsWrite)?;
    live_schema(&principal)?;
    let id = field_id(request)?;
    let actor = actor(app, request, &principal);
    app.db.write(|conn| {
        fields::delete_field(conn, &scope, &id, app.clock.now())?;
        let event = Event::new(Action::ContactFieldDeleted)
            .workspace(scope.id())
            .target(id.as_str());
        record(app, conn, &actor, event)
    })?;
    Ok(ApiResponse::no_content())
}

/// A custom field definition as the API shows it.
#[derive(Serialize)]
struct FieldView<'a> {
    id: &'a str,
    key: &'a str,
    label: &'a str,
    #[serde(rename = "type")]
    field_type: FieldType,
    options: Option<&'a [String]>,
    created_at: &'a str,
    updated_at: &'a str,
}

fn field_view(field: &FieldRow) -> FieldView<'_> {
    FieldView {
        id: field.id.as_str(),
        key: &field.key,
        label: &field.label,
        field_type: field.field_type,
        options: field.options.as_deref(),
        created_at: &field.created_at,
        updated_at: &field.updated_at,
    }
}
