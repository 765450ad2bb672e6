package mqtt_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/agent/agenttest"
	"github.com/portier-io/portier/cloud/mqtt"
)

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// cmdRig is a link on the embedded broker with a dashboard listening to
// responses.
type cmdRig struct {
	*rig
	b     testBroker
	tp    mqtt.Topics
	dash  *dashboard
	clock *agenttest.Clock
	codes *fakeCodes
	n     atomic.Int64
}

func newCmdRig(t *testing.T, b testBroker, edit func(*mqtt.Config)) *cmdRig {
	clock := agenttest.NewClock(t0)
	c := &cmdRig{b: b, tp: mqtt.Topics{Prefix: "portier", Site: "site1", Gateway: "gw1"}, clock: clock, codes: &fakeCodes{}}
	c.rig = newRig(t, b.URL(), func(cfg *mqtt.Config) {
		cfg.Clock = clock
		cfg.Jitter = func() float64 { return 0 }
		cfg.StateInterval, cfg.OutboxCheck, cfg.TelemetryInterval = time.Hour, time.Hour, time.Hour
		cfg.AccessCodes = c.codes
		cfg.Syncer = syncOK{}
		cfg.Telemetry = telemetryOK{}
		if edit != nil {
			edit(cfg)
		}
	})
	c.dash = newDashboard(t, b.URL(), nil, c.tp.Response(), c.tp.Status())
	c.start(t)
	c.waitOnline(t, 1)
	return c
}

// waitOnline waits for the n-th "online" status.
func (c *cmdRig) waitOnline(t *testing.T, n int) {
	c.dash.waitUntil(t, "online", func(m []message) bool {
		k := 0
		for _, s := range on(m, c.tp.Status()) {
			if decode[mqtt.StatusPayload](t, s.Payload).State == "online" {
				k++
			}
		}
		return k >= n
	}, func() { c.clock.Advance(time.Second) })
}

