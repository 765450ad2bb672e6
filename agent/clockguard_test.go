package agent_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
)

type memLastGood struct {
	t     time.Time
	saves int
}

func (m *memLastGood) LastGoodTime(context.Context) (time.Time, error) { return m.t, nil }
func (m *memLastGood) SetLastGoodTime(_ context.Context, t time.Time) error {
	m.t = t
	m.saves++
	return nil
}

type memEvents struct {
	mu  sync.Mutex
	evs []agent.Event
}

func (m *memEvents) Record(_ context.Context, e agent.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.evs = append(m.evs, e)
	return nil
}

func (m *memEvents) types() []agent.EventType {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []agent.EventType
	for _, e := range m.evs {
		out = append(out, e.Type)
	}
	return out
}

func TestClockGuard(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	synced, syncErr := true, error(nil)
	store := &memLastGood{}
	events := &memEvents{}
	g := agent.NewClockGuard(agent.ClockGuardConfig{
		Now:          func() time.Time { return now },
		Synchronised: func() (bool, error) { return synced, syncErr },
		Store:        store, Events: events,
	})

	require.NoError(t, g.Check(ctx))
	assert.False(t, g.Untrusted())
	assert.Equal(t, now, store.t, "a trusted clock is saved as the last good time")

	now = now.Add(time.Minute)
	require.NoError(t, g.Check(ctx))
	assert.Equal(t, 1, store.saves, "saves are rate-limited")
	now = now.Add(10 * time.Minute)
	require.NoError(t, g.Check(ctx))
	assert.Equal(t, 2, store.saves)

	synced = false
	require.NoError(t, g.Check(ctx))
	assert.True(t, g.Untrusted())
	assert.Contains(t, g.Reason(), "not synchronised")
	saves := store.saves
	now = now.Add(time.Hour)
	require.NoError(t, g.Check(ctx))
	assert.Equal(t, saves, store.saves, "an untrusted clock is never saved")

	synced = true
	require.NoError(t, g.Check(ctx))
	assert.False(t, g.Untrusted())
	assert.Empty(t, g.Reason())

	syncErr = errors.New("adjtimex: operation not permitted")
	require.NoError(t, g.Check(ctx))
	assert.True(t, g.Untrusted())
	syncErr = nil
	require.NoError(t, g.Check(ctx))

	assert.Equal(t, []agent.EventType{agent.EventClockUnsynced, agent.EventClockSynced, agent.EventClockUnsynced, agent.EventClockSynced}, events.types())
}

func TestClockGuardBackwards(t *testing.T) {
	ctx := context.Background()
	lastGood := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	store := &memLastGood{t: lastGood}
	events := &memEvents{}
	now := time.Date(1970, 1, 1, 0, 0, 10, 0, time.UTC) // a Pi booting without RTC or NTP
	g := agent.NewClockGuard(agent.ClockGuardConfig{Now: func() time.Time { return now }, Store: store, Events: events})
	require.NoError(t, g.Check(ctx))
	assert.True(t, g.Untrusted())
	assert.Contains(t, g.Reason(), "behind the last known good time 2026-11-24T09:00:00Z")
	assert.Equal(t, lastGood, store.t, "the last good time is kept")

	now = lastGood.Add(-time.Minute) // within tolerance: a small step back is fine
	require.NoError(t, g.Check(ctx))
	assert.False(t, g.Untrusted())
	assert.Equal(t, []agent.EventType{agent.EventClockUnsynced, agent.EventClockSynced}, events.types())
}
