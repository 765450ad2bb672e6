package mqtt

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/portier-io/portier/agent"
)

// Link is the gateway's MQTT link. Run owns it.
type Link struct {
	cfg     Config
	log     *slog.Logger
	brokers *brokerList

	cur        atomic.Pointer[session] // the connected session, nil between connections
	reconnects atomic.Int64
	published  atomic.Int64
	connected  atomic.Int64             // connections made (reconnects = connected-1)
	down       atomic.Pointer[linkDown] // why and since when the link is down; nil while connected

	outboxMu    sync.Mutex
	depth       int
	oldest      time.Time
	outboxState string

	work    chan struct{} // bounds concurrently running command actions
	syncing atomic.Bool
	dirtyMu sync.Mutex
	dirty   map[string]bool // doors whose state may have changed
	kick    chan struct{}   // signalled when a door became dirty
	// eventTopics holds the topic of each event category, built once: the
	// drain publishes tens of thousands of events a second.
	eventTopics map[string]string
	started     time.Time
	runCtx      context.Context
	actions     sync.WaitGroup
	// discoveryMu serialises announcing to Home Assistant: a connect and an
	// "online" from Home Assistant may announce at once, and each reads and
	// rewrites the set announced last.
	discoveryMu sync.Mutex
	refused     *refusals // summarises refused commands
}

// session is one broker connection. paho never reconnects it: when it is
// lost, every token it issued fails and the supervisor makes a new one.
type session struct {
	client paho.Client
	lost   chan error
	broker atomic.Int32 // index in Config.Brokers of the broker tried last (-1: none yet)
}

// New checks cfg and returns a link; Run connects it.
func New(cfg Config) (*Link, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	brokers, err := newBrokerList(cfg)
	if err != nil {
		return nil, err
	}
	topics := make(map[string]string, len(Categories))
	for _, c := range Categories {
		topics[c] = cfg.Topics.Event(c)
	}
	l := &Link{
		cfg:         cfg,
		log:         cfg.Logger,
		brokers:     brokers,
		outboxState: OutboxNormal,
		work:        make(chan struct{}, 8),
		dirty:       map[string]bool{},
		kick:        make(chan struct{}, 1),
		eventTopics: topics,
	}
	l.refused = newRefusals(cfg.Clock, cfg.RefusalInterval, cfg.RefusalBurst, l.recordRefusals)
	return l, nil
}

// Topics returns the link's topics (with defaults applied).
func (l *Link) Topics() Topics { return l.cfg.Topics }

// Reconnects reports how often the link connected again after a loss.
func (l *Link) Reconnects() int64 { return l.reconnects.Load() }

// linkDown records a connection that ended or never came up.
type linkDown struct {
	since time.Time
	err   string
}

// LinkStatus is the link's state for operators (portier status).
type LinkStatus struct {
	Connected  bool      `json:"connected"`
	Broker     string    `json:"broker,omitempty"`     // the broker connected to
	Since      time.Time `json:"since,omitzero"`       // when the link went down (zero while connected)
	LastError  string    `json:"last_error,omitempty"` // why it is down
	Reconnects int64     `json:"reconnects"`
	Published  int64     `json:"events_published"`
}

// Status reports whether the link is connected and, if not, since when and
// why.
func (l *Link) Status() LinkStatus {
	s := l.cur.Load()
	st := LinkStatus{Connected: s != nil, Reconnects: l.reconnects.Load(), Published: l.published.Load()}
	if s != nil {
		if i := s.broker.Load(); i >= 0 {
			st.Broker = l.cfg.Brokers[i]
		}
	}
	if d := l.down.Load(); d != nil && !st.Connected {
		st.Since, st.LastError = d.since, d.err
	}
	return st
}

