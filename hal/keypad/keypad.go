// Package keypad scans a matrix keypad: rows are outputs driven low one at a
// time, columns are inputs with pull-ups that read low where a pressed key
// joins them to the driven row. While no key is down all rows are driven low
// and the scanner sleeps in the kernel waiting for a column edge, so an idle
// keypad costs no CPU; it scans every few milliseconds only while keys are
// down.
//
// Without diodes, three keys forming a rectangle make a fourth look pressed,
// so a scan that shows more than one key is ignored: PIN entry needs single
// presses anyway.
package keypad

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/portier-io/portier/hal/wallclock"
)

// Columns reads the column lines as one group. periph's gpioioctl.LineSet
// (inputs, pull-up, falling edges) satisfies it; bit i of Read's value is
// the i-th line of the set. A quiet WaitForEdge must end with an error
// wrapping os.ErrDeadlineExceeded, as LineSet's does.
type Columns interface {
	Read(mask gpio.GPIOValue) (gpio.GPIOValue, error)
	WaitForEdge(timeout time.Duration) (number int, edge gpio.Edge, err error)
}

// Clock is the scanner's time source. Sleep must return early with ctx's
// error.
type Clock interface {
	Now() time.Time
	Sleep(ctx context.Context, d time.Duration) error
}

// Defaults.
const (
	DefaultDebounce = 20 * time.Millisecond
	DefaultScan     = 5 * time.Millisecond
	// DefaultIdleWake bounds the idle wait; each wake-up re-reads the
	// columns, which also recovers from a missed edge.
	DefaultIdleWake = time.Second
)

// Layout3x4 and Layout4x4 are the common membrane keypads, row by row.
func Layout3x4() []string { return []string{"123", "456", "789", "*0#"} }

// Layout4x4 is the 4×4 keypad with letter keys.
func Layout4x4() []string { return []string{"123A", "456B", "789C", "*0#D"} }

// Config configures a Keypad.
type Config struct {
	Layout   []string      // one string per row, one rune per column; nil: Layout3x4
	Debounce time.Duration // a key must read the same for this long; 0: DefaultDebounce
	Scan     time.Duration // scan period while keys are down; 0: DefaultScan
	IdleWake time.Duration // 0: DefaultIdleWake
	Clock    Clock         // nil: system clock
}

// Keypad is one matrix keypad.
type Keypad struct {
	rows   []gpio.PinOut
	cols   Columns
	layout [][]rune
	cfg    Config
	clock  Clock
}

// New checks the layout against the lines and drives every row low (idle).
func New(rows []gpio.PinOut, cols Columns, ncols int, cfg Config) (*Keypad, error) {
	if cfg.Layout == nil {
		cfg.Layout = Layout3x4()
	}
	if cfg.Debounce <= 0 {
		cfg.Debounce = DefaultDebounce
	}
	if cfg.Scan <= 0 {
		cfg.Scan = DefaultScan
	}
	if cfg.IdleWake <= 0 {
		cfg.IdleWake = DefaultIdleWake
	}
	clock := cfg.Clock
	if clock == nil {
		clock = wallclock.Clock{}
	}
	if len(cfg.Layout) != len(rows) {
		return nil, fmt.Errorf("keypad: layout has %d rows, %d row lines wired", len(cfg.Layout), len(rows))
	}
	layout := make([][]rune, len(rows))
	for i, r := range cfg.Layout {
		layout[i] = []rune(r)
		if len(layout[i]) != ncols {
			return nil, fmt.Errorf("keypad: layout row %q has %d keys, %d column lines wired", r, len(layout[i]), ncols)
		}
	}
	k := &Keypad{rows: rows, cols: cols, layout: layout, cfg: cfg, clock: clock}
	if err := k.drive(-1); err != nil {
		return nil, err
	}
	return k, nil
}

// drive drives row `only` low and the others high; -1 drives all rows low.
func (k *Keypad) drive(only int) error {
	for i, r := range k.rows {
		lvl := gpio.High
		if only < 0 || i == only {
			lvl = gpio.Low
		}
		if err := r.Out(lvl); err != nil {
			return fmt.Errorf("keypad: row %d (%s): %w", i, r, err)
		}
	}
	return nil
}

func (k *Keypad) mask() gpio.GPIOValue { return gpio.GPIOValue(1)<<len(k.layout[0]) - 1 }

// anyDown reads the columns with all rows driven: a low column means a key.
func (k *Keypad) anyDown() (bool, error) {
	v, err := k.cols.Read(k.mask())
	if err != nil {
		return false, fmt.Errorf("keypad: read columns: %w", err)
	}
	return v&k.mask() != k.mask(), nil
}

// scan returns the single key down, 0 for none, or -1 for several.
func (k *Keypad) scan() (rune, error) {
	key := rune(0)
	for r := range k.rows {
		if err := k.drive(r); err != nil {
			return 0, err
		}
		v, err := k.cols.Read(k.mask())
		if err != nil {
			return 0, fmt.Errorf("keypad: read columns: %w", err)
		}
		for c := range k.layout[r] {
			if v&(1<<c) == 0 {
				if key != 0 {
					return -1, nil
				}
				key = k.layout[r][c]
			}
		}
	}
	return key, nil
}

// Run scans until ctx ends, calling emit once per key press (on press, after
// debounce). It returns nil when ctx ends.
func (k *Keypad) Run(ctx context.Context, emit func(rune)) error {
	for ctx.Err() == nil {
		if err := k.idle(ctx); err != nil {
			return err
		}
		if ctx.Err() != nil {
			break
		}
		if err := k.active(ctx, emit); err != nil {
			return err
		}
	}
	return nil
}

// idle drives all rows and waits until a column reads low.
func (k *Keypad) idle(ctx context.Context) error {
	if err := k.drive(-1); err != nil {
		return err
	}
	for ctx.Err() == nil {
		down, err := k.anyDown()
		if err != nil || down {
			return err
		}
		// Positive timeout always; the edge is only a hint, the read
		// above decides (edges from our own row switching queue up too).
		_, _, err = k.cols.WaitForEdge(k.cfg.IdleWake)
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() == nil {
			return fmt.Errorf("keypad: wait for column edge: %w", err)
		}
	}
	return nil
}

// active scans until every key has been up for the debounce time.
func (k *Keypad) active(ctx context.Context, emit func(rune)) error {
	var (
		reported  rune // key reported and still down
		candidate rune // what the scans currently show
		since     = k.clock.Now()
	)
	for {
		key, err := k.scan()
		if err != nil {
			return err
		}
		now := k.clock.Now()
		if key != candidate {
			candidate, since = key, now
		}
		stable := now.Sub(since) >= k.cfg.Debounce
		switch {
		case stable && candidate > 0 && candidate != reported:
			reported = candidate
			emit(candidate)
		case stable && candidate == 0:
			return nil // all keys up: back to idle
		case stable && candidate < 0:
			reported = -1 // several keys: wait until they are released
		}
		if err := k.clock.Sleep(ctx, k.cfg.Scan); err != nil {
			return nil
		}
	}
}
