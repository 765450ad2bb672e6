-- The event outbox: every event is written here before anything publishes it,
-- and leaves only when the broker acknowledged it (DESIGN decision 4).
-- AUTOINCREMENT keeps seq monotonic per gateway even after every row was
-- deleted, so consumers can order and de-duplicate across restarts.
CREATE TABLE outbox (
	seq  INTEGER PRIMARY KEY AUTOINCREMENT,
	id   TEXT NOT NULL UNIQUE,
	at   INTEGER NOT NULL,       -- unix milliseconds
	type TEXT NOT NULL,
	door TEXT NOT NULL,
	body TEXT NOT NULL           -- the event as JSON
);
