//! Messages: what a send is made of. So far the pure parts every send, estimate and price needs —
//! SMS segment arithmetic and recipient normalisation; the send API and the outbox dispatcher
//! arrive with their issue.

pub mod compose;
pub mod http;
pub mod recipients;
pub mod segments;
