package mqtt_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/agent/agenttest"
	"github.com/portier-io/portier/cloud/mqtt"
	"github.com/portier-io/portier/sqlite"
)

// configs returns the discovery configs among msgs by topic; an empty
// payload (an entity removed) is a nil config.
func configs(t *testing.T, msgs []message) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, m := range msgs {
		if strings.HasPrefix(m.Topic, "homeassistant/") && strings.HasSuffix(m.Topic, "/config") {
			assert.False(t, m.Retained, "discovery is not retained: %s", m.Topic)
			var c map[string]any
			if len(m.Payload) > 0 {
				require.NoError(t, json.Unmarshal(m.Payload, &c))
			}
			out[m.Topic] = c
		}
	}
	return out
}

// haConfigsPerDoor and haTelemetrySensors count the discovery messages: per
// door a contact, lock state, last access, access and command events, a
// lock and two switches (empty when not allowed); and the telemetry sensors.
const haConfigsPerDoor, haTelemetrySensors = 8, 9

// allHA turns Home Assistant on with every command entity.
var allHA = mqtt.HomeAssistant{Enabled: true, AllowUnlock: true, AllowLockdown: true, AllowOfficeMode: true}

func TestHomeAssistantDiscovery(t *testing.T) {
	b := startMochi(t, nil)
	tp := mqtt.Topics{Prefix: "portier", Site: "site1", Gateway: "gw1", Discovery: "homeassistant"}
	ha := newDashboard(t, b.URL(), nil, "homeassistant/#", tp.Response(), tp.HAAccess("+"), tp.HALastAccess("+"), tp.HACommandResult("+"))

	// A retained UNLOCK waiting on the broker is refused when the link
	// subscribes, and never reaches the door.
	ha.publish(t, tp.HALock("front"), []byte("UNLOCK"), true)
	ha.settle(t)
	r := newRig(t, b.URL(), func(c *mqtt.Config) {
		c.HomeAssistant = allHA
		c.Telemetry = telemetryOK{}
		c.DoorNames = map[string]string{"front": "Front door"}
	}).start(t)
	msgs := ha.waitUntil(t, "discovery and the retained refusal", func(m []message) bool {
		return len(configs(t, m)) == 2*haConfigsPerDoor+haTelemetrySensors && len(on(m, tp.Response())) == 1
	}, nil)
	ha.publish(t, tp.HALock("front"), nil, true) // clear it
	refusal := decode[mqtt.ResponsePayload](t, on(msgs, tp.Response())[0].Payload)
	require.NotNil(t, refusal.Error, "%s", on(msgs, tp.Response())[0].Payload)
	assert.Equal(t, mqtt.ErrRetained, refusal.Error.Type)
	assert.Empty(t, r.doors.Calls())

	cfgs := configs(t, msgs)
	cfg := func(component, object string) map[string]any {
		t.Helper()
		c := cfgs["homeassistant/"+component+"/site1__gw1/"+object+"/config"]
		require.NotNil(t, c, "%s %s", component, object)
		return c
	}
	door := cfg("binary_sensor", "front__door")
	assert.Equal(t, "door", door["device_class"])
	assert.Equal(t, "Front door contact", door["name"], "the door's display name")
	assert.Equal(t, "back contact", cfg("binary_sensor", "back__door")["name"], "a door without a name is shown by its id")
	assert.Equal(t, tp.DoorState("front"), door["state_topic"])
	assert.Equal(t, tp.Status(), door["availability_topic"])
	assert.Equal(t, "portier_site1__gw1__front__door", door["unique_id"])
	assert.Equal(t, []any{"portier_site1__gw1"}, door["device"].(map[string]any)["identifiers"])
	lock := cfg("lock", "back__lock")
	assert.Equal(t, tp.HALock("back"), lock["command_topic"])
	assert.Equal(t, false, lock["retain"])
	assert.Equal(t, tp.HALockdown("front"), cfg("switch", "front__lockdown")["command_topic"])
	assert.Equal(t, tp.HAOfficeMode("back"), cfg("switch", "back__office_mode")["command_topic"])
	assert.Equal(t, tp.HAAccess("front"), cfg("event", "front__access")["state_topic"])
	assert.Equal(t, tp.HACommandResult("front"), cfg("event", "front__command")["state_topic"])
	assert.Equal(t, tp.HALastAccess("front"), cfg("sensor", "front__last_access")["state_topic"])
	assert.Equal(t, "total_increasing", cfg("sensor", "reconnects")["state_class"])
	for topic, c := range cfgs {
		assert.NotEmpty(t, tp.Pattern(topic), topic)
		assert.NotNil(t, c, "every entity is allowed here: %s", topic)
	}

	// HA restarted: it says online, the gateway announces itself again.
	before := len(ha.all())
	ha.publish(t, "homeassistant/status", []byte("online"), false)
	ha.waitUntil(t, "discovery again", func(m []message) bool {
		return len(configs(t, m[before:])) == 2*haConfigsPerDoor+haTelemetrySensors
	}, nil)

	// A live UNLOCK is a pulse unlock by home_assistant, answered and
	// recorded like any command; its outcome reaches the command entity.
	ha.publish(t, tp.HALock("front"), []byte("UNLOCK"), false)
	ha.waitUntil(t, "the unlock's success", func(m []message) bool {
		for _, x := range on(m, tp.Response()) {
			if decode[mqtt.ResponsePayload](t, x.Payload).Status == mqtt.StatusSuccess {
				return true
			}
		}
		return false
	}, nil)
	require.Len(t, r.doors.Calls(), 1)
	assert.True(t, strings.HasPrefix(r.doors.Calls()[0], "unlock front ha-"))
	var outcomes []mqtt.HAEventPayload
	ha.waitUntil(t, "the command entity's event", func(m []message) bool {
		outcomes = nil
		for _, x := range on(m, tp.HACommandResult("front")) {
			outcomes = append(outcomes, decode[mqtt.HAEventPayload](t, x.Payload))
		}
		return len(outcomes) == 2
	}, nil)
	assert.Equal(t, agent.EventCommandRejected, outcomes[0].EventType, "the retained UNLOCK's refusal")
	assert.Equal(t, agent.Reason(mqtt.ErrRetained), outcomes[0].Reason)
	outcome := outcomes[1]
	assert.Equal(t, agent.EventCommandSucceeded, outcome.EventType)
	assert.Equal(t, "home_assistant", outcome.Actor)
	assert.Equal(t, "Front door", outcome.DoorName)

	// The switches run lockdown and office mode through the same path.
	ha.publish(t, tp.HALockdown("back"), []byte("ON"), false)
	ha.publish(t, tp.HAOfficeMode("front"), []byte("OFF"), false)
	ha.publish(t, tp.HALockdown("back"), []byte("on"), false) // not a switch payload
	msgs = ha.waitUntil(t, "three answers", func(m []message) bool {
		n := 0
		for _, x := range on(m, tp.Response()) {
			if decode[mqtt.ResponsePayload](t, x.Payload).Status != mqtt.StatusPending {
				n++
			}
		}
		return n == 5 // the retained refusal, the unlock and these three
	}, nil)
	calls := strings.Join(r.doors.Calls(), "\n")
	assert.Regexp(t, `(?m)^lockdown back true ha-[0-9a-f]{16}$`, calls)
	assert.Regexp(t, `(?m)^office_mode front false ha-[0-9a-f]{16}$`, calls)
	assert.Len(t, r.doors.Calls(), 3, "the malformed payload reached no door")
	var refused []string
	for _, x := range on(msgs, tp.Response()) {
		if p := decode[mqtt.ResponsePayload](t, x.Payload); p.Error != nil {
			refused = append(refused, p.Command+" "+p.Error.Type)
		}
	}
	assert.Equal(t, []string{"unlock " + mqtt.ErrRetained, "lockdown " + mqtt.ErrMalformed}, refused)

	// Access events reach the door's event entity and last-access sensor
	// with the user and the door's name.
	require.NoError(t, r.outbox.Record(context.Background(), agent.Event{Type: agent.EventAccessDenied, Door: "front", Reason: "user_blocked",
		User: &agent.UserRef{ID: "u7", Name: "Grace Hopper"}, Kind: agent.KindUID, Credential: "uid:4 bytes …0C0D"}))
	msgs = ha.waitUntil(t, "the HA access event", func(m []message) bool {
		return len(on(m, tp.HAAccess("front"))) == 1 && len(on(m, tp.HALastAccess("front"))) == 1
	}, nil)
	access := decode[mqtt.HAEventPayload](t, on(msgs, tp.HAAccess("front"))[0].Payload)
	assert.Equal(t, mqtt.HAEventPayload{EventType: agent.EventAccessDenied, EventID: access.EventID, Time: access.Time, Door: "front", DoorName: "Front door",
		Reason: "user_blocked", UserID: "u7", UserName: "Grace Hopper", Kind: agent.KindUID, Credential: "uid:4 bytes …0C0D"}, access)
	// Retained for the sensor: a subscriber that comes later gets it.
	later := newDashboard(t, b.URL(), nil, tp.HALastAccess("front"))
	m := later.waitUntil(t, "the retained last access", func(m []message) bool { return len(m) == 1 }, nil)
	assert.True(t, m[0].Retained)
	assert.Equal(t, access, decode[mqtt.HAEventPayload](t, m[0].Payload))
}

