-- Enrolments: the card UID / Wiegand number ↔ Salto tag number pairs this
-- gateway learned. They are local knowledge and survive every snapshot; the
-- credentials they imply are derived into `credentials` (origin enrolment).
CREATE TABLE enrolments (
	key         TEXT PRIMARY KEY,
	tag_number  TEXT NOT NULL,
	enrolled_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX enrolments_tag ON enrolments (tag_number);
