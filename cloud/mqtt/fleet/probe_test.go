//go:build fleet

package fleet_test

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stall is how long a wait may see nothing move before it fails: a wait is
// bounded on progress, never on its total.
const stall = 90 * time.Second

type received struct {
	topic    string
	payload  string
	retained bool
}

// probe is a plain MQTT client for checking what the broker does.
type probe struct {
	id     string
	client paho.Client
	mu     sync.Mutex
	msgs   []received
	note   chan struct{}
	lost   chan error
	conn   atomic.Pointer[net.Conn]
}

var probeN atomic.Int64

// dial connects a probe to url; edit may change the options (will, clean
// session, credentials).
func dial(t testing.TB, broker, id string, edit func(*paho.ClientOptions)) (*probe, error) {
	t.Helper()
	if id == "" {
		id = fmt.Sprintf("probe-%d-%d", time.Now().UnixNano(), probeN.Add(1))
	}
	p := &probe{id: id, note: make(chan struct{}, 1), lost: make(chan error, 1)}
	o := paho.NewClientOptions().AddBroker(broker).SetClientID(id).SetAutoReconnect(false).
		SetOrderMatters(true).SetConnectTimeout(30 * time.Second).
		SetDefaultPublishHandler(p.handle).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			select {
			case p.lost <- err:
			default:
			}
		}).
		SetCustomOpenConnectionFn(func(u *url.URL, _ paho.ClientOptions) (net.Conn, error) {
			c, err := net.DialTimeout("tcp", u.Host, 30*time.Second)
			if err == nil {
				p.conn.Store(&c)
			}
			return c, err
		})
	if edit != nil {
		edit(o)
	}
	p.client = paho.NewClient(o)
	tok := p.client.Connect()
	if !tok.WaitTimeout(stall) {
		return nil, fmt.Errorf("connect to %s timed out", broker)
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { p.client.Disconnect(0) })
	return p, nil
}

func mustDial(t testing.TB, url, id string, edit func(*paho.ClientOptions)) *probe {
	t.Helper()
	p, err := dial(t, url, id, edit)
	require.NoError(t, err)
	return p
}

func (p *probe) handle(_ paho.Client, m paho.Message) {
	p.mu.Lock()
	p.msgs = append(p.msgs, received{m.Topic(), string(m.Payload()), m.Retained()})
	p.mu.Unlock()
	select {
	case p.note <- struct{}{}:
	default:
	}
}

// sub subscribes at QoS 1 and returns the granted QoS per filter (0x80:
// refused).
func (p *probe) sub(t testing.TB, filters ...string) []byte {
	t.Helper()
	granted, err := p.trySub(filters...)
	require.NoError(t, err)
	return granted
}

// trySub subscribes and reports an error instead of failing the test.
func (p *probe) trySub(filters ...string) ([]byte, error) {
	m := map[string]byte{}
	for _, f := range filters {
		m[f] = 1
	}
	tok := p.client.SubscribeMultiple(m, p.handle)
	if !tok.WaitTimeout(stall) {
		return nil, errors.New("subscribe timed out")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	res := tok.(*paho.SubscribeToken).Result()
	out := make([]byte, len(filters))
	for i, f := range filters {
		out[i] = res[f]
	}
	return out, nil
}

// pub publishes at QoS 1 and waits for the PUBACK.
func (p *probe) pub(t testing.TB, topic, payload string, retained bool) error {
	t.Helper()
	tok := p.client.Publish(topic, 1, retained, payload)
	if !tok.WaitTimeout(stall) {
		return fmt.Errorf("no PUBACK for %s", topic)
	}
	return tok.Error()
}

func (p *probe) all() []received {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]received(nil), p.msgs...)
}

// waitFor waits until cond holds on the messages so far, failing only when
// no message arrived for stall.
func (p *probe) waitFor(t testing.TB, what string, cond func([]received) bool) []received {
	t.Helper()
	for {
		m := p.all()
		if cond(m) {
			return m
		}
		select {
		case <-p.note:
		case <-time.After(stall):
			t.Fatalf("%s: nothing arrived for %s; got %v", what, stall, m)
		}
	}
}

// barrier returns every message delivered before it: it subscribes to a
// topic of its own and publishes there; the broker delivers on one
// connection in order, so what it sent before (retained messages for
// earlier subscriptions included) has arrived once the barrier has.
func (p *probe) barrier(t testing.TB) []received {
	t.Helper()
	topic := "fleet-probe/barrier/" + p.id
	p.sub(t, topic)
	require.NoError(t, p.pub(t, topic, "barrier", false))
	msgs := p.waitFor(t, "the barrier", func(m []received) bool {
		for _, x := range m {
			if x.topic == topic {
				return true
			}
		}
		return false
	})
	var out []received
	for _, x := range msgs {
		if x.topic != topic {
			out = append(out, x)
		}
	}
	return out
}

