-- Per-workspace provider accounts (docs/API.md, "Provider accounts"): a workspace's own
-- credentials for a provider (its own Twilio account, its own SMTP relay), tried in `priority`
-- order instead of the instance's providers for its live messages of that channel. Live mode
-- only: test-mode messages always go to the `log` provider.
CREATE TABLE provider_accounts (
    id           TEXT PRIMARY KEY,                           -- pac_…
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    channel      TEXT NOT NULL CHECK (channel IN ('sms', 'email')),
    provider     TEXT NOT NULL,
    -- The provider's non-secret settings as a JSON object (`account_sid`, `host`, `port`, …).
    settings     TEXT NOT NULL,
    -- Lower first, within the workspace's accounts of the channel.
    priority     INTEGER NOT NULL CHECK (priority BETWEEN 0 AND 1000),
    enabled      INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    description  TEXT,
    -- One more at every change: the delivery layer keeps each account's built adapter by
    -- (id, version), so a send neither opens secrets nor validates settings again.
    version      INTEGER NOT NULL DEFAULT 1,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
) STRICT;
CREATE INDEX provider_accounts_by_workspace ON provider_accounts (workspace_id, channel, priority);

-- Each secret of an account (`auth_token`, `password`, …), sealed with the key in the data
-- directory's `secrets.key` (never in this file) for the context `provider_account/{id}/{field}`,
-- with the last four characters kept to show which value is set.
CREATE TABLE provider_account_secrets (
    account_id TEXT NOT NULL REFERENCES provider_accounts (id) ON DELETE CASCADE,
    field      TEXT NOT NULL,
    sealed     BLOB NOT NULL,
    last4      TEXT NOT NULL,
    PRIMARY KEY (account_id, field)
) STRICT, WITHOUT ROWID;
