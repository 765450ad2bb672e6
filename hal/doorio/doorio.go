// Package doorio drives a door's plain GPIO lines: outputs (strike or maglock
// relay, LEDs, buzzer) with polarity and a safe state, and debounced inputs
// (door contact, exit button, tamper) that report changes.
//
// Outputs never read their line back: on the kernel's GPIO character device a
// Read reconfigures the line as an input, which would drop a relay. The
// commanded state is kept in software; the type only holds a gpio.PinOut, so
// the compiler enforces it.
package doorio

import (
	"context"
	"fmt"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/portier-io/portier/hal/wallclock"
)

// OutputConfig configures an Output.
type OutputConfig struct {
	// ActiveLow: the device is on when the line is low (most relay boards
	// with optocouplers are).
	ActiveLow bool
	// SafeOn: the safe state is "on". False for a strike (locked when
	// off); true for an output that must stay energised, e.g. a maglock
	// driven directly.
	SafeOn bool
}

// Output is one logical on/off output.
type Output struct {
	name string
	pin  gpio.PinOut
	cfg  OutputConfig
	mu   sync.Mutex
	on   bool
}

// NewOutput takes the line and drives it to the safe state at once, before
// anything else can happen.
func NewOutput(name string, pin gpio.PinOut, cfg OutputConfig) (*Output, error) {
	o := &Output{name: name, pin: pin, cfg: cfg}
	if err := o.Set(cfg.SafeOn); err != nil {
		return nil, err
	}
	return o, nil
}

// Name returns the output's name.
func (o *Output) Name() string { return o.name }

// String names the output and its line.
func (o *Output) String() string { return fmt.Sprintf("%s (%s)", o.name, o.pin) }

// Set turns the output on or off. The commanded state changes only when the
// line accepted the level.
func (o *Output) Set(on bool) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	lvl := gpio.Level(on != o.cfg.ActiveLow)
	if err := o.pin.Out(lvl); err != nil {
		return fmt.Errorf("doorio: %s: set %v: %w", o.name, on, err)
	}
	o.on = on
	return nil
}

// On reports the last commanded state.
func (o *Output) On() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.on
}

// Halt returns the output to its safe state.
func (o *Output) Halt() error { return o.Set(o.cfg.SafeOn) }

// Clock is the time source of an Input.
type Clock interface {
	Now() time.Time
}

// Input defaults.
const (
	// DefaultDebounce is how long a new level must hold before it counts:
	// longer than switch bounce (≤ 10 ms), far shorter than a person.
	DefaultDebounce = 30 * time.Millisecond
	// DefaultResync is how often the line is re-read without an edge, to
	// recover from a missed edge (a full kernel queue, a glitch).
	DefaultResync = 2 * time.Second
)

// InputConfig configures an Input.
type InputConfig struct {
	// ActiveLow: the input is active (door open, button pressed, tamper)
	// when the line is low.
	ActiveLow bool
	Pull      gpio.Pull     // gpio.PullNoChange keeps the line's pull
	Debounce  time.Duration // 0: DefaultDebounce
	Resync    time.Duration // 0: DefaultResync
	Clock     Clock         // nil: system clock
}

// Input is one debounced logical input.
type Input struct {
	name   string
	pin    gpio.PinIn
	cfg    InputConfig
	clock  Clock
	mu     sync.Mutex
	active bool
}

// NewInput configures the line as an input with edges on both sides and
// takes its current level as the initial state.
func NewInput(name string, pin gpio.PinIn, cfg InputConfig) (*Input, error) {
	if cfg.Debounce <= 0 {
		cfg.Debounce = DefaultDebounce
	}
	if cfg.Resync <= 0 {
		cfg.Resync = DefaultResync
	}
	clock := cfg.Clock
	if clock == nil {
		clock = wallclock.Clock{}
	}
	if err := pin.In(cfg.Pull, gpio.BothEdges); err != nil {
		return nil, fmt.Errorf("doorio: %s: configure %s as input: %w", name, pin, err)
	}
	in := &Input{name: name, pin: pin, cfg: cfg, clock: clock}
	in.active = in.Level()
	return in, nil
}

// Name returns the input's name.
func (in *Input) Name() string { return in.name }

// String names the input and its line.
func (in *Input) String() string { return fmt.Sprintf("%s (%s)", in.name, in.pin) }

// Level reads the line now, undebounced (for diagnostics).
func (in *Input) Level() bool { return (in.pin.Read() == gpio.High) != in.cfg.ActiveLow }

// Active returns the debounced state.
func (in *Input) Active() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.active
}

// Halt unblocks a Run waiting for an edge.
func (in *Input) Halt() error { return in.pin.Halt() }

// Run watches the line until ctx ends and calls emit with each debounced
// change. A new level counts once it has held for Debounce with no edge;
// bounce restarts the wait. Run returns nil when ctx ends.
func (in *Input) Run(ctx context.Context, emit func(active bool, at time.Time)) error {
	var settling bool
	var settleAt time.Time
	for {
		if ctx.Err() != nil {
			return nil
		}
		timeout := in.cfg.Resync
		if settling {
			// Always positive: gpioioctl treats -1 as "already expired".
			timeout = max(settleAt.Sub(in.clock.Now()), time.Microsecond)
		}
		edge := in.pin.WaitForEdge(timeout)
		if ctx.Err() != nil {
			return nil
		}
		lvl := in.Level()
		now := in.clock.Now()
		in.mu.Lock()
		stable := in.active
		in.mu.Unlock()
		switch {
		case lvl == stable:
			settling = false // bounced back, or nothing happened
		case edge || !settling:
			settling, settleAt = true, now.Add(in.cfg.Debounce) // (re)start the wait
		case !now.Before(settleAt):
			settling = false
			in.mu.Lock()
			in.active = lvl
			in.mu.Unlock()
			emit(lvl, now)
		}
	}
}
