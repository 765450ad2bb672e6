package doorio_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"

	"github.com/portier-io/portier/hal/doorio"
	"github.com/portier-io/portier/hal/simtime"
)

// outPin records every level driven. It has no Read method: an Output cannot
// read its line back.
type outPin struct {
	mu     sync.Mutex
	levels []gpio.Level
	fail   bool
}

func (p *outPin) String() string   { return "GPIO17" }
func (p *outPin) Name() string     { return "GPIO17" }
func (p *outPin) Number() int      { return 17 }
func (p *outPin) Function() string { return "Out" }
func (p *outPin) Halt() error      { return nil }
func (p *outPin) PWM(gpio.Duty, physic.Frequency) error {
	return errors.New("no PWM")
}

func (p *outPin) Out(l gpio.Level) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail {
		return errors.New("device or resource busy")
	}
	p.levels = append(p.levels, l)
	return nil
}

func TestOutput(t *testing.T) {
	tests := []struct {
		name       string
		cfg        doorio.OutputConfig
		wantLevels []gpio.Level // after New, Set(true), Set(false), Set(true), Halt
		wantHalted bool
	}{
		{"active high, safe off", doorio.OutputConfig{}, []gpio.Level{gpio.Low, gpio.High, gpio.Low, gpio.High, gpio.Low}, false},
		{"active low, safe off", doorio.OutputConfig{ActiveLow: true}, []gpio.Level{gpio.High, gpio.Low, gpio.High, gpio.Low, gpio.High}, false},
		{"active low, safe on", doorio.OutputConfig{ActiveLow: true, SafeOn: true}, []gpio.Level{gpio.Low, gpio.Low, gpio.High, gpio.Low, gpio.Low}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &outPin{}
			o, err := doorio.NewOutput("relay", p, tt.cfg)
			require.NoError(t, err)
			assert.Equal(t, tt.cfg.SafeOn, o.On(), "safe state from the start")
			require.NoError(t, o.Set(true))
			assert.True(t, o.On())
			require.NoError(t, o.Set(false))
			assert.False(t, o.On())
			require.NoError(t, o.Set(true))
			require.NoError(t, o.Halt())
			assert.Equal(t, tt.wantHalted, o.On())
			assert.Equal(t, tt.wantLevels, p.levels)
		})
	}
}

func TestOutputFailureKeepsState(t *testing.T) {
	p := &outPin{}
	o, err := doorio.NewOutput("relay", p, doorio.OutputConfig{})
	require.NoError(t, err)
	p.fail = true
	err = o.Set(true)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "doorio: relay")
	assert.False(t, o.On(), "commanded state follows the line, not the wish")
	_, err = doorio.NewOutput("led", p, doorio.OutputConfig{})
	assert.Error(t, err)
}

// inPin is an input line following a script of level changes in simulated
// time. WaitForEdge advances the clock to the next change or the timeout.
type inPin struct {
	clock   *simtime.Clock
	start   time.Time
	level   gpio.Level
	changes []change
	stop    context.CancelFunc
	end     time.Duration // stop the run once the script is over and time passed this
}

type change struct {
	at     time.Duration
	level  gpio.Level
	silent bool // no edge reported (a missed edge)
}

func (p *inPin) String() string                   { return "GPIO22" }
func (p *inPin) Name() string                     { return "GPIO22" }
func (p *inPin) Number() int                      { return 22 }
func (p *inPin) Function() string                 { return "In" }
func (p *inPin) Halt() error                      { return nil }
func (p *inPin) In(gpio.Pull, gpio.Edge) error    { return nil }
func (p *inPin) Pull() gpio.Pull                  { return gpio.PullUp }
func (p *inPin) DefaultPull() gpio.Pull           { return gpio.PullUp }
func (p *inPin) Read() gpio.Level                 { return p.level }
func (p *inPin) WaitForEdge(t time.Duration) bool { return p.wait(t) }

func (p *inPin) wait(timeout time.Duration) bool {
	if timeout <= 0 {
		panic("non-positive timeout: gpioioctl would return at once")
	}
	deadline := p.clock.Since(p.start) + timeout
	for len(p.changes) > 0 && p.changes[0].at <= deadline {
		next := p.changes[0]
		p.changes = p.changes[1:]
		p.clock.AdvanceTo(p.start.Add(next.at))
		edge := next.level != p.level && !next.silent
		p.level = next.level
		if edge {
			return true
		}
	}
	p.clock.AdvanceTo(p.start.Add(deadline))
	if len(p.changes) == 0 && p.clock.Since(p.start) > p.end {
		p.stop()
	}
	return false
}

// bounce returns changes that settle on `to` at `at` after 5 transitions
// within 4 ms.
func bounce(at time.Duration, to gpio.Level) []change {
	var out []change
	for i := range 5 {
		l := to
		if i%2 == 1 {
			l = !to
		}
		out = append(out, change{at + time.Duration(i)*time.Millisecond, l, false})
	}
	return out
}

type ev struct {
	active bool
	at     time.Duration
}

func TestInputDebounce(t *testing.T) {
	tests := []struct {
		name      string
		activeLow bool
		initial   gpio.Level
		changes   []change
		want      []ev
	}{
		{
			name: "bouncy press and release, active low", activeLow: true, initial: gpio.High,
			changes: append(bounce(100*time.Millisecond, gpio.Low), bounce(600*time.Millisecond, gpio.High)...),
			want:    []ev{{true, 134 * time.Millisecond}, {false, 634 * time.Millisecond}},
		},
		{
			name: "a 10 ms glitch is ignored", initial: gpio.Low,
			changes: []change{{100 * time.Millisecond, gpio.High, false}, {110 * time.Millisecond, gpio.Low, false}},
		},
		{
			name: "door contact, active high (NC loop opens)", initial: gpio.Low,
			changes: []change{{time.Second, gpio.High, false}},
			want:    []ev{{true, time.Second + 30*time.Millisecond}},
		},
		{
			name: "missed edge is caught by the resync read", initial: gpio.Low,
			// The level changes without an edge (the kernel queue overflowed).
			changes: []change{{time.Second, gpio.High, true}},
			want:    []ev{{true, doorio.DefaultResync + 30*time.Millisecond}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			clock := simtime.New()
			p := &inPin{clock: clock, start: clock.Now(), level: tt.initial, changes: tt.changes, stop: cancel, end: 5 * time.Second}
			in, err := doorio.NewInput("contact", p, doorio.InputConfig{ActiveLow: tt.activeLow, Clock: clock})
			require.NoError(t, err)
			assert.False(t, in.Active())
			var got []ev
			require.NoError(t, in.Run(ctx, func(active bool, at time.Time) {
				got = append(got, ev{active, at.Sub(p.start)})
			}))
			assert.Equal(t, tt.want, got)
			if len(tt.want) > 0 {
				assert.Equal(t, tt.want[len(tt.want)-1].active, in.Active())
			}
		})
	}
}
