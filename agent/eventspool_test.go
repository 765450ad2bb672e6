package agent_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/agent/agenttest"
)

// flakyStore is an outbox that refuses events while broken, and writes
// batches all or none.
type flakyStore struct {
	mu      sync.Mutex
	broken  bool
	events  []agent.Event
	batches []int
	// gate, when set, holds every write until a value arrives on it;
	// entered is signalled when a write is held there.
	gate    chan struct{}
	entered chan struct{}
}

var errDiskFull = errors.New("database or disk is full")

func (f *flakyStore) Record(ctx context.Context, e agent.Event) error {
	return f.RecordAll(ctx, []agent.Event{e})
}

func (f *flakyStore) RecordAll(_ context.Context, evs []agent.Event) error {
	f.mu.Lock()
	gate, entered := f.gate, f.entered
	f.mu.Unlock()
	if gate != nil {
		entered <- struct{}{}
		<-gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.broken {
		return errDiskFull
	}
	f.batches = append(f.batches, len(evs))
	f.events = append(f.events, evs...)
	return nil
}

func (f *flakyStore) set(broken bool) {
	f.mu.Lock()
	f.broken = broken
	f.mu.Unlock()
}

// hold makes every following write wait for release; it returns the
// channel that says a write is waiting.
func (f *flakyStore) hold() (entered <-chan struct{}, release func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	gate, in := make(chan struct{}), make(chan struct{}, 1)
	f.gate, f.entered = gate, in
	return in, func() {
		f.mu.Lock()
		f.gate = nil
		f.mu.Unlock()
		close(gate)
	}
}

func (f *flakyStore) written() []agent.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]agent.Event(nil), f.events...)
}

func (f *flakyStore) batchSizes() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int(nil), f.batches...)
}

// singleStore writes one event at a time (no batches).
type singleStore struct{ f *flakyStore }

func (s singleStore) Record(ctx context.Context, e agent.Event) error { return s.f.Record(ctx, e) }

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

func (r *spoolRig) sync(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	require.NoError(t, r.spool.Sync(ctx))
}

// waitRetry waits until Run has armed its retry timer d after now.
func (r *spoolRig) waitRetry(t *testing.T, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	require.NoError(t, r.clock.WaitArmed(ctx, r.clock.Now().Add(d)), "a retry in %s", d)
}

// TestEventSpoolGroupCommit: Record never waits for the outbox; what
// arrives while a batch is being written goes into the next transaction,
// all of it, in order; Sync returns once everything recorded before it is
// written.
func TestEventSpoolGroupCommit(t *testing.T) {
	r := newSpoolRig(t, 0)
	entered, release := r.store.hold()
	r.record(t, "0")
	<-entered // the first batch is being written, and held there
	const n = 500
	for i := 1; i <= n; i++ {
		r.record(t, strconv.Itoa(i)) // returns although the outbox is busy
	}
	synced := make(chan error, 1)
	go func() { synced <- r.spool.Sync(context.Background()) }()
	select {
	case err := <-synced:
		t.Fatalf("Sync returned (%v) before the events were written", err)
	default:
	}
	assert.Empty(t, r.store.written(), "nothing counts as written before its batch")
	release()
	require.NoError(t, <-synced)
	got := r.store.written()
	require.Len(t, got, n+1)
	for i, e := range got {
		assert.Equal(t, strconv.Itoa(i), e.Detail)
	}
	assert.Equal(t, []int{1, n}, r.store.batchSizes(), "one transaction for the first event, one for everything that came meanwhile")
	assert.Equal(t, 2, r.spool.Batches())
	held, dropped := r.spool.Held()
	assert.Zero(t, held)
	assert.Zero(t, dropped)
}

