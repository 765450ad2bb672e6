//go:build fleet

package fleet_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/cloud/mqtt"
	"github.com/portier-io/portier/cloud/mqtt/fleet"
)

// fleetQueue is the consumer's queue: a quorum queue (replicated on every
// node, each message fsynced on a majority before RabbitMQ confirms it, so
// before the gateway gets its PUBACK) bound to every event of the site.
// The MQTT plugin publishes into amq.topic with '/' turned into '.'.
const (
	fleetQueue   = "portier-fleet-events"
	fleetBinding = "portier." + site + ".*.event.*"
)

// consumer reads the fleet's events from the quorum queue over AMQP 0-9-1,
// the way a dashboard backend consumes a RabbitMQ fleet without losing
// events while nodes come and go: it reconnects to any live node and acks
// each event once it is tallied.
type consumer struct {
	urls        []string // AMQP, one per node
	tally       *fleet.Tally
	redelivered atomic.Int64
	reconnects  atomic.Int64
	bad         atomic.Int64
	mu          sync.Mutex
	lastErr     error
}

// declareQueue declares and binds the queue before any gateway publishes.
func declareQueue(t testing.TB, url string) {
	t.Helper()
	conn, err := amqp.Dial(url)
	require.NoError(t, err)
	defer conn.Close()
	ch, err := conn.Channel()
	require.NoError(t, err)
	_, err = ch.QueueDeclare(fleetQueue, true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
	require.NoError(t, err)
	require.NoError(t, ch.QueueBind(fleetQueue, fleetBinding, "amq.topic", false, nil))
}

// run consumes until ctx ends, moving to the next node whenever the
// connection or channel closes.
func (c *consumer) run(ctx context.Context) {
	for i := 0; ctx.Err() == nil; i++ {
		err := c.consume(ctx, c.urls[i%len(c.urls)], i)
		if ctx.Err() != nil {
			return
		}
		c.mu.Lock()
		c.lastErr = err
		c.mu.Unlock()
		c.reconnects.Add(1)
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond): // then the next node
		}
	}
}

// connNo numbers the connection, for the tally's order check.
func (c *consumer) consume(ctx context.Context, url string, connNo int) error {
	conn, err := amqp.DialConfig(url, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second), Heartbeat: 5 * time.Second})
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	if err := ch.Qos(1000, 0, false); err != nil {
		return err
	}
	deliveries, err := ch.ConsumeWithContext(ctx, fleetQueue, "", false, false, false, false, nil)
	if err != nil {
		return err
	}
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-closed:
			return fmt.Errorf("connection closed: %v", err)
		case d, ok := <-deliveries:
			if !ok {
				return fmt.Errorf("consumer on %s ended", url)
			}
			var e mqtt.EventPayload
			if err := json.Unmarshal(d.Body, &e); err != nil || e.EventID == "" {
				c.bad.Add(1)
			} else {
				c.tally.Add(fleet.Delivery{Gateway: e.GatewayID, ID: e.EventID, Seq: e.Seq, Conn: connNo, Redelivered: d.Redelivered})
			}
			if d.Redelivered {
				c.redelivered.Add(1)
			}
			if err := d.Ack(false); err != nil {
				return fmt.Errorf("ack: %w", err)
			}
		}
	}
}

// retainedCheck is what fresh subscribers found as retained state.
type retainedCheck struct {
	wrong      []string // on the node each gateway is connected to: must be empty
	otherOK    int      // on the other nodes: current
	otherStale int      // present but not current (an old status, an old door state)
	otherNone  int      // nothing retained
}

// checkRetained subscribes a fresh client per node to the exact status and
// door state topics of every gateway (RabbitMQ 3.x sends no retained
// message to a wildcard filter) and compares what it is given with what
// each gateway's state is now.
func checkRetained(t testing.TB, c *cluster, gws []gateway, node map[string]int) retainedCheck {
	t.Helper()
	var res retainedCheck
	for n := 1; n <= len(c.urls); n++ {
		p := mustDial(t, c.urls[n-1], "", nil)
		var filters []string
		for _, g := range gws {
			tp := mqtt.Topics{Prefix: mqtt.DefaultPrefix, Site: site, Gateway: g.ID()}
			filters = append(filters, tp.Status())
			for door := range g.Want() {
				filters = append(filters, tp.DoorState(door))
			}
		}
		for len(filters) > 0 {
			k := min(len(filters), 100)
			p.sub(t, filters[:k]...)
			filters = filters[k:]
		}
		got := map[string]received{}
		for _, m := range p.barrier(t) {
			got[m.topic] = m
		}
		p.client.Disconnect(0)
		for _, g := range gws {
			tp := mqtt.Topics{Prefix: mqtt.DefaultPrefix, Site: site, Gateway: g.ID()}
			home := node[g.ID()] == n
			verdict := func(topic string, current func(string) bool) {
				m, ok := got[topic]
				switch {
				case home && !ok:
					res.wrong = append(res.wrong, fmt.Sprintf("node %d: nothing retained on %s", n, topic))
				case home && !current(m.payload):
					res.wrong = append(res.wrong, fmt.Sprintf("node %d: %s is %s", n, topic, m.payload))
				case home:
				case !ok:
					res.otherNone++
				case !current(m.payload):
					res.otherStale++
				default:
					res.otherOK++
				}
			}
			verdict(tp.Status(), func(s string) bool {
				var st mqtt.StatusPayload
				return json.Unmarshal([]byte(s), &st) == nil && st.State == mqtt.StateOnline
			})
			for door, want := range g.Want() {
				verdict(tp.DoorState(door), func(s string) bool {
					var st mqtt.DoorStatePayload
					return json.Unmarshal([]byte(s), &st) == nil && want(st)
				})
			}
		}
	}
	return res
}