func TestHomeAssistantWithoutUnlock(t *testing.T) {
	b := startMochi(t, nil)
	tp := mqtt.Topics{Prefix: "portier", Site: "site1", Gateway: "gw1"}
	ha := newDashboard(t, b.URL(), nil, "homeassistant/#", tp.HAAccess("+"))
	r := newRig(t, b.URL(), func(c *mqtt.Config) { c.HomeAssistant = mqtt.HomeAssistant{Enabled: true} }).start(t)
	msgs := ha.waitUntil(t, "discovery", func(m []message) bool { return len(configs(t, m)) == 2*haConfigsPerDoor+haTelemetrySensors }, nil)
	for topic, c := range configs(t, msgs) {
		if strings.Contains(topic, "/lock/") || strings.Contains(topic, "/switch/") {
			assert.Nil(t, c, "no lock or switch without allow_*: an empty config removes one announced before: %s", topic)
		}
	}
	// The command topics are not even subscribed: nothing happens there.
	// The access event afterwards proves the link processed later traffic.
	ha.publish(t, tp.HALock("front"), []byte("UNLOCK"), false)
	ha.publish(t, tp.HALockdown("front"), []byte("ON"), false)
	ha.publish(t, tp.HAOfficeMode("front"), []byte("ON"), false)
	require.NoError(t, r.outbox.Record(context.Background(), agent.Event{Type: agent.EventAccessGranted, Door: "front", Reason: agent.ReasonGranted}))
	msgs = ha.waitUntil(t, "the HA access event", func(m []message) bool { return len(on(m, tp.HAAccess("front"))) == 1 }, nil)
	assert.Equal(t, "access_granted", decode[map[string]any](t, on(msgs, tp.HAAccess("front"))[0].Payload)["event_type"])
	assert.Empty(t, r.doors.Calls())
}

