//! Sending domains: a workspace's own domain, to send its live email From an address there,
//! DKIM-signed with that domain's key (an agency's client sends as itself, not as the instance).
//!
//! A domain belongs to a workspace, not to a mode: DNS is one world, and test email never leaves
//! crier. It is `pending` when added and is used only once an instance admin has approved it
//! (`active`): the instance's relay must not let a workspace send as somebody else's domain. At
//! most one workspace has a given domain active. The private key (imported, or generated here by
//! the web layer) is sealed by `SecretBox` under the context `sending_domain/{id}/private_key`
//! and never leaves crier; what is shown is the DNS record to publish. The workspace's From (at
//! most one mailbox, on one of its active domains) is stamped on each live email when it is
//! created (`messages.sender`), and the dispatcher signs with that domain's key.

pub mod store;

use lettre::message::Mailbox;
use rusqlite::Connection;

use crate::clock::{Timestamp, format_timestamp};
use crate::error::AppError;
use crate::ids::{Ids, SendingDomainId, WorkspaceId};
use crate::scope::WorkspaceScope;
use crate::secrets::SecretBox;

pub use store::{DomainRow, KeyRow};

crate::text_enum! {
    /// Where a domain stands: added (`pending`), approved by an instance admin (`active`: its
    /// key signs and its From may be used), or `rejected` (an admin may reject an active one to
    /// stop it).
    pub enum DomainStatus {
        Pending = "pending",
        Active = "active",
        Rejected = "rejected",
    }
}

crate::text_enum! {
    /// The DKIM signing algorithm of the domain's key (the `a=` tag).
    pub enum DkimAlgorithm {
        Rsa = "rsa-sha256",
        Ed25519 = "ed25519-sha256",
    }
}

/// The longest host name DNS allows, in characters.
pub const MAX_DOMAIN_LEN: usize = 253;
/// The longest selector accepted (one DNS label's length).
pub const MAX_SELECTOR_LEN: usize = 63;
/// The longest PEM accepted (an RSA 4096 key is about 3.3 kB).
pub const MAX_PEM_LEN: usize = 8192;
/// The longest From mailbox accepted.
pub const MAX_FROM_LEN: usize = 320;

/// The context a domain's private key is sealed for.
pub fn key_context(id: &SendingDomainId) -> String {
    format!("sending_domain/{}/private_key", id.as_str())
}

/// A domain as typed, lower-cased: an ASCII host name of at least two labels (letters, digits,
/// hyphens; no IDNA conversion is done, so an internationalised name is given in its `xn--`
/// form), the last label not all digits (no IP addresses).
pub fn check_domain(raw: &str) -> Result<String, String> {
    let domain = raw.trim().to_ascii_lowercase();
    let why = || {
        "must be an ASCII host name such as mail.example.com (letters, digits and hyphens; \
         an internationalised name in its xn-- form)"
            .to_owned()
    };
    if domain.is_empty() || domain.len() > MAX_DOMAIN_LEN || !domain.is_ascii() {
        return Err(why());
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return Err(why());
    }
    for label in &labels {
        let well_formed = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !well_formed {
            return Err(why());
        }
    }
    if labels
        .last()
        .is_some_and(|last| last.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(why());
    }
    Ok(domain)
}

/// A DKIM selector: 1–63 letters, digits, hyphens and dots, starting and ending with a letter
/// or digit, no empty part between dots.
pub fn check_selector(raw: &str) -> Result<String, String> {
    let selector = raw.trim();
    let ok = !selector.is_empty()
        && selector.len() <= MAX_SELECTOR_LEN
        && selector
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && selector
            .split('.')
            .all(|part| !part.is_empty() && !part.starts_with('-') && !part.ends_with('-'));
    if ok {
        Ok(selector.to_owned())
    } else {
        Err(format!(
            "must be 1–{MAX_SELECTOR_LEN} letters, digits, hyphens and dots (e.g. crier2026)"
        ))
    }
}

/// The selector when none is given: `crier` and the year, so a later key can take the next
/// year's name and both records can stand side by side while receivers catch up.
pub fn default_selector(now: Timestamp) -> String {
    format!("crier{}", now.format("%Y"))
}

