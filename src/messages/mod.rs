//! Messages: what a send is made of. So far the SMS segment arithmetic every SMS send, estimate
//! and price needs; the send API and the outbox dispatcher arrive with their issue.

pub mod segments;
