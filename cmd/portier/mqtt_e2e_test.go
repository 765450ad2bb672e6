package main_test

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/cloud/mqtt"
	"github.com/portier-io/portier/cloud/mqtt/mqtttest"
)

type message struct {
	topic   string
	payload map[string]any
}

// TestRunMQTT runs the real agent against an embedded broker: events reach
// the broker, a remote unlock is answered and acted on, a replay is refused.
func TestRunMQTT(t *testing.T) {
	srv, err := mqtttest.Start(mqtttest.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, srv.Close()) })

	capture := captureContract(t, srv, mqtt.Topics{Site: "site1", Gateway: "e2e"})
	msgs := make(chan message, 1000)
	require.NoError(t, srv.Subscribe("portier/site1/e2e/#", func(topic string, payload []byte) {
		var m map[string]any
		json.Unmarshal(payload, &m)
		msgs <- message{topic: topic, payload: m}
	}))
	// await finds a matching message among everything received so far, or
	// waits for it: messages on other topics may arrive in any order. It
	// fails only when no message at all arrived for 60 s.
	var seen []message
	await := func(topic string, match func(map[string]any) bool) map[string]any {
		t.Helper()
		for i := 0; ; i++ {
			for ; i < len(seen); i++ {
				if seen[i].topic == topic && match(seen[i].payload) {
					return seen[i].payload
				}
			}
			select {
			case m := <-msgs:
				seen = append(seen, m)
				i--
			case <-time.After(60 * time.Second):
				t.Fatalf("nothing on %s: no message at all for 60s", topic)
				return nil
			}
		}
	}
	is := func(k, v string) func(map[string]any) bool {
		return func(m map[string]any) bool { return m[k] == v }
	}

	g := newGateway(t, "300ms", fmt.Sprintf("clock_sync_check: \"off\"\nmqtt:\n  broker: tcp://%s\n  site_id: site1\n  telemetry_interval: 1s\n", srv.Addr()))
	g.start()
	await("portier/site1/e2e/status", is("state", "online"))

	g.sim("tap front 04:A1:B2:C3:D4:E5:F6")
	ev := await("portier/site1/e2e/event/access", is("type", "access_granted"))
	assert.Equal(t, "front", ev["door"])
	assert.NotEmpty(t, ev["event_id"])
	assert.Contains(t, fmt.Sprint(ev), "Ada Lovelace")

	cmd := fmt.Sprintf(`{"id":"e2e-unlock-1","expires_at":%q,"actor":"dashboard:test","door":"front"}`, time.Now().Add(time.Minute).UTC().Format(time.RFC3339))
	require.NoError(t, srv.Publish("portier/site1/e2e/cmd/unlock", []byte(cmd), false))
	await("portier/site1/e2e/response", func(m map[string]any) bool { return m["id"] == "e2e-unlock-1" && m["status"] == "success" })
	remote := await("portier/site1/e2e/event/command", is("type", "remote_unlock"))
	assert.Equal(t, "dashboard:test", remote["actor"])

	require.NoError(t, srv.Publish("portier/site1/e2e/cmd/unlock", []byte(cmd), false))
	dup := await("portier/site1/e2e/response", func(m map[string]any) bool { return m["id"] == "e2e-unlock-1" && m["status"] == "error" })
	assert.Contains(t, fmt.Sprint(dup["error"]), "duplicate")

	// No salto: section, so a sync command cannot run, and says so.
	syncCmd := fmt.Sprintf(`{"id":"e2e-sync-1","expires_at":%q,"actor":"dashboard:test"}`, time.Now().Add(time.Minute).UTC().Format(time.RFC3339))
	require.NoError(t, srv.Publish("portier/site1/e2e/cmd/sync", []byte(syncCmd), false))
	unavailable := await("portier/site1/e2e/response", func(m map[string]any) bool { return m["id"] == "e2e-sync-1" && m["status"] == "error" })
	assert.Contains(t, fmt.Sprint(unavailable["error"]), "unavailable")

	await("portier/site1/e2e/telemetry", func(m map[string]any) bool { return m["schema"] != nil })
	out, errOut, code := runPortier(t, g.env, "status", "--config", g.cfg)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "mqtt:   connected (tcp://"+srv.Addr()+")", "status shows the broker link")
	assert.Equal(t, 0, g.signal(syscall.SIGTERM))
	await("portier/site1/e2e/status", is("state", "offline"))
	assert.False(t, strings.Contains(g.stderr.String(), "level=ERROR"), g.stderr.String())
	capture.verify()
}

// TestStatusShowsABrokerItCannotReach: an installer with a wrong broker
// address sees it in portier status, with the reason, while doors work.
func TestStatusShowsABrokerItCannotReach(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens there now
	g := newGateway(t, "300ms", fmt.Sprintf("clock_sync_check: \"off\"\nmqtt:\n  broker: tcp://%s\n  site_id: site1\n", addr))
	g.start()
	var out string
	eventually(t, "status to report the link down", func() bool {
		var code int
		out, _, code = runPortier(t, g.env, "status", "--config", g.cfg)
		return code == 0 && strings.Contains(out, "connection refused")
	})
	assert.Contains(t, out, "mqtt:   NOT connected to tcp://"+addr+" since ")
	assert.Contains(t, out, "(retrying; events wait in the outbox)")
	assert.Equal(t, 0, g.signal(syscall.SIGTERM))
}
