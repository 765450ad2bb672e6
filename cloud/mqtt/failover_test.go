package mqtt_test

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cloud/mqtt"
)

// retainedView subscribes a fresh client to exact topics on a broker and
// returns the retained messages it is given, by topic. Exact topics: some
// brokers (RabbitMQ 3.x) deliver no retained message to a wildcard filter.
// A subscription that came before the gateway's publish (it publishes its
// state right after connecting) gets it live instead: that view is
// discarded and a fresh client looks again, a few times at most — a broker
// that does not retain fails every time.
func retainedView(t *testing.T, url string, topics ...string) map[string]message {
	t.Helper()
	var live []string
	for range 5 {
		d := newDashboard(t, url, nil, topics...)
		msgs := d.waitUntil(t, "the retained messages", func(m []message) bool {
			got := map[string]bool{}
			for _, x := range m {
				got[x.Topic] = true
			}
			return len(got) == len(topics)
		}, nil)
		d.client.Disconnect(0)
		out := map[string]message{}
		live = live[:0]
		for _, m := range msgs {
			if _, seen := out[m.Topic]; seen {
				continue // a later publish; the first one tells
			}
			out[m.Topic] = m
			if !m.Retained {
				live = append(live, m.Topic)
			}
		}
		if len(live) == 0 {
			return out
		}
	}
	t.Fatalf("%v never arrived as retained messages", live)
	return nil
}

// TestFailoverRepublishesRetainedState: three independent brokers stand
// for the nodes of a cluster whose retained-message store is per node
// (RabbitMQ 3.x). The node a gateway is connected to dies; the gateway
// connects to another one and publishes everything a dashboard reads as
// retained there — status, every door's current state (including a change
// made while it was away), telemetry — announces itself to Home Assistant
// again, and delivers the events recorded meanwhile.
func TestFailoverRepublishesRetainedState(t *testing.T) {
	nodes := []*mochiBroker{startMochi(t, nil), startMochi(t, nil), startMochi(t, nil)}
	urls := make([]string, len(nodes))
	for i, n := range nodes {
		urls[i] = n.URL()
	}
	tp := mqtt.Topics{Prefix: "portier", Site: "site1", Gateway: "gw1", Discovery: "homeassistant"}
	r := newRig(t, urls[0], func(c *mqtt.Config) {
		c.Brokers = urls
		c.Telemetry = telemetryOK{}
		c.HomeAssistant = mqtt.HomeAssistant{Enabled: true}
	}).start(t)
	eventually(t, "the link to connect", func() bool { return r.link.Status().Connected })
	first := r.link.Status().Broker
	require.Contains(t, urls, first)
	retained := []string{tp.Status(), tp.DoorState("front"), tp.DoorState("back"), tp.Telemetry()}
	view := retainedView(t, first, retained...)
	assert.Equal(t, mqtt.StateOnline, decode[mqtt.StatusPayload](t, view[tp.Status()].Payload).State)

	// The node dies; while the gateway is away the front door goes into
	// lockdown and an event is recorded.
	for _, n := range nodes {
		if n.URL() == first {
			n.Stop(t)
		}
	}
	r.doors.mu.Lock()
	r.doors.lockdown["front"] = true
	r.doors.mu.Unlock()
	require.NoError(t, r.outbox.Record(context.Background(), agent.Event{Type: agent.EventAccessGranted, Door: "back", ID: "while-away"}))

	var second string
	eventually(t, "the link to connect to another node", func() bool {
		st := r.link.Status()
		second = st.Broker
		return st.Connected && st.Broker != first
	})
	assert.Contains(t, urls, second)
	eventually(t, "the event recorded meanwhile to be delivered", func() bool { return r.outbox.depth() == 0 })

	// A dashboard that comes to the new node later finds the gateway's
	// whole retained state there, current.
	view = retainedView(t, second, retained...)
	st := decode[mqtt.StatusPayload](t, view[tp.Status()].Payload)
	assert.Equal(t, mqtt.StateOnline, st.State)
	assert.Equal(t, []string{"front", "back"}, st.Doors)
	front := decode[mqtt.DoorStatePayload](t, view[tp.DoorState("front")].Payload)
	assert.Equal(t, agent.OverrideLockdown, front.Override, "the state changed while away, not the state before")
	back := decode[mqtt.DoorStatePayload](t, view[tp.DoorState("back")].Payload)
	assert.Equal(t, agent.OverrideNone, back.Override)
	assert.Equal(t, "1.2.3", decode[mqtt.TelemetryPayload](t, view[tp.Telemetry()].Payload).Version)

	// Home Assistant discovery is not retained: it is announced on every
	// connect, and again when Home Assistant says it is online.
	ha := newDashboard(t, second, nil, "homeassistant/+/site1__gw1/+/config")
	before := len(ha.all())
	ha.publish(t, tp.HAStatus(), []byte("online"), false)
	ha.waitUntil(t, "discovery on the new node", func(m []message) bool { return len(configs(t, m[before:])) == 2*haConfigsPerDoor+haTelemetrySensors }, nil)
}

