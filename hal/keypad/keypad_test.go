package keypad_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"

	"github.com/portier-io/portier/hal/keypad"
	"github.com/portier-io/portier/hal/simtime"
)

// matrix models a keypad wired to row outputs and column inputs with
// pull-ups, following a script of key contacts in simulated time.
type matrix struct {
	clock  *simtime.Clock
	start  time.Time
	layout []string
	driven []gpio.Level
	down   map[rune]bool
	script []contact
	end    time.Duration
	stop   context.CancelFunc
	reads  int
	waits  int
}

type contact struct {
	at   time.Duration
	key  rune
	down bool
}

type row struct {
	m *matrix
	i int
}

func (r row) String() string                        { return "row" }
func (r row) Name() string                          { return "row" }
func (r row) Number() int                           { return r.i }
func (r row) Function() string                      { return "Out" }
func (r row) Halt() error                           { return nil }
func (r row) PWM(gpio.Duty, physic.Frequency) error { return errors.New("no PWM") }
func (r row) Out(l gpio.Level) error                { r.m.driven[r.i] = l; return nil }

func newMatrix(layout []string, script []contact, end time.Duration, stop context.CancelFunc) (*matrix, []gpio.PinOut) {
	clock := simtime.New()
	m := &matrix{clock: clock, start: clock.Now(), layout: layout, driven: make([]gpio.Level, len(layout)),
		down: map[rune]bool{}, script: script, end: end, stop: stop}
	rows := make([]gpio.PinOut, len(layout))
	for i := range rows {
		rows[i] = row{m, i}
	}
	return m, rows
}

// apply plays the script up to now.
func (m *matrix) apply() {
	now := m.clock.Since(m.start)
	for len(m.script) > 0 && m.script[0].at <= now {
		m.down[m.script[0].key] = m.script[0].down
		m.script = m.script[1:]
	}
	if len(m.script) == 0 && now > m.end {
		m.stop()
	}
}

func (m *matrix) Read(mask gpio.GPIOValue) (gpio.GPIOValue, error) {
	m.reads++
	m.apply()
	v := mask
	for r, keys := range m.layout {
		if m.driven[r] != gpio.Low {
			continue
		}
		for c, k := range []rune(keys) {
			if m.down[k] {
				v &^= 1 << c
			}
		}
	}
	return v, nil
}

func (m *matrix) WaitForEdge(timeout time.Duration) (int, gpio.Edge, error) {
	if timeout <= 0 {
		return 0, gpio.NoEdge, errors.New("non-positive timeout")
	}
	m.waits++
	now := m.clock.Since(m.start)
	if len(m.script) > 0 && m.script[0].at <= now+timeout {
		m.clock.AdvanceTo(m.start.Add(m.script[0].at))
		m.apply()
		return 0, gpio.FallingEdge, nil
	}
	m.clock.Advance(timeout)
	m.apply()
	return 0, gpio.NoEdge, os.ErrDeadlineExceeded
}

// press is a key press with contact bounce on both ends.
func press(key rune, at, hold time.Duration) []contact {
	var out []contact
	for i := range 5 { // down, up, down, up, down
		out = append(out, contact{at + time.Duration(i)*time.Millisecond, key, i%2 == 0})
	}
	for i := range 5 { // up, down, up, down, up
		out = append(out, contact{at + hold + time.Duration(i)*time.Millisecond, key, i%2 == 1})
	}
	return out
}

func TestKeypad(t *testing.T) {
	tests := []struct {
		name   string
		layout []string
		script []contact
		want   string
	}{
		{
			name:   "PIN with bouncy keys",
			script: concat(press('1', 100*time.Millisecond, 80*time.Millisecond), press('2', 400*time.Millisecond, 60*time.Millisecond), press('3', 700*time.Millisecond, 120*time.Millisecond), press('#', time.Second, 90*time.Millisecond)),
			want:   "123#",
		},
		{
			name:   "same key twice",
			script: concat(press('5', 100*time.Millisecond, 80*time.Millisecond), press('5', 300*time.Millisecond, 80*time.Millisecond)),
			want:   "55",
		},
		{
			name:   "a held key is one press",
			script: press('*', 100*time.Millisecond, 3*time.Second),
			want:   "*",
		},
		{
			name:   "a 5 ms brush is not a press",
			script: []contact{{100 * time.Millisecond, '9', true}, {105 * time.Millisecond, '9', false}},
			want:   "",
		},
		{
			name: "two keys at once are ignored",
			script: []contact{
				{100 * time.Millisecond, '1', true}, {101 * time.Millisecond, '5', true},
				{300 * time.Millisecond, '1', false}, {300 * time.Millisecond, '5', false},
			},
			want: "",
		},
		{
			name:   "4x4 layout",
			layout: keypad.Layout4x4(),
			script: concat(press('D', 100*time.Millisecond, 50*time.Millisecond), press('0', 300*time.Millisecond, 50*time.Millisecond)),
			want:   "D0",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			layout := tt.layout
			if layout == nil {
				layout = keypad.Layout3x4()
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			m, rows := newMatrix(layout, tt.script, 5*time.Second, cancel)
			kp, err := keypad.New(rows, m, len(layout[0]), keypad.Config{Layout: layout, Clock: m.clock})
			require.NoError(t, err)
			var got []rune
			require.NoError(t, kp.Run(ctx, func(r rune) { got = append(got, r) }))
			assert.Equal(t, tt.want, string(got))
		})
	}
}

// An idle keypad waits in the kernel: over a minute without keys it reads the
// columns about once per idle wake-up, not hundreds of times a second.
func TestKeypadIdleCost(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m, rows := newMatrix(keypad.Layout3x4(), nil, time.Minute, cancel)
	kp, err := keypad.New(rows, m, 3, keypad.Config{Clock: m.clock})
	require.NoError(t, err)
	require.NoError(t, kp.Run(ctx, func(rune) { t.Fatal("no key pressed") }))
	assert.LessOrEqual(t, m.reads, 62)
	assert.LessOrEqual(t, m.waits, 61)
	for _, l := range m.driven {
		assert.Equal(t, gpio.Low, l, "idle drives every row")
	}
}

func TestKeypadLayoutMismatch(t *testing.T) {
	m, rows := newMatrix(keypad.Layout3x4(), nil, 0, func() {})
	_, err := keypad.New(rows[:3], m, 3, keypad.Config{})
	assert.ErrorContains(t, err, "layout has 4 rows, 3 row lines wired")
	_, err = keypad.New(rows, m, 4, keypad.Config{})
	assert.ErrorContains(t, err, "has 3 keys, 4 column lines wired")
}

func concat(parts ...[]contact) []contact {
	var out []contact
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
