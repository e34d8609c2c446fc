-- Contact imports at scale (docs/rules/contacts.md, "Imports"; README, "Contact import").
--
-- V16's triggers kept `custom_jsonb` by re-reading the row just written and writing it again,
-- and a trigger makes SQLite give every INSERT and UPDATE of a contact a statement journal (a
-- copy of each page the statement changes, kept in case it must be undone halfway). The
-- statements that write `custom` now write `custom_jsonb = jsonb(custom)` themselves
-- (src/contacts/store.rs), and the triggers go.
DROP TRIGGER contacts_custom_jsonb_on_insert;
DROP TRIGGER contacts_custom_jsonb_on_update;

-- V13's checks of the four columns whose words are more than two (`phone_state IN ('valid',
-- 'invalid', 'unreachable')`, …) made SQLite build a temporary b-tree of the words for every row
-- written: a fifth of an imported row's cost. The same checks written as comparisons cost
-- nothing. A check's text is all that changes (the rows on disk are the same, and every row
-- already satisfies both forms), so this is SQLite's documented in-place change of a table's
-- constraints: the stored CREATE TABLE text is edited. The DROP TRIGGERs above changed the
-- schema's version, so every connection reads the new text. tests/it/contacts.rs checks that
-- writing a contact builds no temporary b-tree.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema SET sql = replace(replace(replace(replace(sql,
    'phone_state IN
                                (''valid'', ''invalid'', ''unreachable'')',
    'phone_state = ''valid'' OR phone_state = ''invalid'' OR phone_state = ''unreachable'''),
    'email_state IN
                                (''valid'', ''invalid'', ''bounced'', ''complained'')',
    'email_state = ''valid'' OR email_state = ''invalid'' OR email_state = ''bounced''
                                OR email_state = ''complained'''),
    'sms_unsubscribed_via IN
                                (''link'', ''one_click'', ''sms_keyword'', ''api'', ''console'', ''import'')',
    'sms_unsubscribed_via = ''link'' OR sms_unsubscribed_via = ''one_click''
                                OR sms_unsubscribed_via = ''sms_keyword'' OR sms_unsubscribed_via = ''api''
                                OR sms_unsubscribed_via = ''console'' OR sms_unsubscribed_via = ''import'''),
    'email_unsubscribed_via IN
                                (''link'', ''one_click'', ''sms_keyword'', ''api'', ''console'', ''import'')',
    'email_unsubscribed_via = ''link'' OR email_unsubscribed_via = ''one_click''
                                OR email_unsubscribed_via = ''sms_keyword'' OR email_unsubscribed_via = ''api''
                                OR email_unsubscribed_via = ''console'' OR email_unsubscribed_via = ''import''')
WHERE type = 'table' AND name = 'contacts';
PRAGMA writable_schema = OFF;