// TestBrokerOrderSpreadsTheFleet: with the default order a fleet of
// gateways configured with the same three nodes spreads over all of them;
// when one node dies, its gateways spread over both survivors instead of
// all falling onto the next node in the list.
func TestBrokerOrderSpreadsTheFleet(t *testing.T) {
	nodes := []*mochiBroker{startMochi(t, nil), startMochi(t, nil), startMochi(t, nil)}
	urls := make([]string, len(nodes))
	for i, n := range nodes {
		urls[i] = n.URL()
	}
	const fleet = 24
	rigs := make([]*rig, fleet)
	for i := range rigs {
		// A seeded source per gateway: a fixed, realistic spread (the
		// default is math/rand/v2).
		src := rand.New(rand.NewPCG(7, uint64(i)))
		rigs[i] = newRig(t, urls[0], func(c *mqtt.Config) {
			c.Brokers = urls
			c.ClientID = "gw-" + string(rune('a'+i))
			c.Topics.Gateway = c.ClientID
			c.Jitter = src.Float64
		}).start(t)
	}
	// perNode waits until every gateway is connected to a node other than
	// dead (a link may still report a node that just died as its own).
	perNode := func(dead string) map[string][]int {
		out := map[string][]int{}
		eventually(t, "every gateway to be connected", func() bool {
			clear(out)
			for i, r := range rigs {
				st := r.link.Status()
				if !st.Connected || st.Broker == dead {
					return false
				}
				out[st.Broker] = append(out[st.Broker], i)
			}
			return true
		})
		return out
	}
	at := perNode("")
	t.Logf("gateways per node: %d %d %d", len(at[urls[0]]), len(at[urls[1]]), len(at[urls[2]]))
	for _, u := range urls {
		assert.NotEmpty(t, at[u], "node %s has gateways", u)
	}

	// The first node of the list dies: its gateways go to both others.
	moved := at[urls[0]]
	require.GreaterOrEqual(t, len(moved), 2)
	nodes[0].Stop(t)
	after := perNode(urls[0])
	assert.Empty(t, after[urls[0]])
	went := map[string]int{}
	for _, i := range moved {
		went[rigs[i].link.Status().Broker]++
	}
	t.Logf("the %d gateways of the dead node went to: %v", len(moved), went)
	assert.Positive(t, went[urls[1]], "some went to the second node")
	assert.Positive(t, went[urls[2]], "some went to the third node")
}

// TestBrokerOrderInOrder: a primary and a standby: the gateway always tries
// the primary first.
func TestBrokerOrderInOrder(t *testing.T) {
	primary, standby := startMochi(t, nil), startMochi(t, nil)
	for i := range 8 {
		src := rand.New(rand.NewPCG(11, uint64(i)))
		r := newRig(t, primary.URL(), func(c *mqtt.Config) {
			c.Brokers = []string{primary.URL(), standby.URL()}
			c.BrokerOrder = mqtt.BrokerInOrder
			c.Jitter = src.Float64
			c.ClientID = "in-order-" + string(rune('a'+i))
		}).start(t)
		eventually(t, "the link to connect", func() bool { return r.link.Status().Connected })
		assert.Equal(t, primary.URL(), r.link.Status().Broker)
	}
	_, err := mqtt.New(mqtt.Config{BrokerOrder: "random"})
	assert.ErrorContains(t, err, `broker order "random": want spread or in_order`)
}
