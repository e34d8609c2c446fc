-- Sending domains (docs/API.md, "Sending domains"): a workspace's own domain to send email From,
-- DKIM-signed with that domain's key. One per workspace and domain; per workspace, not per mode
-- (DNS is one world). `pending` until an instance admin approves it (`active`) or rejects it;
-- at most one workspace has a given domain active, so no workspace can send as another's.
-- The private key is sealed by `SecretBox` (context `sending_domain/{id}/private_key`), never
-- stored in clear; `dns_value` is the public TXT record to publish. `from_mailbox` is the
-- workspace's From for live email (at most one per workspace, on an active domain).
CREATE TABLE sending_domains (
    id               TEXT PRIMARY KEY,
    workspace_id     TEXT NOT NULL REFERENCES workspaces (id),
    domain           TEXT NOT NULL,
    selector         TEXT NOT NULL,
    algorithm        TEXT NOT NULL CHECK (algorithm IN ('rsa-sha256', 'ed25519-sha256')),
    dns_value        TEXT NOT NULL,
    private_key      BLOB NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'active', 'rejected')),
    rejection_reason TEXT,
    from_mailbox     TEXT CHECK (from_mailbox IS NULL OR status = 'active'),
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    reviewed_at      TEXT,
    UNIQUE (workspace_id, domain)
) STRICT;

CREATE UNIQUE INDEX sending_domains_active_domain ON sending_domains (domain)
    WHERE status = 'active';
CREATE UNIQUE INDEX sending_domains_one_from ON sending_domains (workspace_id)
    WHERE from_mailbox IS NOT NULL;
CREATE INDEX sending_domains_by_workspace ON sending_domains (workspace_id, id);
CREATE INDEX sending_domains_by_status ON sending_domains (status, id);
