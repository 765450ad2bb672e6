package mqtt_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/agent/agenttest"
	"github.com/portier-io/portier/cloud/mqtt"
)

func configs(t *testing.T, msgs []message) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, m := range msgs {
		if strings.HasPrefix(m.Topic, "homeassistant/") && strings.HasSuffix(m.Topic, "/config") {
			assert.False(t, m.Retained, "discovery is not retained: %s", m.Topic)
			var c map[string]any
			require.NoError(t, json.Unmarshal(m.Payload, &c))
			out[m.Topic] = c
		}
	}
	return out
}

func TestHomeAssistantDiscovery(t *testing.T) {
	b := startMochi(t, nil)
	tp := mqtt.Topics{Prefix: "portier", Site: "site1", Gateway: "gw1", Discovery: "homeassistant"}
	ha := newDashboard(t, b.URL(), nil, "homeassistant/#", tp.Response(), tp.HAAccess("+"))

	// A retained UNLOCK waiting on the broker is refused when the link
	// subscribes, and never reaches the door.
	ha.publish(t, tp.HALock("front"), []byte("UNLOCK"), true)
	ha.settle(t)
	r := newRig(t, b.URL(), func(c *mqtt.Config) {
		c.HomeAssistant = mqtt.HomeAssistant{Enabled: true, AllowUnlock: true}
		c.Telemetry = telemetryOK{}
	}).start(t)
	msgs := ha.waitUntil(t, "discovery and the retained refusal", func(m []message) bool {
		return len(configs(t, m)) == 2*4+9 && len(on(m, tp.Response())) == 1
	}, nil)
	ha.publish(t, tp.HALock("front"), nil, true) // clear it
	refusal := decode[mqtt.ResponsePayload](t, on(msgs, tp.Response())[0].Payload)
	require.NotNil(t, refusal.Error, "%s", on(msgs, tp.Response())[0].Payload)
	assert.Equal(t, mqtt.ErrRetained, refusal.Error.Type)
	assert.Empty(t, r.doors.Calls())

	cfgs := configs(t, msgs)
	door := cfgs["homeassistant/binary_sensor/gw1/front_door/config"]
	require.NotNil(t, door)
	assert.Equal(t, "door", door["device_class"])
	assert.Equal(t, tp.DoorState("front"), door["state_topic"])
	assert.Equal(t, tp.Status(), door["availability_topic"])
	assert.Equal(t, []any{"portier_site1_gw1"}, door["device"].(map[string]any)["identifiers"])
	lock := cfgs["homeassistant/lock/gw1/back_lock/config"]
	require.NotNil(t, lock)
	assert.Equal(t, tp.HALock("back"), lock["command_topic"])
	assert.Equal(t, false, lock["retain"])
	ev := cfgs["homeassistant/event/gw1/front_access/config"]
	require.NotNil(t, ev)
	assert.Equal(t, tp.HAAccess("front"), ev["state_topic"])
	assert.NotNil(t, cfgs["homeassistant/sensor/gw1/outbox_depth/config"])
	for topic := range cfgs {
		assert.NotEmpty(t, tp.Pattern(topic), topic)
	}

	// HA restarted: it says online, the gateway announces itself again.
	before := len(ha.all())
	ha.publish(t, "homeassistant/status", []byte("online"), false)
	ha.waitUntil(t, "discovery again", func(m []message) bool { return len(configs(t, m[before:])) == 2*4+9 }, nil)

	// A live UNLOCK is a pulse unlock by home_assistant, answered and
	// recorded like any command.
	ha.publish(t, tp.HALock("front"), []byte("UNLOCK"), false)
	msgs = ha.waitUntil(t, "the unlock's success", func(m []message) bool {
		for _, x := range on(m, tp.Response()) {
			if decode[mqtt.ResponsePayload](t, x.Payload).Status == mqtt.StatusSuccess {
				return true
			}
		}
		return false
	}, nil)
	require.Len(t, r.doors.Calls(), 1)
	assert.True(t, strings.HasPrefix(r.doors.Calls()[0], "unlock front ha-"))
	eventually(t, "the attempt's event", func() bool {
		for _, e := range r.outbox.events() {
			if e.Type == mqtt.EventCommandSucceeded && e.Actor == "home_assistant" {
				return true
			}
		}
		return false
	})

	// Access events are mirrored for the door's event entity.
	require.NoError(t, r.outbox.Record(context.Background(), agent.Event{Type: agent.EventAccessDenied, Door: "front", Reason: "unknown_credential"}))
	msgs = ha.waitUntil(t, "the HA access event", func(m []message) bool { return len(on(m, tp.HAAccess("front"))) == 1 }, nil)
	assert.Equal(t, "access_denied", decode[map[string]any](t, on(msgs, tp.HAAccess("front"))[0].Payload)["event_type"])
}

