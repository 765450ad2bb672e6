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

CREATE TABLE users (
	id           TEXT PRIMARY KEY,       -- Salto site-user id
	platform_id  TEXT NOT NULL,          -- Salto platform user id (group membership uses it)
	first_name   TEXT NOT NULL,
	last_name    TEXT NOT NULL,
	alias        TEXT NOT NULL,
	email        TEXT NOT NULL,
	tag_number   TEXT NOT NULL,
	blocked      INTEGER NOT NULL,
	subscription TEXT NOT NULL,
	expires_at   INTEGER,                -- unix seconds, NULL: never
	use_pin      INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX users_platform ON users (platform_id);

CREATE TABLE access_groups (
	id        TEXT PRIMARY KEY,
	name      TEXT NOT NULL,
	locks     TEXT NOT NULL,             -- JSON array of lock ids
	schedules TEXT NOT NULL              -- JSON array of schedules
) WITHOUT ROWID;

-- Membership by platform user id, as Salto reports it. The primary key makes
-- "groups of this user" one index range read.
CREATE TABLE group_members (
	user_id  TEXT NOT NULL,
	group_id TEXT NOT NULL,
	PRIMARY KEY (user_id, group_id)
) WITHOUT ROWID;

-- Every credential under its canonical key (uid:…, wg:…, tag:…, pin:<hmac>),
-- so a decision is one primary-key read joined with its user.
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