// body builds a command object expiring a minute after the rig's clock
// (which waits move on while the link connects).
func (c *cmdRig) body(id string, fields map[string]any) []byte {
	m := map[string]any{"id": id, "expires_at": c.clock.Now().Add(time.Minute).Format(time.RFC3339), "actor": "user:42"}
	for k, v := range fields {
		if v == nil {
			delete(m, k)
			continue
		}
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return b
}

func (c *cmdRig) newID() string { return fmt.Sprintf("cmd-%d", c.n.Add(1)) }

// answers returns the responses to id received so far.
func (c *cmdRig) answers(t *testing.T, m []message, id string) []mqtt.ResponsePayload {
	var out []mqtt.ResponsePayload
	for _, r := range on(m, c.tp.Response()) {
		if p := decode[mqtt.ResponsePayload](t, r.Payload); p.ID == id {
			out = append(out, p)
		}
	}
	return out
}

// send publishes payload to a command topic and returns the responses to
// id it caused, up to the final one.
func (c *cmdRig) send(t *testing.T, name, id string, payload []byte, retained bool) []mqtt.ResponsePayload {
	t.Helper()
	before := len(c.answers(t, c.dash.all(), id))
	c.dash.publish(t, c.tp.Command(name), payload, retained)
	var out []mqtt.ResponsePayload
	c.dash.waitUntil(t, "the response to "+id, func(m []message) bool {
		out = c.answers(t, m, id)[before:]
		return len(out) > 0 && out[len(out)-1].Status != mqtt.StatusPending
	}, nil)
	return out
}

// final sends payload to a command topic and returns the final response.
func (c *cmdRig) final(t *testing.T, name, id string, payload []byte, retained bool) mqtt.ResponsePayload {
	t.Helper()
	rs := c.send(t, name, id, payload, retained)
	return rs[len(rs)-1]
}

func (c *cmdRig) hasEvent(typ agent.EventType, id string, reason string) bool {
	for _, e := range c.outbox.events() {
		if e.Type == typ && e.CommandID == id && string(e.Reason) == reason {
			return true
		}
	}
	return false
}

type syncOK struct{}

func (syncOK) SyncNow(context.Context) error { return nil }

type fakeCodes struct{ created atomic.Int64 }

const secretPIN = "4829137"

func (f *fakeCodes) CreateAccessCode(_ context.Context, r mqtt.AccessCodeRequest) (agent.AccessCode, string, error) {
	if r.Door == "back" {
		return agent.AccessCode{}, "", &mqtt.ActionError{Type: "salto_site_user_not_subscribed", Message: "no free seat"}
	}
	f.created.Add(1)
	return agent.AccessCode{ID: "ac_1", Door: r.Door, Name: r.Name, Status: agent.AccessCodeSet, CreatedAt: t0}, secretPIN, nil
}

func (f *fakeCodes) DeleteAccessCode(_ context.Context, id string) (agent.AccessCode, error) {
	return agent.AccessCode{ID: id, Door: "front", Status: agent.AccessCodeUnset}, nil
}

func (f *fakeCodes) ListAccessCodes(context.Context) ([]agent.AccessCode, error) {
	return []agent.AccessCode{{ID: "ac_1", Door: "front", Status: agent.AccessCodeSet}}, nil
}

func TestCommandRejections(t *testing.T) {
	brokers(t, func(t *testing.T, newBroker func(*testing.T) testBroker) {
		c := newCmdRig(t, newBroker(t), nil)

		// A valid unlock: pending, then success; the door was asked.
		id := c.newID()
		rs := c.send(t, "unlock", id, c.body(id, map[string]any{"door": "front", "duration_s": 3}), false)
		require.Len(t, rs, 2)
		assert.Equal(t, mqtt.StatusPending, rs[0].Status)
		assert.Equal(t, mqtt.StatusSuccess, rs[1].Status)
		assert.Equal(t, "unlock", rs[1].Command)
		assert.Contains(t, c.doors.Calls(), "unlock front "+id)
		eventually(t, "command_succeeded", func() bool { return c.hasEvent(agent.EventCommandSucceeded, id, "") })
		valid := id

		big := c.body("cmd-big", map[string]any{"door": "front", "name": strings.Repeat("x", 9000)})
		cases := []struct {
			name, cmd, id string
			payload       []byte
			retained      bool
			want          string
		}{
			{"expired", "unlock", "e1", c.body("e1", map[string]any{"door": "front", "expires_at": t0.Add(-time.Minute).Format(time.RFC3339)}), false, mqtt.ErrExpired},
			{"expiry too far", "unlock", "e2", c.body("e2", map[string]any{"door": "front", "expires_at": t0.Add(48 * time.Hour).Format(time.RFC3339)}), false, mqtt.ErrExpiryTooFar},
			{"duplicate", "unlock", valid, c.body(valid, map[string]any{"door": "front"}), false, mqtt.ErrDuplicate},
			{"malformed json", "unlock", "", []byte(`{"id":"m1","door":`), false, mqtt.ErrMalformed},
			{"missing actor", "unlock", "m2", c.body("m2", map[string]any{"door": "front", "actor": nil}), false, mqtt.ErrMalformed},
			{"unknown field", "unlock", "m3", c.body("m3", map[string]any{"door": "front", "open": true}), false, mqtt.ErrMalformed},
			{"missing expiry", "unlock", "m4", c.body("m4", map[string]any{"door": "front", "expires_at": nil}), false, mqtt.ErrMalformed},
			{"wrong params", "lockdown", "m5", c.body("m5", map[string]any{"door": "front"}), false, mqtt.ErrMalformed},
			{"oversized", "access_code_create", "", big, false, mqtt.ErrOversized}, // never parsed, so no id
			{"unknown door", "unlock", "d1", c.body("d1", map[string]any{"door": "cellar"}), false, mqtt.ErrUnknownDoor},
			{"unknown command", "open_sesame", "u1", c.body("u1", nil), false, mqtt.ErrUnknownCommand},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				if tc.id == "" { // no readable id: find the answer by its type
					c.dash.publish(t, c.tp.Command(tc.cmd), tc.payload, tc.retained)
					c.dash.waitUntil(t, "a malformed answer", func(m []message) bool {
						for _, r := range on(m, c.tp.Response()) {
							p := decode[mqtt.ResponsePayload](t, r.Payload)
							if p.ID == "" && p.Error != nil && p.Error.Type == tc.want {
								return true
							}
						}
						return false
					}, nil)
					return
				}
				r := c.final(t, tc.cmd, tc.id, tc.payload, tc.retained)
				assert.Equal(t, mqtt.StatusError, r.Status)
				require.NotNil(t, r.Error)
				assert.Equal(t, tc.want, r.Error.Type, r.Error.Message)
				eventually(t, "the command_rejected event", func() bool { return c.hasEvent(agent.EventCommandRejected, tc.id, tc.want) })
			})
		}
		assert.Equal(t, []string{"unlock front " + valid}, c.doors.Calls(), "no rejected command reached a door")

		// A door's own refusal is an error with the door's reason. The door
		// records it (command_rejected); the link records nothing more.
		id = c.newID()
		assert.Equal(t, mqtt.StatusSuccess, c.final(t, "lockdown", id, c.body(id, map[string]any{"on": true}), false).Status)
		refused := c.newID()
		r := c.final(t, "unlock", refused, c.body(refused, map[string]any{"door": "front"}), false)
		require.NotNil(t, r.Error)
		assert.Equal(t, "door_lockdown", r.Error.Type)
		id = c.newID()
		assert.Equal(t, mqtt.StatusSuccess, c.final(t, "lockdown", id, c.body(id, map[string]any{"on": false, "door": "front"}), false).Status)
		eventually(t, "the next command's event", func() bool { return c.hasEvent(agent.EventCommandSucceeded, id, "") })
		for _, e := range c.outbox.events() {
			assert.False(t, e.CommandID == refused, "the link recorded %s for a door's refusal", e.Type)
		}

		// A retained command reaches the link with the retain flag when it
		// (re)subscribes: refused, and again on every reconnect.
		rid := "r1"
		c.dash.publish(t, c.tp.Command("lockdown"), c.body(rid, map[string]any{"on": false}), true)
		c.dash.settle(t)
		late := newCmdRig(t, c.b, func(cfg *mqtt.Config) { cfg.ClientID = "late" }) // another link subscribing now
		late.dash.waitUntil(t, "the retained refusal", func(m []message) bool {
			for _, p := range late.answers(t, m, rid) {
				if p.Error != nil && p.Error.Type == mqtt.ErrRetained {
					return true
				}
			}
			return false
		}, nil)
		eventually(t, "the retained refusal's event", func() bool { return late.hasEvent(agent.EventCommandRejected, rid, mqtt.ErrRetained) })
		assert.Empty(t, late.doors.Calls())
		c.dash.publish(t, c.tp.Command("lockdown"), nil, true) // clear it
		late.stop()

		// Replayed after a reconnect: the broker restarts, the link
		// reconnects, the same command comes again and is refused.
		c.b.Stop(t)
		c.b.Start(t)
		c.dash = newDashboard(t, c.b.URL(), nil, c.tp.Response(), c.tp.Status())
		c.waitOnline(t, 1)
		// The replay is built now, after waitOnline moved the clock through
		// the reconnect: the refusal seen is the duplicate one, not an expiry.
		r = c.final(t, "unlock", valid, c.body(valid, map[string]any{"door": "front", "duration_s": 3}), false)
		require.NotNil(t, r.Error)
		assert.Equal(t, mqtt.ErrDuplicate, r.Error.Type)
		assert.GreaterOrEqual(t, c.link.Reconnects(), int64(1))
	})
}

