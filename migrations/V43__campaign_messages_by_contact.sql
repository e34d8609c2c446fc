-- A campaign's fan-out writes a million messages in a few seconds (README, "Campaign launch").
-- Every index a message fills is inserted in order — except `messages_by_recipient (workspace_id,
-- to_address)`, whose entries land at random: past a few hundred thousand messages it no longer
-- fits the writer's page cache, every insert dirties a page of its own, and it cost more than
-- the rest of the message together (measured: 19,400 → 49,900 messages/s without it).
--
-- Campaign messages are now found by their contact instead, through an index the fan-out fills
-- in order (contacts are read in rowid order, and their ids, which begin with their creation time, grow
-- with it):
-- * `messages_by_recipient` keeps the messages sent through the API (`campaign_id IS NULL`);
-- * `messages_by_contact_campaign` replaces `messages_by_campaign_contact` with its columns
--   swapped: still one message per campaign and contact, and now a contact's campaign messages;
-- * the deleted contacts are found by phone and email (an erasure and an inbound STOP reach the
--   campaign messages of an earlier, deleted contact with the same address). A contact is
--   inserted live, so an import does not fill these.
DROP INDEX messages_by_recipient;
CREATE INDEX messages_by_recipient ON messages (workspace_id, to_address)
    WHERE campaign_id IS NULL;

DROP INDEX messages_by_campaign_contact;
CREATE UNIQUE INDEX messages_by_contact_campaign ON messages (contact_id, campaign_id)
    WHERE campaign_id IS NOT NULL;

CREATE INDEX contacts_deleted_by_phone ON contacts (workspace_id, mode, phone)
    WHERE phone IS NOT NULL AND deleted_at IS NOT NULL;
CREATE INDEX contacts_deleted_by_email ON contacts (workspace_id, mode, email)
    WHERE email IS NOT NULL AND deleted_at IS NOT NULL;
