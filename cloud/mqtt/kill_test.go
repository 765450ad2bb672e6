package mqtt_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/cloud/mqtt"
	"github.com/portier-io/portier/sqlite"
)

// TestKilledMidDrain: a gateway process draining a 50,000-event outbox is
// killed with SIGKILL; a new one on the same database delivers the rest.
// Nothing is lost; duplicates are allowed and collapse by event_id.
func TestKilledMidDrain(t *testing.T) {
	brokers(t, func(t *testing.T, newBroker func(*testing.T) testBroker) {
		b := newBroker(t)
		ctx := context.Background()
		path := filepath.Join(t.TempDir(), "portier.db")
		const n = 50_000
		fillOutbox(t, path, n)
		db, err := sqlite.Open(ctx, path, sqlite.Options{})
		require.NoError(t, err)
		pending, err := db.Pending(ctx, 0, n)
		require.NoError(t, err)
		ids := map[string]bool{}
		for _, e := range pending {
			ids[e.ID] = true
		}
		require.Len(t, ids, n)
		require.NoError(t, db.Close())

		tp := mqtt.Topics{Prefix: "portier", Site: "site1", Gateway: "gw1"}
		d := newDashboard(t, b.URL(), nil, tp.Event("#"))
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), helperEnv+"=drain", "PORTIER_DB="+path, "PORTIER_BROKER="+b.URL())
		cmd.Stderr = os.Stderr
		require.NoError(t, cmd.Start())
		// Kill it once the outbox shows acknowledged events leaving it.
		watch, err := sqlite.Open(ctx, path, sqlite.Options{ReadOnly: true})
		require.NoError(t, err)
		const progress = 2_000
		depth := func(db *sqlite.DB) func() int64 {
			return func() int64 {
				st, err := db.OutboxStats(ctx)
				if err != nil {
					return -1
				}
				return int64(st.Depth)
			}
		}
		waitProgress(t, "the drain to be under way", func() bool { return depth(watch)() <= n-progress }, depth(watch))
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		err = cmd.Wait()
		require.Error(t, err, "the helper was killed")
		require.NoError(t, watch.Close())

		db, err = sqlite.Open(ctx, path, sqlite.Options{})
		require.NoError(t, err)
		defer db.Close()
		st, err := db.OutboxStats(ctx)
		require.NoError(t, err)
		require.Greater(t, st.Depth, 0, "killed before the outbox was empty")
		assert.LessOrEqual(t, st.Depth, n-progress)
		t.Logf("killed with %d events left in the outbox; %d messages had arrived", st.Depth, len(d.all()))

		link, err := mqtt.New(sqliteConfig(db, b.URL()))
		require.NoError(t, err)
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- link.Run(rctx) }()
		defer func() { cancel(); <-done }()

		// The link may add its own events (an outbox_high_water alarm at
		// this depth): count the ones written before the kill.
		seen := map[string]bool{}
		found, read := 0, 0
		msgs := d.waitUntil(t, "every event", func(m []message) bool {
			for _, e := range eventsIn(t, m[read:], tp) {
				if ids[e.EventID] && !seen[e.EventID] {
					found++
				}
				seen[e.EventID] = true
			}
			read = len(m)
			return found == n
		}, nil)
		for id := range ids {
			require.True(t, seen[id], "event %s was lost", id)
		}
		t.Logf("%d messages for %d events (%d duplicates)", len(msgs), len(seen), len(msgs)-len(seen))
		waitProgress(t, "the outbox to empty", func() bool { return depth(db)() == 0 }, depth(db))
	})
}
