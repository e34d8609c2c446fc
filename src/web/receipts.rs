//! Delivery receipts: `POST /v1/webhooks/sms/{provider}`. A provider that accepted a message
//! later reports whether it reached the handset; the receipt moves a `sent` message to
//! `delivered` or `failed` (never back, never a message in another state).
//!
//! Authentication: the secret token crier put in the callback URL it gave the provider
//! (`?token=…`, compared in constant time). Without a configured token, receipts are off and
//! the endpoint answers 404.

use crate::app::App;
use crate::clock::format_timestamp;
use crate::delivery::{ReceiptRequest, ReceiptStatus};
use crate::error::AppError;
use crate::messages::store;
use crate::secrets::constant_time_eq;
use crate::web::request::Request;
use crate::web::response::ApiResponse;

pub fn receive_receipts(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let provider_name = request.param("provider").to_owned();
    let Some(expected) = app.config.delivery.receipt_token.as_ref() else {
        return Err(AppError::NotFound);
    };
    // The token first: without it, nobody learns which providers are configured.
    let presented = request.query_param("token").unwrap_or_default();
    if !constant_time_eq(presented.as_bytes(), expected.expose().as_bytes()) {
        return Err(AppError::InvalidSignature(
            "The receipt URL's token is missing or wrong; use the callback URL crier gave the \
             provider."
                .to_owned(),
        ));
    }
    let provider = app
        .providers
        .sms_provider(&provider_name)
        .ok_or(AppError::NotFound)?;
    let body = request.body_bytes()?;
    let content_type = request.header("Content-Type").map(str::to_owned);
    let receipt_request = ReceiptRequest {
        content_type: content_type.as_deref(),
        query: request.query(),
        body: &body,
    };
    let receipts = match provider.parse_receipts(&receipt_request) {
        None => return Err(AppError::NotFound),
        Some(Err(why)) => {
            app.metrics.record_webhook(provider.name(), "rejected");
            return Err(AppError::BadRequest(format!("Not a receipt: {why}")));
        }
        Some(Ok(receipts)) => receipts,
    };
    let now = format_timestamp(app.clock.now());
    let applied = app.db.write(|conn| {
        let mut applied = 0u64;
        for receipt in &receipts {
            let delivered = match receipt.status {
                ReceiptStatus::Pending => continue,
                ReceiptStatus::Delivered => true,
                ReceiptStatus::Failed { .. } => false,
            };
            let Some(message) =
                store::find_by_provider_id(conn, provider.name(), &receipt.provider_message_id)?
            else {
                continue;
            };
            let error = (
                receipt.error_code.as_deref(),
                receipt.error_message.as_deref(),
            );
            if store::apply_receipt(conn, &message.id, delivered, error, &now)? {
                applied += 1;
            }
        }
        Ok(applied)
    })?;
    app.metrics.record_webhook(provider.name(), "accepted");
    ApiResponse::json(
        200,
        &ReceiptsView {
            received: receipts.len(),
            applied,
        },
    )
}

/// How many receipts came in and how many changed a message.
#[derive(serde::Serialize)]
struct ReceiptsView {
    received: usize,
    applied: u64,
}
