//! PLACEHOLDER: being written.

use crate::delivery::providers::http::HttpClient;
use crate::payments::provider::*;
use crate::payments::settings::StripeSettings;

pub struct StripeProvider;

impl StripeProvider {
    pub fn new(_settings: &StripeSettings, _http: HttpClient) -> StripeProvider {
        StripeProvider
    }
}

impl PaymentProvider for StripeProvider {
    fn name(&self) -> ProviderName {
        ProviderName::Stripe
    }
    fn create_checkout(&self, _request: &CheckoutRequest<'_>) -> Result<Checkout, ProviderError> {
        Err(ProviderError {
            try_next: true,
            code: "not_configured".into(),
            message: "placeholder".into(),
        })
    }
    fn verify(&self, _lookup: &PaymentLookup<'_>) -> Result<Verification, ProviderError> {
        Err(ProviderError {
            try_next: true,
            code: "not_configured".into(),
            message: "placeholder".into(),
        })
    }
    fn check_signature(&self, _request: &WebhookRequest<'_>) -> SignatureVerdict {
        SignatureVerdict::Invalid("placeholder".into())
    }
    fn parse_event(&self, _body: &[u8]) -> Result<WebhookEvent, String> {
        Err("placeholder".into())
    }
}
