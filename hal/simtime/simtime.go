// Package simtime is simulated time for hardware simulators, tests and
// benchmarks: a clock that only moves when something sleeps or advances it, so
// a driver loop that polls every 50 ms runs through an hour of simulated time
// in milliseconds and every run is the same.
package simtime

import (
	"context"
	"sync"
	"time"
)

// Clock is a simulated clock. Sleep advances it by the requested duration and
// returns at once, which models one goroutine driving the simulation; tests
// that need several goroutines drive time explicitly with Advance.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// New returns a clock set to 2026-01-01 00:00 UTC; any fixed instant works,
// a fixed one keeps logs and failures reproducible.
func New() *Clock { return &Clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

// Now returns the simulated time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Since returns the simulated time elapsed since t.
func (c *Clock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

// Advance moves the clock forward by d (negative d is ignored: time never
// runs backwards in a simulation).
func (c *Clock) Advance(d time.Duration) {
	if d <= 0 {
		return
	}
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// AdvanceTo moves the clock to t if t is later than now.
func (c *Clock) AdvanceTo(t time.Time) {
	c.mu.Lock()
	if t.After(c.now) {
		c.now = t
	}
	c.mu.Unlock()
}

// Sleep advances the clock by d unless ctx is already done.
func (c *Clock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.Advance(d)
	return nil
}