/// A From mailbox (`Acme <news@acme.example>` or a bare address) whose address is at `domain`
/// exactly; normalised as it will be written in the header.
pub fn check_from(raw: &str, domain: &str) -> Result<String, String> {
    if raw.len() > MAX_FROM_LEN {
        return Err(format!("must be at most {MAX_FROM_LEN} characters"));
    }
    let mailbox: Mailbox = raw
        .trim()
        .parse()
        .map_err(|_| "must be a mailbox such as Acme <news@acme.example>".to_owned())?;
    if !mailbox.email.domain().eq_ignore_ascii_case(domain) {
        return Err(format!("must be an address at {domain}"));
    }
    Ok(mailbox.to_string())
}

/// A domain to add, validated, with its key (imported or generated) and the record it gives.
pub struct NewDomain<'a> {
    pub domain: String,
    pub selector: String,
    pub algorithm: DkimAlgorithm,
    pub dns_value: String,
    /// The PEM of the private key, sealed before it is stored.
    pub private_key_pem: &'a str,
}

/// Adds a `pending` domain to the workspace. 409 when the workspace already has it, or when
/// another workspace has it active.
pub fn create(
    conn: &Connection,
    (ids, secret_box): (&Ids, &SecretBox),
    scope: &WorkspaceScope,
    new: NewDomain<'_>,
    now: Timestamp,
) -> Result<DomainRow, AppError> {
    if store::find_by_domain(conn, scope.id(), &new.domain)?.is_some() {
        return Err(AppError::Conflict(format!(
            "This workspace already has the sending domain {}.",
            new.domain
        )));
    }
    taken_elsewhere(conn, scope.id(), &new.domain)?;
    let now = format_timestamp(now);
    let row = DomainRow {
        id: SendingDomainId::generate(ids),
        workspace_id: scope.id().clone(),
        domain: new.domain,
        selector: new.selector,
        algorithm: new.algorithm,
        dns_value: new.dns_value,
        status: DomainStatus::Pending,
        rejection_reason: None,
        from_mailbox: None,
        created_at: now.clone(),
        updated_at: now,
        reviewed_at: None,
    };
    let sealed = secret_box.seal(ids, &key_context(&row.id), new.private_key_pem.as_bytes());
    store::insert(conn, &row, &sealed)?;
    Ok(row)
}

/// 409 when a workspace other than `workspace_id` has `domain` active.
fn taken_elsewhere(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    domain: &str,
) -> Result<(), AppError> {
    match store::active_owner(conn, domain)? {
        Some(owner) if &owner != workspace_id => Err(AppError::Conflict(format!(
            "The domain {domain} is already in use by another workspace."
        ))),
        _ => Ok(()),
    }
}

pub fn find(
    conn: &Connection,
    scope: &WorkspaceScope,
    id: &SendingDomainId,
) -> Result<DomainRow, AppError> {
    store::find(conn, scope.id(), id)?.ok_or(AppError::NotFound)
}

pub fn list(
    conn: &Connection,
    scope: &WorkspaceScope,
    before: Option<&str>,
    limit: usize,
) -> Result<Vec<DomainRow>, AppError> {
    store::list(conn, scope.id(), before, limit)
}

/// Deletes the domain and its key; the workspace's From goes with it (its live email then goes
/// From the instance's address; queued messages stamped with it fail, see the dispatcher).
pub fn delete(
    conn: &Connection,
    scope: &WorkspaceScope,
    id: &SendingDomainId,
) -> Result<DomainRow, AppError> {
    let row = find(conn, scope, id)?;
    store::delete(conn, scope.id(), id)?;
    Ok(row)
}

