-- A campaign's messages counted as they change, and checks that cost nothing to write
-- (docs/rules/campaigns.md, "Stats"; docs/design/storage.md, "Checks").

-- How many of a campaign's messages are in each status, and the charges they carry, so reading
-- a campaign's stats (the console polls them while it sends) costs a few rows, not a pass over a
-- million messages. Messages are never deleted and their charge never changes after they are
-- written, so an insert and a change of status are all that move a tally. A change of status is
-- counted by the trigger below, in the same statement (a message changes status in a dozen
-- statements of the dispatcher, receipts and cancels). An insert is counted by the fan-out that
-- writes it, once per part (`messages::CampaignBatch`): a trigger on every insert would make
-- SQLite keep a statement journal for each, a sixth of a campaign message's cost. `crier doctor`
-- counts the messages again and compares.
CREATE TABLE campaign_tallies (
    campaign_id  TEXT NOT NULL,
    status       TEXT NOT NULL,
    messages     INTEGER NOT NULL CHECK (messages >= 0),
    charge_minor INTEGER NOT NULL CHECK (charge_minor >= 0),
    PRIMARY KEY (campaign_id, status)
) STRICT, WITHOUT ROWID;

INSERT INTO campaign_tallies (campaign_id, status, messages, charge_minor)
SELECT campaign_id, status, count(*), sum(charge_minor) FROM messages
WHERE campaign_id IS NOT NULL
GROUP BY campaign_id, status;

CREATE TRIGGER campaign_tallies_on_status AFTER UPDATE OF status ON messages
WHEN new.campaign_id IS NOT NULL AND new.status <> old.status
BEGIN
    UPDATE campaign_tallies
    SET messages = messages - 1, charge_minor = charge_minor - old.charge_minor
    WHERE campaign_id = old.campaign_id AND status = old.status;
    INSERT INTO campaign_tallies (campaign_id, status, messages, charge_minor)
    VALUES (new.campaign_id, new.status, 1, new.charge_minor)
    ON CONFLICT (campaign_id, status) DO UPDATE
    SET messages = messages + 1, charge_minor = charge_minor + excluded.charge_minor;
END;

-- A check `x IN ('a', 'b', 'c')` of three words or more makes SQLite build a temporary b-tree of
-- the words for every row written (V21 did away with contacts' four). On the tables written on
-- every send, attempt and fan-out chunk they were a tenth of a campaign message's cost: the
-- same checks as comparisons cost nothing. Only the stored text of each check changes (every
-- row satisfies both forms): SQLite's documented in-place change of a table's constraints.
-- The CREATEs above changed the schema's version, so every connection reads the new text.
-- A unit test in src/db/migrations.rs checks that none of the tables written on the hot paths
-- keeps one.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema SET sql = replace(sql,
    'CHECK (status IN
                            (''scheduled'', ''queued'', ''sending'', ''sent'', ''delivered'', ''failed'',
                             ''cancelled''))',
    'CHECK (status = ''scheduled'' OR status = ''queued'' OR status = ''sending''
                            OR status = ''sent'' OR status = ''delivered'' OR status = ''failed''
                            OR status = ''cancelled'')')
WHERE type = 'table' AND name = 'messages';
UPDATE sqlite_schema SET sql = replace(sql,
    'CHECK (outcome IN (''accepted'', ''retryable_error'', ''final_error''))',
    'CHECK (outcome = ''accepted'' OR outcome = ''retryable_error'' OR outcome = ''final_error'')')
WHERE type = 'table' AND name = 'message_attempts';
UPDATE sqlite_schema SET sql = replace(sql,
    'CHECK (kind IN (''topup'', ''charge'', ''refund'', ''adjustment'', ''plan_purchase''))',
    'CHECK (kind = ''topup'' OR kind = ''charge'' OR kind = ''refund'' OR kind = ''adjustment''
                                OR kind = ''plan_purchase'')')
WHERE type = 'table' AND name = 'wallet_ledger';
UPDATE sqlite_schema SET sql = replace(sql,
    'CHECK (status IN (''draft'', ''scheduled'', ''running'',
                         ''completed'', ''partial'', ''failed'', ''cancelled''))',
    'CHECK (status = ''draft'' OR status = ''scheduled'' OR status = ''running''
                         OR status = ''completed'' OR status = ''partial'' OR status = ''failed''
                         OR status = ''cancelled'')')
WHERE type = 'table' AND name = 'campaigns';
PRAGMA writable_schema = OFF;