func TestSignedCommands(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	c := newCmdRig(t, startMochi(t, nil), func(cfg *mqtt.Config) { cfg.CommandKey = key })
	unlock := c.tp.Command("unlock")

	id := c.newID()
	r := c.final(t, "unlock", id, mqtt.Sign(key, unlock, c.body(id, map[string]any{"door": "front"})), false)
	assert.Equal(t, mqtt.StatusSuccess, r.Status, "a good signature runs")

	for _, tc := range []struct {
		name    string
		payload func(id string) []byte
		want    string
	}{
		{"unsigned", func(id string) []byte { return c.body(id, map[string]any{"door": "front"}) }, mqtt.ErrSignatureMissing},
		{"other key", func(id string) []byte {
			return mqtt.Sign([]byte("another key of 32 bytes........."), unlock, c.body(id, map[string]any{"door": "front"}))
		}, mqtt.ErrSignatureInvalid},
		{"other topic", func(id string) []byte {
			return mqtt.Sign(key, c.tp.Command("lockdown"), c.body(id, map[string]any{"door": "front"}))
		}, mqtt.ErrSignatureInvalid},
		{"tampered", func(id string) []byte {
			p := mqtt.Sign(key, unlock, c.body(id, map[string]any{"door": "front", "duration_s": 1}))
			return []byte(strings.Replace(string(p), `"duration_s":1`, `"duration_s":9`, 1))
		}, mqtt.ErrSignatureInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := c.newID()
			r := c.final(t, "unlock", id, tc.payload(id), false)
			require.NotNil(t, r.Error)
			assert.Equal(t, tc.want, r.Error.Type)
		})
	}
	assert.Len(t, c.doors.Calls(), 1)
}

