//! A payment session as the API shows it: one view shared by the payment routes (the detail
//! adds its provider transactions) and the `payment.*` webhook events.

use serde::Serialize;

use crate::money::Money;
use crate::payments::SessionStatus;
use crate::payments::store::SessionRow;

/// A payment session as the API shows it (the detail adds its provider transactions).
#[derive(Serialize)]
pub struct SessionView<'a> {
    pub id: &'a str,
    pub kind: &'a str,
    pub plan_code: Option<&'a str>,
    pub amount: Money,
    pub status: SessionStatus,
    pub provider: Option<&'a str>,
    pub provider_reference: Option<&'a str>,
    pub checkout_url: Option<&'a str>,
    pub expires_at: &'a str,
    pub fulfilled_at: Option<&'a str>,
    pub refunded: Money,
    pub refund_shortfall: Money,
    pub flag: Option<&'a str>,
    pub failure_reason: Option<&'a str>,
    pub created_at: &'a str,
    pub updated_at: &'a str,
}

pub fn session_view(session: &SessionRow) -> SessionView<'_> {
    SessionView {
        id: session.id.as_str(),
        kind: &session.kind,
        plan_code: session.plan_code.as_deref(),
        amount: Money::new(session.amount_minor, &session.currency),
        status: session.status,
        provider: session.provider.as_deref(),
        provider_reference: session.provider_reference.as_deref(),
        checkout_url: session.checkout_url.as_deref(),
        expires_at: &session.expires_at,
        fulfilled_at: session.fulfilled_at.as_deref(),
        refunded: Money::new(session.refunded_minor, &session.currency),
        refund_shortfall: Money::new(session.refund_shortfall_minor, &session.currency),
        flag: session.flag.as_deref(),
        failure_reason: session.failure_reason.as_deref(),
        created_at: &session.created_at,
        updated_at: &session.updated_at,
    }
}

/// The payment session `id` of the workspace as the API shows it (without its transactions),
/// for an event; `None` when there is none.
pub fn find_json(
    conn: &rusqlite::Connection,
    workspace_id: &crate::ids::WorkspaceId,
    id: &str,
) -> Result<Option<serde_json::Value>, crate::error::AppError> {
    let Some(id) = crate::ids::PaymentSessionId::parse(id) else {
        return Ok(None);
    };
    let session = crate::payments::store::find_session(conn, &id, Some(workspace_id))?;
    session
        .map(|session| serde_json::to_value(session_view(&session)))
        .transpose()
        .map_err(crate::error::AppError::internal)
}