// cut closes the probe's TCP connection without a DISCONNECT, as a crash
// or a cable pulled would.
func (p *probe) cut() {
	if c := p.conn.Load(); c != nil {
		(*c).Close()
	}
}

func topicsOf(m []received) []string {
	var out []string
	for _, x := range m {
		out = append(out, fmt.Sprintf("%s=%s(retained=%v)", x.topic, x.payload, x.retained))
	}
	return out
}

// TestRabbitMQSemantics finds out what this RabbitMQ does with what Portier
// relies on, across the nodes of one cluster. docs/fleet.md reports it.
func TestRabbitMQSemantics(t *testing.T) {
	c := startCluster(t)
	n1, n2, n3 := c.urls[0], c.urls[1], c.urls[2]
	run := fmt.Sprintf("%d", time.Now().UnixNano())

	t.Run("retained messages are per node and not sent to wildcard filters", func(t *testing.T) {
		topic := "fleet-probe/" + run + "/gw1/status"
		pub := mustDial(t, n1, "", nil)
		require.NoError(t, pub.pub(t, topic, "online", true))

		same := mustDial(t, n1, "", nil)
		same.sub(t, topic)
		got := same.waitFor(t, "the retained message on the node it was published to", func(m []received) bool { return len(m) == 1 })
		assert.Equal(t, received{topic, "online", true}, got[0])

		other := mustDial(t, n2, "", nil)
		other.sub(t, topic)
		assert.Empty(t, topicsOf(other.barrier(t)), "another node of the cluster has no retained message for the topic")

		wild := mustDial(t, n1, "", nil)
		wild.sub(t, "fleet-probe/"+run+"/+/status")
		assert.Empty(t, topicsOf(wild.barrier(t)), "a wildcard filter gets no retained message, even on the same node")
	})

	t.Run("the last will is published cluster-wide and retained on the gateway's node", func(t *testing.T) {
		topic := "fleet-probe/" + run + "/gw2/status"
		live := mustDial(t, n2, "", nil)
		live.sub(t, topic)
		gw := mustDial(t, n1, "", func(o *paho.ClientOptions) { o.SetBinaryWill(topic, []byte("offline"), 1, true) })
		require.NoError(t, gw.pub(t, topic, "online", true))
		live.waitFor(t, "online", func(m []received) bool { return len(m) == 1 })
		gw.cut()
		got := live.waitFor(t, "the will, on another node", func(m []received) bool { return len(m) == 2 })
		assert.Equal(t, received{topic, "offline", false}, got[1])

		on1 := mustDial(t, n1, "", nil)
		on1.sub(t, topic)
		assert.Equal(t, []string{topic + "=offline(retained=true)"}, topicsOf(on1.barrier(t)), "the gateway's node retains the will")
		on3 := mustDial(t, n3, "", nil)
		on3.sub(t, topic)
		assert.Empty(t, topicsOf(on3.barrier(t)), "other nodes retain nothing")
	})

	t.Run("a client id connecting to another node takes over the session", func(t *testing.T) {
		id := "fleet-probe-takeover-" + run
		first := mustDial(t, n1, id, nil)
		mustDial(t, n2, id, nil)
		select {
		case err := <-first.lost:
			t.Logf("the first connection was closed: %v", err)
		case <-time.After(stall):
			t.Fatal("the first connection with the same client id was not closed")
		}
	})

	t.Run("a persistent session keeps QoS 1 messages and is resumed on another node", func(t *testing.T) {
		id := "fleet-probe-session-" + run
		topic := "fleet-probe/" + run + "/session"
		persistent := func(o *paho.ClientOptions) { o.SetCleanSession(false) }
		s := mustDial(t, n1, id, persistent)
		s.sub(t, topic)
		s.client.Disconnect(250)
		pub := mustDial(t, n2, "", nil)
		require.NoError(t, pub.pub(t, topic, "while-away", false))
		// The session's messages arrive before any subscription of this
		// client: the probe's default handler takes them.
		back := mustDial(t, n3, id, persistent)
		got := back.waitFor(t, "the message queued while away", func(m []received) bool { return len(m) == 1 })
		assert.Equal(t, "while-away", got[0].payload)
		// Clean up the durable queue the session left behind.
		mustDial(t, n3, id, nil)
	})

	// With a clean session the MQTT plugin keeps a QoS 1 subscription in a
	// durable (auto-delete) queue named after the client id, on the node the
	// client was connected to, and a QoS 0 one in a transient queue. When
	// that node dies, the durable queue's record stays until the node is back
	// or the cluster force-deletes it (seen after seconds in some runs, not
	// within 90 s in others): meanwhile the same client id cannot subscribe
	// at QoS 1 on any other node. The transient queue goes with its node.
	// This is why the gateway subscribes at QoS 0 (docs/fleet.md).
	t.Run("a QoS 1 subscription is tied to its node; a QoS 0 one is not", func(t *testing.T) {
		id1, id0 := "fleet-probe-qos1-"+run, "fleet-probe-qos0-"+run
		topic := "fleet-probe/" + run + "/cmd/+"
		a := mustDial(t, n3, id1, nil)
		a.sub(t, topic)
		b := mustDial(t, n3, id0, nil)
		tok := b.client.Subscribe(topic, 0, b.handle)
		require.True(t, tok.WaitTimeout(stall))
		require.NoError(t, tok.Error())
		c.kill(t, 3)
		defer c.start(t, 3)

		again := mustDial(t, n1, id1, nil)
		_, err := again.trySub(topic)
		t.Logf("QoS 1 subscription on another node while the first is down: %v", err)

		moved := mustDial(t, n1, id0, nil)
		tok = moved.client.Subscribe(topic, 0, moved.handle)
		require.True(t, tok.WaitTimeout(stall))
		require.NoError(t, tok.Error(), "a QoS 0 subscription moves to another node")
		pub := mustDial(t, n2, "", nil)
		require.NoError(t, pub.pub(t, "fleet-probe/"+run+"/cmd/x", "command", false))
		moved.waitFor(t, "a command on the new node", func(m []received) bool { return len(m) == 1 })
	})
}

