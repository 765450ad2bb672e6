-- Remote commands the gateway received over MQTT, by id, so a replayed or
-- duplicated command never runs twice (DESIGN decision 6). The row is written
-- before the command acts; rows are pruned once their command expired (a
-- replay after that is refused as expired anyway).
CREATE TABLE commands (
	id          TEXT PRIMARY KEY,
	name        TEXT NOT NULL,
	received_at INTEGER NOT NULL,  -- unix milliseconds
	expires_at  INTEGER NOT NULL,  -- unix milliseconds
	status      TEXT NOT NULL,     -- received, success, error
	error_type  TEXT NOT NULL,
	updated_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX commands_expiry ON commands(expires_at);
