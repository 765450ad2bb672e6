package agent_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/agent/agenttest"
)

// flakyStore is an outbox that refuses events while broken.
type flakyStore struct {
	mu     sync.Mutex
	broken bool
	calls  int
	events []agent.Event
}

var errDiskFull = errors.New("database or disk is full")

func (f *flakyStore) Record(_ context.Context, e agent.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.broken {
		return errDiskFull
	}
	f.events = append(f.events, e)
	return nil
}

func (f *flakyStore) set(broken bool) {
	f.mu.Lock()
	f.broken = broken
	f.mu.Unlock()
}

func (f *flakyStore) written() []agent.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]agent.Event(nil), f.events...)
}

func types(evs []agent.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = string(e.Type)
		if e.Detail != "" && e.Type != agent.EventStoreFailed && e.Type != agent.EventStoreRecovered {
			out[i] += ":" + e.Detail
		}
	}
	return out
}

type spoolRig struct {
	store *flakyStore
	clock *agenttest.Clock
	spool *agent.EventSpool
	stop  func()
}

func newSpoolRig(t *testing.T, limit int) *spoolRig {
	r := &spoolRig{store: &flakyStore{}, clock: agenttest.NewClock(t0)}
	r.spool = agent.NewEventSpool(agent.EventSpoolConfig{Store: r.store, Clock: r.clock, Limit: limit})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.spool.Run(ctx) }()
	r.stop = func() { cancel(); require.NoError(t, <-done) }
	t.Cleanup(func() {
		if ctx.Err() == nil {
			r.stop()
		}
	})
	return r
}

func (r *spoolRig) record(t *testing.T, detail string) {
	t.Helper()
	require.NoError(t, r.spool.Record(context.Background(), agent.Event{Type: agent.EventAccessGranted, Detail: detail}))
}

// waitRetry waits until Run has armed its retry timer d after now.
func (r *spoolRig) waitRetry(t *testing.T, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, r.clock.WaitArmed(ctx, r.clock.Now().Add(d)), "a retry in %s", d)
}

// waitWritten waits until the store holds n events.
func (r *spoolRig) waitWritten(t *testing.T, n int) []agent.Event {
	t.Helper()
	require.Eventually(t, func() bool { return len(r.store.written()) >= n }, 30*time.Second, time.Millisecond)
	return r.store.written()
}

func TestEventSpoolPassesThrough(t *testing.T) {
	r := newSpoolRig(t, 0)
	r.record(t, "a")
	r.record(t, "b")
	assert.Equal(t, []string{"access_granted:a", "access_granted:b"}, types(r.store.written()))
	held, dropped := r.spool.Held()
	assert.Zero(t, held)
	assert.Zero(t, dropped)
}

func TestEventSpoolHoldsEventsThroughAnOutage(t *testing.T) {
	r := newSpoolRig(t, 0)
	r.record(t, "before")
	r.store.set(true)
	r.record(t, "first refused")
	r.record(t, "second")
	held, _ := r.spool.Held()
	assert.Equal(t, 3, held, "the alarm and both events")

	// Retries back off: 1 s, 2 s, 4 s while the outbox keeps failing.
	for _, d := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		r.waitRetry(t, d)
		r.clock.Advance(d)
	}
	r.waitRetry(t, 8*time.Second)

	// The outbox works again, but held events are waiting: a new event
	// queues behind them instead of overtaking them.
	r.store.set(false)
	r.record(t, "third")
	assert.Len(t, r.store.written(), 1)
	r.clock.Advance(8 * time.Second)
	got := r.waitWritten(t, 6)
	assert.Equal(t, []string{"access_granted:before", "event_store_failed", "access_granted:first refused",
		"access_granted:second", "access_granted:third", "event_store_recovered"}, types(got))
	assert.Equal(t, errDiskFull.Error(), got[1].Detail)
	assert.Equal(t, t0, got[1].Time, "the alarm carries the time of the failure")
	assert.Contains(t, got[5].Detail, "refused events for 15s; every held event was written")

	// Back to normal: straight through again.
	r.record(t, "after")
	assert.Len(t, r.store.written(), 7)
	held, dropped := r.spool.Held()
	assert.Zero(t, held)
	assert.Zero(t, dropped)
}

