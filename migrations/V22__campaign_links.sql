-- Link tracking (docs/rules/campaigns.md, "Link tracking"): a campaign that asks for it has the
-- URLs of its content rewritten to short links crier serves itself (`PUBLIC_URL/l/{code}`),
-- and each click is recorded. A code is derived from the link's id and the recipient contact's
-- rowid, signed with a short tag: the fan-out writes no row per message or per link sent.

-- Opt-in, per campaign: edited while a draft, copied by a duplicate.
ALTER TABLE campaigns ADD COLUMN track_links INTEGER NOT NULL DEFAULT 0
    CHECK (track_links = 0 OR track_links = 1);

-- The campaign's distinct target URLs, written once by its launch. AUTOINCREMENT: an id is in
-- every code sent and is never given to another link, even after a rollback.
CREATE TABLE campaign_links (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign_id  TEXT NOT NULL REFERENCES campaigns (id),
    position     INTEGER NOT NULL CHECK (position >= 0),  -- order of first appearance
    url          TEXT NOT NULL,                           -- the target, as the 302 names it
    UNIQUE (campaign_id, position)
) STRICT;

-- One row per click on a short link (GET /l/{code}), in the campaign's workspace and mode.
CREATE TABLE campaign_clicks (
    campaign_id   TEXT NOT NULL REFERENCES campaigns (id),
    link_id       INTEGER NOT NULL REFERENCES campaign_links (id),
    contact_id    TEXT NOT NULL,
    workspace_id  TEXT NOT NULL,
    mode          TEXT NOT NULL CHECK (mode = 'live' OR mode = 'test'),
    clicked_at    TEXT NOT NULL
) STRICT;

-- Stats: clicks and distinct clickers of a campaign, from the index alone.
CREATE INDEX campaign_clicks_by_contact ON campaign_clicks (campaign_id, contact_id);
-- The timeline: a campaign's clicks per minute or hour, in time order.
CREATE INDEX campaign_clicks_by_time ON campaign_clicks (campaign_id, clicked_at);
