package hal_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/hal"
	"github.com/portier-io/portier/hal/doorio"
	"github.com/portier-io/portier/hal/mfrc522"
	"github.com/portier-io/portier/hal/mfrc522/mfrc522sim"
	"github.com/portier-io/portier/hal/simtime"
	"github.com/portier-io/portier/hal/wiegand"
)

// outLine records the levels driven on an output line.
type outLine struct {
	mu     sync.Mutex
	name   string
	levels []gpio.Level
}

func (p *outLine) String() string                        { return p.name }
func (p *outLine) Name() string                          { return p.name }
func (p *outLine) Number() int                           { return -1 }
func (p *outLine) Function() string                      { return "Out" }
func (p *outLine) Halt() error                           { return nil }
func (p *outLine) PWM(gpio.Duty, physic.Frequency) error { return errors.New("no PWM") }
func (p *outLine) Out(l gpio.Level) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.levels = append(p.levels, l)
	return nil
}

func (p *outLine) last() gpio.Level {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.levels[len(p.levels)-1]
}

// inLine is an input line fed by the test. Short waits (debounce) pass in
// the line's own simulated time; long waits block until an edge or Halt.
type inLine struct {
	clock *simtime.Clock
	edges chan gpio.Level
	halt  chan struct{}
	once  sync.Once
	mu    sync.Mutex
	level gpio.Level
}

func newInLine(l gpio.Level) *inLine {
	return &inLine{clock: simtime.New(), edges: make(chan gpio.Level, 8), halt: make(chan struct{}), level: l}
}

func (p *inLine) String() string                { return "in" }
func (p *inLine) Name() string                  { return "in" }
func (p *inLine) Number() int                   { return -1 }
func (p *inLine) Function() string              { return "In" }
func (p *inLine) In(gpio.Pull, gpio.Edge) error { return nil }
func (p *inLine) Pull() gpio.Pull               { return gpio.PullUp }
func (p *inLine) DefaultPull() gpio.Pull        { return gpio.PullUp }
func (p *inLine) Halt() error                   { p.once.Do(func() { close(p.halt) }); return nil }
func (p *inLine) Read() gpio.Level {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.level
}

func (p *inLine) WaitForEdge(timeout time.Duration) bool {
	take := func(l gpio.Level) bool {
		p.mu.Lock()
		p.level = l
		p.mu.Unlock()
		return true
	}
	select {
	case l := <-p.edges:
		return take(l)
	default:
	}
	if timeout < time.Second {
		p.clock.Advance(timeout)
		return false
	}
	select {
	case l := <-p.edges:
		return take(l)
	case <-p.halt:
		return false
	}
}

// edgeScript replays Wiegand frames, fails once before the second frame,
// then blocks until halted like a quiet LineSet.
type edgeScript struct {
	mu     sync.Mutex
	queue  []int // line numbers; -1 = silence, -2 = device error
	halt   chan struct{}
	halted sync.Once
}

func (s *edgeScript) WaitForEdge(time.Duration) (int, gpio.Edge, error) {
	s.mu.Lock()
	if len(s.queue) > 0 {
		n := s.queue[0]
		s.queue = s.queue[1:]
		s.mu.Unlock()
		switch n {
		case -1:
			return 0, gpio.NoEdge, os.ErrDeadlineExceeded
		case -2:
			return 0, gpio.NoEdge, errors.New("read gpio-lineset: bad file descriptor")
		}
		return n, gpio.FallingEdge, nil
	}
	s.mu.Unlock()
	<-s.halt
	return 0, gpio.NoEdge, fmt.Errorf("read gpio-lineset: %w", os.ErrDeadlineExceeded)
}

func (s *edgeScript) Halt() error { s.halted.Do(func() { close(s.halt) }); return nil }

func (s *edgeScript) frame(fr wiegand.Frame) {
	for i := fr.Bits - 1; i >= 0; i-- {
		s.queue = append(s.queue, 5+int(fr.Raw>>i&1)) // D0 = line 5, D1 = line 6
	}
	s.queue = append(s.queue, -1)
}

// parkedClock is simulated time that stops the MFRC522 poll loop (Sleep
// blocks until the run ends) once a second of polling has passed, so the
// test does not spin.
type parkedClock struct {
	*simtime.Clock
	until time.Time
}