func TestEventSpoolLimit(t *testing.T) {
	r := newSpoolRig(t, 3)
	r.store.set(true)
	r.record(t, "1") // held after the alarm
	r.record(t, "2")
	err := r.spool.Record(context.Background(), agent.Event{Type: agent.EventAccessDenied})
	require.ErrorIs(t, err, agent.ErrSpoolFull)
	assert.Contains(t, err.Error(), errDiskFull.Error())
	held, dropped := r.spool.Held()
	assert.Equal(t, 3, held)
	assert.Equal(t, 1, dropped)

	r.waitRetry(t, time.Second)
	r.store.set(false)
	r.clock.Advance(time.Second)
	got := r.waitWritten(t, 4)
	assert.Equal(t, []string{"event_store_failed", "access_granted:1", "access_granted:2", "event_store_recovered"}, types(got))
	assert.Contains(t, got[3].Detail, "1 events were lost at the spool limit of 3")
}

func TestEventSpoolFlushAtShutdown(t *testing.T) {
	r := newSpoolRig(t, 0)
	r.store.set(true)
	r.record(t, "held")
	r.waitRetry(t, time.Second)
	r.stop()

	err := r.spool.Flush(context.Background())
	require.Error(t, err, "the outbox still fails")
	assert.Contains(t, err.Error(), "2 held events could not be written")

	r.store.set(false)
	require.NoError(t, r.spool.Flush(context.Background()))
	assert.Equal(t, []string{"event_store_failed", "access_granted:held", "event_store_recovered"}, types(r.store.written()))
}

// TestEventSpoolOutageSeenFirstByARetry: the first refusal came with a
// cancelled context (no alarm); when Run's retry is refused too, that is an
// outage: the alarm is queued and Run backs off instead of spinning.
func TestEventSpoolOutageSeenFirstByARetry(t *testing.T) {
	r := newSpoolRig(t, 0)
	r.store.set(true)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, r.spool.Record(ctx, agent.Event{Type: agent.EventRelayOff}))
	r.waitRetry(t, time.Second)
	held, _ := r.spool.Held()
	assert.Equal(t, 2, held, "the event and the alarm")
	r.store.set(false)
	r.clock.Advance(time.Second)
	got := r.waitWritten(t, 3)
	assert.Equal(t, []string{"relay_off", "event_store_failed", "event_store_recovered"}, types(got))
}

func TestEventSpoolCallerGivingUpIsNoOutage(t *testing.T) {
	r := newSpoolRig(t, 0)
	r.store.set(true)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, r.spool.Record(ctx, agent.Event{Type: agent.EventRelayOff}))
	r.store.set(false)
	r.record(t, "next")
	got := r.waitWritten(t, 2)
	assert.Equal(t, []string{"relay_off", "access_granted:next"}, types(got), "held, written in order, no alarm")
}

// batchStore is a flakyStore that also writes batches, all or none.
type batchStore struct {
	*flakyStore
	batches []int
}

func (b *batchStore) RecordAll(_ context.Context, evs []agent.Event) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.broken {
		return errDiskFull
	}
	b.batches = append(b.batches, len(evs))
	b.events = append(b.events, evs...)
	return nil
}

// TestEventSpoolWritesBackInBatches: after an outage, held events go back
// to a batch-capable outbox 256 per transaction (one storage sync each),
// in order.
func TestEventSpoolWritesBackInBatches(t *testing.T) {
	store := &batchStore{flakyStore: &flakyStore{broken: true}}
	clock := agenttest.NewClock(t0)
	spool := agent.NewEventSpool(agent.EventSpoolConfig{Store: store, Clock: clock})
	const n = 600
	for i := range n {
		require.NoError(t, spool.Record(context.Background(), agent.Event{Type: agent.EventAccessGranted, Detail: strconv.Itoa(i)}))
	}
	store.set(false)
	require.NoError(t, spool.Flush(context.Background()))

	got := store.written()
	require.Len(t, got, n+2)
	assert.Equal(t, agent.EventStoreFailed, got[0].Type)
	for i := range n {
		assert.Equal(t, strconv.Itoa(i), got[i+1].Detail)
	}
	assert.Equal(t, agent.EventStoreRecovered, got[n+1].Type)
	assert.Equal(t, []int{256, 256, 89}, store.batches, "the alarm and 600 events in three transactions; the recovery alarm on its own")
}