// TestHomeAssistantSitesDoNotCollide: two gateways with the same id on two
// sites announce different topics and unique ids, also where the ids
// contain the separator.
func TestHomeAssistantSitesDoNotCollide(t *testing.T) {
	b := startMochi(t, nil)
	ha := newDashboard(t, b.URL(), nil, "homeassistant/#")
	pairs := [][2]string{{"site-a", "hall-1"}, {"site-b", "hall-1"}, {"x_", "_y"}, {"x", "__y"}, {"x__", "y"}}
	for _, p := range pairs {
		newRig(t, b.URL(), func(c *mqtt.Config) {
			c.Topics = mqtt.Topics{Site: p[0], Gateway: p[1]}
			c.ClientID = "portier-" + p[0] + "-" + p[1]
			c.HomeAssistant = allHA
		}).start(t)
	}
	per := 2*haConfigsPerDoor + haTelemetrySensors
	discovery := func(m []message) []message {
		var out []message
		for _, x := range m {
			if strings.HasSuffix(x.Topic, "/config") {
				out = append(out, x)
			}
		}
		return out
	}
	msgs := discovery(ha.waitUntil(t, "every gateway's discovery", func(m []message) bool { return len(discovery(m)) >= len(pairs)*per }, nil))
	topics, ids := map[string]bool{}, map[string]string{}
	for _, m := range msgs[:len(pairs)*per] {
		assert.False(t, topics[m.Topic], "two gateways announce %s", m.Topic)
		topics[m.Topic] = true
		id := decode[map[string]any](t, m.Payload)["unique_id"].(string)
		assert.Empty(t, ids[id], "unique_id %s of %s is also %s's", id, m.Topic, ids[id])
		ids[id] = m.Topic
	}
}

