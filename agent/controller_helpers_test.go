package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/agent/agenttest"
)

// t0 is a Tuesday 10:00 in the test site's zone: ada, bob and the day pass
// rules are all meaningful.
var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, mustBerlin())

func mustBerlin() *time.Location {
	l, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		panic(err)
	}
	return l
}

var (
	adaTag  = agent.CardTagNumber("00000001")
	adaUID  = agent.CardUID([]byte{0x04, 0xA1, 0xB2, 0xC3})
	bobTag  = agent.CardTagNumber("00000002")
	hankTag = agent.CardTagNumber("00000008")
)

// fakeOutput records every write with the fake time it happened at.
type fakeOutput struct {
	mu      sync.Mutex
	clock   *agenttest.Clock
	on      bool
	history []level
	sets    chan bool
}

type level struct {
	At time.Time
	On bool
}

func newOutput(clock *agenttest.Clock) *fakeOutput {
	return &fakeOutput{clock: clock, sets: make(chan bool, 4096)}
}

func (o *fakeOutput) Set(on bool) error {
	o.mu.Lock()
	o.on = on
	o.history = append(o.history, level{o.clock.Now(), on})
	o.mu.Unlock()
	o.sets <- on
	return nil
}

func (o *fakeOutput) On() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.on
}

func (o *fakeOutput) History() []level {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.history)
}

// waitFor reads writes until one sets the output to on.
func (o *fakeOutput) waitFor(t *testing.T, on bool) {
	t.Helper()
	for v := range o.sets {
		if v == on {
			return
		}
	}
}

// sink records events; hold makes Record block until release (or ctx ends).
type sink struct {
	mu      sync.Mutex
	events  []agent.Event
	gate    chan struct{}
	blocked chan struct{}
}

func newSink() *sink { return &sink{blocked: make(chan struct{}, 64)} }

func (s *sink) Record(ctx context.Context, e agent.Event) error {
	s.mu.Lock()
	gate := s.gate
	s.mu.Unlock()
	if gate != nil {
		s.blocked <- struct{}{}
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	s.events = append(s.events, e)
	s.mu.Unlock()
	return nil
}

func (s *sink) hold() {
	s.mu.Lock()
	s.gate = make(chan struct{})
	s.mu.Unlock()
}

func (s *sink) release() {
	s.mu.Lock()
	close(s.gate)
	s.gate = nil
	s.mu.Unlock()
}

func (s *sink) all() []agent.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events)
}

// countingDecider counts decisions; stall makes the next ones block until
// released.
type countingDecider struct {
	inner   agent.Deciding
	mu      sync.Mutex
	calls   int
	gate    chan struct{}
	entered chan struct{}
}

func (d *countingDecider) Decide(ctx context.Context, door agent.Door, now time.Time, p ...agent.Presented) (agent.Decision, error) {
	d.mu.Lock()
	d.calls++
	gate := d.gate
	d.mu.Unlock()
	if gate != nil {
		d.entered <- struct{}{}
		select {
		case <-gate:
		case <-ctx.Done():
			return agent.Decision{Door: door.ID, Reason: agent.ReasonCacheUnavailable}, ctx.Err()
		}
	}
	return d.inner.Decide(ctx, door, now, p...)
}

func (d *countingDecider) Calls() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.calls
}

func (d *countingDecider) stall() {
	d.mu.Lock()
	d.gate, d.entered = make(chan struct{}), make(chan struct{}, 16)
	d.mu.Unlock()
}

func (d *countingDecider) release() {
	d.mu.Lock()
	close(d.gate)
	d.gate = nil
	d.mu.Unlock()
}

// enrolStore is an in-memory enrolment store.
type enrolStore struct {
	mu      sync.Mutex
	holders map[string]*agent.UserRef // tag number → holder
	stored  map[string]string         // key → tag number
	err     error
}

func (s *enrolStore) Enrol(_ context.Context, e agent.Enrolment) (*agent.UserRef, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	s.stored[e.Key] = e.TagNumber
	return s.holders[e.TagNumber], nil
}

