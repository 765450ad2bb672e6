-- What the gateway knows about cards beyond their credentials (DESIGN
-- decision 9): the fingerprint of the card enrolled under a UID (what the
-- chip answers besides its UID, compared on every tap at a uid door) and
-- the newest generation issued or seen for a DESFire card's tag number
-- (older cards of that tag number are refused). Keyed by the credential
-- key, so a decision reads it with the credential by primary key in its one
-- statement. Local knowledge: snapshots never touch it; enrolments from
-- before this table have no row, and the fingerprint policy decides what
-- their next tap does.
CREATE TABLE cards (
	key         TEXT PRIMARY KEY,            -- uid:… or tag:…
	fingerprint TEXT NOT NULL DEFAULT '',    -- '' none recorded
	generation  INTEGER NOT NULL DEFAULT 0,  -- 0 none recorded
	updated_at  INTEGER NOT NULL
) WITHOUT ROWID;