// FuzzHANode: the node id is one-to-one, so no two (site, gateway) pairs
// share discovery topics or unique ids.
func FuzzHANode(f *testing.F) {
	f.Add("site-a", "hall-1", "site-b", "hall-1")
	f.Add("x_", "_y", "x", "__y")
	f.Add("a_-b", "c", "a", "-b_c")
	f.Fuzz(func(t *testing.T, s1, g1, s2, g2 string) {
		a, b := mqtt.Topics{Site: s1, Gateway: g1}, mqtt.Topics{Site: s2, Gateway: g2}
		if a.WithDefaults().Validate() != nil || b.WithDefaults().Validate() != nil || a == b {
			return
		}
		if a.HANode() == b.HANode() {
			t.Fatalf("%q/%q and %q/%q share the node id %q", s1, g1, s2, g2, a.HANode())
		}
		if !regexp.MustCompile(`^[A-Za-z0-9_-]+$`).MatchString(a.HANode()) {
			t.Fatalf("node id %q is not a Home Assistant id", a.HANode())
		}
	})
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
	assert.Equal(t, []agent.EventType{agent.EventOutboxHighWater}, alarms())
	record(60)
	step()
	assert.Equal(t, []agent.EventType{agent.EventOutboxHighWater, agent.EventOutboxFull}, alarms())
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
	eventually(t, "outbox_normal", func() bool { a := alarms(); return len(a) == 3 && a[2] == agent.EventOutboxNormal })
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

// A door's supervised reader gets a problem sensor reading the door's state:
// on while the reader is offline or refused, or reports a power fault.
func TestHomeAssistantReaderProblem(t *testing.T) {
	b := startMochi(t, nil)
	tp := mqtt.Topics{Prefix: "portier", Site: "site1", Gateway: "gw1", Discovery: "homeassistant"}
	ha := newDashboard(t, b.URL(), nil, "homeassistant/#", tp.DoorState("front"))
	r := newRig(t, b.URL(), func(c *mqtt.Config) { c.HomeAssistant = mqtt.HomeAssistant{Enabled: true} })
	r.doors.setReaders("front", agent.ReaderStatus{Reader: "osdp", State: agent.ReaderOffline, Reason: "timeout"})
	r.start(t)
	msgs := ha.waitUntil(t, "discovery and the door's state", func(m []message) bool {
		return configs(t, m)["homeassistant/binary_sensor/site1__gw1/front__reader_osdp/config"] != nil && len(on(m, tp.DoorState("front"))) > 0
	}, nil)
	c := configs(t, msgs)["homeassistant/binary_sensor/site1__gw1/front__reader_osdp/config"]
	assert.Equal(t, "problem", c["device_class"])
	assert.Equal(t, "front reader osdp", c["name"])
	assert.Equal(t, tp.DoorState("front"), c["state_topic"])
	assert.Contains(t, c["value_template"], "selectattr('reader', 'eq', 'osdp')")
	assert.Contains(t, c["value_template"], "['offline', 'refused']")
	assert.Contains(t, c["value_template"], "power_fault")
	assert.Nil(t, configs(t, msgs)["homeassistant/binary_sensor/site1__gw1/back__reader_osdp/config"], "a door without a reader has none")

	st := decode[mqtt.DoorStatePayload](t, on(msgs, tp.DoorState("front"))[0].Payload)
	require.Len(t, st.Readers, 1)
	assert.Equal(t, agent.ReaderOffline, st.Readers[0].State)
	assert.Equal(t, "timeout", st.Readers[0].Reason)
}

// TestHomeAssistantForgetsRemovedEntities: a door taken out of the config,
// or Home Assistant turned off, leaves no entity behind: the gateway clears
// the discovery configs it announced before and no longer announces.
func TestHomeAssistantForgetsRemovedEntities(t *testing.T) {
	b := startMochi(t, nil)
	ha := newDashboard(t, b.URL(), nil, "homeassistant/#")
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "gw.db"), sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	// run starts a gateway with these doors, waits for want discovery
	// messages and stops it; it returns what the gateway announced (kept)
	// and what it removed.
	run := func(what string, enabled bool, want int, doors ...string) (kept, removed []string) {
		t.Helper()
		before := len(ha.all())
		r := newRig(t, b.URL(), func(c *mqtt.Config) {
			c.HomeAssistant = allHA
			c.HomeAssistant.Enabled = enabled
			c.Telemetry = telemetryOK{}
			c.Discovery = db
			c.Doors = newFakeDoors(doors...)
		}).start(t)
		msgs := ha.waitUntil(t, what, func(m []message) bool { return len(configs(t, m[before:])) == want }, nil)
		r.stop()
		for topic, c := range configs(t, msgs[before:]) {
			if c == nil {
				removed = append(removed, topic)
			} else {
				kept = append(kept, topic)
			}
		}
		return kept, removed
	}

	kept, removed := run("both doors announced", true, 2*haConfigsPerDoor+haTelemetrySensors, "front", "back")
	assert.Len(t, kept, 2*haConfigsPerDoor+haTelemetrySensors)
	assert.Empty(t, removed)

	kept, removed = run("the back door's entities removed", true, 2*haConfigsPerDoor+haTelemetrySensors, "front")
	assert.Len(t, kept, haConfigsPerDoor+haTelemetrySensors)
	require.Len(t, removed, haConfigsPerDoor)
	for _, topic := range removed {
		assert.Contains(t, topic, "/site1__gw1/back__", "only the back door's entities go")
	}

	kept, removed = run("every entity removed", false, haConfigsPerDoor+haTelemetrySensors, "front")
	assert.Empty(t, kept, "Home Assistant is off: nothing announced")
	assert.Len(t, removed, haConfigsPerDoor+haTelemetrySensors)
	v, _, err := db.Meta(context.Background(), "mqtt_ha_discovery")
	require.NoError(t, err)
	assert.Empty(t, v, "nothing left to remove")
}
