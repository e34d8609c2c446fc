//! A workspace's provider account as a provider: the adapter built from the account's settings
//! by the instance's constructors, with what the dispatcher needs besides (its own From for
//! email, its receipt URL's token), and the cache that builds each account once per version.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::delivery::accounts::receipts_url;
use crate::delivery::{
    Accepted, Failure, InboundRequest, Outgoing, Provider, Receipt, ReceiptRequest,
};
use crate::error::AppError;
use crate::ids::ProviderAccountId;
use crate::settings::Secret;

/// An account's adapter. `name` is the provider's (`twilio`): attempts and receipts match on it.
pub struct AccountProvider {
    pub account_id: ProviderAccountId,
    inner: Arc<dyn Provider>,
    email_from: Option<String>,
    receipt_token: Option<Secret>,
}

impl AccountProvider {
    pub fn new(
        account_id: ProviderAccountId,
        inner: Arc<dyn Provider>,
        email_from: Option<String>,
        receipt_token: Option<Secret>,
    ) -> AccountProvider {
        AccountProvider {
            account_id,
            inner,
            email_from,
            receipt_token,
        }
    }

    /// The account's own From mailbox (email).
    pub fn email_from(&self) -> Option<&str> {
        self.email_from.as_deref()
    }

    /// The token the account's receipt URL carries (SMS accounts with a secret).
    pub fn receipt_token(&self) -> Option<&Secret> {
        self.receipt_token.as_ref()
    }

    /// Where the provider should post this account's delivery receipts.
    pub fn receipt_url(&self, public_url: &str) -> Option<String> {
        let token = self.receipt_token.as_ref()?;
        Some(receipts_url(
            public_url,
            self.inner.name(),
            &self.account_id,
            token,
        ))
    }
}

impl Provider for AccountProvider {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn send(&self, message: &Outgoing<'_>) -> Result<Accepted, Failure> {
        self.inner.send(message)
    }

    fn has_outside_effect(&self) -> bool {
        self.inner.has_outside_effect()
    }

    fn parse_receipts(&self, request: &ReceiptRequest<'_>) -> Option<Result<Vec<Receipt>, String>> {
        self.inner.parse_receipts(request)
    }

    fn parse_inbound(
        &self,
        request: &InboundRequest<'_>,
    ) -> Option<Result<Vec<crate::delivery::Inbound>, crate::delivery::InboundRefusal>> {
        self.inner.parse_inbound(request)
    }

    fn account(&self) -> Option<&AccountProvider> {
        Some(self)
    }
}

/// What a message whose route names accounts tries when none of them can send (deleted,
/// disabled, secrets to enter again): a retryable failure saying so, so the message retries
/// with backoff and, after its last cycle, fails and is refunded — never the instance's
/// providers.
pub struct NoUsableAccount;

/// The provider name attempts record for `NoUsableAccount`.
pub const NO_USABLE_ACCOUNT: &str = "provider_account";

impl Provider for NoUsableAccount {
    fn name(&self) -> &'static str {
        NO_USABLE_ACCOUNT
    }

    fn send(&self, _message: &Outgoing<'_>) -> Result<Accepted, Failure> {
        Err(Failure::retryable(
            "provider_account_unavailable",
            "None of the workspace's provider accounts this message was routed to can send: \
             deleted, disabled, or their secrets must be entered again.",
        ))
    }

    fn has_outside_effect(&self) -> bool {
        false
    }
}

/// An account's adapter at a version (`None`: it could not be built).
type Built = (i64, Option<Arc<dyn Provider>>);

/// Each account's adapter, built once per version of the account (`version`, one more at every
/// change — a time could repeat within a millisecond), so a send
/// neither opens secrets nor validates settings. A failure to build is kept too (until the
/// account changes), so an account whose secrets no longer open is not retried per message.
#[derive(Default)]
pub struct AccountProviders {
    built: Mutex<HashMap<ProviderAccountId, Built>>,
}

impl AccountProviders {
    /// The adapter of account `id` at `version`, built with `build` when not cached (outside
    /// the lock: two dispatchers may both build it, the last one kept). `build` gives `Ok(None)`
    /// for an account that cannot send, kept too; an `Err` (the database busy) is not kept, so
    /// the next message tries again.
    pub fn get_or_build(
        &self,
        id: &ProviderAccountId,
        version: i64,
        build: impl FnOnce() -> Result<Option<Arc<dyn Provider>>, AppError>,
    ) -> Result<Option<Arc<dyn Provider>>, AppError> {
        let cached = self
            .built
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .filter(|(built_version, _)| *built_version == version)
            .map(|(_, provider)| provider.clone());
        if let Some(provider) = cached {
            return Ok(provider);
        }
        let provider = build()?;
        self.built
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.clone(), (version, provider.clone()));
        Ok(provider)
    }

    /// Drops a deleted account's adapter.
    pub fn forget(&self, id: &ProviderAccountId) {
        self.built
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> ProviderAccountId {
        ProviderAccountId::parse("pac_1").unwrap()
    }

    #[test]
    fn an_adapter_is_built_once_per_version_and_a_failed_read_is_not_kept() {
        let cache = AccountProviders::default();
        let builds = std::cell::Cell::new(0);
        let build = || {
            builds.set(builds.get() + 1);
            Ok(Some(Arc::new(NoUsableAccount) as Arc<dyn Provider>))
        };
        assert!(cache.get_or_build(&id(), 1, build).unwrap().is_some());
        assert!(cache.get_or_build(&id(), 1, build).unwrap().is_some());
        assert_eq!(builds.get(), 1, "cached");
        assert!(cache.get_or_build(&id(), 2, build).unwrap().is_some());
        assert_eq!(builds.get(), 2, "a new version is built again");

        let unusable = || Ok(None);
        assert!(cache.get_or_build(&id(), 3, unusable).unwrap().is_none());
        assert!(
            cache.get_or_build(&id(), 3, build).unwrap().is_none(),
            "kept"
        );

        let busy = || Err(AppError::internal("busy"));
        assert!(cache.get_or_build(&id(), 4, busy).is_err());
        assert!(
            cache.get_or_build(&id(), 4, build).unwrap().is_some(),
            "not kept"
        );
        cache.forget(&id());
        assert!(cache.get_or_build(&id(), 4, build).unwrap().is_some());
        assert_eq!(builds.get(), 4);
    }
}
