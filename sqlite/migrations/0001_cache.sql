-- The site snapshot: what Salto KS says about the site. Replaced atomically
-- by ApplySnapshot, which writes only the rows that changed.
CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE locks (
	id   TEXT PRIMARY KEY,
	name TEXT NOT NULL
) WITHOUT ROWID;

-- A user row carries, besides its two lookup keys, `facts`: everything a
-- decision needs about the holder (names, state, validity and the ids of the
-- access groups the user is a member of), packed into one column. A decision
-- then reads the credential and this one column in a single statement; a join
-- over separate columns measured twice as slow (see sqlite/facts.go).
CREATE TABLE users (
	id          TEXT PRIMARY KEY,        -- Salto site-user id
	platform_id TEXT NOT NULL,           -- Salto platform user id (group membership uses it)
	tag_number  TEXT NOT NULL,
	facts       TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX users_platform ON users (platform_id);
CREATE INDEX users_tag ON users (tag_number) WHERE tag_number <> '';

CREATE TABLE access_groups (
	id        TEXT PRIMARY KEY,
	name      TEXT NOT NULL,
	locks     TEXT NOT NULL,             -- JSON array of lock ids
	schedules TEXT NOT NULL              -- JSON array of schedules
) WITHOUT ROWID;

-- Every credential under its canonical key (uid:…, wg:…, tag:…, pin:<hmac>),
-- so a decision is one primary-key read (plus its holder's facts).
CREATE TABLE credentials (
	key        TEXT PRIMARY KEY,
	kind       TEXT NOT NULL,
	origin     TEXT NOT NULL,            -- salto | enrolment | local
	user_id    TEXT NOT NULL,            -- site-user id
	tag_number TEXT NOT NULL,
	starts_at  INTEGER,
	ends_at    INTEGER,
	label      TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX credentials_user ON credentials (user_id);