// Run keeps the link connected until ctx ends: it connects, restores the
// subscriptions, publishes the status, door states and telemetry, drains the
// outbox and answers commands; after a loss it waits a jittered, growing
// delay and connects again. On return the gateway has published "offline"
// (when connected) and disconnected.
func (l *Link) Run(ctx context.Context) error {
	l.started = l.cfg.Clock.Now()
	l.runCtx = ctx
	l.down.Store(&linkDown{since: l.started, err: "not connected yet"})
	var bg sync.WaitGroup
	bg.Add(1)
	go func() { defer bg.Done(); l.watchOutbox(ctx) }()
	defer bg.Wait()
	defer l.actions.Wait()
	defer l.refused.flush() // what the open intervals summed up is recorded at the end

	b := agent.Backoff{Min: l.cfg.BackoffMin, Max: l.cfg.BackoffMax, Jitter: agent.EqualJitter(l.cfg.Jitter)}
	for {
		up, err := l.connection(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			err = errors.New("connection closed")
		}
		if d := l.down.Load(); up || d == nil {
			l.down.Store(&linkDown{since: l.cfg.Clock.Now(), err: err.Error()})
		} else {
			l.down.Store(&linkDown{since: d.since, err: err.Error()}) // still down: keep when it went down
		}
		if up {
			b.Reset()
		}
		d := b.Next()
		l.log.Warn("mqtt connection ended; reconnecting", "err", err, "in", d.Round(time.Millisecond))
		if err := agent.Sleep(ctx, l.cfg.Clock, d); err != nil {
			return nil
		}
	}
}

// connection runs one connection to its end. up reports whether it was
// established and set up (so the backoff starts over).
func (l *Link) connection(ctx context.Context) (up bool, err error) {
	s := &session{lost: make(chan error, 1)}
	s.broker.Store(-1)
	s.client = paho.NewClient(l.clientOptions(s))
	tok := s.client.Connect()
	if err := wait(ctx, tok, l.cfg.ConnectTimeout); err != nil {
		s.client.Disconnect(0)
		l.brokers.done(int(s.broker.Load()))
		return false, fmt.Errorf("connect: %w", err)
	}
	defer func() { l.brokers.done(int(s.broker.Load())) }()
	if l.connected.Add(1) > 1 {
		l.reconnects.Add(1)
	}
	defer func() {
		l.cur.CompareAndSwap(s, nil)
		s.client.Disconnect(250)
	}()
	// A connection that breaks before it is set up does not count as up:
	// the backoff keeps growing (a broker that accepts and then refuses
	// every subscription is not retried in a tight loop).
	if err := l.subscribe(ctx, s); err != nil {
		return false, err
	}
	if err := l.publishStatus(ctx, s, StateOnline); err != nil {
		return false, err
	}
	l.cur.Store(s)
	l.down.Store(nil)
	l.log.Info("mqtt connected", "broker", l.cfg.Brokers[max(0, s.broker.Load())], "client_id", l.cfg.ClientID, "status", l.cfg.Topics.Status())

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 3)
	var wg sync.WaitGroup
	for _, run := range []func(context.Context, *session) error{l.send, l.publishStates, l.publishTelemetry} {
		wg.Add(1)
		go func() { defer wg.Done(); errc <- run(sctx, s) }()
	}
	if l.cfg.HomeAssistant.Enabled || l.cfg.Discovery != nil { // turned off: remove what was announced
		l.publishDiscovery(s)
	}
	select {
	case err = <-s.lost:
		err = fmt.Errorf("connection lost: %w", err)
	case err = <-errc:
	case <-ctx.Done():
	}
	cancel()
	wg.Wait()
	if ctx.Err() != nil {
		// Orderly shutdown: a clean DISCONNECT discards the will, so say
		// offline first.
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if perr := l.publishStatus(sctx, s, StateOffline); perr != nil {
			l.log.Warn("mqtt: offline status not published", "err", perr)
		}
		return true, nil
	}
	return true, err
}

