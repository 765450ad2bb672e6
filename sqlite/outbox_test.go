package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/sqlite"
)

func TestOutbox(t *testing.T) {
	db, path := openDB(t)
	at := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	uuid7 := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	ids := map[string]bool{}
	for i := range 5 {
		e, err := db.Append(ctx, agent.Event{Time: at.Add(time.Duration(i) * time.Second), Type: agent.EventAccessGranted, Door: "front", Credential: "tag:…234"})
		require.NoError(t, err)
		assert.EqualValues(t, i+1, e.Seq)
		assert.Regexp(t, uuid7, e.ID)
		assert.False(t, ids[e.ID])
		ids[e.ID] = true
	}
	select {
	case <-db.Appended():
	default:
		t.Fatal("appends did not signal")
	}
	st, err := db.OutboxStats(ctx)
	require.NoError(t, err)
	assert.Equal(t, sqlite.OutboxStats{Depth: 5, Oldest: at, LastSeq: 5}, st)

	pending, err := db.Pending(ctx, 2, 2)
	require.NoError(t, err)
	require.Len(t, pending, 2)
	assert.EqualValues(t, 3, pending[0].Seq)
	assert.EqualValues(t, 4, pending[1].Seq)
	assert.Equal(t, "tag:…234", pending[0].Credential)
	assert.Equal(t, at.Add(2*time.Second), pending[0].Time.UTC())

	require.NoError(t, db.AckThrough(ctx, 2))
	pending, err = db.Pending(ctx, 0, 10)
	require.NoError(t, err)
	require.Len(t, pending, 3, "delivered events leave the outbox")
	assert.EqualValues(t, 3, pending[0].Seq)
	st, err = db.OutboxStats(ctx)
	require.NoError(t, err)
	assert.Equal(t, sqlite.OutboxStats{Depth: 3, Oldest: at.Add(2 * time.Second), LastSeq: 5}, st)
	require.NoError(t, db.AckThrough(ctx, 5))
	require.NoError(t, db.AckThrough(ctx, 1), "a stale acknowledgement does not move the watermark back")
	st, err = db.OutboxStats(ctx)
	require.NoError(t, err)
	assert.Equal(t, sqlite.OutboxStats{LastSeq: 5}, st)

	// The sequence survives an empty outbox and a restart.
	require.NoError(t, db.Close())
	db2, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	require.NoError(t, err)
	defer db2.Close()
	e, err := db2.Append(ctx, agent.Event{Type: agent.EventAccessDenied, Door: "front"})
	require.NoError(t, err)
	assert.EqualValues(t, 6, e.Seq)
	assert.False(t, e.Time.IsZero(), "a missing time is stamped with the injected clock")
	require.NoError(t, db2.Record(ctx, agent.Event{ID: "given-id", Type: agent.EventAccessDenied}))
	pending, err = db2.Pending(ctx, 0, 10)
	require.NoError(t, err)
	require.Len(t, pending, 2)
	assert.Equal(t, "given-id", pending[1].ID)
	assert.EqualValues(t, 7, pending[1].Seq)
	assert.Error(t, db2.Record(ctx, agent.Event{ID: "given-id"}), "ids are unique")
}

func TestOutboxAckMany(t *testing.T) {
	db, _ := openDB(t)
	var seqs []int64
	for range 1200 {
		e, err := db.Append(ctx, agent.Event{Type: agent.EventAccessGranted})
		require.NoError(t, err)
		seqs = append(seqs, e.Seq)
	}
	require.NoError(t, db.AckThrough(ctx, seqs[1099]))
	st, err := db.OutboxStats(ctx)
	require.NoError(t, err)
	assert.Equal(t, 100, st.Depth)
}

