//! Payments (SPEC §6): checkout sessions with Flutterwave first and Stripe as fallback, verified
//! webhooks, one state machine and exactly-once fulfilment.

mod adapter;
pub mod flutterwave;
pub mod provider;
pub mod settings;
pub mod stripe;