type guardUntrusted struct{}

func (guardUntrusted) Untrusted() bool { return true }

func TestUntrustedClockPolicy(t *testing.T) {
	for name, edit := range map[string]func(*mqtt.Config){
		"telemetry":   func(cfg *mqtt.Config) { cfg.Telemetry = telemetryUntrusted{} },
		"clock guard": func(cfg *mqtt.Config) { cfg.ClockGuard = guardUntrusted{} }, // wins over telemetry saying trusted
	} {
		t.Run(name, func(t *testing.T) { testUntrustedClock(t, edit) })
	}
}

func testUntrustedClock(t *testing.T, edit func(*mqtt.Config)) {
	c := newCmdRig(t, startMochi(t, nil), edit)
	id := c.newID()
	r := c.final(t, "unlock", id, c.body(id, map[string]any{"door": "front"}), false)
	require.NotNil(t, r.Error)
	assert.Equal(t, mqtt.ErrClockNotTrusted, r.Error.Type)

	// Lockdown on only makes the door safer: it runs, even "expired" by a
	// clock nobody trusts.
	id = c.newID()
	r = c.final(t, "lockdown", id, c.body(id, map[string]any{"on": true, "expires_at": t0.Add(-time.Hour).Format(time.RFC3339)}), false)
	assert.Equal(t, mqtt.StatusSuccess, r.Status)
	id = c.newID()
	r = c.final(t, "lockdown", id, c.body(id, map[string]any{"on": false}), false)
	require.NotNil(t, r.Error)
	assert.Equal(t, mqtt.ErrClockNotTrusted, r.Error.Type)
}

type telemetryUntrusted struct{}

func (telemetryUntrusted) Telemetry(context.Context) mqtt.Telemetry {
	return mqtt.Telemetry{Version: "1.2.3", ClockStatus: "unsynchronized"}
}

