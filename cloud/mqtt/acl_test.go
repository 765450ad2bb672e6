package mqtt_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cloud/mqtt"
)

// documentedACL is the mosquitto acl_file of docs/fleet.md.
func documentedACL(t *testing.T) string {
	t.Helper()
	md, err := os.ReadFile("../../docs/fleet.md")
	require.NoError(t, err)
	doc := string(md)
	const marker = "```text\n# mosquitto acl_file"
	start := strings.Index(doc, marker)
	require.GreaterOrEqual(t, start, 0, "docs/fleet.md has the mosquitto acl_file")
	block := doc[start+len("```text\n"):]
	return block[:strings.Index(block, "```")]
}

// startMosquittoACL runs mosquitto with the documented ACL and a password
// file made by mosquitto_passwd; every user's password is "pw-<user>".
func startMosquittoACL(t *testing.T, users ...string) *mosquittoBroker {
	t.Helper()
	needMosquitto(t)
	dir := t.TempDir()
	acl, passwd := filepath.Join(dir, "acl"), filepath.Join(dir, "passwd")
	require.NoError(t, os.WriteFile(acl, []byte(documentedACL(t)), 0o600))
	tool, err := exec.LookPath("mosquitto_passwd")
	require.NoError(t, err, "mosquitto_passwd comes with the mosquitto package")
	for i, u := range users {
		args := []string{"-b", passwd, u, "pw-" + u}
		if i == 0 {
			args = append([]string{"-c"}, args...)
		}
		out, err := exec.Command(tool, args...).CombinedOutput()
		require.NoError(t, err, "mosquitto_passwd: %s", out)
	}
	// Debian's default queue limit: with max_queued_messages 0 (no limit,
	// the other tests' setting) mosquitto 2.0.11 closes the connection right
	// after acknowledging a denied publish.
	return startMosquitto(t, fmt.Sprintf("allow_anonymous false\npassword_file %s\nacl_file %s\nmax_queued_messages 1000\n", passwd, acl))
}

// rawClient is a plain paho client logged in as user.
func rawClient(t *testing.T, url, user string) paho.Client {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("raw-%s-%d", user, time.Now().UnixNano())).
		SetUsername(user).SetPassword("pw-" + user).SetAutoReconnect(false))
	tok := c.Connect()
	require.True(t, tok.WaitTimeout(waitFor))
	require.NoError(t, tok.Error())
	t.Cleanup(func() { c.Disconnect(0) })
	return c
}