func (l *Link) clientOptions(s *session) *paho.ClientOptions {
	o := paho.NewClientOptions()
	o.Servers = l.brokers.servers()
	will, _ := json.Marshal(l.status(StateOffline))
	o.SetClientID(l.cfg.ClientID).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetOrderMatters(false).
		SetKeepAlive(l.cfg.KeepAlive).
		SetPingTimeout(10*time.Second).
		SetConnectTimeout(l.cfg.ConnectTimeout).
		SetBinaryWill(l.cfg.Topics.Status(), will, 1, true).
		SetCustomOpenConnectionFn(l.dial).                            // refuses oversized packets before paho reads them whole
		SetDefaultPublishHandler(func(paho.Client, paho.Message) {}). // never leave a QoS 1 message unacknowledged
		SetConnectionAttemptHandler(func(u *url.URL, tc *tls.Config) *tls.Config {
			s.broker.Store(int32(l.brokers.index(u)))
			return tc
		}).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			select {
			case s.lost <- err:
			default:
			}
		})
	if l.cfg.Username != "" {
		o.SetUsername(l.cfg.Username)
		o.SetPassword(l.cfg.Password)
	}
	if l.cfg.TLS != nil {
		o.SetTLSConfig(l.cfg.TLS)
	}
	return o
}

// subscribeQoS is the QoS of the gateway's subscriptions. With a clean
// session QoS 1 adds nothing (a message in flight when the connection
// breaks is gone with the session either way; commands carry ids and are
// answered), and on RabbitMQ 3.x it costs fail-over: the broker keeps a
// QoS 1 subscription in a durable queue on the node the gateway was
// connected to, and while that node is down the gateway cannot subscribe
// on any other one (docs/fleet.md).
const subscribeQoS = 0

// subscribe restores the subscriptions; with a clean session the broker
// forgot them, so this runs on every connect.
func (l *Link) subscribe(ctx context.Context, s *session) error {
	filters := map[string]byte{l.cfg.Topics.Commands(): subscribeQoS}
	for _, f := range l.haSubscriptions() {
		filters[f] = subscribeQoS
	}
	tok := s.client.SubscribeMultiple(filters, l.route)
	if err := wait(ctx, tok, l.cfg.ConnectTimeout); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	for f, q := range tok.(*paho.SubscribeToken).Result() {
		if q == 0x80 {
			return fmt.Errorf("subscribe: broker refused %s", f)
		}
	}
	return nil
}

// route dispatches a received message. It runs in its own goroutine (order
// does not matter); for a message delivered at QoS 1 paho acknowledges when
// it returns, so the command id is recorded before the PUBACK.
func (l *Link) route(c paho.Client, m paho.Message) {
	switch t := m.Topic(); {
	case t == l.cfg.Topics.HAStatus():
		if string(m.Payload()) == "online" {
			if s := l.cur.Load(); s != nil {
				l.publishDiscovery(s)
			}
		}
	case strings.HasPrefix(t, l.cfg.Topics.Base()+"/ha/"):
		l.onHACommand(c, m)
	default:
		l.onCommand(c, m)
	}
}

func (l *Link) status(state string) StatusPayload {
	p := StatusPayload{Schema: Schema, State: state, SiteID: l.cfg.Topics.Site, GatewayID: l.cfg.Topics.Gateway}
	if state == StateOnline {
		p.Since = l.cfg.Clock.Now().UTC()
		p.Doors = l.cfg.Doors.DoorIDs()
		if l.cfg.Telemetry != nil {
			p.Version = l.cfg.Telemetry.Telemetry(l.runCtx).Version
		}
	}
	return p
}

func (l *Link) publishStatus(ctx context.Context, s *session, state string) error {
	return l.publishJSON(ctx, s, l.cfg.Topics.Status(), 1, true, l.status(state))
}

// publishJSON publishes v and waits for the broker to take it.
func (l *Link) publishJSON(ctx context.Context, s *session, topic string, qos byte, retained bool, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", topic, err)
	}
	if err := wait(ctx, s.client.Publish(topic, qos, retained, b), l.cfg.AckTimeout); err != nil {
		return fmt.Errorf("publish %s: %w", topic, err)
	}
	return nil
}

var errTimeout = errors.New("timed out")

// wait waits for a paho token, a timeout or ctx (paho's Wait can hang).
func wait(ctx context.Context, tok paho.Token, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-t.C:
		return errTimeout
	case <-ctx.Done():
		return ctx.Err()
	}
}
