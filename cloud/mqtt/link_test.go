package mqtt_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/agent/agenttest"
	"github.com/portier-io/portier/cloud/mqtt"
)

// eventually polls cond until it holds, for a single happening: it fails
// when cond stayed false for waitFor. Waits on bulk work use waitProgress.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	waitProgress(t, what, cond, nil)
}

// waitProgress polls done until it holds. It fails only when nothing moved
// for waitFor — when progress (a count of messages, an outbox depth; nil:
// nothing to count) kept its value — never because the whole job took
// longer than on a quiet machine: the suite must pass beside a CPU load of
// twice the cores.
func waitProgress(t testing.TB, what string, done func() bool, progress func() int64) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var last int64
	if progress != nil {
		last = progress()
	}
	moved := time.Now()
	for !done() {
		if progress != nil {
			if p := progress(); p != last {
				last, moved = p, time.Now()
			}
		}
		if time.Since(moved) > waitFor {
			t.Fatalf("waiting for %s: nothing moved for %s (progress %d)", what, waitFor, last)
		}
		<-tick.C
	}
}

func decode[T any](t testing.TB, b []byte) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal(b, &v), string(b))
	return v
}

// eventsIn decodes every event message, in arrival order.
func eventsIn(t testing.TB, msgs []message, tp mqtt.Topics) []mqtt.EventPayload {
	var out []mqtt.EventPayload
	for _, m := range msgs {
		if tp.Pattern(m.Topic) == "{prefix}/{site}/{gateway}/event/{category}" {
			out = append(out, decode[mqtt.EventPayload](t, m.Payload))
		}
	}
	return out
}

func TestStatusStatesTelemetryAndEvents(t *testing.T) {
	brokers(t, func(t *testing.T, newBroker func(*testing.T) testBroker) {
		b := newBroker(t)
		tp := mqtt.Topics{Prefix: "portier", Site: "site1", Gateway: "gw1"}
		d := newDashboard(t, b.URL(), nil, "portier/#")
		r := newRig(t, b.URL(), func(c *mqtt.Config) { c.Telemetry = telemetryOK{} }).start(t)

		msgs := d.waitUntil(t, "status, door states and telemetry", func(m []message) bool {
			return len(on(m, tp.Status())) > 0 && len(on(m, tp.DoorState("front"))) > 0 && len(on(m, tp.DoorState("back"))) > 0 && len(on(m, tp.Telemetry())) > 0
		}, nil)
		st := decode[mqtt.StatusPayload](t, on(msgs, tp.Status())[0].Payload)
		assert.Equal(t, mqtt.StatusPayload{Schema: 1, State: "online", SiteID: "site1", GatewayID: "gw1", Since: st.Since, Version: "1.2.3", Doors: []string{"front", "back"}}, st)
		door := decode[mqtt.DoorStatePayload](t, on(msgs, tp.DoorState("front"))[0].Payload)
		assert.True(t, door.Locked)
		assert.Equal(t, agent.OverrideNone, door.Override)
		tele := decode[mqtt.TelemetryPayload](t, on(msgs, tp.Telemetry())[0].Payload)
		assert.Equal(t, "1.2.3", tele.Version)
		assert.Equal(t, "synchronized", tele.Clock.Status)
		assert.Equal(t, map[string]int{"users": 3}, tele.Cache)
		assert.Equal(t, mqtt.OutboxNormal, tele.Outbox.State)
		assert.Equal(t, &mqtt.StoragePayload{FreeMB: 900, TotalMB: 29_000}, tele.Storage)

		// Every topic the link used is documented.
		for _, m := range msgs {
			assert.NotEmpty(t, tp.Pattern(m.Topic), "undocumented topic %s", m.Topic)
		}

		require.NoError(t, r.outbox.Record(context.Background(), agent.Event{Type: agent.EventAccessGranted, Door: "front", Credential: "tag:…234", User: &agent.UserRef{ID: "u1", Name: "Ada"}}))
		require.NoError(t, r.outbox.Record(context.Background(), agent.Event{Type: agent.EventForcedOpen, Door: "back"}))
		msgs = d.waitUntil(t, "two events", func(m []message) bool { return len(eventsIn(t, m, tp)) == 2 }, nil)
		evs := eventsIn(t, msgs, tp)
		assert.Equal(t, "access", evs[0].Category)
		assert.Equal(t, "ev-1", evs[0].EventID)
		assert.EqualValues(t, 1, evs[0].Seq)
		assert.Equal(t, "tag:…234", evs[0].Credential)
		assert.Equal(t, "alarm", evs[1].Category)
		assert.Len(t, on(msgs, tp.Event("access")), 1)
		for _, m := range on(msgs, tp.Event("access")) {
			assert.False(t, m.Retained)
		}
		waitProgress(t, "the outbox to empty", func() bool { return r.outbox.depth() == 0 }, func() int64 { return int64(r.outbox.depth()) })

		// A door's state follows its events: the unlock shows at once, as
		// one state message for a burst of events.
		r.doors.mu.Lock()
		r.doors.unlocked["front"] = true
		r.doors.mu.Unlock()
		before := len(on(d.all(), tp.DoorState("front")))
		for range 50 {
			require.NoError(t, r.outbox.Record(context.Background(), agent.Event{Type: agent.EventRemoteUnlock, Door: "front"}))
		}
		msgs = d.waitUntil(t, "the unlocked state", func(m []message) bool {
			st := on(m, tp.DoorState("front"))
			return len(st) > before && !decode[mqtt.DoorStatePayload](t, st[len(st)-1].Payload).Locked
		}, nil)
		assert.Less(t, len(on(msgs, tp.DoorState("front")))-before, 10, "a burst is not a state message per event")

		// Retained messages as a late subscriber sees them.
		late := newDashboard(t, b.URL(), nil, tp.Status(), tp.DoorState("+"))
		late.waitUntil(t, "retained status and door states", func(m []message) bool { return len(m) == 3 }, nil)
		for _, m := range late.all() {
			assert.True(t, m.Retained, m.Topic)
		}

		// An orderly stop says offline.
		r.stop()
		d.waitUntil(t, "offline", func(m []message) bool {
			s := on(m, tp.Status())
			return len(s) > 1 && decode[mqtt.StatusPayload](t, s[len(s)-1].Payload).State == "offline"
		}, nil)
		after := newDashboard(t, b.URL(), nil, tp.Status())
		msgs = after.waitUntil(t, "the retained status", func(m []message) bool { return len(m) == 1 }, nil)
		assert.True(t, msgs[0].Retained)
		assert.Equal(t, mqtt.StatusPayload{Schema: 1, State: "offline", SiteID: "site1", GatewayID: "gw1"}, decode[mqtt.StatusPayload](t, msgs[0].Payload))
	})
}

