-- Deliveries are one watermark instead of a mark on every row: the link
-- publishes in seq order and acknowledges the contiguous prefix the broker
-- has PUBACKed, so "everything up to seq N is delivered" says it all. An
-- acknowledgement now writes one small row per batch instead of rewriting
-- every delivered row and its index entry (half the page writes, which on
-- a gateway's SD card is wear as well as time).
CREATE TABLE outbox_delivered (
	id      INTEGER PRIMARY KEY CHECK (id = 1),
	through INTEGER NOT NULL       -- every event with seq <= through reached the broker
);
-- Carry over the marks: delivered is everything before the oldest unsent
-- event, or everything when none is unsent.
INSERT INTO outbox_delivered(id, through) VALUES (1, coalesce(
	(SELECT min(seq) - 1 FROM outbox WHERE sent_at IS NULL),
	(SELECT seq FROM sqlite_sequence WHERE name = 'outbox'),
	0));
DROP INDEX outbox_pending;
ALTER TABLE outbox DROP COLUMN sent_at;
