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

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cloud/mqtt"
	"github.com/portier-io/portier/sqlite"
)

// TestKilledMidDrain: a gateway process draining a 20,000-event outbox is
// killed with SIGKILL; a new one on the same database delivers the rest.
// Nothing is lost; duplicates are allowed and collapse by event_id.
func TestKilledMidDrain(t *testing.T) {
	brokers(t, func(t *testing.T, newBroker func(*testing.T) testBroker) {
		b := newBroker(t)
		ctx := context.Background()
		path := filepath.Join(t.TempDir(), "portier.db")
		db, err := sqlite.Open(ctx, path, sqlite.Options{})
		require.NoError(t, err)
		const n = 20_000
		ids := map[string]bool{}
		for range n {
			e, err := db.Append(ctx, agent.Event{Type: agent.EventAccessGranted, Door: "front", Credential: "card:…1234"})
			require.NoError(t, err)
			ids[e.ID] = true
		}
		require.NoError(t, db.Close())

		tp := mqtt.Topics{Prefix: "portier", Site: "site1", Gateway: "gw1"}
		d := newDashboard(t, b.URL(), nil, tp.Event("#"))
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), helperEnv+"=drain", "PORTIER_DB="+path, "PORTIER_BROKER="+b.URL())
		cmd.Stderr = os.Stderr
		require.NoError(t, cmd.Start())
		d.waitUntil(t, "the drain to be under way", func(m []message) bool { return len(m) >= 3000 }, nil)
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		err = cmd.Wait()
		require.Error(t, err, "the helper was killed")
		atKill := len(d.all())

		db, err = sqlite.Open(ctx, path, sqlite.Options{})
		require.NoError(t, err)
		defer db.Close()
		st, err := db.OutboxStats(ctx)
		require.NoError(t, err)
		assert.Greater(t, st.Depth, 0, "killed before the outbox was empty")
		assert.LessOrEqual(t, st.Depth, n-3000+mqtt.DefaultInFlight+256, "acknowledged events left the outbox")
		t.Logf("killed after %d events arrived; %d left in the outbox", atKill, st.Depth)

		link, err := mqtt.New(sqliteConfig(db, b.URL()))
		require.NoError(t, err)
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- link.Run(rctx) }()
		defer func() { cancel(); <-done }()

		seen := map[string]bool{}
		read := 0
		msgs := d.waitUntil(t, "every event", func(m []message) bool {
			for _, e := range eventsIn(t, m[read:], tp) {
				seen[e.EventID] = true
			}
			read = len(m)
			return len(seen) == n
		}, nil)
		for id := range ids {
			require.True(t, seen[id], "event %s was lost", id)
		}
		t.Logf("%d messages for %d events (%d duplicates)", len(msgs), n, len(msgs)-n)
		eventually(t, "the outbox to empty", func() bool {
			st, err := db.OutboxStats(ctx)
			return err == nil && st.Depth == 0
		})
	})
}
