package main_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
)

// TestRunHoldsEventsWhileTheOutboxIsLocked: another process holds the
// database's write lock for longer than the busy timeout, so the outbox
// refuses the agent's events. The relay pulse still ends on time, the events
// wait in memory (portier status says so), and once the lock is gone they
// reach the outbox in order, between the two alarms.
func TestRunHoldsEventsWhileTheOutboxIsLocked(t *testing.T) {
	g := newGateway(t, "300ms")
	g.start()
	g.follow()
	g.waitEvent(agent.EventControllerStarted)

	ctx := context.Background()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(g.dir, "portier.db"))
	require.NoError(t, err)
	defer db.Close()
	lock, err := db.Conn(ctx)
	require.NoError(t, err)
	defer lock.Close()
	_, err = lock.ExecContext(ctx, "BEGIN IMMEDIATE") // the write lock, held
	require.NoError(t, err)

	g.sim("tap front 04:A1:B2:C3:D4:E5:F6")
	var st struct {
		EventsHeld int `json:"events_held"`
	}
	eventually(t, "the agent to hold events (after the 5 s busy timeout)", func() bool {
		out, _, code := runPortier(t, g.env, "status", "--config", g.cfg, "--json")
		return code == 0 && json.Unmarshal([]byte(out), &st) == nil && st.EventsHeld > 0
	})
	assert.False(t, g.latch()["front"]["relay"], "the 300 ms pulse ended while the outbox was locked")
	out, _, code := runPortier(t, g.env, "status", "--config", g.cfg)
	require.Equal(t, 0, code)
	assert.Contains(t, out, "THE OUTBOX REFUSES EVENTS")

	_, err = lock.ExecContext(ctx, "ROLLBACK")
	require.NoError(t, err)
	failed := g.waitEvent(agent.EventStoreFailed)
	assert.Contains(t, failed.Detail, "locked")
	granted := g.waitEvent(agent.EventAccessGranted)
	assert.Greater(t, granted.Seq, failed.Seq)
	g.waitEvent(agent.EventRelayOff)
	g.waitEvent(agent.EventStoreRecovered)
	assert.Equal(t, 0, g.signal(syscall.SIGTERM))
}

// eventually polls cond until it holds, for up to 30 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 30*time.Second, 100*time.Millisecond, what)
}
