//! HTTP for messages. So far the estimate: what a send would cost, without sending.

use crate::app::App;
use crate::auth::http::authenticate_request;
use crate::auth::key_format::{Mode, Scope};
use crate::auth::principal::Principal;
use crate::billing::{self, sender};
use crate::error::AppError;
use crate::http::request::Request;
use crate::http::response::ApiResponse;
use crate::messages::compose::{SendBody, compose};
use crate::money::Money;

/// `POST /v1/messages/estimate`: validates a send exactly as sending will and prices it —
/// segments, encoding, the characters that forced UCS-2, included and billable units, charge —
/// changing nothing. Scope `messages:send`.
pub fn estimate_message(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let workspace_id = principal.require_scope(Scope::MessagesSend)?.to_owned();
    let body: SendBody = request.json()?;
    let now = app.clock.now();
    let catalog = &app.config.billing_catalog;
    let (effective_sender, composition, quote) = app.db.read(|conn| {
        let effective_sender =
            sender::effective_sender_of(conn, &workspace_id, &app.config.default_sms_sender)?;
        let composition = compose(body, &app.config.default_country, &effective_sender, now)?;
        let quote = billing::quote(
            conn,
            catalog,
            &workspace_id,
            composition.channel,
            composition.units,
            now,
        )?;
        Ok((effective_sender, composition, quote))
    })?;
    let test_mode = matches!(&principal, Principal::ApiKey(key) if key.mode() == Mode::Test);
    let segmentation = composition.segmentation.as_ref();
    let body = serde_json::json!({
        "channel": composition.channel.as_str(),
        "to": composition.to,
        "sender": composition.sender.as_ref().map(|_| effective_sender),
        "category": composition.category.as_str(),
        "encoding": segmentation.map(|s| s.encoding.as_str()),
        "segments": segmentation.map(|s| s.segments),
        "non_gsm_characters": segmentation.map(|s| s.non_gsm_characters.iter().map(char::to_string).collect::<Vec<_>>()),
        "units": quote.units,
        "included_units": quote.included_units,
        "billable_units": quote.billable_units,
        "charge": quote.charge,
        "balance": Money::new(quote.balance_minor, &quote.charge.currency),
        "affordable": quote.charge.amount_minor <= quote.balance_minor,
        "mode": if test_mode { "test" } else { "live" },
        "charged": !test_mode,
    });
    ApiResponse::json(200, &body)
}