func TestActionCommands(t *testing.T) {
	c := newCmdRig(t, startMochi(t, nil), nil)
	allMsgs := newDashboard(t, c.b.URL(), nil, "#")

	id := c.newID()
	rs := c.send(t, "access_code_create", id, c.body(id, map[string]any{"door": "front", "name": "cleaner"}), false)
	final := rs[len(rs)-1]
	require.Equal(t, mqtt.StatusSuccess, final.Status, final.Error)
	res := final.Result.(map[string]any)
	assert.Equal(t, secretPIN, res["pin"], "the create response carries the PIN")
	assert.Equal(t, "ac_1", res["access_code"].(map[string]any)["id"])

	id2 := c.newID()
	r := c.final(t, "access_code_create", id2, c.body(id2, map[string]any{"door": "back"}), false)
	require.NotNil(t, r.Error)
	assert.Equal(t, "salto_site_user_not_subscribed", r.Error.Type)

	id3 := c.newID()
	r = c.final(t, "access_code_list", id3, c.body(id3, nil), false)
	assert.Equal(t, mqtt.StatusSuccess, r.Status)
	id4 := c.newID()
	r = c.final(t, "access_code_delete", id4, c.body(id4, map[string]any{"access_code_id": "ac_1"}), false)
	assert.Equal(t, mqtt.StatusSuccess, r.Status)
	id5 := c.newID()
	r = c.final(t, "enroll", id5, c.body(id5, map[string]any{"door": "front", "tag_number": "12345678"}), false)
	assert.Equal(t, mqtt.StatusSuccess, r.Status)
	assert.Equal(t, "12345678", r.Result.(map[string]any)["tag_number"])
	id6 := c.newID()
	r = c.final(t, "sync", id6, c.body(id6, nil), false)
	assert.Equal(t, mqtt.StatusSuccess, r.Status)
	id7 := c.newID()
	r = c.final(t, "office_mode", id7, c.body(id7, map[string]any{"door": "back", "on": true, "until": t0.Add(8 * time.Hour).Format(time.RFC3339)}), false)
	assert.Equal(t, mqtt.StatusSuccess, r.Status)
	assert.Contains(t, c.doors.Calls(), "office_mode back true "+id7)

	// The PIN went out exactly once, in that response, and nowhere else:
	// not in any event (recorded or published) and in no other message.
	eventually(t, "every attempt recorded", func() bool { return c.hasEvent(agent.EventCommandSucceeded, id7, "") })
	eventually(t, "the outbox drained", func() bool { return c.outbox.depth() == 0 })
	for _, e := range c.outbox.events() {
		b, _ := json.Marshal(e)
		assert.NotContains(t, string(b), secretPIN)
	}
	n := 0
	for _, m := range allMsgs.all() {
		if strings.Contains(string(m.Payload), secretPIN) {
			n++
			assert.Equal(t, c.tp.Response(), m.Topic)
		}
	}
	assert.Equal(t, 1, n, "the PIN was published exactly once")
}

// stubbornDoors refuses office mode at front and cannot reach back.
type stubbornDoors struct{ *fakeDoors }

func (d stubbornDoors) OfficeMode(_ context.Context, door string, _ agent.OfficeModeCommand) (agent.CommandResult, error) {
	if door == "back" {
		return agent.CommandResult{}, agent.ErrControllerStopped
	}
	return agent.CommandResult{Reason: agent.CommandLockdown, Detail: "office mode is not available during lockdown"}, nil
}

// TestOneOutcomeEvent: a door's refusal after pending is recorded once, by
// the door; a failure to reach a door is the link's command_failed, and it
// wins over refusals of the same command at other doors.
func TestOneOutcomeEvent(t *testing.T) {
	c := newCmdRig(t, startMochi(t, nil), func(cfg *mqtt.Config) { cfg.Doors = stubbornDoors{newFakeDoors("front", "back")} })
	front := c.newID()
	r := c.final(t, "office_mode", front, c.body(front, map[string]any{"on": true, "door": "front"}), false)
	require.NotNil(t, r.Error)
	assert.Equal(t, "door_lockdown", r.Error.Type)
	all := c.newID()
	r = c.final(t, "office_mode", all, c.body(all, map[string]any{"on": true}), false)
	require.NotNil(t, r.Error)
	assert.Equal(t, mqtt.ErrActionFailed, r.Error.Type, "the unreachable door wins over the refusing one")
	eventually(t, "command_failed", func() bool { return c.hasEvent(agent.EventCommandFailed, all, mqtt.ErrActionFailed) })
	var recorded []string
	for _, e := range c.outbox.events() {
		if e.CommandID == front || e.CommandID == all {
			recorded = append(recorded, e.CommandID+" "+string(e.Type))
		}
	}
	assert.Equal(t, []string{all + " command_failed"}, recorded, "a refusal is the door's to record")
}