func TestHomeAssistantWithoutUnlock(t *testing.T) {
	b := startMochi(t, nil)
	tp := mqtt.Topics{Prefix: "portier", Site: "site1", Gateway: "gw1"}
	ha := newDashboard(t, b.URL(), nil, "homeassistant/#", tp.HAAccess("+"))
	r := newRig(t, b.URL(), func(c *mqtt.Config) { c.HomeAssistant = mqtt.HomeAssistant{Enabled: true} }).start(t)
	msgs := ha.waitUntil(t, "discovery", func(m []message) bool { return len(configs(t, m)) == 2*3+9 }, nil)
	for topic := range configs(t, msgs) {
		assert.NotContains(t, topic, "/lock/", "no lock entity without allow_unlock")
	}
	// The lock topic is not even subscribed: an UNLOCK there does nothing.
	// The access event afterwards proves the link processed later traffic.
	ha.publish(t, tp.HALock("front"), []byte("UNLOCK"), false)
	require.NoError(t, r.outbox.Record(context.Background(), agent.Event{Type: agent.EventAccessGranted, Door: "front"}))
	msgs = ha.waitUntil(t, "the HA access event", func(m []message) bool { return len(on(m, tp.HAAccess("front"))) == 1 }, nil)
	assert.Equal(t, "access_granted", decode[map[string]any](t, on(msgs, tp.HAAccess("front"))[0].Payload)["event_type"])
	assert.Empty(t, r.doors.Calls())
}