/// Sets the workspace's From to `from` (checked by `check_from` against the domain) on this
/// domain, which must be active (409 otherwise); `None` clears it. A workspace has one From:
/// setting it here clears it on its other domains.
pub fn set_from(
    conn: &Connection,
    scope: &WorkspaceScope,
    id: &SendingDomainId,
    from: Option<&str>,
    now: Timestamp,
) -> Result<DomainRow, AppError> {
    let row = find(conn, scope, id)?;
    let from = match from {
        Some(raw) => {
            Some(check_from(raw, &row.domain).map_err(|why| AppError::invalid_field("from", why))?)
        }
        None => None,
    };
    if from.is_some() && row.status != DomainStatus::Active {
        return Err(AppError::Conflict(format!(
            "The domain {} is {}: a From can be set once an instance admin has approved it.",
            row.domain,
            row.status.as_str()
        )));
    }
    store::set_from(
        conn,
        scope.id(),
        id,
        from.as_deref(),
        &format_timestamp(now),
    )?;
    find(conn, scope, id)
}

/// The workspace's From for its live email, if it has one on an active domain.
pub fn workspace_from(
    conn: &Connection,
    scope: &WorkspaceScope,
) -> Result<Option<String>, AppError> {
    store::workspace_from(conn, scope.id())
}

/// The sealed key of the workspace's active domain `domain`, for signing.
pub fn active_key(
    conn: &Connection,
    scope: &WorkspaceScope,
    domain: &str,
) -> Result<Option<KeyRow>, AppError> {
    store::active_key(conn, scope.id(), &domain.to_ascii_lowercase())
}

/// Every workspace's domains in `status` (instance admins' review list), oldest first.
pub fn list_for_review(
    conn: &Connection,
    status: DomainStatus,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<DomainRow>, AppError> {
    store::list_by_status(conn, status, after, limit)
}

/// An instance admin's decision on domain `id`: approving makes it `active` (409 when another
/// workspace has the domain active; approving an active one changes nothing); rejecting (with a
/// reason) makes a pending or active domain `rejected` and drops its From.
pub fn decide(
    conn: &Connection,
    id: &SendingDomainId,
    approve: bool,
    reason: Option<&str>,
    now: Timestamp,
) -> Result<DomainRow, AppError> {
    let row = store::find_any(conn, id)?.ok_or(AppError::NotFound)?;
    let now = format_timestamp(now);
    if approve {
        if row.status == DomainStatus::Active {
            return Ok(row);
        }
        taken_elsewhere(conn, &row.workspace_id, &row.domain)?;
        store::set_status(conn, id, DomainStatus::Active, None, &now)?;
    } else {
        if row.status == DomainStatus::Rejected {
            return Err(AppError::Conflict(
                "This sending domain is already rejected.".to_owned(),
            ));
        }
        store::set_status(conn, id, DomainStatus::Rejected, reason, &now)?;
    }
    store::find_any(conn, id)?.ok_or(AppError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_lower_cased_ascii_host_names() {
        assert_eq!(
            check_domain(" Mail.Acme.Example ").unwrap(),
            "mail.acme.example"
        );
        assert_eq!(
            check_domain("xn--bcher-kva.example").unwrap(),
            "xn--bcher-kva.example"
        );
        for bad in [
            "",
            "localhost",
            "bücher.example",
            "a..b",
            "-a.example",
            "a-.example",
            "a_b.example",
            "10.0.0.1",
            "example.com.",
            "acme example.com",
            &format!("{}.com", "a".repeat(64)),
        ] {
            assert!(check_domain(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn selectors_are_letters_digits_hyphens_and_dots() {
        assert_eq!(check_selector("crier2026").unwrap(), "crier2026");
        assert_eq!(check_selector("s1.eu-west").unwrap(), "s1.eu-west");
        for bad in ["", "a b", "a..b", ".a", "a.", "-a", "a_b", &"a".repeat(64)] {
            assert!(check_selector(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_from_must_be_at_the_domain() {
        assert_eq!(
            check_from("Acme <news@acme.example>", "acme.example").unwrap(),
            "Acme <news@acme.example>"
        );
        assert_eq!(
            check_from("news@ACME.example", "acme.example").unwrap(),
            "news@ACME.example"
        );
        assert!(check_from("news@other.example", "acme.example").is_err());
        assert!(check_from("news@mail.acme.example", "acme.example").is_err());
        assert!(check_from("not a mailbox", "acme.example").is_err());
    }
}
