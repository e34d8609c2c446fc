-- A contact's insert pays for every index of `contacts`, and an import inserts a million of them
-- (README, "Contact import"). Two indexes served one rare statement each, which other indexes
-- now serve:
-- * an import's rollback finds the contacts it created through `contacts_by_workspace`
--   (workspace, mode, then rowid), walking the rowids once with a cursor;
-- * an inbound STOP finds a phone's contacts in every workspace through `contacts_by_phone`
--   (workspace, mode, phone), one search per workspace.
DROP INDEX contacts_by_import;
DROP INDEX contacts_by_phone_anywhere;