// TestOutboxAlarms: the high-water and full alarms are events, telemetry
// flags them, and nothing is dropped past the limit.
func TestOutboxAlarms(t *testing.T) {
	b := startMochi(t, nil)
	b.Stop(t) // the gateway starts offline; the broker comes back later
	clock := agenttest.NewClock(t0)
	tp := mqtt.Topics{Prefix: "portier", Site: "site1", Gateway: "gw1"}
	r := newRig(t, b.URL(), func(c *mqtt.Config) {
		c.Clock, c.Jitter = clock, func() float64 { return 0 }
		c.OutboxLimit, c.HighWater, c.OutboxCheck = 100, 0.5, time.Second
		c.BackoffMin, c.BackoffMax = time.Minute, time.Minute
		c.StateInterval, c.TelemetryInterval = time.Hour, time.Hour
	}).start(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	step := func() {
		t.Helper()
		next := clock.Now().Add(time.Second)
		clock.Advance(time.Second)
		require.NoError(t, clock.WaitArmed(ctx, next.Add(time.Second)), "the check ran")
	}
	require.NoError(t, clock.WaitArmed(ctx, t0.Add(time.Second)))
	record := func(n int) {
		for range n {
			require.NoError(t, r.outbox.Record(ctx, agent.Event{Type: agent.EventAccessGranted, Door: "front"}))
		}
	}
	alarms := func() []agent.EventType {
		var out []agent.EventType
		for _, e := range r.outbox.events() {
			if strings.HasPrefix(string(e.Type), "outbox_") {
				out = append(out, e.Type)
			}
		}
		return out
	}
	record(49)
	step()
	assert.Empty(t, alarms(), "below the mark")
	record(1)
	step()
	assert.Equal(t, []agent.EventType{mqtt.EventOutboxHighWater}, alarms())
	record(60)
	step()
	assert.Equal(t, []agent.EventType{mqtt.EventOutboxHighWater, mqtt.EventOutboxFull}, alarms())
	record(100)
	step()
	assert.Equal(t, 212, r.outbox.depth(), "past the limit everything is still recorded")

	b.Start(t)
	d := newDashboard(t, b.URL(), nil, tp.Telemetry())
	msgs := d.waitUntil(t, "telemetry", func(m []message) bool { return len(m) > 0 }, func() { clock.Advance(time.Minute) })
	tele := decode[mqtt.TelemetryPayload](t, msgs[0].Payload)
	assert.Equal(t, mqtt.OutboxFullState, tele.Outbox.State)
	assert.GreaterOrEqual(t, tele.Outbox.Depth, 212)
	assert.Equal(t, 50, tele.Outbox.HighWater)
	waitProgress(t, "the outbox to drain", func() bool { return r.outbox.depth() == 0 }, func() int64 { return int64(r.outbox.depth()) })
	clock.Advance(time.Second)
	eventually(t, "outbox_normal", func() bool { a := alarms(); return len(a) == 3 && a[2] == mqtt.EventOutboxNormal })
}

// TestPruneCommandIDs: expired command ids are pruned hourly, by a trusted
// clock only.
func TestPruneCommandIDs(t *testing.T) {
	for _, trusted := range []bool{true, false} {
		clock := agenttest.NewClock(t0)
		url := unreachableURL(t)
		r := newRig(t, url, func(c *mqtt.Config) {
			c.Clock, c.Jitter = clock, func() float64 { return 0 }
			c.BackoffMin, c.BackoffMax = 10*time.Minute, 10*time.Minute
			c.OutboxCheck, c.StateInterval, c.TelemetryInterval = 20*time.Minute, time.Hour, time.Hour
			c.Telemetry = telemetryOK{}
			if !trusted {
				c.Telemetry = telemetryUntrusted{}
			}
		}).start(t)
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		for i := 1; i <= 4; i++ {
			require.NoError(t, clock.WaitArmed(ctx, t0.Add(time.Duration(i)*20*time.Minute)))
			clock.Advance(20 * time.Minute)
		}
		require.NoError(t, clock.WaitArmed(ctx, t0.Add(100*time.Minute)), "the fourth check ran")
		cancel()
		if trusted {
			assert.Equal(t, []time.Time{t0.Add(-mqtt.DefaultClockSkew), t0.Add(time.Hour - mqtt.DefaultClockSkew)}, r.cmds.pruned())
		} else {
			assert.Empty(t, r.cmds.pruned(), "an untrusted clock prunes nothing")
		}
	}
}

// unreachableURL is a broker address where nothing listens.
func unreachableURL(t *testing.T) string { return "tcp://127.0.0.1:" + strconv.Itoa(freePort(t)) }

// TestHomeAssistantUnlockWithCommandKey: a gateway that demands signed commands
// refuses Home Assistant's unsigned UNLOCK.
func TestHomeAssistantUnlockWithCommandKey(t *testing.T) {
	b := startMochi(t, nil)
	tp := mqtt.Topics{Prefix: "portier", Site: "site1", Gateway: "gw1", Discovery: "homeassistant"}
	ha := newDashboard(t, b.URL(), nil, tp.Response(), tp.Status())
	r := newRig(t, b.URL(), func(c *mqtt.Config) {
		c.HomeAssistant = mqtt.HomeAssistant{Enabled: true, AllowUnlock: true}
		c.CommandKey = []byte("0123456789abcdef0123456789abcdef")
	}).start(t)
	ha.waitUntil(t, "online", func(m []message) bool { return len(on(m, tp.Status())) > 0 }, nil)
	ha.publish(t, tp.HALock("front"), []byte("UNLOCK"), false)
	msgs := ha.waitUntil(t, "the refusal", func(m []message) bool { return len(on(m, tp.Response())) == 1 }, nil)
	p := decode[mqtt.ResponsePayload](t, on(msgs, tp.Response())[0].Payload)
	require.NotNil(t, p.Error)
	assert.Equal(t, mqtt.ErrSignatureMissing, p.Error.Type)
	assert.Empty(t, r.doors.Calls())
}
