//! Idempotency records: what a key was used for and the response it produced. The rules that
//! use them (judging a retry, running an effect once, leases) are the web layer's
//! (`crate::web::idempotency`); this module owns the table and its retention sweep.

pub mod store;

use crate::clock::{Timestamp, format_timestamp};
use crate::db::{Db, sweep_in_batches};
use crate::error::AppError;

/// Records deleted per janitor transaction, so a sweep never holds the write lock for long.
const SWEEP_BATCH: usize = 500;

/// Deletes every record whose retention ended by `now` (never one whose lease is still live), a
/// batch per transaction. Returns how many were deleted.
pub fn sweep_expired(db: &Db, now: Timestamp) -> Result<usize, AppError> {
    let now = format_timestamp(now);
    sweep_in_batches(db, SWEEP_BATCH, |conn, limit| {
        store::delete_expired(conn, &now, limit)
    })
}
