package sqlite_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/sqlite"
)

func TestCommandLog(t *testing.T) {
	db, _ := openDB(t)
	exp := time.Date(2026, 11, 21, 12, 5, 0, 0, time.UTC)

	fresh, err := db.ClaimCommand(ctx, "cmd-1", "unlock", exp)
	require.NoError(t, err)
	assert.True(t, fresh, "a new id is claimed")
	fresh, err = db.ClaimCommand(ctx, "cmd-1", "unlock", exp)
	require.NoError(t, err)
	assert.False(t, fresh, "the same id again is a duplicate")

	rec, ok, err := db.Command(ctx, "cmd-1")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, sqlite.CommandRecord{ID: "cmd-1", Name: "unlock", ReceivedAt: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC),
		ExpiresAt: exp, Status: sqlite.CommandReceived}, rec)

	require.NoError(t, db.FinishCommand(ctx, "cmd-1", "error", "door_lockdown"))
	rec, _, err = db.Command(ctx, "cmd-1")
	require.NoError(t, err)
	assert.Equal(t, "error", rec.Status)
	assert.Equal(t, "door_lockdown", rec.ErrorType)
	assert.Error(t, db.FinishCommand(ctx, "never-claimed", "success", ""))

	_, err = db.ClaimCommand(ctx, "cmd-2", "sync", exp.Add(time.Hour))
	require.NoError(t, err)
	n, err := db.PruneCommands(ctx, exp) // cmd-1 expires exactly then: kept
	require.NoError(t, err)
	assert.Zero(t, n)
	n, err = db.PruneCommands(ctx, exp.Add(time.Minute))
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	_, ok, err = db.Command(ctx, "cmd-1")
	require.NoError(t, err)
	assert.False(t, ok, "expired ids are pruned")
	_, ok, err = db.Command(ctx, "cmd-2")
	require.NoError(t, err)
	assert.True(t, ok)
}
