//! The DKIM signers of workspaces' sending domains (`sending_domains`), opened from their sealed
//! keys once and kept in memory, keyed by the domain's id and `updated_at`: sending does not
//! decrypt and parse a key per message, and a domain changed since (approved again, its From
//! set) is opened afresh.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::delivery::providers::smtp::DkimSigner;
use crate::ids::SendingDomainId;
use crate::secrets::{SecretBox, Unsealed};
use crate::sending_domains::{KeyRow, key_context};

/// The opened signers, by domain id, with the `updated_at` they were opened at.
#[derive(Default)]
pub struct DomainSigners {
    opened: Mutex<HashMap<SendingDomainId, (String, Arc<DkimSigner>)>>,
}

impl std::fmt::Debug for DomainSigners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DomainSigners(…)")
    }
}

impl DomainSigners {
    /// The signer of `key`'s domain: the one opened before if the domain has not changed since,
    /// else opened now (and kept). Fails with a sentence (never the key) when the key does not
    /// open — the secrets key file was replaced — or no longer parses.
    pub fn signer(&self, secret_box: &SecretBox, key: &KeyRow) -> Result<Arc<DkimSigner>, String> {
        {
            let opened = self.opened.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((version, signer)) = opened.get(&key.id)
                && *version == key.updated_at
            {
                return Ok(Arc::clone(signer));
            }
        }
        let pem = secret_box
            .open(&key_context(&key.id), &key.sealed_key)
            .map_err(|why| match why {
                Unsealed::OtherKey => format!(
                    "the key of {} was sealed under another secrets.key; add the domain again",
                    key.domain
                ),
                Unsealed::Damaged => format!("the stored key of {} is damaged", key.domain),
            })?;
        let pem = String::from_utf8(pem).map_err(|_| "the stored key is not text".to_owned())?;
        let signer = Arc::new(DkimSigner::from_pem(
            &pem,
            &key.domain,
            &key.selector,
            crate::ids::signing_random(),
        )?);
        self.opened
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                key.id.clone(),
                (key.updated_at.clone(), Arc::clone(&signer)),
            );
        Ok(signer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{Ids, SeededRandom};

    #[test]
    fn a_key_is_opened_once_per_version_and_a_foreign_seal_is_refused() {
        let ids = Ids::new(
            Arc::new(crate::clock::SystemClock),
            Arc::new(SeededRandom::new(3)),
        );
        let secret_box = SecretBox::from_bytes(&[4; 32]);
        let random = crate::ids::signing_random();
        let pem = DkimSigner::generate_ed25519_pem(random.as_ref()).unwrap();
        let id = SendingDomainId::parse("sdm_01JD5XAAAAAAAAAAAAAAAAAAAA").unwrap();
        let key = KeyRow {
            id: id.clone(),
            domain: "acme.example".to_owned(),
            selector: "crier2026".to_owned(),
            updated_at: "2026-11-25T09:30:00.000Z".to_owned(),
            sealed_key: secret_box.seal(&ids, &key_context(&id), pem.as_bytes()),
        };
        let signers = DomainSigners::default();
        let first = signers.signer(&secret_box, &key).unwrap();
        assert_eq!(first.record_name(), "crier2026._domainkey.acme.example");
        let again = signers.signer(&secret_box, &key).unwrap();
        assert!(Arc::ptr_eq(&first, &again), "kept, not opened again");
        let changed = KeyRow {
            updated_at: "2026-11-25T10:00:00.000Z".to_owned(),
            ..key.clone()
        };
        let reopened = signers.signer(&secret_box, &changed).unwrap();
        assert!(
            !Arc::ptr_eq(&first, &reopened),
            "a changed domain is opened afresh"
        );
        let other_box = SecretBox::from_bytes(&[5; 32]);
        let refused = DomainSigners::default()
            .signer(&other_box, &key)
            .unwrap_err();
        assert!(refused.contains("another secrets.key"), "{refused}");
    }
}
