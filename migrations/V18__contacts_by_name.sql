-- Contact lists sorted by name (`?sort=name`, `-name`): a workspace's contacts of one mode in
-- name order without sorting them all for every page (SQLite appends the rowid, the tie-break).
CREATE INDEX contacts_by_name ON contacts (workspace_id, mode, name COLLATE NOCASE);