func TestAcknowledgedEventsStayAsBoundedHistory(t *testing.T) {
	db, _ := openDB(t)
	total := sqlite.KeepSent + 1500
	seqs := make([]int64, 0, total)
	for range total {
		e, err := db.Append(ctx, agent.Event{Type: agent.EventAccessGranted, Door: "front"})
		require.NoError(t, err)
		seqs = append(seqs, e.Seq)
	}
	pending, err := db.Pending(ctx, 0, 10)
	require.NoError(t, err)
	require.Len(t, pending, 10)

	require.NoError(t, db.AckThrough(ctx, seqs[99]))
	pending, err = db.Pending(ctx, 0, 1)
	require.NoError(t, err)
	assert.EqualValues(t, 101, pending[0].Seq, "acknowledged events leave the outbox")
	history, err := db.Events(ctx, 0, 1)
	require.NoError(t, err)
	assert.EqualValues(t, 1, history[0].Seq, "…and stay in the history")

	for i := 100; i < total; i += 500 {
		require.NoError(t, db.AckThrough(ctx, seqs[min(i+500, total)-1]))
	}
	st, err := db.OutboxStats(ctx)
	require.NoError(t, err)
	assert.Zero(t, st.Depth)
	history, err = db.Events(ctx, 0, total)
	require.NoError(t, err)
	n := len(history)
	assert.Equal(t, sqlite.KeepSent, n, "the oldest acknowledged events were pruned")
	assert.EqualValues(t, total, history[n-1].Seq, "the newest are kept")
}

// TestOutboxMigratesDeliveryMarks: a database from before the watermark
// (schema 6, a sent_at mark per row) keeps exactly its undelivered events.
func TestOutboxMigratesDeliveryMarks(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sent    int // the first this many of 5 events were marked sent
		pending []int64
	}{
		{"some delivered", 3, []int64{4, 5}},
		{"none delivered", 0, []int64{1, 2, 3, 4, 5}},
		{"all delivered", 5, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "old.db")
			old, err := sqlite.OpenAt(ctx, path, 6)
			require.NoError(t, err)
			require.NoError(t, sqlite.CloseWriter(old))
			raw, err := sql.Open("sqlite3", "file:"+path)
			require.NoError(t, err)
			for i := 1; i <= 5; i++ {
				var sentAt any
				if i <= tc.sent {
					sentAt = 1
				}
				_, err := raw.Exec("INSERT INTO outbox(seq, id, at, type, door, body, sent_at) VALUES(?, ?, 0, 'access_granted', 'front', ?, ?)",
					i, fmt.Sprintf("ev-%d", i), fmt.Sprintf(`{"id":"ev-%d","type":"access_granted","door":"front"}`, i), sentAt)
				require.NoError(t, err)
			}
			require.NoError(t, raw.Close())

			db, err := sqlite.Open(ctx, path, sqlite.Options{})
			require.NoError(t, err)
			defer db.Close()
			pending, err := db.Pending(ctx, 0, 10)
			require.NoError(t, err)
			var seqs []int64
			for _, e := range pending {
				seqs = append(seqs, e.Seq)
			}
			assert.Equal(t, tc.pending, seqs)
			history, err := db.Events(ctx, 0, 10)
			require.NoError(t, err)
			assert.Len(t, history, 5, "delivered events stay in the history")
			e, err := db.Append(ctx, agent.Event{Type: agent.EventAccessDenied})
			require.NoError(t, err)
			assert.EqualValues(t, 6, e.Seq)
		})
	}
}

// TestWriterSyncsEveryCommit: the writer syncs every commit (FULL = 2), so
// an appended event is on disk when Append returns, not only in the page
// cache — a gateway loses power without warning.
func TestWriterSyncsEveryCommit(t *testing.T) {
	db, _ := openDB(t)
	v, err := sqlite.WriterPragma(ctx, db, "synchronous")
	require.NoError(t, err)
	assert.Equal(t, "2", v)
	mode, err := sqlite.WriterPragma(ctx, db, "journal_mode")
	require.NoError(t, err)
	assert.Equal(t, "wal", mode)
}
