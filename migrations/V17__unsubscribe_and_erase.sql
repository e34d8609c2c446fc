-- Unsubscribe links, erasure and the channel state delivery learns (docs/rules/contacts.md,
-- "Unsubscribe links" and "Erasure").

-- Secrets crier makes for itself at first start (32 random bytes each): `unsubscribe` signs
-- unsubscribe tokens and keys the hashes of erased addresses. Never shown, never logged.
CREATE TABLE server_keys (
    name        TEXT PRIMARY KEY,
    key         BLOB NOT NULL CHECK (length(key) = 32),
    created_at  TEXT NOT NULL
) STRICT;

-- The contact a message went to, when the workspace has one for the address (marketing sends
-- create one). NULL for messages before this migration and transactional sends to strangers.
ALTER TABLE messages ADD COLUMN contact_id TEXT REFERENCES contacts (id);

-- Erased contacts (GDPR): the row stays as a tombstone, deleted, with no personal data. V13's
-- CHECK (phone IS NOT NULL OR email IS NOT NULL) cannot change without rebuilding the table, so
-- a tombstone keeps an empty string as its email: no address, nothing personal.
ALTER TABLE contacts ADD COLUMN erased_at TEXT
    CHECK (erased_at IS NULL OR (deleted_at IS NOT NULL AND phone IS NULL AND email = ''));

-- What erasure keeps: a keyed hash (HMAC-SHA256 with the `unsubscribe` server key) of each
-- erased address with the unsubscription of its channel, so the person is never added and
-- written to again. A contact created later with the address starts unsubscribed.
CREATE TABLE suppressions (
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    mode          TEXT NOT NULL CHECK (mode IN ('live', 'test')),
    channel       TEXT NOT NULL CHECK (channel IN ('sms', 'email')),
    address_hash  BLOB NOT NULL CHECK (length(address_hash) = 32),
    since         TEXT NOT NULL,
    via           TEXT NOT NULL CHECK (via IN
                      ('link', 'one_click', 'sms_keyword', 'api', 'console', 'import')),
    PRIMARY KEY (workspace_id, mode, channel, address_hash)
) STRICT, WITHOUT ROWID;

-- An inbound STOP names only a phone: its contacts in every workspace.
CREATE INDEX contacts_by_phone_anywhere ON contacts (phone)
    WHERE phone IS NOT NULL AND deleted_at IS NULL;
-- A workspace's messages to one address: whether it wrote to a number (inbound STOP), and the
-- messages an erasure scrubs.
CREATE INDEX messages_by_recipient ON messages (workspace_id, to_address);
