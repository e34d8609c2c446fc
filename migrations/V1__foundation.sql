-- The foundation: only what the server itself needs. Domain tables arrive with their features.
-- Conventions for every table (see ARCHITECTURE.md): STRICT; ids are TEXT with a type prefix;
-- timestamps are TEXT, RFC 3339 UTC with milliseconds (fixed width, so text order is time order);
-- money is INTEGER minor units.

-- GET /readyz writes this single row to prove the database accepts writes.
CREATE TABLE health_probe (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    checked_at TEXT NOT NULL
) STRICT;
