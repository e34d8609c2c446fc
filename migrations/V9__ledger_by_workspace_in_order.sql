-- The wallet's newest ledger row is found on every charge (the balance guard trigger) and the
-- ledger is listed newest first: both order one workspace's rows by rowid. An index on
-- (workspace_id) alone keeps each workspace's entries in rowid order, so both are one seek;
-- the old (workspace_id, id) index made the trigger scan the workspace's whole ledger.
DROP INDEX wallet_ledger_by_workspace;
CREATE INDEX wallet_ledger_by_workspace ON wallet_ledger (workspace_id);
