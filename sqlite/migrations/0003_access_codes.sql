-- Access codes this gateway programmed in Salto KS (Seam's lifecycle:
-- setting → set → removing → unset). The PIN is never stored here; its keyed
-- hash is the credential named by credential_key.
CREATE TABLE access_codes (
	id                TEXT PRIMARY KEY,
	door              TEXT NOT NULL,
	name              TEXT NOT NULL,
	status            TEXT NOT NULL,
	step              TEXT NOT NULL,
	salto_user_id     TEXT NOT NULL,
	salto_platform_id TEXT NOT NULL,
	salto_group_id    TEXT NOT NULL,
	credential_key    TEXT NOT NULL,
	starts_at         INTEGER,
	ends_at           INTEGER,
	created_at        INTEGER NOT NULL,
	updated_at        INTEGER NOT NULL,
	error             TEXT NOT NULL
) WITHOUT ROWID;