// syncBuffer is a log destination safe for the controller's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// rig is one door controller with fake hardware, a real decider over the
// test site and a fake clock.
type rig struct {
	t                         *testing.T
	clock                     *agenttest.Clock
	relay, green, red, buzzer *fakeOutput
	sink                      *sink
	decider                   *countingDecider
	store                     *enrolStore
	logs                      *syncBuffer
	ctl                       *agent.Controller
	cancel                    context.CancelFunc
	errc                      chan error
}

func newRig(t *testing.T, mode agent.DoorMode, opts ...func(*agent.ControllerConfig)) *rig {
	t.Helper()
	clock := agenttest.NewClock(t0)
	r := &rig{
		t:     t,
		clock: clock,
		relay: newOutput(clock), green: newOutput(clock), red: newOutput(clock), buzzer: newOutput(clock),
		sink: newSink(),
		decider: &countingDecider{inner: &agent.Decider{
			Cache:  agenttest.NewCache(agenttest.Site()),
			PINKey: agenttest.PINKey(),
		}},
		store: &enrolStore{holders: map[string]*agent.UserRef{"00000002": {ID: "u-bob", Name: "bob"}}, stored: map[string]string{}},
		logs:  &syncBuffer{},
	}
	cfg := agent.ControllerConfig{
		Door:       agent.Door{ID: "front", Name: "Front", Mode: mode, LockIDs: []string{agenttest.LockFront}},
		Clock:      clock,
		Logger:     slog.New(slog.NewJSONHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug, ReplaceAttr: dropTime})),
		Relay:      r.relay,
		GreenLED:   r.green,
		RedLED:     r.red,
		Buzzer:     r.buzzer,
		Decider:    r.decider,
		Events:     r.sink,
		Enrolments: r.store,
	}
	for _, o := range opts {
		o(&cfg)
	}
	r.ctl = agent.NewController(cfg)
	return r
}

// start runs the controller and waits until it has reached its loop.
func (r *rig) start() *rig {
	r.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.errc = cancel, make(chan error, 1)
	go func() { r.errc <- r.ctl.Run(ctx) }()
	r.flush()
	r.t.Cleanup(func() { r.stop() })
	return r
}

// stop cancels Run and returns its error (once).
func (r *rig) stop() error {
	if r.cancel == nil {
		return nil
	}
	r.cancel()
	r.cancel = nil
	return <-r.errc
}

func (r *rig) flush() {
	r.t.Helper()
	require.NoError(r.t, r.ctl.Flush(context.Background()))
}

func (r *rig) advance(d time.Duration) {
	r.t.Helper()
	r.clock.Advance(d)
	r.flush()
}

func (r *rig) present(p agent.Presented) {
	r.t.Helper()
	require.NoError(r.t, r.ctl.Present(p))
	r.flush()
}

func (r *rig) keys(s string) {
	r.t.Helper()
	for _, k := range s {
		require.NoError(r.t, r.ctl.PressKey(k))
	}
	r.flush()
}

func (r *rig) input(in agent.DoorInput, active bool) {
	r.t.Helper()
	require.NoError(r.t, r.ctl.SetInput(in, active))
	r.flush()
}

// types lists the recorded event types after controller_started.
func (r *rig) types() []agent.EventType {
	var out []agent.EventType
	for _, e := range r.sink.all() {
		if e.Type != agent.EventControllerStarted {
			out = append(out, e.Type)
		}
	}
	return out
}

// since returns the events recorded after the first n.
func (r *rig) last(typ agent.EventType) agent.Event {
	r.t.Helper()
	ev := r.sink.all()
	for i := len(ev) - 1; i >= 0; i-- {
		if ev[i].Type == typ {
			return ev[i]
		}
	}
	r.t.Fatalf("no %s event in %v", typ, r.types())
	return agent.Event{}
}

func (r *rig) count(typ agent.EventType) int {
	n := 0
	for _, e := range r.sink.all() {
		if e.Type == typ {
			n++
		}
	}
	return n
}

func eventsJSON(t *testing.T, ev []agent.Event) string {
	b, err := json.Marshal(ev)
	require.NoError(t, err)
	return string(b)
}

// dropTime leaves the wall-clock time out of captured logs: its digits
// would make the PIN-secrecy test fail at random (a PIN prefix in the
// nanoseconds).
func dropTime(groups []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey && len(groups) == 0 {
		return slog.Attr{}
	}
	return a
}
