// Package mqtttest runs an embedded MQTT broker (mochi) on loopback: the
// broker of the tests and of `make demo`.
//
// mochi's own TCP listener races its Close against connections still being
// established (mochi-mqtt/server#541) and can deadlock there (Close takes a
// read lock twice while a departing client waits for the write lock). This
// package serves mochi through its own listener, which closes every
// connection and waits for it to be torn down before mochi's Close looks at
// its clients, so a broker can be stopped at any moment, also under -race.
package mqtttest

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Options configure a Broker. The zero value is an open broker on a free
// loopback port.
type Options struct {
	// Addr is host:port to listen on; empty means 127.0.0.1 on a free port.
	Addr string
	// TLS, when set, makes the listener TLS only (scheme "ssl").
	TLS *tls.Config
	// Username and Password, when Username is set, are the only
	// credentials accepted; otherwise every client may connect.
	Username, Password string
	// Logger receives mochi's log; nil discards it.
	Logger *slog.Logger
}

// Broker is a running embedded broker.
type Broker struct {
	srv    *mochi.Server
	ln     *listener
	scheme string
	subs   atomic.Int32 // inline subscription ids handed out
}

// Start starts a broker. It is serving when Start returns.
func Start(o Options) (*Broker, error) {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	// A slow subscriber (a test under the race detector, a paused demo
	// terminal) must not make the broker drop messages: raise the
	// per-client queues well above what a test or a demo sends.
	caps := mochi.NewDefaultServerCapabilities()
	caps.MaximumInflight = 65535
	caps.MaximumClientWritesPending = 1 << 20
	srv := mochi.New(&mochi.Options{InlineClient: true, Capabilities: caps, Logger: o.Logger})
	if err := srv.AddHook(&auth{user: o.Username, password: o.Password}, nil); err != nil {
		return nil, fmt.Errorf("broker auth hook: %w", err)
	}
	ln := &listener{id: "mqtttest", addr: o.Addr, tls: o.TLS, conns: map[net.Conn]struct{}{}}
	if err := srv.AddListener(ln); err != nil {
		return nil, fmt.Errorf("broker listen on %s: %w", o.Addr, err)
	}
	if err := srv.Serve(); err != nil {
		_ = srv.Close()
		return nil, fmt.Errorf("broker serve: %w", err)
	}
	b := &Broker{srv: srv, ln: ln, scheme: "tcp"}
	if o.TLS != nil {
		b.scheme = "ssl"
	}
	return b, nil
}

// Addr is the host:port the broker listens on.
func (b *Broker) Addr() string { return b.ln.Address() }

// URL is the broker's address as paho takes it (tcp:// or ssl://).
func (b *Broker) URL() string { return b.scheme + "://" + b.Addr() }

// Subscribe delivers every message matching filter to fn, inside the
// broker (no network client). fn must not block for long. Each call is its
// own subscription: mochi delivers a message once per inline subscription
// id, so overlapping filters under one id would starve all but one.
func (b *Broker) Subscribe(filter string, fn func(topic string, payload []byte)) error {
	return b.srv.Subscribe(filter, int(b.subs.Add(1)), func(_ *mochi.Client, _ packets.Subscription, pk packets.Packet) {
		fn(pk.TopicName, pk.Payload)
	})
}

// Publish publishes payload on topic at QoS 1 from inside the broker, as a
// dashboard would.
func (b *Broker) Publish(topic string, payload []byte, retain bool) error {
	return b.srv.Publish(topic, payload, retain, 1)
}

// Close disconnects every client and stops the broker. The address is free
// again when Close returns.
func (b *Broker) Close() error { return b.srv.Close() }

// auth accepts everyone, or only one user/password pair. mochi's auth hook
// package would pull in a YAML module this repository does not need.
type auth struct {
	mochi.HookBase
	user, password string
}

func (*auth) ID() string { return "mqtttest-auth" }
func (*auth) Provides(b byte) bool {
	return b == mochi.OnConnectAuthenticate || b == mochi.OnACLCheck
}
func (a *auth) OnConnectAuthenticate(_ *mochi.Client, pk packets.Packet) bool {
	return a.user == "" || string(pk.Connect.Username) == a.user && string(pk.Connect.Password) == a.password
}
func (*auth) OnACLCheck(*mochi.Client, string, bool) bool { return true }

// listener is a mochi listener whose Close is safe at any moment: it stops
// accepting, closes every open connection and waits until mochi has
// finished with each of them.
type listener struct {
	id, addr string
	tls      *tls.Config

	ln    net.Listener // set by Init, before Serve and Close
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	shut  bool
	wg    sync.WaitGroup // one per connection being served
}

func (l *listener) Init(*slog.Logger) error {
	ln, err := net.Listen("tcp", l.addr)
	if err != nil {
		return err
	}
	if l.tls != nil {
		ln = tls.NewListener(ln, l.tls)
	}
	l.ln = ln
	return nil
}

func (l *listener) ID() string       { return l.id }
func (l *listener) Protocol() string { return "tcp" }
func (l *listener) Address() string {
	if l.ln != nil {
		return l.ln.Addr().String()
	}
	return l.addr
}

func (l *listener) Serve(establish listeners.EstablishFn) {
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				continue // a failed handshake or an aborted connection
			}
			return
		}
		l.mu.Lock()
		if l.shut {
			l.mu.Unlock()
			_ = conn.Close()
			return
		}
		l.conns[conn] = struct{}{}
		l.wg.Add(1)
		l.mu.Unlock()
		go func() {
			defer l.wg.Done()
			_ = establish(l.id, conn) // a refused or dropped client is not the broker's error
			_ = conn.Close()
			l.mu.Lock()
			delete(l.conns, conn)
			l.mu.Unlock()
		}()
	}
}

// Close ignores mochi's closeClients callback on purpose: calling it while
// clients attach is what deadlocks mochi. Closing the connections makes
// every client's read loop end, and mochi cleans each one up itself.
func (l *listener) Close(listeners.CloseFn) {
	l.mu.Lock()
	l.shut = true
	for c := range l.conns {
		_ = c.Close()
	}
	l.mu.Unlock()
	_ = l.ln.Close()
	l.wg.Wait()
}
