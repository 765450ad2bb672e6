// Package wallclock is the real clock of the hardware loops: time.Now, and a
// Sleep that ends early when its context does. Device packages each declare
// the small Clock interface they consume; this is the one implementation
// they default to (tests and benchmarks use hal/simtime instead). It imports
// only the standard library, so device packages stay free of agent and
// periph host.
package wallclock

import (
	"context"
	"time"
)

// Clock is the system clock.
type Clock struct{}

// Now returns time.Now().
func (Clock) Now() time.Time { return time.Now() }

// Sleep waits d, or returns ctx's error as soon as ctx ends.
func (Clock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
