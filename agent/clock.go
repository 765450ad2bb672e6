package agent

import (
	"context"
	"time"
)

// Clock is the time source of the door runtime. It is injected so that every
// timing rule (relay deadlines, PIN timeouts, alarms, lockouts) can be tested
// with a fake clock and no sleeps.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine (or, for a fake clock, in the
	// goroutine that advances time) once d has elapsed.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending AfterFunc call.
type Timer interface {
	// Stop prevents the call if it has not started; it reports whether it did.
	Stop() bool
}

// SystemClock is the wall clock of the process.
type SystemClock struct{}

var _ Clock = SystemClock{}

// NewSystemClock returns the wall clock.
func NewSystemClock() SystemClock { return SystemClock{} }

// Now returns the current time.
func (SystemClock) Now() time.Time { return time.Now() }

// AfterFunc wraps time.AfterFunc.
func (SystemClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// Sleep waits d on clock. It returns nil once d has passed, or ctx's error as
// soon as ctx ends. It is the one context-aware sleep of the agent and the
// cloud links; with a fake clock it returns when the test advances time.
func Sleep(ctx context.Context, clock Clock, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	done := make(chan struct{})
	t := clock.AfterFunc(d, func() { close(done) })
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		t.Stop()
		return ctx.Err()
	}
}