type telemetryOK struct{}

func (telemetryOK) Telemetry(context.Context) mqtt.Telemetry {
	return mqtt.Telemetry{Version: "1.2.3", ClockTrusted: true, ClockStatus: "synchronized", Cache: map[string]int{"users": 3}, LastSyncResult: "ok",
		StorageFreeMB: 900, StorageTotalMB: 29_000}
}

// TestBrokerDownWhileEventsAreProduced: the broker stops, 10,000 events are
// recorded, the broker comes back: every event arrives, in seq order.
func TestBrokerDownWhileEventsAreProduced(t *testing.T) {
	brokers(t, func(t *testing.T, newBroker func(*testing.T) testBroker) {
		b := newBroker(t)
		clock := agenttest.NewClock(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
		tp := mqtt.Topics{Prefix: "portier", Site: "site1", Gateway: "gw1"}
		r := newRig(t, b.URL(), func(c *mqtt.Config) {
			c.Clock = clock
			c.Jitter = func() float64 { return 0 }
			c.BackoffMin, c.BackoffMax = 10*time.Second, 10*time.Second // a 5 s wait with no jitter
			c.StateInterval, c.OutboxCheck, c.TelemetryInterval = time.Hour, time.Hour, time.Hour
		}).start(t)
		d := newDashboard(t, b.URL(), nil, tp.Event("#"))
		for range 10 {
			require.NoError(t, r.outbox.Record(context.Background(), agent.Event{Type: agent.EventAccessGranted, Door: "front"}))
		}
		d.waitUntil(t, "the first 10 events", func(m []message) bool { return len(m) == 10 }, nil)
		waitProgress(t, "the outbox to empty", func() bool { return r.outbox.depth() == 0 }, func() int64 { return int64(r.outbox.depth()) })
		st := r.link.Status()
		assert.True(t, st.Connected)
		assert.Empty(t, st.LastError)

		b.Stop(t)
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		require.NoError(t, clock.WaitArmed(ctx, clock.Now().Add(5*time.Second)), "the link waits to reconnect")
		st = r.link.Status()
		assert.False(t, st.Connected, "operators see the link down")
		assert.NotEmpty(t, st.LastError, "and why")
		assert.Equal(t, clock.Now(), st.Since)
		const n = 10_000
		for i := range n {
			typ := agent.EventAccessGranted
			if i%7 == 0 {
				typ = agent.EventDoorOpened
			}
			require.NoError(t, r.outbox.Record(context.Background(), agent.Event{Type: typ, Door: "front"}))
		}
		b.Start(t)
		d2 := newDashboard(t, b.URL(), nil, tp.Event("#"))
		clock.Advance(5 * time.Second)
		msgs := d2.waitUntil(t, "all 10,000 events", func(m []message) bool { return len(m) >= n }, func() { clock.Advance(5 * time.Second) })

		seen := map[string]bool{}
		var last int64 = 10
		for _, e := range eventsIn(t, msgs, tp) {
			if seen[e.EventID] {
				continue // a duplicate is allowed; consumers drop it by id
			}
			seen[e.EventID] = true
			require.Equal(t, last+1, e.Seq, "events arrive in seq order with no gap")
			last = e.Seq
		}
		assert.Len(t, seen, n)
		waitProgress(t, "the outbox to empty", func() bool { return r.outbox.depth() == 0 }, func() int64 { return int64(r.outbox.depth()) })
		assert.EqualValues(t, 1, r.link.Reconnects())
		st = r.link.Status()
		assert.True(t, st.Connected)
		assert.Empty(t, st.LastError)
		assert.EqualValues(t, 1, st.Reconnects)
		assert.GreaterOrEqual(t, st.Published, int64(n+10))
	})
}

// TestReconnectBackoff: failed connects wait a growing, capped, jittered
// delay on the injected clock.
func TestReconnectBackoff(t *testing.T) {
	clock := agenttest.NewClock(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	url := fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t)) // nothing listens there
	r := newRig(t, url, func(c *mqtt.Config) {
		c.Clock = clock
		c.Jitter = func() float64 { return 0.5 }
		c.BackoffMin, c.BackoffMax = time.Second, 8*time.Second
		c.StateInterval, c.OutboxCheck, c.TelemetryInterval = time.Hour, time.Hour, time.Hour
	}).start(t)
	_ = r
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	// delay = step/2 + 0.5·step/2 with steps 1, 2, 4, 8, 8 s.
	for _, want := range []time.Duration{750 * time.Millisecond, 1500 * time.Millisecond, 3 * time.Second, 6 * time.Second, 6 * time.Second} {
		require.NoError(t, clock.WaitArmed(ctx, clock.Now().Add(want)), "next attempt after %s", want)
		clock.Advance(want)
	}
}