// TestRabbitMQTopicPermissions: with the per-gateway permissions of
// docs/fleet.md a gateway publishes and subscribes under its own topics
// only. What it sees when it tries otherwise is what this test records.
func TestRabbitMQTopicPermissions(t *testing.T) {
	c := startCluster(t)
	run := fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000)
	gw, other := "acl"+run+"a", "acl"+run+"b"
	for _, u := range []string{gw, other} {
		c.ctl(t, 1, "add_user", u, "pw-"+u)
		t.Cleanup(func() { c.ctl(t, 1, "delete_user", u) })
		c.ctl(t, 1, "set_permissions", "-p", "/", u, rabbitConfigure, rabbitWrite, rabbitRead)
		c.ctl(t, 1, "set_topic_permissions", "-p", "/", u, "amq.topic", rabbitTopicWrite, rabbitTopicRead)
	}
	admin := mustDial(t, c.urls[1], "", nil) // guest: every topic
	admin.sub(t, "portier/site1/+/event/+")
	login := func(user string) func(*paho.ClientOptions) {
		return func(o *paho.ClientOptions) { o.SetUsername(user).SetPassword("pw-" + user) }
	}

	p := mustDial(t, c.urls[0], "portier-site1-"+gw, login(gw))
	assert.Equal(t, []byte{1}, p.sub(t, "portier/site1/"+gw+"/cmd/+"), "its own commands")
	require.NoError(t, p.pub(t, "portier/site1/"+gw+"/event/access", "mine", false))
	admin.waitFor(t, "the gateway's own event", func(m []received) bool { return len(m) == 1 })

	// Publishing as another gateway.
	err := p.pub(t, "portier/site1/"+other+"/event/access", "forged", false)
	var lost error
	select {
	case lost = <-p.lost:
	case <-time.After(stall):
	}
	t.Logf("publish as another gateway: publish error %v; connection: %v", err, lost)
	require.Error(t, lost, "RabbitMQ closes the connection of a publish it refuses")
	// The admin never receives it: its own next event is the barrier.
	p = mustDial(t, c.urls[0], "portier-site1-"+gw, login(gw))
	require.NoError(t, p.pub(t, "portier/site1/"+gw+"/event/access", "mine-again", false))
	msgs := admin.waitFor(t, "the next own event", func(m []received) bool { return len(m) == 2 })
	assert.Equal(t, []string{"mine", "mine-again"}, []string{msgs[0].payload, msgs[1].payload}, "the forged event never arrived")

	// Subscribing to another gateway's commands.
	granted, err := p.trySub("portier/site1/" + other + "/cmd/+")
	t.Logf("subscribe to another gateway's commands: granted %v, error %v", granted, err)
	assert.True(t, err != nil || (len(granted) == 1 && granted[0] == 0x80), "the subscription is refused")
}