// TestEventSpoolConcurrentRecorders: events from many goroutines are all
// written once, each goroutine's in its order.
func TestEventSpoolConcurrentRecorders(t *testing.T) {
	r := newSpoolRig(t, 0)
	const writers, each = 8, 300
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				assert.NoError(t, r.spool.Record(context.Background(), agent.Event{Door: strconv.Itoa(w), Detail: strconv.Itoa(i)}))
			}
		}()
	}
	wg.Wait()
	r.sync(t)
	got := r.store.written()
	require.Len(t, got, writers*each)
	next := map[string]int{}
	for _, e := range got {
		assert.Equal(t, strconv.Itoa(next[e.Door]), e.Detail, "writer %s out of order", e.Door)
		next[e.Door]++
	}
}

func TestEventSpoolHoldsEventsThroughAnOutage(t *testing.T) {
	r := newSpoolRig(t, 0)
	r.record(t, "before")
	r.sync(t)
	r.store.set(true)
	r.record(t, "first refused")
	r.waitRetry(t, time.Second)
	r.record(t, "second")
	held, _ := r.spool.Held()
	assert.Equal(t, 3, held, "the alarm and both events")

	// Retries back off: 1 s, 2 s, 4 s while the outbox keeps failing.
	r.clock.Advance(time.Second)
	for _, d := range []time.Duration{2 * time.Second, 4 * time.Second} {
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
	r.sync(t)
	require.Eventually(t, func() bool { return len(r.store.written()) == 6 }, time.Minute, time.Millisecond, "the recovery alarm")
	got := r.store.written()
	assert.Equal(t, []string{"access_granted:before", "event_store_failed", "access_granted:first refused",
		"access_granted:second", "access_granted:third", "event_store_recovered"}, types(got))
	assert.Equal(t, errDiskFull.Error(), got[1].Detail)
	assert.Equal(t, t0, got[1].Time, "the alarm carries the time of the failure")
	assert.Contains(t, got[5].Detail, "refused events for 15s; every held event was written")

	// Back to normal.
	r.record(t, "after")
	r.sync(t)
	assert.Len(t, r.store.written(), 7)
	held, dropped := r.spool.Held()
	assert.Zero(t, held)
	assert.Zero(t, dropped)
}

func TestEventSpoolLimit(t *testing.T) {
	t.Run("the outbox fails: the event is lost", func(t *testing.T) {
		r := newSpoolRig(t, 3)
		r.store.set(true)
		r.record(t, "1")
		r.waitRetry(t, time.Second) // the alarm is queued ahead of it
		r.record(t, "2")
		err := r.spool.Record(context.Background(), agent.Event{Type: agent.EventAccessDenied})
		require.ErrorIs(t, err, agent.ErrSpoolFull)
		assert.Contains(t, err.Error(), errDiskFull.Error())
		held, dropped := r.spool.Held()
		assert.Equal(t, 3, held)
		assert.Equal(t, 1, dropped)

		r.store.set(false)
		r.clock.Advance(time.Second)
		r.sync(t)
		require.Eventually(t, func() bool { return len(r.store.written()) == 4 }, time.Minute, time.Millisecond)
		got := r.store.written()
		assert.Equal(t, []string{"event_store_failed", "access_granted:1", "access_granted:2", "event_store_recovered"}, types(got))
		assert.Contains(t, got[3].Detail, "1 events were lost at the spool limit of 3")
	})
	t.Run("the outbox is slow: Record waits for room", func(t *testing.T) {
		r := newSpoolRig(t, 2)
		entered, release := r.store.hold()
		r.record(t, "1")
		<-entered
		r.record(t, "2") // the queue holds 1 (being written) and 2: full
		gaveUp, cancel := context.WithCancel(context.Background())
		cancel()
		err := r.spool.Record(gaveUp, agent.Event{Detail: "impatient"})
		require.ErrorIs(t, err, agent.ErrSpoolFull, "a caller that gives up loses its event")
		recorded := make(chan error, 1)
		go func() {
			recorded <- r.spool.Record(context.Background(), agent.Event{Type: agent.EventAccessGranted, Detail: "3"})
		}()
		release()
		require.NoError(t, <-recorded)
		r.sync(t)
		assert.Equal(t, []string{"access_granted:1", "access_granted:2", "access_granted:3"}, types(r.store.written()))
		_, dropped := r.spool.Held()
		assert.Equal(t, 1, dropped)
	})
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

	// Without Run, Flush writes what was recorded; a Flush whose context
	// ended writes nothing and says so.
	r.record(t, "late")
	done, cancel := context.WithCancel(context.Background())
	cancel()
	require.Error(t, r.spool.Flush(done))
	require.NoError(t, r.spool.Flush(context.Background()))
	assert.Len(t, r.store.written(), 4)
}

// TestEventSpoolCallerGivingUpIsNoOutage: Record does not write, so a
// caller's cancelled context changes nothing: the event is queued and
// written, no alarm.
func TestEventSpoolCallerGivingUpIsNoOutage(t *testing.T) {
	r := newSpoolRig(t, 0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, r.spool.Record(ctx, agent.Event{Type: agent.EventRelayOff}))
	r.record(t, "next")
	r.sync(t)
	assert.Equal(t, []string{"relay_off", "access_granted:next"}, types(r.store.written()))
}

// TestEventSpoolWritesBackInBatches: after an outage, held events go back
// to the outbox in as few transactions as MaxBatch allows, in order.
func TestEventSpoolWritesBackInBatches(t *testing.T) {
	store := &flakyStore{broken: true}
	clock := agenttest.NewClock(t0)
	spool := agent.NewEventSpool(agent.EventSpoolConfig{Store: store, Clock: clock, Limit: 2 * agent.MaxBatch})
	n := agent.MaxBatch + 600
	for i := range n {
		require.NoError(t, spool.Record(context.Background(), agent.Event{Type: agent.EventAccessGranted, Detail: strconv.Itoa(i)}))
	}
	require.Error(t, spool.Flush(context.Background()))
	store.set(false)
	require.NoError(t, spool.Flush(context.Background()))

	got := store.written()
	require.Len(t, got, n+2)
	assert.Equal(t, agent.EventStoreFailed, got[0].Type)
	for i := range n {
		assert.Equal(t, strconv.Itoa(i), got[i+1].Detail)
	}
	assert.Equal(t, agent.EventStoreRecovered, got[n+1].Type)
	assert.Equal(t, []int{agent.MaxBatch, 601, 1}, store.batchSizes(), "the alarm and the events in two transactions; the recovery alarm on its own")
}

// TestEventSpoolSingleEventStore: a store without batches gets one event
// per write, so a refusal never leaves half a batch written.
func TestEventSpoolSingleEventStore(t *testing.T) {
	f := &flakyStore{}
	spool := agent.NewEventSpool(agent.EventSpoolConfig{Store: singleStore{f}, Clock: agenttest.NewClock(t0)})
	for i := range 5 {
		require.NoError(t, spool.Record(context.Background(), agent.Event{Detail: fmt.Sprint(i)}))
	}
	require.NoError(t, spool.Flush(context.Background()))
	assert.Equal(t, []int{1, 1, 1, 1, 1}, f.batchSizes())
}

// TestEventSpoolRunStopsWithEventsQueued: when its context ends while events
// are still queued behind a batch being written, Run returns (it spun for
// ever before, and `portier run` never stopped); Flush writes the rest.
func TestEventSpoolRunStopsWithEventsQueued(t *testing.T) {
	store := &flakyStore{}
	spool := agent.NewEventSpool(agent.EventSpoolConfig{Store: store, Clock: agenttest.NewClock(t0)})
	entered, release := store.hold()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- spool.Run(ctx) }()

	require.NoError(t, spool.Record(context.Background(), agent.Event{Type: agent.EventAccessGranted, Detail: "a"}))
	<-entered // Run is writing "a"
	require.NoError(t, spool.Record(context.Background(), agent.Event{Type: agent.EventAccessGranted, Detail: "b"}))
	cancel()
	release()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(time.Minute):
		t.Fatal("Run did not return after its context ended")
	}
	require.NoError(t, spool.Flush(context.Background()))
	assert.Equal(t, []string{"access_granted:a", "access_granted:b"}, types(store.written()))
}