// TestACLConfinesAGateway runs the documented mosquitto ACL (Debian's
// mosquitto 2.0.11): a gateway logged in as itself works (status, door
// states, events, commands, Home Assistant). One publishing under another
// gateway's topics gets its PUBACK — MQTT 3.1.1 has no way to say "denied"
// — but no subscriber ever receives the message. One subscribing to
// another gateway's commands is granted the subscription but never given
// such a command. A link configured with another gateway's id therefore
// cannot tell: its events are acknowledged and lost at the broker.
func TestACLConfinesAGateway(t *testing.T) {
	b := startMosquittoACL(t, "dashboard", "gw1", "gw2")
	tp1 := mqtt.Topics{Prefix: "portier", Site: "site1", Gateway: "gw1"}
	tp2 := mqtt.Topics{Prefix: "portier", Site: "site1", Gateway: "gw2"}
	dash := newDashboardAuth(t, b.URL(), nil, "dashboard", "pw-dashboard", "portier/#")

	// The gateway as itself, Home Assistant unlock on: every subscription is
	// granted (the link refuses to run otherwise) and everything arrives.
	gw1 := newRig(t, b.URL(), func(c *mqtt.Config) {
		c.Username, c.Password = "gw1", "pw-gw1"
		c.HomeAssistant = mqtt.HomeAssistant{Enabled: true, AllowUnlock: true}
	}).start(t)
	require.NoError(t, gw1.outbox.Record(context.Background(), agent.Event{Type: agent.EventAccessGranted, Door: "front"}))
	dash.waitUntil(t, "gw1's status, door states and event", func(m []message) bool {
		return len(on(m, tp1.Status())) > 0 && len(on(m, tp1.DoorState("back"))) > 0 && len(on(m, tp1.Event(mqtt.CategoryAccess))) > 0
	}, nil)
	c := &cmdRig{rig: gw1, tp: tp1, dash: dash}
	body := fmt.Sprintf(`{"id":"acl-1","expires_at":%q,"actor":"dashboard","on":true}`, time.Now().Add(time.Minute).UTC().Format(time.RFC3339))
	assert.Equal(t, mqtt.StatusSuccess, c.final(t, "lockdown", "acl-1", []byte(body), false).Status, "the dashboard commands gw1")

	// gw1's credentials publishing as gw2: acknowledged, never delivered.
	raw := rawClient(t, b.URL(), "gw1")
	tok := raw.Publish(tp2.Event(mqtt.CategoryAccess), 1, false, `{"forged":true}`)
	require.True(t, tok.WaitTimeout(waitFor))
	assert.NoError(t, tok.Error(), "the broker acknowledges the denied publish: the publisher cannot tell")
	// Barrier: mosquitto handles one connection's packets in order, so the
	// forged message would have arrived before this one.
	tok = raw.Publish(tp1.Event(mqtt.CategorySystem), 1, false, `{"barrier":true}`)
	require.True(t, tok.WaitTimeout(waitFor))
	require.NoError(t, tok.Error())
	msgs := dash.waitUntil(t, "the barrier", func(m []message) bool { return len(on(m, tp1.Event(mqtt.CategorySystem))) > 0 }, nil)
	assert.Empty(t, on(msgs, tp2.Event(mqtt.CategoryAccess)), "nobody receives what gw1 published as gw2")

	// gw1's credentials subscribing to gw2's commands: mosquitto grants the
	// subscription but delivers nothing the ACL does not let gw1 read.
	got := make(chan string, 10)
	sub := raw.SubscribeMultiple(map[string]byte{tp2.Commands(): 1, tp1.Commands(): 1}, func(_ paho.Client, m paho.Message) { got <- m.Topic() })
	require.True(t, sub.WaitTimeout(waitFor))
	require.NoError(t, sub.Error())
	t.Logf("SUBACK for another gateway's commands: %#x", sub.(*paho.SubscribeToken).Result()[tp2.Commands()])
	dash.publish(t, tp2.Command("unlock"), []byte(`{"id":"for-gw2"}`), false)
	dash.publish(t, tp1.Command("barrier"), []byte(`{"id":"for-gw1"}`), false)
	select {
	case topic := <-got:
		assert.Equal(t, tp1.Command("barrier"), topic, "gw1 gets its own command, and not gw2's sent before it")
	case <-time.After(waitFor):
		t.Fatal("gw1 did not receive its own command")
	}

	// A link configured as gw2 with gw1's credentials: it cannot tell. It
	// comes up, its event is acknowledged and leaves the outbox, and nobody
	// receives it: a dashboard notices only that gw2 never says online.
	wrong := newRig(t, b.URL(), func(c *mqtt.Config) {
		c.Username, c.Password = "gw1", "pw-gw1"
		c.Topics.Gateway = "gw2"
		c.ClientID = "portier-site1-gw2-misconfigured"
	}).start(t)
	require.NoError(t, wrong.outbox.Record(context.Background(), agent.Event{Type: agent.EventAccessGranted, Door: "front"}))
	eventually(t, "the misconfigured link to believe its event delivered", func() bool {
		return wrong.link.Status().Connected && wrong.outbox.depth() == 0
	})
	barrier := "portier/site1/nobody/cmd/barrier"
	dash.publish(t, barrier, []byte("{}"), false)
	msgs = dash.waitUntil(t, "the dashboard's barrier", func(m []message) bool { return len(on(m, barrier)) > 0 }, nil)
	for _, m := range msgs {
		if !strings.HasPrefix(m.Topic, tp2.Command("")) { // the dashboard's own command to gw2 above
			assert.NotContains(t, m.Topic, "/gw2/", "nothing published as gw2 reaches a subscriber")
		}
	}
}