func (c parkedClock) Sleep(ctx context.Context, d time.Duration) error {
	if c.Now().After(c.until) {
		<-ctx.Done()
		return ctx.Err()
	}
	return c.Clock.Sleep(ctx, d)
}

func TestDeviceBoard(t *testing.T) {
	// front: MFRC522 (simulated chip), relay, door contact.
	rfClock := simtime.New()
	chip := mfrc522sim.New(mfrc522sim.Config{Clock: rfClock})
	require.NoError(t, chip.Place(mfrc522sim.Card{UID: []byte{0x04, 0xA1, 0xB2, 0xC3}, SAK: 0x08}))
	dev, err := mfrc522.New(chip, mfrc522.Config{Clock: parkedClock{rfClock, rfClock.Now().Add(time.Second)}})
	require.NoError(t, err)
	relayLine := &outLine{name: "GPIO17"}
	relay, err := doorio.NewOutput("front relay", relayLine, doorio.OutputConfig{ActiveLow: true})
	require.NoError(t, err)
	assert.Equal(t, gpio.High, relayLine.last(), "active-low relay starts off")
	contactLine := newInLine(gpio.Low)
	contact, err := doorio.NewInput("front contact", contactLine, doorio.InputConfig{Clock: contactLine.clock})
	require.NoError(t, err)

	// studio: Wiegand reader that fails once, then reads a card.
	script := &edgeScript{halt: make(chan struct{})}
	fr, err := wiegand.StandardFormats()[0].Encode(12, 3456)
	require.NoError(t, err)
	script.queue = append(script.queue, -2)
	script.frame(fr)
	wg := wiegand.NewReader(script, wiegand.ReaderConfig{D0: 5, D1: 6, Decoder: wiegand.NewDecoder()})

	closed := []string{}
	board := hal.NewDeviceBoard([]hal.DoorDevices{
		{Door: "front", Outputs: map[hal.Output]*doorio.Output{hal.Relay: relay}, Inputs: map[hal.Input]*doorio.Input{hal.DoorContact: contact},
			RFID: mfrc522.NewReader(dev, mfrc522.ReaderConfig{}), Halts: []func() error{contact.Halt}},
		{Door: "studio", Wiegand: wg, Halts: []func() error{script.Halt}},
	}, hal.BoardOptions{Clock: simtime.New(), Closers: []func() error{
		func() error { closed = append(closed, "spi"); return nil },
		func() error { closed = append(closed, "lineset"); return nil },
	}})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := make(chan hal.Event, 16)
	var seen []hal.Event // appended without a lock: emit calls must be serialised
	done := make(chan error, 1)
	go func() {
		done <- board.Run(ctx, func(e hal.Event) { seen = append(seen, e); events <- e })
	}()
	contactLine.edges <- gpio.High // door opens

	guard, stop := context.WithTimeout(ctx, time.Minute) // a hang guard, not a timing check
	defer stop()
	var got []string
	for len(got) < 4 {
		select {
		case e := <-events:
			got = append(got, e.String())
		case <-guard.Done():
			t.Fatalf("events so far: %v", got)
		}
	}
	cancel()
	require.NoError(t, <-done)
	sort.Strings(got)
	assert.Equal(t, []string{
		"front: credential uid:4 bytes …B2C3",
		"front: door_contact active=true",
		"studio: credential wiegand:H10301 fc=12 cn=…56",
		"studio: wiegand fault: wiegand: wait for edge: read gpio-lineset: bad file descriptor",
	}, got)
	for _, e := range seen {
		if e.Kind == hal.EventCredential && e.Door == "front" {
			assert.Equal(t, agent.CardUID([]byte{0x04, 0xA1, 0xB2, 0xC3}), e.Credential)
		}
	}

	require.NoError(t, board.Set("front", hal.Relay, true))
	assert.Equal(t, gpio.Low, relayLine.last())
	assert.ErrorContains(t, board.Set("front", hal.Buzzer, true), "door front has no buzzer wired")
	assert.ErrorContains(t, board.Set("garage", hal.Relay, true), `no door "garage"`)
	require.NoError(t, board.Halt())
	assert.Equal(t, gpio.High, relayLine.last())
	require.NoError(t, board.Set("front", hal.Relay, true))
	require.NoError(t, board.Close())
	assert.Equal(t, gpio.High, relayLine.last(), "Close restores the safe state")
	assert.Equal(t, []string{"lineset", "spi"}, closed, "released last first")
}
