package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/portier-io/portier/agent"
)

// Append writes e to the outbox and returns it with its ID (a UUIDv7, unless
// e already has one) and Seq (per-gateway, monotonic) set. It returns only
// once the row is committed.
func (db *DB) Append(ctx context.Context, e agent.Event) (agent.Event, error) {
	out, err := db.AppendAll(ctx, []agent.Event{e})
	if err != nil {
		return e, err
	}
	return out[0], nil
}

// AppendAll writes events in one transaction (all or none) and returns them
// with their IDs and Seqs set.
func (db *DB) AppendAll(ctx context.Context, events []agent.Event) ([]agent.Event, error) {
	out := make([]agent.Event, len(events))
	err := db.write(ctx, func(tx *sql.Tx) error {
		var next int64
		// Seqs are the rows' own keys, assigned here so the caller gets them.
		err := tx.QueryRowContext(ctx, "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'outbox'), 0) + 1").Scan(&next)
		if err != nil {
			return fmt.Errorf("sqlite: append event: %w", err)
		}
		stmt, err := tx.PrepareContext(ctx, "INSERT INTO outbox(seq, id, at, type, door, body) VALUES(?, ?, ?, ?, ?, ?)")
		if err != nil {
			return fmt.Errorf("sqlite: append event: %w", err)
		}
		defer stmt.Close()
		for i, e := range events {
			if e.Time.IsZero() {
				e.Time = db.now()
			}
			if e.ID == "" {
				e.ID = newEventID(e.Time)
			}
			e.Seq = next + int64(i)
			if _, err := stmt.ExecContext(ctx, e.Seq, e.ID, e.Time.UnixMilli(), string(e.Type), e.Door, encodeEvent(e)); err != nil {
				return fmt.Errorf("sqlite: append event: %w", err)
			}
			out[i] = e
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	select {
	case db.appended <- struct{}{}:
	default: // a wake-up is already pending
	}
	return out, nil
}

// RecordAll appends events in one transaction, for callers that need only
// the error (agent.BatchEventSink).
func (db *DB) RecordAll(ctx context.Context, events []agent.Event) error {
	_, err := db.AppendAll(ctx, events)
	return err
}

// Appended is signalled after events were appended by this process. One
// signal may stand for several appends; read Pending to see them.
func (db *DB) Appended() <-chan struct{} { return db.appended }

// Record appends e, for callers that need only the error (agent.EventSink).
func (db *DB) Record(ctx context.Context, e agent.Event) error {
	_, err := db.Append(ctx, e)
	return err
}

// Pending returns up to limit events not yet delivered with seq > after,
// oldest first.
func (db *DB) Pending(ctx context.Context, after int64, limit int) ([]agent.Event, error) {
	return db.events(ctx, "SELECT seq, body FROM outbox WHERE seq > max(?, (SELECT through FROM outbox_delivered)) ORDER BY seq LIMIT ?", after, limit)
}

// Events returns up to limit recorded events with seq > after, oldest first,
// whether already delivered to the broker or not (the local history keeps
// about the newest KeepSent delivered ones).
func (db *DB) Events(ctx context.Context, after int64, limit int) ([]agent.Event, error) {
	return db.events(ctx, "SELECT seq, body FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?", after, limit)
}

func (db *DB) events(ctx context.Context, q string, after int64, limit int) ([]agent.Event, error) {
	rows, err := db.r.QueryContext(ctx, q, after, limit)
	if err != nil {
		return nil, db.explain(err)
	}
	defer rows.Close()
	out := make([]agent.Event, 0, min(limit, 1024))
	var body sql.RawBytes // decodeEvent copies what it keeps
	for rows.Next() {
		var seq int64
		if err := rows.Scan(&seq, &body); err != nil {
			return nil, db.explain(err)
		}
		e, err := decodeEvent(body, seq)
		if err != nil {
			return nil, fmt.Errorf("sqlite: outbox row %d: %w", seq, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// KeepSent is about how many delivered events the local history keeps: the
// ones within KeepSent seqs of the newest delivered one.
const KeepSent = 10_000

// AckThrough records that every event with seq <= through reached the
// broker: they leave the outbox and join the local history, whose oldest
// entries are pruned. The caller must have delivered all of them — the MQTT
// link calls it with the end of the contiguous prefix the broker PUBACKed.
// The watermark never moves back.
func (db *DB) AckThrough(ctx context.Context, through int64) error {
	return db.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "UPDATE outbox_delivered SET through = max(through, ?)", through); err != nil {
			return fmt.Errorf("sqlite: ack events: %w", err)
		}
		// A range delete on the primary key: nothing to do costs one seek.
		if _, err := tx.ExecContext(ctx, "DELETE FROM outbox WHERE seq <= (SELECT through FROM outbox_delivered) - ?", KeepSent); err != nil {
			return fmt.Errorf("sqlite: prune event history: %w", err)
		}
		return nil
	})
}

// OutboxStats describes the outbox.
type OutboxStats struct {
	Depth   int       `json:"depth"`           // events not yet delivered
	Oldest  time.Time `json:"oldest,omitzero"` // time of the oldest pending event
	LastSeq int64     `json:"last_seq"`        // highest seq ever assigned
}

// OutboxStats reports depth, oldest pending event and the last seq.
func (db *DB) OutboxStats(ctx context.Context) (OutboxStats, error) {
	var st OutboxStats
	var oldest sql.NullInt64
	err := db.r.QueryRowContext(ctx, `SELECT count(*), min(at),
		coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'outbox'), 0)
		FROM outbox WHERE seq > (SELECT through FROM outbox_delivered)`).Scan(&st.Depth, &oldest, &st.LastSeq)
	if err != nil {
		return st, db.explain(err)
	}
	if oldest.Valid {
		st.Oldest = time.UnixMilli(oldest.Int64).UTC()
	}
	return st, nil
}

// newEventID makes a UUIDv7: 48 bits of milliseconds, then random bits, so
// ids sort by time and never collide across gateways.
func newEventID(t time.Time) string {
	var b [16]byte
	if _, err := rand.Read(b[6:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	ms := uint64(t.UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	b[6] = b[6]&0x0f | 0x70 // version 7
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
