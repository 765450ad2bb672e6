package mqtt_test

import (
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/cloud/mqtt"
)

// cutProxy forwards TCP to a broker; cut drops every connection at once, as
// a network failure would.
type cutProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &cutProxy{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(u, c); u.Close() }()
			go func() { _, _ = io.Copy(c, u); c.Close() }()
		}
	}()
	t.Cleanup(func() { ln.Close(); p.cut() })
	return p
}

func (p *cutProxy) URL() string { return "tcp://" + p.ln.Addr().String() }

func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// TestLastWillAndReconnect: when the connection dies the broker publishes
// the will (offline); the link reconnects by itself, says online again and
// has its subscriptions back (a command is answered).
func TestLastWillAndReconnect(t *testing.T) {
	brokers(t, func(t *testing.T, newBroker func(*testing.T) testBroker) {
		b := newBroker(t)
		addr := b.URL()[len("tcp://"):]
		proxy := newCutProxy(t, addr)
		tp := mqtt.Topics{Prefix: "portier", Site: "site1", Gateway: "gw1"}
		d := newDashboard(t, b.URL(), nil, tp.Status(), tp.Response())
		r := newRig(t, proxy.URL(), nil).start(t)
		states := func(m []message) []string {
			var out []string
			for _, s := range on(m, tp.Status()) {
				out = append(out, decode[mqtt.StatusPayload](t, s.Payload).State)
			}
			return out
		}
		d.waitUntil(t, "online", func(m []message) bool { return len(states(m)) == 1 }, nil)
		proxy.cut()
		msgs := d.waitUntil(t, "the will, then online again", func(m []message) bool { return len(states(m)) == 3 }, nil)
		assert.Equal(t, []string{"online", "offline", "online"}, states(msgs))
		assert.EqualValues(t, 1, r.link.Reconnects())

		// The command subscription is back: a command is answered.
		c := &cmdRig{rig: r, tp: tp, dash: d}
		body := fmt.Sprintf(`{"id":"after-reconnect","expires_at":%q,"actor":"t","on":true}`, time.Now().Add(time.Minute).UTC().Format(time.RFC3339))
		resp := c.final(t, "lockdown", "after-reconnect", []byte(body), false)
		assert.Equal(t, mqtt.StatusSuccess, resp.Status, resp.Error)
	})
}
